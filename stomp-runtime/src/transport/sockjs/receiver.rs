//! The receiving side of the HTTP transports: one response that carries frames to the
//! client, either one batch and done (polling: `xhr`, `jsonp`) or many until the byte limit
//! (streaming: `xhr_streaming`, `eventsource`, `htmlfile`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;

use super::frame::{self, quote};
use super::session::{Attach, Session};

/// Bytes of `h` an `xhr_streaming` response starts with: some browsers show nothing of a
/// streamed response before 2 KiB have arrived.
const XHR_PRELUDE_LEN: usize = 2048;
/// Smallest size of the `htmlfile` page head, for the same reason.
const HTMLFILE_PRELUDE_LEN: usize = 1024;

/// An HTTP transport that receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// `xhr`: one batch per request, frames end with `\n`.
    XhrPolling,
    /// `xhr_streaming`: a prelude of `h`s, then frames ending with `\n`.
    XhrStreaming,
    /// `eventsource`: `data: <frame>\r\n\r\n`.
    EventSource,
    /// `htmlfile`: an HTML page calling `p("<frame>")` in `<script>` blocks.
    HtmlFile { callback: String },
    /// `jsonp`: `callback("<frame>");`, one batch per request.
    Jsonp { callback: String },
}

impl Format {
    pub(crate) fn content_type(&self) -> &'static str {
        match self {
            Format::XhrPolling | Format::XhrStreaming | Format::Jsonp { .. } => {
                "application/javascript; charset=UTF-8"
            }
            Format::EventSource => "text/event-stream; charset=UTF-8",
            Format::HtmlFile { .. } => "text/html; charset=UTF-8",
        }
    }

    fn polling(&self) -> bool {
        matches!(self, Format::XhrPolling | Format::Jsonp { .. })
    }

    fn prelude(&self) -> Option<Bytes> {
        match self {
            Format::XhrStreaming => {
                let mut p = vec![b'h'; XHR_PRELUDE_LEN];
                p.push(b'\n');
                Some(p.into())
            }
            Format::EventSource => Some(Bytes::from_static(b"\r\n")),
            Format::HtmlFile { callback } => {
                let mut page = format!(
                    "<!doctype html>\n\
                     <html><head>\n  \
                     <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  \
                     <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n\
                     </head><body><h2>Don't panic!</h2>\n  \
                     <script>\n    \
                     document.domain = document.domain;\n    \
                     var c = parent.{callback};\n    \
                     c.start();\n    \
                     function p(d) {{c.message(d);}};\n    \
                     window.onload = function() {{c.stop();}};\n  \
                     </script>"
                );
                let pad = HTMLFILE_PRELUDE_LEN.saturating_sub(page.len()) + 14;
                page.extend(std::iter::repeat_n(' ', pad));
                page.push_str("\r\n\r\n");
                Some(page.into())
            }
            Format::XhrPolling | Format::Jsonp { .. } => None,
        }
    }

    /// One frame as this transport carries it.
    pub(crate) fn wrap(&self, frame: &str) -> Bytes {
        match self {
            Format::XhrPolling | Format::XhrStreaming => format!("{frame}\n").into(),
            Format::EventSource => format!("data: {frame}\r\n\r\n").into(),
            Format::HtmlFile { .. } => {
                format!("<script>\np({});\n</script>\r\n", quote(frame)).into()
            }
            Format::Jsonp { callback } => format!("{callback}({});\r\n", quote(frame)).into(),
        }
    }
}

/// Limits of one receiving response.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReceiveLimits {
    /// Bytes of frames after which a streaming response ends (the client opens another).
    pub(crate) response_limit: usize,
    /// Silence after which a heart-beat frame is sent.
    pub(crate) heartbeat: Duration,
}

/// One receiving request's state; dropping it early (the client went away) interrupts the
/// session.
struct Receiver {
    session: Arc<Session>,
    format: Format,
    limits: ReceiveLimits,
    /// Chunks to send before anything else (prelude, open or refusal frames).
    queued: Vec<Bytes>,
    /// Set while this request is the session's receiver.
    token: Option<u64>,
    /// Nothing more to send.
    done: bool,
    written: usize,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            self.session.detach(token, true);
        }
    }
}

impl Receiver {
    /// This request's last chunk: it stops receiving at once, so that the client's next
    /// request finds the session free.
    fn finish(&mut self, chunk: Bytes) -> Bytes {
        self.done = true;
        if let Some(token) = self.token.take() {
            self.session.detach(token, false);
        }
        chunk
    }

    /// Counts a frame chunk against the response limit, ending the response past it.
    fn frame(&mut self, chunk: Bytes) -> Bytes {
        self.written += chunk.len();
        if self.format.polling() || self.written >= self.limits.response_limit {
            self.finish(chunk)
        } else {
            chunk
        }
    }

    async fn next_chunk(&mut self) -> Option<Bytes> {
        if !self.queued.is_empty() {
            return Some(self.queued.remove(0));
        }
        if self.done {
            return None;
        }
        let session = self.session.clone();
        loop {
            let ready = session.out_ready();
            let (messages, closed) = session.take();
            if !messages.is_empty() {
                let chunk = self
                    .format
                    .wrap(&frame::messages(messages.iter().map(String::as_str)));
                return Some(self.frame(chunk));
            }
            if let Some(reason) = closed {
                let chunk = self.format.wrap(&frame::close(reason.code, &reason.reason));
                return Some(self.finish(chunk));
            }
            tokio::select! {
                _ = ready => {}
                _ = tokio::time::sleep(self.limits.heartbeat) => {
                    let chunk = self.format.wrap(frame::HEARTBEAT);
                    return Some(self.frame(chunk));
                }
            }
        }
    }
}

/// The body of a receiving request on `session`.
pub(crate) fn body(
    session: Arc<Session>,
    format: Format,
    limits: ReceiveLimits,
) -> impl Stream<Item = Result<Bytes, Infallible>> + 'static {
    let mut queued: Vec<Bytes> = format.prelude().into_iter().collect();
    let mut rx = Receiver {
        session,
        format,
        limits,
        queued: Vec::new(),
        token: None,
        done: false,
        written: 0,
    };
    match rx.session.attach() {
        Attach::Busy => {
            queued.push(
                rx.format
                    .wrap(&frame::close(2010, "Another connection still open")),
            );
            rx.done = true;
        }
        Attach::Receiving { token, open } => {
            rx.token = Some(token);
            if open {
                let chunk = rx.format.wrap(frame::OPEN);
                queued.push(rx.frame(chunk));
            }
        }
    }
    rx.queued = queued;
    futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.next_chunk().await?;
        Some((Ok(chunk), rx))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_wrap_frames_as_the_protocol_shows() {
        assert_eq!(Format::XhrPolling.wrap("o"), "o\n");
        assert_eq!(
            Format::EventSource.wrap(r#"a["x"]"#),
            "data: a[\"x\"]\r\n\r\n"
        );
        let html = Format::HtmlFile {
            callback: "cb".into(),
        };
        assert_eq!(
            html.wrap(r#"a["x"]"#),
            "<script>\np(\"a[\\\"x\\\"]\");\n</script>\r\n"
        );
        let jsonp = Format::Jsonp {
            callback: "x".into(),
        };
        assert_eq!(
            jsonp.wrap(r#"c[3000,"Go away!"]"#),
            "x(\"c[3000,\\\"Go away!\\\"]\");\r\n"
        );
        let prelude = html.prelude().unwrap();
        assert!(prelude.len() > HTMLFILE_PRELUDE_LEN);
        assert!(
            std::str::from_utf8(&prelude)
                .unwrap()
                .contains("var c = parent.cb;")
        );
        assert_eq!(Format::XhrStreaming.prelude().unwrap().len(), 2049);
    }
}
