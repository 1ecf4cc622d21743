//! Shared support for heartwire's end-to-end tests.
