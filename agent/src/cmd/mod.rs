//! The subcommands other than `serve` (which is [`crate::app`]), and the command line itself.
//!
//! - [`cli`]: the arguments of every subcommand (clap).
//! - [`check`]: `heartwire check`, `heartwire config print-default` and `heartwire config schema`.
//! - [`send`]: `heartwire send`, lines to a running agent.
//! - [`run`]: `heartwire run`, a command watched as a job.
//! - [`rules`]: `heartwire rules` and `heartwire dashboard`.
//! - [`suggest`]: `heartwire config suggest`, a `jobs:` block from a running agent.

pub mod check;
pub mod cli;
pub mod rules;
pub mod run;
pub mod send;
pub mod suggest;
