//! The web UI at `/`: server-rendered HTML (minijinja templates and one stylesheet and script,
//! all embedded in the binary) over the same job starters and reads as the API.
//!
//! Main decisions:
//! - **Login with the API token.** A right token opens a session: a random id in the
//!   `apsctl_session` cookie (`HttpOnly`, `SameSite=Strict`, `Path=/`), kept in this service's
//!   memory for [`SESSION_HOURS`] hours. Each session has its own CSRF token, a hidden field of
//!   every form, checked on every POST (the login form has one too, bound to a cookie of its
//!   own). A restarted service forgets its sessions: users log in again.
//! - **Every form works without JavaScript.** Forms post `application/x-www-form-urlencoded`
//!   (the upload `multipart/form-data`) and answer `303 See Other` to the operation they
//!   started. The operation page refreshes itself (`<noscript>` refresh) or, with the script,
//!   follows the job's JSON live.
//! - **The install form is generated from the metadata** (`form.rs`) and checked by a dry run
//!   of the install before the job starts: the refused settings come back next to their fields,
//!   the other refusals (place, licence) at the top, with the entered values kept (never a
//!   password).
//! - The pages send `Content-Security-Policy: default-src 'self'` (no inline script, no frame),
//!   `X-Content-Type-Options: nosniff` and `Referrer-Policy: same-origin`; every value shown is
//!   HTML-escaped by the templates; a link taken from metadata is shown only when it is
//!   `http(s)://`.
//!
//! Known gaps: sessions live in memory (a restarted service logs everybody out); the upgrade form
//! sends no values for settings a new version adds (the API takes them); the
//! removal dialog has no `--force` (the CLI and the API have it).
mod form;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Serialize;
use serde_json::{Value, json};

use super::start;
use super::{App, with_context};

/// How long a session lasts.
pub(crate) const SESSION_HOURS: u64 = 12;

const SESSION_COOKIE: &str = "apsctl_session";
const LOGIN_COOKIE: &str = "apsctl_login";

/// The sessions of this service: id → CSRF token and start.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    table: Mutex<HashMap<String, (String, Instant)>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new session; returns its id and CSRF token.
    fn open(&self) -> (String, String) {
        let (id, csrf) = (super::random_hex(32), super::random_hex(32));
        let mut table = self.lock();
        let max = Duration::from_secs(SESSION_HOURS * 3600);
        table.retain(|_, (_, started)| started.elapsed() < max);
        table.insert(id.clone(), (csrf.clone(), Instant::now()));
        (id, csrf)
    }

    /// The CSRF token of live session `id`.
    fn csrf(&self, id: &str) -> Option<String> {
        let table = self.lock();
        let (csrf, started) = table.get(id)?;
        (started.elapsed() < Duration::from_secs(SESSION_HOURS * 3600)).then(|| csrf.clone())
    }

    fn close(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// The UI's routes.
pub(crate) fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(instances))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/static/ui.css", get(css))
        .route("/ui/static/ui.js", get(js))
        .route(
            "/ui/packages",
            get(packages)
                .post(upload)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/ui/packages/{reference}/install",
            get(install_form).post(install),
        )
        .route(
            "/ui/packages/{reference}/settings",
            get(globals_form).post(globals),
        )
        .route("/ui/instances/{id}", get(instance))
        .route(
            "/ui/instances/{id}/configure",
            get(configure_form).post(configure),
        )
        .route("/ui/instances/{id}/remove", get(remove_form).post(remove))
        .route("/ui/instances/{id}/{action}", post(action))
        .route("/ui/operations", get(operations))
        .route("/ui/operations/{opid}", get(operation))
        .route("/ui/operations/{opid}/json", get(operation_json))
        .route("/ui/operations/{opid}/events", get(operation_events))
        .layer(axum::middleware::map_response(security_headers))
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // Pages hold CSRF tokens and tenants' data: never kept by a cache.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The templates, compiled once.
fn templates() -> &'static minijinja::Environment<'static> {
    static ENV: std::sync::OnceLock<minijinja::Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        for (name, text) in [
            ("base.html", include_str!("templates/base.html")),
            ("fields.html", include_str!("templates/fields.html")),
            ("login.html", include_str!("templates/login.html")),
            ("instances.html", include_str!("templates/instances.html")),
            ("packages.html", include_str!("templates/packages.html")),
            ("install.html", include_str!("templates/install.html")),
            ("instance.html", include_str!("templates/instance.html")),
            ("configure.html", include_str!("templates/configure.html")),
            ("globals.html", include_str!("templates/globals.html")),
            ("remove.html", include_str!("templates/remove.html")),
            ("operation.html", include_str!("templates/operation.html")),
            ("operations.html", include_str!("templates/operations.html")),
        ] {
            env.add_template(name, text)
                .unwrap_or_else(|e| panic!("template {name}: {e}"));
        }
        env
    })
}

/// A page: `template` with `context` (plus the user's CSRF token and language), at `status`.
fn page(status: StatusCode, template: &str, user: Option<&User>, mut context: Value) -> Response {
    if let Some(user) = user {
        context["csrf"] = json!(user.csrf);
        context["lang"] = json!(user.lang);
    } else if context.get("lang").is_none() {
        context["lang"] = json!("en");
    }
    let rendered = templates()
        .get_template(template)
        .and_then(|t| t.render(minijinja::Value::from_serialize(&context)));
    match rendered {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(template, error = %e, "cannot render a page");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot render the page").into_response()
        }
    }
}

/// A page telling what went wrong, at the status of the error.
fn error_page(user: &User, title: &str, e: &aps_ops::Error) -> Response {
    let status = super::api::status_of(e);
    page(
        status,
        "operations.html",
        Some(user),
        json!({"title": title, "flash": aps_ops::error::chain(e), "operations": []}),
    )
}

/// A logged-in user of the UI.
pub(crate) struct User {
    session: String,
    csrf: String,
    lang: String,
}

impl FromRequestParts<Arc<App>> for User {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Response> {
        let session = cookie(&parts.headers, SESSION_COOKIE);
        match session.as_deref().and_then(|id| app.sessions.csrf(id)) {
            Some(csrf) => Ok(Self {
                session: session.unwrap_or_default(),
                csrf,
                lang: language(&parts.headers),
            }),
            None => Err(Redirect::to("/ui/login").into_response()),
        }
    }
}

impl User {
    /// The `403` answer unless the form's `csrf` field is this session's token.
    fn refuse(&self, pairs: &[(String, String)]) -> Option<Response> {
        let given = last(pairs, "csrf").unwrap_or_default();
        (!super::constant_time_eq(given.as_bytes(), self.csrf.as_bytes())).then(|| {
            (
                StatusCode::FORBIDDEN,
                "the form's CSRF token is missing or wrong: reload the page and send it again",
            )
                .into_response()
        })
    }
}

/// The value of cookie `name`.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The reader's first language (`Accept-Language`), default `en`.
fn language(headers: &HeaderMap) -> String {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|tag| tag.split(';').next().unwrap_or("").trim())
        .filter(|tag| !tag.is_empty() && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or("en")
        .to_owned()
}

/// The last value of form field `name`.
fn last<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A cookie for the UI: `HttpOnly; SameSite=Strict; Path=/`.
fn set_cookie(name: &str, value: &str, max_age: u64) -> (header::HeaderName, String) {
    (
        header::SET_COOKIE,
        format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}"),
    )
}

/// Where a started job's page is, or the page of why it did not start.
fn started(user: &User, title: &str, job: start::Started) -> Response {
    match job {
        Ok(id) => Redirect::to(&format!("/ui/operations/{id}")).into_response(),
        Err(e) => error_page(user, title, &e),
    }
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("static/ui.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("static/ui.js"),
    )
        .into_response()
}

async fn login_form() -> Response {
    let nonce = super::random_hex(16);
    let mut response = page(
        StatusCode::OK,
        "login.html",
        None,
        json!({"title": "Log in", "login_csrf": nonce}),
    );
    let (name, value) = set_cookie(LOGIN_COOKIE, &nonce, 3600);
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().append(name, value);
    }
    response
}

async fn login(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let nonce = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    let given = last(&pairs, "csrf").unwrap_or_default();
    if nonce.is_empty() || !super::constant_time_eq(given.as_bytes(), nonce.as_bytes()) {
        return (
            StatusCode::FORBIDDEN,
            "the login form's CSRF token is missing or wrong: reload the login page",
        )
            .into_response();
    }
    let token = last(&pairs, "token").unwrap_or_default();
    if !super::constant_time_eq(token.trim().as_bytes(), app.token.as_bytes()) {
        tracing::warn!("a UI login with a wrong token");
        let mut response = page(
            StatusCode::UNAUTHORIZED,
            "login.html",
            None,
            json!({"title": "Log in", "login_csrf": nonce, "flash": "This is not the service's token."}),
        );
        response.headers_mut().remove(header::SET_COOKIE);
        return response;
    }
    let (session, _) = app.sessions.open();
    let (name, value) = set_cookie(SESSION_COOKIE, &session, SESSION_HOURS * 3600);
    ([(name, value)], Redirect::to("/")).into_response()
}

async fn logout(
    State(app): State<Arc<App>>,
    user: User,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(refused) = user.refuse(&pairs) {
        return refused;
    }
    app.sessions.close(&user.session);
    let (name, value) = set_cookie(SESSION_COOKIE, "", 0);
    ([(name, value)], Redirect::to("/ui/login")).into_response()
}

/// An entry point of an instance: its label and URL.
#[derive(Debug, Serialize)]
struct EntryLink {
    label: String,
    url: String,
}

/// Whether `url` is an `http(s)://` address (what a page may link to from package metadata).
fn is_web_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// The entry points of the root service of `meta` under instance URL `url`.
fn entry_points(meta: &aps_meta::model::Package, url: &str, lang: &str) -> Vec<EntryLink> {
    let Some(service) = meta.root_service() else {
        return Vec::new();
    };
    service
        .presentation
        .entry_points
        .iter()
        .map(|e| EntryLink {
            label: form::localized(&e.labels, lang).unwrap_or_else(|| e.dst.clone()),
            url: format!(
                "{}/{}",
                url.trim_end_matches('/'),
                e.dst.trim_start_matches('/')
            ),
        })
        .collect()
}

async fn instances(State(app): State<Arc<App>>, user: User) -> Response {
    let lang = user.lang.clone();
    let listed = with_context(&app, move |ctx| {
        let mut metas: BTreeMap<String, Option<aps_meta::model::Package>> = BTreeMap::new();
        let mut rows = Vec::new();
        for view in aps_ops::instance::list(ctx)? {
            let meta = metas
                .entry(view.package.reference.clone())
                .or_insert_with(|| {
                    aps_ops::package::load(ctx, &view.package.reference)
                        .ok()
                        .map(|p| p.meta)
                });
            let links = meta
                .as_ref()
                .map(|m| entry_points(m, &view.url, &lang))
                .unwrap_or_default();
            let mut row = start::value(&view)?;
            row["entry_points"] = start::value(&links)?;
            rows.push(row);
        }
        Ok(rows)
    })
    .await;
    match listed {
        Ok(rows) => page(
            StatusCode::OK,
            "instances.html",
            Some(&user),
            json!({"title": "Instances", "instances": rows}),
        ),
        Err(e) => error_page(&user, "Instances", &e),
    }
}

async fn packages(State(app): State<Arc<App>>, user: User) -> Response {
    packages_page(&app, &user, StatusCode::OK, None).await
}

async fn packages_page(
    app: &Arc<App>,
    user: &User,
    status: StatusCode,
    flash: Option<String>,
) -> Response {
    match with_context(app, |ctx| start::value(&aps_ops::package::list(ctx)?)).await {
        Ok(list) => page(
            status,
            "packages.html",
            Some(user),
            json!({"title": "Packages", "packages": list, "flash": flash}),
        ),
        Err(e) => error_page(user, "Packages", &e),
    }
}

async fn upload(State(app): State<Arc<App>>, user: User, mut multipart: Multipart) -> Response {
    // The form puts `csrf` before the file: the token is checked before a byte is written.
    let mut csrf_ok = false;
    let mut upload = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                let flash = format!("the upload did not arrive whole: {e}");
                return packages_page(&app, &user, StatusCode::BAD_REQUEST, Some(flash)).await;
            }
        };
        match field.name() {
            Some("csrf") => {
                let given = field.text().await.unwrap_or_default();
                if let Some(refused) = user.refuse(&[("csrf".to_owned(), given)]) {
                    return refused;
                }
                csrf_ok = true;
            }
            Some("package") if csrf_ok => match receive(&app, field).await {
                Ok(received) => upload = Some(received),
                Err(e) => {
                    let flash = format!("the package was refused: {}", aps_ops::error::chain(&e));
                    return packages_page(&app, &user, StatusCode::BAD_REQUEST, Some(flash)).await;
                }
            },
            _ => {}
        }
    }
    if !csrf_ok {
        return user
            .refuse(&[])
            .unwrap_or_else(|| StatusCode::FORBIDDEN.into_response());
    }
    let Some(upload) = upload else {
        let flash = "choose a package file (`.app.zip`) to upload".to_owned();
        return packages_page(&app, &user, StatusCode::BAD_REQUEST, Some(flash)).await;
    };
    match with_context(&app, move |ctx| upload.import(ctx)).await {
        Ok(imported) => Redirect::to(&format!(
            "/ui/packages/{}/install",
            imported.summary.package
        ))
        .into_response(),
        Err(e) => {
            let flash = format!("the package was refused: {}", aps_ops::error::chain(&e));
            packages_page(&app, &user, StatusCode::BAD_REQUEST, Some(flash)).await
        }
    }
}

/// Streams the file field of the upload form into an [`aps_ops::package::Upload`].
async fn receive(
    app: &Arc<App>,
    mut field: axum::extract::multipart::Field<'_>,
) -> Result<aps_ops::package::Upload, aps_ops::Error> {
    let mut upload = aps_ops::package::Upload::begin(&app.ctx)?;
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => tokio::task::block_in_place(|| upload.write(&chunk))?,
            Ok(None) => return Ok(upload),
            Err(e) => {
                return Err(aps_ops::Error::Invalid(format!(
                    "the upload did not arrive whole: {e}"
                )));
            }
        }
    }
}

/// What the install page shows besides the submitted values.
struct InstallPage {
    package: aps_ops::package::PackageDetails,
    sites: Value,
    servers: Value,
}

async fn install_page_data(
    app: &Arc<App>,
    reference: String,
) -> Result<InstallPage, aps_ops::Error> {
    with_context(app, move |ctx| {
        Ok(InstallPage {
            package: aps_ops::package::show(ctx, &reference)?,
            sites: start::value(&aps_ops::site::list(ctx)?)?,
            servers: start::value(&aps_ops::server::list(ctx)?)?,
        })
    })
    .await
}

/// The install form's submitted place and choices.
#[derive(Debug, Default)]
struct Where {
    site: String,
    path: String,
    db_server: String,
}

fn install_page(
    user: &User,
    status: StatusCode,
    data: &InstallPage,
    chosen: &Where,
    values: &BTreeMap<String, String>,
    errors: &BTreeMap<String, String>,
    flash: Option<&str>,
) -> Response {
    let meta = &data.package.package.meta;
    let service = meta.root_service();
    let nodes = service.map(|s| s.settings.as_slice()).unwrap_or_default();
    let sections = form::build(nodes, form::Purpose::Install, &user.lang, values, errors);
    let license = service.and_then(|s| s.license.as_ref()).map(|l| {
        json!({
            "name": l.text_name,
            // Only a web address becomes a link (never `javascript:` or `data:`).
            "url": l.text_url.as_deref().filter(|u| is_web_url(u)),
            "must_accept": l.must_accept,
            "text": service.and_then(|s| data.package.license_texts.get(&s.id)),
        })
    });
    let summary = form::localized(&meta.presentation.summaries, &user.lang).unwrap_or_default();
    let name = &data.package.package.summary;
    page(
        status,
        "install.html",
        Some(user),
        json!({
            "title": format!("Install {} {}-{}", name.name, name.version, name.release),
            "package": name.package,
            "summary": summary,
            "sites": data.sites,
            "servers": data.servers,
            "site": chosen.site,
            "path": chosen.path,
            "db_server": chosen.db_server,
            "default_prefix": service.and_then(|s| s.provision.url_mapping.as_ref()).and_then(|m| m.default_prefix.clone()).unwrap_or_default(),
            "sections": sections,
            "license": license,
            "license_error": errors.get(LICENSE_ERROR),
            "where_error": errors.get(WHERE_ERROR),
            "flash": flash,
        }),
    )
}

/// The error keys of the install page's non-setting refusals.
const LICENSE_ERROR: &str = " license";
const WHERE_ERROR: &str = " where";

async fn install_form(
    State(app): State<Arc<App>>,
    user: User,
    Path(reference): Path<String>,
) -> Response {
    match install_page_data(&app, reference).await {
        Ok(data) => install_page(
            &user,
            StatusCode::OK,
            &data,
            &Where::default(),
            &BTreeMap::new(),
            &BTreeMap::new(),
            None,
        ),
        Err(e) => error_page(&user, "Install", &e),
    }
}

async fn install(
    State(app): State<Arc<App>>,
    user: User,
    Path(reference): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(refused) = user.refuse(&pairs) {
        return refused;
    }
    let data = match install_page_data(&app, reference.clone()).await {
        Ok(data) => data,
        Err(e) => return error_page(&user, "Install", &e),
    };
    let nodes = data
        .package
        .package
        .meta
        .root_service()
        .map(|s| s.settings.clone())
        .unwrap_or_default();
    let settings = form::changes(&nodes, form::Purpose::Install, &BTreeMap::new(), &pairs);
    let chosen = Where {
        site: last(&pairs, "site").unwrap_or_default().to_owned(),
        path: last(&pairs, "path").unwrap_or_default().trim().to_owned(),
        db_server: last(&pairs, "db_server").unwrap_or_default().to_owned(),
    };
    let opts = aps_ops::install::InstallOptions {
        package: reference.clone(),
        site: chosen.site.clone(),
        path: (!chosen.path.is_empty()).then(|| chosen.path.clone()),
        settings: settings.clone(),
        license: aps_ops::install::License::accepted_if(
            last(&pairs, "accept_license") == Some("true"),
        ),
        db_server: (!chosen.db_server.is_empty()).then(|| chosen.db_server.clone()),
        table_prefixes: BTreeMap::new(),
        shared_databases: BTreeMap::new(),
        mode: aps_ops::install::RunMode::Apply,
    };
    // `start::install` makes every check of the install first: its refusals go back to the form.
    match start::install(&app, opts).await {
        Ok(id) => Redirect::to(&format!("/ui/operations/{id}")).into_response(),
        Err(e) => {
            let mut errors: BTreeMap<String, String> =
                e.refused_settings().iter().cloned().collect();
            let message = aps_ops::error::chain(&e);
            if errors.is_empty() {
                let key = if message.to_ascii_lowercase().contains("licen") {
                    LICENSE_ERROR
                } else {
                    WHERE_ERROR
                };
                errors.insert(key.to_owned(), message.clone());
            }
            install_page(
                &user,
                super::api::status_of(&e),
                &data,
                &chosen,
                &settings,
                &errors,
                Some(&format!("The install was refused: {message}")),
            )
        }
    }
}

/// An instance with what its page needs.
async fn instance_data(app: &Arc<App>, id: String, lang: String) -> Result<Value, aps_ops::Error> {
    with_context(app, move |ctx| {
        let details = aps_ops::instance::show(ctx, &id)?;
        let links = aps_ops::package::load(ctx, &details.view.package.reference)
            .map(|p| entry_points(&p.meta, &details.view.url, &lang))
            .unwrap_or_default();
        let updates = aps_ops::updates::updates(ctx, &id).unwrap_or_default();
        Ok(json!({
            "i": start::value(&details)?,
            "entry_points": start::value(&links)?,
            "updates": start::value(&updates)?,
            "sites": start::value(&aps_ops::site::list(ctx)?)?,
            "history": start::value(&aps_ops::instance::history(ctx, &id, 50)?)?,
            "backup_dir": ctx.home.root().join("backups").join(&id),
        }))
    })
    .await
}

async fn instance(State(app): State<Arc<App>>, user: User, Path(id): Path<String>) -> Response {
    match instance_data(&app, id.clone(), user.lang.clone()).await {
        Ok(mut data) => {
            data["title"] = json!(format!("Instance {id}"));
            page(StatusCode::OK, "instance.html", Some(&user), data)
        }
        Err(e) => error_page(&user, "Instance", &e),
    }
}

/// The settings (metadata) of instance `id`'s package and its current values.
async fn configure_data(
    app: &Arc<App>,
    id: String,
) -> Result<(Vec<aps_meta::model::SettingNode>, BTreeMap<String, String>), aps_ops::Error> {
    with_context(app, move |ctx| {
        let details = aps_ops::instance::show(ctx, &id)?;
        let meta = aps_ops::package::load(ctx, &details.view.package.reference)?.meta;
        let nodes = meta
            .root_service()
            .map(|s| s.settings.clone())
            .unwrap_or_default();
        Ok((nodes, details.settings))
    })
    .await
}

/// The reconfigure page with `values` and `errors`.
fn configure_page(
    user: &User,
    status: StatusCode,
    id: &str,
    sections: &[form::Section],
    flash: Option<&str>,
) -> Response {
    page(
        status,
        "configure.html",
        Some(user),
        json!({"title": format!("Reconfigure {id}"), "instance": id, "sections": sections, "flash": flash}),
    )
}

async fn configure_form(
    State(app): State<Arc<App>>,
    user: User,
    Path(id): Path<String>,
) -> Response {
    match configure_data(&app, id.clone()).await {
        Ok((nodes, current)) => {
            let none = BTreeMap::new();
            let sections = form::build(
                &nodes,
                form::Purpose::Configure,
                &user.lang,
                &current,
                &none,
            );
            configure_page(&user, StatusCode::OK, &id, &sections, None)
        }
        Err(e) => error_page(&user, "Reconfigure", &e),
    }
}

async fn configure(
    State(app): State<Arc<App>>,
    user: User,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(refused) = user.refuse(&pairs) {
        return refused;
    }
    let (nodes, current) = match configure_data(&app, id.clone()).await {
        Ok(found) => found,
        Err(e) => return error_page(&user, "Reconfigure", &e),
    };
    let changed = form::changes(&nodes, form::Purpose::Configure, &current, &pairs);
    if changed.is_empty() {
        return Redirect::to(&format!("/ui/instances/{id}")).into_response();
    }
    // `start::configure` checks the values first: refusals go back next to their fields.
    match start::configure(&app, id.clone(), changed.clone()).await {
        Ok(job) => Redirect::to(&format!("/ui/operations/{job}")).into_response(),
        Err(e) => {
            let errors: BTreeMap<String, String> = e.refused_settings().iter().cloned().collect();
            let mut values = current;
            values.extend(changed);
            let sections = form::build(
                &nodes,
                form::Purpose::Configure,
                &user.lang,
                &values,
                &errors,
            );
            let flash = format!("The new values were refused: {}", aps_ops::error::chain(&e));
            configure_page(
                &user,
                super::api::status_of(&e),
                &id,
                &sections,
                Some(&flash),
            )
        }
    }
}

/// A package's global settings (metadata) and their values now (saved, else defaults).
async fn globals_data(
    app: &Arc<App>,
    reference: String,
) -> Result<(Vec<aps_meta::model::SettingNode>, BTreeMap<String, String>), aps_ops::Error> {
    with_context(app, move |ctx| {
        let nodes = aps_ops::package::load(ctx, &reference)?
            .meta
            .global_settings;
        let opts = aps_ops::global::GlobalOptions {
            package: reference,
            settings: BTreeMap::new(),
        };
        let shown = aps_ops::global::settings(ctx, &opts, &aps_ops::report::Silent)?;
        Ok((nodes, shown.settings))
    })
    .await
}

async fn globals_form(
    State(app): State<Arc<App>>,
    user: User,
    Path(reference): Path<String>,
) -> Response {
    match globals_data(&app, reference.clone()).await {
        Ok((nodes, values)) => {
            let none = BTreeMap::new();
            let sections = form::build(&nodes, form::Purpose::Global, &user.lang, &values, &none);
            page(
                StatusCode::OK,
                "globals.html",
                Some(&user),
                json!({"title": format!("Global settings of {reference}"), "package": reference, "sections": sections}),
            )
        }
        Err(e) => error_page(&user, "Global settings", &e),
    }
}

async fn globals(
    State(app): State<Arc<App>>,
    user: User,
    Path(reference): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(refused) = user.refuse(&pairs) {
        return refused;
    }
    let (nodes, values) = match globals_data(&app, reference.clone()).await {
        Ok(found) => found,
        Err(e) => return error_page(&user, "Global settings", &e),
    };
    let changed = form::changes(&nodes, form::Purpose::Global, &values, &pairs);
    if changed.is_empty() {
        return Redirect::to("/ui/packages").into_response();
    }
    let opts = aps_ops::global::GlobalOptions {
        package: reference,
        settings: changed,
    };
    started(
        &user,
        "Global settings",
        start::package_settings(&app, opts).await,
    )
}

async fn remove_form(State(app): State<Arc<App>>, user: User, Path(id): Path<String>) -> Response {
    let trees = {
        let id = id.clone();
        with_context(&app, move |ctx| aps_ops::remove::file_trees(ctx, &id)).await
    };
    match trees {
        Ok(trees) => page(
            StatusCode::OK,
            "remove.html",
            Some(&user),
            json!({"title": format!("Remove {id}"), "instance": id, "trees": trees}),
        ),
        Err(e) => error_page(&user, "Remove", &e),
    }
}

async fn remove(
    State(app): State<Arc<App>>,
    user: User,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(refused) = user.refuse(&pairs) {
        return refused;
    }
    // Seed 003 sub-step 3.2: the user's choice, never a default.
    let files = match last(&pairs, "files") {
        Some("all") => aps_ops::report::FileChoice::All,
        Some("app") => aps_ops::report::FileChoice::App,
        _ => {
            let e = aps_ops::Error::Invalid(
                "choose which files to remove: all of them, or only the application's".into(),
            );
            return error_page(&user, "Remove", &e);
        }
    };
    let opts = aps_ops::remove::RemoveOptions {
        instance: id,
        files: Some(files),
        databases: if last(&pairs, "keep_databases") == Some("true") {
            aps_ops::remove::Databases::Keep
        } else {
            aps_ops::remove::Databases::Drop
        },
        force: aps_ops::remove::Force::No,
    };
    started(&user, "Remove", start::remove(&app, opts).await)
}

/// The instance page's other forms: backup, restore, migrate, upgrade, enable, disable.
async fn action(
    State(app): State<Arc<App>>,
    user: User,
    Path((id, action)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(refused) = user.refuse(&pairs) {
        return refused;
    }
    let text = |name: &str| last(&pairs, name).unwrap_or_default().trim().to_owned();
    let job = match action.as_str() {
        "backup" => {
            let dir = text("to_dir");
            if !std::path::Path::new(&dir).is_absolute() {
                let e = aps_ops::Error::Invalid(format!(
                    "`{dir}`: give the backup folder as an absolute path"
                ));
                return error_page(&user, "Backup", &e);
            }
            let keep = text("keep").parse().ok();
            let to = aps_ops::backup::BackupTarget::Dir {
                dir: dir.into(),
                keep,
            };
            start::backup(&app, aps_ops::backup::BackupOptions { instance: id, to }).await
        }
        "restore" => {
            let opts = aps_ops::restore::RestoreOptions {
                from: text("from").into(),
                to: aps_ops::restore::RestoreTarget::Instance(id),
            };
            start::restore(&app, opts).await
        }
        "migrate" => {
            let path = text("path");
            let opts = aps_ops::restore::MigrateOptions {
                instance: id,
                site: text("site"),
                path: (!path.is_empty()).then_some(path),
                keep_source: false,
            };
            start::migrate(&app, opts).await
        }
        "upgrade" => {
            let opts = aps_ops::upgrade::UpgradeOptions {
                instance: id,
                to: text("to"),
                settings: BTreeMap::new(),
                license: aps_ops::install::License::accepted_if(text("accept_license") == "true"),
            };
            start::upgrade(&app, opts).await
        }
        "enable" => start::status(&app, id, true).await,
        "disable" => start::status(&app, id, false).await,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    started(&user, "Operation", job)
}

async fn operation(State(app): State<Arc<App>>, user: User, Path(opid): Path<String>) -> Response {
    let op = match super::jobs::find(&app, opid.clone()).await {
        Ok(op) => op,
        Err(e) => return error_page(&user, "Operation", &e),
    };
    // A succeeded install or restore links to the new instance's entry points.
    let links = match (&op.instance, op.state) {
        (Some(id), "succeeded") => {
            let (id, lang) = (id.clone(), user.lang.clone());
            with_context(&app, move |ctx| {
                let details = aps_ops::instance::show(ctx, &id)?;
                let meta = aps_ops::package::load(ctx, &details.view.package.reference)?.meta;
                Ok(entry_points(&meta, &details.view.url, &lang))
            })
            .await
            .unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let result = op
        .result
        .as_ref()
        .and_then(|r| serde_json::to_string_pretty(r).ok());
    page(
        StatusCode::OK,
        "operation.html",
        Some(&user),
        json!({"title": format!("Operation {opid}: {}", op.kind), "op": op, "links": links, "result": result}),
    )
}

async fn operation_json(
    State(app): State<Arc<App>>,
    _user: User,
    Path(opid): Path<String>,
) -> Response {
    match super::jobs::find(&app, opid).await {
        Ok(op) => axum::Json(op).into_response(),
        Err(e) => super::api::ApiError::from(e).into_response(),
    }
}

async fn operation_events(
    State(app): State<Arc<App>>,
    _user: User,
    Path(opid): Path<String>,
) -> Response {
    super::jobs::events(app, opid).await
}

async fn operations(State(app): State<Arc<App>>, user: User) -> Response {
    match with_context(&app, |ctx| aps_ops::jobs::list(ctx, None, 200)).await {
        Ok(list) => {
            let list: Vec<aps_ops::jobs::JobView> = list
                .into_iter()
                .map(|job| app.jobs.running(&job.operation).unwrap_or(job))
                .collect();
            page(
                StatusCode::OK,
                "operations.html",
                Some(&user),
                json!({"title": "Operations", "operations": list}),
            )
        }
        Err(e) => error_page(&user, "Operations", &e),
    }
}
