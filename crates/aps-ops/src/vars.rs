//! The APS environment of a script run (REFERENCE §5; decisions D4, D5, D6, D9).
//!
//! Main decision: variables are built from scratch for every run as a list of (name, value)
//! pairs, together with the secret values the runner must redact; nothing is inherited from the
//! controller's environment (§9, the `putenv()` lesson).
use std::collections::BTreeMap;
use std::path::Path;

use aps_meta::model::UrlMapping;
use aps_store::instances::InstanceDatabase;

use crate::site::SiteUrl;

/// Whether a run gets the installation-only global settings (only `configure install` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InstallOnly {
    /// `configure install`.
    Passed,
    /// Every later run.
    Left,
}

/// The variables of one script run and the values to redact from its output.
#[derive(Default)]
pub(crate) struct VarSet {
    /// Name and value, in a stable order.
    pub vars: Vec<(String, String)>,
    /// Secret values (passwords, database passwords).
    pub secrets: Vec<String>,
}

impl std::fmt::Debug for VarSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: names only.
        f.debug_list()
            .entries(self.vars.iter().map(|(k, _)| k))
            .finish()
    }
}

impl VarSet {
    fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.push((name.into(), value.into()));
    }

    /// D5: `BASE_URL_SCHEME`, `BASE_URL_HOST`, `BASE_URL_PORT` (empty for the default port),
    /// `BASE_URL_PATH` (`/` or `/prefix/`).
    pub(crate) fn url(&mut self, url: &SiteUrl, prefix: &str) {
        self.push("BASE_URL_SCHEME", url.scheme.clone());
        self.push("BASE_URL_HOST", url.host.clone());
        self.push(
            "BASE_URL_PORT",
            url.port.map(|p| p.to_string()).unwrap_or_default(),
        );
        self.push(
            "BASE_URL_PATH",
            if prefix.is_empty() {
                "/".to_owned()
            } else {
                format!("/{prefix}/")
            },
        );
    }

    /// D4: `WEB_<path>_DIR` for every non-virtual mapping, plus the sanitised alias.
    pub(crate) fn web(&mut self, mapping: Option<&UrlMapping>, root: &Path) {
        let Some(mapping) = mapping else { return };
        for entry in mapping.entries() {
            let Some(var) = &entry.web_variable else {
                continue;
            };
            let rel = entry.url_path.trim_start_matches('/');
            let dir = if rel.is_empty() {
                root.to_path_buf()
            } else {
                root.join(rel)
            };
            let value = dir.display().to_string().trim_end_matches('/').to_owned();
            for name in var.names() {
                self.push(name, value.clone());
            }
        }
    }

    /// `SETTINGS_<id>` for each (id, encoded value, secret) given.
    pub(crate) fn settings<'a>(
        &mut self,
        values: impl IntoIterator<Item = (&'a str, &'a str, bool)>,
    ) {
        for (id, value, secret) in values {
            if secret && !value.is_empty() {
                self.secrets.push(value.to_owned());
            }
            self.push(format!("SETTINGS_{id}"), value);
        }
    }

    /// `SETTINGS_<id>` for the package's global settings (REFERENCE §8.2, §5.4): the value
    /// saved for the package identity (`saved`, encoded, unsealed) when it is valid for this
    /// version's declaration, else the default, encoded per D6 (a boolean default `1` is passed
    /// as `true`). Installation-only global settings reach `configure install` only.
    pub(crate) fn global_settings(
        &mut self,
        pkg: &aps_meta::model::Package,
        saved: &BTreeMap<String, String>,
        install_only: InstallOnly,
    ) {
        for s in pkg.all_global_settings() {
            if s.installation_only && install_only == InstallOnly::Left {
                continue;
            }
            let parsed = |raw: &str| aps_meta::value::parse_value(&s.kind, raw).map(|v| v.encode());
            let from_saved = saved
                .get(&s.id)
                .filter(|v| !v.is_empty())
                .and_then(|v| parsed(v).ok());
            let value = from_saved.unwrap_or_else(|| {
                let raw = s.default_value.clone().unwrap_or_default();
                if raw.is_empty() {
                    raw
                } else {
                    parsed(&raw).unwrap_or(raw)
                }
            });
            self.settings([(s.id.as_str(), value.as_str(), s.kind.is_secret())]);
        }
    }

    /// D9: `DB_<id>_TYPE/NAME/LOGIN/PASSWORD/HOST/PORT/VERSION`, and `DB_<id>_PREFIX` only when
    /// the instance has a table prefix.
    pub(crate) fn databases(&mut self, dbs: &[InstanceDatabase]) {
        for db in dbs {
            let id = &db.db_id;
            self.push(format!("DB_{id}_TYPE"), db.kind.as_str());
            self.push(format!("DB_{id}_NAME"), db.name.clone());
            self.push(format!("DB_{id}_LOGIN"), db.login.clone());
            self.push(format!("DB_{id}_PASSWORD"), db.password.clone());
            self.push(format!("DB_{id}_HOST"), db.host.clone());
            self.push(
                format!("DB_{id}_PORT"),
                db.port.map(|p| p.to_string()).unwrap_or_default(),
            );
            self.push(format!("DB_{id}_VERSION"), db.version.clone());
            if let Some(prefix) = &db.prefix {
                self.push(format!("DB_{id}_PREFIX"), prefix.clone());
            }
            if !db.password.is_empty() {
                self.secrets.push(db.password.clone());
            }
        }
    }

    /// `BACKUP_FILE` for a backup script's `backup` and `restore` runs (REFERENCE §4.5).
    pub(crate) fn backup_file(&mut self, path: &Path) {
        self.push("BACKUP_FILE", path.display().to_string());
    }

    /// The names only (for plans and logs).
    pub(crate) fn names(&self) -> Vec<String> {
        self.vars.iter().map(|(k, _)| k.clone()).collect()
    }

    /// Refuses an environment the kernel would refuse to start a script with (D16 of the
    /// hardening issue): Linux caps one `NAME=value` string at 128 KiB (`MAX_ARG_STRLEN`) and
    /// argv plus environment together near 2 MiB, so a value that is too large would only be
    /// found after the files were deployed, as "cannot start the interpreter". The figures name
    /// the largest variables.
    pub(crate) fn check_size(&self) -> Result<(), crate::error::Error> {
        let size = |(k, v): &(String, String)| k.len() + v.len() + 2;
        let total: usize = self.vars.iter().map(size).sum();
        let largest = self.vars.iter().max_by_key(|kv| size(kv));
        let too_long = largest.filter(|kv| size(kv) > MAX_VARIABLE_BYTES);
        if let Some((name, _)) = too_long {
            return Err(crate::error::Error::Invalid(format!(
                "variable `{name}` would be {} bytes long; scripts cannot be started with a variable over {MAX_VARIABLE_BYTES} bytes",
                largest.map_or(0, size)
            )));
        }
        if total > MAX_ENVIRONMENT_BYTES {
            let mut by_size: Vec<&(String, String)> = self.vars.iter().collect();
            by_size.sort_by_key(|kv| std::cmp::Reverse(size(kv)));
            let names: Vec<String> = by_size
                .iter()
                .take(3)
                .map(|kv| format!("`{}` ({} bytes)", kv.0, size(kv)))
                .collect();
            return Err(crate::error::Error::Invalid(format!(
                "the scripts' environment would be {total} bytes, more than the {MAX_ENVIRONMENT_BYTES} apsctl allows; the largest variables are {}",
                names.join(", ")
            )));
        }
        Ok(())
    }
}

/// Longest `NAME=value` string a script gets (Linux `MAX_ARG_STRLEN` is 128 KiB).
pub(crate) const MAX_VARIABLE_BYTES: usize = 128 * 1024 - 1;

/// Largest environment a script gets, all variables together (Linux allows argv plus
/// environment near 2 MiB; apsctl keeps half of it for argv and the base variables' margin).
pub(crate) const MAX_ENVIRONMENT_BYTES: usize = 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_the_kernel_would_refuse_are_refused() {
        let mut vars = VarSet::default();
        vars.push("SETTINGS_title", "x".repeat(1000));
        assert!(vars.check_size().is_ok());
        vars.push("SETTINGS_big", "x".repeat(MAX_VARIABLE_BYTES));
        let error = vars.check_size().unwrap_err().to_string();
        assert!(error.contains("`SETTINGS_big`"), "{error}");
        let mut vars = VarSet::default();
        for n in 0..20 {
            vars.push(format!("SETTINGS_{n}"), "y".repeat(60 * 1024));
        }
        let error = vars.check_size().unwrap_err().to_string();
        assert!(error.contains("more than the 1048576"), "{error}");
    }

    #[test]
    fn url_variables_follow_d5() {
        let mut v = VarSet::default();
        v.url(
            &SiteUrl::parse("https://example.com:8443/").unwrap(),
            "blog",
        );
        assert_eq!(
            v.vars,
            vec![
                ("BASE_URL_SCHEME".to_owned(), "https".to_owned()),
                ("BASE_URL_HOST".to_owned(), "example.com".to_owned()),
                ("BASE_URL_PORT".to_owned(), "8443".to_owned()),
                ("BASE_URL_PATH".to_owned(), "/blog/".to_owned()),
            ]
        );
        let mut v = VarSet::default();
        v.url(&SiteUrl::parse("https://example.com/").unwrap(), "");
        assert_eq!(v.vars[2].1, "");
        assert_eq!(v.vars[3].1, "/");
    }

    #[test]
    fn global_settings_take_saved_values_else_defaults() {
        let text = r#"<application xmlns="http://apstandard.com/ns/1" version="1.2">
<id>x</id><name>X</name><version>1</version><release>1</release>
<global-settings>
<setting id="motto" type="string" default-value="Hello"/>
<setting id="size" type="integer" default-value="5"/>
<setting id="flag" type="boolean" default-value="1"/>
<setting id="key" type="password"/>
<setting id="seed" type="string" default-value="s" installation-only="true"/>
</global-settings><service id="s"/></application>"#;
        let pkg = aps_meta::parse::parse_app_meta(text.as_bytes(), "APP-META.xml")
            .unwrap()
            .package;
        let saved: BTreeMap<String, String> = [
            ("motto", "Saved"),
            ("size", "not a number"),
            ("key", "k3y-s3cret"),
            ("seed", "saved-seed"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let get = |v: &VarSet, name: &str| {
            v.vars
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let mut later = VarSet::default();
        later.global_settings(&pkg, &saved, InstallOnly::Left);
        assert_eq!(get(&later, "SETTINGS_motto").as_deref(), Some("Saved"));
        // A saved value this version's type refuses falls back to the default.
        assert_eq!(get(&later, "SETTINGS_size").as_deref(), Some("5"));
        assert_eq!(get(&later, "SETTINGS_flag").as_deref(), Some("true"));
        assert_eq!(get(&later, "SETTINGS_key").as_deref(), Some("k3y-s3cret"));
        assert_eq!(later.secrets, ["k3y-s3cret"]);
        assert_eq!(get(&later, "SETTINGS_seed"), None, "installation-only");
        let mut install = VarSet::default();
        install.global_settings(&pkg, &saved, InstallOnly::Passed);
        assert_eq!(
            get(&install, "SETTINGS_seed").as_deref(),
            Some("saved-seed")
        );
    }

    #[test]
    fn secrets_are_collected_and_debug_shows_names_only() {
        let mut v = VarSet::default();
        v.settings([("admin_password", "s3cret!", true), ("title", "Hi", false)]);
        assert_eq!(v.secrets, vec!["s3cret!".to_owned()]);
        let shown = format!("{v:?}");
        assert!(shown.contains("SETTINGS_admin_password") && !shown.contains("s3cret!"));
    }
}
