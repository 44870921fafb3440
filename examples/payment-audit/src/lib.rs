//! The interceptor example: a payment controller over a mock gateway, with
//!
//! - a logging advice on every handler ([`interceptors::log_calls`]),
//! - a payment-audit advice writing one record per payment call to SQLite
//!   ([`interceptors::audit_payment`], [`audit::AuditSink`]),
//! - a failure tracker on `#[after_error]` ([`interceptors::track_failure`]),
//! - an exception handler answering declined cards ([`interceptors::declined`]).
//!
//! `cargo run -p payment-audit` serves it; `GET /api/audit` and `GET /api/failures` show
//! what the interceptors recorded.

pub mod audit;
pub mod controllers;
pub mod failures;
pub mod gateway;
pub mod interceptors;

use std::path::PathBuf;

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use stomp_runtime::security::TrustLogin;
use stomp_runtime::{BuildError, StompServer};

use audit::AuditSink;
use controllers::Payments;
use failures::FailureTracker;
use gateway::Mode;

/// Where the WebSocket endpoint is mounted.
pub const WS_PATH: &str = "/ws";

/// What the example runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The audit database (`:memory:` for none on disk).
    pub db: PathBuf,
    /// How the mock gateway starts.
    pub gateway: Mode,
}

/// The running example's parts, shared by STOMP and HTTP.
#[derive(Clone, Debug)]
pub struct Services {
    /// The audit trail.
    pub audit: AuditSink,
    /// Failure counts.
    pub failures: FailureTracker,
    /// Payments and the gateway.
    pub payments: Payments,
}

/// Why the example could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The audit database could not be opened.
    #[error("cannot open the audit database {path}: {source}")]
    Database {
        /// Its path.
        path: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// The handlers are inconsistent.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// Builds the STOMP server: the handlers and interceptors of this crate, found at link time;
/// logins taken as names (a demo: see the README's security section for JWT).
pub fn server(config: &Config) -> Result<(StompServer, Services), StartError> {
    let audit = AuditSink::open(&config.db).map_err(|source| StartError::Database {
        path: config.db.display().to_string(),
        source,
    })?;
    let services = Services {
        audit,
        failures: FailureTracker::default(),
        payments: Payments::new(config.gateway),
    };
    let stomp = StompServer::builder()
        .app_prefix("/app")
        .user_prefix("/user")
        .simple_broker(["/topic", "/queue"])
        .authenticator(TrustLogin)
        .state(services.audit.clone())
        .state(services.failures.clone())
        .state(services.payments.clone())
        .build()?;
    Ok((stomp, services))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<u32>,
}

/// The HTTP side for `App::configure`: STOMP over WebSocket at [`WS_PATH`], the audit trail
/// at `GET /api/audit?limit=N`, failure counts at `GET /api/failures`, and the gateway's
/// mode at `PUT /api/gateway/mode` (`normal`, `fail` or `panic` as the body).
pub fn app(
    stomp: &StompServer,
    services: &Services,
) -> impl Fn(&mut web::ServiceConfig) + Clone + 'static {
    let ws = stomp.websocket(WS_PATH);
    let services = services.clone();
    move |cfg: &mut web::ServiceConfig| {
        ws(cfg);
        let s = services.clone();
        cfg.route(
            "/api/audit",
            web::get().to(move |q: web::Query<Limit>| {
                let audit = s.audit.clone();
                async move {
                    match audit.recent(q.limit.unwrap_or(50).min(1000)).await {
                        Ok(rows) => HttpResponse::Ok().json(rows),
                        Err(e) => HttpResponse::InternalServerError().body(e),
                    }
                }
            }),
        );
        let s = services.clone();
        cfg.route(
            "/api/failures",
            web::get().to(move || {
                let snapshot = s.failures.snapshot();
                async move { HttpResponse::Ok().json(snapshot) }
            }),
        );
        let s = services.clone();
        cfg.route(
            "/api/gateway/mode",
            web::put().to(move |body: String| {
                let s = s.clone();
                async move {
                    let mode = match body.trim() {
                        "normal" => Mode::Normal,
                        "fail" => Mode::Fail,
                        "panic" => Mode::Panic,
                        other => {
                            return HttpResponse::BadRequest()
                                .body(format!("unknown mode `{other}`: normal, fail or panic"));
                        }
                    };
                    s.payments.gateway().set_mode(mode);
                    HttpResponse::NoContent().finish()
                }
            }),
        );
    }
}
