//! The `websocket` transport (SockJS framing over a WebSocket, one session per connection)
//! and raw WebSocket at `/websocket` (no framing: one WebSocket message per message).

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode};
use futures_util::StreamExt;

use super::frame;
use super::routes::too_many;
use super::session::{Attach, Session};
use super::{Endpoint, connection_info};

/// Refuses what is not a WebSocket upgrade, with the protocol's reasons.
fn check_upgrade(req: &HttpRequest) -> Option<HttpResponse> {
    if !super::routes::is_upgrade(req) {
        return Some(
            HttpResponse::BadRequest()
                .content_type("text/plain; charset=UTF-8")
                .body("Can \"Upgrade\" only to \"WebSocket\"."),
        );
    }
    let connection_upgrade = req
        .headers()
        .get_all(header::CONNECTION)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !connection_upgrade {
        return Some(
            HttpResponse::BadRequest()
                .content_type("text/plain; charset=UTF-8")
                .body("\"Connection\" must be \"Upgrade\"."),
        );
    }
    None
}

/// The `websocket` transport of a session URL.
pub(crate) fn framed(
    ep: &Arc<Endpoint>,
    req: HttpRequest,
    body: web::Payload,
) -> actix_web::Result<HttpResponse> {
    start(ep, req, body, true)
}

/// Raw WebSocket: no open, heart-beat or close frames, one message per WebSocket message.
pub(crate) fn raw(
    ep: &Arc<Endpoint>,
    req: HttpRequest,
    body: web::Payload,
) -> actix_web::Result<HttpResponse> {
    start(ep, req, body, false)
}

fn start(
    ep: &Arc<Endpoint>,
    req: HttpRequest,
    body: web::Payload,
    framed: bool,
) -> actix_web::Result<HttpResponse> {
    if let Some(refused) = check_upgrade(&req) {
        return Ok(refused);
    }
    let transport = if framed {
        "sockjs-websocket"
    } else {
        "sockjs-raw-websocket"
    };
    let info = ep.handler.accept(&req, connection_info(&req, transport))?;
    let Ok(slot) = ep.registry.slot(ep.config.max_sessions) else {
        return Ok(too_many());
    };
    let (response, ws, stream) = actix_ws::handle(&req, body)?;
    let max = ep.config.max_payload_bytes;
    let stream = stream
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    // WebSocket sessions live as long as their connection; the id in the URL may be reused
    // at once, so they are not registered for lookup.
    let id = req.match_info().get("session").unwrap_or("websocket");
    let session = Session::new(Arc::from(id), ep.config.max_cache_bytes, max);
    let Attach::Receiving { token, .. } = session.attach() else {
        unreachable!("a new session has no receiver");
    };
    tokio::spawn(super::run_session(
        ep.clone(),
        session.clone(),
        slot,
        info,
        false,
    ));
    let heartbeat = ep.config.heartbeat;
    // actix-ws sessions are not `Send`: the pump stays on this worker.
    actix_web::rt::spawn(async move {
        let ended_cleanly = pump(&session, ws, stream, framed, heartbeat).await;
        session.detach(token, !ended_cleanly);
    });
    Ok(response)
}

/// Moves messages between the WebSocket and the session until either ends; `true` when the
/// session ended first (the close was sent).
async fn pump(
    session: &Session,
    mut ws: actix_ws::Session,
    mut stream: AggregatedMessageStream,
    framed: bool,
    heartbeat: Duration,
) -> bool {
    if framed && ws.text(frame::OPEN).await.is_err() {
        return false;
    }
    // Messages read from the socket that wait for room in the session's inbox; the socket
    // is not read meanwhile.
    let mut pending: Option<Vec<String>> = None;
    loop {
        let ready = session.out_ready();
        let (messages, closed) = session.take();
        if !messages.is_empty() {
            let sent = if framed {
                ws.text(frame::messages(messages.iter().map(String::as_str)))
                    .await
                    .is_ok()
            } else {
                let mut ok = true;
                for m in messages {
                    ok = ok && ws.text(m).await.is_ok();
                }
                ok
            };
            if !sent {
                return false;
            }
            continue;
        }
        if let Some(reason) = closed {
            if framed {
                let _ = ws.text(frame::close(reason.code, &reason.reason)).await;
            }
            let _ = ws.close(Some(CloseCode::Normal.into())).await;
            return true;
        }
        if let Some(batch) = pending.as_mut() {
            match session.try_deliver(batch) {
                Ok(true) => pending = None,
                Ok(false) => {}
                Err(_) => continue,
            }
        }
        let room = session.in_room();
        tokio::select! {
            _ = ready => {}
            _ = room, if pending.is_some() => {}
            _ = tokio::time::sleep(heartbeat), if framed => {
                if ws.text(frame::HEARTBEAT).await.is_err() {
                    return false;
                }
            }
            msg = stream.next(), if pending.is_none() => {
                let payload = match msg {
                    Some(Ok(AggregatedMessage::Text(text))) => text.to_string(),
                    Some(Ok(AggregatedMessage::Binary(bytes))) => {
                        match String::from_utf8(bytes.to_vec()) {
                            Ok(text) => text,
                            Err(_) => {
                                let _ = ws.close(Some(CloseCode::Invalid.into())).await;
                                return false;
                            }
                        }
                    }
                    Some(Ok(AggregatedMessage::Ping(p))) => {
                        let _ = ws.pong(&p).await;
                        continue;
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => continue,
                    Some(Ok(AggregatedMessage::Close(_))) | None | Some(Err(_)) => return false,
                };
                if !framed {
                    pending = Some(vec![payload]);
                } else if !payload.is_empty() {
                    // Broken JSON ends the connection at once, as the protocol asks.
                    match frame::decode(payload.as_bytes(), true) {
                        Ok(batch) => pending = Some(batch),
                        Err(_) => {
                            let _ = ws.close(Some(CloseCode::Invalid.into())).await;
                            return false;
                        }
                    }
                }
            }
        }
    }
}
