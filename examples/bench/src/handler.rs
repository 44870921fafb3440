//! `handler`: round trip through an application handler next to a plain publish.
//!
//! One session subscribes to the handlers' reply topics and to a plain topic, then
//! alternates, one message in flight at a time: SEND to `/app/bench.echo` (the handler
//! publishes the body to `/topic/bench.echo`) and wait for it; SEND to `/topic/bench.plain`
//! and wait for it; in process, also SEND to `/app/bench.advised` (the same handler under
//! three around advices) and wait for it. Alternating puts all under the same conditions.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stomp_runtime::broker::AckMode;
use stomp_runtime::client::Subscription;

use crate::cli::{HandlerArgs, Transport};
use crate::inproc::{
    ADVISED_DESTINATION, ADVISED_REPLY_TOPIC, ECHO_DESTINATION, ECHO_REPLY_TOPIC, InProcServer,
};
use crate::payload;
use crate::progress::Progress;
use crate::stats::{Latency, round1, round2};
use crate::target::Target;

/// The plain topic compared with the handler.
const PLAIN_TOPIC: &str = "/topic/bench.plain";
/// Round-trip pairs run first and not counted (connection and allocator warm-up).
const WARMUP_PAIRS: u32 = 200;
/// Longest wait for one reply; a lost message fails the run rather than hanging it.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the scenario and returns its JSON summary.
pub async fn run(args: &HandlerArgs) -> Result<Value, String> {
    let mut server = None;
    let url = match &args.url {
        Some(url) => url.clone(),
        None => {
            let s = InProcServer::start()?;
            let url = match args.transport {
                Transport::Ws => s.ws_url.clone(),
                Transport::Tcp => s.tcp_url.clone(),
            };
            server = Some(s);
            url
        }
    };
    let target = Target::local(&url)?;
    let client = target
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut echo = client
        .subscribe(ECHO_REPLY_TOPIC, AckMode::Auto)
        .await
        .map_err(|e| format!("subscribe {ECHO_REPLY_TOPIC}: {e}"))?;
    let mut plain = client
        .subscribe(PLAIN_TOPIC, AckMode::Auto)
        .await
        .map_err(|e| format!("subscribe {PLAIN_TOPIC}: {e}"))?;
    // Only the in-process server has the advised handler.
    let mut advised = match server {
        Some(_) => Some(
            client
                .subscribe(ADVISED_REPLY_TOPIC, AckMode::Auto)
                .await
                .map_err(|e| format!("subscribe {ADVISED_REPLY_TOPIC}: {e}"))?,
        ),
        None => None,
    };

    let tag = format!(
        "handler {}",
        if args.tag.label.is_empty() {
            &url
        } else {
            &args.tag.label
        }
    );
    let pairs = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let progress = {
        let pairs = pairs.clone();
        Progress::start(tag, move |_| {
            format!(
                "round-trip pairs {}",
                pairs.load(std::sync::atomic::Ordering::Relaxed)
            )
        })
    };

    let mut via_handler = Latency::new();
    let mut via_plain = Latency::new();
    let mut via_advised = Latency::new();
    let mut handler_time = Duration::ZERO;
    let mut plain_time = Duration::ZERO;
    let mut advised_time = Duration::ZERO;
    let mut seq = 0u64;
    for _ in 0..WARMUP_PAIRS {
        round_trip(&client, ECHO_DESTINATION, &mut echo, args.size, &mut seq).await?;
        round_trip(&client, PLAIN_TOPIC, &mut plain, args.size, &mut seq).await?;
        if let Some(sub) = advised.as_mut() {
            round_trip(&client, ADVISED_DESTINATION, sub, args.size, &mut seq).await?;
        }
    }
    let started = Instant::now();
    while started.elapsed() < args.duration {
        let h = round_trip(&client, ECHO_DESTINATION, &mut echo, args.size, &mut seq).await?;
        let p = round_trip(&client, PLAIN_TOPIC, &mut plain, args.size, &mut seq).await?;
        via_handler.record(h);
        via_plain.record(p);
        handler_time += h;
        plain_time += p;
        if let Some(sub) = advised.as_mut() {
            let a = round_trip(&client, ADVISED_DESTINATION, sub, args.size, &mut seq).await?;
            via_advised.record(a);
            advised_time += a;
        }
        pairs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    progress.finish().await;
    drop(echo);
    drop(plain);
    drop(advised);
    let _ = client.disconnect().await;
    drop(server);

    let ratio = |p: f64| round2(via_handler.at_us(p) / via_plain.at_us(p).max(1e-9));
    let mean_ratio = round2(via_handler.mean_us() / via_plain.mean_us().max(1e-9));
    let advised_ratio = |p: f64| round2(via_advised.at_us(p) / via_handler.at_us(p).max(1e-9));
    let advised_mean_ratio = round2(via_advised.mean_us() / via_handler.mean_us().max(1e-9));
    let mut summary = json!({
        "mode": "handler",
        "scenario": args.tag.scenario.clone().unwrap_or_else(|| "handler".into()),
        "label": args.tag.label,
        "url": url,
        "in_process": args.url.is_none(),
        "size": args.size,
        "duration_s": args.duration.as_secs_f64(),
        "pairs": via_handler.count(),
        "handler_round_trips_per_s": round1(via_handler.count() as f64 / handler_time.as_secs_f64().max(1e-9)),
        "plain_round_trips_per_s": round1(via_plain.count() as f64 / plain_time.as_secs_f64().max(1e-9)),
        "handler_latency_us": via_handler.summary(),
        "plain_latency_us": via_plain.summary(),
        "ratio_mean": mean_ratio,
        "ratio_p50": ratio(50.0),
        "ratio_p99": ratio(99.0),
    });
    if via_advised.count() > 0 {
        summary["advised_round_trips_per_s"] = json!(round1(
            via_advised.count() as f64 / advised_time.as_secs_f64().max(1e-9)
        ));
        summary["advised_latency_us"] = via_advised.summary();
        summary["advised_ratio_mean"] = json!(advised_mean_ratio);
        summary["advised_ratio_p50"] = json!(advised_ratio(50.0));
        summary["advised_ratio_p99"] = json!(advised_ratio(99.0));
    }
    println!(
        "handler round trip vs plain publish over {url} ({} B bodies, {} pairs, one in flight)",
        args.size,
        via_handler.count()
    );
    println!("  via /app handler: {}", via_handler.line());
    println!("  plain publish:    {}", via_plain.line());
    if via_advised.count() > 0 {
        println!("  handler + 3 advices: {}", via_advised.line());
    }
    println!(
        "  handler / plain: mean {mean_ratio:.2}x, p50 {:.2}x, p99 {:.2}x",
        ratio(50.0),
        ratio(99.0)
    );
    if via_advised.count() > 0 {
        println!(
            "  advised / handler: mean {advised_mean_ratio:.2}x, p50 {:.2}x, p99 {:.2}x",
            advised_ratio(50.0),
            advised_ratio(99.0)
        );
    }
    Ok(summary)
}

/// Sends one stamped body to `destination` and waits for it on `sub`.
async fn round_trip(
    client: &stomp_runtime::client::Client,
    destination: &str,
    sub: &mut Subscription,
    size: usize,
    seq: &mut u64,
) -> Result<Duration, String> {
    let body = payload::stamped(size, 0, *seq);
    *seq += 1;
    let sent = payload::stamp_of(&body).expect("a fresh body carries its stamp");
    let t0 = Instant::now();
    client
        .send(destination, body)
        .await
        .map_err(|e| format!("send to {destination}: {e}"))?;
    loop {
        let message = tokio::time::timeout(REPLY_TIMEOUT, sub.next())
            .await
            .map_err(|_| format!("no reply on {destination} within {REPLY_TIMEOUT:?}"))?
            .ok_or_else(|| format!("connection closed waiting for {destination}"))?;
        // Anything else on the topic (another run's message) is skipped.
        if payload::stamp_of(message.body()) == Some(sent) {
            return Ok(t0.elapsed());
        }
    }
}
