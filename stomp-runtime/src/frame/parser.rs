//! The incremental frame parser.
//!
//! Bytes arrive in arbitrary pieces (TCP reads, WebSocket messages). The parser keeps its
//! scan position between calls, so each byte is examined once, and checks every limit
//! before the buffer is allowed to grow past it. Bodies are slices of the input buffer.

use bytes::{Buf, Bytes, BytesMut};
use bytestring::ByteString;

use super::{Command, Frame, Headers, Version, escape::unescape};
use crate::config::Limits;

/// What one call to [`Parser::parse`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A complete frame.
    Frame(Frame),
    /// An end-of-line between frames: a heart-beat.
    HeartBeat,
}

/// A malformed or over-limit frame. Every variant is fatal to the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The command line is not a STOMP command.
    #[error("unknown command `{0}`")]
    UnknownCommand(String),
    /// The frame, head and body together, exceeds the size limit.
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Bytes seen or announced so far.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// A header line is longer than allowed.
    #[error("header line of {size} bytes exceeds the limit of {max} bytes")]
    HeaderLineTooLong {
        /// Bytes in the line so far.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The head (command and header lines) is longer than allowed.
    #[error("frame head of {size} bytes exceeds the limit of {max} bytes")]
    HeadTooLarge {
        /// Bytes of head seen so far.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The frame has more headers than allowed.
    #[error("{count} headers exceed the limit of {max}")]
    TooManyHeaders {
        /// Headers seen so far.
        count: usize,
        /// The configured limit.
        max: usize,
    },
    /// A header line without a colon, or with an empty name.
    #[error("malformed header line `{0}`")]
    MalformedHeader(String),
    /// A header escape the version does not define.
    #[error(transparent)]
    Escape(#[from] super::EscapeError),
    /// The head is not UTF-8.
    #[error("frame head is not valid UTF-8")]
    InvalidUtf8,
    /// `content-length` is not a non-negative integer.
    #[error("invalid content-length `{0}`")]
    InvalidContentLength(String),
    /// The byte after `content-length` bytes of body is not NUL.
    #[error("frame body is not terminated by NUL after content-length bytes")]
    MissingNul,
    /// A NUL byte in a header line: clients end frames at NUL, so it could smuggle a
    /// frame end into what others receive.
    #[error("header line holds a NUL byte")]
    NulInHeader,
    /// A carriage return not followed by a line feed.
    #[error("carriage return not followed by line feed")]
    StrayCarriageReturn,
}

#[derive(Debug)]
struct Head {
    command: Command,
    /// Header names and values, as places in the head or (when escaped) unescaped text.
    fields: Vec<(Piece, Piece)>,
    /// Bytes of the head, blank line included.
    len: usize,
    content_length: Option<usize>,
}

/// A header name or value: a byte range of the head, sliced from the frame's bytes when it
/// completes (no copy), or the unescaped text when escapes changed it.
#[derive(Debug)]
enum Piece {
    Slice(usize, usize),
    Owned(String),
}

impl Piece {
    fn of(text: &str, part: &str, escape: Version) -> Result<Piece, FrameError> {
        if escape != Version::V1_0 && part.contains('\\') {
            return Ok(Piece::Owned(unescape(part, escape)?));
        }
        let start = part.as_ptr() as usize - text.as_ptr() as usize;
        Ok(Piece::Slice(start, start + part.len()))
    }

    fn into_string(self, raw: &Bytes) -> ByteString {
        match self {
            Piece::Owned(s) => ByteString::from(s),
            Piece::Slice(start, end) => ByteString::try_from(raw.slice(start..end))
                .expect("a slice of the UTF-8-checked head between ASCII delimiters"),
        }
    }
}

/// An incremental STOMP frame parser.
///
/// ```
/// use bytes::BytesMut;
/// use stomp_runtime::{config::Limits, frame::{Parsed, Parser}};
///
/// let mut parser = Parser::new(&Limits::default());
/// let mut buf = BytesMut::from(&b"SEND\ndestination:/queue/a\n\nhi"[..]);
/// assert_eq!(parser.parse(&mut buf).unwrap(), None); // waiting for the NUL
/// buf.extend_from_slice(b"\0");
/// let Some(Parsed::Frame(frame)) = parser.parse(&mut buf).unwrap() else { panic!() };
/// assert_eq!(&frame.body[..], b"hi");
/// ```
#[derive(Debug)]
pub struct Parser {
    version: Version,
    max_frame: usize,
    max_headers: usize,
    max_line: usize,
    max_head: usize,
    /// Where scanning resumes in the head.
    scan: usize,
    /// Start of the line being scanned.
    line_start: usize,
    /// Lines completed in the head so far (the command line included).
    lines: usize,
    head: Option<Head>,
    /// Where the NUL search resumes in a body without `content-length`.
    body_scan: usize,
    /// The `receipt` header of the frame whose head was read last.
    receipt: Option<String>,
}

impl Parser {
    /// A parser enforcing `limits`, expecting 1.0 escaping until [`Parser::set_version`].
    pub fn new(limits: &Limits) -> Self {
        Self {
            version: Version::V1_0,
            max_frame: limits.max_frame_size,
            max_headers: limits.max_headers,
            max_line: limits.max_header_line,
            max_head: limits.max_head_size,
            scan: 0,
            line_start: 0,
            lines: 0,
            head: None,
            body_scan: 0,
            receipt: None,
        }
    }

    /// Sets the negotiated version, which decides header unescaping.
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    /// The version used for unescaping.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The `receipt` header of the frame being parsed, once its head has been read: an
    /// error about the frame's body (too large, no NUL) can still answer it. Cleared when
    /// the next frame starts.
    pub fn receipt(&self) -> Option<&str> {
        self.receipt.as_deref()
    }

    /// Takes the next frame or heart-beat off the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` holds only part of a frame; call again after appending
    /// more bytes. The consumed bytes are removed from `buf`.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Parsed>, FrameError> {
        if self.head.is_none() {
            if self.scan == 0 {
                match buf.first() {
                    None => return Ok(None),
                    Some(b'\n') => {
                        buf.advance(1);
                        return Ok(Some(Parsed::HeartBeat));
                    }
                    Some(b'\r') => {
                        return match buf.get(1) {
                            None => Ok(None),
                            Some(b'\n') => {
                                buf.advance(2);
                                Ok(Some(Parsed::HeartBeat))
                            }
                            Some(_) => Err(FrameError::StrayCarriageReturn),
                        };
                    }
                    Some(_) => {}
                }
            }
            if self.scan == 0 {
                self.receipt = None;
            }
            match self.scan_head(buf)? {
                Some(head) => {
                    self.body_scan = head.len;
                    self.head = Some(head);
                }
                None => return Ok(None),
            }
        }
        let head = self.head.as_ref().expect("head was parsed above");
        let body_end = match head.content_length {
            Some(n) => {
                // `head.len + n` cannot overflow: `build_head` checked it against the limit.
                if buf.len() <= head.len + n {
                    return Ok(None);
                }
                if buf[head.len + n] != 0 {
                    return Err(FrameError::MissingNul);
                }
                head.len + n
            }
            None => match memchr0(&buf[self.body_scan..]) {
                Some(i) => self.body_scan + i,
                None => {
                    self.body_scan = buf.len();
                    if buf.len() > self.max_frame {
                        return Err(FrameError::FrameTooLarge {
                            size: buf.len(),
                            max: self.max_frame,
                        });
                    }
                    return Ok(None);
                }
            },
        };
        if body_end > self.max_frame {
            return Err(FrameError::FrameTooLarge {
                size: body_end,
                max: self.max_frame,
            });
        }
        let head = self.head.take().expect("head was parsed above");
        let raw = buf.split_to(body_end + 1).freeze();
        self.reset();
        let body: Bytes = raw.slice(head.len..body_end);
        let mut headers = Headers::with_capacity(head.fields.len());
        for (name, value) in head.fields {
            headers.push(name.into_string(&raw), value.into_string(&raw));
        }
        Ok(Some(Parsed::Frame(Frame {
            command: head.command,
            headers,
            body,
        })))
    }

    fn reset(&mut self) {
        self.scan = 0;
        self.line_start = 0;
        self.lines = 0;
        self.body_scan = 0;
    }

    /// Scans for the blank line ending the head, checking limits line by line.
    fn scan_head(&mut self, buf: &BytesMut) -> Result<Option<Head>, FrameError> {
        while self.scan < buf.len() {
            let Some(rel) = memchr_nl(&buf[self.scan..]) else {
                self.scan = buf.len();
                break;
            };
            let nl = self.scan + rel;
            let mut line_end = nl;
            if line_end > self.line_start && buf[line_end - 1] == b'\r' {
                line_end -= 1;
            }
            let line_len = line_end - self.line_start;
            if line_len > self.max_line {
                return Err(FrameError::HeaderLineTooLong {
                    size: line_len,
                    max: self.max_line,
                });
            }
            if self.lines > 0 && memchr0(&buf[self.line_start..line_end]).is_some() {
                return Err(FrameError::NulInHeader);
            }
            self.scan = nl + 1;
            if self.scan > self.max_head.saturating_add(2) {
                // Two bytes of slack: the blank line's CRLF ends the head, not part of it.
                return Err(FrameError::HeadTooLarge {
                    size: self.scan,
                    max: self.max_head,
                });
            }
            if line_len == 0 && self.lines > 0 {
                let head_len = self.scan;
                return self.build_head(&buf[..head_len], head_len).map(Some);
            }
            self.lines += 1;
            self.line_start = self.scan;
            // Saturating: `usize::MAX` means no limit and must not wrap.
            if self.lines > self.max_headers.saturating_add(1) {
                return Err(FrameError::TooManyHeaders {
                    count: self.lines - 1,
                    max: self.max_headers,
                });
            }
        }
        let pending_line = buf.len() - self.line_start;
        // One byte of slack: the pending line may end in the CR of a CRLF.
        if pending_line > self.max_line.saturating_add(1) {
            return Err(FrameError::HeaderLineTooLong {
                size: pending_line,
                max: self.max_line,
            });
        }
        if buf.len() > self.max_frame {
            return Err(FrameError::FrameTooLarge {
                size: buf.len(),
                max: self.max_frame,
            });
        }
        if buf.len() > self.max_head.saturating_add(2) {
            return Err(FrameError::HeadTooLarge {
                size: buf.len(),
                max: self.max_head,
            });
        }
        Ok(None)
    }

    fn build_head(&mut self, raw: &[u8], len: usize) -> Result<Head, FrameError> {
        let text = std::str::from_utf8(raw).map_err(|_| FrameError::InvalidUtf8)?;
        let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let command_line = lines.next().unwrap_or_default();
        let command = Command::from_bytes(command_line.as_bytes())
            .ok_or_else(|| FrameError::UnknownCommand(truncate(command_line)))?;
        let escape = if command.escapes_headers() {
            self.version
        } else {
            Version::V1_0
        };
        let mut fields = Vec::with_capacity(self.lines.saturating_sub(1));
        let mut content_length = None;
        for line in lines {
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(FrameError::MalformedHeader(truncate(line)));
            };
            if name.is_empty() {
                return Err(FrameError::MalformedHeader(truncate(line)));
            }
            let name = Piece::of(text, name, escape)?;
            let value_piece = Piece::of(text, value, escape)?;
            // The first occurrence wins (STOMP 1.2 "Repeated Header Entries").
            let is_length = match &name {
                Piece::Slice(a, b) => &text[*a..*b] == "content-length",
                Piece::Owned(n) => n == "content-length",
            };
            let is_receipt = match &name {
                Piece::Slice(a, b) => &text[*a..*b] == "receipt",
                Piece::Owned(n) => n == "receipt",
            };
            if is_receipt && self.receipt.is_none() {
                self.receipt = Some(match &value_piece {
                    Piece::Slice(a, b) => text[*a..*b].to_owned(),
                    Piece::Owned(v) => v.clone(),
                });
            }
            if is_length && content_length.is_none() {
                content_length = Some(match &value_piece {
                    Piece::Slice(a, b) => text[*a..*b].to_owned(),
                    Piece::Owned(v) => v.clone(),
                });
            }
            fields.push((name, value_piece));
        }
        let content_length = match content_length.as_deref() {
            None => None,
            Some(v) => {
                let n: usize = v
                    .trim()
                    .parse()
                    .map_err(|_| FrameError::InvalidContentLength(truncate(v)))?;
                // Checked: with `usize::MAX` as the limit (none) the sum could still overflow.
                match len.checked_add(n) {
                    Some(size) if size <= self.max_frame => Some(n),
                    size => {
                        return Err(FrameError::FrameTooLarge {
                            size: size.unwrap_or(usize::MAX),
                            max: self.max_frame,
                        });
                    }
                }
            }
        };
        Ok(Head {
            command,
            fields,
            len,
            content_length,
        })
    }
}

fn truncate(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

fn memchr0(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == 0)
}
