//! sip-edge (work in progress)
#![warn(missing_docs)]

pub mod builder;
pub mod edit;
pub mod message;
pub mod transaction;

pub(crate) use std::time::Instant;
