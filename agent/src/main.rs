//! `heartwire`: the sidecar agent's command line.

use std::process::ExitCode;

use clap::Parser;
use heartwire::app;
use heartwire::cmd::cli::{Cli, Command, ConfigCommand};
use heartwire::cmd::{check, rules, run, send, suggest};

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
