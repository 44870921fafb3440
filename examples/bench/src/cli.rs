//! Command-line flags of every mode.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A load generator for STOMP servers over WebSocket and TCP, loopback only.
///
/// Each run prints a progress line on stderr every second, a human summary, and a one-line
/// JSON summary last on stdout (collect those lines and feed them to `bench report`).
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    /// What to measure.
    #[command(subcommand)]
    pub command: Command,
}

/// The modes.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// N subscribers and P publishers on one topic: delivered msgs/s, loss, end-to-end
    /// latency (timestamp in the body).
    Fanout(FanoutArgs),
    /// N concurrent sessions, each with one subscription, from many 127.0.0.x source
    /// addresses: time to establish and server RSS per session.
    Connections(ConnectionsArgs),
    /// Round trip of a SEND to an `/app` handler (`#[message_mapping]` + `#[send_to]`)
    /// next to a plain broker publish, against an in-process server.
    Handler(HandlerArgs),
    /// Reads JSON summaries (one per line) and prints ours-vs-other tables with ratios;
    /// optionally draws the latency percentiles as a PNG.
    Report(ReportArgs),
}

/// Where to connect and how to introduce ourselves; shared by the modes that take a URL.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// The server: `ws://HOST:PORT/PATH` for WebSocket, `tcp://HOST:PORT` for raw STOMP,
    /// `http://HOST:PORT/PATH` for SockJS (xhr-streaming).
    #[arg(long, value_name = "URL", default_value = "ws://127.0.0.1:61614/ws")]
    pub url: String,

    /// CONNECT `login` (RabbitMQ: guest).
    #[arg(long)]
    pub login: Option<String>,

    /// CONNECT `passcode` (RabbitMQ: guest).
    #[arg(long)]
    pub passcode: Option<String>,

    /// CONNECT `host` header (RabbitMQ reads it as the virtual host, `/` by default)
    /// [default: the URL's host].
    #[arg(long, value_name = "HOST")]
    pub vhost: Option<String>,

    /// Sessions being opened at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub connect_concurrency: usize,
}

/// Tags carried into the JSON summary, for `bench report`.
#[derive(Debug, Clone, Args)]
pub struct TagArgs {
    /// Which server this run measured (`ours`, `rabbitmq`, ...).
    #[arg(long, default_value = "")]
    pub label: String,

    /// Which scenario this run belongs to; runs of one scenario are compared by `report`
    /// [default: the mode].
    #[arg(long)]
    pub scenario: Option<String>,
}

/// `fanout` flags.
#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    #[command(flatten)]
    pub tag: TagArgs,

    /// Subscribing sessions (one subscription each, confirmed by RECEIPT before publishing).
    #[arg(short = 'n', long, value_name = "N", default_value_t = 100)]
    pub subscribers: usize,

    /// Publishing sessions.
    #[arg(short = 'p', long, value_name = "P", default_value_t = 1)]
    pub publishers: usize,

    /// Offered rate in messages per second over all publishers; 0 sends as fast as the
    /// window allows.
    #[arg(short, long, value_name = "MSGS_PER_S", default_value_t = 0)]
    pub rate: u64,

    /// Body size in bytes (the send-time stamp takes the first 25 to 35).
    #[arg(short, long, value_name = "BYTES", default_value_t = 128)]
    pub size: usize,

    /// How long to publish, e.g. `10s`, `1500ms`.
    #[arg(short, long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Most messages published but not yet received by the slowest subscriber; publishers
    /// wait beyond it, so a fast publisher measures throughput instead of queue growth.
    /// 0: no window [default: about 256 KiB of messages with --rate 0, none with a rate].
    #[arg(short, long, value_name = "MSGS")]
    pub window: Option<u64>,

    /// Topic to use [default: /topic/bench.<pid>].
    #[arg(long, value_name = "DEST")]
    pub destination: Option<String>,

    /// Another server the subscribers are spread over, round robin with --url (repeatable):
    /// the nodes of a relayed cluster. Publishers stay on --url.
    #[arg(long, value_name = "URL")]
    pub subscribe_url: Vec<String>,

    /// Longest wait after publishing stops for the last messages to arrive.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub drain: Duration,
}

/// `connections` flags.
#[derive(Debug, Clone, Args)]
pub struct ConnectionsArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    #[command(flatten)]
    pub tag: TagArgs,

    /// Concurrent sessions to open, each with one subscription.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 1000)]
    pub sessions: usize,

    /// Sessions per source address (127.0.0.1, 127.0.0.2, ...); one address has about
    /// 28k ephemeral ports (net.ipv4.ip_local_port_range).
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub per_source: usize,

    /// PID of the server: its VmRSS is read before and after, for RSS per session.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,

    /// Pause after the last session is up before reading the server's RSS.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub settle: Duration,

    /// Publish one message to the topic at the end and count the sessions that get it.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub verify: bool,

    /// Topic the sessions subscribe to [default: /topic/bench.idle.<pid>].
    #[arg(long, value_name = "DEST")]
    pub destination: Option<String>,

    /// Longest time allowed for opening all sessions.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// The in-process server's transport for `handler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// STOMP over WebSocket.
    Ws,
    /// Raw STOMP over TCP.
    Tcp,
}

/// `handler` flags.
#[derive(Debug, Clone, Args)]
pub struct HandlerArgs {
    #[command(flatten)]
    pub tag: TagArgs,

    /// Transport to the in-process server.
    #[arg(long, value_enum, default_value_t = Transport::Ws)]
    pub transport: Transport,

    /// Use this server instead of an in-process one; it must route `/app/bench.echo` to a
    /// handler that sends the body back to `/topic/bench.echo`.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// Body size in bytes.
    #[arg(short, long, value_name = "BYTES", default_value_t = 128)]
    pub size: usize,

    /// How long to run (round trips alternate: handler, plain, handler, ...).
    #[arg(short, long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
}

/// `report` flags.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Files of JSON summaries, one per line (other lines are skipped).
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<PathBuf>,

    /// The label whose runs are the numerators of the ratios.
    #[arg(long, default_value = "ours")]
    pub ours: String,

    /// The label to compare with.
    #[arg(long, default_value = "rabbitmq")]
    pub other: String,

    /// Draw latency percentiles of every scenario with latencies into this PNG.
    #[arg(long, value_name = "PNG")]
    pub plot: Option<PathBuf>,
}

/// `10s`, `250ms`, `2m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 10s or 500ms"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit `{unit}` in `{s}` (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("x").is_err());
    }
}
