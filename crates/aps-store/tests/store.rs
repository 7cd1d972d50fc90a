//! Integration tests of the store through its public API, on real files in a temp dir.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use aps_store::{
    DbKind, DbServer, FileKind, GlobalSetting, InstanceDatabase, InstanceFile, InstanceState,
    NewInstance, NewOperation, NewSystemChange, Outcome, OwnerScope, Package, PackageSummary,
    SCHEMA_VERSION, STORE_FILE_NAME, Setting, SettingValuesQuery, Site, StepState, Store,
    StoreError, StoreErrorKind, Timestamp, WebKind,
};

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: Store,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join(STORE_FILE_NAME);
    let store = Store::open(&path).expect("a new store opens");
    Fixture {
        _dir: dir,
        path,
        store,
    }
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms)
}

fn package(package_ref: &str, identity: &str, name: &str, version: &str) -> Package {
    Package {
        summary: PackageSummary {
            package_ref: package_ref.into(),
            identity: identity.into(),
            name: name.into(),
            version: version.into(),
            release: "1".into(),
            aps_version: "1.2".into(),
            app_id: Some(format!("{identity}-id")),
            packager_uri: None,
            archive_path: PathBuf::from(format!("/home/apsctl/packages/{package_ref}.app.zip")),
            imported_at: at(1000),
        },
        meta_json: format!(r#"{{"name":"{name}"}}"#),
        lint_json: "[]".into(),
    }
}

fn site(name: &str, user: &str) -> Site {
    Site {
        name: name.into(),
        docroot: PathBuf::from(format!("/srv/{name}/htdocs")),
        url: format!("https://{name}.test/"),
        system_user: user.into(),
        php: Some("/usr/bin/php8.2".into()),
        web: WebKind::Nginx,
        web_dir: Some(PathBuf::from(format!("/etc/nginx/apsctl/{name}"))),
        web_reload: Some("systemctl reload nginx".into()),
        web_test: None,
        php_fastcgi: Some("unix:/run/php/php8.2-fpm.sock".into()),
        created_at: at(2000),
    }
}

fn server(name: &str) -> DbServer {
    DbServer {
        name: name.into(),
        kind: DbKind::Mysql,
        host: Some("127.0.0.1".into()),
        port: Some(3306),
        admin_user: Some("root".into()),
        admin_password_file: Some("/home/apsctl/secrets/db1.pw".into()),
        version: Some("10.11.6-MariaDB".into()),
        created_at: at(3000),
    }
}

fn database(db_id: &str, server: Option<&str>) -> InstanceDatabase {
    InstanceDatabase {
        db_id: db_id.into(),
        kind: DbKind::Mysql,
        server: server.map(Into::into),
        name: format!("wp_{db_id}"),
        login: format!("wp_{db_id}_u"),
        password: "s3cret".into(),
        host: "127.0.0.1".into(),
        port: Some(3306),
        version: "10.11".into(),
        prefix: None,
        shared: false,
    }
}

fn instance(id: &str, site: &str, package_ref: &str) -> NewInstance {
    NewInstance {
        id: id.into(),
        site: site.into(),
        prefix: format!("/{id}"),
        url: format!("https://{site}.test/{id}/"),
        package_ref: package_ref.into(),
        state: InstanceState::Ready,
        choices_json: "{}".into(),
        settings: vec![
            Setting {
                setting_id: "admin_name".into(),
                value: "admin".into(),
                secret: false,
            },
            Setting {
                setting_id: "admin_password".into(),
                value: "hunter2".into(),
                secret: true,
            },
        ],
        databases: vec![],
        files: vec![
            InstanceFile {
                path: "index.php".into(),
                kind: FileKind::File,
                size: 405,
                sha256: Some("ab".repeat(32)),
            },
            InstanceFile {
                path: "wp-admin".into(),
                kind: FileKind::Dir,
                size: 0,
                sha256: None,
            },
        ],
        system_changes: vec![
            NewSystemChange {
                kind: "web-config".into(),
                data_json: r#"{"file":"a.conf"}"#.into(),
            },
            NewSystemChange {
                kind: "chmod".into(),
                data_json: r#"{"path":"wp-content","old":"0755"}"#.into(),
            },
        ],
        at: at(5000),
    }
}

/// A store with site `a` (user `ua`), site `b` (user `ub`), server `db1` and package `wp-1`.
fn populated() -> Fixture {
    let f = fixture();
    let fresh = "a fresh store accepts it";
    f.store.sites().insert(&site("a", "ua")).expect(fresh);
    f.store.sites().insert(&site("b", "ub")).expect(fresh);
    f.store.db_servers().insert(&server("db1")).expect(fresh);
    f.store
        .packages()
        .insert(&package("wp-1", "wordpress", "WordPress", "5.2.3"))
        .expect(fresh);
    f
}

#[track_caller]
fn assert_error(
    result: Result<impl std::fmt::Debug, StoreError>,
    kind: StoreErrorKind,
    message: &str,
) {
    let err = result.expect_err("the call must fail");
    assert_eq!(err.kind(), kind, "{err}");
    assert_eq!(err.to_string(), message);
}

fn count(path: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("the store opens with rusqlite");
    conn.query_row(sql, [], |r| r.get(0))
        .expect("the count query runs")
}

// --- opening ---------------------------------------------------------------------------------

#[test]
fn open_creates_a_private_file_and_reopens() {
    let f = fixture();
    let mode = fs_err::metadata(&f.path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(f.store.path(), f.path);
    f.store.sites().insert(&site("a", "ua")).unwrap();
    // SQLite gives the write-ahead log and shared-memory files the database file's mode.
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", f.path.display()));
        let mode = fs_err::metadata(&side).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", side.display());
    }
    drop(f.store);
    let again = Store::open(&f.path).unwrap();
    assert_eq!(again.sites().get("a").unwrap(), site("a", "ua"));
}

#[test]
fn open_tightens_a_readable_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STORE_FILE_NAME);
    fs_err::File::create(&path).unwrap();
    fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    Store::open(&path).unwrap();
    let mode = fs_err::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn open_needs_the_home_to_exist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join(STORE_FILE_NAME);
    let err = Store::open(&path).unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Io);
    assert_eq!(
        err.to_string(),
        format!("could not create the store `{}`", path.display())
    );
    assert!(!path.exists());
}

#[test]
fn open_refuses_a_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STORE_FILE_NAME);
    fs_err::write(
        &path,
        b"this is not an SQLite database, just some bytes ....",
    )
    .unwrap();
    let err = Store::open(&path).unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Corrupt);
    assert_eq!(
        err.to_string(),
        format!("could not open the store `{}`", path.display())
    );
}

#[test]
fn open_refuses_a_newer_schema() {
    let f = fixture();
    drop(f.store);
    let newer = SCHEMA_VERSION + 1;
    rusqlite::Connection::open(&f.path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    assert_error(
        Store::open(&f.path),
        StoreErrorKind::Incompatible,
        &format!(
            "store `{}` was written by a newer apsctl (schema {newer} > {SCHEMA_VERSION})",
            f.path.display()
        ),
    );
}

#[test]
fn a_second_connection_sees_committed_data() {
    let f = fixture();
    let other = Store::open(&f.path).unwrap();
    assert!(other.sites().list().unwrap().is_empty());
    f.store.sites().insert(&site("a", "ua")).unwrap();
    assert_eq!(other.sites().list().unwrap(), [site("a", "ua")]);

    // A journal step is visible to another process as soon as `record_step` returns.
    let op = f.store.journal().begin_operation(&operation(None)).unwrap();
    let seq = f.store.journal().record_step(op, "deploy", "{}").unwrap();
    let steps = other.journal().steps(op).unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!((steps[0].seq, steps[0].state), (seq, StepState::Started));
    // And the other connection can write too.
    other.journal().step_done(op, seq).unwrap();
    assert_eq!(
        f.store.journal().steps(op).unwrap()[0].state,
        StepState::Done
    );
}

#[test]
fn concurrent_first_opens_all_succeed() {
    // Several processes (here threads, each with its own connection) may open a fresh store at
    // once: the WAL switch waits on the busy timeout and the migration runs exactly once.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STORE_FILE_NAME);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = Store::open(&path)?;
                store.sites().insert(&site(&format!("s{i}"), "u"))
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap().unwrap();
    }
    assert_eq!(Store::open(&path).unwrap().sites().list().unwrap().len(), 4);
}

#[test]
fn an_unknown_stored_value_reads_as_corrupt() {
    let f = populated();
    f.store
        .instances()
        .commit(&instance("i1", "a", "wp-1"))
        .unwrap();
    rusqlite::Connection::open(&f.path)
        .unwrap()
        .execute("UPDATE instances SET state = 'exploded'", [])
        .unwrap();
    let err = f.store.instances().get("i1").unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Corrupt);
    let source = std::error::Error::source(&err).unwrap();
    let cause = std::error::Error::source(source).unwrap().to_string();
    assert_eq!(
        cause,
        "the store holds `exploded` in `instances.state`, which this apsctl does not know"
    );
}

// --- packages --------------------------------------------------------------------------------

#[test]
fn packages_insert_get_list_find() {
    let f = fixture();
    let packages = f.store.packages();
    let wp = package("wp-1", "wordpress", "WordPress", "5.2.3");
    let wp2 = package("wp-2", "wordpress", "WordPress", "5.3");
    let dolibarr = package("dol-1", "dolibarr", "Dolibarr", "3.1");
    for p in [&wp2, &wp, &dolibarr] {
        packages.insert(p).unwrap();
    }
    assert_eq!(packages.get("wp-1").unwrap(), wp);
    let names: Vec<_> = packages
        .list()
        .unwrap()
        .into_iter()
        .map(|p| p.package_ref)
        .collect();
    assert_eq!(names, ["dol-1", "wp-1", "wp-2"]);
    assert_eq!(
        packages.find_by_identity("wordpress").unwrap(),
        [wp.summary.clone(), wp2.summary.clone()]
    );
    assert!(packages.find_by_identity("joomla").unwrap().is_empty());
    assert_eq!(
        packages.find("wordpress", "5.3", "1").unwrap(),
        Some(wp2.summary.clone())
    );
    assert_eq!(packages.find("wordpress", "5.3", "2").unwrap(), None);
}

#[test]
fn packages_conflicts_and_not_found() {
    let f = fixture();
    let packages = f.store.packages();
    packages
        .insert(&package("wp-1", "wordpress", "WordPress", "5.2.3"))
        .unwrap();
    assert_error(
        packages.insert(&package("wp-1", "other", "Other", "1")),
        StoreErrorKind::Conflict,
        "package `wp-1` already exists",
    );
    assert_error(
        packages.insert(&package("wp-again", "wordpress", "WordPress", "5.2.3")),
        StoreErrorKind::Conflict,
        "package `wordpress` 5.2.3-1 is already in the repository",
    );
    assert_error(
        packages.get("nope"),
        StoreErrorKind::NotFound,
        "package `nope` is not in the repository",
    );
    assert_error(
        packages.delete("nope"),
        StoreErrorKind::NotFound,
        "package `nope` is not in the repository",
    );
    packages.delete("wp-1").unwrap();
    assert!(packages.list().unwrap().is_empty());
}

#[test]
fn a_package_in_use_cannot_be_deleted() {
    let f = populated();
    f.store
        .instances()
        .commit(&instance("i2", "a", "wp-1"))
        .unwrap();
    f.store
        .instances()
        .commit(&instance("i1", "b", "wp-1"))
        .unwrap();
    assert_error(
        f.store.packages().delete("wp-1"),
        StoreErrorKind::Conflict,
        "package `wp-1` is still used by instances `i1`, `i2`",
    );
    f.store.instances().delete("i1").unwrap();
    f.store.instances().delete("i2").unwrap();
    f.store.packages().delete("wp-1").unwrap();
}

// --- sites and servers -----------------------------------------------------------------------

#[test]
fn sites_insert_get_list_delete() {
    let f = fixture();
    let sites = f.store.sites();
    let bare = Site {
        php: None,
        web: WebKind::None,
        web_dir: None,
        web_reload: None,
        web_test: None,
        php_fastcgi: None,
        ..site("b", "ub")
    };
    sites.insert(&bare).unwrap();
    sites.insert(&site("a", "ua")).unwrap();
    assert_eq!(sites.get("b").unwrap(), bare);
    assert_eq!(sites.list().unwrap(), [site("a", "ua"), bare]);
    assert_error(
        sites.insert(&site("a", "other")),
        StoreErrorKind::Conflict,
        "site `a` already exists",
    );
    assert_error(
        sites.get("c"),
        StoreErrorKind::NotFound,
        "site `c` is not registered",
    );
    sites.delete("a").unwrap();
    assert_error(
        sites.delete("a"),
        StoreErrorKind::NotFound,
        "site `a` is not registered",
    );
    assert_eq!(sites.list().unwrap().len(), 1);
}

/// `site update` (issue 10 item 7): URL, PHP and web fields change; name, document root, user
/// and registration time stay; the instances' URLs are set one by one.
#[test]
fn issue_10_sites_update_keeps_what_identifies_the_site() {
    let f = populated();
    f.store
        .instances()
        .commit(&instance("i1", "a", "wp-1"))
        .unwrap();
    let changed = Site {
        url: "https://renamed.test/".into(),
        php: None,
        web: WebKind::Apache,
        web_dir: Some(PathBuf::from("/etc/apache2/apsctl/a")),
        web_reload: Some("apache2ctl graceful".into()),
        web_test: Some("apache2ctl -t".into()),
        php_fastcgi: Some("127.0.0.1:9000".into()),
        docroot: PathBuf::from("/elsewhere"),
        system_user: "intruder".into(),
        created_at: at(9999),
        ..site("a", "ua")
    };
    f.store.sites().update(&changed).unwrap();
    assert_eq!(
        f.store.sites().get("a").unwrap(),
        Site {
            docroot: site("a", "ua").docroot,
            system_user: "ua".into(),
            created_at: site("a", "ua").created_at,
            ..changed.clone()
        }
    );
    f.store
        .instances()
        .set_url("i1", "https://renamed.test/blog/", at(5000))
        .unwrap();
    let i1 = f.store.instances().get("i1").unwrap();
    assert_eq!(i1.url, "https://renamed.test/blog/");
    assert_eq!(i1.updated_at, at(5000));
    assert_error(
        f.store.sites().update(&site("nowhere", "u")),
        StoreErrorKind::NotFound,
        "site `nowhere` is not registered",
    );
    assert_error(
        f.store.instances().set_url("i9", "https://x.test/", at(1)),
        StoreErrorKind::NotFound,
        "instance `i9` does not exist",
    );
}

#[test]
fn a_site_with_instances_cannot_be_deleted() {
    let f = populated();
    f.store
        .instances()
        .commit(&instance("i1", "a", "wp-1"))
        .unwrap();
    assert_error(
        f.store.sites().delete("a"),
        StoreErrorKind::Conflict,
        "site `a` is still used by instance `i1`",
    );
    f.store.sites().delete("b").unwrap();
}

#[test]
fn db_servers_insert_get_list_delete() {
    let f = fixture();
    let servers = f.store.db_servers();
    let sqlite = DbServer {
        kind: DbKind::Sqlite,
        host: None,
        port: None,
        admin_user: None,
        admin_password_file: None,
        version: None,
        ..server("lite")
    };
    servers.insert(&server("db1")).unwrap();
    servers.insert(&sqlite).unwrap();
    assert_eq!(servers.get("lite").unwrap(), sqlite);
    assert_eq!(servers.list().unwrap(), [server("db1"), sqlite]);
    assert_error(
        servers.insert(&server("db1")),
        StoreErrorKind::Conflict,
        "database server `db1` already exists",
    );
    assert_error(
        servers.get("pg"),
        StoreErrorKind::NotFound,
        "database server `pg` is not registered",
    );
    servers.delete("lite").unwrap();
    assert_error(
        servers.delete("lite"),
        StoreErrorKind::NotFound,
        "database server `lite` is not registered",
    );
}

#[test]
fn a_server_holding_instance_databases_cannot_be_deleted() {
    let f = populated();
    let mut new = instance("i1", "a", "wp-1");
    new.databases = vec![database("main", Some("db1")), database("logs", None)];
    f.store.instances().commit(&new).unwrap();
    assert_error(
        f.store.db_servers().delete("db1"),
        StoreErrorKind::Conflict,
        "database server `db1` is still used by instance `i1`",
    );
    f.store.instances().delete("i1").unwrap();
    f.store.db_servers().delete("db1").unwrap();
}

// --- instances -------------------------------------------------------------------------------

#[test]
fn an_instance_round_trips_with_all_its_records() {
    let f = populated();
    let instances = f.store.instances();
    let mut new = instance("i1", "a", "wp-1");
    new.databases = vec![
        database("main", Some("db1")),
        InstanceDatabase {
            prefix: Some("wp_".into()),
            shared: true,
            ..database("aux", None)
        },
    ];
    instances.commit(&new).unwrap();

    let got = instances.get("i1").unwrap();
    assert_eq!(
        (got.id.as_str(), got.site.as_str(), got.prefix.as_str()),
        ("i1", "a", "/i1")
    );
    assert_eq!(got.url, new.url);
    assert_eq!(got.package_ref, "wp-1");
    assert_eq!(got.state, InstanceState::Ready);
    assert_eq!((got.created_at, got.updated_at), (new.at, new.at));

    let mut settings = new.settings.clone();
    settings.sort_by(|a, b| a.setting_id.cmp(&b.setting_id));
    assert_eq!(instances.settings("i1").unwrap(), settings);
    let mut dbs = new.databases.clone();
    dbs.sort_by(|a, b| a.db_id.cmp(&b.db_id));
    assert_eq!(instances.databases("i1").unwrap(), dbs);
    assert_eq!(instances.files("i1").unwrap(), new.files);
    let changes = instances.system_changes("i1").unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.seq, c.kind.as_str()))
            .collect::<Vec<_>>(),
        [(1, "web-config"), (2, "chmod")]
    );
    assert_eq!(changes[1].data_json, new.system_changes[1].data_json);
}

#[test]
fn instance_list_joins_package_and_site() {
    let f = populated();
    f.store
        .packages()
        .insert(&package("dol-1", "dolibarr", "Dolibarr", "3.1"))
        .unwrap();
    let instances = f.store.instances();
    instances.commit(&instance("x2", "b", "wp-1")).unwrap();
    instances.commit(&instance("x1", "a", "dol-1")).unwrap();
    let list = instances.list().unwrap();
    let rows: Vec<_> = list
        .iter()
        .map(|i| {
            (
                i.id.as_str(),
                i.site.as_str(),
                i.package.name.as_str(),
                i.package.version.as_str(),
                i.package.release.as_str(),
                i.state,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("x1", "a", "Dolibarr", "3.1", "1", InstanceState::Ready),
            ("x2", "b", "WordPress", "5.2.3", "1", InstanceState::Ready),
        ]
    );
    assert_eq!(list[1].package.identity, "wordpress");
    assert_eq!(list[1].url, "https://b.test/x2/");
}

#[test]
fn commit_refuses_duplicates_and_unknown_references_without_writing() {
    let f = populated();
    let instances = f.store.instances();
    instances.commit(&instance("i1", "a", "wp-1")).unwrap();
    assert_error(
        instances.commit(&instance("i1", "b", "wp-1")),
        StoreErrorKind::Conflict,
        "instance `i1` already exists",
    );
    assert_error(
        instances.commit(&instance("i2", "zz", "wp-1")),
        StoreErrorKind::NotFound,
        "site `zz` is not registered",
    );
    assert_error(
        instances.commit(&instance("i2", "a", "nope")),
        StoreErrorKind::NotFound,
        "package `nope` is not in the repository",
    );
    let mut bad_server = instance("i2", "a", "wp-1");
    bad_server.databases = vec![database("main", Some("pg9"))];
    assert_error(
        instances.commit(&bad_server),
        StoreErrorKind::NotFound,
        "database server `pg9` is not registered",
    );
    // A duplicate record fails the whole commit: nothing of `i2` is left behind.
    let mut twice = instance("i2", "a", "wp-1");
    twice.files.push(twice.files[0].clone());
    assert_error(
        instances.commit(&twice),
        StoreErrorKind::Conflict,
        "instance `i2` lists file `index.php` twice",
    );
    assert_error(
        instances.get("i2"),
        StoreErrorKind::NotFound,
        "instance `i2` does not exist",
    );
    for table in ["instance_settings", "instance_files", "system_changes"] {
        let n = count(
            &f.path,
            &format!("SELECT count(*) FROM {table} WHERE instance = 'i2'"),
        );
        assert_eq!(n, 0, "{table}");
    }
}

#[test]
fn settings_state_and_system_changes_update() {
    let f = populated();
    let instances = f.store.instances();
    instances.commit(&instance("i1", "a", "wp-1")).unwrap();
    instances
        .update_settings(
            "i1",
            &[
                Setting {
                    setting_id: "admin_name".into(),
                    value: "root".into(),
                    secret: false,
                },
                Setting {
                    setting_id: "title".into(),
                    value: "My blog".into(),
                    secret: false,
                },
            ],
            at(6000),
        )
        .unwrap();
    let values: Vec<_> = instances
        .settings("i1")
        .unwrap()
        .into_iter()
        .map(|s| (s.setting_id, s.value))
        .collect();
    assert_eq!(
        values,
        [
            ("admin_name".to_owned(), "root".to_owned()),
            ("admin_password".to_owned(), "hunter2".to_owned()),
            ("title".to_owned(), "My blog".to_owned()),
        ]
    );
    assert_eq!(instances.get("i1").unwrap().updated_at, at(6000));

    instances
        .set_state("i1", InstanceState::Disabled, at(7000))
        .unwrap();
    let got = instances.get("i1").unwrap();
    assert_eq!(
        (got.state, got.updated_at),
        (InstanceState::Disabled, at(7000))
    );

    let seq = instances
        .append_system_change(
            "i1",
            &NewSystemChange {
                kind: "block-503".into(),
                data_json: "{}".into(),
            },
            at(7001),
        )
        .unwrap();
    assert_eq!(seq, 3);
    instances.delete_system_change("i1", 1, at(7002)).unwrap();
    let seqs: Vec<_> = instances
        .system_changes("i1")
        .unwrap()
        .into_iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(seqs, [2, 3]);
    assert_error(
        instances.delete_system_change("i1", 1, at(7003)),
        StoreErrorKind::NotFound,
        "system change 1 of instance `i1` does not exist",
    );

    for result in [
        instances.update_settings("nope", &[], at(1)),
        instances.set_state("nope", InstanceState::Ready, at(1)),
        instances.delete("nope"),
    ] {
        assert_error(
            result,
            StoreErrorKind::NotFound,
            "instance `nope` does not exist",
        );
    }
    assert_error(
        instances.files("nope"),
        StoreErrorKind::NotFound,
        "instance `nope` does not exist",
    );
}

#[test]
fn replace_swaps_all_records_and_keeps_created_at() {
    let f = populated();
    f.store
        .packages()
        .insert(&package("wp-2", "wordpress", "WordPress", "5.3"))
        .unwrap();
    let instances = f.store.instances();
    instances.commit(&instance("i1", "a", "wp-1")).unwrap();
    let mut updated = instance("i1", "a", "wp-2");
    updated.files = vec![InstanceFile {
        path: "new.php".into(),
        kind: FileKind::File,
        size: 1,
        sha256: Some("00".repeat(32)),
    }];
    updated.system_changes.truncate(1);
    updated.databases = vec![database("main", Some("db1"))];
    updated.at = at(9000);
    instances.replace(&updated).unwrap();

    let got = instances.get("i1").unwrap();
    assert_eq!(got.package_ref, "wp-2");
    assert_eq!((got.created_at, got.updated_at), (at(5000), at(9000)));
    assert_eq!(instances.files("i1").unwrap(), updated.files);
    assert_eq!(instances.system_changes("i1").unwrap().len(), 1);
    assert_eq!(instances.databases("i1").unwrap().len(), 1);
    assert_error(
        instances.replace(&instance("i9", "a", "wp-1")),
        StoreErrorKind::NotFound,
        "instance `i9` does not exist",
    );
}

#[test]
fn delete_removes_the_instance_and_all_its_records() {
    let f = populated();
    let mut new = instance("i1", "a", "wp-1");
    new.databases = vec![database("main", Some("db1"))];
    f.store.instances().commit(&new).unwrap();
    f.store
        .instances()
        .commit(&instance("keep", "a", "wp-1"))
        .unwrap();
    f.store.instances().delete("i1").unwrap();
    for table in [
        "instance_settings",
        "instance_databases",
        "instance_files",
        "system_changes",
    ] {
        let n = count(
            &f.path,
            &format!("SELECT count(*) FROM {table} WHERE instance = 'i1'"),
        );
        assert_eq!(n, 0, "{table}");
    }
    assert_eq!(f.store.instances().files("keep").unwrap().len(), 2);
    assert_eq!(f.store.instances().list().unwrap().len(), 1);
}

#[test]
fn bulk_file_records_are_one_quick_transaction() {
    let f = populated();
    let mut new = instance("big", "a", "wp-1");
    new.files = (0..3000)
        .map(|i| InstanceFile {
            path: format!("wp-content/plugins/p{}/file{i}.php", i % 40),
            kind: FileKind::File,
            size: i,
            sha256: Some(format!("{i:064x}")),
        })
        .collect();
    let started = Instant::now();
    f.store.instances().commit(&new).unwrap();
    let took = started.elapsed();
    // One transaction with a prepared statement takes milliseconds; a commit per row would
    // take seconds with `synchronous = FULL` on a real disk.
    assert!(took.as_secs() < 5, "3000 file records took {took:?}");
    let files = f.store.instances().files("big").unwrap();
    assert_eq!(files.len(), 3000);
    assert!(
        files
            .iter()
            .any(|r| r.size == 2999 && r.path.ends_with("file2999.php"))
    );
}

#[test]
fn setting_values_answer_uniq_checks() {
    let f = populated();
    f.store
        .packages()
        .insert(&package("wp-2", "wordpress", "WordPress", "5.3"))
        .unwrap();
    f.store
        .packages()
        .insert(&package("dol-1", "dolibarr", "Dolibarr", "3.1"))
        .unwrap();
    f.store.sites().insert(&site("a2", "ua")).unwrap();
    let instances = f.store.instances();
    let with_email = |id: &str, site: &str, package_ref: &str, email: &str| {
        let mut new = instance(id, site, package_ref);
        new.settings.push(Setting {
            setting_id: "email".into(),
            value: email.into(),
            secret: false,
        });
        instances.commit(&new).unwrap();
    };
    with_email("i1", "a", "wp-1", "x@a.test");
    with_email("i2", "a2", "wp-2", "y@a.test"); // same owner `ua`, other version
    with_email("i3", "b", "wp-1", "z@b.test"); // other owner
    with_email("i4", "a", "dol-1", "x@a.test"); // other package identity

    let query = |scope, exclude| {
        instances
            .setting_values(&SettingValuesQuery {
                package_identity: "wordpress",
                setting_id: "email",
                scope,
                exclude_instance: exclude,
            })
            .unwrap()
            .into_iter()
            .map(|u| format!("{}@{}={}", u.instance, u.site, u.value))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        query(OwnerScope::Global, None),
        ["i1@a=x@a.test", "i2@a2=y@a.test", "i3@b=z@b.test"]
    );
    assert_eq!(
        query(OwnerScope::Global, Some("i3")),
        ["i1@a=x@a.test", "i2@a2=y@a.test"]
    );
    assert_eq!(
        query(OwnerScope::SystemUser("ua"), None),
        ["i1@a=x@a.test", "i2@a2=y@a.test"]
    );
    assert_eq!(query(OwnerScope::Site("a2"), None), ["i2@a2=y@a.test"]);
    assert!(query(OwnerScope::Site("zz"), None).is_empty());
}

// --- journal ---------------------------------------------------------------------------------

fn operation(instance: Option<&str>) -> NewOperation {
    NewOperation {
        instance: instance.map(Into::into),
        kind: "install".into(),
        params_json: r#"{"site":"a"}"#.into(),
        started_at: at(100),
        pid: 4242,
        host: "web1".into(),
    }
}

#[test]
fn journal_life_cycle() {
    let f = fixture();
    let journal = f.store.journal();
    let op = journal.begin_operation(&operation(Some("i1"))).unwrap();
    let other = journal.begin_operation(&operation(None)).unwrap();
    assert!(other > op);

    let s1 = journal
        .record_step(op, "create-db", r#"{"db":"wp_1"}"#)
        .unwrap();
    let s2 = journal.record_step(op, "deploy", "{}").unwrap();
    assert_eq!((s1, s2), (1, 2));
    journal.step_done(op, s1).unwrap();
    journal
        .update_step_undo(op, s2, r#"{"created":["index.php"]}"#)
        .unwrap();
    // Step 2 failed halfway: undo it (from `started`), then step 1 (from `done`).
    journal.step_undone(op, s2).unwrap();
    journal.step_undone(op, s1).unwrap();

    let steps = journal.steps(op).unwrap();
    let view: Vec<_> = steps
        .iter()
        .map(|s| (s.seq, s.kind.as_str(), s.undo_json.as_str(), s.state))
        .collect();
    assert_eq!(
        view,
        [
            (1, "create-db", r#"{"db":"wp_1"}"#, StepState::Undone),
            (
                2,
                "deploy",
                r#"{"created":["index.php"]}"#,
                StepState::Undone
            ),
        ]
    );

    let unfinished: Vec<_> = journal
        .unfinished_operations()
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(unfinished, [op, other]);

    journal
        .finish_operation(op, Outcome::RolledBack, Some("deploy failed"), at(200))
        .unwrap();
    let done = journal.operation(op).unwrap();
    assert_eq!(done.instance.as_deref(), Some("i1"));
    assert_eq!(done.kind, "install");
    assert_eq!(done.params_json, r#"{"site":"a"}"#);
    assert_eq!(
        (done.started_at, done.pid, done.host.as_str()),
        (at(100), 4242, "web1")
    );
    assert_eq!(done.outcome, Some(Outcome::RolledBack));
    assert_eq!(done.finished_at, Some(at(200)));
    assert_eq!(done.error.as_deref(), Some("deploy failed"));
    let unfinished: Vec<_> = journal
        .unfinished_operations()
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(unfinished, [other]);
}

#[test]
fn journal_refuses_wrong_transitions() {
    let f = fixture();
    let journal = f.store.journal();
    let op = journal.begin_operation(&operation(None)).unwrap();
    let seq = journal.record_step(op, "deploy", "{}").unwrap();
    journal.step_done(op, seq).unwrap();
    assert_error(
        journal.step_done(op, seq),
        StoreErrorKind::Conflict,
        &format!("step 1 of operation {op} is `done`, so it cannot be marked done"),
    );
    journal.step_undone(op, seq).unwrap();
    assert_error(
        journal.step_undone(op, seq),
        StoreErrorKind::Conflict,
        &format!("step 1 of operation {op} is `undone`, so it cannot be marked undone"),
    );
    assert_error(
        journal.update_step_undo(op, seq, "{}"),
        StoreErrorKind::Conflict,
        &format!("step 1 of operation {op} is `undone`, so it cannot change its undo data"),
    );
    assert_error(
        journal.step_done(op, 9),
        StoreErrorKind::NotFound,
        &format!("step 9 of operation {op} is not in the journal"),
    );

    journal
        .finish_operation(op, Outcome::Done, None, at(1))
        .unwrap();
    let finished = format!("operation {op} is already finished (`done`)");
    assert_error(
        journal.record_step(op, "late", "{}"),
        StoreErrorKind::Conflict,
        &finished,
    );
    assert_error(
        journal.finish_operation(op, Outcome::Failed, None, at(2)),
        StoreErrorKind::Conflict,
        &finished,
    );
    assert_error(
        journal.step_undone(op, seq),
        StoreErrorKind::Conflict,
        &finished,
    );

    let missing = aps_store::OperationId(op.0 + 100);
    let message = format!("operation {missing} is not in the journal");
    assert_error(
        journal.operation(missing),
        StoreErrorKind::NotFound,
        &message,
    );
    assert_error(journal.steps(missing), StoreErrorKind::NotFound, &message);
    assert_error(
        journal.record_step(missing, "x", "{}"),
        StoreErrorKind::NotFound,
        &message,
    );
}

// --- global settings ---------------------------------------------------------------------------

fn global(id: &str, value: &str, secret: bool) -> GlobalSetting {
    GlobalSetting {
        setting_id: id.into(),
        value: value.into(),
        secret,
    }
}

#[test]
fn global_settings_belong_to_the_identity_and_survive_its_packages() {
    let f = populated();
    let globals = f.store.global_settings();
    assert!(globals.get("wordpress").unwrap().is_empty());
    globals
        .save(
            "wordpress",
            &[
                global("motto", "hi", false),
                global("key", "sealed:x", true),
            ],
            at(5),
        )
        .unwrap();
    // A later save replaces what it names and keeps the rest; other identities are apart.
    globals
        .save("wordpress", &[global("motto", "hello", false)], at(6))
        .unwrap();
    globals
        .save("other", &[global("motto", "no", false)], at(6))
        .unwrap();
    assert_eq!(
        globals.get("wordpress").unwrap(),
        [
            global("key", "sealed:x", true),
            global("motto", "hello", false)
        ]
    );
    // No version of the identity is needed for its values to stay.
    f.store.packages().delete("wp-1").unwrap();
    let reopened = Store::open(&f.path).unwrap();
    assert_eq!(
        reopened.global_settings().get("wordpress").unwrap().len(),
        2
    );
}

// --- transactions across tables ----------------------------------------------------------------

#[test]
fn atomically_commits_instance_and_operation_together() {
    let f = populated();
    let journal = f.store.journal();
    let op = journal.begin_operation(&operation(Some("i1"))).unwrap();

    // A failure after the instance was written rolls both back.
    let failed: Result<(), StoreError> = f.store.atomically(|s| {
        s.instances().commit(&instance("i1", "a", "wp-1"))?;
        s.journal()
            .finish_operation(op, Outcome::Done, None, at(10))?;
        s.sites().insert(&site("a", "dup")) // Conflict: site `a` already exists
    });
    assert_eq!(failed.unwrap_err().kind(), StoreErrorKind::Conflict);
    assert_eq!(
        f.store.instances().get("i1").unwrap_err().kind(),
        StoreErrorKind::NotFound
    );
    assert_eq!(journal.operation(op).unwrap().outcome, None);

    f.store
        .atomically(|s| {
            s.instances().commit(&instance("i1", "a", "wp-1"))?;
            s.journal()
                .finish_operation(op, Outcome::Done, None, at(10))
        })
        .unwrap();
    assert_eq!(
        f.store.instances().get("i1").unwrap().state,
        InstanceState::Ready
    );
    assert_eq!(journal.operation(op).unwrap().outcome, Some(Outcome::Done));
}
