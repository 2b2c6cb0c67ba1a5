// Shared by the Node suites (tests/e2e): waiting for one server event, and
// unwrapping a successful ack.
import assert from "node:assert/strict";
import type { Socket } from "socket.io-client";

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
