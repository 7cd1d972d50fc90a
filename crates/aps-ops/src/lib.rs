//! The operations layer: every command of apsctl is one function here.
//!
//! Main decision: the CLI (and later the HTTP service) are thin edges. They parse their input into
//! an options struct, call one function of this crate with a [`Context`] and a [`Reporter`], and
//! render the report it returns. Nothing here prints; nothing here knows about clap or JSON
//! rendering. Data flows one way: edge → operations → domain crates (`aps-meta`, `aps-archive`) →
//! store (`aps-store`) and host adapters (`aps-host`).
#![deny(missing_docs)]

pub mod backup;
pub mod change;
pub mod configure;
pub mod context;
pub mod database;
mod deploy;
pub mod error;
pub mod global;
pub mod home;
pub mod install;
pub mod instance;
pub mod jobs;
pub mod journal;
mod lock;
pub mod package;
mod placement;
pub mod recover;
pub mod remove;
pub mod report;
pub mod restore;
mod runtime;
pub mod schedule;
mod script;
pub mod server;
pub mod settings;
pub mod site;
pub mod site_update;
pub mod status;
mod undo;
pub mod updates;
pub mod upgrade;
mod vars;
pub mod vault;
mod web;

pub use aps_host::env::{self, Env, vars as env_vars};
pub use aps_host::shown;
pub use context::Context;
pub use error::{Error, ErrorKind};
pub use report::Reporter;

/// The store schema version this apsctl writes (`apsctl --version`).
pub fn store_schema_version() -> usize {
    aps_store::SCHEMA_VERSION
}

/// The current time as the store records it.
pub(crate) fn now(ctx: &Context) -> aps_store::time::Timestamp {
    aps_store::time::Timestamp::from_system_time(ctx.env.now())
}
