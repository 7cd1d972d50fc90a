//! The XML namespace URIs of APS 1.x metadata, and which aspect namespaces apsctl can satisfy.
//!
//! Main decision: namespaces are matched by URI, never by prefix (REFERENCE §1.4), so every URI the
//! parser or lint compares against is a constant here. The misspelled core namespace
//! (`apsstandard.com`) is folded onto the real one by [`canonical`], which the parser applies to
//! every element before looking at it.
//!
//! Known gaps: the URIs of the Perl, IIS, Hardware and DLL aspects are not specified by the
//! available sources, so they have no constant; elements in them are kept as foreign elements and
//! reported as unsupported.

use std::borrow::Cow;

/// APS 1.x core namespace: `APP-META.xml`, `APP-LIST.xml`, settings, services, mapping.
pub const CORE: &str = "http://apstandard.com/ns/1";

/// Misspelled core namespace (double "s") from one Guide example; accepted with a lint warning (D1).
pub const CORE_MISSPELLED: &str = "http://apsstandard.com/ns/1";

/// APS 2 namespace; APS 2 packages are refused with a message naming APS 2 (D1).
pub const APS2: &str = "http://aps-standard.org/ns/2";

/// PHP aspect: `php:version`, `php:extension`, ini flags, `php:handler`, `php:permissions`.
pub const PHP: &str = "http://apstandard.com/ns/1/php";

/// Database aspect: `db:db` requirements.
pub const DB: &str = "http://apstandard.com/ns/1/db";

/// Apache aspect: `apache:required-module`, `apache:htaccess`.
pub const APACHE: &str = "http://apstandard.com/ns/1/apache";

/// ASP.NET aspect (no checker in apsctl).
pub const ASPNET: &str = "http://apstandard.com/ns/1/aspnet";

/// CGI aspect: `cgi:handler` in URL mappings.
pub const CGI: &str = "http://apstandard.com/ns/1/cgi";

/// CGI handler types: namespace of the `h:handler-type` attribute inside `cgi:handler`.
pub const CGI_HANDLERS: &str = "http://apstandard.com/ns/1/cgi/handlers";

/// Mail aspect (`mail:mailbox`; no checker in apsctl).
pub const MAIL: &str = "http://apstandard.com/ns/1/mail";

/// DNS zone aspect (`dns:record`; no checker in apsctl).
pub const DNS: &str = "http://apstandard.com/ns/1/dns";

/// Operating environment aspect (no checker in apsctl).
pub const ENVIRONMENT: &str = "http://apstandard.com/ns/1/environment";

/// Licensing aspect (`l:license`, `l:license-script`; no checker in apsctl).
pub const LICENSING: &str = "http://apstandard.com/ns/1/licensing";

/// Structured output of configuration and verification scripts (REFERENCE §4.4).
pub const CONFIGURE_OUTPUT: &str = "http://apstandard.com/ns/1/configure-output";

/// Output of the resource script (REFERENCE §4.6).
pub const RESOURCE_OUTPUT: &str = "http://apstandard.com/ns/1/resource-output";

/// XML digital signatures inside `APP-LIST.xml`.
pub const XMLDSIG: &str = "http://www.w3.org/2000/09/xmldsig#";

/// The `xml:` namespace, used for `xml:lang` on human-readable texts.
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";

/// Whether apsctl has a handler for this aspect namespace (PHP, DB, Apache, CGI).
///
/// Elements in any other namespace inside `requirements`, `mapping`, `content` or `provision`
/// cannot be satisfied by apsctl (REFERENCE §2.4 check 11, §6.1).
pub fn is_supported_aspect(namespace: &str) -> bool {
    matches!(namespace, PHP | DB | APACHE | CGI)
}

/// Short human name of a known aspect namespace (`"PHP"`, `"Mail"` …), for messages.
pub fn aspect_name(namespace: &str) -> Option<&'static str> {
    Some(match namespace {
        PHP => "PHP",
        DB => "Database",
        APACHE => "Apache",
        ASPNET => "ASP.NET",
        CGI | CGI_HANDLERS => "CGI",
        MAIL => "Mail",
        DNS => "DNS zone",
        ENVIRONMENT => "Operating environment",
        LICENSING => "Licensing",
        _ => return None,
    })
}

/// Folds the misspelled core namespace (and aspect namespaces below it) onto the real URI.
///
/// `http://apsstandard.com/ns/1/php` becomes `http://apstandard.com/ns/1/php`; any other URI is
/// returned unchanged. Use [`is_misspelled`] to decide whether to warn.
pub fn canonical(namespace: &str) -> Cow<'_, str> {
    match namespace.strip_prefix(CORE_MISSPELLED) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            Cow::Owned(format!("{CORE}{rest}"))
        }
        _ => Cow::Borrowed(namespace),
    }
}

/// Whether the URI is the misspelled core namespace or an aspect namespace below it.
pub fn is_misspelled(namespace: &str) -> bool {
    matches!(canonical(namespace), Cow::Owned(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_aspects_are_exactly_php_db_apache_cgi() {
        for ns in [PHP, DB, APACHE, CGI] {
            assert!(is_supported_aspect(ns), "{ns}");
        }
        for ns in [
            CORE,
            ASPNET,
            MAIL,
            DNS,
            ENVIRONMENT,
            LICENSING,
            CGI_HANDLERS,
            APS2,
            "urn:x",
        ] {
            assert!(!is_supported_aspect(ns), "{ns}");
        }
    }

    #[test]
    fn misspelled_namespaces_fold_onto_core() {
        assert_eq!(canonical(CORE_MISSPELLED), CORE);
        assert_eq!(canonical("http://apsstandard.com/ns/1/php"), PHP);
        assert!(is_misspelled(CORE_MISSPELLED));
        assert!(!is_misspelled(CORE));
        assert!(!is_misspelled(PHP));
        // A longer host that merely starts with the same text is not folded.
        assert_eq!(
            canonical("http://apsstandard.com/ns/10"),
            "http://apsstandard.com/ns/10"
        );
    }

    #[test]
    fn aspect_names_cover_the_registry() {
        assert_eq!(aspect_name(MAIL), Some("Mail"));
        assert_eq!(aspect_name(PHP), Some("PHP"));
        assert_eq!(aspect_name("urn:unknown"), None);
    }
}
