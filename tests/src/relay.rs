//! Servers relaying to the RabbitMQ of the test machine (its STOMP adapter on
//! 127.0.0.1:61613, guest/guest; `STOMP_TEST_BROKER` names another).

use std::fs::File;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{FlockOperation, flock};

use stomp_runtime::StompServer;
use stomp_runtime::broker::RelayConfig;
use stomp_runtime::security::TrustLogin;

use crate::{TestServer, WAIT, start};

/// The broker's STOMP address.
pub fn broker() -> String {
    std::env::var("STOMP_TEST_BROKER").unwrap_or_else(|_| "127.0.0.1:61613".into())
}

/// A name no other test, run or process uses: RabbitMQ is shared and its durable queues
/// outlive a run.
pub fn unique(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{}-{nanos:x}-{n}", std::process::id())
}

/// The lock that keeps a broker restart (exclusive) from running while other tests,
/// in this run or a concurrent one, use the broker (shared).
fn lock_file() -> File {
    let path = std::env::temp_dir().join("stomp-rs-test-broker.lock");
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// Holds the broker lock shared for the rest of the process.
async fn share_broker() {
    static SHARED: OnceLock<File> = OnceLock::new();
    if SHARED.get().is_some() || OWNED.load(Ordering::Relaxed) {
        return;
    }
    let file = tokio::task::spawn_blocking(|| {
        let file = lock_file();
        flock(&file, FlockOperation::LockShared).expect("shared broker lock");
        file
    })
    .await
    .expect("join");
    let _ = SHARED.set(file);
}

static OWNED: AtomicBool = AtomicBool::new(false);

/// Takes the broker for this process alone (to restart it), for the rest of the process.
pub async fn own_broker() {
    let file = tokio::task::spawn_blocking(|| {
        let file = lock_file();
        flock(&file, FlockOperation::LockExclusive).expect("exclusive broker lock");
        file
    })
    .await
    .expect("join");
    OWNED.store(true, Ordering::Relaxed);
    // Released when the process exits.
    std::mem::forget(file);
}

/// A relay configuration for the test broker.
pub fn config() -> RelayConfig {
    RelayConfig {
        addresses: vec![broker()],
        ..RelayConfig::default()
    }
}

/// A node: a server relaying with `config`, logins taken as user names, started on
/// ephemeral ports; returns once the relay reaches the broker.
pub async fn node(config: RelayConfig) -> TestServer {
    share_broker().await;
    let stomp = StompServer::builder()
        .authenticator(TrustLogin)
        .relay(config)
        .build()
        .expect("relay configuration is valid");
    let server = start(stomp).await;
    let relay = server.stomp.relay().expect("built with a relay");
    assert!(
        relay.wait_available(WAIT).await,
        "the relay did not reach the broker at {:?} within {WAIT:?}: is RabbitMQ running with rabbitmq_stomp enabled? ({:?})",
        relay.config().addresses,
        *relay.availability().borrow()
    );
    server
}
