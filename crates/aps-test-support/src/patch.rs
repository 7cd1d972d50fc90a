//! In-place patching of a finished zip archive's headers, for the hostile entries the `zip`
//! crate refuses to write.
//!
//! Main decision: such an entry is first written under a placeholder name of the same byte
//! length, then the central directory is walked and the matching entry's name (in both the
//! central and the local header), Unix mode or declared size is overwritten. Nothing moves, so
//! every offset stays valid.
//!
//! Known gaps: sizes can only be patched in entries without zip64 extra fields.

use std::io;

/// Placeholder names are built from bytes 0x01–0x1F, which real test names never contain.
const DIGITS: u8 = 31;

/// One header change, found by placeholder name.
#[derive(Debug, Clone)]
pub(crate) struct Patch {
    /// The name the entry was written under.
    pub(crate) placeholder: Vec<u8>,
    /// The raw name to put in its place (same length).
    pub(crate) name: Vec<u8>,
    /// Unix mode to set in the external attributes.
    pub(crate) mode: Option<u32>,
    /// Uncompressed size to declare.
    pub(crate) declared_size: Option<u32>,
}

/// The `number`-th placeholder name, `len` bytes long.
pub(crate) fn placeholder(number: usize, len: usize) -> io::Result<String> {
    let mut bytes = vec![1u8; len];
    let mut rest = number;
    for byte in bytes.iter_mut().rev() {
        // `rest % 31` is below 31, so the cast cannot truncate.
        *byte = 1 + u8::try_from(rest % usize::from(DIGITS)).unwrap_or(0);
        rest /= usize::from(DIGITS);
    }
    if rest > 0 || len == 0 {
        return Err(io::Error::other(format!(
            "no room for placeholder {number} in a name of {len} bytes"
        )));
    }
    String::from_utf8(bytes).map_err(io::Error::other)
}

fn u16_at(bytes: &[u8], at: usize) -> io::Result<usize> {
    bytes
        .get(at..at + 2)
        .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
        .ok_or_else(|| io::Error::other("truncated zip header"))
}

fn u32_at(bytes: &[u8], at: usize) -> io::Result<usize> {
    bytes
        .get(at..at + 4)
        .and_then(|b| usize::try_from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok())
        .ok_or_else(|| io::Error::other("truncated zip header"))
}

fn put(bytes: &mut [u8], at: usize, value: &[u8]) -> io::Result<()> {
    bytes
        .get_mut(at..at + value.len())
        .ok_or_else(|| io::Error::other("patch outside the archive"))?
        .copy_from_slice(value);
    Ok(())
}

/// Applies every patch to the archive in `bytes`; each placeholder must match one entry.
pub(crate) fn apply(bytes: &mut [u8], patches: &[Patch]) -> io::Result<()> {
    if patches.is_empty() {
        return Ok(());
    }
    let eocd = bytes
        .windows(4)
        .rposition(|w| w == b"PK\x05\x06")
        .ok_or_else(|| io::Error::other("no end of central directory"))?;
    let count = u16_at(bytes, eocd + 10)?;
    let mut at = u32_at(bytes, eocd + 16)?;
    let mut applied = 0;
    for _ in 0..count {
        if bytes.get(at..at + 4) != Some(b"PK\x01\x02") {
            return Err(io::Error::other("bad central directory header"));
        }
        let name_len = u16_at(bytes, at + 28)?;
        let next = at + 46 + name_len + u16_at(bytes, at + 30)? + u16_at(bytes, at + 32)?;
        let local = u32_at(bytes, at + 42)?;
        let name = bytes.get(at + 46..at + 46 + name_len).unwrap_or_default();
        if let Some(patch) = patches.iter().find(|p| p.placeholder == name) {
            if patch.name.len() != name_len || u16_at(bytes, local + 26)? != name_len {
                return Err(io::Error::other("placeholder length mismatch"));
            }
            put(bytes, at + 46, &patch.name)?;
            put(bytes, local + 30, &patch.name)?;
            if !patch.name.is_ascii() {
                // General-purpose flag bit 11: the name is UTF-8.
                for flags in [at + 8, local + 6] {
                    let value = u16::try_from(u16_at(bytes, flags)?).unwrap_or(0) | 0x0800;
                    put(bytes, flags, &value.to_le_bytes())?;
                }
            }
            if let Some(mode) = patch.mode {
                // Made by Unix, so readers interpret the external attributes as a mode.
                put(bytes, at + 5, &[3])?;
                put(bytes, at + 38, &(mode << 16).to_le_bytes())?;
            }
            if let Some(size) = patch.declared_size {
                put(bytes, at + 24, &size.to_le_bytes())?;
                put(bytes, local + 22, &size.to_le_bytes())?;
            }
            applied += 1;
        }
        at = next;
    }
    if applied == patches.len() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{applied} of {} header patches applied",
            patches.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_unique_control_strings() {
        let names: Vec<String> = (0..100).map(|n| placeholder(n, 2).unwrap()).collect();
        let unique: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), 100);
        assert!(
            names
                .iter()
                .all(|n| n.len() == 2 && n.bytes().all(|b| (1..32).contains(&b)))
        );
        assert!(placeholder(31, 1).is_err());
        assert!(placeholder(0, 0).is_err());
    }
}
