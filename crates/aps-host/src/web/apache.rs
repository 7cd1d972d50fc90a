//! Apache httpd: the instance's file holds `<Directory>` sections (and, when disabled, one
//! `RedirectMatch 503`) for the site's `<VirtualHost>` to include.
//!
//! Main decisions: one `<Directory>` per location, parents first (Apache merges them from the
//! shortest path to the longest, so a child's section overrides its parent's). PHP runs through
//! `mod_proxy_fcgi` (`SetHandler "proxy:…"` on the declared extensions); below `php:disabled`
//! files with PHP-like extensions get no handler and are refused (403). `apache:htaccess` allows, in the instance's
//! folders, only the directives of `HTACCESS_DIRECTIVES` (`AllowOverrideList`): nothing that
//! sets a handler, access, options or a rewrite rule (see there). `apache:required-module` is
//! checked by the configuration test: an `<IfModule !mod_x.c>` section holding an `Error`
//! directive makes the test fail with the module named. PHP values per instance go to PHP-FPM as
//! `PHP_VALUE` through `ProxyFCGISetEnvIf`; several are joined by a newline written as `%0A`
//! and decoded by the expression function `unescape`.
//!
//! Known gaps: `mod_proxy_fcgi`, `mod_alias` (the 503) and `mod_authz_core` must be loaded by the
//! site's server; without them the configuration test (or the reload) names the directive. A
//! package whose `.htaccess` needs `RewriteRule` (pretty URLs) gets 500 for it: rewrites would
//! have to be translated into the instance's own configuration, which apsctl does not do yet. The
//! `.htaccess` of an instance at the site root also reaches the folders of the site's other
//! instances (Apache reads every ancestor's), limited to the same harmless directives.
use std::fmt::Write as _;

use super::{Access, Adapter, FastCgi, InstanceWeb, Location, Php, WebError};

/// Extensions treated as PHP below `php:disabled`, whatever the handler above declared.
const PHP_LIKE: &str = r"(?i)\.(?:php[0-9]?|phtml|phar|pht|phps)$";

/// What an instance's `.htaccess` may say under `apache:htaccess` (`AllowOverrideList`): index
/// pages, error pages, headers, expiry, types and redirects. Not allowed: `SetHandler`,
/// `AddHandler`, `Require` and the other access directives, `Options`, and `RewriteRule`, whose
/// `[H=…]` and `[P]` flags would let a tenant run files with any handler (PHP below
/// `php:disabled`, another tenant's PHP-FPM pool) — a `.htaccess` using them answers 500.
const HTACCESS_DIRECTIVES: &str = "DirectoryIndex ErrorDocument Header ExpiresActive ExpiresByType ExpiresDefault AddType AddCharset AddDefaultCharset AddEncoding AddLanguage DefaultLanguage Redirect RedirectMatch RedirectPermanent RedirectTemp RewriteEngine RewriteBase RewriteCond RewriteOptions";

/// The Apache adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Apache;

impl Adapter for Apache {
    fn name(&self) -> &'static str {
        "apache"
    }

    fn render(&self, web: &InstanceWeb, access: Access) -> Result<Option<String>, WebError> {
        super::check(web)?;
        let mut out = String::new();
        super::header(&mut out, &web.instance, access);
        for module in &web.modules {
            let _ = writeln!(
                out,
                "<IfModule !{module}.c>\n    Error \"instance {} needs the Apache module {module}, which this server has not loaded\"\n</IfModule>",
                web.instance
            );
        }
        let Some(root) = web.locations.first() else {
            return Ok(Some(out));
        };
        match access {
            Access::Disabled => {
                let pattern = if root.url == "/" {
                    "^/".to_owned()
                } else {
                    // `.` and `+` are the only characters of a safe path a regex gives meaning to.
                    let literal = root.url.replace('.', "\\.").replace('+', "\\+");
                    format!("^{literal}(?:/|$)")
                };
                let _ = writeln!(out, "RedirectMatch 503 \"{pattern}\"");
            }
            Access::Enabled => {
                for location in &web.locations {
                    directory(&mut out, web, location);
                }
            }
        }
        Ok(Some(out))
    }
}

/// One `<Directory>` section.
fn directory(out: &mut String, web: &InstanceWeb, location: &Location) {
    let _ = writeln!(out, "<Directory \"{}\">", location.dir.display());
    if !location.readable {
        // `<Files>` sections are merged after every `<Directory>` and `.htaccess` of the
        // ancestors, so nothing above can grant what this refuses.
        let _ = writeln!(
            out,
            "    AllowOverride None\n    Require all denied\n    <Files \"*\">\n        Require all denied\n    </Files>\n</Directory>"
        );
        return;
    }
    let overrides = if web.htaccess {
        format!("None\n    AllowOverrideList {HTACCESS_DIRECTIVES}")
    } else {
        "None".to_owned()
    };
    let _ = writeln!(
        out,
        "    Options -Indexes -ExecCGI -Includes -FollowSymLinks +SymLinksIfOwnerMatch\n    AllowOverride {overrides}\n    Require all granted\n    <FilesMatch \"^(?:\\.ht|\\.user\\.ini$)\">\n        Require all denied\n    </FilesMatch>"
    );
    if let (Php::Run(extensions), Some(fastcgi)) = (&location.php, &web.fastcgi) {
        let indexes = super::index_pages(extensions);
        let handler = match fastcgi {
            FastCgi::Unix(path) => format!("proxy:unix:{}|fcgi://localhost/", path.display()),
            FastCgi::Tcp(addr) => format!("proxy:fcgi://{addr}/"),
        };
        // PHP-like files the package did not declare are refused (neither run nor shown as
        // source); the declared extensions, merged after, are granted and run.
        let _ = writeln!(
            out,
            "    DirectoryIndex{indexes} index.html index.htm\n    <FilesMatch \"{PHP_LIKE}\">\n        Require all denied\n    </FilesMatch>\n    <FilesMatch \"\\.(?:{})$\">\n        Require all granted\n        SetHandler \"{handler}\"\n    </FilesMatch>",
            extensions.join("|")
        );
        if !web.php_values.is_empty() {
            let _ = writeln!(
                out,
                "    ProxyFCGISetEnvIf \"true\" PHP_VALUE \"%{{unescape:{}}}\"",
                super::php_value_lines(web, "%0A")
            );
        }
    } else {
        let declared = super::declared_extensions(web);
        let _ = writeln!(
            out,
            "    DirectoryIndex index.html index.htm\n    <FilesMatch \"(?i)\\.(?:php[0-9]?|phtml|phar|pht|phps{declared})$\">\n        SetHandler none\n        Require all denied\n    </FilesMatch>"
        );
    }
    let _ = writeln!(out, "</Directory>");
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn enabled_hands_php_to_fpm_only_where_declared() {
        let text = Apache.render(&sample(), Access::Enabled).unwrap().unwrap();
        assert!(text.contains("<Directory \"/srv/a/blog\">"), "{text}");
        assert!(
            text.contains("SetHandler \"proxy:unix:/run/php/fpm.sock|fcgi://localhost/\""),
            "{text}"
        );
        assert!(text.contains("AllowOverride None"), "{text}");
        let uploads = text
            .split("<Directory \"/srv/a/blog/uploads\">")
            .nth(1)
            .unwrap();
        let uploads = uploads.split("</Directory>").next().unwrap();
        assert!(!uploads.contains("proxy:"), "{uploads}");
        assert!(
            uploads.contains("SetHandler none\n        Require all denied"),
            "{uploads}"
        );
        let private = text
            .split("<Directory \"/srv/a/blog/private\">")
            .nth(1)
            .unwrap();
        let private = private.split("</Directory>").next().unwrap();
        assert!(
            private.contains("AllowOverride None\n    Require all denied"),
            "{private}"
        );
        assert!(
            private.contains("<Files \"*\">\n        Require all denied"),
            "{private}"
        );
    }

    #[test]
    fn htaccess_modules_and_disabled() {
        let mut web = sample();
        web.htaccess = true;
        web.modules = vec!["mod_rewrite".into()];
        let text = Apache.render(&web, Access::Enabled).unwrap().unwrap();
        assert!(text.contains("AllowOverrideList DirectoryIndex"), "{text}");
        for dangerous in ["FileInfo", "AuthConfig", "SetHandler ", "RewriteRule"] {
            let list = text.split("AllowOverrideList").nth(1).unwrap();
            let list = list.lines().next().unwrap();
            assert!(!list.contains(dangerous), "{dangerous} allowed: {list}");
        }
        assert!(
            text.contains("<IfModule !mod_rewrite.c>\n    Error"),
            "{text}"
        );
        let text = Apache.render(&web, Access::Disabled).unwrap().unwrap();
        assert!(
            text.contains("RedirectMatch 503 \"^/blog(?:/|$)\""),
            "{text}"
        );
        assert!(!text.contains("<Directory"), "{text}");
    }
}
