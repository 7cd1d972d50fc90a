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

/// The `OpenAPI` document, generated from the handlers below.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "apsctl", description = "The APS controller's HTTP API (API.md)"),
    paths(
        list_packages,
        upload_package,
        list_sites,
        list_instances,
        show_instance,
        instance_updates,
        instance_operations,
        install,
        configure,
        remove,
        enable,
        disable,
        upgrade,
        operation
    ),
    components(schemas(InstallBody, SettingsBody, UpgradeBody)),
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

/// The `/v1` router (the token layer is added by the caller).
pub(crate) fn v1() -> axum::Router<Arc<App>> {
    axum::Router::new()
        .route("/v1/packages", get(list_packages).post(upload_package))
        .route("/v1/sites", get(list_sites))
        .route("/v1/instances", get(list_instances).post(install))
        .route("/v1/instances/{id}", get(show_instance).delete(remove))
        .route("/v1/instances/{id}/updates", get(instance_updates))
        .route("/v1/instances/{id}/operations", get(instance_operations))
        .route("/v1/instances/{id}/configure", post(configure))
        .route("/v1/instances/{id}/enable", post(enable))
        .route("/v1/instances/{id}/disable", post(disable))
        .route("/v1/instances/{id}/upgrade", post(upgrade))
        .route("/v1/operations/{opid}", get(operation))
}

/// An error answer: API.md's status and body.
pub(crate) struct ApiError(StatusCode, Value);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl From<aps_ops::Error> for ApiError {
    fn from(e: aps_ops::Error) -> Self {
        Self(status_of(&e), error_body(&e))
    }
}

/// The status of an operation's error (API.md).
fn status_of(e: &aps_ops::Error) -> StatusCode {
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
    let details: Vec<Value> = e
        .refused_settings()
        .iter()
        .map(|(setting, message)| json!({"setting": setting, "message": message}))
        .collect();
    json!({"error": {"kind": kind, "message": aps_ops::error::chain(e), "details": details}})
}

/// An error answer made here (not by an operation).
pub(crate) fn error_response(
    status: StatusCode,
    kind: &str,
    message: &str,
    details: &[Value],
) -> ApiError {
    ApiError(
        status,
        json!({"error": {"kind": kind, "message": message, "details": details}}),
    )
}

/// Runs a read on the blocking pool.
async fn read(
    app: Arc<App>,
    f: impl FnOnce(&aps_ops::Context) -> Result<Value, aps_ops::Error> + Send + 'static,
) -> Result<Json<Value>, ApiError> {
    tokio::task::spawn_blocking(move || f(&app.ctx))
        .await
        .map_err(|e| {
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                &e.to_string(),
                &[],
            )
        })?
        .map(Json)
        .map_err(ApiError::from)
}

/// `202 {"operation": OPID}` for a job just started.
fn accepted(id: &str) -> Response {
    (StatusCode::ACCEPTED, Json(json!({"operation": id}))).into_response()
}

/// A serializable result as JSON.
fn value(v: &impl serde::Serialize) -> Result<Value, aps_ops::Error> {
    serde_json::to_value(v).map_err(|e| aps_ops::Error::Failed(e.to_string()))
}

#[utoipa::path(get, path = "/v1/packages", responses((status = 200, description = "`{\"packages\": […]}` as `package list --json`")))]
async fn list_packages(State(app): State<Arc<App>>) -> Result<Json<Value>, ApiError> {
    read(app, |ctx| {
        Ok(json!({"packages": aps_ops::package::list(ctx)?}))
    })
    .await
}

#[utoipa::path(post, path = "/v1/packages", request_body(content = Vec<u8>, content_type = "application/zip", description = "the `.app.zip` itself"), responses((status = 201, description = "the `package import --json` object"), (status = 400, description = "the package was refused (the findings are in the message)")))]
async fn upload_package(
    State(app): State<Arc<App>>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let json = read(app, move |ctx| {
        // The upload is written into apsctl's own staging folder, imported, and removed.
        let staged = tempfile::Builder::new()
            .prefix("upload-")
            .suffix(".app.zip")
            .tempfile_in(ctx.home.staging())
            .map_err(|e| aps_ops::Error::io(&ctx.home.staging(), e))?;
        fs_err::write(staged.path(), &body)?;
        value(&aps_ops::package::import(ctx, staged.path())?)
    })
    .await?;
    Ok((StatusCode::CREATED, json))
}

#[utoipa::path(get, path = "/v1/sites", responses((status = 200, description = "`{\"sites\": […]}` as `site list --json`")))]
async fn list_sites(State(app): State<Arc<App>>) -> Result<Json<Value>, ApiError> {
    read(app, |ctx| Ok(json!({"sites": aps_ops::site::list(ctx)?}))).await
}

#[utoipa::path(get, path = "/v1/instances", responses((status = 200, description = "`{\"instances\": […]}` as `instance list --json`")))]
async fn list_instances(State(app): State<Arc<App>>) -> Result<Json<Value>, ApiError> {
    read(app, |ctx| {
        Ok(json!({"instances": aps_ops::instance::list(ctx)?}))
    })
    .await
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
    /// Setting values by id.
    #[serde(default)]
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

#[utoipa::path(post, path = "/v1/instances", request_body = InstallBody, responses((status = 202, description = "`{\"operation\": OPID}`; the result is the `install --json` object")))]
async fn install(State(app): State<Arc<App>>, Json(body): Json<InstallBody>) -> Response {
    let id = jobs::spawn(&app, "install", None, move |ctx, reporter| {
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
        value(&aps_ops::install::install(ctx, &opts, reporter)?)
    });
    accepted(&id)
}

/// `{"settings": {…}}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct SettingsBody {
    /// Setting values by id.
    settings: BTreeMap<String, String>,
}

#[utoipa::path(post, path = "/v1/instances/{id}/configure", params(("id" = String, Path, description = "Instance id")), request_body = SettingsBody, responses((status = 202, description = "`{\"operation\": OPID}`")))]
async fn configure(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Json(body): Json<SettingsBody>,
) -> Response {
    let instance = id.clone();
    let job = jobs::spawn(&app, "configure", Some(id), move |ctx, reporter| {
        let opts = aps_ops::configure::ConfigureOptions {
            instance,
            settings: body.settings,
        };
        value(&aps_ops::configure::configure(ctx, &opts, reporter)?)
    });
    accepted(&job)
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

#[utoipa::path(delete, path = "/v1/instances/{id}", params(("id" = String, Path, description = "Instance id"), ("files" = String, Query, description = "`all` or `app` (required)"), ("keep_databases" = Option<bool>, Query, description = "keep the databases"), ("force" = Option<bool>, Query, description = "free what can be freed without `configure remove`")), responses((status = 202, description = "`{\"operation\": OPID}`"), (status = 400, description = "no or a wrong `files`")))]
async fn remove(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> Response {
    let files = match q.files.as_deref() {
        Some("all") => aps_ops::report::FileChoice::All,
        Some("app") => aps_ops::report::FileChoice::App,
        _ => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "invalid",
                "give `files=all` or `files=app`",
                &[],
            )
            .into_response();
        }
    };
    let instance = id.clone();
    let job = jobs::spawn(&app, "remove", Some(id), move |ctx, reporter| {
        let opts = aps_ops::remove::RemoveOptions {
            instance,
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
        value(&aps_ops::remove::remove(ctx, &opts, reporter)?)
    });
    accepted(&job)
}

/// Starts `enable`/`disable` of `id`.
fn status(app: &Arc<App>, id: String, enable: bool) -> Response {
    let instance = id.clone();
    let kind = if enable { "enable" } else { "disable" };
    let job = jobs::spawn(app, kind, Some(id), move |ctx, reporter| {
        value(&aps_ops::status::set(ctx, &instance, enable, reporter)?)
    });
    accepted(&job)
}

#[utoipa::path(post, path = "/v1/instances/{id}/enable", params(("id" = String, Path, description = "Instance id")), responses((status = 202, description = "`{\"operation\": OPID}`")))]
async fn enable(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    status(&app, id, true)
}

#[utoipa::path(post, path = "/v1/instances/{id}/disable", params(("id" = String, Path, description = "Instance id")), responses((status = 202, description = "`{\"operation\": OPID}`")))]
async fn disable(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    status(&app, id, false)
}

/// `POST /v1/instances/{id}/upgrade`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct UpgradeBody {
    /// The package to update to.
    to: String,
    /// Values for new settings.
    #[serde(default)]
    settings: BTreeMap<String, String>,
    /// Whether the new package's licence is accepted.
    #[serde(default)]
    accept_license: bool,
}

#[utoipa::path(post, path = "/v1/instances/{id}/upgrade", params(("id" = String, Path, description = "Instance id")), request_body = UpgradeBody, responses((status = 202, description = "`{\"operation\": OPID}`; the result is the `upgrade --json` object")))]
async fn upgrade(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Json(body): Json<UpgradeBody>,
) -> Response {
    let instance = id.clone();
    let job = jobs::spawn(&app, "upgrade", Some(id), move |ctx, reporter| {
        let opts = aps_ops::upgrade::UpgradeOptions {
            instance,
            to: body.to,
            settings: body.settings,
            license: aps_ops::install::License::accepted_if(body.accept_license),
        };
        value(&aps_ops::upgrade::upgrade(ctx, &opts, reporter)?)
    });
    accepted(&job)
}

#[utoipa::path(get, path = "/v1/operations/{opid}", params(("opid" = String, Path, description = "Operation id")), responses((status = 200, description = "`{\"operation\", \"kind\", \"instance\", \"state\", \"progress\", \"result\", \"error\"}`"), (status = 404, description = "no such operation")))]
async fn operation(State(app): State<Arc<App>>, Path(opid): Path<String>) -> Response {
    match app.jobs.get(&opid) {
        Some(job) => Json(job).into_response(),
        None => error_response(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no operation `{opid}` in this service"),
            &[],
        )
        .into_response(),
    }
}
