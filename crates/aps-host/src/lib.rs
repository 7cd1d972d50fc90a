//! Host adapters: everything apsctl touches on the machine besides its own store.
//!
//! Main decision: this crate knows nothing about packages. It deals in sites, system users,
//! processes, interpreters and database servers; `aps-ops` turns package requirements into calls
//! here. All process and environment access goes through [`env::Env`].
#![deny(missing_docs)]

pub mod configure_output;
pub mod db;
pub mod env;
pub mod fsx;
pub mod interp;
pub mod lock;
pub mod names;
pub mod php;
pub mod quota;
pub mod reaper;
pub mod redact;
pub mod runner;
pub mod safedir;
pub mod shown;
pub mod user;
pub mod web;
