//! `SQLite` "server": database files in a private directory, dumped with the online backup API.

#[expect(
    dead_code,
    reason = "SQLite uses only the shared proof checks, not the client-server helpers"
)]
mod db_common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use aps_host::db::{
    self, DatabaseServer, DbError, DbErrorKind, DbSpec, Owner, Ownership, Proof, Secret,
    ServerConfig,
};
use aps_host::names::{self, NameParts};
use db_common::Stranger;
use rusqlite::Connection;

fn server(dir: &Path) -> Box<dyn DatabaseServer> {
    db::open(ServerConfig::sqlite(dir.join("databases"))).expect("open the SQLite server")
}

fn spec(name: &str) -> DbSpec {
    DbSpec {
        name: name.to_owned(),
        login: String::new(),
        password: Secret::default(),
        marker: db_common::marker(),
    }
}

fn open_db(server: &dyn DatabaseServer, spec: &DbSpec) -> Connection {
    Connection::open(server.connection_values(spec).name).expect("open the database file")
}

const SETUP: &str = "
CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT NOT NULL, data BLOB);
CREATE TABLE audit (item INTEGER NOT NULL);
CREATE TRIGGER items_ai AFTER INSERT ON items BEGIN INSERT INTO audit VALUES (NEW.id); END;
CREATE VIEW item_labels AS SELECT id, label FROM items;
INSERT INTO items (label, data) VALUES
  ('héllo wörld 日本語 🎉', X'00FF0A0D27225C60'),
  ('quote '' backslash \\ backtick `', NULL);
";

/// Every row of `items` and the audit count, as text.
fn snapshot(conn: &Connection) -> String {
    let mut out = String::new();
    let mut stmt = conn
        .prepare("SELECT id, label, hex(data), length(data) FROM items ORDER BY id")
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| {
            Ok(format!(
                "{}|{}|{}|{:?}\n",
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                r.get::<_, Option<i64>>(3)?
            ))
        })
        .expect("query_map");
    for row in rows {
        out.push_str(&row.expect("row"));
    }
    let audit: i64 = conn
        .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .expect("audit count");
    out.push_str("audit=");
    out.push_str(&audit.to_string());
    out.push('\n');
    out
}

fn insert_big_blob(conn: &Connection) {
    let blob: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    conn.execute(
        "INSERT INTO items (label, data) VALUES ('big', ?1)",
        [&blob],
    )
    .expect("execute");
}

#[test]
fn lifecycle_create_check_dump_drop_create_load_compare() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path());
    let limits = server.name_limits().unwrap();
    assert_eq!(limits.login, None);
    let first = spec(&names::derive_name("WordPress", "17", limits.database).unwrap());
    let second = spec(&names::derive_name("WordPress", "18", limits.database).unwrap());

    assert!(!server.database_exists(&first.name).unwrap());
    server.create_database(&first).unwrap();
    assert!(server.database_exists(&first.name).unwrap());
    assert!(!server.login_exists("").unwrap());
    server.check_login(&first).unwrap();
    let err = server.create_database(&first).unwrap_err();
    assert!(matches!(err, DbError::DatabaseExists { .. }), "{err}");

    let values = server.connection_values(&first);
    let file = Path::new(&values.name);
    assert!(file.is_absolute() && file.is_file(), "{values:?}");
    assert_eq!(
        file,
        tmp.path()
            .join("databases/wordpress_17/wordpress_17.sqlite")
    );
    assert_eq!(
        (
            values.login.as_str(),
            values.host.as_str(),
            values.port.as_str()
        ),
        ("", "", "")
    );
    let mode = |p: &Path| fs_err::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);

    let conn = open_db(server.as_ref(), &first);
    conn.execute_batch(SETUP).unwrap();
    insert_big_blob(&conn);
    let before = snapshot(&conn);
    assert!(
        before.contains("héllo wörld 日本語 🎉|00FF0A0D27225C60"),
        "{before}"
    );
    drop(conn);

    let dumps = tempfile::tempdir().unwrap();
    let dump = dumps.path().join("main.sqlite");
    server.dump(&first.name, &dump).unwrap();
    assert_eq!(mode(&dump), 0o600);
    assert!(
        fs_err::read(&dump)
            .unwrap()
            .starts_with(b"SQLite format 3\0")
    );

    assert!(server.drop_database(&first.name).unwrap());
    assert!(!server.drop_database(&first.name).unwrap());
    assert!(!file.exists() && !file.parent().unwrap().exists());
    assert!(!server.drop_login("anything").unwrap());
    let err = server.check_login(&first).unwrap_err();
    assert_eq!(err.kind(), DbErrorKind::NotFound);

    server.create_database(&second).unwrap();
    server.load(&second, &dump).unwrap();
    let conn = open_db(server.as_ref(), &second);
    assert_eq!(snapshot(&conn), before);
    conn.execute("INSERT INTO items (label) VALUES ('after load')", [])
        .unwrap();
    let audit: i64 = conn
        .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .unwrap();
    assert_eq!(audit, 4, "the trigger came back with the load");
    drop(conn);
    assert!(server.drop_database(&second.name).unwrap());
    assert!(!server.database_exists(&second.name).unwrap());
}

#[test]
fn dump_is_consistent_while_a_writer_has_an_open_transaction() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path());
    let db = spec("busy_1");
    server.create_database(&db).unwrap();
    let mut writer = open_db(server.as_ref(), &db);
    writer.execute_batch(SETUP).unwrap();
    let committed = snapshot(&writer);
    let tx = writer.transaction().unwrap();
    tx.execute("INSERT INTO items (label) VALUES ('uncommitted')", [])
        .unwrap();

    let dump = tmp.path().join("dump.sqlite");
    server.dump(&db.name, &dump).unwrap();
    tx.rollback().unwrap();
    let copy = Connection::open(&dump).unwrap();
    assert_eq!(snapshot(&copy), committed);
}

#[test]
fn colliding_derived_names_get_a_counter() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path());
    let limit = server.name_limits().unwrap().database;
    let parts = NameParts::new("collide", "5").unwrap();
    let mut created = Vec::new();
    for _ in 0..3 {
        let name = names::unique_name(&parts, limit, |n| server.database_exists(n)).unwrap();
        server.create_database(&spec(&name)).unwrap();
        created.push(name);
    }
    assert_eq!(created, ["collide_5", "collide_5_2", "collide_5_3"]);
}

#[test]
fn hostile_but_valid_file_names_work() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path());
    let db = spec("d'\"\\`%_ $(x) ;");
    server.create_database(&db).unwrap();
    server.check_login(&db).unwrap();
    let dump = tmp.path().join("h.sqlite");
    server.dump(&db.name, &dump).unwrap();
    assert!(server.drop_database(&db.name).unwrap());
}

#[test]
fn names_that_are_not_plain_file_names_or_too_long_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path());
    let limit = server.name_limits().unwrap().database;
    let too_long = "a".repeat(limit + 1);
    for bad in ["", "a/b", "..", ".hidden", "a\nb", too_long.as_str()] {
        let err = server.create_database(&spec(bad)).unwrap_err();
        assert_eq!(err.kind(), DbErrorKind::InvalidInput, "{bad:?}: {err}");
    }
    assert!(!tmp.path().join("databases").join("..hidden").exists());
    let at_limit = "b".repeat(limit);
    server.create_database(&spec(&at_limit)).unwrap();
    server.check_login(&spec(&at_limit)).unwrap();
}

#[test]
fn loading_something_that_is_not_a_database_fails_and_keeps_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path());
    let db = spec("target_1");
    server.create_database(&db).unwrap();
    open_db(server.as_ref(), &db).execute_batch(SETUP).unwrap();
    let before = snapshot(&open_db(server.as_ref(), &db));
    let junk = tmp.path().join("junk");
    fs_err::write(&junk, vec![b'x'; 4096]).unwrap();
    let err = server.load(&db, &junk).unwrap_err();
    assert!(matches!(err, DbError::Sqlite { .. }), "{err}");
    assert_eq!(snapshot(&open_db(server.as_ref(), &db)), before);
    let err = server.load(&db, &tmp.path().join("absent")).unwrap_err();
    assert_eq!(err.kind(), DbErrorKind::NotFound);
}

#[test]
fn version_is_the_library_version_and_config_is_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let version = server(tmp.path()).version().unwrap();
    assert_eq!(version.product, "SQLite");
    assert_eq!(version.raw, rusqlite::version());
    assert!(version.at_least(&[3, 8]));
    let err = db::open(ServerConfig::sqlite("relative")).err().unwrap();
    assert_eq!(err.kind(), DbErrorKind::InvalidInput);
}

/// Another owner's database: a folder with a database file, made without apsctl.
struct SqliteStranger {
    databases: PathBuf,
}

impl Stranger for SqliteStranger {
    fn create_database(&self, name: &str) {
        let dir = self.databases.join(name);
        fs_err::create_dir_all(&dir).expect("create the stranger's folder");
        Connection::open(dir.join(format!("{name}.sqlite")))
            .and_then(|conn| conn.execute_batch("CREATE TABLE theirs (a INTEGER);"))
            .expect("create the stranger's database");
    }

    fn create_login(&self, _login: &str) {
        unreachable!("SQLite has no logins");
    }
}

/// Issue 7 (C12): a folder someone else made under apsctl's chosen name is refused and reads
/// as foreign, so an undo never drops it.
#[test]
fn issue_7_a_strangers_database_folder_is_refused_and_foreign() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path());
    let stranger = SqliteStranger {
        databases: tmp.path().join("databases"),
    };
    db_common::foreign_names_are_refused_and_never_ours(
        server.as_ref(),
        &stranger,
        &spec("stranger_1"),
        &spec("stranger_2"),
    );
}

/// Issue 7: the folder carries the marker in `.apsctl-owner` (mode 0600), which proves it ours.
#[test]
fn issue_7_creation_proves_the_folder_ours() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path());
    let db = spec("proof_1");
    db_common::creation_leaves_proofs(
        server.as_ref(),
        &db,
        Ownership {
            database: Owner::Ours(Proof::MarkerFile),
            login: Owner::Absent,
        },
    );
    server.create_database(&db).unwrap();
    let marker_file = tmp.path().join("databases/proof_1/.apsctl-owner");
    assert_eq!(fs_err::read_to_string(&marker_file).unwrap(), db.marker);
    let mode = fs_err::metadata(&marker_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// Issue 7: a marker reached through a link, or a link in place of the folder, proves nothing.
#[test]
fn issue_7_markers_behind_links_are_not_proofs() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path());
    let databases = tmp.path().join("databases");
    let db = spec("linked_1");
    server.create_database(&db).unwrap();
    let outside = tmp.path().join("outside");
    fs_err::create_dir(&outside).unwrap();
    fs_err::write(outside.join("marker"), &db.marker).unwrap();
    let marker_file = databases.join("linked_1/.apsctl-owner");
    fs_err::remove_file(&marker_file).unwrap();
    std::os::unix::fs::symlink(outside.join("marker"), &marker_file).unwrap();
    assert_eq!(server.ownership(&db).unwrap().database, Owner::Foreign);
    fs_err::remove_file(&marker_file).unwrap();
    assert_eq!(server.ownership(&db).unwrap().database, Owner::Foreign);

    // The whole folder a link to a copy that holds the marker.
    let copy = outside.join("linked_2");
    fs_err::create_dir(&copy).unwrap();
    let other = spec("linked_2");
    fs_err::write(copy.join(".apsctl-owner"), &other.marker).unwrap();
    std::os::unix::fs::symlink(&copy, databases.join("linked_2")).unwrap();
    assert_eq!(server.ownership(&other).unwrap().database, Owner::Foreign);
}

/// Issue 7 (item 5): the folder is the site user's, so a drop removes everything in it (the
/// application's `-wal`/`-journal` files, a tenant's notes, sub-folders) without following
/// the links planted there.
#[test]
fn issue_7_drop_removes_the_whole_folder_without_following_links() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path());
    let db = spec("full_1");
    server.create_database(&db).unwrap();
    let file = PathBuf::from(server.connection_values(&db).name);
    let folder = file.parent().unwrap().to_owned();
    let outside = tmp.path().join("outside");
    fs_err::create_dir(&outside).unwrap();
    fs_err::write(outside.join("precious.txt"), "keep me").unwrap();
    fs_err::write(outside.join("inner.txt"), "keep me too").unwrap();

    fs_err::write(folder.join("notes.txt"), "a tenant's file").unwrap();
    fs_err::write(folder.join("full_1.sqlite-wal"), "wal").unwrap();
    fs_err::write(folder.join("full_1.sqlite-journal"), "journal").unwrap();
    fs_err::create_dir(folder.join("cache")).unwrap();
    fs_err::write(folder.join("cache/entry"), "cached").unwrap();
    std::os::unix::fs::symlink(outside.join("precious.txt"), folder.join("link-to-file")).unwrap();
    std::os::unix::fs::symlink(&outside, folder.join("cache/link-to-folder")).unwrap();

    assert!(server.drop_database(&db.name).unwrap());
    assert!(!folder.exists(), "the folder and everything in it are gone");
    assert!(!server.database_exists(&db.name).unwrap());
    assert_eq!(
        fs_err::read_to_string(outside.join("precious.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(
        fs_err::read_to_string(outside.join("inner.txt")).unwrap(),
        "keep me too"
    );
}

/// Issue 7 (item 5): a drop that cannot finish says which file stopped it and why.
#[test]
fn issue_7_a_failed_drop_names_its_cause() {
    // The target dir is on a real disk file system, which keeps the immutable flag.
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let server = server(tmp.path());
    let db = spec("stuck_1");
    server.create_database(&db).unwrap();
    let folder = PathBuf::from(server.connection_values(&db).name)
        .parent()
        .unwrap()
        .to_owned();
    fs_err::create_dir(folder.join("sub")).unwrap();
    let stuck = folder.join("sub/stuck");
    let file = fs_err::File::create(&stuck).unwrap();
    let immutable = |flags| rustix::fs::ioctl_setflags(&file, flags);
    immutable(rustix::fs::IFlags::IMMUTABLE)
        .expect("set the immutable flag (needs root and a file system that has it)");

    let err = server.drop_database(&db.name).unwrap_err();
    immutable(rustix::fs::IFlags::empty()).unwrap();
    let text = err.to_string();
    assert!(text.contains("SQLite database `stuck_1`"), "{text}");
    assert!(text.contains(&stuck.display().to_string()), "{text}");
    assert!(text.contains("Operation not permitted"), "{text}");
    assert!(server.drop_database(&db.name).unwrap());
}

/// `empty_database` leaves the database as its creation did (no table, view or trigger), and a
/// dump loads into it; a name with no database file is refused.
#[test]
fn an_emptied_database_takes_its_dump_again() {
    let dir = db_common::temp_dir();
    let server = server(dir.path());
    let spec = spec("emptied");
    server.create_database(&spec).unwrap();
    open_db(server.as_ref(), &spec)
        .execute_batch(SETUP)
        .unwrap();
    let before = snapshot(&open_db(server.as_ref(), &spec));
    let dump = dir.path().join("dump.sqlite");
    server.dump(&spec.name, &dump).unwrap();
    open_db(server.as_ref(), &spec)
        .execute_batch("CREATE TABLE made_after_the_dump (x INTEGER);")
        .unwrap();
    server.empty_database(&spec).unwrap();
    let objects: i64 = open_db(server.as_ref(), &spec)
        .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
        .unwrap();
    assert_eq!(objects, 0);
    server.load(&spec, &dump).unwrap();
    assert_eq!(snapshot(&open_db(server.as_ref(), &spec)), before);
    let missing = server.empty_database(&self::spec("absent")).unwrap_err();
    assert!(missing.to_string().contains("absent"), "{missing}");
}

/// A link planted in place of a database file (its folder is the site user's) is never followed:
/// emptying, loading and dumping refuse, and the link's target is untouched.
#[test]
fn a_database_file_replaced_by_a_link_is_refused() {
    let dir = db_common::temp_dir();
    let server = server(dir.path());
    let spec = spec("linked");
    server.create_database(&spec).unwrap();
    let dump = dir.path().join("dump.sqlite");
    server.dump(&spec.name, &dump).unwrap();
    let victim = dir.path().join("victim.sqlite");
    Connection::open(&victim)
        .unwrap()
        .execute_batch("CREATE TABLE precious (x INTEGER); INSERT INTO precious VALUES (42);")
        .unwrap();
    let file = std::path::PathBuf::from(server.connection_values(&spec).name);
    fs_err::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&victim, &file).unwrap();
    assert!(server.empty_database(&spec).is_err());
    assert!(server.load(&spec, &dump).is_err());
    assert!(
        server
            .dump(&spec.name, &dir.path().join("out.sqlite"))
            .is_err()
    );
    let kept: i64 = Connection::open(&victim)
        .unwrap()
        .query_row("SELECT x FROM precious", [], |row| row.get(0))
        .unwrap();
    assert_eq!(kept, 42);
}
