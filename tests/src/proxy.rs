//! A TCP proxy in front of a real broker, for failover tests: it can refuse connections,
//! cut the ones it carries, or freeze them (the sockets stay open, nothing flows), and it
//! counts the heart-beats the client side sends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

/// What the proxy does with connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forwards both ways.
    Forward,
    /// Closes new connections at once and cuts the open ones.
    Refuse,
    /// Keeps the sockets open but forwards nothing either way.
    Freeze,
}

struct Shared {
    target: SocketAddr,
    mode: watch::Sender<Mode>,
    /// Bare end-of-line bytes between frames sent by clients: their heart-beats.
    beats: AtomicU64,
    beat: Notify,
    accepted: AtomicU64,
}

/// A proxy on an ephemeral loopback port; stops when dropped.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.mode.send_replace(Mode::Refuse);
        self.task.abort();
    }
}

impl Proxy {
    /// Starts a proxy to `target` in `mode`.
    pub async fn start(target: SocketAddr, mode: Mode) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let shared = Arc::new(Shared {
            target,
            mode: watch::Sender::new(mode),
            beats: AtomicU64::new(0),
            beat: Notify::new(),
            accepted: AtomicU64::new(0),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *s.mode.borrow() == Mode::Refuse {
                    drop(client);
                    continue;
                }
                s.accepted.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(carry(s.clone(), client));
            }
        });
        Proxy { addr, shared, task }
    }

    /// Switches mode; `Refuse` cuts every open connection.
    pub fn set(&self, mode: Mode) {
        self.shared.mode.send_replace(mode);
    }

    /// Connections accepted (not refused) so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// Waits until clients have sent `n` heart-beats in all (bounded by the test's wait).
    pub async fn heartbeats(&self, n: u64) {
        loop {
            let notified = self.shared.beat.notified();
            if self.shared.beats.load(Ordering::Relaxed) >= n {
                return;
            }
            notified.await;
        }
    }

    /// Heart-beats clients have sent so far.
    pub fn heartbeats_seen(&self) -> u64 {
        self.shared.beats.load(Ordering::Relaxed)
    }
}

async fn carry(shared: Arc<Shared>, client: TcpStream) {
    let Ok(server) = TcpStream::connect(shared.target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = pump(shared.clone(), cr, sw, true);
    let down = pump(shared.clone(), sr, cw, false);
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// Copies one direction while the mode allows; counts heart-beats going up.
async fn pump(
    shared: Arc<Shared>,
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    up: bool,
) {
    let mut mode = shared.mode.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    // Whether the last byte going up ended a frame (NUL) or a beat: a newline then is a beat.
    let mut between_frames = true;
    loop {
        let now = *mode.borrow_and_update();
        match now {
            Mode::Refuse => return,
            Mode::Freeze => {
                if mode.changed().await.is_err() {
                    return;
                }
                continue;
            }
            Mode::Forward => {}
        }
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = mode.changed() => continue,
        };
        if up {
            let mut beats = 0;
            for &b in &buf[..n] {
                match b {
                    b'\n' | b'\r' if between_frames => {
                        if b == b'\n' {
                            beats += 1;
                        }
                    }
                    0 => between_frames = true,
                    _ => between_frames = false,
                }
            }
            if beats > 0 {
                shared.beats.fetch_add(beats, Ordering::Relaxed);
                shared.beat.notify_waiters();
            }
        }
        // Frozen between read and write: the bytes wait, as on a stalled link.
        while *mode.borrow() == Mode::Freeze {
            if mode.changed().await.is_err() {
                return;
            }
        }
        if *mode.borrow() == Mode::Refuse || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
