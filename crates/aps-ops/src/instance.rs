//! Instances as stored: loading one with everything an operation needs, and `instance list/show`.
//!
//! Main decision: operations after install work from what the instance recorded — its private
//! copy of APP-META.xml (not the repository package, which may be re-imported), its settings and
//! databases from the store (secrets unsealed here, and only here) — so a script always sees the
//! environment of the package that was actually installed (REFERENCE §4.3, §5.4).
//! The global setting values saved for the package's identity (§8.2) are loaded with the
//! instance, so every later run (configure, remove, backup, restore) sees them.
//!
//! Known gap: an instance whose package is gone from the repository (`remove --force` after a
//! package was removed by hand) has no identity to look its global values up by: its scripts get
//! the defaults.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aps_host::user::SystemUser;
use aps_meta::model::{Package, Service};
use aps_store::instances::{Instance, InstanceDatabase, InstanceFile, InstanceSummary, Setting};
use aps_store::sites::Site;
use serde::Serialize;

use crate::context::Context;
use crate::error::Error;
use crate::package::{self, StoredPackage};
use crate::script::ConfigScript;
use crate::site::SiteUrl;
use crate::vars::{InstallOnly, VarSet};

/// An instance with its site, package, stored metadata and records.
///
/// The site's user, the package and the private copy of the metadata may be gone (a
/// terminated account, a package removed by hand, a home restored without its instances): a
/// removal with `--force` goes on without them, so [`Loaded::load_lenient`] keeps what it could
/// not load as `missing` and the accessors ([`Loaded::user`], [`Loaded::meta`],
/// [`Loaded::package`]) fail naming it.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub instance: Instance,
    pub site: Site,
    user: Option<SystemUser>,
    pub url: SiteUrl,
    package: Option<StoredPackage>,
    /// The metadata kept in the instance's private folder (what was installed).
    meta: Option<Package>,
    pub settings: Vec<Setting>,
    /// The global setting values saved for the package's identity (unsealed).
    pub globals: BTreeMap<String, String>,
    pub databases: Vec<InstanceDatabase>,
    pub files: Vec<InstanceFile>,
    pub system_changes: Vec<aps_store::instances::SystemChange>,
    pub private: PathBuf,
    pub root: PathBuf,
    /// What could not be loaded, each as a sentence.
    pub missing: Vec<String>,
}

impl Loaded {
    /// Loads instance `id` (not locked); fails when its user, package or private metadata is
    /// missing.
    pub(crate) fn load(ctx: &Context, id: &str) -> Result<Self, Error> {
        let loaded = Self::load_lenient(ctx, id)?;
        if let Some(first) = loaded.missing.first() {
            return Err(Error::Failed(first.clone()));
        }
        Ok(loaded)
    }

    /// Loads instance `id`, keeping what cannot be loaded in [`Loaded::missing`] instead of
    /// failing (its store records must be readable).
    pub(crate) fn load_lenient(ctx: &Context, id: &str) -> Result<Self, Error> {
        let store = ctx.store()?;
        let instance = store.instances().get(id)?;
        let site = store.sites().get(&instance.site)?;
        let mut missing = Vec::new();
        let user = SystemUser::lookup(&site.system_user)
            .map_err(|e| missing.push(format!("site `{}`: {e}", site.name)))
            .ok();
        let url = SiteUrl::parse(&site.url)?;
        let package = package::load(ctx, &instance.package_ref)
            .map_err(|e| missing.push(e.to_string()))
            .ok();
        let private = ctx.home.instance(id);
        let meta = read_private_meta(ctx, id, &private)
            .map_err(|e| missing.push(e.to_string()))
            .ok();
        let root = if instance.prefix.is_empty() {
            site.docroot.clone()
        } else {
            site.docroot.join(&instance.prefix)
        };
        let globals = match &package {
            Some(p) => crate::global::saved(ctx, &p.summary.identity)?,
            None => BTreeMap::new(),
        };
        Ok(Self {
            settings: unsealed_settings(ctx, store.instances().settings(id)?)?,
            globals,
            databases: crate::database::unsealed(ctx, store.instances().databases(id)?)?,
            files: store.instances().files(id)?,
            system_changes: store.instances().system_changes(id)?,
            instance,
            site,
            user,
            url,
            package,
            meta,
            private,
            root,
            missing,
        })
    }

    fn missing_part(&self, what: &str) -> Error {
        Error::Failed(
            self.missing
                .first()
                .cloned()
                .unwrap_or_else(|| format!("instance {}: its {what} is missing", self.instance.id)),
        )
    }

    /// The site's system user.
    pub(crate) fn user(&self) -> Result<&SystemUser, Error> {
        self.user
            .as_ref()
            .ok_or_else(|| self.missing_part("site user"))
    }

    /// The installed package in the repository.
    pub(crate) fn package(&self) -> Result<&StoredPackage, Error> {
        self.package
            .as_ref()
            .ok_or_else(|| self.missing_part("package"))
    }

    /// The installed metadata (the private copy).
    pub(crate) fn meta(&self) -> Result<&Package, Error> {
        self.meta
            .as_ref()
            .ok_or_else(|| self.missing_part("private metadata"))
    }

    /// Where the instance lives on its site.
    pub(crate) fn place(&self) -> crate::placement::Place<'_> {
        crate::placement::Place {
            docroot: &self.site.docroot,
            prefix: &self.instance.prefix,
        }
    }

    /// The root service of the installed metadata.
    pub(crate) fn service(&self) -> Result<&Service, Error> {
        self.meta()?
            .root_service()
            .ok_or_else(|| Error::Failed(format!("instance {} has no service", self.instance.id)))
    }

    /// The environment for runs after install: stored settings (or `settings` when given),
    /// resources and URL variables (§5.4).
    pub(crate) fn variables(&self, settings: Option<&BTreeMap<String, (String, bool)>>) -> VarSet {
        let mut vars = VarSet::default();
        vars.url(&self.url, &self.instance.prefix);
        let mapping = self
            .meta
            .as_ref()
            .and_then(Package::root_service)
            .and_then(|s| s.provision.url_mapping.as_ref());
        vars.web(mapping, &self.root);
        vars.databases(&self.databases);
        if let Some(meta) = &self.meta {
            vars.global_settings(meta, &self.globals, InstallOnly::Left);
        }
        match settings {
            Some(map) => vars.settings(map.iter().map(|(k, (v, s))| (k.as_str(), v.as_str(), *s))),
            None => vars.settings(
                self.settings
                    .iter()
                    .map(|s| (s.setting_id.as_str(), s.value.as_str(), s.secret)),
            ),
        }
        vars
    }

    /// The text of the instance's private APP-META.xml (the installed metadata, which
    /// [`Loaded::load`] checked like an import), for the update rules (§7.2).
    pub(crate) fn private_meta_text(&self) -> Result<String, Error> {
        let path = self.private.join("meta").join(package::APP_META);
        fs_err::read_to_string(&path).map_err(|e| Error::io(&path, e))
    }

    /// The configuration script, with its interpreter checked for this site (seed step 2.1).
    pub(crate) fn config_script(&self, ctx: &Context) -> Result<Option<ConfigScript<'_>>, Error> {
        let Some(decl) = self.service()?.provision.configuration_script.as_ref() else {
            return Ok(None);
        };
        let user = self.user()?;
        Ok(Some(ConfigScript {
            decl,
            interpreter: crate::runtime::interpreter(ctx, &self.site, user, decl)?,
            scripts_dir: crate::script::scripts_dir(&self.private),
            user,
        }))
    }
}

/// Reads an instance's private copy of APP-META.xml and checks it as an import would (A5 of
/// the hardening issue): the private folder and the file must be apsctl's own and writable by
/// nobody else, the metadata must lint without errors, and its scripts must be plain names
/// inside the private `scripts/` folder. A copy changed behind apsctl's back is refused, never
/// run.
fn read_private_meta(ctx: &Context, id: &str, private: &Path) -> Result<Package, Error> {
    use std::os::unix::fs::MetadataExt as _;
    let meta_path = private.join("meta").join(package::APP_META);
    let shown = meta_path.display().to_string();
    let refuse = |why: String| {
        Error::Failed(format!(
            "the private metadata of instance {id} (`{shown}`) cannot be trusted: {why}"
        ))
    };
    for path in [
        private.to_path_buf(),
        private.join("meta"),
        meta_path.clone(),
    ] {
        let info = fs_err::symlink_metadata(&path).map_err(|e| refuse(e.to_string()))?;
        if info.file_type().is_symlink() {
            return Err(refuse(format!("`{}` is a symbolic link", path.display())));
        }
        if info.uid() != ctx.env.uid() || info.mode() & 0o022 != 0 {
            return Err(refuse(format!(
                "`{}` is owned by uid {} with mode {:o}; it must be apsctl's own and writable by nobody else",
                path.display(),
                info.uid(),
                info.mode() & 0o7777
            )));
        }
    }
    let bytes = fs_err::read(&meta_path)?;
    let errors: Vec<String> = aps_meta::lint::lint_meta(&bytes, &shown)
        .into_iter()
        .filter(aps_meta::lint::Finding::is_error)
        .map(|f| format!("{} [{}]", f.message, f.rule))
        .collect();
    if !errors.is_empty() {
        return Err(refuse(errors.join("; ")));
    }
    let meta = aps_meta::parse::parse_app_meta(&bytes, &shown)
        .map_err(|e| refuse(e.to_string()))?
        .package;
    for service in meta.all_services() {
        for decl in service.provision.scripts() {
            let plain = Path::new(&decl.name)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !plain || decl.name.is_empty() {
                return Err(refuse(format!(
                    "script `{}` is not a plain name inside the private scripts folder",
                    decl.name
                )));
            }
        }
    }
    Ok(meta)
}

/// Opens the sealed values of secret settings ([`crate::vault`]).
fn unsealed_settings(ctx: &Context, settings: Vec<Setting>) -> Result<Vec<Setting>, Error> {
    settings
        .into_iter()
        .map(|s| {
            Ok(if s.secret {
                Setting {
                    value: ctx.vault.unseal(&s.value)?,
                    ..s
                }
            } else {
                s
            })
        })
        .collect()
}

/// An instance as `instance list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceView {
    /// Id.
    pub instance: String,
    /// Site.
    pub site: String,
    /// URL.
    pub url: String,
    /// Package name, version and release (and reference).
    pub package: PackageRef,
    /// `ready`, `disabled`, …
    pub state: String,
}

/// The package of an instance.
#[derive(Debug, Clone, Serialize)]
pub struct PackageRef {
    /// Reference.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Release.
    pub release: String,
}

impl From<InstanceSummary> for InstanceView {
    fn from(s: InstanceSummary) -> Self {
        Self {
            instance: s.id,
            site: s.site,
            url: s.url,
            package: PackageRef {
                reference: s.package.package_ref,
                name: s.package.name,
                version: s.package.version,
                release: s.package.release,
            },
            state: s.state.as_str().to_owned(),
        }
    }
}

/// What `show` prints instead of a secret value (and what `configure` takes as "unchanged").
pub const SECRET_MASK: &str = "***";

/// `Ok` when instance `id` exists and no operation holds it now (`NotFound`, `Busy` otherwise): a
/// caller that starts an operation in the background answers with it first. The operation takes
/// the lock itself; this only looks.
pub fn check_free(ctx: &Context, id: &str) -> Result<(), Error> {
    ctx.store()?.instances().get(id)?;
    match crate::lock::try_instance(ctx, id, "check")? {
        Some(_free) => Ok(()),
        None => Err(Error::Busy(format!(
            "instance {id}: another operation runs on it; try again when it has ended"
        ))),
    }
}

/// Every instance.
pub fn list(ctx: &Context) -> Result<Vec<InstanceView>, Error> {
    Ok(ctx
        .store()?
        .instances()
        .list()?
        .into_iter()
        .map(InstanceView::from)
        .collect())
}

/// A database of an instance as `instance show` prints it (never the password).
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseView {
    /// `db:id`.
    pub id: String,
    /// `mysql`, `postgresql`, `sqlite`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Database name (SQLite: the file's path).
    pub name: String,
    /// Login.
    pub login: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: Option<u16>,
    /// Registered server.
    pub server: Option<String>,
    /// Table prefix, when the instance lives in a shared database.
    pub prefix: Option<String>,
}

/// Everything `instance show` prints.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceDetails {
    /// The list view.
    #[serde(flatten)]
    pub view: InstanceView,
    /// Installation path below the site root.
    pub path: String,
    /// Root directory of the instance.
    pub root: PathBuf,
    /// Settings; secrets as `***`.
    pub settings: BTreeMap<String, String>,
    /// Databases.
    pub databases: Vec<DatabaseView>,
    /// Alternatives chosen among `choice` requirements.
    pub choices: Vec<String>,
    /// Number of deployed application files.
    pub application_files: usize,
    /// What apsctl changed on the system for this instance (besides files and databases).
    pub system_changes: Vec<serde_json::Value>,
}

/// One instance in detail.
pub fn show(ctx: &Context, id: &str) -> Result<InstanceDetails, Error> {
    let inst = ctx.store()?.instances().get(id)?;
    let site = ctx.store()?.sites().get(&inst.site)?;
    let summary = ctx
        .store()?
        .instances()
        .list()?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| Error::NotFound(format!("instance {id} does not exist")))?;
    let settings = ctx
        .store()?
        .instances()
        .settings(id)?
        .into_iter()
        .map(|s| {
            (
                s.setting_id,
                if s.secret {
                    SECRET_MASK.to_owned()
                } else {
                    s.value
                },
            )
        })
        .collect();
    let databases = ctx
        .store()?
        .instances()
        .databases(id)?
        .into_iter()
        .map(|d| DatabaseView {
            id: d.db_id,
            kind: d.kind.as_str().to_owned(),
            name: d.name,
            login: d.login,
            host: d.host,
            port: d.port,
            server: d.server,
            prefix: d.prefix,
        })
        .collect();
    let files = ctx.store()?.instances().files(id)?;
    let system_changes = ctx
        .store()?
        .instances()
        .system_changes(id)?
        .into_iter()
        .map(|c| serde_json::json!({ "kind": c.kind, "data": serde_json::from_str::<serde_json::Value>(&c.data_json).unwrap_or_default() }))
        .collect();
    Ok(InstanceDetails {
        root: if inst.prefix.is_empty() {
            site.docroot.clone()
        } else {
            site.docroot.join(&inst.prefix)
        },
        path: inst.prefix.clone(),
        choices: serde_json::from_str(&inst.choices_json).unwrap_or_default(),
        application_files: files
            .iter()
            .filter(|f| f.kind == aps_store::instances::FileKind::File)
            .count(),
        view: summary.into(),
        settings,
        databases,
        system_changes,
    })
}

/// Whether the entry `name` of `dir` is a regular file with the content `record` recorded (its
/// SHA-256): an application file its owner did not change.
pub(crate) fn is_unchanged(
    dir: &aps_host::safedir::SafeDir,
    name: &std::ffi::OsStr,
    record: &aps_store::instances::InstanceFile,
) -> bool {
    use sha2::Digest as _;
    let Ok(mut file) = dir.open_file(name) else {
        return false;
    };
    let mut hasher = sha2::Sha256::new();
    if std::io::copy(&mut file, &mut hasher).is_err() {
        return false;
    }
    record.sha256.as_deref() == Some(hex::encode(hasher.finalize()).as_str())
}

/// One operation on an instance, as its history shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OperationView {
    /// The journal's operation id.
    pub operation: i64,
    /// `install`, `configure`, `upgrade`, …
    pub kind: String,
    /// When it started (milliseconds since the epoch).
    pub started_at: i64,
    /// When it ended, if it did.
    pub finished_at: Option<i64>,
    /// `done`, `rolled_back`, `rolled_forward`, `failed`; `None` while running or interrupted.
    pub outcome: Option<String>,
    /// The error that ended it, if any.
    pub error: Option<String>,
}

/// The newest `limit` operations on instance `id` (its audit trail, from the journal), newest
/// first. The instance need not exist any more.
pub fn history(ctx: &Context, id: &str, limit: u32) -> Result<Vec<OperationView>, Error> {
    Ok(ctx
        .store()?
        .journal()
        .operations_of(id, limit)?
        .into_iter()
        .map(|op| OperationView {
            operation: op.id.0,
            kind: op.kind,
            started_at: op.started_at.unix_millis(),
            finished_at: op.finished_at.map(aps_store::Timestamp::unix_millis),
            outcome: op.outcome.map(|o| o.as_str().to_owned()),
            error: op.error,
        })
        .collect())
}
