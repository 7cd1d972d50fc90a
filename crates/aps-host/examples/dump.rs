//! Dumps one `MySQL`/`MariaDB` database with [`aps_host::db::DatabaseServer::dump`], the code path
//! apsctl's backups take, so `bench/dump.sh` can time it against a plain `mariadb-dump`.
//!
//! ```text
//! dump --database NAME --out FILE [--host H] [--port P] [--user U] [--password-file F]
//! ```
//!
//! A connection option not given is taken from the `APSCTL_TEST_MYSQL_HOST`, `…_PORT`, `…_USER`
//! and `…_PASSWORD_FILE` variables, else from `/var/lib/apsctl-ci/env` (written by
//! `.ci/services.sh`). The password is read from the first line of the password file; it never
//! appears on a command line. Prints the dump's size and the time the dump took on stderr.
//!
//! Known gaps: `MySQL`/`MariaDB` only; no TLS options (as the library).
use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use aps_host::db::{Secret, ServerConfig, ServerType};
use aps_host::env::Env;

/// Where `.ci/services.sh` describes its servers.
const CI_ENV_FILE: &str = "/var/lib/apsctl-ci/env";

/// What to dump, where to, and how to connect.
#[derive(Debug, Default)]
struct Args {
    database: Option<String>,
    out: Option<PathBuf>,
    host: Option<String>,
    port: Option<String>,
    user: Option<String>,
    password_file: Option<PathBuf>,
}

const USAGE: &str =
    "usage: dump --database NAME --out FILE [--host H] [--port P] [--user U] [--password-file F]";

fn parse_args(env: &Env) -> Result<Args, String> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("`{flag}` needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--database" => args.database = Some(value),
            "--out" => args.out = Some(value.into()),
            "--host" => args.host = Some(value),
            "--port" => args.port = Some(value),
            "--user" => args.user = Some(value),
            "--password-file" => args.password_file = Some(value.into()),
            _ => return Err(format!("unknown option `{flag}`\n{USAGE}")),
        }
    }
    // Fallbacks: the variables, then the CI env file.
    let file = fs_err::read_to_string(CI_ENV_FILE).unwrap_or_default();
    let fallback = |key: &str| -> Option<String> {
        let name = format!("APSCTL_TEST_MYSQL_{key}");
        env.var(&name).map(str::to_owned).or_else(|| {
            file.lines()
                .find_map(|l| l.strip_prefix(name.as_str())?.strip_prefix('='))
                .map(|v| v.trim().to_owned())
        })
    };
    args.host = args.host.or_else(|| fallback("HOST"));
    args.port = args.port.or_else(|| fallback("PORT"));
    args.user = args.user.or_else(|| fallback("USER"));
    args.password_file = args
        .password_file
        .or_else(|| fallback("PASSWORD_FILE").map(PathBuf::from));
    Ok(args)
}

fn run() -> Result<(), Box<dyn Error>> {
    let env = Env::from_process();
    let args = parse_args(&env)?;
    let missing = |what: &str| format!("{what} is required\n{USAGE}");
    let database = args.database.ok_or_else(|| missing("--database"))?;
    let out = args.out.ok_or_else(|| missing("--out"))?;
    let port = match args.port {
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|e| format!("port `{p}` is not a port number: {e}"))?,
        ),
        None => None,
    };
    let password = match args.password_file {
        Some(file) => fs_err::read_to_string(&file)?
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
        None => String::new(),
    };
    let config = ServerConfig {
        kind: ServerType::Mysql,
        host: args.host.unwrap_or_else(|| "localhost".to_owned()),
        port,
        admin_user: args.user.ok_or_else(|| missing("--user"))?,
        admin_password: Secret::new(password),
        sqlite_dir: None,
        login_hosts: Vec::new(),
    };
    let server = aps_host::db::open(config)?;
    let started = Instant::now();
    server.dump(&database, &out)?;
    let elapsed = started.elapsed();
    let bytes = fs_err::metadata(&out)?.len();
    report(&format!(
        "dumped `{database}` to `{}`: {bytes} bytes in {:.3} s",
        out.display(),
        elapsed.as_secs_f64()
    ));
    Ok(())
}

#[expect(
    clippy::print_stderr,
    reason = "a command-line example reports on stderr"
)]
fn report(message: &str) {
    eprintln!("{message}");
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut message = format!("dump: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                let _ = write!(message, ": {cause}");
                source = cause.source();
            }
            report(&message);
            ExitCode::FAILURE
        }
    }
}
