//! `heartwire`: the sidecar agent's command line.

use clap::Parser;

/// A sidecar agent that turns one-line job, heartbeat and outbound-call reports into health
/// metrics: Prometheus `/metrics`, OTLP, readiness and alert rules.
#[derive(Debug, Parser)]
#[command(name = "heartwire", version, about, long_about = None)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    println!("heartwire {}: the agent itself arrives with the next release; see README.md", env!("CARGO_PKG_VERSION"));
}
