//! Acknowledgement and transactions with the client, over TCP and WebSocket: `client` and
//! `client-individual` acks, NACK, redelivery of what a closed session left unacked, and
//! COMMIT/ABORT.

mod client_support;

use stomp_runtime::broker::AckMode;
use stomp_runtime::client::{Client, Message, Subscription};
use stomp_runtime::frame::Headers;
use stomp_tests::{WAIT, start_default};

use client_support::{Transport, bodies, messages, next, numbered, on_both_transports, text};

on_both_transports!(
    client_ack_is_cumulative,
    client_individual_ack_settles_one_message,
    nack_redelivers_to_another_subscriber,
    unacked_messages_of_a_closed_session_are_redelivered,
    commit_publishes_and_abort_discards,
    acks_inside_a_transaction_wait_for_commit,
    a_backlog_larger_than_the_outbound_bound_is_paced_not_fatal,
);

/// 40 × 4 KiB wait in a queue; the subscriber's outbound bound is 16 KiB. The backlog is
/// handed over as the subscriber's writer makes room: all of it, in order, and the
/// subscriber is not taken for a slow consumer.
async fn a_backlog_larger_than_the_outbound_bound_is_paced_not_fatal(t: Transport) {
    use stomp_runtime::StompServer;
    use stomp_runtime::config::Limits;
    let limits = Limits {
        max_outbound_bytes: 16 * 1024,
        ..Limits::default()
    };
    let server = stomp_tests::start(StompServer::builder().limits(limits).build().unwrap()).await;
    let publisher = t.connect(&server).await;
    let pad = "x".repeat(4096);
    let sent: Vec<String> = (0..40).map(|i| format!("{i:02}{pad}")).collect();
    for body in &sent {
        publisher
            .send_receipted("/queue/backlog", body.clone(), Headers::new())
            .await
            .unwrap();
    }
    let consumer = t.connect(&server).await;
    let mut sub = consumer
        .subscribe("/queue/backlog", AckMode::Auto)
        .await
        .unwrap();
    assert_eq!(bodies(&mut sub, 40).await, sent);
    assert!(!consumer.is_closed());
}

/// Publishes `bodies` to `destination`, in order.
async fn publish(publisher: &Client, destination: &str, bodies: &[String]) {
    for body in bodies {
        publisher.send(destination, body.clone()).await.unwrap();
    }
}

/// The first message either subscription gets, and whether it was `a`.
async fn first_of(a: &mut Subscription, b: &mut Subscription) -> (Message, bool) {
    let race = async {
        tokio::select! {
            m = a.next() => (m.expect("subscription a ended"), true),
            m = b.next() => (m.expect("subscription b ended"), false),
        }
    };
    tokio::time::timeout(WAIT, race)
        .await
        .expect("a message within WAIT")
}

async fn client_ack_is_cumulative(t: Transport) {
    let server = start_default().await;
    let first = t.connect(&server).await;
    let mut a = first
        .subscribe("/queue/cum", AckMode::Client)
        .await
        .unwrap();
    let publisher = t.connect(&server).await;
    publish(&publisher, "/queue/cum", &numbered("m", 5)).await;
    let got = messages(&mut a, 5).await;
    assert_eq!(got.iter().map(text).collect::<Vec<_>>(), numbered("m", 5));
    // Acknowledging m2 settles m0..=m2.
    first.ack(&got[2]).await.unwrap();
    let second = t.connect(&server).await;
    let mut b = second.subscribe("/queue/cum", AckMode::Auto).await.unwrap();
    first.disconnect().await.unwrap();
    assert_eq!(bodies(&mut b, 2).await, ["m3", "m4"]);
    publisher.send("/queue/cum", "after").await.unwrap();
    assert_eq!(text(&next(&mut b).await), "after");
}

async fn client_individual_ack_settles_one_message(t: Transport) {
    let server = start_default().await;
    let first = t.connect(&server).await;
    let mut a = first
        .subscribe("/queue/ind", AckMode::ClientIndividual)
        .await
        .unwrap();
    let publisher = t.connect(&server).await;
    publish(&publisher, "/queue/ind", &numbered("m", 5)).await;
    let got = messages(&mut a, 5).await;
    first.ack(&got[1]).await.unwrap();
    first.ack(&got[3]).await.unwrap();
    let second = t.connect(&server).await;
    let mut b = second.subscribe("/queue/ind", AckMode::Auto).await.unwrap();
    first.disconnect().await.unwrap();
    assert_eq!(bodies(&mut b, 3).await, ["m0", "m2", "m4"]);
    publisher.send("/queue/ind", "after").await.unwrap();
    assert_eq!(text(&next(&mut b).await), "after");
}

async fn nack_redelivers_to_another_subscriber(t: Transport) {
    let server = start_default().await;
    let c1 = t.connect(&server).await;
    let c2 = t.connect(&server).await;
    let mut a = c1
        .subscribe("/queue/nack", AckMode::ClientIndividual)
        .await
        .unwrap();
    let mut b = c2
        .subscribe("/queue/nack", AckMode::ClientIndividual)
        .await
        .unwrap();
    let publisher = t.connect(&server).await;
    publisher.send("/queue/nack", "hot potato").await.unwrap();
    let (m, a_got_it) = first_of(&mut a, &mut b).await;
    assert_eq!(text(&m), "hot potato");
    // Whoever got it rejects it; the other subscriber gets the same message.
    let (rejecter, other, other_sub) = if a_got_it {
        (&c1, &c2, &mut b)
    } else {
        (&c2, &c1, &mut a)
    };
    rejecter.nack(&m).await.unwrap();
    let again = next(other_sub).await;
    assert_eq!(text(&again), "hot potato");
    assert_eq!(again.message_id(), m.message_id());
    other.ack(&again).await.unwrap();
    // Settled for good: with the acknowledging side gone, nothing comes back.
    other.disconnect().await.unwrap();
    publisher.send("/queue/nack", "after").await.unwrap();
    let rejecter_sub = if a_got_it { &mut a } else { &mut b };
    assert_eq!(text(&next(rejecter_sub).await), "after");
}

async fn unacked_messages_of_a_closed_session_are_redelivered(t: Transport) {
    let server = start_default().await;
    let first = t.connect(&server).await;
    let mut a = first
        .subscribe("/queue/orphans", AckMode::ClientIndividual)
        .await
        .unwrap();
    let publisher = t.connect(&server).await;
    publish(&publisher, "/queue/orphans", &numbered("m", 3)).await;
    assert_eq!(bodies(&mut a, 3).await, numbered("m", 3));
    let second = t.connect(&server).await;
    let mut b = second
        .subscribe("/queue/orphans", AckMode::ClientIndividual)
        .await
        .unwrap();
    // An abrupt end: no DISCONNECT, no UNSUBSCRIBE.
    drop(first);
    assert!(
        tokio::time::timeout(WAIT, a.next())
            .await
            .unwrap()
            .is_none(),
        "the dropped client's subscription ends"
    );
    let redelivered = messages(&mut b, 3).await;
    assert_eq!(
        redelivered.iter().map(text).collect::<Vec<_>>(),
        numbered("m", 3)
    );
    for m in &redelivered {
        second.ack(m).await.unwrap();
    }
    publisher.send("/queue/orphans", "after").await.unwrap();
    assert_eq!(text(&next(&mut b).await), "after");
}

async fn commit_publishes_and_abort_discards(t: Transport) {
    let server = start_default().await;
    let subscriber = t.connect(&server).await;
    let mut sub = subscriber
        .subscribe("/topic/tx", AckMode::Auto)
        .await
        .unwrap();
    let publisher = t.connect(&server).await;

    let tx = publisher.begin().await.unwrap();
    tx.send("/topic/tx", "t1").await.unwrap();
    tx.send_with("/topic/tx", "t2", [("x-n", "2")].into_iter().collect())
        .await
        .unwrap();
    // Sent after the transaction's frames but outside it: it arrives first.
    publisher
        .send_receipted("/topic/tx", "outside", Headers::new())
        .await
        .unwrap();
    assert_eq!(text(&next(&mut sub).await), "outside");
    tx.commit().await.unwrap();
    let t1 = next(&mut sub).await;
    let t2 = next(&mut sub).await;
    assert_eq!((text(&t1), text(&t2)), ("t1".into(), "t2".into()));
    assert_eq!(t2.header("x-n"), Some("2"));
    assert_eq!(t2.header("transaction"), None);

    let tx = publisher.begin().await.unwrap();
    tx.send("/topic/tx", "aborted").await.unwrap();
    tx.abort().await.unwrap();
    {
        let dropped = publisher.begin().await.unwrap();
        dropped.send("/topic/tx", "dropped").await.unwrap();
    }
    publisher
        .send_receipted("/topic/tx", "after", Headers::new())
        .await
        .unwrap();
    assert_eq!(text(&next(&mut sub).await), "after");
    assert!(sub.try_next().is_none());
}

async fn acks_inside_a_transaction_wait_for_commit(t: Transport) {
    let server = start_default().await;
    let first = t.connect(&server).await;
    let mut a = first
        .subscribe("/queue/txack", AckMode::ClientIndividual)
        .await
        .unwrap();
    let publisher = t.connect(&server).await;
    publish(&publisher, "/queue/txack", &numbered("m", 2)).await;
    let m0 = next(&mut a).await;
    let m1 = next(&mut a).await;

    let tx = first.begin().await.unwrap();
    tx.ack(&m0).await.unwrap();
    tx.abort().await.unwrap();
    let tx = first.begin().await.unwrap();
    tx.ack(&m1).await.unwrap();
    tx.commit().await.unwrap();

    // m0's ACK was aborted, so closing the session hands m0 (and only m0) to the next one.
    let second = t.connect(&server).await;
    let mut b = second
        .subscribe("/queue/txack", AckMode::Auto)
        .await
        .unwrap();
    first.disconnect().await.unwrap();
    assert_eq!(text(&next(&mut b).await), "m0");
    publisher.send("/queue/txack", "after").await.unwrap();
    assert_eq!(text(&next(&mut b).await), "after");
}
