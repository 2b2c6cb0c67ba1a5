// Shared by the Node suites that run several chat-server nodes: a real
// redis-server (Debian's; `REDIS_SERVER_BIN` or `redis-server` on PATH) on a
// free loopback port, without persistence, that a test can stop and start
// again on the same port.
import { ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import { freePort } from "./chat_server";

/** The redis-server binary. */
export const REDIS_BIN = process.env.REDIS_SERVER_BIN ?? "redis-server";

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** A redis-server process owned by the test. */
export class RedisServer {
  log = "";
  private proc?: ChildProcess;

  private constructor(readonly port: number) {}

  /** The URL as operators write it (the runtime selects RESP3 itself). */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts redis-server on a free port (or `port`); resolves once it accepts connections. */
  static async start(port?: number): Promise<RedisServer> {
    const server = new RedisServer(port ?? (await freePort()));
    await server.resume();
    return server;
  }

  /** Starts the process again on the same port (after `stop`). */
  async resume(): Promise<void> {
    const proc = spawn(
      REDIS_BIN,
      ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.proc = proc;
    proc.stdout?.on("data", (d) => (this.log += d));
    proc.stderr?.on("data", (d) => (this.log += d));
    const spawnError = new Promise<Error>((resolve) => proc.once("error", resolve));
    const end = Date.now() + 10_000;
    for (;;) {
      const failed = await Promise.race([spawnError, new Promise<null>((r) => setTimeout(() => r(null), 20))]);
      if (failed) throw new Error(`cannot start ${REDIS_BIN} (apt-get install redis-server): ${failed.message}`);
      if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}:\n${this.log}`);
      if (await listening(this.port)) return;
      if (Date.now() > end) throw new Error(`redis-server did not listen within 10 s:\n${this.log}`);
    }
  }

  /**
   * Freezes the process (SIGSTOP): its connections stay open and nothing is
   * answered, as with a stuck disk or a paused VM. `unpause` lets it go on.
   */
  pause(): void {
    this.proc?.kill("SIGSTOP");
  }

  /** Lets a paused process go on (SIGCONT). */
  unpause(): void {
    this.proc?.kill("SIGCONT");
  }

  /** Stops the process (SIGKILL: nothing is saved anyway) and waits for the port to close. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill("SIGKILL");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    const end = Date.now() + 5000;
    while ((await listening(this.port)) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The Redis the README's test command started (`EVCONTRACT_REDIS_URL`), or
 * one started here when the suite runs on its own. Give each test its own
 * `REDIS_PREFIX` so that tests sharing it never see each other's traffic.
 */
export async function sharedRedis(): Promise<{ url: string; stop: () => Promise<void> }> {
  const url = process.env.EVCONTRACT_REDIS_URL;
  if (url) return { url, stop: async () => {} };
  const own = await RedisServer.start();
  return { url: own.url, stop: () => own.stop() };
}
