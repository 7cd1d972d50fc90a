//! Package operations: lint, import, list, show and remove (REFERENCE §2.4, §8.1).
//!
//! Main decision: import verifies the archive completely without unpacking it. The archive is
//! first copied into the repository under a temporary name, and that copy — the very bytes that
//! will be kept — is checked entry by entry and streamed through SHA-256 once
//! ([`aps_archive::Archive::scan`]); only `APP-META.xml` and `APP-LIST.xml` are read into memory.
//! The copy is renamed into place before the store row is written, so a refused or failed import
//! leaves neither a file nor a row behind.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aps_archive::FileInfo;
use aps_meta::lint::{Finding, Severity};
use aps_meta::model::{ApsFormat, Package};
use serde::Serialize;
use sha2::Digest as _;

use crate::context::Context;
use crate::error::Error;

/// The metadata file at the root of every package.
pub const APP_META: &str = "APP-META.xml";
/// The listing file of APS 1.2 packages.
pub const APP_LIST: &str = "APP-LIST.xml";
/// Largest metadata file apsctl reads (the biggest real one is ~60 KB).
const MAX_META_BYTES: u64 = 16 << 20;

/// The outcome of `package lint`.
#[derive(Debug, Default, Serialize)]
pub struct LintReport {
    /// Findings that make the package unusable or unsafe.
    pub errors: Vec<Finding>,
    /// Harmless quirks.
    pub warnings: Vec<Finding>,
}

impl LintReport {
    fn push_all(&mut self, findings: impl IntoIterator<Item = Finding>) {
        for f in findings {
            match f.severity {
                Severity::Error => self.errors.push(f),
                Severity::Warning => self.warnings.push(f),
            }
        }
    }

    fn error(&mut self, rule: &str, file: &str, message: String) {
        self.errors.push(Finding {
            rule: rule.to_owned(),
            severity: Severity::Error,
            message,
            file: file.to_owned(),
            line: None,
            column: None,
        });
    }
}

/// Lints an `.app.zip`, an unpacked package folder or a lone `APP-META.xml`.
pub fn lint(path: &Path, config: &crate::context::Config) -> Result<LintReport, Error> {
    let limits = &config.archive_limits;
    let mut report = LintReport::default();
    if path.is_dir() {
        lint_folder(path, &mut report)?;
    } else if path.file_name().is_some_and(|n| n == APP_META) {
        let bytes = fs_err::read(path)?;
        report.push_all(aps_meta::lint::lint_meta(
            &bytes,
            &path.display().to_string(),
        ));
    } else if path.is_file() {
        lint_archive(path, limits, &mut report);
    } else {
        return Err(Error::NotFound(format!(
            "`{}` does not exist",
            path.display()
        )));
    }
    Ok(report)
}

fn lint_archive(path: &Path, limits: &aps_archive::Limits, report: &mut LintReport) {
    let name = path.display().to_string();
    if !name.ends_with(".app.zip") {
        report.warnings.push(Finding {
            rule: "archive-file-name".into(),
            severity: Severity::Warning,
            message: format!("`{name}` does not end in `.app.zip`; import will refuse it"),
            file: name.clone(),
            line: None,
            column: None,
        });
    }
    match read_archive(path, limits) {
        Ok(contents) => lint_contents(
            &contents.meta,
            contents.list.as_deref(),
            &contents.scan.files,
            report,
        ),
        Err(e) => report.error("archive-unsafe", &name, e),
    }
}

/// An archive checked entry by entry and hashed, with its metadata files.
struct ArchiveContents {
    scan: aps_archive::Scan,
    meta: Vec<u8>,
    list: Option<Vec<u8>>,
}

/// Opens, checks and hashes an archive in one pass over its entries; reads the metadata files.
fn read_archive(path: &Path, limits: &aps_archive::Limits) -> Result<ArchiveContents, String> {
    let shown = path.display();
    let mut archive = aps_archive::Archive::open(path, limits).map_err(|e| e.to_string())?;
    if !archive.contains_file(APP_META) {
        return Err(format!("`{shown}` has no `{APP_META}` at its root"));
    }
    let meta = archive
        .read_file(APP_META, MAX_META_BYTES)
        .map_err(|e| e.to_string())?;
    let list = if archive.contains_file(APP_LIST) {
        Some(
            archive
                .read_file(APP_LIST, MAX_META_BYTES)
                .map_err(|e| e.to_string())?,
        )
    } else {
        None
    };
    let options = match list
        .as_deref()
        .map(|b| aps_meta::applist::parse_app_list(b, APP_LIST))
    {
        Some(Ok(parsed)) => aps_archive::ScanOptions::for_list(&parsed),
        _ => aps_archive::ScanOptions::default(),
    };
    let scan = archive.scan(&options).map_err(|e| e.to_string())?;
    Ok(ArchiveContents { scan, meta, list })
}

fn lint_folder(dir: &Path, report: &mut LintReport) -> Result<(), Error> {
    let meta_path = dir.join(APP_META);
    if !meta_path.is_file() {
        report.error(
            "meta-missing",
            APP_META,
            format!("`{}` has no `{APP_META}`", dir.display()),
        );
        return Ok(());
    }
    let meta = fs_err::read(&meta_path)?;
    let list_path = dir.join(APP_LIST);
    let list = if list_path.is_file() {
        Some(fs_err::read(&list_path)?)
    } else {
        None
    };
    let files = hash_folder(dir)?;
    lint_contents(&meta, list.as_deref(), &files, report);
    if list.is_none() {
        // A source folder gets its listing from `package build`.
        for f in report
            .errors
            .iter_mut()
            .filter(|f| f.rule == "list-missing")
        {
            f.severity = Severity::Warning;
            f.message.push_str(" (`apsctl package build` writes it)");
        }
        let (warnings, errors): (Vec<_>, Vec<_>) = report
            .errors
            .drain(..)
            .partition(|f| f.severity == Severity::Warning);
        report.errors = errors;
        report.warnings.extend(warnings);
    }
    Ok(())
}

/// Size and SHA-256 of every regular file below `dir`, by `/`-separated relative name.
fn hash_folder(dir: &Path) -> Result<BTreeMap<String, FileInfo>, Error> {
    let mut files = BTreeMap::new();
    let top = aps_host::safedir::SafeDir::open(dir).map_err(Error::Site)?;
    top.walk(&mut |entry, phase| {
        if phase != aps_host::safedir::Phase::Leaf
            || entry.kind != aps_host::safedir::EntryKind::File
        {
            return Ok(());
        }
        let mut hasher = sha2::Sha256::new();
        let size = std::io::copy(
            &mut entry.parent.open_file(entry.name).map_err(Error::Site)?,
            &mut hasher,
        )
        .map_err(|e| Error::io(&dir.join(entry.rel), e))?;
        let name = entry.rel.to_string_lossy().replace('\\', "/");
        files.insert(
            name,
            FileInfo {
                size,
                sha256: hasher.finalize().into(),
                md5: None,
            },
        );
        Ok::<(), Error>(())
    })?;
    Ok(files)
}

/// The checks shared by archives and folders, given the package's files with their digests.
fn lint_contents(
    meta: &[u8],
    list: Option<&[u8]>,
    files: &BTreeMap<String, FileInfo>,
    report: &mut LintReport,
) {
    report.push_all(aps_meta::lint::lint_meta(meta, APP_META));
    let Ok(parsed) = aps_meta::parse::parse_app_meta(meta, APP_META) else {
        return; // lint_meta reported the parse error
    };
    let exists = |p: &str| files.contains_key(p) || files.keys().any(|k| is_under(k, p));
    report.push_all(aps_meta::lint::check_package_paths(
        &parsed.package,
        &exists,
    ));
    check_listing(&parsed.package, list, files, report);
}

/// `dir` names a folder of the package when some file lies below it.
fn is_under(file: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    file.len() > dir.len() && file.starts_with(dir) && file.as_bytes()[dir.len()] == b'/'
}

/// REFERENCE §2.4 check 7: a 1.2 package carries a complete, correct APP-LIST.xml.
fn check_listing(
    pkg: &Package,
    list: Option<&[u8]>,
    files: &BTreeMap<String, FileInfo>,
    report: &mut LintReport,
) {
    let Some(bytes) = list else {
        if pkg.format == ApsFormat::V1_2 {
            report.error(
                "list-missing",
                APP_LIST,
                format!("an APS 1.2 package must carry `{APP_LIST}`"),
            );
        }
        return;
    };
    match aps_meta::applist::parse_app_list(bytes, APP_LIST) {
        Err(e) => report.error("list-invalid", APP_LIST, e.to_string()),
        Ok(list) => {
            if let Err(problems) = aps_archive::verify_listing(files, &list) {
                for p in &problems.problems {
                    report.error("list-mismatch", APP_LIST, p.to_string());
                }
            }
        }
    }
}

/// What `package build` produced.
#[derive(Debug, Serialize)]
pub struct BuildReport {
    /// The archive written.
    pub path: PathBuf,
    /// Files packed (APP-LIST.xml included).
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
    /// Lint warnings of the source folder.
    pub warnings: Vec<Finding>,
}

/// Lints a package source folder and packs it into `out` with a fresh APP-LIST.xml; refused
/// when the folder has lint errors (other than the listing, which the build writes).
pub fn build(src: &Path, out: &Path) -> Result<BuildReport, Error> {
    let mut report = LintReport::default();
    if !src.is_dir() {
        return Err(Error::NotFound(format!(
            "package source folder `{}` does not exist",
            src.display()
        )));
    }
    if !out.display().to_string().ends_with(".app.zip") {
        return Err(Error::Invalid(format!(
            "`{}`: a package file name must end in `.app.zip`",
            out.display()
        )));
    }
    lint_folder(src, &mut report)?;
    // The build writes a fresh listing: a missing or stale one in the folder is no finding.
    report.errors.retain(|f| !f.rule.starts_with("list-"));
    report.warnings.retain(|f| !f.rule.starts_with("list-"));
    if !report.errors.is_empty() {
        return Err(Error::Invalid(format!(
            "`{}` has lint errors:\n{}",
            src.display(),
            describe_capped(&report.errors)
        )));
    }
    let packed = aps_archive::pack_folder(src, out).map_err(|e| Error::Failed(e.to_string()))?;
    Ok(BuildReport {
        path: packed.path,
        files: packed.files,
        bytes: packed.bytes,
        warnings: report.warnings,
    })
}

/// A package as the repository knows it (CLI.md `package import` / `list`).
#[derive(Debug, Clone, Serialize)]
pub struct PackageSummary {
    /// The stable reference printed by import and accepted by every command.
    pub package: String,
    /// Display name.
    pub name: String,
    /// Upstream version.
    pub version: String,
    /// Package release.
    pub release: String,
    /// APS format version: `1.0`, `1.1` or `1.2`.
    pub aps_version: String,
    /// The package identity (REFERENCE §2.6).
    pub identity: String,
}

/// What `package import` did.
#[derive(Debug, Serialize)]
pub struct ImportReport {
    /// The stored package.
    #[serde(flatten)]
    pub summary: PackageSummary,
    /// Warnings found while checking it (stored with the package).
    pub warnings: Vec<Finding>,
}

/// What an upload may be beyond the largest unpacked package (the zip's own headers).
const UPLOAD_SLACK: u64 = 16 << 20;

/// A package arriving in pieces (an HTTP upload): written as it comes into apsctl's own staging
/// folder (a private temporary `.app.zip`), refused as soon as it grows past the largest package
/// (`--max-package-size` plus the zip's headers), imported like a file, and removed whatever the
/// outcome (also when dropped half-written).
#[derive(Debug)]
pub struct Upload {
    file: tempfile::NamedTempFile,
    written: u64,
    limit: u64,
}

impl Upload {
    /// A new, empty upload.
    pub fn begin(ctx: &Context) -> Result<Self, Error> {
        let staging = ctx.home.staging();
        let file = tempfile::Builder::new()
            .prefix("upload-")
            .suffix(".app.zip")
            .tempfile_in(&staging)
            .map_err(|e| Error::io(&staging, e))?;
        Ok(Self {
            file,
            written: 0,
            limit: ctx
                .config
                .archive_limits
                .max_total_uncompressed
                .saturating_add(UPLOAD_SLACK),
        })
    }

    /// Appends `chunk`; refuses an upload larger than the limit.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), Error> {
        use std::io::Write as _;
        self.written = self.written.saturating_add(chunk.len() as u64);
        if self.written > self.limit {
            return Err(Error::Invalid(format!(
                "the upload is larger than the largest package apsctl takes ({} bytes; \
                 --max-package-size sets it)",
                self.limit
            )));
        }
        self.file
            .write_all(chunk)
            .map_err(|e| Error::io(self.file.path(), e))
    }

    /// Imports what was uploaded (`package import`).
    pub fn import(self, ctx: &Context) -> Result<ImportReport, Error> {
        if self.written == 0 {
            return Err(Error::Invalid(
                "the upload is empty: send the `.app.zip` itself".into(),
            ));
        }
        import(ctx, self.file.path())
    }
}

/// Verifies `file` completely and stores it in the repository (REFERENCE §8.1).
pub fn import(ctx: &Context, file: &Path) -> Result<ImportReport, Error> {
    let shown = file.display().to_string();
    if !shown.ends_with(".app.zip") {
        return Err(Error::Invalid(format!(
            "`{shown}` is not an APS package: its name must end in `.app.zip`"
        )));
    }
    if !file.is_file() {
        return Err(Error::NotFound(format!(
            "`{shown}` does not exist or is not a file"
        )));
    }
    // Verify the very bytes that will be kept: copy first, then check the copy.
    let copy = copy_into_repository(ctx, file)?;
    let contents = read_archive(copy.path(), &ctx.config.archive_limits)
        .map_err(|e| Error::Invalid(format!("`{shown}` was refused: {e}")))?;
    let (meta, list, scan) = (contents.meta, contents.list, contents.scan);
    let parsed = aps_meta::parse::parse_app_meta(&meta, APP_META)
        .map_err(|e| Error::Invalid(format!("`{shown}` was refused: {e}")))?;

    let mut report = LintReport::default();
    lint_contents(&meta, list.as_deref(), &scan.files, &mut report);
    if !report.errors.is_empty() {
        return Err(Error::Invalid(format!(
            "`{shown}` was refused:\n{}",
            describe_capped(&report.errors)
        )));
    }
    let pkg = parsed.package;
    check_master(ctx, &pkg)?;

    let identity = identity_key(&pkg.identity());
    if ctx
        .store()?
        .packages()
        .find(&identity, &pkg.version, &pkg.release)?
        .is_some()
    {
        return Err(Error::Conflict(format!(
            "package {} {}-{} ({identity}) is already in the repository",
            pkg.name, pkg.version, pkg.release
        )));
    }
    let reference = new_reference(ctx, &pkg, &identity)?;
    let stored = persist_archive(ctx, copy, &reference)?;
    let summary = summary_of(&reference, &pkg, &identity);
    let record = aps_store::packages::Package {
        summary: aps_store::packages::PackageSummary {
            package_ref: reference.clone(),
            identity: identity.clone(),
            name: pkg.name.clone(),
            version: pkg.version.clone(),
            release: pkg.release.clone(),
            aps_version: summary.aps_version.clone(),
            app_id: pkg.id.clone(),
            packager_uri: pkg.packager.as_ref().and_then(|p| p.uri.clone()),
            archive_path: stored.clone(),
            imported_at: crate::now(ctx),
        },
        meta_json: serde_json::to_string(&pkg).map_err(|e| {
            Error::Failed(format!("cannot serialize the metadata of `{shown}`: {e}"))
        })?,
        lint_json: serde_json::to_string(&report.warnings).unwrap_or_else(|_| "[]".into()),
    };
    if let Err(e) = ctx.store()?.packages().insert(&record) {
        let _ = fs_err::remove_file(&stored);
        return Err(e.into());
    }
    Ok(ImportReport {
        summary,
        warnings: report.warnings,
    })
}

/// Copies `file` into a temporary file of this process in the repository (removed when dropped).
fn copy_into_repository(ctx: &Context, file: &Path) -> Result<tempfile::NamedTempFile, Error> {
    let repository = ctx.home.repository();
    let partial = tempfile::Builder::new()
        .prefix(".import.")
        .suffix(".partial")
        .tempfile_in(&repository)
        .map_err(|e| Error::io(&repository, e))?;
    fs_err::copy(file, partial.path())?;
    Ok(partial)
}

/// Moves a verified copy into place as `<reference>.app.zip` and returns where it landed.
///
/// Nothing is replaced: when another import (of the same package, racing) or a crashed one
/// already holds that name, this archive gets a unique name instead. So an import that later
/// fails removes only its own file, never an archive a stored package points at.
fn persist_archive(
    ctx: &Context,
    mut partial: tempfile::NamedTempFile,
    reference: &str,
) -> Result<PathBuf, Error> {
    let repository = ctx.home.repository();
    let mut target = repository.join(format!("{reference}.app.zip"));
    loop {
        match partial.persist_noclobber(&target) {
            Ok(_) => return Ok(target),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                partial = e.file;
                target =
                    repository.join(format!("{reference}-{:08x}.app.zip", rand::random::<u32>()));
            }
            Err(e) => return Err(Error::io(&target, e.error)),
        }
    }
}

/// Findings of one rule shown in a message before the rest are counted (a stale APP-LIST.xml
/// yields one finding per file; `package lint --json` lists them all).
pub const SHOWN_PER_RULE: usize = 20;

/// One indented line per finding, at most [`SHOWN_PER_RULE`] of each rule, then a count of the
/// rest.
fn describe_capped(findings: &[Finding]) -> String {
    let mut lines = Vec::new();
    let mut per_rule: BTreeMap<&str, usize> = BTreeMap::new();
    for f in findings {
        let seen = per_rule.entry(f.rule.as_str()).or_default();
        *seen += 1;
        if *seen <= SHOWN_PER_RULE {
            lines.push(format!("  {}", describe(f)));
        }
    }
    for (rule, count) in per_rule {
        if count > SHOWN_PER_RULE {
            lines.push(format!(
                "  … and {} more `{rule}` finding(s) (`apsctl --json package lint` lists them all)",
                count - SHOWN_PER_RULE
            ));
        }
    }
    lines.join("\n")
}

fn describe(f: &Finding) -> String {
    match (f.line, f.column) {
        (Some(l), Some(c)) => format!("{}:{l}:{c}: {} [{}]", f.file, f.message, f.rule),
        _ => format!("{}: {} [{}]", f.file, f.message, f.rule),
    }
}

/// REFERENCE §2.4 check 10: an add-on's master must be in the repository.
fn check_master(ctx: &Context, pkg: &Package) -> Result<(), Error> {
    let Some(master) = &pkg.master_package else {
        return Ok(());
    };
    let known = !ctx
        .store()?
        .packages()
        .find_by_identity(&master.id)?
        .is_empty();
    if known {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "`{}` is an add-on of `{}`, which is not in the repository; import the master package first",
            pkg.name, master.id
        )))
    }
}

/// A readable, stable reference: `<name>-<version>-<release>`, disambiguated by identity.
fn new_reference(ctx: &Context, pkg: &Package, identity: &str) -> Result<String, Error> {
    let base = slug(&format!("{}-{}-{}", pkg.name, pkg.version, pkg.release));
    match ctx.store()?.packages().get(&base) {
        Err(e) if e.kind() == aps_store::StoreErrorKind::NotFound => return Ok(base),
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    let digest = hex::encode(sha2::Sha256::digest(identity.as_bytes()));
    Ok(format!("{base}-{}", &digest[..8]))
}

fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_owned();
    if out.is_empty() {
        "package".into()
    } else {
        out
    }
}

fn summary_of(reference: &str, pkg: &Package, identity: &str) -> PackageSummary {
    PackageSummary {
        package: reference.to_owned(),
        name: pkg.name.clone(),
        version: pkg.version.clone(),
        release: pkg.release.clone(),
        aps_version: pkg.format.as_str().to_owned(),
        identity: identity.to_owned(),
    }
}

/// The identity of a package as one string (REFERENCE §2.6): its `id`, else `name` and the
/// packager URI.
pub fn identity_key(identity: &aps_meta::model::Identity) -> String {
    match identity {
        aps_meta::model::Identity::Id(id) => id.clone(),
        aps_meta::model::Identity::NameAndPackager { name, packager_uri } => {
            format!(
                "{name} ({})",
                packager_uri.as_deref().unwrap_or("no packager URI")
            )
        }
    }
}

/// Every package in the repository, by name then version.
pub fn list(ctx: &Context) -> Result<Vec<PackageSummary>, Error> {
    Ok(ctx
        .store()?
        .packages()
        .list()?
        .into_iter()
        .map(summary_of_record)
        .collect())
}

fn summary_of_record(p: aps_store::packages::PackageSummary) -> PackageSummary {
    PackageSummary {
        package: p.package_ref,
        name: p.name,
        version: p.version,
        release: p.release,
        aps_version: p.aps_version,
        identity: p.identity,
    }
}

/// A stored package with its parsed metadata.
#[derive(Debug)]
pub struct StoredPackage {
    /// The summary.
    pub summary: PackageSummary,
    /// The parsed metadata.
    pub meta: Package,
    /// The original archive in the repository.
    pub archive: PathBuf,
    /// Warnings found at import.
    pub warnings: Vec<Finding>,
}

/// Loads the package `reference` from the repository.
pub fn load(ctx: &Context, reference: &str) -> Result<StoredPackage, Error> {
    let p = ctx.store()?.packages().get(reference)?;
    let meta: Package = serde_json::from_str(&p.meta_json).map_err(|e| {
        Error::Failed(format!(
            "the stored metadata of package `{reference}` is unreadable: {e}"
        ))
    })?;
    let warnings = serde_json::from_str(&p.lint_json).unwrap_or_default();
    Ok(StoredPackage {
        archive: p.summary.archive_path.clone(),
        summary: summary_of_record(p.summary),
        meta,
        warnings,
    })
}

/// Largest license text `package show` reads from an archive.
const MAX_LICENSE_BYTES: u64 = 1 << 20;

/// A stored package with what `package show` presents beyond its metadata.
#[derive(Debug)]
pub struct PackageDetails {
    /// The package.
    pub package: StoredPackage,
    /// The text of each service's license file (`license/text/file`) by service id, for the
    /// services whose package carries one (not UTF-8: shown with replacement characters).
    pub license_texts: BTreeMap<String, String>,
}

impl PackageDetails {
    /// The `package show --json` object: the summary with `metadata`, `warnings` and
    /// `license_texts`.
    pub fn to_json(&self) -> Result<serde_json::Value, Error> {
        let json =
            |e: serde_json::Error| Error::Failed(format!("cannot write the package as JSON: {e}"));
        let p = &self.package;
        let mut value = serde_json::to_value(&p.summary).map_err(json)?;
        value["metadata"] = serde_json::to_value(&p.meta).map_err(json)?;
        value["warnings"] = serde_json::to_value(&p.warnings).map_err(json)?;
        value["license_texts"] = serde_json::to_value(&self.license_texts).map_err(json)?;
        Ok(value)
    }
}

/// Loads the package `reference` with the license texts its archive carries (`package show`).
pub fn show(ctx: &Context, reference: &str) -> Result<PackageDetails, Error> {
    let package = load(ctx, reference)?;
    let files: Vec<(String, String)> = package
        .meta
        .all_services()
        .into_iter()
        .filter_map(|s| {
            let file = s.license.as_ref()?.text_file.as_deref()?;
            let file = aps_meta::lint::normalize_archive_path(file).ok()?;
            Some((s.id.clone(), file))
        })
        .collect();
    let mut license_texts = BTreeMap::new();
    if !files.is_empty() {
        let unreadable = |e: aps_archive::ArchiveError| {
            Error::Failed(format!(
                "the license text of package `{reference}` cannot be read: {e}"
            ))
        };
        let mut archive = aps_archive::Archive::open(&package.archive, &ctx.config.archive_limits)
            .map_err(unreadable)?;
        for (service, file) in files {
            let bytes = archive
                .read_file(&file, MAX_LICENSE_BYTES)
                .map_err(unreadable)?;
            license_texts.insert(service, String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    Ok(PackageDetails {
        package,
        license_texts,
    })
}

/// Removes a package from the repository; refused while an instance uses it.
pub fn remove(ctx: &Context, reference: &str) -> Result<PackageSummary, Error> {
    let stored = load(ctx, reference)?;
    ctx.store()?.packages().delete(reference)?;
    if let Err(e) = fs_err::remove_file(&stored.archive) {
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(e.into());
        }
    }
    Ok(stored.summary)
}
