//! `dispatch`: the equipment monitoring and control server with its operators' board, or
//! (`dispatch simulate`) simulated equipment to run against it.
//!
//! Logs go through `tracing`; `RUST_LOG` picks the level (default `info`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use actix_web::{App, HttpServer};
use clap::{Parser, Subcommand};
use dispatch::Config;
use dispatch::fleet::FleetKey;
use dispatch::simulate::SimConfig;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

/// Seconds sessions get, once Ctrl-C or SIGTERM arrives, to receive what is queued for them.
const SHUTDOWN_DEADLINE_SECS: u64 = 5;

/// Parking equipment monitored and controlled over STOMP: devices on raw TCP, the
/// operators' board in the browser.
#[derive(Debug, Parser)]
#[command(version)]
struct Flags {
    #[command(subcommand)]
    command: Option<Cmd>,

    #[command(flatten)]
    serve: ServeFlags,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Runs simulated devices (and optionally operator boards) against a server.
    Simulate(SimConfig),
}

#[derive(Debug, clap::Args)]
struct ServeFlags {
    /// Address of the board and the WebSocket endpoint (/ws).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8081")]
    http: SocketAddr,

    /// Address of the raw STOMP-over-TCP listener for equipment.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:61626")]
    tcp: SocketAddr,

    /// How many devices the fleet has.
    #[arg(long, default_value_t = 5_000)]
    fleet: usize,

    /// The key device passcodes derive from.
    #[arg(long, env = "DISPATCH_FLEET_KEY", default_value = dispatch::DEMO_FLEET_KEY, hide_env_values = true)]
    fleet_key: String,

    /// How often the server wants to hear from each device, in milliseconds; a device
    /// silent for 1.5 times its heart-beat is dropped and alerted on.
    #[arg(long, value_name = "MS", default_value_t = 2_000)]
    heartbeat_ms: u64,
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    let default_level = match flags.command {
        Some(Cmd::Simulate(_)) => "warn",
        None => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| default_level.into()))
        .init();
    let outcome = match flags.command {
        Some(Cmd::Simulate(config)) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(Into::into)
            .and_then(|rt| rt.block_on(simulate(config))),
        None => actix_rt::System::new().block_on(serve(flags.serve)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(flags: ServeFlags) -> Result<(), Box<dyn std::error::Error>> {
    if flags.fleet_key == dispatch::DEMO_FLEET_KEY {
        info!("using the demo fleet key: set DISPATCH_FLEET_KEY for real equipment");
    }
    let config = Config {
        fleet_size: flags.fleet,
        fleet_key: FleetKey::new(&flags.fleet_key),
        heartbeat_ms: flags.heartbeat_ms,
        ..Config::default()
    };
    let (stomp, services) = dispatch::server(&config)?;
    let tcp = tokio::net::TcpListener::bind(flags.tcp)
        .await
        .map_err(|e| format!("cannot listen on tcp {}: {e}", flags.tcp))?;
    info!("equipment: raw STOMP over TCP on {}", tcp.local_addr()?);
    let tcp_stomp = stomp.clone();
    actix_rt::spawn(async move {
        if let Err(e) = tcp_stomp.serve_tcp(tcp).await {
            error!(error = %e, "tcp listener failed");
        }
    });
    actix_rt::spawn(dispatch::housekeeping(stomp.clone(), services));

    let app = dispatch::app(&stomp);
    let health = stomp.health();
    let server =
        HttpServer::new(move || App::new().configure(app.clone()).configure(health.clone()))
            .shutdown_timeout(1)
            // Ctrl-C and SIGTERM are handled below: sessions hear of the shutdown first.
            .disable_signals()
            .bind(flags.http)
            .map_err(|e| format!("cannot listen on http {}: {e}", flags.http))?;
    for addr in server.addrs() {
        info!(
            "board: STOMP over WebSocket on ws://{addr}{}",
            dispatch::WS_PATH
        );
        println!(
            "\n    Dispatch is up: open http://{addr}/ and log in as olivia / aivilo (Ctrl-C stops it)\n    Devices: cargo run -p dispatch -- simulate --devices 500 --faults 0.01\n"
        );
    }
    let server = server.run();
    let http = server.handle();
    let stopping = stomp.clone();
    actix_rt::spawn(async move {
        let report = stopping
            .shutdown_on_signal(Duration::from_secs(SHUTDOWN_DEADLINE_SECS))
            .await;
        info!(
            sessions = report.connections,
            cut = report.forced,
            "sessions closed"
        );
        http.stop(true).await;
    });
    server.await?;
    info!("stopped");
    Ok(())
}

async fn simulate(config: SimConfig) -> Result<(), Box<dyn std::error::Error>> {
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let report = dispatch::simulate::run(config, stop).await?;
    eprintln!(
        "\n{} devices ({} connected at the end), {} boards, {:.0} s measured: {:.0} reports/s\n\
         fault alert    p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  ({} alerts)\n\
         offline alert  p50 {:.0} ms  p99 {:.0} ms  ({} alerts)\n\
         command        p50 {:.1} ms  p99 {:.1} ms  ({} answered, {} timed out)",
        report.devices,
        report.connected,
        report.boards,
        report.seconds,
        report.reports_per_sec,
        report.fault_alert.p50_ms,
        report.fault_alert.p99_ms,
        report.fault_alert.max_ms,
        report.fault_alert.count,
        report.offline_alert.p50_ms,
        report.offline_alert.p99_ms,
        report.offline_alert.count,
        report.command_round_trip.p50_ms,
        report.command_round_trip.p99_ms,
        report.command_round_trip.count,
        report.commands_timed_out,
    );
    if let Some(s) = &report.server {
        eprintln!(
            "server         CPU {:.1} % of one core, RSS {:.1} MiB (peak {:.1} MiB)",
            s.cpu_percent,
            s.rss_kib as f64 / 1024.0,
            s.peak_rss_kib as f64 / 1024.0
        );
    }
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
