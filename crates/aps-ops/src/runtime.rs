//! What a site can run: interpreters for package scripts and the requirement checks (REFERENCE §6).
//!
//! Main decision: every check runs against the site's own runtime — its PHP CLI run as the site's
//! user, its registered database servers — never against apsctl's process (§9). All requirements
//! are checked before anything changes, and all problems are reported at once.
//!
//! Known gaps: PHP ini values come from the site's PHP CLI, not from its web SAPI (§11 Q23);
//! `apache:required-module` is taken as satisfied on Apache sites without asking Apache.
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use aps_host::interp::{Interpreter, InterpreterRegistry};
use aps_host::php::{IniSize, PhpInfo};
use aps_host::user::SystemUser;
use aps_host::web::FastCgi;
use aps_meta::model::{
    Alternative, ApacheRequirement, Choice, DbRequirement, PhpFlag, PhpRequirement, Requirement,
    Requirements, ScriptDecl,
};
use aps_meta::version::Version;
use aps_store::sites::{Site, WebKind};

use crate::context::Context;
use crate::database::SharedDatabase;
use crate::error::Error;

/// Resolves and checks the PHP CLI of a site being registered. `None` when none was asked for
/// and none is installed (such a site can host only packages without PHP).
pub(crate) fn resolve_php(
    ctx: &Context,
    php: Option<&Path>,
    user: &SystemUser,
) -> Result<Option<PathBuf>, Error> {
    let registry = InterpreterRegistry::default();
    match registry.resolve("php", php) {
        Ok(interp) => {
            interp
                .verify(&ctx.env, user)
                .map_err(|e| Error::Invalid(format!("the site's PHP does not work: {e}")))?;
            Ok(Some(interp.program))
        }
        Err(e) if php.is_some() => Err(Error::Invalid(e.to_string())),
        Err(_) => Ok(None),
    }
}

/// The interpreter for a declared script on a site, checked to run as the site's user
/// (seed step 2.1, REFERENCE §4.2).
pub(crate) fn interpreter(
    ctx: &Context,
    site: &Site,
    user: &SystemUser,
    decl: &ScriptDecl,
) -> Result<Interpreter, Error> {
    let refuse = |e: &dyn std::fmt::Display| {
        Error::Invalid(format!(
            "script `{}` is written in `{}`, which site `{}` cannot run: {e}",
            decl.name, decl.language, site.name
        ))
    };
    let interp = InterpreterRegistry::default()
        .resolve(&decl.language, site.php.as_deref())
        .map_err(|e| refuse(&e))?;
    interp.verify(&ctx.env, user).map_err(|e| refuse(&e))?;
    Ok(interp)
}

/// The database server chosen for one `db:db` requirement.
#[derive(Debug, Clone)]
pub(crate) struct DbChoice {
    /// The requirement.
    pub requirement: DbRequirement,
    /// The registered server's name.
    pub server: String,
}

/// The outcome of checking a service's requirements on a site.
#[derive(Debug, Default)]
pub(crate) struct Satisfied {
    /// A server for every database requirement, in document order.
    pub databases: Vec<DbChoice>,
    /// For every `choice`, the id of the alternative taken.
    pub choices: Vec<String>,
    /// PHP settings the site's PHP-FPM has too low, set for the instance alone (`PHP_VALUE`).
    pub php_values: Vec<(String, String)>,
}

/// Checks every requirement of a service on a site; returns the choices made or every problem.
pub(crate) fn check(
    ctx: &Context,
    site: &Site,
    user: &SystemUser,
    requirements: &Requirements,
    db_server: Option<&str>,
    shared: &BTreeMap<String, SharedDatabase>,
) -> Result<Satisfied, Error> {
    let mut checker = Checker {
        ctx,
        site,
        user,
        shared,
        db_server,
        php: None,
        fpm: fpm_of(site),
        fpm_php: None,
        php_values: Vec::new(),
    };
    let mut problems = Vec::new();
    let mut out = Satisfied::default();
    for item in &requirements.items {
        match checker.check(item) {
            Ok(Some(db)) => out.databases.push(db),
            Ok(None) => {}
            Err(why) => problems.push(why),
        }
    }
    for (n, choice) in requirements.choices.iter().enumerate() {
        let mut reasons = Vec::new();
        let mut taken = None;
        for alt in &choice.alternatives {
            let mut dbs = Vec::new();
            let mut failed = Vec::new();
            for item in &alt.items {
                match checker.check(item) {
                    Ok(Some(db)) => dbs.push(db),
                    Ok(None) => {}
                    Err(why) => failed.push(why),
                }
            }
            if failed.is_empty() {
                taken = Some((alt.id.clone(), dbs));
                break;
            }
            reasons.push(format!("alternative `{}`: {}", alt.id, failed.join("; ")));
        }
        match taken {
            Some((id, dbs)) => {
                out.choices.push(id);
                out.databases.extend(dbs);
            }
            None => problems.push(format!(
                "no alternative of choice {} can be satisfied ({})",
                n + 1,
                reasons.join(" | ")
            )),
        }
    }
    if problems.is_empty() {
        out.php_values = std::mem::take(&mut checker.php_values);
        Ok(out)
    } else {
        Err(Error::Invalid(format!(
            "site `{}` does not meet the package's requirements:\n  {}",
            site.name,
            problems.join("\n  ")
        )))
    }
}

/// What an installed instance must keep meeting when its site changes (`site update`): the
/// service's own requirements and, of each `choice`, the alternative taken at install
/// (`chosen`, in document order; a choice without a recorded alternative keeps them all) — all
/// without their database requirements, which a site's URL, PHP or web server do not touch.
pub(crate) fn installed_requirements(
    requirements: &Requirements,
    chosen: &[String],
) -> Requirements {
    let keep = |items: &[Requirement]| -> Vec<Requirement> {
        items
            .iter()
            .filter(|r| !matches!(r, Requirement::Db(_)))
            .cloned()
            .collect()
    };
    let choices = requirements
        .choices
        .iter()
        .enumerate()
        .map(|(n, choice)| {
            let taken: Vec<&Alternative> = choice
                .alternatives
                .iter()
                .filter(|alt| chosen.get(n) == Some(&alt.id))
                .collect();
            let alternatives = if taken.is_empty() {
                choice.alternatives.iter().collect()
            } else {
                taken
            };
            Choice {
                alternatives: alternatives
                    .into_iter()
                    .map(|alt| Alternative {
                        id: alt.id.clone(),
                        items: keep(&alt.items),
                    })
                    .collect(),
            }
        })
        .collect();
    Requirements {
        items: keep(&requirements.items),
        choices,
    }
}

struct Checker<'a> {
    ctx: &'a Context,
    /// Databases of other instances to share, by db:id (`--use-database`): they decide the server.
    shared: &'a BTreeMap<String, SharedDatabase>,
    site: &'a Site,
    user: &'a SystemUser,
    db_server: Option<&'a str>,
    php: Option<Result<PhpInfo, String>>,
    /// The site's PHP-FPM, when apsctl configures its web server: the web SAPI's values decide
    /// the PHP settings, and its version and extensions must hold as well as the CLI's.
    fpm: Option<FastCgi>,
    fpm_php: Option<Result<PhpInfo, String>>,
    php_values: Vec<(String, String)>,
}

/// Whether `info` (a CLI's or PHP-FPM's answers) meets `req`; the reason when not.
fn php_holds(info: &PhpInfo, req: &PhpRequirement) -> Result<(), String> {
    match req {
        PhpRequirement::Version {
            min,
            max_not_including,
        } => {
            let have = Version::new(info.version.as_str());
            if let Some(min) = min {
                if have < Version::new(min.as_str()) {
                    return Err(format!(
                        "PHP {} is older than the required {min}",
                        info.version
                    ));
                }
            }
            if let Some(max) = max_not_including {
                if have >= Version::new(max.as_str()) {
                    return Err(format!(
                        "PHP {} is not older than {max}, as required",
                        info.version
                    ));
                }
            }
            Ok(())
        }
        PhpRequirement::Extension(ext) => {
            if info.has_extension(ext) {
                Ok(())
            } else {
                Err(format!("PHP extension `{ext}` is not loaded"))
            }
        }
        PhpRequirement::Function(f) => match info.has_function(f) {
            Some(true) => Ok(()),
            _ => Err(format!("PHP function `{f}` does not exist")),
        },
        PhpRequirement::Flag {
            directive: flag,
            value,
        } => {
            let have = info
                .ini(flag.ini_name())
                .is_some_and(aps_host::php::parse_ini_bool);
            if have == *value {
                Ok(())
            } else {
                Err(format!(
                    "PHP setting `{}` must be {}",
                    flag.ini_name(),
                    if *value { "on" } else { "off" }
                ))
            }
        }
        PhpRequirement::Size { directive, bytes } => {
            let name = directive.ini_name();
            match info.ini(name).and_then(aps_host::php::parse_ini_size) {
                Some(IniSize::Unlimited) => Ok(()),
                Some(IniSize::Bytes(have)) if have >= *bytes => Ok(()),
                _ => Err(format!(
                    "PHP setting `{name}` is below the required {bytes} bytes"
                )),
            }
        }
        PhpRequirement::MaxExecutionTime(seconds) => {
            let have: u64 = info
                .ini("max_execution_time")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if have == 0 || have >= *seconds {
                Ok(())
            } else {
                Err(format!(
                    "PHP `max_execution_time` is {have}s, below the required {seconds}s"
                ))
            }
        }
    }
}

/// The per-instance setting (`PHP_VALUE`) that meets `req`, when PHP lets a request set it
/// (`PHP_INI_PERDIR` or `PHP_INI_ALL`: `memory_limit`, `post_max_size`, `max_execution_time`,
/// `short_open_tag`). `file_uploads` and `allow_url_fopen` are the pool's (`PHP_INI_SYSTEM`), and
/// `safe_mode`, `register_globals`, `magic_quotes_gpc` no longer exist: those are refused.
fn per_instance(req: &PhpRequirement) -> Option<(String, String)> {
    match req {
        PhpRequirement::Size { directive, bytes } => {
            let value = if bytes % (1 << 20) == 0 {
                format!("{}M", bytes >> 20)
            } else {
                bytes.to_string()
            };
            Some((directive.ini_name().to_owned(), value))
        }
        PhpRequirement::MaxExecutionTime(seconds) => {
            Some(("max_execution_time".to_owned(), seconds.to_string()))
        }
        PhpRequirement::Flag {
            directive: PhpFlag::ShortOpenTag,
            value,
        } => Some((
            "short_open_tag".to_owned(),
            if *value { "1" } else { "0" }.to_owned(),
        )),
        _ => None,
    }
}

/// The PHP-FPM apsctl can probe and configure per instance for `site`.
fn fpm_of(site: &Site) -> Option<FastCgi> {
    if site.web == WebKind::None {
        return None;
    }
    site.php_fastcgi
        .as_deref()
        .and_then(|addr| FastCgi::parse(addr).ok())
}

impl Checker<'_> {
    /// `Ok(Some)` for a satisfied database requirement, `Ok(None)` for other satisfied ones.
    fn check(&mut self, item: &Requirement) -> Result<Option<DbChoice>, String> {
        match item {
            Requirement::Php(req) => self.php(req).map(|()| None),
            Requirement::Db(req) => self.db(req).map(Some),
            Requirement::Apache(req) => self.apache(req).map(|()| None),
            Requirement::Other(el) => Err(format!(
                "requirement `{}` of namespace `{}` cannot be satisfied by apsctl",
                el.name, el.namespace
            )),
        }
    }

    fn php_info(&mut self, function: Option<&str>) -> Result<&PhpInfo, String> {
        let needs_probe = match (&self.php, function) {
            (None, _) => true,
            (Some(Ok(info)), Some(f)) => info.has_function(f).is_none(),
            (Some(Err(_)), _) | (Some(Ok(_)), None) => false,
        };
        if needs_probe {
            let result = match &self.site.php {
                None => Err(format!("site `{}` has no PHP", self.site.name)),
                Some(php) => {
                    let functions: Vec<&str> = function.into_iter().collect();
                    aps_host::php::probe(&self.ctx.env, php, self.user, &functions)
                        .map_err(|e| e.to_string())
                }
            };
            // Keep function answers from an earlier probe.
            if let (Some(Ok(old)), Ok(new)) = (&self.php, &result) {
                let mut merged = new.clone();
                merged.functions.extend(old.functions.clone());
                self.php = Some(Ok(merged));
            } else {
                self.php = Some(result);
            }
        }
        match self.php.as_ref() {
            Some(Ok(info)) => Ok(info),
            Some(Err(e)) => Err(e.clone()),
            None => Err("PHP was not probed".into()),
        }
    }

    /// The site's PHP-FPM answers (probed once, asked about every function of the package).
    fn fpm_info(&mut self, fpm: &FastCgi, function: Option<&str>) -> Result<PhpInfo, String> {
        let needs_probe = match (&self.fpm_php, function) {
            (None, _) => true,
            (Some(Ok(info)), Some(f)) => info.has_function(f).is_none(),
            _ => false,
        };
        if needs_probe {
            let mut functions: Vec<String> = self
                .fpm_php
                .as_ref()
                .and_then(|r| r.as_ref().ok())
                .map(|i| i.functions.keys().cloned().collect())
                .unwrap_or_default();
            functions.extend(function.map(str::to_owned));
            let names: Vec<&str> = functions.iter().map(String::as_str).collect();
            let probes = self.ctx.home.probes();
            self.fpm_php =
                Some(aps_host::php::probe_fpm(fpm, &probes, &names).map_err(|e| e.to_string()));
        }
        match &self.fpm_php {
            Some(Ok(info)) => Ok(info.clone()),
            Some(Err(e)) => Err(e.clone()),
            None => Err("PHP-FPM was not probed".into()),
        }
    }

    fn php(&mut self, req: &PhpRequirement) -> Result<(), String> {
        let function = match req {
            PhpRequirement::Function(f) => Some(f.as_str()),
            _ => None,
        };
        let is_setting = matches!(
            req,
            PhpRequirement::Flag { .. }
                | PhpRequirement::Size { .. }
                | PhpRequirement::MaxExecutionTime(_)
        );
        // Settings are the web SAPI's business when apsctl configures it; what the scripts run
        // with (version, extensions, functions) must also hold for the CLI.
        if !(is_setting && self.fpm.is_some()) {
            let info = self.php_info(function)?;
            php_holds(info, req)?;
        }
        let Some(fpm) = self.fpm.clone() else {
            return Ok(());
        };
        let info = self.fpm_info(&fpm, function)?;
        match php_holds(&info, req) {
            Ok(()) => Ok(()),
            Err(why) => match per_instance(req) {
                Some(value) => {
                    self.php_values.push(value);
                    Ok(())
                }
                None => Err(format!("{why} (the site's PHP-FPM)")),
            },
        }
    }

    fn db(&mut self, req: &DbRequirement) -> Result<DbChoice, String> {
        let wanted = req.server_type.as_str();
        if !matches!(wanted, "mysql" | "postgresql" | "sqlite") {
            return Err(format!(
                "database type `{wanted}` (db:id `{}`) is not supported by apsctl",
                req.id
            ));
        }
        if let Some(shared) = self.shared.get(&req.id) {
            return self.shared_db(req, shared);
        }
        let servers = self
            .ctx
            .store()
            .map_err(|e| e.to_string())?
            .db_servers()
            .list()
            .map_err(|e| e.to_string())?;
        let mut reasons = Vec::new();
        for server in servers {
            if self.db_server.is_some_and(|n| n != server.name) || server.kind.as_str() != wanted {
                continue;
            }
            if let (Some(min), Some(have)) = (&req.server_min_version, &server.version) {
                let number = aps_host::db::ServerVersion::parse(have, "").number;
                if Version::new(number.as_str()) < Version::new(min.as_str()) {
                    reasons.push(format!(
                        "server `{}` runs {number}, older than {min}",
                        server.name
                    ));
                    continue;
                }
            }
            return Ok(DbChoice {
                requirement: req.clone(),
                server: server.name,
            });
        }
        let scope = self
            .db_server
            .map_or_else(String::new, |n| format!(" named `{n}`"));
        Err(if reasons.is_empty() {
            format!(
                "no {wanted} database server{scope} is registered (db:id `{}`)",
                req.id
            )
        } else {
            format!(
                "no suitable {wanted} server for db:id `{}`: {}",
                req.id,
                reasons.join(", ")
            )
        })
    }

    /// A db:id that goes into another instance's database is satisfied by that database's server
    /// when the types match (so `--use-database` also picks the `choice` alternative).
    fn shared_db(&self, req: &DbRequirement, shared: &SharedDatabase) -> Result<DbChoice, String> {
        let db =
            crate::database::shared_record(self.ctx, shared, req).map_err(|e| e.to_string())?;
        let server = db.server.ok_or_else(|| {
            format!(
                "database `{}` of instance {} has no registered server",
                db.name, shared.instance
            )
        })?;
        Ok(DbChoice {
            requirement: req.clone(),
            server,
        })
    }

    fn apache(&self, req: &ApacheRequirement) -> Result<(), String> {
        if self.site.web == WebKind::Apache {
            // A module is checked by the server's configuration test (see `aps_host::web::apache`).
            return match req {
                ApacheRequirement::RequiredModule(m) if self.site.web_test.is_none() => {
                    Err(format!(
                        "Apache module `{m}` is required, and apsctl checks modules through the server's configuration test, which site `{}` does not have: register the site with `--web-test`",
                        self.site.name
                    ))
                }
                _ => Ok(()),
            };
        }
        Err(match req {
            ApacheRequirement::RequiredModule(m) => format!(
                "Apache module `{m}` is required, but site `{}` is not served by Apache",
                self.site.name
            ),
            ApacheRequirement::Htaccess => format!(
                ".htaccess support is required, but site `{}` is not served by Apache",
                self.site.name
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(id: &str) -> Requirement {
        Requirement::Db(DbRequirement {
            id: id.into(),
            default_name: None,
            can_use_tables_prefix: false,
            server_type: "mysql".into(),
            server_min_version: None,
        })
    }

    fn ext(name: &str) -> Requirement {
        Requirement::Php(PhpRequirement::Extension(name.into()))
    }

    /// `site update` (issue 10 item 7) checks what the site change touches: no databases, and of
    /// a `choice` the alternative the install took.
    #[test]
    fn installed_requirements_keep_the_chosen_alternative_without_databases() {
        let alt = |id: &str, items: Vec<Requirement>| Alternative {
            id: id.into(),
            items,
        };
        let requirements = Requirements {
            items: vec![ext("gd"), db("main")],
            choices: vec![
                Choice {
                    alternatives: vec![
                        alt("pgsql", vec![ext("pgsql"), db("data")]),
                        alt("mysql", vec![ext("mysqli"), db("data")]),
                    ],
                },
                Choice {
                    alternatives: vec![alt("x", vec![ext("x")]), alt("y", vec![ext("y")])],
                },
            ],
        };
        let kept = installed_requirements(&requirements, &["mysql".into()]);
        assert_eq!(kept.items, [ext("gd")]);
        assert_eq!(
            kept.choices[0].alternatives,
            [alt("mysql", vec![ext("mysqli")])]
        );
        // No alternative recorded for the second choice: all of them stay.
        assert_eq!(kept.choices[1], requirements.choices[1]);
    }
}
