//! The SockJS protocol (0.3.3) per transport, against `examples/sockjs-echo` on an
//! ephemeral port: `/echo`, `/close`, `/disabled_websocket_echo`, `/cookie_needed_echo`,
//! with the 4,096-byte streaming limit the protocol's own suite expects.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use sockjs_echo::Options;
use stomp_runtime::StompServer;
use stomp_runtime::transport::sockjs::{SockJs, SockJsConfig};
use stomp_tests::http::{Response, get, post, request};
use stomp_tests::{TestServer, WAIT, start_app};
use tokio_tungstenite::tungstenite::Message;

const NO_CACHE: &str = "no-store, no-cache, must-revalidate, max-age=0";

async fn echo_with(options: Options) -> TestServer {
    let stomp = StompServer::builder().build().expect("default config");
    start_app(stomp, sockjs_echo::app(&options)).await
}

async fn echo() -> TestServer {
    echo_with(Options::default()).await
}

/// A session URL nobody else uses: `/{base}/000/{unique}`.
fn session(base: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("/{base}/000/s{}-{n}", std::process::id())
}

/// Sends `body` over `xhr_send` to the session at `id`, which takes it (204).
async fn xhr_send(a: std::net::SocketAddr, id: &str, body: impl Into<bytes::Bytes>) {
    let r = post(a, &format!("{id}/xhr_send"), body).await;
    let status = r.status;
    assert_eq!(status, 204, "{}", r.text().await);
}

/// Opens a new session of `base` with `POST .../xhr` carrying `headers`.
async fn open_with(a: std::net::SocketAddr, base: &str, headers: &[(&str, &str)]) -> Response {
    request(a, "POST", &format!("{}/xhr", session(base)), headers, "").await
}

fn content_type(r: &Response) -> String {
    r.header("content-type")
        .unwrap_or_default()
        .replace(' ', "")
}

fn assert_cors(r: &Response, origin: Option<&str>) {
    let want = origin.filter(|o| *o != "null").unwrap_or("*");
    assert_eq!(r.header("access-control-allow-origin"), Some(want));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
}

fn assert_not_cached(r: &Response) {
    assert_eq!(r.header("cache-control"), Some(NO_CACHE));
    assert!(r.header("expires").is_none() && r.header("last-modified").is_none());
}

async fn assert_preflight(server: &TestServer, path: &str, methods: &str) {
    for origin in [None, Some("test"), Some("null")] {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        let r = request(server.http_addr, "OPTIONS", path, &headers, "").await;
        assert_eq!(r.status, 204, "{path}");
        assert_eq!(r.header("cache-control"), Some("public, max-age=31536000"));
        assert!(r.header("expires").is_some());
        assert_eq!(r.header("access-control-max-age"), Some("31536000"));
        assert_eq!(r.header("access-control-allow-methods"), Some(methods));
        assert_cors(&r, origin);
        assert_eq!(r.text().await, "");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greeting_info_iframe_and_unknown_urls() {
    let s = echo().await;
    let a = s.http_addr;
    for path in ["/echo", "/echo/"] {
        let r = get(a, path).await;
        assert_eq!(r.status, 200);
        assert_eq!(content_type(&r), "text/plain;charset=UTF-8");
        assert!(r.header("set-cookie").is_none());
        assert_eq!(r.text().await, "Welcome to SockJS!\n");
    }
    for path in ["/a", "/a.html", "//", "///", "/a/a", "/a/a/", "/a/"] {
        assert_eq!(get(a, &format!("/echo{path}")).await.status, 404, "{path}");
    }

    let r = get(a, "/echo/info").await;
    assert_eq!(r.status, 200);
    assert_eq!(content_type(&r), "application/json;charset=UTF-8");
    assert_not_cached(&r);
    assert_cors(&r, None);
    assert!(r.header("set-cookie").is_none());
    let info: Value = serde_json::from_str(&r.text().await).expect("JSON");
    assert_eq!(info["websocket"], true);
    assert_eq!(info["cookie_needed"], false);
    assert_eq!(info["origins"], serde_json::json!(["*:*"]));
    let entropy = info["entropy"].as_u64().expect("an integer");
    let again: Value = serde_json::from_str(&get(a, "/echo/info").await.text().await).unwrap();
    assert_ne!(again["entropy"].as_u64(), Some(entropy), "entropy changes");
    assert_preflight(&s, "/echo/info", "OPTIONS, GET").await;
    let off: Value =
        serde_json::from_str(&get(a, "/disabled_websocket_echo/info").await.text().await).unwrap();
    assert_eq!(off["websocket"], false);

    let mut etag = None;
    for page in [
        "/iframe.html",
        "/iframe-a.html",
        "/iframe-.html",
        "/iframe-0.1.2.html",
        "/iframe-0.1.2abc-dirty.2144.html",
        "/iframe-a.html?t=1234",
    ] {
        let r = get(a, &format!("/echo{page}")).await;
        assert_eq!(r.status, 200, "{page}");
        assert_eq!(content_type(&r), "text/html;charset=UTF-8");
        assert_eq!(r.header("cache-control"), Some("public, max-age=31536000"));
        assert!(r.header("expires").is_some() && r.header("last-modified").is_none());
        assert!(r.header("set-cookie").is_none());
        let tag = r.header("etag").expect("an ETag").to_owned();
        assert!(
            etag.get_or_insert(tag.clone()) == &tag,
            "one ETag for every variant"
        );
        let body = r.text().await;
        assert!(
            body.starts_with("<!DOCTYPE html>\n<html>\n<head>\n"),
            "{body}"
        );
        assert!(body.contains("SockJS.bootstrap_iframe();"), "{body}");
        assert!(body.contains("<script src=\"https://"), "{body}");
    }
    let r = request(
        a,
        "GET",
        "/echo/iframe.html",
        &[("if-none-match", etag.as_deref().unwrap())],
        "",
    )
    .await;
    assert_eq!(r.status, 304);
    assert!(r.header("content-type").is_none());
    assert_eq!(r.text().await, "");
    for page in [
        "/iframe.htm",
        "/iframe",
        "/IFRAME.HTML",
        "/iframe.HTML",
        "/iframe.xml",
        "/iframe-/.html",
    ] {
        assert_eq!(get(a, &format!("/echo{page}")).await.status, 404, "{page}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_urls() {
    let s = echo().await;
    let a = s.http_addr;
    for part in ["/a/a", "/_/_", "/1/1", "/abcdefgh_i-j%20/abcdefg_i-j%20"] {
        let r = post(a, &format!("/echo{part}/xhr"), "").await;
        assert_eq!(r.status, 200, "{part}");
        assert_eq!(r.text().await, "o\n");
    }
    for part in ["//", "/a./a", "/a/a.", "/./.", "/", "///"] {
        assert_eq!(
            get(a, &format!("/echo{part}/xhr")).await.status,
            404,
            "{part}"
        );
        assert_eq!(
            post(a, &format!("/echo{part}/xhr"), "").await.status,
            404,
            "{part}"
        );
    }
    let long = "x".repeat(200);
    assert_eq!(
        post(a, &format!("/echo/0/{long}/xhr"), "").await.status,
        404
    );
    assert_eq!(post(a, "/echo/0/0/nosuchtransport", "").await.status, 404);
    // The server id is for load balancers; the session is the session id alone.
    let id = session("echo");
    let other_server = id.replacen("/000/", "/999/", 1);
    assert_eq!(post(a, &format!("{id}/xhr"), "").await.text().await, "o\n");
    let r = post(a, &format!("{id}/xhr_send"), r#"["a"]"#).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        post(a, &format!("{other_server}/xhr"), "")
            .await
            .text()
            .await,
        "a[\"a\"]\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xhr_polling() {
    let s = echo().await;
    let a = s.http_addr;
    assert_preflight(&s, "/echo/abc/abc/xhr", "OPTIONS, POST").await;
    assert_preflight(&s, "/echo/abc/abc/xhr_send", "OPTIONS, POST").await;

    let id = session("echo");
    let r = post(a, &format!("{id}/xhr"), "").await;
    assert_eq!(r.status, 200);
    assert_eq!(content_type(&r), "application/javascript;charset=UTF-8");
    assert_cors(&r, None);
    assert_not_cached(&r);
    assert_eq!(r.text().await, "o\n");

    let r = post(a, &format!("{id}/xhr_send"), r#"["x"]"#).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    assert_cors(&r, None);
    assert_not_cached(&r);
    assert_eq!(r.text().await, "");
    assert_eq!(
        post(a, &format!("{id}/xhr"), "").await.text().await,
        "a[\"x\"]\n"
    );

    // Bad input gets the protocol's answers, and the session goes on.
    let r = post(a, &format!("{id}/xhr_send"), r#"["x"#).await;
    assert_eq!(r.status, 500);
    assert!(r.text().await.contains("Broken JSON encoding."));
    let r = post(a, &format!("{id}/xhr_send"), "").await;
    assert_eq!(r.status, 500);
    assert!(r.text().await.contains("Payload expected."));
    for body in ["[1]", "{}", "\"single\""] {
        let r = post(a, &format!("{id}/xhr_send"), body).await;
        assert_eq!(r.status, 500, "{body}");
    }
    let types = [
        "text/plain",
        "T",
        "application/json",
        "application/xml",
        "",
        "text/xml; charset=utf-8",
    ];
    for ct in types {
        let r = request(
            a,
            "POST",
            &format!("{id}/xhr_send"),
            &[("content-type", ct)],
            r#"["a"]"#,
        )
        .await;
        assert_eq!(r.status, 204, "{ct}");
    }
    let want = format!("a[{}]\n", vec!["\"a\""; types.len()].join(","));
    assert_eq!(post(a, &format!("{id}/xhr"), "").await.text().await, want);

    // Sending to a session that does not exist.
    assert_eq!(
        post(a, &format!("{}/xhr_send", session("echo")), r#"["x"]"#)
            .await
            .status,
        404
    );

    // Requested headers are echoed for CORS.
    let r = open_with(a, "echo", &[("access-control-request-headers", "a, b, c")]).await;
    assert_eq!(r.header("access-control-allow-headers"), Some("a, b, c"));
    let r = open_with(a, "echo", &[("origin", "http://example.test")]).await;
    assert_cors(&r, Some("http://example.test"));
    assert!(r.header("access-control-allow-headers").is_none());

    // One receiving request at a time.
    let mut waiting = post(a, &format!("{id}/xhr"), "").await;
    let r = post(a, &format!("{id}/xhr"), "").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text().await,
        "c[2010,\"Another connection still open\"]\n"
    );
    // The waiting poll still gets the next message.
    xhr_send(a, &id, r#"["late"]"#).await;
    waiting.expect("a[\"late\"]\n").await;
    waiting.expect_end().await;

    // Cutting a waiting poll interrupts the session.
    let cut = post(a, &format!("{id}/xhr"), "").await;
    drop(cut);
    let mut seen = String::new();
    for _ in 0..100 {
        seen = post(a, &format!("{id}/xhr"), "").await.text().await;
        if seen != "c[2010,\"Another connection still open\"]\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, "c[1002,\"Connection interrupted\"]\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_session_answers_go_away_until_forgotten() {
    let s = echo_with(Options {
        disconnect_delay: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    let a = s.http_addr;
    let id = session("close");
    assert_eq!(post(a, &format!("{id}/xhr"), "").await.text().await, "o\n");
    for _ in 0..2 {
        let r = post(a, &format!("{id}/xhr"), "").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text().await, "c[3000,\"Go away!\"]\n");
    }
    let r = get(a, &format!("{}/jsonp?c=x", session("close"))).await;
    assert_eq!(r.text().await, "x(\"o\");\r\n");
    // Once the client has been gone for the disconnect delay, the id opens a new session.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let body = post(a, &format!("{id}/xhr"), "").await.text().await;
        if body == "o\n" {
            break;
        }
        assert_eq!(body, "c[3000,\"Go away!\"]\n");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed session was never forgotten"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xhr_streaming() {
    let s = echo().await;
    let a = s.http_addr;
    assert_preflight(&s, "/echo/abc/abc/xhr_streaming", "OPTIONS, POST").await;
    let id = session("echo");
    let mut r = post(a, &format!("{id}/xhr_streaming"), "").await;
    assert_eq!(r.status, 200);
    assert_eq!(content_type(&r), "application/javascript;charset=UTF-8");
    assert_cors(&r, None);
    assert_not_cached(&r);
    r.expect(&format!("{}\n", "h".repeat(2048))).await;
    r.expect("o\n").await;
    xhr_send(a, &id, r#"["x"]"#).await;
    r.expect("a[\"x\"]\n").await;

    // A second receiver is refused and ended; the first goes on.
    let mut second = post(a, &format!("{id}/xhr_streaming"), "").await;
    second.take(2049).await;
    second
        .expect("c[2010,\"Another connection still open\"]\n")
        .await;
    second.expect_end().await;

    // 4,096 bytes of frames end the response; the client opens another on the session.
    let msg = format!("\"{}\"", "x".repeat(128));
    for i in 0..31 {
        xhr_send(a, &id, format!("[{msg}]")).await;
        r.expect(&format!("a[{msg}]\n")).await;
        let _ = i;
    }
    r.expect_end().await;
    let mut next = post(a, &format!("{id}/xhr_streaming"), "").await;
    next.take(2049).await;
    xhr_send(a, &id, r#"["again"]"#).await;
    next.expect("a[\"again\"]\n").await;

    // Cutting the streaming request interrupts the session.
    drop(next);
    let mut seen = String::new();
    for _ in 0..100 {
        let mut r3 = post(a, &format!("{id}/xhr_streaming"), "").await;
        r3.take(2049).await;
        seen = r3.until("\n").await;
        if !seen.starts_with("c[2010") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, "c[1002,\"Connection interrupted\"]\n");

    // A session closed by the server sends its close frame and ends every request.
    let id = session("close");
    let mut r1 = post(a, &format!("{id}/xhr_streaming"), "").await;
    r1.take(2049).await;
    r1.expect("o\n").await;
    r1.expect("c[3000,\"Go away!\"]\n").await;
    r1.expect_end().await;
    let mut r2 = post(a, &format!("{id}/xhr_streaming"), "").await;
    r2.take(2049).await;
    r2.expect("c[3000,\"Go away!\"]\n").await;
    r2.expect_end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventsource() {
    let s = echo().await;
    let a = s.http_addr;
    let id = session("echo");
    let mut r = get(a, &format!("{id}/eventsource")).await;
    assert_eq!(r.status, 200);
    assert_eq!(content_type(&r), "text/event-stream;charset=UTF-8");
    assert_not_cached(&r);
    r.expect("\r\n").await;
    r.expect("data: o\r\n\r\n").await;
    xhr_send(a, &id, r#"["x"]"#).await;
    r.expect("data: a[\"x\"]\r\n\r\n").await;
    xhr_send(a, &id, r#"["  \u0000\n\r "]"#).await;
    r.expect("data: a[\"  \\u0000\\n\\r \"]\r\n\r\n").await;
    let msg = format!("\"{}\"", "x".repeat(4096));
    xhr_send(a, &id, format!("[{msg}]")).await;
    r.expect(&format!("data: a[{msg}]\r\n\r\n")).await;
    r.expect_end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htmlfile() {
    let s = echo().await;
    let a = s.http_addr;
    let id = session("echo");
    let mut r = get(a, &format!("{id}/htmlfile?c=%63allback")).await;
    assert_eq!(r.status, 200);
    assert_eq!(content_type(&r), "text/html;charset=UTF-8");
    assert_not_cached(&r);
    let head = r.until("\r\n\r\n").await;
    assert!(head.len() > 1024, "{} bytes", head.len());
    assert!(
        head.starts_with("<!doctype html>\n<html><head>\n"),
        "{head}"
    );
    assert!(head.trim_end().ends_with("c.start();\n    function p(d) {c.message(d);};\n    window.onload = function() {c.stop();};\n  </script>"), "{head}");
    assert!(head.contains("var c = parent.callback;"), "{head}");
    r.expect("<script>\np(\"o\");\n</script>\r\n").await;
    xhr_send(a, &id, r#"["x"]"#).await;
    r.expect("<script>\np(\"a[\\\"x\\\"]\");\n</script>\r\n")
        .await;
    let msg = "x".repeat(4096);
    xhr_send(a, &id, format!("[\"{msg}\"]")).await;
    r.expect(&format!(
        "<script>\np(\"a[\\\"{msg}\\\"]\");\n</script>\r\n"
    ))
    .await;
    r.expect_end().await;

    let r = get(a, "/echo/a/a/htmlfile").await;
    assert_eq!(r.status, 500);
    assert!(r.text().await.contains("\"callback\" parameter required"));
    let long = "c".repeat(300);
    for query in ["c=alert(1)%3B", &format!("c={long}")] {
        let r = get(a, &format!("/echo/a/a/htmlfile?{query}")).await;
        assert_eq!(r.status, 500);
        assert!(r.text().await.contains("invalid \"callback\" parameter"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonp_polling() {
    let s = echo().await;
    let a = s.http_addr;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let id = session("echo");
    let r = get(a, &format!("{id}/jsonp?c=%63allback")).await;
    assert_eq!(r.status, 200);
    assert_eq!(content_type(&r), "application/javascript;charset=UTF-8");
    assert_not_cached(&r);
    assert_eq!(r.text().await, "callback(\"o\");\r\n");
    let r = request(
        a,
        "POST",
        &format!("{id}/jsonp_send"),
        &form,
        "d=%5B%22x%22%5D",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(content_type(&r), "text/plain;charset=UTF-8");
    assert_not_cached(&r);
    assert_eq!(r.text().await, "ok");
    assert_eq!(
        get(a, &format!("{id}/jsonp?c=%63allback"))
            .await
            .text()
            .await,
        "callback(\"a[\\\"x\\\"]\");\r\n"
    );

    let r = request(a, "POST", &format!("{id}/jsonp_send"), &form, "d=%5B%22x").await;
    assert_eq!(r.status, 500);
    assert!(r.text().await.contains("Broken JSON encoding."));
    for body in ["", "d=", "p=p"] {
        let r = request(a, "POST", &format!("{id}/jsonp_send"), &form, body).await;
        assert_eq!(r.status, 500, "{body}");
        assert!(r.text().await.contains("Payload expected."));
    }
    let r = request(
        a,
        "POST",
        &format!("{id}/jsonp_send"),
        &form,
        "d=%5B%22abc%22%5D",
    )
    .await;
    assert_eq!(r.text().await, "ok");
    let r = request(
        a,
        "POST",
        &format!("{id}/jsonp_send"),
        &[("content-type", "text/plain")],
        r#"["%61bc"]"#,
    )
    .await;
    assert_eq!(r.text().await, "ok");
    assert_eq!(
        get(a, &format!("{id}/jsonp?c=x")).await.text().await,
        "x(\"a[\\\"abc\\\",\\\"%61bc\\\"]\");\r\n"
    );

    let r = get(a, "/echo/a/a/jsonp").await;
    assert_eq!(r.status, 500);
    assert!(r.text().await.contains("\"callback\" parameter required"));

    let id = session("close");
    assert_eq!(
        get(a, &format!("{id}/jsonp?c=x")).await.text().await,
        "x(\"o\");\r\n"
    );
    for _ in 0..2 {
        assert_eq!(
            get(a, &format!("{id}/jsonp?c=x")).await.text().await,
            "x(\"c[3000,\\\"Go away!\\\"]\");\r\n"
        );
    }
}

async fn ws_connect(
    url: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket upgrade")
        .0
}

async fn ws_text<S>(ws: &mut S) -> Option<String>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
        {
            Some(Ok(Message::Text(t))) => return Some(t.to_string()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            _ => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket() {
    let s = echo().await;
    let a = s.http_addr;
    let url = format!("ws://{a}{}/websocket", session("echo"));
    let mut ws = ws_connect(&url).await;
    assert_eq!(ws_text(&mut ws).await.as_deref(), Some("o"));
    ws.send(Message::text("")).await.unwrap();
    ws.send(Message::text(r#"["a"]"#)).await.unwrap();
    assert_eq!(ws_text(&mut ws).await.as_deref(), Some(r#"a["a"]"#));
    ws.send(Message::text(r#""single""#)).await.unwrap();
    assert_eq!(ws_text(&mut ws).await.as_deref(), Some(r#"a["single"]"#));

    // The same id may serve two WebSocket sessions at once.
    let mut ws2 = ws_connect(&url).await;
    assert_eq!(ws_text(&mut ws2).await.as_deref(), Some("o"));
    ws2.send(Message::text(r#"["b"]"#)).await.unwrap();
    assert_eq!(ws_text(&mut ws2).await.as_deref(), Some(r#"a["b"]"#));
    ws.send(Message::text(r#"["c"]"#)).await.unwrap();
    assert_eq!(ws_text(&mut ws).await.as_deref(), Some(r#"a["c"]"#));

    // Broken JSON ends the connection.
    ws.send(Message::text(r#"["a"#)).await.unwrap();
    assert_eq!(ws_text(&mut ws).await, None);

    let mut closing = ws_connect(&format!("ws://{a}{}/websocket", session("close"))).await;
    assert_eq!(ws_text(&mut closing).await.as_deref(), Some("o"));
    assert_eq!(
        ws_text(&mut closing).await.as_deref(),
        Some(r#"c[3000,"Go away!"]"#)
    );
    assert_eq!(ws_text(&mut closing).await, None);

    // Plain HTTP on the WebSocket URL.
    let r = get(a, "/echo/0/0/websocket").await;
    assert_eq!(r.status, 400);
    assert!(
        r.text()
            .await
            .contains("Can \"Upgrade\" only to \"WebSocket\".")
    );
    let r = request(
        a,
        "GET",
        "/echo/0/0/websocket",
        &[("upgrade", "WebSocket"), ("connection", "close")],
        "",
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.text()
            .await
            .contains("\"Connection\" must be \"Upgrade\".")
    );
    let r = post(a, "/echo/0/0/websocket", "").await;
    assert_eq!(r.status, 405);
    assert!(r.header("allow").is_some() && r.header("content-type").is_none());
    assert_eq!(r.text().await, "");
    assert_eq!(
        get(a, "/disabled_websocket_echo/0/0/websocket")
            .await
            .status,
        404
    );
    assert_eq!(
        get(a, "/disabled_websocket_echo/websocket").await.status,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_websocket() {
    let s = echo().await;
    let a = s.http_addr;
    for url in [format!("ws://{a}/echo/websocket"), format!("ws://{a}/echo")] {
        let mut ws = ws_connect(&url).await;
        ws.send(Message::text("Hello world!\u{ffff}"))
            .await
            .unwrap();
        assert_eq!(
            ws_text(&mut ws).await.as_deref(),
            Some("Hello world!\u{ffff}")
        );
    }
    let mut ws = ws_connect(&format!("ws://{a}/close/websocket")).await;
    assert_eq!(ws_text(&mut ws).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsessionid_cookie() {
    let s = echo().await;
    let a = s.http_addr;
    let r = get(a, "/cookie_needed_echo/info").await;
    assert!(r.header("set-cookie").is_none());
    let info: Value = serde_json::from_str(&r.text().await).unwrap();
    assert_eq!(info["cookie_needed"], true);

    let dummy = Some("JSESSIONID=dummy; path=/");
    let id = session("cookie_needed_echo");
    let r = post(a, &format!("{id}/xhr"), "").await;
    assert_eq!(r.header("set-cookie"), dummy);
    assert_eq!(r.text().await, "o\n");
    let r = post(a, &format!("{id}/xhr_send"), r#"["x"]"#).await;
    assert_eq!(r.header("set-cookie"), dummy);
    let r = open_with(
        a,
        "cookie_needed_echo",
        &[("cookie", "a=b; JSESSIONID=abcdef")],
    )
    .await;
    assert_eq!(r.header("set-cookie"), Some("JSESSIONID=abcdef; path=/"));
    // A value that is not a plain token is not echoed into a header.
    let r = open_with(a, "cookie_needed_echo", &[("cookie", "JSESSIONID=a,b\"c")]).await;
    assert_eq!(r.header("set-cookie"), dummy);
    let r = post(
        a,
        &format!("{}/xhr_streaming", session("cookie_needed_echo")),
        "",
    )
    .await;
    assert_eq!(r.header("set-cookie"), dummy);
    let r = get(a, &format!("{}/eventsource", session("cookie_needed_echo"))).await;
    assert_eq!(r.header("set-cookie"), dummy);
    let r = get(
        a,
        &format!("{}/htmlfile?c=cb", session("cookie_needed_echo")),
    )
    .await;
    assert_eq!(r.header("set-cookie"), dummy);
    let id = session("cookie_needed_echo");
    let r = get(a, &format!("{id}/jsonp?c=cb")).await;
    assert_eq!(r.header("set-cookie"), dummy);
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let r = request(
        a,
        "POST",
        &format!("{id}/jsonp_send"),
        &form,
        "d=%5B%22x%22%5D",
    )
    .await;
    assert_eq!(r.header("set-cookie"), dummy);
    // Without the setting, no cookie.
    assert!(
        post(a, &format!("{}/xhr", session("echo")), "")
            .await
            .header("set-cookie")
            .is_none()
    );
}

/// The characters sockjs-protocol 0.3.3 says the server must escape (`escapable_by_server`,
/// above U+00FF), and those a browser escapes before sending (`escapable_by_client`).
fn in_ranges(c: u32, ranges: &[(u32, u32)]) -> bool {
    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

const SERVER_ESCAPES: &[(u32, u32)] = &[
    (0x200c, 0x200f),
    (0x2028, 0x202f),
    (0x2060, 0x206f),
    (0xfff0, 0xffff),
];
const CLIENT_ESCAPES: &[(u32, u32)] = &[
    (0x0, 0x1f),
    (0x22, 0x22),
    (0x5c, 0x5c),
    (0x7f, 0x9f),
    (0xad, 0xad),
    (0x300, 0x333),
    (0x600, 0x604),
    (0x70f, 0x70f),
    (0x17b4, 0x17b5),
    (0x2000, 0x20ff),
    (0xfeff, 0xfeff),
    (0xf900, 0xfa0d),
    (0xfff0, 0xffff),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_unicode_encoding() {
    let s = echo().await;
    let a = s.http_addr;
    // The server escapes every character it must, as `\uxxxx`.
    let id = session("echo");
    assert_eq!(post(a, &format!("{id}/xhr"), "").await.text().await, "o\n");
    let chars: Vec<u32> = (0xff..=0xffff)
        .filter(|&c| in_ranges(c, SERVER_ESCAPES))
        .collect();
    let raw: String = chars.iter().filter_map(|&c| char::from_u32(c)).collect();
    let escaped: String = chars.iter().map(|c| format!("\\u{c:04x}")).collect();
    xhr_send(a, &id, format!("[\"{raw}\"]")).await;
    let body = post(a, &format!("{id}/xhr"), "").await.text().await;
    assert_eq!(body, format!("a[\"{escaped}\"]\n"));

    // What a browser escapes arrives as the characters it stands for.
    let id = session("echo");
    assert_eq!(post(a, &format!("{id}/xhr"), "").await.text().await, "o\n");
    let sent: String = (0..=0xffffu32)
        .filter(|&c| in_ranges(c, CLIENT_ESCAPES))
        .map(|c| format!("\\u{c:04x}"))
        .collect();
    xhr_send(a, &id, format!("[\"{sent}\"]")).await;
    let body = post(a, &format!("{id}/xhr"), "").await.text().await;
    let echoed: Vec<String> =
        serde_json::from_str(body.trim_end().strip_prefix('a').unwrap()).unwrap();
    let original: String = serde_json::from_str(&format!("\"{sent}\"")).unwrap();
    assert_eq!(echoed, vec![original]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_quiet_sessions_alive() {
    let s = echo_with(Options {
        heartbeat: Duration::from_millis(100),
        ..Options::default()
    })
    .await;
    let a = s.http_addr;
    let id = session("echo");
    let mut r = post(a, &format!("{id}/xhr_streaming"), "").await;
    r.take(2049).await;
    r.expect("o\n").await;
    r.expect("h\n").await;
    r.expect("h\n").await;
    drop(r);

    let id = session("echo");
    assert_eq!(post(a, &format!("{id}/xhr"), "").await.text().await, "o\n");
    assert_eq!(post(a, &format!("{id}/xhr"), "").await.text().await, "h\n");

    let mut r = get(a, &format!("{}/eventsource", session("echo"))).await;
    r.expect("\r\n").await;
    r.expect("data: o\r\n\r\n").await;
    r.expect("data: h\r\n\r\n").await;

    let mut ws = ws_connect(&format!("ws://{a}{}/websocket", session("echo"))).await;
    assert_eq!(ws_text(&mut ws).await.as_deref(), Some("o"));
    assert_eq!(ws_text(&mut ws).await.as_deref(), Some("h"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_bounded_and_abandoned_ones_reaped() {
    let endpoint = SockJs::new(
        sockjs_echo::echo,
        SockJsConfig {
            max_sessions: 2,
            disconnect_delay: Duration::from_millis(200),
            max_payload_bytes: 1024,
            ..SockJsConfig::default()
        },
    );
    let stomp = StompServer::builder().build().expect("default config");
    let s = start_app(stomp, endpoint.mount("/echo")).await;
    let a = s.http_addr;
    let first = session("echo");
    assert_eq!(
        post(a, &format!("{first}/xhr"), "").await.text().await,
        "o\n"
    );
    assert_eq!(
        post(a, &format!("{}/xhr", session("echo")), "")
            .await
            .text()
            .await,
        "o\n"
    );
    assert_eq!(endpoint.sessions(), 2);
    let r = post(a, &format!("{}/xhr", session("echo")), "").await;
    assert_eq!(r.status, 503);
    assert!(r.text().await.contains("Too many SockJS sessions"));
    let r =
        tokio_tungstenite::connect_async(format!("ws://{a}{}/websocket", session("echo"))).await;
    assert!(r.is_err(), "a WebSocket session is refused too");

    // An oversized send is refused with a reason; the session goes on.
    let big = format!("[\"{}\"]", "x".repeat(2000));
    let r = post(a, &format!("{first}/xhr_send"), big).await;
    assert_eq!(r.status, 413);
    assert!(r.text().await.contains("larger than 1024 bytes"));
    assert_eq!(
        post(a, &format!("{first}/xhr_send"), r#"["ok"]"#)
            .await
            .status,
        204
    );

    // Nobody polls: both sessions are closed and forgotten after the disconnect delay.
    let deadline = tokio::time::Instant::now() + WAIT;
    while endpoint.sessions() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "sessions were never reaped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        post(a, &format!("{first}/xhr_send"), r#"["x"]"#)
            .await
            .status,
        404
    );
    assert_eq!(
        post(a, &format!("{}/xhr", session("echo")), "")
            .await
            .text()
            .await,
        "o\n"
    );
}

/// Lets in requests carrying `x-let-in`, and echoes what the session knows of its
/// connection.
struct Gatekeeper;

#[stomp_runtime::async_trait]
impl stomp_runtime::transport::sockjs::SockJsHandler for Gatekeeper {
    fn accept(
        &self,
        request: &actix_web::HttpRequest,
        connection: stomp_runtime::transport::ConnectionInfo,
    ) -> actix_web::Result<stomp_runtime::transport::ConnectionInfo> {
        if request.headers().contains_key("x-let-in") {
            Ok(connection)
        } else {
            Err(actix_web::error::ErrorForbidden("no x-let-in header"))
        }
    }

    async fn on_connection(&self, conn: stomp_runtime::transport::sockjs::SockJsConnection) {
        let info = conn.info();
        let peer = info.remote_addr.map(|a| a.ip().to_string());
        let _ = conn
            .send(format!("{} {}", info.transport, peer.unwrap_or_default()))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_decides_who_opens_a_session() {
    let endpoint = SockJs::new(Gatekeeper, SockJsConfig::default());
    let stomp = StompServer::builder().build().expect("default config");
    let s = start_app(stomp, endpoint.mount("/gate")).await;
    let a = s.http_addr;
    let r = post(a, &format!("{}/xhr", session("gate")), "").await;
    assert_eq!(r.status, 403);
    assert!(r.text().await.contains("no x-let-in header"));
    let refused =
        tokio_tungstenite::connect_async(format!("ws://{a}{}/websocket", session("gate")));
    assert!(refused.await.is_err(), "WebSocket sessions are checked too");
    assert_eq!(endpoint.sessions(), 0);

    let id = session("gate");
    let open = request(a, "POST", &format!("{id}/xhr"), &[("x-let-in", "1")], "").await;
    assert_eq!(open.text().await, "o\n");
    let r = post(a, &format!("{id}/xhr"), "").await;
    assert_eq!(r.text().await, "a[\"sockjs-xhr 127.0.0.1\"]\n");
}
