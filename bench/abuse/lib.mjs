// What the abuse measurements share: HS256 tokens signed here, RSS of a
// process, percentiles, and a well-behaved client whose ack latency is the
// figure each attack is judged by.
import crypto from "node:crypto";
import fs from "node:fs";
import { io } from "socket.io-client";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** An HS256 token for `user`, valid for an hour. */
export function token(secret, user) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub: user, iat: now, exp: now + 3600 })}`;
  return `${input}.${crypto.createHmac("sha256", secret).update(input).digest("base64url")}`;
}

/** Resident memory of process `pid`, in MB. */
export const rssMb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))[1]) / 1024;

/** The `p` quantile (0..1) of `values`. */
export function quantile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p) - 1))];
}

/** A /chat socket, connected (rejects with the refusal). */
export function connect(url, tok, extra = {}) {
  const s = io(`${url}/chat`, { transports: ["websocket"], reconnection: false, forceNew: true, auth: { token: tok }, ...extra });
  return new Promise((resolve, reject) => {
    s.once("connect", () => resolve(s));
    s.once("connect_error", (e) => {
      s.disconnect();
      reject(e);
    });
  });
}

/**
 * `users` well-behaved clients in their own thread, each sending a message
 * every 500 ms (within send_message's 20 per 10 s) until `stop()`; returns
 * their ack latencies in ms and the count of acks that failed.
 */
export async function wellBehaved(url, secret, users, thread) {
  const sockets = await Promise.all(Array.from({ length: users }, (_, i) => connect(url, token(secret, `calm-${i}`))));
  for (const s of sockets) await s.timeout(10_000).emitWithAck("join_thread", { threadId: thread });
  const latencies = [];
  let failed = 0;
  let running = true;
  const loops = sockets.map(async (s, i) => {
    while (running) {
      const t0 = performance.now();
      try {
        const ack = await s.timeout(10_000).emitWithAck("send_message", { threadId: thread, content: `calm ${i}` });
        if (ack.success) latencies.push(performance.now() - t0);
        else failed++;
      } catch {
        failed++;
      }
      await sleep(500);
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      for (const s of sockets) s.disconnect();
      return { acks: latencies.length, failed, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) };
    },
  };
}
