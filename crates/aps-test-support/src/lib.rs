//! Test fixtures shared by apsctl's test suites: package builders, hostile archives and real web
//! servers ([`web`]).
//!
//! Main decision: packages are built in code, never checked in, so every test states exactly
//! what its package contains. [`PackageBuilder`] writes real zip files with the `zip` crate and a
//! correct APP-LIST.xml by default; the hostile cases the `zip` crate refuses to write (duplicate
//! names, names that are not UTF-8, special files, headers that lie about sizes) are produced by
//! writing a placeholder and patching the finished archive's headers in place.
//!
//! Known gaps: no sandboxed home/site environment yet; bombs are real data (a size that is only
//! declared needs [`PackageBuilder::lying_entry`]), so tests should use small archive limits
//! rather than gigabytes of zeros.
#![deny(missing_docs)]

mod bench;
mod builder;
mod meta;
mod patch;
pub mod web;

pub use bench::bench_package;
pub use builder::{ListDigest, PackageBuilder};
pub use meta::minimal_meta_xml;
