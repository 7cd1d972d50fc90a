//! Parser for APP-LIST.xml, the APS 1.2 listing of every package file with its size and digest.
//!
//! Main decision: the listing is parsed strictly into typed entries (hex digests decoded, sizes
//! as integers, names unique) with every error pointing at a line and column, so that the
//! archive layer only compares values. Namespaces are resolved by URI, never by prefix (the
//! Plesk `WordPress` package writes `<ns2:files>` with xmldsig as the default namespace); the
//! misspelled core namespace `http://apsstandard.com/ns/1` is accepted and reported in
//! [`AppList::misspelled_namespace`] for lint. DTDs and entity declarations are refused.
//! An entry with only `md5` is accepted (§11 Q4: the caller lints it); an entry with neither
//! `sha256` nor `md5` is an error. Text inside `files` (the `{FILES}` of an unfilled build
//! template) is an error.
//!
//! Known gaps: `ds:Signature` elements are counted and checked only for the presence of
//! `SignedInfo` and `SignatureValue`; no cryptographic verification and no trust decision is
//! made (§11 Q5). Entry names are taken as written; the archive layer decides whether they
//! match archive entries.

use std::collections::HashMap;

use crate::ns::{CORE as CORE_NS, CORE_MISSPELLED as CORE_NS_MISSPELLED, XMLDSIG as XMLDSIG_NS};

/// A parsed APP-LIST.xml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppList {
    /// The listed files, in document order.
    pub entries: Vec<ListEntry>,
    /// How many `ds:Signature` elements the listing carries.
    pub signatures: usize,
    /// The root uses the misspelled namespace `http://apsstandard.com/ns/1` (a lint finding).
    pub misspelled_namespace: bool,
}

impl AppList {
    /// Whether any entry carries only an MD5 digest (the archive must then compute MD5 too).
    pub fn has_md5_entries(&self) -> bool {
        self.entries
            .iter()
            .any(|entry| matches!(entry.digest, Digest::Md5(_)))
    }
}

/// One `file` element of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Archive path of the file, as written in `@name`.
    pub name: String,
    /// Size in bytes from `@size`.
    pub size: u64,
    /// The expected digest: SHA-256 when the entry has one, otherwise MD5.
    pub digest: Digest,
}

/// The expected content digest of a listed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    /// SHA-256 (`@sha256`), the digest the 1.2 specification describes.
    Sha256([u8; 32]),
    /// MD5 (`@md5`), found in vendor documentation; accepted with a lint warning (§11 Q4).
    Md5([u8; 16]),
}

impl Digest {
    /// The digest as lowercase hex.
    pub fn to_hex(&self) -> String {
        match self {
            Digest::Sha256(bytes) => to_hex(bytes),
            Digest::Md5(bytes) => to_hex(bytes),
        }
    }

    /// The algorithm name as written in APP-LIST.xml (`sha256` or `md5`).
    pub fn algorithm(&self) -> &'static str {
        match self {
            Digest::Sha256(_) => "sha256",
            Digest::Md5(_) => "md5",
        }
    }
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// Why an APP-LIST.xml document was refused. Every variant names the file and a position
/// (1-based line and column).
#[derive(Debug, thiserror::Error)]
pub enum AppListError {
    /// The bytes are not UTF-8.
    #[error("`{file}` is not valid UTF-8 (line {line}, column {column})")]
    NotUtf8 {
        /// The listing's name as given by the caller.
        file: String,
        /// Line of the first invalid byte.
        line: u32,
        /// Column of the first invalid byte.
        column: u32,
    },
    /// The document declares a DTD (and with it possibly entities), which is refused.
    #[error("`{file}` line {line}, column {column}: a DTD or entity declaration is not allowed")]
    Dtd {
        /// The listing's name as given by the caller.
        file: String,
        /// Line of the declaration.
        line: u32,
        /// Column of the declaration.
        column: u32,
    },
    /// The document is not well-formed XML.
    #[error("`{file}` is not well-formed XML (line {line}, column {column})")]
    Xml {
        /// The listing's name as given by the caller.
        file: String,
        /// Line of the error.
        line: u32,
        /// Column of the error.
        column: u32,
        /// The XML parser's error.
        #[source]
        source: roxmltree::Error,
    },
    /// The root element is not `files` in the APS core namespace.
    #[error(
        "`{file}` line {line}, column {column}: the root element is `{found}`, expected `files` in `{CORE_NS}`"
    )]
    WrongRoot {
        /// The listing's name as given by the caller.
        file: String,
        /// Line of the root element.
        line: u32,
        /// Column of the root element.
        column: u32,
        /// The root element found, as `{namespace}name`.
        found: String,
    },
    /// Non-whitespace text inside `files`, such as the `{FILES}` of a build template.
    #[error(
        "`{file}` line {line}, column {column}: text `{text}` inside `files` (an unfilled template?)"
    )]
    UnfilledTemplate {
        /// The listing's name as given by the caller.
        file: String,
        /// Line of the text.
        line: u32,
        /// Column of the text.
        column: u32,
        /// The text, trimmed and shortened.
        text: String,
    },
    /// An element other than `file` or `ds:Signature` inside `files`, or any element inside `file`.
    #[error("`{file}` line {line}, column {column}: unexpected element `{element}`")]
    UnexpectedElement {
        /// The listing's name as given by the caller.
        file: String,
        /// Line of the element.
        line: u32,
        /// Column of the element.
        column: u32,
        /// The element, as `{namespace}name`.
        element: String,
    },
    /// A `file` element without a non-empty `name` attribute.
    #[error("`{file}` line {line}, column {column}: a `file` element has no `name`")]
    MissingName {
        /// The listing's name as given by the caller.
        file: String,
        /// Line of the element.
        line: u32,
        /// Column of the element.
        column: u32,
    },
    /// A `file` element without a `size` attribute.
    #[error("`{file}` line {line}, column {column}: entry `{name}` has no `size`")]
    MissingSize {
        /// The listing's name as given by the caller.
        file: String,
        /// Line of the element.
        line: u32,
        /// Column of the element.
        column: u32,
        /// The entry's `name`.
        name: String,
    },
    /// A `file` element with neither `sha256` nor `md5` (§11 Q4).
    #[error(
        "`{file}` line {line}, column {column}: entry `{name}` has neither a `sha256` nor an `md5` digest"
    )]
    MissingDigest {
        /// The listing's name as given by the caller.
        file: String,
        /// Line of the element.
        line: u32,
        /// Column of the element.
        column: u32,
        /// The entry's `name`.
        name: String,
    },
    /// A `size` that is not a non-negative decimal integer.
    #[error("`{file}` line {line}, column {column}: entry `{name}` has a malformed size `{value}`")]
    BadSize {
        /// The listing's name as given by the caller.
        file: String,
        /// Line of the attribute.
        line: u32,
        /// Column of the attribute.
        column: u32,
        /// The entry's `name`.
        name: String,
        /// The attribute value as written.
        value: String,
    },
    /// A digest that is not hex of the right length.
    #[error(
        "`{file}` line {line}, column {column}: entry `{name}` has a malformed {algorithm} digest `{value}`"
    )]
    BadDigest {
        /// The listing's name as given by the caller.
        file: String,
        /// Line of the attribute.
        line: u32,
        /// Column of the attribute.
        column: u32,
        /// The entry's `name`.
        name: String,
        /// `sha256` or `md5`.
        algorithm: &'static str,
        /// The attribute value as written.
        value: String,
    },
    /// The same name is listed twice.
    #[error(
        "`{file}` line {line}, column {column}: entry `{name}` is listed twice (first at line {first_line})"
    )]
    Duplicate {
        /// The listing's name as given by the caller.
        file: String,
        /// Line of the second occurrence.
        line: u32,
        /// Column of the second occurrence.
        column: u32,
        /// The duplicated name.
        name: String,
        /// Line of the first occurrence.
        first_line: u32,
    },
    /// A `ds:Signature` lacks a required child.
    #[error("`{file}` line {line}, column {column}: `ds:Signature` has no `ds:{missing}`")]
    BadSignature {
        /// The listing's name as given by the caller.
        file: String,
        /// Line of the signature.
        line: u32,
        /// Column of the signature.
        column: u32,
        /// The missing child's local name.
        missing: &'static str,
    },
}

impl AppListError {
    /// The 1-based (line, column) the error points at.
    pub fn position(&self) -> (u32, u32) {
        match self {
            AppListError::NotUtf8 { line, column, .. }
            | AppListError::Dtd { line, column, .. }
            | AppListError::Xml { line, column, .. }
            | AppListError::WrongRoot { line, column, .. }
            | AppListError::UnfilledTemplate { line, column, .. }
            | AppListError::UnexpectedElement { line, column, .. }
            | AppListError::MissingName { line, column, .. }
            | AppListError::MissingSize { line, column, .. }
            | AppListError::MissingDigest { line, column, .. }
            | AppListError::BadSize { line, column, .. }
            | AppListError::BadDigest { line, column, .. }
            | AppListError::Duplicate { line, column, .. }
            | AppListError::BadSignature { line, column, .. } => (*line, *column),
        }
    }
}

/// Parses APP-LIST.xml bytes. `file` names the document in error messages (for example
/// `wordpress.app.zip!APP-LIST.xml`).
pub fn parse_app_list(bytes: &[u8], file: &str) -> Result<AppList, AppListError> {
    let text = decode_utf8(bytes, file)?;
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, options).map_err(|source| {
        let pos = source.pos();
        let (file, line, column) = (file.to_owned(), pos.row, pos.col);
        if matches!(source, roxmltree::Error::DtdDetected) {
            AppListError::Dtd { file, line, column }
        } else {
            AppListError::Xml {
                file,
                line,
                column,
                source,
            }
        }
    })?;
    Parser { doc: &doc, file }.parse()
}

/// Strips a BOM and checks UTF-8, reporting the position of the first bad byte.
fn decode_utf8<'a>(bytes: &'a [u8], file: &str) -> Result<&'a str, AppListError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|error| {
        let valid = &bytes[..error.valid_up_to()];
        let line = valid.split(|&b| b == b'\n').count();
        let line_start = valid
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |newline| newline + 1);
        // The prefix is valid UTF-8, so counting chars gives the column.
        let column = String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count()
            + 1;
        AppListError::NotUtf8 {
            file: file.to_owned(),
            line: saturate(line),
            column: saturate(column),
        }
    })
}

fn saturate(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

struct Parser<'a, 'input> {
    doc: &'a roxmltree::Document<'input>,
    file: &'a str,
}

impl Parser<'_, '_> {
    fn pos(&self, byte: usize) -> (String, u32, u32) {
        let pos = self.doc.text_pos_at(byte);
        (self.file.to_owned(), pos.row, pos.col)
    }

    fn parse(&self) -> Result<AppList, AppListError> {
        let root = self.doc.root_element();
        let namespace = root.tag_name().namespace();
        let misspelled_namespace = namespace == Some(CORE_NS_MISSPELLED);
        if root.tag_name().name() != "files"
            || !(namespace == Some(CORE_NS) || misspelled_namespace)
        {
            let (file, line, column) = self.pos(root.range().start);
            return Err(AppListError::WrongRoot {
                file,
                line,
                column,
                found: qualified(root),
            });
        }
        let mut entries = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut signatures = 0;
        for child in root.children() {
            match child.node_type() {
                roxmltree::NodeType::Text => {
                    let raw = child.text().unwrap_or_default();
                    let text = raw.trim();
                    if !text.is_empty() {
                        let leading = raw.len() - raw.trim_start().len();
                        let (file, line, column) = self.pos(child.range().start + leading);
                        return Err(AppListError::UnfilledTemplate {
                            file,
                            line,
                            column,
                            text: shorten(text),
                        });
                    }
                }
                roxmltree::NodeType::Element => {
                    let tag = child.tag_name();
                    if tag.name() == "file" && tag.namespace() == root.tag_name().namespace() {
                        let entry = self.entry(child)?;
                        if let Some(&first) = seen.get(&entry.name) {
                            // Positions are computed only for errors: each costs a scan from
                            // the start of the document.
                            let first_line = self.doc.text_pos_at(first).row;
                            let (file, line, column) = self.pos(child.range().start);
                            return Err(AppListError::Duplicate {
                                file,
                                line,
                                column,
                                name: entry.name,
                                first_line,
                            });
                        }
                        seen.insert(entry.name.clone(), child.range().start);
                        entries.push(entry);
                    } else if tag.name() == "Signature" && tag.namespace() == Some(XMLDSIG_NS) {
                        self.signature(child)?;
                        signatures += 1;
                    } else {
                        return Err(self.unexpected(child));
                    }
                }
                // Comments and processing instructions carry no listing data.
                roxmltree::NodeType::Comment
                | roxmltree::NodeType::PI
                | roxmltree::NodeType::Root => {}
            }
        }
        Ok(AppList {
            entries,
            signatures,
            misspelled_namespace,
        })
    }

    fn unexpected(&self, node: roxmltree::Node<'_, '_>) -> AppListError {
        let (file, line, column) = self.pos(node.range().start);
        AppListError::UnexpectedElement {
            file,
            line,
            column,
            element: qualified(node),
        }
    }

    fn entry(&self, node: roxmltree::Node<'_, '_>) -> Result<ListEntry, AppListError> {
        if let Some(child) = node.children().find(roxmltree::Node::is_element) {
            return Err(self.unexpected(child));
        }
        let name = match node.attribute("name") {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => {
                let (file, line, column) = self.pos(node.range().start);
                return Err(AppListError::MissingName { file, line, column });
            }
        };
        let Some(size_attr) = node.attribute_node("size") else {
            let (file, line, column) = self.pos(node.range().start);
            return Err(AppListError::MissingSize {
                file,
                line,
                column,
                name,
            });
        };
        let size = parse_size(size_attr.value()).ok_or_else(|| {
            let (file, line, column) = self.pos(size_attr.range().start);
            AppListError::BadSize {
                file,
                line,
                column,
                name: name.clone(),
                value: shorten(size_attr.value()),
            }
        })?;
        let digest = if let Some(attr) = node.attribute_node("sha256") {
            Digest::Sha256(self.hex(&attr, &name, "sha256")?)
        } else if let Some(attr) = node.attribute_node("md5") {
            Digest::Md5(self.hex(&attr, &name, "md5")?)
        } else {
            let (file, line, column) = self.pos(node.range().start);
            return Err(AppListError::MissingDigest {
                file,
                line,
                column,
                name,
            });
        };
        Ok(ListEntry { name, size, digest })
    }

    fn hex<const N: usize>(
        &self,
        attr: &roxmltree::Attribute<'_, '_>,
        name: &str,
        algorithm: &'static str,
    ) -> Result<[u8; N], AppListError> {
        parse_hex(attr.value()).ok_or_else(|| {
            let (file, line, column) = self.pos(attr.range().start);
            AppListError::BadDigest {
                file,
                line,
                column,
                name: name.to_owned(),
                algorithm,
                value: shorten(attr.value()),
            }
        })
    }

    fn signature(&self, node: roxmltree::Node<'_, '_>) -> Result<(), AppListError> {
        for required in ["SignedInfo", "SignatureValue"] {
            let present = node.children().any(|child| {
                child.is_element()
                    && child.tag_name().name() == required
                    && child.tag_name().namespace() == Some(XMLDSIG_NS)
            });
            if !present {
                let (file, line, column) = self.pos(node.range().start);
                return Err(AppListError::BadSignature {
                    file,
                    line,
                    column,
                    missing: required,
                });
            }
        }
        Ok(())
    }
}

/// `{namespace}name`, or just `name` outside any namespace.
fn qualified(node: roxmltree::Node<'_, '_>) -> String {
    let tag = node.tag_name();
    match tag.namespace() {
        Some(namespace) => format!("{{{namespace}}}{}", tag.name()),
        None => tag.name().to_owned(),
    }
}

/// Text for an error message: at most 40 characters.
fn shorten(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

/// A size is one or more ASCII digits (no sign, no spaces) that fit in `u64`.
fn parse_size(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Exactly `2 * N` hex digits, either case.
fn parse_hex<const N: usize>(value: &str) -> Option<[u8; N]> {
    let bytes = value.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *slot = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The corpus lives beside the repository (`/work/shared/corpus/aps1`); the files are
    // embedded at compile time so the tests need no file-system access.
    const WORDPRESS_LIST: &[u8] =
        include_bytes!("../../../../shared/corpus/aps1/wordpress-5.2.3/APP-LIST.xml");
    const WORDPRESS_META: &[u8] =
        include_bytes!("../../../../shared/corpus/aps1/wordpress-5.2.3/APP-META.xml");
    const COMMUNIGATE_LIST: &[u8] =
        include_bytes!("../../../../shared/corpus/aps1/communigate-pro-1.0/APP-LIST.xml");
    const COMMUNIGATE_META: &[u8] =
        include_bytes!("../../../../shared/corpus/aps1/communigate-pro-1.0/APP-META.xml");
    const COMPOSR_LIST: &[u8] =
        include_bytes!("../../../../shared/corpus/aps1/composr-10.0.25/APP-LIST.xml");
    const SPAMEXPERTS_LIST: &[u8] = include_bytes!(
        "../../../../shared/corpus/aps1/spamexperts-integration-template/APP-LIST.xml"
    );

    const SHA_A: &str = "a68b7091ce1621803c7f43d23fe0b0a572fee2dda1757ac2645f9b09ae0703f0";

    fn doc(body: &str) -> String {
        format!(r#"<files xmlns="http://apstandard.com/ns/1">{body}</files>"#)
    }

    fn err(text: &str) -> AppListError {
        parse_app_list(text.as_bytes(), "APP-LIST.xml").unwrap_err()
    }

    #[test]
    fn wordpress_list_parses_and_its_app_meta_entry_has_the_corpus_file_size() {
        // The SHA-256 of the corpus APP-META.xml is compared in aps-archive's corpus test
        // (this crate is pure and has no hashing dependency).
        let list = parse_app_list(WORDPRESS_LIST, "APP-LIST.xml").unwrap();
        assert!(list.entries.len() > 1000, "{}", list.entries.len());
        assert_eq!(list.signatures, 0);
        assert!(!list.misspelled_namespace);
        assert!(
            list.entries
                .iter()
                .all(|e| matches!(e.digest, Digest::Sha256(_)))
        );
        let entry = list
            .entries
            .iter()
            .find(|e| e.name == "APP-META.xml")
            .unwrap();
        assert_eq!(entry.size, WORDPRESS_META.len() as u64);
        assert_eq!(
            entry.digest.to_hex(),
            "f8febdd785bcbfc7c0fbc7dcd83c54bd82d262a8ab62897f6c482c678d24ba71"
        );
        assert_eq!(list.entries[3].name, "scripts/configure");
        assert_eq!(list.entries[3].size, 12886);
        assert_eq!(list.entries[3].digest.to_hex(), SHA_A);
    }

    #[test]
    fn communigate_list_parses_but_its_app_meta_entry_is_stale() {
        let list = parse_app_list(COMMUNIGATE_LIST, "APP-LIST.xml").unwrap();
        assert_eq!(list.entries.len(), 6);
        let entry = list
            .entries
            .iter()
            .find(|e| e.name == "APP-META.xml")
            .unwrap();
        assert_ne!(entry.size, COMMUNIGATE_META.len() as u64);
    }

    #[test]
    fn composr_list_parses_to_zero_entries() {
        let list = parse_app_list(COMPOSR_LIST, "APP-LIST.xml").unwrap();
        assert!(list.entries.is_empty());
        assert_eq!(list.signatures, 0);
    }

    #[test]
    fn spamexperts_template_is_refused_as_unfilled() {
        let error = parse_app_list(SPAMEXPERTS_LIST, "APP-LIST.xml").unwrap_err();
        assert!(
            matches!(error, AppListError::UnfilledTemplate { ref text, .. } if text == "{FILES}")
        );
        assert_eq!(error.position(), (3, 1));
        assert!(error.to_string().contains("unfilled template"), "{error}");
    }

    #[test]
    fn uppercase_hex_and_md5_only_entries_are_accepted() {
        let text = doc(&format!(
            r#"<file name="a" size="1" sha256="{}"/><file name="b" size="0" md5="D41D8CD98F00B204E9800998ECF8427E"/>"#,
            SHA_A.to_uppercase()
        ));
        let list = parse_app_list(text.as_bytes(), "x").unwrap();
        assert_eq!(list.entries[0].digest.to_hex(), SHA_A);
        assert_eq!(
            list.entries[1].digest.to_hex(),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(list.entries[1].digest.algorithm(), "md5");
        assert!(list.has_md5_entries());
    }

    #[test]
    fn sha256_wins_when_both_digests_are_present() {
        let text = doc(&format!(
            r#"<file name="a" size="1" md5="d41d8cd98f00b204e9800998ecf8427e" sha256="{SHA_A}"/>"#
        ));
        let list = parse_app_list(text.as_bytes(), "x").unwrap();
        assert!(matches!(list.entries[0].digest, Digest::Sha256(_)));
        assert!(!list.has_md5_entries());
    }

    #[test]
    fn misspelled_namespace_is_accepted_and_flagged() {
        let text = format!(
            r#"<files xmlns="http://apsstandard.com/ns/1"><file name="a" size="1" sha256="{SHA_A}"/></files>"#
        );
        let list = parse_app_list(text.as_bytes(), "x").unwrap();
        assert!(list.misspelled_namespace);
        assert_eq!(list.entries.len(), 1);
    }

    #[test]
    fn bom_and_comments_are_tolerated() {
        let text = format!("\u{feff}<!-- c -->{}", doc("<!-- none --><?pi x?>"));
        assert!(
            parse_app_list(text.as_bytes(), "x")
                .unwrap()
                .entries
                .is_empty()
        );
    }

    #[test]
    fn wrong_root_is_refused() {
        let e = err(r#"<application xmlns="http://apstandard.com/ns/1"/>"#);
        assert!(
            matches!(e, AppListError::WrongRoot { ref found, .. } if found.contains("application"))
        );
        let e = err("<files/>");
        assert!(matches!(e, AppListError::WrongRoot { .. }), "{e}");
        let e = err(r#"<files xmlns="http://aps-standard.org/ns/2"/>"#);
        assert!(matches!(e, AppListError::WrongRoot { .. }), "{e}");
    }

    #[test]
    fn a_file_in_another_namespace_is_unexpected() {
        let e = err(&format!(
            r#"<ns2:files xmlns:ns2="http://apstandard.com/ns/1"><file name="a" size="1" sha256="{SHA_A}"/></ns2:files>"#
        ));
        assert!(matches!(e, AppListError::UnexpectedElement { .. }), "{e}");
    }

    #[test]
    fn dtd_and_entities_are_refused() {
        let e = err(
            r#"<?xml version="1.0"?><!DOCTYPE files [<!ENTITY x "y">]><files xmlns="http://apstandard.com/ns/1"/>"#,
        );
        assert!(matches!(e, AppListError::Dtd { .. }), "{e}");
        let e = err(&doc("&x;"));
        assert!(matches!(e, AppListError::Xml { .. }), "{e}");
    }

    #[test]
    fn malformed_xml_and_non_utf8_are_refused_with_positions() {
        let e =
            err("<files xmlns=\"http://apstandard.com/ns/1\">\n<file a=\"1\" a=\"2\"/></files>");
        assert!(matches!(e, AppListError::Xml { .. }), "{e}");
        assert_eq!(e.position().0, 2);
        let e = parse_app_list(b"<files>\n  \xff</files>", "x").unwrap_err();
        assert!(matches!(e, AppListError::NotUtf8 { .. }), "{e}");
        assert_eq!(e.position(), (2, 3));
    }

    #[test]
    fn entry_without_digest_is_an_error() {
        let e = err(&doc(r#"<file name="a" size="1"/>"#));
        assert!(matches!(e, AppListError::MissingDigest { ref name, .. } if name == "a"));
        assert!(e.to_string().contains("`a`"), "{e}");
    }

    #[test]
    fn malformed_size_names_the_entry_and_position() {
        for bad in [
            "",
            "-1",
            "+1",
            "1.5",
            " 1",
            "abc",
            "99999999999999999999999",
        ] {
            let e = err(&doc(&format!(
                "\n  <file name=\"x/y\" size=\"{bad}\" sha256=\"{SHA_A}\"/>"
            )));
            assert!(
                matches!(e, AppListError::BadSize { ref name, .. } if name == "x/y"),
                "{e}"
            );
            assert_eq!(e.position(), (2, 20), "{e}");
            assert!(e.to_string().contains("`x/y`"), "{e}");
        }
        let e = err(&doc(r#"<file name="a" sha256="00"/>"#));
        assert!(matches!(e, AppListError::MissingSize { .. }), "{e}");
    }

    #[test]
    fn malformed_digests_are_errors() {
        for bad in [
            "",
            "abc",
            &SHA_A[1..],
            &format!("{SHA_A}0"),
            &SHA_A.replace('a', "g"),
        ] {
            let e = err(&doc(&format!(
                r#"<file name="a" size="1" sha256="{bad}"/>"#
            )));
            assert!(
                matches!(
                    e,
                    AppListError::BadDigest {
                        algorithm: "sha256",
                        ..
                    }
                ),
                "{bad}: {e}"
            );
        }
        let e = err(&doc(r#"<file name="a" size="1" md5="zz"/>"#));
        assert!(
            matches!(
                e,
                AppListError::BadDigest {
                    algorithm: "md5",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn duplicate_names_are_errors() {
        let e = err(&doc(&format!(
            "<file name=\"a\" size=\"1\" sha256=\"{SHA_A}\"/>\n<file name=\"a\" size=\"1\" sha256=\"{SHA_A}\"/>"
        )));
        assert!(
            matches!(e, AppListError::Duplicate { ref name, first_line: 1, line: 2, .. } if name == "a"),
            "{e}"
        );
    }

    #[test]
    fn missing_name_and_nested_elements_are_errors() {
        let e = err(&doc(&format!(r#"<file size="1" sha256="{SHA_A}"/>"#)));
        assert!(matches!(e, AppListError::MissingName { .. }), "{e}");
        let e = err(&doc(&format!(
            r#"<file name="a" size="1" sha256="{SHA_A}"><x/></file>"#
        )));
        assert!(matches!(e, AppListError::UnexpectedElement { .. }), "{e}");
        let e = err(&doc("<other/>"));
        assert!(matches!(e, AppListError::UnexpectedElement { .. }), "{e}");
    }

    #[test]
    fn signatures_are_counted_and_checked_for_structure() {
        let sig = r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/><ds:SignatureValue>AA==</ds:SignatureValue></ds:Signature>"#;
        let list = parse_app_list(doc(&format!("{sig}{sig}")).as_bytes(), "x").unwrap();
        assert_eq!(list.signatures, 2);
        let e = err(&doc(
            r#"<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/></Signature>"#,
        ));
        assert!(
            matches!(
                e,
                AppListError::BadSignature {
                    missing: "SignatureValue",
                    ..
                }
            ),
            "{e}"
        );
    }
}
