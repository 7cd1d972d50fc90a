//! A buffered, seekable reader over a shared file that reads with `pread`.
//!
//! Main decision: the zip crate seeks before nearly every read (even to the position it is
//! already at), and `std::io::BufReader` drops its buffer on every seek, so parsing a central
//! directory of thousands of entries would cost several system calls and a buffer refill per
//! entry. This reader tracks the position itself, keeps its buffer across seeks that land inside
//! it, and reads with positional reads on a shared file handle, so clones can be used from
//! several threads at once.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Buffered positional reader; see the module documentation.
#[derive(Debug)]
pub(crate) struct PosReader {
    file: Arc<File>,
    len: u64,
    pos: u64,
    buf: Box<[u8]>,
    /// File offset of `buf[0]`.
    buf_start: u64,
    /// Valid bytes in `buf`.
    buf_len: usize,
}

impl PosReader {
    /// A reader at offset 0 of `file` (`len` bytes long) with a buffer of `capacity` bytes.
    pub(crate) fn new(file: Arc<File>, len: u64, capacity: usize) -> Self {
        Self {
            file,
            len,
            pos: 0,
            buf: vec![0; capacity.max(1)].into_boxed_slice(),
            buf_start: 0,
            buf_len: 0,
        }
    }

    /// A new reader on the same file at offset 0 with its own buffer of `capacity` bytes.
    pub(crate) fn sibling(&self, capacity: usize) -> Self {
        Self::new(Arc::clone(&self.file), self.len, capacity)
    }

    fn read_at(&self, out: &mut [u8], offset: u64) -> io::Result<usize> {
        loop {
            match self.file.read_at(out, offset) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
}

impl Clone for PosReader {
    fn clone(&self) -> Self {
        let mut clone = self.sibling(self.buf.len());
        clone.pos = self.pos;
        clone
    }
}

impl Read for PosReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let buffered_end = self.buf_start + self.buf_len as u64;
        if self.pos < self.buf_start || self.pos >= buffered_end {
            if out.len() >= self.buf.len() {
                // Large reads bypass the buffer.
                let read = self.read_at(out, self.pos)?;
                self.pos += read as u64;
                return Ok(read);
            }
            let mut buf = std::mem::take(&mut self.buf);
            let filled = self.read_at(&mut buf, self.pos);
            self.buf = buf;
            self.buf_start = self.pos;
            self.buf_len = 0;
            self.buf_len = filled?;
            if self.buf_len == 0 {
                return Ok(0);
            }
        }
        // In range: `pos - buf_start < buf_len <= buf.len()`, which fits in usize.
        let offset = usize::try_from(self.pos - self.buf_start)
            .map_err(|_| io::Error::other("buffer offset overflow"))?;
        let available = &self.buf[offset..self.buf_len];
        let count = available.len().min(out.len());
        out[..count].copy_from_slice(&available[..count]);
        self.pos += count as u64;
        Ok(count)
    }
}

impl Seek for PosReader {
    fn seek(&mut self, target: SeekFrom) -> io::Result<u64> {
        let new = match target {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
        };
        let new = new.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            )
        })?;
        self.pos = new;
        Ok(new)
    }

    fn stream_position(&mut self) -> io::Result<u64> {
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn reader(capacity: usize) -> (tempfile::NamedTempFile, PosReader, Vec<u8>) {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&data).unwrap();
        let file = Arc::new(tmp.reopen().unwrap());
        (tmp, PosReader::new(file, data.len() as u64, capacity), data)
    }

    #[test]
    fn reads_everything_in_small_and_large_chunks() {
        for capacity in [1, 7, 64, 4096, 20_000] {
            for chunk in [1, 3, 100, 5000] {
                let (_tmp, mut reader, data) = reader(capacity);
                let mut out = Vec::new();
                let mut buf = vec![0; chunk];
                loop {
                    let n = reader.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    out.extend_from_slice(&buf[..n]);
                }
                assert_eq!(out, data, "capacity {capacity} chunk {chunk}");
            }
        }
    }

    #[test]
    fn seeks_inside_and_outside_the_buffer() {
        let (_tmp, mut reader, data) = reader(256);
        let mut byte = [0u8; 1];
        for &pos in &[0u64, 10, 5, 255, 256, 9_999, 3, 1000, 999] {
            assert_eq!(reader.seek(SeekFrom::Start(pos)).unwrap(), pos);
            reader.read_exact(&mut byte).unwrap();
            assert_eq!(byte[0], data[usize::try_from(pos).unwrap()], "at {pos}");
            assert_eq!(reader.stream_position().unwrap(), pos + 1);
        }
        assert_eq!(reader.seek(SeekFrom::End(-1)).unwrap(), 9_999);
        assert_eq!(reader.seek(SeekFrom::Current(-9_999)).unwrap(), 0);
        assert!(reader.seek(SeekFrom::Current(-1)).is_err());
        reader.seek(SeekFrom::End(5)).unwrap();
        assert_eq!(reader.read(&mut byte).unwrap(), 0);
        let mut clone = reader.clone();
        clone.seek(SeekFrom::Start(2)).unwrap();
        clone.read_exact(&mut byte).unwrap();
        assert_eq!(byte[0], data[2]);
    }
}
