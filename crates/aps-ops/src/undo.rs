//! The undo executor: turns a [`Change`] and how far it got into its undo, for a failed
//! operation in the running process, for `apsctl recover` after a crash, and for the system
//! changes a removal rolls back.
//!
//! Main decision: an undo destroys only what it can prove the change made. Each change carries
//! or leaves its proof:
//! * a folder apsctl creates in a site is made by root with mode 0700 and handed to the site's
//!   user only after its change is marked done, so a `started` folder counts as ours only while
//!   it is still root's;
//! * a claimed folder was verified empty under root's ownership before its change was marked
//!   done: only then is its content the operation's;
//! * a database and its login carry the operation's marker (database comment, role comment,
//!   marker file) or are reached with the generated password; a resource that exists without
//!   the proof is someone else's and stays, and one whose server cannot carry a proof is dropped
//!   only when the journal saw its creation complete.
//!
//! Everything is idempotent: what is already gone is not an error, so an undo can run again
//! after a crash in the middle of a rollback.
use std::path::Path;

use aps_host::db::{Creation, DbSpec, Owner, Secret};

use crate::change::{Change, Stage};
use crate::context::Context;
use crate::error::Error;
use crate::placement::Place;
use crate::report::Reporter;

/// What an undo did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Undone {
    /// The change is reverted (or there was nothing left of it).
    Reverted,
    /// Something was deliberately left in place; the text says what and why.
    Kept(String),
}

/// Undoes `change`, which got as far as `stage`.
pub(crate) fn undo(
    ctx: &Context,
    change: &Change,
    stage: Stage,
    reporter: &dyn Reporter,
) -> Result<Undone, Error> {
    match change {
        Change::HomeFolder { path } => remove_in_home(ctx, path),
        Change::InstanceRecord { instance } => match ctx.store()?.instances().delete(instance) {
            Ok(()) => Ok(Undone::Reverted),
            Err(e) if e.kind() == aps_store::StoreErrorKind::NotFound => Ok(Undone::Reverted),
            Err(e) => Err(e.into()),
        },
        Change::SiteFolder { docroot, rel } => undo_site_folder(ctx, docroot, rel, stage),
        Change::ClaimedFolder {
            docroot,
            rel,
            uid,
            gid,
            mode,
        } => {
            let place = Place {
                docroot,
                prefix: rel,
            };
            let Some(dir) = place.open_root_if_present()? else {
                return Ok(Undone::Reverted);
            };
            if stage == Stage::Done {
                dir.clear().map_err(Error::Site)?;
            } else if dir.info().map_err(Error::Site)?.uid != ctx.env.uid() {
                // The claim never took the folder: it is as it was.
                return Ok(Undone::Reverted);
            }
            dir.chown(*uid, *gid).map_err(Error::Site)?;
            dir.set_mode(*mode).map_err(Error::Site)?;
            Ok(Undone::Reverted)
        }
        Change::ParentFolder { docroot, rel } => undo_parent_folder(ctx, docroot, rel, stage),
        Change::FolderMode { docroot, rel, mode } => {
            if let Some(dir) = (Place {
                docroot,
                prefix: rel,
            })
            .open_root_if_present()?
            {
                dir.set_mode(*mode).map_err(Error::Site)?;
            }
            Ok(Undone::Reverted)
        }
        Change::Database {
            server,
            name,
            login,
            marker,
            password,
        } => undo_database(ctx, stage, server, name, login, marker, password),
        Change::WebConfig {
            site,
            instance,
            previous,
        } => {
            crate::web::restore(ctx, site, instance, previous.as_deref())?;
            Ok(Undone::Reverted)
        }
        Change::WebConfigIn {
            dir,
            reload,
            instance,
            previous,
        } => {
            crate::web::restore_in(ctx, dir, reload.as_deref(), instance, previous.as_deref())?;
            Ok(Undone::Reverted)
        }
        Change::UpgradeData {
            instance,
            archive,
            uid,
            gid,
            mode,
        } => {
            crate::upgrade::restore_in_place(
                ctx,
                instance,
                archive,
                (*uid, *gid, *mode),
                reporter,
            )?;
            Ok(Undone::Reverted)
        }
        Change::PrivateCopy { private } => {
            crate::upgrade::unswap_private(private)?;
            Ok(Undone::Reverted)
        }
        Change::TempFile { path } => match fs_err::symlink_metadata(path) {
            // Removing the entry itself: a link is removed, never followed.
            Ok(_) => {
                fs_err::remove_file(path)?;
                Ok(Undone::Reverted)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Undone::Reverted),
            Err(e) => Err(e.into()),
        },
        Change::Script { instance, action } => {
            undo_script(ctx, instance, action, stage, reporter);
            Ok(Undone::Reverted)
        }
    }
}

/// A site folder made for an instance root: removed with its content once its creation was
/// done; before, only while it is still root's and private (else it is not this operation's).
fn undo_site_folder(
    ctx: &Context,
    docroot: &Path,
    rel: &str,
    stage: Stage,
) -> Result<Undone, Error> {
    let Some((parent, name)) = Place::open_parent_of(docroot, rel)? else {
        return Ok(Undone::Reverted);
    };
    if stage != Stage::Done {
        let Ok(dir) = parent.open_dir(name) else {
            return Ok(Undone::Reverted);
        };
        let info = dir.info().map_err(Error::Site)?;
        if info.uid != ctx.env.uid() || info.mode & 0o077 != 0 {
            return Ok(Undone::Kept(format!(
                "folder `{}` was not made by this operation (its creation did not complete)",
                docroot.join(rel).display()
            )));
        }
    }
    parent.remove_tree(name).map_err(Error::Site)?;
    Ok(Undone::Reverted)
}

/// A folder made above an instance root: removed when empty (before its creation was done,
/// only while it is still root's).
fn undo_parent_folder(
    ctx: &Context,
    docroot: &Path,
    rel: &str,
    stage: Stage,
) -> Result<Undone, Error> {
    let Some((parent, name)) = Place::open_parent_of(docroot, rel)? else {
        return Ok(Undone::Reverted);
    };
    let Ok(dir) = parent.open_dir(name) else {
        return Ok(Undone::Reverted);
    };
    if stage != Stage::Done && dir.info().map_err(Error::Site)?.uid != ctx.env.uid() {
        return Ok(Undone::Kept(format!(
            "folder `{}` was not made by this operation (its creation did not complete)",
            docroot.join(rel).display()
        )));
    }
    if dir.is_empty().map_err(Error::Site)? {
        parent.remove_dir(name).map_err(Error::Site)?;
        Ok(Undone::Reverted)
    } else {
        Ok(Undone::Kept(format!(
            "folder `{}` holds files now and stays",
            docroot.join(rel).display()
        )))
    }
}

/// Removes `path`, a folder or file inside apsctl's home, without following links (an
/// instance's `tmp/` belongs to the site's user).
fn remove_in_home(ctx: &Context, path: &Path) -> Result<Undone, Error> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Error::Failed(format!(
            "refusing to remove `{}`",
            path.display()
        )));
    };
    if !path.starts_with(ctx.home.root()) || path == ctx.home.root() {
        return Err(Error::Failed(format!(
            "refusing to remove `{}`: it is not inside apsctl's home",
            path.display()
        )));
    }
    match aps_host::safedir::SafeDir::open(parent) {
        Ok(dir) => dir.remove_tree_os(name).map_err(Error::Site)?,
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(Error::Site(e)),
    }
    Ok(Undone::Reverted)
}

/// Drops whichever of the database and login is proven ours (see the module doc).
fn undo_database(
    ctx: &Context,
    stage: Stage,
    server: &str,
    name: &str,
    login: &str,
    marker: &str,
    password: &str,
) -> Result<Undone, Error> {
    let connection = crate::server::connect(ctx, server)?;
    let spec = DbSpec {
        name: name.to_owned(),
        login: login.to_owned(),
        password: Secret::new(ctx.vault.unseal(password)?),
        marker: marker.to_owned(),
    };
    let fail = |e: aps_host::db::DbError| {
        Error::Failed(format!(
            "database server `{server}`: {}",
            crate::error::chain(&e)
        ))
    };
    let owners = connection.ownership(&spec).map_err(fail)?;
    let creation = if stage == Stage::Done {
        Creation::Completed
    } else {
        Creation::Unfinished
    };
    let why_kept = |owner: Owner| match owner {
        Owner::Foreign => Some("it exists without this operation's mark: it is someone else's"),
        Owner::Unknown if creation == Creation::Unfinished => {
            Some("this server cannot mark it, and its creation did not complete")
        }
        _ => None,
    };
    let mut kept = Vec::new();
    if owners.database.may_drop(creation) {
        connection.drop_database(name).map_err(fail)?;
    } else if let Some(why) = why_kept(owners.database) {
        kept.push(format!("database `{name}` on `{server}` stays: {why}"));
    }
    if !login.is_empty() {
        if owners.login.may_drop(creation) {
            connection.drop_login(login).map_err(fail)?;
        } else if let Some(why) = why_kept(owners.login) {
            kept.push(format!("login `{login}` on `{server}` stays: {why}"));
        }
    }
    if kept.is_empty() {
        Ok(Undone::Reverted)
    } else {
        Ok(Undone::Kept(kept.join("; ")))
    }
}

/// §11 Q27: a configuration script that ran (or may have run) is answered by the script itself.
/// Failures are reported and do not stop the rest of the undo.
fn undo_script(ctx: &Context, instance: &str, action: &str, stage: Stage, reporter: &dyn Reporter) {
    let answer = match (action, stage) {
        (_, Stage::Failed) => return,
        ("install", _) => "remove",
        ("configure", _) => "configure",
        ("disable", _) => "enable",
        ("enable", _) => "disable",
        _ => return,
    };
    let result = crate::instance::Loaded::load(ctx, instance).and_then(|loaded| {
        match loaded.config_script(ctx)? {
            Some(script) => script.run(ctx, answer, &[], &loaded.variables(None), reporter),
            None => Ok(()),
        }
    });
    if let Err(e) = result {
        reporter.warn(&format!(
            "undoing `configure {action}` of instance {instance} with `configure {answer}`: {e}"
        ));
    }
}
