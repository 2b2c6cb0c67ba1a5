// End-to-end: the example server binary (Rust, socketioxide, generated glue)
// driven by the real socket.io-client 4.x, typed with the generated typings.
// Every acceptance scenario of the server issue is here.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Socket } from "socket.io-client";
import { chat, health } from "../../generated/ts/chat/index";
import { ChatServer, freePort, token } from "../support/chat_server";
import { assertSuccess, connected, nextEvent, openSocket } from "../support/sockets";

const HEALTH_INTERVAL_MS = 300;

let server: ChatServer;
let url: string;
const sockets: Socket[] = [];

const open = <S extends Socket>(ns: string, tok?: string): S => openSocket<S>(sockets, url, ns, tok);

const connectChat = (tok?: string) => connected(open<chat.ChatSocket>(chat.NAMESPACE, tok));
const connectHealth = (tok?: string) => connected(open<health.HealthSocket>(health.NAMESPACE, tok));

function connectError(ns: string, tok?: string): Promise<string> {
  const s = open(ns, tok);
  return new Promise((resolve, reject) => {
    s.once("connect", () => reject(new Error("connected, expected a refusal")));
    s.once("connect_error", (e) => resolve(e.message));
  });
}

/** The next `event` on `s` (any server event of the namespace). */
const next = <T>(s: Socket, event: string, timeoutMs = 2000) => nextEvent<T>(s, event, timeoutMs);

/** Collects every `event` on `s` for `ms` milliseconds. */
async function collect<T>(s: Socket, event: string, ms: number): Promise<T[]> {
  const seen: T[] = [];
  const handler = (payload: T) => seen.push(payload);
  s.on(event, handler);
  await new Promise((r) => setTimeout(r, ms));
  s.off(event, handler);
  return seen;
}

let threadCounter = 0;
const newThread = () => `thread-${process.pid}-${++threadCounter}`;

function assertFailure<T>(res: chat.AckResponse<T> | health.AckResponse<T>, code: string): { message: string; details?: unknown } {
  assert.equal(res.success, false, `expected ${code}, got ${JSON.stringify(res)}`);
  if (res.success) throw new Error("unreachable");
  assert.equal(res.code, code, JSON.stringify(res));
  return res;
}

before(async () => {
  server = await ChatServer.start(await freePort(), { HEALTH_INTERVAL_MS: String(HEALTH_INTERVAL_MS) });
  url = server.url;
});

after(() => {
  for (const s of sockets) s.disconnect();
  return server?.stop();
});

describe("connection and auth", () => {
  test("anonymous connections are allowed on /chat and /health", async () => {
    const c = await connectChat();
    assert.ok(c.connected);
    const h = await connectHealth();
    assert.ok(h.connected);
  });

  test("a token that fails verification is refused on every namespace", async () => {
    assert.equal(await connectError(chat.NAMESPACE, "not-a-jwt"), "INVALID_TOKEN");
    assert.equal(await connectError(health.NAMESPACE, "not-a-jwt"), "INVALID_TOKEN");
    // Signed with another secret.
    const forged =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJtYWxsb3J5IiwiZXhwIjo0MTAyNDQ0ODAwfQ.3sL5eXo1f2Gk3cE4eZ4Q9u1bq8Gm8wq5a2m5b6c7d8e";
    assert.equal(await connectError(chat.NAMESPACE, forged), "INVALID_TOKEN");
  });

  test("every /chat event needs auth", async () => {
    const anon = await connectChat();
    assertFailure(await anon.emitWithAck("join_thread", { threadId: "t" }), "AUTH_REQUIRED");
    assertFailure(await anon.emitWithAck("send_message", { threadId: "t", content: "x" }), "AUTH_REQUIRED");
    const err = next<chat.ErrorEvent>(anon, "error");
    anon.emit("typing", { threadId: "t", isTyping: true });
    const e = await err;
    assert.equal(e.event, "typing");
    assert.equal(e.code, "AUTH_REQUIRED");
  });

  test("events not in the contract get UNKNOWN_EVENT", async () => {
    const c = await connectChat(token("uma"));
    const raw = c as unknown as Socket;
    const res = (await raw.emitWithAck("no_such_event", {})) as chat.AckResponse<unknown>;
    assertFailure(res, "UNKNOWN_EVENT");
  });
});

describe("/chat threads", () => {
  test("join_thread joins the room, emits joined to everyone in it, acks sorted members", async () => {
    const thread = newThread();
    const bob = await connectChat(token("bob"));
    const alice = await connectChat(token("alice"));
    const outsider = await connectChat(token("olga"));
    const outsiderJoined = collect(outsider, "joined", 600);

    const bobSeesBob = next<chat.Joined>(bob, "joined");
    const ackBob = assertSuccess(await bob.emitWithAck("join_thread", { threadId: thread }));
    assert.deepEqual(ackBob, { threadId: thread, members: ["bob"] });
    assert.deepEqual(await bobSeesBob, { threadId: thread, userId: "bob" });

    const bobSeesAlice = next<chat.Joined>(bob, "joined");
    const aliceSeesAlice = next<chat.Joined>(alice, "joined");
    const ackAlice = assertSuccess(await alice.emitWithAck("join_thread", { threadId: thread }));
    assert.deepEqual(ackAlice.members, ["alice", "bob"]);
    assert.deepEqual(await bobSeesAlice, { threadId: thread, userId: "alice" });
    assert.deepEqual(await aliceSeesAlice, { threadId: thread, userId: "alice" });
    assert.deepEqual(await outsiderJoined, [], "a client outside the room receives nothing");
  });

  test("send_message: members get new_message (sender too), outsiders nothing, non-members ACCESS_DENIED", async () => {
    const thread = newThread();
    const alice = await connectChat(token("alice"));
    const bob = await connectChat(token("bob"));
    const eve = await connectChat(token("eve"));
    assertSuccess(await alice.emitWithAck("join_thread", { threadId: thread }));
    assertSuccess(await bob.emitWithAck("join_thread", { threadId: thread }));

    const denied = assertFailure(await eve.emitWithAck("send_message", { threadId: thread, content: "let me in" }), "ACCESS_DENIED");
    assert.match(denied.message, /join/);

    const eveSees = collect<chat.NewMessage>(eve, "new_message", 600);
    const aliceSees = next<chat.NewMessage>(alice, "new_message");
    const bobSees = next<chat.NewMessage>(bob, "new_message");
    const msg = assertSuccess(await alice.emitWithAck("send_message", { threadId: thread, content: "hello bob" }));
    assert.equal(msg.content, "hello bob");
    assert.equal(msg.userId, "alice");
    assert.equal(msg.threadId, thread);
    assert.match(msg.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.ok(Math.abs(Date.parse(msg.createdAt) - Date.now()) < 10_000, msg.createdAt);
    assert.deepEqual(await aliceSees, { threadId: thread, message: msg });
    assert.deepEqual(await bobSees, { threadId: thread, message: msg });
    assert.deepEqual(await eveSees, []);
  });

  test("bad payloads get INVALID_PAYLOAD with the path, and the socket keeps working", async () => {
    const thread = newThread();
    const carl = await connectChat(token("carl"));
    assertSuccess(await carl.emitWithAck("join_thread", { threadId: thread }));
    const tooLong = assertFailure(await carl.emitWithAck("send_message", { threadId: thread, content: "x".repeat(2001) }), "INVALID_PAYLOAD");
    assert.deepEqual((tooLong.details as { path: string }).path, "/content");
    const empty = assertFailure(await carl.emitWithAck("send_message", { threadId: thread, content: "" }), "INVALID_PAYLOAD");
    assert.equal((empty.details as { path: string }).path, "/content");
    // Wrong types and missing fields, sent past the compile-time checks.
    const raw = carl as unknown as Socket;
    const wrongType = (await raw.emitWithAck("send_message", { threadId: thread, content: 42 })) as chat.AckResponse<chat.Message>;
    assert.equal((assertFailure(wrongType, "INVALID_PAYLOAD").details as { path: string }).path, "/content");
    const missing = (await raw.emitWithAck("send_message", { threadId: thread })) as chat.AckResponse<chat.Message>;
    assertFailure(missing, "INVALID_PAYLOAD");
    const notObject = (await raw.emitWithAck("send_message", "hello")) as chat.AckResponse<chat.Message>;
    assertFailure(notObject, "INVALID_PAYLOAD");
    // Exactly 2000 characters is fine, and the same socket still works.
    assert.ok(carl.connected);
    const ok = assertSuccess(await carl.emitWithAck("send_message", { threadId: thread, content: "y".repeat(2000) }));
    assert.equal(ok.content.length, 2000);
  });

  test("the 21st message within 10 s is RATE_LIMITED with retryAfterMs", async () => {
    const thread = newThread();
    const dan = await connectChat(token("dan"));
    assertSuccess(await dan.emitWithAck("join_thread", { threadId: thread }));
    for (let i = 1; i <= 20; i++) {
      assertSuccess(await dan.emitWithAck("send_message", { threadId: thread, content: `m${i}` }));
    }
    const limited = assertFailure(await dan.emitWithAck("send_message", { threadId: thread, content: "m21" }), "RATE_LIMITED");
    const retry = (limited.details as { retryAfterMs: number }).retryAfterMs;
    assert.ok(retry > 0 && retry <= 10_000, `retryAfterMs ${retry}`);
    // Other events are limited separately.
    assertSuccess(await dan.emitWithAck("leave_thread", { threadId: thread }));
  });

  test("typing and mark_read go to the rest of the room, not back to the sender; non-members get the error event", async () => {
    const thread = newThread();
    const ann = await connectChat(token("ann"));
    const ben = await connectChat(token("ben"));
    const out = await connectChat(token("out"));
    assertSuccess(await ann.emitWithAck("join_thread", { threadId: thread }));
    assertSuccess(await ben.emitWithAck("join_thread", { threadId: thread }));

    const annTyping = collect(ann, "typing_indicator", 600);
    const outTyping = collect(out, "typing_indicator", 600);
    const benTyping = next<chat.TypingIndicator>(ben, "typing_indicator");
    ann.emit("typing", { threadId: thread, isTyping: true });
    assert.deepEqual(await benTyping, { threadId: thread, userId: "ann", isTyping: true });

    const annRead = collect(ann, "message_read", 600);
    const benRead = next<chat.MessageRead>(ben, "message_read");
    ann.emit("mark_read", { threadId: thread, messageIds: ["m1", "m2"] });
    assert.deepEqual(await benRead, { threadId: thread, userId: "ann", messageIds: ["m1", "m2"] });
    assert.deepEqual(await annTyping, []);
    assert.deepEqual(await annRead, []);
    assert.deepEqual(await outTyping, []);

    const typingErr = next<chat.ErrorEvent>(out, "error");
    out.emit("typing", { threadId: thread, isTyping: true });
    assert.deepEqual(
      { event: (await typingErr).event, code: (await typingErr).code },
      { event: "typing", code: "ACCESS_DENIED" },
    );
    const readErr = next<chat.ErrorEvent>(out, "error");
    out.emit("mark_read", { threadId: thread, messageIds: [] });
    const e = await readErr;
    assert.equal(e.event, "mark_read");
    assert.equal(e.code, "ACCESS_DENIED");
  });

  test("leave_thread leaves, emits left to the remaining members, acks the thread", async () => {
    const thread = newThread();
    const kim = await connectChat(token("kim"));
    const lee = await connectChat(token("lee"));
    assertSuccess(await kim.emitWithAck("join_thread", { threadId: thread }));
    assertSuccess(await lee.emitWithAck("join_thread", { threadId: thread }));
    const leeSeesLeft = next<chat.Left>(lee, "left");
    const kimSeesLeft = collect(kim, "left", 500);
    assert.deepEqual(assertSuccess(await kim.emitWithAck("leave_thread", { threadId: thread })), { threadId: thread });
    assert.deepEqual(await leeSeesLeft, { threadId: thread, userId: "kim" });
    assert.deepEqual(await kimSeesLeft, []);
    // No longer a member.
    assertFailure(await kim.emitWithAck("send_message", { threadId: thread, content: "still here?" }), "ACCESS_DENIED");
    const kimSeesNothing = collect(kim, "new_message", 500);
    assertSuccess(await lee.emitWithAck("send_message", { threadId: thread, content: "bye kim" }));
    assert.deepEqual(await kimSeesNothing, []);
  });
});

describe("/health", () => {
  test("authenticated clients get health_status on connect and periodically; anonymous ones none", async () => {
    const anon = open<health.HealthSocket>(health.NAMESPACE);
    const anonSeen = collect<health.HealthStatus>(anon, "health_status", HEALTH_INTERVAL_MS * 4);
    const authed = open<health.HealthSocket>(health.NAMESPACE, token("hank"));
    const seen = collect<health.HealthStatus>(authed, "health_status", HEALTH_INTERVAL_MS * 4);
    const first = await next<health.HealthStatus>(authed, "health_status", 1000);
    assert.equal(first.status, "ok");
    const all = await seen;
    assert.ok(all.length >= 3, `expected the first status and periodic ones, got ${all.length}`);
    assert.deepEqual(await anonSeen, []);
  });

  test("request_refresh acks the current status, 5 per 60 s, and needs auth", async () => {
    const anon = await connectHealth();
    assertFailure(await anon.emitWithAck("request_refresh", {}), "AUTH_REQUIRED");
    const h = await connectHealth(token("ivy"));
    for (let i = 0; i < 5; i++) {
      const s = assertSuccess(await h.emitWithAck("request_refresh", {}));
      assert.equal(s.status, "ok");
      assert.ok(s.uptimeSeconds >= 0);
      assert.ok(!Number.isNaN(Date.parse(s.checkedAt)));
    }
    assertFailure(await h.emitWithAck("request_refresh", {}), "RATE_LIMITED");
  });

  test("connectedClients counts the sockets connected right now, across namespaces, through 50 connects and disconnects", async () => {
    // Close everything opened so far so the count is exact.
    for (const s of sockets.splice(0)) s.disconnect();
    await new Promise((r) => setTimeout(r, 300));
    const probe = await connectHealth(token("probe"));
    const count = async () => assertSuccess(await probe.emitWithAck("request_refresh", {})).connectedClients;
    assert.equal(await count(), 1);

    const many = await Promise.all(
      Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? connectChat(token(`u${i}`)) : connectHealth())),
    );
    assert.equal(await count(), 51);
    for (const s of many) s.disconnect();
    // Disconnects are processed asynchronously by the server.
    const deadline = Date.now() + 3000;
    let n = await count();
    while (n !== 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      n = await count();
    }
    assert.equal(n, 1);
  });
});

describe("limits", () => {
  test("send_message's limit counts every connection of one user, and reconnecting does not reset it", async () => {
    const thread = newThread();
    const tok = token("erin");
    const first = await connectChat(tok);
    const second = await connectChat(tok);
    for (const s of [first, second]) assertSuccess(await s.emitWithAck("join_thread", { threadId: thread }));
    for (let i = 0; i < 20; i++) {
      const s = i % 2 === 0 ? first : second;
      assertSuccess(await s.emitWithAck("send_message", { threadId: thread, content: `m${i}` }));
    }
    assertFailure(await second.emitWithAck("send_message", { threadId: thread, content: "m20" }), "RATE_LIMITED");
    first.disconnect();
    const third = await connectChat(tok);
    assertSuccess(await third.emitWithAck("join_thread", { threadId: thread }));
    assertFailure(await third.emitWithAck("send_message", { threadId: thread, content: "again" }), "RATE_LIMITED");
  });

  test("typing and mark_read are rate limited; mark_read takes at most 100 ids; payloads over their budget are refused before parsing", async () => {
    const thread = newThread();
    const fay = await connectChat(token("fay"));
    assertSuccess(await fay.emitWithAck("join_thread", { threadId: thread }));
    for (let i = 0; i < 10; i++) fay.emit("typing", { threadId: thread, isTyping: i % 2 === 0 });
    const limited = next<{ event: string; code: string }>(fay, "error");
    fay.emit("typing", { threadId: thread, isTyping: true });
    assert.deepEqual(
      (({ event, code }) => ({ event, code }))(await limited),
      { event: "typing", code: "RATE_LIMITED" },
    );

    const ids = (n: number) => Array.from({ length: n }, (_, i) => `m${i}`);
    const tooMany = next<{ event: string; code: string; details: { path: string } }>(fay, "error");
    fay.emit("mark_read", { threadId: thread, messageIds: ids(101) });
    const err = await tooMany;
    assert.equal(err.code, "INVALID_PAYLOAD");
    assert.equal(err.details.path, "/messageIds");

    const big = assertFailure(
      await fay.emitWithAck("send_message", { threadId: thread, content: "é".repeat(2000) + "\u0000".repeat(3000) } as never),
      "PAYLOAD_TOO_LARGE",
    );
    assert.deepEqual((big.details as { maxBytes: number }).maxBytes, 16384);
    // The connection is still up and within its limits.
    assertSuccess(await fay.emitWithAck("send_message", { threadId: thread, content: "still here" }));
  });
});
