/**
 * What the React hooks of every namespace share: `useSocketClient` connects
 * on mount and returns `{socket, client, connected, status, error, lastGap}`
 * (a typed `useWebSocket`). The only modules that import `react` (a peer
 * dependency, 18 or 19) are this one and `react`.
 */
import { useEffect, useRef, useState } from "react";
import type { Socket } from "socket.io-client";
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

function idle<S, C>(): UseSocketResult<S, C> {
  return { socket: null, client: null, connected: false, status: "disconnected", error: null, lastGap: null };
}

/**
 * The connection behind every hook. A new connection is made when `enabled`,
 * `url`, a string `token` or any connection option changes, and the old one
 * is closed; a `token` function is read on every (re)connect and may change
 * identity freely. Connecting is deferred by a microtask so that React
 * StrictMode's mount, unmount, mount opens one connection, not two.
 */
export function useSocketClient<S, C>(
  open: (options: lib.ConnectOptions) => { socket: S; client: C },
  options: UseSocketOptions,
): UseSocketResult<S, C> {
  const [state, setState] = useState<UseSocketResult<S, C>>(idle);
  const latest = useRef(options);
  useEffect(() => {
    latest.current = options;
  });
  const { enabled = true, url, token, reconnection, reconnectionAttempts, reconnectionDelay } = options;
  const { reconnectionDelayMax, timeout, transports, ackTimeoutMs } = options;
  const tokenKey = typeof token === "function" ? "\u0000function" : (token ?? null);
  const transportsKey = transports?.join(",") ?? null;

  useEffect(() => {
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
    const raw = socket as unknown as Socket;
    let everConnected = false;
    const update = (patch: (s: UseSocketResult<S, C>) => Partial<UseSocketResult<S, C>>) => {
      if (live) setState((s) => ({ ...s, ...patch(s) }));
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
      if (mismatch) raw.disconnect();
      update(() => ({
        connected: false,
        status: !mismatch && willRetry() ? (everConnected ? "reconnecting" : "connecting") : "disconnected",
        error,
      }));
    });
    // Through the positions: they also tell of gaps the client finds itself.
    lib.positionsFor(raw).listen(raw, lib.RECOVERY_EVENT, (...args: unknown[]) => {
      const position = args[0] as lib.RoomPosition;
      if (!position.recovered && !position.left) update(() => ({ lastGap: position }));
    });
    raw.io.on("reconnect_attempt", () => update(() => ({ status: everConnected ? "reconnecting" : "connecting" })));
    raw.io.on("reconnect_failed", () =>
      update(() => ({ connected: false, status: "disconnected", error: new Error("gave up reconnecting") })),
    );
    setState({ socket, client, connected: false, status: "connecting", error: null, lastGap: null });
    queueMicrotask(() => {
      if (live) raw.connect();
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
