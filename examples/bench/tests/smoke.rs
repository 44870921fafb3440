//! A tiny run of every generator mode against the in-process server: a few messages for
//! about a second. Checks counts and the summary's shape, never timings.

use bench::cli::{Cli, Command};
use bench::inproc::InProcServer;
use clap::Parser;

fn parse(args: &[&str]) -> Command {
    Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
        .expect("valid flags")
        .command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_delivers_every_message_over_every_transport() {
    let server = InProcServer::start().expect("in-process server");
    for url in [&server.ws_url, &server.tcp_url, &server.sockjs_url] {
        let Command::Fanout(args) = parse(&[
            "fanout", "--url", url, "-n", "3", "-p", "2", "-r", "40", "-s", "64", "-d", "1s",
            "--label", "smoke",
        ]) else {
            unreachable!("fanout flags")
        };
        let summary = bench::fanout::run(&args).await.expect("fanout runs");
        let sent = summary["sent"].as_u64().unwrap();
        assert!(sent > 0, "{summary}");
        assert_eq!(summary["expected"].as_u64().unwrap(), sent * 3, "{summary}");
        assert_eq!(summary["delivered"], summary["expected"], "{summary}");
        assert_eq!(summary["loss"], 0, "{summary}");
        assert_eq!(summary["unstamped"], 0, "{summary}");
        assert_eq!(summary["label"], "smoke");
        assert_eq!(
            summary["latency_us"]["count"].as_u64().unwrap(),
            sent * 3,
            "{summary}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_open_from_several_source_addresses() {
    let server = InProcServer::start().expect("in-process server");
    let pid = std::process::id().to_string();
    let Command::Connections(args) = parse(&[
        "connections",
        "--url",
        &server.ws_url,
        "-n",
        "20",
        "--per-source",
        "8",
        "--server-pid",
        &pid,
        "--settle",
        "0s",
    ]) else {
        unreachable!("connections flags")
    };
    let summary = bench::connections::run(&args)
        .await
        .expect("connections run");
    assert_eq!(summary["established"], 20, "{summary}");
    assert_eq!(summary["source_addresses"], 3, "{summary}");
    assert_eq!(summary["verify_received"], 20, "{summary}");
    assert!(
        summary["server_rss_after_kib"].as_u64().is_some(),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_round_trips_alternate_with_plain_publishes() {
    let Command::Handler(args) = parse(&["handler", "--transport", "tcp", "-d", "1s"]) else {
        unreachable!("handler flags")
    };
    let summary = bench::handler::run(&args).await.expect("handler runs");
    let pairs = summary["pairs"].as_u64().unwrap();
    assert!(pairs > 0, "{summary}");
    assert_eq!(summary["plain_latency_us"]["count"], pairs, "{summary}");
    assert!(summary["ratio_mean"].as_f64().is_some(), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_hold_sockjs_sessions() {
    let server = InProcServer::start().expect("in-process server");
    let Command::Connections(args) = parse(&[
        "connections",
        "--url",
        &server.sockjs_url,
        "-n",
        "10",
        "--settle",
        "0s",
    ]) else {
        unreachable!("connections flags")
    };
    let summary = bench::connections::run(&args)
        .await
        .expect("connections run");
    assert_eq!(summary["transport"], "sockjs-xhr-streaming", "{summary}");
    assert_eq!(summary["established"], 10, "{summary}");
    assert_eq!(summary["verify_received"], 10, "{summary}");
}
