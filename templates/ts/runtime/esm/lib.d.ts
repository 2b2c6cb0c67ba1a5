import type { ManagerOptions, Socket, SocketOptions } from "socket.io-client";
import { type ErrorCode } from "./contract.js";
export { CONTRACT, ERROR_CODES } from "./contract.js";
export type { ErrorCode } from "./contract.js";
/**
 * The server answered an acked event with `{success: false, code, message, details?}`.
 * `details` is `{retryAfterMs}` for `RATE_LIMITED` and `{path, reason}` for `INVALID_PAYLOAD`.
 */
export declare class AckError extends Error {
    readonly name = "AckError";
    /** The client event that failed. */
    readonly event: string;
    /** The contract's error code. */
    readonly code: ErrorCode;
    /** Extra data, when the server sent any. */
    readonly details: unknown;
    constructor(event: string, code: ErrorCode, message: string, details?: unknown);
}
/** No ack arrived in time (the event is not sent later: socket.io drops it from its buffer). */
export declare class AckTimeoutError extends Error {
    readonly name = "AckTimeoutError";
    /** The client event that timed out. */
    readonly event: string;
    /** How long the call waited. */
    readonly timeoutMs: number;
    constructor(event: string, timeoutMs: number);
}
/** The connection dropped after the event was sent and before its ack came. */
export declare class AckDisconnectedError extends Error {
    readonly name = "AckDisconnectedError";
    /** The client event whose ack was lost. */
    readonly event: string;
    constructor(event: string);
}
/** A handshake token, or `null`/`undefined` to connect without one. */
export type Token = string | null | undefined;
/**
 * The token to send: a value, or a function called on every (re)connect
 * (so a refreshed token is picked up), which may return a promise.
 */
export type TokenSource = Token | (() => Token | Promise<Token>);
/**
 * A socket.io-client transport. socket.io-client's own `TransportName` also
 * admits any string (and is not exported by `socket.io-client`), so a typo
 * like `"websockets"` would only fail at run time; this union rejects it.
 */
export type Transport = "polling" | "websocket" | "webtransport";
/** Options of the typed connect helpers (the usual `useWebSocket` options). */
export interface ConnectOptions {
    /**
     * The server (`https://api.example.com`), optionally followed by the
     * namespace path; the namespace is appended when missing. Default: the
     * page's origin.
     */
    url?: string | undefined;
    /** Sent in the handshake as `auth: {token}`. */
    token?: TokenSource;
    /** Reconnect after a lost connection (default `true`). */
    reconnection?: boolean | undefined;
    /** Attempts before giving up (default `Infinity`). */
    reconnectionAttempts?: number | undefined;
    /** First delay between attempts, in ms (default 1000), doubled up to `reconnectionDelayMax`. */
    reconnectionDelay?: number | undefined;
    /** Longest delay between attempts, in ms (default 5000). */
    reconnectionDelayMax?: number | undefined;
    /** Connection timeout, in ms (default 20000). */
    timeout?: number | undefined;
    /**
     * Transports, in the order tried (default `["polling", "websocket"]`:
     * HTTP long-polling first, then an upgrade to WebSocket).
     *
     * With several server nodes behind a load balancer, long-polling needs
     * sticky sessions: every HTTP request of a session must reach the node
     * that holds it, and another node refuses it as an unknown session. Without
     * sticky sessions use `["websocket"]`: one WebSocket connection stays on
     * one node for its whole life (the price: no fallback where WebSocket is
     * blocked). A reconnection may land on another node.
     */
    transports?: Transport[] | undefined;
    /** Connect now (default `true`); else call `socket.connect()`. */
    autoConnect?: boolean | undefined;
    /** How long an acked call waits, in ms (default 10000; `0` or `Infinity`: forever). */
    ackTimeoutMs?: number | undefined;
    /**
     * How long a call of an idempotent event is retried, in ms (default
     * 30000): made while disconnected, it waits for the connection; when its
     * answer does not come (lost connection, timeout) or is `UNAVAILABLE`, it
     * is sent again with the same idempotency key, and the server answers a
     * retry with the first answer instead of running the handler again.
     */
    retryForMs?: number | undefined;
    /**
     * Most idempotent calls waiting for a connection at once (default 256);
     * one more rejects at once with `QueueFullError`.
     */
    maxQueuedCalls?: number | undefined;
    /**
     * How long an event of a room with history that arrives ahead of an
     * earlier one waits for it, in ms (default 1000), before the client asks
     * the server for the missing ones (`evcontract:fill`). Listeners added
     * with the client's `on` see each room's events in order, once.
     */
    gapWaitMs?: number | undefined;
    /**
     * Most events of one room held behind a missing one (default 1024); one
     * more and the client stops waiting: `onRecovery` gets a position with
     * `recovered: false` (reason `dropped`) and the held events are delivered.
     */
    maxHeldEvents?: number | undefined;
    /**
     * Any other socket.io-client option (`path`, `withCredentials`, …); the
     * options above win. Every call opens its own connection (`forceNew`)
     * unless this says `forceNew: false`.
     */
    io?: Partial<ManagerOptions & SocketOptions> | undefined;
}
/** Options of one acked call. */
export interface CallOptions {
    /** Overrides the client's `ackTimeoutMs` for this call. */
    timeoutMs?: number | undefined;
    /** Overrides the client's `retryForMs` for this call (idempotent events). */
    retryForMs?: number | undefined;
}
/** The default of `ConnectOptions.ackTimeoutMs`. */
export declare const DEFAULT_ACK_TIMEOUT_MS = 10000;
/** The default of `ConnectOptions.retryForMs`. */
export declare const DEFAULT_RETRY_FOR_MS = 30000;
/** The default of `ConnectOptions.maxQueuedCalls`. */
export declare const DEFAULT_MAX_QUEUED_CALLS = 256;
/** The default of `ConnectOptions.gapWaitMs`. */
export declare const DEFAULT_GAP_WAIT_MS = 1000;
/** The URL to hand to `io()` for namespace `namespace`. */
export declare function namespaceUrl(url: string | undefined, namespace: string): string;
/**
 * The server refused the connection because this client was generated from
 * another major version of the contract (the message names both). Ask the
 * user to reload: a newer front-end is deployed.
 */
export declare class ContractMismatchError extends Error {
    readonly code: "CONTRACT_MISMATCH";
    constructor(message: string);
}
/**
 * A `connect_error` as an `Error`: `ContractMismatchError` for
 * `CONTRACT_MISMATCH`, the error itself otherwise.
 */
export declare function connectError(e: unknown): Error;
/** The server event that gives a client's position in a room with history. */
export declare const RECOVERY_EVENT = "evcontract:recovery";
/** Why a room could not be recovered after a reconnection. */
export type RecoveryGap = "trimmed" | "expired" | "epoch" | "no_history" | "refused" | "dropped" | "unavailable";
/**
 * Where the client stands in a room with history: sent when it joins
 * (`recovered: true`), leaves (`left: true`), and for each room after a
 * reconnection: `recovered: true` when every event it missed was sent again
 * (`replayed` of them, in order, before this), or `recovered: false` with
 * the `reason` when some are gone; fetch the room's state again then.
 */
export interface RoomPosition {
    room: string;
    epoch: string;
    offset: number;
    recovered: boolean;
    replayed: number;
    reason?: RecoveryGap;
    left?: boolean;
}
/** The client event that asks for a room's events after an offset. */
export declare const FILL_EVENT = "evcontract:fill";
/** The default of `ConnectOptions.maxHeldEvents`. */
export declare const DEFAULT_MAX_HELD_EVENTS = 1024;
type Listener = (...args: unknown[]) => void;
/**
 * Where this socket stands in each room with history: the last offset per
 * room, named in every reconnection's handshake (`auth.recovery`) so that
 * the server sends what was missed, and the order of the rooms' events for
 * the listeners added with `listen` (the client's `on` and `onRecovery`):
 * an event whose offset was seen is dropped, one that arrives ahead of a
 * missing one waits for it (and after `gapWaitMs` the server is asked for
 * the missing ones), and when events are gone the listeners of
 * `RECOVERY_EVENT` get a position with `recovered: false`.
 */
export declare class RoomPositions {
    private readonly gapWaitMs;
    private readonly maxHeld;
    private readonly rooms;
    /** What to do with the packet whose offset is the key. */
    private readonly verdicts;
    private readonly listeners;
    private socket;
    constructor(gapWaitMs?: number, maxHeld?: number);
    /** Follows `socket`'s events and positions. */
    attach(socket: Socket): void;
    /**
     * Adds `listener` for `event` on the socket, seeing each room's events in
     * order and once; returns the function that removes it.
     */
    listen(socket: Socket, event: string, listener: Listener): () => void;
    private dispatch;
    private arrive;
    /** Delivers the held events that follow the room's offset. */
    private drain;
    /** Gives up on what is missing: every held event is delivered, in order. */
    private flush;
    /** Tells the listeners of `RECOVERY_EVENT` that events are gone. */
    private gap;
    /**
     * Events of `room` up to `position` are gone for good: the app is told,
     * then the events held behind them are delivered.
     */
    private lost;
    /** After `gapWaitMs`, asks the server for what is still missing. */
    private arm;
    /** Applies a position the server sent. */
    private place;
    /**
     * Asks the server, for every room with history this socket is in, for
     * the events after the last one it has (they arrive as events, in
     * order), and resolves with where each room stands; rooms where events
     * are gone are also told to the `RECOVERY_EVENT` listeners. Events are
     * otherwise asked for only when a later one shows that one is missing:
     * call this when the app must be sure it has everything.
     */
    sync(timeoutMs?: number): Promise<RoomPosition[]>;
    /** `auth.recovery`: room → {epoch, offset}. */
    request(): Record<string, {
        epoch: string;
        offset: number;
    }>;
    /** Room → last offset, for display and tests. */
    snapshot(): Map<string, {
        epoch: string;
        offset: number;
    }>;
}
/** The positions that follow `socket` (made when it has none). */
export declare function positionsFor(socket: Socket): RoomPositions;
/** Connects `socket` to `positions` (the connect helpers do). */
export declare function follow(socket: Socket, positions: RoomPositions): void;
/** socket.io-client options for `options`, with `positions` named at every (re)connect. */
export declare function ioOptions(options: ConnectOptions, positions?: RoomPositions): Partial<ManagerOptions & SocketOptions>;
/** A call of an idempotent event could not wait: as many wait already. */
export declare class QueueFullError extends Error {
    readonly event: string;
    readonly max: number;
    constructor(event: string, max: number);
}
/**
 * Calls an idempotent event: like `request`, with an idempotency key as
 * the extra last argument; made while disconnected it waits for the
 * connection (at most `maxQueued` calls wait at once: `QueueFullError`),
 * and it is sent again with the same key while its answer does not come
 * or is `UNAVAILABLE`, for at most `retryForMs`. The server runs the
 * handler once per key and answers a retry with the first answer.
 */
export declare function requestOnce<T>(socket: Socket, event: string, payload: unknown, timeoutMs: number, retryForMs?: number, maxQueued?: number): Promise<T>;
/**
 * Emits `event` and resolves with the ack's `data`, or rejects with
 * `AckError`, `AckTimeoutError` or `AckDisconnectedError`. The generated
 * clients call it with the event's own types.
 */
export declare function request<T>(socket: Socket, event: string, payload: unknown, timeoutMs: number): Promise<T>;
/**
 * Opens a socket.io-client socket on `namespace` with `options`, its
 * positions in rooms with history followed (the typed `connect<Namespace>`
 * helpers cast it to their namespace's socket type).
 */
export declare function connectSocket(namespace: string, options?: ConnectOptions): Socket;
/** Options of the typed clients (see `ConnectOptions`). */
export interface ClientOptions {
    ackTimeoutMs?: number | undefined;
    retryForMs?: number | undefined;
    maxQueuedCalls?: number | undefined;
}
/**
 * What every typed client has apart from its events' methods: the socket,
 * the call settings, and listening to server events in each room's order.
 * `S` is the namespace's typed socket, `E` its server-to-client events.
 */
export declare class EventClient<S, E> {
    /** The typed socket underneath (connection events, `id`, `connect()`, …). */
    readonly socket: S;
    /** How long acked calls wait, in ms (`0` or `Infinity`: forever). */
    ackTimeoutMs: number;
    /** How long calls of idempotent events are retried, in ms. */
    retryForMs: number;
    /** Most calls of idempotent events waiting for the connection at once. */
    maxQueuedCalls: number;
    private readonly unlisten;
    constructor(socket: S, options?: ClientOptions);
    private listen;
    /** Whether the socket is connected now. */
    get connected(): boolean;
    /** Closes the connection (no reconnection). */
    disconnect(): void;
    /**
     * Listens to a server event; returns the function that stops listening.
     * Events of a room with history reach it in the room's order, once (see
     * `ConnectOptions.gapWaitMs`).
     */
    on<K extends keyof E & string>(event: K, handler: E[K]): () => void;
    /**
     * Listens to this client's positions in rooms with history: after a
     * reconnection, one per room it was in, `recovered: false` (with the
     * `reason`) when events it missed are gone, so the page can fetch the
     * room's state again. Returns the function that stops listening.
     */
    onRecovery(handler: (position: RoomPosition) => void): () => void;
    /**
     * Asks the server for whatever each room with history has past this
     * client's last event, and resolves with where each room stands (see
     * `RoomPositions.sync`).
     */
    syncRooms(options?: CallOptions): Promise<RoomPosition[]>;
    /** Stops `handler` listening to `event`. */
    off<K extends keyof E & string>(event: K, handler: E[K]): void;
}
