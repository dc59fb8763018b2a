//! wisp: a small, fast first-boot agent for NetBSD, FreeBSD and OpenBSD machines deployed by
//! MAAS. See wisp(8) and the README.

#[macro_use]
mod out;

mod accounts;
mod apply;
mod boot;
mod cli;
mod cloudconfig;
mod commands;
mod config;
mod curtin;
mod engine;
mod fsutil;
mod instance;
mod log;
mod modules;
mod network;
mod plan;
mod platform;
mod rcconf;
mod report;
mod root;
mod rootfs;
mod runner;
mod sources;
mod standin;
mod state;
mod volumes;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_default();
    if let Some(code) = standin::dispatch(&argv0, &args.collect::<Vec<_>>()) {
        return ExitCode::from(code);
    }
    let mut cli = cli::Cli::parse();
    match root::absolute(&cli.root) {
        Ok(dir) => cli.root = dir,
        Err(e) => {
            eprintln!("wisp: error: {e:#}");
            return ExitCode::FAILURE;
        }
    }
    // The boot stages keep a log file; the other commands only talk to the console.
    let file = if cli.keeps_log() {
        match log::open(&root::Root::new(&cli.root)) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("wisp: warning: cannot open {}: {e}", log::LOG_FILE);
                None
            }
        }
    } else {
        None
    };
    let tee = log::Tee::new(file);
    tracing_subscriber::fmt()
        .with_writer(move || tee.clone())
        .with_max_level(cli.log_level())
        .with_target(false)
        .with_ansi(false)
        .init();
    match cli::run(&cli) {
        Ok(code) => ExitCode::from(code),
        // A reader that went away (`wisp query | head`) ends the output, not the command.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wisp: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
