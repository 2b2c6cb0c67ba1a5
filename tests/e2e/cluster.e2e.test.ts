// End-to-end on several nodes: real chat-server processes on their own
// ports sharing rooms and broadcasts through a real redis-server
// (socketioxide's Redis adapter), driven by the real socket.io-client and the
// Rust terminal client. Covers cross-node delivery, the cluster-wide counts,
// a killed node, a Redis outage and a Redis refused at start.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { Socket } from "socket.io-client";
import { chat, health } from "../../generated/ts/chat/index";
import { ChatServer, SERVER_BIN, freePort, token } from "../support/chat_server";
import { RedisServer, sharedRedis } from "../support/redis";
import { assertSuccess, connected, nextEvent, openSocket } from "../support/sockets";
import { TerminalClient, children } from "../support/terminal_client";

const WAIT_MS = 5000;
const HEALTH_INTERVAL_MS = 200;

let redisUrl: string;
let stopRedis: () => Promise<void>;
const servers: ChatServer[] = [];
const sockets: Socket[] = [];
let prefixCounter = 0;

before(async () => {
  ({ url: redisUrl, stop: stopRedis } = await sharedRedis());
});

after(async () => {
  for (const s of sockets) s.disconnect();
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  await Promise.all(servers.map((s) => s.stop()));
  await stopRedis?.();
});

/** `count` chat-server nodes on one Redis, with a channel prefix of their own. */
async function startNodes(count: number, redis = redisUrl, extra: Record<string, string> = {}): Promise<ChatServer[]> {
  const env = {
    REDIS_URL: redis,
    REDIS_PREFIX: `e2e-${process.pid}-${++prefixCounter}`,
    HEALTH_INTERVAL_MS: String(HEALTH_INTERVAL_MS),
    ...extra,
  };
  const nodes = await Promise.all(Array.from({ length: count }, async () => ChatServer.start(await freePort(), env)));
  servers.push(...nodes);
  return nodes;
}

/** Restarts `node` on its own port with the same settings (after a kill). */
async function restart(node: ChatServer): Promise<ChatServer> {
  const again = await ChatServer.start(Number(new URL(node.url).port), node.env);
  servers.push(again);
  return again;
}

const open = <S extends Socket>(base: string, ns: string, tok?: string, reconnect = false): S =>
  openSocket<S>(sockets, base, ns, tok, reconnect);

const chatOn = (node: ChatServer, tok?: string) => connected(open<chat.ChatSocket>(node.url, chat.NAMESPACE, tok));
const healthOn = (node: ChatServer, tok?: string) => connected(open<health.HealthSocket>(node.url, health.NAMESPACE, tok));
const next = <T>(s: Socket, event: string, timeoutMs = WAIT_MS) => nextEvent<T>(s, event, timeoutMs);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every `event` payload `s` receives from now on. */
function record<T>(s: Socket, event: string): T[] {
  const seen: T[] = [];
  s.on(event, (payload: T) => seen.push(payload));
  return seen;
}

/** Resolves once `done()` holds (checked every 20 ms), or fails after `ms`. */
async function until(what: string, done: () => boolean, ms = WAIT_MS): Promise<void> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

let threadCounter = 0;
const newThread = () => `cluster-${process.pid}-${++threadCounter}`;

describe("two nodes on one Redis", () => {
  test("room broadcasts, room-except-sender, joined/left and the members list cross nodes", async () => {
    const [a, b] = await startNodes(2);
    const thread = newThread();
    const alice = await chatOn(a, token("alice"));
    const bob = await chatOn(b, token("bob"));

    assert.deepEqual(assertSuccess(await alice.emitWithAck("join_thread", { threadId: thread })).members, ["alice"]);
    const aliceSeesBob = next<chat.Joined>(alice, "joined");
    const bobSeesHimself = next<chat.Joined>(bob, "joined");
    const ack = assertSuccess(await bob.emitWithAck("join_thread", { threadId: thread }));
    // Members on both nodes, from node B.
    assert.deepEqual(ack.members, ["alice", "bob"]);
    assert.deepEqual(await aliceSeesBob, { threadId: thread, userId: "bob" });
    assert.deepEqual(await bobSeesHimself, { threadId: thread, userId: "bob" });

    // A room broadcast from node A reaches node B's member, once.
    const bobMessages = record<chat.NewMessage>(bob, "new_message");
    const aliceMessages = record<chat.NewMessage>(alice, "new_message");
    const sent = assertSuccess(await alice.emitWithAck("send_message", { threadId: thread, content: "hello from A" }));
    await until("bob's new_message", () => bobMessages.length === 1);
    assert.deepEqual(bobMessages[0], { threadId: thread, message: sent });

    // Room except the sender: bob's typing reaches alice on the other node,
    // never bob himself.
    const bobTyping = record<chat.TypingIndicator>(bob, "typing_indicator");
    const aliceSeesTyping = next<chat.TypingIndicator>(alice, "typing_indicator");
    bob.emit("typing", { threadId: thread, isTyping: true });
    assert.deepEqual(await aliceSeesTyping, { threadId: thread, userId: "bob", isTyping: true });
    const reply = assertSuccess(await bob.emitWithAck("send_message", { threadId: thread, content: "hi from B" }));
    await until("bob's own message", () => bobMessages.length === 2);
    await until("alice's copy", () => aliceMessages.length === 2);
    assert.deepEqual(aliceMessages[1], { threadId: thread, message: reply });
    assert.deepEqual(bobTyping, [], "the sender got its own typing indicator");

    // mark_read, also except the sender.
    const aliceRead = next<chat.MessageRead>(alice, "message_read");
    bob.emit("mark_read", { threadId: thread, messageIds: [sent.id] });
    assert.deepEqual(await aliceRead, { threadId: thread, userId: "bob", messageIds: [sent.id] });

    // Leaving: the remaining member on the other node gets `left`, and the
    // members list shrinks cluster-wide.
    const aliceSeesLeft = next<chat.Left>(alice, "left");
    assertSuccess(await bob.emitWithAck("leave_thread", { threadId: thread }));
    assert.deepEqual(await aliceSeesLeft, { threadId: thread, userId: "bob" });
    const carol = await chatOn(b, token("carol"));
    assert.deepEqual(assertSuccess(await carol.emitWithAck("join_thread", { threadId: thread })).members, ["alice", "carol"]);
    assert.equal(bobMessages.length, 2, "no duplicate deliveries");
  });

  test("connectedClients counts the whole cluster through 30 connects and 20 disconnects; each node pushes to its own clients once", async () => {
    const [a, b] = await startNodes(2);
    const probe = await healthOn(a, token("probe"));
    let latest = -1;
    const pushes: number[] = [];
    probe.on("health_status", (s: health.HealthStatus) => {
      latest = s.connectedClients;
      pushes.push(Date.now());
    });
    await until("the probe counted", () => latest === 1);

    const many = await Promise.all(
      Array.from({ length: 30 }, (_, i) => {
        const node = i % 2 === 0 ? a : b;
        return i % 3 === 0 ? chatOn(node, token(`u${i}`)) : healthOn(node);
      }),
    );
    await until("31 connected across both nodes", () => latest === 31);
    for (const s of many.slice(0, 20)) s.disconnect();
    await until("11 connected across both nodes", () => latest === 11);

    // Each node pushes health_status to its own sockets only: the probe
    // gets one push per interval, not one per node.
    const start = pushes.length;
    await sleep(HEALTH_INTERVAL_MS * 5 + 100);
    const got = pushes.length - start;
    assert.ok(got >= 3 && got <= 7, `expected about 5 pushes in ${HEALTH_INTERVAL_MS * 5} ms, got ${got}`);
  });
});

describe("a node killed", () => {
  test("its clients reconnect (Rust client to the next URL, socket.io-client to the restarted node), re-join, and messages flow both ways across nodes", async () => {
    let [a, b] = await startNodes(2);
    const thread = newThread();

    // alice (socket.io-client) on A, re-joining on every (re)connection as an
    // application does; bob on B; carol, the Rust client, on A then B.
    const alice = open<chat.ChatSocket>(a.url, chat.NAMESPACE, token("alice"), true);
    let aliceJoins = 0;
    alice.on("connect", async () => {
      const res = await alice.emitWithAck("join_thread", { threadId: thread });
      if (res.success) aliceJoins++;
    });
    await until("alice joined", () => aliceJoins === 1);
    const bob = await chatOn(b, token("bob"));
    assertSuccess(await bob.emitWithAck("join_thread", { threadId: thread }));
    const bobMessages = record<chat.NewMessage>(bob, "new_message");
    const aliceMessages = record<chat.NewMessage>(alice, "new_message");

    const aliceSeesCarol = next<chat.Joined>(alice, "joined");
    const carol = new TerminalClient(token("carol"), thread, [a.url, b.url]);
    assert.deepEqual(await aliceSeesCarol, { threadId: thread, userId: "carol" });

    // Acked before the kill: every one of them reaches the other node.
    const before: string[] = [];
    for (let i = 0; i < 3; i++) {
      const m = assertSuccess(await alice.emitWithAck("send_message", { threadId: thread, content: `before ${i}` }));
      before.push(m.id);
    }
    await until("bob got the 3 messages acked before the kill", () => bobMessages.length === 3);
    assert.deepEqual(bobMessages.map((m) => m.message.id), before);

    await a.stop("SIGKILL");
    // The Rust client fails over to B and re-joins there.
    await carol.stderrContains("joined thread", 15_000);
    // socket.io-client retries A's address; A comes back on the same port.
    a = await restart(a);
    await until("alice reconnected and re-joined", () => aliceJoins === 2, 15_000);

    // alice (A, restarted) -> bob (B) and carol (B).
    const after = assertSuccess(await alice.emitWithAck("send_message", { threadId: thread, content: "after the kill" }));
    await until("bob got the message sent after the kill", () => bobMessages.length === 4);
    assert.deepEqual(bobMessages[3].message, after);
    const { line } = await carol.waitFor((l) => l.type === "new_message" && l.message.id === after.id, WAIT_MS);
    assert.equal(line.message.content, "after the kill");

    // carol (B) -> alice (A) and bob (B).
    carol.type("carol is back");
    await until("alice got carol's message", () => aliceMessages.some((m) => m.message.content === "carol is back"));
    await until("bob got carol's message", () => bobMessages.some((m) => m.message.content === "carol is back"));
    assert.equal(bobMessages.filter((m) => m.message.content === "carol is back").length, 1);

    const { code, stderr } = await carol.end(10_000);
    assert.equal(code, 0, `chat-client exit code; stderr:\n${stderr}`);
    void b;
  });
});

// The first two tests run the threads without history (HISTORY=off): what
// an outage does to live-only rooms. With history a message is kept in
// Redis before it is sent, so an outage refuses it instead (third test;
// the Rust tests in examples/chat-client/tests/delivery.rs retry it).
describe("Redis outage", () => {
  test("stopped for 3 s: no disconnects, local delivery goes on, cross-node delivery resumes within 5 s, one warning per node", async (t) => {
    const redis = await RedisServer.start();
    try {
      const [a, b] = await startNodes(2, redis.url, { HISTORY: "off" });
      const thread = newThread();
      const alice = await chatOn(a, token("alice"));
      const carol = await chatOn(a, token("carol"));
      const bob = await chatOn(b, token("bob"));
      let disconnects = 0;
      for (const s of [alice, carol, bob]) s.on("disconnect", () => disconnects++);
      for (const s of [alice, carol, bob]) assertSuccess(await s.emitWithAck("join_thread", { threadId: thread }));
      const carolMessages = record<chat.NewMessage>(carol, "new_message");
      const bobMessages = record<chat.NewMessage>(bob, "new_message");

      await redis.stop();
      const stoppedAt = Date.now();
      // Every message sent during the outage is acked and reaches the
      // sender's node at once.
      let sent = 0;
      while (Date.now() - stoppedAt < 3000) {
        const content = `outage ${sent++}`;
        const t0 = Date.now();
        const m = assertSuccess(await alice.emitWithAck("send_message", { threadId: thread, content }));
        await until(`carol's copy of "${content}"`, () => carolMessages.some((x) => x.message.id === m.id), 2000);
        assert.ok(Date.now() - t0 < 2000, "local delivery stalled");
        // send_message allows 20 per 10 s per client.
        await sleep(400);
      }
      assert.ok(sent >= 5, `only ${sent} messages in 3 s`);

      await redis.resume();
      const resumedAt = Date.now();
      const bobBefore = bobMessages.length;
      // Cross-node delivery resumes by itself (subscriptions restored);
      // carol probes, alice's rate limit is spent.
      let resumed = -1;
      for (let i = 0; i < 20 && Date.now() - resumedAt < 8000; i++) {
        assertSuccess(await carol.emitWithAck("send_message", { threadId: thread, content: `back ${i}` }));
        await sleep(250);
        if (bobMessages.slice(bobBefore).some((m) => m.message.content.startsWith("back "))) {
          resumed = Date.now() - resumedAt;
          break;
        }
      }
      assert.ok(resumed >= 0 && resumed < 5000, `cross-node delivery resumed after ${resumed} ms (want < 5000)`);
      t.diagnostic(`${sent} messages acked and delivered on their node during the outage; cross-node delivery resumed ${resumed} ms after Redis was back`);
      // And the other way round.
      const aliceGets = next<chat.NewMessage>(alice, "new_message");
      assertSuccess(await bob.emitWithAck("send_message", { threadId: thread, content: "from B after the outage" }));
      assert.equal((await aliceGets).message.content, "from B after the outage");

      assert.equal(disconnects, 0, "a socket was disconnected during the outage");
      for (const s of [alice, carol, bob]) assert.ok(s.connected);
      // Pub/sub is at most once: nothing arrives twice.
      const ids = bobMessages.map((m) => m.message.id);
      assert.equal(new Set(ids).size, ids.length, "duplicate delivery");
      for (const node of [a, b]) {
        const lines = node.log.split("\n").filter((l) => l.includes("Redis unreachable"));
        assert.equal(lines.length, 1, `expected one outage warning, got:\n${node.log}`);
        assert.ok(node.log.includes("Redis reachable again"), node.log);
      }
    } finally {
      await redis.stop();
    }
  });

  test("with history: a message that cannot be kept is refused with UNAVAILABLE, the connection stays, and once Redis is back it is sent to both nodes once", async () => {
    const redis = await RedisServer.start();
    try {
      const [a, b] = await startNodes(2, redis.url);
      const thread = newThread();
      const alice = await chatOn(a, token("alice"));
      const bob = await chatOn(b, token("bob"));
      for (const s of [alice, bob]) assertSuccess(await s.emitWithAck("join_thread", { threadId: thread }));
      const bobMessages = record<chat.NewMessage>(bob, "new_message");
      const aliceMessages = record<chat.NewMessage>(alice, "new_message");

      await redis.stop();
      await sleep(300);
      const refused = await alice.emitWithAck("send_message", { threadId: thread, content: "during" });
      assert.equal(refused.success, false, JSON.stringify(refused));
      assert.equal((refused as { code: string }).code, "UNAVAILABLE");
      assert.ok(alice.connected, "the connection stays up");
      await sleep(300);
      assert.equal(aliceMessages.length + bobMessages.length, 0, "a refused message reached nobody");

      await redis.resume();
      // Both nodes subscribed again (a live-only typing indicator crosses
      // from A to B) before the message: a plain client is not told of
      // what it missed while its node was not listening.
      const typing = record<chat.TypingIndicator>(bob, "typing_indicator");
      for (let i = 0; i < 40 && typing.length === 0; i++) {
        alice.emit("typing", { threadId: thread, isTyping: true });
        await sleep(250);
      }
      assert.ok(typing.length > 0, "cross-node delivery is back");
      let sent: chat.Message | null = null;
      for (let i = 0; i < 40 && sent === null; i++) {
        const res = await alice.emitWithAck("send_message", { threadId: thread, content: "after" });
        if (res.success) sent = res.data as chat.Message;
        else await sleep(250);
      }
      assert.ok(sent !== null, "sent once Redis is back");
      await until("bob's copy", () => bobMessages.length === 1, WAIT_MS);
      await until("alice's copy", () => aliceMessages.length === 1, WAIT_MS);
      assert.equal(bobMessages[0].message.id, sent.id);
      await sleep(300);
      assert.equal(bobMessages.length, 1, "once");
    } finally {
      await redis.stop();
    }
  });

  test("paused (SIGSTOP) for 3 s: acks stay fast, every message reaches both nodes late but in order, once", async (t) => {
    const redis = await RedisServer.start();
    try {
      const [a, b] = await startNodes(2, redis.url, { HISTORY: "off" });
      const thread = newThread();
      const senders = await Promise.all(Array.from({ length: 8 }, (_, i) => chatOn(a, token(`stall-sender-${i}`))));
      const carol = await chatOn(a, token("carol"));
      const bob = await chatOn(b, token("bob"));
      for (const s of [...senders, carol, bob]) assertSuccess(await s.emitWithAck("join_thread", { threadId: thread }));
      const carolMessages = record<chat.NewMessage>(carol, "new_message");
      const bobMessages = record<chat.NewMessage>(bob, "new_message");

      redis.pause();
      const pausedAt = Date.now();
      const latencies: number[] = [];
      const sent: string[][] = senders.map(() => []);
      // send_message allows 20 per 10 s per user: each sender sends every 300 ms.
      await Promise.all(
        senders.map(async (s, i) => {
          while (Date.now() - pausedAt < 3000) {
            const started = performance.now();
            const m = assertSuccess(await s.emitWithAck("send_message", { threadId: thread, content: `stall ${i}.${sent[i].length}` }));
            latencies.push(performance.now() - started);
            sent[i].push(m.id);
            await sleep(300);
          }
        }),
      );
      // A join during the stall: its members come from this node at once.
      const dave = await chatOn(a, token("dave"));
      const joinStarted = performance.now();
      assertSuccess(await dave.emitWithAck("join_thread", { threadId: thread }));
      const joinMs = performance.now() - joinStarted;
      const deliveredDuringStall = bobMessages.length;
      redis.unpause();

      const total = sent.flat().length;
      await until(`${total} messages on both nodes`, () => carolMessages.length >= total && bobMessages.length >= total, 15_000);
      for (const [who, got] of [["carol (same node)", carolMessages], ["bob (other node)", bobMessages]] as const) {
        const ids = got.map((m) => m.message.id);
        assert.equal(new Set(ids).size, ids.length, `${who}: a message arrived twice`);
        assert.equal(ids.length, total, `${who}: extra messages`);
        senders.forEach((_, i) => {
          const mine = got.filter((m) => m.message.userId === `stall-sender-${i}`).map((m) => m.message.id);
          assert.deepEqual(mine, sent[i], `${who}: sender ${i}'s messages out of order or missing`);
        });
      }
      latencies.sort((x, y) => x - y);
      const p99 = latencies[Math.ceil(latencies.length * 0.99) - 1];
      t.diagnostic(
        `${total} acks during a 3 s Redis pause: p50 ${latencies[Math.floor(latencies.length / 2)].toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${latencies[latencies.length - 1].toFixed(1)} ms; join_thread ${joinMs.toFixed(1)} ms; ${deliveredDuringStall} reached node B before Redis went on`,
      );
      assert.ok(p99 < 100, `send_message p99 ${p99.toFixed(1)} ms during the pause (want < 100)`);
      assert.ok(joinMs < 250, `join_thread took ${joinMs.toFixed(1)} ms during the pause`);
      assert.ok(a.log.includes("emits are queued"), a.log);
    } finally {
      redis.unpause();
      await redis.stop();
    }
  });

  test("unreachable at start: chat-server exits 1 with one line naming the URL", async () => {
    const port = await freePort();
    const proc = spawn(SERVER_BIN, [], {
      env: { ...process.env, PORT: String(await freePort()), JWT_SECRET: "s", REDIS_URL: `redis://127.0.0.1:${port}`, RUST_LOG: "warn", METRICS_ADDR: "127.0.0.1:0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    proc.stderr?.on("data", (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => proc.once("exit", (c) => resolve(c)));
    assert.equal(code, 1, stderr);
    const lines = stderr.trim().split("\n");
    assert.equal(lines.length, 1, stderr);
    assert.match(lines[0], new RegExp(`^error: cluster: cannot reach Redis at redis://127\\.0\\.0\\.1:${port}: `));
    assert.doesNotMatch(stderr, /panicked|backtrace/i);
  });
});
