//! The payment-audit example end to end: payments through the logging, audit and
//! failure-tracking interceptors, the audit rows in SQLite checked field by field, and the
//! trail still there after a restart.

use std::path::PathBuf;

use payment_audit::gateway::Mode;
use payment_audit::{Config, Services};
use stomp_runtime::broker::AckMode;
use stomp_runtime::client::{Client, ConnectOptions, Message, Subscription};
use stomp_runtime::frame::Headers;
use stomp_tests::{TestServer, WAIT, http_request, start_app};

/// A database file of this test's own, removed when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "payment-audit-{name}-{}-{}.db",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        Self(path)
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

async fn serve(db: &TempDb) -> (TestServer, Services) {
    let config = Config {
        db: db.0.clone(),
        gateway: Mode::Normal,
    };
    let (stomp, services) = payment_audit::server(&config).expect("server");
    let app = payment_audit::app(&stomp, &services);
    (start_app(stomp, app).await, services)
}

async fn next(sub: &mut Subscription) -> Message {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a message in time")
        .expect("subscription open")
}

fn json(m: &Message) -> serde_json::Value {
    serde_json::from_slice(m.body()).expect("JSON body")
}

async fn pay(c: &Client, order: &str, card: &str, cents: u64) {
    let mut h = Headers::new();
    h.push("content-type", "application/json");
    let body = serde_json::json!({
        "order_id": order, "amount_cents": cents, "currency": "EUR", "card": card,
    });
    c.send_receipted("/app/payment.pay", body.to_string(), h)
        .await
        .expect("receipt");
}

async fn http_get(server: &TestServer, path: &str) -> String {
    http_request(server.http_addr, "GET", path, "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_payment_call_is_audited_and_failures_counted_and_the_trail_survives_a_restart() {
    let db = TempDb::new("e2e");
    let (server, services) = serve(&db).await;
    let shop = Client::connect_tcp(server.tcp_addr, ConnectOptions::new().login("shop-1"))
        .await
        .unwrap();
    let mut receipts = shop
        .subscribe("/user/queue/payments", AckMode::Auto)
        .await
        .unwrap();
    let mut errors = shop
        .subscribe("/user/queue/errors", AckMode::Auto)
        .await
        .unwrap();

    // Charged.
    pay(&shop, "o-1", "4242 4242 4242 4242", 1250).await;
    let receipt = json(&next(&mut receipts).await);
    assert_eq!(receipt["status"], "paid");
    assert_eq!(receipt["user"], "shop-1");
    let payment_id = receipt["payment_id"].as_str().unwrap().to_owned();

    // Declined: the exception handler answers with the reason.
    pay(&shop, "o-2", "4000000000000002", 990).await;
    let declined = json(&next(&mut errors).await);
    assert_eq!(declined["error"], "card declined");
    assert_eq!(declined["reason"], "insufficient funds");
    assert_eq!(declined["last4"], "0002");
    let declined_ref = declined["correlation"].as_str().unwrap().to_owned();

    // The gateway is down: the client gets a reference, never the endpoint or timings.
    pay(&shop, "o-3", "4000000000000119", 500).await;
    let down = json(&next(&mut errors).await);
    let text = down["error"].as_str().unwrap();
    assert!(text.starts_with("internal error (ref "), "{text}");
    assert!(!text.contains("gateway.internal"), "{text}");
    let down_ref = text
        .trim_start_matches("internal error (ref ")
        .trim_end_matches(')')
        .to_owned();

    // The gateway panics: contained, reported the same way, the session lives on.
    pay(&shop, "o-4", "4000000000009999", 700).await;
    let panicked = json(&next(&mut errors).await);
    assert!(
        panicked["error"]
            .as_str()
            .unwrap()
            .starts_with("internal error (ref ")
    );

    // Refund, and a receipt lookup on SUBSCRIBE (not a payment: not audited).
    let mut h = Headers::new();
    h.push("content-type", "application/json");
    let body = serde_json::json!({ "payment_id": payment_id }).to_string();
    shop.send_receipted("/app/payment.refund", body, h)
        .await
        .unwrap();
    assert_eq!(json(&next(&mut receipts).await)["status"], "refunded");
    let mut lookup = shop
        .subscribe(&format!("/app/payment.receipt.{payment_id}"), AckMode::Auto)
        .await
        .unwrap();
    assert_eq!(json(&next(&mut lookup).await)["status"], "refunded");

    // Another user cannot see the receipt.
    let other = Client::connect_tcp(server.tcp_addr, ConnectOptions::new().login("mallory"))
        .await
        .unwrap();
    let mut other_errors = other
        .subscribe("/user/queue/errors", AckMode::Auto)
        .await
        .unwrap();
    let _ = other
        .subscribe(&format!("/app/payment.receipt.{payment_id}"), AckMode::Auto)
        .await;
    let e = json(&next(&mut other_errors).await);
    assert_eq!(e["error"], format!("no payment `{payment_id}`"));

    // The audit trail: one row per pay/refund call, in order, with who, what and how.
    let rows = services.audit.recent(100).await.unwrap();
    let summary: Vec<(&str, &str, Option<i64>, &str)> = rows
        .iter()
        .map(|r| {
            (
                r.user.as_str(),
                r.destination.as_str(),
                r.amount_cents,
                r.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("shop-1", "/app/payment.pay", Some(1250), "ok"),
            ("shop-1", "/app/payment.pay", Some(990), "error"),
            ("shop-1", "/app/payment.pay", Some(500), "error"),
            ("shop-1", "/app/payment.pay", Some(700), "error"),
            ("shop-1", "/app/payment.refund", None, "ok"),
        ]
    );
    assert!(
        rows.iter()
            .all(|r| r.handler.starts_with("payment_audit::controllers::"))
    );
    assert!(
        rows.iter()
            .all(|r| r.currency.as_deref() == r.amount_cents.map(|_| "EUR"))
    );
    assert_eq!(rows[1].correlation, declined_ref);
    assert!(
        rows[1]
            .error
            .as_deref()
            .unwrap()
            .contains("insufficient funds")
    );
    assert_eq!(
        rows[2].correlation, down_ref,
        "the client's reference finds the record"
    );
    assert!(
        rows[2]
            .error
            .as_deref()
            .unwrap()
            .contains("gateway.internal:443")
    );
    assert!(rows[3].error.as_deref().unwrap().contains("panicked"));
    let mut correlations: Vec<&str> = rows.iter().map(|r| r.correlation.as_str()).collect();
    correlations.dedup();
    assert_eq!(correlations.len(), 5);

    // Failures per handler and kind, from the after_error advice (the refused lookup too).
    let failures = services.failures.snapshot();
    let pay_failures = &failures["payment_audit::controllers::pay"];
    assert_eq!(pay_failures.get("application"), Some(&1));
    assert_eq!(pay_failures.get("internal"), Some(&1));
    assert_eq!(pay_failures.get("panic"), Some(&1));
    assert_eq!(
        failures["payment_audit::controllers::receipt"].get("application"),
        Some(&1)
    );
    assert!(!failures.contains_key("payment_audit::controllers::refund"));

    // The same over HTTP.
    let response = http_get(&server, "/api/audit?limit=2").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("/app/payment.refund"), "{response}");
    assert!(response.contains(&rows[3].correlation), "{response}");
    assert!(!response.contains(&down_ref), "the limit holds: {response}");

    // A restart on the same database keeps the trail and appends to it.
    shop.disconnect().await.unwrap();
    other.disconnect().await.unwrap();
    drop(server);
    drop(services);
    let (server, services) = serve(&db).await;
    assert_eq!(services.audit.recent(100).await.unwrap(), rows);
    let shop = Client::connect_tcp(server.tcp_addr, ConnectOptions::new().login("shop-2"))
        .await
        .unwrap();
    let mut receipts = shop
        .subscribe("/user/queue/payments", AckMode::Auto)
        .await
        .unwrap();
    pay(&shop, "o-5", "5555555555554444", 4200).await;
    assert_eq!(json(&next(&mut receipts).await)["status"], "paid");
    let after = services.audit.recent(100).await.unwrap();
    assert_eq!(after.len(), 6);
    assert_eq!(&after[..5], &rows[..]);
    assert_eq!(after[5].user, "shop-2");
    assert_eq!(after[5].amount_cents, Some(4200));
}
