//! The locks of operations (REFERENCE §8.0 step 1, D13): one per instance, held for the whole
//! operation, and one per site, held while an install reserves its place on the site.
//!
//! Main decision: locks are `flock`s on files in the home's `locks/` folder, which only root can
//! enter, so a site user can never hold one (a tenant holding an instance's lock would block
//! every operation on it, and `recover` would take it for a live operation). A second operation
//! on the same instance is refused at once unless the caller asked to wait (`--wait`); the site
//! lock is held only for a moment and is waited for up to [`SITE_WAIT`] by default, so concurrent
//! installs on one site queue instead of failing.
use std::time::Duration;

use aps_host::lock::{LockError, OpLock};

use crate::context::Context;
use crate::error::Error;

/// How long an install waits for its site's lock unless `--wait` says otherwise.
pub const SITE_WAIT: Duration = Duration::from_secs(600);

/// Takes instance `id`'s operation lock for `what` (`removal`, `reconfiguration`, …), waiting as
/// long as the configuration says (default: not at all).
pub(crate) fn instance(ctx: &Context, id: &str, what: &str) -> Result<OpLock, Error> {
    let wait = ctx.config.lock_wait.unwrap_or(Duration::ZERO);
    OpLock::acquire_waiting(
        &ctx.home.instance_lock(id),
        &format!("{what} of instance {id} (pid {})", std::process::id()),
        wait,
    )
    .map_err(|e| busy(&format!("instance {id}"), &e))
}

/// Takes the lock of site `site` for an install, waiting up to `--wait` (default [`SITE_WAIT`]).
pub(crate) fn site(ctx: &Context, site: &str) -> Result<OpLock, Error> {
    let wait = ctx.config.lock_wait.unwrap_or(SITE_WAIT);
    OpLock::acquire_waiting(
        &ctx.home.site_lock(site),
        &format!("install on site {site} (pid {})", std::process::id()),
        wait,
    )
    .map_err(|e| busy(&format!("site `{site}`"), &e))
}

/// Takes the lock of a site's web server folder (`--web-dir`) for writing, testing and loading
/// one file of it, waiting up to `--wait` (default [`SITE_WAIT`]): two operations on instances of
/// one server never test or reload each other's half-written configuration.
pub(crate) fn web_dir(ctx: &Context, dir: &std::path::Path) -> Result<OpLock, Error> {
    use sha2::Digest as _;
    let wait = ctx.config.lock_wait.unwrap_or(SITE_WAIT);
    let digest = hex::encode(sha2::Sha256::digest(dir.as_os_str().as_encoded_bytes()));
    OpLock::acquire_waiting(
        &ctx.home.locks().join(format!("web-{}.lock", &digest[..16])),
        &format!(
            "web server folder `{}` (pid {})",
            dir.display(),
            std::process::id()
        ),
        wait,
    )
    .map_err(|e| busy(&format!("web server folder `{}`", dir.display()), &e))
}

/// Tries instance `id`'s lock once for `what`: `None` while a live operation holds it.
pub(crate) fn try_instance(ctx: &Context, id: &str, what: &str) -> Result<Option<OpLock>, Error> {
    match OpLock::acquire(
        &ctx.home.instance_lock(id),
        &format!("{what} of instance {id} (pid {})", std::process::id()),
    ) {
        Ok(lock) => Ok(Some(lock)),
        Err(LockError::Busy { .. }) => Ok(None),
        Err(e) => Err(Error::Failed(format!("instance {id}: {e}"))),
    }
}

fn busy(what: &str, e: &LockError) -> Error {
    match e {
        LockError::Busy { .. } => Error::Busy(format!("{what}: {e}")),
        LockError::Io { .. } => Error::Failed(format!("{what}: {}", crate::error::chain(e))),
    }
}
