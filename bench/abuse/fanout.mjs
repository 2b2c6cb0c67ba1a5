// Attacks 2 of the abuse measurements: one account against the server's
// room work. Well-behaved clients in a thread of their own send messages
// throughout; their ack latency at rest, during a room hog (as many
// sockets of one user as it may open, each joining the same 100 threads)
// and during join/leave churn (4 connections of one user into a room of
// 300 members) is printed as JSON, with what each attack got through and
// the `joined`/`left` frames the members received.
//
//   node bench/abuse/fanout.mjs <server url> <server pid> <jwt secret>
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { connect, rssMb, sleep, token } from "./lib.mjs";

const [url, pid, secret] = process.argv.slice(2);
const PHASE_MS = 15_000;
const result = {};

/** The well-behaved clients for `ms`, in a process of their own. */
function calm(thread, ms) {
  const script = fileURLToPath(new URL("./calm.mjs", import.meta.url));
  return new Promise((resolve, reject) =>
    execFile("node", [script, url, secret, thread, String(ms)], (err, stdout) => (err ? reject(err) : resolve(JSON.parse(stdout)))),
  );
}

async function measure(name, attack) {
  const calmed = calm(`calm-${name}`, PHASE_MS);
  await sleep(500);
  const rssBefore = rssMb(pid);
  const started = Date.now();
  const got = await attack(() => Date.now() - started < PHASE_MS - 1000);
  result[name] = { ...(await calmed), ...got, rss_mb: { before: +rssBefore.toFixed(1), after: +rssMb(pid).toFixed(1) } };
}

await measure("rest", async () => ({}));

await measure("hog", async () => {
  const sockets = [];
  let refused = 0;
  for (let i = 0; i < 570; i++) {
    try {
      sockets.push(await connect(url, token(secret, "hog")));
    } catch {
      refused++;
    }
  }
  const answers = {};
  await Promise.all(
    sockets.flatMap((s) =>
      Array.from({ length: 100 }, async (_, r) => {
        const ack = await s.timeout(30_000).emitWithAck("join_thread", { threadId: `hog-${r}` }).catch(() => ({ code: "NO_ACK" }));
        const key = ack.success ? "ok" : ack.code;
        answers[key] = (answers[key] ?? 0) + 1;
      }),
    ),
  );
  for (const s of sockets) s.disconnect();
  return { sockets_accepted: sockets.length, sockets_refused: refused, join_answers: answers };
});

await measure("churn", async (running) => {
  const members = [];
  for (let i = 0; i < 300; i++) members.push(await connect(url, token(secret, `member-${i}`)));
  await Promise.all(members.map((s) => s.timeout(30_000).emitWithAck("join_thread", { threadId: "busy" })));
  await sleep(1500);
  let frames = 0;
  for (const s of members) for (const ev of ["joined", "left"]) s.on(ev, () => frames++);
  const churners = await Promise.all(Array.from({ length: 4 }, () => connect(url, token(secret, "churner"))));
  const answers = {};
  let actions = 0;
  await Promise.all(
    churners.map(async (s) => {
      while (running()) {
        for (const ev of ["join_thread", "leave_thread"]) {
          const ack = await s.timeout(10_000).emitWithAck(ev, { threadId: "busy" }).catch(() => ({ code: "NO_ACK" }));
          actions++;
          const key = ack.success ? "ok" : ack.code;
          answers[key] = (answers[key] ?? 0) + 1;
        }
      }
    }),
  );
  await sleep(1500);
  for (const s of [...members, ...churners]) s.disconnect();
  return { churn_actions: actions, churn_answers: answers, member_frames: frames, frames_per_action: +(frames / actions).toFixed(2) };
});

console.log(JSON.stringify(result));
process.exit(0);
