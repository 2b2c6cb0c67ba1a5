"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.EventClient = exports.QueueFullError = exports.RoomPositions = exports.DEFAULT_MAX_HELD_EVENTS = exports.FILL_EVENT = exports.RECOVERY_EVENT = exports.ContractMismatchError = exports.DEFAULT_GAP_WAIT_MS = exports.DEFAULT_MAX_QUEUED_CALLS = exports.DEFAULT_RETRY_FOR_MS = exports.DEFAULT_ACK_TIMEOUT_MS = exports.AckDisconnectedError = exports.AckTimeoutError = exports.AckError = exports.ERROR_CODES = exports.CONTRACT = void 0;
exports.namespaceUrl = namespaceUrl;
exports.connectError = connectError;
exports.positionsFor = positionsFor;
exports.follow = follow;
exports.ioOptions = ioOptions;
exports.requestOnce = requestOnce;
exports.request = request;
exports.connectSocket = connectSocket;
/**
 * What the typed clients of every namespace share: connection options, the
 * errors an acked call rejects with, and the ack plumbing.
 */
const socket_io_client_1 = require("socket.io-client");
const contract_js_1 = require("./contract.js");
var contract_js_2 = require("./contract.js");
Object.defineProperty(exports, "CONTRACT", { enumerable: true, get: function () { return contract_js_2.CONTRACT; } });
Object.defineProperty(exports, "ERROR_CODES", { enumerable: true, get: function () { return contract_js_2.ERROR_CODES; } });
/**
 * The server answered an acked event with `{success: false, code, message, details?}`.
 * `details` is `{retryAfterMs}` for `RATE_LIMITED` and `{path, reason}` for `INVALID_PAYLOAD`.
 */
class AckError extends Error {
    name = "AckError";
    /** The client event that failed. */
    event;
    /** The contract's error code. */
    code;
    /** Extra data, when the server sent any. */
    details;
    constructor(event, code, message, details) {
        super(message);
        this.event = event;
        this.code = code;
        this.details = details;
    }
}
exports.AckError = AckError;
/** No ack arrived in time (the event is not sent later: socket.io drops it from its buffer). */
class AckTimeoutError extends Error {
    name = "AckTimeoutError";
    /** The client event that timed out. */
    event;
    /** How long the call waited. */
    timeoutMs;
    constructor(event, timeoutMs) {
        super(`no ack for \`${event}\` within ${timeoutMs} ms`);
        this.event = event;
        this.timeoutMs = timeoutMs;
    }
}
exports.AckTimeoutError = AckTimeoutError;
/** The connection dropped after the event was sent and before its ack came. */
class AckDisconnectedError extends Error {
    name = "AckDisconnectedError";
    /** The client event whose ack was lost. */
    event;
    constructor(event) {
        super(`disconnected before the ack for \`${event}\``);
        this.event = event;
    }
}
exports.AckDisconnectedError = AckDisconnectedError;
/** The default of `ConnectOptions.ackTimeoutMs`. */
exports.DEFAULT_ACK_TIMEOUT_MS = 10_000;
/** The default of `ConnectOptions.retryForMs`. */
exports.DEFAULT_RETRY_FOR_MS = 30_000;
/** The default of `ConnectOptions.maxQueuedCalls`. */
exports.DEFAULT_MAX_QUEUED_CALLS = 256;
/** The default of `ConnectOptions.gapWaitMs`. */
exports.DEFAULT_GAP_WAIT_MS = 1000;
/** The URL to hand to `io()` for namespace `namespace`. */
function namespaceUrl(url, namespace) {
    if (url === undefined || url === "") {
        return namespace;
    }
    const base = url.replace(/\/+$/, "");
    if (namespace === "/" || base.endsWith(namespace)) {
        return base === "" ? "/" : base;
    }
    return `${base}${namespace}`;
}
/**
 * The server refused the connection because this client was generated from
 * another major version of the contract (the message names both). Ask the
 * user to reload: a newer front-end is deployed.
 */
class ContractMismatchError extends Error {
    code = "CONTRACT_MISMATCH";
    constructor(message) {
        super(message);
        this.name = "ContractMismatchError";
    }
}
exports.ContractMismatchError = ContractMismatchError;
/**
 * A `connect_error` as an `Error`: `ContractMismatchError` for
 * `CONTRACT_MISMATCH`, the error itself otherwise.
 */
function connectError(e) {
    const message = e instanceof Error ? e.message : String(e);
    if (message === "CONTRACT_MISMATCH" || message.startsWith("CONTRACT_MISMATCH:")) {
        return new ContractMismatchError(message);
    }
    return e instanceof Error ? e : new Error(message);
}
/** The server event that gives a client's position in a room with history. */
exports.RECOVERY_EVENT = "evcontract:recovery";
function isOffset(v) {
    const o = v;
    return o !== null && typeof o === "object" && typeof o.room === "string" && typeof o.epoch === "string" && typeof o.offset === "number";
}
/** The client event that asks for a room's events after an offset. */
exports.FILL_EVENT = "evcontract:fill";
/** What `FILL_EVENT` asks for: the events of `name` after this client's last one. */
function fillRequest(name, room) {
    return { room: name, epoch: room.epoch, offset: room.offset };
}
/** The default of `ConnectOptions.maxHeldEvents`. */
exports.DEFAULT_MAX_HELD_EVENTS = 1024;
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
class RoomPositions {
    gapWaitMs;
    maxHeld;
    rooms = new Map();
    /** What to do with the packet whose offset is the key. */
    verdicts = new WeakMap();
    listeners = new Map();
    socket;
    constructor(gapWaitMs = exports.DEFAULT_GAP_WAIT_MS, maxHeld = exports.DEFAULT_MAX_HELD_EVENTS) {
        this.gapWaitMs = gapWaitMs;
        this.maxHeld = maxHeld;
    }
    /** Follows `socket`'s events and positions. */
    attach(socket) {
        this.socket = socket;
        // Any-listeners run before the event's own listeners: the verdict is
        // there when they look.
        socket.onAny((event, ...args) => {
            if (event === exports.RECOVERY_EVENT) {
                this.place(args[0]);
                return;
            }
            const last = args[args.length - 1];
            if (args.length > 1 && isOffset(last))
                this.verdicts.set(last, this.arrive(event, args, last));
        });
    }
    /**
     * Adds `listener` for `event` on the socket, seeing each room's events in
     * order and once; returns the function that removes it.
     */
    listen(socket, event, listener) {
        const own = (...args) => {
            const last = args[args.length - 1];
            if (args.length > 1 && isOffset(last) && (this.verdicts.get(last) ?? "deliver") !== "deliver")
                return;
            listener(...args);
        };
        let set = this.listeners.get(event);
        if (set === undefined) {
            set = new Set();
            this.listeners.set(event, set);
        }
        set.add(listener);
        socket.on(event, own);
        return () => {
            socket.off(event, own);
            set.delete(listener);
        };
    }
    dispatch(event, args) {
        for (const listener of [...(this.listeners.get(event) ?? [])])
            listener(...args);
    }
    arrive(event, args, at) {
        const room = this.rooms.get(at.room);
        if (room === undefined) {
            this.rooms.set(at.room, { epoch: at.epoch, offset: at.offset, held: new Map(), timer: undefined });
            return "deliver";
        }
        if (room.epoch !== at.epoch) {
            // The room's history was lost: what came before this event is unknown.
            this.flush(room, 0);
            this.gap({ room: at.room, epoch: at.epoch, offset: at.offset - 1, recovered: false, replayed: 0, reason: "epoch" });
            this.rooms.set(at.room, { epoch: at.epoch, offset: at.offset, held: new Map(), timer: undefined });
            return "deliver";
        }
        if (at.offset <= room.offset)
            return "drop";
        if (at.offset === room.offset + 1) {
            room.offset = at.offset;
            // The held events that now follow go after this one's listeners.
            if (room.held.size > 0)
                queueMicrotask(() => this.drain(room));
            return "deliver";
        }
        room.held.set(at.offset, { event, args });
        if (room.held.size > this.maxHeld) {
            const max = Math.max(...room.held.keys());
            queueMicrotask(() => {
                this.gap({ room: at.room, epoch: room.epoch, offset: max, recovered: false, replayed: 0, reason: "dropped" });
                this.flush(room, max);
            });
        }
        else {
            this.arm(at.room, room);
        }
        return "hold";
    }
    /** Delivers the held events that follow the room's offset. */
    drain(room) {
        for (;;) {
            const next = room.held.get(room.offset + 1);
            for (const offset of room.held.keys())
                if (offset <= room.offset)
                    room.held.delete(offset);
            if (next === undefined)
                break;
            room.held.delete(room.offset + 1);
            room.offset += 1;
            this.dispatch(next.event, next.args);
        }
    }
    /** Gives up on what is missing: every held event is delivered, in order. */
    flush(room, at) {
        clearTimeout(room.timer);
        room.timer = undefined;
        const held = [...room.held.entries()].sort((a, b) => a[0] - b[0]);
        room.held.clear();
        for (const [offset, { event, args }] of held) {
            if (offset > room.offset) {
                room.offset = offset;
                this.dispatch(event, args);
            }
        }
        room.offset = Math.max(room.offset, at);
    }
    /** Tells the listeners of `RECOVERY_EVENT` that events are gone. */
    gap(position) {
        this.dispatch(exports.RECOVERY_EVENT, [position]);
    }
    /**
     * Events of `room` up to `position` are gone for good: the app is told,
     * then the events held behind them are delivered.
     */
    lost(room, position) {
        this.gap(position);
        this.flush(room, position.offset);
    }
    /** After `gapWaitMs`, asks the server for what is still missing. */
    arm(name, room) {
        if (room.timer !== undefined)
            return;
        room.timer = setTimeout(() => {
            room.timer = undefined;
            const socket = this.socket;
            // Disconnected: the reconnection's resume asks for them.
            if (room.held.size === 0 || socket === undefined || !socket.connected)
                return;
            const asked = fillRequest(name, room);
            socket
                .timeout(exports.DEFAULT_ACK_TIMEOUT_MS)
                .emit(exports.FILL_EVENT, asked, (err, res) => {
                if (this.rooms.get(name) !== room || room.held.size === 0)
                    return;
                if (err) {
                    this.arm(name, room);
                }
                else if (res.success && res.data.recovered) {
                    // The missing events came before the answer; any still missing
                    // are asked for again.
                    this.drain(room);
                    if (room.held.size > 0)
                        this.arm(name, room);
                }
                else {
                    this.lost(room, res.success ? res.data : { ...asked, recovered: false, replayed: 0, reason: "unavailable" });
                }
            });
        }, this.gapWaitMs);
    }
    /** Applies a position the server sent. */
    place(p) {
        const room = this.rooms.get(p.room);
        if (p.left) {
            if (room !== undefined)
                clearTimeout(room.timer);
            this.rooms.delete(p.room);
            return;
        }
        if (room === undefined) {
            if (p.epoch !== "")
                this.rooms.set(p.room, { epoch: p.epoch, offset: p.offset, held: new Map(), timer: undefined });
            return;
        }
        // After the position's own listeners: the held events it releases.
        if (p.epoch === "" || p.epoch === room.epoch) {
            if (p.recovered) {
                room.offset = Math.max(room.offset, p.offset);
                queueMicrotask(() => {
                    this.drain(room);
                    if (room.held.size > 0)
                        this.arm(p.room, room);
                });
            }
            else {
                queueMicrotask(() => this.flush(room, p.offset));
            }
        }
        else {
            queueMicrotask(() => this.flush(room, 0));
            this.rooms.set(p.room, { epoch: p.epoch, offset: p.offset, held: new Map(), timer: undefined });
        }
    }
    /**
     * Asks the server, for every room with history this socket is in, for
     * the events after the last one it has (they arrive as events, in
     * order), and resolves with where each room stands; rooms where events
     * are gone are also told to the `RECOVERY_EVENT` listeners. Events are
     * otherwise asked for only when a later one shows that one is missing:
     * call this when the app must be sure it has everything.
     */
    async sync(timeoutMs = exports.DEFAULT_ACK_TIMEOUT_MS) {
        const socket = this.socket;
        if (socket === undefined)
            return [];
        const out = [];
        for (const [name, room] of [...this.rooms]) {
            const position = await requestArgs(socket, exports.FILL_EVENT, [fillRequest(name, room)], timeoutMs);
            if (!position.recovered)
                this.lost(room, position);
            out.push(position);
        }
        return out;
    }
    /** `auth.recovery`: room → {epoch, offset}. */
    request() {
        return Object.fromEntries([...this.rooms].map(([room, r]) => [room, { epoch: r.epoch, offset: r.offset }]));
    }
    /** Room → last offset, for display and tests. */
    snapshot() {
        return new Map([...this.rooms].map(([room, r]) => [room, { epoch: r.epoch, offset: r.offset }]));
    }
}
exports.RoomPositions = RoomPositions;
/** The positions behind each socket made by the connect helpers. */
const positionsOf = new WeakMap();
/** The positions that follow `socket` (made when it has none). */
function positionsFor(socket) {
    let positions = positionsOf.get(socket);
    if (positions === undefined) {
        positions = new RoomPositions();
        positions.attach(socket);
        positionsOf.set(socket, positions);
    }
    return positions;
}
/** Connects `socket` to `positions` (the connect helpers do). */
function follow(socket, positions) {
    positions.attach(socket);
    positionsOf.set(socket, positions);
}
function authOf(token, positions) {
    const contract = { name: contract_js_1.CONTRACT.name, version: contract_js_1.CONTRACT.version };
    const auth = (t) => t === null || t === undefined ? { contract, recovery: positions.request() } : { token: t, contract, recovery: positions.request() };
    // socket.io-client calls this before every (re)connect, so the positions
    // are current at each reconnection.
    return (cb) => {
        if (typeof token !== "function") {
            cb(auth(token));
            return;
        }
        Promise.resolve()
            .then(token)
            .then((t) => cb(auth(t)), 
        // A failing token source connects without a token: the server
        // refuses (`AUTH_REQUIRED`) where one is needed.
        () => cb(auth(null)));
    };
}
/** socket.io-client options for `options`, with `positions` named at every (re)connect. */
function ioOptions(options, positions = new RoomPositions()) {
    const out = { forceNew: true, ...options.io };
    out.auth = authOf(options.token, positions);
    if (options.reconnection !== undefined)
        out.reconnection = options.reconnection;
    if (options.reconnectionAttempts !== undefined)
        out.reconnectionAttempts = options.reconnectionAttempts;
    if (options.reconnectionDelay !== undefined)
        out.reconnectionDelay = options.reconnectionDelay;
    if (options.reconnectionDelayMax !== undefined)
        out.reconnectionDelayMax = options.reconnectionDelayMax;
    if (options.timeout !== undefined)
        out.timeout = options.timeout;
    if (options.transports !== undefined)
        out.transports = options.transports;
    if (options.autoConnect !== undefined)
        out.autoConnect = options.autoConnect;
    return out;
}
/** A call of an idempotent event could not wait: as many wait already. */
class QueueFullError extends Error {
    event;
    max;
    constructor(event, max) {
        super(`\`${event}\` not sent: ${max} calls wait for the connection already`);
        this.event = event;
        this.max = max;
        this.name = "QueueFullError";
    }
}
exports.QueueFullError = QueueFullError;
/** Calls waiting for a connection, per socket. */
const queued = new WeakMap();
/** A new idempotency key. */
function newKey() {
    const c = globalThis.crypto;
    if (c?.randomUUID)
        return c.randomUUID();
    return `${Date.now().toString(16)}-${Math.random().toString(16).slice(2)}-${Math.random().toString(16).slice(2)}`;
}
/** Resolves once `socket` is connected, or after `ms`. */
function connectedWithin(socket, ms) {
    if (socket.connected)
        return Promise.resolve();
    return new Promise((resolve) => {
        const done = () => {
            clearTimeout(timer);
            socket.off("connect", done);
            resolve();
        };
        const timer = setTimeout(done, ms);
        socket.on("connect", done);
    });
}
/**
 * Calls an idempotent event: like `request`, with an idempotency key as
 * the extra last argument; made while disconnected it waits for the
 * connection (at most `maxQueued` calls wait at once: `QueueFullError`),
 * and it is sent again with the same key while its answer does not come
 * or is `UNAVAILABLE`, for at most `retryForMs`. The server runs the
 * handler once per key and answers a retry with the first answer.
 */
async function requestOnce(socket, event, payload, timeoutMs, retryForMs = exports.DEFAULT_RETRY_FOR_MS, maxQueued = exports.DEFAULT_MAX_QUEUED_CALLS) {
    const key = { idempotencyKey: newKey() };
    const deadline = Date.now() + retryForMs;
    let pause = 50;
    for (;;) {
        if (!socket.connected) {
            const waiting = queued.get(socket) ?? 0;
            if (waiting >= maxQueued)
                throw new QueueFullError(event, maxQueued);
            queued.set(socket, waiting + 1);
            try {
                await connectedWithin(socket, Math.max(0, deadline - Date.now()));
            }
            finally {
                queued.set(socket, (queued.get(socket) ?? 1) - 1);
            }
            if (!socket.connected)
                throw new AckTimeoutError(event, retryForMs);
        }
        const left = Math.max(1, deadline - Date.now());
        const wait = timeoutMs > 0 && timeoutMs !== Infinity ? Math.min(timeoutMs, left) : left;
        try {
            return await requestArgs(socket, event, [payload, key], wait);
        }
        catch (e) {
            const unavailable = e instanceof AckError && e.code === "UNAVAILABLE";
            const lost = e instanceof AckTimeoutError || e instanceof AckDisconnectedError;
            if (!(unavailable || lost) || Date.now() >= deadline)
                throw e;
            if (unavailable) {
                await new Promise((r) => setTimeout(r, Math.min(pause, Math.max(0, deadline - Date.now()))));
                pause = Math.min(pause * 2, 1000);
            }
        }
    }
}
/**
 * Emits `event` and resolves with the ack's `data`, or rejects with
 * `AckError`, `AckTimeoutError` or `AckDisconnectedError`. The generated
 * clients call it with the event's own types.
 */
function request(socket, event, payload, timeoutMs) {
    return requestArgs(socket, event, [payload], timeoutMs);
}
function requestArgs(socket, event, args, timeoutMs) {
    return new Promise((resolve, reject) => {
        const settle = (res) => {
            if (res !== null && typeof res === "object" && res.success === true) {
                resolve(res.data);
            }
            else if (res !== null && typeof res === "object" && res.success === false) {
                reject(new AckError(event, res.code, res.message, res.details));
            }
            else {
                reject(new AckError(event, "INTERNAL", `malformed ack for \`${event}\``, res));
            }
        };
        if (!(timeoutMs > 0) || timeoutMs === Infinity) {
            socket.emit(event, ...args, settle);
            return;
        }
        socket.timeout(timeoutMs).emit(event, ...args, (err, res) => {
            if (err === null || err === undefined) {
                settle(res);
            }
            else if (/timed out/.test(err.message)) {
                reject(new AckTimeoutError(event, timeoutMs));
            }
            else {
                reject(new AckDisconnectedError(event));
            }
        });
    });
}
/**
 * Opens a socket.io-client socket on `namespace` with `options`, its
 * positions in rooms with history followed (the typed `connect<Namespace>`
 * helpers cast it to their namespace's socket type).
 */
function connectSocket(namespace, options = {}) {
    const positions = new RoomPositions(options.gapWaitMs, options.maxHeldEvents);
    const socket = (0, socket_io_client_1.io)(namespaceUrl(options.url, namespace), ioOptions(options, positions));
    follow(socket, positions);
    return socket;
}
/**
 * What every typed client has apart from its events' methods: the socket,
 * the call settings, and listening to server events in each room's order.
 * `S` is the namespace's typed socket, `E` its server-to-client events.
 */
class EventClient {
    /** The typed socket underneath (connection events, `id`, `connect()`, …). */
    socket;
    /** How long acked calls wait, in ms (`0` or `Infinity`: forever). */
    ackTimeoutMs;
    /** How long calls of idempotent events are retried, in ms. */
    retryForMs;
    /** Most calls of idempotent events waiting for the connection at once. */
    maxQueuedCalls;
    unlisten = new Map();
    constructor(socket, options = {}) {
        this.socket = socket;
        this.ackTimeoutMs = options.ackTimeoutMs ?? exports.DEFAULT_ACK_TIMEOUT_MS;
        this.retryForMs = options.retryForMs ?? exports.DEFAULT_RETRY_FOR_MS;
        this.maxQueuedCalls = options.maxQueuedCalls ?? exports.DEFAULT_MAX_QUEUED_CALLS;
    }
    listen(event, handler) {
        const raw = this.socket;
        const stop = positionsFor(raw).listen(raw, event, handler);
        let handlers = this.unlisten.get(event);
        if (handlers === undefined) {
            handlers = new Map();
            this.unlisten.set(event, handlers);
        }
        handlers.get(handler)?.();
        handlers.set(handler, stop);
        return () => {
            stop();
            if (handlers.get(handler) === stop)
                handlers.delete(handler);
        };
    }
    /** Whether the socket is connected now. */
    get connected() {
        return this.socket.connected;
    }
    /** Closes the connection (no reconnection). */
    disconnect() {
        this.socket.disconnect();
    }
    /**
     * Listens to a server event; returns the function that stops listening.
     * Events of a room with history reach it in the room's order, once (see
     * `ConnectOptions.gapWaitMs`).
     */
    on(event, handler) {
        return this.listen(event, handler);
    }
    /**
     * Listens to this client's positions in rooms with history: after a
     * reconnection, one per room it was in, `recovered: false` (with the
     * `reason`) when events it missed are gone, so the page can fetch the
     * room's state again. Returns the function that stops listening.
     */
    onRecovery(handler) {
        return this.listen(exports.RECOVERY_EVENT, handler);
    }
    /**
     * Asks the server for whatever each room with history has past this
     * client's last event, and resolves with where each room stands (see
     * `RoomPositions.sync`).
     */
    syncRooms(options) {
        return positionsFor(this.socket).sync(options?.timeoutMs ?? this.ackTimeoutMs);
    }
    /** Stops `handler` listening to `event`. */
    off(event, handler) {
        this.unlisten.get(event)?.get(handler)?.();
        this.unlisten.get(event)?.delete(handler);
    }
}
exports.EventClient = EventClient;
