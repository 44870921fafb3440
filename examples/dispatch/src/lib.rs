//! The dispatch example: real-time monitoring and control of an airport's parking
//! equipment over STOMP.
//!
//! - Equipment (gates, kiosks, payment stations) connects over raw STOMP on TCP with its
//!   fleet credentials ([`fleet`], [`auth`]) and reports its status
//!   ([`controllers::status`]); its reports and heart-beats keep its session alive.
//! - Operators watch a live board in the browser (STOMP over WebSocket at [`WS_PATH`]): the
//!   fleet per area, devices whose state changes, alerts, commands and their round trip.
//! - A fault report, or a device gone silent (its session ends when its heart-beats stop,
//!   and the disconnect event raises the alert: [`presence`]), raises an alert on
//!   `/topic/alerts`.
//! - An operator's command (open a gate, restart a kiosk) reaches that device alone, on its
//!   principal's `/user/queue/commands`; the device's answer shows on every board with the
//!   round trip.
//! - A kiosk's call button reaches the guides on duty for the kiosk's area alone.
//! - Payments at a payment station pass a payment-audit advice ([`interceptors`]).
//! - A channel interceptor ([`guard`]) keeps each device to its own destinations.
//!
//! `cargo run -p dispatch` serves it; `cargo run -p dispatch -- simulate --devices 500`
//! runs simulated devices against it ([`simulate`]).
//!
//! ```no_run
//! use actix_web::{App, HttpServer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let (stomp, services) = dispatch::server(&dispatch::Config::default())?;
//! let tcp = tokio::net::TcpListener::bind("127.0.0.1:61626").await?;
//! tokio::spawn({
//!     let stomp = stomp.clone();
//!     async move { stomp.serve_tcp(tcp).await }
//! });
//! tokio::spawn(dispatch::housekeeping(stomp.clone(), services.clone()));
//! let app = dispatch::app(&stomp);
//! HttpServer::new(move || App::new().configure(app.clone()))
//!     .bind(("127.0.0.1", 8081))?
//!     .run()
//!     .await?;
//! # Ok(()) }
//! ```

pub mod audit;
pub mod auth;
pub mod controllers;
pub mod fleet;
pub mod guard;
pub mod interceptors;
pub mod model;
mod page;
pub mod presence;
pub mod simulate;
pub mod state;

use std::time::Duration;

use actix_web::web;
use stomp_runtime::config::Limits;
use stomp_runtime::{BuildError, StompServer};
use tracing::warn;

use audit::PaymentAudit;
use auth::{DispatchAuth, StaffMember};
use fleet::{Fleet, FleetKey};
use state::Dispatch;

/// Where the board connects for STOMP over WebSocket.
pub const WS_PATH: &str = "/ws";

/// The fleet key used when none is given: fine for a demo on one machine, never for real
/// equipment.
pub const DEMO_FLEET_KEY: &str = "demo-fleet-key";

/// How often the board's summary is published and overdue commands are given up.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);

/// New connections one address may open per second: a fleet of 5,000 behind one gateway
/// is back within a few seconds of a restart.
pub const FLEET_CONNECTS_PER_SECOND: usize = 2_000;

/// What the server runs with.
#[derive(Clone, Debug)]
pub struct Config {
    /// How many devices the fleet has (see [`Fleet::new`]).
    pub fleet_size: usize,
    /// The key device passcodes derive from.
    pub fleet_key: FleetKey,
    /// The people allowed in.
    pub staff: Vec<StaffMember>,
    /// How often the server wants to hear from each client, in milliseconds: a device
    /// silent for 1.5 times this (its negotiated heart-beat) is dropped and alerted on.
    pub heartbeat_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            fleet_size: 5_000,
            fleet_key: FleetKey::new(DEMO_FLEET_KEY),
            staff: auth::demo_staff(),
            heartbeat_ms: 2_000,
        }
    }
}

/// The running example's parts, shared by STOMP, HTTP and the housekeeping task.
#[derive(Clone, Debug)]
pub struct Services {
    /// The live picture of the fleet.
    pub dispatch: Dispatch,
    /// The payment audit trail.
    pub audit: PaymentAudit,
}

/// The STOMP server: the handlers and advice of this crate (found at link time), the
/// authenticator, the guard, and the session listener.
pub fn server(config: &Config) -> Result<(StompServer, Services), BuildError> {
    let fleet = Fleet::new(config.fleet_size);
    let services = Services {
        dispatch: Dispatch::new(fleet.clone()),
        audit: PaymentAudit::default(),
    };
    let listener = services.dispatch.clone();
    let defaults = Limits::default();
    let limits = Limits {
        // Equipment often reaches the server through the equipment network's one NAT
        // gateway: one address may carry the whole fleet, and all of it reconnects at once
        // after a restart.
        max_connections_per_address: defaults
            .max_connections_per_address
            .max(config.fleet_size + 100),
        max_connects_per_second: defaults
            .max_connects_per_second
            .max(FLEET_CONNECTS_PER_SECOND),
        ..defaults
    };
    let stomp = StompServer::builder()
        .limits(limits)
        .app_prefix("/app")
        .user_prefix("/user")
        .simple_broker(["/topic", "/queue"])
        // The server beats every 10 s; it wants to hear from clients every `heartbeat_ms`.
        .heartbeat(10_000, config.heartbeat_ms)
        .authenticator(DispatchAuth::new(
            fleet,
            config.fleet_key.clone(),
            config.staff.clone(),
        ))
        .channel_interceptor(guard::Guard)
        .state(services.dispatch.clone())
        .state(services.audit.clone())
        // A closure rather than `#[session_event]`: it carries this server's state, so
        // several servers (tests) can run in one process.
        .on_session_event(move |event, template| {
            presence::on_event(listener.clone(), event, template)
        })
        .build()?;
    Ok((stomp, services))
}

/// Publishes the summary every [`HOUSEKEEPING_EVERY`] and gives up on overdue commands;
/// runs until the task is dropped.
pub async fn housekeeping(stomp: StompServer, services: Services) {
    let template = stomp.template();
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for event in services.dispatch.expire_commands() {
            if let Err(e) = template
                .convert_and_send(controllers::BOARD_COMMANDS, &event)
                .await
            {
                warn!(error = %e, "timeout not published");
            }
        }
        let summary = services.dispatch.summary(services.audit.counts());
        if let Err(e) = template
            .convert_and_send(controllers::BOARD_SUMMARY, &summary)
            .await
        {
            warn!(error = %e, "summary not published");
        }
    }
}

/// The web side for `App::configure`: the board at `/` with its scripts, and STOMP over
/// WebSocket at [`WS_PATH`]. Everything past the page itself needs a login, so the audit
/// trail is served over STOMP (`/app/board.payments`), not plain HTTP.
pub fn app(stomp: &StompServer) -> impl Fn(&mut web::ServiceConfig) + Clone + 'static {
    let ws = stomp.websocket(WS_PATH);
    move |cfg: &mut web::ServiceConfig| {
        page::routes(cfg);
        ws(cfg);
    }
}
