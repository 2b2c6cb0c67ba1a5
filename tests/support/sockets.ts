// Shared by the Node suites (tests/e2e): opening typed sockets, waiting for
// one server event, and unwrapping a successful ack.
import assert from "node:assert/strict";
import { io, type Socket } from "socket.io-client";

/** The next `event` on `s`, or a rejection after `timeoutMs`. */
export function nextEvent<T>(s: Socket, event: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      s.off(event, handler);
      reject(new Error(`no ${event} within ${timeoutMs} ms`));
    }, timeoutMs);
    const handler = (payload: T) => {
      clearTimeout(timer);
      resolve(payload);
    };
    s.once(event, handler);
  });
}

/** The data of an ack that must be a success (the test fails otherwise). */
export function assertSuccess<T>(res: { success: true; data: T } | { success: false }): T {
  if (!res.success) throw new assert.AssertionError({ message: `expected success, got ${JSON.stringify(res)}` });
  return res.data;
}

/**
 * A socket to namespace `ns` of the server at `base`, WebSocket only, with
 * `tok` as handshake token; `reconnect` turns socket.io-client's reconnection
 * on (fast delays), off by default. Every socket is recorded in `opened`.
 */
export function openSocket<S extends Socket>(opened: Socket[], base: string, ns: string, tok?: string, reconnect = false): S {
  const s = io(`${base}${ns}`, {
    auth: tok === undefined ? {} : { token: tok },
    transports: ["websocket"],
    reconnection: reconnect,
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
    forceNew: true,
  }) as S;
  opened.push(s);
  return s;
}

/** Resolves with `s` once it is connected; rejects with its `connect_error`. */
export function connected<S extends Socket>(s: S): Promise<S> {
  return new Promise((resolve, reject) => {
    s.once("connect", () => resolve(s));
    s.once("connect_error", (e) => reject(e));
  });
}
