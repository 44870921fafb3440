//! Interceptors end to end: around / before / after-returning / after-error advice,
//! exception handlers, channel interceptors, contained panics and session events, over a
//! real server and real clients.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use stomp_runtime::advice::{
    ChannelInterceptor, Deliver, HandlerResult, InboundContext, Invocation, Next, OutboundContext,
    Refusal, Tag,
};
use stomp_runtime::broker::{AckMode, BrokerMessage};
use stomp_runtime::client::{Client, ClientError, ConnectOptions, Message, Subscription};
use stomp_runtime::frame::{Command, Frame, Headers};
use stomp_runtime::handler::Reply;
use stomp_runtime::prelude::*;
use stomp_runtime::security::TrustLogin;
use stomp_runtime::{
    ErrorKind, ErrorPolicy, SessionEvent, StompServerBuilder, after_error, after_returning, around,
    before, message_exception_handler, message_mapping, send_to, subscribe_mapping,
};
use stomp_tests::{TestServer, WAIT, start};

/// What the advice and handlers of one test write down, in order.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    fn note(&self, line: impl Into<String>) {
        self.0.lock().push(line.into());
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().clone()
    }

    fn count(&self, prefix: &str) -> usize {
        self.0
            .lock()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }
}

pub const AUDITED: Tag = Tag::new("audited");

// ---- handlers ----------------------------------------------------------------------------

#[message_mapping("/nested.{item}", tags = [AUDITED])]
#[send_to("/topic/nested")]
async fn nested(
    DestinationVar(item): DestinationVar<String>,
    Header(stamp): Header<String>,
    State(journal): State<Journal>,
) -> String {
    journal.note("handler");
    format!("{item} stamped {stamp}")
}

#[message_mapping("/fails.error")]
async fn fails_with_error(State(journal): State<Journal>) -> Result<String, StompError> {
    journal.note("handler");
    Err(StompError::new("the gate is jammed"))
}

#[message_mapping("/fails.extract")]
async fn fails_to_extract(Header(_count): Header<u32>) -> String {
    unreachable!("the header never parses in these tests")
}

#[message_mapping("/fails.panic")]
async fn fails_with_panic(State(journal): State<Journal>) -> String {
    journal.note("handler");
    panic!("the handler lost its mind")
}

#[message_mapping("/fails.internal")]
async fn fails_internally() -> Result<String, StompError> {
    let _file = std::fs::read("/definitely/not/here/db-password.txt")?;
    Ok("unreachable".into())
}

#[derive(Debug, thiserror::Error)]
#[error("card {0} declined")]
struct Declined(String);

#[message_mapping("/payment.pay")]
async fn pay(Payload(card): Payload<String>) -> Result<String, StompError> {
    if card.starts_with("4000") {
        return Err(StompError::with_source("payment failed", Declined(card)));
    }
    Ok(format!("paid with {card}"))
}

#[message_mapping("/payment.refund")]
async fn refund() -> Result<String, StompError> {
    Err(StompError::new("refunds are closed"))
}

#[message_mapping("/echo")]
#[send_to("/topic/echo")]
async fn echo(Payload(text): Payload<String>, seen_by: Option<Header<String>>) -> String {
    match seen_by {
        Some(Header(s)) => format!("{text} (seen by {s})"),
        None => text,
    }
}

#[subscribe_mapping("/lookup.{id}")]
async fn lookup(DestinationVar(id): DestinationVar<u32>) -> String {
    format!("record {id}")
}

// ---- advice ------------------------------------------------------------------------------

#[around("/nested.**", order = 1)]
async fn outer(inv: Invocation, next: Next, State(journal): State<Journal>) -> HandlerResult {
    journal.note("outer>");
    let r = next.run(inv).await;
    journal.note("<outer");
    r
}

#[around(tag(AUDITED), order = 2)]
async fn middle_b(inv: Invocation, next: Next, State(journal): State<Journal>) -> HandlerResult {
    journal.note("middle_b>");
    let r = next.run(inv).await;
    journal.note("<middle_b");
    r
}

/// Same order as `middle_b`: the tie is broken by the path, so `middle_a` is outside.
#[around(handler("advice::nested"), order = 2)]
async fn middle_a(inv: Invocation, next: Next, State(journal): State<Journal>) -> HandlerResult {
    journal.note("middle_a>");
    let r = next.run(inv).await;
    journal.note("<middle_a");
    r
}

/// Sees everything about the call, stamps a header the handler reads, and transforms the
/// reply on the way out.
#[around(all(tag(AUDITED), not(handler("other::*"))), order = 3)]
async fn inner(mut inv: Invocation, next: Next, State(journal): State<Journal>) -> HandlerResult {
    journal.note(format!(
        "inner> handler={} dest={} item={} user={} session={} payload={} corr={}",
        inv.handler().name,
        inv.destination(),
        inv.var("item").unwrap_or("?"),
        inv.principal().map(|p| p.name()).unwrap_or("-"),
        !inv.session_id().is_empty(),
        String::from_utf8_lossy(inv.payload()),
        inv.correlation_id().to_string().len(),
    ));
    inv.headers_mut().set("stamp", "by-inner");
    let r = next.run(inv).await?;
    journal.note("<inner");
    Ok(r.map(|reply| Reply {
        body: reply.body.to_ascii_uppercase().into(),
        ..reply
    }))
}

/// Refuses calls that carry `veto`, without calling the handler.
#[around("/**", order = 0)]
async fn veto(inv: Invocation, next: Next) -> HandlerResult {
    if inv.headers().get("veto").is_some() {
        return Err(StompError::new("vetoed by policy"));
    }
    next.run(inv).await
}

#[before("/echo")]
async fn before_echo(inv: &Invocation, State(journal): State<Journal>) -> Result<(), StompError> {
    journal.note(format!("before {}", inv.destination()));
    if inv.payload().as_ref() == b"forbidden" {
        return Err(StompError::new("forbidden word"));
    }
    Ok(())
}

#[after_returning("/echo")]
async fn after_echo(inv: &Invocation, reply: Option<&Reply>, State(journal): State<Journal>) {
    let body = reply.map(|r| String::from_utf8_lossy(&r.body).into_owned());
    journal.note(format!("after {} -> {body:?}", inv.destination()));
}

#[after_error("/**")]
async fn track(inv: &Invocation, err: &StompError, State(journal): State<Journal>) {
    let kind = match err.kind() {
        ErrorKind::Application => "application",
        ErrorKind::Internal => "internal",
        ErrorKind::Extract { .. } => "extract",
        ErrorKind::Panic => "panic",
        ErrorKind::Denied => "denied",
        _ => "other",
    };
    journal.note(format!("failed {} {kind}", inv.handler().name));
}

#[message_exception_handler("/payment.**", order = 1)]
async fn declined(err: &Declined, inv: &Invocation) -> String {
    format!(
        "declined: {} (ref {})",
        err.0.chars().rev().take(4).collect::<String>(),
        inv.correlation_id()
    )
}

#[message_exception_handler(handler("advice::refund"), order = 2)]
#[send_to("/topic/refund-failures")]
async fn refund_failed(err: &StompError) -> String {
    format!("refund failed: {err}")
}

#[message_exception_handler(destination("/fails.error"), error_frame)]
async fn jammed(err: &StompError) -> String {
    format!("fatal: {err}")
}

// ---- support -----------------------------------------------------------------------------

async fn serve(
    journal: &Journal,
    f: impl FnOnce(StompServerBuilder) -> StompServerBuilder,
) -> TestServer {
    let builder = StompServer::builder()
        .without_discovery()
        .authenticator(TrustLogin)
        .state(journal.clone());
    start(f(builder).build().expect("handlers are consistent")).await
}

async fn client(server: &TestServer, login: &str) -> Client {
    Client::connect_tcp(server.tcp_addr, ConnectOptions::new().login(login))
        .await
        .expect("connect")
}

async fn next(sub: &mut Subscription) -> Message {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a message in time")
        .expect("subscription open")
}

fn text() -> Headers {
    let mut h = Headers::new();
    h.push("content-type", "text/plain");
    h
}

/// SENDs with a receipt, so that everything the call produced is queued when it returns.
async fn send(c: &Client, destination: &str, body: &str, extra: &[(&str, &str)]) {
    let mut headers = text();
    for (k, v) in extra {
        headers.push(*k, *v);
    }
    c.send_receipted(destination, body.to_owned(), headers)
        .await
        .expect("receipt");
}

fn error_text(m: &Message) -> String {
    let v: serde_json::Value = serde_json::from_slice(m.body()).expect("JSON error");
    v["error"].as_str().unwrap_or_default().to_owned()
}

// ---- tests -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_advices_nest_by_order_then_name_and_see_and_shape_the_call() {
    let journal = Journal::default();
    let server = serve(&journal, |b| {
        b.handler(nested::HANDLER)
            .advice(inner::ADVICE)
            .advice(middle_b::ADVICE)
            .advice(outer::ADVICE)
            .advice(middle_a::ADVICE)
    })
    .await;
    let ann = client(&server, "ann").await;
    let mut topic = ann.subscribe("/topic/nested", AckMode::Auto).await.unwrap();
    send(
        &ann,
        "/app/nested.bolt",
        "payload!",
        &[("stamp", "by-client")],
    )
    .await;
    let m = next(&mut topic).await;
    assert_eq!(
        m.body(),
        "BOLT STAMPED BY-INNER",
        "the reply was transformed"
    );
    let lines = journal.lines();
    assert_eq!(
        lines
            .iter()
            .map(|l| l.split(' ').next().unwrap())
            .collect::<Vec<_>>(),
        [
            "outer>",
            "middle_a>",
            "middle_b>",
            "inner>",
            "handler",
            "<inner",
            "<middle_b",
            "<middle_a",
            "<outer"
        ],
        "{lines:?}"
    );
    assert_eq!(
        lines[3],
        "inner> handler=advice::nested dest=/app/nested.bolt item=bolt user=ann session=true payload=payload! corr=16"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_around_advice_refuses_without_calling_the_handler() {
    let journal = Journal::default();
    let server = serve(&journal, |b| {
        b.handler(echo::HANDLER)
            .advice(veto::ADVICE)
            .advice(track::ADVICE)
    })
    .await;
    let c = client(&server, "bob").await;
    let mut errors = c
        .subscribe("/user/queue/errors", AckMode::Auto)
        .await
        .unwrap();
    let mut topic = c.subscribe("/topic/echo", AckMode::Auto).await.unwrap();
    send(&c, "/app/echo", "hello", &[("veto", "yes")]).await;
    assert_eq!(error_text(&next(&mut errors).await), "vetoed by policy");
    assert_eq!(journal.lines(), ["failed advice::echo application"]);
    // The same session goes on; without the header the handler runs.
    send(&c, "/app/echo", "hello", &[]).await;
    assert_eq!(next(&mut topic).await.text().unwrap().to_owned(), "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_and_after_returning_see_the_call_and_before_can_refuse() {
    let journal = Journal::default();
    let server = serve(&journal, |b| {
        b.handler(echo::HANDLER)
            .advice(before_echo::ADVICE)
            .advice(after_echo::ADVICE)
    })
    .await;
    let c = client(&server, "cy").await;
    let mut errors = c
        .subscribe("/user/queue/errors", AckMode::Auto)
        .await
        .unwrap();
    let mut topic = c.subscribe("/topic/echo", AckMode::Auto).await.unwrap();
    send(&c, "/app/echo", "hi", &[]).await;
    assert_eq!(next(&mut topic).await.text().unwrap().to_owned(), "hi");
    send(&c, "/app/echo", "forbidden", &[]).await;
    assert_eq!(error_text(&next(&mut errors).await), "forbidden word");
    assert_eq!(
        journal.lines(),
        [
            "before /app/echo",
            "after /app/echo -> Some(\"hi\")",
            "before /app/echo"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_error_runs_once_per_failure_of_every_kind_and_never_on_success() {
    let journal = Journal::default();
    let server = serve(&journal, |b| {
        b.handler(fails_with_error::HANDLER)
            .handler(fails_to_extract::HANDLER)
            .handler(fails_with_panic::HANDLER)
            .handler(fails_internally::HANDLER)
            .handler(echo::HANDLER)
            .advice(veto::ADVICE)
            .advice(track::ADVICE)
    })
    .await;
    let c = client(&server, "dee").await;
    let mut errors = c
        .subscribe("/user/queue/errors", AckMode::Auto)
        .await
        .unwrap();
    let mut topic = c.subscribe("/topic/echo", AckMode::Auto).await.unwrap();

    send(&c, "/app/echo", "fine", &[]).await;
    assert_eq!(next(&mut topic).await.text().unwrap().to_owned(), "fine");
    assert_eq!(journal.count("failed"), 0, "no after_error on success");

    send(&c, "/app/fails.error", "", &[]).await;
    assert_eq!(error_text(&next(&mut errors).await), "the gate is jammed");
    send(&c, "/app/fails.extract", "", &[("count", "many")]).await;
    let e = error_text(&next(&mut errors).await);
    assert!(e.starts_with("argument `_count`: header `count`"), "{e}");
    send(&c, "/app/fails.panic", "", &[]).await;
    let e = error_text(&next(&mut errors).await);
    assert!(e.starts_with("internal error (ref "), "{e}");
    assert!(
        !e.contains("lost its mind"),
        "panic text stays in the log: {e}"
    );
    send(&c, "/app/fails.internal", "", &[]).await;
    let e = error_text(&next(&mut errors).await);
    assert!(e.starts_with("internal error (ref "), "{e}");
    assert!(
        !e.contains("db-password") && !e.contains("No such file"),
        "{e}"
    );
    send(&c, "/app/echo", "x", &[("veto", "1")]).await;
    assert_eq!(error_text(&next(&mut errors).await), "vetoed by policy");

    let failed: Vec<String> = journal
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("failed"))
        .collect();
    assert_eq!(
        failed,
        [
            "failed advice::fails_with_error application",
            "failed advice::fails_to_extract extract",
            "failed advice::fails_with_panic panic",
            "failed advice::fails_internally internal",
            "failed advice::echo application",
        ]
    );
    // After all that the session still works.
    send(&c, "/app/echo", "still here", &[]).await;
    assert_eq!(
        next(&mut topic).await.text().unwrap().to_owned(),
        "still here"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exception_handlers_answer_by_pointcut_and_error_type() {
    let journal = Journal::default();
    let server = serve(&journal, |b| {
        b.handler(pay::HANDLER)
            .handler(refund::HANDLER)
            .handler(fails_with_error::HANDLER)
            .handler(echo::HANDLER)
            .advice(track::ADVICE)
            .advice(before_echo::ADVICE)
            .exception_handler(declined::EXCEPTION_HANDLER)
            .exception_handler(refund_failed::EXCEPTION_HANDLER)
            .exception_handler(jammed::EXCEPTION_HANDLER)
    })
    .await;
    let c = client(&server, "eve").await;
    let mut errors = c
        .subscribe("/user/queue/errors", AckMode::Auto)
        .await
        .unwrap();
    let mut refunds = c
        .subscribe("/topic/refund-failures", AckMode::Auto)
        .await
        .unwrap();

    // Typed: the Declined source is matched; the reply goes to the error destination.
    send(&c, "/app/payment.pay", "4000123498761234", &[]).await;
    let m = next(&mut errors).await;
    let body = m.text().unwrap();
    assert!(body.starts_with("declined: 4321 (ref "), "{body}");
    // The after_error advice still ran exactly once.
    assert_eq!(journal.lines(), ["failed advice::pay application"]);

    // `refund` fails with a plain StompError: not a Declined, so `declined` passes and the
    // handler-path exception handler broadcasts it.
    send(&c, "/app/payment.refund", "", &[]).await;
    assert_eq!(
        next(&mut refunds).await.text().unwrap().to_owned(),
        "refund failed: refunds are closed"
    );

    // An error no exception handler selects gets the default reply.
    send(&c, "/app/echo", "forbidden", &[]).await;
    assert_eq!(error_text(&next(&mut errors).await), "forbidden word");

    // `error_frame`: the reply becomes an ERROR frame and the connection closes.
    let frame = Frame::new(Command::Send)
        .header("destination", "/app/fails.error")
        .header("content-type", "text/plain");
    let err = c.request(frame).await.expect_err("ERROR frame");
    let ClientError::Server { body, .. } = err else {
        panic!("expected an ERROR frame, got {err}");
    };
    assert_eq!(String::from_utf8_lossy(&body), "fatal: the gate is jammed");
    assert!(c.closed().await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_leaves_its_session_and_the_server_serving() {
    let journal = Journal::default();
    let server = serve(&journal, |b| {
        b.handler(fails_with_panic::HANDLER)
            .handler(echo::HANDLER)
            .handler(lookup::HANDLER)
    })
    .await;
    let a = client(&server, "fay").await;
    let b = client(&server, "gus").await;
    let mut errors = a
        .subscribe("/user/queue/errors", AckMode::Auto)
        .await
        .unwrap();
    let mut topic_b = b.subscribe("/topic/echo", AckMode::Auto).await.unwrap();
    for _ in 0..3 {
        send(&a, "/app/fails.panic", "", &[]).await;
        let e = error_text(&next(&mut errors).await);
        assert!(e.starts_with("internal error (ref "), "{e}");
    }
    assert_eq!(journal.count("handler"), 3);
    // The panicking session still sends, subscribes and gets answers.
    send(&a, "/app/echo", "after the storm", &[]).await;
    assert_eq!(
        next(&mut topic_b).await.text().unwrap().to_owned(),
        "after the storm"
    );
    let mut record = a.subscribe("/app/lookup.7", AckMode::Auto).await.unwrap();
    assert_eq!(
        next(&mut record).await.text().unwrap().to_owned(),
        "record 7"
    );
    // And another session never noticed.
    send(&b, "/app/echo", "hello", &[]).await;
    assert_eq!(next(&mut topic_b).await.text().unwrap().to_owned(), "hello");
}

/// Sets the principal from a `device` header at CONNECT, stamps SENDs, refuses some frames
/// by policy, and filters what a `viewer` receives.
struct DeviceGate;

#[stomp_runtime::async_trait]
impl ChannelInterceptor for DeviceGate {
    async fn pre_receive(
        &self,
        frame: &mut Frame,
        ctx: &mut InboundContext<'_>,
    ) -> Result<(), Refusal> {
        match frame.command {
            Command::Connect | Command::Stomp => {
                assert!(!ctx.is_connected());
                assert_eq!(ctx.connection().transport, "tcp");
                assert!(ctx.connection().remote_addr.is_some());
                match frame.get("device") {
                    Some("blocked") => return Err(Refusal::error("device blocked")),
                    Some(d) => {
                        let p = Principal::new(d.to_owned()).with_authorities(["ROLE_device"]);
                        ctx.set_principal(Some(p));
                    }
                    None => {}
                }
            }
            Command::Send => {
                let who = ctx
                    .principal()
                    .map(|p| p.name().to_owned())
                    .unwrap_or_default();
                frame.headers.set("seen-by", who);
            }
            Command::Subscribe if frame.get("destination") == Some("/topic/private") => {
                return Err(Refusal::reply("not for you"));
            }
            Command::Subscribe if frame.get("destination") == Some("/topic/forbidden") => {
                return Err(Refusal::error("forbidden topic").details("Ask an operator."));
            }
            _ => {}
        }
        Ok(())
    }

    fn intercepts_outbound(&self) -> bool {
        true
    }

    fn pre_deliver(&self, message: &BrokerMessage, ctx: &OutboundContext<'_>) -> Deliver {
        if ctx.principal().map(|p| p.name()) != Some("viewer") {
            return Deliver::Pass;
        }
        if message.body.as_ref().starts_with(b"secret") {
            return Deliver::Drop;
        }
        let body = format!(
            "[{}] {}",
            ctx.subscription(),
            String::from_utf8_lossy(&message.body)
        );
        Deliver::Replace(BrokerMessage::new(
            message.destination.clone(),
            message.content_type.clone(),
            message.headers.clone(),
            Bytes::from(body),
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_interceptors_authenticate_stamp_refuse_and_filter() {
    let journal = Journal::default();
    let server = serve(&journal, |b| {
        b.handler(echo::HANDLER).channel_interceptor(DeviceGate)
    })
    .await;
    let opts = |device: &str| ConnectOptions::new().header("device", device);
    let gate = Client::connect_tcp(server.tcp_addr, opts("gate-7"))
        .await
        .unwrap();
    assert_eq!(gate.connected_headers().get("user-name"), Some("gate-7"));
    let viewer = Client::connect_tcp(server.tcp_addr, opts("viewer"))
        .await
        .unwrap();
    let mut seen = gate.subscribe("/topic/echo", AckMode::Auto).await.unwrap();
    let mut filtered = viewer
        .subscribe("/topic/echo", AckMode::Auto)
        .await
        .unwrap();

    // The handler reads the header the interceptor set.
    send(&gate, "/app/echo", "open", &[]).await;
    assert_eq!(
        next(&mut seen).await.text().unwrap().to_owned(),
        "open (seen by gate-7)"
    );
    let expected = format!("[{}] open (seen by gate-7)", filtered.id());
    assert_eq!(next(&mut filtered).await.text().unwrap(), expected);
    // Dropped for the viewer only.
    send(&gate, "/app/echo", "secret code", &[]).await;
    send(&gate, "/app/echo", "public", &[]).await;
    assert_eq!(
        next(&mut seen).await.text().unwrap().to_owned(),
        "secret code (seen by gate-7)"
    );
    assert_eq!(
        next(&mut seen).await.text().unwrap().to_owned(),
        "public (seen by gate-7)"
    );
    assert!(
        next(&mut filtered)
            .await
            .text()
            .unwrap()
            .to_owned()
            .ends_with("public (seen by gate-7)")
    );

    // A per-frame refusal: an error message, and the session goes on.
    let mut errors = gate
        .subscribe("/user/queue/errors", AckMode::Auto)
        .await
        .unwrap();
    let _private = gate.subscribe("/topic/private", AckMode::Auto).await;
    assert_eq!(error_text(&next(&mut errors).await), "not for you");
    send(&gate, "/app/echo", "still open", &[]).await;
    assert_eq!(
        next(&mut seen).await.text().unwrap().to_owned(),
        "still open (seen by gate-7)"
    );
    assert!(
        next(&mut filtered)
            .await
            .text()
            .unwrap()
            .to_owned()
            .ends_with("still open (seen by gate-7)")
    );

    // A closing refusal: ERROR with the reason, then the connection ends.
    let frame = Frame::new(Command::Subscribe)
        .header("destination", "/topic/forbidden")
        .header("id", "f1");
    let err = gate.request(frame).await.expect_err("refused");
    let ClientError::Server { message, body, .. } = err else {
        panic!("expected an ERROR frame, got {err}");
    };
    assert_eq!(message, "forbidden topic");
    assert_eq!(String::from_utf8_lossy(&body), "Ask an operator.");
    assert!(gate.closed().await.is_some());

    // Refused at CONNECT: no CONNECTED at all.
    let refused = Client::connect_tcp(server.tcp_addr, opts("blocked")).await;
    let Err(ClientError::Server { message, .. }) = refused else {
        panic!("expected the CONNECT to be refused");
    };
    assert_eq!(message, "device blocked");
    // The viewer was never disturbed.
    send(&viewer, "/app/echo", "bye", &[]).await;
    assert!(
        next(&mut filtered)
            .await
            .text()
            .unwrap()
            .to_owned()
            .ends_with("bye (seen by viewer)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_fires_exactly_once_whatever_ends_the_session() {
    let journal = Journal::default();
    let events: Arc<Mutex<Vec<SessionEvent>>> = Arc::default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<SessionEvent>();
    let sink = events.clone();
    let server = serve(&journal, |b| {
        b.handler(fails_with_panic::HANDLER)
            .handler(echo::HANDLER)
            .error_policy(ErrorPolicy::ErrorFrame)
            .heartbeat(0, 100)
            .on_session_event(move |e, _| {
                sink.lock().push(e.clone());
                let _ = tx.send(e);
                async {}
            })
    })
    .await;
    let mut ended = Vec::new();

    // DISCONNECT.
    let c = client(&server, "a").await;
    let id = c.session().unwrap().to_owned();
    c.disconnect().await.unwrap();
    assert_eq!(&*disconnected(&mut rx).await, id);
    ended.push(id);

    // A protocol error (ERROR frame).
    let c = client(&server, "b").await;
    let id = c.session().unwrap().to_owned();
    let _ = c.request(Frame::new(Command::Ack)).await;
    assert_eq!(&*disconnected(&mut rx).await, id);
    ended.push(id);

    // A panicking handler under the ERROR-frame policy.
    let c = client(&server, "c").await;
    let id = c.session().unwrap().to_owned();
    let frame = Frame::new(Command::Send).header("destination", "/app/fails.panic");
    let err = c.request(frame).await.expect_err("ERROR");
    assert!(err.to_string().contains("handler failed"), "{err}");
    assert_eq!(&*disconnected(&mut rx).await, id);
    ended.push(id);

    // A socket dropped without DISCONNECT.
    let c = client(&server, "d").await;
    let id = c.session().unwrap().to_owned();
    drop(c);
    assert_eq!(&*disconnected(&mut rx).await, id);
    ended.push(id);

    // Heart-beats promised and never sent.
    let opts = ConnectOptions::new()
        .login("e")
        .heartbeat(50, 0)
        .send_heartbeats(false);
    let c = Client::connect_tcp(server.tcp_addr, opts).await.unwrap();
    let id = c.session().unwrap().to_owned();
    assert_eq!(&*disconnected(&mut rx).await, id);
    ended.push(id);
    drop(c);

    // A last session, so that anything the earlier ends still had to say has been said.
    let c = client(&server, "z").await;
    let id = c.session().unwrap().to_owned();
    c.disconnect().await.unwrap();
    assert_eq!(&*disconnected(&mut rx).await, id);
    ended.push(id);

    let mut count: HashMap<String, (usize, usize)> = HashMap::new();
    for e in events.lock().iter() {
        let entry = count.entry(e.session().to_owned()).or_default();
        match e {
            SessionEvent::Connected { .. } => entry.0 += 1,
            SessionEvent::Disconnected { .. } => entry.1 += 1,
            _ => {}
        }
    }
    for id in &ended {
        assert_eq!(count.get(id), Some(&(1, 1)), "session {id}");
    }
    assert_eq!(count.len(), ended.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_advice_does_not_hold_other_sessions() {
    // Advice runs on the calling session's task: a session stuck in a slow call does not
    // delay another session's calls.
    let journal = Journal::default();
    let server = serve(&journal, |b| b.handler(echo::HANDLER).advice(slow::ADVICE)).await;
    let a = client(&server, "slow").await;
    let b = client(&server, "fast").await;
    let mut topic = b.subscribe("/topic/echo", AckMode::Auto).await.unwrap();
    let stuck = a.send_with("/app/echo", "stuck".to_owned(), {
        let mut h = text();
        h.push("hold", "1");
        h
    });
    stuck.await.unwrap();
    send(&b, "/app/echo", "quick", &[]).await;
    assert_eq!(next(&mut topic).await.text().unwrap().to_owned(), "quick");
    SLOW_RELEASE.notify_one();
    assert_eq!(next(&mut topic).await.text().unwrap().to_owned(), "stuck");
}

static SLOW_RELEASE: tokio::sync::Notify = tokio::sync::Notify::const_new();

#[around("/echo")]
async fn slow(inv: Invocation, next: Next) -> HandlerResult {
    if inv.headers().get("hold").is_some() {
        tokio::time::timeout(Duration::from_secs(30), SLOW_RELEASE.notified())
            .await
            .map_err(|_| StompError::new("never released"))?;
    }
    next.run(inv).await
}

async fn disconnected(rx: &mut tokio::sync::mpsc::UnboundedReceiver<SessionEvent>) -> Arc<str> {
    loop {
        let e = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("event in time")
            .expect("listener alive");
        if let SessionEvent::Disconnected { session, .. } = e {
            return session;
        }
    }
}
