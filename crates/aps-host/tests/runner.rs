//! Runs real processes through `aps_host::runner` as a real unprivileged system user and checks
//! the D7 process contract: identity, clean environment, argv without a shell, cwd, exit status,
//! signals, timeouts, output caps and redaction; and the hardening of issue 7: no controlling
//! terminal, umask `022`, and nothing a script starts outlives its run, with or without cgroups.
//!
//! Tests that need a different process (a controlling terminal, umask `000`, no cgroup v2 mount,
//! an apsctl to kill) run this binary again for one test (see [`rerun`]).
//!
//! Needs root (to create the `apsctl-test` user and switch to it), a writable cgroup v2,
//! `/usr/bin/php`, `/usr/bin/perl`, and util-linux `setsid` and `unshare`.
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aps_host::env::Env;
use aps_host::runner::{self, RunError, RunStatus, ScriptOutcome, ScriptRun};
use aps_host::user::{SystemUser, ensure_test_user};

const SH: &str = "/bin/sh";
const PHP: &str = "/usr/bin/php";
/// The timeout of test scripts unless a test chooses one.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A scratch folder the test user can enter and read.
struct Fixture {
    env: Env,
    user: SystemUser,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let env = Env::from_process();
        let user = ensure_test_user(&env, "apsctl-test").expect("test user");
        let dir = tempfile::tempdir().expect("tempdir");
        fs_err::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Self { env, user, dir }
    }

    /// Writes a script readable by everyone (not executable: the interpreter runs it).
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        fs_err::write(&path, body).expect("write script");
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        path
    }

    /// A new folder inside the fixture that the test user may write to (for pid files).
    fn user_dir(&self) -> PathBuf {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("shared-{n}"));
        fs_err::create_dir_all(&path).expect("mkdir");
        nix::unistd::chown(
            &path,
            Some(nix::unistd::Uid::from_raw(self.user.uid())),
            Some(nix::unistd::Gid::from_raw(self.user.gid())),
        )
        .expect("chown");
        path
    }

    fn sh(&self, body: &str, action: &str) -> ScriptRun<'_> {
        let script = self.script("configure", body);
        let mut run =
            ScriptRun::script(Path::new(SH), &script, action, self.dir.path(), &self.user);
        // A test whose script waits for something that never comes fails instead of hanging.
        run.timeout = TEST_TIMEOUT;
        run
    }

    fn run(&self, run: &ScriptRun<'_>) -> ScriptOutcome {
        runner::run(&self.env, run).expect("run")
    }
}

/// Tells whether `pid` is gone or only a zombie (dead, waiting to be reaped by its new parent).
fn is_dead(pid: u32) -> bool {
    match fs_err::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // Format: `pid (comm) state …`; comm may contain spaces, so split after the last `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn wait_dead(pid: u32) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if is_dead(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Makes `user` a member of a supplementary group (created when missing) and looks it up again.
fn with_extra_group(env: &Env, user: &SystemUser) -> SystemUser {
    let group = "apsctl-test-extra";
    let status = env
        .command("groupadd")
        .args(["--system", "--force", group])
        .status()
        .expect("groupadd");
    assert!(status.success(), "groupadd {group}");
    let status = env
        .command("usermod")
        .args(["--append", "--groups", group, user.name()])
        .status()
        .expect("usermod");
    assert!(status.success(), "usermod");
    SystemUser::lookup(user.name()).expect("lookup")
}

#[test]
fn runs_as_the_site_user_with_its_groups() {
    let mut fx = Fixture::new();
    fx.user = with_extra_group(&fx.env, &fx.user);
    assert!(fx.user.groups().len() >= 2, "{:?}", fx.user.groups());
    let out = fx.run(&fx.sh("id -u; id -g; id -G", "install"));
    assert!(out.success(), "{out:?}");
    let lines: Vec<&str> = out.stdout.text.lines().collect();
    assert_eq!(lines[0], fx.user.uid().to_string());
    assert_ne!(lines[0], "0");
    assert_eq!(lines[1], fx.user.gid().to_string());
    let mut groups: Vec<u32> = lines[2]
        .split(' ')
        .map(|g| g.parse().expect("gid"))
        .collect();
    groups.sort_unstable();
    assert_eq!(groups, fx.user.groups());
    assert!(
        !groups.contains(&0),
        "root's group must not stick: {groups:?}"
    );
}

#[test]
fn environment_is_rebuilt_from_scratch() {
    let fx = Fixture::new();
    // cargo sets this for the test process; the child must not see it.
    assert!(fx.env.var("CARGO_MANIFEST_DIR").is_some());
    let run = ScriptRun::program(Path::new("/usr/bin/env"), fx.dir.path(), &fx.user)
        .var("SETTINGS_title", "My $HOME `blog`")
        .var("WEB__wp-content_DIR", "/srv/www/wp-content");
    let out = fx.run(&run);
    assert!(out.success(), "{out:?}");
    let mut lines: Vec<&str> = out.stdout.text.lines().collect();
    lines.sort_unstable();
    let home = format!("HOME={}", fx.user.home().display());
    assert_eq!(
        lines,
        [
            home.as_str(),
            "LANG=C.UTF-8",
            "PATH=/usr/local/bin:/usr/bin:/bin",
            "SETTINGS_title=My $HOME `blog`",
            "WEB__wp-content_DIR=/srv/www/wp-content",
        ]
    );
}

#[test]
fn argv_arrives_intact_without_a_shell() {
    let fx = Fixture::new();
    let tricky = "two words; $(touch /tmp/pwned) `id` \"quoted\" 'single' \\ $HOME\nline";
    let run = fx
        .sh(
            "printf '<%s>\\n' \"$0\"; for a in \"$@\"; do printf '[%s]\\n' \"$a\"; done",
            "upgrade",
        )
        .arg("5.2.3")
        .arg(tricky)
        .arg("");
    let out = fx.run(&run);
    assert!(out.success(), "{out:?}");
    let script = fx.dir.path().join("configure");
    let expected = format!(
        "<{}>\n[upgrade]\n[5.2.3]\n[{tricky}]\n[]\n",
        script.display()
    );
    assert_eq!(out.stdout.text, expected);
}

#[test]
fn runs_in_the_given_folder_and_reads_dev_null() {
    let fx = Fixture::new();
    let out = fx.run(&fx.sh(
        "pwd -P; readlink /proc/self/fd/0; cat; echo end",
        "configure",
    ));
    assert!(out.success(), "{out:?}");
    let canon = fs_err::canonicalize(fx.dir.path()).expect("canon");
    assert_eq!(
        out.stdout.text,
        format!("{}\n/dev/null\nend\n", canon.display())
    );
}

#[test]
fn exit_status_is_the_success_signal() {
    let fx = Fixture::new();
    let ok = fx.run(&fx.sh(
        "echo 'Warning: this is not a failure' >&2; exit 0",
        "install",
    ));
    assert_eq!(ok.status, RunStatus::Exited(0));
    assert!(ok.success());
    assert_eq!(ok.stderr.text, "Warning: this is not a failure\n");

    let failed = fx.run(&fx.sh("echo Success; exit 3", "install"));
    assert_eq!(failed.status, RunStatus::Exited(3));
    assert!(!failed.success());
    assert_eq!(failed.stdout.text, "Success\n");
}

#[test]
fn death_by_signal_is_a_failure() {
    let fx = Fixture::new();
    let out = fx.run(&fx.sh("kill -TERM $$; sleep 5", "remove"));
    assert_eq!(out.status, RunStatus::Signaled(15));
    assert!(!out.success());
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let fx = Fixture::new();
    let mut run = fx.sh("echo $$; sleep 300 & echo $!; wait", "install");
    run.timeout = Duration::from_millis(700);
    let started = Instant::now();
    let out = fx.run(&run);
    assert_eq!(out.status, RunStatus::TimedOut);
    assert!(!out.success());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(out.duration >= Duration::from_millis(700));
    let pids: Vec<u32> = out
        .stdout
        .text
        .lines()
        .map(|l| l.parse().expect("pid"))
        .collect();
    assert_eq!(pids.len(), 2, "{out:?}");
    for pid in pids {
        assert!(
            wait_dead(pid),
            "process {pid} of the group survived the timeout"
        );
    }
}

#[test]
fn leftover_background_processes_are_killed_when_the_script_ends() {
    let fx = Fixture::new();
    let started = Instant::now();
    let out = fx.run(&fx.sh("sleep 300 & echo $!; exit 0", "install"));
    assert!(out.success(), "{out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let pid: u32 = out.stdout.text.trim().parse().expect("pid");
    assert!(
        wait_dead(pid),
        "background process {pid} outlived the script"
    );
}

#[test]
fn a_pipe_held_open_outside_the_run_cannot_hold_the_run_forever() {
    let fx = Fixture::new();
    let shared = fx.user_dir();
    // The script waits until the test process itself holds its stdout pipe open (a process no
    // cleanup of the run may kill), then exits.
    let run = fx
        .sh(
            r#"echo $$ > "$2/pid.tmp" && mv "$2/pid.tmp" "$2/pid"
while [ ! -e "$2/go" ]; do sleep 0.05; done
echo done"#,
            "install",
        )
        .arg(shared.to_string_lossy());
    let out = std::thread::scope(|scope| {
        let running = scope.spawn(|| fx.run(&run));
        let pid = wait_pid(&shared.join("pid"));
        let held = fs_err::OpenOptions::new()
            .write(true)
            .open(format!("/proc/{pid}/fd/1"))
            .expect("open the script's stdout pipe");
        fs_err::write(shared.join("go"), "").expect("go");
        let out = running.join().expect("run thread");
        drop(held);
        out
    });
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout.text, "done\n");
    assert!(
        out.stdout.truncated,
        "the pipe never closed, so the output may be incomplete"
    );
}

// Issue 7 (hardening of the script runner): scripts get no controlling terminal, a sane umask,
// and nothing they start outlives the run.

/// A script that double-forks and calls `setsid` on the way, so its `sleep 300` is in no
/// process group or session of the run; it prints the sleep's pid. `$2` (after the action) is a
/// folder the user may write to.
const ESCAPE: &str = r#"f="$2/escaped"
setsid sh -c 'sleep 300 </dev/null >/dev/null 2>&1 & echo $! > "$1.tmp" && mv "$1.tmp" "$1"' sh "$f" &
while [ ! -s "$f" ]; do sleep 0.05; done
cat "$f"
"#;

#[test]
fn issue_7_a_descendant_that_left_the_session_dies_when_the_script_exits() {
    let fx = Fixture::new();
    escaped_descendant_dies_on_exit(&fx);
}

#[test]
fn issue_7_a_descendant_that_left_the_session_dies_on_timeout() {
    let fx = Fixture::new();
    escaped_descendant_dies_on_timeout(&fx);
}

#[test]
fn issue_7_an_escaped_process_holding_the_output_pipe_is_killed() {
    let fx = Fixture::new();
    let shared = fx.user_dir();
    // The escaped process keeps stdout and stderr open: killing it is what closes the pipes.
    let run = fx
        .sh(
            r#"f="$2/escaped"
setsid sh -c 'echo $$ > "$1.tmp" && mv "$1.tmp" "$1" && exec sleep 300' sh "$f" &
while [ ! -s "$f" ]; do sleep 0.05; done
cat "$f""#,
            "install",
        )
        .arg(shared.to_string_lossy());
    let out = fx.run(&run);
    let pid = parse_pid(&out.stdout.text);
    let dead = wait_dead(pid);
    kill_leftover(pid);
    assert!(out.success(), "{out:?}");
    assert!(dead, "escaped process {pid} outlived the run");
    assert!(
        !out.stdout.truncated,
        "the pipes closed when the escaped process died: {out:?}"
    );
}

#[test]
fn issue_7_concurrent_runs_do_not_kill_each_others_processes() {
    let fx = Fixture::new();
    concurrent_runs_stay_apart(&fx, Separation::Full);
}

#[test]
fn issue_7_each_run_has_its_own_cgroup_removed_afterwards() {
    let fx = Fixture::new();
    let mount = cgroup2_mount().expect("this machine mounts cgroup v2");
    let own = own_cgroup();
    let out = fx.run(&fx.sh("grep '^0::' /proc/self/cgroup", "install"));
    assert!(out.success(), "{out:?}");
    let cgroup = out.stdout.text.trim().trim_start_matches("0::");
    assert_ne!(cgroup, own, "the script ran in the test's own cgroup");
    assert!(
        cgroup.starts_with(&own) && cgroup.contains("apsctl-run-"),
        "{cgroup} (own: {own})"
    );
    let path = mount.join(cgroup.trim_start_matches('/'));
    assert!(!path.exists(), "`{}` was not removed", path.display());
}

#[test]
fn issue_7_scripts_cannot_reach_the_admins_terminal() {
    const NAME: &str = "issue_7_scripts_cannot_reach_the_admins_terminal";
    if inner_part().as_deref() == Some("tty") {
        scripts_cannot_reach_the_terminal();
        return;
    }
    let env = Env::from_process();
    // `setsid --ctty` makes the re-run a session leader whose controlling terminal is the pty on
    // its stdin, as an admin's shell would be.
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let mut command = rerun(&env, &["setsid", "--ctty"], NAME, "tty");
    command.stdin(Stdio::from(pty.slave));
    let out = command.output().expect("re-run");
    drop(pty.master);
    assert_rerun_ok(&out);
}

/// Inside a process with a controlling terminal: a script tries to push a command into it.
fn scripts_cannot_reach_the_terminal() {
    // The terminal is reachable from here, so a script inheriting it could use it.
    let mut tty = fs_err::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .expect("the re-run has a controlling terminal");
    let fx = Fixture::new();
    let script = fx.script(
        "inject.pl",
        r#"for my $fd (0, 1, 2) {
    open(my $h, '+<&=', $fd) or next;
    my $c = "x";
    print "fd $fd accepted TIOCSTI\n" if ioctl($h, 0x5412, $c);
}
if (open(my $t, '+<', '/dev/tty')) {
    my $n = 0;
    for my $c (split //, "echo apsctl-injected\n") { my $b = $c; $n++ if ioctl($t, 0x5412, $b); }
    print "opened /dev/tty, injected $n bytes\n";
} else {
    print "no terminal\n";
}
"#,
    );
    let run = ScriptRun::script(
        Path::new("/usr/bin/perl"),
        &script,
        "install",
        fx.dir.path(),
        &fx.user,
    );
    let out = fx.run(&run);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout.text, "no terminal\n", "{out:?}");
    // Nothing waits in the terminal's input queue (a whole injected line would be readable).
    nix::fcntl::fcntl(
        tty.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NONBLOCK),
    )
    .expect("non-blocking");
    let mut buf = [0u8; 256];
    match tty.read(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!(
            "the terminal received input: {:?}",
            other.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
        ),
    }
}

#[test]
fn issue_7_scripts_get_umask_022() {
    const NAME: &str = "issue_7_scripts_get_umask_022";
    if inner_part().as_deref() == Some("umask") {
        nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        let fx = Fixture::new();
        let shared = fx.user_dir();
        let run = fx
            .sh(r#": > "$2/made"; stat -c %a "$2/made"; umask"#, "install")
            .arg(shared.to_string_lossy());
        let out = fx.run(&run);
        assert!(out.success(), "{out:?}");
        assert_eq!(out.stdout.text, "644\n0022\n");
        return;
    }
    let env = Env::from_process();
    let out = rerun(&env, &[], NAME, "umask").output().expect("re-run");
    assert_rerun_ok(&out);
}

#[test]
fn issue_7_scripts_die_when_apsctl_is_killed() {
    const NAME: &str = "issue_7_scripts_die_when_apsctl_is_killed";
    let env = Env::from_process();
    match inner_part().as_deref() {
        Some("killed") => {
            let fx = Fixture::new();
            let shared = PathBuf::from(env.var(SHARED).expect("shared folder"));
            let body = format!(
                "{ESCAPE}echo $$ > \"$2/leader.tmp\" && mv \"$2/leader.tmp\" \"$2/leader\"\nexec sleep 300\n"
            );
            let run = fx.sh(&body, "install").arg(shared.to_string_lossy());
            fx.run(&run);
            panic!("the run was to be killed with this process");
        }
        Some("again") => {
            // A fresh process: its first run cleans up what a killed apsctl left behind.
            let fx = Fixture::new();
            assert!(fx.run(&fx.sh("true", "install")).success());
            return;
        }
        _ => {}
    }
    let fx = Fixture::new();
    let shared = fx.user_dir();
    let mut killed = rerun(&env, &[], NAME, "killed");
    killed.env(SHARED, &shared);
    let mut killed = killed.spawn().expect("re-run");
    let leader = wait_pid(&shared.join("leader"));
    let escaped = wait_pid(&shared.join("escaped"));
    killed.kill().expect("kill the re-run");
    killed.wait().expect("reap the re-run");
    let leader_dead = wait_dead(leader);
    kill_leftover(leader);
    assert!(
        leader_dead,
        "script {leader} outlived the apsctl that ran it"
    );
    let out = rerun(&env, &[], NAME, "again").output().expect("re-run");
    let escaped_dead = wait_dead(escaped);
    kill_leftover(escaped);
    assert_rerun_ok(&out);
    assert!(
        escaped_dead,
        "escaped process {escaped} of a killed apsctl's run survived the next start"
    );
}

#[test]
fn issue_7_without_cgroup_v2_the_subreaper_kills_what_escaped() {
    const NAME: &str = "issue_7_without_cgroup_v2_the_subreaper_kills_what_escaped";
    if inner_part().as_deref() == Some("no-cgroup") {
        assert_eq!(cgroup2_mount(), None, "cgroup v2 is still mounted");
        let fx = Fixture::new();
        escaped_descendant_dies_on_exit(&fx);
        escaped_descendant_dies_on_timeout(&fx);
        concurrent_runs_stay_apart(&fx, Separation::Session);
        return;
    }
    let env = Env::from_process();
    // A private mount namespace without the cgroup v2 mount: the runner cannot find a cgroup.
    let unmount = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-ec",
        r#"umount -a -t cgroup2; exec "$0" "$@""#,
    ];
    let out = rerun(&env, &unmount, NAME, "no-cgroup")
        .output()
        .expect("re-run");
    assert_rerun_ok(&out);
}

fn escaped_descendant_dies_on_exit(fx: &Fixture) {
    let shared = fx.user_dir();
    let out = fx.run(&fx.sh(ESCAPE, "install").arg(shared.to_string_lossy()));
    let pid = parse_pid(&out.stdout.text);
    let dead = wait_dead(pid);
    kill_leftover(pid);
    assert!(out.success(), "{out:?}");
    assert!(dead, "escaped process {pid} outlived the script");
    // apsctl is its parent (subreaper) and reaped it: no zombie piles up in a long-lived apsctl.
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "escaped process {pid} was left a zombie"
    );
}

fn escaped_descendant_dies_on_timeout(fx: &Fixture) {
    let shared = fx.user_dir();
    let mut run = fx
        .sh(&format!("{ESCAPE}exec sleep 300\n"), "install")
        .arg(shared.to_string_lossy());
    run.timeout = Duration::from_secs(2);
    let out = fx.run(&run);
    let pid = parse_pid(&out.stdout.text);
    let dead = wait_dead(pid);
    kill_leftover(pid);
    assert_eq!(out.status, RunStatus::TimedOut, "{out:?}");
    assert!(dead, "escaped process {pid} survived the timeout");
}

/// What two overlapping runs of the same user keep apart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Separation {
    /// Everything (each run has its own cgroup).
    Full,
    /// Only what stays in each run's session (the subreaper fallback cannot tell which run a
    /// process that left its session came from).
    Session,
}

/// Run A starts a background child and an escaped process, then waits; run B starts and ends
/// meanwhile. A's processes must survive B's end, and everything must be gone after A's.
fn concurrent_runs_stay_apart(fx: &Fixture, separation: Separation) {
    let shared = fx.user_dir();
    let dir = shared.to_string_lossy();
    let a = fx
        .sh(
            &format!(
                r#"{ESCAPE}sleep 300 </dev/null >/dev/null 2>&1 &
echo $! > "$2/child.tmp" && mv "$2/child.tmp" "$2/child"
echo $$ > "$2/leader.tmp" && mv "$2/leader.tmp" "$2/leader"
while [ ! -e "$2/b-done" ]; do sleep 0.05; done
"#
            ),
            "install",
        )
        .arg(dir.clone());
    let b_script = fx.script(
        "configure-b",
        r#"while [ ! -s "$2/leader" ]; do sleep 0.05; done
f="$2/b-escaped"
setsid sh -c 'sleep 300 </dev/null >/dev/null 2>&1 & echo $! > "$1.tmp" && mv "$1.tmp" "$1"' sh "$f" &
while [ ! -s "$f" ]; do sleep 0.05; done
cat "$f"
"#,
    );
    let mut b = ScriptRun::script(Path::new(SH), &b_script, "install", fx.dir.path(), &fx.user)
        .arg(dir.clone());
    b.timeout = TEST_TIMEOUT;

    let (out_a, out_b, alive_after_b) = std::thread::scope(|scope| {
        let run_a = scope.spawn(|| fx.run(&a));
        let run_b = scope.spawn(|| fx.run(&b));
        let out_b = run_b.join().expect("run B");
        let leader = wait_pid(&shared.join("leader"));
        let alive: Vec<(&str, u32, bool)> = ["leader", "child", "escaped"]
            .into_iter()
            .map(|name| {
                let pid = read_pid(&shared.join(name));
                (name, pid, !is_dead(pid))
            })
            .collect();
        assert_eq!(alive[0].1, leader);
        fs_err::write(shared.join("b-done"), "").expect("b-done");
        (run_a.join().expect("run A"), out_b, alive)
    });
    let mut pids: Vec<u32> = alive_after_b.iter().map(|(_, pid, _)| *pid).collect();
    pids.push(parse_pid(&out_b.stdout.text));
    let dead: Vec<(u32, bool)> = pids.iter().map(|&pid| (pid, wait_dead(pid))).collect();
    for &pid in &pids {
        kill_leftover(pid);
    }
    assert!(out_a.success(), "{out_a:?}");
    assert!(out_b.success(), "{out_b:?}");
    for (name, pid, alive) in alive_after_b {
        if name == "escaped" && separation == Separation::Session {
            continue;
        }
        assert!(alive, "run B's end killed the {name} ({pid}) of run A");
    }
    for (pid, dead) in dead {
        assert!(dead, "process {pid} outlived both runs");
    }
}

/// The variable telling a re-run of this test binary which inner part of a test to play.
const INNER: &str = "APSCTL_RUNNER_TEST_INNER";
/// A folder shared between a test and its re-run.
const SHARED: &str = "APSCTL_RUNNER_TEST_SHARED";

fn inner_part() -> Option<String> {
    Env::from_process().var(INNER).map(str::to_owned)
}

/// A command running test `name` of this binary again, alone, as inner part `part`, behind
/// `wrapper` (a program and its arguments, such as `setsid --ctty`).
fn rerun(env: &Env, wrapper: &[&str], name: &str, part: &str) -> Command {
    let exe = std::env::current_exe().expect("test binary");
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = env.command(program);
            command.args(args).arg(&exe);
            command
        }
        None => env.command(&exe),
    };
    command
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(INNER, part);
    command
}

fn assert_rerun_ok(out: &Output) {
    assert!(
        out.status.success(),
        "re-run failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // `--exact` with a misspelt name would run nothing and succeed.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Where cgroup v2 is mounted, if it is (read from `/proc/self/mountinfo`).
fn cgroup2_mount() -> Option<PathBuf> {
    let mountinfo = fs_err::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    mountinfo.lines().find_map(|line| {
        let (mount, fs) = line.split_once(" - ")?;
        if !fs.starts_with("cgroup2 ") {
            return None;
        }
        mount.split(' ').nth(4).map(PathBuf::from)
    })
}

/// This process's cgroup v2 path (as `/proc/self/cgroup` names it).
fn own_cgroup() -> String {
    let cgroups = fs_err::read_to_string("/proc/self/cgroup").expect("cgroup");
    cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup v2 line")
        .to_owned()
}

fn parse_pid(text: &str) -> u32 {
    text.trim()
        .lines()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {text:?}"))
}

fn read_pid(path: &Path) -> u32 {
    parse_pid(&fs_err::read_to_string(path).expect("pid file"))
}

/// Waits until the script wrote `path` (it writes pid files by rename, so never half).
fn wait_pid(path: &Path) -> u32 {
    let end = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(Instant::now() < end, "`{}` never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    read_pid(path)
}

/// Kills `pid` if it still runs, so a failing test leaves nothing behind.
fn kill_leftover(pid: u32) {
    if !is_dead(pid) {
        let pid = i32::try_from(pid).expect("pid");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .ok();
    }
}

#[test]
fn output_over_the_cap_is_counted_and_dropped() {
    let fx = Fixture::new();
    let mut run = fx.sh(
        "head -c 100000 /dev/zero | tr '\\0' a; echo small >&2",
        "install",
    );
    run.output_cap = 1000;
    let out = fx.run(&run);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout.text, "a".repeat(1000));
    assert_eq!(out.stdout.total_bytes, 100_000);
    assert!(out.stdout.truncated);
    assert_eq!(out.stderr.text, "small\n");
    assert_eq!(out.stderr.total_bytes, 6);
    assert!(!out.stderr.truncated);
}

#[test]
fn secrets_are_redacted_from_both_streams() {
    let fx = Fixture::new();
    let mut run = fx
        .sh(
            "echo \"pw=$DB_main_PASSWORD\"; echo \"admin: $SETTINGS_admin_password\" >&2",
            "install",
        )
        .var("DB_main_PASSWORD", "Xy7#secret")
        .var("SETTINGS_admin_password", "hunter2");
    run.secrets = vec!["Xy7#secret".into(), "hunter2".into(), String::new()];
    let out = fx.run(&run);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout.text, "pw=***\n");
    assert_eq!(out.stderr.text, "admin: ***\n");
}

#[test]
fn a_secret_cut_by_the_cap_is_masked() {
    let fx = Fixture::new();
    let mut run = fx
        .sh("printf 'key=%s' \"$S\"", "install")
        .var("S", "0123456789abcdef");
    run.secrets = vec!["0123456789abcdef".into()];
    run.output_cap = 10; // "key=012345" would leak the first six characters.
    let out = fx.run(&run);
    assert!(out.stdout.truncated);
    assert_eq!(out.stdout.text, "key=***");
}

#[test]
fn root_is_refused_before_anything_runs() {
    let fx = Fixture::new();
    let root = SystemUser::lookup("root").expect("root");
    let marker = fx.dir.path().join("ran");
    let script = fx.script("configure", &format!("touch '{}'", marker.display()));
    let run = ScriptRun::script(Path::new(SH), &script, "install", fx.dir.path(), &root);
    let err = runner::run(&fx.env, &run).expect_err("root refused");
    assert!(matches!(err, RunError::Root { .. }), "{err}");
    assert!(!marker.exists());
}

#[test]
fn a_missing_interpreter_is_named() {
    let fx = Fixture::new();
    let script = fx.script("configure", "<?php echo 1;");
    let run = ScriptRun::script(
        Path::new("/opt/php-9.9/bin/php"),
        &script,
        "install",
        fx.dir.path(),
        &fx.user,
    );
    let err = runner::run(&fx.env, &run).expect_err("missing interpreter");
    assert!(matches!(err, RunError::Spawn { .. }), "{err}");
    assert!(err.to_string().contains("`/opt/php-9.9/bin/php`"), "{err}");
}

#[test]
fn a_folder_the_user_cannot_enter_fails_the_start() {
    let fx = Fixture::new();
    let private = fx.dir.path().join("private");
    fs_err::create_dir(&private).expect("mkdir");
    fs_err::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let script = fx.script("configure", "echo hi");
    let run = ScriptRun::script(Path::new(SH), &script, "install", &private, &fx.user);
    let err = runner::run(&fx.env, &run).expect_err("chdir as the user fails");
    let RunError::Spawn { source, .. } = &err else {
        panic!("unexpected error: {err}")
    };
    assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
}

#[test]
fn bad_inputs_are_refused_by_name() {
    let fx = Fixture::new();
    let run = fx.sh("true", "install").arg("a\0b");
    assert!(matches!(
        runner::run(&fx.env, &run),
        Err(RunError::NulArgument { index: 2, .. })
    ));
    let run = fx.sh("true", "install").var("A=B", "x");
    let err = runner::run(&fx.env, &run).expect_err("bad name");
    assert!(err.to_string().contains("`A=B`"), "{err}");
    let run = fx.sh("true", "install").var("SETTINGS_x", "a\0b");
    assert!(matches!(
        runner::run(&fx.env, &run),
        Err(RunError::InvalidVariable { .. })
    ));
    let run = ScriptRun::program(Path::new(SH), &fx.dir.path().join("absent"), &fx.user);
    assert!(matches!(
        runner::run(&fx.env, &run),
        Err(RunError::Cwd { .. })
    ));
}

#[test]
fn php_script_runs_as_the_site_user() {
    let fx = Fixture::new();
    fx.script(
        "env-parser.php",
        "<?php\nfunction setting($n) { return getenv('SETTINGS_' . $n); }\n",
    );
    let script = fx.script(
        "configure",
        "<?php\nrequire 'env-parser.php';\n\
         echo posix_geteuid(), \"\\n\", getcwd(), \"\\n\", json_encode(array_slice($argv, 1)), \"\\n\";\n\
         echo setting('title'), \"\\n\", getenv('WEB__wp-content_DIR'), \"\\n\";\n\
         fwrite(STDERR, \"debug\\n\");\nexit(4);\n",
    );
    let run = ScriptRun::script(Path::new(PHP), &script, "upgrade", fx.dir.path(), &fx.user)
        .arg("5.2.3")
        .arg("282")
        .var("SETTINGS_title", "Ünïcödé \"blog\"")
        .var("WEB__wp-content_DIR", "/srv/www/blog/wp-content");
    let out = fx.run(&run);
    assert_eq!(out.status, RunStatus::Exited(4), "{out:?}");
    let canon = fs_err::canonicalize(fx.dir.path()).expect("canon");
    assert_eq!(
        out.stdout.text,
        format!(
            "{}\n{}\n[\"upgrade\",\"5.2.3\",\"282\"]\nÜnïcödé \"blog\"\n/srv/www/blog/wp-content\n",
            fx.user.uid(),
            canon.display()
        )
    );
    assert_eq!(out.stderr.text, "debug\n");
}
