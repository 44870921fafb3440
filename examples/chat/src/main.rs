//! `chat`: serves the chat page with STOMP over WebSocket, and raw STOMP over TCP for
//! clients that are not browsers. `cargo run -p chat`, then open the printed address.
//!
//! Logs go through `tracing`; `RUST_LOG` picks the level (default `info`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use actix_web::{App, HttpServer};
use clap::Parser;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

/// Seconds open WebSocket connections get once Ctrl-C arrives; chat sessions never end by
/// themselves, so actix's default 30 would only stall the shutdown.
const SHUTDOWN_GRACE_SECS: u64 = 1;
/// How long sessions get, once Ctrl-C or SIGTERM arrives, to receive what is queued for
/// them and the shutdown ERROR.
const SHUTDOWN_DEADLINE_SECS: u64 = 5;

/// The chat example: a web page at --http, STOMP over WebSocket at /ws on the same address,
/// raw STOMP over TCP at --tcp. Log in with any name.
#[derive(Debug, Parser)]
#[command(version)]
struct Flags {
    /// Address of the web page and the WebSocket endpoint.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    http: SocketAddr,

    /// Address of the raw STOMP-over-TCP listener. Not STOMP's usual 61613, which a local
    /// RabbitMQ or ActiveMQ often holds already.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:61623")]
    tcp: SocketAddr,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let flags = Flags::parse();
    match actix_rt::System::new().block_on(run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(flags: Flags) -> Result<(), Box<dyn std::error::Error>> {
    let stomp = chat::server()?;
    let tcp = tokio::net::TcpListener::bind(flags.tcp)
        .await
        .map_err(|e| format!("cannot listen on tcp {}: {e}", flags.tcp))?;
    info!("raw STOMP over TCP on {}", tcp.local_addr()?);
    let tcp_stomp = stomp.clone();
    actix_rt::spawn(async move {
        if let Err(e) = tcp_stomp.serve_tcp(tcp).await {
            error!(error = %e, "tcp listener failed");
        }
    });

    let app = chat::app(&stomp);
    let health = stomp.health();
    let server =
        HttpServer::new(move || App::new().configure(app.clone()).configure(health.clone()))
            .shutdown_timeout(SHUTDOWN_GRACE_SECS)
            // Ctrl-C and SIGTERM are handled below: sessions hear of the shutdown first.
            .disable_signals()
            // A SockJS client cutting a long-poll interrupts its session at once.
            .h1_allow_half_closed(false)
            .bind(flags.http)
            .map_err(|e| format!("cannot listen on http {}: {e}", flags.http))?;
    for addr in server.addrs() {
        info!("STOMP over WebSocket on ws://{addr}{}", chat::WS_PATH);
        info!("STOMP over SockJS on http://{addr}{}", chat::WS_PATH);
        println!("\n    Chat is up: open http://{addr}/ in a browser (Ctrl-C stops it)\n");
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
