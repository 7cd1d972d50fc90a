//! Probes the real `/usr/bin/php` as the unprivileged `apsctl-test` user. Needs root.
use std::path::Path;

use aps_host::env::Env;
use aps_host::php::{parse_ini_bool, parse_ini_size, probe};
use aps_host::user::ensure_test_user;

#[test]
fn probe_reports_version_extensions_ini_and_functions() {
    let env = Env::from_process();
    let user = ensure_test_user(&env, "apsctl-test").expect("test user");
    let info = probe(
        &env,
        Path::new("/usr/bin/php"),
        &user,
        &[
            "json_encode",
            "strlen",
            "apsctl_no_such_function",
            "system; exit",
        ],
    )
    .expect("probe");

    assert!(info.version.starts_with("8."), "{}", info.version);
    // Core and json are always compiled in; names are lowercased.
    assert!(info.extensions.contains("core"), "{:?}", info.extensions);
    assert!(info.has_extension("JSON"));
    assert!(!info.has_extension("apsctl_no_such_extension"));

    assert_eq!(info.has_function("json_encode"), Some(true));
    assert_eq!(info.has_function("strlen"), Some(true));
    assert_eq!(info.has_function("apsctl_no_such_function"), Some(false));
    // The name is data, not code.
    assert_eq!(info.has_function("system; exit"), Some(false));
    assert_eq!(info.has_function("never_asked"), None);

    // memory_limit always exists and parses; removed directives are unknown.
    let memory = info.ini("memory_limit").expect("memory_limit");
    assert!(parse_ini_size(memory).is_some(), "{memory}");
    assert!(info.knows_ini("file_uploads"));
    assert!(!info.knows_ini("safe_mode"));
    assert!(!info.knows_ini("register_globals"));
    // Agrees with what PHP itself says when run directly.
    let direct = env
        .command("/usr/bin/php")
        .args(["-r", "echo ini_get('file_uploads') ? 'yes' : 'no';"])
        .output()
        .expect("php");
    let expected = String::from_utf8_lossy(&direct.stdout) == "yes";
    assert_eq!(
        parse_ini_bool(info.ini("file_uploads").unwrap_or("")),
        expected
    );
}

#[test]
fn probe_of_a_missing_php_names_it() {
    let env = Env::from_process();
    let user = ensure_test_user(&env, "apsctl-test").expect("test user");
    let err = probe(&env, Path::new("/opt/php-7.0/bin/php"), &user, &[]).expect_err("missing");
    assert!(err.to_string().contains("`/opt/php-7.0/bin/php`"), "{err}");
}

#[test]
fn probe_of_something_that_is_not_php_fails_cleanly() {
    let env = Env::from_process();
    let user = ensure_test_user(&env, "apsctl-test").expect("test user");
    // `echo` exits 0 but prints no answer.
    let err = probe(&env, Path::new("/bin/echo"), &user, &[]).expect_err("not php");
    assert!(err.to_string().contains("marker"), "{err}");
}
