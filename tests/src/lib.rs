//! Shared support for heartwire's end-to-end tests.

pub mod agent;
pub mod expect;
pub mod generated;
pub mod otlp_receiver;
pub mod peers;
pub mod prometheus;
pub mod rule_file;
