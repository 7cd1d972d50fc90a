//! The interpreter registry: which program runs a package script of a given `script-language`.
//!
//! Main decision (D7, REFERENCE §4.2): scripts are never started through their exec bit or
//! shebang (PHP scripts such as `configure` begin with `<?php`); the language names an interpreter, and
//! `php` means the site's own PHP CLI when the site names one, so scripts run on the PHP version
//! the site serves. An unknown language or a missing interpreter is refused before any change
//! ([`InterpreterRegistry::resolve`]), and [`Interpreter::verify`] proves the program actually runs
//! as the site user (KB 115664: the interpreter path was missing on the web node).
//!
//! `python` maps to Python 3 (`/usr/bin/python3`): Python 2 is gone from current systems; an
//! operator who needs another program registers it with [`InterpreterRegistry::with_program`].
//!
//! Known gaps: interpreter versions are not matched against package requirements here (the PHP
//! version check belongs to the requirement checks in `aps-ops`).
use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::env::Env;
use crate::runner::{self, RunError, ScriptRun};
use crate::user::SystemUser;

/// How long [`Interpreter::verify`] lets the interpreter run.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// A `script-language` apsctl can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScriptLanguage {
    /// `php`: the site's PHP CLI.
    Php,
    /// `perl`.
    Perl,
    /// `python` (Python 3).
    Python,
    /// `sh`: a POSIX shell.
    Sh,
    /// `bash`.
    Bash,
}

impl ScriptLanguage {
    /// Every supported language.
    pub const ALL: [Self; 5] = [Self::Php, Self::Perl, Self::Python, Self::Sh, Self::Bash];

    /// The name used in APP-META.xml.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Php => "php",
            Self::Perl => "perl",
            Self::Python => "python",
            Self::Sh => "sh",
            Self::Bash => "bash",
        }
    }

    /// Arguments that make the interpreter print its version (or just exit 0) and exit.
    fn version_args(self) -> &'static [&'static str] {
        match self {
            Self::Php => &["-v"],
            Self::Perl => &["-e", "print qq($^V\\n)"],
            Self::Python | Self::Bash => &["--version"],
            // dash has no version option.
            Self::Sh => &["-c", "exit 0"],
        }
    }
}

impl fmt::Display for ScriptLanguage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ScriptLanguage {
    type Err = InterpError;

    /// Parses a `script-language` value; surrounding whitespace and ASCII case are ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| InterpError::UnknownLanguage {
                language: s.to_owned(),
            })
    }
}

/// Why no usable interpreter was found.
#[derive(Debug, thiserror::Error)]
pub enum InterpError {
    /// The language is not one apsctl can run.
    #[error(
        "script language `{language}` is not supported (supported: php, perl, python, sh, bash)"
    )]
    UnknownLanguage {
        /// The value from the package.
        language: String,
    },
    /// No program is registered for the language.
    #[error("no interpreter is registered for script language `{language}`")]
    NotRegistered {
        /// The language.
        language: ScriptLanguage,
    },
    /// The interpreter program does not exist or cannot be examined.
    #[error("interpreter `{}` for script language `{language}` is not available", program.display())]
    Missing {
        /// The language.
        language: ScriptLanguage,
        /// The program looked for.
        program: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The interpreter is not an executable file.
    #[error(
        "interpreter `{}` for script language `{language}` is not an executable file",
        program.display()
    )]
    NotExecutable {
        /// The language.
        language: ScriptLanguage,
        /// The program.
        program: PathBuf,
    },
    /// The interpreter could not be started as the site user.
    #[error("interpreter `{}` could not be started", program.display())]
    Start {
        /// The program.
        program: PathBuf,
        /// The runner's error.
        #[source]
        source: RunError,
    },
    /// The interpreter started but failed.
    #[error("interpreter `{}` does not run as user `{user}`: {detail}", program.display())]
    Broken {
        /// The program.
        program: PathBuf,
        /// The site user.
        user: String,
        /// Exit status and the first line of its error output.
        detail: String,
    },
}

/// Maps each language to a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpreterRegistry {
    programs: BTreeMap<ScriptLanguage, PathBuf>,
}

impl Default for InterpreterRegistry {
    /// The Debian locations: `/usr/bin/php`, `/usr/bin/perl`, `/usr/bin/python3`, `/bin/sh`,
    /// `/bin/bash`.
    fn default() -> Self {
        let programs = [
            (ScriptLanguage::Php, "/usr/bin/php"),
            (ScriptLanguage::Perl, "/usr/bin/perl"),
            (ScriptLanguage::Python, "/usr/bin/python3"),
            (ScriptLanguage::Sh, "/bin/sh"),
            (ScriptLanguage::Bash, "/bin/bash"),
        ]
        .into_iter()
        .map(|(l, p)| (l, PathBuf::from(p)))
        .collect();
        Self { programs }
    }
}

/// A resolved interpreter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreter {
    /// The language it runs.
    pub language: ScriptLanguage,
    /// The program (absolute path).
    pub program: PathBuf,
}

impl InterpreterRegistry {
    /// Returns the registry with `program` registered for `language`.
    #[must_use]
    pub fn with_program(mut self, language: ScriptLanguage, program: PathBuf) -> Self {
        self.programs.insert(language, program);
        self
    }

    /// The program registered for `language`.
    pub fn program(&self, language: ScriptLanguage) -> Option<&Path> {
        self.programs.get(&language).map(PathBuf::as_path)
    }

    /// Finds the interpreter for the package's `script-language` value; `site_php` (the site's
    /// PHP CLI) replaces the registered program for `php`. The program must be an existing
    /// executable file.
    pub fn resolve(
        &self,
        language: &str,
        site_php: Option<&Path>,
    ) -> Result<Interpreter, InterpError> {
        let language: ScriptLanguage = language.parse()?;
        let program = match (language, site_php) {
            (ScriptLanguage::Php, Some(php)) => php.to_path_buf(),
            _ => self
                .program(language)
                .map(Path::to_path_buf)
                .ok_or(InterpError::NotRegistered { language })?,
        };
        let meta = fs_err::metadata(&program).map_err(|source| InterpError::Missing {
            language,
            program: program.clone(),
            source,
        })?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(InterpError::NotExecutable { language, program });
        }
        Ok(Interpreter { language, program })
    }
}

impl Interpreter {
    /// Runs the interpreter once as `user` (version query) and returns the first line it printed
    /// (empty for `sh`). Fails when it cannot start or exits non-zero.
    pub fn verify(&self, env: &Env, user: &SystemUser) -> Result<String, InterpError> {
        let mut run = ScriptRun::program(&self.program, Path::new("/"), user);
        run.args = self
            .language
            .version_args()
            .iter()
            .map(|&a| a.to_owned())
            .collect();
        run.timeout = VERIFY_TIMEOUT;
        run.output_cap = 64 * 1024;
        let outcome = runner::run(env, &run).map_err(|source| InterpError::Start {
            program: self.program.clone(),
            source,
        })?;
        if !outcome.success() {
            let first = outcome
                .stderr
                .text
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned();
            return Err(InterpError::Broken {
                program: self.program.clone(),
                user: user.name().to_owned(),
                detail: format!("{:?}: {first}", outcome.status),
            });
        }
        Ok(outcome
            .stdout
            .text
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::ensure_test_user;

    #[test]
    fn languages_parse_case_insensitively_and_unknown_is_named() {
        assert_eq!(
            "php".parse::<ScriptLanguage>().expect("php"),
            ScriptLanguage::Php
        );
        assert_eq!(
            " PHP ".parse::<ScriptLanguage>().expect("PHP"),
            ScriptLanguage::Php
        );
        assert_eq!(
            "bash".parse::<ScriptLanguage>().expect("bash"),
            ScriptLanguage::Bash
        );
        let err = "ruby".parse::<ScriptLanguage>().expect_err("ruby");
        assert!(err.to_string().contains("`ruby`"), "{err}");
        for l in ScriptLanguage::ALL {
            assert_eq!(l.as_str().parse::<ScriptLanguage>().expect("round trip"), l);
        }
    }

    #[test]
    fn resolves_php_to_the_site_override() {
        let reg = InterpreterRegistry::default();
        let i = reg.resolve("php", None).expect("system php");
        assert_eq!(i.program, Path::new("/usr/bin/php"));
        let i = reg
            .resolve("sh", Some(Path::new("/nonexistent/php")))
            .expect("sh ignores php");
        assert_eq!(i.program, Path::new("/bin/sh"));
        let err = reg
            .resolve("php", Some(Path::new("/nonexistent/php8.9")))
            .expect_err("missing");
        assert!(matches!(err, InterpError::Missing { .. }));
        assert!(err.to_string().contains("`/nonexistent/php8.9`"), "{err}");
    }

    #[test]
    fn non_executable_and_directories_are_refused() {
        let reg = InterpreterRegistry::default();
        let err = reg
            .resolve("php", Some(Path::new("/etc/passwd")))
            .expect_err("not exec");
        assert!(matches!(err, InterpError::NotExecutable { .. }), "{err}");
        let err = reg
            .resolve("php", Some(Path::new("/usr/bin")))
            .expect_err("dir");
        assert!(matches!(err, InterpError::NotExecutable { .. }), "{err}");
    }

    #[test]
    fn registered_program_wins() {
        let reg = InterpreterRegistry::default()
            .with_program(ScriptLanguage::Perl, PathBuf::from("/nonexistent/perl"));
        assert!(matches!(
            reg.resolve("perl", None),
            Err(InterpError::Missing { .. })
        ));
    }

    #[test]
    fn verify_runs_php_and_sh_as_the_site_user() {
        let env = Env::from_process();
        let user = ensure_test_user(&env, "apsctl-test").expect("test user");
        let reg = InterpreterRegistry::default();
        let php = reg.resolve("php", None).expect("php");
        let line = php.verify(&env, &user).expect("php runs");
        assert!(line.starts_with("PHP 8."), "{line}");
        let sh = reg.resolve("sh", None).expect("sh");
        assert_eq!(sh.verify(&env, &user).expect("sh runs"), "");
    }

    #[test]
    fn verify_reports_a_broken_interpreter() {
        let env = Env::from_process();
        let user = ensure_test_user(&env, "apsctl-test").expect("test user");
        // `false` is executable but fails every run.
        let broken = Interpreter {
            language: ScriptLanguage::Bash,
            program: "/bin/false".into(),
        };
        let err = broken.verify(&env, &user).expect_err("false fails");
        assert!(matches!(err, InterpError::Broken { .. }), "{err}");
        assert!(err.to_string().contains("apsctl-test"), "{err}");
    }
}
