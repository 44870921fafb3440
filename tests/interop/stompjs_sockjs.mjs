// Interop check: @stomp/stompjs carried by sockjs-client (both clients we did not write)
// against our server's SockJS endpoint, forced onto one SockJS transport.
//
//   node stompjs_sockjs.mjs HTTP_URL --transport websocket|xhr-streaming|xhr-polling
//
// Covers CONNECT, SUBSCRIBE with receipts, SEND with a receipt, a client-individual queue
// with ACK, an auto-ack topic whose bodies carry the characters SockJS must escape, and
// DISCONNECT with a receipt. Prints one JSON line; exit code 0 only on success, otherwise
// non-zero with {"ok":false,"error":...}. Installed with `npm ci` in tests/interop.

import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect, importOrExit, withTimeout as withDeadline } from './support.mjs';

const [{ Client }, { default: SockJS }] = await importOrExit(['@stomp/stompjs', 'sockjs-client']);

// Generous: a healthy run takes well under a second (polling adds a round trip or two).
const STEP_TIMEOUT_MS = 10_000;
const OVERALL_TIMEOUT_MS = 30_000;
// Characters sockjs-protocol has the server escape, a quote, a backslash, a newline and
// some non-ASCII text.
const TRICKY_BODY = 'line 1\nline 2 "quoted" \\ \u2028\u200d\ufff0 héllo ✓';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: { transport: { type: 'string' } },
});
const url = positionals[0];
const transport = opts.transport;
const debugLog = [];

function finish(ok, fields) {
  const line = { ok, transport, ...fields };
  if (!ok) line.debug = debugLog.slice(-30);
  console.log(JSON.stringify(line));
  process.exit(ok ? 0 : 1);
}

function fail(error) {
  finish(false, { error: String(error) });
}

if (!url || !['websocket', 'xhr-streaming', 'xhr-polling'].includes(transport)) {
  fail('usage: node stompjs_sockjs.mjs HTTP_URL --transport websocket|xhr-streaming|xhr-polling');
}
setTimeout(() => fail(`overall timeout of ${OVERALL_TIMEOUT_MS} ms`), OVERALL_TIMEOUT_MS).unref();

function withTimeout(promise, what) {
  return withDeadline(promise, what, STEP_TIMEOUT_MS);
}

/** One waiter per subscription: resolves with its next message. */
function inbox() {
  const queued = [];
  let waiter = null;
  return {
    handler: (m) => (waiter ? (waiter(m), (waiter = null)) : queued.push(m)),
    next: (what) =>
      queued.length > 0
        ? Promise.resolve(queued.shift())
        : withTimeout(new Promise((resolve) => (waiter = resolve)), what),
    leftovers: () => queued.map((m) => m.body),
  };
}

async function run() {
  let sock = null;
  const state = { closing: false, disconnectReceipt: null };
  const client = new Client({
    webSocketFactory: () => {
      sock = new SockJS(url, null, { transports: [transport] });
      return sock;
    },
    reconnectDelay: 0,
    heartbeatIncoming: 10_000,
    heartbeatOutgoing: 10_000,
    disconnectHeaders: { receipt: 'bye' },
    debug: (s) => {
      debugLog.push(s);
      if (debugLog.length > 200) debugLog.shift();
    },
  });
  const connected = new Promise((resolve, reject) => {
    client.onConnect = (frame) => resolve(frame);
    client.onStompError = (frame) => fail(`ERROR frame: ${frame.headers.message} ${frame.body}`);
    client.onWebSocketError = () => reject(new Error('SockJS error'));
    client.onWebSocketClose = (evt) => {
      if (!state.closing) fail(`SockJS closed unexpectedly (code ${evt.code} ${evt.reason})`);
    };
    client.onDisconnect = (frame) => {
      state.disconnectReceipt = frame.headers['receipt-id'];
    };
  });
  client.activate();
  const frame = await withTimeout(connected, 'CONNECTED');
  const results = { version: frame.headers.version, used: sock.transport };
  expect(sock.transport === transport, `SockJS used ${sock.transport}, not ${transport}`);
  expect(frame.headers.version === '1.2', `negotiated ${frame.headers.version}`);
  const receipt = (id) => {
    const got = new Promise((resolve) => client.watchForReceipt(id, resolve));
    return () => withTimeout(got, `RECEIPT ${id}`);
  };

  const run = randomUUID().slice(0, 8);
  const queue = `/queue/sockjs-${transport}-${run}`;
  const topic = `/topic/sockjs-${transport}-${run}`;

  // Queue, client-individual: subscribe, send, receive, ack, each confirmed by a receipt.
  const q = inbox();
  let r = receipt('sub-q');
  client.subscribe(queue, q.handler, { id: 'q', ack: 'client-individual', receipt: 'sub-q' });
  await r();
  r = receipt('send-q');
  client.publish({
    destination: queue,
    body: 'job 1 ✓',
    headers: { 'content-type': 'text/plain;charset=utf-8', 'x-run': run, receipt: 'send-q' },
  });
  await r();
  let m = await q.next('the queue message');
  expect(m.body === 'job 1 ✓', `queue body ${JSON.stringify(m.body)}`);
  expect(m.headers['x-run'] === run, `x-run ${m.headers['x-run']}`);
  expect(m.headers.ack, 'MESSAGE of a client-individual subscription has no ack header');
  r = receipt('ack-q');
  m.ack({ receipt: 'ack-q' });
  await r();
  results.ack = true;

  // Topic, auto ack, with a body that needs SockJS's JSON escaping both ways.
  const t = inbox();
  r = receipt('sub-t');
  client.subscribe(topic, t.handler, { id: 't', receipt: 'sub-t' });
  await r();
  for (let i = 0; i < 3; i++) client.publish({ destination: topic, body: `${TRICKY_BODY} #${i}` });
  for (let i = 0; i < 3; i++) {
    m = await t.next(`topic message ${i}`);
    expect(m.body === `${TRICKY_BODY} #${i}`, `topic body ${JSON.stringify(m.body)}`);
  }
  results.topic = 3;

  state.closing = true;
  await withTimeout(client.deactivate(), 'DISCONNECT and close');
  expect(state.disconnectReceipt === 'bye', `DISCONNECT receipt ${state.disconnectReceipt}`);
  results.disconnect_receipt = true;
  const extra = [...q.leftovers(), ...t.leftovers()];
  expect(extra.length === 0, `unexpected extra messages ${JSON.stringify(extra)}`);
  return results;
}

try {
  const results = await run();
  const version = (name) =>
    JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), 'utf8')).version;
  finish(true, {
    clients: `@stomp/stompjs ${version('@stomp/stompjs')}, sockjs-client ${version('sockjs-client')}`,
    ...results,
  });
} catch (e) {
  fail(e && e.message ? e.message : e);
}
