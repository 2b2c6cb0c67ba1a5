// The contract-version handshake with the real socket.io-client: the
// generated connect helper names the contract (chat 2.1.0), a client of
// another major version gets `CONTRACT_MISMATCH` naming both versions, and
// the generated `connectError` turns it into a `ContractMismatchError` (what
// the React hook reports, so a page can ask the user to reload).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { io, type Socket } from "socket.io-client";
import { CONTRACT, ContractMismatchError, connectChat } from "../../generated/ts/chat/chat.client";
import { connectError } from "../../generated/ts/chat/lib";
import { ChatServer, freePort, token } from "../support/chat_server";

let server: ChatServer;
const sockets: Socket[] = [];

before(async () => {
  server = await ChatServer.start(await freePort());
});

after(() => {
  for (const s of sockets) s.disconnect();
  return server?.stop();
});

function outcome(s: Socket): Promise<{ connected: true } | { connected: false; error: Error }> {
  sockets.push(s);
  return new Promise((resolve) => {
    s.once("connect", () => resolve({ connected: true }));
    s.once("connect_error", (error) => resolve({ connected: false, error }));
  });
}

test("the generated connect helper names its contract and is let in", async () => {
  assert.deepEqual(CONTRACT, { name: "chat", version: "2.1.0" });
  const s = connectChat({ url: server.url, token: token("ada"), reconnection: false });
  // A function, called before every (re)connect with the current room positions.
  const auth = await new Promise<{ token?: string; contract?: unknown; recovery?: unknown }>((resolve) =>
    (s.auth as (cb: (data: object) => void) => void)(resolve),
  );
  assert.deepEqual(auth.contract, { name: "chat", version: "2.1.0" });
  assert.deepEqual(auth.recovery, {});
  assert.deepEqual(await outcome(s), { connected: true });
});

test("another major version is refused with both versions, as a ContractMismatchError", async () => {
  const s = io(`${server.url}/chat`, {
    forceNew: true,
    reconnection: false,
    transports: ["websocket"],
    auth: { token: token("ada"), contract: { name: "chat", version: "3.1.0" } },
  });
  const result = await outcome(s);
  assert.equal(result.connected, false);
  if (result.connected) return;
  assert.match(result.error.message, /^CONTRACT_MISMATCH: .*chat 3\.1\.0.*chat 2\.1\.0/);
  const mapped = connectError(result.error);
  assert.ok(mapped instanceof ContractMismatchError);
  assert.equal(mapped.code, "CONTRACT_MISMATCH");
  // Other refusals stay what they were.
  assert.ok(!(connectError(new Error("INVALID_TOKEN")) instanceof ContractMismatchError));
});

test("a plain socket.io-client that names no version is let in", async () => {
  const s = io(`${server.url}/chat`, { forceNew: true, reconnection: false, auth: { token: token("bob") } });
  assert.deepEqual(await outcome(s), { connected: true });
});
