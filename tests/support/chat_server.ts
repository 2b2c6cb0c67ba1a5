// Shared by the Node suites (tests/e2e, tests/browser): start the example
// chat-server binary on a free port and mint tokens with it.
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";

/** The repository: suites are compiled to target/<suite>-js/tests/<dir>/. */
export const ROOT = path.resolve(__dirname, "../../../..");

/** The chat-server binary (`CHAT_SERVER_BIN`, default target/debug/chat-server). */
export const SERVER_BIN = process.env.CHAT_SERVER_BIN ?? path.join(ROOT, "target/debug/chat-server");

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

/** Whether a TCP connection to 127.0.0.1:`port` is accepted. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, "127.0.0.1");
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

/** A valid token for `user`, from `chat-server token <user>`. */
export function token(user: string): string {
  return execFileSync(SERVER_BIN, ["token", user]).toString().trim();
}

/** A running chat-server; `log` collects its output for failure messages. */
export class ChatServer {
  log = "";

  private constructor(
    readonly proc: ChildProcess,
    readonly url: string,
    /** What `start` added to the environment (to restart it alike). */
    readonly env: Record<string, string>,
  ) {}

  /**
   * Starts chat-server on `port` with `env` added, and resolves once
   * `/healthz` answers (15 s at most). With `TLS_CERT` in `env` the server
   * speaks HTTPS: `url` is `https://…` and readiness is an accepted TCP
   * connection (the server listens only once it is ready).
   */
  static async start(port: number, env: Record<string, string> = {}): Promise<ChatServer> {
    const proc = spawn(SERVER_BIN, [], {
      // METRICS_ADDR: several servers run at once, each with its metrics
      // listener on a port of its own.
      env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", RUST_LOG: "warn", METRICS_ADDR: "127.0.0.1:0", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const tls = env.TLS_CERT !== undefined;
    const server = new ChatServer(proc, `${tls ? "https" : "http"}://127.0.0.1:${port}`, env);
    proc.stdout?.on("data", (d) => (server.log += d));
    proc.stderr?.on("data", (d) => (server.log += d));
    const end = Date.now() + 15_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`chat-server exited with ${proc.exitCode}:\n${server.log}`);
      try {
        if (tls ? await accepts(port) : (await fetch(`${server.url}/healthz`)).ok) return server;
      } catch {
        // not listening yet
      }
      if (Date.now() > end) throw new Error(`chat-server did not start within 15 s:\n${server.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Sends `signal` and resolves once the process exited (5 s at most). */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const proc = this.proc;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill(signal);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  }
}
