//! Safe reading of untrusted `.app.zip` packages.
//!
//! Main decision: an archive is read entry by entry and never extracted blindly. Every entry name
//! is checked before use, only regular files and directories are accepted, sizes are capped, and
//! each file is hashed in the same streaming pass that writes it into a private staging folder,
//! so APP-LIST.xml is verified without reading anything twice. A refusal removes the staging
//! folder before it returns.
#![deny(missing_docs)]
