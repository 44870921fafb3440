// The chat page: log in, pick a room, talk, whisper. All text goes in via textContent.

import { StompClient } from "./stomp.js";

const ROOMS = ["lobby", "kitchen", "garden"];
const $ = (id) => document.getElementById(id);

let client = null;
let room = null; // { name, topic }
let members = new Set();
let seen = new Set(); // ids of the room's messages on screen (history and live may overlap)
let quitting = false; // the user asked to leave: the close is no error

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  showError("");
  client = new StompClient(`${location.protocol}//${location.host}/ws`, {
    login: $("name").value.trim(),
    onConnect: (headers) => start(headers["user-name"]),
    onError: (message, details) => showError(details ? `${message}: ${details}` : message),
    onClose: (reason) => stop(reason),
  });
});

$("logout").addEventListener("click", () => {
  quitting = true;
  client?.disconnect();
});

function start(user) {
  $("whoami").textContent = `as ${user}`;
  $("login").hidden = true;
  $("chat").hidden = false;
  $("logout").hidden = false;
  client.subscribe("/user/queue/errors", (m) => showError(m.json().error));
  client.subscribe("/user/queue/whispers", (m) => showWhisper(m.json()));
  enter("lobby");
}

function stop(reason) {
  if (!quitting && $("error").hidden) showError(`Disconnected: ${reason}`);
  quitting = false;
  client = null;
  room = null;
  $("whoami").textContent = "";
  $("login").hidden = false;
  $("chat").hidden = true;
  $("logout").hidden = true;
}

function enter(name) {
  if (room) {
    client.send(`/app/chat.leave.${room.name}`);
    room.topic.unsubscribe();
  }
  const current = { name, topic: null };
  room = current;
  members = new Set();
  seen = new Set();
  $("messages").replaceChildren();
  $("room").textContent = `# ${name}`;
  renderRooms();
  renderMembers();
  // The topic first, so nothing said after the history is answered goes missing.
  current.topic = client.subscribe(`/topic/rooms.${name}`, (m) => onEvent(m.json()));
  once(`/app/rooms.${name}.history`, (history) => room === current && history.forEach(showMessage));
  once(`/app/rooms.${name}.members`, (list) => {
    if (room !== current) return;
    list.forEach((user) => members.add(user));
    renderMembers();
  });
  client.send(`/app/chat.join.${name}`);
}

// Subscribes for the one answer of a subscribe mapping.
function once(destination, callback) {
  const sub = client.subscribe(destination, (m) => {
    sub.unsubscribe();
    callback(m.json());
  });
}

function onEvent(event) {
  if (event.kind === "join") members.add(event.user);
  if (event.kind === "leave") members.delete(event.user);
  renderMembers();
  showMessage(event);
}

function renderRooms() {
  const items = ROOMS.map((name) => {
    const button = document.createElement("button");
    button.textContent = name;
    if (room?.name === name) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => room?.name !== name && enter(name));
    const li = document.createElement("li");
    li.append(button);
    return li;
  });
  $("rooms").replaceChildren(...items);
}

function renderMembers() {
  const items = [...members].sort().map((user) => {
    const li = document.createElement("li");
    li.textContent = user;
    li.title = `whisper to ${user}`;
    li.addEventListener("click", () => {
      $("to").value = user;
      $("whisper-text").focus();
    });
    return li;
  });
  $("members").replaceChildren(...items);
}

function line(timestamp, className, text) {
  const li = document.createElement("li");
  li.className = className;
  const time = document.createElement("time");
  time.textContent = new Date(timestamp).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  li.append(time, text);
  return li;
}

function showMessage(m) {
  if (seen.has(m.id)) return;
  seen.add(m.id);
  const text = m.kind === "chat" ? `${m.user}: ${m.text}` : `${m.user} ${m.kind === "join" ? "joined" : "left"}`;
  const li = line(m.timestamp, m.kind === "chat" ? "" : "event", text);
  li.dataset.id = m.id;
  // In id order: a history answer may arrive after live messages.
  const later = [...$("messages").children].find((el) => el.dataset.id && Number(el.dataset.id) > m.id);
  $("messages").insertBefore(li, later ?? null);
  scrollDown();
}

function showWhisper(w) {
  $("messages").append(line(w.timestamp, "whisper", `${w.from} → ${w.to} (whisper): ${w.text}`));
  scrollDown();
}

function scrollDown() {
  $("messages").scrollTop = $("messages").scrollHeight;
}

$("say").addEventListener("submit", (event) => {
  event.preventDefault();
  showError("");
  client.send(`/app/chat.send.${room.name}`, { text: $("text").value });
  $("text").value = "";
});

$("whisper").addEventListener("submit", (event) => {
  event.preventDefault();
  showError("");
  client.send("/app/chat.whisper", { to: $("to").value.trim(), text: $("whisper-text").value });
  $("whisper-text").value = "";
});
