//! Backup: the backup scenario of the seed document, step by step (REFERENCE §8.7; D12), and
//! the reading of backup archives (`backup verify`, and restore's first check).
//!
//! Main decision: one self-describing `.tar.zst` ([`aps_archive::bundle`]) is written straight to
//! a temporary file beside the destination and renamed at the end, streaming: database dumps go
//! from the dumper into the archive as they are produced, files from the instance root (walked
//! through descriptors) into the archive, so nothing is copied whole to memory or disk. The seed's
//! order is kept: the stored metadata decides (step 1: `backup-script`, `<sufficient/>`, its
//! interpreter — refused before anything runs), the destination is checked writable (3.1) by
//! creating that temporary file, resources are backed up by apsctl's own means unless the
//! script is sufficient (1.1; a failing dump stops the backup), the script runs as the site's
//! user with the configuration environment plus `BACKUP_FILE` (2, 3.2), and on ANY failure the
//! temporary archive and every temporary file are deleted and the error shown (3.3). Every
//! temporary file is a journaled change, so a crash leaves nothing `recover` does not remove.
//! The instance stays served; the instance lock keeps configure, upgrade and removal out.
//!
//! The manifest (`manifest.json`, last in the archive) holds the format version, apsctl's
//! version, the creation time, the package's identity and version-release, the instance (id,
//! site, path, URL), its settings (values of password settings included: archives are secret
//! material, mode 0600, §11 Q31; they never hold the store's sealing key or a database password
//! apsctl keeps), the resources with their dumps, the backup script's file, and every file and
//! folder below the instance root with its size, SHA-256, mode and class (`application`,
//! `application-modified`, `instance`; §11 Q26) and, for application files, the digest the
//! install recorded.
//!
//! Known gaps: links, FIFOs and other special files below the instance root, and names that are
//! not UTF-8, are not archived (the manifest lists them as skipped and the report warns); a
//! file that changes while it is read fails the backup, which can simply be run again.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aps_archive::bundle::{BundleOptions, BundleWriter, Digest};
use aps_host::safedir::{EntryKind, Phase};
use aps_store::instances::{FileKind, InstanceState};
use serde::{Deserialize, Serialize};

use crate::change::Change;
use crate::context::Context;
use crate::error::Error;
use crate::instance::Loaded;
use crate::journal::{Journal, Outcome};
use crate::report::{Progress, Reporter};
use crate::script::ConfigScript;

/// The format written in every manifest; readers refuse newer ones by this number.
pub const FORMAT: &str = "apsctl-backup/1";
/// The highest format version this apsctl reads.
pub const FORMAT_VERSION: u32 = 1;
/// The archive entry of the manifest.
pub const MANIFEST: &str = "manifest.json";
/// The archive entry of the backup script's file.
pub const SCRIPT_FILE: &str = "script/backup-file";

/// Where a backup goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupTarget {
    /// Exactly this file (`--to FILE`), replaced when it exists.
    File(PathBuf),
    /// A new file in this folder (`--to-dir DIR`), named after the instance and the time; with
    /// `keep`, only the newest `keep` backups of the instance stay in the folder.
    Dir {
        /// The folder.
        dir: PathBuf,
        /// How many backups of this instance to keep there.
        keep: Option<u32>,
    },
}

/// What `backup` needs.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Instance id.
    pub instance: String,
    /// Where the archive goes.
    pub to: BackupTarget,
}

/// What `backup` made.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// The archive.
    pub backup: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Files archived from the instance root.
    pub files: u64,
    /// Databases dumped by apsctl (`db:id`).
    pub databases: Vec<String>,
    /// Whether the package's backup script ran.
    pub backup_script: bool,
    /// Older backups of the instance deleted by `--keep`.
    pub rotated: Vec<PathBuf>,
    /// Entries not archived (links, special files, names that are not UTF-8).
    pub skipped: Vec<String>,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// `apsctl-backup/<version>`.
    pub format: String,
    /// The apsctl that wrote it.
    pub apsctl: String,
    /// When (RFC 3339, UTC).
    pub created: String,
    /// The package installed.
    pub package: ManifestPackage,
    /// The instance backed up.
    pub instance: ManifestInstance,
    /// Its stored settings (installation-only ones are never stored).
    pub settings: BTreeMap<String, String>,
    /// The ids of the settings whose values are secrets.
    pub secret_settings: Vec<String>,
    /// Its databases, and their dumps when apsctl made them.
    pub resources: Vec<ManifestResource>,
    /// The backup script, when the package has one.
    pub backup_script: Option<ManifestScript>,
    /// Every file and folder archived below the instance root.
    pub files: Vec<ManifestFile>,
    /// What was found but not archived, each with the reason.
    pub skipped: Vec<String>,
}

/// The package of a backed-up instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestPackage {
    /// The repository reference it had here.
    pub reference: String,
    /// The identity key (`id`, else packager and name) packages are matched by.
    pub identity: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Release.
    pub release: String,
}

/// The backed-up instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestInstance {
    /// Its id.
    pub id: String,
    /// Its site.
    pub site: String,
    /// Its path below the site root (empty for the root).
    pub path: String,
    /// Its URL.
    pub url: String,
}

/// A database of the instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestResource {
    /// `db:id`.
    pub id: String,
    /// `mysql`, `postgresql` or `sqlite`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The server's version when the dump was made.
    pub server_version: String,
    /// The table prefix, when the instance had one.
    pub prefix: Option<String>,
    /// The dump's archive entry (chunks `<dump>.NNNN`) and digest; `None` when a sufficient
    /// backup script holds the data.
    pub dump: Option<ManifestDump>,
}

/// A database dump in the archive.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestDump {
    /// The stream's name (its chunks are `<name>.0000`, …).
    pub entry: String,
    /// Its size and SHA-256.
    pub digest: DigestText,
}

/// The backup script of the package.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestScript {
    /// Its name in `scripts/`.
    pub name: String,
    /// Whether it declares `<sufficient/>`.
    pub sufficient: bool,
    /// Its `BACKUP_FILE` in the archive.
    pub digest: DigestText,
}

/// A size and a SHA-256 in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestText {
    /// Bytes.
    pub size: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

impl From<Digest> for DigestText {
    fn from(d: Digest) -> Self {
        Self {
            size: d.size,
            sha256: hex::encode(d.sha256),
        }
    }
}

impl DigestText {
    /// Back to a [`Digest`]; `None` for text that is not 64 hex digits.
    pub fn digest(&self) -> Option<Digest> {
        let bytes = hex::decode(&self.sha256).ok()?;
        Some(Digest {
            size: self.size,
            sha256: bytes.try_into().ok()?,
        })
    }
}

/// A file or folder below the instance root.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path relative to the instance root.
    pub path: String,
    /// `file` or `dir`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Permission bits.
    pub mode: u32,
    /// `application` (deployed, unchanged), `application-modified` or `instance`.
    pub class: String,
    /// Size and SHA-256 as archived (files).
    pub digest: Option<DigestText>,
    /// Size and SHA-256 the install recorded (application files, changed or not).
    pub recorded: Option<DigestText>,
}

/// The archive entry of a file below the instance root.
pub(crate) fn file_entry(path: &str) -> String {
    format!("files/{path}")
}

/// Backs an instance up (the seed scenario).
pub fn backup(
    ctx: &Context,
    opts: &BackupOptions,
    reporter: &dyn Reporter,
) -> Result<BackupReport, Error> {
    let id = &opts.instance;
    ctx.store()?.instances().get(id)?;
    let _lock = crate::lock::instance(ctx, id, "backup")?;
    let loaded = Loaded::load(ctx, id)?;
    if loaded.instance.state != InstanceState::Ready {
        return Err(Error::Conflict(format!(
            "instance {id} is {}, not ready: it cannot be backed up",
            loaded.instance.state
        )));
    }
    let mut report = backup_locked(ctx, &loaded, &opts.to, false, reporter)?;
    if let BackupTarget::Dir {
        dir,
        keep: Some(keep),
    } = &opts.to
    {
        report.rotated = rotate(dir, id, *keep)?;
    }
    Ok(report)
}

/// The safety backup of an instance whose lock the caller holds (an upgrade), into `file`:
/// apsctl dumps every database itself even when a backup script says it is sufficient, since
/// the rollback loads the dumps back without any script.
pub(crate) fn backup_loaded(
    ctx: &Context,
    loaded: &Loaded,
    file: &Path,
    reporter: &dyn Reporter,
) -> Result<BackupReport, Error> {
    backup_locked(
        ctx,
        loaded,
        &BackupTarget::File(file.to_path_buf()),
        true,
        reporter,
    )
}

/// Seed steps 1–3 for an instance whose lock is held (`dump_always`: dump the databases even
/// when the backup script is sufficient).
fn backup_locked(
    ctx: &Context,
    loaded: &Loaded,
    to: &BackupTarget,
    dump_always: bool,
    reporter: &dyn Reporter,
) -> Result<BackupReport, Error> {
    let id = &loaded.instance.id;
    // Step 1: the stored metadata; 1.2: the backup script's interpreter, before anything runs.
    let service = loaded.service()?;
    let script = match service.provision.backup_script.as_ref() {
        Some(decl) => {
            let user = loaded.user()?;
            Some(ConfigScript {
                decl,
                interpreter: crate::runtime::interpreter(ctx, &loaded.site, user, decl)?,
                scripts_dir: crate::script::scripts_dir(&loaded.private),
                user,
            })
        }
        None => None,
    };
    // 1.1: apsctl backs the resources up itself unless the script says it is sufficient.
    let own_resources = dump_always || script.as_ref().is_none_or(|s| !s.decl.sufficient);
    // 3.1: the destination, checked writable by creating the archive's temporary file.
    let destination = destination(ctx, loaded, to)?;
    let params = serde_json::json!({ "to": destination });
    let mut journal = Journal::begin(ctx, Some(id), "backup", &params)?;
    let written = write_archive(
        ctx,
        &mut journal,
        loaded,
        &destination,
        script.as_ref(),
        own_resources,
        reporter,
    );
    reporter.progress_done();
    let report = match written {
        Ok(report) => report,
        // 3.3: the temporary archive and every temporary file go (the journal's changes).
        Err(e) => return Err(journal.rollback(reporter, e)),
    };
    journal.finish_with("commit", Outcome::Done, |_| Ok(()))?;
    Ok(report)
}

/// The archive's final path (checked not to lie in a web root: archives are secret material).
fn destination(ctx: &Context, loaded: &Loaded, to: &BackupTarget) -> Result<PathBuf, Error> {
    let path = match to {
        BackupTarget::File(path) => path.clone(),
        BackupTarget::Dir { dir, .. } => {
            let stamp = humantime::format_rfc3339_millis(ctx.env.now())
                .to_string()
                .replace([':', '-', '.'], "");
            dir.join(format!(
                "{}{stamp}.tar.zst",
                archive_prefix(&loaded.instance.id)
            ))
        }
    };
    let (Some(parent), Some(_)) = (path.parent(), path.file_name()) else {
        return Err(Error::Invalid(format!(
            "backup destination `{}` names no file",
            path.display()
        )));
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let folder = fs_err::canonicalize(parent).map_err(|e| {
        Error::Invalid(format!(
            "backup destination `{}` cannot be written: {}",
            path.display(),
            crate::error::chain(&e)
        ))
    })?;
    if !folder.is_dir() {
        return Err(Error::Invalid(format!(
            "backup destination `{}` cannot be written: `{}` is not a folder",
            path.display(),
            folder.display()
        )));
    }
    for site in ctx.store()?.sites().list()? {
        let docroot = fs_err::canonicalize(&site.docroot).unwrap_or(site.docroot.clone());
        if folder.starts_with(&docroot) {
            return Err(Error::Invalid(format!(
                "backup destination `{}` lies in the document root of site `{}`, where visitors could download it; choose a folder outside every web root",
                path.display(),
                site.name
            )));
        }
    }
    Ok(folder.join(path.file_name().unwrap_or_default()))
}

/// The file-name prefix of the backups `--to-dir` makes of instance `id`.
fn archive_prefix(id: &str) -> String {
    format!("apsctl-instance-{id}-")
}

/// Creates the archive's temporary file beside `destination` (new, 0600): the proof that the
/// destination can be written.
fn create_temp(path: &Path) -> Result<std::fs::File, Error> {
    use fs_err::os::unix::fs::OpenOptionsExt as _;
    let file = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            Error::Invalid(format!(
                "backup destination folder `{}` cannot be written: {}",
                path.parent().unwrap_or(path).display(),
                crate::error::chain(&e)
            ))
        })?;
    Ok(file.into_parts().0)
}

fn write_archive(
    ctx: &Context,
    journal: &mut Journal<'_>,
    loaded: &Loaded,
    destination: &Path,
    script: Option<&ConfigScript<'_>>,
    own_resources: bool,
    reporter: &dyn Reporter,
) -> Result<BackupReport, Error> {
    let name = destination
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = destination.with_file_name(format!(".{name}.partial-{:08x}", rand::random::<u32>()));
    let file = journal.step("destination", |j| {
        j.change(Change::TempFile { path: temp.clone() }, || {
            create_temp(&temp)
        })
    })?;
    let mut writer = BundleWriter::new(
        std::io::BufWriter::with_capacity(1 << 20, file),
        &BundleOptions::default(),
    )
    .map_err(|e| Error::Failed(crate::error::chain(&e)))?;
    // 1.1: resources by apsctl's own means (consistent dumps, streamed into the archive).
    let (resources, dumped) = journal.step("dump", |_| {
        dump_resources(ctx, &mut writer, loaded, own_resources, reporter)
    })?;
    // Steps 2 and 3: the configuration environment plus BACKUP_FILE; the script as the site's user.
    let script_file = match script {
        Some(script) => Some(run_backup_script(ctx, journal, loaded, script, reporter)?),
        None => None,
    };
    // The instance's files, walked through descriptors (the site's user owns them).
    let (files, skipped) = journal.step("files", |_| add_files(&mut writer, loaded, reporter))?;
    let backup_script = match (script, &script_file) {
        (Some(script), Some(path)) => Some(add_script_file(&mut writer, script, path)?),
        _ => None,
    };
    let file_count = files.iter().filter(|f| f.kind == "file").count() as u64;
    let manifest = Manifest {
        format: FORMAT.into(),
        apsctl: env!("CARGO_PKG_VERSION").into(),
        created: humantime::format_rfc3339_seconds(ctx.env.now()).to_string(),
        package: ManifestPackage {
            reference: loaded.package()?.summary.package.clone(),
            identity: loaded.package()?.summary.identity.clone(),
            name: loaded.package()?.summary.name.clone(),
            version: loaded.package()?.summary.version.clone(),
            release: loaded.package()?.summary.release.clone(),
        },
        instance: ManifestInstance {
            id: loaded.instance.id.clone(),
            site: loaded.site.name.clone(),
            path: loaded.instance.prefix.clone(),
            url: loaded.instance.url.clone(),
        },
        settings: loaded
            .settings
            .iter()
            .map(|s| (s.setting_id.clone(), s.value.clone()))
            .collect(),
        secret_settings: loaded
            .settings
            .iter()
            .filter(|s| s.secret)
            .map(|s| s.setting_id.clone())
            .collect(),
        resources,
        backup_script,
        files,
        skipped: skipped.clone(),
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::Failed(format!("cannot write the backup's manifest: {e}")))?;
    journal.step("archive", |_| {
        let buffered = writer
            .finish(&json)
            .map_err(|e| Error::Failed(crate::error::chain(&e)))?;
        let file = buffered
            .into_inner()
            .map_err(|e| Error::io(&temp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&temp, e))?;
        fs_err::rename(&temp, destination)?;
        if let Some(dir) = destination.parent() {
            fs_err::File::open(dir).and_then(|d| d.sync_all())?;
        }
        Ok(())
    })?;
    for warning in &skipped {
        reporter.warn(&format!("not in the backup: {warning}"));
    }
    Ok(BackupReport {
        bytes: fs_err::metadata(destination)?.len(),
        backup: destination.to_path_buf(),
        files: file_count,
        databases: dumped,
        backup_script: script.is_some(),
        rotated: Vec::new(),
        skipped,
    })
}

/// Adds the backup script's `BACKUP_FILE` to the archive and removes it (seed sub-step 3.3:
/// no temporary file stays, on success either).
fn add_script_file<W: std::io::Write>(
    writer: &mut BundleWriter<W>,
    script: &ConfigScript<'_>,
    path: &Path,
) -> Result<ManifestScript, Error> {
    let mut data = fs_err::File::open(path)?;
    let size = data.metadata()?.len();
    let digest = writer
        .add_file(SCRIPT_FILE, &mut data, size, 0o600, 0)
        .map_err(|e| Error::Failed(crate::error::chain(&e)))?;
    fs_err::remove_file(path)?;
    Ok(ManifestScript {
        name: script.decl.name.clone(),
        sufficient: script.decl.sufficient,
        digest: digest.into(),
    })
}

/// Step 1.1: the instance's databases as manifest entries, each dumped into the archive as it
/// is produced unless the backup script is sufficient. Returns them and the dumped `db:id`s.
fn dump_resources<W: std::io::Write>(
    ctx: &Context,
    writer: &mut BundleWriter<W>,
    loaded: &Loaded,
    own_resources: bool,
    reporter: &dyn Reporter,
) -> Result<(Vec<ManifestResource>, Vec<String>), Error> {
    let mut resources = Vec::new();
    let mut dumped = Vec::new();
    for db in &loaded.databases {
        let server_name = db.server.clone().unwrap_or_default();
        let server = crate::server::connect(ctx, &server_name)?;
        let fail = |e: aps_host::db::DbError| {
            Error::Failed(format!(
                "backing up database `{}` (db:id `{}`) on `{server_name}` failed: {}",
                db.name,
                db.db_id,
                crate::error::chain(&e)
            ))
        };
        let version = server.version().map_err(fail)?.number;
        let dump = if own_resources {
            reporter.step(&format!(
                "dumping database `{}` (db:id `{}`)",
                db.name, db.db_id
            ));
            let entry = format!("resources/db/{}.{}", db.db_id, server.dump_extension());
            let mut sink = writer
                .stream(&entry)
                .map_err(|e| Error::Failed(crate::error::chain(&e)))?;
            server
                .dump_into(&crate::database::server_name_of(db), &mut sink)
                .map_err(fail)?;
            let (digest, _) = sink
                .finish()
                .map_err(|e| Error::Failed(crate::error::chain(&e)))?;
            dumped.push(db.db_id.clone());
            Some(ManifestDump {
                entry,
                digest: digest.into(),
            })
        } else {
            None
        };
        resources.push(ManifestResource {
            id: db.db_id.clone(),
            kind: db.kind.as_str().to_owned(),
            server_version: version,
            prefix: db.prefix.clone(),
            dump,
        });
    }
    Ok((resources, dumped))
}

/// Steps 2 and 3.2: `BACKUP_FILE` (in the instance's private `tmp/`, made for the site's user,
/// journaled) and the run of `<backup-script> backup`. Returns the file.
fn run_backup_script(
    ctx: &Context,
    journal: &mut Journal<'_>,
    loaded: &Loaded,
    script: &ConfigScript<'_>,
    reporter: &dyn Reporter,
) -> Result<PathBuf, Error> {
    let path = loaded.private.join("tmp").join("backup-file");
    let user = loaded.user()?;
    journal.step("backup-script", |j| {
        j.change(Change::TempFile { path: path.clone() }, || {
            crate::script::user_file(&loaded.private.join("tmp"), "backup-file", user).map(drop)
        })?;
        let mut vars = loaded.variables(None);
        vars.backup_file(&path);
        vars.check_size()?;
        script.run(ctx, "backup", &[], &vars, reporter)
    })?;
    Ok(path)
}

/// Adds every file and folder below the instance root, classed against the install's records;
/// returns the manifest's file list and what was skipped.
fn add_files<W: std::io::Write>(
    writer: &mut BundleWriter<W>,
    loaded: &Loaded,
    reporter: &dyn Reporter,
) -> Result<(Vec<ManifestFile>, Vec<String>), Error> {
    let recorded: BTreeMap<&str, &aps_store::instances::InstanceFile> =
        loaded.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let Some(root) = loaded.place().open_root_if_present()? else {
        return Ok((files, skipped));
    };
    let (mut count, mut bytes) = (0u64, 0u64);
    let bundle_error = |e: aps_archive::bundle::BundleError| Error::Failed(crate::error::chain(&e));
    root.walk(&mut |entry, phase| {
        let Some(rel) = entry.rel.to_str() else {
            if phase != Phase::Leave {
                skipped.push(format!(
                    "`{}`: its name is not UTF-8",
                    entry.rel.to_string_lossy()
                ));
            }
            return Ok(());
        };
        let record = recorded.get(rel);
        match (phase, entry.kind) {
            (Phase::Enter, EntryKind::Dir) => {
                writer
                    .add_dir(&file_entry(rel), entry.mode)
                    .map_err(bundle_error)?;
                files.push(ManifestFile {
                    path: rel.to_owned(),
                    kind: "dir".into(),
                    mode: entry.mode,
                    class: if record.is_some_and(|r| r.kind == FileKind::Dir) {
                        "application".into()
                    } else {
                        "instance".into()
                    },
                    digest: None,
                    recorded: None,
                });
            }
            (Phase::Leaf, EntryKind::File) => {
                let mut data = entry.parent.open_file(entry.name).map_err(Error::Site)?;
                let size = data.metadata().map_err(|e| Error::io(entry.rel, e))?.len();
                let digest = writer
                    .add_file(&file_entry(rel), &mut data, size, entry.mode, 0)
                    .map_err(bundle_error)?;
                let recorded_digest = record.filter(|r| r.kind == FileKind::File).and_then(|r| {
                    Some(DigestText {
                        size: r.size,
                        sha256: r.sha256.clone()?,
                    })
                });
                let archived = DigestText::from(digest);
                let class = match &recorded_digest {
                    Some(r) if *r == archived => "application",
                    Some(_) => "application-modified",
                    None => "instance",
                };
                files.push(ManifestFile {
                    path: rel.to_owned(),
                    kind: "file".into(),
                    mode: entry.mode,
                    class: class.into(),
                    digest: Some(archived),
                    recorded: recorded_digest,
                });
                count += 1;
                bytes += size;
                reporter.progress(&Progress {
                    phase: "files",
                    files: count,
                    bytes,
                    total_bytes: None,
                });
            }
            (Phase::Leaf, kind) => skipped.push(format!(
                "`{rel}`: a {}, which backups do not hold",
                match kind {
                    EntryKind::Symlink => "symbolic link",
                    _ => "special file",
                }
            )),
            _ => {}
        }
        Ok::<(), Error>(())
    })?;
    Ok((files, skipped))
}

/// `--keep N`: deletes all but the newest `keep` backups of instance `id` in `dir` (the names
/// `--to-dir` gives them sort by time).
fn rotate(dir: &Path, id: &str, keep: u32) -> Result<Vec<PathBuf>, Error> {
    let prefix = archive_prefix(id);
    let mut ours: Vec<PathBuf> = Vec::new();
    for entry in fs_err::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let stamp = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tar.zst"));
        if stamp.is_some_and(|s| s.chars().all(|c| c.is_ascii_alphanumeric()))
            && entry.file_type()?.is_file()
        {
            ours.push(entry.path());
        }
    }
    ours.sort();
    let excess = ours.len().saturating_sub(keep as usize);
    let old: Vec<PathBuf> = ours.into_iter().take(excess).collect();
    for path in &old {
        fs_err::remove_file(path)?;
    }
    Ok(old)
}

/// A backup archive checked end to end.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The archive.
    pub backup: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Entries read.
    pub entries: usize,
    /// Bytes read (uncompressed).
    pub bytes: u64,
}

/// `backup verify FILE`: reads the archive end to end without restoring (every entry's name and
/// type, every checksum of the manifest, the dumps' presence) and says all that is wrong; an
/// archive of a newer format is refused naming its version. `restore` runs it first.
pub fn verify(file: &Path) -> Result<VerifyReport, Error> {
    let limits = aps_archive::bundle::BundleLimits::default();
    let mut parsed: Option<Manifest> = None;
    let verified = aps_archive::bundle::verify(file, &limits, &mut |bytes| {
        let manifest = parse_manifest(bytes)?;
        let expected = expected_of(&manifest)?;
        parsed = Some(manifest);
        Ok(expected)
    })
    .map_err(|e| {
        Error::Invalid(format!(
            "backup `{}` is not usable: {}",
            file.display(),
            crate::error::chain(&e)
        ))
    })?;
    let manifest = parsed.ok_or_else(|| {
        Error::Invalid(format!("backup `{}` has no `{MANIFEST}`", file.display()))
    })?;
    Ok(VerifyReport {
        backup: file.to_path_buf(),
        manifest,
        entries: verified.entries,
        bytes: verified.bytes,
    })
}

/// Reads a manifest, refusing formats this apsctl does not know.
fn parse_manifest(bytes: &[u8]) -> Result<Manifest, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("`{MANIFEST}` is not JSON: {e}"))?;
    let format = value["format"].as_str().unwrap_or_default();
    let version = format
        .strip_prefix("apsctl-backup/")
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| format!("`{MANIFEST}` names no known format (`{format}`)"))?;
    if version > FORMAT_VERSION {
        return Err(format!(
            "it was written in backup format version {version} by a newer apsctl (`{}`); this apsctl reads up to version {FORMAT_VERSION}",
            value["apsctl"].as_str().unwrap_or("?")
        ));
    }
    serde_json::from_value(value).map_err(|e| format!("`{MANIFEST}` is not a backup manifest: {e}"))
}

/// What the manifest claims the archive holds.
fn expected_of(m: &Manifest) -> Result<aps_archive::bundle::Expected, String> {
    let digest = |d: &DigestText, what: &str| {
        d.digest()
            .ok_or_else(|| format!("`{MANIFEST}` gives `{what}` a digest that is not SHA-256"))
    };
    let mut expected = aps_archive::bundle::Expected::default();
    for f in &m.files {
        match (&*f.kind, &f.digest) {
            ("dir", _) => expected.dirs.push(file_entry(&f.path)),
            ("file", Some(d)) => expected
                .files
                .push((file_entry(&f.path), digest(d, &f.path)?)),
            _ => {
                return Err(format!(
                    "`{MANIFEST}` lists `{}` without its digest",
                    f.path
                ));
            }
        }
    }
    for r in &m.resources {
        if let Some(dump) = &r.dump {
            expected
                .streams
                .push((dump.entry.clone(), digest(&dump.digest, &dump.entry)?));
        }
    }
    if let Some(script) = &m.backup_script {
        expected
            .files
            .push((SCRIPT_FILE.to_owned(), digest(&script.digest, SCRIPT_FILE)?));
    }
    Ok(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_formats_are_refused_naming_the_version() {
        let error =
            parse_manifest(br#"{"format": "apsctl-backup/7", "apsctl": "9.0.0"}"#).unwrap_err();
        assert!(error.contains("format version 7"), "{error}");
        assert!(error.contains("9.0.0"), "{error}");
        assert!(parse_manifest(br#"{"format": "tarball"}"#).is_err());
    }

    #[test]
    fn rotation_keeps_the_newest_backups_of_the_instance_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "apsctl-instance-3-20261201T100000000Z.tar.zst",
            "apsctl-instance-3-20261202T100000000Z.tar.zst",
            "apsctl-instance-3-20261203T100000000Z.tar.zst",
            "apsctl-instance-31-20261201T100000000Z.tar.zst",
            "notes.txt",
        ] {
            fs_err::write(dir.path().join(name), "x").unwrap();
        }
        let gone = rotate(dir.path(), "3", 2).unwrap();
        assert_eq!(
            gone,
            vec![
                dir.path()
                    .join("apsctl-instance-3-20261201T100000000Z.tar.zst")
            ]
        );
        assert!(
            dir.path()
                .join("apsctl-instance-31-20261201T100000000Z.tar.zst")
                .exists()
        );
        assert!(dir.path().join("notes.txt").exists());
    }
}
