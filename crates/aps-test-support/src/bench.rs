//! Generated packages of a given file count and size, for benchmarks and size tests.
//!
//! Main decision: content is deterministic pseudo-random PHP-like text (a fixed seed, a small
//! vocabulary plus random identifiers and numbers), so it compresses roughly like real web
//! applications (about 3–4:1) and two runs build byte-identical archives.
//!
//! Known gaps: no binary files (images), which would compress less.

use std::fmt::Write as _;

use crate::builder::PackageBuilder;
use crate::meta::minimal_meta_xml;

/// A small, fast, deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

const WORDS: &[&str] = &[
    "<?php",
    "function",
    "return",
    "$this->",
    "array(",
    ");",
    "if (",
    "} else {",
    "foreach (",
    " as ",
    "=>",
    "public",
    "static",
    "class",
    "new",
    "null",
    "true",
    "false",
    "isset(",
    "empty(",
    "$value",
    "$key",
    "$result",
    "$args",
    "echo",
    "'",
    "\"",
    "/**",
    " * @param",
    " * @return",
    " */",
    "{",
    "}",
    "\n",
    "\n    ",
    "\n        ",
    "wp_",
    "get_",
    "_option",
    "apply_filters(",
    "esc_html(",
    "__(",
    "sprintf(",
    "count(",
    "strlen(",
    "str_replace(",
];

fn text(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut out = String::with_capacity(size + 32);
    while out.len() < size {
        match rng.below(10) {
            0 => {
                let _ = write!(out, "{}", rng.below(100_000));
            }
            1 => {
                let len = 3 + rng.below(8);
                for _ in 0..len {
                    out.push(char::from(b'a' + u8::try_from(rng.below(26)).unwrap_or(0)));
                }
            }
            _ => {
                let index = usize::try_from(rng.below(WORDS.len() as u64)).unwrap_or(0);
                out.push_str(WORDS[index]);
            }
        }
        out.push(' ');
    }
    let mut bytes = out.into_bytes();
    bytes.truncate(size);
    bytes
}

/// A valid package with `files` files under `htdocs/` (plus APP-META.xml and
/// `scripts/configure`) holding about `total_bytes` bytes in all, with a correct APP-LIST.xml.
/// File sizes vary from tiny to about 20 times the mean, like a real web application.
pub fn bench_package(files: usize, total_bytes: u64) -> PackageBuilder {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let weights: Vec<u64> = (0..files)
        .map(|_| {
            // Mostly small files with a long tail: 1..=64 squared.
            let w = 1 + rng.below(64);
            w * w
        })
        .collect();
    let weight_sum: u64 = weights.iter().sum::<u64>().max(1);
    let mut builder = PackageBuilder::new()
        .app_meta(minimal_meta_xml("bench", "1.0", "1"))
        .file("scripts/configure", "<?php exit(0);\n");
    for (index, weight) in weights.iter().enumerate() {
        let size = total_bytes.saturating_mul(*weight) / weight_sum;
        let content = text(&mut rng, usize::try_from(size).unwrap_or(0));
        let path = format!(
            "htdocs/dir{:02}/sub{}/file{index:05}.php",
            index % 40,
            index % 7
        );
        builder = builder.file(&path, content);
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_add_up_and_output_is_deterministic() {
        let a = bench_package(50, 200_000).to_bytes().unwrap();
        let b = bench_package(50, 200_000).to_bytes().unwrap();
        assert_eq!(a, b);
        let zip = zip::ZipArchive::new(std::io::Cursor::new(a)).unwrap();
        assert_eq!(zip.len(), 53);
        let total: u64 = (0..zip.len())
            .map(|i| zip.clone().by_index_raw(i).unwrap().size())
            .sum();
        assert!((195_000..215_000).contains(&total), "{total}");
    }
}
