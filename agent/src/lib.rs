//! The heartwire agent.
//!
//! The data path, in the order a line travels it (ARCHITECTURE.md draws it):
//! sockets ([`ingest`]) → [`ingest::batch::Batch`] over two bounded queues (datagrams may drop,
//! streams wait) → parse and aggregate on one owning thread ([`aggregate`], with the verdicts of
//! [`health`]) → a snapshot published at most every 100 ms → `/metrics`, `/readyz`, `/status`
//! ([`expose`], verdicts evaluated at read time) and the push outputs ([`export`]).
//! [`config`] loads, validates and reloads the file; [`telemetry`] counts what happens on the
//! way; [`clock`] is the only place that reads the time; [`app`] wires the tasks and
//! [`supervise`] watches every one; [`cmd`] holds the other subcommands; [`rules`] derives alert
//! rules and the dashboard from a config; [`naming`] turns what senders wrote into Prometheus
//! names, for both the aggregator and the config.

pub mod aggregate;
pub mod app;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod export;
pub mod expose;
pub mod health;
pub mod ingest;
pub mod naming;
pub mod rules;
pub mod state;
pub mod supervise;
pub mod telemetry;
