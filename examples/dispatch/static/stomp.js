// A small STOMP 1.2 client over WebSocket for the board: CONNECT with login and passcode,
// SUBSCRIBE, UNSUBSCRIBE, SEND, DISCONNECT; MESSAGE, RECEIPT and ERROR frames; heart-beats.
// Section names below are those of the STOMP 1.2 specification.

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const LF = 10;
const CR = 13;

// What this client offers in the CONNECT `heart-beat` header, in milliseconds.
const HEARTBEAT_MS = 10000;

// "Value Encoding": every frame but CONNECT and CONNECTED escapes these in headers.
const ESCAPE = { "\\": "\\\\", "\r": "\\r", "\n": "\\n", ":": "\\c" };
const UNESCAPE = { "\\\\": "\\", "\\r": "\r", "\\n": "\n", "\\c": ":" };
const escape = (v) => String(v).replace(/[\\\r\n:]/g, (c) => ESCAPE[c]);
const unescape = (v) => v.replace(/\\[\\rnc]/g, (s) => UNESCAPE[s]);

function encodeFrame(command, headers, body = "") {
  const raw = command === "CONNECT";
  let head = `${command}\n`;
  for (const [name, value] of Object.entries(headers)) {
    head += raw ? `${name}:${value}\n` : `${escape(name)}:${escape(value)}\n`;
  }
  const length = encoder.encode(body).length;
  if (length > 0) head += `content-length:${length}\n`;
  return `${head}\n${body}\0`;
}

// Splits received bytes into frames, keeping a partial frame until the rest arrives.
class FrameReader {
  constructor() {
    this.buf = new Uint8Array(0);
  }

  // Adds bytes; returns the complete frames.
  push(bytes) {
    const joined = new Uint8Array(this.buf.length + bytes.length);
    joined.set(this.buf);
    joined.set(bytes, this.buf.length);
    this.buf = joined;
    const frames = [];
    for (;;) {
      // "Heart-beating": EOLs between frames.
      let start = 0;
      while (start < this.buf.length && (this.buf[start] === LF || this.buf[start] === CR)) start++;
      this.buf = this.buf.subarray(start);
      const frame = this.next();
      if (!frame) return frames;
      frames.push(frame);
    }
  }

  next() {
    const buf = this.buf;
    // The headers end at the first empty line ("\n" or "\r\n").
    let lineStart = 0;
    let bodyStart = -1;
    for (let i = 0; i < buf.length; i++) {
      if (buf[i] !== LF) continue;
      const empty = i === lineStart || (i === lineStart + 1 && buf[lineStart] === CR);
      if (empty && lineStart > 0) {
        bodyStart = i + 1;
        break;
      }
      lineStart = i + 1;
    }
    if (bodyStart < 0) return null;
    const lines = decoder.decode(buf.subarray(0, lineStart)).split("\n");
    const command = lines[0].replace(/\r$/, "");
    const raw = command === "CONNECTED";
    const headers = {};
    for (const line of lines.slice(1).map((l) => l.replace(/\r$/, ""))) {
      const colon = line.indexOf(":");
      if (colon < 0) continue;
      const name = raw ? line.slice(0, colon) : unescape(line.slice(0, colon));
      const value = raw ? line.slice(colon + 1) : unescape(line.slice(colon + 1));
      if (!(name in headers)) headers[name] = value; // "Repeated Header Entries": first wins
    }
    let bodyEnd;
    if (headers["content-length"] !== undefined) {
      bodyEnd = bodyStart + Number(headers["content-length"]);
      if (buf.length <= bodyEnd) return null; // the body and its NUL are not all here yet
    } else {
      bodyEnd = buf.indexOf(0, bodyStart);
      if (bodyEnd < 0) return null;
    }
    const body = decoder.decode(buf.subarray(bodyStart, bodyEnd));
    this.buf = buf.subarray(bodyEnd + 1);
    return { command, headers, body };
  }
}

// "Heart-beating": zero if either side says zero, else the larger of the two.
const negotiate = (mine, theirs) => (mine === 0 || theirs === 0 ? 0 : Math.max(mine, theirs));

export class StompClient {
  // Opens `url` and logs in as `login` with `passcode`. Callbacks: onConnect(headers) on CONNECTED,
  // onError(message, details) on an ERROR frame (the server closes after it),
  // onClose(reason) once the connection is gone.
  constructor(url, { login, passcode, onConnect, onError, onClose }) {
    this.callbacks = { onConnect, onError, onClose };
    this.subscriptions = new Map(); // subscription id → callback
    this.receipts = new Map(); // receipt id → resolve
    this.nextId = 1;
    this.reader = new FrameReader();
    this.timers = [];
    this.lastHeard = Date.now();
    this.ws = new WebSocket(url, ["v12.stomp"]);
    this.ws.binaryType = "arraybuffer";
    this.ws.onopen = () =>
      this.write("CONNECT", {
        "accept-version": "1.2",
        host: location.hostname,
        login,
        passcode,
        "heart-beat": `${HEARTBEAT_MS},${HEARTBEAT_MS}`,
      });
    this.ws.onmessage = (event) => this.receive(event.data);
    this.ws.onclose = (event) =>
      this.closed(this.closeReason || event.reason || `connection closed (code ${event.code})`);
  }

  // Subscribes; `callback(message)` gets { headers, body, json() }. Returns { id, unsubscribe() }.
  subscribe(destination, callback) {
    const id = `sub-${this.nextId++}`;
    this.subscriptions.set(id, callback);
    this.write("SUBSCRIBE", { id, destination, ack: "auto" });
    return {
      id,
      unsubscribe: () => {
        if (this.subscriptions.delete(id)) this.write("UNSUBSCRIBE", { id });
      },
    };
  }

  // Sends `payload` as JSON (nothing if it is undefined).
  send(destination, payload) {
    const headers = { destination };
    if (payload === undefined) return this.write("SEND", headers);
    headers["content-type"] = "application/json";
    this.write("SEND", headers, JSON.stringify(payload));
  }

  // Says goodbye politely: DISCONNECT, then close once the server confirms (or after 2 s).
  disconnect() {
    const receipt = `bye-${this.nextId++}`;
    const close = () => this.ws.close(1000);
    this.receipts.set(receipt, close);
    this.write("DISCONNECT", { receipt });
    setTimeout(close, 2000);
  }

  write(command, headers, body) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(encodeFrame(command, headers, body));
  }

  receive(data) {
    this.lastHeard = Date.now();
    const bytes = typeof data === "string" ? encoder.encode(data) : new Uint8Array(data);
    for (const frame of this.reader.push(bytes)) this.dispatch(frame);
  }

  dispatch({ command, headers, body }) {
    if (command === "CONNECTED") {
      this.startHeartbeats(headers["heart-beat"] || "0,0");
      this.callbacks.onConnect?.(headers);
    } else if (command === "MESSAGE") {
      const json = () => JSON.parse(body);
      this.subscriptions.get(headers.subscription)?.({ headers, body, json });
    } else if (command === "RECEIPT") {
      const done = this.receipts.get(headers["receipt-id"]);
      this.receipts.delete(headers["receipt-id"]);
      done?.();
    } else if (command === "ERROR") {
      this.callbacks.onError?.(headers.message || "error", body.trim());
    }
  }

  startHeartbeats(header) {
    const [serverSends, serverWants] = header.split(",").map(Number);
    const outgoing = negotiate(HEARTBEAT_MS, serverWants);
    const incoming = negotiate(HEARTBEAT_MS, serverSends);
    // Beat twice per interval: browsers delay timers in background tabs.
    const beat = () => this.ws.readyState === WebSocket.OPEN && this.ws.send("\n");
    if (outgoing > 0) this.timers.push(setInterval(beat, outgoing / 2));
    if (incoming > 0) {
      const check = () => {
        if (Date.now() - this.lastHeard <= 2 * incoming) return;
        this.closeReason = "the server went silent";
        this.ws.close();
      };
      this.timers.push(setInterval(check, incoming));
    }
  }

  closed(reason) {
    this.timers.forEach(clearInterval);
    this.timers = [];
    this.subscriptions.clear();
    this.callbacks.onClose?.(reason);
    this.callbacks = {};
  }
}
