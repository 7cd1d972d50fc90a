//! `PostgreSQL` through `psql`, `pg_dump` and `pg_restore`.
//!
//! Main decision: the password reaches libpq through a temporary 0600 password file named by
//! `PGPASSFILE`; host, port, user and database go in a `key='value'` connection string (so no
//! database name is ever read as an option or a URI). A login is a role with `LOGIN PASSWORD`,
//! granted to the administrator (which needs only `CREATEDB CREATEROLE`, not superuser) so the
//! administrator may create the database `OWNER` it, dump it and drop it; `CONNECT` is revoked
//! from `PUBLIC`. Dumps use `pg_dump`'s custom format, loaded by `pg_restore --no-owner
//! --no-privileges --single-transaction` as the instance's login: unlike a plain SQL file fed to
//! `psql`, a tampered archive cannot run `\!` shell commands, and the objects end up owned by the
//! new login whatever the old one was called.
//!
//!
//! Proof of creator: the role is created with `COMMENT ON ROLE … IS '<marker>'` in the same
//! transaction as `CREATE ROLE` (both or neither), then the database `OWNER` that role; the
//! fault point `db-create` sits between the two. A role is ours when its comment is the marker,
//! a database when its owner is the spec's role and that role is ours. The password cannot be
//! the proof here: `pg_hba.conf` may `trust` a connection whatever password it brings.
//!
//! Known gaps: passwords with line breaks are refused (the password file is line based); the
//! administrator connects to the `postgres` maintenance database; extensions that need a superuser
//! are not restored; a database someone else created `OWNER` our role (a superuser, or a member
//! of that role) reads as ours.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::client::{self, Input, Invocation, Output};
use super::{
    ConnectionValues, DatabaseServer, DbError, DbSpec, Lines, NameLimits, Owner, Ownership, Proof,
    Secret, ServerConfig, ServerType, ServerVersion,
};

const KIND: ServerType = ServerType::Postgresql;

/// `NAMEDATALEN` - 1: longer identifiers are silently truncated by the server, so they are refused.
const NAME_LIMIT: usize = 63;

/// Database the administrator connects to for server-wide statements.
const MAINTENANCE_DB: &str = "postgres";

/// A `PostgreSQL` server.
pub(super) struct Postgres {
    config: ServerConfig,
    psql: PathBuf,
    pg_dump: PathBuf,
    pg_restore: PathBuf,
    version: OnceLock<(ServerVersion, u32)>,
}

/// A login and the database it connects to.
struct Login<'a> {
    user: &'a str,
    password: &'a Secret,
    database: &'a str,
}

impl Postgres {
    pub(super) fn new(config: ServerConfig) -> Result<Self, DbError> {
        if config.host.is_empty() || config.admin_user.is_empty() {
            return Err(DbError::Config {
                server: KIND,
                reason: "host and administrator login are required".to_owned(),
            });
        }
        super::check_password(KIND, &config.admin_password, Lines::Refused)?;
        Ok(Self {
            psql: find_pg_program("psql")?,
            pg_dump: find_pg_program("pg_dump")?,
            pg_restore: find_pg_program("pg_restore")?,
            config,
            version: OnceLock::new(),
        })
    }

    fn admin(&self, database: &'static str) -> Login<'_> {
        Login {
            user: &self.config.admin_user,
            password: &self.config.admin_password,
            database,
        }
    }

    /// A connection string for `user` on `database` (no password).
    fn conninfo(&self, user: &str, database: &str) -> String {
        format!(
            "host={} port={} user={} dbname={} connect_timeout=10",
            conn_value(&self.config.host),
            self.config.effective_port(),
            conn_value(user),
            conn_value(database),
        )
    }

    /// Prepares an invocation of `program` connecting as `login`; the returned file must live
    /// until the run ends.
    fn connect<'a>(
        program: &'a Path,
        login: &Login<'a>,
        action: String,
    ) -> Result<(Invocation<'a>, tempfile::NamedTempFile), DbError> {
        let passfile = client::secret_file(&format!(
            "*:*:*:{}:{}\n",
            passfile_value(login.user),
            passfile_value(login.password.expose())
        ))?;
        let mut invocation = Invocation::new(program, action);
        invocation.env = vec![
            ("PGPASSFILE", passfile.path().as_os_str().to_owned()),
            ("PGCLIENTENCODING", "UTF8".into()),
        ];
        invocation.secrets = vec![login.password.expose()];
        Ok((invocation, passfile))
    }

    /// Runs `sql` through `psql` as `login`; returns stdout (unaligned, tuples only).
    fn sql(
        &self,
        login: &Login<'_>,
        action: &str,
        sql: &str,
        one_transaction: bool,
    ) -> Result<Vec<u8>, DbError> {
        let (mut invocation, _passfile) = Self::connect(&self.psql, login, action.to_owned())?;
        let mut args: Vec<OsString> = ["--no-psqlrc", "--quiet", "--no-align", "--tuples-only"]
            .into_iter()
            .map(OsString::from)
            .collect();
        args.extend(["--set=ON_ERROR_STOP=1", "--set=VERBOSITY=verbose"].map(OsString::from));
        if one_transaction {
            args.push("--single-transaction".into());
        }
        args.push(format!("--dbname={}", self.conninfo(login.user, login.database)).into());
        invocation.args = args;
        invocation.stdin =
            Input::Bytes(format!("SET client_min_messages = warning;\n{sql}").into_bytes());
        client::run(invocation)
    }

    fn admin_sql(&self, action: &str, sql: &str) -> Result<Vec<u8>, DbError> {
        self.sql(&self.admin(MAINTENANCE_DB), action, sql, false)
    }

    fn count(&self, action: &str, sql: &str) -> Result<u64, DbError> {
        let out = self.admin_sql(action, sql)?;
        client::count(&self.psql, action, &out)
    }

    fn check_name(what: &'static str, value: &str) -> Result<(), DbError> {
        super::check_common(KIND, what, value)?;
        super::check_length(KIND, what, value, NAME_LIMIT)
    }

    fn version_and_number(&self) -> Result<(ServerVersion, u32), DbError> {
        if let Some(found) = self.version.get() {
            return Ok(found.clone());
        }
        let action = "read the server version";
        let out = self.admin_sql(
            action,
            "SELECT current_setting('server_version') || E'\\n' || current_setting('server_version_num');\n",
        )?;
        let text = client::text(&self.psql, action, &out)?;
        let unexpected = || DbError::UnexpectedOutput {
            program: self.psql.clone(),
            action: action.to_owned(),
            output: text.chars().take(200).collect(),
        };
        let (raw, num) = text.split_once('\n').ok_or_else(unexpected)?;
        let num: u32 = num.trim().parse().map_err(|_| unexpected())?;
        let version = ServerVersion::parse(raw, "PostgreSQL");
        Ok(self.version.get_or_init(|| (version, num)).clone())
    }
}

impl DatabaseServer for Postgres {
    fn kind(&self) -> ServerType {
        KIND
    }

    fn version(&self) -> Result<ServerVersion, DbError> {
        Ok(self.version_and_number()?.0)
    }

    fn name_limits(&self) -> Result<NameLimits, DbError> {
        Ok(NameLimits {
            database: NAME_LIMIT,
            login: Some(NAME_LIMIT),
        })
    }

    fn database_exists(&self, name: &str) -> Result<bool, DbError> {
        Self::check_name("database name", name)?;
        let sql = format!(
            "SELECT count(*) FROM pg_catalog.pg_database WHERE datname = {};\n",
            literal(name)
        );
        Ok(self.count(&format!("look for database `{name}`"), &sql)? > 0)
    }

    fn login_exists(&self, login: &str) -> Result<bool, DbError> {
        Self::check_name("login", login)?;
        let sql = format!(
            "SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = {};\n",
            literal(login)
        );
        Ok(self.count(&format!("look for login `{login}`"), &sql)? > 0)
    }

    fn create_database(&self, spec: &DbSpec) -> Result<(), DbError> {
        Self::check_name("database name", &spec.name)?;
        Self::check_name("login", &spec.login)?;
        super::check_password(KIND, &spec.password, Lines::Refused)?;
        super::check_marker(KIND, &spec.marker)?;
        if self.database_exists(&spec.name)? {
            return Err(DbError::DatabaseExists {
                server: KIND,
                name: spec.name.clone(),
            });
        }
        if self.login_exists(&spec.login)? {
            return Err(DbError::LoginExists {
                server: KIND,
                login: spec.login.clone(),
            });
        }
        let role = ident(&spec.login);
        let database = ident(&spec.name);
        self.sql(
            &self.admin(MAINTENANCE_DB),
            &format!("create login `{}`", spec.login),
            &create_role_sql(&spec.login, &spec.password, &spec.marker),
            true,
        )
        .map_err(|e| super::classify_exists(e, spec, KIND, "42P04", "42710"))?;
        let drop_role = || {
            // Best effort: the original error is the one to report.
            let _ = self.admin_sql(
                "drop the login just created",
                &format!("DROP ROLE {role};\n"),
            );
        };
        if let Err(e) = aps_failpoint::hit("db-create") {
            drop_role();
            return Err(e.into());
        }
        // CREATE DATABASE cannot run inside a transaction block.
        if let Err(e) = self.admin_sql(
            &format!("create database `{}`", spec.name),
            &format!(
                "CREATE DATABASE {database} OWNER {role} ENCODING 'UTF8' TEMPLATE template0;\n"
            ),
        ) {
            drop_role();
            return Err(super::classify_exists(e, spec, KIND, "42P04", "42710"));
        }
        if let Err(e) = self.admin_sql(
            &format!("close database `{}` to other logins", spec.name),
            &format!("REVOKE ALL ON DATABASE {database} FROM PUBLIC;\n"),
        ) {
            let _ = self.admin_sql(
                "drop the database just created",
                &format!("DROP DATABASE {database};\n"),
            );
            drop_role();
            return Err(e);
        }
        Ok(())
    }

    fn ownership(&self, spec: &DbSpec) -> Result<Ownership, DbError> {
        Self::check_name("database name", &spec.name)?;
        Self::check_name("login", &spec.login)?;
        super::check_marker(KIND, &spec.marker)?;
        let action = format!(
            "read the owner of database `{}` and the comment of login `{}`",
            spec.name, spec.login
        );
        // One snapshot of both; every value hex-encoded so no comment can break the lines.
        let hex = |value: &str| format!("encode(convert_to(coalesce({value}, ''), 'UTF8'), 'hex')");
        let sql = format!(
            "SELECT 'login', '', {comment} FROM pg_catalog.pg_roles r WHERE r.rolname = {login}\n\
             UNION ALL\n\
             SELECT 'database', {owner}, {owner_comment} FROM pg_catalog.pg_database d\n\
             LEFT JOIN pg_catalog.pg_roles o ON o.oid = d.datdba WHERE d.datname = {name};\n",
            comment = hex("shobj_description(r.oid, 'pg_authid')"),
            owner = hex("o.rolname"),
            owner_comment = hex("shobj_description(o.oid, 'pg_authid')"),
            login = literal(&spec.login),
            name = literal(&spec.name),
        );
        let out = self.admin_sql(&action, &sql)?;
        let answer = client::text(&self.psql, &action, &out)?;
        ownership_from(&answer, spec).ok_or_else(|| DbError::UnexpectedOutput {
            program: self.psql.clone(),
            action,
            output: answer.chars().take(200).collect(),
        })
    }

    fn check_login(&self, spec: &DbSpec) -> Result<(), DbError> {
        Self::check_name("database name", &spec.name)?;
        super::check_password(KIND, &spec.password, Lines::Refused)?;
        let action = format!("log in as `{}` to database `{}`", spec.login, spec.name);
        let login = Login {
            user: &spec.login,
            password: &spec.password,
            database: &spec.name,
        };
        let out = self.sql(&login, &action, "SELECT 1;\n", false)?;
        client::expect_answer(&self.psql, &action, &out, "1")
    }

    fn drop_database(&self, name: &str) -> Result<bool, DbError> {
        if !self.database_exists(name)? {
            return Ok(false);
        }
        // WITH (FORCE) (13+) ends the application's leftover sessions instead of failing.
        let force = if self.version_and_number()?.1 >= 130_000 {
            " WITH (FORCE)"
        } else {
            ""
        };
        self.admin_sql(
            &format!("drop database `{name}`"),
            &format!("DROP DATABASE {}{force};\n", ident(name)),
        )?;
        Ok(true)
    }

    fn empty_database(&self, spec: &DbSpec) -> Result<(), DbError> {
        Self::check_name("database name", &spec.name)?;
        Self::check_name("login", &spec.login)?;
        super::require_login(self, spec)?;
        self.drop_database(&spec.name)?;
        let database = ident(&spec.name);
        self.admin_sql(
            &format!("create database `{}` again", spec.name),
            &format!(
                "CREATE DATABASE {database} OWNER {} ENCODING 'UTF8' TEMPLATE template0;\n",
                ident(&spec.login)
            ),
        )?;
        self.admin_sql(
            &format!("close database `{}` to other logins", spec.name),
            &format!("REVOKE ALL ON DATABASE {database} FROM PUBLIC;\n"),
        )?;
        self.check_login(spec)
    }

    fn drop_login(&self, login: &str) -> Result<bool, DbError> {
        if !self.login_exists(login)? {
            return Ok(false);
        }
        self.admin_sql(
            &format!("drop login `{login}`"),
            &format!("DROP ROLE {};\n", ident(login)),
        )?;
        Ok(true)
    }

    fn dump_into(&self, name: &str, sink: &mut dyn std::io::Write) -> Result<u64, DbError> {
        if !self.database_exists(name)? {
            return Err(DbError::DatabaseMissing {
                server: KIND,
                name: name.to_owned(),
            });
        }
        let admin = Login {
            user: &self.config.admin_user,
            password: &self.config.admin_password,
            database: name,
        };
        let (mut invocation, _passfile) =
            Self::connect(&self.pg_dump, &admin, format!("dump database `{name}`"))?;
        invocation.args = vec![
            "--format=custom".into(),
            "--no-owner".into(),
            "--no-privileges".into(),
            format!("--dbname={}", self.conninfo(&self.config.admin_user, name)).into(),
        ];
        invocation.stdout = Output::Stream(sink);
        client::run_streamed(invocation)
    }

    fn load_from(&self, spec: &DbSpec, source: &mut dyn std::io::Read) -> Result<(), DbError> {
        Self::check_name("database name", &spec.name)?;
        super::check_password(KIND, &spec.password, Lines::Refused)?;
        if !self.database_exists(&spec.name)? {
            return Err(DbError::DatabaseMissing {
                server: KIND,
                name: spec.name.clone(),
            });
        }
        let login = Login {
            user: &spec.login,
            password: &spec.password,
            database: &spec.name,
        };
        let (mut invocation, _passfile) = Self::connect(
            &self.pg_restore,
            &login,
            format!("load a dump into database `{}`", spec.name),
        )?;
        // No file argument: pg_restore reads the custom-format dump from stdin.
        invocation.args = vec![
            "--no-owner".into(),
            "--no-privileges".into(),
            "--single-transaction".into(),
            "--exit-on-error".into(),
            format!("--dbname={}", self.conninfo(&spec.login, &spec.name)).into(),
        ];
        invocation.stdout = Output::Discard;
        invocation.stdin =
            Input::Local(Box::new(move |sink| std::io::copy(source, sink).map(drop)));
        client::run(invocation).map(drop)
    }

    fn dump_extension(&self) -> &'static str {
        "pgdump"
    }

    fn connection_values(&self, spec: &DbSpec) -> ConnectionValues {
        ConnectionValues {
            name: spec.name.clone(),
            login: spec.login.clone(),
            host: self.config.host.clone(),
            port: self.config.effective_port().to_string(),
        }
    }
}

/// Debian's versioned client directories; the newest holds the clients to use.
const DEBIAN_PG_LIB: &str = "/usr/lib/postgresql";

/// The newest `/usr/lib/postgresql/<major>/bin/<name>`, else `<name>` from the system directories.
///
/// The versioned binary is what Debian's `pg_wrapper` in `/usr/bin` would run for a TCP
/// connection anyway; calling it directly saves starting Perl for every statement. The newest
/// `pg_dump` also reads every older server.
fn find_pg_program(name: &str) -> Result<PathBuf, DbError> {
    let newest = fs_err::read_dir(DEBIAN_PG_LIB)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let path = entry.path().join("bin").join(name);
            client::is_executable(&path).then_some((major, path))
        })
        .max_by_key(|(major, _)| *major);
    match newest {
        Some((_, path)) => Ok(path),
        None => client::find_program(&[name]),
    }
}

/// The role's transaction: role, proof and membership, all or nothing (run with
/// `--single-transaction`).
fn create_role_sql(login: &str, password: &Secret, marker: &str) -> String {
    let role = ident(login);
    format!(
        "CREATE ROLE {role} LOGIN PASSWORD {};\nCOMMENT ON ROLE {role} IS {};\n\
         GRANT {role} TO CURRENT_USER;\n",
        literal(password.expose()),
        literal(marker)
    )
}

/// Reads the answer of the ownership query: lines `login||<comment>` and
/// `database|<owner>|<owner's comment>`, values in hex. `None` when the answer has another shape.
fn ownership_from(answer: &str, spec: &DbSpec) -> Option<Ownership> {
    let mut found = Ownership {
        database: Owner::Absent,
        login: Owner::Absent,
    };
    for line in answer.lines().filter(|l| !l.is_empty()) {
        let mut fields = line.split('|');
        let (what, owner, comment) = (fields.next()?, fields.next()?, fields.next()?);
        if fields.next().is_some() {
            return None;
        }
        let (owner, comment) = (client::decode_hex(owner)?, client::decode_hex(comment)?);
        let proven = comment == spec.marker;
        match what {
            "login" => {
                found.login = if proven {
                    Owner::Ours(Proof::RoleComment)
                } else {
                    Owner::Foreign
                };
            }
            "database" => {
                found.database = if proven && owner == spec.login {
                    Owner::Ours(Proof::OwnerRole)
                } else {
                    Owner::Foreign
                };
            }
            _ => return None,
        }
    }
    Some(found)
}

/// A quoted identifier: `"name"` with `"` doubled.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal: `'…'` with `'` doubled; with backslashes, an `E'…'` literal with them
/// doubled too (as `quote_literal` does), so the result is right whatever
/// `standard_conforming_strings` says.
fn literal(value: &str) -> String {
    let doubled = value.replace('\'', "''");
    if value.contains('\\') {
        format!("E'{}'", doubled.replace('\\', "\\\\"))
    } else {
        format!("'{doubled}'")
    }
}

/// A connection-string value: single-quoted, `\` and `'` backslash-escaped.
fn conn_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A password-file field: `\` and `:` backslash-escaped.
fn passfile_value(value: &str) -> String {
    value.replace('\\', "\\\\").replace(':', "\\:")
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    #[test]
    fn identifiers_double_quotes() {
        assert_eq!(ident(r#"a"b"#), r#""a""b""#);
    }

    #[test]
    fn literals_double_quotes_and_escape_backslashes() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal(r"a\'b"), r"E'a\\''b'");
        assert_eq!(literal(r#"`"x"#), r#"'`"x'"#);
    }

    #[test]
    fn the_marker_is_a_quoted_role_comment_in_the_role_transaction() {
        assert_eq!(
            create_role_sql("wp_1", &Secret::new("pw'1"), "apsctl:op12:3f9c"),
            "CREATE ROLE \"wp_1\" LOGIN PASSWORD 'pw''1';\n\
             COMMENT ON ROLE \"wp_1\" IS 'apsctl:op12:3f9c';\n\
             GRANT \"wp_1\" TO CURRENT_USER;\n"
        );
        // Markers are validated first; the literal would still hold anything.
        assert!(
            create_role_sql("a\"b", &Secret::new("p"), r"it's\")
                .contains(r#"COMMENT ON ROLE "a""b" IS E'it''s\\';"#)
        );
    }

    #[test]
    fn ownership_answers_are_read_per_resource() {
        let hex = |s: &str| {
            s.bytes().fold(String::new(), |mut out, b| {
                let _ = write!(out, "{b:02x}");
                out
            })
        };
        let spec = DbSpec {
            name: "db".into(),
            login: "wp_1".into(),
            password: Secret::new("p"),
            marker: "apsctl:op1:ab".into(),
        };
        let ours = hex(&spec.marker);
        let read = |answer: &str| ownership_from(answer, &spec).unwrap();
        assert_eq!(
            read(""),
            Ownership {
                database: Owner::Absent,
                login: Owner::Absent
            }
        );
        let both = format!("login||{ours}\ndatabase|{}|{ours}", hex("wp_1"));
        assert_eq!(
            read(&both),
            Ownership {
                database: Owner::Ours(Proof::OwnerRole),
                login: Owner::Ours(Proof::RoleComment)
            }
        );
        // A database owned by another role, even one carrying our marker, is not ours.
        let other_owner = format!("database|{}|{ours}", hex("admin"));
        assert_eq!(read(&other_owner).database, Owner::Foreign);
        let foreign_role = format!("login||{}\ndatabase|{}|", hex("x"), hex("wp_1"));
        assert_eq!(
            read(&foreign_role),
            Ownership {
                database: Owner::Foreign,
                login: Owner::Foreign
            }
        );
        assert_eq!(read("login||").login, Owner::Foreign, "no comment at all");
        for bad in ["login|", "login||zz", "table||", "login|||"] {
            assert_eq!(ownership_from(bad, &spec), None, "{bad}");
        }
    }

    #[test]
    fn connection_values_are_quoted() {
        assert_eq!(conn_value(r"it's a\b"), r"'it\'s a\\b'");
        assert_eq!(conn_value("x=y host=evil"), "'x=y host=evil'");
    }

    #[test]
    fn password_file_fields_escape_colons_and_backslashes() {
        assert_eq!(passfile_value(r"a:b\c*"), r"a\:b\\c*");
    }
}
