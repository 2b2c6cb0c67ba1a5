// Attack 1 of the abuse measurements: anonymous sockets whose handshake
// names a contract version of about 1 MB. Prints the server's RSS before
// and after, and the size of its metrics, as JSON.
//
//   node bench/abuse/versions.mjs <server url> <server pid> <metrics url> [sockets=300]
import { io } from "socket.io-client";
import { rssMb, sleep } from "./lib.mjs";

const [url, pid, metricsUrl, count = "300"] = process.argv.slice(2);
const rss = () => rssMb(pid);

const before = rss();
const version = `2.0.0-${"x".repeat(1_000_000)}`;
const outcomes = { connected: 0, refused: 0, messages: new Set() };
const sockets = [];
for (let i = 0; i < Number(count); i++) {
  const s = io(`${url}/chat`, {
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    auth: { contract: { name: "chat", version } },
  });
  sockets.push(s);
  await new Promise((resolve) => {
    s.once("connect", () => {
      outcomes.connected++;
      resolve();
    });
    s.once("connect_error", (e) => {
      outcomes.refused++;
      outcomes.messages.add(e.message.slice(0, 120));
      resolve();
    });
  });
}
await sleep(1000);
const during = rss();
const metrics = await (await fetch(metricsUrl)).text();
for (const s of sockets) s.disconnect();
await sleep(2000);
const after = rss();
const metricsAfter = await (await fetch(metricsUrl)).text();
console.log(
  JSON.stringify({
    sockets: Number(count),
    connected: outcomes.connected,
    refused: outcomes.refused,
    refusal: [...outcomes.messages],
    rss_mb: { before: +before.toFixed(1), with_sockets: +during.toFixed(1), after_close: +after.toFixed(1) },
    metrics_bytes: { with_sockets: metrics.length, after_close: metricsAfter.length },
  }),
);
process.exit(0);
