//! The context every operation runs in: the home, the store, the host environment and the limits.
//!
//! Main decision: a [`Context`] is shared by every operation of a controller, on any number of
//! threads at once (the HTTP service runs operations on a blocking pool): it is `Sync`, and each
//! store access borrows a connection of its own from a pool ([`Context::store`]), so one
//! operation's transaction never mixes with another's.
use std::time::Duration;

use aps_archive::Limits;
use aps_host::env::Env;
use aps_store::{PooledStore, StorePool};

use crate::error::Error;
use crate::home::Home;

/// Tunables of a controller, with the defaults of the reference.
#[derive(Debug, Clone)]
pub struct Config {
    /// Limits applied to every package archive (entry count, unpacked size, compression ratio).
    pub archive_limits: Limits,
    /// How long a package script may run before its process group is killed (D7: 15 minutes).
    pub script_timeout: Duration,
    /// How many bytes of a script's stdout and of its stderr are kept.
    pub output_cap: usize,
    /// How long to wait for a lock held by another operation (`--wait`); `None` waits the
    /// default of each lock (see `lock.rs`).
    pub lock_wait: Option<Duration>,
    /// The lowest uid a site's user may have; `None`: the start of the login range (`UID_MIN` in
    /// `/etc/login.defs`, default 1000). Root is refused whatever this says.
    pub min_site_uid: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            archive_limits: Limits::default(),
            script_timeout: Duration::from_secs(15 * 60),
            output_cap: 1 << 20,
            lock_wait: None,
            min_site_uid: None,
        }
    }
}

/// Everything an operation needs from its surroundings.
#[derive(Debug)]
pub struct Context {
    /// The controller's home.
    pub home: Home,
    /// Connections to the store in the home.
    stores: StorePool,
    /// The process environment and the door to child processes.
    pub env: Env,
    /// Limits and timeouts.
    pub config: Config,
    /// Seals secrets before they enter the store.
    pub vault: crate::vault::Vault,
}

impl Context {
    /// Opens the home at `home` (creating it) and its store.
    pub fn open(home: &std::path::Path, env: Env, config: Config) -> Result<Self, Error> {
        let home = Home::open(home)?;
        let stores = StorePool::open(home.store())?;
        let vault = crate::vault::Vault::open(&home.secret_key())?;
        Ok(Self {
            home,
            stores,
            env,
            config,
            vault,
        })
    }

    /// A store connection for the caller alone (one transaction at a time on it).
    pub fn store(&self) -> Result<PooledStore<'_>, Error> {
        Ok(self.stores.get()?)
    }

    /// A watch on the store: a connection of its own that only tells whether anything was
    /// committed since it last looked (for caches of reads).
    pub fn watch_store(&self) -> Result<StoreWatch, Error> {
        Ok(StoreWatch(std::sync::Mutex::new(self.stores.dedicated()?)))
    }
}

/// See [`Context::watch_store`].
#[derive(Debug)]
pub struct StoreWatch(std::sync::Mutex<aps_store::Store>);

impl StoreWatch {
    /// A number that changes whenever anybody committed to the store since the last call.
    pub fn version(&self) -> Result<i64, Error> {
        let store = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(store.data_version()?)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_context_is_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<super::Context>();
    }
}
