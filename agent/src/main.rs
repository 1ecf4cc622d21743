//! `heartwire`: the sidecar agent's command line.

use std::process::ExitCode;

use clap::Parser;
use heartwire::app;
use heartwire::cmd::cli::{Cli, Command, ConfigCommand};
use heartwire::cmd::{check, rules, run, send, suggest};

/// The C maths library's `pow`, from the `libm` crate (musl's, kept by the Rust project). The
/// only call to the C library's maths in the agent is tokio's scheduler averaging its poll
/// times (`f64::powf`); with `pow` defined here the linker needs nothing from `libm.so.6`, so it
/// is not loaded at all: 0.6 MB less resident in every pod (issue 16). Not exported: nothing
/// outside the binary calls it.
#[unsafe(no_mangle)]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

fn main() -> ExitCode {
    match Cli::parse().into_command() {
        Command::Serve(args) => app::main(&args),
        Command::Send(args) => send::main(&args),
        Command::Run(args) => run::main(&args),
        Command::Rules(args) => rules::rules_main(&args),
        Command::Dashboard(args) => rules::dashboard_main(&args),
        Command::Check(args) => check::main(args.config.as_deref()),
        Command::Config(ConfigCommand::PrintDefault) => check::print_default(),
        Command::Config(ConfigCommand::Suggest(args)) => suggest::main(&args),
        Command::Config(ConfigCommand::Schema(args)) => check::print_schema(args.chart),
    }
}
