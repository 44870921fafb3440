//! Two or more servers relaying to the RabbitMQ of the test machine: what one node's
//! clients and handlers publish reaches every node's subscribers exactly once, queues keep
//! one consumer per message across nodes, user destinations reach a user's sessions
//! wherever they are and nobody else, and a lost broker connection fails over.

// This binary needs the helpers, not the transport matrix.
#[allow(unused_macros, unused_imports)]
mod client_support;

use client_support::{bodies, next, split_between, text};
use stomp_runtime::broker::{AckMode, BrokerAvailability, RelayConfig};
use stomp_runtime::client::{Client, ClientError, ConnectOptions, Message, Subscription};
use stomp_runtime::frame::{Command, Frame, Headers};
use stomp_runtime::prelude::*;
use stomp_tests::proxy::{Mode, Proxy};
use stomp_tests::relay::{broker, config, node, unique};
use stomp_tests::{TestServer, WAIT, start_app};

#[message_mapping("/relay.say.{room}")]
#[send_to("/topic/relay.{room}")]
async fn say(
    DestinationVar(room): DestinationVar<String>,
    Payload(text): Payload<String>,
) -> String {
    format!("{room}: {text}")
}

#[message_mapping("/relay.whisper")]
#[send_to_user("/queue/relay-whispers")]
async fn whisper(user: Principal, Payload(text): Payload<String>) -> String {
    format!("{} to self: {text}", user.name())
}

/// A client of `server` over TCP, logged in as `user` when given.
async fn client(server: &TestServer, user: Option<&str>) -> Client {
    let mut opts = ConnectOptions::new();
    if let Some(u) = user {
        opts = opts.login(u);
    }
    Client::connect_tcp(server.tcp_addr, opts)
        .await
        .expect("connect")
}

async fn send(client: &Client, destination: &str, body: &str) {
    let headers: Headers = [("content-type", "text/plain")].into_iter().collect();
    client
        .send_receipted(destination, body.to_owned(), headers)
        .await
        .unwrap_or_else(|e| panic!("SEND to {destination}: {e}"));
}

/// Ends `sub` at the server and returns what arrived before the server confirmed: a
/// duplicate or a message meant for someone else would be among them.
async fn leftovers(client: &Client, sub: &mut Subscription) -> Vec<String> {
    client
        .request(Frame::new(Command::Unsubscribe).header("id", sub.id()))
        .await
        .expect("UNSUBSCRIBE receipt");
    let mut out = Vec::new();
    while let Some(m) = sub.try_next() {
        out.push(text(&m));
    }
    out
}

/// The whole answer to a plain HTTP GET.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut answer))
        .await
        .expect("answered in time")
        .expect("read");
    answer
}

/// The server's refusal, as the client saw it.
fn refusal(e: ClientError) -> String {
    match e {
        ClientError::Server { message, body, .. } => {
            format!("{message}: {}", String::from_utf8_lossy(&body))
        }
        other => panic!("expected an ERROR frame, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_messages_reach_every_node_once_over_one_broker_subscription_each() {
    let (a, b) = (node(config()).await, node(config()).await);
    let base = unique("news");
    let topic = format!("/topic/{base}.world");
    let (a1, a2, b1) = (
        client(&a, None).await,
        client(&a, None).await,
        client(&b, None).await,
    );
    let mut subs = vec![
        a1.subscribe(&topic, AckMode::Auto).await.unwrap(),
        a2.subscribe(&topic, AckMode::Auto).await.unwrap(),
        b1.subscribe(&topic, AckMode::Auto).await.unwrap(),
        // A pattern is a broker subscription of its own, with the same messages.
        b1.subscribe(&format!("/topic/{base}.*"), AckMode::Auto)
            .await
            .unwrap(),
    ];
    let publisher = client(&a, None).await;
    for i in 0..3 {
        send(&publisher, &topic, &format!("m{i}")).await;
    }
    for sub in &mut subs {
        let got = client_support::messages(sub, 3).await;
        let texts: Vec<String> = got.iter().map(text).collect();
        assert_eq!(texts, ["m0", "m1", "m2"]);
        assert!(got.iter().all(|m| m.destination() == topic), "{got:?}");
    }
    // Two clients on A, one broker subscription; B holds one per destination.
    let (ha, hb) = (
        a.stomp.relay().unwrap().health(),
        b.stomp.relay().unwrap().health(),
    );
    assert_eq!(ha.broker_subscriptions, 1, "{ha:?}");
    assert_eq!(ha.local_subscriptions, 2, "{ha:?}");
    assert_eq!(hb.broker_subscriptions, 2, "{hb:?}");
    assert_eq!(ha.shared_connections, config().connections);
    // Nothing arrived twice.
    let clients = [&a1, &a2, &b1, &b1];
    for (c, sub) in clients.into_iter().zip(&mut subs) {
        assert_eq!(leftovers(c, sub).await, Vec::<String>::new());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_replies_on_one_node_reach_subscribers_on_the_other() {
    let (a, b) = (node(config()).await, node(config()).await);
    let room = unique("room");
    let watcher = client(&b, None).await;
    let mut sub = watcher
        .subscribe(&format!("/topic/relay.{room}"), AckMode::Auto)
        .await
        .unwrap();
    let speaker = client(&a, None).await;
    send(&speaker, &format!("/app/relay.say.{room}"), "hello").await;
    let m = next(&mut sub).await;
    assert_eq!(text(&m), format!("{room}: hello"));
    // The template on A goes through the broker too.
    a.stomp
        .template()
        .convert_and_send(&format!("/topic/relay.{room}"), &"from the template")
        .await
        .unwrap();
    assert_eq!(text(&next(&mut sub).await), "\"from the template\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_message_is_consumed_once_across_nodes() {
    let (a, b) = (node(config()).await, node(config()).await);
    let queue = format!("/queue/{}", unique("jobs"));
    let (ca, cb) = (client(&a, None).await, client(&b, None).await);
    let mut on_a = ca.subscribe(&queue, AckMode::Auto).await.unwrap();
    let mut on_b = cb.subscribe(&queue, AckMode::Auto).await.unwrap();
    let publisher = client(&a, None).await;
    let n = 40;
    for i in 0..n {
        send(&publisher, &queue, &format!("job{i}")).await;
    }
    let (got_a, got_b) = split_between(&mut on_a, &mut on_b, n).await;
    let mut all: Vec<String> = got_a.iter().chain(&got_b).cloned().collect();
    all.sort_by_key(|s| s[3..].parse::<u32>().unwrap());
    let expected: Vec<String> = (0..n).map(|i| format!("job{i}")).collect();
    assert_eq!(all, expected, "each job exactly once");
    // The broker shares the queue between the nodes' consumers.
    assert!(
        !got_a.is_empty() && !got_b.is_empty(),
        "A {got_a:?} B {got_b:?}"
    );
    assert_eq!(leftovers(&ca, &mut on_a).await, Vec::<String>::new());
    assert_eq!(leftovers(&cb, &mut on_b).await, Vec::<String>::new());
    assert_eq!(
        a.stomp.relay().unwrap().health().queues,
        0,
        "the last unsubscribe ends the queue's relay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_queue_messages_of_a_dead_client_go_to_another_nodes_consumer() {
    let (a, b) = (node(config()).await, node(config()).await);
    let queue = format!("/queue/{}", unique("orders"));
    let publisher = client(&b, None).await;
    let doomed = client(&a, None).await;
    let mut sub = doomed
        .subscribe(&queue, AckMode::ClientIndividual)
        .await
        .unwrap();
    for i in 1..=2 {
        send(&publisher, &queue, &format!("order{i}")).await;
    }
    let first = next(&mut sub).await;
    let second = next(&mut sub).await;
    assert_eq!(
        (text(&first), text(&second)),
        ("order1".into(), "order2".into())
    );
    doomed.ack(&first).await.unwrap();
    // The ACK reached the broker once a later request on the same connection is answered.
    doomed
        .request(Frame::new(Command::Begin).header("transaction", "fence"))
        .await
        .unwrap();
    let heir = client(&b, None).await;
    let mut inherited = heir.subscribe(&queue, AckMode::Auto).await.unwrap();
    drop(sub);
    drop(doomed);
    let m = next(&mut inherited).await;
    assert_eq!(
        text(&m),
        "order2",
        "the unacknowledged message, not the acknowledged one"
    );
    assert_eq!(m.header("redelivered"), Some("true"));
    send(&publisher, &queue, "order3").await;
    assert_eq!(text(&next(&mut inherited).await), "order3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mode_acks_cover_earlier_messages_and_leaving_hands_the_rest_over() {
    let (a, b) = (node(config()).await, node(config()).await);
    let queue = format!("/queue/{}", unique("batch"));
    let publisher = client(&a, None).await;
    let worker = client(&a, None).await;
    let mut sub = worker.subscribe(&queue, AckMode::Client).await.unwrap();
    for i in 1..=4 {
        send(&publisher, &queue, &format!("b{i}")).await;
    }
    let got = client_support::messages(&mut sub, 4).await;
    // Cumulative: b1 and b2 settled at once.
    worker.ack(&got[1]).await.unwrap();
    let other = client(&b, None).await;
    let mut elsewhere = other.subscribe(&queue, AckMode::Auto).await.unwrap();
    // Leaving gives b3 and b4 back; the broker hands them to B's consumer.
    drop(sub);
    worker.disconnect().await.unwrap();
    let mut rest = bodies(&mut elsewhere, 2).await;
    // RabbitMQ requeues a closed connection's messages in no promised order.
    rest.sort();
    assert_eq!(rest, ["b3", "b4"]);
    send(&publisher, &queue, "b5").await;
    assert_eq!(
        text(&next(&mut elsewhere).await),
        "b5",
        "b1 and b2 stay settled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_messages_reach_the_users_sessions_on_every_node_and_nobody_else() {
    let (a, b) = (node(config()).await, node(config()).await);
    let (alice, bob) = (unique("alice"), unique("bob"));
    let whispers = "/user/queue/relay-whispers";
    let alice_a = client(&a, Some(&alice)).await;
    let alice_b = client(&b, Some(&alice)).await;
    let bob_b = client(&b, Some(&bob)).await;
    let anonymous_b = client(&b, None).await;
    let mut subs = vec![
        alice_a.subscribe(whispers, AckMode::Auto).await.unwrap(),
        alice_b.subscribe(whispers, AckMode::Auto).await.unwrap(),
    ];
    let mut bobs = bob_b.subscribe(whispers, AckMode::Auto).await.unwrap();
    let mut anons = anonymous_b
        .subscribe(whispers, AckMode::Auto)
        .await
        .unwrap();
    let mut everything = anonymous_b
        .subscribe("/topic/**", AckMode::Auto)
        .await
        .unwrap();

    // `#[send_to_user]` from A, the template on A, and a client SEND on B to
    // `/user/{alice}/...`: each reaches both of alice's sessions once.
    send(&alice_a, "/app/relay.whisper", "one").await;
    a.stomp
        .template()
        .convert_and_send_to_user(&alice, "/queue/relay-whispers", &"two")
        .await
        .unwrap();
    send(
        &bob_b,
        &format!("/user/{alice}/queue/relay-whispers"),
        "three",
    )
    .await;
    for sub in &mut subs {
        let got = client_support::messages(sub, 3).await;
        let texts: Vec<String> = got.iter().map(text).collect();
        assert_eq!(
            texts,
            [
                format!("{alice} to self: one"),
                "\"two\"".into(),
                "three".into()
            ]
        );
        // The destination as subscribed: no resolved name, no session id.
        assert!(got.iter().all(|m| m.destination() == whispers), "{got:?}");
    }
    // Bob's own message arrives, and is the first thing he gets.
    send(
        &alice_b,
        &format!("/user/{bob}/queue/relay-whispers"),
        "for bob",
    )
    .await;
    assert_eq!(text(&next(&mut bobs).await), "for bob");
    assert_eq!(leftovers(&bob_b, &mut bobs).await, Vec::<String>::new());
    assert_eq!(
        leftovers(&anonymous_b, &mut anons).await,
        Vec::<String>::new()
    );
    assert_eq!(
        leftovers(&anonymous_b, &mut everything).await,
        Vec::<String>::new()
    );
    for (c, sub) in [&alice_a, &alice_b].into_iter().zip(&mut subs) {
        assert_eq!(leftovers(c, sub).await, Vec::<String>::new());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_the_broker_cannot_express_are_refused_with_a_reason() {
    let a = node(RelayConfig {
        prefixes: vec!["/topic".into(), "/queue".into(), "/exchange".into()],
        ..config()
    })
    .await;
    let cases = [
        ("/topic/a/*", "`.` only"),
        ("/queue/*", "one queue"),
        ("/topic/a.#", "`**`"),
        (
            "/exchange/amq.direct/5:alice%2Fqueue%2Fx",
            "reserved for user destinations",
        ),
        ("/queue/amq.reserved", "the broker says"),
    ];
    for (dest, why) in cases {
        let c = client(&a, None).await;
        let err = c.subscribe(dest, AckMode::Auto).await.unwrap_err();
        let said = refusal(err);
        assert!(said.starts_with("subscription refused"), "{dest}: {said}");
        assert!(said.contains(why), "{dest}: {said}");
    }
    // The refusals cost the other sessions nothing.
    let c = client(&a, None).await;
    let topic = format!("/topic/{}", unique("after"));
    let mut sub = c.subscribe(&topic, AckMode::Auto).await.unwrap();
    send(&c, &topic, "still here").await;
    assert_eq!(text(&next(&mut sub).await), "still here");
}

/// Waits for the next availability change and returns it.
async fn changed(rx: &mut tokio::sync::watch::Receiver<BrokerAvailability>) -> BrokerAvailability {
    tokio::time::timeout(WAIT, rx.changed())
        .await
        .expect("availability changed in time")
        .expect("relay running");
    rx.borrow_and_update().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_broker_fails_over_to_the_next_address_and_subscriptions_return() {
    let target = broker().parse().expect("broker address is ip:port");
    let first = Proxy::start(target, Mode::Forward).await;
    let second = Proxy::start(target, Mode::Refuse).await;
    let a = node(RelayConfig {
        addresses: vec![first.addr.to_string(), second.addr.to_string()],
        ..config()
    })
    .await;
    let b = node(config()).await;
    let relay = a.stomp.relay().unwrap();
    let mut availability = relay.availability();
    availability.borrow_and_update();
    let topic = format!("/topic/{}", unique("alerts"));
    let listener = client(&a, None).await;
    let mut sub = listener.subscribe(&topic, AckMode::Auto).await.unwrap();
    let publisher = client(&b, None).await;
    send(&publisher, &topic, "before").await;
    assert_eq!(text(&next(&mut sub).await), "before");

    // Every address down: unavailable, and a SEND on A fails at once with an ERROR.
    first.set(Mode::Refuse);
    let down = changed(&mut availability).await;
    assert!(!down.is_available(), "{down:?}");
    let failing = client(&a, None).await;
    let err = failing
        .send_receipted(&topic, "lost", Headers::new())
        .await
        .unwrap_err();
    let said = refusal(err);
    assert!(said.contains("broker unavailable"), "{said}");
    assert!(a.stomp.relay().unwrap().health().publish_failures >= 1);

    // The next address comes up: the relay reconnects there and resubscribes; the
    // listener, connected all along, receives again.
    second.set(Mode::Forward);
    let up = changed(&mut availability).await;
    assert_eq!(
        up,
        BrokerAvailability::Available {
            address: second.addr.to_string()
        }
    );
    assert!(!listener.is_closed());
    send(&publisher, &topic, "after").await;
    assert_eq!(text(&next(&mut sub).await), "after");
    assert!(relay.health().connection_failures >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_keeps_heart_beats_and_drops_a_silent_broker() {
    let target = broker().parse().expect("broker address is ip:port");
    let link = Proxy::start(target, Mode::Forward).await;
    let a = node(RelayConfig {
        addresses: vec![link.addr.to_string()],
        connections: 1,
        heartbeat: (100, 100),
        ..config()
    })
    .await;
    // No client traffic at all: the relay beats on its own.
    tokio::time::timeout(WAIT, link.heartbeats(3))
        .await
        .expect("heart-beats from the relay");
    let relay = a.stomp.relay().unwrap();
    let mut availability = relay.availability();
    availability.borrow_and_update();
    // A link that stalls without closing: the broker's beats stop, the relay gives up on
    // it and reconnects.
    link.set(Mode::Freeze);
    let down = changed(&mut availability).await;
    assert!(!down.is_available(), "{down:?}");
    link.set(Mode::Forward);
    assert!(changed(&mut availability).await.is_available());
    assert!(link.accepted() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_on_many_nodes_share_a_topic() {
    let nodes = [
        node(config()).await,
        node(config()).await,
        node(config()).await,
    ];
    let topic = format!("/topic/{}", unique("fanout"));
    let mut clients = Vec::new();
    let mut subs: Vec<Subscription> = Vec::new();
    for n in &nodes {
        for _ in 0..3 {
            let c = client(n, None).await;
            subs.push(c.subscribe(&topic, AckMode::Auto).await.unwrap());
            clients.push(c);
        }
    }
    let publisher = client(&nodes[1], None).await;
    send(&publisher, &topic, "to all nine").await;
    let got: Vec<Message> = futures_util::future::join_all(subs.iter_mut().map(next)).await;
    assert!(got.iter().all(|m| text(m) == "to all nine"));
    for n in &nodes {
        assert_eq!(n.stomp.relay().unwrap().health().broker_subscriptions, 1);
    }
    for (c, sub) in clients.iter().zip(&mut subs) {
        assert_eq!(leftovers(c, sub).await, Vec::<String>::new());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nacked_queue_message_comes_back_from_the_broker() {
    let a = node(config()).await;
    let queue = format!("/queue/{}", unique("retry"));
    let worker = client(&a, None).await;
    let mut sub = worker
        .subscribe(&queue, AckMode::ClientIndividual)
        .await
        .unwrap();
    send(&worker, &queue, "try me").await;
    let first = next(&mut sub).await;
    assert_eq!(first.header("redelivered"), Some("false"));
    worker.nack(&first).await.unwrap();
    // The broker requeued it and, this being the only consumer, delivers it here again.
    let again = next(&mut sub).await;
    assert_eq!(text(&again), "try me");
    assert_eq!(again.header("redelivered"), Some("true"));
    worker.ack(&again).await.unwrap();
    send(&worker, &queue, "next").await;
    assert_eq!(text(&next(&mut sub).await), "next");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_the_broker_is_reachable_sends_fail_saying_why_and_subscriptions_wait() {
    let target = broker().parse().expect("broker address is ip:port");
    let link = Proxy::start(target, Mode::Refuse).await;
    let stomp = StompServer::builder()
        .relay(RelayConfig {
            addresses: vec![link.addr.to_string()],
            ..config()
        })
        .build()
        .unwrap();
    let (ws, health) = (stomp.websocket("/ws"), stomp.health());
    let a = start_app(stomp, move |cfg: &mut actix_web::web::ServiceConfig| {
        ws(cfg);
        health(cfg);
    })
    .await;
    let relay = a.stomp.relay().unwrap();
    let address = link.addr.to_string();
    // The reason follows each attempt; listeners hear only the flips, so it is read.
    client_support::eventually("a failed attempt named", || {
        matches!(&*relay.availability().borrow(),
            BrokerAvailability::Unavailable { reason } if reason.contains(&address))
    })
    .await;

    // A subscription made now is kept and made at the broker once it is reachable.
    let topic = format!("/topic/{}", unique("early"));
    let early = client(&a, None).await;
    let mut sub = early.subscribe(&topic, AckMode::Auto).await.unwrap();
    let sender = client(&a, None).await;
    // Readiness tells a load balancer to keep new clients away meanwhile.
    let ready = http_get(a.http_addr, "/health/ready").await;
    assert!(
        ready.starts_with("HTTP/1.1 503") && ready.contains("broker unavailable"),
        "{ready}"
    );
    let said = refusal(
        sender
            .send_receipted(&topic, "too soon", Headers::new())
            .await
            .unwrap_err(),
    );
    assert!(
        said.contains("broker unavailable") && said.contains(&address),
        "{said}"
    );

    link.set(Mode::Forward);
    assert!(relay.wait_available(WAIT).await);
    let ready = http_get(a.http_addr, "/health/ready").await;
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let b = node(config()).await;
    send(&client(&b, None).await, &topic, "now").await;
    assert_eq!(text(&next(&mut sub).await), "now");
    assert_eq!(leftovers(&early, &mut sub).await, Vec::<String>::new());
}
