// Attack 4 of the abuse measurements (a fault, not an attacker): Redis
// frozen with SIGSTOP under traffic between two nodes. Senders on node A
// send messages; a member on each node records them. Prints the ack
// latencies during the freeze and what reached each node after it, as JSON.
//
//   node bench/abuse/stall.mjs <node A url> <node B url> <redis pid> <jwt secret> [seconds=10]
import { connect, quantile, sleep, token } from "./lib.mjs";

const [urlA, urlB, redisPid, secret, seconds = "10"] = process.argv.slice(2);
const thread = `stall-${process.pid}`;
// send_message allows 20 per 10 s per user: 16 senders, one message each per 600 ms.
const senders = await Promise.all(Array.from({ length: 16 }, (_, i) => connect(urlA, token(secret, `sender-${i}`))));
const here = await connect(urlA, token(secret, "reader-a"));
const there = await connect(urlB, token(secret, "reader-b"));
for (const s of [...senders, here, there]) await s.timeout(10_000).emitWithAck("join_thread", { threadId: thread });
const got = { here: [], there: [] };
here.on("new_message", (m) => got.here.push(m.message.id));
there.on("new_message", (m) => got.there.push(m.message.id));

process.kill(Number(redisPid), "SIGSTOP");
const frozenAt = Date.now();
const latencies = [];
const sent = [];
let failed = 0;
await Promise.all(
  senders.map(async (s, i) => {
    while (Date.now() - frozenAt < Number(seconds) * 1000) {
      const t0 = performance.now();
      const ack = await s.timeout(30_000).emitWithAck("send_message", { threadId: thread, content: `m ${i}` }).catch(() => ({ success: false }));
      if (ack.success) {
        latencies.push(performance.now() - t0);
        sent.push(ack.data.id);
      } else failed++;
      await sleep(600);
    }
  }),
);
const beforeThaw = { here: got.here.length, there: got.there.length };
process.kill(Number(redisPid), "SIGCONT");
const thawedAt = Date.now();
while ((got.here.length < sent.length || got.there.length < sent.length) && Date.now() - thawedAt < 20_000) await sleep(50);
const uniqueAndSent = (ids) => new Set(ids).size === ids.length && ids.every((id) => sent.includes(id));
console.log(
  JSON.stringify({
    freeze_s: Number(seconds),
    acks: latencies.length,
    failed,
    ack_ms: { p50: +quantile(latencies, 0.5).toFixed(1), p99: +quantile(latencies, 0.99).toFixed(1), max: +quantile(latencies, 1).toFixed(1) },
    delivered_during_freeze: beforeThaw,
    delivered_after: { here: got.here.length, there: got.there.length, of: sent.length },
    all_delivered_ms_after_thaw: Date.now() - thawedAt,
    each_once: uniqueAndSent(got.here) && uniqueAndSent(got.there),
  }),
);
process.exit(0);
