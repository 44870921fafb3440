//! A WebSocket peer that writes frames byte by byte as it likes (RFC 6455, section 5.2):
//! lengths it does not send, unmasked frames, reserved bits, bad opcodes. It reads the
//! server's frames back as they are.

use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::WAIT;

/// Opcodes (RFC 6455, section 5.2).
pub mod opcode {
    /// A continuation fragment.
    pub const CONTINUATION: u8 = 0x0;
    /// A text message.
    pub const TEXT: u8 = 0x1;
    /// A binary message.
    pub const BINARY: u8 = 0x2;
    /// Close.
    pub const CLOSE: u8 = 0x8;
    /// Ping.
    pub const PING: u8 = 0x9;
}

/// What the server sent.
#[derive(Debug, PartialEq, Eq)]
pub enum WsSeen {
    /// A text or binary message's payload.
    Data(Vec<u8>),
    /// A close frame, with its code.
    Close(Option<u16>),
    /// The TCP connection ended without a close frame.
    Ended,
}

/// One raw WebSocket connection, upgraded with subprotocol `v12.stomp`.
pub struct RawWs {
    stream: TcpStream,
    buf: BytesMut,
}

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

impl RawWs {
    /// Connects to `addr` and upgrades `GET /ws`.
    pub async fn connect(addr: SocketAddr) -> Self {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: v12.stomp\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("write upgrade");
        let mut buf = BytesMut::new();
        let end = tokio::time::timeout(WAIT, async {
            loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    return i + 4;
                }
                let n = stream.read_buf(&mut buf).await.expect("read upgrade");
                assert!(n > 0, "closed during the upgrade");
            }
        })
        .await
        .expect("upgrade answered in time");
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        buf.advance(end);
        Self { stream, buf }
    }

    /// Writes one frame: `first` is FIN, RSV and opcode; the header announces `declared`
    /// bytes whatever `payload` holds; `masked` says whether to mask (clients must).
    pub async fn frame(&mut self, first: u8, declared: u64, masked: bool, payload: &[u8]) {
        let mut out = vec![first];
        let mask_bit = if masked { 0x80 } else { 0 };
        match declared {
            0..=125 => out.push(mask_bit | declared as u8),
            126..=65535 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(declared as u16).to_be_bytes());
            }
            _ => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&declared.to_be_bytes());
            }
        }
        if masked {
            out.extend_from_slice(&MASK);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
        } else {
            out.extend_from_slice(payload);
        }
        self.write(&out).await;
    }

    /// A complete, masked text message.
    pub async fn text(&mut self, text: &str) {
        self.frame(
            0x80 | opcode::TEXT,
            text.len() as u64,
            true,
            text.as_bytes(),
        )
        .await;
    }

    /// Writes raw bytes; a connection the server closed is not an error here.
    pub async fn write(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// The next frame the server sent, or its end; panics after [`WAIT`].
    pub async fn next(&mut self) -> WsSeen {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(seen) = self.parse() {
                    return seen;
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return WsSeen::Ended,
                    Ok(_) => {}
                }
            }
        })
        .await
        .expect("server answered in time")
    }

    fn parse(&mut self) -> Option<WsSeen> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        let (len, at) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n) as usize, 10)
            }
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        if b.len() < at + len {
            return None;
        }
        let op = b[0] & 0x0f;
        let payload = b[at..at + len].to_vec();
        self.buf.advance(at + len);
        Some(match op {
            opcode::CLOSE => WsSeen::Close(
                (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])),
            ),
            _ => WsSeen::Data(payload),
        })
    }

    /// Every data message until the close frame (or the end), and the close code.
    pub async fn until_closed(&mut self) -> (Vec<Vec<u8>>, Option<u16>) {
        let mut data = Vec::new();
        loop {
            match self.next().await {
                WsSeen::Data(d) => data.push(d),
                WsSeen::Close(code) => return (data, code),
                WsSeen::Ended => return (data, None),
            }
        }
    }
}
