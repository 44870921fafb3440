//! `bench`: a load generator for STOMP servers, built on the crate's own client.
//!
//! Modes (`bench --help`): `fanout`, `connections`, `handler`, and `report` to compare
//! collected runs. Every measuring mode prints a progress line on stderr each second, a
//! human summary on stdout, and a one-line JSON summary last. Loopback targets only: runs
//! are bounded in time and stop by themselves.

pub mod cli;
pub mod connections;
pub mod fanout;
pub mod handler;
pub mod inproc;
pub mod payload;
pub mod plot;
pub mod progress;
pub mod rawconn;
pub mod report;
pub mod stats;
pub mod target;

use cli::{Cli, Command};

/// Runs one command to its end; the JSON summary, if the mode has one, is printed last.
pub fn run(cli: Cli) -> Result<(), String> {
    let command = match cli.command {
        Command::Report(args) => return report::run(&args),
        other => other,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let summary = runtime.block_on(async {
        match &command {
            Command::Fanout(args) => fanout::run(args).await,
            Command::Connections(args) => connections::run(args).await,
            Command::Handler(args) => handler::run(args).await,
            Command::Report(_) => unreachable!("handled above"),
        }
    })?;
    // Sessions still closing must not delay the exit.
    runtime.shutdown_background();
    println!("{summary}");
    Ok(())
}
