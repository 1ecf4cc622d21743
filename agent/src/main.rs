//! `heartwire`: the sidecar agent's command line.

use std::process::ExitCode;

use clap::Parser;
use heartwire::cli::{Cli, Command};
use heartwire::{app, run, send};

fn main() -> ExitCode {
    match Cli::parse().into_command() {
        Command::Serve(args) => app::main(&args),
        Command::Send(args) => send::main(&args),
        Command::Run(args) => run::main(&args),
    }
}
