//! `payment-audit`: payments over STOMP (WebSocket at /ws and raw TCP) with logging, audit
//! and failure-tracking interceptors. `cargo run -p payment-audit`, or with `--demo` to
//! watch a few payments go through every interceptor path.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use actix_web::{App, HttpServer};
use clap::Parser;
use payment_audit::gateway::Mode;
use payment_audit::{Config, Services};
use stomp_runtime::broker::AckMode;
use stomp_runtime::client::{Client, ConnectOptions};
use stomp_runtime::frame::Headers;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

/// Payments over STOMP with a logging advice, a payment-audit advice (records in SQLite) and
/// a failure tracker.
#[derive(Debug, Parser)]
#[command(version)]
struct Flags {
    /// Address of the HTTP API and the WebSocket endpoint (/ws).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8090")]
    http: SocketAddr,

    /// Address of the raw STOMP-over-TCP listener.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:61625")]
    tcp: SocketAddr,

    /// The audit database, created on first run; `:memory:` keeps nothing.
    #[arg(long, value_name = "FILE", default_value = "payment-audit.db")]
    db: PathBuf,

    /// How the mock gateway starts.
    #[arg(long, value_enum, default_value = "normal")]
    gateway: Mode,

    /// Send a few payments (charged, declined, gateway down, panicking) through the server,
    /// print the audit trail, and exit.
    #[arg(long)]
    demo: bool,

    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    match flags.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    match actix_rt::System::new().block_on(run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(flags: Flags) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config {
        db: flags.db.clone(),
        gateway: flags.gateway,
    };
    let (stomp, services) = payment_audit::server(&config)?;
    let tcp = tokio::net::TcpListener::bind(flags.tcp)
        .await
        .map_err(|e| format!("cannot listen on tcp {}: {e}", flags.tcp))?;
    let tcp_addr = tcp.local_addr()?;
    info!("raw STOMP over TCP on {tcp_addr}");
    let tcp_stomp = stomp.clone();
    actix_rt::spawn(async move {
        if let Err(e) = tcp_stomp.serve_tcp(tcp).await {
            error!(error = %e, "tcp listener failed");
        }
    });
    let app = payment_audit::app(&stomp, &services);
    let http = HttpServer::new(move || App::new().configure(app.clone()))
        .workers(1)
        .shutdown_timeout(1)
        .bind(flags.http)
        .map_err(|e| format!("cannot listen on http {}: {e}", flags.http))?
        .run();
    info!(
        "payments on ws://{}{} and tcp {tcp_addr}; audit trail at http://{}/api/audit, database {}",
        flags.http,
        payment_audit::WS_PATH,
        flags.http,
        flags.db.display()
    );
    if flags.demo {
        let handle = http.handle();
        actix_rt::spawn(http);
        let outcome = demo(tcp_addr, &services).await;
        handle.stop(true).await;
        return outcome;
    }
    http.await?;
    Ok(())
}

/// Pays with each test card, then prints what the interceptors recorded.
async fn demo(tcp: SocketAddr, services: &Services) -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::connect_tcp(tcp, ConnectOptions::new().login("demo-shop")).await?;
    let mut receipts = client
        .subscribe("/user/queue/payments", AckMode::Auto)
        .await?;
    let mut errors = client
        .subscribe("/user/queue/errors", AckMode::Auto)
        .await?;
    let mut json = Headers::new();
    json.push("content-type", "application/json");
    for (order, card) in [
        ("o-1", "4242424242424242"),
        ("o-2", "4000000000000002"),
        ("o-3", "4000000000000119"),
        ("o-4", "4000000000009999"),
    ] {
        let body = serde_json::json!({
            "order_id": order, "amount_cents": 1250, "currency": "EUR", "card": card,
        });
        client
            .send_receipted("/app/payment.pay", body.to_string(), json.clone())
            .await?;
        let answer = tokio::select! {
            m = receipts.next() => m.map(|m| format!("receipt {}", String::from_utf8_lossy(m.body()))),
            m = errors.next() => m.map(|m| format!("error   {}", String::from_utf8_lossy(m.body()))),
            _ = tokio::time::sleep(Duration::from_secs(5)) => None,
        };
        println!(
            "{order} card {card}: {}",
            answer.unwrap_or_else(|| "no answer".into())
        );
    }
    client.disconnect().await?;
    println!("\naudit trail (latest 4):");
    for r in services.audit.recent(4).await? {
        println!(
            "  {} {} {} {:?} {} {}us {}",
            r.correlation,
            r.user,
            r.destination,
            r.amount_cents,
            r.outcome,
            r.duration_us,
            r.error.unwrap_or_default()
        );
    }
    println!("\nfailures: {:?}", services.failures.snapshot());
    Ok(())
}
