//! `broker`: a standalone STOMP server with the in-memory broker, over WebSocket (with the
//! SockJS fallback on the same path) and raw TCP.
//!
//! ```text
//! cargo run --release -p broker -- --ws 127.0.0.1:61614 --tcp 127.0.0.1:61613
//! ```
//!
//! With `--relay`, topics, queues and user destinations go through RabbitMQ's STOMP adapter
//! instead, so two processes share them (RabbitMQ holds 61613, so the nodes listen
//! elsewhere):
//!
//! ```text
//! cargo run --release -p broker -- --relay stomp://127.0.0.1:61613 --tcp 127.0.0.1:61623 --ws 127.0.0.1:61624
//! cargo run --release -p broker -- --relay stomp://127.0.0.1:61613 --tcp 127.0.0.1:61633 --ws 127.0.0.1:61634
//! ```
//!
//! Logs go through `tracing`; `RUST_LOG` picks the level (default `info`). Ctrl-C or
//! SIGTERM stops both transports.

mod flags;
mod tcp;

use std::process::ExitCode;

use actix_web::{App, HttpServer};
use clap::Parser;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

use flags::Flags;
use tcp::TcpTransport;

/// Seconds open WebSocket connections get once shutdown starts; STOMP sessions are
/// long-lived, so waiting for them to end by themselves would stall Ctrl-C.
const WS_SHUTDOWN_GRACE_SECS: u64 = 2;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let flags = Flags::parse();
    match run(&flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(flags: &Flags) -> Result<(), Box<dyn std::error::Error>> {
    let stomp = flags.server()?;
    let workers = flags.workers();
    let tcp = if flags.no_tcp {
        None
    } else {
        let t = TcpTransport::spawn(stomp.clone(), flags.tcp, workers)
            .map_err(|e| format!("cannot listen on tcp {}: {e}", flags.tcp))?;
        info!("raw STOMP over TCP on {}", t.addr());
        Some(t)
    };
    let served = actix_rt::System::new().block_on(async {
        if flags.no_ws {
            shutdown_signal().await;
            info!("shutting down");
            return Ok(());
        }
        // Native WebSocket and SockJS clients on the same path.
        let ws = stomp.sockjs(&flags.ws_path);
        let server = HttpServer::new(move || App::new().configure(ws.clone()))
            .workers(workers)
            .max_connections(flags.max_connections_per_worker)
            // actix stops gracefully when this resolves, then `run()` returns.
            .shutdown_signal(async {
                shutdown_signal().await;
                info!("shutting down");
            })
            .shutdown_timeout(WS_SHUTDOWN_GRACE_SECS)
            // A SockJS client cutting a long-poll interrupts its session at once.
            .h1_allow_half_closed(false)
            .bind(flags.ws)
            .map_err(|e| format!("cannot listen on ws {}: {e}", flags.ws))?;
        for addr in server.addrs() {
            info!("STOMP over WebSocket on ws://{addr}{}", flags.ws_path);
            info!("STOMP over SockJS on http://{addr}{}", flags.ws_path);
        }
        server
            .run()
            .await
            .map_err(|e| format!("websocket server failed: {e}"))
    });
    if let Some(tcp) = tcp {
        tcp.stop();
    }
    served?;
    info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                return;
            }
            Err(e) => error!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the server"),
        }
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        error!(error = %e, "cannot watch Ctrl-C");
        std::future::pending::<()>().await;
    }
}
