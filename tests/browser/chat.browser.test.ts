// Browser test: examples/chat-web (React, the generated hook and client) in
// real headless Chromium, against the example server (examples/chat-server)
// serving the built app with WEB_DIR. Two pages, two users, one thread:
// messages and typing indicators cross over, and a server restart shows
// "Reconnecting…", then "Connected", that the lost history could not be
// recovered (the thread is reloaded), after which messages flow again.
// Screenshots go to test-output/browser/.
//
// Needs Chromium (Debian's `chromium`; CHROMIUM_BIN overrides the path) and
// the chat-server binary (CHAT_SERVER_BIN, default target/debug/chat-server).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { ChatServer, ROOT, SERVER_BIN, freePort } from "../support/chat_server";

const CHROMIUM =
  process.env.CHROMIUM_BIN ?? ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => fs.existsSync(p));
const WEB_APP = path.join(ROOT, "examples/chat-web");
const WEB_DIR = path.join(ROOT, "target/chat-web-test");
const OUT = path.join(ROOT, "test-output/browser");
/** Every wait is bounded by this unless said otherwise. */
const WAIT_MS = 10_000;

let port = 0;
let base = "";
let server: ChatServer | undefined;
let browser: Browser | undefined;
let alice: Page;
let bob: Page;
/** Socket.IO handshakes (new Engine.IO sessions) each page started. */
const handshakes = new Map<Page, number>();

async function startServer(): Promise<void> {
  server = await ChatServer.start(port, { WEB_DIR });
}

async function stopServer(): Promise<void> {
  const running = server;
  server = undefined;
  await running?.stop("SIGKILL");
}

function viteBuild(outDir: string, env: NodeJS.ProcessEnv, extra: string[] = []): void {
  const vite = path.join(ROOT, "node_modules/.bin/vite");
  execFileSync(vite, ["build", "--outDir", outDir, "--emptyOutDir", "--logLevel", "warn", ...extra], {
    cwd: WEB_APP,
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit"],
    timeout: 120_000,
  });
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true }).catch(() => {});
}

/** The text of `[data-testid=id]`, or null when absent. */
function textOf(page: Page, id: string): Promise<string | null> {
  return page.evaluate((id) => document.querySelector(`[data-testid="${id}"]`)?.textContent ?? null, id);
}

/** Waits until `[data-testid=id]` contains `text`; fails with what it showed and a screenshot. */
async function waitText(page: Page, id: string, text: string, timeout = WAIT_MS): Promise<void> {
  try {
    await page.waitForFunction(
      ([id, text]) => document.querySelector(`[data-testid="${id}"]`)?.textContent?.includes(text) === true,
      [id, text] as const,
      { timeout, polling: 50 },
    );
  } catch {
    const who = (await textOf(page, "me")) ?? "page";
    await screenshot(page, `failed-${who}-${id}`);
    const shown = await textOf(page, id);
    throw new assert.AssertionError({
      message: `${who}: [data-testid=${id}] should contain ${JSON.stringify(text)} within ${timeout} ms; it shows ${JSON.stringify(shown)} (status ${JSON.stringify(await textOf(page, "status"))}, problem ${JSON.stringify(await textOf(page, "problem"))})`,
    });
  }
}

/** Counts the Socket.IO handshakes a page starts: requests or WebSockets to /socket.io/ without a session id. */
function countHandshakes(page: Page): void {
  handshakes.set(page, 0);
  const isHandshake = (url: string) => url.includes("/socket.io/") && !/[?&]sid=/.test(url);
  page.on("request", (r) => {
    if (r.method() === "GET" && r.resourceType() !== "websocket" && isHandshake(r.url())) {
      handshakes.set(page, (handshakes.get(page) ?? 0) + 1);
    }
  });
  page.on("websocket", (ws) => {
    if (isHandshake(ws.url())) handshakes.set(page, (handshakes.get(page) ?? 0) + 1);
  });
}

async function openAs(user: string, urlPath = "/"): Promise<Page> {
  if (browser === undefined) throw new Error("no browser");
  const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
  context.setDefaultTimeout(WAIT_MS);
  const page = await context.newPage();
  countHandshakes(page);
  await page.goto(`${base}${urlPath}`);
  await page.getByTestId("user").fill(user);
  await page.getByTestId("sign-in").click();
  await waitText(page, "status", "Connected");
  return page;
}

async function join(page: Page, thread: string): Promise<void> {
  await page.getByTestId("thread").fill(thread);
  await page.getByTestId("join").click();
}

async function send(page: Page, content: string): Promise<void> {
  await page.getByTestId("message").fill(content);
  await page.getByTestId("send").click();
}

before(async () => {
  if (CHROMIUM === undefined || !fs.existsSync(CHROMIUM)) {
    throw new Error(
      "Chromium not found (looked for /usr/bin/chromium, /usr/bin/chromium-browser; set CHROMIUM_BIN): " +
        "install it with `apt-get install -y chromium`, or set EVCONTRACT_SKIP_BROWSER=1 to skip this test",
    );
  }
  if (!fs.existsSync(SERVER_BIN)) throw new Error(`no chat-server binary at ${SERVER_BIN}: cargo build -p chat-server`);
  fs.mkdirSync(OUT, { recursive: true });
  // The production build (what the README serves), and a React development
  // build under /strict/, where StrictMode mounts every effect twice.
  viteBuild(WEB_DIR, { NODE_ENV: "production" });
  viteBuild(path.join(WEB_DIR, "strict"), { NODE_ENV: "development" }, ["--mode", "development"]);
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
  await startServer();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Playwright adds --headless and a fresh temporary --user-data-dir itself.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: 30_000,
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  await stopServer();
});

const THREAD = `general-${process.pid}`;

test("two users sign in with dev tokens and join the same thread", async () => {
  alice = await openAs("alice");
  bob = await openAs("bob");
  await join(alice, THREAD);
  await waitText(alice, "members", "alice");
  await join(bob, THREAD);
  await waitText(bob, "members", "alice, bob");
  // Alice hears about Bob through the `joined` event.
  await waitText(alice, "members", "alice, bob");
  // One connection per page (the app runs in StrictMode; production React mounts once).
  assert.equal(handshakes.get(alice), 1);
  assert.equal(handshakes.get(bob), 1);
});

test("a message sent in one page appears in the other", async () => {
  await send(alice, "hello from alice");
  await waitText(bob, "messages", "alice: hello from alice");
  await waitText(alice, "messages", "alice: hello from alice");
  await send(bob, "hi alice");
  await waitText(alice, "messages", "bob: hi alice");
});

test("typing in one page shows the indicator in the other", async () => {
  await bob.getByTestId("message").fill("still typ");
  await waitText(alice, "typing", "bob is typing…");
  assert.equal((await textOf(bob, "typing"))?.trim(), "", "nobody else is typing for bob");
  await screenshot(alice, "alice-sees-bob-typing");
  await bob.getByTestId("send").click();
  await waitText(alice, "messages", "bob: still typ");
  // The message ends the indicator.
  await alice.waitForFunction(
    () => document.querySelector('[data-testid="typing"]')?.textContent?.includes("typing") === false,
    undefined,
    { timeout: WAIT_MS },
  );
  await screenshot(alice, "alice");
  await screenshot(bob, "bob");
});

test("server restart: Reconnecting…, then Connected, told what could not be recovered, and messages flow again", async () => {
  await stopServer();
  await waitText(alice, "status", "Reconnecting…");
  await waitText(bob, "status", "Reconnecting…");
  // A failed attempt while the server is down is reported as the last error.
  await waitText(alice, "last-error", "Last error:");
  await waitText(bob, "last-error", "Last error:");
  await screenshot(alice, "alice-reconnecting");
  await screenshot(bob, "bob-reconnecting");

  await startServer();
  await waitText(alice, "status", "Connected", 20_000);
  await waitText(bob, "status", "Connected", 20_000);
  // The app joins its thread again on the new connection (the new server
  // starts with empty rooms), so both end up listed again.
  await waitText(alice, "members", "alice, bob");
  await waitText(bob, "members", "alice, bob");
  // The restarted server lost the thread's history: each page is told it
  // could not recover (reason `epoch`), reloads the thread and says so.
  await waitText(alice, "gap", "could not be recovered");
  await waitText(alice, "gap", "the server lost its history");
  await waitText(bob, "gap", "the server lost its history");
  await send(bob, "back again");
  await waitText(alice, "messages", "bob: back again");
  await send(alice, "welcome back");
  await waitText(bob, "messages", "alice: welcome back");
  await screenshot(alice, "alice-after-restart");
  await screenshot(bob, "bob-after-restart");
});

test("React StrictMode (development build): the hook opens one connection, not two", async () => {
  const carol = await openAs("carol", "/strict/");
  // Let a second (duplicate) connection show up, if there were one.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(handshakes.get(carol), 1, "StrictMode mounted the hook twice and it connected twice");
  await join(carol, THREAD);
  await waitText(carol, "members", "carol");
  await waitText(alice, "members", "carol");
  await send(carol, "strictly once");
  await waitText(bob, "messages", "carol: strictly once");
  // One message, not two: a duplicate subscription would render it once
  // (dedup by id) but a duplicate connection would have shown above.
  const count = await bob.evaluate(
    () => [...document.querySelectorAll('[data-testid="messages"] li')].filter((li) => li.textContent?.includes("strictly once")).length,
  );
  assert.equal(count, 1);
  await screenshot(carol, "carol-strict");
  await carol.context().close();
});
