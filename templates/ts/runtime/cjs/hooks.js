"use strict";
var __createBinding = (this && this.__createBinding) || (Object.create ? (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    var desc = Object.getOwnPropertyDescriptor(m, k);
    if (!desc || ("get" in desc ? !m.__esModule : desc.writable || desc.configurable)) {
      desc = { enumerable: true, get: function() { return m[k]; } };
    }
    Object.defineProperty(o, k2, desc);
}) : (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    o[k2] = m[k];
}));
var __setModuleDefault = (this && this.__setModuleDefault) || (Object.create ? (function(o, v) {
    Object.defineProperty(o, "default", { enumerable: true, value: v });
}) : function(o, v) {
    o["default"] = v;
});
var __importStar = (this && this.__importStar) || (function () {
    var ownKeys = function(o) {
        ownKeys = Object.getOwnPropertyNames || function (o) {
            var ar = [];
            for (var k in o) if (Object.prototype.hasOwnProperty.call(o, k)) ar[ar.length] = k;
            return ar;
        };
        return ownKeys(o);
    };
    return function (mod) {
        if (mod && mod.__esModule) return mod;
        var result = {};
        if (mod != null) for (var k = ownKeys(mod), i = 0; i < k.length; i++) if (k[i] !== "default") __createBinding(result, mod, k[i]);
        __setModuleDefault(result, mod);
        return result;
    };
})();
Object.defineProperty(exports, "__esModule", { value: true });
exports.useSocketClient = useSocketClient;
/**
 * What the React hooks of every namespace share: `useSocketClient` connects
 * on mount and returns `{socket, client, connected, status, error, lastGap}`
 * (a typed `useWebSocket`). The only modules that import `react` (a peer
 * dependency, 18 or 19) are this one and `react`.
 */
const react_1 = require("react");
const lib = __importStar(require("./lib.js"));
function idle() {
    return { socket: null, client: null, connected: false, status: "disconnected", error: null, lastGap: null };
}
/**
 * The connection behind every hook. A new connection is made when `enabled`,
 * `url`, a string `token` or any connection option changes, and the old one
 * is closed; a `token` function is read on every (re)connect and may change
 * identity freely. Connecting is deferred by a microtask so that React
 * StrictMode's mount, unmount, mount opens one connection, not two.
 */
function useSocketClient(open, options) {
    const [state, setState] = (0, react_1.useState)(idle);
    const latest = (0, react_1.useRef)(options);
    (0, react_1.useEffect)(() => {
        latest.current = options;
    });
    const { enabled = true, url, token, reconnection, reconnectionAttempts, reconnectionDelay } = options;
    const { reconnectionDelayMax, timeout, transports, ackTimeoutMs } = options;
    const tokenKey = typeof token === "function" ? "\u0000function" : (token ?? null);
    const transportsKey = transports?.join(",") ?? null;
    (0, react_1.useEffect)(() => {
        if (!enabled) {
            setState(idle);
            return;
        }
        let live = true;
        const { socket, client } = open({
            ...latest.current,
            // Read the latest token at each (re)connect.
            token: () => {
                const t = latest.current.token;
                return typeof t === "function" ? t() : t;
            },
            autoConnect: false,
        });
        const raw = socket;
        let everConnected = false;
        const update = (patch) => {
            if (live)
                setState((s) => ({ ...s, ...patch(s) }));
        };
        const willRetry = () => raw.active && raw.io.reconnection();
        raw.on("connect", () => {
            everConnected = true;
            update(() => ({ connected: true, status: "connected" }));
        });
        raw.on("disconnect", (reason) => {
            update((s) => ({
                connected: false,
                status: willRetry() ? "reconnecting" : "disconnected",
                error: reason === "io server disconnect" ? new Error("disconnected by the server") : s.error,
            }));
        });
        raw.on("connect_error", (err) => {
            // A contract mismatch does not heal by retrying: stop, and say so
            // with its own error class (`ContractMismatchError`).
            const error = lib.connectError(err);
            const mismatch = error instanceof lib.ContractMismatchError;
            if (mismatch)
                raw.disconnect();
            update(() => ({
                connected: false,
                status: !mismatch && willRetry() ? (everConnected ? "reconnecting" : "connecting") : "disconnected",
                error,
            }));
        });
        // Through the positions: they also tell of gaps the client finds itself.
        lib.positionsFor(raw).listen(raw, lib.RECOVERY_EVENT, (...args) => {
            const position = args[0];
            if (!position.recovered && !position.left)
                update(() => ({ lastGap: position }));
        });
        raw.io.on("reconnect_attempt", () => update(() => ({ status: everConnected ? "reconnecting" : "connecting" })));
        raw.io.on("reconnect_failed", () => update(() => ({ connected: false, status: "disconnected", error: new Error("gave up reconnecting") })));
        setState({ socket, client, connected: false, status: "connecting", error: null, lastGap: null });
        queueMicrotask(() => {
            if (live)
                raw.connect();
        });
        return () => {
            live = false;
            raw.removeAllListeners();
            raw.io.removeAllListeners("reconnect_attempt");
            raw.io.removeAllListeners("reconnect_failed");
            raw.disconnect();
        };
    }, [
        open,
        enabled,
        url,
        tokenKey,
        reconnection,
        reconnectionAttempts,
        reconnectionDelay,
        reconnectionDelayMax,
        timeout,
        transportsKey,
        ackTimeoutMs,
    ]);
    return state;
}
