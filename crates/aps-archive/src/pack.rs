//! Building an `.app.zip` from a package source folder, with a fresh APP-LIST.xml.
//!
//! Main decision: the listing is computed from the very bytes written into the archive, so a
//! built package always verifies. Only regular files and folders are packed; a symbolic link or
//! any other special file in the source is refused, as the reader would refuse it.
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::Digest;

/// What [`pack_folder`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    /// The archive.
    pub path: PathBuf,
    /// Files packed (APP-LIST.xml included).
    pub files: usize,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// Why a folder could not be packed.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// A file-system call failed (the message names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The zip writer failed.
    #[error("cannot write archive `{}`", path.display())]
    Zip {
        /// The archive.
        path: PathBuf,
        /// The cause.
        #[source]
        source: zip::result::ZipError,
    },
    /// The source holds something that is not a regular file or folder.
    #[error("`{}` is not a regular file or folder; packages hold only those", path.display())]
    Special {
        /// The offending path.
        path: PathBuf,
    },
    /// A file name is not valid UTF-8.
    #[error("file name `{}` is not valid UTF-8", path.display())]
    Name {
        /// The offending path.
        path: PathBuf,
    },
}

/// Packs every file below `src` into `out`, adding an APP-LIST.xml (SHA-256) that lists them all;
/// an APP-LIST.xml present in `src` is replaced.
pub fn pack_folder(src: &Path, out: &Path) -> Result<Packed, PackError> {
    let mut files = Vec::new();
    collect(src, Path::new(""), &mut files)?;
    files.retain(|(name, _)| name != "APP-LIST.xml");
    let zip_err = |source| PackError::Zip {
        path: out.to_path_buf(),
        source,
    };
    let partial = out.with_extension("partial");
    let mut zip = zip::ZipWriter::new(fs_err::File::create(&partial)?);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    let mut list = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<files xmlns=\"http://apstandard.com/ns/1\">\n",
    );
    let mut bytes = 0;
    for (name, path) in &files {
        let data = fs_err::read(path)?;
        zip.start_file(name.as_str(), options).map_err(zip_err)?;
        zip.write_all(&data)?;
        let digest = sha2::Sha256::digest(&data);
        let hex = digest.iter().fold(String::new(), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        });
        let _ = writeln!(
            list,
            "  <file name=\"{}\" size=\"{}\" sha256=\"{hex}\"/>",
            xml_escape(name),
            data.len()
        );
        bytes += data.len() as u64;
    }
    list.push_str("</files>\n");
    zip.start_file("APP-LIST.xml", options).map_err(zip_err)?;
    zip.write_all(list.as_bytes())?;
    bytes += list.len() as u64;
    zip.finish().map_err(zip_err)?;
    fs_err::rename(&partial, out)?;
    Ok(Packed {
        path: out.to_path_buf(),
        files: files.len() + 1,
        bytes,
    })
}

fn collect(base: &Path, rel: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), PackError> {
    let mut entries: Vec<_> = fs_err::read_dir(base.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(fs_err::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let child = rel.join(entry.file_name());
        let kind = fs_err::symlink_metadata(&path)?.file_type();
        if kind.is_dir() {
            collect(base, &child, out)?;
        } else if kind.is_file() {
            let name = child
                .to_str()
                .ok_or_else(|| PackError::Name { path: path.clone() })?
                .to_owned();
            out.push((name, path));
        } else {
            return Err(PackError::Special { path });
        }
    }
    Ok(())
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_folder_verifies_against_its_own_listing() {
        let src = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(src.path().join("htdocs/sub")).unwrap();
        fs_err::write(src.path().join("APP-META.xml"), "<application/>").unwrap();
        fs_err::write(src.path().join("htdocs/sub/a & b.txt"), "hello").unwrap();
        let out = tempfile::tempdir().unwrap();
        let zip = out.path().join("x.app.zip");
        let packed = pack_folder(src.path(), &zip).unwrap();
        assert_eq!(packed.files, 3);
        let scan = crate::scan(&zip, &crate::Limits::default()).unwrap();
        let list = crate::read_file(&zip, "APP-LIST.xml", 1 << 20).unwrap();
        let list = aps_meta::applist::parse_app_list(&list, "APP-LIST.xml").unwrap();
        assert_eq!(list.entries.len(), 2);
        crate::verify_listing(&scan.files, &list).unwrap();
    }

    #[test]
    fn symbolic_links_are_refused() {
        let src = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("link")).unwrap();
        let out = tempfile::tempdir().unwrap();
        let err = pack_folder(src.path(), &out.path().join("x.app.zip")).unwrap_err();
        assert!(matches!(err, PackError::Special { .. }), "{err}");
    }
}
