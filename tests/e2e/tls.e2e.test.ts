// End-to-end over TLS: examples/chat-server serving HTTPS/WSS itself
// (TLS_CERT / TLS_KEY) with a certificate made here by a CA made here
// (openssl), and socket.io-client 4.x connecting to it with that CA, over
// WebSocket and over long-polling, and refused without it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { io, type Socket } from "socket.io-client";
import { chat } from "../../generated/ts/chat/index";
import { ChatServer, freePort, token } from "../support/chat_server";
import { assertSuccess } from "../support/sockets";

let dir: string;
let ca: string;
let server: ChatServer;
const sockets: Socket[] = [];

/** A CA, and a server certificate it signed for 127.0.0.1 and localhost. */
function makeCertificates(into: string): void {
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: into, stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=evcontract test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  openssl("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
  fs.writeFileSync(path.join(into, "ext.cnf"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
  openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
    "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf");
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "evcontract-tls-"));
  makeCertificates(dir);
  ca = fs.readFileSync(path.join(dir, "ca.pem"), "utf8");
  server = await ChatServer.start(await freePort(), {
    TLS_CERT: path.join(dir, "server.pem"),
    TLS_KEY: path.join(dir, "server.key"),
  });
  assert.match(server.url, /^https:/);
});

after(async () => {
  for (const s of sockets) s.disconnect();
  await server?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function open(transports: ("websocket" | "polling")[], withCa: boolean): chat.ChatSocket {
  const s = io(`${server.url}${chat.NAMESPACE}`, {
    auth: { token: token("tls-user") },
    transports,
    reconnection: false,
    forceNew: true,
    ...(withCa ? { ca } : {}),
  }) as chat.ChatSocket;
  sockets.push(s);
  return s;
}

function outcome(s: Socket): Promise<{ connected: true } | { connected: false; message: string }> {
  return new Promise((resolve) => {
    s.once("connect", () => resolve({ connected: true }));
    s.once("connect_error", (e) => {
      // socket.io-client's `description` carries the transport's error.
      const description = (e as { description?: { message?: string } }).description;
      resolve({ connected: false, message: `${e.message}: ${description?.message ?? ""}` });
    });
  });
}

for (const transports of [["websocket"], ["polling"]] as const) {
  test(`socket.io-client connects over TLS with the CA (${transports[0]}) and gets acks`, async () => {
    const s = open([...transports], true);
    assert.deepEqual(await outcome(s), { connected: true });
    const joined = assertSuccess(await s.emitWithAck("join_thread", { threadId: `tls-${transports[0]}` }));
    assert.ok(Array.isArray(joined.members));
    const sent = assertSuccess(
      await s.emitWithAck("send_message", { threadId: `tls-${transports[0]}`, content: "over TLS" }),
    );
    assert.equal(sent.content, "over TLS");
    assert.equal(sent.userId, "tls-user");
    s.disconnect();
  });
}

test("socket.io-client without the CA is refused by its own certificate check", async () => {
  const s = open(["websocket"], false);
  const res = await outcome(s);
  assert.equal(res.connected, false);
  // Node's own check: the issuer (our CA) is not one it trusts.
  if (!res.connected) assert.match(res.message, /certificate/i, res.message);
});

test("a plain-HTTP request to the TLS port gets no HTTP answer", async () => {
  const plain = server.url.replace("https:", "http:");
  await assert.rejects(fetch(`${plain}/healthz`));
});
