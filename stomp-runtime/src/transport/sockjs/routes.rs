//! The endpoint's URLs: the greeting, `/info`, the iframe page, raw WebSocket, and the
//! session URLs `/{server}/{session}/{transport}` with their CORS, caching and cookie
//! headers.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use bytes::BytesMut;
use futures_util::StreamExt;

use super::frame::{self, PayloadError};
use super::receiver::{self, Format, ReceiveLimits};
use super::session::{OpenError, Session};
use super::{Endpoint, RawWebSocket, connection_info, websocket};

/// One year: how long clients may cache the iframe page and preflight answers.
const ONE_YEAR: Duration = Duration::from_secs(31_536_000);
/// No caching of anything private (the protocol asks for exactly this value).
const NO_CACHE: &str = "no-store, no-cache, must-revalidate, max-age=0";
const TEXT: &str = "text/plain; charset=UTF-8";
/// Longest session id (or server id) accepted in a session URL.
const MAX_ID_LEN: usize = 128;
/// Longest JSONP / htmlfile callback name.
const MAX_CALLBACK_LEN: usize = 256;

/// The iframe page that iframe-based transports load, with its ETag.
pub(crate) struct IframePage {
    body: String,
    etag: String,
}

impl IframePage {
    pub(crate) fn new(client_url: &str) -> Self {
        let body = format!(
            "<!DOCTYPE html>\n\
             <html>\n\
             <head>\n  \
             <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  \
             <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n  \
             <script>\n    \
             document.domain = document.domain;\n    \
             _sockjs_onload = function(){{SockJS.bootstrap_iframe();}};\n  \
             </script>\n  \
             <script src=\"{}\"></script>\n\
             </head>\n\
             <body>\n  \
             <h2>Don't panic!</h2>\n  \
             <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>\n\
             </body>\n\
             </html>",
            html_attribute(client_url)
        );
        // A fixed-key hash: the same page gets the same tag in every process.
        let mut h = std::hash::DefaultHasher::new();
        body.hash(&mut h);
        let etag = format!("\"{:016x}\"", h.finish());
        Self { body, etag }
    }
}

fn html_attribute(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
}

/// Registers every URL of `endpoint` under `path`.
pub(crate) fn register(cfg: &mut web::ServiceConfig, path: &str, endpoint: &Arc<Endpoint>) {
    let ep = endpoint.clone();
    cfg.service(
        web::resource([path.to_owned(), format!("{path}/")]).route(web::get().to(
            move |req: HttpRequest, body: web::Payload| {
                let ep = ep.clone();
                async move {
                    if is_upgrade(&req) {
                        raw_websocket(&ep, req, body)
                    } else {
                        HttpResponse::Ok()
                            .content_type(TEXT)
                            .body("Welcome to SockJS!\n")
                    }
                }
            },
        )),
    );
    let ep = endpoint.clone();
    cfg.service(
        web::resource(format!("{path}/info"))
            .route(web::get().to({
                let ep = ep.clone();
                move |req: HttpRequest| {
                    let ep = ep.clone();
                    async move { info(&ep, &req) }
                }
            }))
            .route(
                web::method(Method::OPTIONS)
                    .to(|req: HttpRequest| async move { preflight(&req, "OPTIONS, GET") }),
            ),
    );
    let ep = endpoint.clone();
    cfg.service(
        web::resource(format!("{path}/{{page:iframe[0-9a-z._-]*\\.html}}")).route(web::get().to(
            move |req: HttpRequest| {
                let ep = ep.clone();
                async move { iframe(&ep, &req) }
            },
        )),
    );
    let ep = endpoint.clone();
    cfg.service(
        web::resource(format!("{path}/websocket")).route(web::get().to(
            move |req: HttpRequest, body: web::Payload| {
                let ep = ep.clone();
                async move {
                    if !ep.config.websocket {
                        return HttpResponse::NotFound().finish();
                    }
                    raw_websocket(&ep, req, body)
                }
            },
        )),
    );
    let ep = endpoint.clone();
    cfg.service(
        web::resource(format!(
            "{path}/{{server:[^/.]+}}/{{session:[^/.]+}}/{{transport}}"
        ))
        .to(move |req: HttpRequest, body: web::Payload| {
            let ep = ep.clone();
            async move { dispatch(ep, req, body).await }
        }),
    );
}

/// Whether the request asks for a WebSocket upgrade.
pub(crate) fn is_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn raw_websocket(ep: &Arc<Endpoint>, req: HttpRequest, body: web::Payload) -> HttpResponse {
    let result = match &ep.raw {
        RawWebSocket::Stomp(server) => server.accept_websocket(req, body),
        RawWebSocket::Handler => websocket::raw(ep, req, body),
    };
    result.unwrap_or_else(|e| e.error_response())
}

/// A random number for the client's generator: `/info`'s `entropy`.
fn entropy() -> u32 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish() as u32
}

fn info(ep: &Endpoint, req: &HttpRequest) -> HttpResponse {
    let body = serde_json::json!({
        "websocket": ep.config.websocket,
        "cookie_needed": ep.config.cookie_needed,
        "origins": ["*:*"],
        "entropy": entropy(),
    });
    let mut res = HttpResponse::Ok();
    res.content_type("application/json; charset=UTF-8");
    no_cache(&mut res);
    cors(req, &mut res);
    res.body(body.to_string())
}

fn iframe(ep: &Endpoint, req: &HttpRequest) -> HttpResponse {
    let page = &ep.iframe;
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == page.etag.as_bytes());
    if matches {
        return HttpResponse::NotModified().finish();
    }
    let mut res = HttpResponse::Ok();
    res.content_type("text/html; charset=UTF-8")
        .insert_header((header::ETAG, page.etag.clone()));
    cache_for_a_year(&mut res);
    res.body(page.body.clone())
}

fn cache_for_a_year(res: &mut HttpResponseBuilder) {
    let expires = header::HttpDate::from(SystemTime::now() + ONE_YEAR);
    res.insert_header((
        header::CACHE_CONTROL,
        format!("public, max-age={}", ONE_YEAR.as_secs()),
    ))
    .insert_header((header::EXPIRES, expires.to_string()));
}

fn no_cache(res: &mut HttpResponseBuilder) {
    res.insert_header((header::CACHE_CONTROL, NO_CACHE));
}

/// CORS as the protocol wants it: the request's origin (or `*` for none or `null`), with
/// credentials, and the requested headers echoed.
fn cors(req: &HttpRequest, res: &mut HttpResponseBuilder) {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .filter(|o| o.as_bytes() != b"null")
        .cloned()
        .unwrap_or(HeaderValue::from_static("*"));
    res.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
        .insert_header((header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true"))
        .insert_header((header::VARY, "Origin"));
    if let Some(asked) = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .filter(|v| !v.is_empty())
    {
        res.insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone()));
    }
}

/// The answer to a CORS preflight: cacheable for a year.
fn preflight(req: &HttpRequest, methods: &'static str) -> HttpResponse {
    let mut res = HttpResponse::NoContent();
    cache_for_a_year(&mut res);
    res.insert_header((
        header::ACCESS_CONTROL_MAX_AGE,
        ONE_YEAR.as_secs().to_string(),
    ))
    .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, methods));
    cors(req, &mut res);
    res.finish()
}

/// `JSESSIONID=<the client's, or dummy>; path=/` when the endpoint is configured for it.
fn cookie(ep: &Endpoint, req: &HttpRequest, res: &mut HttpResponseBuilder) {
    if !ep.config.cookie_needed {
        return;
    }
    let theirs = req
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix("JSESSIONID="))
        .find(|v| {
            !v.is_empty()
                && v.len() <= MAX_ID_LEN
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
    let value = theirs.unwrap_or("dummy");
    res.insert_header((header::SET_COOKIE, format!("JSESSIONID={value}; path=/")));
}

fn server_error(text: &str) -> HttpResponse {
    HttpResponse::InternalServerError()
        .content_type(TEXT)
        .body(text.to_owned())
}

fn method_not_allowed(allow: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, allow))
        .finish()
}

async fn dispatch(ep: Arc<Endpoint>, req: HttpRequest, body: web::Payload) -> HttpResponse {
    let info = req.match_info();
    let (Some(server), Some(id), Some(transport)) = (
        info.get("server"),
        info.get("session"),
        info.get("transport"),
    ) else {
        return HttpResponse::NotFound().finish();
    };
    if server.len() > MAX_ID_LEN || id.len() > MAX_ID_LEN {
        return HttpResponse::NotFound().finish();
    }
    let id = id.to_owned();
    let method = req.method().clone();
    let post = method == Method::POST;
    let get = method == Method::GET;
    let options = method == Method::OPTIONS;
    match transport {
        "xhr" | "xhr_streaming" | "xhr_send" if options => preflight(&req, "OPTIONS, POST"),
        "xhr" if post => receive(&ep, &req, &id, "sockjs-xhr", Format::XhrPolling),
        "xhr_streaming" if post => {
            receive(&ep, &req, &id, "sockjs-xhr_streaming", Format::XhrStreaming)
        }
        "xhr_send" if post => send(&ep, &req, &id, body, false).await,
        "eventsource" if get => receive(&ep, &req, &id, "sockjs-eventsource", Format::EventSource),
        "htmlfile" if get => match callback(&req) {
            Ok(callback) => receive(
                &ep,
                &req,
                &id,
                "sockjs-htmlfile",
                Format::HtmlFile { callback },
            ),
            Err(why) => server_error(why),
        },
        "jsonp" if get => match callback(&req) {
            Ok(callback) => receive(&ep, &req, &id, "sockjs-jsonp", Format::Jsonp { callback }),
            Err(why) => server_error(why),
        },
        "jsonp_send" if post => send(&ep, &req, &id, body, true).await,
        "websocket" if !ep.config.websocket => HttpResponse::NotFound().finish(),
        "websocket" if get => {
            websocket::framed(&ep, req, body).unwrap_or_else(|e| e.error_response())
        }
        "websocket" | "eventsource" | "htmlfile" | "jsonp" => method_not_allowed("GET"),
        "xhr" | "xhr_streaming" | "xhr_send" => method_not_allowed("OPTIONS, POST"),
        "jsonp_send" => method_not_allowed("POST"),
        _ => HttpResponse::NotFound().finish(),
    }
}

/// The `c` query parameter of `jsonp` and `htmlfile`, checked: it is written into script.
fn callback(req: &HttpRequest) -> Result<String, &'static str> {
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let Some((_, c)) = query.into_iter().find(|(k, v)| k == "c" && !v.is_empty()) else {
        return Err("\"callback\" parameter required");
    };
    let valid = c.len() <= MAX_CALLBACK_LEN
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if valid {
        Ok(c)
    } else {
        Err("invalid \"callback\" parameter")
    }
}

/// The session `id`, opened by this request if it is new.
fn open(
    ep: &Arc<Endpoint>,
    req: &HttpRequest,
    id: &str,
    transport: &'static str,
) -> Result<Arc<Session>, Box<HttpResponse>> {
    if let Some(session) = ep.registry.get(id) {
        return Ok(session);
    }
    let info = ep
        .handler
        .accept(req, connection_info(req, transport))
        .map_err(|e| Box::new(e.error_response()))?;
    let mut slot = None;
    let (session, new) = ep
        .registry
        .get_or_insert(id, || {
            slot = Some(ep.registry.slot(ep.config.max_sessions)?);
            Ok(Session::new(
                Arc::from(id),
                ep.config.max_cache_bytes,
                ep.config.max_payload_bytes,
            ))
        })
        .map_err(|OpenError::TooMany| Box::new(too_many()))?;
    if new {
        let slot = slot.expect("a new session took a slot");
        tokio::spawn(super::run_session(
            ep.clone(),
            session.clone(),
            slot,
            info,
            true,
        ));
    }
    Ok(session)
}

pub(crate) fn too_many() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .content_type(TEXT)
        .insert_header((header::RETRY_AFTER, "5"))
        .body("Too many SockJS sessions; try again later.")
}

fn receive(
    ep: &Arc<Endpoint>,
    req: &HttpRequest,
    id: &str,
    transport: &'static str,
    format: Format,
) -> HttpResponse {
    let session = match open(ep, req, id, transport) {
        Ok(s) => s,
        Err(res) => return *res,
    };
    let mut res = HttpResponse::Ok();
    res.content_type(format.content_type());
    no_cache(&mut res);
    if matches!(format, Format::XhrPolling | Format::XhrStreaming) {
        cors(req, &mut res);
    }
    cookie(ep, req, &mut res);
    let limits = ReceiveLimits {
        response_limit: ep.config.response_limit,
        heartbeat: ep.config.heartbeat,
    };
    res.streaming(receiver::body(session, format, limits))
}

/// Reads a request body of at most `limit` bytes.
async fn read_body(mut body: web::Payload, limit: usize) -> Result<BytesMut, HttpResponse> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            HttpResponse::BadRequest()
                .content_type(TEXT)
                .body(format!("Unreadable request body: {e}"))
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(HttpResponse::PayloadTooLarge()
                .content_type(TEXT)
                .body(format!("Payload larger than {limit} bytes.")));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

async fn send(
    ep: &Arc<Endpoint>,
    req: &HttpRequest,
    id: &str,
    body: web::Payload,
    jsonp: bool,
) -> HttpResponse {
    let Some(session) = ep.registry.get(id) else {
        return HttpResponse::NotFound().finish();
    };
    let raw = match read_body(body, ep.config.max_payload_bytes).await {
        Ok(b) => b,
        Err(res) => return res,
    };
    let decoded = if jsonp && is_form(req) {
        // `d=<payload>`, URL-encoded.
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&raw).unwrap_or_default();
        match form.into_iter().find(|(k, _)| k == "d") {
            Some((_, d)) => frame::decode(d.as_bytes(), false),
            None => Err(PayloadError::Empty),
        }
    } else {
        frame::decode(&raw, false)
    };
    let messages = match decoded {
        Ok(m) => m,
        Err(e) => return server_error(&e.to_string()),
    };
    if session.deliver(messages).await.is_err() {
        return HttpResponse::NotFound()
            .content_type(TEXT)
            .body("The session is closed.");
    }
    let mut res = if jsonp {
        HttpResponse::Ok()
    } else {
        HttpResponse::build(StatusCode::NO_CONTENT)
    };
    res.content_type(TEXT);
    no_cache(&mut res);
    if !jsonp {
        cors(req, &mut res);
    }
    cookie(ep, req, &mut res);
    if jsonp { res.body("ok") } else { res.finish() }
}
