//! Runs a package script (or any program) as a site's system user under the D7 process contract.
//!
//! Main decision (REFERENCE §4.2, D7): argv is passed straight to `execve`, never through a shell;
//! the environment is cleared and rebuilt from `PATH`, `HOME`, `LANG=C.UTF-8` and the APS
//! variables; the child switches to the site user's uid, gid and supplementary groups, refuses
//! uid 0, reads `/dev/null`, runs under umask `022` whatever apsctl's own is, and leads a new
//! session with no controlling terminal (with the admin's terminal a script could push commands
//! into the admin's shell with `TIOCSTI`). stdout and stderr are drained by two threads, each
//! keeping at most `output_cap` bytes (the rest is counted and dropped). When the timeout expires
//! the program and everything it started get `SIGKILL`. The exit status is the only success
//! signal: output text is never scanned.
//!
//! A run ends when the script's main process ends: everything it started that is still running,
//! including processes that left its session, is killed then and reaped (see [`crate::reaper`]: a
//! cgroup per run where cgroup v2 can be written, apsctl as child subreaper otherwise), so no stray
//! process keeps running as the site user after apsctl reported the result. Runs on several
//! threads at once stay apart. The script's main process also gets `SIGKILL` when apsctl dies
//! (`PR_SET_PDEATHSIG`).
//!
//! Secrets are replaced by `***` in the captured text before it leaves this module (see
//! [`crate::redact`]).
//!
//! Switching users needs root; when apsctl already runs as the site user, the switch is skipped.
//!
//! Known gaps: the death signal follows the *thread* that started the script, which is the thread
//! blocked in [`run`] for the whole run; when apsctl is killed only the main process gets it, and
//! the rest of the run is killed by the next apsctl run that finds the run's cgroup (never without
//! cgroups; see the reaper's gaps, too, for what the fallback cannot attribute). A process outside
//! the run that holds the output pipes open (one the script handed them to) makes the run stop
//! waiting for output after [`READER_GRACE`] and mark the stream truncated; the reader thread
//! lingers until the pipe closes. A run cgroup that can be created but not joined fails the start
//! ([`RunError::Spawn`]). Durations use the monotonic clock, not [`Env::now`].
use std::ffi::CString;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::{Gid, Pid, Uid};

use crate::env::{CHILD_LANG, Env};
use crate::reaper::{ReaperError, Scope};
use crate::redact::Redactor;
use crate::user::{SystemUser, UserError};

/// D7: a script may run 15 minutes before it and everything it started are killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Bytes kept of each of stdout and stderr unless the caller chooses otherwise (1 MiB).
pub const DEFAULT_OUTPUT_CAP: usize = 1 << 20;

/// `PATH` given to scripts unless the caller chooses otherwise.
pub const DEFAULT_SCRIPT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// How long to keep waiting for the output pipes to close after the run's processes were killed.
pub const READER_GRACE: Duration = Duration::from_secs(5);

/// One run of a program as a site user. Build it with [`ScriptRun::script`] or
/// [`ScriptRun::program`], then adjust the public fields.
#[derive(Debug, Clone)]
pub struct ScriptRun<'a> {
    /// The program executed: for a package script, its interpreter (absolute path).
    pub program: PathBuf,
    /// Arguments after the program name: for a package script `[script, action, extra…]`.
    pub args: Vec<String>,
    /// Working directory (for a package script, the instance's private copy of `scripts/`).
    pub cwd: PathBuf,
    /// The user the program runs as; root is refused.
    pub user: &'a SystemUser,
    /// Environment variables added after the base (`PATH`, `HOME`, `LANG`): the APS variables.
    pub vars: Vec<(String, String)>,
    /// The `PATH` the program sees.
    pub base_path: String,
    /// How long the program may run before it and everything it started are killed.
    pub timeout: Duration,
    /// Bytes kept of each of stdout and stderr.
    pub output_cap: usize,
    /// Values replaced by `***` in the captured output (passwords, `DB_*_PASSWORD`).
    pub secrets: Vec<String>,
}

impl<'a> ScriptRun<'a> {
    /// A package script run: argv `[interpreter, script, action]`; append extra arguments (such as
    /// the old version and release of an upgrade) with [`ScriptRun::arg`].
    pub fn script(
        interpreter: &Path,
        script: &Path,
        action: &str,
        cwd: &Path,
        user: &'a SystemUser,
    ) -> Self {
        let mut run = Self::program(interpreter, cwd, user);
        run.args = vec![script.to_string_lossy().into_owned(), action.to_owned()];
        run
    }

    /// A run of `program` with no arguments and the default limits.
    pub fn program(program: &Path, cwd: &Path, user: &'a SystemUser) -> Self {
        Self {
            program: program.to_path_buf(),
            args: Vec::new(),
            cwd: cwd.to_path_buf(),
            user,
            vars: Vec::new(),
            base_path: DEFAULT_SCRIPT_PATH.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            output_cap: DEFAULT_OUTPUT_CAP,
            secrets: Vec::new(),
        }
    }

    /// Appends one argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds one environment variable.
    #[must_use]
    pub fn var(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.push((name.into(), value.into()));
        self
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// The program exited with this code.
    Exited(i32),
    /// The program was killed by this signal (not by apsctl's timeout).
    Signaled(i32),
    /// The timeout expired and apsctl killed the program and everything it started.
    TimedOut,
}

/// What one stream (stdout or stderr) produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// The kept bytes as text (invalid UTF-8 replaced by U+FFFD), secrets redacted.
    pub text: String,
    /// How many bytes the program wrote in total, kept or not.
    pub total_bytes: u64,
    /// Whether bytes were dropped (over the cap, or the pipe never closed).
    pub truncated: bool,
}

/// The result of a run that started.
#[derive(Debug, Clone)]
pub struct ScriptOutcome {
    /// How the run ended.
    pub status: RunStatus,
    /// The program's standard output.
    pub stdout: Captured,
    /// The program's standard error.
    pub stderr: Captured,
    /// Wall time from start to the end of the process.
    pub duration: Duration,
}

impl ScriptOutcome {
    /// The only success: exit status 0. Signals and timeouts are failures.
    pub fn success(&self) -> bool {
        self.status == RunStatus::Exited(0)
    }
}

/// Why a run could not be carried out (a script that ran and failed is not an error; see
/// [`ScriptOutcome::success`]).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The user is root.
    #[error("refusing to run `{}`", program.display())]
    Root {
        /// The program.
        program: PathBuf,
        /// The refusal.
        #[source]
        source: UserError,
    },
    /// An argument contains a NUL byte and cannot be passed to `execve`.
    #[error("argument {index} for `{}` contains a NUL byte", program.display())]
    NulArgument {
        /// The program.
        program: PathBuf,
        /// Position in [`ScriptRun::args`].
        index: usize,
    },
    /// A variable name is empty or contains `=` or NUL, or its value contains NUL.
    #[error("environment variable `{name}` for `{}` is not valid", program.display())]
    InvalidVariable {
        /// The program.
        program: PathBuf,
        /// The variable name (never the value, which may be a secret).
        name: String,
    },
    /// The working directory does not exist or is not a folder.
    #[error("working directory `{}` for `{}` is not a folder", cwd.display(), program.display())]
    Cwd {
        /// The program.
        program: PathBuf,
        /// The working directory.
        cwd: PathBuf,
    },
    /// The program could not be started (missing, not executable, or the user switch or `chdir`
    /// was refused).
    #[error(
        "cannot start `{}` as user `{user}` in `{}`",
        program.display(),
        cwd.display()
    )]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The user it was to run as.
        user: String,
        /// The working directory.
        cwd: PathBuf,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the program failed.
    #[error("cannot wait for `{}`", program.display())]
    Wait {
        /// The program.
        program: PathBuf,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// Reading the program's output failed.
    #[error("cannot read the output of `{}`", program.display())]
    Capture {
        /// The program.
        program: PathBuf,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// The processes the program started could not be contained (subreaper, cgroup) or killed.
    #[error("cannot contain the processes of `{}`", program.display())]
    Contain {
        /// The program.
        program: PathBuf,
        /// What failed.
        #[source]
        source: ReaperError,
    },
}

/// Runs `run` to the end and returns its status and redacted output.
pub fn run(env: &Env, run: &ScriptRun<'_>) -> Result<ScriptOutcome, RunError> {
    let program = &run.program;
    run.user
        .ensure_not_root()
        .map_err(|source| RunError::Root {
            program: program.clone(),
            source,
        })?;
    check_inputs(run)?;
    if !run.cwd.is_dir() {
        return Err(RunError::Cwd {
            program: program.clone(),
            cwd: run.cwd.clone(),
        });
    }
    let spawn_error = |source| RunError::Spawn {
        program: program.clone(),
        user: run.user.name().to_owned(),
        cwd: run.cwd.clone(),
        source,
    };
    // Checked above: no NUL in the path.
    let cwd = CString::new(run.cwd.as_os_str().as_bytes()).map_err(|_| RunError::Cwd {
        program: program.clone(),
        cwd: run.cwd.clone(),
    })?;
    let contain_error = |source| RunError::Contain {
        program: program.clone(),
        source,
    };
    let mut scope = Scope::new(run.user.uid()).map_err(contain_error)?;
    let identity = Identity {
        // Already that user (apsctl run by the site user itself): no switch, which would need
        // privileges; `ensure_not_root` above still keeps root out.
        switch_user: env.uid() != run.user.uid(),
        uid: Uid::from_raw(run.user.uid()),
        gid: Gid::from_raw(run.user.gid()),
        groups: run
            .user
            .groups()
            .iter()
            .copied()
            .map(Gid::from_raw)
            .collect(),
        cwd,
        cgroup_procs: scope.join_handle().map_err(contain_error)?,
        parent: nix::unistd::getpid(),
    };

    let mut command = env.command(program);
    command
        .env_clear()
        .env("PATH", &run.base_path)
        .env("HOME", run.user.home())
        .env("LANG", CHILD_LANG)
        .envs(run.vars.iter().map(|(k, v)| (k, v)))
        .args(&run.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    identity.install(&mut command);

    let started = Instant::now();
    let (child, leader) = scope.spawn(&mut command).map_err(spawn_error)?;
    // Closes the parent's handle on the cgroup (the hook holds it).
    drop(command);
    let mut running = Running {
        child,
        leader,
        scope,
        program,
        reaped: false,
    };
    let stdout = running.child.stdout.take();
    let stderr = running.child.stderr.take();
    let (done_tx, done_rx) = mpsc::channel();
    let out = Reader::start("stdout", stdout, run.output_cap, done_tx.clone(), program)?;
    let err = Reader::start("stderr", stderr, run.output_cap, done_tx, program)?;

    let timed_out = running.wait_for_exit(started, run.timeout)?;
    // The leader has exited (still unreaped, so its pid, session and group ids cannot be reused):
    // kill and reap whatever remains of the run, then reap the leader.
    running.clean_up()?;
    let raw = running.reap()?;
    let duration = started.elapsed();

    // Wait for both readers to see end of file.
    let grace_end = Instant::now() + READER_GRACE;
    let mut finished = 0;
    while finished < 2 {
        let left = grace_end.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
        finished += 1;
    }

    let status = if timed_out {
        RunStatus::TimedOut
    } else if let Some(code) = raw.code() {
        RunStatus::Exited(code)
    } else {
        RunStatus::Signaled(raw.signal().unwrap_or(0))
    };
    let redactor = Redactor::new(run.secrets.iter().cloned());
    Ok(ScriptOutcome {
        status,
        stdout: out.finish(&redactor, program)?,
        stderr: err.finish(&redactor, program)?,
        duration,
    })
}

/// Rejects arguments and variables that `execve` cannot carry, naming the offender.
fn check_inputs(run: &ScriptRun<'_>) -> Result<(), RunError> {
    if let Some(index) = run.args.iter().position(|a| a.contains('\0')) {
        return Err(RunError::NulArgument {
            program: run.program.clone(),
            index,
        });
    }
    let bad_var = run.vars.iter().find(|(name, value)| {
        name.is_empty() || name.contains(['=', '\0']) || value.contains('\0')
    });
    if let Some((name, _)) = bad_var {
        return Err(RunError::InvalidVariable {
            program: run.program.clone(),
            name: name.replace('\0', "\\0"),
        });
    }
    if run.base_path.contains('\0') {
        return Err(RunError::InvalidVariable {
            program: run.program.clone(),
            name: "PATH".into(),
        });
    }
    if run.cwd.as_os_str().as_bytes().contains(&0) {
        return Err(RunError::Cwd {
            program: run.program.clone(),
            cwd: run.cwd.clone(),
        });
    }
    Ok(())
}

/// The umask scripts run under, whatever apsctl's own is (`022`: what they create is not
/// writable by group or others unless they choose so).
const SCRIPT_UMASK: Mode = Mode::S_IWGRP.union(Mode::S_IWOTH);

/// The identity and place the child takes on between `fork` and `exec`.
struct Identity {
    switch_user: bool,
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
    cwd: CString,
    /// The run cgroup's `cgroup.procs`, opened for writing, when the run has a cgroup.
    cgroup_procs: Option<OwnedFd>,
    /// apsctl's pid, to notice that it died before the death signal was armed.
    parent: Pid,
}

impl Identity {
    /// Makes the child join the run's cgroup, leave apsctl's session and terminal, drop to the site
    /// user, arm its death signal and enter its working directory.
    ///
    /// `CommandExt::uid`/`gid` cannot be used: std runs `pre_exec` hooks after its own `setuid`,
    /// when `setgroups` is no longer permitted, and without a `groups` call (unstable) std clears
    /// the supplementary groups. So the hook does all of it, in the required order: join the
    /// cgroup (needs root), `setsid` (a new session has no controlling terminal, so a script cannot
    /// push input into the admin's shell with `TIOCSTI`; the session leader also leads its process
    /// group), umask, groups, gid, uid, the death signal (a credential change clears it), then
    /// `chdir` (as the user, so a folder the user cannot enter fails the spawn).
    fn install(self, command: &mut std::process::Command) {
        let Self {
            switch_user,
            uid,
            gid,
            groups,
            cwd,
            cgroup_procs,
            parent,
        } = self;
        let hook = move || -> std::io::Result<()> {
            // Only async-signal-safe work here: the child of a multi-threaded parent may call
            // nothing that allocates or takes locks. Each step is a plain system call on memory
            // prepared before the fork (`groups`, `cwd`, the open `cgroup_procs`), and `Errno`
            // converts to `io::Error` without allocating.
            if let Some(procs) = &cgroup_procs {
                // `0` moves the writing process.
                nix::unistd::write(procs, b"0")?;
            }
            nix::unistd::setsid()?;
            nix::sys::stat::umask(SCRIPT_UMASK);
            if switch_user {
                nix::unistd::setgroups(&groups)?;
                nix::unistd::setgid(gid)?;
                nix::unistd::setuid(uid)?;
            }
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // apsctl died before the death signal was armed: the child was re-parented already.
            if nix::unistd::getppid() != parent {
                return Err(Errno::ESRCH.into());
            }
            nix::unistd::chdir(cwd.as_c_str())?;
            Ok(())
        };
        #[expect(
            unsafe_code,
            reason = "pre_exec is unsafe because the hook runs between fork and exec; it only \
                      makes async-signal-safe system calls on memory prepared before the fork"
        )]
        // SAFETY: see the comment in `hook`; it touches no locks, allocates nothing and does not
        // unwind.
        unsafe {
            command.pre_exec(hook);
        }
    }
}

/// A started child; dropping it before [`Running::reap`] kills and reaps everything of the run,
/// so an error path never leaves a script running.
struct Running<'p> {
    child: Child,
    leader: Pid,
    scope: Scope,
    program: &'p Path,
    reaped: bool,
}

impl Running<'_> {
    /// Waits until the leader exits (without reaping it); when the timeout expires first, kills
    /// the run and returns `true` once the leader is dead.
    fn wait_for_exit(&mut self, started: Instant, timeout: Duration) -> Result<bool, RunError> {
        let deadline = started.checked_add(timeout);
        let mut timed_out = false;
        let mut pause = Duration::from_millis(1);
        loop {
            if self.leader_exited()? {
                return Ok(timed_out);
            }
            let now = Instant::now();
            if let Some(deadline) = deadline.filter(|_| !timed_out) {
                if now >= deadline {
                    self.scope
                        .kill()
                        .map_err(|source| self.contain_error(source))?;
                    timed_out = true;
                    pause = Duration::from_millis(1);
                    continue;
                }
                pause = pause.min(deadline - now);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Tells whether the leader has exited, leaving it unreaped.
    fn leader_exited(&self) -> Result<bool, RunError> {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(self.leader), flags) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err(RunError::Wait {
                program: self.program.to_path_buf(),
                source: e.into(),
            }),
        }
    }

    /// Kills and reaps every leftover process of the run (the leader has exited).
    fn clean_up(&mut self) -> Result<(), RunError> {
        self.scope
            .clean_up()
            .map_err(|source| self.contain_error(source))
    }

    /// Collects the leader's exit status.
    fn reap(&mut self) -> Result<std::process::ExitStatus, RunError> {
        let status = self
            .scope
            .reap_leader(&mut self.child)
            .map_err(|source| RunError::Wait {
                program: self.program.to_path_buf(),
                source,
            })?;
        self.reaped = true;
        Ok(status)
    }

    fn contain_error(&self, source: ReaperError) -> RunError {
        RunError::Contain {
            program: self.program.to_path_buf(),
            source,
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if !self.reaped {
            // Best effort on an error path; the error being returned matters more. The leader
            // is unreaped, so its pid is still its own.
            self.scope.kill().ok();
            nix::sys::signal::kill(self.leader, Signal::SIGKILL).ok();
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
            while waitid(Id::Pid(self.leader), flags) == Err(Errno::EINTR) {}
            self.scope.clean_up().ok();
            self.scope.reap_leader(&mut self.child).ok();
        }
    }
}

/// Bytes read from one pipe so far, shared between the reader thread and [`run`].
#[derive(Default)]
struct Capture {
    kept: Vec<u8>,
    total: u64,
    error: Option<std::io::Error>,
    closed: bool,
}

/// A thread draining one output pipe.
struct Reader {
    shared: Arc<Mutex<Capture>>,
}

impl Reader {
    fn start(
        name: &str,
        pipe: Option<impl Read + Send + 'static>,
        cap: usize,
        done: mpsc::Sender<()>,
        program: &Path,
    ) -> Result<Self, RunError> {
        let shared = Arc::new(Mutex::new(Capture::default()));
        let Some(mut pipe) = pipe else {
            // Not piped: nothing to read.
            lock(&shared).closed = true;
            done.send(()).ok();
            return Ok(Self { shared });
        };
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(format!("script-{name}"))
            .spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match pipe.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            let mut capture = lock(&thread_shared);
                            let room = cap.saturating_sub(capture.kept.len());
                            capture.kept.extend_from_slice(&buf[..n.min(room)]);
                            capture.total += n as u64;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            lock(&thread_shared).error = Some(e);
                            break;
                        }
                    }
                }
                lock(&thread_shared).closed = true;
                done.send(()).ok();
            })
            .map_err(|source| RunError::Capture {
                program: program.to_path_buf(),
                source,
            })?;
        Ok(Self { shared })
    }

    /// Takes what was read so far as redacted text.
    fn finish(self, redactor: &Redactor, program: &Path) -> Result<Captured, RunError> {
        let mut capture = lock(&self.shared);
        if let Some(source) = capture.error.take() {
            return Err(RunError::Capture {
                program: program.to_path_buf(),
                source,
            });
        }
        let kept = std::mem::take(&mut capture.kept);
        let truncated = !capture.closed || capture.total > kept.len() as u64;
        let text = String::from_utf8_lossy(&kept);
        let text = if truncated {
            redactor.apply_cut(&text)
        } else {
            redactor.apply(&text)
        };
        Ok(Captured {
            text,
            total_bytes: capture.total,
            truncated,
        })
    }
}

/// Locks `m`, ignoring poisoning (a reader thread cannot leave the data half-updated).
fn lock(m: &Mutex<Capture>) -> std::sync::MutexGuard<'_, Capture> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
