// Shared by the Node suites that drive the Rust terminal client
// (examples/chat-client, on the generated Rust client) as a user would.
import { ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import readline from "node:readline";
import { ROOT } from "./chat_server";

/** The chat-client binary (`CHAT_CLIENT_BIN`, default target/debug/chat-client). */
export const CLIENT_BIN = process.env.CHAT_CLIENT_BIN ?? path.join(ROOT, "target/debug/chat-client");

const WAIT_MS = 5000;

/** Every terminal client started, so that a suite can kill what is left. */
export const children: ChildProcess[] = [];

/** The `chat-client` binary, with its stdout read as JSON lines. */
export class TerminalClient {
  private readonly child: ChildProcess;
  private readonly lines: unknown[] = [];
  private readonly waiting: ((line: unknown) => void)[] = [];
  stderr = "";
  private readonly exited: Promise<number | null>;

  /** Starts chat-client on `thread`; `urls` are its servers, in failover order. */
  constructor(tok: string, thread: string, urls: string | string[]) {
    const urlArgs = (Array.isArray(urls) ? urls : [urls]).flatMap((u) => ["--url", u]);
    this.child = spawn(CLIENT_BIN, [...urlArgs, "--token", tok, "--thread", thread], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    children.push(this.child);
    this.child.stderr?.on("data", (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
    const rl = readline.createInterface({ input: this.child.stdout! });
    rl.on("line", (text) => {
      let line: unknown;
      try {
        line = JSON.parse(text);
      } catch {
        line = { notJson: text };
      }
      const waiter = this.waiting.shift();
      if (waiter) waiter(line);
      else this.lines.push(line);
    });
  }

  /** The next JSON line the client printed. */
  nextLine(timeoutMs = WAIT_MS): Promise<unknown> {
    const ready = this.lines.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(waiter), 1);
        reject(new Error(`chat-client printed nothing within ${timeoutMs} ms; stderr:\n${this.stderr}`));
      }, timeoutMs);
      const waiter = (line: unknown) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.waiting.push(waiter);
    });
  }

  /** The next printed line that `matches`, skipping the others (which are returned too). */
  async waitFor(matches: (line: any) => boolean, timeoutMs = WAIT_MS): Promise<{ line: any; skipped: unknown[] }> {
    const end = Date.now() + timeoutMs;
    const skipped: unknown[] = [];
    for (;;) {
      const line = await this.nextLine(Math.max(1, end - Date.now()));
      if (matches(line)) return { line, skipped };
      skipped.push(line);
    }
  }

  /** Resolves once stderr contains `text` (`timeoutMs` at most). */
  async stderrContains(text: string, timeoutMs = WAIT_MS): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!this.stderr.includes(text)) {
      if (Date.now() > end) throw new Error(`chat-client never wrote "${text}"; stderr:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Types a line, as a user would. */
  type(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** Ends the input; resolves with the exit code. */
  async end(timeoutMs = WAIT_MS): Promise<{ code: number | null; stderr: string; rest: unknown[] }> {
    this.child.stdin!.end();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`chat-client did not exit; stderr:\n${this.stderr}`)), timeoutMs);
    });
    try {
      const code = await Promise.race([this.exited, timeout]);
      return { code, stderr: this.stderr, rest: this.lines.splice(0) };
    } finally {
      clearTimeout(timer);
    }
  }
}
