// The generated TypeScript client (generated/ts/chat/chat.client.ts, lib.ts)
// at run time, in Node, against the example server: acked calls resolve with
// the ack's data or reject with typed errors, the token function is called on
// every (re)connect, `on` returns a working unsubscribe. Needs no browser
// (scripts/test.sh runs it even with EVCONTRACT_SKIP_BROWSER=1).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import {
  AckError,
  AckTimeoutError,
  ChatClient,
  connectChat,
  type NewMessage,
} from "../../generated/ts/chat/chat.client";
import { namespaceUrl } from "../../generated/ts/chat/lib";
import { ChatServer, freePort, token } from "../support/chat_server";
import { FrameProxy } from "../support/frame_proxy";

const WAIT_MS = 5000;

let server: ChatServer;
let base = "";
const clients: ChatClient[] = [];

/** Resolves when `check` holds, polling; rejects after `ms`. */
async function until(what: string, check: () => boolean, ms = WAIT_MS): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function client(options: Parameters<typeof ChatClient.connect>[0]): ChatClient {
  const c = ChatClient.connect({ url: base, transports: ["websocket"], ...options });
  clients.push(c);
  return c;
}

async function connected(c: ChatClient): Promise<ChatClient> {
  await until("connect", () => c.connected);
  return c;
}

before(async () => {
  server = await ChatServer.start(await freePort());
  base = server.url;
});

after(() => {
  for (const c of clients) c.disconnect();
  return server?.stop();
});

const thread = (name: string) => `${name}-${process.pid}`;

test("namespaceUrl appends the namespace unless the URL has it", () => {
  assert.equal(namespaceUrl(undefined, "/chat"), "/chat");
  assert.equal(namespaceUrl("", "/chat"), "/chat");
  assert.equal(namespaceUrl("http://h:1", "/chat"), "http://h:1/chat");
  assert.equal(namespaceUrl("http://h:1/", "/chat"), "http://h:1/chat");
  assert.equal(namespaceUrl("wss://h/chat", "/chat"), "wss://h/chat");
  assert.equal(namespaceUrl("http://h:1", "/"), "http://h:1");
});

test("acked calls resolve with the typed ack data", async () => {
  const alice = await connected(client({ token: token("alice") }));
  const t = thread("acks");
  const joined = await alice.joinThread({ threadId: t });
  assert.deepEqual(joined, { threadId: t, members: ["alice"] });
  const msg = await alice.sendMessage({ threadId: t, content: "hello" });
  assert.equal(msg.content, "hello");
  assert.equal(msg.userId, "alice");
  assert.equal(msg.threadId, t);
  assert.match(msg.id, /^[0-9a-f-]{36}$/);
});

test("failures reject with AckError carrying code, message and details", async () => {
  const alice = await connected(client({ token: token("alice") }));
  // Not a member of the thread.
  const denied = await alice.sendMessage({ threadId: thread("elsewhere"), content: "x" }).then(
    () => assert.fail("resolved"),
    (e: unknown) => e,
  );
  assert.ok(denied instanceof AckError, String(denied));
  assert.equal(denied.code, "ACCESS_DENIED");
  assert.equal(denied.event, "send_message");
  assert.match(denied.message, /join thread/);
  // Schema violation (content has minLength 1): details say where.
  const t = thread("invalid");
  await alice.joinThread({ threadId: t });
  const invalid = await alice.sendMessage({ threadId: t, content: "" }).then(
    () => assert.fail("resolved"),
    (e: unknown) => e,
  );
  assert.ok(invalid instanceof AckError, String(invalid));
  assert.equal(invalid.code, "INVALID_PAYLOAD");
  assert.equal(typeof (invalid.details as { path?: unknown }).path, "string");
  // Anonymous connection: the event needs auth.
  const anon = await connected(client({}));
  await assert.rejects(anon.joinThread({ threadId: t }), (e: unknown) => e instanceof AckError && e.code === "AUTH_REQUIRED");
});

test("no ack in time rejects with AckTimeoutError, and the event is dropped", async () => {
  // Never connected: a plain call waits in socket.io's buffer until the
  // timeout (get_thread opts out of idempotency: it is never retried).
  const c = client({ token: token("alice"), autoConnect: false, ackTimeoutMs: 150 });
  const started = Date.now();
  const e = await c.getThread({ threadId: thread("late") }).then(
    () => assert.fail("resolved"),
    (err: unknown) => err,
  );
  assert.ok(e instanceof AckTimeoutError, String(e));
  assert.equal(e.timeoutMs, 150);
  assert.equal(e.event, "get_thread");
  assert.ok(Date.now() - started >= 140);
  assert.equal(c.socket.sendBuffer.length, 0, "the timed-out event must not be sent later");
  // A per-call timeout overrides the client's.
  await assert.rejects(
    c.getThread({ threadId: "t" }, { timeoutMs: 50 }),
    (err: unknown) => err instanceof AckTimeoutError && err.timeoutMs === 50,
  );
  // An idempotent call waits for the connection for retryForMs, and is
  // not left in the buffer either.
  const waited = Date.now();
  await assert.rejects(
    c.joinThread({ threadId: thread("late") }, { retryForMs: 200 }),
    (err: unknown) => err instanceof AckTimeoutError && err.timeoutMs === 200,
  );
  assert.ok(Date.now() - waited >= 190);
  assert.equal(c.socket.sendBuffer.length, 0);
});

test("a token function is called again on every reconnect", async () => {
  let calls = 0;
  const c = await connected(
    client({
      token: async () => {
        calls += 1;
        return token("dana");
      },
      reconnectionDelay: 50,
      reconnectionDelayMax: 100,
    }),
  );
  assert.equal(calls, 1);
  const firstId = c.socket.id;
  // Drop the transport: the manager reconnects on its own.
  c.socket.io.engine.close();
  await until("reconnect", () => c.connected && c.socket.id !== firstId);
  assert.equal(calls, 2);
  // The fresh connection is authenticated (join needs auth).
  assert.deepEqual((await c.joinThread({ threadId: thread("re") })).members, ["dana"]);
});

test("on() delivers typed server events and returns its unsubscribe", async () => {
  const t = thread("events");
  const alice = await connected(client({ token: token("alice") }));
  const bob = await connected(client({ token: token("bob") }));
  await alice.joinThread({ threadId: t });
  await bob.joinThread({ threadId: t });
  const seen: NewMessage[] = [];
  const stop = bob.on("new_message", (e) => seen.push(e));
  await alice.sendMessage({ threadId: t, content: "one" });
  await until("new_message", () => seen.length === 1);
  assert.equal(seen[0]?.message.content, "one");
  stop();
  await alice.sendMessage({ threadId: t, content: "two" });
  // The room's own copy proves delivery happened; bob's stopped handler saw nothing.
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(seen.length, 1);
});

test("connectChat returns the typed socket on /chat, also from a URL that names it", async () => {
  const socket = connectChat({ url: `${base}/chat`, token: token("erin"), transports: ["websocket"], reconnection: false });
  try {
    await until("connect", () => socket.connected);
    assert.equal((socket as unknown as { nsp: string }).nsp, "/chat");
    const res = await new Promise<unknown>((resolve) =>
      socket.emit("join_thread", { threadId: thread("raw") }, (r) => resolve(r)),
    );
    assert.deepEqual(res, { success: true, data: { threadId: thread("raw"), members: ["erin"] } });
  } finally {
    socket.disconnect();
  }
});

test('transports: ["websocket"] opens on WebSocket, with no long-polling at all', async () => {
  /** The transport the connection opened on, and whether it was upgraded later. */
  const openedOn = async (c: ChatClient): Promise<{ first: string; upgraded: boolean }> => {
    const first = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no connection within ${WAIT_MS} ms`)), WAIT_MS);
      // The manager's `open` comes once the engine.io handshake is done,
      // before any upgrade.
      c.socket.io.once("open", () => {
        clearTimeout(timer);
        resolve(c.socket.io.engine.transport.name);
      });
    });
    let upgraded = false;
    c.socket.io.engine.once("upgrade", () => {
      upgraded = true;
    });
    await until("connect", () => c.connected);
    return { first, upgraded };
  };
  // The default: the handshake goes over long-polling first (so the check
  // below can tell the difference).
  const byDefault = ChatClient.connect({ url: base, token: token("gina"), reconnection: false });
  clients.push(byDefault);
  assert.equal((await openedOn(byDefault)).first, "polling");

  const wsOnly = ChatClient.connect({ url: base, token: token("gina"), transports: ["websocket"], reconnection: false });
  clients.push(wsOnly);
  const opened = await openedOn(wsOnly);
  assert.equal(opened.first, "websocket");
  assert.equal(opened.upgraded, false);
  assert.equal(wsOnly.socket.io.engine.transport.name, "websocket");
  // The connection is usable: an acked call round-trips.
  const t = thread("ws-only");
  assert.deepEqual(await wsOnly.joinThread({ threadId: t }), { threadId: t, members: ["gina"] });
});

test("after a lost connection the client gets the messages it missed, in order, once, and its position says so", async () => {
  const t = thread("resume");
  // Reconnects after 800 ms: time to send while it is away.
  const reader = await connected(client({ token: token("resume-reader"), reconnectionDelay: 800, reconnectionDelayMax: 800 }));
  const writer = await connected(client({ token: token("resume-writer") }));
  const got: string[] = [];
  reader.on("new_message", (m: NewMessage) => got.push(m.message.content));
  const positions: import("../../generated/ts/chat/chat.client").RoomPosition[] = [];
  reader.onRecovery((p) => positions.push(p));
  const joined: string[] = [];
  reader.on("joined", (j) => joined.push(j.userId));
  await reader.joinThread({ threadId: t });
  await writer.joinThread({ threadId: t });
  // The writer's `joined` is an event of the room too: have it before the loss.
  await until("the join's position and the writer's joined", () => positions.length === 1 && joined.includes("resume-writer"));
  assert.equal(positions[0].recovered, true);

  // The transport goes away without a Socket.IO goodbye.
  reader.socket.io.engine.close();
  await until("the loss", () => !reader.connected);
  for (let i = 0; i < 15; i++) await writer.sendMessage({ threadId: t, content: `away ${i}` });
  await until("the replay", () => got.length >= 15 && positions.length === 2, 10_000);
  assert.deepEqual(got, Array.from({ length: 15 }, (_, i) => `away ${i}`));
  assert.equal(positions[1].recovered, true);
  assert.equal(positions[1].replayed, 15);
  // Live again, nothing twice.
  await writer.sendMessage({ threadId: t, content: "live" });
  await until("the live message", () => got.length === 16);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(got.length, 16);
});

test("an event of a room lost on the way is asked for after gapWaitMs and delivered in its place", async () => {
  const t = thread("fill");
  const proxy = await FrameProxy.start(Number(new URL(server.url).port));
  try {
    const reader = await connected(client({ url: `http://127.0.0.1:${proxy.port}`, token: token("fill-reader"), gapWaitMs: 300 }));
    const writer = await connected(client({ token: token("fill-writer") }));
    const got: string[] = [];
    reader.on("new_message", (m: NewMessage) => got.push(m.message.content));
    const positions: import("../../generated/ts/chat/chat.client").RoomPosition[] = [];
    reader.onRecovery((p) => positions.push(p));
    const joined: string[] = [];
    reader.on("joined", (j) => joined.push(j.userId));
    await reader.joinThread({ threadId: t });
    await writer.joinThread({ threadId: t });
    await until("the writer's joined", () => joined.includes("fill-writer"));

    proxy.dropOnce("lost on the way");
    for (const content of ["before", "lost on the way", "after 1", "after 2"]) {
      await writer.sendMessage({ threadId: t, content });
    }
    await until("every message", () => got.length >= 4, 5000);
    assert.equal(proxy.dropped, 1, "the frame was dropped");
    assert.deepEqual(got, ["before", "lost on the way", "after 1", "after 2"]);
    assert.deepEqual(
      positions.filter((p) => !p.recovered),
      [],
      "nothing is gone",
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(got.length, 4, "nothing twice");
    // Asking for whatever is past the last event: nothing is missing.
    const synced = await reader.syncRooms();
    assert.deepEqual(
      synced.map((p) => [p.room, p.recovered, p.replayed]),
      [[`thread:${t}`, true, 0]],
    );
    assert.equal(got.length, 4);
  } finally {
    await proxy.close();
  }
});

test("an idempotent call retried after its answer was lost runs once and gets the first answer", async () => {
  const t = thread("retry");
  const proxy = await FrameProxy.start(Number(new URL(server.url).port));
  try {
    const sender = await connected(
      client({ url: `http://127.0.0.1:${proxy.port}`, token: token("retry-sender"), reconnectionDelay: 100, reconnectionDelayMax: 200 }),
    );
    const witness = await connected(client({ token: token("retry-witness") }));
    const seen: NewMessage[] = [];
    witness.on("new_message", (m: NewMessage) => seen.push(m));
    await sender.joinThread({ threadId: t });
    await witness.joinThread({ threadId: t });

    proxy.mute();
    const sent = sender.sendMessage({ threadId: t, content: "once" });
    await until("the handler ran", () => seen.length === 1);
    // The answer was dropped; the connection goes without a goodbye.
    proxy.cut();
    await new Promise((r) => setTimeout(r, 150));
    proxy.up();
    const message = await sent;
    assert.equal(message.id, seen[0].message.id, "the first answer");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(seen.length, 1, "the handler ran once");
  } finally {
    await proxy.close();
  }
});
