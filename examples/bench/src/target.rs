//! The server under test: its URL, the CONNECT options, and opening client sessions.

use std::net::SocketAddr;
use std::time::Duration;

use stomp_runtime::client::{Client, ClientError, ConnectOptions};

use crate::cli::TargetArgs;

/// How long one session may take to connect: long, since thousands may queue for accept.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a receipted call (SUBSCRIBE) may wait: the server may be busy with others.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The transport a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// `ws://host:port/path`.
    Ws,
    /// `tcp://host:port` (also `stomp://`).
    Tcp,
    /// `http://host:port/path`: SockJS, xhr-streaming transport.
    SockJs,
}

impl Scheme {
    /// The name reports use.
    pub fn name(&self) -> &'static str {
        match self {
            Scheme::Ws => "ws",
            Scheme::Tcp => "tcp",
            Scheme::SockJs => "sockjs-xhr-streaming",
        }
    }
}

/// A parsed `--url` with the options every session connects with.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// WebSocket, raw TCP or SockJS.
    pub scheme: Scheme,
    /// `host:port`.
    pub authority: String,
    /// The WebSocket path (`/` for TCP).
    pub path: String,
    /// CONNECT options.
    pub opts: ConnectOptions,
    /// CONNECT `login`.
    pub login: Option<String>,
    /// CONNECT `passcode`.
    pub passcode: Option<String>,
    /// CONNECT `host`, when set explicitly.
    pub vhost: Option<String>,
    /// Sessions opened at once.
    pub concurrency: usize,
}

impl Target {
    /// Parses the flags; fails on a URL that is neither `ws://` nor `tcp://`.
    pub fn from_args(args: &TargetArgs) -> Result<Self, String> {
        let (scheme, rest) = if let Some(rest) = args.url.strip_prefix("ws://") {
            (Scheme::Ws, rest)
        } else if let Some(rest) = args.url.strip_prefix("http://") {
            (Scheme::SockJs, rest)
        } else if let Some(rest) = args
            .url
            .strip_prefix("tcp://")
            .or_else(|| args.url.strip_prefix("stomp://"))
        {
            (Scheme::Tcp, rest)
        } else {
            return Err(format!(
                "`{}`: use ws://HOST:PORT/PATH, tcp://HOST:PORT or http://HOST:PORT/PATH (SockJS); \
                 wss and https are not supported",
                args.url
            ));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("`{}` has no host", args.url));
        }
        let mut opts = ConnectOptions::new()
            .connect_timeout(CONNECT_TIMEOUT)
            .receipt_timeout(RECEIPT_TIMEOUT);
        if let Some(login) = &args.login {
            opts = opts.login(login.as_str());
        }
        if let Some(passcode) = &args.passcode {
            opts = opts.passcode(passcode.as_str());
        }
        if let Some(host) = &args.vhost {
            opts = opts.host(host.as_str());
        }
        Ok(Self {
            url: args.url.clone(),
            scheme,
            authority: authority.to_owned(),
            path: path.to_owned(),
            opts,
            login: args.login.clone(),
            passcode: args.passcode.clone(),
            vhost: args.vhost.clone(),
            concurrency: args.connect_concurrency.max(1),
        })
    }

    /// A target for an in-process server with default options.
    pub fn local(url: &str) -> Result<Self, String> {
        Self::from_args(&TargetArgs {
            url: url.to_owned(),
            login: None,
            passcode: None,
            vhost: None,
            connect_concurrency: 64,
        })
    }

    /// The CONNECT `host` header: `--vhost`, else the URL's host, as the client sends.
    pub fn host_header(&self) -> String {
        if let Some(v) = &self.vhost {
            return v.clone();
        }
        match self.authority.rsplit_once(':') {
            Some((host, _port)) => host.trim_matches(['[', ']']).to_owned(),
            None => self.authority.clone(),
        }
    }

    /// Opens one client session and waits for CONNECTED.
    pub async fn connect(&self) -> Result<Client, ClientError> {
        match self.scheme {
            Scheme::Ws => Client::connect_ws(&self.url, self.opts.clone()).await,
            Scheme::Tcp => Client::connect_tcp(self.authority.as_str(), self.opts.clone()).await,
            Scheme::SockJs => Client::connect_sockjs(&self.url, self.opts.clone()).await,
        }
    }

    /// The server's socket address (the first the host resolves to).
    pub async fn socket_addr(&self) -> Result<SocketAddr, String> {
        tokio::net::lookup_host(self.authority.as_str())
            .await
            .map_err(|e| format!("cannot resolve `{}`: {e}", self.authority))?
            .next()
            .ok_or_else(|| format!("`{}` resolves to nothing", self.authority))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let t = Target::local("ws://127.0.0.1:15674/ws").unwrap();
        assert_eq!(t.scheme, Scheme::Ws);
        assert_eq!(t.authority, "127.0.0.1:15674");
        assert_eq!(t.path, "/ws");
        assert_eq!(t.host_header(), "127.0.0.1");
        let t = Target::local("tcp://127.0.0.1:61613").unwrap();
        assert_eq!(t.scheme, Scheme::Tcp);
        assert_eq!(t.authority, "127.0.0.1:61613");
        let t = Target::local("http://127.0.0.1:61614/ws").unwrap();
        assert_eq!(t.scheme, Scheme::SockJs);
        assert_eq!(t.path, "/ws");
        assert!(Target::local("https://x").is_err());
        assert!(Target::local("ws:///ws").is_err());
    }
}
