// Trusted proxies with a real reverse proxy: Debian's nginx, started here on
// a free loopback port in front of chat-server (`TRUSTED_PROXIES`), opening
// its upstream connections from 127.0.0.2. socket.io-client connects through
// it from 127.0.0.3 and 127.0.0.4 (two users at two addresses), and straight
// to chat-server from 127.0.0.5 with a forged X-Forwarded-For. The per-IP
// connection limit must count the client behind the proxy, and the forged
// header must change nothing.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { io, type Socket } from "socket.io-client";
import { ChatServer, freePort, token } from "../support/chat_server";

/** nginx (`NGINX_BIN`, else Debian's). */
const NGINX_BIN = process.env.NGINX_BIN ?? (fs.existsSync("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx");
const PROXY_SOURCE = "127.0.0.2";
const PER_IP = 2;

let server: ChatServer;
let metricsPort: number;
let nginx: ChildProcess | undefined;
let nginxDir: string;
let proxyUrl: string;
const sockets: Socket[] = [];

/** nginx's configuration: WebSocket upgrades passed on, the client's address appended to X-Forwarded-For. */
function nginxConf(dir: string, listen: number, upstream: number): string {
  const temp = (name: string) => path.join(dir, name);
  return `
daemon off;
master_process off;
worker_processes 1;
pid ${temp("nginx.pid")};
error_log ${temp("error.log")} warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${temp("body")};
  proxy_temp_path ${temp("proxy")};
  fastcgi_temp_path ${temp("fastcgi")};
  uwsgi_temp_path ${temp("uwsgi")};
  scgi_temp_path ${temp("scgi")};
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:${listen};
    location / {
      proxy_pass http://127.0.0.1:${upstream};
      proxy_bind ${PROXY_SOURCE};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_read_timeout 60s;
    }
  }
}
`;
}

async function waitForPort(port: number, what: string, log: () => string): Promise<void> {
  const end = Date.now() + 10_000;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (res.ok) return;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`${what} did not answer within 10 s:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  metricsPort = await freePort();
  server = await ChatServer.start(await freePort(), {
    TRUSTED_PROXIES: `${PROXY_SOURCE}/32`,
    MAX_CONNECTIONS_PER_IP: String(PER_IP),
    METRICS_ADDR: `127.0.0.1:${metricsPort}`,
  });
  nginxDir = fs.mkdtempSync(path.join(os.tmpdir(), "evcontract-nginx-"));
  const listen = await freePort();
  const conf = path.join(nginxDir, "nginx.conf");
  fs.writeFileSync(conf, nginxConf(nginxDir, listen, Number(new URL(server.url).port)));
  const check = spawnSync(NGINX_BIN, ["-t", "-p", nginxDir, "-c", conf], { encoding: "utf8" });
  assert.equal(check.status, 0, `nginx -t failed (apt-get install nginx):\n${check.stderr}${check.error ?? ""}`);
  let log = "";
  nginx = spawn(NGINX_BIN, ["-p", nginxDir, "-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
  nginx.stdout?.on("data", (d) => (log += d));
  nginx.stderr?.on("data", (d) => (log += d));
  proxyUrl = `http://127.0.0.1:${listen}`;
  await waitForPort(listen, "nginx", () => log + fs.readFileSync(path.join(nginxDir, "error.log"), "utf8"));
});

after(async () => {
  for (const s of sockets) s.disconnect();
  nginx?.kill("SIGKILL");
  await server?.stop();
  if (nginxDir) fs.rmSync(nginxDir, { recursive: true, force: true });
});

/** A /chat socket to `base` opened from `localAddress`, with `headers` added to its requests. */
function open(base: string, localAddress: string, user: string, headers: Record<string, string> = {}): Socket {
  const s = io(`${base}/chat`, {
    auth: { token: token(user) },
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    localAddress,
    extraHeaders: headers,
  } as Parameters<typeof io>[1]);
  sockets.push(s);
  return s;
}

/** Whether `s` connects (true) or is refused (false). */
function outcome(s: Socket): Promise<boolean> {
  return new Promise((resolve) => {
    s.once("connect", () => resolve(true));
    s.once("connect_error", () => resolve(false));
  });
}

/** `evcontract_http_refused_ip_limit_total` from the metrics listener. */
async function refusedByIp(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("evcontract_http_refused_ip_limit_total "));
  return Number(line?.split(" ")[1] ?? NaN);
}

test("behind nginx, two users at two addresses are limited separately; a forged header changes nothing", async () => {
  // Ann at 127.0.0.3: her two connections pass, the third is refused.
  assert.deepEqual(await Promise.all([outcome(open(proxyUrl, "127.0.0.3", "ann")), outcome(open(proxyUrl, "127.0.0.3", "ann"))]), [true, true]);
  assert.equal(await outcome(open(proxyUrl, "127.0.0.3", "ann")), false, "the third connection from 127.0.0.3");
  // Bob at 127.0.0.4 has his own budget, although every connection comes from nginx.
  assert.deepEqual(await Promise.all([outcome(open(proxyUrl, "127.0.0.4", "bob")), outcome(open(proxyUrl, "127.0.0.4", "bob"))]), [true, true]);
  // Ann forging X-Forwarded-For through the proxy: nginx appends her real
  // address, the server takes the right-most untrusted one, still hers.
  assert.equal(await outcome(open(proxyUrl, "127.0.0.3", "ann", { "X-Forwarded-For": "198.51.100.7" })), false, "a forged header behind the proxy");
  assert.equal(await refusedByIp(), 2);

  // Straight to the server from an address that is not a trusted proxy:
  // the header is ignored, so each forged address still counts as 127.0.0.5.
  const forged = (n: number) => ({ "X-Forwarded-For": `203.0.113.${n}` });
  assert.deepEqual(
    await Promise.all([outcome(open(server.url, "127.0.0.5", "eve", forged(1))), outcome(open(server.url, "127.0.0.5", "eve", forged(2)))]),
    [true, true],
  );
  assert.equal(await outcome(open(server.url, "127.0.0.5", "eve", forged(3))), false, "a forged header from an untrusted peer");
  assert.equal(await refusedByIp(), 3);
});
