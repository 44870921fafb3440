//! `connections`: many concurrent sessions, each holding one subscription.
//!
//! Sessions are spread over source addresses 127.0.0.1, 127.0.0.2, ... (`--per-source`
//! each), since one address has only about 28k ephemeral ports. Reports how long the
//! sessions took to open (TCP, WebSocket upgrade, CONNECT, SUBSCRIBE and its RECEIPT) and,
//! given the server's pid, its resident memory per session (VmRSS after minus before).
//!
//! SockJS sessions (`http://` URLs) go through the library client from 127.0.0.1: each holds
//! one xhr-streaming request open, and sends over short-lived `xhr_send` requests.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stomp_runtime::broker::AckMode;
use stomp_runtime::client::{Client, Subscription};
use stomp_runtime::frame::Command;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::cli::ConnectionsArgs;
use crate::progress::Progress;
use crate::rawconn::RawSession;
use crate::stats::{Latency, round1, round2};
use crate::target::{Scheme, Target};

/// How long the final broadcast may take to reach every session.
const VERIFY_WAIT: Duration = Duration::from_secs(15);

/// The `k`-th loopback source address: 127.0.0.1 ... 127.0.0.254, 127.0.1.1, ...
fn source_address(k: usize) -> IpAddr {
    let k = u32::try_from(k).unwrap_or(u32::MAX);
    let third = u8::try_from(k / 254).unwrap_or(u8::MAX);
    let fourth = u8::try_from(k % 254 + 1).expect("k % 254 + 1 is at most 254");
    IpAddr::V4(Ipv4Addr::new(127, 0, third, fourth))
}

/// Resident memory of process `pid` in KiB (`VmRSS` of /proc/PID/status).
pub fn vm_rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// How one session's opening went.
type Opened = Result<Duration, String>;

/// Runs the scenario and returns its JSON summary.
pub async fn run(args: &ConnectionsArgs) -> Result<Value, String> {
    if args.sessions == 0 || args.per_source == 0 {
        return Err("--sessions and --per-source must be positive".into());
    }
    let target = Arc::new(Target::from_args(&args.target)?);
    let server = target.socket_addr().await?;
    let destination = args
        .destination
        .clone()
        .unwrap_or_else(|| format!("/topic/bench.idle.{}", std::process::id()));
    let sources = args.sessions.div_ceil(args.per_source);
    let server_pid = args.server_pid.map(|p| p.to_string());
    let rss_before = server_pid.as_deref().and_then(vm_rss_kib);
    if let (Some(pid), None) = (&server_pid, rss_before) {
        return Err(format!("cannot read VmRSS of pid {pid}"));
    }
    let client_rss_before = vm_rss_kib("self");
    let tag = format!(
        "connections {}",
        if args.tag.label.is_empty() {
            &target.url
        } else {
            &args.tag.label
        }
    );

    let stop = CancellationToken::new();
    let received = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let opened = Arc::new(AtomicU64::new(0));
    let permits = Arc::new(Semaphore::new(target.concurrency));
    let (tx, mut rx) = mpsc::unbounded_channel::<Opened>();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.sessions);
    for i in 0..args.sessions {
        let source = source_address(i / args.per_source);
        let session = SessionJob {
            target: target.clone(),
            server,
            source,
            destination: destination.clone(),
            permits: permits.clone(),
            opened: tx.clone(),
            received: received.clone(),
            closed: closed.clone(),
            stop: stop.clone(),
        };
        tasks.push(tokio::spawn(session.run()));
    }
    drop(tx);
    let progress = {
        let opened = opened.clone();
        let mut last = (Duration::ZERO, 0u64);
        let n = args.sessions;
        Progress::start(tag.clone(), move |elapsed| {
            let k = opened.load(Ordering::Relaxed);
            let rate = (k - last.1) as f64 / (elapsed - last.0).as_secs_f64().max(1e-9);
            last = (elapsed, k);
            format!("sessions up {k}/{n} ({rate:.0}/s)")
        })
    };

    let mut establish = Latency::new();
    let mut failed = 0u64;
    let mut first_error = None;
    let deadline = tokio::time::Instant::now() + args.timeout;
    let mut timed_out = false;
    for _ in 0..args.sessions {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Ok(took))) => {
                establish.record(took);
                opened.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Some(Err(e))) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            Ok(None) => break,
            Err(_) => {
                timed_out = true;
                break;
            }
        }
    }
    let establish_s = started.elapsed().as_secs_f64();
    let up = opened.load(Ordering::Relaxed);
    progress.finish().await;
    eprintln!(
        "[{tag}] {up} sessions up, {failed} failed in {establish_s:.2}s; settling {:?}",
        args.settle
    );
    tokio::time::sleep(args.settle).await;
    let rss_after = server_pid.as_deref().and_then(vm_rss_kib);
    let client_rss_after = vm_rss_kib("self");

    let mut verified = None;
    if args.verify && up > 0 {
        verified = Some(verify(&target, &destination, &received, up).await);
    }
    let still_open = up.saturating_sub(closed.load(Ordering::Relaxed));
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }

    let rss_per_session = match (rss_before, rss_after) {
        (Some(b), Some(a)) if up > 0 => Some(round1((a as f64 - b as f64) / up as f64)),
        _ => None,
    };
    let summary = json!({
        "mode": "connections",
        "scenario": args.tag.scenario.clone().unwrap_or_else(|| "connections".into()),
        "label": args.tag.label,
        "url": target.url,
        "transport": target.scheme.name(),
        "sessions": args.sessions,
        "established": up,
        "failed": failed,
        "timed_out": timed_out,
        "first_error": first_error,
        "source_addresses": sources,
        "establish_s": round2(establish_s),
        "sessions_per_s": round1(up as f64 / establish_s.max(1e-9)),
        "establish_latency_us": establish.summary(),
        "server_pid": args.server_pid,
        "server_rss_before_kib": rss_before,
        "server_rss_after_kib": rss_after,
        "rss_per_session_kib": rss_per_session,
        "client_rss_per_session_kib": match (client_rss_before, client_rss_after) {
            (Some(b), Some(a)) if up > 0 => Some(round1((a as f64 - b as f64) / up as f64)),
            _ => None,
        },
        "still_open_at_end": still_open,
        "verify_received": verified,
    });
    println!(
        "connections {}: {up}/{} sessions up ({failed} failed) from {sources} source address(es) in {establish_s:.2}s ({:.0}/s)",
        target.url,
        args.sessions,
        up as f64 / establish_s.max(1e-9)
    );
    println!("  time to establish one session: {}", establish.line());
    if let (Some(b), Some(a), Some(per)) = (rss_before, rss_after, rss_per_session) {
        println!("  server VmRSS {b} KiB -> {a} KiB: {per:.1} KiB per session");
    }
    if let Some(v) = verified {
        println!("  broadcast reached {v}/{up} sessions");
    }
    if let Some(e) = summary["first_error"].as_str() {
        println!("  first error: {e}");
    }
    Ok(summary)
}

/// Publishes one message to `destination` and waits until `expect` sessions have it.
async fn verify(target: &Target, destination: &str, received: &AtomicU64, expect: u64) -> u64 {
    let client = match target.connect().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("verify: cannot connect: {e}");
            return 0;
        }
    };
    if let Err(e) = client.send(destination, "ping").await {
        eprintln!("verify: cannot publish: {e}");
        return 0;
    }
    let deadline = Instant::now() + VERIFY_WAIT;
    while received.load(Ordering::Relaxed) < expect && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(client);
    received.load(Ordering::Relaxed)
}

/// One session: open, subscribe, report, then hold until stopped.
struct SessionJob {
    target: Arc<Target>,
    server: std::net::SocketAddr,
    source: IpAddr,
    destination: String,
    permits: Arc<Semaphore>,
    opened: mpsc::UnboundedSender<Opened>,
    received: Arc<AtomicU64>,
    closed: Arc<AtomicU64>,
    stop: CancellationToken,
}

/// One held session: STOMP spoken by hand over a pre-bound socket, or the library client
/// (SockJS, which has no pre-bound socket).
enum Held {
    Raw(RawSession),
    Client {
        _client: Client,
        subscription: Subscription,
    },
}

impl Held {
    /// Opens a session and subscribes to `destination`.
    async fn open(job: &SessionJob) -> Result<Self, String> {
        if job.target.scheme == Scheme::SockJs {
            let client = job.target.connect().await.map_err(|e| e.to_string())?;
            let subscription = client
                .subscribe(&job.destination, AckMode::Auto)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(Held::Client {
                _client: client,
                subscription,
            });
        }
        let mut s = RawSession::open(&job.target, job.server, job.source).await?;
        s.subscribe(&job.destination).await?;
        Ok(Held::Raw(s))
    }

    /// Waits for the next delivery: `Some(true)` for a MESSAGE, `Some(false)` for another
    /// frame, `None` once the session ended.
    async fn next(&mut self) -> Option<bool> {
        match self {
            Held::Raw(s) => match s.next_frame().await {
                Ok(Some(f)) => Some(f.command == Command::Message),
                Ok(None) | Err(_) => None,
            },
            Held::Client { subscription, .. } => subscription.next().await.map(|_| true),
        }
    }
}

impl SessionJob {
    async fn run(self) {
        let opening = async {
            let _permit = self
                .permits
                .acquire()
                .await
                .map_err(|_| "stopped".to_owned())?;
            let t0 = Instant::now();
            let held = Held::open(&self).await?;
            Ok::<_, String>((held, t0.elapsed()))
        };
        let mut session = tokio::select! {
            _ = self.stop.cancelled() => return,
            r = opening => match r {
                Ok((s, took)) => {
                    let _ = self.opened.send(Ok(took));
                    s
                }
                Err(e) => {
                    let _ = self.opened.send(Err(e));
                    return;
                }
            },
        };
        drop(self.opened);
        loop {
            let delivery = tokio::select! {
                _ = self.stop.cancelled() => return,
                d = session.next() => d,
            };
            match delivery {
                Some(true) => {
                    self.received.fetch_add(1, Ordering::Relaxed);
                }
                Some(false) => {}
                None => {
                    self.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_stay_in_loopback() {
        assert_eq!(source_address(0).to_string(), "127.0.0.1");
        assert_eq!(source_address(253).to_string(), "127.0.0.254");
        assert_eq!(source_address(254).to_string(), "127.0.1.1");
    }

    #[test]
    fn reads_own_rss() {
        assert!(vm_rss_kib("self").unwrap() > 0);
    }
}
