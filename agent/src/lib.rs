//! The heartwire agent.
//!
//! The data path, in the order a line travels it:
//! sockets ([`ingest`]) → [`batch::Batch`] over two bounded queues (datagrams may drop, streams
//! wait) → parse and aggregate on one owning thread ([`aggregate`]) → a snapshot published at
//! most every 100 ms → `/metrics` ([`expose`], [`server`]), verdicts evaluated at read time.
//! [`telemetry`] counts what happens on the way; [`clock`] is the only place that reads the time;
//! [`supervise`] watches every task and thread.

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
pub mod supervise;
pub mod telemetry;
