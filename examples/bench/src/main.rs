//! `bench`: load generator for STOMP servers. `bench --help` lists the modes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = bench::cli::Cli::parse();
    match bench::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
