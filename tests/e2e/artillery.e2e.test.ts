// Artillery 2.x (npm `artillery`, its built-in socketio engine) against
// chat-server: the engine opens the root namespace `/` before `/chat`,
// which the gateway accepts although the contract has no `/`; 20 virtual
// users with their own tokens join a thread and send acked messages, and
// the run must end with no error and every ack a success.
// `ARTILLERY_BIN` is the artillery command (the README's test command
// installs it in target/artillery).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ChatServer, ROOT, freePort, token } from "../support/chat_server";

let server: ChatServer;

before(async () => {
  server = await ChatServer.start(await freePort());
});

after(() => server?.stop());

test("Artillery's socketio engine opens `/`, then 20 users with their own tokens get every ack on /chat", async () => {
  const artillery = process.env.ARTILLERY_BIN;
  assert.ok(artillery, "ARTILLERY_BIN is not set: scripts/test.sh installs artillery 2 in target/artillery and sets it");
  const dir = mkdtempSync(path.join(os.tmpdir(), "evcontract-artillery-"));
  copyFileSync(path.join(ROOT, "tests/artillery/chat.yml"), path.join(dir, "chat.yml"));
  const users = Array.from({ length: 20 }, (_, i) => `artillery-${i}`);
  writeFileSync(path.join(dir, "tokens.csv"), users.map((u) => `${u},${token(u)}`).join("\n") + "\n");
  const report = path.join(dir, "report.json");
  await new Promise<void>((resolve, reject) =>
    execFile(
      artillery,
      ["run", "--quiet", "--target", server.url, "--output", report, path.join(dir, "chat.yml")],
      { cwd: dir, timeout: 120_000, env: { ...process.env, ARTILLERY_DISABLE_TELEMETRY: "true" } },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stdout}\n${stderr}\n${server.log}`)) : resolve()),
    ),
  );
  const counters: Record<string, number> = JSON.parse(readFileSync(report, "utf8")).aggregate.counters;
  const errors = Object.entries(counters).filter(([k]) => k.startsWith("errors."));
  assert.deepEqual(errors, [], `errors: ${JSON.stringify(counters)}`);
  assert.equal(counters["vusers.created"], 20, JSON.stringify(counters));
  assert.equal(counters["vusers.failed"] ?? 0, 0, JSON.stringify(counters));
  assert.equal(counters["vusers.completed"], 20, JSON.stringify(counters));
  // Three acked emits per user, each matched as a success.
  assert.equal(counters["socketio.emit"], 60, JSON.stringify(counters));
});
