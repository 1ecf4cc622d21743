//! Shared support for heartwire's end-to-end tests.

pub mod agent;
pub mod peers;
