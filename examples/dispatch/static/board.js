// The operators' board and the guides' call list, over STOMP on WebSocket.
//
// Operators see every area's counts (every second), the devices of the area they pick (live),
// the alerts, and the commands with their round trip. Guides see the calls from kiosks in
// their area. What a person may see is decided by the server; the page only asks.

import { StompClient } from "./stomp.js";

const $ = (id) => document.getElementById(id);
const STATES = ["ok", "warning", "fault", "offline", "unseen"];
const ALERT_LABELS = { fault: "FAULT", offline: "OFFLINE", "unanswered-call": "CALL", "payment-error": "PAYMENT" };
const ACTIONS = { gate: ["open", "close"], kiosk: ["restart"], station: ["restart"] };
const MAX_LINES = 200; // alerts, commands and calls kept on screen

let client = null;
let me = null;
let area = null; // the area whose devices are listed
const clicked = new Map(); // device → when its command button was clicked (performance.now())
const started = new Map(); // command id → when its button was clicked

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

function setState(state, text) {
  $("state").dataset.state = state;
  $("state").textContent = text;
}

const clock = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "never");

function timeEl(ms) {
  const t = document.createElement("time");
  t.textContent = clock(ms);
  return t;
}

// Prepends `li` to `list`, keeping it to MAX_LINES.
function prepend(list, li) {
  list.prepend(li);
  while (list.children.length > MAX_LINES) list.lastElementChild.remove();
}

// ---- areas and devices -------------------------------------------------------------------

function renderSummary(summary) {
  const areas = $("areas");
  for (const a of summary.areas) {
    let button = areas.querySelector(`button[data-area="${a.area}"]`);
    if (!button) {
      button = document.createElement("button");
      button.dataset.area = a.area;
      button.addEventListener("click", () => selectArea(a.area));
      areas.append(button);
    }
    button.replaceChildren();
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = a.area;
    button.append(name);
    for (const s of STATES) {
      const n = a.counts[s] ?? 0;
      if (n === 0) continue;
      const c = document.createElement("span");
      c.className = `count ${s}`;
      c.textContent = `${n} ${s}`;
      button.append(c);
    }
    const guides = document.createElement("span");
    guides.className = "guides";
    guides.textContent = a.guides.length ? ` guide: ${a.guides.join(", ")}` : " no guide";
    button.append(guides);
  }
  if (!area && summary.areas.length) selectArea(summary.areas[0].area);
}

function selectArea(name) {
  area = name;
  for (const b of $("areas").querySelectorAll("button")) {
    if (b.dataset.area === name) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  }
  $("area-title").textContent = `Devices in ${name}`;
  $("devices").replaceChildren();
  // Answered once; the live changes arrive on /topic/board.devices.
  const sub = client.subscribe(`/app/board.area.${name}`, (m) => {
    sub.unsubscribe();
    if (name !== area) return;
    for (const d of m.json()) renderDevice(d);
  });
}

function renderDevice(d) {
  if (d.area !== area) return;
  let row = $("devices").querySelector(`tr[data-id="${d.id}"]`);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.id = d.id;
    for (let i = 0; i < 5; i++) row.append(document.createElement("td"));
    row.cells[2].className = "detail";
    for (const action of ACTIONS[d.kind] ?? []) {
      const b = document.createElement("button");
      b.textContent = action[0].toUpperCase() + action.slice(1);
      b.addEventListener("click", () => command(d.kind, d.id, action));
      row.cells[4].append(b);
    }
    $("devices").append(row);
  }
  row.cells[0].textContent = d.id;
  row.cells[1].textContent = d.state;
  row.cells[1].className = d.state;
  row.cells[2].textContent = d.detail;
  row.cells[3].textContent = clock(d.since);
}

// ---- alerts ------------------------------------------------------------------------------

function renderAlert(a) {
  const existing = $("alerts").querySelector(`li[data-id="${a.id}"]`);
  if (a.cleared) {
    existing?.remove();
  } else if (!existing) {
    const li = document.createElement("li");
    li.dataset.id = a.id;
    li.className = a.kind;
    li.append(timeEl(a.raised_at), `${ALERT_LABELS[a.kind] ?? a.kind} ${a.device} (${a.area}): ${a.detail}`);
    prepend($("alerts"), li);
  }
  $("alert-count").textContent = `(${$("alerts").children.length})`;
}

// ---- commands ----------------------------------------------------------------------------

function command(kind, device, action) {
  showError("");
  clicked.set(device, performance.now());
  client.send(`/app/${kind}.${device}.${action}`);
}

function renderCommand(e) {
  const c = e.command;
  let li = $("commands").querySelector(`li[data-id="${c.id}"]`);
  if (!li) {
    li = document.createElement("li");
    li.dataset.id = c.id;
    prepend($("commands"), li);
  }
  if (e.status === "sent" && c.issued_by === me?.name && clicked.has(c.device)) {
    started.set(c.id, clicked.get(c.device));
    clicked.delete(c.device);
  }
  let outcome = e.status;
  if (e.status === "done" || e.status === "failed") {
    const t0 = started.get(c.id);
    started.delete(c.id);
    // Our own click to the answer on this page; else the server's issue-to-answer time.
    const ms = t0 === undefined ? e.round_trip_ms : performance.now() - t0;
    outcome = `${e.status} in ${Math.round(ms)} ms`;
    if (e.detail) outcome += ` (${e.detail})`;
  } else if (e.status === "timed-out") {
    started.delete(c.id);
    outcome = `timed out: ${e.detail}`;
  }
  li.className = e.status;
  li.replaceChildren(timeEl(c.issued_at), `${c.id} ${c.action} ${c.device} (${c.issued_by}): ${outcome}`);
}

// ---- guides ------------------------------------------------------------------------------

function renderCall(call) {
  const li = document.createElement("li");
  li.dataset.id = call.id;
  li.append(timeEl(call.at), `${call.kiosk} (${call.area}): ${call.reason || "call button"}`);
  prepend($("calls"), li);
}

// ---- session -----------------------------------------------------------------------------

function start(headers) {
  setState("connected", "connected");
  client.subscribe("/user/queue/errors", (m) => {
    let text = m.body;
    try {
      const body = m.json();
      text = body.error ?? body.message ?? text;
    } catch {
      // A plain-text error.
    }
    showError(text);
  });
  const sub = client.subscribe("/app/whoami", (m) => {
    sub.unsubscribe();
    me = m.json();
    $("whoami").textContent = `as ${me.name} (${me.roles.join(", ")}${me.area ? `, ${me.area}` : ""})`;
    $("login").hidden = true;
    $("logout").hidden = false;
    if (me.roles.includes("operator")) startBoard();
    else if (me.roles.includes("guide")) startGuide();
    else showError("this login has no role on the board");
  });
}

function startBoard() {
  $("board").hidden = false;
  client.subscribe("/topic/board.summary", (m) => renderSummary(m.json()));
  client.subscribe("/topic/board.devices", (m) => renderDevice(m.json()));
  client.subscribe("/topic/alerts", (m) => renderAlert(m.json()));
  client.subscribe("/topic/board.commands", (m) => renderCommand(m.json()));
  const sub = client.subscribe("/app/board.overview", (m) => {
    sub.unsubscribe();
    const overview = m.json();
    renderSummary(overview.summary);
    // Oldest first, so the newest ends on top.
    for (const a of overview.alerts.slice().reverse()) renderAlert(a);
  });
}

function startGuide() {
  $("guide").hidden = false;
  $("calls-title").textContent = `Calls in ${me.area ?? "no area"}`;
  // Listening for calls is what puts a guide on duty.
  client.subscribe("/user/queue/calls", (m) => renderCall(m.json()));
}

function reset() {
  client = null;
  me = null;
  area = null;
  clicked.clear();
  started.clear();
  for (const id of ["areas", "devices", "alerts", "commands", "calls"]) $(id).replaceChildren();
  $("board").hidden = true;
  $("guide").hidden = true;
  $("login").hidden = false;
  $("logout").hidden = true;
  $("whoami").textContent = "";
  $("alert-count").textContent = "";
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  const login = $("name").value.trim();
  const passcode = $("password").value;
  // CONNECT headers are sent as they are (STOMP 1.2 "Value Encoding"): no line breaks.
  if (!login || /[\r\n:]/.test(login) || /[\r\n]/.test(passcode)) {
    showError("enter a login and a password (no line breaks, no ':' in the login)");
    return;
  }
  showError("");
  setState("connecting", "connecting…");
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  client = new StompClient(url, {
    login,
    passcode,
    onConnect: start,
    onError: (message, details) => showError(details ? `${message}: ${details}` : message),
    onClose: (reason) => {
      setState("closed", `disconnected: ${reason}`);
      reset();
    },
  });
});

$("logout").addEventListener("click", () => client?.disconnect());
