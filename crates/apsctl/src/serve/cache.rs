//! Answers of hot list reads kept between requests while the store does not change.
//!
//! Main decision: an entry is keyed by the store's data version (`aps_ops::StoreWatch`: SQLite's
//! `PRAGMA data_version` on a connection of its own, which changes whenever anybody — this
//! service, the CLI, another process — commits). The version is read before the answer is
//! computed, so a commit during the computation makes the next request compute again: an
//! answer is never older than the last commit before its request. The CLI and the service share
//! one home, and a list a control panel polls (`GET /v1/instances`) costs one pragma and a copy
//! of the bytes instead of a query and a serialization.
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use axum::body::Bytes;

/// The cached answers.
#[derive(Debug)]
pub(crate) struct ReadCache {
    watch: aps_ops::context::StoreWatch,
    entries: Mutex<HashMap<&'static str, (i64, Bytes)>>,
}

impl ReadCache {
    /// A cache watching `ctx`'s store.
    pub fn new(ctx: &aps_ops::Context) -> Result<Self, aps_ops::Error> {
        Ok(Self {
            watch: ctx.watch_store()?,
            entries: Mutex::new(HashMap::new()),
        })
    }

    /// The answer `key` for the store as it is now: kept, or made by `make` (and kept).
    pub fn get(
        &self,
        key: &'static str,
        make: impl FnOnce() -> Result<Bytes, aps_ops::Error>,
    ) -> Result<Bytes, aps_ops::Error> {
        let version = self.watch.version()?;
        if let Some((kept, bytes)) = self.lock().get(key) {
            if *kept == version {
                return Ok(bytes.clone());
            }
        }
        let bytes = make()?;
        self.lock().insert(key, (version, bytes.clone()));
        Ok(bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, (i64, Bytes)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
