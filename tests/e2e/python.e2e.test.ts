// python-socketio against chat-server with room history on: a plain client
// that knows nothing of evcontract (one-argument handlers, which would fail
// on an extra offset argument) works as before, over WebSocket and
// long-polling. `PYTHON_BIN` is a Python with python-socketio 5 (the README's
// test command makes one in target/pyvenv).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { ChatServer, ROOT, freePort, token } from "../support/chat_server";

let server: ChatServer;

before(async () => {
  server = await ChatServer.start(await freePort());
});

after(() => server?.stop());

test("python-socketio joins, receives and gets acks unchanged", async () => {
  const python = process.env.PYTHON_BIN;
  assert.ok(python, "PYTHON_BIN is not set: scripts/test.sh makes a venv with python-socketio and sets it");
  const script = path.join(ROOT, "tests/python/plain_client.py");
  const out = await new Promise<string>((resolve, reject) =>
    execFile(python, [script, server.url, token("py-reader"), token("py-writer")], { timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stdout}\n${stderr}\n${server.log}`)) : resolve(stdout),
    ),
  );
  assert.match(out, /3 messages in order/);
});
