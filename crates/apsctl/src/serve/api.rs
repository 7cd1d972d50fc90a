//! The `/v1` endpoints, their error bodies and the `OpenAPI` document generated from them.
//!
//! Main decision: every handler is a few lines over `aps_ops`: reads run on the blocking pool and
//! answer the JSON the CLI's `--json` prints; changes become jobs (`jobs.rs`). Errors map the
//! operations' error kinds onto API.md's statuses, with every refused setting in `details`.
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::OpenApi as _;

use super::App;
use super::jobs;
use super::start::{self, value};

/// The `OpenAPI` document, generated from the handlers below.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "apsctl", description = "The APS controller's HTTP API (API.md)"),
    paths(
        list_packages,
        upload_package,
        show_package,
        package_settings,
        save_package_settings,
        list_sites,
        add_site,
        list_instances,
        show_instance,
        instance_updates,
        instance_files,
        instance_operations,
        install,
        configure,
        remove,
        enable,
        disable,
        upgrade,
        backup,
        restore,
        restore_new,
        migrate,
        operation,
        operation_events,
        list_operations
    ),
    components(schemas(InstallBody, SettingsBody, UpgradeBody, SiteBody, BackupBody, RestoreBody, RestoreNewBody, MigrateBody, ErrorBody, ErrorInner, ErrorDetail, Accepted)),
    modifiers(&Bearer)
)]
struct ApiDoc;

/// The bearer token security scheme, required by every `/v1` path.
struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        api.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// The `OpenAPI` document as JSON text.
pub(crate) fn openapi_text() -> anyhow::Result<String> {
    Ok(ApiDoc::openapi().to_pretty_json()?)
}

/// `GET /openapi.json` (no token needed).
pub(crate) async fn openapi() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(text) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The `/v1` router (the token layer is added by the caller). A package upload is streamed to
/// disk and limited there (`aps_ops::package::Upload`); every other body has axum's default
/// limit (2 MiB).
pub(crate) fn v1() -> axum::Router<Arc<App>> {
    axum::Router::new()
        .route(
            "/v1/packages",
            get(list_packages)
                .post(upload_package)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/v1/packages/{reference}", get(show_package))
        .route(
            "/v1/packages/{reference}/settings",
            get(package_settings).put(save_package_settings),
        )
        .route("/v1/sites", get(list_sites).post(add_site))
        .route("/v1/instances", get(list_instances).post(install))
        .route("/v1/instances/{id}", get(show_instance).delete(remove))
        .route("/v1/instances/{id}/updates", get(instance_updates))
        .route("/v1/instances/{id}/files", get(instance_files))
        .route("/v1/instances/{id}/operations", get(instance_operations))
        .route("/v1/instances/{id}/configure", post(configure))
        .route("/v1/instances/{id}/enable", post(enable))
        .route("/v1/instances/{id}/disable", post(disable))
        .route("/v1/instances/{id}/upgrade", post(upgrade))
        .route("/v1/instances/{id}/backup", post(backup))
        .route("/v1/instances/{id}/restore", post(restore))
        .route("/v1/instances/{id}/migrate", post(migrate))
        .route("/v1/restores", post(restore_new))
        .route("/v1/operations", get(list_operations))
        .route("/v1/operations/{opid}", get(operation))
        .route("/v1/operations/{opid}/events", get(operation_events))
}

/// A JSON request body; a body that does not parse is a `400` with API.md's error body (axum's
/// own rejection would be plain text).
pub(crate) struct Body<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(body)) => Ok(Self(body)),
            Err(rejection) => Err(error_response(
                StatusCode::BAD_REQUEST,
                "invalid",
                &format!("the request body: {}", rejection.body_text()),
            )),
        }
    }
}

/// A query string; one that does not parse is a `400` with API.md's error body.
pub(crate) struct Params<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S>
    for Params<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(params)) => Ok(Self(params)),
            Err(rejection) => Err(error_response(
                StatusCode::BAD_REQUEST,
                "invalid",
                &format!("the query string: {}", rejection.body_text()),
            )),
        }
    }
}

/// An error answer: API.md's status and body.
pub(crate) struct ApiError(StatusCode, Value);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

/// API.md's error body.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct ErrorBody {
    error: ErrorInner,
}

/// The inside of the error body.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct ErrorInner {
    /// `invalid`, `unauthorized`, `not_found`, `conflict`, `busy`, `failed` or `internal`.
    kind: String,
    /// What went wrong, naming the file, element, setting or path at fault.
    message: String,
    /// Every refused setting by its id.
    details: Vec<ErrorDetail>,
}

/// One refused setting.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct ErrorDetail {
    /// The setting id.
    setting: String,
    /// Why it was refused.
    message: String,
}

/// `202`: the operation started.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Accepted {
    /// Its id, for `GET /v1/operations/{opid}`.
    operation: String,
}

impl From<aps_ops::Error> for ApiError {
    fn from(e: aps_ops::Error) -> Self {
        Self(status_of(&e), error_body(&e))
    }
}

/// The status of an operation's error (API.md).
pub(crate) fn status_of(e: &aps_ops::Error) -> StatusCode {
    match e.kind() {
        aps_ops::ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        aps_ops::ErrorKind::NotFound => StatusCode::NOT_FOUND,
        aps_ops::ErrorKind::Conflict => StatusCode::CONFLICT,
        aps_ops::ErrorKind::Busy => StatusCode::LOCKED,
        aps_ops::ErrorKind::Failed => StatusCode::UNPROCESSABLE_ENTITY,
        aps_ops::ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The error body of an operation's error: `{"error": {"kind", "message", "details"}}`.
pub(crate) fn error_body(e: &aps_ops::Error) -> Value {
    let kind = match e.kind() {
        aps_ops::ErrorKind::Invalid => "invalid",
        aps_ops::ErrorKind::NotFound => "not_found",
        aps_ops::ErrorKind::Conflict => "conflict",
        aps_ops::ErrorKind::Busy => "busy",
        aps_ops::ErrorKind::Failed => "failed",
        aps_ops::ErrorKind::Internal => "internal",
    };
    let details = e
        .refused_settings()
        .iter()
        .map(|(setting, message)| ErrorDetail {
            setting: setting.clone(),
            message: message.clone(),
        })
        .collect();
    body(kind, &aps_ops::error::chain(e), details)
}

fn body(kind: &str, message: &str, details: Vec<ErrorDetail>) -> Value {
    let body = ErrorBody {
        error: ErrorInner {
            kind: kind.to_owned(),
            message: message.to_owned(),
            details,
        },
    };
    serde_json::to_value(&body).unwrap_or(Value::Null)
}

/// An error answer made here (not by an operation).
pub(crate) fn error_response(status: StatusCode, kind: &str, message: &str) -> ApiError {
    ApiError(status, body(kind, message, Vec::new()))
}

/// Runs a read on the blocking pool.
pub(crate) async fn read(
    app: Arc<App>,
    f: impl FnOnce(&aps_ops::Context) -> Result<Value, aps_ops::Error> + Send + 'static,
) -> Result<Json<Value>, ApiError> {
    super::with_context(&app, f)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// `202 {"operation": OPID}` for a job just started, or why it could not start.
fn accepted(started: start::Started) -> Response {
    match started.map_err(ApiError::from) {
        Ok(operation) => (StatusCode::ACCEPTED, Json(Accepted { operation })).into_response(),
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(get, path = "/v1/packages", responses((status = 200, description = "`{\"packages\": […]}` as `package list --json`")))]
async fn list_packages(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    cached(app, "packages", |ctx| {
        Ok(json!({"packages": aps_ops::package::list(ctx)?}))
    })
    .await
}

#[utoipa::path(post, path = "/v1/packages", request_body(content = Vec<u8>, content_type = "application/zip", description = "the `.app.zip` itself"), responses((status = 201, description = "the `package import --json` object"), (status = 400, description = "the package was refused (the findings are in the message)")))]
async fn upload_package(
    State(app): State<Arc<App>>,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    use futures_util::StreamExt as _;
    let mut upload = aps_ops::package::Upload::begin(&app.ctx)?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            error_response(
                StatusCode::BAD_REQUEST,
                "invalid",
                &format!("the upload did not arrive whole: {e}"),
            )
        })?;
        tokio::task::block_in_place(|| upload.write(&chunk))?;
    }
    let json = read(app, move |ctx| value(&upload.import(ctx)?)).await?;
    Ok((StatusCode::CREATED, json))
}

#[utoipa::path(get, path = "/v1/packages/{reference}", params(("reference" = String, Path, description = "Package reference (`name`, `name-version-release` or its id)")), responses((status = 200, description = "as `package show --json`"), (status = 404, description = "no such package", body = ErrorBody)))]
async fn show_package(
    State(app): State<Arc<App>>,
    Path(reference): Path<String>,
) -> Result<Json<Value>, ApiError> {
    read(app, move |ctx| {
        aps_ops::package::show(ctx, &reference)?.to_json()
    })
    .await
}

#[utoipa::path(get, path = "/v1/packages/{reference}/settings", params(("reference" = String, Path, description = "Package reference")), responses((status = 200, description = "as `package settings REF --json`: each global setting's value (secrets as `***`)")))]
async fn package_settings(
    State(app): State<Arc<App>>,
    Path(reference): Path<String>,
) -> Result<Json<Value>, ApiError> {
    read(app, move |ctx| {
        let opts = aps_ops::global::GlobalOptions {
            package: reference,
            settings: BTreeMap::new(),
        };
        value(&aps_ops::global::settings(
            ctx,
            &opts,
            &aps_ops::report::Silent,
        )?)
    })
    .await
}

#[utoipa::path(put, path = "/v1/packages/{reference}/settings", params(("reference" = String, Path, description = "Package reference")), request_body = SettingsBody, responses((status = 400, description = "refused input, every refused setting in `details`", body = ErrorBody), (status = 404, description = "no such package or site", body = ErrorBody), (status = 202, description = "`{\"operation\": OPID}`; the result is the `package settings --json` object (`reconfigured`, `failed` per instance)", body = Accepted), (status = 400, description = "refused values, each in `details`", body = ErrorBody)))]
async fn save_package_settings(
    State(app): State<Arc<App>>,
    Path(reference): Path<String>,
    Body(body): Body<SettingsBody>,
) -> Response {
    let opts = aps_ops::global::GlobalOptions {
        package: reference,
        settings: body.settings,
    };
    accepted(start::package_settings(&app, opts).await)
}

#[utoipa::path(get, path = "/v1/sites", responses((status = 200, description = "`{\"sites\": […]}` as `site list --json`")))]
async fn list_sites(State(app): State<Arc<App>>) -> Result<Json<Value>, ApiError> {
    read(app, |ctx| Ok(json!({"sites": aps_ops::site::list(ctx)?}))).await
}

/// `POST /v1/sites`: `site add`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct SiteBody {
    /// The site's name in apsctl.
    name: String,
    /// The document root.
    #[schema(value_type = String)]
    docroot: std::path::PathBuf,
    /// The public URL (`http://host[:port]/`).
    url: String,
    /// The system user owning the site (default: the document root's owner).
    user: Option<String>,
    /// The PHP CLI (default: `php` from `PATH`).
    #[schema(value_type = Option<String>)]
    php: Option<std::path::PathBuf>,
    /// `none` (default), `nginx` or `apache`.
    web: Option<String>,
    /// The folder the site's server block or virtual host includes.
    #[schema(value_type = Option<String>)]
    web_dir: Option<std::path::PathBuf>,
    /// The command that reloads the web server.
    web_reload: Option<String>,
    /// The web server's configuration test (exit 0: valid).
    web_test: Option<String>,
    /// Where PHP-FPM listens for this site.
    php_fastcgi: Option<String>,
}

#[utoipa::path(post, path = "/v1/sites", request_body = SiteBody, responses((status = 201, description = "the `site add --json` object"), (status = 400, description = "refused (the message names the path or value at fault)", body = ErrorBody), (status = 409, description = "the name or document root is taken", body = ErrorBody)))]
async fn add_site(
    State(app): State<Arc<App>>,
    Body(body): Body<SiteBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let web = match body.web.as_deref() {
        None | Some("none") => aps_ops::site::WebKind::None,
        Some("nginx") => aps_ops::site::WebKind::Nginx,
        Some("apache") => aps_ops::site::WebKind::Apache,
        Some(other) => {
            return Err(error_response(
                StatusCode::BAD_REQUEST,
                "invalid",
                &format!("`web`: `{other}` is not one of `none`, `nginx`, `apache`"),
            ));
        }
    };
    let opts = aps_ops::site::SiteOptions {
        name: body.name,
        docroot: body.docroot,
        url: body.url,
        user: body.user,
        php: body.php,
        web,
        web_dir: body.web_dir,
        web_reload: body.web_reload,
        web_test: body.web_test,
        php_fastcgi: body.php_fastcgi,
    };
    let site = read(app, move |ctx| value(&aps_ops::site::add(ctx, &opts)?)).await?;
    Ok((StatusCode::CREATED, site))
}

#[utoipa::path(get, path = "/v1/instances", responses((status = 200, description = "`{\"instances\": […]}` as `instance list --json`")))]
async fn list_instances(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    cached(app, "instances", |ctx| {
        Ok(json!({"instances": aps_ops::instance::list(ctx)?}))
    })
    .await
}

/// A list read through the service's [`super::cache::ReadCache`]: the same JSON as [`read`].
async fn cached(
    app: Arc<App>,
    key: &'static str,
    f: impl FnOnce(&aps_ops::Context) -> Result<Value, aps_ops::Error> + Send + 'static,
) -> Result<Response, ApiError> {
    let bytes = super::blocking(&app, move |app| {
        app.cache.get(key, || {
            let value = f(&app.ctx)?;
            serde_json::to_vec(&value)
                .map(axum::body::Bytes::from)
                .map_err(|e| aps_ops::Error::Failed(e.to_string()))
        })
    })
    .await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/instances/{id}", params(("id" = String, Path, description = "Instance id")), responses((status = 200, description = "as `instance show --json` (secrets as `***`)"), (status = 404, description = "no such instance")))]
async fn show_instance(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    read(app, move |ctx| value(&aps_ops::instance::show(ctx, &id)?)).await
}

#[utoipa::path(get, path = "/v1/instances/{id}/updates", params(("id" = String, Path, description = "Instance id")), responses((status = 200, description = "`{\"updates\": […]}` as `instance updates --json`")))]
async fn instance_updates(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    read(app, move |ctx| {
        Ok(json!({"updates": aps_ops::updates::updates(ctx, &id)?}))
    })
    .await
}

#[utoipa::path(get, path = "/v1/instances/{id}/files", params(("id" = String, Path, description = "Instance id")), responses((status = 200, description = "the removal dialog's data (seed 003 sub-steps 3.1–3.2): `application` (the application's unchanged files, removed by either choice), `instance_files` (created or changed by the instance, kept by `files=app`), `databases`")))]
async fn instance_files(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    read(app, move |ctx| {
        value(&aps_ops::remove::file_trees(ctx, &id)?)
    })
    .await
}

#[utoipa::path(get, path = "/v1/instances/{id}/operations", params(("id" = String, Path, description = "Instance id (also of a removed instance)")), responses((status = 200, description = "`{\"operations\": […]}`, newest first: the instance's audit trail from the journal (`instance history --json`)")))]
async fn instance_operations(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    read(app, move |ctx| {
        Ok(json!({"operations": aps_ops::instance::history(ctx, &id, 200)?}))
    })
    .await
}

/// `POST /v1/instances`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct InstallBody {
    /// The package reference.
    package: String,
    /// The site.
    site: String,
    /// The path below the site's document root (`/` for the root).
    path: Option<String>,
    /// Setting values by id (strings; numbers and booleans are taken as their text).
    #[serde(default, deserialize_with = "scalars")]
    settings: BTreeMap<String, String>,
    /// Whether the licence is accepted.
    #[serde(default)]
    accept_license: bool,
    /// The database server to use.
    db_server: Option<String>,
    /// Plan only.
    #[serde(default)]
    dry_run: bool,
}

#[utoipa::path(post, path = "/v1/instances", request_body = InstallBody, responses((status = 400, description = "refused input, every refused setting in `details`", body = ErrorBody), (status = 404, description = "no such package or site", body = ErrorBody), (status = 202, description = "`{\"operation\": OPID}`; the result is the `install --json` object")))]
async fn install(State(app): State<Arc<App>>, Body(body): Body<InstallBody>) -> Response {
    let opts = aps_ops::install::InstallOptions {
        package: body.package,
        site: body.site,
        path: body.path,
        settings: body.settings,
        license: aps_ops::install::License::accepted_if(body.accept_license),
        db_server: body.db_server,
        table_prefixes: BTreeMap::new(),
        shared_databases: BTreeMap::new(),
        mode: if body.dry_run {
            aps_ops::install::RunMode::DryRun
        } else {
            aps_ops::install::RunMode::Apply
        },
    };
    accepted(start::install(&app, opts).await)
}

/// `{"settings": {…}}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct SettingsBody {
    /// Setting values by id (strings; numbers and booleans are taken as their text).
    #[serde(deserialize_with = "scalars")]
    settings: BTreeMap<String, String>,
}

/// Setting values as text: a panel may send `8` or `true` for a number or boolean setting.
fn scalars<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(id, v)| match v {
            Value::String(text) => Ok((id, text)),
            Value::Bool(_) | Value::Number(_) => Ok((id, v.to_string())),
            _ => Err(serde::de::Error::custom(format!(
                "setting `{id}`: give a string, number or boolean"
            ))),
        })
        .collect()
}

#[utoipa::path(post, path = "/v1/instances/{id}/configure", params(("id" = String, Path, description = "Instance id")), request_body = SettingsBody, responses((status = 400, description = "refused input, every refused setting in `details`", body = ErrorBody), (status = 404, description = "no such instance", body = ErrorBody), (status = 423, description = "another operation holds the instance", body = ErrorBody), (status = 202, description = "`{\"operation\": OPID}`")))]
async fn configure(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Body(body): Body<SettingsBody>,
) -> Response {
    accepted(start::configure(&app, id, body.settings).await)
}

/// The query of `DELETE /v1/instances/{id}`.
#[derive(Debug, Deserialize)]
struct RemoveQuery {
    files: Option<String>,
    #[serde(default)]
    keep_databases: bool,
    #[serde(default)]
    force: bool,
}

#[utoipa::path(delete, path = "/v1/instances/{id}", params(("id" = String, Path, description = "Instance id"), ("files" = String, Query, description = "`all` or `app` (required)"), ("keep_databases" = Option<bool>, Query, description = "keep the databases"), ("force" = Option<bool>, Query, description = "free what can be freed without `configure remove`")), responses((status = 400, description = "refused input, every refused setting in `details`", body = ErrorBody), (status = 404, description = "no such instance", body = ErrorBody), (status = 423, description = "another operation holds the instance", body = ErrorBody), (status = 202, description = "`{\"operation\": OPID}`")))]
async fn remove(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Params(q): Params<RemoveQuery>,
) -> Response {
    let files = match q.files.as_deref() {
        Some("all") => aps_ops::report::FileChoice::All,
        Some("app") => aps_ops::report::FileChoice::App,
        _ => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "invalid",
                "give `files=all` or `files=app`",
            )
            .into_response();
        }
    };
    let opts = aps_ops::remove::RemoveOptions {
        instance: id,
        files: Some(files),
        databases: if q.keep_databases {
            aps_ops::remove::Databases::Keep
        } else {
            aps_ops::remove::Databases::Drop
        },
        force: if q.force {
            aps_ops::remove::Force::Yes
        } else {
            aps_ops::remove::Force::No
        },
    };
    accepted(start::remove(&app, opts).await)
}

#[utoipa::path(post, path = "/v1/instances/{id}/enable", params(("id" = String, Path, description = "Instance id")), responses((status = 400, description = "refused input, every refused setting in `details`", body = ErrorBody), (status = 404, description = "no such instance", body = ErrorBody), (status = 423, description = "another operation holds the instance", body = ErrorBody), (status = 202, description = "`{\"operation\": OPID}`")))]
async fn enable(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    accepted(start::status(&app, id, true).await)
}

#[utoipa::path(post, path = "/v1/instances/{id}/disable", params(("id" = String, Path, description = "Instance id")), responses((status = 400, description = "refused input, every refused setting in `details`", body = ErrorBody), (status = 404, description = "no such instance", body = ErrorBody), (status = 423, description = "another operation holds the instance", body = ErrorBody), (status = 202, description = "`{\"operation\": OPID}`")))]
async fn disable(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    accepted(start::status(&app, id, false).await)
}

/// `POST /v1/instances/{id}/upgrade`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct UpgradeBody {
    /// The package to update to.
    to: String,
    /// Values for new settings.
    #[serde(default, deserialize_with = "scalars")]
    settings: BTreeMap<String, String>,
    /// Whether the new package's licence is accepted.
    #[serde(default)]
    accept_license: bool,
}

#[utoipa::path(post, path = "/v1/instances/{id}/upgrade", params(("id" = String, Path, description = "Instance id")), request_body = UpgradeBody, responses((status = 400, description = "refused input, every refused setting in `details`", body = ErrorBody), (status = 404, description = "no such instance", body = ErrorBody), (status = 423, description = "another operation holds the instance", body = ErrorBody), (status = 202, description = "`{\"operation\": OPID}`; the result is the `upgrade --json` object")))]
async fn upgrade(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Body(body): Body<UpgradeBody>,
) -> Response {
    let opts = aps_ops::upgrade::UpgradeOptions {
        instance: id,
        to: body.to,
        settings: body.settings,
        license: aps_ops::install::License::accepted_if(body.accept_license),
    };
    accepted(start::upgrade(&app, opts).await)
}

/// `POST /v1/instances/{id}/backup`: `{"to": FILE}` or `{"to_dir": DIR, "keep"?: N}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct BackupBody {
    /// Exactly this archive file (replaced when it exists).
    #[schema(value_type = Option<String>)]
    to: Option<std::path::PathBuf>,
    /// A new archive in this folder, named after the instance and the time.
    #[schema(value_type = Option<String>)]
    to_dir: Option<std::path::PathBuf>,
    /// With `to_dir`: keep only the newest N backups of the instance there.
    keep: Option<u32>,
}

#[utoipa::path(post, path = "/v1/instances/{id}/backup", params(("id" = String, Path, description = "Instance id")), request_body = BackupBody, responses((status = 400, description = "refused input, every refused setting in `details`", body = ErrorBody), (status = 404, description = "no such instance", body = ErrorBody), (status = 423, description = "another operation holds the instance", body = ErrorBody), (status = 202, description = "`{\"operation\": OPID}`; the result is the `backup --json` object", body = Accepted), (status = 400, description = "neither or both of `to` and `to_dir`", body = ErrorBody)))]
async fn backup(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Body(body): Body<BackupBody>,
) -> Response {
    let to = match (body.to, body.to_dir) {
        (Some(file), None) => aps_ops::backup::BackupTarget::File(file),
        (None, Some(dir)) => aps_ops::backup::BackupTarget::Dir {
            dir,
            keep: body.keep,
        },
        _ => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "invalid",
                "give where the backup goes: `to` (a file) or `to_dir` (a folder)",
            )
            .into_response();
        }
    };
    let opts = aps_ops::backup::BackupOptions { instance: id, to };
    accepted(start::backup(&app, opts).await)
}

/// `POST /v1/instances/{id}/restore`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct RestoreBody {
    /// The archive.
    #[schema(value_type = String)]
    from: std::path::PathBuf,
}

#[utoipa::path(post, path = "/v1/instances/{id}/restore", params(("id" = String, Path, description = "Instance id")), request_body = RestoreBody, responses((status = 400, description = "refused input, every refused setting in `details`", body = ErrorBody), (status = 404, description = "no such instance", body = ErrorBody), (status = 423, description = "another operation holds the instance", body = ErrorBody), (status = 202, description = "`{\"operation\": OPID}`; the result is the `restore --json` object", body = Accepted)))]
async fn restore(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Body(body): Body<RestoreBody>,
) -> Response {
    let opts = aps_ops::restore::RestoreOptions {
        from: body.from,
        to: aps_ops::restore::RestoreTarget::Instance(id),
    };
    accepted(start::restore(&app, opts).await)
}

/// `POST /v1/restores`: a backup restored into a new instance.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct RestoreNewBody {
    /// The archive.
    #[schema(value_type = String)]
    from: std::path::PathBuf,
    /// The site of the new instance.
    site: String,
    /// Its path below the site root (default: the backed-up instance's).
    path: Option<String>,
}

#[utoipa::path(post, path = "/v1/restores", request_body = RestoreNewBody, responses((status = 400, description = "refused input, every refused setting in `details`", body = ErrorBody), (status = 404, description = "no such package or site", body = ErrorBody), (status = 202, description = "`{\"operation\": OPID}`; the result is the `restore --json` object (its `instance` is the new one)", body = Accepted)))]
async fn restore_new(State(app): State<Arc<App>>, Body(body): Body<RestoreNewBody>) -> Response {
    let opts = aps_ops::restore::RestoreOptions {
        from: body.from,
        to: aps_ops::restore::RestoreTarget::New {
            site: body.site,
            path: body.path,
        },
    };
    accepted(start::restore(&app, opts).await)
}

/// `POST /v1/instances/{id}/migrate`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct MigrateBody {
    /// The site it goes to.
    site: String,
    /// The path there (default: its path now).
    path: Option<String>,
    /// Keep the old instance.
    #[serde(default)]
    keep_source: bool,
}

#[utoipa::path(post, path = "/v1/instances/{id}/migrate", params(("id" = String, Path, description = "Instance id")), request_body = MigrateBody, responses((status = 400, description = "refused input, every refused setting in `details`", body = ErrorBody), (status = 404, description = "no such instance", body = ErrorBody), (status = 423, description = "another operation holds the instance", body = ErrorBody), (status = 202, description = "`{\"operation\": OPID}`; the result is the `migrate --json` object", body = Accepted)))]
async fn migrate(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Body(body): Body<MigrateBody>,
) -> Response {
    let opts = aps_ops::restore::MigrateOptions {
        instance: id,
        site: body.site,
        path: body.path,
        keep_source: body.keep_source,
    };
    accepted(start::migrate(&app, opts).await)
}

#[utoipa::path(get, path = "/v1/operations/{opid}", params(("opid" = String, Path, description = "Operation id")), responses((status = 200, description = "`{\"operation\", \"kind\", \"instance\", \"state\", \"progress\", \"result\", \"error\"}`"), (status = 404, description = "no such operation")))]
async fn operation(State(app): State<Arc<App>>, Path(opid): Path<String>) -> Response {
    match jobs::find(&app, opid).await {
        Ok(job) => Json(job).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[utoipa::path(get, path = "/v1/operations/{opid}/events", params(("opid" = String, Path, description = "Operation id")), responses((status = 200, description = "`text/event-stream`: `progress` events (the operation object) each time it changes, then `end` with its outcome; `stopping` when the service stops first", content_type = "text/event-stream"), (status = 404, description = "no such operation", body = ErrorBody)))]
async fn operation_events(State(app): State<Arc<App>>, Path(opid): Path<String>) -> Response {
    jobs::events(app, opid).await
}

/// The query of `GET /v1/operations`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct OperationsQuery {
    /// Only this instance's operations.
    instance: Option<String>,
    /// How many (default 50, at most 1000).
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/operations", params(OperationsQuery), responses((status = 200, description = "`{\"operations\": […]}`: the service's operations (running and ended, kept in the store), newest first")))]
async fn list_operations(
    State(app): State<Arc<App>>,
    Params(q): Params<OperationsQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(50).min(1000);
    let live = Arc::clone(&app);
    read(app, move |ctx| {
        let jobs: Vec<aps_ops::jobs::JobView> =
            aps_ops::jobs::list(ctx, q.instance.as_deref(), limit)?
                .into_iter()
                .map(|job| live.jobs.running(&job.operation).unwrap_or(job))
                .collect();
        Ok(json!({"operations": jobs}))
    })
    .await
}
