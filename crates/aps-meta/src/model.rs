//! The typed APP-META.xml model shared by APS 1.0, 1.1 and 1.2 packages.
//!
//! Main decision: one model for all three formats (REFERENCE §3.10). A 1.0 flat document is
//! normalised by the parser into a single root service with id [`ROOT_SERVICE_ID`] (§3.4), so
//! no code outside the parser needs to know the package was 1.0; the only traces are
//! [`Package::format`], [`Package::upgradable_from`] and [`Setting::global`]. Aspect elements
//! apsctl has no typed form for are kept as [`ForeignElement`]s so aspect handlers and lint can
//! still see them. The D4 `WEB_` variable naming lives here ([`web_variable`]) because it is a
//! pure function of the mapping tree.
//!
//! Known gaps: only the first `license/text` is kept; `when-chosen` provisioning elements
//! (REFERENCE §3.6) have no typed form.

use serde::{Deserialize, Serialize};

use crate::value::SettingType;

/// Id of the synthetic root service a 1.0 package is normalised into; it never reaches scripts.
pub const ROOT_SERVICE_ID: &str = "root";

/// APS format version of a package (`application/@version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ApsFormat {
    /// No `version` attribute: flat 1.0 layout.
    #[serde(rename = "1.0")]
    V1_0,
    /// `version="1.1"`.
    #[serde(rename = "1.1")]
    V1_1,
    /// `version="1.2"`.
    #[serde(rename = "1.2")]
    V1_2,
}

impl ApsFormat {
    /// The version as written in documents and shown to users (`"1.0"`, `"1.1"`, `"1.2"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ApsFormat::V1_0 => "1.0",
            ApsFormat::V1_1 => "1.1",
            ApsFormat::V1_2 => "1.2",
        }
    }
}

/// A whole APP-META.xml document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    /// Format version the document declared.
    pub format: ApsFormat,
    /// `@packaged` timestamp as written (with or without offset).
    pub packaged: Option<String>,
    /// `id` (1.2): the application identity, a URI by intent but any non-empty string in practice.
    pub id: Option<String>,
    /// Display name; part of the identity of packages without `id`.
    pub name: String,
    /// Upstream version (`5.2.3`, `10.alpha1`).
    pub version: String,
    /// Package revision (`282`; dotted values occur).
    pub release: String,
    /// Application home page.
    pub homepage: Option<String>,
    /// Vendor of the application.
    pub vendor: Option<Party>,
    /// Packager; 1.0 `packager-uri` / `package-homepage` are normalised into it.
    pub packager: Option<Party>,
    /// Application-level texts, images, changelog, categories and languages.
    pub presentation: Presentation,
    /// Per-package settings set by the administrator (1.1+).
    pub global_settings: Vec<SettingNode>,
    /// `patch` rule (1.1+).
    pub patch: Option<UpdateRule>,
    /// `upgrade` rule (1.1+). Always `None` for 1.0: see [`Package::upgradable_from`].
    pub upgrade: Option<UpdateRule>,
    /// 1.0 `upgradable-from` elements, kept as written. The match-expression module turns them
    /// into the equivalent upgrade rule (REFERENCE §7.5); the parser does not, so this model
    /// never holds a rule the package did not write. Empty for 1.1+.
    pub upgradable_from: Vec<UpgradableFrom>,
    /// `master-package` of an add-on (1.2).
    pub master_package: Option<MasterPackage>,
    /// The aspect-defined content delivery method inside `content`, if any.
    pub content: Option<ForeignElement>,
    /// Top-level services; the parser guarantees at least one.
    pub services: Vec<Service>,
}

/// Package identity in the repository (REFERENCE §2.6).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Identity {
    /// The package has an `id`.
    Id(String),
    /// No `id`: the name plus the packager URI (which alone is not unique in practice).
    NameAndPackager {
        /// `name`.
        name: String,
        /// `packager/uri` (1.1+) or `packager-uri` (1.0), when present.
        packager_uri: Option<String>,
    },
}

impl Package {
    /// The package's identity: `id`, else `name` + packager URI.
    pub fn identity(&self) -> Identity {
        match &self.id {
            Some(id) => Identity::Id(id.clone()),
            None => Identity::NameAndPackager {
                name: self.name.clone(),
                packager_uri: self.packager.as_ref().and_then(|p| p.uri.clone()),
            },
        }
    }

    /// The root service: the first top-level service (REFERENCE §11 Q10).
    pub fn root_service(&self) -> Option<&Service> {
        self.services.first()
    }

    /// Every service, depth first in document order (parents before their children).
    pub fn all_services(&self) -> Vec<&Service> {
        let mut out = Vec::new();
        for service in &self.services {
            service.collect_services(&mut out);
        }
        out
    }

    /// The global settings flattened out of their groups, in document order.
    pub fn all_global_settings(&self) -> Vec<&Setting> {
        flatten_settings(&self.global_settings)
    }
}

/// A vendor or packager.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Party {
    /// Names per language.
    pub names: Vec<LocalizedText>,
    /// Home pages.
    pub homepages: Vec<String>,
    /// Icon path in the archive.
    pub icon: Option<String>,
    /// Packager URI (usually `uuid:…`); `None` for vendors.
    pub uri: Option<String>,
}

/// A human-readable text with its `xml:lang` (an empty `xml:lang` is `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalizedText {
    /// Language tag, e.g. `de-DE`.
    pub lang: Option<String>,
    /// The text, trimmed.
    pub text: String,
}

/// Application-level presentation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Presentation {
    /// Short descriptions per language.
    pub summaries: Vec<LocalizedText>,
    /// Long descriptions per language.
    pub descriptions: Vec<LocalizedText>,
    /// Icon path in the archive.
    pub icon: Option<String>,
    /// Screenshots.
    pub screenshots: Vec<Screenshot>,
    /// Changelog, newest first as written.
    pub changelog: Vec<ChangelogVersion>,
    /// Category paths such as `Web/Blog`.
    pub categories: Vec<String>,
    /// Languages of the application (`language` values as written).
    pub languages: Vec<String>,
}

/// A screenshot and its captions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Screenshot {
    /// Image path in the archive.
    pub path: String,
    /// Captions per language.
    pub descriptions: Vec<LocalizedText>,
}

/// One `changelog/version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangelogVersion {
    /// `@version`.
    pub version: String,
    /// `@release`.
    pub release: String,
    /// `@date`, as written.
    pub date: Option<String>,
    /// Entries.
    pub entries: Vec<LocalizedText>,
}

/// A `patch` or `upgrade` rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateRule {
    /// The `@match` expression, as written (REFERENCE §7.4).
    pub match_rule: String,
    /// `@recommended="true"` (patches only).
    pub recommended: bool,
}

/// A 1.0 `upgradable-from` element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradableFrom {
    /// `@version`.
    pub version: String,
    /// `@release`; when absent the release clause is dropped (REFERENCE §7.5).
    pub release: Option<String>,
}

/// The master package of an add-on (1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterPackage {
    /// The master's `id`.
    pub id: String,
    /// `@match` evaluated on the master instance's metadata.
    pub match_rule: String,
}

/// An element apsctl keeps without interpreting it (unknown aspect elements).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignElement {
    /// Namespace URI (misspelled core namespaces folded onto the real one); empty for none.
    pub namespace: String,
    /// Local name.
    pub name: String,
    /// Attributes in document order; namespaced attribute names in Clark notation `{uri}name`.
    pub attributes: Vec<(String, String)>,
    /// The element's own text, trimmed.
    pub text: String,
    /// Child elements.
    pub children: Vec<ForeignElement>,
}

impl ForeignElement {
    /// The value of an attribute without namespace.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// This element and all its descendants, depth first.
    pub fn descendants(&self) -> Vec<&ForeignElement> {
        let mut out = vec![self];
        for child in &self.children {
            out.extend(child.descendants());
        }
        out
    }
}

/// A unit of provisioning (1.1+; the 1.0 root service is synthesised).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// `@id` (spaces occur in practice).
    pub id: String,
    /// `@class` (`service`, `account` seen); no behaviour.
    pub class: Option<String>,
    /// License the user may have to accept.
    pub license: Option<License>,
    /// Names, links and entry points.
    pub presentation: ServicePresentation,
    /// Settings and groups in document order.
    pub settings: Vec<SettingNode>,
    /// Declared resources (1.2).
    pub resources: Vec<ResourceDecl>,
    /// What the site must offer.
    pub requirements: Requirements,
    /// URL mapping and scripts.
    pub provision: Provision,
    /// Child services.
    pub services: Vec<Service>,
}

impl Service {
    /// The settings flattened out of their groups, in document order.
    pub fn all_settings(&self) -> Vec<&Setting> {
        flatten_settings(&self.settings)
    }

    fn collect_services<'a>(&'a self, out: &mut Vec<&'a Service>) {
        out.push(self);
        for child in &self.services {
            child.collect_services(out);
        }
    }
}

/// Kind of license marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LicenseKind {
    /// `<free/>`.
    Free,
    /// `<commercial/>`.
    Commercial,
    /// No marker.
    None,
}

/// A service license.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct License {
    /// `@must-accept="true"`.
    pub must_accept: bool,
    /// Free / commercial marker.
    pub kind: LicenseKind,
    /// `text/name`.
    pub text_name: Option<String>,
    /// `text/file`: archive path of the license text.
    pub text_file: Option<String>,
    /// `text/url`.
    pub text_url: Option<String>,
}

/// Service-level presentation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServicePresentation {
    /// Names per language.
    pub names: Vec<LocalizedText>,
    /// Summaries per language.
    pub summaries: Vec<LocalizedText>,
    /// Descriptions per language.
    pub descriptions: Vec<LocalizedText>,
    /// Icon path in the archive.
    pub icon: Option<String>,
    /// Information links.
    pub infolinks: Vec<InfoLink>,
    /// Entry points for auto-login forms.
    pub entry_points: Vec<EntryPoint>,
}

/// An `infolinks/link`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoLink {
    /// `@href`.
    pub href: String,
    /// `@class` (`official`, `support`, `community`, `howto`).
    pub class: Option<String>,
    /// Label and its language.
    pub label: LocalizedText,
}

/// An `entry-points/entry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryPoint {
    /// Destination relative to the service root, as written in 1.1+ (may hold a query string or
    /// a `{setting}` placeholder); a 1.0 `path` gets a leading `/` when it has none.
    pub dst: String,
    /// `@method` (`POST`).
    pub method: Option<String>,
    /// `@class` (`control-panel`, `frontpage`).
    pub class: Option<String>,
    /// Labels per language.
    pub labels: Vec<LocalizedText>,
    /// Descriptions per language.
    pub descriptions: Vec<LocalizedText>,
    /// Form variables to post.
    pub variables: Vec<EntryVariable>,
}

/// A variable of an entry point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryVariable {
    /// `@name`.
    pub name: String,
    /// `@value-of-setting`; takes precedence over `text` when both are present.
    pub value_of_setting: Option<String>,
    /// `@class`.
    pub class: Option<String>,
    /// Literal value.
    pub text: String,
}

/// A setting or a group of settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[expect(
    clippy::large_enum_variant,
    reason = "settings are the common case; boxing them would complicate every match for a few bytes per group"
)]
pub enum SettingNode {
    /// A setting.
    Setting(Setting),
    /// A group.
    Group(Group),
}

/// A `group`: no value, gives meaning through `class`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// `@class` (`authn`, `vcard`, `email` …).
    pub class: Option<String>,
    /// Names per language.
    pub names: Vec<LocalizedText>,
    /// Settings and nested groups.
    pub items: Vec<SettingNode>,
}

/// Scope of a `uniq` setting (REFERENCE §11 Q13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Uniq {
    /// Unique among the instances of the same owner.
    Owner,
    /// Unique among all instances of the package identity in this controller.
    Global,
}

/// A declared setting (REFERENCE §3.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each flag mirrors one boolean attribute of the APP-META.xml `setting` element"
)]
pub struct Setting {
    /// `@id`: variable `SETTINGS_<id>`, case preserved.
    pub id: String,
    /// Type and constraints.
    pub kind: SettingType,
    /// `@default-value`; boolean defaults normalised to `true`/`false`.
    pub default_value: Option<String>,
    /// `@installation-only="true"`.
    pub installation_only: bool,
    /// 1.0 `@global="true"`, kept as a flag (REFERENCE §11 Q11).
    pub global: bool,
    /// `@class` semantic tag.
    pub class: Option<String>,
    /// `@value-of-setting`: the value is copied from that setting.
    pub value_of_setting: Option<String>,
    /// `@uniq`.
    pub uniq: Option<Uniq>,
    /// `@visibility="hidden"`.
    pub visibility_hidden: bool,
    /// `@protected="true"`.
    pub protected: bool,
    /// `@optional="true"`: an empty value is allowed.
    pub optional: bool,
    /// `@track-old-value="true"`.
    pub track_old_value: bool,
    /// Labels per language.
    pub names: Vec<LocalizedText>,
    /// Help texts per language.
    pub descriptions: Vec<LocalizedText>,
    /// Validation messages per language.
    pub error_messages: Vec<LocalizedText>,
}

fn flatten_settings(nodes: &[SettingNode]) -> Vec<&Setting> {
    let mut out = Vec::new();
    let mut stack: Vec<&[SettingNode]> = vec![nodes];
    // Depth-first in document order without recursion: process the slice head, push the tail.
    while let Some(slice) = stack.pop() {
        let Some((first, rest)) = slice.split_first() else {
            continue;
        };
        stack.push(rest);
        match first {
            SettingNode::Setting(s) => out.push(s),
            SettingNode::Group(g) => stack.push(&g.items),
        }
    }
    out
}

/// A resource declaration (1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDecl {
    /// `@id`.
    pub id: String,
    /// `@class`: the unit (`item` seen).
    pub class: Option<String>,
    /// `@limiting-setting`: the setting holding the limit.
    pub limiting_setting: Option<String>,
    /// Names per language.
    pub names: Vec<LocalizedText>,
    /// Descriptions per language.
    pub descriptions: Vec<LocalizedText>,
}

/// Requirements of a service: all `items` must hold, and one alternative of every choice.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Requirements {
    /// Direct requirements.
    pub items: Vec<Requirement>,
    /// `choice` elements.
    pub choices: Vec<Choice>,
}

/// A `choice`: exactly one alternative is selected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Alternatives in document order.
    pub alternatives: Vec<Alternative>,
}

/// One `choice/requirements @id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    /// `@id` (`mysql`, `microsoft:sqlserver`).
    pub id: String,
    /// Requirements of the alternative.
    pub items: Vec<Requirement>,
}

/// One requirement element.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Requirement {
    /// PHP aspect.
    Php(PhpRequirement),
    /// Database aspect (`db:db`).
    Db(DbRequirement),
    /// Apache aspect.
    Apache(ApacheRequirement),
    /// Any other element (unsupported aspect, or unknown element of a known one).
    Other(ForeignElement),
}

/// A PHP requirement (REFERENCE §6.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PhpRequirement {
    /// `php:version @min? @max-not-including?`.
    Version {
        /// Lowest allowed version.
        min: Option<String>,
        /// First version no longer allowed.
        max_not_including: Option<String>,
    },
    /// `php:extension`: the extension must be loaded.
    Extension(String),
    /// `php:function`: the function must exist.
    Function(String),
    /// A boolean ini directive must have this value.
    Flag {
        /// Which directive.
        directive: PhpFlag,
        /// Required value.
        value: bool,
    },
    /// A byte-size ini directive must be at least this large.
    Size {
        /// Which directive.
        directive: PhpSizeDirective,
        /// Required minimum in bytes.
        bytes: u64,
    },
    /// `php:max-execution-time`: at least this many seconds (0 = unlimited).
    MaxExecutionTime(u64),
}

/// Boolean PHP ini directives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhpFlag {
    /// `short_open_tag`.
    ShortOpenTag,
    /// `file_uploads`.
    FileUploads,
    /// `allow_url_fopen`.
    AllowUrlFopen,
    /// `safe_mode` (removed from modern PHP: counts as false).
    SafeMode,
    /// `register_globals` (removed from modern PHP: counts as false).
    RegisterGlobals,
    /// `magic_quotes_gpc` (removed from modern PHP: counts as false).
    MagicQuotesGpc,
}

impl PhpFlag {
    /// The php.ini directive name.
    pub fn ini_name(self) -> &'static str {
        match self {
            PhpFlag::ShortOpenTag => "short_open_tag",
            PhpFlag::FileUploads => "file_uploads",
            PhpFlag::AllowUrlFopen => "allow_url_fopen",
            PhpFlag::SafeMode => "safe_mode",
            PhpFlag::RegisterGlobals => "register_globals",
            PhpFlag::MagicQuotesGpc => "magic_quotes_gpc",
        }
    }
}

/// Byte-size PHP ini directives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhpSizeDirective {
    /// `memory_limit`.
    MemoryLimit,
    /// `post_max_size` (also written `php:post_max_size`).
    PostMaxSize,
}

impl PhpSizeDirective {
    /// The php.ini directive name.
    pub fn ini_name(self) -> &'static str {
        match self {
            PhpSizeDirective::MemoryLimit => "memory_limit",
            PhpSizeDirective::PostMaxSize => "post_max_size",
        }
    }
}

/// A `db:db` requirement (REFERENCE §6.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbRequirement {
    /// `db:id`: names the variables `DB_<id>_*`, verbatim.
    pub id: String,
    /// `db:default-name`: base of generated names.
    pub default_name: Option<String>,
    /// `db:can-use-tables-prefix`.
    pub can_use_tables_prefix: bool,
    /// `db:server-type` (`mysql`, `postgresql`, `sqlite` supported).
    pub server_type: String,
    /// `db:server-min-version`.
    pub server_min_version: Option<String>,
}

/// An Apache requirement (REFERENCE §6.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApacheRequirement {
    /// `apache:required-module` (e.g. `mod_rewrite`).
    RequiredModule(String),
    /// `apache:htaccess`: `.htaccess` files must be honoured.
    Htaccess,
}

/// Provisioning methods of a service.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Provision {
    /// URL mapping.
    pub url_mapping: Option<UrlMapping>,
    /// `configuration-script` (1.0: `scripts/configure`).
    pub configuration_script: Option<ScriptDecl>,
    /// `verification-script` (1.2).
    pub verification_script: Option<ScriptDecl>,
    /// `resource-script` (1.2).
    pub resource_script: Option<ScriptDecl>,
    /// `backup-script` (1.2).
    pub backup_script: Option<ScriptDecl>,
    /// Aspect-defined provision elements (e.g. `l:license-script`).
    pub other: Vec<ForeignElement>,
}

impl Provision {
    /// Every declared script, in a fixed order (configuration, verification, resource, backup).
    pub fn scripts(&self) -> Vec<&ScriptDecl> {
        [
            &self.configuration_script,
            &self.verification_script,
            &self.resource_script,
            &self.backup_script,
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// A script declaration (REFERENCE §3.9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptDecl {
    /// `@name`: file name inside `scripts/`.
    pub name: String,
    /// `script-language` (`php`, `perl`, …).
    pub language: String,
    /// `status-control`: supports `enable`/`disable`.
    pub status_control: bool,
    /// `structured-output`: prints configure-output XML.
    pub structured_output: bool,
    /// `sufficient` (backup script).
    pub sufficient: bool,
    /// `@poll-interval` (resource script), as written (`30m`, `3h`).
    pub poll_interval: Option<String>,
}

/// `url-mapping`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UrlMapping {
    /// `default-prefix` with leading and trailing `/` stripped, case kept (`Some("")` for `/`).
    pub default_prefix: Option<String>,
    /// `installed-size` in bytes.
    pub installed_size: Option<u64>,
    /// The root mapping (`url="/"`).
    pub root: Mapping,
}

/// A node of the mapping tree (REFERENCE §3.8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mapping {
    /// `@url`: `/` for the root, otherwise relative to the parent (may contain `/`), as written.
    pub url: String,
    /// `@path`: package directory, relative to the parent's package directory.
    pub path: Option<String>,
    /// `virtual="virtual"`: nothing is deployed and no `WEB_` variable is exported.
    pub is_virtual: bool,
    /// `php:handler`.
    pub php_handler: Option<PhpHandler>,
    /// `php:permissions`.
    pub php_permissions: Option<PhpPermissions>,
    /// `cgi:handler`.
    pub cgi_handler: Option<CgiHandler>,
    /// Other aspect elements (e.g. `aspnet:handler`).
    pub other_aspects: Vec<ForeignElement>,
    /// Child mappings.
    pub children: Vec<Mapping>,
}

/// `php:handler`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PhpHandler {
    /// Files with these extensions run through PHP.
    Extensions(Vec<String>),
    /// `php:disabled`: PHP is off below this mapping.
    Disabled,
}

/// `php:permissions`; `None` fields are inherited from the parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhpPermissions {
    /// `@writable`.
    pub writable: Option<bool>,
    /// `@readable`.
    pub readable: Option<bool>,
}

/// `cgi:handler`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CgiHandler {
    /// `cgi:disabled`.
    Disabled,
    /// `cgi:extension*`.
    Extensions(Vec<CgiExtension>),
    /// `cgi:all-files`.
    AllFiles {
        /// `@h:handler-type`.
        handler_type: Option<CgiHandlerType>,
    },
}

/// A `cgi:extension`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgiExtension {
    /// The file extension.
    pub extension: String,
    /// `@h:handler-type`.
    pub handler_type: Option<CgiHandlerType>,
}

/// `h:handler-type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgiHandlerType {
    /// `executable`.
    Executable,
    /// `perl`.
    Perl,
    /// `php`.
    Php,
    /// `python`.
    Python,
    /// `ssi`.
    Ssi,
}

/// The D4 `WEB_` variable name of a mapping, plus its sanitised alias when needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebVariable {
    /// `"WEB_" + path with '/' → '_' + "_DIR"`, other characters kept.
    pub name: String,
    /// `name` with every character outside `[A-Za-z0-9_]` replaced by `_`, when that differs.
    pub alias: Option<String>,
}

impl WebVariable {
    /// The name and the alias, if any.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.alias.as_deref())
    }
}

/// D4: the `WEB_` variable name(s) for a mapping at `url_path` (a full URL path such as `/`,
/// `/tmp`, `/wp-content`, as returned in [`MappingEntry::url_path`]).
pub fn web_variable(url_path: &str) -> WebVariable {
    let name = format!("WEB_{}_DIR", url_path.replace('/', "_"));
    let sanitized: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let alias = (sanitized != name).then_some(sanitized);
    WebVariable { name, alias }
}

/// A mapping with the values computed from its position in the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingEntry<'a> {
    /// The mapping itself.
    pub mapping: &'a Mapping,
    /// Full URL path from the service root: `/`, `/tmp`, `/blogs/media`.
    pub url_path: String,
    /// Package directory whose content is deployed there: the root's `path`; a child's `path`
    /// joined to its parent's directory, else the parent's directory joined with its `url`.
    /// `None` for virtual mappings and below a root without `path`.
    pub package_dir: Option<String>,
    /// The D4 variable names; `None` for virtual mappings.
    pub web_variable: Option<WebVariable>,
}

impl UrlMapping {
    /// Every mapping depth first from the root, with its full URL path and `WEB_` names.
    pub fn entries(&self) -> Vec<MappingEntry<'_>> {
        let mut out = Vec::new();
        let root_dir = self.root.path.as_deref().map(trim_slashes);
        push_entries(&self.root, "", root_dir, &mut out);
        out
    }
}

/// Pushes `mapping` (at `url_path`, empty for the root) and its descendants.
fn push_entries<'a>(
    mapping: &'a Mapping,
    url_path: &str,
    package_dir: Option<&str>,
    out: &mut Vec<MappingEntry<'a>>,
) {
    let shown_path = if url_path.is_empty() { "/" } else { url_path };
    out.push(MappingEntry {
        mapping,
        url_path: shown_path.to_owned(),
        package_dir: package_dir
            .filter(|_| !mapping.is_virtual)
            .map(str::to_owned),
        web_variable: (!mapping.is_virtual).then(|| web_variable(shown_path)),
    });
    for child in &mapping.children {
        let url = trim_slashes(&child.url);
        let child_url_path = format!("{url_path}/{url}");
        let relative = child.path.as_deref().map_or(url, trim_slashes);
        let child_dir = package_dir.map(|dir| join_path(dir, relative));
        push_entries(child, &child_url_path, child_dir.as_deref(), out);
    }
}

fn trim_slashes(s: &str) -> &str {
    s.trim_matches('/')
}

fn join_path(dir: &str, relative: &str) -> String {
    match (dir.is_empty(), relative.is_empty()) {
        (true, _) => relative.to_owned(),
        (_, true) => dir.to_owned(),
        _ => format!("{dir}/{relative}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(url: &str, children: Vec<Mapping>) -> Mapping {
        Mapping {
            url: url.to_owned(),
            path: None,
            is_virtual: false,
            php_handler: None,
            php_permissions: None,
            cgi_handler: None,
            other_aspects: Vec::new(),
            children,
        }
    }

    #[test]
    fn d4_names_from_reference_examples() {
        let w = web_variable("/");
        assert_eq!((w.name.as_str(), w.alias), ("WEB___DIR", None));
        assert_eq!(web_variable("/tmp").name, "WEB__tmp_DIR");
        assert_eq!(web_variable("/blogs/media").name, "WEB__blogs_media_DIR");
        assert_eq!(web_variable("/image/cache").name, "WEB__image_cache_DIR");
        let wp = web_variable("/wp-content");
        assert_eq!(wp.name, "WEB__wp-content_DIR");
        assert_eq!(wp.alias.as_deref(), Some("WEB__wp_content_DIR"));
        assert_eq!(
            wp.names().collect::<Vec<_>>(),
            ["WEB__wp-content_DIR", "WEB__wp_content_DIR"]
        );
        let composr = web_variable("/data_custom/errorlog.php");
        assert_eq!(composr.name, "WEB__data_custom_errorlog.php_DIR");
        assert_eq!(
            composr.alias.as_deref(),
            Some("WEB__data_custom_errorlog_php_DIR")
        );
        // Non-ASCII characters are replaced one for one in the alias.
        let umlaut = web_variable("/ä");
        assert_eq!(umlaut.name, "WEB__ä_DIR");
        assert_eq!(umlaut.alias.as_deref(), Some("WEB____DIR"));
    }

    #[test]
    fn entries_compute_url_paths_dirs_and_variables() {
        let mut root = mapping(
            "/",
            vec![
                mapping("wp-content", vec![]),
                mapping("image", vec![mapping("cache", vec![])]),
                Mapping {
                    is_virtual: true,
                    ..mapping("config.php", vec![])
                },
                Mapping {
                    path: Some("other".into()),
                    ..mapping("alias/", vec![])
                },
            ],
        );
        root.path = Some("htdocs".into());
        let um = UrlMapping {
            default_prefix: Some("wordpress".into()),
            installed_size: None,
            root,
        };
        let got: Vec<_> = um
            .entries()
            .into_iter()
            .map(|e| (e.url_path, e.package_dir, e.web_variable.map(|w| w.name)))
            .collect();
        let s = |x: &str| Some(x.to_owned());
        assert_eq!(
            got,
            vec![
                ("/".into(), s("htdocs"), s("WEB___DIR")),
                (
                    "/wp-content".into(),
                    s("htdocs/wp-content"),
                    s("WEB__wp-content_DIR")
                ),
                ("/image".into(), s("htdocs/image"), s("WEB__image_DIR")),
                (
                    "/image/cache".into(),
                    s("htdocs/image/cache"),
                    s("WEB__image_cache_DIR")
                ),
                ("/config.php".into(), None, None),
                ("/alias".into(), s("htdocs/other"), s("WEB__alias_DIR")),
            ]
        );
    }

    #[test]
    fn identity_prefers_id_then_name_and_packager() {
        let mut pkg = Package {
            format: ApsFormat::V1_2,
            packaged: None,
            id: Some("http://wordpress.org/".into()),
            name: "WordPress".into(),
            version: "5.2.3".into(),
            release: "282".into(),
            homepage: None,
            vendor: None,
            packager: Some(Party {
                uri: Some("uuid:714f".into()),
                ..Party::default()
            }),
            presentation: Presentation::default(),
            global_settings: Vec::new(),
            patch: None,
            upgrade: None,
            upgradable_from: Vec::new(),
            master_package: None,
            content: None,
            services: Vec::new(),
        };
        assert_eq!(pkg.identity(), Identity::Id("http://wordpress.org/".into()));
        pkg.id = None;
        assert_eq!(
            pkg.identity(),
            Identity::NameAndPackager {
                name: "WordPress".into(),
                packager_uri: Some("uuid:714f".into())
            }
        );
        assert!(pkg.root_service().is_none());
    }

    #[test]
    fn flatten_keeps_document_order_through_groups() {
        let s = |id: &str| {
            SettingNode::Setting(Setting {
                id: id.into(),
                kind: SettingType::Hidden,
                default_value: None,
                installation_only: false,
                global: false,
                class: None,
                value_of_setting: None,
                uniq: None,
                visibility_hidden: false,
                protected: false,
                optional: false,
                track_old_value: false,
                names: vec![],
                descriptions: vec![],
                error_messages: vec![],
            })
        };
        let g = |items| {
            SettingNode::Group(Group {
                class: None,
                names: vec![],
                items,
            })
        };
        let nodes = vec![s("a"), g(vec![s("b"), g(vec![s("c")]), s("d")]), s("e")];
        let ids: Vec<_> = flatten_settings(&nodes)
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b", "c", "d", "e"]);
    }
}
