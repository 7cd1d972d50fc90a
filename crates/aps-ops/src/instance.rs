//! Instances as stored: loading one with everything an operation needs, and `instance list/show`.
//!
//! Main decision: operations after install work from what the instance recorded — its private
//! copy of APP-META.xml (not the repository package, which may be re-imported), its settings and
//! databases from the store (secrets unsealed here, and only here) — so a script always sees the
//! environment of the package that was actually installed (REFERENCE §4.3, §5.4).
//!
//! Known gap: global settings reach scripts with their package defaults; saved global values
//! (§8.2) are not stored yet.
use std::collections::BTreeMap;
use std::path::PathBuf;

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
use crate::vars::VarSet;

/// An instance with its site, package, stored metadata and records.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub instance: Instance,
    pub site: Site,
    pub user: SystemUser,
    pub url: SiteUrl,
    pub package: StoredPackage,
    /// The metadata kept in the instance's private folder (what was installed).
    pub meta: Package,
    pub settings: Vec<Setting>,
    pub databases: Vec<InstanceDatabase>,
    pub files: Vec<InstanceFile>,
    pub system_changes: Vec<aps_store::instances::SystemChange>,
    pub private: PathBuf,
    pub root: PathBuf,
}

impl Loaded {
    /// Loads instance `id` (not locked).
    pub(crate) fn load(ctx: &Context, id: &str) -> Result<Self, Error> {
        let instance = ctx.store.instances().get(id)?;
        let site = ctx.store.sites().get(&instance.site)?;
        let user = SystemUser::lookup(&site.system_user)
            .map_err(|e| Error::Failed(format!("site `{}`: {e}", site.name)))?;
        let url = SiteUrl::parse(&site.url)?;
        let package = package::load(ctx, &instance.package_ref)?;
        let private = ctx.home.instance(id);
        let meta_path = private.join("meta").join(package::APP_META);
        let bytes = fs_err::read(&meta_path)?;
        let meta = aps_meta::parse::parse_app_meta(&bytes, &meta_path.display().to_string())
            .map_err(|e| {
                Error::Failed(format!(
                    "the stored metadata of instance {id} is unreadable: {e}"
                ))
            })?
            .package;
        let root = if instance.prefix.is_empty() {
            site.docroot.clone()
        } else {
            site.docroot.join(&instance.prefix)
        };
        Ok(Self {
            settings: unsealed_settings(ctx, ctx.store.instances().settings(id)?)?,
            databases: crate::database::unsealed(ctx, ctx.store.instances().databases(id)?)?,
            files: ctx.store.instances().files(id)?,
            system_changes: ctx.store.instances().system_changes(id)?,
            instance,
            site,
            user,
            url,
            package,
            meta,
            private,
            root,
        })
    }

    /// Where the instance lives on its site.
    pub(crate) fn place(&self) -> crate::deploy::Place<'_> {
        crate::deploy::Place {
            docroot: &self.site.docroot,
            prefix: &self.instance.prefix,
        }
    }

    /// The root service of the installed metadata.
    pub(crate) fn service(&self) -> Result<&Service, Error> {
        self.meta
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
            .root_service()
            .and_then(|s| s.provision.url_mapping.as_ref());
        vars.web(mapping, &self.root);
        vars.databases(&self.databases);
        vars.global_settings(&self.meta);
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

    /// The configuration script, with its interpreter checked for this site (seed step 2.1).
    pub(crate) fn config_script(&self, ctx: &Context) -> Result<Option<ConfigScript<'_>>, Error> {
        let Some(decl) = self.service()?.provision.configuration_script.as_ref() else {
            return Ok(None);
        };
        Ok(Some(ConfigScript {
            decl,
            interpreter: crate::runtime::interpreter(ctx, &self.site, &self.user, decl)?,
            scripts_dir: crate::script::scripts_dir(&self.private),
            user: &self.user,
        }))
    }
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

/// Every instance.
pub fn list(ctx: &Context) -> Result<Vec<InstanceView>, Error> {
    Ok(ctx
        .store
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
    let inst = ctx.store.instances().get(id)?;
    let site = ctx.store.sites().get(&inst.site)?;
    let summary = ctx
        .store
        .instances()
        .list()?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| Error::NotFound(format!("instance {id} does not exist")))?;
    let settings = ctx
        .store
        .instances()
        .settings(id)?
        .into_iter()
        .map(|s| {
            (
                s.setting_id,
                if s.secret { "***".to_owned() } else { s.value },
            )
        })
        .collect();
    let databases = ctx
        .store
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
    let files = ctx.store.instances().files(id)?;
    let system_changes = ctx
        .store
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
