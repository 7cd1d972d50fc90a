//! A pool of store connections, so that one controller can run operations on several threads.
//!
//! Main decision: a [`Store`] is one `SQLite` connection (`Send`, not `Sync`). The pool keeps the
//! idle ones; [`StorePool::get`] hands out one for the caller's exclusive use and takes it back
//! when the [`PooledStore`] is dropped. Each thread therefore writes through its own connection,
//! WAL lets readers run beside the writer, and `busy_timeout` makes concurrent writers queue
//! instead of failing. Only the first connection runs the migrations.
//!
//! Known gap: the pool never shrinks below what it held at its busiest, up to [`MAX_IDLE`].
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::{Store, StoreError};

/// Idle connections kept for reuse; more are closed when returned.
pub const MAX_IDLE: usize = 16;

/// Connections to one store file.
#[derive(Debug)]
pub struct StorePool {
    path: PathBuf,
    idle: Mutex<Vec<Store>>,
}

impl StorePool {
    /// Opens the store at `path` (creating and migrating it, see [`Store::open`]) and keeps that
    /// first connection for reuse.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let first = Store::open(path.as_ref())?;
        Ok(Self {
            path: path.as_ref().to_path_buf(),
            idle: Mutex::new(vec![first]),
        })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One more connection, outside the pool, for a caller that keeps it (a watch on the
    /// store's data version).
    pub fn dedicated(&self) -> Result<Store, StoreError> {
        Store::connect(&self.path)
    }

    /// A connection for the caller alone until the guard is dropped.
    pub fn get(&self) -> Result<PooledStore<'_>, StoreError> {
        let reused = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let store = match reused {
            Some(store) => store,
            None => Store::connect(&self.path)?,
        };
        Ok(PooledStore {
            store: Some(store),
            pool: self,
        })
    }
}

/// A connection borrowed from a [`StorePool`].
#[derive(Debug)]
pub struct PooledStore<'p> {
    store: Option<Store>,
    pool: &'p StorePool,
}

impl Deref for PooledStore<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        // Present from `get` until `drop`.
        self.store
            .as_ref()
            .unwrap_or_else(|| unreachable!("a pooled store is present until dropped"))
    }
}

impl Drop for PooledStore<'_> {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            let mut idle = self
                .pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE {
                idle.push(store);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_get_their_own_connections() {
        let dir = tempfile::tempdir().unwrap();
        let pool = StorePool::open(dir.path().join("store.sqlite3")).unwrap();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..20 {
                        let store = pool.get().unwrap();
                        store.journal().unfinished_operations().unwrap();
                    }
                });
            }
        });
        assert!(pool.idle.lock().unwrap().len() <= 4);
    }
}
