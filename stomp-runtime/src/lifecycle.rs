//! Graceful shutdown and health: the live connections, draining, and the readiness a load
//! balancer reads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::{HttpResponse, web};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::server::StompServer;
use crate::session::outbound::Outbound;

/// The connections of one server and whether it is draining.
#[derive(Default)]
pub(crate) struct Lifecycle {
    /// Cancelled when the server starts shutting down.
    pub(crate) draining: CancellationToken,
    connections: Mutex<HashMap<u64, Outbound>>,
    next: AtomicU64,
    emptied: Notify,
}

/// Unregisters a connection when dropped (after its session's cleanup).
pub(crate) struct Registration<'a> {
    lifecycle: &'a Lifecycle,
    key: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut map = self.lifecycle.connections.lock();
        map.remove(&self.key);
        if map.is_empty() {
            self.lifecycle.emptied.notify_waiters();
        }
    }
}

impl Lifecycle {
    /// Counts a new connection until the returned registration is dropped.
    pub(crate) fn register(&self, outbound: Outbound) -> Registration<'_> {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.connections.lock().insert(key, outbound);
        Registration {
            lifecycle: self,
            key,
        }
    }

    /// Open connections.
    pub(crate) fn len(&self) -> usize {
        self.connections.lock().len()
    }

    async fn wait_empty(&self) {
        loop {
            let emptied = self.emptied.notified();
            if self.connections.lock().is_empty() {
                return;
            }
            emptied.await;
        }
    }

    /// Cuts every connection still open; returns how many there were.
    fn kill_all(&self) -> usize {
        let map = self.connections.lock();
        for outbound in map.values() {
            outbound.kill();
        }
        map.len()
    }
}

/// What a shutdown did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Connections open when it began.
    pub connections: usize,
    /// Of those, how many had to be cut at the deadline (a stuck handler, a peer that does
    /// not read).
    pub forced: usize,
}

/// How long cut connections get to run their cleanup after the deadline.
const CLEANUP_GRACE: Duration = Duration::from_secs(1);

impl StompServer {
    /// Stops the server gracefully: new connections are refused (TCP listeners stop, the
    /// WebSocket endpoint answers 503, readiness turns 503), every session gets what is
    /// queued for it and then an ERROR `server shutting down`, disconnect events fire, and
    /// whatever is still open at `deadline` is cut. Returns once every session has ended.
    ///
    /// ```no_run
    /// # async fn run(stomp: stomp_runtime::StompServer) {
    /// let report = stomp.shutdown(std::time::Duration::from_secs(10)).await;
    /// println!("{} sessions closed, {} cut at the deadline", report.connections, report.forced);
    /// # }
    /// ```
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let lc = &self.inner.lifecycle;
        let connections = lc.len();
        info!(connections, ?deadline, "shutting down");
        lc.draining.cancel();
        if tokio::time::timeout(deadline, lc.wait_empty())
            .await
            .is_ok()
        {
            info!(connections, "all sessions closed");
            return ShutdownReport {
                connections,
                forced: 0,
            };
        }
        let forced = lc.kill_all();
        warn!(forced, "sessions cut at the shutdown deadline");
        let _ = tokio::time::timeout(CLEANUP_GRACE, lc.wait_empty()).await;
        ShutdownReport {
            connections,
            forced,
        }
    }

    /// Waits for Ctrl-C or SIGTERM, then [`shutdown`](Self::shutdown)s.
    pub async fn shutdown_on_signal(&self, deadline: Duration) -> ShutdownReport {
        wait_for_signal().await;
        self.shutdown(deadline).await
    }

    /// Whether [`shutdown`](Self::shutdown) has begun.
    pub fn is_draining(&self) -> bool {
        self.inner.lifecycle.draining.is_cancelled()
    }

    /// Open connections (every transport).
    pub fn connections(&self) -> usize {
        self.inner.lifecycle.len()
    }

    /// Mounts liveness and readiness endpoints, for `App::configure`:
    /// `GET /health/live` answers 200 while the process serves HTTP;
    /// `GET /health/ready` answers 200 with `{"status":"ready",...}`, or 503 with
    /// `{"status":"draining"}` once shutdown has begun or `{"status":"broker unavailable"}`
    /// when the broker cannot be reached, so a load balancer stops sending new clients.
    ///
    /// ```no_run
    /// use actix_web::{App, HttpServer};
    /// # async fn run(stomp: stomp_runtime::StompServer) -> std::io::Result<()> {
    /// HttpServer::new(move || App::new().configure(stomp.websocket("/ws")).configure(stomp.health()))
    ///     .bind(("127.0.0.1", 8080))?
    ///     .run()
    ///     .await
    /// # }
    /// ```
    pub fn health(&self) -> impl Fn(&mut web::ServiceConfig) + Clone + 'static {
        let server = self.clone();
        move |cfg: &mut web::ServiceConfig| {
            cfg.route(
                "/health/live",
                web::get().to(|| async {
                    HttpResponse::Ok().json(serde_json::json!({"status": "live"}))
                }),
            );
            let server = server.clone();
            cfg.route(
                "/health/ready",
                web::get().to(move || {
                    let server = server.clone();
                    async move {
                        let connections = server.connections();
                        let broker = server.inner.broker.is_available();
                        let status = if server.is_draining() {
                            "draining"
                        } else if !broker {
                            "broker unavailable"
                        } else {
                            "ready"
                        };
                        let body = serde_json::json!({
                            "status": status,
                            "connections": connections,
                            "broker": if broker { "up" } else { "down" },
                        });
                        if status == "ready" {
                            HttpResponse::Ok().json(body)
                        } else {
                            HttpResponse::ServiceUnavailable().json(body)
                        }
                    }
                }),
            );
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
