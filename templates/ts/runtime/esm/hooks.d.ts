import * as lib from "./lib.js";
/** Where a connection stands. */
export type ConnectionStatus = "connecting" | "connected" | "reconnecting" | "disconnected";
/** Options of the hooks: the connect options, plus `enabled`. */
export interface UseSocketOptions extends lib.ConnectOptions {
    /** Connect only while `true` (default), e.g. once a token is known. */
    enabled?: boolean | undefined;
}
/** What the hooks return. */
export interface UseSocketResult<S, C> {
    /** The typed socket; `null` before the first connect and while disabled. */
    socket: S | null;
    /** The typed client around `socket`. */
    client: C | null;
    /** Whether the socket is connected. */
    connected: boolean;
    /** `connecting` first, `reconnecting` after a lost connection, `disconnected` when closed or given up. */
    status: ConnectionStatus;
    /**
     * The last connection error (refused handshake, unreachable server, …),
     * kept after reconnecting. A `ContractMismatchError` means this front-end
     * was built for another major version of the contract than the server's:
     * the hook stops retrying, and the page should ask the user to reload.
     */
    error: Error | null;
    /**
     * The last room with history this connection could not recover after a
     * reconnection (`recovered: false`, with the `reason`): events were sent
     * to it that this client will never get, so fetch the room's state again.
     * A new object for every such room, so an effect can depend on it.
     */
    lastGap: lib.RoomPosition | null;
}
/**
 * The connection behind every hook. A new connection is made when `enabled`,
 * `url`, a string `token` or any connection option changes, and the old one
 * is closed; a `token` function is read on every (re)connect and may change
 * identity freely. Connecting is deferred by a microtask so that React
 * StrictMode's mount, unmount, mount opens one connection, not two.
 */
export declare function useSocketClient<S, C>(open: (options: lib.ConnectOptions) => {
    socket: S;
    client: C;
}, options: UseSocketOptions): UseSocketResult<S, C>;
