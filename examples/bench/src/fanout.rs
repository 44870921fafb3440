//! `fanout`: N subscribers, P publishers, one topic.
//!
//! Every subscription is confirmed by its RECEIPT before the first message leaves. Each
//! body carries its send time; each subscriber keeps its own histogram, merged at the end.
//! Publishers either pace themselves to an offered rate (whatever the server does: loss and
//! latency show) or send as fast as a window allows: at most `window` messages published
//! and not yet received by the slowest live subscriber. The window measures what a server
//! can sustain rather than how fast its queues grow, and keeps within our server's default
//! slow-consumer limit (512 KiB). Loss is what has not arrived by the end of the drain.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use stomp_runtime::broker::AckMode;
use stomp_runtime::client::{Client, Subscription};
use tokio_util::sync::CancellationToken;

use crate::cli::FanoutArgs;
use crate::payload;
use crate::progress::Progress;
use crate::stats::{Latency, round1, round2};
use crate::target::Target;

/// Bytes of MESSAGE frame around the body (headers), for sizing the default window.
const FRAME_OVERHEAD: usize = 200;
/// In-flight bytes per subscriber the default window allows: half of our server's default
/// slow-consumer limit (512 KiB, Spring's send buffer size limit).
const DEFAULT_WINDOW_BYTES: usize = 256 * 1024;
/// How often the drain checks whether everything has arrived.
const DRAIN_POLL: Duration = Duration::from_millis(10);
/// Pause of a publisher that is ahead of the offered rate or the window.
const PUBLISHER_PAUSE: Duration = Duration::from_millis(1);

/// One subscriber's counters, alone on a cache line: each is written by its own task.
#[repr(align(64))]
#[derive(Default)]
struct Slot {
    delivered: AtomicU64,
    alive: AtomicBool,
}

/// What the publishers, subscribers and the progress line share.
struct Counters {
    sent: AtomicU64,
    publisher_errors: AtomicU64,
    slots: Box<[Slot]>,
    /// Messages that carried no timestamp (not ours, or mangled).
    unstamped: AtomicU64,
}

impl Counters {
    fn delivered(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| s.delivered.load(Ordering::Relaxed))
            .sum()
    }

    /// Messages received by the slowest live subscriber; `None` when none is alive.
    fn slowest(&self) -> Option<u64> {
        self.slots
            .iter()
            .filter(|s| s.alive.load(Ordering::Relaxed))
            .map(|s| s.delivered.load(Ordering::Relaxed))
            .min()
    }

    fn alive(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.alive.load(Ordering::Relaxed))
            .count()
    }
}

/// Runs the scenario and returns its JSON summary.
pub async fn run(args: &FanoutArgs) -> Result<Value, String> {
    if args.subscribers == 0 || args.publishers == 0 {
        return Err("need at least one subscriber and one publisher".into());
    }
    let target = Target::from_args(&args.target)?;
    let mut sub_targets = vec![target.clone()];
    for url in &args.subscribe_url {
        let mut other = args.target.clone();
        other.url = url.clone();
        sub_targets.push(Target::from_args(&other)?);
    }
    let destination = args
        .destination
        .clone()
        .unwrap_or_else(|| format!("/topic/bench.{}", std::process::id()));
    // At an offered rate the generator keeps offering whatever the server does, so loss
    // and latency show; only as-fast-as-possible runs need the window by default.
    let window = args.window.unwrap_or(if args.rate > 0 {
        0
    } else {
        (DEFAULT_WINDOW_BYTES / (args.size + FRAME_OVERHEAD)).max(16) as u64
    });
    let tag = format!(
        "fanout {}",
        if args.tag.label.is_empty() {
            &target.url
        } else {
            &args.tag.label
        }
    );

    let setup = Instant::now();
    let subs = connect_subscribers(&sub_targets, &destination, args.subscribers, &tag).await?;
    let publishers = connect_many(&target, args.publishers).await?;
    let setup_s = setup.elapsed().as_secs_f64();
    eprintln!(
        "[{tag}] {} subscribers confirmed, {} publishers connected in {setup_s:.2}s; publishing for {:?}",
        subs.len(),
        publishers.len(),
        args.duration
    );

    let counters = Arc::new(Counters {
        sent: AtomicU64::new(0),
        publisher_errors: AtomicU64::new(0),
        slots: (0..subs.len())
            .map(|_| Slot {
                delivered: AtomicU64::new(0),
                alive: AtomicBool::new(true),
            })
            .collect(),
        unstamped: AtomicU64::new(0),
    });
    let stop_subscribers = CancellationToken::new();
    let mut clients = Vec::with_capacity(subs.len() + publishers.len());
    let mut readers = Vec::with_capacity(subs.len());
    for (i, (client, sub)) in subs.into_iter().enumerate() {
        clients.push(client);
        readers.push(tokio::spawn(read_messages(
            sub,
            i,
            counters.clone(),
            stop_subscribers.clone(),
        )));
    }

    let progress = {
        let counters = counters.clone();
        let mut last = (Duration::ZERO, 0u64, 0u64);
        Progress::start(tag.clone(), move |elapsed| {
            let sent = counters.sent.load(Ordering::Relaxed);
            let delivered = counters.delivered();
            let dt = (elapsed - last.0).as_secs_f64().max(1e-9);
            let line = format!(
                "sent {sent} ({:.0}/s)  delivered {delivered} ({:.0}/s)  subscribers alive {}",
                (sent - last.1) as f64 / dt,
                (delivered - last.2) as f64 / dt,
                counters.alive()
            );
            last = (elapsed, sent, delivered);
            line
        })
    };

    let publish_start = payload::now_ns();
    let started = Instant::now();
    let deadline = started + args.duration;
    let per_publisher_rate = args.rate as f64 / publishers.len() as f64;
    let publishers = publishers.into_iter().map(Arc::new).collect::<Vec<_>>();
    let mut pub_tasks = Vec::new();
    for (p, client) in publishers.iter().enumerate() {
        let job = Publisher {
            client: client.clone(),
            index: p,
            destination: destination.clone(),
            size: args.size,
            rate: per_publisher_rate,
            window,
            started,
            deadline,
            counters: counters.clone(),
        };
        pub_tasks.push(tokio::spawn(job.run()));
    }
    for t in pub_tasks {
        let _ = t.await;
    }
    let publish_s = started.elapsed().as_secs_f64();

    // Drain: wait for the live subscribers to catch up, for at most `args.drain`.
    let sent = counters.sent.load(Ordering::Relaxed);
    let drain_deadline = Instant::now() + args.drain;
    while Instant::now() < drain_deadline {
        match counters.slowest() {
            Some(slowest) if slowest < sent => tokio::time::sleep(DRAIN_POLL).await,
            _ => break,
        }
    }
    stop_subscribers.cancel();
    progress.finish().await;

    let mut latency = Latency::new();
    let mut last_delivery = publish_start;
    for r in readers {
        if let Ok((hist, last)) = r.await {
            latency.merge(&hist);
            last_delivery = last_delivery.max(last);
        }
    }
    let delivered = counters.delivered();
    let subscribers = counters.slots.len() as u64;
    let expected = sent * subscribers;
    let loss = expected.saturating_sub(delivered);
    let delivery_s = (last_delivery.saturating_sub(publish_start)) as f64 / 1e9;
    let delivered_per_s = if delivery_s > 0.0 {
        delivered as f64 / delivery_s
    } else {
        0.0
    };
    drop(publishers);
    drop(clients);

    let summary = json!({
        "mode": "fanout",
        "scenario": args.tag.scenario.clone().unwrap_or_else(|| "fanout".into()),
        "label": args.tag.label,
        "url": target.url,
        "subscribe_urls": args.subscribe_url,
        "transport": target.scheme.name(),
        "destination": destination,
        "subscribers": subscribers,
        "publishers": args.publishers,
        "offered_rate": args.rate,
        "size": args.size,
        "duration_s": args.duration.as_secs_f64(),
        "window": window,
        "setup_s": round2(setup_s),
        "sent": sent,
        "expected": expected,
        "delivered": delivered,
        "loss": loss,
        "loss_pct": if expected > 0 { loss as f64 * 100.0 / expected as f64 } else { 0.0 },
        "extra": delivered.saturating_sub(expected),
        "unstamped": counters.unstamped.load(Ordering::Relaxed),
        "subscribers_lost": subscribers - counters.alive() as u64,
        "publisher_errors": counters.publisher_errors.load(Ordering::Relaxed),
        "sent_per_s": round1(sent as f64 / publish_s.max(1e-9)),
        "delivered_per_s": round1(delivered_per_s),
        "latency_us": latency.summary(),
    });
    println!(
        "fanout {} -> {}: {} subscribers, {} publishers, {} B bodies, offered {}",
        target.url,
        destination,
        subscribers,
        args.publishers,
        args.size,
        if args.rate == 0 {
            format!("max (window {window})")
        } else {
            format!("{} msg/s", args.rate)
        }
    );
    println!(
        "  sent {sent} ({:.0}/s)  delivered {delivered}/{expected} ({:.0}/s)  loss {loss} ({:.3}%)  subscribers lost {}",
        summary["sent_per_s"].as_f64().unwrap_or_default(),
        delivered_per_s,
        summary["loss_pct"].as_f64().unwrap_or_default(),
        summary["subscribers_lost"]
    );
    println!("  latency {}", latency.line());
    Ok(summary)
}

/// Opens `n` sessions, `target.concurrency` at a time.
async fn connect_many(target: &Target, n: usize) -> Result<Vec<Client>, String> {
    futures_util::stream::iter(0..n)
        .map(|i| async move {
            target
                .connect()
                .await
                .map_err(|e| format!("session {i}: {e}"))
        })
        .buffer_unordered(target.concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Opens `n` sessions, spread round robin over `targets`, and subscribes each to
/// `destination`, waiting for every RECEIPT.
async fn connect_subscribers(
    targets: &[Target],
    destination: &str,
    n: usize,
    tag: &str,
) -> Result<Vec<(Client, Subscription)>, String> {
    let started = Instant::now();
    let done = AtomicU64::new(0);
    let done = &done;
    let results: Vec<Result<(Client, Subscription), String>> = futures_util::stream::iter(0..n)
        .map(|i| async move {
            let client = targets[i % targets.len()]
                .connect()
                .await
                .map_err(|e| format!("subscriber {i}: {e}"))?;
            let sub = client
                .subscribe(destination, AckMode::Auto)
                .await
                .map_err(|e| format!("subscriber {i}: SUBSCRIBE: {e}"))?;
            let k = done.fetch_add(1, Ordering::Relaxed) + 1;
            if k.is_multiple_of(1000) {
                eprintln!(
                    "[{tag}] {k}/{n} subscribed ({:.1}s)",
                    started.elapsed().as_secs_f64()
                );
            }
            Ok((client, sub))
        })
        .buffer_unordered(targets[0].concurrency)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Reads one subscription until stopped or closed; returns its latencies and the time of
/// its last delivery.
async fn read_messages(
    mut sub: Subscription,
    index: usize,
    counters: Arc<Counters>,
    stop: CancellationToken,
) -> (Latency, u64) {
    let mut latency = Latency::new();
    let mut last = 0;
    let slot = &counters.slots[index];
    loop {
        let message = tokio::select! {
            biased;
            m = sub.next() => m,
            _ = stop.cancelled() => break,
        };
        let Some(message) = message else {
            // The connection ended (a slow-consumer disconnect, say).
            slot.alive.store(false, Ordering::Relaxed);
            break;
        };
        match payload::age(message.body()) {
            Some(age) => latency.record(age),
            None => {
                counters.unstamped.fetch_add(1, Ordering::Relaxed);
            }
        }
        last = payload::now_ns();
        slot.delivered.fetch_add(1, Ordering::Relaxed);
    }
    (latency, last)
}

/// One publishing session's loop.
struct Publisher {
    client: Arc<Client>,
    index: usize,
    destination: String,
    size: usize,
    /// Messages per second for this publisher; 0 for as fast as the window allows.
    rate: f64,
    window: u64,
    started: Instant,
    deadline: Instant,
    counters: Arc<Counters>,
}

impl Publisher {
    async fn run(self) {
        let mut seq: u64 = 0;
        // A lower bound of the slowest subscriber's count: it only grows, so it is
        // refreshed only when the window seems full.
        let mut slowest_seen = 0u64;
        loop {
            let now = Instant::now();
            if now >= self.deadline {
                break;
            }
            if self.rate > 0.0 {
                let due = ((now - self.started).as_secs_f64() * self.rate) as u64 + 1;
                if seq >= due {
                    let next = self.started + Duration::from_secs_f64(seq as f64 / self.rate);
                    tokio::time::sleep_until(next.min(self.deadline).into()).await;
                    continue;
                }
            }
            if self.window > 0 {
                let sent = self.counters.sent.load(Ordering::Relaxed);
                if sent.saturating_sub(slowest_seen) >= self.window {
                    match self.counters.slowest() {
                        None => break,
                        Some(s) => slowest_seen = s,
                    }
                    if sent.saturating_sub(slowest_seen) >= self.window {
                        tokio::time::sleep(PUBLISHER_PAUSE).await;
                        continue;
                    }
                }
            }
            let body = payload::stamped(self.size, self.index, seq);
            self.counters.sent.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self.client.send(&self.destination, body).await {
                self.counters.sent.fetch_sub(1, Ordering::Relaxed);
                self.counters
                    .publisher_errors
                    .fetch_add(1, Ordering::Relaxed);
                eprintln!("publisher {}: {e}", self.index);
                break;
            }
            seq += 1;
        }
    }
}
