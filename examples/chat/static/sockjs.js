// A small SockJS client for browsers without WebSocket (or behind proxies that refuse it),
// written for this example: the xhr-streaming transport, over fetch(). It looks enough like
// a WebSocket for stomp.js: readyState, send(), close(), onopen, onmessage, onclose.
// Frames (SockJS protocol): "o" open, "h" heart-beat, "a[...]" messages, "c[code,reason]"
// close; one per line on xhr_streaming.

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

const randomId = () => Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16)).join("");

export class SockJsSocket {
  // `base` is the endpoint's http(s) URL, e.g. "https://host/ws".
  constructor(base) {
    const server = String(Math.floor(Math.random() * 1000)).padStart(3, "0");
    this.url = `${base}/${server}/${randomId()}`;
    this.readyState = CONNECTING;
    this.transport = "xhr-streaming";
    this.outbox = []; // messages waiting for the next xhr_send
    this.sending = false;
    this.abort = new AbortController();
    this.receive();
  }

  // One xhr_streaming request after another: the server ends each after 128 KiB.
  async receive() {
    const decoder = new TextDecoder();
    while (this.readyState !== CLOSED) {
      let response;
      try {
        response = await fetch(`${this.url}/xhr_streaming`, { method: "POST", signal: this.abort.signal });
      } catch {
        return this.closed(1006, "Unable to connect");
      }
      if (!response.ok) return this.closed(1006, `HTTP ${response.status}`);
      const reader = response.body.getReader();
      let pending = "";
      for (;;) {
        let chunk;
        try {
          chunk = await reader.read();
        } catch {
          return this.closed(1006, "Connection lost");
        }
        if (chunk.done) break;
        pending += decoder.decode(chunk.value, { stream: true });
        let newline;
        while ((newline = pending.indexOf("\n")) >= 0) {
          const frame = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          this.frame(frame);
          if (this.readyState === CLOSED) return;
        }
      }
    }
  }

  frame(frame) {
    const type = frame[0];
    if (type === "o" && this.readyState === CONNECTING) {
      this.readyState = OPEN;
      this.onopen?.({});
    } else if (type === "a") {
      for (const data of JSON.parse(frame.slice(1))) this.onmessage?.({ data });
    } else if (type === "c") {
      const [code, reason] = JSON.parse(frame.slice(1));
      this.closed(code, reason);
    }
    // "h": a heart-beat, or the 2 KiB prelude of "h"s.
  }

  send(data) {
    if (this.readyState !== OPEN) return;
    this.outbox.push(String(data));
    this.flush();
  }

  // One xhr_send in flight at a time, carrying everything queued meanwhile, in order.
  async flush() {
    if (this.sending || this.outbox.length === 0) return;
    this.sending = true;
    const batch = this.outbox;
    this.outbox = [];
    try {
      const response = await fetch(`${this.url}/xhr_send`, {
        method: "POST",
        headers: { "Content-Type": "text/plain;charset=UTF-8" },
        body: JSON.stringify(batch),
        signal: this.abort.signal,
      });
      if (!response.ok) return this.closed(1006, `Sending failed: HTTP ${response.status}`);
    } catch {
      return this.closed(1006, "Sending failed");
    } finally {
      this.sending = false;
    }
    this.flush();
  }

  close(code = 1000, reason = "Normal closure") {
    this.closed(code, reason);
  }

  closed(code, reason) {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.abort.abort();
    this.onclose?.({ code, reason, wasClean: code !== 1006 });
  }
}
