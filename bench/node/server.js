// The benchmark's Node server: socket.io 4.8 with the same /chat behaviour
// as the generated example server for the benchmark's scenarios (see
// bench/src/bin/raw_server.rs for the list), plus `announce` as the example
// server has it (the raw socketioxide server does not). No schema
// validation, rate limit or per-user rooms, like the raw socketioxide server.
//
// Environment: PORT (default 3000), HOST (default 127.0.0.1), JWT_SECRET
// (default dev-secret), REDIS_URL (e.g. redis://127.0.0.1:6379: several
// servers share rooms and broadcasts through @socket.io/redis-adapter;
// unset: one server, socket.io's in-memory adapter), ADMIN_USERS (the user
// ids, comma-separated, who may `announce` to the whole namespace; default:
// nobody).
"use strict";

const http = require("node:http");
const crypto = require("node:crypto");
const { Server } = require("socket.io");
const jwt = require("jsonwebtoken");

const secret = process.env.JWT_SECRET || "dev-secret";
const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || "127.0.0.1";
const redisUrl = process.env.REDIS_URL;
const admins = new Set(
  (process.env.ADMIN_USERS || "")
    .split(",")
    .map((id) => id.trim())
    .filter((id) => id !== ""),
);

const httpServer = http.createServer((req, res) => {
  if (req.url === "/healthz") {
    res.end("ok");
  } else {
    res.writeHead(404);
    res.end();
  }
});

// The socketioxide settings of the Rust servers: 1 MiB payloads, ping 25 s / 20 s,
// connect timeout 45 s, no compression.
const io = new Server(httpServer, {
  serveClient: false,
  maxHttpBufferSize: 1 << 20,
  pingInterval: 25000,
  pingTimeout: 20000,
  connectTimeout: 45000,
  perMessageDeflate: false,
});

const chat = io.of("/chat");
const threads = new Map();

const ok = (data) => ({ success: true, data });
const fail = (code, message) => ({ success: false, code, message });
const reply = (ack, body) => {
  if (typeof ack === "function") ack(body);
};

chat.use((socket, next) => {
  const token = socket.handshake.auth && socket.handshake.auth.token;
  if (typeof token === "string" && token !== "") {
    try {
      const claims = jwt.verify(token, secret, { algorithms: ["HS256"], clockTolerance: 60 });
      if (typeof claims.sub !== "string" || claims.sub === "" || claims.exp === undefined) {
        return next(new Error("INVALID_TOKEN"));
      }
      socket.data.userId = claims.sub;
    } catch {
      return next(new Error("INVALID_TOKEN"));
    }
  }
  next();
});

chat.on("connection", (socket) => {
  socket.on("join_thread", (p, ack) => {
    const user = socket.data.userId;
    if (user === undefined) return reply(ack, fail("AUTH_REQUIRED", "authentication required"));
    if (!p || typeof p.threadId !== "string") return reply(ack, fail("INVALID_PAYLOAD", "threadId"));
    const threadId = p.threadId;
    const room = `thread:${threadId}`;
    socket.join(room);
    chat.to(room).emit("joined", { threadId, userId: user });
    const members = new Set();
    for (const id of chat.adapter.rooms.get(room) || []) {
      const s = chat.sockets.get(id);
      if (s && s.data.userId !== undefined) members.add(s.data.userId);
    }
    reply(ack, ok({ threadId, members: [...members].sort() }));
  });

  socket.on("send_message", (p, ack) => {
    const user = socket.data.userId;
    if (user === undefined) return reply(ack, fail("AUTH_REQUIRED", "authentication required"));
    if (!p || typeof p.threadId !== "string" || typeof p.content !== "string") {
      return reply(ack, fail("INVALID_PAYLOAD", "threadId, content"));
    }
    const threadId = p.threadId;
    const room = `thread:${threadId}`;
    if (!socket.rooms.has(room)) {
      return reply(ack, fail("ACCESS_DENIED", `join thread \`${threadId}\` first`));
    }
    const message = {
      content: p.content,
      createdAt: new Date().toISOString(),
      id: crypto.randomUUID(),
      threadId,
      userId: user,
    };
    let list = threads.get(threadId);
    if (list === undefined) {
      list = [];
      threads.set(threadId, list);
    }
    list.push(message);
    chat.to(room).emit("new_message", { threadId, message });
    reply(ack, ok(message));
  });

  socket.on("announce", (p, ack) => {
    const user = socket.data.userId;
    if (user === undefined) return reply(ack, fail("AUTH_REQUIRED", "authentication required"));
    if (!p || typeof p.text !== "string") return reply(ack, fail("INVALID_PAYLOAD", "text"));
    if (!admins.has(user)) return reply(ack, fail("ACCESS_DENIED", "only administrators may announce"));
    const announcement = {
      from: user,
      id: crypto.randomUUID(),
      sentAt: new Date().toISOString(),
      text: p.text,
    };
    // Every socket of the namespace (every server's, with REDIS_URL), the sender's too.
    chat.emit("announcement", announcement);
    reply(ack, ok(announcement));
  });
});

// With REDIS_URL, listen only once both Redis connections are up, so a
// server that accepts connections already reaches the other nodes.
async function useRedis(url) {
  const { createClient } = require("redis");
  const { createAdapter } = require("@socket.io/redis-adapter");
  // node-redis gives up on a command after 5 s by default, and the
  // adapter does not catch that rejection: at 100 messages in flight over
  // two nodes the event loop falls that far behind and the process exits
  // ("TimeoutError"). A minute keeps the comparison running; the latency it
  // shows is what Node's clients see.
  const pub = createClient({ url, commandOptions: { timeout: 60000 } });
  const sub = pub.duplicate();
  for (const client of [pub, sub]) {
    client.on("error", (e) => console.error(`redis: ${e.message}`));
  }
  await Promise.all([pub.connect(), sub.connect()]);
  io.adapter(createAdapter(pub, sub));
}

(redisUrl ? useRedis(redisUrl) : Promise.resolve()).then(
  () => {
    httpServer.listen(port, host, () => {
      const adapter = redisUrl ? ` (redis adapter, ${redisUrl})` : "";
      console.error(`bench node server listening on http://${host}:${port}${adapter}`);
    });
  },
  (e) => {
    console.error(`cannot connect to ${redisUrl}: ${e.message}`);
    process.exit(1);
  },
);
