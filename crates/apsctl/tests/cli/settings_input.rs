//! Setting values from `--settings-file` (a file or `-` for standard input) and `--set`
//! (issue 7: D14 secrets off argv, D15 strict settings JSON).
use std::ffi::OsStr;
use std::process::Stdio;

use crate::support::World;

/// A password that must never be printed.
const PASSWORD: &str = "correct-horse-staple-7";

#[test]
fn issue_7_settings_come_from_stdin_for_install_and_configure() {
    let world = World::with_site(5);
    let reference = world.import_hello(None);
    let install = world
        .run_stdin(
            &[
                "--json",
                "install",
                &reference,
                "--site",
                "s",
                "--accept-license",
                "--settings-file",
                "-",
                "--set",
                "title=From --set",
            ],
            format!(
                r#"{{"admin_password": "{PASSWORD}", "title": "From the file", "show_time": true}}"#
            )
            .as_bytes(),
        )
        .ok();
    let id = install.json()["instance"].to_string().replace('"', "");
    let shown = world.run(&["--json", "instance", "show", &id]).ok();
    let settings = &shown.json()["settings"];
    assert_eq!(settings["title"], "From --set", "--set wins over the file");
    assert_eq!(settings["show_time"], "true", "a JSON boolean is `true`");
    assert!(
        settings.get("admin_password").is_none_or(|v| v == "***"),
        "the password is shown: {settings}"
    );

    // configure reads standard input too.
    world
        .run_stdin(
            &["configure", &id, "--settings-file", "-"],
            br#"{"title": "Reconfigured", "greeting": "welcome"}"#,
        )
        .ok();
    let settings = world.run(&["--json", "instance", "show", &id]).ok().json()["settings"].clone();
    assert_eq!(settings["title"], "Reconfigured");
    assert_eq!(settings["greeting"], "welcome");

    // And a file, with `--set` winning for the same id.
    let file = world.dir.join("new.json");
    fs_err::write(&file, r#"{"title": "From a file", "greeting": "hello"}"#).unwrap();
    world
        .run(&[
            OsStr::new("configure"),
            OsStr::new(&id),
            OsStr::new("--settings-file"),
            file.as_os_str(),
            OsStr::new("--set"),
            OsStr::new("greeting=welcome"),
        ])
        .ok();
    let settings = world.run(&["--json", "instance", "show", &id]).ok().json()["settings"].clone();
    assert_eq!(settings["title"], "From a file");
    assert_eq!(settings["greeting"], "welcome");

    // Neither, is refused by clap before anything runs.
    world.run(&["configure", &id]).fails_with(2);

    for run in [&install, &shown] {
        assert!(
            !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
            "the password was printed\n{run}"
        );
    }
}

/// Every refusal exits 2 and names the file and the key (nothing is installed: the reference
/// does not even exist, the settings are refused first).
#[test]
fn issue_7_settings_file_refusals_name_the_file_and_key() {
    let world = World::bare();
    let cases: [(&str, &str, &[&str]); 10] = [
        (
            "duplicate",
            r#"{"admin_password": "a-first-pass", "title": "x", "admin_password": "a-second-pass"}"#,
            &["`admin_password`", "twice"],
        ),
        ("null", r#"{"title": null}"#, &["`title`", "null"]),
        (
            "object",
            r#"{"title": {"en": "x"}}"#,
            &["`title`", "an object"],
        ),
        ("nested", r#"{"tags": [["a"]]}"#, &["`tags`", "element 1"]),
        (
            "number-element",
            r#"{"tags": ["a", 2]}"#,
            &["`tags`", "element 2"],
        ),
        (
            "comma-element",
            r#"{"tags": ["a", "b,c"]}"#,
            &["`tags`", "element 2", "`,`"],
        ),
        ("array", r#"["title", "x"]"#, &["a JSON object"]),
        ("string", r#""title""#, &["a JSON object"]),
        ("broken", r#"{"title": "x""#, &["not valid JSON"]),
        ("empty", "", &["empty"]),
    ];
    for (name, content, needles) in cases {
        let file = world.dir.join(format!("{name}.json"));
        fs_err::write(&file, content).unwrap();
        let shown_file = format!("settings file `{}`", file.display());
        for command in ["install", "configure"] {
            let mut args = vec![OsStr::new(command), OsStr::new("no-such-thing")];
            if command == "install" {
                args.extend([OsStr::new("--site"), OsStr::new("s")]);
            }
            args.extend([OsStr::new("--settings-file"), file.as_os_str()]);
            world
                .run(&args)
                .fails_with(2)
                .stderr_names(&[&shown_file])
                .stderr_names(needles);
        }
        // The same on standard input.
        world
            .run_stdin(
                &["configure", "1", "--settings-file", "-"],
                content.as_bytes(),
            )
            .fails_with(2)
            .stderr_names(&["standard input"])
            .stderr_names(needles);
    }
    world
        .run(&[
            "install",
            "x",
            "--site",
            "s",
            "--settings-file",
            "no-such.json",
        ])
        .fails_with(2)
        .stderr_names(&["settings file `no-such.json`", "No such file"]);
}

/// An endless input ends at once with a clear refusal, instead of filling the memory. The run
/// gets a 2 GiB address-space limit so that a regression fails the test rather than the machine.
#[test]
fn issue_7_endless_settings_input_is_refused_at_the_bound() {
    let world = World::bare();
    let bounded = |stdin: Stdio, file: &str| {
        let env = aps_ops::Env::from_process();
        env.command("sh")
            .arg("-c")
            .arg(r#"ulimit -v 2097152 && exec "$@""#)
            .arg("sh")
            .arg(env!("CARGO_BIN_EXE_apsctl"))
            .arg("--home")
            .arg(world.home())
            .args(["install", "x", "--site", "s", "--settings-file", file])
            .stdin(stdin)
            .output()
            .expect("apsctl runs")
    };
    let zero = || {
        Stdio::from(std::fs::File::from(
            fs_err::File::open("/dev/zero").unwrap(),
        ))
    };
    for (stdin, file, named) in [
        (Stdio::null(), "/dev/zero", "settings file `/dev/zero`"),
        (zero(), "-", "the settings on standard input"),
    ] {
        let out = bounded(stdin, file);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(named) && stderr.contains("larger than 1048576 bytes"),
            "{stderr}"
        );
    }
    // Exactly at the bound is not "larger".
    let mut doc = String::from(r#"{"title": ""#);
    let pad = 1_048_576 - doc.len() - 2;
    doc.push_str(&"x".repeat(pad));
    doc.push_str(r#""}"#);
    assert_eq!(doc.len(), 1_048_576);
    let file = world.dir.join("big.json");
    fs_err::write(&file, &doc).unwrap();
    world
        .run(&[
            OsStr::new("install"),
            OsStr::new("x"),
            OsStr::new("--site"),
            OsStr::new("s"),
            OsStr::new("--settings-file"),
            file.as_os_str(),
        ])
        .fails_with(3)
        .stderr_names(&["`x`"]);
}
