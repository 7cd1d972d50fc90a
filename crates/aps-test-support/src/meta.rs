//! A minimal valid APS 1.2 APP-META.xml for tests that need a working package quickly.
//!
//! Main decision: one root service with one string setting, a root mapping of `htdocs` with PHP
//! enabled, and a PHP `configure` script, which is the smallest package that exercises install,
//! configure and remove.
//!
//! Known gaps: no database requirement; tests that need one write their own metadata.

/// Escapes text for XML element content.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A valid APS 1.2 APP-META.xml for application `name` at `version`-`release`: id
/// `http://example.invalid/aps/<name>`, one service `main` with a `title` setting, the root
/// mapping `/` → `htdocs` with PHP handling `.php`, and `configuration-script name="configure"`
/// in PHP. Pair it with files under `htdocs/` and a `scripts/configure`.
pub fn minimal_meta_xml(name: &str, version: &str, release: &str) -> String {
    let (name, version, release) = (escape(name), escape(version), escape(release));
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<application xmlns="http://apstandard.com/ns/1" version="1.2">
  <id>http://example.invalid/aps/{name}</id>
  <name>{name}</name>
  <version>{version}</version>
  <release>{release}</release>
  <presentation>
    <summary>{name} test package</summary>
    <categories><category>Test</category></categories>
  </presentation>
  <service id="main">
    <presentation><name>{name}</name></presentation>
    <settings>
      <setting id="title" type="string" default-value="Hello">
        <name>Title</name>
      </setting>
    </settings>
    <requirements xmlns:php="http://apstandard.com/ns/1/php">
      <php:version min="5.6"/>
    </requirements>
    <provision>
      <url-mapping>
        <default-prefix>{name}</default-prefix>
        <installed-size>1024</installed-size>
        <mapping url="/" path="htdocs" xmlns:php="http://apstandard.com/ns/1/php">
          <php:handler><php:extension>php</php:extension></php:handler>
        </mapping>
      </url-mapping>
      <configuration-script name="configure">
        <script-language>php</script-language>
      </configuration-script>
    </provision>
  </service>
</application>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_filled_and_escaped() {
        let xml = minimal_meta_xml("a<b", "1.0", "2");
        assert!(xml.contains("<name>a&lt;b</name>"));
        assert!(xml.contains("<version>1.0</version>"));
        assert!(xml.contains("<release>2</release>"));
        assert!(xml.contains(r#"<configuration-script name="configure">"#));
        assert!(xml.contains(r#"path="htdocs""#));
    }
}
