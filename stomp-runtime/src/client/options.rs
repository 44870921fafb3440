//! How a client introduces itself: the CONNECT frame's headers and the client's timeouts.

use std::time::Duration;

use crate::frame::{Command, Frame, Headers, Version};

/// Longest wait for a RECEIPT: 10 s, generous for a loopback or LAN broker.
const DEFAULT_RECEIPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the socket, the WebSocket upgrade and CONNECTED together: 10 s, the
/// server's own default CONNECT timeout.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Options for [`Client::connect_tcp`](super::Client::connect_tcp) and
/// [`Client::connect_ws`](super::Client::connect_ws), built in builder style.
///
/// ```
/// use std::time::Duration;
/// use stomp_runtime::client::ConnectOptions;
/// use stomp_runtime::frame::Version;
///
/// let opts = ConnectOptions::new()
///     .login("kiosk-7")
///     .passcode("secret")
///     .accept_versions([Version::V1_1, Version::V1_2])
///     .heartbeat(10_000, 10_000)
///     .receipt_timeout(Duration::from_secs(5));
/// assert_eq!(opts.heartbeat_ms(), (10_000, 10_000));
/// ```
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    login: Option<String>,
    passcode: Option<String>,
    host: Option<String>,
    headers: Headers,
    versions: Vec<Version>,
    heartbeat: (u64, u64),
    send_heartbeats: bool,
    receipt_timeout: Duration,
    connect_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            login: None,
            passcode: None,
            host: None,
            headers: Headers::new(),
            versions: Version::ALL.to_vec(),
            heartbeat: (0, 0),
            send_heartbeats: true,
            receipt_timeout: DEFAULT_RECEIPT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl ConnectOptions {
    /// Defaults: every version (1.0, 1.1, 1.2), no heart-beats, 10 s timeouts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the CONNECT `login` header.
    pub fn login(mut self, login: impl Into<String>) -> Self {
        self.login = Some(login.into());
        self
    }

    /// Sets the CONNECT `passcode` header.
    pub fn passcode(mut self, passcode: impl Into<String>) -> Self {
        self.passcode = Some(passcode.into());
        self
    }

    /// Sets the CONNECT `host` header (default: the host the client connects to).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Adds a CONNECT header of your own (a bearer token, say).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value): (String, String) = (name.into(), value.into());
        self.headers.push(name, value);
        self
    }

    /// The versions offered in `accept-version`; the server picks the highest it speaks.
    /// An empty list keeps the default (all three).
    pub fn accept_versions(mut self, versions: impl IntoIterator<Item = Version>) -> Self {
        let mut versions: Vec<Version> = versions.into_iter().collect();
        versions.sort();
        versions.dedup();
        if !versions.is_empty() {
            self.versions = versions;
        }
        self
    }

    /// Heart-beats in milliseconds (STOMP 1.2 "Heart-beating"): `send_ms`, how often this
    /// client can send beats, and `receive_ms`, how often it wants to hear from the server.
    /// Zero disables a direction (the default for both).
    pub fn heartbeat(mut self, send_ms: u64, receive_ms: u64) -> Self {
        self.heartbeat = (send_ms, receive_ms);
        self
    }

    /// Whether the client really sends the heart-beats it announces (default `true`).
    ///
    /// `false` plays a peer that went silent, to test a server's dead-peer detection.
    pub fn send_heartbeats(mut self, send: bool) -> Self {
        self.send_heartbeats = send;
        self
    }

    /// How long receipted calls wait for their RECEIPT (default 10 s).
    pub fn receipt_timeout(mut self, timeout: Duration) -> Self {
        self.receipt_timeout = timeout;
        self
    }

    /// How long connecting may take, handshake and CONNECTED included (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The announced heart-beat intervals `(send_ms, receive_ms)`.
    pub fn heartbeat_ms(&self) -> (u64, u64) {
        self.heartbeat
    }

    /// The versions offered, lowest first.
    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    pub(crate) fn sends_heartbeats(&self) -> bool {
        self.send_heartbeats
    }

    pub(crate) fn receipt_wait(&self) -> Duration {
        self.receipt_timeout
    }

    pub(crate) fn connect_wait(&self) -> Duration {
        self.connect_timeout
    }

    /// The WebSocket subprotocols to offer, highest version first (`v12.stomp`, ...).
    pub(crate) fn subprotocols(&self) -> String {
        self.versions
            .iter()
            .rev()
            .map(|v| v.subprotocol())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The CONNECT frame, `default_host` standing in for an unset `host`.
    pub(crate) fn connect_frame(&self, default_host: &str) -> Frame {
        let versions: Vec<&str> = self.versions.iter().map(|v| v.as_str()).collect();
        let mut frame = Frame::new(Command::Connect)
            .header("accept-version", versions.join(","))
            .header("host", self.host.as_deref().unwrap_or(default_host))
            .header(
                "heart-beat",
                format!("{},{}", self.heartbeat.0, self.heartbeat.1),
            );
        if let Some(login) = &self.login {
            frame = frame.header("login", login.as_str());
        }
        if let Some(passcode) = &self.passcode {
            frame = frame.header("passcode", passcode.as_str());
        }
        for (k, v) in self.headers.iter() {
            frame = frame.header(k, v);
        }
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_frame_carries_every_option() {
        let frame = ConnectOptions::new()
            .login("u")
            .passcode("p")
            .header("token", "t")
            .heartbeat(100, 200)
            .connect_frame("example.org");
        assert_eq!(frame.command, Command::Connect);
        assert_eq!(frame.get("accept-version"), Some("1.0,1.1,1.2"));
        assert_eq!(frame.get("host"), Some("example.org"));
        assert_eq!(frame.get("heart-beat"), Some("100,200"));
        assert_eq!(frame.get("login"), Some("u"));
        assert_eq!(frame.get("passcode"), Some("p"));
        assert_eq!(frame.get("token"), Some("t"));
    }

    #[test]
    fn explicit_host_wins_and_versions_are_sorted() {
        let opts = ConnectOptions::new().host("vhost").accept_versions([
            Version::V1_2,
            Version::V1_1,
            Version::V1_2,
        ]);
        let frame = opts.connect_frame("ignored");
        assert_eq!(frame.get("host"), Some("vhost"));
        assert_eq!(frame.get("accept-version"), Some("1.1,1.2"));
        assert_eq!(opts.subprotocols(), "v12.stomp, v11.stomp");
    }

    #[test]
    fn empty_version_list_keeps_the_default() {
        let opts = ConnectOptions::new().accept_versions([]);
        assert_eq!(opts.versions(), &Version::ALL);
        assert_eq!(opts.subprotocols(), "v12.stomp, v11.stomp, v10.stomp");
    }
}
