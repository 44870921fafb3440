//! Fan-out through the in-memory broker without sockets: one message published to a topic
//! with 100 and 1,000 subscribers whose sinks only count; and the cost of a publish when
//! 10,000 sessions each hold a subscription on a distinct pattern.
//!
//! `cargo bench -p stomp-runtime --bench broker`. Each iteration creates the message (as a
//! SEND does) and publishes it; the elements throughput is deliveries per second.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt;
use stomp_runtime::broker::{
    AckMode, Broker, BrokerMessage, Delivery, MessageSink, SimpleBroker, Subscription,
};
use stomp_runtime::frame::{Headers, Version};

/// Counts deliveries and nothing else: the broker's own cost.
#[derive(Default)]
struct CountingSink {
    delivered: AtomicU64,
}

impl MessageSink for CountingSink {
    fn deliver(&self, _message: &Arc<BrokerMessage>) -> Delivery {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        Delivery::Delivered
    }
}

/// Also takes the shared MESSAGE encoding, as the session's sink does before queueing.
#[derive(Default)]
struct EncodingSink {
    bytes: AtomicU64,
}

impl MessageSink for EncodingSink {
    fn deliver(&self, message: &Arc<BrokerMessage>) -> Delivery {
        let encoded = message.shared_encoding(Version::V1_2).clone();
        self.bytes
            .fetch_add(encoded.len() as u64, Ordering::Relaxed);
        Delivery::Delivered
    }
}

/// The simple broker never waits inside `publish` or `subscribe`.
fn now<T>(f: impl std::future::Future<Output = T>) -> T {
    f.now_or_never()
        .expect("the in-memory broker completes without waiting")
}

fn broker_with(subscribers: usize, sink: impl Fn() -> Arc<dyn MessageSink>) -> SimpleBroker {
    let broker = SimpleBroker::new(["/topic"], ["/queue"]);
    for i in 0..subscribers {
        now(broker.subscribe(Subscription {
            session_id: Arc::from(format!("session-{i}")),
            id: "sub-0".into(),
            destination: "/topic/prices".into(),
            ack: AckMode::Auto,
            sink: sink(),
        }))
        .expect("topic subscription accepted");
    }
    // Another topic's subscribers, which the fan-out must not visit.
    for i in 0..100 {
        now(broker.subscribe(Subscription {
            session_id: Arc::from(format!("other-{i}")),
            id: "sub-0".into(),
            destination: format!("/topic/other.{i}"),
            ack: AckMode::Auto,
            sink: sink(),
        }))
        .expect("topic subscription accepted");
    }
    broker
}

fn fanout(c: &mut Criterion) {
    let body = Bytes::from(vec![b'x'; 128]);
    let mut g = c.benchmark_group("fanout");
    for subscribers in [100usize, 1000] {
        g.throughput(Throughput::Elements(subscribers as u64));
        for (sink_name, make) in [
            (
                "count",
                (|| Arc::new(CountingSink::default()) as Arc<dyn MessageSink>)
                    as fn() -> Arc<dyn MessageSink>,
            ),
            ("encode", || {
                Arc::new(EncodingSink::default()) as Arc<dyn MessageSink>
            }),
        ] {
            let broker = broker_with(subscribers, make);
            g.bench_function(format!("{subscribers}_subscribers_{sink_name}"), |b| {
                b.iter(|| {
                    let m = BrokerMessage::new("/topic/prices", None, Headers::new(), body.clone());
                    now(broker.publish(black_box(m))).expect("published");
                })
            });
        }
    }
    g.finish();
}

/// Sessions, each subscribed to its own pattern.
const PATTERN_SESSIONS: usize = 10_000;

/// Half the sessions watch `/topic/sensor.{i}.*`, the other half `/topic/site.{i}.**`: no
/// two patterns alike, as when every device or user follows its own subtree.
fn pattern_of(i: usize) -> String {
    if i.is_multiple_of(2) {
        format!("/topic/sensor.{i}.*")
    } else {
        format!("/topic/site.{i}.**")
    }
}

fn patterns(c: &mut Criterion) {
    let body = Bytes::from(vec![b'x'; 128]);
    let broker = SimpleBroker::new(["/topic"], ["/queue"]);
    let sinks: Vec<Arc<CountingSink>> = (0..PATTERN_SESSIONS)
        .map(|_| Arc::new(CountingSink::default()))
        .collect();
    for (i, sink) in sinks.iter().enumerate() {
        now(broker.subscribe(Subscription {
            session_id: Arc::from(format!("session-{i}")),
            id: "sub-0".into(),
            destination: pattern_of(i),
            ack: AckMode::Auto,
            sink: sink.clone(),
        }))
        .expect("pattern subscription accepted");
    }
    let mut g = c.benchmark_group("patterns_10000_sessions");
    g.throughput(Throughput::Elements(1));
    // (name, destination, how many subscriptions it reaches)
    for (name, destination, reaches) in [
        ("publish_matching_one", "/topic/sensor.4242.temperature", 1),
        ("publish_matching_one_deep", "/topic/site.4243.hall.door", 1),
        ("publish_matching_none", "/topic/news.today", 0),
    ] {
        let before: u64 = sinks
            .iter()
            .map(|s| s.delivered.load(Ordering::Relaxed))
            .sum();
        now(broker.publish(BrokerMessage::new(
            destination,
            None,
            Headers::new(),
            body.clone(),
        )))
        .expect("published");
        let after: u64 = sinks
            .iter()
            .map(|s| s.delivered.load(Ordering::Relaxed))
            .sum();
        assert_eq!(after - before, reaches, "{destination}");
        g.bench_function(name, |b| {
            b.iter(|| {
                let m = BrokerMessage::new(destination, None, Headers::new(), body.clone());
                now(broker.publish(black_box(m))).expect("published");
            })
        });
    }
    g.finish();
}

criterion_group!(benches, fanout, patterns);
criterion_main!(benches);
