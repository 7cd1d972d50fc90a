//! Probes a site's PHP: version, loaded extensions, ini values and whether named functions exist.
//!
//! Main decision (§6.1, §9): requirements are checked against the site's own PHP, never against
//! apsctl's process, so [`probe`] runs the site's PHP CLI as the site user with the same clean
//! environment as package scripts ([`crate::runner`]) and with its normal ini files (no `-n`, no
//! `-d`: the point is to see the configuration the scripts will get). The snippet prints one JSON
//! document after a marker line, so startup warnings PHP prints on stdout do not break parsing.
//! Function names to test are passed as arguments, never spliced into code.
//!
//! This module only gathers facts and offers the PHP parsing rules for ini values
//! ([`parse_ini_size`], [`parse_ini_bool`]); mapping APS `php:*` requirements onto them is done in
//! `aps-ops`.
//!
//! [`probe_fpm`] asks the same questions of a site's PHP-FPM pool over `FastCGI` (the web SAPI's
//! values, §11 Q23): the probe is a root-owned file in a folder only root writes, requested once.
//!
//! Known gap: per-directory `.user.ini` files are not seen by either probe.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::env::Env;
use crate::runner::{self, RunError, RunStatus, ScriptRun};
use crate::user::SystemUser;

/// How long the probe may run.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Line printed right before the JSON document.
const MARKER: &str = "@@apsctl-php-probe@@";

/// The probe snippet: function names to test arrive in `$argv[1..]`.
const PROBE_CODE: &str = r#"
$functions = [];
foreach (array_slice($argv, 1) as $name) { $functions[$name] = function_exists($name); }
$ini = [];
foreach (ini_get_all(null, false) as $key => $value) {
    $ini[$key] = $value === null ? null : (string) $value;
}
$file = php_ini_loaded_file();
echo "\n", "@@apsctl-php-probe@@", "\n", json_encode([
    'version' => PHP_VERSION,
    'extensions' => array_merge(get_loaded_extensions(false), get_loaded_extensions(true)),
    'ini' => (object) $ini,
    'functions' => (object) $functions,
    'ini_file' => $file === false ? null : $file,
], JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE), "\n";
"#;

/// What the site's PHP reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhpInfo {
    /// `PHP_VERSION`, for example `8.2.35`.
    pub version: String,
    /// Loaded extensions and Zend extensions, lowercased (`mysqli`, `zend opcache`).
    pub extensions: BTreeSet<String>,
    /// Every ini directive with its local value (`None` when the directive has no value).
    pub ini: BTreeMap<String, Option<String>>,
    /// For each function name asked about: whether it exists (disabled functions do not).
    pub functions: BTreeMap<String, bool>,
    /// The `php.ini` that was loaded, if any.
    pub ini_file: Option<PathBuf>,
}

impl PhpInfo {
    /// Tells whether extension `name` is loaded (ASCII case-insensitive).
    pub fn has_extension(&self, name: &str) -> bool {
        self.extensions.contains(&name.to_ascii_lowercase())
    }

    /// Whether function `name` exists; `None` when the probe was not asked about it.
    pub fn has_function(&self, name: &str) -> Option<bool> {
        self.functions.get(name).copied()
    }

    /// The value of ini directive `name`; `None` when the directive is unknown to this PHP (for
    /// example `safe_mode` on modern PHP) or has no value.
    pub fn ini(&self, name: &str) -> Option<&str> {
        self.ini.get(name).and_then(Option::as_deref)
    }

    /// Tells whether this PHP knows ini directive `name`.
    pub fn knows_ini(&self, name: &str) -> bool {
        self.ini.contains_key(name)
    }
}

/// An ini size (`memory_limit`, `post_max_size`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IniSize {
    /// A number of bytes.
    Bytes(u64),
    /// No limit (`-1`, or any negative value).
    Unlimited,
}

/// Parses an ini size the way PHP does: a decimal integer with an optional `K`, `M` or `G`
/// suffix (powers of 1024, any case), surrounding spaces allowed. A negative number means no
/// limit. Returns `None` for anything else (PHP would warn and guess).
pub fn parse_ini_size(value: &str) -> Option<IniSize> {
    let value = value.trim();
    let (negative, rest) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (digits, suffix) = rest.split_at(digits_end);
    if digits.is_empty() {
        return None;
    }
    let factor: u64 = match suffix.trim_start() {
        "" => 1,
        "k" | "K" => 1 << 10,
        "m" | "M" => 1 << 20,
        "g" | "G" => 1 << 30,
        _ => return None,
    };
    let number: u64 = digits.parse().ok()?;
    if negative && number != 0 {
        return Some(IniSize::Unlimited);
    }
    number.checked_mul(factor).map(IniSize::Bytes)
}

/// Parses an ini boolean the way PHP does: `on`, `yes` and `true` (any case) are true; anything
/// else is true exactly when its leading integer is non-zero (`1` true; `0`, `off`, empty false).
pub fn parse_ini_bool(value: &str) -> bool {
    let value = value.trim();
    if ["on", "yes", "true"]
        .iter()
        .any(|w| value.eq_ignore_ascii_case(w))
    {
        return true;
    }
    let rest = value.strip_prefix(['-', '+']).unwrap_or(value);
    rest.chars()
        .take_while(char::is_ascii_digit)
        .any(|c| c != '0')
}

/// Why the probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// PHP could not be started.
    #[error("cannot run PHP `{}` to probe it", php.display())]
    Run {
        /// The PHP CLI.
        php: PathBuf,
        /// The runner's error.
        #[source]
        source: RunError,
    },
    /// PHP ran but failed.
    #[error("PHP `{}` failed while being probed as user `{user}` ({status:?}): {detail}", php.display())]
    Failed {
        /// The PHP CLI.
        php: PathBuf,
        /// The site user.
        user: String,
        /// How it ended.
        status: RunStatus,
        /// First line of its error output.
        detail: String,
    },
    /// PHP's answer could not be read.
    #[error("PHP `{}` gave an unreadable answer to the probe: {detail}", php.display())]
    BadOutput {
        /// The PHP CLI.
        php: PathBuf,
        /// What was wrong.
        detail: String,
    },
}

/// The raw JSON answer.
#[derive(Deserialize)]
struct Answer {
    version: String,
    extensions: Vec<String>,
    ini: BTreeMap<String, Option<String>>,
    functions: BTreeMap<String, bool>,
    ini_file: Option<PathBuf>,
}

/// Runs `php` as `user` and reports its version, extensions, ini values and which of `functions`
/// exist.
pub fn probe(
    env: &Env,
    php: &Path,
    user: &SystemUser,
    functions: &[&str],
) -> Result<PhpInfo, ProbeError> {
    let mut run = ScriptRun::program(php, Path::new("/"), user);
    run.args = ["-r", PROBE_CODE, "--"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    run.args.extend(functions.iter().map(|&f| f.to_owned()));
    run.timeout = PROBE_TIMEOUT;
    run.output_cap = 16 << 20;
    let outcome = runner::run(env, &run).map_err(|source| ProbeError::Run {
        php: php.to_path_buf(),
        source,
    })?;
    if !outcome.success() {
        return Err(ProbeError::Failed {
            php: php.to_path_buf(),
            user: user.name().to_owned(),
            status: outcome.status,
            detail: outcome
                .stderr
                .text
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned(),
        });
    }
    let bad = |detail: String| ProbeError::BadOutput {
        php: php.to_path_buf(),
        detail,
    };
    if outcome.stdout.truncated {
        return Err(bad(format!(
            "{} bytes is over the limit",
            outcome.stdout.total_bytes
        )));
    }
    parse_answer(&outcome.stdout.text).map_err(bad)
}

/// Reads the probe's JSON document, printed after [`MARKER`].
fn parse_answer(stdout: &str) -> Result<PhpInfo, String> {
    let json = stdout
        .rsplit_once(&format!("{MARKER}\n"))
        .map(|(_, json)| json)
        .ok_or_else(|| "the answer marker is missing".to_owned())?;
    let answer: Answer = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(PhpInfo {
        version: answer.version,
        extensions: answer
            .extensions
            .iter()
            .map(|e| e.to_ascii_lowercase())
            .collect(),
        ini: answer.ini,
        functions: answer.functions,
        ini_file: answer.ini_file,
    })
}

/// Why probing a site's PHP-FPM failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot probe the site's PHP-FPM at `{addr}`: {detail}")]
pub struct FpmProbeError {
    /// The PHP-FPM address.
    pub addr: String,
    /// What went wrong.
    pub detail: String,
}

/// Asks the site's PHP-FPM pool at `fastcgi` (its web SAPI, §11 Q23) the probe's questions: the
/// probe is written as a root-owned, world-readable `.php` file into `dir` (a folder the pool's
/// user can traverse and nobody else can write), requested once over `FastCGI` and removed.
/// Function names that are not plain identifiers are not asked about.
pub fn probe_fpm(
    fastcgi: &crate::web::FastCgi,
    dir: &Path,
    functions: &[&str],
) -> Result<PhpInfo, FpmProbeError> {
    use fs_err::os::unix::fs::OpenOptionsExt as _;
    use std::io::Write as _;

    let addr = match fastcgi {
        crate::web::FastCgi::Unix(path) => format!("unix:{}", path.display()),
        crate::web::FastCgi::Tcp(addr) => addr.clone(),
    };
    let fail = |detail: String| FpmProbeError {
        addr: addr.clone(),
        detail,
    };
    let name = format!(
        "apsctl-probe-{}-{:016x}.php",
        std::process::id(),
        rand::random::<u64>()
    );
    let file = dir.join(&name);
    let code = format!(
        "<?php\n$argv = array_merge(['probe'], isset($_GET['f']) ? (array) $_GET['f'] : []);\n{PROBE_CODE}"
    );
    let written = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&file)
        .and_then(|mut f| f.write_all(code.as_bytes()));
    if let Err(e) = written {
        let _ = fs_err::remove_file(&file);
        return Err(fail(e.to_string()));
    }
    let query: Vec<String> = functions
        .iter()
        .filter(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .map(|f| format!("f[]={f}"))
        .collect();
    let answer = fpm_request(fastcgi, &file, &name, &query.join("&"));
    let _ = fs_err::remove_file(&file);
    let stdout = answer.map_err(fail)?;
    parse_answer(&stdout).map_err(|e| fail(format!("unreadable answer: {e}")))
}

/// One `GET` of `file` from PHP-FPM, synchronously (the `FastCGI` client is runtime agnostic:
/// a blocking socket under a one-future executor), with a timeout on every read and write.
fn fpm_request(
    fastcgi: &crate::web::FastCgi,
    file: &Path,
    name: &str,
    query: &str,
) -> Result<String, String> {
    use fastcgi_client::{Client, Params, Request};
    use futures_util::io::AllowStdIo;

    let uri = format!("/{name}");
    let params = Params::default()
        .request_method("GET")
        .script_filename(file.to_string_lossy().into_owned())
        .script_name(uri.clone())
        .request_uri(format!("{uri}?{query}"))
        .document_uri(uri)
        .query_string(query.to_owned())
        .remote_addr("127.0.0.1")
        .remote_port(0)
        .server_addr("127.0.0.1")
        .server_port(80)
        .server_name("apsctl-probe")
        .content_type("")
        .content_length(0);
    let request = Request::new(params, futures_util::io::empty());
    let response = match fastcgi {
        crate::web::FastCgi::Unix(path) => {
            let stream =
                std::os::unix::net::UnixStream::connect(path).map_err(|e| e.to_string())?;
            stream
                .set_read_timeout(Some(PROBE_TIMEOUT))
                .and_then(|()| stream.set_write_timeout(Some(PROBE_TIMEOUT)))
                .map_err(|e| e.to_string())?;
            futures_executor::block_on(Client::new(AllowStdIo::new(stream)).execute_once(request))
        }
        crate::web::FastCgi::Tcp(addr) => {
            let stream = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
            stream
                .set_read_timeout(Some(PROBE_TIMEOUT))
                .and_then(|()| stream.set_write_timeout(Some(PROBE_TIMEOUT)))
                .map_err(|e| e.to_string())?;
            futures_executor::block_on(Client::new(AllowStdIo::new(stream)).execute_once(request))
        }
    }
    .map_err(|e| e.to_string())?;
    let stdout =
        String::from_utf8_lossy(response.stdout.as_deref().unwrap_or_default()).into_owned();
    if !stdout.contains(MARKER) {
        let stderr = String::from_utf8_lossy(response.stderr.as_deref().unwrap_or_default());
        let first = stdout.lines().next().unwrap_or("");
        return Err(format!(
            "no answer from the probe ({}{})",
            first.trim(),
            if stderr.trim().is_empty() {
                String::new()
            } else {
                format!("; {}", stderr.trim())
            }
        ));
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_code_prints_the_marker() {
        assert!(PROBE_CODE.contains(&format!("\"{MARKER}\"")));
    }

    #[test]
    fn ini_sizes() {
        assert_eq!(parse_ini_size("128M"), Some(IniSize::Bytes(128 << 20)));
        assert_eq!(parse_ini_size(" 2g "), Some(IniSize::Bytes(2 << 30)));
        assert_eq!(parse_ini_size("512k"), Some(IniSize::Bytes(512 << 10)));
        assert_eq!(parse_ini_size("8388608"), Some(IniSize::Bytes(8_388_608)));
        assert_eq!(parse_ini_size("0"), Some(IniSize::Bytes(0)));
        assert_eq!(parse_ini_size("-1"), Some(IniSize::Unlimited));
        assert_eq!(parse_ini_size("-0"), Some(IniSize::Bytes(0)));
        assert_eq!(parse_ini_size("1.5G"), None);
        assert_eq!(parse_ini_size("M"), None);
        assert_eq!(parse_ini_size("12MB"), None);
        assert_eq!(parse_ini_size("99999999999999999999G"), None);
        assert!(IniSize::Unlimited > IniSize::Bytes(u64::MAX));
    }

    #[test]
    fn ini_booleans() {
        for t in ["On", "on", "1", "true", "YES", " 2 "] {
            assert!(parse_ini_bool(t), "{t}");
        }
        for f in ["Off", "0", "", "false", "no", "none", "00"] {
            assert!(!parse_ini_bool(f), "{f}");
        }
    }
}
