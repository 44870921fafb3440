//! Publishing and subscribing with the client, over TCP and WebSocket: topics, queues,
//! patterns, receipts, headers and binary bodies.

mod client_support;

use bytes::Bytes;
use futures_util::StreamExt;
use stomp_runtime::broker::AckMode;
use stomp_runtime::frame::{Command, Frame, Headers};
use stomp_tests::{WAIT, start_default};

use client_support::{
    Transport, bodies, distinct, next, numbered, on_both_transports, split_between, text,
};

on_both_transports!(
    topic_fans_out_to_every_subscriber_in_order,
    queue_gives_each_message_to_exactly_one_consumer,
    pattern_subscriptions_match_by_segment,
    receipts_confirm_frames,
    error_on_a_receipted_frame_is_reported,
    sender_headers_reach_subscribers,
    bodies_with_nul_bytes_survive,
);

async fn topic_fans_out_to_every_subscriber_in_order(t: Transport) {
    const N: usize = 50;
    let server = start_default().await;
    let mut subscribers = Vec::new();
    let mut subscriptions = Vec::new();
    for _ in 0..3 {
        let client = t.connect(&server).await;
        subscriptions.push(client.subscribe("/topic/fan", AckMode::Auto).await.unwrap());
        subscribers.push(client);
    }
    let publisher = t.connect(&server).await;
    let sent = numbered("m", N);
    for body in &sent {
        publisher.send("/topic/fan", body.clone()).await.unwrap();
    }
    let last = subscriptions.pop().expect("three subscriptions");
    // One subscription read as a `Stream`, the others with `next`.
    let streamed: Vec<String> = tokio::time::timeout(WAIT, last.take(N).collect::<Vec<_>>())
        .await
        .expect("all messages in time")
        .iter()
        .map(text)
        .collect();
    assert_eq!(streamed, sent);
    for sub in &mut subscriptions {
        assert_eq!(bodies(sub, N).await, sent);
    }
}

async fn queue_gives_each_message_to_exactly_one_consumer(t: Transport) {
    const N: usize = 40;
    let server = start_default().await;
    let c1 = t.connect(&server).await;
    let c2 = t.connect(&server).await;
    let mut a = c1.subscribe("/queue/work", AckMode::Auto).await.unwrap();
    let mut b = c2.subscribe("/queue/work", AckMode::Auto).await.unwrap();
    let publisher = t.connect(&server).await;
    let sent = numbered("job", N);
    for body in &sent {
        publisher.send("/queue/work", body.clone()).await.unwrap();
    }
    let (got_a, got_b) = split_between(&mut a, &mut b, N).await;
    assert!(
        !got_a.is_empty() && !got_b.is_empty(),
        "{got_a:?} / {got_b:?}"
    );
    let mut all: Vec<String> = got_a.iter().chain(&got_b).cloned().collect();
    assert!(distinct(&all), "a message was delivered twice: {all:?}");
    all.sort();
    let mut expected = sent.clone();
    expected.sort();
    assert_eq!(all, expected);
    // Each consumer sees its share in publishing order.
    for got in [&got_a, &got_b] {
        let positions: Vec<usize> = got
            .iter()
            .map(|b| sent.iter().position(|s| s == b).expect("sent"))
            .collect();
        assert!(positions.is_sorted(), "{got:?}");
    }
    // Nothing more is on its way: a final message goes to one of them and is next there.
    publisher
        .send_receipted("/queue/work", "last", Headers::new())
        .await
        .unwrap();
    let (tail_a, tail_b) = split_between(&mut a, &mut b, 1).await;
    assert_eq!([tail_a, tail_b].concat(), ["last"]);
}

async fn pattern_subscriptions_match_by_segment(t: Transport) {
    let server = start_default().await;
    let client = t.connect(&server).await;
    let mut rooms = client
        .subscribe("/topic/rooms.*", AckMode::Auto)
        .await
        .unwrap();
    let mut everything = client.subscribe("/topic/**", AckMode::Auto).await.unwrap();
    let publisher = t.connect(&server).await;
    for (dest, body) in [
        ("/topic/rooms.lobby", "1"),
        ("/topic/rooms.lobby.deep", "2"),
        ("/topic/other", "3"),
        ("/topic/rooms.kitchen", "4"),
        ("/topic/rooms.end", "end"),
    ] {
        publisher.send(dest, body).await.unwrap();
    }
    let got = bodies(&mut rooms, 3).await;
    assert_eq!(got, ["1", "4", "end"]);
    let got = bodies(&mut everything, 5).await;
    assert_eq!(got, ["1", "2", "3", "4", "end"]);
    // Each message names the destination it was sent to, not the pattern.
    publisher.send("/topic/rooms.x", "x").await.unwrap();
    let m = next(&mut rooms).await;
    assert_eq!(m.destination(), "/topic/rooms.x");
    assert_eq!(m.subscription(), rooms.id());
}

async fn receipts_confirm_frames(t: Transport) {
    let server = start_default().await;
    let client = t.connect(&server).await;
    let mut sub = client.subscribe("/topic/r", AckMode::Auto).await.unwrap();
    client
        .send_receipted("/topic/r", "confirmed", Headers::new())
        .await
        .unwrap();
    // The receipt means the message is already queued for the subscriber.
    assert_eq!(text(&next(&mut sub).await), "confirmed");
    client
        .request(Frame::new(Command::Begin).header("transaction", "t1"))
        .await
        .unwrap();
    client
        .request(
            Frame::new(Command::Abort)
                .header("transaction", "t1")
                .header("receipt", "my-own-receipt"),
        )
        .await
        .unwrap();
    sub.unsubscribe().await.unwrap();
    client.disconnect().await.unwrap();
    assert!(client.closed().await.is_none());
}

async fn error_on_a_receipted_frame_is_reported(t: Transport) {
    let server = start_default().await;
    let client = t.connect(&server).await;
    let mut sub = client.subscribe("/topic/e", AckMode::Auto).await.unwrap();
    let err = client
        .send_receipted("/nowhere/x", "lost", Headers::new())
        .await
        .unwrap_err();
    assert_eq!(err.server_message(), Some("no route for destination"));
    let stomp_runtime::client::ClientError::Server { headers, body, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(headers.get("receipt-id").is_some(), "{headers:?}");
    assert!(
        String::from_utf8_lossy(body).contains("/nowhere/x"),
        "{body:?}"
    );
    let cause = tokio::time::timeout(WAIT, client.closed())
        .await
        .unwrap()
        .expect("closed by an error");
    assert_eq!(cause.server_message(), Some("no route for destination"));
    assert!(
        tokio::time::timeout(WAIT, sub.next())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        client
            .send("/topic/e", "late")
            .await
            .unwrap_err()
            .server_message(),
        Some("no route for destination")
    );
}

async fn sender_headers_reach_subscribers(t: Transport) {
    let server = start_default().await;
    let client = t.connect(&server).await;
    let mut sub = client.subscribe("/topic/h", AckMode::Auto).await.unwrap();
    let headers: Headers = [
        ("content-type", "application/json"),
        ("x-trace", "abc-123"),
        ("x-tricky", "a:b\nc\\d"),
        ("priority", "9"),
    ]
    .into_iter()
    .collect();
    client
        .send_receipted("/topic/h", r#"{"n":1}"#, headers)
        .await
        .unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.content_type(), Some("application/json"));
    assert_eq!(m.header("x-trace"), Some("abc-123"));
    assert_eq!(m.header("x-tricky"), Some("a:b\nc\\d"));
    assert_eq!(m.header("priority"), Some("9"));
    assert_eq!(m.text(), Some(r#"{"n":1}"#));
    assert!(!m.message_id().is_empty());
    // Frame-level headers of the SEND are not passed on.
    assert_eq!(m.header("receipt"), None);
    assert_eq!(m.header("transaction"), None);
}

async fn bodies_with_nul_bytes_survive(t: Transport) {
    let server = start_default().await;
    let client = t.connect(&server).await;
    let mut sub = client.subscribe("/topic/bin", AckMode::Auto).await.unwrap();
    let text_with_nuls = Bytes::from_static(b"a\0b\0\0c");
    let binary = Bytes::from_static(b"\0\xff\xfe\x00binary\x80\0");
    let empty = Bytes::new();
    for body in [&text_with_nuls, &binary, &empty] {
        client.send("/topic/bin", body.clone()).await.unwrap();
    }
    for body in [&text_with_nuls, &binary, &empty] {
        let m = next(&mut sub).await;
        assert_eq!(m.body(), body);
        assert_eq!(
            m.header("content-length"),
            Some(body.len().to_string().as_str())
        );
    }
}
