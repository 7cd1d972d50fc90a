//! [`PackageBuilder`]: `.app.zip` packages for tests, well-formed or deliberately hostile.
//!
//! Main decision: entries keep the order they were added in, APP-LIST.xml is generated last from
//! what was added (unless disabled or replaced), and every hostile variant is one method call, so
//! a test reads as a description of its package.
//!
//! Known gaps: entries are written with the `zip` crate's deflate (or stored) only; the
//! generated listing is never signed.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{self, Cursor, Write as _};
use std::path::{Path, PathBuf};

use md5::Md5;
use sha2::{Digest as _, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::patch::{self, Patch};

/// Which digest the generated APP-LIST.xml uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListDigest {
    /// `sha256` attributes (the 1.2 specification).
    #[default]
    Sha256,
    /// `md5` attributes only (seen in vendor documentation).
    Md5,
}

#[derive(Debug, Clone)]
enum Data {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    /// `size` zero bytes, written in chunks.
    Zeros(u64),
}

/// How an entry appears in the generated APP-LIST.xml.
#[derive(Debug, Clone)]
enum Listing {
    /// Listed with its real size and digest.
    Correct,
    /// Not listed.
    Absent,
    /// Listed with this size and SHA-256 hex.
    As { size: u64, sha256: String },
}

#[derive(Debug, Clone)]
struct Entry {
    name: Vec<u8>,
    data: Data,
    listing: Listing,
    /// Unix mode to force into the central directory (file type included).
    mode: Option<u32>,
    /// Uncompressed size to declare instead of the real one.
    declared_size: Option<u32>,
}

/// What to do about APP-LIST.xml.
#[derive(Debug, Clone)]
enum AppListMode {
    Generated,
    Disabled,
    Custom(Vec<u8>),
}

/// Builds `.app.zip` packages for tests; see the module documentation.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = aps_test_support::PackageBuilder::new()
///     .app_meta(aps_test_support::minimal_meta_xml("demo", "1.0", "1"))
///     .file("htdocs/index.php", "<?php echo 'hi';")
///     .file("scripts/configure", "<?php exit(0);")
///     .write(&dir.path().join("demo-1.0-1.app.zip"))
///     .unwrap();
/// assert!(path.exists());
/// ```
#[derive(Debug, Clone)]
pub struct PackageBuilder {
    entries: Vec<Entry>,
    app_list: AppListMode,
    /// Listing lines for files that are not in the archive: (name, size, sha256 hex).
    phantom: Vec<(String, u64, String)>,
    method: CompressionMethod,
    list_digest: ListDigest,
}

impl Default for PackageBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PackageBuilder {
    /// An empty package: no APP-META.xml, deflate compression, generated SHA-256 listing.
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
            app_list: AppListMode::Generated,
            phantom: Vec::new(),
            method: CompressionMethod::Deflated,
            list_digest: ListDigest::Sha256,
        }
    }

    fn push(mut self, name: impl Into<Vec<u8>>, data: Data, listing: Listing) -> Self {
        self.entries.push(Entry {
            name: name.into(),
            data,
            listing,
            mode: None,
            declared_size: None,
        });
        self
    }

    /// Adds `APP-META.xml` with `xml` as content.
    #[must_use]
    pub fn app_meta(self, xml: impl Into<String>) -> Self {
        self.file("APP-META.xml", xml.into())
    }

    /// Adds a listed file.
    #[must_use]
    pub fn file(self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.push(path, Data::File(content.into()), Listing::Correct)
    }

    /// Adds a directory entry (`path` with or without the trailing `/`).
    #[must_use]
    pub fn dir(self, path: &str) -> Self {
        let name = if path.ends_with('/') {
            path.to_owned()
        } else {
            format!("{path}/")
        };
        self.push(name, Data::Dir, Listing::Absent)
    }

    /// Stores entries uncompressed instead of deflating them.
    #[must_use]
    pub fn stored(mut self) -> Self {
        self.method = CompressionMethod::Stored;
        self
    }

    /// Writes no APP-LIST.xml.
    #[must_use]
    pub fn without_app_list(mut self) -> Self {
        self.app_list = AppListMode::Disabled;
        self
    }

    /// Writes `content` as APP-LIST.xml instead of generating it.
    #[must_use]
    pub fn app_list_xml(mut self, content: impl Into<Vec<u8>>) -> Self {
        self.app_list = AppListMode::Custom(content.into());
        self
    }

    /// Generates the listing with `digest` attributes.
    #[must_use]
    pub fn list_digest(mut self, digest: ListDigest) -> Self {
        self.list_digest = digest;
        self
    }

    /// Adds a file that the generated listing leaves out.
    #[must_use]
    pub fn unlisted_file(self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.push(path, Data::File(content.into()), Listing::Absent)
    }

    /// Adds a file whose listing entry has the right size but the SHA-256 of other content.
    #[must_use]
    pub fn tampered_file(self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        let content = content.into();
        let mut other = content.clone();
        other.extend_from_slice(b"-original");
        let listing = Listing::As {
            size: content.len() as u64,
            sha256: hex::encode(Sha256::digest(&other)),
        };
        self.push(path, Data::File(content), listing)
    }

    /// Adds a file listed with the given size and SHA-256 hex, whatever its content.
    #[must_use]
    pub fn file_listed_as(
        self,
        path: &str,
        content: impl Into<Vec<u8>>,
        size: u64,
        sha256_hex: &str,
    ) -> Self {
        let listing = Listing::As {
            size,
            sha256: sha256_hex.to_owned(),
        };
        self.push(path, Data::File(content.into()), listing)
    }

    /// Lists a file of `size` bytes that the archive does not contain.
    #[must_use]
    pub fn listed_but_missing(mut self, path: &str, size: u64) -> Self {
        let sha256 = hex::encode(Sha256::digest(vec![
            b'x';
            usize::try_from(size).unwrap_or(0)
        ]));
        self.phantom.push((path.to_owned(), size, sha256));
        self
    }

    /// Adds an unlisted file entry with an arbitrary raw name: `../evil`, `/abs`, `a\b`,
    /// bytes that are not UTF-8, a name another entry already has.
    #[must_use]
    pub fn raw_entry(self, name: impl AsRef<[u8]>, content: impl Into<Vec<u8>>) -> Self {
        self.push(name.as_ref(), Data::File(content.into()), Listing::Absent)
    }

    /// Adds a second (unlisted) entry with the name of an existing one.
    #[must_use]
    pub fn duplicate_entry(self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.raw_entry(path, content)
    }

    /// Adds a symbolic link entry `path` → `target`.
    #[must_use]
    pub fn symlink(self, path: &str, target: &str) -> Self {
        self.push(path, Data::Symlink(target.to_owned()), Listing::Absent)
    }

    /// Adds an empty entry whose Unix mode is `mode`, file type bits included (for example
    /// `0o010644`, a FIFO, or `0o020644`, a character device).
    #[must_use]
    pub fn special_entry(mut self, path: &str, mode: u32) -> Self {
        self = self.push(path, Data::File(Vec::new()), Listing::Absent);
        if let Some(entry) = self.entries.last_mut() {
            entry.mode = Some(mode);
        }
        self
    }

    /// Adds an unlisted file whose headers declare `declared_size` uncompressed bytes while the
    /// data holds `content`.
    #[must_use]
    pub fn lying_entry(
        mut self,
        path: &str,
        content: impl Into<Vec<u8>>,
        declared_size: u32,
    ) -> Self {
        self = self.push(path, Data::File(content.into()), Listing::Absent);
        if let Some(entry) = self.entries.last_mut() {
            entry.declared_size = Some(declared_size);
        }
        self
    }

    /// Adds an unlisted file of `size` zero bytes, deflated (about 1000:1): a zip bomb when
    /// `size` is large or the reader's limits are small.
    #[must_use]
    pub fn bomb(self, path: &str, size: u64) -> Self {
        self.push(path, Data::Zeros(size), Listing::Absent)
    }

    /// The APP-LIST.xml this builder would write (generated or custom), if any.
    pub fn app_list(&self) -> Option<Vec<u8>> {
        match &self.app_list {
            AppListMode::Disabled => None,
            AppListMode::Custom(content) => Some(content.clone()),
            AppListMode::Generated => Some(self.generate_list().into_bytes()),
        }
    }

    fn generate_list(&self) -> String {
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<files xmlns=\"http://apstandard.com/ns/1\">\n",
        );
        let mut line = |name: &str, size: u64, digest: (&str, String)| {
            let _ = writeln!(
                xml,
                "  <file name=\"{}\" size=\"{size}\" {}=\"{}\"/>",
                escape(name),
                digest.0,
                digest.1
            );
        };
        for entry in &self.entries {
            let Data::File(content) = &entry.data else {
                continue;
            };
            let name = String::from_utf8_lossy(&entry.name);
            match &entry.listing {
                Listing::Absent => {}
                Listing::As { size, sha256 } => line(&name, *size, ("sha256", sha256.clone())),
                Listing::Correct => {
                    let digest = match self.list_digest {
                        ListDigest::Sha256 => ("sha256", hex::encode(Sha256::digest(content))),
                        ListDigest::Md5 => ("md5", hex::encode(Md5::digest(content))),
                    };
                    line(&name, content.len() as u64, digest);
                }
            }
        }
        for (name, size, sha256) in &self.phantom {
            line(name, *size, ("sha256", sha256.clone()));
        }
        xml.push_str("</files>\n");
        xml
    }

    /// The finished archive as bytes.
    pub fn to_bytes(&self) -> io::Result<Vec<u8>> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        let mut patches = Vec::new();
        let mut written: HashSet<&[u8]> = HashSet::new();
        for entry in &self.entries {
            let first_of_name = written.insert(&entry.name);
            let needs_placeholder = std::str::from_utf8(&entry.name).is_err()
                || !first_of_name
                || entry.mode.is_some()
                || entry.declared_size.is_some();
            let name = if needs_placeholder {
                // `add_directory` keeps a name that already ends in `/`.
                let placeholder = if matches!(entry.data, Data::Dir) {
                    patch::placeholder(patches.len(), entry.name.len() - 1)? + "/"
                } else {
                    patch::placeholder(patches.len(), entry.name.len())?
                };
                patches.push(Patch {
                    placeholder: placeholder.clone().into_bytes(),
                    name: entry.name.clone(),
                    mode: entry.mode,
                    declared_size: entry.declared_size,
                });
                placeholder
            } else {
                String::from_utf8_lossy(&entry.name).into_owned()
            };
            let options = SimpleFileOptions::default().compression_method(self.method);
            match &entry.data {
                Data::File(content) => {
                    zip.start_file(name, options.unix_permissions(0o644))
                        .map_err(io::Error::other)?;
                    zip.write_all(content)?;
                }
                Data::Dir => zip
                    .add_directory(name, options.unix_permissions(0o755))
                    .map_err(io::Error::other)?,
                Data::Symlink(target) => zip
                    .add_symlink(name, target, options)
                    .map_err(io::Error::other)?,
                Data::Zeros(size) => {
                    let options = options
                        .compression_method(CompressionMethod::Deflated)
                        .compression_level(Some(9))
                        .large_file(*size >= u64::from(u32::MAX));
                    zip.start_file(name, options).map_err(io::Error::other)?;
                    let chunk = vec![0u8; 1 << 20];
                    let mut left = *size;
                    while left > 0 {
                        let count = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(0);
                        zip.write_all(&chunk[..count])?;
                        left -= count as u64;
                    }
                }
            }
        }
        if let Some(list) = self.app_list() {
            let options = SimpleFileOptions::default()
                .compression_method(self.method)
                .unix_permissions(0o644);
            zip.start_file("APP-LIST.xml", options)
                .map_err(io::Error::other)?;
            zip.write_all(&list)?;
        }
        let mut bytes = zip.finish().map_err(io::Error::other)?.into_inner();
        patch::apply(&mut bytes, &patches)?;
        Ok(bytes)
    }

    /// Writes the archive to `path` and returns `path`.
    pub fn write(&self, path: &Path) -> io::Result<PathBuf> {
        fs_err::write(path, self.to_bytes()?)?;
        Ok(path.to_path_buf())
    }
}

/// Escapes text for an XML attribute value.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_list_covers_listed_files_only() {
        let builder = PackageBuilder::new()
            .app_meta("<x/>")
            .file("a&b.txt", "hello")
            .dir("d")
            .unlisted_file("u", "x")
            .listed_but_missing("gone", 3)
            .tampered_file("t", "data");
        let list = String::from_utf8(builder.app_list().unwrap()).unwrap();
        assert!(list.contains(r#"name="APP-META.xml" size="4""#), "{list}");
        assert!(list.contains(&format!(
            r#"name="a&amp;b.txt" size="5" sha256="{}""#,
            hex::encode(Sha256::digest(b"hello"))
        )));
        assert!(!list.contains("\"u\""), "{list}");
        assert!(!list.contains("\"d"), "{list}");
        assert!(list.contains(r#"name="gone" size="3""#), "{list}");
        assert!(list.contains(r#"name="t" size="4""#), "{list}");
        assert!(
            !list.contains(&hex::encode(Sha256::digest(b"data"))),
            "{list}"
        );
    }

    #[test]
    fn md5_listing_uses_md5_attributes() {
        let builder = PackageBuilder::new()
            .file("a", "hello")
            .list_digest(ListDigest::Md5);
        let list = String::from_utf8(builder.app_list().unwrap()).unwrap();
        assert!(
            list.contains(r#"md5="5d41402abc4b2a76b9719d911017c592""#),
            "{list}"
        );
    }

    #[test]
    fn disabled_and_custom_lists() {
        assert!(
            PackageBuilder::new()
                .without_app_list()
                .app_list()
                .is_none()
        );
        assert_eq!(
            PackageBuilder::new().app_list_xml("x").app_list().unwrap(),
            b"x"
        );
    }

    #[test]
    fn written_archive_reads_back_with_the_zip_crate() {
        let bytes = PackageBuilder::new()
            .file("a.txt", "alpha")
            .dir("d")
            .symlink("link", "a.txt")
            .to_bytes()
            .unwrap();
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let names: Vec<&str> = zip.file_names().collect();
        assert_eq!(names.len(), 4);
        assert!(zip.by_name("link").unwrap().is_symlink());
        assert!(zip.by_name("d/").unwrap().is_dir());
        assert_eq!(zip.by_name("a.txt").unwrap().size(), 5);
    }

    #[test]
    fn hostile_entries_are_patched_in() {
        let bytes = PackageBuilder::new()
            .without_app_list()
            .file("a", "one")
            .duplicate_entry("a", "two")
            .raw_entry(b"bad\xff", "x")
            .special_entry("fifo", 0o010_644)
            .lying_entry("liar", "0123456789", 3)
            .to_bytes()
            .unwrap();
        let zip = zip::ZipArchive::new(Cursor::new(bytes.clone())).unwrap();
        // The zip crate keeps one of two entries with the same name.
        assert_eq!(zip.len(), 4);
        let mut zip = zip;
        let mut raw_names = Vec::new();
        for index in 0..zip.len() {
            let file = zip.by_index_raw(index).unwrap();
            raw_names.push(file.name_raw().to_vec());
            if file.name() == "fifo" {
                assert_eq!(file.unix_mode(), Some(0o010_644));
            }
            if file.name() == "liar" {
                assert_eq!(file.size(), 3);
            }
        }
        assert!(raw_names.contains(&b"bad\xff".to_vec()));
        // Both `a` entries are in the central directory.
        let central = bytes.windows(4).filter(|w| *w == b"PK\x01\x02").count();
        assert_eq!(central, 5);
    }

    #[test]
    fn bomb_is_small_on_disk() {
        let bytes = PackageBuilder::new()
            .without_app_list()
            .bomb("zeros", 8 << 20)
            .to_bytes()
            .unwrap();
        assert!(bytes.len() < 64 * 1024, "{}", bytes.len());
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        assert_eq!(zip.by_index(0).unwrap().size(), 8 << 20);
    }
}
