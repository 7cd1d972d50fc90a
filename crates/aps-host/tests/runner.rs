//! Runs real processes through `aps_host::runner` as a real unprivileged system user and checks
//! the D7 process contract: identity, clean environment, argv without a shell, cwd, exit status,
//! signals, timeouts that kill the whole process group, output caps and redaction; and the
//! hardening of issue 7: no controlling terminal, umask `022`.
//!
//! Tests that need a different process (a controlling terminal, umask `000`) run this binary
//! again for one test (see [`rerun`]).
//!
//! Needs root (to create the `apsctl-test` user and switch to it), `/usr/bin/php`,
//! `/usr/bin/perl`, and util-linux `setsid`.
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
fn a_process_escaping_the_group_cannot_hold_the_run_forever() {
    let fx = Fixture::new();
    let started = Instant::now();
    // The script waits until the escaped process has really left the group (it writes its pid
    // once it runs in its own session), so the runner's kill of the group cannot race it.
    let out = fx.run(&fx.sh(
        r#"f=/tmp/apsctl-escape.$$
setsid sh -c "echo \$\$ > $f.tmp && mv $f.tmp $f && exec sleep 30" &
while [ ! -s "$f" ]; do sleep 0.05; done
cat "$f"; rm -f "$f"; exit 0"#,
        "install",
    ));
    let elapsed = started.elapsed();
    let pid: i32 = out.stdout.text.trim().parse().expect("pid");
    // Clean up the escaped process before asserting anything.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill escaped sleep");
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout.truncated,
        "the pipe never closed, so the output may be incomplete"
    );
    assert!(elapsed >= runner::READER_GRACE, "{elapsed:?}");
    assert!(
        elapsed < runner::READER_GRACE + Duration::from_secs(5),
        "{elapsed:?}"
    );
}

// Issue 7 (hardening of the script runner): scripts get no controlling terminal and a sane
// umask.

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

/// The variable telling a re-run of this test binary which inner part of a test to play.
const INNER: &str = "APSCTL_RUNNER_TEST_INNER";

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
