//! nginx: the instance's file holds `location` blocks for the site's `server` block to include.
//!
//! Main decisions: every location is a `^~` prefix location (`location ^~ /blog/`), so that
//! regular-expression locations of the site's own server block never take an instance's URLs
//! (the longest prefix of the instance's locations wins, and within it only its own nested
//! locations apply). Each sets `root` to the site's document root, since the site tree mirrors
//! the URLs. PHP runs through a nested regular-expression location for the declared extensions,
//! only for scripts that exist (`/upload/x.jpg/y.php` never reaches PHP-FPM); below
//! `php:disabled` files with PHP-like extensions answer 403. `.ht*` files answer 403 everywhere.
//!
//! Known gap: the site's server block must not define `location /` itself when an instance is
//! installed at the site root (nginx refuses the duplicate, and the configuration test says so).
use std::fmt::Write as _;

use super::{Access, Adapter, FastCgi, InstanceWeb, Location, Php, WebError};

/// Extensions treated as PHP below `php:disabled`, whatever the handler above declared.
const PHP_LIKE: &str = r"(?:php[0-9]?|phtml|phar|pht|phps)";

/// The nginx adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nginx;

impl Adapter for Nginx {
    fn name(&self) -> &'static str {
        "nginx"
    }

    fn render(&self, web: &InstanceWeb, access: Access) -> Result<Option<String>, WebError> {
        super::check(web)?;
        if web.htaccess {
            return Err(WebError::Unsupported(
                "the package needs `.htaccess` files honoured (`apache:htaccess`), which nginx never reads: install it on a site served by Apache".into(),
            ));
        }
        if let Some(module) = web.modules.first() {
            return Err(WebError::Unsupported(format!(
                "the package needs the Apache module `{module}`, and the site is served by nginx"
            )));
        }
        let mut out = String::new();
        super::header(&mut out, &web.instance, access);
        let Some(root) = web.locations.first() else {
            return Ok(Some(out));
        };
        match access {
            Access::Disabled => block(&mut out, &root.url, Some("return 503;"), |o| {
                let _ = writeln!(o, "    return 503;");
            }),
            Access::Enabled => {
                for (n, location) in web.locations.iter().enumerate() {
                    enabled(&mut out, web, location, n == 0);
                }
            }
        }
        Ok(Some(out))
    }
}

/// Writes `location ^~ {url}/` (`^~ /` for the site root) with `body`, after
/// `location = {url}` answering `bare` for the path without its slash (an exact location cannot
/// hold nested ones).
fn block(out: &mut String, url: &str, bare: Option<&str>, body: impl Fn(&mut String)) {
    if url == "/" {
        let _ = writeln!(out, "location ^~ / {{");
    } else {
        if let Some(bare) = bare {
            let _ = writeln!(out, "location = {url} {{\n    {bare}\n}}");
        }
        let _ = writeln!(out, "location ^~ {url}/ {{");
    }
    body(out);
    let _ = writeln!(out, "}}");
}

/// One location served by its mapping. The instance root's bare path redirects to the folder;
/// a sub-mapping's bare path is its parent location's (it may name a file).
fn enabled(out: &mut String, web: &InstanceWeb, location: &Location, is_root: bool) {
    let docroot = web.docroot.to_string_lossy();
    let redirect = format!("return 301 {}/$is_args$args;", location.url);
    let bare = match (location.readable, is_root) {
        (false, _) => Some("return 403;"),
        (true, true) => Some(redirect.as_str()),
        (true, false) => None,
    };
    block(out, &location.url, bare, |o| {
        if !location.readable {
            let _ = writeln!(o, "    return 403;");
            return;
        }
        // A tenant's link to another tenant's file is never followed (nginx follows links by
        // default); `.ht*` and `.user.ini` files are never served.
        let _ = writeln!(
            o,
            "    root {docroot};\n    autoindex off;\n    disable_symlinks if_not_owner from=$document_root;"
        );
        let _ = writeln!(
            o,
            "    location ~ /(?:\\.ht|\\.user\\.ini$) {{\n        return 403;\n    }}"
        );
        if let (Php::Run(extensions), Some(fastcgi)) = (&location.php, &web.fastcgi) {
            let alternatives = extensions.join("|");
            let indexes = super::index_pages(extensions);
            let _ = writeln!(o, "    index{indexes} index.html index.htm;");
            php(o, web, &alternatives, fastcgi);
            // Other PHP-like files are neither run nor shown as source.
            let _ = writeln!(
                o,
                "    location ~* \\.{PHP_LIKE}(?:/|$) {{\n        return 403;\n    }}"
            );
        } else {
            let _ = writeln!(
                o,
                "    index index.html index.htm;\n    location ~* \\.(?:php[0-9]?|phtml|phar|pht|phps{})(?:/|$) {{\n        return 403;\n    }}",
                super::declared_extensions(web)
            );
        }
    });
}

/// The nested location that hands the declared extensions to PHP-FPM.
fn php(out: &mut String, web: &InstanceWeb, alternatives: &str, fastcgi: &FastCgi) {
    let pass = match fastcgi {
        FastCgi::Unix(path) => format!("unix:{}", path.display()),
        FastCgi::Tcp(addr) => addr.clone(),
    };
    let _ = writeln!(
        out,
        r#"    location ~ [^/]\.(?:{alternatives})(?:/|$) {{
        fastcgi_split_path_info ^(.+?\.(?:{alternatives}))(/.*)$;
        if (!-f $document_root$fastcgi_script_name) {{
            return 404;
        }}
        fastcgi_pass {pass};
        fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
        fastcgi_param SCRIPT_NAME $fastcgi_script_name;
        fastcgi_param PATH_INFO $fastcgi_path_info;
        fastcgi_param QUERY_STRING $query_string;
        fastcgi_param REQUEST_METHOD $request_method;
        fastcgi_param CONTENT_TYPE $content_type;
        fastcgi_param CONTENT_LENGTH $content_length;
        fastcgi_param REQUEST_URI $request_uri;
        fastcgi_param DOCUMENT_URI $document_uri;
        fastcgi_param DOCUMENT_ROOT $document_root;
        fastcgi_param SERVER_PROTOCOL $server_protocol;
        fastcgi_param REQUEST_SCHEME $scheme;
        fastcgi_param HTTPS $https if_not_empty;
        fastcgi_param GATEWAY_INTERFACE CGI/1.1;
        fastcgi_param SERVER_SOFTWARE nginx;
        fastcgi_param REMOTE_ADDR $remote_addr;
        fastcgi_param REMOTE_PORT $remote_port;
        fastcgi_param SERVER_ADDR $server_addr;
        fastcgi_param SERVER_PORT $server_port;
        fastcgi_param SERVER_NAME $server_name;
        fastcgi_param HTTP_PROXY "";
        fastcgi_param REDIRECT_STATUS 200;"#
    );
    if !web.php_values.is_empty() {
        // A quoted nginx string may span lines; PHP-FPM reads PHP_VALUE as INI lines.
        let _ = writeln!(
            out,
            "        fastcgi_param PHP_VALUE \"{}\";",
            super::php_value_lines(web, "\n")
        );
    }
    let _ = writeln!(out, "    }}");
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn enabled_runs_php_only_where_declared() {
        let text = Nginx.render(&sample(), Access::Enabled).unwrap().unwrap();
        assert!(
            text.starts_with("# Written by apsctl for instance 7\n"),
            "{text}"
        );
        assert!(
            text.contains("location ^~ /blog/ {\n    root /srv/a;"),
            "{text}"
        );
        assert!(
            text.contains("fastcgi_pass unix:/run/php/fpm.sock;"),
            "{text}"
        );
        assert!(text.contains("location ~ [^/]\\.(?:php)(?:/|$)"), "{text}");
        assert!(text.contains("PHP_VALUE \"memory_limit=256M\""), "{text}");
        let uploads = text.split("location ^~ /blog/uploads/ {").nth(1).unwrap();
        let uploads = uploads.split("\n}\n").next().unwrap();
        assert!(!uploads.contains("fastcgi_pass"), "{uploads}");
        assert!(uploads.contains("return 403"), "{uploads}");
        let private = text.split("location ^~ /blog/private/ {").nth(1).unwrap();
        assert!(private.starts_with("\n    return 403;\n}"), "{private}");
    }

    #[test]
    fn disabled_answers_503_for_the_bare_path_and_below() {
        let text = Nginx.render(&sample(), Access::Disabled).unwrap().unwrap();
        assert!(
            text.contains("location = /blog {\n    return 503;\n}"),
            "{text}"
        );
        assert!(
            text.contains("location ^~ /blog/ {\n    return 503;\n}"),
            "{text}"
        );
        assert!(!text.contains("fastcgi"), "{text}");
        let mut root = sample();
        root.locations.truncate(1);
        root.locations[0].url = "/".into();
        root.locations[0].dir = "/srv/a".into();
        let text = Nginx.render(&root, Access::Disabled).unwrap().unwrap();
        assert!(
            text.contains("location ^~ / {\n    return 503;\n}"),
            "{text}"
        );
        assert!(!text.contains("location = "), "{text}");
    }

    #[test]
    fn htaccess_and_apache_modules_are_refused() {
        let mut web = sample();
        web.htaccess = true;
        let e = Nginx.render(&web, Access::Enabled).unwrap_err().to_string();
        assert!(e.contains("apache:htaccess"), "{e}");
        let mut web = sample();
        web.modules = vec!["mod_rewrite".into()];
        let e = Nginx.render(&web, Access::Enabled).unwrap_err().to_string();
        assert!(e.contains("mod_rewrite"), "{e}");
    }
}
