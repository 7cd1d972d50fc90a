//! `MySQL` and `MariaDB` through the `mariadb`/`mysql` and `mariadb-dump`/`mysqldump` clients.
//!
//! Main decision: credentials go in a temporary option file passed as `--defaults-file` (not
//! `--defaults-extra-file`, because a `~/.my.cnf` read after an extra file would override our
//! user and password); statements go on stdin after `SET SESSION sql_mode = ''`, so the
//! backslash escapes of [`literal`] mean what they say whatever the server's default mode.
//! Databases are created `utf8mb4`; a login is one account per host part with `ALL PRIVILEGES`
//! on its database, whose name is escaped as a GRANT pattern (`_` and `%` are wildcards there).
//! Dumps use `--single-transaction --routines --triggers --hex-blob`. A dump is loaded as the
//! instance's login with the client's sandbox on, after removing `DEFINER=` clauses so routines,
//! triggers and views belong to the loading login (the login of the dumped instance is usually
//! gone).
//!
//!
//! Proof of creator: on `MariaDB` ≥ 10.5 the database is created with `COMMENT '<marker>'`, in
//! the same statement, and is ours when `information_schema.SCHEMATA.SCHEMA_COMMENT` holds the
//! marker exactly. A login is ours when it authenticates with the spec's password and the
//! server says `CURRENT_USER()` is that login (not an anonymous account): only the creator knows
//! the generated password. The fault point `db-create` sits between the database and the
//! accounts.
//!
//! Known gaps: `MySQL` and `MariaDB` before 10.5 have no schema comments, so there a database is
//! [`Owner::Unknown`] whenever it exists; a login whose account the server refuses for another
//! reason (locked, or no host part matching apsctl's connection) reads as [`Owner::Foreign`],
//! which leaks it rather than risk a wrong drop. `DEFINER=` removal recognises the statement
//! shapes `mysqldump`/`mariadb-dump` write, not hand-written SQL; loading stored functions with
//! binary logging on needs `log_bin_trust_function_creators`; events are not dumped.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{self, BufReader, Write};
use std::path::PathBuf;
use std::sync::OnceLock;

use super::client::{self, Input, Invocation, Output};
use super::{
    ConnectionValues, DatabaseServer, DbError, DbSpec, Lines, NameLimits, Owner, Ownership, Proof,
    Secret, ServerConfig, ServerType, ServerVersion,
};

const KIND: ServerType = ServerType::Mysql;

/// Seconds a client waits for the server to accept a connection.
const CONNECT_TIMEOUT: &str = "--connect-timeout=10";

/// Longest identifier (`MySQL` and `MariaDB`), which also bounds the escaped GRANT pattern.
const IDENTIFIER_LIMIT: usize = 64;

/// Longest database name reported by `name_limits`: half of [`IDENTIFIER_LIMIT`], because the
/// GRANT pattern of a name escapes `_`, `%` and `\` and so may be twice as long as the name.
const DATABASE_LIMIT: usize = IDENTIFIER_LIMIT / 2;

/// A `MySQL` or `MariaDB` server.
pub(super) struct Mysql {
    config: ServerConfig,
    client: PathBuf,
    dumper: PathBuf,
    login_hosts: Vec<String>,
    version: OnceLock<ServerVersion>,
}

impl Mysql {
    pub(super) fn new(config: ServerConfig) -> Result<Self, DbError> {
        if config.host.is_empty() || config.admin_user.is_empty() {
            return Err(DbError::Config {
                server: KIND,
                reason: "host and administrator login are required".to_owned(),
            });
        }
        let client = client::find_program(&["mariadb", "mysql"])?;
        let dumper = client::find_program(&["mariadb-dump", "mysqldump"])?;
        let login_hosts = if !config.login_hosts.is_empty() {
            config.login_hosts.clone()
        } else if super::is_local_host(&config.host) {
            vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
        } else {
            vec!["%".to_owned()]
        };
        for host in &login_hosts {
            super::check_common(KIND, "login host", host)?;
        }
        Ok(Self {
            config,
            client,
            dumper,
            login_hosts,
            version: OnceLock::new(),
        })
    }

    /// An option file logging in as `user`.
    fn option_file(
        &self,
        user: &str,
        password: &Secret,
    ) -> Result<tempfile::NamedTempFile, DbError> {
        let contents = format!(
            "[client]\nuser={}\npassword={}\nhost={}\nport={}\n",
            option_value(user),
            option_value(password.expose()),
            option_value(&self.config.host),
            self.config.effective_port(),
        );
        client::secret_file(&contents)
    }

    /// Runs `sql` as the administrator; returns stdout (batch mode, no column names).
    fn admin_sql(&self, action: &str, sql: &str) -> Result<Vec<u8>, DbError> {
        self.sql_as(
            &self.config.admin_user,
            &self.config.admin_password,
            None,
            action,
            sql,
            &[],
        )
    }

    /// Runs `sql` as `user`, in `database` if given; `secrets` are redacted from errors.
    fn sql_as(
        &self,
        user: &str,
        password: &Secret,
        database: Option<&str>,
        action: &str,
        sql: &str,
        secrets: &[&str],
    ) -> Result<Vec<u8>, DbError> {
        let options = self.option_file(user, password)?;
        let mut invocation = Invocation::new(&self.client, action)
            .arg(client::path_arg("--defaults-file", options.path()))
            .arg("--batch")
            .arg("--skip-column-names")
            .arg(CONNECT_TIMEOUT);
        if let Some(database) = database {
            invocation = invocation.arg(format!("--database={database}"));
        }
        invocation.stdin = Input::Bytes(format!("SET SESSION sql_mode = '';\n{sql}").into_bytes());
        invocation.secrets = secrets.to_vec();
        invocation.secrets.push(password.expose());
        client::run(invocation)
    }

    fn count(&self, action: &str, sql: &str) -> Result<u64, DbError> {
        let out = self.admin_sql(action, sql)?;
        client::count(&self.client, action, &out)
    }

    fn check_database_name(name: &str) -> Result<(), DbError> {
        super::check_common(KIND, "database name", name)?;
        super::check_length(KIND, "database name", name, IDENTIFIER_LIMIT)?;
        check_no_trailing_space("database name", name)?;
        let pattern_len = grant_pattern(name).len() - 2;
        if pattern_len > IDENTIFIER_LIMIT {
            return Err(DbError::InvalidName {
                server: KIND,
                what: "database name",
                value: name.to_owned(),
                reason: format!(
                    "its GRANT pattern (with `_`, `%` and `\\` escaped) is {pattern_len} bytes \
                     long, the limit is {IDENTIFIER_LIMIT}"
                ),
            });
        }
        Ok(())
    }

    fn check_login_name(&self, login: &str) -> Result<(), DbError> {
        super::check_common(KIND, "login", login)?;
        let limit = self.name_limits()?.login.unwrap_or(usize::MAX);
        // `MySQL` counts characters here, not bytes.
        if login.chars().count() > limit {
            return Err(DbError::InvalidName {
                server: KIND,
                what: "login",
                value: login.to_owned(),
                reason: format!("it is longer than {limit} characters"),
            });
        }
        Ok(())
    }

    /// Creates one account per host part; on failure drops the ones it created.
    fn create_accounts(&self, spec: &DbSpec) -> Result<(), DbError> {
        let mut created: Vec<&str> = Vec::new();
        let mut result = Ok(());
        for host in &self.login_hosts {
            let account = account(&spec.login, host);
            let sql = format!(
                "CREATE USER {account} IDENTIFIED BY {};\n",
                literal(spec.password.expose())
            );
            let action = format!("create login {account}");
            match self.sql_as(
                &self.config.admin_user,
                &self.config.admin_password,
                None,
                &action,
                &sql,
                &[spec.password.expose()],
            ) {
                Ok(_) => created.push(host),
                Err(e) => {
                    result = Err(super::classify_exists(
                        e,
                        spec,
                        KIND,
                        "ERROR 1007 ",
                        "ERROR 1396 ",
                    ));
                    break;
                }
            }
        }
        if result.is_ok() {
            let mut grants = String::new();
            for host in &self.login_hosts {
                let _ = writeln!(
                    grants,
                    "GRANT ALL PRIVILEGES ON {}.* TO {};",
                    grant_pattern(&spec.name),
                    account(&spec.login, host)
                );
            }
            result = self
                .admin_sql(
                    &format!("grant login `{}` its database", spec.login),
                    &grants,
                )
                .map(drop);
        }
        if result.is_err() && !created.is_empty() {
            let mut drops = String::new();
            for host in &created {
                let _ = writeln!(drops, "DROP USER {};", account(&spec.login, host));
            }
            // Best effort: the original error is the one to report.
            let _ = self.admin_sql("drop the accounts just created", &drops);
        }
        result
    }

    /// Who made the database of `spec`: its schema comment against the marker (see
    /// [`database_owner`]).
    fn database_owner(&self, spec: &DbSpec) -> Result<Owner, DbError> {
        let comments = schema_comments(&self.version()?);
        let comment = if comments {
            "IFNULL(HEX(SCHEMA_COMMENT), '')"
        } else {
            "''"
        };
        let action = format!("read the comment of database `{}`", spec.name);
        let out = self.admin_sql(
            &action,
            &format!(
                "SELECT HEX(SCHEMA_NAME), {comment} FROM information_schema.SCHEMATA \
                 WHERE SCHEMA_NAME = {};\n",
                literal(&spec.name)
            ),
        )?;
        let listing = client::text(&self.client, &action, &out)?;
        let mut found = Vec::new();
        for line in listing.lines().filter(|l| !l.is_empty()) {
            let row = line.split_once('\t').and_then(|(name, comment)| {
                Some((client::decode_hex(name)?, client::decode_hex(comment)?))
            });
            found.push(row.ok_or_else(|| DbError::UnexpectedOutput {
                program: self.client.clone(),
                action: action.clone(),
                output: line.chars().take(200).collect(),
            })?);
        }
        Ok(database_owner(comments, &found, &spec.name, &spec.marker))
    }

    /// Who made the login of `spec`: whether it authenticates with the spec's password.
    fn login_owner(&self, spec: &DbSpec) -> Result<Owner, DbError> {
        if !self.login_exists(&spec.login)? {
            return Ok(Owner::Absent);
        }
        super::check_password(KIND, &spec.password, Lines::Allowed)?;
        let action = format!("log in as `{}` to prove it ours", spec.login);
        match self.sql_as(
            &spec.login,
            &spec.password,
            None,
            &action,
            "SELECT HEX(CURRENT_USER());\n",
            &[],
        ) {
            Ok(out) => {
                let answer = client::text(&self.client, &action, &out)?;
                let account =
                    client::decode_hex(answer.trim()).ok_or_else(|| DbError::UnexpectedOutput {
                        program: self.client.clone(),
                        action: action.clone(),
                        output: answer.chars().take(200).collect(),
                    })?;
                // An anonymous account (`''@host`) may have let us in under another name.
                Ok(if account.starts_with(&format!("{}@", spec.login)) {
                    Owner::Ours(Proof::Password)
                } else {
                    Owner::Foreign
                })
            }
            // Wrong password, locked account, no matching host part: not provably ours.
            Err(DbError::ClientFailed { stderr, .. }) if stderr.contains("Access denied") => {
                Ok(Owner::Foreign)
            }
            Err(e) => Err(e),
        }
    }

    /// `--sandbox` (`MariaDB`) or `--commands=OFF` (`MySQL` ≥ 8.0.40), whichever the client has.
    fn sandbox_flag(&self) -> Result<Option<&'static str>, DbError> {
        let help = client::run(
            Invocation::new(&self.client, "list its options")
                .arg("--no-defaults")
                .arg("--help"),
        )?;
        let help = String::from_utf8_lossy(&help);
        Ok(if help.contains("--sandbox") {
            Some("--sandbox")
        } else if help.contains("--commands") {
            Some("--commands=OFF")
        } else {
            None
        })
    }
}

impl DatabaseServer for Mysql {
    fn kind(&self) -> ServerType {
        KIND
    }

    fn version(&self) -> Result<ServerVersion, DbError> {
        if let Some(version) = self.version.get() {
            return Ok(version.clone());
        }
        let action = "read the server version";
        let out = self.admin_sql(action, "SELECT VERSION();\n")?;
        let raw = client::text(&self.client, action, &out)?;
        let product = if raw.contains("MariaDB") {
            "MariaDB"
        } else {
            "MySQL"
        };
        let version = ServerVersion::parse(&raw, product);
        if version.number.is_empty() {
            return Err(DbError::UnexpectedOutput {
                program: self.client.clone(),
                action: action.to_owned(),
                output: raw,
            });
        }
        Ok(self.version.get_or_init(|| version).clone())
    }

    fn name_limits(&self) -> Result<NameLimits, DbError> {
        let version = self.version()?;
        // `MariaDB`: 80 characters since 10.0 (128 in recent releases; 80 is safe everywhere).
        // `MySQL`: 32 since 5.7.8, 16 before.
        let login = match version.product {
            "MariaDB" if version.at_least(&[10]) => 80,
            "MySQL" if version.at_least(&[5, 7, 8]) => 32,
            _ => 16,
        };
        Ok(NameLimits {
            database: DATABASE_LIMIT,
            login: Some(login),
        })
    }

    fn database_exists(&self, name: &str) -> Result<bool, DbError> {
        Self::check_database_name(name)?;
        let sql = format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {};\n",
            literal(name)
        );
        Ok(self.count(&format!("look for database `{name}`"), &sql)? > 0)
    }

    fn login_exists(&self, login: &str) -> Result<bool, DbError> {
        super::check_common(KIND, "login", login)?;
        let sql = format!(
            "SELECT COUNT(*) FROM mysql.user WHERE User = {};\n",
            literal(login)
        );
        Ok(self.count(&format!("look for login `{login}`"), &sql)? > 0)
    }

    fn create_database(&self, spec: &DbSpec) -> Result<(), DbError> {
        Self::check_database_name(&spec.name)?;
        self.check_login_name(&spec.login)?;
        super::check_password(KIND, &spec.password, Lines::Allowed)?;
        super::check_marker(KIND, &spec.marker)?;
        let comments = schema_comments(&self.version()?);
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
        let sql = create_database_sql(&spec.name, comments.then_some(spec.marker.as_str()));
        self.admin_sql(&format!("create database `{}`", spec.name), &sql)
            .map_err(|e| super::classify_exists(e, spec, KIND, "ERROR 1007 ", "ERROR 1396 "))?;
        let accounts = aps_failpoint::hit("db-create")
            .map_err(DbError::from)
            .and_then(|()| self.create_accounts(spec));
        if let Err(e) = accounts {
            // The database is the one this call just created.
            let _ = self.admin_sql(
                "drop the database just created",
                &format!("DROP DATABASE {};\n", ident(&spec.name)),
            );
            return Err(e);
        }
        Ok(())
    }

    fn ownership(&self, spec: &DbSpec) -> Result<Ownership, DbError> {
        Self::check_database_name(&spec.name)?;
        super::check_common(KIND, "login", &spec.login)?;
        super::check_marker(KIND, &spec.marker)?;
        Ok(Ownership {
            database: self.database_owner(spec)?,
            login: self.login_owner(spec)?,
        })
    }

    fn check_login(&self, spec: &DbSpec) -> Result<(), DbError> {
        Self::check_database_name(&spec.name)?;
        let action = format!("log in as `{}` to database `{}`", spec.login, spec.name);
        let out = self.sql_as(
            &spec.login,
            &spec.password,
            Some(&spec.name),
            &action,
            "SELECT 1;\n",
            &[],
        )?;
        client::expect_answer(&self.client, &action, &out, "1")
    }

    fn empty_database(&self, spec: &DbSpec) -> Result<(), DbError> {
        Self::check_database_name(&spec.name)?;
        super::check_marker(KIND, &spec.marker)?;
        let comments = schema_comments(&self.version()?);
        let create = create_database_sql(&spec.name, comments.then_some(spec.marker.as_str()));
        // Repeatable: an earlier run that dropped the database and stopped leaves it missing.
        if !self.database_exists(&spec.name)? {
            self.admin_sql(&format!("create database `{}` again", spec.name), &create)?;
            return super::require_login(self, spec);
        }
        super::require_login(self, spec)?;
        let sql = format!("DROP DATABASE IF EXISTS {};\n{create}", ident(&spec.name));
        self.admin_sql(&format!("empty database `{}`", spec.name), &sql)?;
        self.check_login(spec)
    }

    fn drop_database(&self, name: &str) -> Result<bool, DbError> {
        if !self.database_exists(name)? {
            return Ok(false);
        }
        self.admin_sql(
            &format!("drop database `{name}`"),
            &format!("DROP DATABASE {};\n", ident(name)),
        )?;
        Ok(true)
    }

    fn drop_login(&self, login: &str) -> Result<bool, DbError> {
        super::check_common(KIND, "login", login)?;
        let action = format!("list the accounts of login `{login}`");
        let out = self.admin_sql(
            &action,
            &format!(
                "SELECT HEX(Host) FROM mysql.user WHERE User = {};\n",
                literal(login)
            ),
        )?;
        let listing = client::text(&self.client, &action, &out)?;
        let mut drops = String::new();
        for hex_host in listing.lines().filter(|l| !l.is_empty()) {
            let host = client::decode_hex(hex_host).ok_or_else(|| DbError::UnexpectedOutput {
                program: self.client.clone(),
                action: action.clone(),
                output: hex_host.to_owned(),
            })?;
            let _ = writeln!(drops, "DROP USER {};", account(login, &host));
        }
        if drops.is_empty() {
            return Ok(false);
        }
        self.admin_sql(&format!("drop login `{login}`"), &drops)?;
        Ok(true)
    }

    fn dump_into(&self, name: &str, sink: &mut dyn Write) -> Result<u64, DbError> {
        if !self.database_exists(name)? {
            return Err(DbError::DatabaseMissing {
                server: KIND,
                name: name.to_owned(),
            });
        }
        let options = self.option_file(&self.config.admin_user, &self.config.admin_password)?;
        let mut invocation = Invocation::new(&self.dumper, format!("dump database `{name}`"))
            .arg(client::path_arg("--defaults-file", options.path()))
            .arg("--single-transaction")
            .arg("--routines")
            .arg("--triggers")
            .arg("--hex-blob")
            .arg("--default-character-set=utf8mb4")
            .arg("--no-tablespaces")
            .arg("--")
            .arg(name);
        invocation.stdout = Output::Stream(sink);
        invocation.secrets = vec![self.config.admin_password.expose()];
        client::run_streamed(invocation)
    }

    fn load_from(&self, spec: &DbSpec, source: &mut dyn io::Read) -> Result<(), DbError> {
        Self::check_database_name(&spec.name)?;
        if !self.database_exists(&spec.name)? {
            return Err(DbError::DatabaseMissing {
                server: KIND,
                name: spec.name.clone(),
            });
        }
        let Some(sandbox) = self.sandbox_flag()? else {
            return Err(DbError::NoSandbox {
                program: self.client.clone(),
                file: PathBuf::from("-"),
            });
        };
        let options = self.option_file(&spec.login, &spec.password)?;
        let args: Vec<OsString> = vec![
            client::path_arg("--defaults-file", options.path()),
            sandbox.into(),
            "--batch".into(),
            CONNECT_TIMEOUT.into(),
            "--default-character-set=utf8mb4".into(),
            format!("--database={}", spec.name).into(),
        ];
        let mut invocation = Invocation::new(
            &self.client,
            format!("load a dump into database `{}`", spec.name),
        );
        invocation.args = args;
        invocation.stdout = Output::Discard;
        invocation.stdin = Input::Local(Box::new(move |sink| {
            copy_without_definers(BufReader::with_capacity(1 << 16, source), sink)
        }));
        invocation.secrets = vec![spec.password.expose()];
        client::run(invocation).map(drop)
    }

    fn dump_extension(&self) -> &'static str {
        "sql"
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

fn check_no_trailing_space(what: &'static str, value: &str) -> Result<(), DbError> {
    if value.ends_with(' ') {
        return Err(DbError::InvalidName {
            server: KIND,
            what,
            value: value.to_owned(),
            reason: "MySQL names cannot end with a space".to_owned(),
        });
    }
    Ok(())
}

/// Whether the server keeps schema comments (`CREATE DATABASE … COMMENT`): `MariaDB` ≥ 10.5.
fn schema_comments(version: &ServerVersion) -> bool {
    version.product == "MariaDB" && version.at_least(&[10, 5])
}

/// The `CREATE DATABASE` statement, with the marker as schema comment when the server has them.
fn create_database_sql(name: &str, comment: Option<&str>) -> String {
    let comment = comment.map_or_else(String::new, |c| format!(" COMMENT {}", literal(c)));
    format!(
        "CREATE DATABASE {} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci{comment};\n",
        ident(name)
    )
}

/// Who made database `name`, from the `(name, comment)` rows of `SCHEMATA` matching it (the
/// server compares names case-insensitively on some systems; only the exact name counts as ours).
/// `comments`: whether the server keeps schema comments at all.
fn database_owner(comments: bool, found: &[(String, String)], name: &str, marker: &str) -> Owner {
    if found.is_empty() {
        return Owner::Absent;
    }
    match found.iter().find(|(found_name, _)| found_name == name) {
        Some(_) if !comments => Owner::Unknown,
        Some((_, comment)) if comment == marker => Owner::Ours(Proof::SchemaComment),
        // Another comment, or only a case variant of the name: someone else's database.
        Some(_) | None => Owner::Foreign,
    }
}

/// A quoted identifier: `` `name` `` with backticks doubled.
fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A database name as a GRANT pattern: `\`, `_` and `%` escaped, then quoted.
fn grant_pattern(name: &str) -> String {
    let mut escaped = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if matches!(c, '\\' | '_' | '%') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    ident(&escaped)
}

/// A string literal with backslash escapes (valid because every session clears `sql_mode`).
fn literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1a}' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `'user'@'host'`.
fn account(user: &str, host: &str) -> String {
    format!("{}@{}", literal(user), literal(host))
}

/// An option-file value: double-quoted with the escapes the option-file reader understands.
fn option_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Copies a dump line by line, removing the `DEFINER=` clauses dump tools write.
fn copy_without_definers(mut source: impl io::BufRead, sink: &mut dyn Write) -> io::Result<()> {
    let mut line = Vec::with_capacity(1 << 16);
    loop {
        line.clear();
        if source.read_until(b'\n', &mut line)? == 0 {
            return sink.flush();
        }
        match definer_span(&line) {
            Some((start, end)) => {
                sink.write_all(&line[..start])?;
                sink.write_all(&line[end..])?;
            }
            None => sink.write_all(&line)?,
        }
    }
}

/// The byte range of a `DEFINER=<user>@<host>` clause (with one following space) in a line of
/// the shapes dump tools write:
/// `CREATE DEFINER=…`, `/*!50013 DEFINER=…`, `/*!50003 CREATE*/ /*!50017 DEFINER=…`.
fn definer_span(line: &[u8]) -> Option<(usize, usize)> {
    const KEY: &[u8] = b"DEFINER=";
    if line.starts_with(b"INSERT ") {
        return None;
    }
    let head = &line[..line.len().min(64)];
    let start = head.windows(KEY.len()).position(|w| w == KEY)?;
    if !is_definer_prefix(&line[..start]) {
        return None;
    }
    let mut pos = start + KEY.len();
    pos = quoted_end(line, pos)?;
    if line.get(pos) != Some(&b'@') {
        return None;
    }
    pos = quoted_end(line, pos + 1)?;
    if line.get(pos) == Some(&b' ') {
        pos += 1;
    }
    Some((start, pos))
}

/// Whether `prefix` is `CREATE ` or ends with a versioned comment opener `/*!NNNNN `.
fn is_definer_prefix(prefix: &[u8]) -> bool {
    if prefix == b"CREATE " {
        return true;
    }
    let Some(rest) = prefix.strip_suffix(b" ") else {
        return false;
    };
    let digits_start = rest
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let opener = &rest[..digits_start];
    digits_start < rest.len()
        && opener.ends_with(b"/*!")
        && (opener.len() == 3 || opener.ends_with(b"*/ /*!"))
}

/// The end of a `` `quoted` `` or `'quoted'` name starting at `pos` (doubled quotes allowed).
fn quoted_end(line: &[u8], pos: usize) -> Option<usize> {
    let quote = *line.get(pos)?;
    if quote != b'`' && quote != b'\'' {
        return None;
    }
    let mut i = pos + 1;
    loop {
        let b = *line.get(i)?;
        if b == quote {
            if line.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        if b == b'\n' {
            return None;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(text: &str) -> String {
        let mut out = Vec::new();
        copy_without_definers(text.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn identifiers_double_backticks() {
        assert_eq!(ident("a`b"), "`a``b`");
        assert_eq!(ident("plain"), "`plain`");
    }

    #[test]
    fn grant_patterns_escape_wildcards() {
        assert_eq!(grant_pattern("wp_1"), r"`wp\_1`");
        assert_eq!(grant_pattern(r"a%b\c`d"), r"`a\%b\\c``d`");
    }

    #[test]
    fn literals_escape_quotes_backslashes_and_controls() {
        assert_eq!(literal(r#"a'b"c\d"#), r#"'a\'b\"c\\d'"#);
        assert_eq!(literal("x\0y\nz\u{1a}"), r"'x\0y\nz\Z'");
        assert_eq!(account("u", "%"), "'u'@'%'");
    }

    #[test]
    fn the_marker_becomes_a_quoted_schema_comment_where_the_server_has_them() {
        assert_eq!(
            create_database_sql("wp_1", Some("apsctl:op12:3f9c")),
            "CREATE DATABASE `wp_1` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci \
             COMMENT 'apsctl:op12:3f9c';\n"
        );
        assert_eq!(
            create_database_sql("a`b", None),
            "CREATE DATABASE `a``b` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n"
        );
        // Markers are validated first; the literal would still hold anything.
        assert!(create_database_sql("x", Some(r"it's\")).contains(r"COMMENT 'it\'s\\';"));
        let mariadb = |raw: &str| ServerVersion::parse(raw, "MariaDB");
        assert!(schema_comments(&mariadb("10.5.0-MariaDB")));
        assert!(schema_comments(&mariadb("10.11.6-MariaDB-0+deb12u1")));
        assert!(!schema_comments(&mariadb("10.4.32-MariaDB")));
        assert!(!schema_comments(&ServerVersion::parse("8.0.36", "MySQL")));
    }

    #[test]
    fn database_ownership_follows_the_comment_and_is_unknown_without_comments() {
        let row = |name: &str, comment: &str| (name.to_owned(), comment.to_owned());
        let marker = "apsctl:op1:ab";
        assert_eq!(database_owner(true, &[], "db", marker), Owner::Absent);
        assert_eq!(database_owner(false, &[], "db", marker), Owner::Absent);
        assert_eq!(
            database_owner(true, &[row("db", marker)], "db", marker),
            Owner::Ours(Proof::SchemaComment)
        );
        for foreign in ["", "apsctl:op1:a", "apsctl:op1:abc", "someone else's"] {
            assert_eq!(
                database_owner(true, &[row("db", foreign)], "db", marker),
                Owner::Foreign,
                "{foreign:?}"
            );
        }
        // MySQL (and MariaDB < 10.5): the database exists, nothing can tell whose it is.
        assert_eq!(
            database_owner(false, &[row("db", "")], "db", marker),
            Owner::Unknown
        );
        // Only a case variant exists: another database, never ours.
        assert_eq!(
            database_owner(true, &[row("DB", marker)], "db", marker),
            Owner::Foreign
        );
        assert_eq!(
            database_owner(true, &[row("DB", ""), row("db", marker)], "db", marker),
            Owner::Ours(Proof::SchemaComment)
        );
    }

    #[test]
    fn option_values_are_quoted_and_escaped() {
        assert_eq!(option_value(r#"p#w"'\x"#), r#""p#w\"\'\\x""#);
        assert_eq!(option_value(" lead"), "\" lead\"");
    }

    #[test]
    fn definers_are_removed_from_dump_statements() {
        let dump = "\
/*!50003 CREATE*/ /*!50017 DEFINER=`old`@`localhost`*/ /*!50003 TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET NEW.a = 1 */;;
/*!50013 DEFINER=`o``dd`@`%` SQL SECURITY DEFINER */
CREATE DEFINER=`old`@`127.0.0.1` PROCEDURE `p`()
INSERT INTO `x` VALUES ('CREATE DEFINER=`a`@`b` ');
SELECT 'DEFINER=`a`@`b`';
";
        let expected = "\
/*!50003 CREATE*/ /*!50017 */ /*!50003 TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET NEW.a = 1 */;;
/*!50013 SQL SECURITY DEFINER */
CREATE PROCEDURE `p`()
INSERT INTO `x` VALUES ('CREATE DEFINER=`a`@`b` ');
SELECT 'DEFINER=`a`@`b`';
";
        assert_eq!(strip(dump), expected);
    }

    #[test]
    fn lines_without_definers_pass_unchanged_including_binary() {
        let mut input = b"INSERT INTO t VALUES (0x00ff);\n-- comment\n".to_vec();
        input.extend_from_slice(&[0xff, 0xfe, b'\n']);
        input.extend_from_slice(b"no newline at end");
        let mut out = Vec::new();
        copy_without_definers(&input[..], &mut out).unwrap();
        assert_eq!(out, input);
    }
}
