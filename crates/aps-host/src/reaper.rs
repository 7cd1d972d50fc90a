//! Makes sure no process a script run started outlives the run, even when several runs overlap in
//! one apsctl process.
//!
//! Main decision: each run gets its own cgroup v2 when apsctl can create one next to itself (in
//! the cgroup it runs in, found through `/proc/self/cgroup` and the cgroup v2 mount in
//! `/proc/self/mountinfo`). The script's first process joins it between `fork` and `exec`, before
//! it drops root, so nothing the script starts can be outside it, and an unprivileged script cannot
//! leave it. At the end of the run the cgroup is killed whole (`cgroup.kill`, or `SIGKILL` to every
//! pid in `cgroup.procs` on kernels before 5.14) until it is empty, then removed. A run cgroup is
//! named `apsctl-run-<pid>-<n>` and its folder is `flock`ed while the run lives; a later run (of any
//! apsctl process) kills and removes run cgroups whose lock is free and whose owner pid is gone, so
//! what a killed apsctl left behind is cleaned up too.
//!
//! apsctl is also a child subreaper (`PR_SET_CHILD_SUBREAPER`, set once by the first run): a
//! process whose parent dies is re-parented to apsctl instead of to init. That makes every
//! leftover process of a run a child of apsctl once its ancestors are gone, which is what the
//! fallback without cgroups relies on, and lets apsctl reap the zombies cgroup kills leave behind.
//! Without a usable cgroup the run's process group is killed, then apsctl kills and reaps, until
//! none is left, each of its own children that it attributes to the run:
//!
//! - the leaders of runs in progress (registered at spawn, under the same lock) are never touched:
//!   each run reaps its own;
//! - a process in the run's session (its session id is the leader's pid, which cannot be reused
//!   while the leader is still unreaped, as it is during the clean-up) belongs to the run;
//! - a process in apsctl's own session (a database client, for example) or in the session of
//!   another run in progress does not;
//! - any other one (it left the run's session with `setsid`) belongs to the run when its real uid
//!   is the run's user.
//!
//! Known gaps, fallback only: it cannot tell which of two overlapping runs of the *same* system user
//! a process that left its session came from, so such a process is killed when the first of those
//! runs ends; a process that changed its real uid (a set-uid program such as `sudo`) and left the
//! run's session is not attributed at all; a child apsctl started outside the runner that called
//! `setsid` and runs as the run's user would be attributed. With or without cgroups: zombies of
//! processes that were not started by a run (orphans of database clients, say) are never reaped
//! (apsctl cannot tell them from the children other threads are about to wait for); a zombie
//! re-parented to apsctl in the instant after a run's clean-up looked is reaped by the next run of
//! that user; a run left by a killed apsctl is cleaned up only by an apsctl in the same cgroup, only
//! with cgroups (without them its leftovers were re-parented to init), and not while the dead
//! owner's pid is in use again.
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::{Pid, Uid};

/// How long the processes of an ended run may take to die once killed before the clean-up gives
/// up with an error.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// Name prefix of the cgroups apsctl creates for runs.
const RUN_PREFIX: &str = "apsctl-run-";

/// Leaders of the runs in progress in this process: spawned and not yet reaped.
static LIVE_LEADERS: Mutex<Vec<Pid>> = Mutex::new(Vec::new());

/// The outcome of making this process a child subreaper, done once.
static SUBREAPER: OnceLock<Result<(), Errno>> = OnceLock::new();

/// Why the processes of a run could not be contained or cleaned up.
#[derive(Debug, thiserror::Error)]
pub enum ReaperError {
    /// `PR_SET_CHILD_SUBREAPER` was refused.
    #[error("cannot make apsctl a child subreaper")]
    Subreaper {
        /// The system error.
        #[source]
        source: Errno,
    },
    /// A file of the run's cgroup could not be opened, read or written, or the cgroup could not be
    /// removed.
    #[error("cannot use the run cgroup `{}`", path.display())]
    Cgroup {
        /// The file or folder.
        path: PathBuf,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// The run's cgroup still held processes [`KILL_GRACE`] after they were killed.
    #[error("the run cgroup `{}` still holds processes after they were killed", path.display())]
    CgroupBusy {
        /// The cgroup folder.
        path: PathBuf,
    },
    /// `/proc` could not be listed.
    #[error("cannot list the processes in `/proc`")]
    Proc {
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// apsctl's own session id could not be read.
    #[error("cannot read the session id of apsctl itself")]
    OwnSession {
        /// The system error.
        #[source]
        source: Errno,
    },
    /// A leftover process (or, without a cgroup, the run's process group) could not be killed.
    #[error("cannot kill process {pid}, a leftover of the run")]
    Kill {
        /// The process.
        pid: i32,
        /// The system error.
        #[source]
        source: Errno,
    },
    /// A dead leftover process could not be reaped.
    #[error("cannot reap process {pid}, a leftover of the run")]
    Reap {
        /// The process.
        pid: i32,
        /// The system error.
        #[source]
        source: Errno,
    },
    /// Leftover processes were still alive [`KILL_GRACE`] after they were killed.
    #[error("processes {pids:?}, leftovers of the run, are still alive after they were killed")]
    Survivors {
        /// The processes.
        pids: Vec<i32>,
    },
}

/// The processes of one run: its cgroup, when it has one, and its leader once spawned.
pub(crate) struct Scope {
    uid: Uid,
    cgroup: Option<RunCgroup>,
    leader: Option<Pid>,
}

impl Scope {
    /// Prepares a run for user `uid`: makes apsctl a subreaper (once), cleans up run cgroups left by
    /// dead apsctl processes, and creates the run's cgroup when cgroup v2 is usable.
    pub(crate) fn new(uid: u32) -> Result<Self, ReaperError> {
        ensure_subreaper()?;
        let cgroup = own_cgroup_dir().and_then(|parent| {
            clean_stale(&parent);
            RunCgroup::create(&parent)
        });
        Ok(Self {
            uid: Uid::from_raw(uid),
            cgroup,
            leader: None,
        })
    }

    /// A write handle on the run cgroup's `cgroup.procs` for the child to join it with (writing
    /// `0` moves the writer), or `None` without a cgroup. The handle is close-on-exec.
    pub(crate) fn join_handle(&self) -> Result<Option<OwnedFd>, ReaperError> {
        let Some(cgroup) = &self.cgroup else {
            return Ok(None);
        };
        let path = cgroup.path.join("cgroup.procs");
        let file = fs_err::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|source| ReaperError::Cgroup { path, source })?;
        Ok(Some(OwnedFd::from(file.into_parts().0)))
    }

    /// Spawns the run's leader and registers it, under the registry lock so that no other run's
    /// clean-up can mistake it for a leftover before it is registered. Returns it with its pid.
    pub(crate) fn spawn(&mut self, command: &mut Command) -> std::io::Result<(Child, Pid)> {
        let mut live = live_leaders();
        let mut child = command.spawn()?;
        let pid = match i32::try_from(child.id()) {
            Ok(pid) => Pid::from_raw(pid),
            Err(e) => {
                // Cannot happen on Linux (pids fit `pid_t`); do not leave the child running.
                child.kill().ok();
                child.wait().ok();
                return Err(std::io::Error::other(e));
            }
        };
        live.push(pid);
        self.leader = Some(pid);
        Ok((child, pid))
    }

    /// Sends `SIGKILL` to every process of the run, the leader included (the timeout): the whole
    /// cgroup, or the leader's process group without one.
    pub(crate) fn kill(&self) -> Result<(), ReaperError> {
        if let Some(cgroup) = &self.cgroup {
            return cgroup.signal();
        }
        let Some(leader) = self.leader else {
            return Ok(());
        };
        // The leader is unreaped, so its group id cannot have been reused.
        match killpg(leader, Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(source) => Err(ReaperError::Kill {
                pid: leader.as_raw(),
                source,
            }),
        }
    }

    /// Once the leader has exited (and before it is reaped): kills and reaps every leftover
    /// process of the run, and removes its cgroup.
    pub(crate) fn clean_up(&mut self) -> Result<(), ReaperError> {
        let Some(leader) = self.leader else {
            return Ok(());
        };
        if let Some(cgroup) = self.cgroup.take() {
            let result = cgroup
                .kill_all()
                // Everything of the run is dead; what this finds alive belongs to another run.
                .and_then(|()| sweep(leader, self.uid, Sweep::ReapOnly))
                .and_then(|()| cgroup.remove());
            if result.is_err() {
                // Kept for the best-effort removal when the scope is dropped.
                self.cgroup = Some(cgroup);
            }
            result
        } else {
            self.kill()?;
            sweep(leader, self.uid, Sweep::KillAndReap)
        }
    }

    /// Reaps the exited leader and forgets it (under the registry lock, so that its pid is
    /// registered for as long as it is not free).
    pub(crate) fn reap_leader(&mut self, child: &mut Child) -> std::io::Result<ExitStatus> {
        let mut live = live_leaders();
        let status = child.wait()?;
        if let Some(leader) = self.leader.take() {
            forget(&mut live, leader);
        }
        Ok(status)
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if let Some(leader) = self.leader.take() {
            forget(&mut live_leaders(), leader);
        }
        if let Some(cgroup) = self.cgroup.take() {
            // Best effort on an error path: an empty cgroup is removed, a full one is left to the
            // stale clean-up of a later run.
            cgroup.remove().ok();
        }
    }
}

/// Removes one registration of `pid`.
fn forget(live: &mut Vec<Pid>, pid: Pid) {
    if let Some(i) = live.iter().position(|&p| p == pid) {
        live.swap_remove(i);
    }
}

/// Locks the registry of live leaders, ignoring poisoning (the list stays consistent).
fn live_leaders() -> MutexGuard<'static, Vec<Pid>> {
    LIVE_LEADERS.lock().unwrap_or_else(PoisonError::into_inner)
}

fn ensure_subreaper() -> Result<(), ReaperError> {
    (*SUBREAPER.get_or_init(|| nix::sys::prctl::set_child_subreaper(true)))
        .map_err(|source| ReaperError::Subreaper { source })
}

/// What a sweep does with the live processes it attributes to the run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sweep {
    /// Kill them (no cgroup did).
    KillAndReap,
    /// Leave them (the run's cgroup was emptied, so they belong to another run).
    ReapOnly,
}

/// Kills (per `mode`) and reaps the children of apsctl attributed to the run led by `leader`,
/// until none is left alive.
fn sweep(leader: Pid, uid: Uid, mode: Sweep) -> Result<(), ReaperError> {
    let deadline = Instant::now() + KILL_GRACE;
    let mut pause = Duration::from_millis(1);
    loop {
        let alive = sweep_once(leader, uid, mode)?;
        if alive.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ReaperError::Survivors {
                pids: alive.iter().map(|p| p.as_raw()).collect(),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// One pass: reaps the attributed zombies and kills the attributed live processes (which the next
/// pass reaps; their children are re-parented to apsctl meanwhile). Returns the killed ones.
fn sweep_once(leader: Pid, uid: Uid, mode: Sweep) -> Result<Vec<Pid>, ReaperError> {
    // Under the registry lock: a leader spawned meanwhile is registered before it is seen.
    let live = live_leaders();
    let me = nix::unistd::getpid();
    let own_session =
        nix::unistd::getsid(None).map_err(|source| ReaperError::OwnSession { source })?;
    let mut killed = Vec::new();
    for child in children_of(me)? {
        let belongs = if live.contains(&child.pid) {
            false
        } else if child.session == leader {
            true
        } else if child.session == own_session || live.contains(&child.session) {
            false
        } else {
            child.uid == uid
        };
        if !belongs {
            continue;
        }
        if child.zombie {
            // Our own unreaped child: its pid cannot have been reused. Another run's sweep may
            // have reaped it first.
            match waitpid(child.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(_) | Err(Errno::ECHILD) => {}
                Err(source) => {
                    return Err(ReaperError::Reap {
                        pid: child.pid.as_raw(),
                        source,
                    });
                }
            }
        } else if mode == Sweep::KillAndReap {
            match kill(child.pid, Signal::SIGKILL) {
                Ok(()) | Err(Errno::ESRCH) => killed.push(child.pid),
                Err(source) => {
                    return Err(ReaperError::Kill {
                        pid: child.pid.as_raw(),
                        source,
                    });
                }
            }
        }
    }
    Ok(killed)
}

/// A child of apsctl as `/proc` shows it.
struct ChildProcess {
    pid: Pid,
    session: Pid,
    zombie: bool,
    /// The real uid.
    uid: Uid,
}

/// The children of process `parent`, read from `/proc/<pid>/stat` and `status` (processes that
/// vanish while being read are skipped).
fn children_of(parent: Pid) -> Result<Vec<ChildProcess>, ReaperError> {
    let entries = fs_err::read_dir("/proc").map_err(|source| ReaperError::Proc { source })?;
    let mut children = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ReaperError::Proc { source })?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs_err::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp session …`; comm may contain anything, so split after the
        // last `)`.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().take(4).collect();
        let [state, parent_pid, _group, session] = fields[..] else {
            continue;
        };
        if parent_pid.parse::<i32>().ok() != Some(parent.as_raw()) {
            continue;
        }
        let Ok(session) = session.parse::<i32>() else {
            continue;
        };
        let Ok(status) = fs_err::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let Some(uid) = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next())
            .and_then(|real| real.parse::<u32>().ok())
        else {
            continue;
        };
        children.push(ChildProcess {
            pid: Pid::from_raw(pid),
            session: Pid::from_raw(session),
            zombie: state == "Z",
            uid: Uid::from_raw(uid),
        });
    }
    Ok(children)
}

/// One run's cgroup, locked while the run lives.
struct RunCgroup {
    path: PathBuf,
    _lock: Flock<std::fs::File>,
}

impl RunCgroup {
    /// Creates and locks a new run cgroup under `parent`; `None` when cgroups cannot be used
    /// there (not root, no cgroup v2, limits reached).
    fn create(parent: &Path) -> Option<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let me = std::process::id();
        for _ in 0..16 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = parent.join(format!("{RUN_PREFIX}{me}-{n}"));
            match fs_err::create_dir(&path) {
                Ok(()) => {}
                // Left by an earlier process with this pid and still locked or busy.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(_) => return None,
            }
            let Some(lock) = lock_dir(&path) else {
                fs_err::remove_dir(&path).ok();
                return None;
            };
            return Some(Self { path, _lock: lock });
        }
        None
    }

    /// Sends `SIGKILL` to every process in the cgroup once.
    fn signal(&self) -> Result<(), ReaperError> {
        signal_cgroup(&self.path)
    }

    /// Kills the cgroup's processes until it is empty.
    fn kill_all(&self) -> Result<(), ReaperError> {
        empty_cgroup(&self.path)
    }

    /// Removes the (empty) cgroup.
    fn remove(&self) -> Result<(), ReaperError> {
        fs_err::remove_dir(&self.path).map_err(|source| ReaperError::Cgroup {
            path: self.path.clone(),
            source,
        })
    }
}

/// Opens folder `path` and takes its `flock` without waiting.
fn lock_dir(path: &Path) -> Option<Flock<std::fs::File>> {
    let dir = fs_err::File::open(path).ok()?.into_parts().0;
    Flock::lock(dir, FlockArg::LockExclusiveNonblock).ok()
}

/// Sends `SIGKILL` to every process in the cgroup at `path`: through `cgroup.kill` (Linux 5.14),
/// else to each pid of `cgroup.procs` (a pid that exits and is reused between the read and the
/// kill would be hit; only on those old kernels).
fn signal_cgroup(path: &Path) -> Result<(), ReaperError> {
    let kill_file = path.join("cgroup.kill");
    match fs_err::write(&kill_file, "1") {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && path.is_dir() => {}
        Err(source) => {
            return Err(ReaperError::Cgroup {
                path: kill_file,
                source,
            });
        }
    }
    let procs = path.join("cgroup.procs");
    let pids = fs_err::read_to_string(&procs).map_err(|source| ReaperError::Cgroup {
        path: procs,
        source,
    })?;
    for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        match kill(Pid::from_raw(pid), Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(source) => return Err(ReaperError::Kill { pid, source }),
        }
    }
    Ok(())
}

/// Kills the processes of the cgroup at `path` until `cgroup.events` says it is empty.
fn empty_cgroup(path: &Path) -> Result<(), ReaperError> {
    let deadline = Instant::now() + KILL_GRACE;
    let mut pause = Duration::from_millis(1);
    loop {
        signal_cgroup(path)?;
        if !populated(path)? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ReaperError::CgroupBusy {
                path: path.to_path_buf(),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Tells whether the cgroup at `path` (or one below it) still holds a live process.
fn populated(path: &Path) -> Result<bool, ReaperError> {
    let events = path.join("cgroup.events");
    let text = fs_err::read_to_string(&events).map_err(|source| ReaperError::Cgroup {
        path: events.clone(),
        source,
    })?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("populated "))
        .is_none_or(|v| v.trim() != "0"))
}

/// Kills and removes the run cgroups under `parent` left by apsctl processes that are gone: their
/// lock is free and their owner pid does not exist. Best effort: anything that fails stays for a
/// later run.
fn clean_stale(parent: &Path) {
    let Ok(entries) = fs_err::read_dir(parent) else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix(RUN_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(owner_pid) = i32::try_from(owner) else {
            continue;
        };
        // An owner that still exists may be creating the cgroup (before it takes the lock).
        if owner == me || kill(Pid::from_raw(owner_pid), None) != Err(Errno::ESRCH) {
            continue;
        }
        let path = entry.path();
        let Some(_lock) = lock_dir(&path) else {
            continue;
        };
        if empty_cgroup(&path).is_ok() {
            fs_err::remove_dir(&path).ok();
        }
    }
}

/// The cgroup v2 folder this process runs in, when cgroup v2 is mounted and the folder is visible
/// through the mount.
fn own_cgroup_dir() -> Option<PathBuf> {
    let mountinfo = fs_err::read_to_string("/proc/self/mountinfo").ok()?;
    // `id parent dev root mountpoint options [optional…] - fstype source superoptions`
    let (root, mountpoint) = mountinfo.lines().find_map(|line| {
        let (mount, fs) = line.split_once(" - ")?;
        if fs.split(' ').next() != Some("cgroup2") {
            return None;
        }
        let mut fields = mount.split(' ').skip(3);
        Some((unescape(fields.next()?), unescape(fields.next()?)))
    })?;
    let cgroups = fs_err::read_to_string("/proc/self/cgroup").ok()?;
    let own = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
    let relative = Path::new(own).strip_prefix(&root).ok()?;
    let dir = Path::new(&mountpoint).join(relative);
    dir.is_dir().then_some(dir)
}

/// Undoes the octal escapes (`\040` for a space) of `/proc/self/mountinfo` fields.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .map(|d| d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0')));
        if let Some(byte) = octal.and_then(|v| u8::try_from(v).ok()) {
            out.push(byte);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/sys/fs/cgroup"), "/sys/fs/cgroup");
        assert_eq!(unescape(r"/mnt/with\040space"), "/mnt/with space");
        assert_eq!(unescape(r"/a\134b"), r"/a\b");
        assert_eq!(unescape(r"/odd\04"), r"/odd\04");
    }
}
