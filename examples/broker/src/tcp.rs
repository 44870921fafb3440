//! The raw TCP transport on its own multi-threaded tokio runtime, so TCP sessions spread
//! over several threads instead of sharing actix's single-threaded workers.

use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use stomp_runtime::StompServer;
use tokio::sync::oneshot;
use tracing::error;

/// How long open TCP sessions may keep running once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A running TCP listener; [`TcpTransport::stop`] ends it and its sessions.
pub struct TcpTransport {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl TcpTransport {
    /// Binds `addr` now (so errors surface before anything else starts) and serves `server`
    /// on a runtime of `workers` threads.
    pub fn spawn(server: StompServer, addr: SocketAddr, workers: usize) -> io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("stomp-tcp")
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("stomp-tcp-accept".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => return error!(error = %e, "tcp listener unusable"),
                    };
                    tokio::select! {
                        result = server.serve_tcp(listener) => {
                            if let Err(e) = result {
                                error!(error = %e, "tcp listener failed");
                            }
                        }
                        _ = stopped => {}
                    }
                });
                runtime.shutdown_timeout(SHUTDOWN_GRACE);
            })?;
        Ok(Self { addr, stop, thread })
    }

    /// The address actually bound (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, ends the sessions and waits for the runtime to wind down.
    pub fn stop(self) {
        let _ = self.stop.send(());
        if self.thread.join().is_err() {
            error!("tcp transport thread panicked");
        }
    }
}
