//! Deploying an instance's files onto its site (REFERENCE §3.8, §8.3 step 8; D10).
//!
//! Main decision: the instance root is closed from its first file to the end of the install.
//! A root that does not exist is created by root with mode 0700 ([`Change::SiteFolder`]); an
//! existing empty folder — an empty sub-folder, or the document root itself for an install at
//! `/` — is claimed ([`Change::ClaimedFolder`]): made root's and 0700, then checked empty. The
//! files are extracted straight into that private root (no staging folder in the site, so a
//! root install finds its root as empty as it was checked), hashed in the same pass, given
//! their modes and the site user's ownership through descriptors, and only then is the root
//! handed to the site's user — still 0700, so visitors see nothing before `configure install`
//! ran (the web-installer hijack of §8.3 step 9). [`open_access`] opens it afterwards. Because
//! nobody else can write into the root while it is filled, the undo of a failed deploy is
//! exactly "remove what is in it" (or the folder itself), whatever step inside failed or
//! crashed. Folders created above the root for a nested path are journaled one by one
//! ([`Change::ParentFolder`]) and kept by the instance as system changes; so is the claim of a
//! claimed root, so that removal gives the folder back (emptied by the file choice, with its
//! owner and mode of before) instead of deleting a folder the instance did not create.
//!
//! Modes: deployed folders 0755 and files 0644, owned by the site's user; below a mapping with
//! `php:permissions writable="true"` folders 0775 and files 0664 (group-writable, for sites whose
//! PHP runs as another user of the site's group) when the user's primary group is its own; with a
//! group shared with others (`users`) they stay 0755/0644, writable by the site's user alone. A mapped folder the package does not ship is
//! created empty, unless its URL ends in a name with a dot (a file mapping such as
//! `data_custom/errorlog.php`).
//!
//! Known gap: claiming changes the owner of an existing empty folder for the length of the
//! deploy; a site user working in it at that moment is refused until the hand-over.
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use aps_host::safedir::{EntryKind, Phase, SafeDir};
use aps_host::user::SystemUser;
use aps_meta::model::UrlMapping;
use aps_store::instances::{FileKind, InstanceFile};

use crate::change::Change;
use crate::error::Error;
use crate::journal::Journal;
use crate::placement::{Place, Target, open_docroot};

/// Where every package directory goes, relative to the instance root.
#[derive(Debug, Clone)]
pub(crate) struct DeployPlan {
    /// (package directory, URL path relative to the instance root), deepest package directory first.
    placements: Vec<(String, String)>,
    /// (URL path relative to the root, writable) for every non-virtual mapping.
    dirs: Vec<(String, bool)>,
}

impl DeployPlan {
    /// The plan of a service's URL mapping; refuses a root mapping that would publish the whole
    /// package (scripts included).
    pub(crate) fn new(mapping: &UrlMapping) -> Result<Self, Error> {
        let entries = mapping.entries();
        let mut placements = Vec::new();
        let mut dirs: Vec<(String, bool)> = Vec::new();
        for entry in &entries {
            if entry.mapping.is_virtual {
                continue;
            }
            let rel = entry.url_path.trim_matches('/').to_owned();
            if let Some(dir) = &entry.package_dir {
                if dir.is_empty() || dir == "." {
                    return Err(Error::Invalid(
                        "the root mapping's `path` names the whole package; apsctl deploys only a package folder such as `htdocs`".into(),
                    ));
                }
                check_relative(dir)?;
                placements.push((dir.clone(), rel.clone()));
            }
            check_relative(&rel)?;
            // Writable: the mapping's own permission, else the nearest ancestor's.
            let own = entry
                .mapping
                .php_permissions
                .as_ref()
                .and_then(|p| p.writable);
            let inherited = dirs
                .iter()
                .filter(|(d, _)| d.is_empty() || rel == *d || rel.starts_with(&format!("{d}/")))
                .max_by_key(|(d, _)| d.len())
                .is_some_and(|(_, w)| *w);
            dirs.push((rel, own.unwrap_or(inherited)));
        }
        placements.sort_by_key(|(dir, _)| std::cmp::Reverse(dir.len()));
        Ok(Self { placements, dirs })
    }

    /// The path relative to the instance root where archive entry `name` goes, if anywhere.
    pub(crate) fn target_of(&self, name: &str) -> Option<PathBuf> {
        for (dir, url) in &self.placements {
            let rest = if name == dir {
                ""
            } else if let Some(rest) = name
                .strip_prefix(dir.as_str())
                .and_then(|r| r.strip_prefix('/'))
            {
                rest
            } else {
                continue;
            };
            let mut path = PathBuf::from(url);
            if !rest.is_empty() {
                path.push(rest);
            }
            return Some(path);
        }
        None
    }

    /// Whether the path (relative to the instance root) lies below a writable mapping.
    fn writable(&self, rel: &str) -> bool {
        self.dirs
            .iter()
            .filter(|(d, _)| d.is_empty() || rel == d || rel.starts_with(&format!("{d}/")))
            .max_by_key(|(d, _)| d.len())
            .is_some_and(|(_, w)| *w)
    }
}

fn check_relative(path: &str) -> Result<(), Error> {
    let ok = Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "mapping path `{path}` leaves the package or the instance"
        )))
    }
}

/// What [`deploy`] put on the site.
#[derive(Debug)]
pub(crate) struct Deployed {
    /// Every deployed file and folder, relative to the instance root.
    pub files: Vec<InstanceFile>,
    /// Folders created above the instance root (for a nested path), relative to the document
    /// root, outermost first: system changes that removal rolls back.
    pub created_parents: Vec<Change>,
    /// The claim of a root that existed (an empty folder, or the document root): a system
    /// change that removal gives back rather than deletes.
    pub claimed: Option<Change>,
    /// The mode [`open_access`] gives the root: 0755 for a root apsctl created, the previous
    /// mode of a claimed folder.
    pub open_mode: u32,
}

/// What [`deploy`] needs.
#[derive(Debug)]
pub(crate) struct DeployInput<'a> {
    /// The package archive in the repository.
    pub archive: &'a Path,
    /// Where the package's folders go.
    pub plan: &'a DeployPlan,
    /// Where the instance lives.
    pub place: Place<'a>,
    /// What is there now (checked by the install).
    pub target: &'a Target,
    /// The site's user, who owns the deployed files.
    pub user: &'a SystemUser,
    /// Archive limits.
    pub limits: &'a aps_archive::Limits,
}

/// Deploys the mapped files of the package into the instance root, journaling every folder it
/// creates or claims before it touches it (see the module doc).
pub(crate) fn deploy(
    journal: &mut Journal<'_>,
    input: &DeployInput<'_>,
) -> Result<Deployed, Error> {
    let place = input.place;
    let user = input.user;
    let Root {
        dir: root,
        created_parents,
        claimed,
        open_mode,
        hand_to,
    } = make_root(journal, place, input.target, user)?;
    // The root is root's and 0700: nobody else can enter it, so paths below it are safe.
    let dir = root.proc_path();
    let plan = input.plan;
    let extracted = aps_archive::extract(
        input.archive,
        &dir,
        &|name| plan.target_of(name),
        input.limits,
    )
    .map_err(|e| Error::Invalid(e.to_string()))?;
    for (rel, _) in &plan.dirs {
        let last = rel.rsplit('/').next().unwrap_or("");
        if !rel.is_empty() && !last.contains('.') {
            let mut at = root.try_clone().map_err(Error::Site)?;
            for part in rel.split('/') {
                at = if at.contains(part) {
                    at.open_dir(part).map_err(Error::Site)?
                } else {
                    at.create_dir(part, 0o755).map_err(Error::Site)?
                };
            }
        }
    }
    let by_target: BTreeMap<&Path, &aps_archive::FileInfo> = extracted
        .files
        .iter()
        .filter_map(|(name, info)| extracted.targets.get(name).map(|t| (t.as_path(), info)))
        .collect();
    let mut files = Vec::new();
    // Writable folders are the site user's (PHP-FPM runs as that user); they are also
    // group-writable only when the user's primary group is private to it, so that a group shared
    // with other tenants never gets to write where PHP runs.
    let group_writable = user
        .private_group()
        .map_err(|e| Error::Failed(e.to_string()))?
        .is_some();
    // One descriptor walk gives every entry its mode and owner and records it.
    root.walk(&mut |entry, phase| {
        if phase == Phase::Leave {
            return Ok(());
        }
        let rel_text = entry.rel.to_string_lossy().into_owned();
        let is_dir = entry.kind == EntryKind::Dir;
        let mode = match (is_dir, plan.writable(&rel_text) && group_writable) {
            (true, false) => 0o755,
            (true, true) => 0o775,
            (false, false) => 0o644,
            (false, true) => 0o664,
        };
        entry
            .parent
            .set_entry_mode(entry.name, mode)
            .map_err(Error::Site)?;
        entry
            .parent
            .chown_entry(entry.name, user.uid(), user.gid())
            .map_err(Error::Site)?;
        if is_dir {
            files.push(InstanceFile {
                path: rel_text,
                kind: FileKind::Dir,
                size: 0,
                sha256: None,
            });
        } else {
            let info = by_target.get(entry.rel).ok_or_else(|| {
                Error::Failed(format!(
                    "deployed file `{rel_text}` is missing from the extraction record"
                ))
            })?;
            files.push(InstanceFile {
                path: rel_text,
                kind: FileKind::File,
                size: info.size,
                sha256: Some(hex::encode(info.sha256)),
            });
        }
        Ok::<(), Error>(())
    })?;
    // Hand the root over, still closed (0700) until `configure install` ran.
    root.chown(hand_to.0, hand_to.1).map_err(Error::Site)?;
    Ok(Deployed {
        files,
        created_parents,
        claimed,
        open_mode,
    })
}

/// The instance root as [`make_root`] left it: open, root's and 0700.
pub(crate) struct Root {
    pub dir: SafeDir,
    /// The folders created above it.
    pub created_parents: Vec<Change>,
    /// Its claim, when it existed.
    pub claimed: Option<Change>,
    /// Its mode once open.
    pub open_mode: u32,
    /// Who gets it when filled (uid, gid).
    pub hand_to: (u32, u32),
}

/// Creates (or claims) the instance root and the folders above it, journaling each.
pub(crate) fn make_root(
    journal: &mut Journal<'_>,
    place: Place<'_>,
    target: &Target,
    user: &SystemUser,
) -> Result<Root, Error> {
    let docroot = place.docroot.to_path_buf();
    let mut dir = open_docroot(place.docroot)?;
    let parts: Vec<&str> = place.prefix.split('/').filter(|p| !p.is_empty()).collect();
    let mut created_parents = Vec::new();
    if let Target::Missing { first_missing } = target {
        let depth_missing = first_missing.split('/').count();
        for (i, part) in parts.iter().enumerate() {
            let rel = parts[..=i].join("/");
            let last = i + 1 == parts.len();
            if i + 1 < depth_missing {
                dir = dir.open_dir(part).map_err(Error::Site)?;
            } else if last {
                let change = Change::SiteFolder {
                    docroot: docroot.clone(),
                    rel,
                };
                let root =
                    journal.change(change, || dir.create_dir(part, 0o700).map_err(Error::Site))?;
                return Ok(Root {
                    dir: root,
                    created_parents,
                    claimed: None,
                    open_mode: 0o755,
                    hand_to: (user.uid(), user.gid()),
                });
            } else {
                let change = Change::ParentFolder {
                    docroot: docroot.clone(),
                    rel,
                };
                created_parents.push(change.clone());
                // Handed to the site's user only once the change is marked done: a `started`
                // folder is proven ours only while it is still root's (see `undo`).
                let made =
                    journal.change(change, || dir.create_dir(part, 0o755).map_err(Error::Site))?;
                made.chown(user.uid(), user.gid()).map_err(Error::Site)?;
                dir = made;
            }
        }
        return Err(Error::Failed(format!(
            "installation path `{}` has no folder to create",
            place.prefix
        )));
    }
    // An existing empty folder: claim it, then check it is (still) empty.
    for part in &parts {
        dir = dir.open_dir(part).map_err(Error::Site)?;
    }
    let aps_host::safedir::FolderInfo { uid, gid, mode } = dir.info().map_err(Error::Site)?;
    let change = Change::ClaimedFolder {
        docroot,
        rel: place.prefix.to_owned(),
        uid,
        gid,
        mode,
    };
    let root = dir;
    journal.change(change.clone(), || {
        root.take_over().map_err(Error::Site)?;
        if root.is_empty().map_err(Error::Site)? {
            Ok(())
        } else {
            Err(Error::Conflict(format!(
                "installation directory `{}` is no longer empty",
                place.root().display()
            )))
        }
    })?;
    Ok(Root {
        dir: root,
        created_parents,
        claimed: Some(change),
        open_mode: mode,
        hand_to: (uid, gid),
    })
}

/// Opens web access to the instance root once `configure install` ran.
pub(crate) fn open_access(place: Place<'_>, mode: u32) -> Result<(), Error> {
    place.open_root()?.set_mode(mode).map_err(Error::Site)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs as root (it changes owners), like the other tests that deploy to a site.
    #[test]
    fn deployed_entries_get_their_modes_and_the_site_user() {
        use std::os::unix::fs::MetadataExt as _;
        let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello");
        let work = tempfile::tempdir().unwrap();
        let archive = work.path().join("hello.app.zip");
        aps_archive::pack_folder(&hello, &archive).unwrap();
        let meta = fs_err::read(hello.join("APP-META.xml")).unwrap();
        let parsed = aps_meta::parse::parse_app_meta(&meta, "APP-META.xml").unwrap();
        let mapping = parsed
            .package
            .root_service()
            .unwrap()
            .provision
            .url_mapping
            .as_ref();
        let plan = DeployPlan::new(mapping.unwrap()).unwrap();
        let ctx = crate::Context::open(
            &work.path().join("home"),
            crate::Env::from_vars([("PATH", "/usr/bin:/bin")]),
            crate::context::Config::default(),
        )
        .unwrap();
        let docroot = work.path().join("docroot");
        fs_err::create_dir(&docroot).unwrap();
        let user = SystemUser::lookup("nobody").unwrap();
        let place = Place {
            docroot: &docroot,
            prefix: "a/app",
        };
        let target = place.target().unwrap();
        let mut journal = Journal::begin(&ctx, None, "test", &serde_json::json!({})).unwrap();
        let deployed = deploy(
            &mut journal,
            &DeployInput {
                archive: &archive,
                plan: &plan,
                place,
                target: &target,
                user: &user,
                limits: &aps_archive::Limits::default(),
            },
        )
        .unwrap();
        assert_eq!(deployed.open_mode, 0o755);
        assert_eq!(deployed.created_parents.len(), 1);
        let root = fs_err::metadata(docroot.join("a/app")).unwrap();
        assert_eq!(root.mode() & 0o7777, 0o700, "closed until open_access");
        assert_eq!(root.uid(), user.uid());
        // `nobody`'s group `nogroup` is shared: its writable folder is the user's alone.
        assert_eq!(user.private_group().unwrap(), None);
        let expected = [
            ("index.php", 0o644),
            ("about.html", 0o644),
            ("data", 0o755),
            ("data/README.txt", 0o644),
        ];
        assert_eq!(deployed.files.len(), expected.len());
        for (rel, mode) in expected {
            let meta = fs_err::symlink_metadata(docroot.join("a/app").join(rel)).unwrap();
            assert_eq!(meta.mode() & 0o7777, mode, "{rel}");
            assert_eq!((meta.uid(), meta.gid()), (user.uid(), user.gid()), "{rel}");
        }
        // The journal says what to undo, and undoing it leaves the document root as it was.
        let error = journal.rollback(&crate::report::Silent, Error::Failed("test".into()));
        assert_eq!(error.to_string(), "test");
        assert!(fs_err::read_dir(&docroot).unwrap().next().is_none());
    }
}
