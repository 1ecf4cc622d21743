//! The heartwire agent.
//!
//! The data path, in the order a line travels it:
//! sockets ([`ingest`]) → [`batch::Batch`] over a bounded channel → parse and aggregate in one
//! owning task ([`aggregate`]) → a snapshot on request → `/metrics` ([`expose`], [`server`]).
//! [`telemetry`] counts what happens on the way; [`clock`] is the only place that reads the time.

pub mod aggregate;
pub mod app;
pub mod batch;
pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod export;
pub mod expose;
pub mod health;
pub mod ingest;
pub mod reload;
pub mod rules;
pub mod run;
pub mod send;
pub mod server;
pub mod status;
pub mod telemetry;
