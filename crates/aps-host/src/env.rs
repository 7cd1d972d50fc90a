//! The one door to process state: environment variables, working directory, clock, current user
//! and child processes.
//!
//! Main decision (STYLE practice 7): `main` builds one [`Env`] from the real process with
//! [`Env::from_process`]; everything else reads variables, the time and the current uid from it,
//! and starts every child process through [`Env::command`]. Tests build an `Env` from chosen
//! variables ([`Env::from_vars`]) and may freeze its clock ([`Env::with_fixed_time`]), so nothing
//! depends on the environment of the test runner.
//!
//! Every variable apsctl reads is a documented constant in [`vars`].
//!
//! Known gaps: the snapshot is taken once; changes made to the real process environment later are
//! not seen (that is intended). Variables whose names or values are not UTF-8 are kept but can be
//! read only through [`Env::var_os`].
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// Names of the environment variables apsctl reads, each documented once.
pub mod vars {
    /// The controller's home folder (CLI.md); the `--home` flag wins over it.
    pub const APSCTL_HOME: &str = "APSCTL_HOME";
    /// When set to any non-empty value, terminal output carries no colour (<https://no-color.org>).
    pub const NO_COLOR: &str = "NO_COLOR";
    /// The controller's search path; children started by [`super::Env::command`] get it too.
    pub const PATH: &str = "PATH";
    /// The home folder of the user running apsctl (used for the default controller home).
    pub const HOME: &str = "HOME";
    /// Terminal type; `dumb` means no colour and no cursor movement.
    pub const TERM: &str = "TERM";
    /// Test builds only: fail the running operation right after the journal step of this kind.
    pub const TEST_FAIL_AFTER: &str = "APSCTL_TEST_FAIL_AFTER";
    /// Test builds only: abort the process right after the journal step of this kind.
    pub const TEST_CRASH_AFTER: &str = "APSCTL_TEST_CRASH_AFTER";
}

/// The search path used when the controller's own `PATH` is unset or empty.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Locale given to every child process: UTF-8 text, messages in plain English.
pub const CHILD_LANG: &str = "C.UTF-8";

/// A snapshot of the process's environment, user and clock, and the factory of child processes.
#[derive(Debug, Clone)]
pub struct Env {
    vars: BTreeMap<OsString, OsString>,
    current_dir: Option<PathBuf>,
    uid: u32,
    fixed_time: Option<SystemTime>,
}

/// The umask apsctl works under, whatever it was started with.
pub const UMASK: u32 = 0o022;

/// Sets the process's umask to [`UMASK`] (call it once, at start). A controller started under
/// `umask 000` would otherwise create files others can write (private metadata, locks), which a
/// tenant could rewrite; apsctl also gives every file it creates an explicit mode, so this is the
/// second line of defence.
pub fn set_umask() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(UMASK));
}

impl Env {
    /// Takes a snapshot of the real process: its environment, working directory and effective uid.
    ///
    /// Call this once, in `main`.
    #[expect(
        clippy::disallowed_methods,
        reason = "this is the one place that reads the real process state"
    )]
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars_os().collect(),
            // An unreadable or deleted working directory is recorded as unknown.
            current_dir: std::env::current_dir().ok(),
            uid: nix::unistd::geteuid().as_raw(),
            fixed_time: None,
        }
    }

    /// Builds an environment holding exactly `vars`, with no working directory and the real
    /// effective uid (child processes still need real privileges). For tests and embedding.
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        Self {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            current_dir: None,
            uid: nix::unistd::geteuid().as_raw(),
            fixed_time: None,
        }
    }

    /// Returns this environment with its clock frozen at `time`.
    #[must_use]
    pub fn with_fixed_time(mut self, time: SystemTime) -> Self {
        self.fixed_time = Some(time);
        self
    }

    /// Returns this environment with `dir` as the working directory.
    #[must_use]
    pub fn with_current_dir(mut self, dir: PathBuf) -> Self {
        self.current_dir = Some(dir);
        self
    }

    /// The value of variable `name`, when it is set and valid UTF-8.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.var_os(name).and_then(OsStr::to_str)
    }

    /// The raw value of variable `name`, when it is set.
    pub fn var_os(&self, name: &str) -> Option<&OsStr> {
        self.vars.get(OsStr::new(name)).map(OsString::as_os_str)
    }

    /// Tells whether variable `name` is set to a non-empty value (the convention of `NO_COLOR`).
    pub fn flag(&self, name: &str) -> bool {
        self.var_os(name).is_some_and(|v| !v.is_empty())
    }

    /// The controller's search path, or [`DEFAULT_PATH`] when unset or empty.
    pub fn path_var(&self) -> &OsStr {
        match self.var_os(vars::PATH) {
            Some(path) if !path.is_empty() => path,
            _ => OsStr::new(DEFAULT_PATH),
        }
    }

    /// The working directory apsctl was started in, when it was readable.
    pub fn current_dir(&self) -> Option<&Path> {
        self.current_dir.as_deref()
    }

    /// The current time (wall clock), or the frozen time of a test environment.
    pub fn now(&self) -> SystemTime {
        #[expect(
            clippy::disallowed_methods,
            reason = "the one clock of the process (STYLE practice 7)"
        )]
        self.fixed_time.unwrap_or_else(SystemTime::now)
    }

    /// This machine's host name (for the journal's "who holds this operation"); empty when unknown.
    pub fn hostname(&self) -> String {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The effective uid apsctl runs as.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// Tells whether apsctl runs as root (needed to switch to site users and create system users).
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Starts building a child process for `program`: the only place apsctl creates a
    /// [`Command`].
    ///
    /// The child gets a cleared environment plus `PATH` (the controller's, or [`DEFAULT_PATH`]),
    /// `LANG=C.UTF-8` and, when set, the controller's `HOME`. Nothing else leaks from the
    /// controller (for example `MYSQL_PWD` or `PGPASSWORD` an operator happened to export); callers
    /// add what the child needs with [`Command::env`]. A bare program name is looked up in that
    /// `PATH`.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = bare_command(program);
        command.env(vars::PATH, self.path_var());
        command.env("LANG", CHILD_LANG);
        if let Some(home) = self.var_os(vars::HOME) {
            command.env(vars::HOME, home);
        }
        command
    }
}

/// A [`Command`] for `program` with an empty environment: the one place apsctl calls
/// `Command::new`. Prefer [`Env::command`]; this is for adapters (database clients) that set a
/// fixed environment of their own.
#[expect(
    clippy::disallowed_methods,
    reason = "the one door to child processes (STYLE practice 7)"
)]
pub fn bare_command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    command.env_clear();
    command
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn reads_only_the_given_variables() {
        let env = Env::from_vars([("APSCTL_HOME", "/srv/apsctl"), ("NO_COLOR", "")]);
        assert_eq!(env.var(vars::APSCTL_HOME), Some("/srv/apsctl"));
        assert_eq!(env.var(vars::PATH), None);
        assert!(
            !env.flag(vars::NO_COLOR),
            "an empty NO_COLOR does not count"
        );
        assert_eq!(env.path_var(), OsStr::new(DEFAULT_PATH));
    }

    #[test]
    fn snapshot_of_the_process_sees_its_path() {
        let env = Env::from_process();
        // The test runner always has a PATH (cargo sets it up).
        assert!(env.var(vars::PATH).is_some_and(|p| !p.is_empty()));
        assert_eq!(env.uid(), nix::unistd::geteuid().as_raw());
    }

    #[test]
    fn fixed_clock_stays_put() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let env = Env::from_vars::<_, &str, &str>([]).with_fixed_time(t);
        assert_eq!(env.now(), t);
        assert_eq!(env.now(), t);
    }

    #[test]
    fn command_does_not_inherit_the_controller_environment() {
        let env = Env::from_vars([
            ("PATH", "/usr/bin:/bin"),
            ("HOME", "/root-home"),
            ("MYSQL_PWD", "leak"),
        ]);
        let out = env.command("env").output().expect("run env");
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        assert_eq!(
            lines,
            ["HOME=/root-home", "LANG=C.UTF-8", "PATH=/usr/bin:/bin"]
        );
    }
}
