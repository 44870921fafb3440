//! `sockjs-echo`: the SockJS protocol's conventional test endpoints (`/echo`, `/close`,
//! `/disabled_websocket_echo`, `/cookie_needed_echo`) on one address.
//!
//! ```text
//! cargo run -p sockjs-echo -- --bind 127.0.0.1:8081
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use actix_web::{App, HttpServer};
use clap::Parser;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

/// Serves /echo, /close, /disabled_websocket_echo and /cookie_needed_echo over SockJS.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Flags {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8081")]
    bind: SocketAddr,

    /// Bytes after which a streaming response ends (the protocol's test suite expects 4096).
    #[arg(long, value_name = "BYTES", default_value_t = sockjs_echo::Options::default().response_limit)]
    response_limit: usize,

    /// Silence after which a heart-beat frame goes out, in ms.
    #[arg(long, value_name = "MS", default_value_t = 25_000)]
    heartbeat_ms: u64,

    /// How long a session without a receiving request lives, in ms.
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    disconnect_delay_ms: u64,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let flags = Flags::parse();
    let options = sockjs_echo::Options {
        response_limit: flags.response_limit,
        heartbeat: Duration::from_millis(flags.heartbeat_ms),
        disconnect_delay: Duration::from_millis(flags.disconnect_delay_ms),
    };
    let app = sockjs_echo::app(&options);
    let served = actix_rt::System::new().block_on(async move {
        let server = HttpServer::new(move || App::new().configure(app.clone()))
            .shutdown_timeout(1)
            // A client cutting a long-poll interrupts its session at once.
            .h1_allow_half_closed(false)
            .bind(flags.bind)?;
        for addr in server.addrs() {
            info!("SockJS test endpoints on http://{addr}/echo, /close, /disabled_websocket_echo, /cookie_needed_echo");
        }
        server.run().await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}
