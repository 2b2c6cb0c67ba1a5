// Stands in for the module that evcontract writes for each contract (its
// error codes and its name), so that the runtime compiles on its own here.
// Not shipped.

/** Every error code a server may answer with (each contract's own list). */
export type ErrorCode = string;

/** Every error code, in contract order. */
export const ERROR_CODES: readonly ErrorCode[] = [];

/** The contract the client was generated from. */
export const CONTRACT = { name: "", version: "" } as const;
