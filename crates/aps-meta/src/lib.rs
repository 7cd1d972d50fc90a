//! The shared vocabulary of apsctl: the APS 1.x package metadata model and everything that can be
//! computed from metadata bytes alone.
//!
//! Main decision: this crate is pure. It takes bytes and returns values; it does no I/O, spawns
//! nothing and depends on no other apsctl crate, so every other crate may use its value types.
//! Raw XML stays private to the parsers; the rest of apsctl sees only the typed model.
#![deny(missing_docs)]

pub mod applist;
pub mod lint;
pub mod matchexpr;
pub mod model;
pub mod ns;
pub mod parse;
pub mod value;
pub mod version;
