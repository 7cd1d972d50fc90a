//! Writing a backup bundle entry by entry into one zstd-compressed tar stream.
//!
//! Main decision: tar needs each entry's size before its data, and nothing may be copied whole
//! to memory or disk. Files come with their size (from `fstat`): one of at most the chunk size is
//! read into the writer's one buffer first, so a file that changed while it was read is refused
//! before a byte of it reaches the archive and can be retried; a larger one is streamed and
//! checked as it goes. Streams of unknown length fill the same buffer and leave as one chunk
//! entry each time it is full. Every entry is hashed in the same pass that writes it.
//!
//! Known gaps: a streamed (large) file that changes size leaves an entry the archive cannot take
//! back; it is completed (zero padding) so the tar stays readable, and the writer refuses
//! everything after it ([`BundleError::Unusable`]): the backup must start again. Compression
//! memory is held near 30 MiB by sizing zstd's jobs after the number of workers (and "every
//! core" means at most 16); an explicit `threads` above 16 still adds about 2 MiB per worker.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

use super::names::{self, Conflict, NameSet, Role};
use super::{BundleError, BundleOptions, Digest, SizeChange};

/// The highest zstd level accepted: levels 20 to 22 use windows above the reader's limit.
const MAX_LEVEL: i32 = 19;
/// The largest chunk size accepted.
const MAX_CHUNK_SIZE: u64 = 1 << 30;
/// Piece size for streaming a large file.
const COPY_BUFFER: usize = 256 * 1024;
/// Input held by all compression jobs together, roughly: zstd's own job size at level 3 (8 MiB,
/// four windows) costs about 10 MiB of buffers per worker, 63 MiB of peak memory with two
/// workers; jobs of `JOB_BUDGET / workers` keep the whole writer near 45 MiB for any count up
/// to [`MAX_AUTO_WORKERS`] (measured), at under 1% of compression ratio for jobs of 4 MiB and
/// about 2% for 3 MiB (250 MB of text).
const JOB_BUDGET: u32 = 12 << 20;
/// The smallest job size used (zstd's minimum is 512 KiB; smaller jobs lose ratio fast).
const MIN_JOB: u32 = 1 << 20;
/// The largest job size used.
const MAX_JOB: u32 = 4 << 20;
/// Workers used when the options say 0 ("every core"), at most: more would only add memory.
const MAX_AUTO_WORKERS: u32 = 16;
/// A tar block.
const BLOCK: usize = 512;
/// Mode of the entries the writer makes itself (chunks, manifest).
const PRIVATE_MODE: u32 = 0o600;

/// Writes a backup bundle into `W` (see the [module documentation](super)).
pub struct BundleWriter<W: Write> {
    tar: tar::Builder<zstd::stream::write::Encoder<'static, W>>,
    /// The archive's path, for messages (empty when unknown).
    archive: PathBuf,
    chunk_size: usize,
    /// The one data buffer: a small file, or the current chunk of a stream.
    buf: Vec<u8>,
    names: NameSet,
    /// The entry whose failure left the archive unusable.
    broken: Option<String>,
    /// Modification time of the entries that bring none of their own.
    mtime: u64,
}

impl<W: Write> std::fmt::Debug for BundleWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleWriter")
            .field("archive", &self.archive)
            .field("chunk_size", &self.chunk_size)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// Options checked and resolved.
struct Settings {
    level: i32,
    workers: u32,
    /// zstd's job size: the input each worker compresses at a time.
    job_size: u32,
    chunk_size: usize,
}

impl Settings {
    fn new(opts: &BundleOptions) -> Result<Self, BundleError> {
        let lowest = *zstd::compression_level_range().start();
        if !(lowest..=MAX_LEVEL).contains(&opts.level) {
            return Err(BundleError::Options {
                detail: format!(
                    "zstd level {} is outside {lowest} to {MAX_LEVEL}",
                    opts.level
                ),
            });
        }
        let chunk_size = usize::try_from(opts.chunk_size)
            .ok()
            .filter(|&size| size > 0 && opts.chunk_size <= MAX_CHUNK_SIZE)
            .ok_or_else(|| BundleError::Options {
                detail: format!(
                    "chunk size {} is outside 1 to {MAX_CHUNK_SIZE} bytes",
                    opts.chunk_size
                ),
            })?;
        let workers = if opts.threads == 0 {
            std::thread::available_parallelism()
                .map_or(1, |cores| u32::try_from(cores.get()).unwrap_or(u32::MAX))
                .min(MAX_AUTO_WORKERS)
        } else {
            opts.threads
        };
        Ok(Self {
            level: opts.level,
            workers,
            job_size: (JOB_BUDGET / workers.max(1)).clamp(MIN_JOB, MAX_JOB),
            chunk_size,
        })
    }
}

impl BundleWriter<fs_err::File> {
    /// Creates the new file `path` (mode 0600; an existing file is an error) and a writer into
    /// it whose messages name it. The options are checked before the file is created.
    pub fn create(path: &Path, opts: &BundleOptions) -> Result<Self, BundleError> {
        use fs_err::os::unix::fs::OpenOptionsExt as _;
        let settings = Settings::new(opts)?;
        let file = fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| BundleError::Open {
                archive: path.to_path_buf(),
                source,
            })?;
        Self::with_settings(file, &settings, path.to_path_buf())
    }
}

impl<W: Write> BundleWriter<W> {
    /// A writer into `out`, which receives the compressed archive (its messages say "the backup
    /// archive"; [`BundleWriter::create`] makes one that names its file).
    pub fn new(out: W, opts: &BundleOptions) -> Result<Self, BundleError> {
        Self::with_settings(out, &Settings::new(opts)?, PathBuf::new())
    }

    fn with_settings(out: W, settings: &Settings, archive: PathBuf) -> Result<Self, BundleError> {
        let compressor = |source| BundleError::Compressor {
            archive: archive.clone(),
            source,
        };
        let mut encoder =
            zstd::stream::write::Encoder::new(out, settings.level).map_err(compressor)?;
        encoder.include_checksum(true).map_err(compressor)?;
        encoder.multithread(settings.workers).map_err(compressor)?;
        encoder
            .set_parameter(zstd::stream::raw::CParameter::JobSize(settings.job_size))
            .map_err(compressor)?;
        Ok(Self {
            tar: tar::Builder::new(encoder),
            archive,
            chunk_size: settings.chunk_size,
            buf: Vec::new(),
            names: NameSet::default(),
            broken: None,
            mtime: 0,
        })
    }

    /// Sets the modification time (seconds since the epoch) of the entries that bring none of
    /// their own: folders, chunks and the manifest (default 0). Callers pass the backup's
    /// creation time.
    pub fn set_mtime(&mut self, mtime: u64) {
        self.mtime = mtime;
    }

    /// A folder entry `name` (below `files/`, `resources/` or `script/`, or one of those three),
    /// with its permission bits.
    pub fn add_dir(&mut self, name: &str, mode: u32) -> Result<(), BundleError> {
        self.admit(name, &Role::Dir)?;
        let mut header = header(EntryType::Directory, 0, mode, self.mtime);
        let result = self
            .tar
            .append_data(&mut header, format!("{name}/"), io::empty());
        result.map_err(|source| self.write_failed(name, source))?;
        self.names
            .insert(name, true)
            .map_err(|c| self.conflict(name, &c))?;
        Ok(())
    }

    /// A regular file `name` (below `files/` or `script/`) of `size` bytes read from `data`,
    /// hashed while written.
    ///
    /// If `data` ends early or holds more than `size` bytes (the file changed while the instance
    /// stays online), fails with [`BundleError::Changed`]; for a file of at most the chunk size
    /// nothing was written and the call may be repeated (see [`BundleError::is_retryable`]).
    pub fn add_file(
        &mut self,
        name: &str,
        data: &mut dyn Read,
        size: u64,
        mode: u32,
        mtime: u64,
    ) -> Result<Digest, BundleError> {
        self.admit(name, &Role::File)?;
        let digest = if size <= self.chunk_size as u64 {
            self.add_buffered(name, data, size, mode, mtime)?
        } else {
            self.add_streamed(name, data, size, mode, mtime)?
        };
        self.names
            .insert(name, false)
            .map_err(|c| self.conflict(name, &c))?;
        Ok(digest)
    }

    /// A stream of unknown length `name` (below `resources/`, such as `resources/db/main.sql`),
    /// written as chunk entries `name.0000`, `name.0001`, … of at most the chunk size each; an
    /// empty stream still has its chunk `0000`. Dropping the returned writer without
    /// [`StreamWriter::finish`] leaves this writer unusable.
    pub fn stream(&mut self, name: &str) -> Result<StreamWriter<'_, W>, BundleError> {
        self.usable(name)?;
        self.check_name(name)?;
        let first = names::chunk_name(name, 0);
        match names::role(&first, false) {
            Ok(Role::Chunk { base, .. }) if base == name => {}
            Ok(_) => return Err(self.bad_name(name, "is not a plain stream name".to_owned())),
            Err(reason) => return Err(self.bad_name(name, reason.to_owned())),
        }
        self.names
            .check(&first, false)
            .map_err(|c| self.conflict(name, &c))?;
        self.buf.clear();
        Ok(StreamWriter {
            bundle: self,
            name: name.to_owned(),
            hasher: Sha256::new(),
            size: 0,
            chunks: Vec::new(),
            failure: None,
            finished: false,
        })
    }

    /// Writes the last entry, `manifest.json` (any bytes; the caller builds them), ends the tar
    /// and zstd streams and returns the inner writer, which the caller syncs and renames.
    pub fn finish(mut self, manifest: &[u8]) -> Result<W, BundleError> {
        self.admit(names::MANIFEST, &Role::Manifest)?;
        let mut header = header(
            EntryType::Regular,
            manifest.len() as u64,
            PRIVATE_MODE,
            self.mtime,
        );
        let result = self.tar.append_data(&mut header, names::MANIFEST, manifest);
        result.map_err(|source| self.write_failed(names::MANIFEST, source))?;
        let archive = self.archive;
        let end = |source| BundleError::Write {
            archive: archive.clone(),
            entry: "the end of the archive".to_owned(),
            source,
        };
        let encoder = self.tar.into_inner().map_err(end)?;
        encoder.finish().map_err(end)
    }

    /// Refuses when the writer is unusable, the name is unsafe, has no place of the kind `want`
    /// or is taken.
    fn admit(&mut self, name: &str, want: &Role) -> Result<(), BundleError> {
        self.usable(name)?;
        self.check_name(name)?;
        let is_dir = *want == Role::Dir;
        match names::role(name, is_dir) {
            Ok(role) if std::mem::discriminant(&role) == std::mem::discriminant(want) => {}
            Ok(Role::Chunk { .. }) => {
                return Err(self.bad_name(
                    name,
                    "is a stream chunk name; streams are written with `stream`".to_owned(),
                ));
            }
            Ok(Role::Manifest) => {
                return Err(self.bad_name(name, "is reserved for the manifest".to_owned()));
            }
            Ok(_) => return Err(self.bad_name(name, "has no place of this kind".to_owned())),
            Err(reason) => return Err(self.bad_name(name, reason.to_owned())),
        }
        self.names
            .check(name, is_dir)
            .map_err(|c| self.conflict(name, &c))
    }

    fn check_name(&self, name: &str) -> Result<(), BundleError> {
        match names::check(name) {
            Ok(checked) if checked.has_trailing_slash => {
                Err(self.bad_name(name, "ends in `/`".to_owned()))
            }
            Ok(_) => Ok(()),
            Err(problem) => Err(self.bad_name(name, problem.to_string())),
        }
    }

    fn usable(&self, name: &str) -> Result<(), BundleError> {
        match &self.broken {
            Some(failed) => Err(BundleError::Unusable {
                archive: self.archive.clone(),
                entry: name.to_owned(),
                failed: failed.clone(),
            }),
            None => Ok(()),
        }
    }

    fn bad_name(&self, name: &str, reason: String) -> BundleError {
        BundleError::BadName {
            archive: self.archive.clone(),
            entry: name.to_owned(),
            reason,
        }
    }

    fn conflict(&self, name: &str, conflict: &Conflict) -> BundleError {
        let reason = match conflict {
            Conflict::Duplicate => "is already in the archive".to_owned(),
            Conflict::InsideFile(parent) => format!(
                "lies inside the file `{}`",
                crate::name::display(parent.as_bytes())
            ),
            Conflict::FileOverFolder => {
                "is a file with the name of a folder other entries lie in".to_owned()
            }
        };
        self.bad_name(name, reason)
    }

    /// A failure while the archive was being written: nothing more can be added.
    fn write_failed(&mut self, name: &str, source: io::Error) -> BundleError {
        self.broken = Some(name.to_owned());
        BundleError::Write {
            archive: self.archive.clone(),
            entry: name.to_owned(),
            source,
        }
    }

    fn changed(
        &mut self,
        name: &str,
        size: u64,
        change: SizeChange,
        retryable: bool,
    ) -> BundleError {
        if !retryable {
            self.broken = Some(name.to_owned());
        }
        BundleError::Changed {
            archive: self.archive.clone(),
            entry: name.to_owned(),
            size,
            change,
            retryable,
        }
    }

    fn source_failed(&mut self, name: &str, source: io::Error, written: bool) -> BundleError {
        if written {
            self.broken = Some(name.to_owned());
        }
        BundleError::Source {
            archive: self.archive.clone(),
            entry: name.to_owned(),
            source,
        }
    }

    /// A file of at most the chunk size: read whole into the buffer, checked, then written.
    fn add_buffered(
        &mut self,
        name: &str,
        data: &mut dyn Read,
        size: u64,
        mode: u32,
        mtime: u64,
    ) -> Result<Digest, BundleError> {
        self.buf.clear();
        // `size` is at most the chunk size, which fits in usize.
        self.buf.reserve_exact(usize::try_from(size).unwrap_or(0));
        let read = data
            .take(size)
            .read_to_end(&mut self.buf)
            .map_err(|source| self.source_failed(name, source, false))?;
        if (read as u64) < size {
            return Err(self.changed(name, size, SizeChange::Shorter(read as u64), true));
        }
        if has_more(data).map_err(|source| self.source_failed(name, source, false))? {
            return Err(self.changed(name, size, SizeChange::Longer, true));
        }
        let sha256: [u8; 32] = Sha256::digest(&self.buf).into();
        let mut header = header(EntryType::Regular, size, mode, mtime);
        let Self { tar, buf, .. } = self;
        let result = tar.append_data(&mut header, name, &buf[..]);
        result.map_err(|source| self.write_failed(name, source))?;
        Ok(Digest { size, sha256 })
    }

    /// A file larger than the chunk size: streamed, checked as it goes.
    fn add_streamed(
        &mut self,
        name: &str,
        data: &mut dyn Read,
        size: u64,
        mode: u32,
        mtime: u64,
    ) -> Result<Digest, BundleError> {
        let mut header = header(EntryType::Regular, size, mode, mtime);
        let result = self.tar.append_data(&mut header, name, io::empty());
        result.map_err(|source| self.write_failed(name, source))?;
        self.buf.clear();
        self.buf.resize(COPY_BUFFER.min(self.chunk_size), 0);
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        while written < size {
            let want = usize::try_from(size - written)
                .map_or(self.buf.len(), |left| left.min(self.buf.len()));
            let read = match data.read(&mut self.buf[..want]) {
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    // Keep the tar readable up to this entry, then refuse everything after it.
                    let _ = self.pad_to(size, written);
                    return Err(self.source_failed(name, source, true));
                }
            };
            if read == 0 {
                let _ = self.pad_to(size, written);
                return Err(self.changed(name, size, SizeChange::Shorter(written), false));
            }
            hasher.update(&self.buf[..read]);
            let Self { tar, buf, .. } = self;
            let result = tar.get_mut().write_all(&buf[..read]);
            result.map_err(|source| self.write_failed(name, source))?;
            written += read as u64;
        }
        let result = pad_block(self.tar.get_mut(), size);
        result.map_err(|source| self.write_failed(name, source))?;
        if has_more(data).map_err(|source| self.source_failed(name, source, true))? {
            return Err(self.changed(name, size, SizeChange::Longer, false));
        }
        Ok(Digest {
            size,
            sha256: hasher.finalize().into(),
        })
    }

    /// Completes an entry of `size` bytes of which `written` were written with zeros.
    fn pad_to(&mut self, size: u64, written: u64) -> io::Result<()> {
        let out = self.tar.get_mut();
        io::copy(&mut io::repeat(0).take(size - written), out)?;
        pad_block(out, size)
    }

    /// Writes the buffer as chunk `index` of stream `base`.
    fn write_chunk(&mut self, base: &str, index: u32) -> Result<String, BundleError> {
        let chunk = names::chunk_name(base, index);
        if index >= names::MAX_CHUNKS {
            self.broken = Some(base.to_owned());
            return Err(BundleError::TooManyChunks {
                archive: self.archive.clone(),
                entry: base.to_owned(),
                chunks: names::MAX_CHUNKS,
            });
        }
        self.names
            .check(&chunk, false)
            .map_err(|c| self.conflict(&chunk, &c))?;
        let mut header = header(
            EntryType::Regular,
            self.buf.len() as u64,
            PRIVATE_MODE,
            self.mtime,
        );
        let Self { tar, buf, .. } = self;
        let result = tar.append_data(&mut header, &chunk, &buf[..]);
        result.map_err(|source| self.write_failed(&chunk, source))?;
        self.names
            .insert(&chunk, false)
            .map_err(|c| self.conflict(&chunk, &c))?;
        self.buf.clear();
        Ok(chunk)
    }
}

/// Writes one stream into a [`BundleWriter`] as chunk entries; see [`BundleWriter::stream`].
pub struct StreamWriter<'a, W: Write> {
    bundle: &'a mut BundleWriter<W>,
    name: String,
    hasher: Sha256,
    size: u64,
    chunks: Vec<String>,
    /// The failure that a `write` could only report as an `io::Error`.
    failure: Option<BundleError>,
    finished: bool,
}

impl<W: Write> std::fmt::Debug for StreamWriter<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWriter")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("chunks", &self.chunks.len())
            .finish_non_exhaustive()
    }
}

impl<W: Write> StreamWriter<'_, W> {
    /// Writes the last chunk and returns the digest of the whole stream and its chunk names in
    /// order. After a failed `write` this returns that failure.
    pub fn finish(mut self) -> Result<(Digest, Vec<String>), BundleError> {
        if let Some(failure) = self.failure.take() {
            return Err(failure);
        }
        self.bundle.usable(&self.name)?;
        if !self.bundle.buf.is_empty() || self.chunks.is_empty() {
            self.flush_chunk()?;
        }
        self.finished = true;
        let digest = Digest {
            size: self.size,
            sha256: std::mem::take(&mut self.hasher).finalize().into(),
        };
        Ok((digest, std::mem::take(&mut self.chunks)))
    }

    fn flush_chunk(&mut self) -> Result<(), BundleError> {
        let index = u32::try_from(self.chunks.len()).unwrap_or(u32::MAX);
        let chunk = self.bundle.write_chunk(&self.name, index)?;
        self.chunks.push(chunk);
        Ok(())
    }

    /// Keeps `error` for `finish` and returns it as an `io::Error` for `write`.
    fn fail(&mut self, error: BundleError) -> io::Error {
        let io_error = io::Error::other(error.to_string());
        self.failure = Some(error);
        io_error
    }
}

impl<W: Write> Write for StreamWriter<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(failure) = &self.failure {
            return Err(io::Error::other(failure.to_string()));
        }
        if let Err(error) = self.bundle.usable(&self.name) {
            return Err(self.fail(error));
        }
        if data.is_empty() {
            return Ok(0);
        }
        let chunk_size = self.bundle.chunk_size;
        if self.bundle.buf.len() >= chunk_size {
            if let Err(error) = self.flush_chunk() {
                return Err(self.fail(error));
            }
        }
        let buf = &mut self.bundle.buf;
        if buf.capacity() < chunk_size {
            buf.reserve_exact(chunk_size - buf.len());
        }
        let taken = (chunk_size - buf.len()).min(data.len());
        buf.extend_from_slice(&data[..taken]);
        self.hasher.update(&data[..taken]);
        self.size += taken as u64;
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for StreamWriter<'_, W> {
    fn drop(&mut self) {
        if !self.finished && self.bundle.broken.is_none() {
            // Chunks already written would be entries no manifest could describe.
            self.bundle.broken = Some(self.name.clone());
        }
    }
}

/// A tar header of `kind` for an entry of `size` bytes.
fn header(kind: EntryType, size: u64, mode: u32, mtime: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode & 0o7777);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Zeros from the end of `size` bytes of data to the end of their tar block.
fn pad_block(out: &mut dyn Write, size: u64) -> io::Result<()> {
    let partial = usize::try_from(size % BLOCK as u64).unwrap_or(0);
    if partial == 0 {
        return Ok(());
    }
    out.write_all(&[0; BLOCK][partial..])
}

/// Whether `data` has at least one more byte.
fn has_more(data: &mut dyn Read) -> io::Result<bool> {
    let mut byte = [0u8; 1];
    loop {
        match data.read(&mut byte) {
            Ok(read) => return Ok(read > 0),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}
