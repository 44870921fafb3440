// Interop check: @stomp/stompjs (a STOMP client we did not write) against our server over
// WebSocket, with `ws` as the socket.
//
//   node stompjs_ws.mjs WS_URL                       # round trip (default)
//   node stompjs_ws.mjs WS_URL --mode listen  --topic T --queue Q --count N
//   node stompjs_ws.mjs WS_URL --mode publish --topic T --queue Q --count N
//   node stompjs_ws.mjs WS_URL --mode oversized --count BYTES
//
// The round trip covers CONNECT with subprotocol negotiation, SUBSCRIBE with receipts
// (watchForReceipt), a client-individual queue with ACK, an auto-ack topic, a binary body,
// a queue holding a message until its first subscriber, UNSUBSCRIBE and DISCONNECT with a
// receipt. `listen` and `publish` talk to another client through the server (see
// stomppy_tcp.py, which has the same modes): the listener prints {"ready":true} once
// subscribed, then one result line. `oversized` SENDs a body of BYTES bytes with a receipt
// and reports the ERROR frame and the WebSocket close code it gets back.
//
// Prints one JSON line. Exit code 0 only on success; otherwise non-zero with
// {"ok":false,"error":...}. Installed with `npm ci` in tests/interop.

import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect, importOrExit, withTimeout as withDeadline } from './support.mjs';

const [{ Client }, { default: WebSocket }] = await importOrExit(['@stomp/stompjs', 'ws']);

// Generous: a healthy run takes well under a second.
const STEP_TIMEOUT_MS = 10_000;
const OVERALL_TIMEOUT_MS = 30_000;
// Header value with every character STOMP 1.2 escapes (section "Value Encoding"). No
// backslash stands before `c`, `n` or `r`: stompjs 7.5 unescapes with chained replace()s and
// turns `\\c` into `\:`, so a correct server would fail there.
const TRICKY = 'a:b\\d\ne\rf';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    mode: { type: 'string', default: 'roundtrip' },
    topic: { type: 'string', default: '/topic/interop-peer' },
    queue: { type: 'string', default: '/queue/interop-peer' },
    count: { type: 'string', default: '3' },
  },
});
const url = positionals[0];
const debugLog = [];

function finish(ok, fields) {
  const line = { ok, mode: opts.mode, ...fields };
  if (!ok) line.debug = debugLog.slice(-20);
  console.log(JSON.stringify(line));
  process.exit(ok ? 0 : 1);
}

function fail(error) {
  finish(false, { error: String(error) });
}

if (!url || !['roundtrip', 'listen', 'publish', 'oversized'].includes(opts.mode)) {
  fail('usage: node stompjs_ws.mjs WS_URL [--mode roundtrip|listen|publish|oversized] ' +
    '[--topic T] [--queue Q] [--count N]');
}
setTimeout(() => fail(`overall timeout of ${OVERALL_TIMEOUT_MS} ms`), OVERALL_TIMEOUT_MS).unref();

function withTimeout(promise, what) {
  return withDeadline(promise, what, STEP_TIMEOUT_MS);
}

/** What `publish` sends and `listen` expects, in order per destination. */
function peerMessages(topic, queue, count) {
  const out = [];
  for (let i = 0; i < count; i++) {
    out.push({ destination: topic, body: `topic ${i} ✓`, seq: String(i) });
    out.push({ destination: queue, body: `queue ${i} ✓`, seq: String(i) });
  }
  return out;
}

/** Messages per subscription id, handed out oldest first. */
class Inbox {
  constructor() {
    this.messages = new Map();
    this.waiters = new Map();
  }

  handler(sub) {
    return message => {
      const waiter = this.waiters.get(sub);
      if (waiter) {
        this.waiters.delete(sub);
        waiter(message);
      } else {
        if (!this.messages.has(sub)) this.messages.set(sub, []);
        this.messages.get(sub).push(message);
      }
    };
  }

  take(sub, what) {
    const queued = this.messages.get(sub);
    if (queued && queued.length > 0) return Promise.resolve(queued.shift());
    return withTimeout(new Promise(resolve => this.waiters.set(sub, resolve)), what);
  }

  leftovers() {
    return [...this.messages.values()].flat().map(m => m.body);
  }
}

/** Connects; resolves with the client and its CONNECTED frame. */
function connect(name) {
  const client = new Client({
    webSocketFactory: () => new WebSocket(url, ['v12.stomp', 'v11.stomp', 'v10.stomp']),
    reconnectDelay: 0,
    heartbeatIncoming: 10_000,
    heartbeatOutgoing: 10_000,
    disconnectHeaders: { receipt: `bye-${name}` },
    debug: s => {
      debugLog.push(`${name}: ${s}`);
      if (debugLog.length > 200) debugLog.shift();
    },
  });
  const state = { closing: false, disconnectReceipt: null, closeCode: null };
  const connected = new Promise((resolve, reject) => {
    client.onConnect = frame => resolve(frame);
    client.onStompError = frame =>
      fail(`${name}: ERROR frame: ${frame.headers.message} ${frame.body}`);
    client.onWebSocketError = () => reject(new Error(`${name}: websocket error`));
    client.onWebSocketClose = evt => {
      state.closeCode = evt.code;
      if (!state.closing) fail(`${name}: websocket closed unexpectedly (code ${evt.code})`);
    };
    client.onDisconnect = frame => {
      state.disconnectReceipt = frame.headers['receipt-id'];
    };
  });
  client.activate();
  return withTimeout(connected, `${name}: CONNECTED`).then(frame => ({ client, frame, state }));
}

function receipt(client, id) {
  const got = new Promise(resolve => client.watchForReceipt(id, resolve));
  return () => withTimeout(got, `RECEIPT ${id}`);
}

async function disconnect({ client, state }, name) {
  state.closing = true;
  await withTimeout(client.deactivate(), `${name}: DISCONNECT and close`);
  expect(state.disconnectReceipt === `bye-${name}`,
    `${name}: DISCONNECT receipt ${state.disconnectReceipt}`);
}

function checkText(m, body, what) {
  expect(m.body === body, `${what}: body ${JSON.stringify(m.body)}, wanted ${JSON.stringify(body)}`);
}

async function roundTrip() {
  const run = randomUUID().slice(0, 8);
  const queue = `/queue/interop-js-${run}`;
  const backlogQueue = `/queue/interop-js-backlog-${run}`;
  const topic = `/topic/interop-js-${run}`;
  const conn = await connect('main');
  const { client, frame } = conn;
  const results = {
    version: frame.headers.version,
    server: frame.headers.server,
    connectedVersion: client.connectedVersion,
  };
  expect(frame.headers.version === '1.2', `negotiated ${frame.headers.version}, wanted 1.2`);
  const inbox = new Inbox();

  // Queue, client-individual: receipt on SUBSCRIBE, escaped headers, UTF-8 body, ACK.
  let r = receipt(client, 'sub-q');
  const qsub = client.subscribe(queue, inbox.handler('q'),
    { id: 'q', ack: 'client-individual', receipt: 'sub-q' });
  await r();
  client.publish({
    destination: queue,
    body: 'héllo from stompjs',
    headers: { 'content-type': 'text/plain;charset=utf-8', 'x-tricky': TRICKY },
  });
  let m = await inbox.take('q', 'the queue message');
  checkText(m, 'héllo from stompjs', 'queue');
  expect(m.headers['x-tricky'] === TRICKY,
    `x-tricky header ${JSON.stringify(m.headers['x-tricky'])}, sent ${JSON.stringify(TRICKY)}`);
  expect(m.headers['content-type'] === 'text/plain;charset=utf-8',
    `content-type ${m.headers['content-type']}`);
  expect(m.headers.destination === queue, `destination ${m.headers.destination}`);
  expect(m.headers.ack, 'MESSAGE of a client-individual subscription has no ack header');
  r = receipt(client, 'ack-q');
  m.ack({ receipt: 'ack-q' });
  await r();
  results.ack = true;

  // Topic, auto ack.
  r = receipt(client, 'sub-t');
  const tsub = client.subscribe(topic, inbox.handler('t'), { id: 't', receipt: 'sub-t' });
  await r();
  client.publish({ destination: topic, body: 'topic hello' });
  m = await inbox.take('t', 'the topic message');
  checkText(m, 'topic hello', 'topic');
  expect(m.headers.subscription === 't', `subscription ${m.headers.subscription}`);
  results.topic = true;

  // Binary body with NULs: content-length framing and a binary WebSocket message.
  const bytes = Uint8Array.from([0, 1, 2, 0xff, 0, 0x0a, 0xc3]);
  client.publish({
    destination: topic,
    binaryBody: bytes,
    headers: { 'content-type': 'application/octet-stream' },
  });
  m = await inbox.take('t', 'the binary message');
  const got = Array.from(m.binaryBody);
  expect(JSON.stringify(got) === JSON.stringify(Array.from(bytes)),
    `binary body ${JSON.stringify(got)}`);
  results.binary = { bytes: got.length, content_length: m.headers['content-length'] };

  // A queue keeps a message until its first subscriber arrives.
  r = receipt(client, 'send-b');
  client.publish({ destination: backlogQueue, body: 'waited', headers: { receipt: 'send-b' } });
  await r();
  r = receipt(client, 'sub-b');
  const bsub = client.subscribe(backlogQueue, inbox.handler('b'), { id: 'b', receipt: 'sub-b' });
  await r();
  m = await inbox.take('b', 'the queued message');
  checkText(m, 'waited', 'backlog queue');
  results.queue_backlog = true;

  for (const [sub, id] of [[qsub, 'q'], [tsub, 't'], [bsub, 'b']]) {
    r = receipt(client, `unsub-${id}`);
    sub.unsubscribe({ receipt: `unsub-${id}` });
    await r();
  }
  await disconnect(conn, 'main');
  results.disconnect_receipt = true;
  const extra = inbox.leftovers();
  expect(extra.length === 0, `unexpected extra messages ${JSON.stringify(extra)}`);
  return results;
}

async function listen(topic, queue, count) {
  const conn = await connect('listener');
  const { client } = conn;
  const inbox = new Inbox();
  const rt = receipt(client, 'sub-t');
  const rq = receipt(client, 'sub-q');
  client.subscribe(topic, inbox.handler('t'), { id: 't', receipt: 'sub-t' });
  client.subscribe(queue, inbox.handler('q'),
    { id: 'q', ack: 'client-individual', receipt: 'sub-q' });
  await rt();
  await rq();
  console.log(JSON.stringify({ ready: true }));
  const received = { topic: [], queue: [] };
  for (const want of peerMessages(topic, queue, count)) {
    const [sub, key] = want.destination === topic ? ['t', 'topic'] : ['q', 'queue'];
    const m = await inbox.take(sub, `${key} message ${want.seq}`);
    checkText(m, want.body, `${key} message ${want.seq}`);
    expect(m.headers['x-seq'] === want.seq, `x-seq ${m.headers['x-seq']}`);
    expect(m.headers['x-tricky'] === TRICKY, `x-tricky ${JSON.stringify(m.headers['x-tricky'])}`);
    expect(m.headers.destination === want.destination, `destination ${m.headers.destination}`);
    if (sub === 'q') m.ack();
    received[key].push(m.body);
  }
  await disconnect(conn, 'listener');
  return { received };
}

async function publish(topic, queue, count) {
  const conn = await connect('publisher');
  const { client } = conn;
  let sent = 0;
  for (const [n, msg] of peerMessages(topic, queue, count).entries()) {
    const r = receipt(client, `send-${n}`);
    client.publish({
      destination: msg.destination,
      body: msg.body,
      headers: {
        'content-type': 'text/plain;charset=utf-8',
        'x-seq': msg.seq,
        'x-tricky': TRICKY,
        receipt: `send-${n}`,
      },
    });
    await r();
    sent++;
  }
  await disconnect(conn, 'publisher');
  return { sent };
}

/** One SEND of `bytes` bytes; the server must answer with an ERROR, then close. */
async function oversized(bytes) {
  const client = new Client({
    webSocketFactory: () => new WebSocket(url, ['v12.stomp']),
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
    debug: s => debugLog.push(`oversized: ${s.slice(0, 200)}`),
  });
  const connected = new Promise(resolve => {
    client.onConnect = resolve;
  });
  let error = null;
  const closed = new Promise(resolve => {
    client.onStompError = frame => {
      error = frame;
    };
    client.onWebSocketClose = evt => resolve(evt.code);
  });
  client.activate();
  await withTimeout(connected, 'CONNECTED');
  client.publish({
    destination: '/topic/interop-oversized',
    body: 'x'.repeat(bytes),
    headers: { receipt: 'too-big' },
  });
  const code = await withTimeout(closed, 'the close');
  await client.deactivate();
  expect(error, 'no ERROR frame before the close');
  return {
    error_message: error.headers.message,
    receipt_id: error.headers['receipt-id'] ?? null,
    close_code: code,
  };
}

try {
  const count = Number.parseInt(opts.count, 10);
  let results;
  if (opts.mode === 'roundtrip') results = await roundTrip();
  else if (opts.mode === 'listen') results = await listen(opts.topic, opts.queue, count);
  else if (opts.mode === 'oversized') results = await oversized(count);
  else results = await publish(opts.topic, opts.queue, count);
  const pkg = new URL('./node_modules/@stomp/stompjs/package.json', import.meta.url);
  const version = JSON.parse(readFileSync(pkg, 'utf8')).version;
  finish(true, { client: `@stomp/stompjs ${version}`, ...results });
} catch (e) {
  fail(e && e.message ? e.message : e);
}
