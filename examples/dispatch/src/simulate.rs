//! The device simulator: N devices of the fleet over raw STOMP on TCP (with the project's
//! Rust client), reporting their status, answering commands, pressing call buttons and
//! taking payments; some develop faults, some go silent. Optionally, operator boards (Rust
//! client sessions over WebSocket that subscribe as the page does) measure how fast alerts
//! and command answers reach them, and the server process's CPU and memory are sampled.
//!
//! A simulated device reports once per `--report-ms` and announces that interval as its
//! heart-beat without sending separate beats: its reports are its heart-beats, as with
//! equipment whose firmware simply reports on a timer. A device that goes silent stops
//! reporting and keeps its socket open, as a hung device does; the server drops it once
//! its heart-beat deadline passes, and it reconnects after `--silent-secs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;
use stomp_runtime::broker::AckMode;
use stomp_runtime::client::{Client, ClientError, ConnectOptions, Subscription};
use stomp_runtime::frame::Headers;
use tokio::sync::Semaphore;

use crate::controllers::test_cards;
use crate::fleet::{Device, Fleet, FleetKey, Kind};
use crate::model::{
    Action, Alert, AlertKind, CallRequest, Command, CommandAck, CommandEvent, CommandStatus,
    Health, PaymentRequest, StatusReport, now_ms,
};

/// What the simulator runs.
#[derive(Clone, Debug, clap::Args)]
pub struct SimConfig {
    /// The server's raw STOMP-over-TCP address (devices connect there).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:61626")]
    pub tcp: SocketAddr,

    /// The server's STOMP-over-WebSocket URL (boards connect there).
    #[arg(long, value_name = "URL", default_value = "ws://127.0.0.1:8081/ws")]
    pub ws: String,

    /// How many devices to run: the first N of the fleet.
    #[arg(long, default_value_t = 500)]
    pub devices: usize,

    /// The fleet key the server derives device passcodes from.
    #[arg(long, env = "DISPATCH_FLEET_KEY", default_value = crate::DEMO_FLEET_KEY, hide_env_values = true)]
    pub fleet_key: String,

    /// How often each device reports, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub report_ms: u64,

    /// Chance, at each report of a working device, that it develops a fault.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub faults: f64,

    /// How long a fault lasts before the device reports it fixed, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub fault_secs: u64,

    /// Chance, at each report, that the device hangs: it stops sending anything.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub silences: f64,

    /// How long a hung device stays away once the server has dropped it, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub silent_secs: u64,

    /// Chance, at each report of a kiosk, that a driver presses its call button.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub calls: f64,

    /// Chance, at each report of a payment station, that a driver pays.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub payments: f64,

    /// Operator boards to run (WebSocket sessions subscribed as the page is).
    #[arg(long, default_value_t = 0)]
    pub boards: usize,

    /// The boards' operator login.
    #[arg(long, default_value = "olivia")]
    pub operator: String,

    /// The operator's password.
    #[arg(long, default_value = "aivilo")]
    pub password: String,

    /// Commands per second the first board sends to random connected gates ("open").
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub commands: f64,

    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,

    /// Most connection attempts in flight at once.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,

    /// Sample this process's CPU and memory (the server's pid) over the run.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,

    /// Seconds after everything connected before measuring starts.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub warmup: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            tcp: "127.0.0.1:61626".parse().expect("a valid address"),
            ws: "ws://127.0.0.1:8081/ws".into(),
            devices: 500,
            fleet_key: crate::DEMO_FLEET_KEY.into(),
            report_ms: 1000,
            faults: 0.0,
            fault_secs: 5,
            silences: 0.0,
            silent_secs: 10,
            calls: 0.0,
            payments: 0.0,
            boards: 0,
            operator: "olivia".into(),
            password: "aivilo".into(),
            commands: 0.0,
            duration: None,
            connect_concurrency: 200,
            server_pid: None,
            warmup: 5,
        }
    }
}

/// Why the simulator could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A flag is out of range.
    #[error("{0}")]
    Invalid(String),
    /// A board could not connect.
    #[error("board {board} could not connect to {url}: {source}")]
    Board {
        /// Which board.
        board: usize,
        /// Where.
        url: String,
        /// Why.
        source: ClientError,
    },
}

/// Latencies of one kind, in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

/// The server's CPU and memory over the measured part of the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerUsage {
    /// CPU time over wall time, in percent of one core.
    pub cpu_percent: f64,
    /// Resident memory at the end, KiB.
    pub rss_kib: u64,
    /// Peak resident memory, KiB.
    pub peak_rss_kib: u64,
}

/// What a run measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SimReport {
    /// Devices run.
    pub devices: usize,
    /// Devices connected at the end.
    pub connected: usize,
    /// Boards run.
    pub boards: usize,
    /// Measured seconds (after the warm-up).
    pub seconds: f64,
    /// Status reports sent while measuring.
    pub reports: u64,
    /// Reports per second while measuring.
    pub reports_per_sec: f64,
    /// Faults injected (whole run).
    pub faults: u64,
    /// Silences injected (whole run).
    pub silences: u64,
    /// Commands received and acknowledged by devices (whole run).
    pub commands_acked: u64,
    /// Calls made and payments taken (whole run).
    pub calls: u64,
    /// Payments taken (whole run).
    pub payments: u64,
    /// Messages received by all boards while measuring.
    pub board_messages: u64,
    /// From a device's fault reading to the fault alert on a board (one sample per alert
    /// per board).
    pub fault_alert: Latency,
    /// From a device going silent to the offline alert on a board (one sample per alert
    /// per board); mostly the heart-beat deadline.
    pub offline_alert: Latency,
    /// From a board's command to the device's answer on that board.
    pub command_round_trip: Latency,
    /// Commands the server gave up on.
    pub commands_timed_out: u64,
    /// Connection failures and lost sessions, other than injected silences.
    pub errors: u64,
    /// The server process, when `--server-pid` was given.
    pub server: Option<ServerUsage>,
}

/// Counters and samples shared by every task of a run.
struct Shared {
    measuring: AtomicBool,
    stop: AtomicBool,
    reports: AtomicU64,
    faults: AtomicU64,
    silences: AtomicU64,
    acked: AtomicU64,
    calls: AtomicU64,
    payments: AtomicU64,
    board_messages: AtomicU64,
    timed_out: AtomicU64,
    errors: AtomicU64,
    connected: AtomicUsize,
    /// Devices that have connected at least once.
    came_up: AtomicUsize,
    /// Devices connected now, by fleet position (for picking command targets).
    online: Vec<AtomicBool>,
    /// When each silent device stopped (ms since the epoch).
    silent_since: Mutex<HashMap<String, u64>>,
    /// Commands in flight from the first board: device → when sent.
    commands: Mutex<HashMap<String, Instant>>,
    fault_alert: Mutex<Histogram<u64>>,
    offline_alert: Mutex<Histogram<u64>>,
    round_trip: Mutex<Histogram<u64>>,
}

fn histogram() -> Mutex<Histogram<u64>> {
    // Microseconds, up to an hour, 3 significant digits.
    Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"))
}

fn record(h: &Mutex<Histogram<u64>>, ms: f64) {
    let micros = (ms * 1000.0).clamp(1.0, 3_600_000_000.0) as u64;
    let _ = h.lock().record(micros);
}

fn latency(h: &Mutex<Histogram<u64>>) -> Latency {
    let h = h.lock();
    let ms = |v: u64| v as f64 / 1000.0;
    Latency {
        count: h.len(),
        p50_ms: ms(h.value_at_quantile(0.5)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        max_ms: ms(h.max()),
    }
}

impl SimConfig {
    fn check(&self) -> Result<(), SimError> {
        for (name, p) in [
            ("--faults", self.faults),
            ("--silences", self.silences),
            ("--calls", self.calls),
            ("--payments", self.payments),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(SimError::Invalid(format!(
                    "{name} is a chance per report, from 0 to 1, not {p}"
                )));
            }
        }
        if self.report_ms == 0 {
            return Err(SimError::Invalid("--report-ms must be at least 1".into()));
        }
        if self.commands < 0.0 || !self.commands.is_finite() {
            return Err(SimError::Invalid("--commands must be 0 or more".into()));
        }
        if self.commands > 0.0 && self.boards == 0 {
            return Err(SimError::Invalid(
                "--commands needs --boards 1 or more".into(),
            ));
        }
        Ok(())
    }
}

/// Runs the simulation until `--duration` passes or `stop` resolves; prints a progress
/// line on stderr every second.
pub async fn run(
    config: SimConfig,
    stop: impl std::future::Future<Output = ()>,
) -> Result<SimReport, SimError> {
    config.check()?;
    let fleet = Fleet::new(config.devices);
    let key = FleetKey::new(&config.fleet_key);
    let shared = Arc::new(Shared {
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        reports: AtomicU64::new(0),
        faults: AtomicU64::new(0),
        silences: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        calls: AtomicU64::new(0),
        payments: AtomicU64::new(0),
        board_messages: AtomicU64::new(0),
        timed_out: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        connected: AtomicUsize::new(0),
        came_up: AtomicUsize::new(0),
        online: fleet
            .devices()
            .iter()
            .map(|_| AtomicBool::new(false))
            .collect(),
        silent_since: Mutex::new(HashMap::new()),
        commands: Mutex::new(HashMap::new()),
        fault_alert: histogram(),
        offline_alert: histogram(),
        round_trip: histogram(),
    });

    let mut boards = Vec::new();
    for b in 0..config.boards {
        let opts = ConnectOptions::new()
            .login(config.operator.as_str())
            .passcode(config.password.as_str())
            .heartbeat(10_000, 10_000);
        let client = Client::connect_ws(&config.ws, opts)
            .await
            .map_err(|source| SimError::Board {
                board: b,
                url: config.ws.clone(),
                source,
            })?;
        boards.push(tokio::spawn(board(
            b,
            Arc::new(client),
            config.clone(),
            fleet.clone(),
            shared.clone(),
        )));
    }

    let gate = Arc::new(Semaphore::new(config.connect_concurrency.max(1)));
    let devices: Vec<_> = fleet
        .devices()
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let password = key.passcode(&d.id);
            tokio::spawn(device(
                i,
                d.clone(),
                password,
                config.clone(),
                shared.clone(),
                gate.clone(),
            ))
        })
        .collect();

    // Warm up: everyone connected once (or the deadline), then the warm-up period.
    let started = Instant::now();
    let connect_deadline = Duration::from_secs(60);
    while shared.came_up.load(Ordering::Relaxed) < config.devices
        && started.elapsed() < connect_deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{} of {} devices connected in {:.1} s; warming up {} s",
        shared.came_up.load(Ordering::Relaxed),
        config.devices,
        started.elapsed().as_secs_f64(),
        config.warmup
    );
    tokio::time::sleep(Duration::from_secs(config.warmup)).await;

    let cpu_start = config.server_pid.and_then(cpu_seconds);
    let measure_start = Instant::now();
    shared.measuring.store(true, Ordering::Relaxed);
    let reports_at_start = shared.reports.load(Ordering::Relaxed);

    let deadline = config.duration.map(Duration::from_secs);
    let mut peak_rss = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        if let Some(pid) = config.server_pid {
            peak_rss = peak_rss.max(rss_kib(pid).unwrap_or(0));
        }
        eprintln!(
            "{:>4.0}s connected {:>5} reports {:>8} faults {:>4} silences {:>4} acked {:>5} board msgs {:>8} fault alert p99 {:.1} ms",
            measure_start.elapsed().as_secs_f64(),
            shared.connected.load(Ordering::Relaxed),
            shared.reports.load(Ordering::Relaxed) - reports_at_start,
            shared.faults.load(Ordering::Relaxed),
            shared.silences.load(Ordering::Relaxed),
            shared.acked.load(Ordering::Relaxed),
            shared.board_messages.load(Ordering::Relaxed),
            latency(&shared.fault_alert).p99_ms,
        );
        if deadline.is_some_and(|d| measure_start.elapsed() >= d) {
            break;
        }
    }
    let seconds = measure_start.elapsed().as_secs_f64();
    let reports = shared.reports.load(Ordering::Relaxed) - reports_at_start;
    let server = config.server_pid.map(|pid| {
        let cpu = match (cpu_start, cpu_seconds(pid)) {
            (Some(a), Some(b)) => (b - a) / seconds * 100.0,
            _ => f64::NAN,
        };
        let rss = rss_kib(pid).unwrap_or(0);
        ServerUsage {
            cpu_percent: cpu,
            rss_kib: rss,
            peak_rss_kib: peak_rss.max(rss).max(hwm_kib(pid).unwrap_or(0)),
        }
    });
    shared.measuring.store(false, Ordering::Relaxed);
    shared.stop.store(true, Ordering::Relaxed);
    for task in devices.iter().chain(&boards) {
        task.abort();
    }
    Ok(SimReport {
        devices: config.devices,
        connected: shared.connected.load(Ordering::Relaxed),
        boards: config.boards,
        seconds,
        reports,
        reports_per_sec: reports as f64 / seconds,
        faults: shared.faults.load(Ordering::Relaxed),
        silences: shared.silences.load(Ordering::Relaxed),
        commands_acked: shared.acked.load(Ordering::Relaxed),
        calls: shared.calls.load(Ordering::Relaxed),
        payments: shared.payments.load(Ordering::Relaxed),
        board_messages: shared.board_messages.load(Ordering::Relaxed),
        fault_alert: latency(&shared.fault_alert),
        offline_alert: latency(&shared.offline_alert),
        command_round_trip: latency(&shared.round_trip),
        commands_timed_out: shared.timed_out.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed),
        server,
    })
}

fn json_headers() -> Headers {
    let mut h = Headers::new();
    h.push("content-type", "application/json");
    h
}

async fn send_json<T: Serialize>(client: &Client, destination: &str, value: &T) -> bool {
    let body = serde_json::to_vec(value).expect("plain structs serialize");
    client
        .send_with(destination, body, json_headers())
        .await
        .is_ok()
}

/// One device, for ever: connect, report, answer commands; fault and hang by chance.
async fn device(
    index: usize,
    device: Device,
    passcode: String,
    config: SimConfig,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
) {
    let every = Duration::from_millis(config.report_ms);
    let mut backoff = Duration::from_millis(500);
    let mut first = true;
    while !shared.stop.load(Ordering::Relaxed) {
        let opts = ConnectOptions::new()
            .login(device.id.as_str())
            .passcode(passcode.as_str())
            .heartbeat(config.report_ms, 0)
            .send_heartbeats(false);
        let client = {
            let _permit = gate.acquire().await.expect("the semaphore is never closed");
            Client::connect_tcp(config.tcp, opts).await
        };
        let client = match client {
            Ok(c) => c,
            Err(_) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff + Duration::from_millis(fastrand::u64(0..500))).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        backoff = Duration::from_millis(500);
        if std::mem::take(&mut first) {
            shared.came_up.fetch_add(1, Ordering::Relaxed);
        }
        match session(index, &device, &client, &config, &shared, every).await {
            Ended::Silent => {
                // Keep the socket open and say nothing, until the server gives up on us.
                let _ = tokio::time::timeout(every * 10 + Duration::from_secs(30), client.closed())
                    .await;
                shared.online[index].store(false, Ordering::Relaxed);
                shared.connected.fetch_sub(1, Ordering::Relaxed);
                drop(client);
                tokio::time::sleep(Duration::from_secs(config.silent_secs)).await;
                // Every board has had the alert by now (or never will).
                shared.silent_since.lock().remove(&device.id);
            }
            Ended::Lost => {
                shared.online[index].store(false, Ordering::Relaxed);
                shared.connected.fetch_sub(1, Ordering::Relaxed);
                shared.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff).await;
            }
            Ended::Failed => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

enum Ended {
    /// The device hung on purpose.
    Silent,
    /// The connection ended under it.
    Lost,
    /// It could not subscribe.
    Failed,
}

async fn session(
    index: usize,
    device: &Device,
    client: &Client,
    config: &SimConfig,
    shared: &Shared,
    every: Duration,
) -> Ended {
    let Ok(mut commands) = client
        .subscribe("/user/queue/commands", AckMode::Auto)
        .await
    else {
        return Ended::Failed;
    };
    // Answers the device does not read are dropped by the server when nobody subscribes.
    let _answers: Option<Subscription> = match device.kind {
        Kind::Kiosk => client
            .subscribe("/user/queue/calls", AckMode::Auto)
            .await
            .ok(),
        Kind::Station => client
            .subscribe("/user/queue/payments", AckMode::Auto)
            .await
            .ok(),
        Kind::Gate => None,
    };
    shared.online[index].store(true, Ordering::Relaxed);
    shared.connected.fetch_add(1, Ordering::Relaxed);
    let status = format!("/app/device.{}.status", device.id);
    let ack = format!("/app/device.{}.ack", device.id);
    let mut fault_until: Option<Instant> = None;
    // Spread the reports over the interval, as real devices started at random times.
    let phase = Duration::from_millis(fastrand::u64(0..config.report_ms));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first report goes out at once: the board learns the device is up.
    let mut first = true;
    loop {
        if !first {
            tokio::select! {
                _ = tick.tick() => {}
                m = commands.next() => {
                    let Some(m) = m else { return Ended::Lost };
                    if let Ok(command) = serde_json::from_slice::<Command>(m.body()) {
                        let detail = done_text(command.action).into();
                        let answer = CommandAck { command: command.id, ok: true, detail };
                        if send_json(client, &ack, &answer).await {
                            shared.acked.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    continue;
                }
            }
        }
        first = false;
        if shared.stop.load(Ordering::Relaxed) {
            return Ended::Failed;
        }
        if config.silences > 0.0 && fastrand::f64() < config.silences {
            shared.silences.fetch_add(1, Ordering::Relaxed);
            shared
                .silent_since
                .lock()
                .insert(device.id.clone(), now_ms());
            return Ended::Silent;
        }
        let now = Instant::now();
        if fault_until.is_some_and(|t| now >= t) {
            fault_until = None;
        }
        let mut sent_fault = false;
        if fault_until.is_none() && config.faults > 0.0 && fastrand::f64() < config.faults {
            fault_until = Some(now + Duration::from_secs(config.fault_secs));
            shared.faults.fetch_add(1, Ordering::Relaxed);
            sent_fault = true;
        }
        let report = StatusReport {
            state: if fault_until.is_some() {
                Health::Fault
            } else {
                Health::Ok
            },
            detail: if sent_fault || fault_until.is_some() {
                fault_text(device.kind).into()
            } else {
                String::new()
            },
            sent_at: Some(now_ms()),
        };
        if !send_json(client, &status, &report).await {
            return Ended::Lost;
        }
        shared.reports.fetch_add(1, Ordering::Relaxed);
        match device.kind {
            Kind::Kiosk if config.calls > 0.0 && fastrand::f64() < config.calls => {
                let call = CallRequest {
                    reason: "driver needs help".into(),
                };
                if send_json(client, &format!("/app/kiosk.{}.call", device.id), &call).await {
                    shared.calls.fetch_add(1, Ordering::Relaxed);
                }
            }
            Kind::Station if config.payments > 0.0 && fastrand::f64() < config.payments => {
                // One payment in fifty is declined.
                let card = if fastrand::u8(0..50) == 0 {
                    test_cards::DECLINED
                } else {
                    "4242424242424242"
                };
                let pay = PaymentRequest {
                    ticket: format!("T{}", fastrand::u32(100_000..999_999)),
                    amount: 1000 * fastrand::u64(1..40),
                    card: card.into(),
                };
                if send_json(client, &format!("/app/station.{}.payment", device.id), &pay).await {
                    shared.payments.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
}

fn done_text(action: Action) -> &'static str {
    match action {
        Action::Open => "barrier up",
        Action::Close => "barrier down",
        Action::Restart => "restarted",
    }
}

fn fault_text(kind: Kind) -> &'static str {
    match kind {
        Kind::Gate => "barrier jammed",
        Kind::Kiosk => "touch screen not responding",
        Kind::Station => "card reader error",
    }
}

/// One operator board: the page's subscriptions, latencies measured as messages arrive.
async fn board(
    number: usize,
    client: Arc<Client>,
    config: SimConfig,
    fleet: Fleet,
    shared: Arc<Shared>,
) {
    let subscribe = |d: &'static str| {
        let client = client.clone();
        async move { client.subscribe(d, AckMode::Auto).await }
    };
    let (Ok(mut alerts), Ok(mut devices), Ok(mut commands), Ok(mut summary)) = (
        subscribe("/topic/alerts").await,
        subscribe("/topic/board.devices").await,
        subscribe("/topic/board.commands").await,
        subscribe("/topic/board.summary").await,
    ) else {
        shared.errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if let Ok(mut overview) = subscribe("/app/board.overview").await {
        let _ = overview.next().await;
    }
    if number == 0 && config.commands > 0.0 {
        tokio::spawn(commander(
            client.clone(),
            config.clone(),
            fleet,
            shared.clone(),
        ));
    }
    let count = |shared: &Shared| {
        if shared.measuring.load(Ordering::Relaxed) {
            shared.board_messages.fetch_add(1, Ordering::Relaxed);
        }
    };
    loop {
        tokio::select! {
            m = alerts.next() => {
                let Some(m) = m else { break };
                count(&shared);
                let Ok(alert) = serde_json::from_slice::<Alert>(m.body()) else { continue };
                if alert.cleared || !shared.measuring.load(Ordering::Relaxed) {
                    continue;
                }
                let now = now_ms();
                match alert.kind {
                    AlertKind::Fault => {
                        record(&shared.fault_alert, now.saturating_sub(alert.reported_at) as f64);
                    }
                    AlertKind::Offline => {
                        let since = shared.silent_since.lock().get(&alert.device).copied();
                        if let Some(since) = since {
                            record(&shared.offline_alert, now.saturating_sub(since) as f64);
                        }
                    }
                    _ => {}
                }
            }
            m = commands.next() => {
                let Some(m) = m else { break };
                count(&shared);
                if number != 0 {
                    continue;
                }
                let Ok(event) = serde_json::from_slice::<CommandEvent>(m.body()) else { continue };
                if event.command.issued_by != config.operator {
                    continue;
                }
                match event.status {
                    CommandStatus::Done | CommandStatus::Failed => {
                        let sent = shared.commands.lock().remove(&event.command.device);
                        if let Some(sent) = sent.filter(|_| shared.measuring.load(Ordering::Relaxed)) {
                            record(&shared.round_trip, sent.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                    CommandStatus::TimedOut => {
                        shared.commands.lock().remove(&event.command.device);
                        shared.timed_out.fetch_add(1, Ordering::Relaxed);
                    }
                    CommandStatus::Sent => {}
                }
            }
            m = devices.next() => {
                if m.is_none() { break }
                count(&shared);
            }
            m = summary.next() => {
                if m.is_none() { break }
                count(&shared);
            }
        }
    }
    shared.errors.fetch_add(1, Ordering::Relaxed);
}

/// Opens random connected gates at `--commands` per second, one command per gate at a time.
async fn commander(client: Arc<Client>, config: SimConfig, fleet: Fleet, shared: Arc<Shared>) {
    let gates: Vec<usize> = fleet
        .devices()
        .iter()
        .enumerate()
        .filter(|(_, d)| d.kind == Kind::Gate)
        .map(|(i, _)| i)
        .collect();
    if gates.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / config.commands));
    loop {
        tick.tick().await;
        let i = gates[fastrand::usize(..gates.len())];
        if !shared.online[i].load(Ordering::Relaxed) {
            continue;
        }
        let id = &fleet.devices()[i].id;
        {
            let mut inflight = shared.commands.lock();
            if inflight.contains_key(id) {
                continue;
            }
            inflight.insert(id.clone(), Instant::now());
        }
        if client
            .send(&format!("/app/gate.{id}.open"), "")
            .await
            .is_err()
        {
            return;
        }
    }
}

/// CPU seconds (user and system) process `pid` has used.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_sec > 0).then(|| ticks as f64 / per_sec as f64)
}

fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resident memory of `pid`, KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS:")
}

/// Peak resident memory of `pid`, KiB.
fn hwm_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmHWM:")
}
