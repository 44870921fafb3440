//! Command-line flags, and how they become a [`StompServer`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use stomp_runtime::broker::{RelayConfig, SimpleBroker};
use stomp_runtime::budget::MemoryBudget;
use stomp_runtime::config::{Limits, SlowConsumerPolicy};
use stomp_runtime::{BuildError, StompServer};

/// A standalone STOMP 1.0-1.2 server with the in-memory broker (or a relay to RabbitMQ), over
/// WebSocket and raw TCP.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Flags {
    /// Address of the WebSocket endpoint (HTTP upgrade at --ws-path).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:61614")]
    pub ws: SocketAddr,

    /// Do not serve WebSocket.
    #[arg(long, conflicts_with = "no_tcp")]
    pub no_ws: bool,

    /// Path of the WebSocket endpoint.
    #[arg(long, value_name = "PATH", default_value = "/ws", value_parser = parse_path)]
    pub ws_path: String,

    /// Address of the raw STOMP-over-TCP listener.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:61613")]
    pub tcp: SocketAddr,

    /// Do not serve raw TCP.
    #[arg(long)]
    pub no_tcp: bool,

    /// Threads for each transport: actix-web workers for WebSocket, tokio workers for TCP
    /// [default: number of CPUs].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,

    /// Most WebSocket connections each actix-web worker holds (actix's default is 25,600;
    /// raise it for 100k sessions).
    #[arg(long, value_name = "N", default_value_t = 25_600)]
    pub max_connections_per_worker: usize,

    /// Smallest interval at which the server can send heart-beats, in ms (0: never).
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub heartbeat_send_ms: u64,

    /// Interval at which the server wants to receive heart-beats, in ms (0: never).
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub heartbeat_receive_ms: u64,

    /// Largest frame, head and body together, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_frame_size)]
    pub max_frame_size: usize,

    /// Most headers in one frame.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_headers)]
    pub max_headers: usize,

    /// Longest header line (name, colon and value), in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_header_line)]
    pub max_header_line: usize,

    /// Most subscriptions one session may hold.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_subscriptions)]
    pub max_subscriptions: usize,

    /// Most frames a session may hold in open transactions.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_pending_frames)]
    pub max_pending_frames: usize,

    /// Bytes queued for one session's socket before it counts as a slow consumer.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_outbound_bytes)]
    pub max_outbound_bytes: usize,

    /// Connections served at once, all transports together.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,

    /// Connections from one remote address at once (raise it for load tests from one
    /// host).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections_per_address)]
    pub max_connections_per_address: usize,

    /// New connections one remote address may open per second (raise it for load tests
    /// from one host).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connects_per_second)]
    pub max_connects_per_second: usize,

    /// Bytes of client-created state (queued, unacknowledged, transactions, subscriptions,
    /// queue backlogs) the whole server may hold.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().memory_budget)]
    pub memory_budget: usize,

    /// What happens to a session that exceeds --max-outbound-bytes.
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = SlowConsumer::Disconnect)]
    pub slow_consumer: SlowConsumer,

    /// Destination prefix that broadcasts to every subscriber (repeatable).
    #[arg(long = "topic-prefix", value_name = "PREFIX", default_value = "/topic", value_parser = parse_path)]
    pub topic_prefixes: Vec<String>,

    /// Destination prefix with competing consumers, one per message (repeatable).
    #[arg(long = "queue-prefix", value_name = "PREFIX", default_value = "/queue", value_parser = parse_path)]
    pub queue_prefixes: Vec<String>,

    /// Messages a queue keeps while it has no subscriber [default: the broker's own].
    #[arg(long, value_name = "N")]
    pub queue_backlog: Option<usize>,

    /// Destination prefix of application handlers (this broker registers none).
    #[arg(long, value_name = "PREFIX", default_value = "/app", value_parser = parse_path)]
    pub app_prefix: String,

    /// Prefix of user destinations.
    #[arg(long, value_name = "PREFIX", default_value = "/user", value_parser = parse_path)]
    pub user_prefix: String,

    /// How long a new connection may take to send CONNECT, in ms.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub connect_timeout_ms: u64,

    /// Relay the topic and queue prefixes to RabbitMQ's STOMP adapter instead of keeping
    /// them in memory, so that several servers share subscribers, queues and users: one
    /// or more `stomp://HOST:PORT`, comma-separated, tried in turn. The prefixes must then
    /// be RabbitMQ's (/topic, /queue, /exchange, /amq/queue).
    #[arg(
        long,
        value_name = "URLS",
        value_delimiter = ',',
        conflicts_with = "queue_backlog"
    )]
    pub relay: Vec<String>,

    /// Login for the relay's broker connections.
    #[arg(
        long,
        value_name = "LOGIN",
        default_value = "guest",
        requires = "relay"
    )]
    pub relay_login: String,

    /// Passcode for the relay's broker connections.
    #[arg(
        long,
        value_name = "PASSCODE",
        default_value = "guest",
        requires = "relay"
    )]
    pub relay_passcode: String,

    /// Virtual host of the relay's broker connections [default: RabbitMQ's `/`].
    #[arg(long, value_name = "VHOST", requires = "relay")]
    pub relay_vhost: Option<String>,
}

/// [`SlowConsumerPolicy`] as a flag value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SlowConsumer {
    /// Send an ERROR frame and close the connection.
    Disconnect,
    /// Drop the message that does not fit and keep the session.
    DropMessage,
}

impl From<SlowConsumer> for SlowConsumerPolicy {
    fn from(value: SlowConsumer) -> Self {
        match value {
            SlowConsumer::Disconnect => SlowConsumerPolicy::Disconnect,
            SlowConsumer::DropMessage => SlowConsumerPolicy::DropMessage,
        }
    }
}

impl Flags {
    /// Threads per transport.
    pub fn workers(&self) -> usize {
        self.workers.map(usize::from).unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// The server these flags describe.
    pub fn server(&self) -> Result<StompServer, BuildError> {
        let limits = Limits {
            max_frame_size: self.max_frame_size,
            max_headers: self.max_headers,
            max_header_line: self.max_header_line,
            max_subscriptions: self.max_subscriptions,
            max_pending_frames: self.max_pending_frames,
            max_outbound_bytes: self.max_outbound_bytes,
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            max_connects_per_second: self.max_connects_per_second,
            memory_budget: self.memory_budget,
            ..Limits::default()
        };
        // Shared with the simple broker, so that queue backlogs count too.
        let budget = MemoryBudget::new(limits.memory_budget);
        let builder = if self.relay.is_empty() {
            // The broker is built here rather than with `simple_broker`, which tells queues
            // from topics by a `/queue` prefix: `--queue-prefix /jobs` must still
            // load-balance.
            let mut broker = SimpleBroker::new(&self.topic_prefixes, &self.queue_prefixes)
                .max_queues(limits.max_queues)
                .max_backlog_bytes(limits.max_backlog_bytes)
                .max_backlog(limits.max_queue_backlog)
                .memory_budget(budget.clone());
            if let Some(max) = self.queue_backlog {
                broker = broker.max_backlog(max);
            }
            StompServer::builder().broker(Arc::new(broker))
        } else {
            StompServer::builder().relay(RelayConfig {
                addresses: self.relay.clone(),
                login: self.relay_login.clone(),
                passcode: self.relay_passcode.clone(),
                virtual_host: self.relay_vhost.clone(),
                prefixes: self
                    .topic_prefixes
                    .iter()
                    .chain(&self.queue_prefixes)
                    .cloned()
                    .collect(),
                ..RelayConfig::default()
            })
        };
        builder
            .memory_budget(budget)
            .app_prefix(&self.app_prefix)
            .user_prefix(&self.user_prefix)
            .heartbeat(self.heartbeat_send_ms, self.heartbeat_receive_ms)
            .limits(limits)
            .slow_consumer(self.slow_consumer.into())
            .connect_timeout(Duration::from_millis(self.connect_timeout_ms))
            .build()
    }
}

/// Paths and destination prefixes start with `/`.
fn parse_path(value: &str) -> Result<String, String> {
    if value.starts_with('/') {
        Ok(value.to_owned())
    } else {
        Err(format!("`{value}` must start with `/`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent() {
        Flags::command().debug_assert();
    }

    #[test]
    fn defaults_build_a_server() {
        let flags = Flags::parse_from(["broker"]);
        assert_eq!(flags.ws.to_string(), "127.0.0.1:61614");
        assert_eq!(flags.tcp.to_string(), "127.0.0.1:61613");
        assert_eq!(flags.topic_prefixes, ["/topic"]);
        assert_eq!(flags.queue_prefixes, ["/queue"]);
        let server = flags.server().expect("defaults are valid");
        assert_eq!(server.config().limits, Limits::default());
        assert!(server.broker().handles("/queue/a"));
        assert!(!server.broker().handles("/jobs/a"));
    }

    #[test]
    fn custom_prefixes_and_limits() {
        let flags = Flags::parse_from([
            "broker",
            "--queue-prefix",
            "/jobs",
            "--topic-prefix",
            "/news",
            "--topic-prefix",
            "/chat",
            "--max-frame-size",
            "1024",
            "--slow-consumer",
            "drop-message",
        ]);
        let server = flags.server().expect("valid");
        assert!(server.broker().handles("/jobs/a"));
        assert!(server.broker().handles("/chat/a"));
        assert!(!server.broker().handles("/topic/a"));
        assert_eq!(server.config().limits.max_frame_size, 1024);
        assert_eq!(
            server.config().slow_consumer,
            SlowConsumerPolicy::DropMessage
        );
    }

    #[test]
    fn relay_flags_build_a_relaying_server() {
        let flags = Flags::parse_from([
            "broker",
            "--relay",
            "stomp://127.0.0.1:1,stomp://127.0.0.1:2",
            "--relay-login",
            "app",
            "--relay-vhost",
            "/chat",
        ]);
        let server = flags.server().expect("valid");
        let relay = server.relay().expect("relaying");
        assert_eq!(relay.config().addresses, ["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(relay.config().login, "app");
        assert_eq!(relay.config().passcode, "guest");
        assert_eq!(relay.config().virtual_host.as_deref(), Some("/chat"));
        assert!(server.broker().handles("/queue/a"));
        // RabbitMQ has no `/jobs`: said at start-up, not at the first SUBSCRIBE.
        let err = Flags::parse_from([
            "broker",
            "--relay",
            "stomp://h:1",
            "--queue-prefix",
            "/jobs",
        ])
        .server()
        .err()
        .expect("refused");
        assert!(err.to_string().contains("/jobs"), "{err}");
        assert!(Flags::try_parse_from(["broker", "--relay-login", "x"]).is_err());
    }

    #[test]
    fn rejects_relative_paths_and_disabling_both() {
        assert!(Flags::try_parse_from(["broker", "--ws-path", "ws"]).is_err());
        assert!(Flags::try_parse_from(["broker", "--no-ws", "--no-tcp"]).is_err());
    }
}
