#!/usr/bin/env python3
"""Interop check: stomp.py (a STOMP client we did not write) against our server over raw TCP.

    python3 stomppy_tcp.py HOST PORT                    # round trip (default)
    python3 stomppy_tcp.py HOST PORT --mode listen  --topic T --queue Q --count N
    python3 stomppy_tcp.py HOST PORT --mode publish --topic T --queue Q --count N

The round trip covers CONNECT (1.2), SUBSCRIBE with receipts, SEND, ACK and NACK
(client-individual) with redelivery to another connection, a topic, transactions
(BEGIN/SEND/COMMIT and ABORT) and DISCONNECT with a receipt.

`listen` and `publish` talk to another client through the server (see stompjs_ws.mjs, which
has the same modes): the listener prints `{"ready": true}` once subscribed, then one result
line; the publisher sends the messages `peer_messages` describes.

Prints one JSON line. Exit code 0 only on success; otherwise 1 with {"ok": false, "error": ...}.
Installed with: python3 -m pip install -r tests/interop/requirements.txt
"""

import argparse
import json
import os
import sys
import threading
import uuid

try:
    import stomp
except ImportError as e:  # pragma: no cover - reported to the Rust test
    print(json.dumps({"ok": False, "error": f"stomp.py missing ({e}); run "
                      "`python3 -m pip install -r tests/interop/requirements.txt`"}))
    sys.exit(3)

# Generous: a healthy run takes well under a second.
STEP_TIMEOUT = 10.0
OVERALL_TIMEOUT = 30.0

# Header value with every character STOMP 1.2 escapes (section "Value Encoding"); the same
# as in stompjs_ws.mjs, whose client mis-decodes a backslash before `c`, `n` or `r`.
TRICKY = "a:b\\d\ne\rf"


class Failure(Exception):
    """A check failed; the message says which."""


def peer_messages(topic, queue, count):
    """What `publish` sends and `listen` expects, in order per destination."""
    out = []
    for i in range(count):
        out.append({"destination": topic, "body": f"topic {i} ✓", "seq": str(i)})
        out.append({"destination": queue, "body": f"queue {i} ✓", "seq": str(i)})
    return out


class Inbox(stomp.ConnectionListener):
    """Collects what the server sends; waits for it with a timeout."""

    def __init__(self, name):
        self.name = name
        self.cond = threading.Condition()
        self.connected = None
        self.messages = []
        self.receipts = set()
        self.errors = []
        self.disconnected = False

    def on_connected(self, frame):
        with self.cond:
            self.connected = dict(frame.headers)
            self.cond.notify_all()

    def on_message(self, frame):
        with self.cond:
            self.messages.append(frame)
            self.cond.notify_all()

    def on_receipt(self, frame):
        with self.cond:
            self.receipts.add(frame.headers.get("receipt-id"))
            self.cond.notify_all()

    def on_error(self, frame):
        with self.cond:
            self.errors.append({"headers": dict(frame.headers), "body": frame.body})
            self.cond.notify_all()

    def on_disconnected(self):
        with self.cond:
            self.disconnected = True
            self.cond.notify_all()

    def wait(self, predicate, what, allow_errors=False):
        with self.cond:
            ok = self.cond.wait_for(
                lambda: predicate() or (self.errors and not allow_errors), STEP_TIMEOUT)
            if self.errors and not allow_errors:
                raise Failure(f"{self.name}: ERROR frame while waiting for {what}: {self.errors[0]}")
            if not ok:
                raise Failure(f"{self.name}: timed out after {STEP_TIMEOUT}s waiting for {what}")

    def receipt(self, rid):
        self.wait(lambda: rid in self.receipts, f"RECEIPT {rid}")

    def take(self, subscription, what):
        """The oldest message of `subscription`, removed from the inbox."""
        def find():
            return next((m for m in self.messages
                         if m.headers.get("subscription") == subscription), None)
        self.wait(lambda: find() is not None, what)
        with self.cond:
            m = find()
            self.messages.remove(m)
            return m

    def pending(self, subscription):
        with self.cond:
            return [m.body for m in self.messages if m.headers.get("subscription") == subscription]


def expect(cond, message):
    if not cond:
        raise Failure(message)


def open_connection(host, port, name):
    conn = stomp.Connection12([(host, port)], heartbeats=(0, 0), reconnect_attempts_max=1)
    inbox = Inbox(name)
    conn.set_listener("inbox", inbox)
    conn.connect(wait=True)
    inbox.wait(lambda: inbox.connected is not None, "CONNECTED")
    return conn, inbox


def close_connection(conn, inbox, rid):
    conn.disconnect(receipt=rid)
    inbox.receipt(rid)
    inbox.wait(lambda: inbox.disconnected, "the connection to close after DISCONNECT")


def round_trip(host, port):
    results = {}
    run = uuid.uuid4().hex[:8]
    queue = f"/queue/interop-py-{run}"
    topic = f"/topic/interop-py-{run}"

    conn, inbox = open_connection(host, port, "main")
    results["version"] = inbox.connected.get("version")
    results["server"] = inbox.connected.get("server")
    expect(results["version"] == "1.2", f"negotiated {results['version']}, wanted 1.2")

    # Queue, client-individual: receipt on SUBSCRIBE, escaped headers, UTF-8 body, ACK.
    conn.subscribe(queue, id="q", ack="client-individual", headers={"receipt": "sub-q"})
    inbox.receipt("sub-q")
    conn.send(queue, "héllo from stomp.py", content_type="text/plain;charset=utf-8",
              headers={"x-tricky": TRICKY, "receipt": "send-q"})
    inbox.receipt("send-q")
    m = inbox.take("q", "the queue message")
    expect(m.body == "héllo from stomp.py", f"queue body {m.body!r}")
    expect(m.headers.get("x-tricky") == TRICKY,
           f"x-tricky header {m.headers.get('x-tricky')!r}, sent {TRICKY!r}")
    expect(m.headers.get("content-type") == "text/plain;charset=utf-8",
           f"content-type {m.headers.get('content-type')!r}")
    expect(m.headers.get("destination") == queue, f"destination {m.headers.get('destination')!r}")
    expect("ack" in m.headers, "MESSAGE of a client-individual subscription has no ack header")
    conn.ack(m.headers["ack"], receipt="ack-q")
    inbox.receipt("ack-q")
    results["ack"] = True

    # NACK: the message goes back to the queue and reaches another connection.
    conn.send(queue, "nack me", headers={"receipt": "send-n"})
    inbox.receipt("send-n")
    m = inbox.take("q", "the message to NACK")
    expect(m.body == "nack me", f"body {m.body!r}")
    nacked_id = m.headers.get("message-id")
    conn.nack(m.headers["ack"], receipt="nack-q")
    inbox.receipt("nack-q")
    # Whether the server offers it to this session again is its choice; leaving the
    # subscription hands anything still unacknowledged back to the queue either way.
    conn.unsubscribe("q", headers={"receipt": "unsub-q"})
    inbox.receipt("unsub-q")
    conn2, inbox2 = open_connection(host, port, "second")
    conn2.subscribe(queue, id="q2", ack="client-individual", headers={"receipt": "sub-q2"})
    inbox2.receipt("sub-q2")
    m2 = inbox2.take("q2", "the NACKed message, redelivered to a second connection")
    expect(m2.body == "nack me", f"redelivered body {m2.body!r}")
    conn2.ack(m2.headers["ack"], receipt="ack-q2")
    inbox2.receipt("ack-q2")
    close_connection(conn2, inbox2, "bye-2")
    results["nack_redelivered"] = {"same_message_id": m2.headers.get("message-id") == nacked_id}

    # Topic, auto ack.
    conn.subscribe(topic, id="t", headers={"receipt": "sub-t"})
    inbox.receipt("sub-t")
    conn.send(topic, "topic hello", headers={"receipt": "send-t"})
    m = inbox.take("t", "the topic message")
    expect(m.body == "topic hello", f"topic body {m.body!r}")
    expect(m.headers.get("subscription") == "t", f"subscription {m.headers.get('subscription')!r}")
    results["topic"] = True

    # Transaction: nothing is published before COMMIT; a plain SEND overtakes it.
    tx = conn.begin()
    conn.send(topic, "tx 1", headers={"transaction": tx})
    conn.send(topic, "tx 2", headers={"transaction": tx})
    conn.send(topic, "outside", headers={"receipt": "send-outside"})
    inbox.receipt("send-outside")
    first = inbox.take("t", "the message sent outside the transaction")
    expect(first.body == "outside",
           f"got {first.body!r} before COMMIT; transactional SENDs leaked")
    conn.commit(tx, headers={"receipt": "commit"})
    inbox.receipt("commit")
    committed = [inbox.take("t", "committed message 1").body,
                 inbox.take("t", "committed message 2").body]
    expect(committed == ["tx 1", "tx 2"], f"committed messages {committed!r}")
    tx2 = conn.begin()
    conn.send(topic, "aborted", headers={"transaction": tx2})
    conn.abort(tx2, headers={"receipt": "abort"})
    inbox.receipt("abort")
    conn.send(topic, "after abort", headers={"receipt": "send-after"})
    m = inbox.take("t", "the message after ABORT")
    expect(m.body == "after abort", f"got {m.body!r}; the aborted SEND was published")
    results["transaction"] = {"committed": committed, "aborted_dropped": True}

    close_connection(conn, inbox, "bye")
    results["disconnect_receipt"] = True
    leftovers = inbox.pending("t") + inbox.pending("q")
    expect(not leftovers, f"unexpected extra messages {leftovers!r}")
    return results


def listen(host, port, topic, queue, count):
    conn, inbox = open_connection(host, port, "listener")
    conn.subscribe(topic, id="t", headers={"receipt": "sub-t"})
    conn.subscribe(queue, id="q", ack="client-individual", headers={"receipt": "sub-q"})
    inbox.receipt("sub-t")
    inbox.receipt("sub-q")
    print(json.dumps({"ready": True}), flush=True)
    received = {"topic": [], "queue": []}
    for want in peer_messages(topic, queue, count):
        sub, key = ("t", "topic") if want["destination"] == topic else ("q", "queue")
        m = inbox.take(sub, f"{key} message {want['seq']}")
        expect(m.body == want["body"], f"{key} body {m.body!r}, wanted {want['body']!r}")
        expect(m.headers.get("x-seq") == want["seq"], f"x-seq {m.headers.get('x-seq')!r}")
        expect(m.headers.get("x-tricky") == TRICKY, f"x-tricky {m.headers.get('x-tricky')!r}")
        expect(m.headers.get("destination") == want["destination"],
               f"destination {m.headers.get('destination')!r}")
        if sub == "q":
            conn.ack(m.headers["ack"])
        received[key].append(m.body)
    close_connection(conn, inbox, "bye")
    return {"received": received}


def publish(host, port, topic, queue, count):
    conn, inbox = open_connection(host, port, "publisher")
    sent = 0
    for n, msg in enumerate(peer_messages(topic, queue, count)):
        conn.send(msg["destination"], msg["body"], content_type="text/plain;charset=utf-8",
                  headers={"x-seq": msg["seq"], "x-tricky": TRICKY, "receipt": f"send-{n}"})
        inbox.receipt(f"send-{n}")
        sent += 1
    close_connection(conn, inbox, "bye")
    return {"sent": sent}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--mode", choices=["roundtrip", "listen", "publish"], default="roundtrip")
    parser.add_argument("--topic", default="/topic/interop-peer")
    parser.add_argument("--queue", default="/queue/interop-peer")
    parser.add_argument("--count", type=int, default=3)
    args = parser.parse_args()

    def overall_timeout():
        print(json.dumps({"ok": False, "mode": args.mode,
                          "error": f"overall timeout of {OVERALL_TIMEOUT}s"}), flush=True)
        os._exit(2)

    watchdog = threading.Timer(OVERALL_TIMEOUT, overall_timeout)
    watchdog.daemon = True
    watchdog.start()
    try:
        if args.mode == "roundtrip":
            results = round_trip(args.host, args.port)
        elif args.mode == "listen":
            results = listen(args.host, args.port, args.topic, args.queue, args.count)
        else:
            results = publish(args.host, args.port, args.topic, args.queue, args.count)
    except Exception as e:  # every failure becomes the one JSON line
        print(json.dumps({"ok": False, "mode": args.mode, "error": f"{type(e).__name__}: {e}"}),
              flush=True)
        os._exit(1)
    watchdog.cancel()
    print(json.dumps({"ok": True, "mode": args.mode, "client": f"stomp.py {stomp.__version__}",
                      **results}, ensure_ascii=False), flush=True)
    # stomp.py's receiver thread may linger; the result is out, so leave now.
    os._exit(0)


if __name__ == "__main__":
    main()
