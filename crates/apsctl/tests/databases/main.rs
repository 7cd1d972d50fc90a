//! Database resources end to end (REFERENCE §3.6, §6.3, D9, §11 Q16/Q24): the `examples/notes`
//! package — a `choice` of MariaDB/MySQL, PostgreSQL and SQLite — installed by the real binary
//! on the real servers of `.ci/services.sh`, run through the real PHP CLI as the site's user,
//! and removed; requirement refusals that change nothing; several databases per instance;
//! names within the servers' limits; table prefixes in a shared database.
//!
//! Every test has its own apsctl home, system user, document root and database name base (the
//! package's `db:default-name` is replaced by a random one), so tests run in parallel with each
//! other and with other test binaries on the same servers. Needs root and the servers; fails
//! with a message saying how to start them when they are missing.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a failed setup or inspection step is a failed test"
)]

mod support;

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::{BLOB_HEX, FIRST_NOTE, Fixture, Kind, Run, servers, with_requirements};

const PHP_NS: &str = "http://apstandard.com/ns/1/php";
const DB_NS: &str = "http://apstandard.com/ns/1/db";

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is not a string in {v:#}"))
}

/// A `db:db` requirement element.
fn db_xml(id: &str, name: &str, kind: &str, extra: &str) -> String {
    format!(
        "<db:db><db:id>{id}</db:id><db:default-name>{name}</db:default-name>{extra}\
         <db:server-type>{kind}</db:server-type></db:db>"
    )
}

/// A requirements element with the given children.
fn requirements(children: &str) -> String {
    format!("<requirements xmlns:php=\"{PHP_NS}\" xmlns:db=\"{DB_NS}\">{children}</requirements>")
}

/// The uid of a system user.
fn uid_of(user: &str) -> u32 {
    let out = assert_cmd::Command::new("id")
        .args(["-u", user])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Tables of a SQLite database file, through the `sqlite3` shell.
fn sqlite_tables(file: &Path) -> Vec<String> {
    let out = assert_cmd::Command::new("sqlite3")
        .arg("-readonly")
        .arg(file)
        .arg("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sqlite3 {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("sqlite_"))
        .map(str::to_owned)
        .collect()
}

/// Checks that database `db` (from `instance show`) exists with its login and holds `table`.
fn assert_database_present(fx: &Fixture, kind: Kind, db: &Value, table: &str) {
    let name = str_of(db, "name");
    let login = str_of(db, "login");
    match kind {
        Kind::Mysql | Kind::Postgresql => {
            let s = servers();
            assert!(s.database_exists(kind, name), "database `{name}` missing");
            assert!(s.login_exists(kind, login), "login `{login}` missing");
            assert!(
                s.tables(kind, name).contains(table),
                "table `{table}` missing in `{name}`: {:?}",
                s.tables(kind, name)
            );
        }
        Kind::Sqlite => {
            let file = PathBuf::from(name);
            assert!(file.is_file(), "SQLite file `{name}` missing");
            assert!(
                file.starts_with(&fx.home),
                "SQLite file `{name}` is not under the home"
            );
            assert!(
                !file.starts_with(&fx.docroot),
                "SQLite file `{name}` is in the docroot"
            );
            assert_eq!(login, "");
            assert_eq!(str_of(db, "host"), "");
            assert!(db["port"].is_null());
            let dir = file.parent().unwrap();
            assert_eq!(
                fs_err::metadata(dir).unwrap().uid(),
                uid_of(&fx.user),
                "the site user must own the database folder"
            );
            assert!(
                sqlite_tables(&file).iter().any(|t| t == table),
                "table `{table}` missing in `{name}`"
            );
        }
    }
}

/// Checks that database `db` (from `instance show`) and its login are gone.
fn assert_database_gone(kind: Kind, db: &Value) {
    let name = str_of(db, "name");
    let login = str_of(db, "login");
    match kind {
        Kind::Mysql | Kind::Postgresql => {
            let s = servers();
            assert!(!s.database_exists(kind, name), "database `{name}` left");
            assert!(!s.login_exists(kind, login), "login `{login}` left");
        }
        Kind::Sqlite => {
            let file = PathBuf::from(name);
            assert!(!file.exists(), "SQLite file `{name}` left");
            assert!(
                !file.parent().unwrap().exists(),
                "SQLite folder of `{name}` left"
            );
        }
    }
}

/// No file anywhere in the document root looks like a database.
fn assert_no_database_file_in(docroot: &Path) {
    for path in Fixture::tree(docroot) {
        assert!(
            !path.contains(".sqlite") && Path::new(&path).extension().is_none_or(|e| e != "db"),
            "database-like file `{path}` in the docroot"
        );
    }
}

/// Install with only one server type registered: the choice falls on it, the plan and the
/// progress say so, the application works through PHP, and `remove --files all` drops the
/// database and its login.
fn install_use_remove(kind: Kind) {
    let fx = Fixture::new();
    fx.add_server(kind);
    let reference = fx.import_notes("", |m| m);

    let plan = fx
        .ok(&["install", &reference, "--site", "s", "--dry-run", "--json"])
        .json();
    assert_eq!(plan["plan"]["choices"], json!([kind.as_str()]), "{plan:#}");
    assert_eq!(plan["plan"]["databases"][0]["type"], kind.as_str());
    assert_eq!(fx.instance_count(), 0, "a dry run must create nothing");

    let (id, run) = fx.install(&reference, &[]);
    assert!(
        run.stderr
            .contains(&format!("alternative `{}` selected", kind.as_str())),
        "install must say which alternative it chose:\n{}",
        run.stderr
    );
    let shown = fx.show(&id);
    assert_eq!(shown["choices"], json!([kind.as_str()]), "{shown:#}");
    let db = fx.database(&id, "main");
    assert_eq!(db["type"], kind.as_str());
    assert_eq!(db["server"], kind.server_name());
    assert!(db.get("password").is_none(), "no password in show: {db:#}");
    if kind != Kind::Sqlite {
        assert!(str_of(&db, "name").starts_with(&fx.base), "{db:#}");
        assert!(str_of(&db, "login").starts_with(&fx.base), "{db:#}");
        assert_eq!(db["host"], servers().admin(kind).host.as_str());
        assert_eq!(db["port"], servers().admin(kind).port);
    }
    assert_database_present(&fx, kind, &db, "notes");
    assert_no_database_file_in(&fx.docroot);

    let page = fx.front_page(&id);
    assert!(page.contains(FIRST_NOTE), "unicode note missing:\n{page}");
    assert!(page.contains(BLOB_HEX), "blob missing:\n{page}");
    assert!(
        page.contains(&format!("Database type: {}", kind.as_str())),
        "{page}"
    );

    let removed = fx.ok(&["remove", &id, "--files", "all", "--json"]).json();
    assert_eq!(
        removed["databases_dropped"].as_array().unwrap().len(),
        1,
        "{removed:#}"
    );
    assert!(
        removed["databases_dropped"][0]
            .as_str()
            .unwrap()
            .contains(str_of(&db, "name")),
        "{removed:#}"
    );
    assert_database_gone(kind, &db);
    assert_eq!(fx.instance_count(), 0);
    assert!(!PathBuf::from(str_of(&shown, "root")).exists());
}

#[test]
fn mysql_alone_is_chosen_works_and_is_dropped() {
    install_use_remove(Kind::Mysql);
}

#[test]
fn postgresql_alone_is_chosen_works_and_is_dropped() {
    install_use_remove(Kind::Postgresql);
}

#[test]
fn sqlite_alone_is_chosen_works_and_is_dropped() {
    install_use_remove(Kind::Sqlite);
}

#[test]
fn first_alternative_wins_unless_a_server_is_named() {
    let fx = Fixture::new();
    for kind in Kind::ALL {
        fx.add_server(kind);
    }
    let reference = fx.import_notes("", |m| m);

    let (first, run) = fx.install(&reference, &[]);
    assert!(
        run.stderr.contains("alternative `mysql` selected"),
        "{}",
        run.stderr
    );
    assert_eq!(fx.show(&first)["choices"], json!(["mysql"]));
    assert_eq!(fx.database(&first, "main")["type"], "mysql");

    for kind in [Kind::Postgresql, Kind::Sqlite] {
        let path = kind.as_str();
        let (id, run) = fx.install(
            &reference,
            &["--path", path, "--db-server", kind.server_name()],
        );
        assert!(
            run.stderr
                .contains(&format!("alternative `{}` selected", kind.as_str())),
            "{}",
            run.stderr
        );
        assert_eq!(fx.show(&id)["choices"], json!([kind.as_str()]));
        let db = fx.database(&id, "main");
        assert_eq!(db["type"], kind.as_str());
        assert_eq!(db["server"], kind.server_name());
        assert!(
            fx.front_page(&id)
                .contains(&format!("Database type: {}", kind.as_str()))
        );
        let dropped = fx.ok(&["remove", &id, "--files", "all"]);
        assert!(dropped.stdout.contains("dropped database"), "{dropped:?}");
        assert_database_gone(kind, &db);
    }

    // A server that does not exist satisfies no alternative.
    let refused = fx.run(&[
        "install",
        &reference,
        "--site",
        "s",
        "--path",
        "nope",
        "--db-server",
        "nope",
    ]);
    assert!(!refused.ok);
    assert!(
        refused.stderr.contains("named `nope`"),
        "{}",
        refused.stderr
    );

    let db = fx.database(&first, "main");
    fx.ok(&["remove", &first, "--files", "all"]);
    assert_database_gone(Kind::Mysql, &db);
}

/// What a refused install may not have touched.
#[derive(Debug, PartialEq)]
struct Snapshot {
    mysql: Vec<String>,
    pg: Vec<String>,
    instance_dirs: Vec<String>,
    sqlite_files: Vec<String>,
    docroot: Vec<String>,
    instances: usize,
}

fn snapshot(fx: &Fixture) -> (Snapshot, [std::collections::BTreeSet<String>; 4]) {
    let s = servers();
    let sets = [
        s.databases(Kind::Mysql),
        s.logins(Kind::Mysql),
        s.databases(Kind::Postgresql),
        s.logins(Kind::Postgresql),
    ];
    let ours = |set: &std::collections::BTreeSet<String>| -> Vec<String> {
        set.iter()
            .filter(|n| n.starts_with(&fx.base))
            .cloned()
            .collect()
    };
    let snap = Snapshot {
        mysql: [ours(&sets[0]), ours(&sets[1])].concat(),
        pg: [ours(&sets[2]), ours(&sets[3])].concat(),
        instance_dirs: Fixture::tree(&fx.home.join("instances"))
            .into_iter()
            .collect(),
        sqlite_files: Fixture::tree(&fx.home.join("databases"))
            .into_iter()
            .collect(),
        docroot: Fixture::tree(&fx.docroot).into_iter().collect(),
        instances: fx.instance_count(),
    };
    (snap, sets)
}

/// Installs `reference` (with `extra` arguments) expecting a refusal naming `reason`, and checks
/// nothing changed: no database or login on either server (the lists before and after are
/// compared; names of other tests running at the same time are told apart by this fixture's
/// base), no file, no instance record. Returns the refused run.
fn assert_install_refused(fx: &Fixture, reference: &str, extra: &[&str], reason: &str) -> Run {
    let (before, sets_before) = snapshot(fx);
    let mut args = vec!["install", reference, "--site", "s", "--path", "refused"];
    args.extend_from_slice(extra);
    let run = fx.run(&args);
    assert!(
        !run.ok,
        "{args:?} should have been refused:\n{}",
        run.stdout
    );
    assert!(
        run.stderr.contains(reason),
        "{args:?}: the refusal must give the reason `{reason}`:\n{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("creating"),
        "nothing may be created before the refusal:\n{}",
        run.stderr
    );
    let (after, sets_after) = snapshot(fx);
    assert_eq!(before, after, "{args:?}");
    for (b, a) in sets_before.iter().zip(&sets_after) {
        let new: Vec<&String> = a
            .difference(b)
            .filter(|n| n.starts_with(&fx.base))
            .collect();
        assert!(new.is_empty(), "{args:?} created on a server: {new:?}");
    }
    run
}

/// [`assert_install_refused`] for a requirement the site cannot meet (invalid input, exit 2).
fn assert_refused_unchanged(fx: &Fixture, reference: &str, reason: &str) {
    let before = fx.instance_count();
    let run = assert_install_refused(fx, reference, &[], reason);
    assert_eq!(
        run.code,
        Some(2),
        "refusal is invalid input: {}",
        run.stderr
    );
    assert_eq!(fx.instance_count(), before);
    assert!(Fixture::tree(&fx.docroot).is_empty());
}

#[test]
fn unsatisfiable_database_requirements_change_nothing() {
    let fx = Fixture::new();
    for kind in Kind::ALL {
        fx.add_server(kind);
    }
    let base = fx.base.clone();

    // A MySQL newer than any server there is.
    let too_new = fx.import_notes("mysql99", |m| {
        with_requirements(
            &m,
            &requirements(&format!(
                "<php:extension>pdo_mysql</php:extension>{}",
                db_xml(
                    "main",
                    &base,
                    "mysql",
                    "<db:server-min-version>99.0</db:server-min-version>"
                )
            )),
        )
    });
    assert_refused_unchanged(&fx, &too_new, "older than 99.0");

    // The same in a choice: every alternative's reason is given.
    let choice = fx.import_notes("choice99", |m| {
        m.replace(
            "<db:server-min-version>5.5</db:server-min-version>",
            "<db:server-min-version>99.0</db:server-min-version>",
        )
        .replace(
            "<db:server-min-version>9.4</db:server-min-version>",
            "<db:server-min-version>99.0</db:server-min-version>",
        )
        .replace(
            "<db:server-min-version>3.0</db:server-min-version>",
            "<db:server-min-version>99.0</db:server-min-version>",
        )
    });
    assert_refused_unchanged(&fx, &choice, "no alternative of choice 1 can be satisfied");
    let run = fx.run(&["install", &choice, "--site", "s"]);
    for alt in ["`mysql`", "`postgresql`", "`sqlite`"] {
        assert!(
            run.stderr.contains(&format!("alternative {alt}")),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn missing_server_type_is_refused_before_any_change() {
    let fx = Fixture::new();
    fx.add_server(Kind::Postgresql);
    let base = fx.base.clone();
    let mysql_only = fx.import_notes("mysqlonly", |m| {
        with_requirements(
            &m,
            &requirements(&format!(
                "<php:extension>pdo_mysql</php:extension>{}",
                db_xml("main", &base, "mysql", "")
            )),
        )
    });
    assert_refused_unchanged(&fx, &mysql_only, "no mysql database server is registered");

    // phpMyFAQ's shape: an unsupported alternative before a supported one.
    let mssql_or_mysql = fx.import_notes("mssql", |m| {
        with_requirements(
            &m,
            &requirements(&format!(
                "<choice><requirements id=\"mssql\">{}</requirements>\
                 <requirements id=\"mysql\"><php:extension>pdo_mysql</php:extension>{}</requirements></choice>",
                db_xml("main", &base, "microsoft:sqlserver", ""),
                db_xml("main", &base, "mysql", "")
            )),
        )
    });
    assert_refused_unchanged(
        &fx,
        &mssql_or_mysql,
        "alternative `mssql`: database type `microsoft:sqlserver` (db:id `main`) is not supported",
    );
    let run = fx.run(&["install", &mssql_or_mysql, "--site", "s"]);
    assert!(
        run.stderr
            .contains("alternative `mysql`: no mysql database server is registered"),
        "{}",
        run.stderr
    );
    // Once a MySQL server is there, the supported alternative is taken.
    fx.add_server(Kind::Mysql);
    let (id, run) = fx.install(&mssql_or_mysql, &[]);
    assert!(
        run.stderr.contains("alternative `mysql` selected"),
        "{}",
        run.stderr
    );
    let db = fx.database(&id, "main");
    assert_eq!(db["type"], "mysql");
    assert!(fx.front_page(&id).contains("Database type: mysql"));
    fx.ok(&["remove", &id, "--files", "all"]);
    assert_database_gone(Kind::Mysql, &db);
}

#[test]
fn unsupported_server_type_alone_is_refused_at_import() {
    let fx = Fixture::new();
    for kind in Kind::ALL {
        fx.add_server(kind);
    }
    let base = fx.base.clone();
    let src = fx.notes_source("sqlserver", |m| {
        with_requirements(
            &m,
            &requirements(&db_xml("main", &base, "microsoft:sqlserver", "")),
        )
    });
    let zip = fx.zip_unchecked(&src, "sqlserver.app.zip");
    let (before, _) = snapshot(&fx);
    let run = fx.run(&["package", "import", zip.to_str().unwrap()]);
    assert!(!run.ok, "{}", run.stdout);
    assert!(
        run.stderr.contains("microsoft:sqlserver") && run.stderr.contains("cannot be satisfied"),
        "the refusal must name the server type:\n{}",
        run.stderr
    );
    let packages = fx.ok(&["package", "list", "--json"]).json();
    let listed = packages
        .as_array()
        .or_else(|| packages["packages"].as_array())
        .unwrap();
    assert!(listed.is_empty(), "{packages:#}");
    let (after, _) = snapshot(&fx);
    assert_eq!(before, after);
}

#[test]
fn two_database_requirements_get_two_databases() {
    let fx = Fixture::new();
    fx.add_server(Kind::Mysql);
    let base = fx.base.clone();
    // Both with the same default name: the names must still differ.
    let reference = fx.import_notes("twodbs", |m| {
        with_requirements(
            &m,
            &requirements(&format!(
                "<php:extension>pdo_mysql</php:extension>{}{}",
                db_xml("main", &base, "mysql", ""),
                db_xml("logs", &base, "mysql", "")
            )),
        )
    });
    let (id, _) = fx.install(&reference, &[]);
    let main = fx.database(&id, "main");
    let logs = fx.database(&id, "logs");
    assert_ne!(main["name"], logs["name"]);
    assert_ne!(main["login"], logs["login"]);
    assert_database_present(&fx, Kind::Mysql, &main, "notes");
    let s = servers();
    assert!(s.database_exists(Kind::Mysql, str_of(&logs, "name")));
    assert!(s.login_exists(Kind::Mysql, str_of(&logs, "login")));
    assert!(fx.front_page(&id).contains(FIRST_NOTE));

    let removed = fx.ok(&["remove", &id, "--files", "all", "--json"]).json();
    assert_eq!(
        removed["databases_dropped"].as_array().unwrap().len(),
        2,
        "{removed:#}"
    );
    assert_database_gone(Kind::Mysql, &main);
    assert_database_gone(Kind::Mysql, &logs);
}

/// Whether a generated name is plain lowercase ASCII.
fn plain(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[test]
fn long_non_ascii_default_name_fits_every_server() {
    let fx = Fixture::new();
    for kind in Kind::ALL {
        fx.add_server(kind);
    }
    let mut long = format!("{}_", fx.base);
    for c in "Ünïcødé-Nötes Äpplication Ωmega Straße ".chars().cycle() {
        if long.chars().count() == 80 {
            break;
        }
        long.push(c);
    }
    assert_eq!(long.chars().count(), 80);
    let base = fx.base.clone();
    let long_for_meta = long.clone();
    let reference = fx.import_notes("long", move |m| {
        m.replace(
            &format!("<db:default-name>{base}</db:default-name>"),
            &format!("<db:default-name>{long_for_meta}</db:default-name>"),
        )
    });
    let mariadb = servers()
        .query(Kind::Mysql, "SELECT VERSION()")
        .concat()
        .contains("MariaDB");
    for kind in Kind::ALL {
        let (id, _) = fx.install(
            &reference,
            &["--path", kind.as_str(), "--db-server", kind.server_name()],
        );
        let db = fx.database(&id, "main");
        let name = str_of(&db, "name");
        let login = str_of(&db, "login");
        let (db_name, db_limit, login_limit) = match kind {
            // MySQL identifiers ≤ 64; logins ≤ 80 on MariaDB, ≤ 32 on MySQL ≥ 5.7.8.
            Kind::Mysql => (name, 64, if mariadb { 80 } else { 32 }),
            // PostgreSQL identifiers ≤ 63 bytes.
            Kind::Postgresql => (name, 63, 63),
            Kind::Sqlite => (
                Path::new(name).file_stem().unwrap().to_str().unwrap(),
                64,
                0,
            ),
        };
        assert!(db_name.len() <= db_limit, "{kind:?}: `{db_name}` too long");
        assert!(login.len() <= login_limit, "{kind:?}: `{login}` too long");
        assert!(
            plain(db_name) && plain(login),
            "{kind:?}: `{db_name}` `{login}`"
        );
        assert!(db_name.starts_with(&fx.base), "{kind:?}: `{db_name}`");
        assert!(
            db_name.ends_with(&format!("_{id}")),
            "the instance id suffix is kept whole: `{db_name}`"
        );
        assert_database_present(&fx, kind, &db, "notes");
        assert!(fx.front_page(&id).contains(FIRST_NOTE));
        fx.ok(&["remove", &id, "--files", "all"]);
        assert_database_gone(kind, &db);
    }
}

#[test]
fn two_instances_on_one_server_get_distinct_names() {
    let fx = Fixture::new();
    for kind in Kind::ALL {
        fx.add_server(kind);
    }
    let reference = fx.import_notes("", |m| m);
    for kind in Kind::ALL {
        let server = kind.server_name();
        let (a, _) = fx.install(
            &reference,
            &["--path", &format!("{server}-a"), "--db-server", server],
        );
        let (b, _) = fx.install(
            &reference,
            &["--path", &format!("{server}-b"), "--db-server", server],
        );
        let (da, db) = (fx.database(&a, "main"), fx.database(&b, "main"));
        assert_ne!(da["name"], db["name"], "{kind:?}");
        if kind != Kind::Sqlite {
            assert_ne!(da["login"], db["login"], "{kind:?}");
        }
        assert_database_present(&fx, kind, &da, "notes");
        assert_database_present(&fx, kind, &db, "notes");
        // Removing one leaves the other working.
        fx.ok(&["remove", &a, "--files", "all"]);
        assert_database_gone(kind, &da);
        assert_database_present(&fx, kind, &db, "notes");
        assert!(fx.front_page(&b).contains(FIRST_NOTE));
        fx.ok(&["remove", &b, "--files", "all"]);
        assert_database_gone(kind, &db);
    }
}

#[test]
fn an_existing_database_is_never_reused_nor_dropped() {
    let fx = Fixture::new();
    for kind in Kind::ALL {
        fx.add_server(kind);
    }
    let reference = fx.import_notes("", |m| m);
    let s = servers();
    // In a fresh home the instances get ids 1, 2, 3: occupy the names apsctl would derive.
    let taken = |id: u32| format!("{}_{id}", fx.base);
    s.query(
        Kind::Mysql,
        &format!(
            "CREATE DATABASE `{0}`; CREATE TABLE `{0}`.keep (v TEXT); \
             INSERT INTO `{0}`.keep VALUES ('mine'); \
             CREATE USER '{0}'@'localhost' IDENTIFIED BY 'Not-apsctl-1'",
            taken(1)
        ),
    );
    s.create_database(Kind::Postgresql, &taken(2));
    s.pg_in(
        &taken(2),
        "CREATE TABLE keep (v text); INSERT INTO keep VALUES ('mine')",
    );
    s.query(Kind::Postgresql, &format!("CREATE ROLE \"{}\"", taken(2)));
    let sqlite_dir = fx.home.join("databases").join(taken(3));
    fs_err::create_dir_all(&sqlite_dir).unwrap();
    fs_err::write(sqlite_dir.join("keep.txt"), "mine").unwrap();

    let mut installed = Vec::new();
    for (n, kind) in (1..).zip(Kind::ALL) {
        let (id, _) = fx.install(
            &reference,
            &["--path", kind.as_str(), "--db-server", kind.server_name()],
        );
        assert_eq!(id, n.to_string(), "fresh homes number instances from 1");
        let db = fx.database(&id, "main");
        let expected = format!("{}_2", taken(n));
        if kind == Kind::Sqlite {
            assert_eq!(
                Path::new(str_of(&db, "name")).file_stem().unwrap(),
                expected.as_str()
            );
        } else {
            assert_eq!(str_of(&db, "name"), expected, "{kind:?}");
            assert_eq!(str_of(&db, "login"), expected, "{kind:?}");
        }
        assert_database_present(&fx, kind, &db, "notes");
        installed.push((id, kind, db));
    }
    for (id, kind, db) in installed {
        fx.ok(&["remove", &id, "--files", "all"]);
        assert_database_gone(kind, &db);
    }
    // The databases apsctl did not create are untouched.
    assert!(s.tables(Kind::Mysql, &taken(1)).contains("keep"));
    assert_eq!(
        s.query(Kind::Mysql, &format!("SELECT v FROM `{}`.keep", taken(1))),
        ["mine"]
    );
    assert!(s.login_exists(Kind::Mysql, &taken(1)));
    assert_eq!(
        s.pg_in(&taken(2), "SELECT v FROM keep"),
        std::iter::once("mine".to_owned()).collect()
    );
    assert!(s.login_exists(Kind::Postgresql, &taken(2)));
    assert_eq!(
        fs_err::read_to_string(sqlite_dir.join("keep.txt")).unwrap(),
        "mine"
    );
}

/// The table names in database `db` (from `instance show`).
fn tables(kind: Kind, db: &Value) -> Vec<String> {
    let name = str_of(db, "name");
    match kind {
        Kind::Sqlite => sqlite_tables(Path::new(name)),
        _ => servers().tables(kind, name).into_iter().collect(),
    }
}

/// `--use-database ID=INSTANCE --db-prefix ID=PREFIX` (REFERENCE §6.3, D9): a second instance
/// lives in the first one's database under its table prefix; removing it keeps the shared
/// database, says so, and leaves the first instance working; removing the owner while another
/// instance still uses the database keeps it too; the last instance in it drops it.
fn shared_database(kind: Kind) {
    let fx = Fixture::new();
    fx.add_server(kind);
    let reference = fx.import_notes("", |m| m);
    let (a, _) = fx.install(&reference, &["--path", "a"]);
    let owner = fx.database(&a, "main");
    assert!(owner["prefix"].is_null(), "{owner:#}");

    let (b, run) = fx.install(
        &reference,
        &[
            "--path",
            "b",
            "--use-database",
            &format!("main={a}"),
            "--db-prefix",
            "main=b_",
            "--set",
            "first_note=B's own note ✓",
        ],
    );
    assert!(
        run.stderr.contains("table prefix `b_`"),
        "install must say it shares the database:\n{}",
        run.stderr
    );
    assert!(!run.stderr.contains("creating"), "{}", run.stderr);
    let shared = fx.database(&b, "main");
    assert_eq!(shared["name"], owner["name"], "{shared:#}");
    assert_eq!(shared["login"], owner["login"]);
    assert_eq!(shared["type"], kind.as_str());
    assert_eq!(shared["prefix"], "b_");
    assert_eq!(tables(kind, &owner), ["b_notes", "notes"]);
    let page_a = fx.front_page(&a);
    let page_b = fx.front_page(&b);
    assert!(page_a.contains(FIRST_NOTE) && !page_a.contains("B's own note"));
    assert!(page_b.contains("B&#039;s own note ✓") && !page_b.contains(FIRST_NOTE));

    // Removing the sharer keeps the database and says why.
    let removed = fx.ok(&["remove", &b, "--files", "all", "--json"]).json();
    assert_eq!(removed["databases_dropped"], json!([]), "{removed:#}");
    let kept = removed["databases_kept"][0].as_str().unwrap();
    assert!(
        kept.contains(str_of(&owner, "name")) && kept.contains("shared"),
        "{removed:#}"
    );
    let text = {
        let (c, _) = fx.install(
            &reference,
            &[
                "--path",
                "c",
                "--use-database",
                &format!("main={a}"),
                "--db-prefix",
                "main=c_",
            ],
        );
        fx.ok(&["remove", &c, "--files", "all"]).stdout
    };
    assert!(
        text.contains("kept database") && text.contains("shared"),
        "{text}"
    );
    assert_database_present(&fx, kind, &owner, "notes");
    assert_eq!(
        tables(kind, &owner),
        ["notes"],
        "`configure remove` drops only its own prefixed table"
    );
    assert!(fx.front_page(&a).contains(FIRST_NOTE));

    // Removing the owner while a sharer lives in the database keeps it for the sharer.
    let (d, _) = fx.install(
        &reference,
        &[
            "--path",
            "d",
            "--use-database",
            &format!("main={a}"),
            "--db-prefix",
            "main=d_",
        ],
    );
    let removed = fx.ok(&["remove", &a, "--files", "all", "--json"]).json();
    assert_eq!(removed["databases_dropped"], json!([]), "{removed:#}");
    assert!(
        removed["databases_kept"][0]
            .as_str()
            .unwrap()
            .contains("other instances"),
        "{removed:#}"
    );
    assert_database_present(&fx, kind, &owner, "d_notes");
    assert!(fx.front_page(&d).contains(FIRST_NOTE));
    // The last instance in the database drops it and its login, and says so (it came to share
    // the database, but nobody else keeps tables in it any more).
    let removed = fx.ok(&["remove", &d, "--files", "all", "--json"]).json();
    assert_eq!(
        removed["databases_dropped"].as_array().map(Vec::len),
        Some(1),
        "{removed:#}"
    );
    assert_eq!(fx.instance_count(), 0);
    assert_database_gone(kind, &owner);
}

#[test]
fn mysql_database_is_shared_with_a_table_prefix() {
    shared_database(Kind::Mysql);
}

#[test]
fn postgresql_database_is_shared_with_a_table_prefix() {
    shared_database(Kind::Postgresql);
}

#[test]
fn sqlite_database_is_shared_with_a_table_prefix() {
    shared_database(Kind::Sqlite);
}

#[test]
fn a_table_prefix_alone_goes_into_a_new_database() {
    let fx = Fixture::new();
    fx.add_server(Kind::Postgresql);
    let reference = fx.import_notes("", |m| m);
    let (id, _) = fx.install(&reference, &["--db-prefix", "main=p_"]);
    let db = fx.database(&id, "main");
    assert_eq!(db["prefix"], "p_");
    assert_eq!(tables(Kind::Postgresql, &db), ["p_notes"]);
    assert!(fx.front_page(&id).contains(FIRST_NOTE));
    let removed = fx.ok(&["remove", &id, "--files", "all", "--json"]).json();
    assert_eq!(
        removed["databases_dropped"].as_array().unwrap().len(),
        1,
        "{removed:#}"
    );
    assert_database_gone(Kind::Postgresql, &db);
}

#[test]
fn table_prefix_misuse_is_refused_before_any_change() {
    let fx = Fixture::new();
    fx.add_server(Kind::Mysql);
    fx.add_site("other");
    let reference = fx.import_notes("", |m| m);
    let base = fx.base.clone();
    let no_prefixes = fx.import_notes("noprefix", |m| {
        with_requirements(
            &m,
            &requirements(&format!(
                "<php:extension>pdo_mysql</php:extension>{}",
                db_xml("main", &base, "mysql", "")
            )),
        )
    });
    let (a, _) = fx.install(&reference, &["--path", "a"]);
    let (theirs, _) = {
        let run = fx.ok(&["install", &reference, "--site", "other", "--json"]);
        (run.json()["instance"].as_str().unwrap().to_owned(), run)
    };
    let a_use = format!("main={a}");
    let theirs_use = format!("main={theirs}");
    let cases: [(&str, Vec<&str>, &str); 6] = [
        (
            &no_prefixes,
            vec!["--db-prefix", "main=p_"],
            "does not allow a table prefix",
        ),
        (
            &reference,
            vec!["--use-database", &a_use],
            "needs a table prefix",
        ),
        (
            &reference,
            vec!["--use-database", &theirs_use, "--db-prefix", "main=t_"],
            "belongs to system user",
        ),
        (
            &reference,
            vec!["--db-prefix", "main=1-x"],
            "table prefix `1-x` is not valid",
        ),
        (
            &reference,
            vec!["--db-prefix", "logs=p_"],
            "no database requirement with db:id `logs`",
        ),
        (
            &reference,
            vec!["--use-database", "main=999", "--db-prefix", "main=p_"],
            "999",
        ),
    ];
    for (package, extra, reason) in cases {
        assert_install_refused(&fx, package, &extra, reason);
    }
    // A prefix already used in the database.
    let (b, _) = fx.install(
        &reference,
        &[
            "--path",
            "b",
            "--use-database",
            &a_use,
            "--db-prefix",
            "main=b_",
        ],
    );
    let run = assert_install_refused(
        &fx,
        &reference,
        &["--use-database", &a_use, "--db-prefix", "main=b_"],
        "table prefix `b_` is already used",
    );
    assert_eq!(run.code, Some(4), "a conflict: {}", run.stderr);
    for id in [&b, &a, &theirs] {
        fx.ok(&["remove", id, "--files", "all"]);
    }
}
