//! A8: processes a package script leaves behind. A run ends when the script's main process
//! ends; whatever it started must end with it, or the tenant keeps code running that apsctl
//! reported finished (and that may still write to a folder apsctl is about to remove).
use crate::world::{Package, World, alive_as, command};

/// On `configure`, starts two processes that outlive the script — one in a session of its own
/// (`setsid`, output closed), one through a double fork (keeping the output pipes) — each writing
/// its pid to the tenant's home, then succeeds, fails or hangs as the `title` setting says.
const LEAVING_CONFIGURE: &str = r#"case "$1" in
configure)
  t="$SETTINGS_title"
  setsid sh -c 'echo $$ > "$HOME/escaped-'"$t"'.pid"; exec sleep 600' </dev/null >/dev/null 2>&1 &
  ( sh -c 'echo $$ > "$HOME/orphan-'"$t"'.pid"; exec sleep 600' & )
  while [ ! -s "$HOME/escaped-$t.pid" ] || [ ! -s "$HOME/orphan-$t.pid" ]; do sleep 0.1; done
  case "$t" in
    fail) echo "failing on purpose" >&2; exit 1 ;;
    hang) exec sleep 600 ;;
  esac
  ;;
esac
exit 0
"#;

/// A8: after a `configure` that succeeded, one that failed and one that timed out, no process
/// the script started is alive.
///
/// Before the runner ended a script's descendants outside its process group (`aps_host::reaper`),
/// the `setsid` one survived every case.
#[test]
fn issue_7_a8_no_process_of_a_script_outlives_its_run() {
    let world = World::new(8);
    let a = world.tenant("a");
    world.site(&a, "s");
    let reference = world.package(&Package {
        name: "leaving",
        language: "sh",
        configure: LEAVING_CONFIGURE,
        sqlite: false,
    });
    let id = world.install(&reference, "s", "app");

    let mut survivors = Vec::new();
    for (title, succeeds) in [("ok", true), ("fail", false), ("hang", false)] {
        let run = world.apsctl(&[
            "--script-timeout",
            "10",
            "configure",
            &id,
            "--set",
            &format!("title={title}"),
        ]);
        assert_eq!(run.code == Some(0), succeeds, "{run}");
        if title == "hang" {
            assert!(run.stderr.contains("was stopped"), "{run}");
        }
        // Every pid file so far (a failed configure is undone by running the script again with
        // the stored values, which starts more).
        for entry in fs_err::read_dir(a.home()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "pid") {
                continue;
            }
            let text = fs_err::read_to_string(&path).unwrap_or_default();
            let Ok(pid) = text.trim().parse::<u32>() else {
                continue;
            };
            if alive_as(pid, a.uid()) {
                survivors.push(format!(
                    "{} (pid {pid}) after `configure --set title={title}`",
                    path.file_name().unwrap_or_default().to_string_lossy()
                ));
                // Started by this test's script: end it, so the next case starts clean.
                let _ = command("kill").args(["-KILL", &pid.to_string()]).output();
            }
        }
    }
    assert!(
        survivors.is_empty(),
        "processes outlived their script: {survivors:#?}"
    );
}
