// Cross-language end-to-end: the Rust terminal client (examples/chat-client,
// on the generated Rust client) and the real socket.io-client 4.x (typed with
// the generated typings) in the same thread of the example server.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { chat } from "../../generated/ts/chat/index";
import { ChatServer, freePort, token } from "../support/chat_server";
import { assertSuccess, nextEvent } from "../support/sockets";
import { TerminalClient, children } from "../support/terminal_client";

const WAIT_MS = 5000;

let server: ChatServer;
let url: string;
const sockets: chat.ChatSocket[] = [];

function connectChat(tok: string): Promise<chat.ChatSocket> {
  const s: chat.ChatSocket = io(`${url}${chat.NAMESPACE}`, {
    auth: { token: tok },
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
  });
  sockets.push(s);
  return new Promise((resolve, reject) => {
    s.once("connect", () => resolve(s));
    s.once("connect_error", (e) => reject(e));
  });
}

/** The next `event` on `s`. */
const next = <T>(s: chat.ChatSocket, event: "joined" | "new_message", timeoutMs = WAIT_MS) =>
  nextEvent<T>(s, event, timeoutMs);

before(async () => {
  server = await ChatServer.start(await freePort());
  url = server.url;
});

after(() => {
  for (const s of sockets) s.disconnect();
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  return server?.stop();
});

test("the Rust terminal client and a socket.io-client socket in one thread see each other's messages", async () => {
  const thread = `crosslang-${process.pid}`;
  const node = await connectChat(token("nodey"));
  assertSuccess(await node.emitWithAck("join_thread", { threadId: thread }));

  const nodeSeesRust = next<chat.Joined>(node, "joined");
  const rust = new TerminalClient(token("rusty"), thread, url);
  assert.deepEqual(await rust.nextLine(), { type: "joined", threadId: thread, userId: "rusty" });
  assert.deepEqual(await nodeSeesRust, { threadId: thread, userId: "rusty" });

  // socket.io-client -> Rust: printed exactly as the server acked it.
  const fromNode = assertSuccess(await node.emitWithAck("send_message", { threadId: thread, content: "hello from node" }));
  assert.deepEqual(await rust.nextLine(), { type: "new_message", threadId: thread, message: fromNode });

  // Rust -> socket.io-client.
  const nodeSeesMessage = next<chat.NewMessage>(node, "new_message");
  rust.type("hello from rust");
  const fromRust = await nodeSeesMessage;
  assert.equal(fromRust.threadId, thread);
  assert.equal(fromRust.message.content, "hello from rust");
  assert.equal(fromRust.message.userId, "rusty");
  assert.deepEqual(await rust.nextLine(), { type: "new_message", threadId: thread, message: fromRust.message });

  // Typing from the Node side shows up in the terminal too.
  node.emit("typing", { threadId: thread, isTyping: true });
  assert.deepEqual(await rust.nextLine(), { type: "typing_indicator", threadId: thread, userId: "nodey", isTyping: true });

  const { code, stderr, rest } = await rust.end();
  assert.equal(code, 0, `exit code; stderr:\n${stderr}`);
  assert.deepEqual(rest, []);
});
