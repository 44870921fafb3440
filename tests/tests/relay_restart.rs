//! The broker restarts under two relaying nodes (`rabbitmqctl stop_app` / `start_app`):
//! client sessions stay connected, publishes fail while it is away and resume after,
//! every receipted message arrives, and availability goes down and up on both nodes.
//!
//! A binary of its own, so that restarting the shared broker never meets another test
//! using it; the broker lock in `stomp_tests::relay` keeps concurrent runs apart too.

use std::process::Command as Process;

use stomp_runtime::broker::{AckMode, BrokerAvailability};
use stomp_runtime::client::{Client, ClientError, ConnectOptions};
use stomp_runtime::frame::Headers;
use stomp_tests::relay::{config, node, own_broker, unique};
use stomp_tests::{TestServer, WAIT};
use tokio::sync::watch;

/// Runs `rabbitmqctl <command>`; panics if it fails.
async fn rabbitmqctl(command: &'static str) {
    let out =
        tokio::task::spawn_blocking(move || Process::new("rabbitmqctl").arg(command).output())
            .await
            .expect("join")
            .unwrap_or_else(|e| panic!("rabbitmqctl {command}: {e}"));
    assert!(
        out.status.success(),
        "rabbitmqctl {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts the broker again however the test ends.
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        let _ = Process::new("rabbitmqctl").arg("start_app").output();
    }
}

async fn client(server: &TestServer) -> Client {
    Client::connect_tcp(server.tcp_addr, ConnectOptions::new())
        .await
        .expect("connect")
}

async fn next_change(rx: &mut watch::Receiver<BrokerAvailability>) -> BrokerAvailability {
    tokio::time::timeout(WAIT * 3, rx.changed())
        .await
        .expect("availability changed in time")
        .expect("relay running");
    rx.borrow_and_update().clone()
}

fn text_body() -> Headers {
    [("content-type", "text/plain")].into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_broker_restart_and_every_receipted_message_arrives() {
    own_broker().await;
    let (a, b) = (node(config()).await, node(config()).await);
    let mut watch_a = a.stomp.relay().unwrap().availability();
    let mut watch_b = b.stomp.relay().unwrap().availability();
    watch_a.borrow_and_update();
    watch_b.borrow_and_update();
    let topic = format!("/topic/{}", unique("restart"));
    let queue = format!("/queue/{}", unique("restart"));
    let listener = client(&b).await;
    let mut on_topic = listener.subscribe(&topic, AckMode::Auto).await.unwrap();
    let mut on_queue = listener
        .subscribe(&queue, AckMode::ClientIndividual)
        .await
        .unwrap();
    let publisher = client(&a).await;
    let mut sent = Vec::new();
    for round in ["before", "after"] {
        if round == "after" {
            let _restart = Restart;
            rabbitmqctl("stop_app").await;
            assert!(!next_change(&mut watch_a).await.is_available());
            assert!(!next_change(&mut watch_b).await.is_available());
            // Away: a receipted SEND gets an ERROR, not a RECEIPT.
            let doomed = client(&a).await;
            let err = doomed
                .send_receipted(&topic, "lost", text_body())
                .await
                .unwrap_err();
            match err {
                ClientError::Server { message, body, .. } => {
                    assert_eq!(message, "message not accepted");
                    assert!(
                        String::from_utf8_lossy(&body).contains("broker unavailable"),
                        "{body:?}"
                    );
                }
                other => panic!("expected an ERROR, got {other:?}"),
            }
            rabbitmqctl("start_app").await;
            assert!(next_change(&mut watch_a).await.is_available());
            assert!(next_change(&mut watch_b).await.is_available());
        }
        for i in 0..3 {
            let body = format!("{round}-{i}");
            publisher
                .send_receipted(&topic, body.clone(), text_body())
                .await
                .unwrap();
            publisher
                .send_receipted(&queue, body.clone(), text_body())
                .await
                .unwrap();
            sent.push(body);
        }
        let wanted = &sent[sent.len() - 3..];
        for want in wanted {
            let m = tokio::time::timeout(WAIT, on_topic.next())
                .await
                .expect("topic message in time")
                .expect("subscription alive");
            assert_eq!(m.text(), Some(want.as_str()));
            let m = tokio::time::timeout(WAIT, on_queue.next())
                .await
                .expect("queue message in time")
                .expect("subscription alive");
            assert_eq!(m.text(), Some(want.as_str()));
            listener.ack(&m).await.unwrap();
        }
    }
    assert!(!listener.is_closed() && !publisher.is_closed());
}
