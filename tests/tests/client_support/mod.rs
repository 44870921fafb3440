//! Shared by the `client_*` test binaries: connecting a client over either transport, and
//! bounded waits for messages.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::collections::HashSet;
use std::time::Duration;

use stomp_runtime::client::{Client, ClientError, ConnectOptions, Message, Subscription};
use stomp_tests::{TestServer, WAIT};

/// The transport a scenario runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Raw STOMP over TCP.
    Tcp,
    /// STOMP over WebSocket.
    Ws,
}

impl Transport {
    /// Connects with default options.
    pub async fn connect(self, server: &TestServer) -> Client {
        self.connect_with(server, ConnectOptions::new()).await
    }

    /// Connects with `opts`; panics if the server refuses.
    pub async fn connect_with(self, server: &TestServer, opts: ConnectOptions) -> Client {
        self.try_connect(server, opts)
            .await
            .unwrap_or_else(|e| panic!("{self:?} connect failed: {e}"))
    }

    /// Connects with `opts`, returning the server's refusal.
    pub async fn try_connect(
        self,
        server: &TestServer,
        opts: ConnectOptions,
    ) -> Result<Client, ClientError> {
        match self {
            Transport::Tcp => Client::connect_tcp(server.tcp_addr, opts).await,
            Transport::Ws => Client::connect_ws(&server.ws_url, opts).await,
        }
    }
}

/// Generates `mod $name { tcp, ws }` running `async fn $name(Transport)` on each transport.
macro_rules! on_both_transports {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use crate::client_support::Transport;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn tcp() {
                    super::$name(Transport::Tcp).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn ws() {
                    super::$name(Transport::Ws).await
                }
            }
        )*
    };
}
pub(crate) use on_both_transports;

/// The next message; panics if none arrives within [`WAIT`] or the connection ends.
pub async fn next(sub: &mut Subscription) -> Message {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(m)) => m,
        Ok(None) => panic!("subscription {} ended", sub.id()),
        Err(_) => panic!("no message for subscription {} within {WAIT:?}", sub.id()),
    }
}

/// The next `n` messages.
pub async fn messages(sub: &mut Subscription, n: usize) -> Vec<Message> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next(sub).await);
    }
    out
}

/// The bodies of the next `n` messages.
pub async fn bodies(sub: &mut Subscription, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(text(&next(sub).await));
    }
    out
}

/// The body as text; panics on non-UTF-8.
pub fn text(m: &Message) -> String {
    m.text().expect("UTF-8 body").to_owned()
}

/// Messages from either of two subscriptions until `n` arrived in total; returns the
/// bodies each one got, in arrival order.
pub async fn split_between(
    a: &mut Subscription,
    b: &mut Subscription,
    n: usize,
) -> (Vec<String>, Vec<String>) {
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    let collect = async {
        while got_a.len() + got_b.len() < n {
            tokio::select! {
                m = a.next() => got_a.push(text(&m.expect("subscription a ended"))),
                m = b.next() => got_b.push(text(&m.expect("subscription b ended"))),
            }
        }
    };
    tokio::time::timeout(WAIT, collect)
        .await
        .unwrap_or_else(|_| panic!("fewer than {n} messages within {WAIT:?}"));
    (got_a, got_b)
}

/// `["m0", "m1", ...]`.
pub fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Whether `items` has no repeats.
pub fn distinct(items: &[String]) -> bool {
    items.iter().collect::<HashSet<_>>().len() == items.len()
}

/// Polls `cond` until it holds, panicking after [`WAIT`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
