//! Host adapters: everything apsctl touches on the machine besides its own store.
//!
//! Main decision: this crate knows nothing about packages. It deals in sites, system users,
//! processes, interpreters and database servers; `aps-ops` turns package requirements into calls
//! here. All process and environment access goes through [`env::Env`].
#![deny(missing_docs)]
