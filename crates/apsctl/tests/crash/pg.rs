//! The PostgreSQL test server of `.ci/services.sh`, seen as its administrator through `psql`:
//! the databases and roles a bench may leave behind.
//!
//! Main decision: a [`Pg`] belongs to one bench and its name base: what carries the base is
//! dropped when it is made (leftovers of an interrupted run) and when it is dropped, also when
//! the test fails. The administrator's password reaches `psql` through a 0600 password file in
//! the test's folder (`PGPASSFILE`), never argv, so secret watchers of other test binaries see
//! nothing.
#![expect(
    clippy::unwrap_used,
    reason = "test fixture: a failed setup or inspection step is a failed test"
)]
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// Where `.ci/services.sh` writes the test servers' settings.
const CI_ENV: &str = "/var/lib/apsctl-ci/env";

/// The PostgreSQL test server.
#[derive(Debug)]
pub struct Pg {
    /// Host.
    pub host: String,
    /// Port.
    pub port: String,
    /// The administrator role.
    pub user: String,
    /// The administrator password file (given to `db-server add`).
    pub password_file: PathBuf,
    /// A libpq password file with the administrator's login.
    passfile: PathBuf,
    /// The bench's name base (`gblN`).
    base: String,
}

impl Pg {
    /// Reads the server's settings for the bench whose names start with `base`; writes the
    /// password file into `dir`.
    pub fn from_ci_env(dir: &Path, base: &str) -> Self {
        let text = fs_err::read_to_string(CI_ENV).unwrap_or_else(|e| {
            panic!("the PostgreSQL test server is not set up ({e}); run `bash .ci/services.sh`")
        });
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .map_or_else(
                    || panic!("{CI_ENV} has no {key}; run `bash .ci/services.sh`"),
                    |v| v.trim().trim_matches('"').to_owned(),
                )
        };
        let password_file = PathBuf::from(get("APSCTL_TEST_PG_PASSWORD_FILE"));
        let password = fs_err::read_to_string(&password_file)
            .unwrap()
            .trim()
            .to_owned();
        let pg = Self {
            host: get("APSCTL_TEST_PG_HOST"),
            port: get("APSCTL_TEST_PG_PORT"),
            user: get("APSCTL_TEST_PG_USER"),
            password_file,
            passfile: dir.join("pg.pass"),
            base: base.to_owned(),
        };
        fs_err::write(
            &pg.passfile,
            format!("{}:{}:*:{}:{password}\n", pg.host, pg.port, pg.user),
        )
        .unwrap();
        fs_err::set_permissions(&pg.passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
        if let Err(e) = pg.try_query("SELECT 1") {
            panic!(
                "the PostgreSQL test server at {}:{} does not answer: {e}; run `bash .ci/services.sh`",
                pg.host, pg.port
            );
        }
        pg.drop_named();
        pg
    }

    fn try_query(&self, sql: &str) -> Result<Vec<String>, String> {
        let out = assert_cmd::Command::new("psql")
            .env("PGPASSFILE", &self.passfile)
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", &self.host, "-p", &self.port, "-U", &self.user])
            .args(["-d", "postgres"])
            .current_dir("/")
            .write_stdin(format!("{sql};\n"))
            .output()
            .map_err(|e| format!("cannot run `psql`: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect())
    }

    /// `database NAME` and `role NAME` for every database and role of the bench.
    pub fn named(&self) -> BTreeSet<String> {
        let base = self.base.as_str();
        let mut out = BTreeSet::new();
        for (what, sql) in [
            ("database", "SELECT datname FROM pg_catalog.pg_database"),
            ("role", "SELECT rolname FROM pg_catalog.pg_roles"),
        ] {
            let rows = self
                .try_query(sql)
                .unwrap_or_else(|e| panic!("PostgreSQL refused `{sql}`: {e}"));
            out.extend(
                rows.into_iter()
                    .filter(|n| n.starts_with(base))
                    .map(|n| format!("{what} {n}")),
            );
        }
        out
    }

    /// Drops every database and role of the bench (databases first: a role owning one cannot
    /// go before it).
    fn drop_named(&self) {
        for entry in self.named() {
            let sql = match entry.split_once(' ') {
                Some(("database", name)) => {
                    format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")
                }
                Some((_, name)) => format!("DROP ROLE IF EXISTS \"{name}\""),
                None => continue,
            };
            let _ = self.try_query(&sql);
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.drop_named();
    }
}
