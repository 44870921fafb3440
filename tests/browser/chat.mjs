// The chat page in a real browser: the system Chromium, driven by playwright-core (which never
// downloads a browser of its own). Run by tests/tests/chat_browser.rs against a chat server:
//
//   node tests/browser/chat.mjs <base-url> [--tcp-text TEXT] [--no-websocket]
//
// Three users log in through the page: ann, bob and cy (a bystander). ann talks in the lobby,
// whispers to bob, and sends an empty line. With --tcp-text the script then prints
// {"ready":true} and waits until every page shows TEXT, which the test publishes from a raw
// TCP client. With --no-websocket every page loses `window.WebSocket` before its scripts run,
// as in a browser without it, and must fall back to SockJS. Last line: one JSON object, {"ok":true,...} with exit code 0, or
// {"ok":false,"error":...} with exit code 1.

import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";
// The whole run, browser start included; a healthy run takes a few seconds.
const OVERALL_MS = 60_000;
// Any single wait for the page.
const WAIT_MS = 15_000;

let args;
try {
  args = parseArgs({
    allowPositionals: true,
    options: { "tcp-text": { type: "string" }, "no-websocket": { type: "boolean", default: false } },
  });
} catch (e) {
  args = null;
}
const baseUrl = args?.positionals[0];
if (!baseUrl || args.positionals.length !== 1) {
  console.error("usage: node chat.mjs <base-url> [--tcp-text TEXT] [--no-websocket]");
  process.exit(2);
}
const tcpText = args.values["tcp-text"];
const noWebSocket = args.values["no-websocket"];
// What each page used to reach the server: WebSocket connections and SockJS requests.
const transports = {};

let step = "start";
let browser = null;
const problems = []; // uncaught page errors and failed requests

function finish(result, code) {
  console.log(JSON.stringify(result));
  const close = browser ? browser.close().catch(() => {}) : Promise.resolve();
  close.finally(() => process.exit(code));
}

const overall = setTimeout(
  () => finish({ ok: false, step, error: `no result within ${OVERALL_MS} ms`, problems }, 1),
  OVERALL_MS,
);

// A user's page: logged in through the form, in the lobby.
async function login(context, name) {
  if (noWebSocket) await context.addInitScript(() => delete window.WebSocket);
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  const seen = (transports[name] = { websocket: 0, xhr_streaming: 0, xhr_send: 0 });
  page.on("websocket", () => seen.websocket++);
  page.on("request", (r) => {
    const kind = new URL(r.url()).pathname.split("/").pop();
    if (kind in seen) seen[kind]++;
  });
  page.on("pageerror", (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`${name}: ${r.url()}: ${r.failure()?.errorText}`));
  page.on("response", (r) => {
    // Browsers ask for /favicon.ico on their own; the chat has none.
    if (r.status() >= 400 && !r.url().endsWith("/favicon.ico")) {
      problems.push(`${name}: ${r.url()}: HTTP ${r.status()}`);
    }
  });
  await page.goto(baseUrl);
  seen.windowWebSocket = await page.evaluate(() => typeof window.WebSocket);
  await page.locator("#name").fill(name);
  await page.getByRole("button", { name: "Enter the chat" }).click();
  await page.locator("#chat").waitFor({ state: "visible" });
  await page.locator("#whoami").filter({ hasText: `as ${name}` }).waitFor();
  await page.locator("#room").filter({ hasText: "# lobby" }).waitFor();
  return page;
}

// Waits until the page's member list is exactly `names`.
async function membersAre(page, names) {
  await page.waitForFunction(
    (want) => [...document.querySelectorAll("#members li")].map((li) => li.textContent).join(",") === want,
    names.join(","),
  );
}

// Waits for a line in the page's message list holding `text`; returns its class.
async function line(page, text) {
  const li = page.locator("#messages li").filter({ hasText: text });
  await li.first().waitFor();
  return { count: await li.count(), className: await li.first().getAttribute("class") };
}

const texts = (page, selector) =>
  page.locator(selector).evaluateAll((els) => els.map((el) => el.textContent));

// Lines after the time stamp, in order.
const lines = (page) =>
  page
    .locator("#messages li")
    .evaluateAll((els) => els.map((li) => [...li.childNodes].slice(1).map((n) => n.textContent).join("")));

function check(condition, failure) {
  if (!condition) throw new Error(failure);
}

async function run() {
  const started = Date.now();
  step = "launch";
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: WAIT_MS,
  });
  const version = browser.version();
  // Playwright gives each launch a fresh profile, and each context its own storage: one
  // context per user, as separate people would have.
  const page = async (name) => login(await browser.newContext(), name);

  step = "login";
  const ann = await page("ann");
  const bob = await page("bob");
  const cy = await page("cy");

  step = "members";
  for (const p of [ann, bob, cy]) await membersAre(p, ["ann", "bob", "cy"]);
  const members = await texts(bob, "#members li");
  await line(ann, "bob joined");

  step = "say";
  await ann.locator("#text").fill("hello from ann");
  await ann.getByRole("button", { name: "Send", exact: true }).click();
  const said = {};
  for (const [name, p] of [["ann", ann], ["bob", bob], ["cy", cy]]) said[name] = await line(p, "ann: hello from ann");

  step = "whisper";
  // Clicking a member fills the whisper's recipient.
  await ann.locator("#members li", { hasText: "bob" }).click();
  const to = await ann.locator("#to").inputValue();
  await ann.locator("#whisper-text").fill("psst, bob");
  await ann.getByRole("button", { name: "Whisper" }).click();
  const whisperLine = "ann → bob (whisper): psst, bob";
  const whisper = { to, bob: await line(bob, whisperLine), ann: await line(ann, whisperLine) };
  // A later line to the room reaches cy after the whisper would have: cy has all it will get.
  await ann.locator("#text").fill("after the whisper");
  await ann.getByRole("button", { name: "Send", exact: true }).click();
  await line(cy, "ann: after the whisper");
  whisper.cy = (await lines(cy)).filter((l) => l.includes("psst")).length;
  check(to === "bob", `clicking bob in the members list put ${JSON.stringify(to)} in the whisper's To`);
  check(whisper.cy === 0, "cy, a bystander, saw the whisper");

  step = "empty";
  await ann.locator("#text").fill("   ");
  await ann.getByRole("button", { name: "Send", exact: true }).click();
  await ann.locator("#error").waitFor({ state: "visible" });
  const error = await ann.locator("#error").textContent();
  const othersError = [await bob.locator("#error").isVisible(), await cy.locator("#error").isVisible()];
  check(error.includes("the message is empty"), `ann's error line says ${JSON.stringify(error)}`);
  check(!othersError.includes(true), "the error line shows on another user's page");

  let tcp;
  if (tcpText) {
    step = "tcp";
    console.log(JSON.stringify({ ready: true }));
    tcp = {};
    for (const [name, p] of [["ann", ann], ["bob", bob], ["cy", cy]]) tcp[name] = await line(p, tcpText);
    tcp.members = await texts(bob, "#members li");
  }

  step = "report";
  check(problems.length === 0, `the pages had problems: ${problems.join("; ")}`);
  return {
    ok: true,
    browser: version,
    members,
    said,
    whisper,
    error,
    othersError,
    tcp,
    lines: { ann: await lines(ann), bob: await lines(bob), cy: await lines(cy) },
    transports,
    problems,
    ms: Date.now() - started,
  };
}

run().then(
  (result) => {
    clearTimeout(overall);
    finish(result, 0);
  },
  (e) => {
    clearTimeout(overall);
    finish({ ok: false, step, error: String(e?.message ?? e).split("\n")[0], problems }, 1);
  },
);
