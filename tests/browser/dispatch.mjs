// The dispatch board in a real browser: the system Chromium, driven by playwright-core. Run
// by tests/tests/dispatch_browser.rs against a dispatch server:
//
//   node tests/browser/dispatch.mjs <base-url> <screenshot.png>
//
// olivia (operator) opens the board; gina (guide, T1-short) and gus (guide, T1-long) open
// their call lists. The script prints {"ready":true}; the test then runs devices over TCP.
// The script waits until the board shows their status, a fault and an offline alert, clicks
// "Open" on gate-0001 and waits for the answer with its round trip, and waits for each
// guide's call. Last line: one JSON object, {"ok":true,...} with exit code 0, or
// {"ok":false,"error":...} with exit code 1.

import { chromium } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";
// The whole run, browser start included; a healthy run takes a few seconds.
const OVERALL_MS = 60_000;
// Any single wait for the page.
const WAIT_MS = 15_000;

const [baseUrl, screenshot] = process.argv.slice(2);
if (!baseUrl || !screenshot) {
  console.error("usage: node dispatch.mjs <base-url> <screenshot.png>");
  process.exit(2);
}

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

// A signed-in page of its own browser context, as separate people would have.
async function signIn(name, password) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on("pageerror", (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`${name}: ${r.url()}: ${r.failure()?.errorText}`));
  page.on("response", (r) => {
    if (r.status() >= 400 && !r.url().endsWith("/favicon.ico")) {
      problems.push(`${name}: ${r.url()}: HTTP ${r.status()}`);
    }
  });
  await page.goto(baseUrl);
  await page.locator("#name").fill(name);
  await page.locator("#password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#whoami").filter({ hasText: `as ${name}` }).waitFor();
  return page;
}

const texts = (page, selector) =>
  page.locator(selector).evaluateAll((els) => els.map((el) => el.textContent));

// Waits for a list item of `list` holding `text`; returns its text without the time stamp.
async function item(page, list, text) {
  const li = page.locator(`#${list} li`).filter({ hasText: text });
  await li.first().waitFor();
  return li.first().evaluate((el) => [...el.childNodes].slice(1).map((n) => n.textContent).join(""));
}

// Waits until device `id`'s row shows `state`.
async function rowState(page, id, state) {
  const cell = page.locator(`tr[data-id="${id}"] td:nth-child(2)`);
  await page.waitForFunction(
    ([sel, want]) => document.querySelector(sel)?.textContent === want,
    [`tr[data-id="${id}"] td:nth-child(2)`, state],
  );
  return { state: await cell.textContent(), className: await cell.getAttribute("class") };
}

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

  step = "sign in";
  const olivia = await signIn("olivia", "aivilo");
  await olivia.locator("#board").waitFor({ state: "visible" });
  await olivia.locator("#areas button").nth(7).waitFor();
  await olivia.locator("#area-title").filter({ hasText: "Devices in T1-short" }).waitFor();
  await olivia.locator('tr[data-id="gate-0001"]').waitFor();
  const loginHidden = await olivia.locator("#login").isHidden();
  const gina = await signIn("gina", "anig");
  const gus = await signIn("gus", "sug");
  for (const [p, area] of [[gina, "T1-short"], [gus, "T1-long"]]) {
    await p.locator("#calls-title").filter({ hasText: `Calls in ${area}` }).waitFor();
  }
  const guideSeesBoard = await gina.locator("#board").isVisible();
  console.log(JSON.stringify({ ready: true }));

  step = "status";
  const rows = {
    "kiosk-0005": await rowState(olivia, "kiosk-0005", "ok"),
    "gate-0001": await rowState(olivia, "gate-0001", "fault"),
    "gate-0002": await rowState(olivia, "gate-0002", "offline"),
  };

  step = "alerts";
  const alerts = {
    fault: await item(olivia, "alerts", "FAULT gate-0001"),
    offline: await item(olivia, "alerts", "OFFLINE gate-0002"),
  };

  step = "command";
  await olivia.locator('tr[data-id="gate-0001"]').getByRole("button", { name: "Open" }).click();
  const command = await item(olivia, "commands", "done in");

  step = "calls";
  const calls = {
    gina: await item(gina, "calls", "kiosk-0005"),
    gus: await item(gus, "calls", "kiosk-0015"),
  };
  // Each guide has now had every call that was coming: kiosk-0015 called after kiosk-0005.
  calls.ginaAll = await texts(gina, "#calls li");
  calls.gusAll = await texts(gus, "#calls li");

  step = "screenshot";
  await olivia.screenshot({ path: screenshot, fullPage: true });

  step = "report";
  check(problems.length === 0, `the pages had problems: ${problems.join("; ")}`);
  return {
    ok: true,
    browser: version,
    loginHidden,
    guideSeesBoard,
    rows,
    alerts,
    command,
    calls,
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
