//! wisp: a small, fast first-boot agent for NetBSD, FreeBSD and OpenBSD machines deployed by
//! MAAS. See wisp(8) and the README.

mod accounts;
mod apply;
mod cli;
mod cloudconfig;
mod commands;
mod config;
mod fsutil;
mod instance;
mod modules;
mod plan;
mod platform;
mod rcconf;
mod root;
mod sources;
mod state;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(cli.log_level())
        .with_target(false)
        .without_time()
        .init();
    match cli::run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("wisp: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
