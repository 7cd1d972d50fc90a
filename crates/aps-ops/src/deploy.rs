//! Placing an instance on a site and deploying its files (REFERENCE §3.8, §8.3 steps 4 and 8; D10).
//!
//! Main decision: files are extracted from the repository archive straight into a private
//! staging folder inside the site's document root (same file system, mode 0700, owned by root),
//! hashed in the same pass, given their owner and modes there, and only then moved into place
//! with `renameat`. The site never shows a half-deployed instance, and an undo only has to remove
//! what the journal says was moved in. The site's user owns the document root and may swap any
//! folder for a link at any time, so everything in the site goes through folder descriptors
//! ([`SafeDir`]): apsctl, running as root, never follows a link the user planted.
//!
//! Known gap: the planning checks before any change (is the target inside the document root,
//! absent or empty; which folders of a nested path are missing) look at paths and may follow a
//! link the user swaps in; that can only make the install refuse or fail, since every change goes
//! through descriptors.
//!
//! Modes: deployed folders 0755 and files 0644, owned by the site's user; below a mapping with
//! `php:permissions writable="true"` folders 0775 and files 0664 (group-writable, for sites whose
//! PHP runs as another user of the site's group). A mapped folder the package does not ship is
//! created empty, unless its URL ends in a name with a dot (a file mapping such as
//! `data_custom/errorlog.php`).
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use aps_host::safedir::SafeDir;
use aps_host::user::SystemUser;
use aps_meta::model::UrlMapping;
use aps_store::instances::{FileKind, InstanceFile};

use crate::error::Error;

/// The mode [`aps_archive::Archive::extract`] gives every file it writes.
const EXTRACTED_FILE_MODE: u32 = 0o644;

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

/// Checks a user-given prefix (`--path`): relative segments of visible characters, no `.`, `..`
/// or empty segment; it is never rewritten (§9). Returns it without leading/trailing slashes.
pub(crate) fn check_prefix(prefix: &str) -> Result<String, Error> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for segment in trimmed.split('/') {
        let bad = segment.is_empty()
            || segment == "."
            || segment == ".."
            || segment.starts_with(".apsctl")
            || segment.chars().any(|c| c.is_control() || c == '\\')
            || segment.len() > 255;
        if bad {
            return Err(Error::Invalid(format!(
                "installation path `{prefix}` is not usable: segment `{segment}` is empty, `.`, `..`, reserved or has control characters"
            )));
        }
    }
    Ok(trimmed.to_owned())
}

/// Whether two prefixes would put one instance inside, onto or around another.
pub(crate) fn prefixes_overlap(a: &str, b: &str) -> bool {
    let inside = |outer: &str, inner: &str| {
        outer.is_empty() || inner == outer || inner.starts_with(&format!("{outer}/"))
    };
    inside(a, b) || inside(b, a)
}

/// What [`deploy`] put on the site.
#[derive(Debug)]
pub(crate) struct Deployed {
    /// Every deployed file and folder, relative to the instance root.
    pub files: Vec<InstanceFile>,
    /// Whether the instance root was created (else it existed, empty).
    pub created_root: bool,
    /// Entries moved into the instance root.
    pub entries: Vec<String>,
    /// Folders created above the instance root (for a nested path), relative to the document
    /// root, outermost first: system changes that removal rolls back.
    pub created_parents: Vec<String>,
}

/// Where an instance lives on its site.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place<'a> {
    /// The site's document root (administrator-owned path; its last folder may be the user's).
    pub docroot: &'a Path,
    /// The installation path below it (empty for the document root).
    pub prefix: &'a str,
}

impl Place<'_> {
    /// The instance root as a path (for messages and variables).
    pub fn root(&self) -> PathBuf {
        if self.prefix.is_empty() {
            self.docroot.to_path_buf()
        } else {
            self.docroot.join(self.prefix)
        }
    }

    /// Opens the instance root without following links.
    pub fn open_root(&self) -> Result<SafeDir, Error> {
        let site = SafeDir::open(self.docroot).map_err(fs_error)?;
        if self.prefix.is_empty() {
            Ok(site)
        } else {
            site.open_rel(Path::new(self.prefix)).map_err(fs_error)
        }
    }

    /// The first folder of the prefix that does not exist yet, relative to the document root.
    pub fn first_missing(&self) -> Option<String> {
        let mut rel = PathBuf::new();
        for part in self.prefix.split('/').filter(|p| !p.is_empty()) {
            rel.push(part);
            if !self.docroot.join(&rel).exists() {
                return Some(rel.to_string_lossy().into_owned());
            }
        }
        None
    }
}

/// A folder error as an operation error.
pub(crate) fn fs_error(e: aps_host::safedir::SafeDirError) -> Error {
    Error::Site(e)
}

/// Creates the private staging folder `name` (mode 0700, owned by apsctl) in the document root.
pub(crate) fn create_staging(docroot: &Path, name: &str) -> Result<SafeDir, Error> {
    SafeDir::open(docroot)
        .and_then(|site| site.create_dir(name, 0o700))
        .map_err(fs_error)
}

/// Extracts the mapped files of `archive` into `staging` (see [`create_staging`]), sets owners
/// and modes there, and moves everything into the instance root, creating it (mode 0700: web
/// access stays closed until [`open_access`]) or filling it when it exists empty. Every step in
/// the site goes through folder descriptors ([`SafeDir`]), so links the site's user may plant
/// are never followed.
pub(crate) fn deploy(
    archive: &Path,
    plan: &DeployPlan,
    staging: &SafeDir,
    place: Place<'_>,
    user: &SystemUser,
    limits: &aps_archive::Limits,
) -> Result<Deployed, Error> {
    let dir = staging.proc_path();
    let extracted = aps_archive::extract(archive, &dir, &|name| plan.target_of(name), limits)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    for (rel, _) in &plan.dirs {
        let last = rel.rsplit('/').next().unwrap_or("");
        if !rel.is_empty() && !last.contains('.') {
            fs_err::create_dir_all(dir.join(rel))?;
        }
    }
    let mut files = Vec::new();
    let by_target: BTreeMap<&PathBuf, &aps_archive::FileInfo> = extracted
        .files
        .iter()
        .filter_map(|(name, info)| extracted.targets.get(name).map(|t| (t, info)))
        .collect();
    // One pass gives every entry its mode and owner (the staging folder is private and holds
    // only what the extraction and `create_dir_all` made, so paths are safe to use here).
    walk(&dir, Path::new(""), &mut |rel, is_dir| {
        let rel_text = rel.to_string_lossy().into_owned();
        let writable = plan.writable(&rel_text);
        let mode = match (is_dir, writable) {
            (true, false) => 0o755,
            (true, true) => 0o775,
            (false, false) => EXTRACTED_FILE_MODE,
            (false, true) => 0o664,
        };
        let path = dir.join(rel);
        // Extracted files already have their default mode; folders may come from
        // `create_dir_all`, whose mode depends on the umask.
        if is_dir || mode != EXTRACTED_FILE_MODE {
            fs_err::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        }
        std::os::unix::fs::lchown(&path, Some(user.uid()), Some(user.gid()))
            .map_err(|e| Error::io(&path, e))?;
        if is_dir {
            files.push(InstanceFile {
                path: rel_text,
                kind: FileKind::Dir,
                size: 0,
                sha256: None,
            });
        } else {
            let info = by_target.get(&rel.to_path_buf()).ok_or_else(|| {
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
        Ok(())
    })?;

    // The instance root: walk the prefix from the document root, creating what is missing.
    let mut target = SafeDir::open(place.docroot).map_err(fs_error)?;
    let parts: Vec<&str> = place.prefix.split('/').filter(|p| !p.is_empty()).collect();
    let mut created_root = false;
    let mut created_parents = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if !last && !target.contains(part) {
            created_parents.push(parts[..=i].join("/"));
        }
        target = if target.contains(part) {
            target.open_dir(part).map_err(fs_error)?
        } else {
            let dir = target
                .create_dir(part, if last { 0o700 } else { 0o755 })
                .map_err(fs_error)?;
            dir.chown(user.uid(), user.gid()).map_err(fs_error)?;
            created_root = last;
            dir
        };
    }
    if !created_root && !target.is_empty().map_err(fs_error)? {
        return Err(Error::Conflict(format!(
            "installation directory `{}` is no longer empty",
            place.root().display()
        )));
    }
    let mut entries = Vec::new();
    for name in staging.names().map_err(fs_error)? {
        staging.rename(&name, &target, &name).map_err(fs_error)?;
        entries.push(name);
    }
    Ok(Deployed {
        files,
        created_root,
        entries,
        created_parents,
    })
}

/// Opens web access to a root that [`deploy`] created (mode 0755).
pub(crate) fn open_access(place: Place<'_>) -> Result<(), Error> {
    place.open_root()?.set_mode(0o755).map_err(fs_error)
}

/// Visits every entry below `base` (depth first, parents before children) with its path relative
/// to `base`; never follows symbolic links.
pub(crate) fn walk(
    base: &Path,
    rel: &Path,
    visit: &mut dyn FnMut(&Path, bool) -> Result<(), Error>,
) -> Result<(), Error> {
    let dir = base.join(rel);
    let mut names: Vec<_> = fs_err::read_dir(&dir)?.collect::<Result<Vec<_>, _>>()?;
    names.sort_by_key(fs_err::DirEntry::file_name);
    for entry in names {
        let child = rel.join(entry.file_name());
        let kind = entry.file_type().map_err(|e| Error::io(&entry.path(), e))?;
        if kind.is_dir() {
            visit(&child, true)?;
            walk(base, &child, visit)?;
        } else {
            visit(&child, false)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked_not_rewritten() {
        assert_eq!(check_prefix("/blog/").unwrap(), "blog");
        assert_eq!(check_prefix("").unwrap(), "");
        assert_eq!(check_prefix("a/b.v2").unwrap(), "a/b.v2");
        for bad in ["a//b", "../x", "a/./b", "a\\b", ".apsctl-staging-1"] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlap_compares_components_not_strings() {
        assert!(prefixes_overlap("", "blog"));
        assert!(prefixes_overlap("blog", "blog"));
        assert!(prefixes_overlap("blog", "blog/sub"));
        assert!(!prefixes_overlap("blog", "blogX"));
        assert!(!prefixes_overlap("a/b", "a/c"));
    }

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
        let docroot = work.path().join("docroot");
        fs_err::create_dir(&docroot).unwrap();
        let user = SystemUser::lookup("nobody").unwrap();
        let staging = create_staging(&docroot, ".apsctl-staging-t").unwrap();
        let place = Place {
            docroot: &docroot,
            prefix: "app",
        };
        let limits = aps_archive::Limits::default();
        let deployed = deploy(&archive, &plan, &staging, place, &user, &limits).unwrap();
        assert!(deployed.created_root);
        let expected = [
            ("index.php", 0o644),
            ("about.html", 0o644),
            ("data", 0o775),
            ("data/README.txt", 0o664),
        ];
        assert_eq!(deployed.files.len(), expected.len());
        for (rel, mode) in expected {
            let meta = fs_err::symlink_metadata(docroot.join("app").join(rel)).unwrap();
            assert_eq!(meta.mode() & 0o7777, mode, "{rel}");
            assert_eq!((meta.uid(), meta.gid()), (user.uid(), user.gid()), "{rel}");
        }
    }
}
