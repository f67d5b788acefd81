//! The OpenAPI 3.1 document of the REST API. It is generated from the handlers themselves: every route is added
//! through `utoipa_axum::routes!`, which only takes a handler that carries its `#[utoipa::path]` description, so a
//! route cannot exist without being documented. Served at `/api/openapi.json`; `/api/reference` renders it for
//! people (see `reference.rs`).
use super::envelope::ERROR_CODES;
use std::sync::Arc;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, RefOr, Response, ResponseBuilder};
use utoipa::{IntoParams, OpenApi, PartialSchema, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Latchkey API",
        description = "Every answer under /api is the envelope {success, status, code, message, data}. Errors carry a \
                       stable `code` (see ErrorBody) and a message that says what to fix. Org-scoped routes answer 404 \
                       for an organization the caller does not belong to.",
        license(name = "MIT")
    ),
    tags(
        (name = "auth", description = "Sign-up, password sign-in, sign-out, email discovery"),
        (name = "account", description = "The signed-in user: profile, API keys, sessions, join requests"),
        (name = "mfa", description = "The caller's second factor (TOTP)"),
        (name = "orgs", description = "Organizations and members"),
        (name = "domains", description = "Verified email domains (DNS TXT) and auto-join"),
        (name = "connections", description = "An organization's identity providers (OIDC, SAML, LDAP)"),
        (name = "security", description = "The organization's sign-in policy and its members' sessions"),
        (name = "audit", description = "The organization's audit log"),
        (name = "webhooks", description = "Signed webhooks (Standard Webhooks)"),
        (name = "admin", description = "Instance administration: operators only"),
        (name = "applications", description = "What a registered application calls with its HTTP Basic credentials"),
        (name = "sign-in", description = "Browser endpoints of single sign-on: they answer with redirects"),
        (name = "meta", description = "Health checks, key set and this document"),
    )
)]
pub struct ApiDoc;

/// The success envelope; `data` is the endpoint's answer.
#[derive(ToSchema)]
pub struct Envelope<T> {
    /// Always `true` here.
    pub success: bool,
    /// The HTTP status, repeated.
    pub status: u16,
    /// `OK`.
    pub code: String,
    /// What happened, for people.
    pub message: String,
    pub data: T,
}

/// The success envelope of an endpoint that answers no data (`data` is `null`).
#[derive(ToSchema)]
pub struct Done {
    pub success: bool,
    pub status: u16,
    pub code: String,
    pub message: String,
    #[schema(schema_with = null_schema)]
    pub data: (),
}

fn null_schema() -> Schema {
    Schema::Object(ObjectBuilder::new().schema_type(Type::Null).build())
}

/// An error: `success` is `false`, `code` is one of the stable codes below, `message` says what to fix.
#[derive(ToSchema)]
pub struct ErrorBody {
    pub success: bool,
    pub status: u16,
    #[schema(schema_with = error_code_schema)]
    pub code: String,
    pub message: String,
    #[schema(schema_with = null_schema)]
    pub data: (),
}

fn error_code_schema() -> Schema {
    let mut codes: Vec<&str> = ERROR_CODES.iter().map(|(code, _, _)| *code).collect();
    codes.extend(app::model::SIGN_IN_ERROR_CODES.iter().copied());
    let mut description = String::from("The stable error code. API errors:\n");
    for (code, status, meaning) in ERROR_CODES {
        description.push_str(&format!("- `{code}` ({status}): {meaning}\n"));
    }
    description.push_str("\nThe LDAP sign-in endpoint answers the sign-in codes of the error page (lower case), e.g. `ldap_invalid_credentials`.");
    Schema::Object(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(codes)).description(Some(description)).build())
}

/// `data` of a redirecting JSON answer: where to send the browser next.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedirectTo {
    pub redirect_to: String,
}

/// A JSON Web Key Set (RFC 7517): the public keys that verify session JWTs.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct JwkSet {
    pub keys: Vec<serde_json::Value>,
}

/// An organization in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct OrgPath {
    /// The organization's id.
    pub org_id: String,
}

/// An item of an organization.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct OrgItemPath {
    /// The organization's id.
    pub org_id: String,
    /// The item's id.
    pub id: String,
}

/// An item by its id.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct IdPath {
    /// The item's id.
    pub id: String,
}

/// The error statuses every operation may answer, each with the envelope.
const SHARED_ERRORS: &[(&str, &str)] = &[
    ("400", "The request could not be read (path or query parameter, body encoding)."),
    ("401", "Not authenticated: no or unknown session, API key, application credentials or token."),
    ("403", "Authenticated, but not allowed (role, operator-only, policy needs SSO or a second factor, CSRF origin)."),
    ("404", "No such resource, or one of another organization."),
    ("409", "Conflicts with the current state (a duplicate, or a change the lockout guard refuses)."),
    ("413", "The body is larger than the endpoint accepts."),
    ("415", "The body is not JSON (send Content-Type: application/json)."),
    ("422", "The input is not valid: the message names the field."),
    ("429", "Too many attempts: the Retry-After header says how long to wait."),
    ("503", "The database is briefly unreachable: nothing was changed; retry after Retry-After seconds."),
];

/// Adds what every operation shares once all routes are in: the security schemes, the error envelope and the
/// error statuses any operation may answer.
pub fn finish(api: &mut utoipa::openapi::OpenApi) {
    {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            crate::startup::SESSION_COOKIE,
            "The console's session cookie (sign in with POST /api/auth/signin). Writes from a browser must come from Latchkey's own origin.",
        ))));
        components.add_security_scheme("apiKey", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-Api-Key",
            "A personal API key (`lk_…`) created under /api/user/api-keys; it acts as its user.",
        ))));
        components.add_security_scheme(
            "application",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("A registered application's client id and a current client secret."))
                    .build(),
            ),
        );
        let error: RefOr<Response> = ResponseBuilder::new()
            .content("application/json", Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody")))))
            .description("An error envelope")
            .build()
            .into();
        components.schemas.entry("ErrorBody".into()).or_insert_with(ErrorBody::schema);
        for (status, description) in SHARED_ERRORS {
            let mut r = error.clone();
            if let RefOr::T(resp) = &mut r {
                resp.description = (*description).to_string();
            }
            components.responses.insert(format!("Error{status}"), r);
        }
        let mut seen = std::collections::HashSet::new();
        for item in api.paths.paths.values_mut() {
            for op in operations(item) {
                // utoipa names an operation after its function (`list`, `get`…): prefix the tag to make ids unique.
                let tag = op.tags.as_ref().and_then(|t| t.first()).cloned().unwrap_or_default();
                let base = format!("{tag}_{}", op.operation_id.clone().unwrap_or_default());
                let mut id = base.clone();
                let mut n = 2;
                while !seen.insert(id.clone()) {
                    id = format!("{base}_{n}");
                    n += 1;
                }
                op.operation_id = Some(id);
                for (status, _) in SHARED_ERRORS {
                    op.responses
                        .responses
                        .entry((*status).to_string())
                        .or_insert_with(|| RefOr::Ref(utoipa::openapi::Ref::new(format!("#/components/responses/Error{status}"))));
                }
            }
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head, &mut item.options, &mut item.trace]
        .into_iter()
        .filter_map(|o| o.as_mut())
}

/// `GET /api/openapi.json`: the document, serialized once at start-up.
pub async fn document(json: Arc<str>) -> axum::response::Response {
    use axum::response::IntoResponse;
    ([(axum::http::header::CONTENT_TYPE, "application/json")], json.to_string()).into_response()
}

/// The two routes that serve the documentation, described by hand (they are the document itself).
pub fn document_path_item() -> utoipa::openapi::PathItem {
    meta_item("This OpenAPI 3.1 document", "openapi_document", "The document", "application/json", Type::Object)
}

pub fn reference_path_item() -> utoipa::openapi::PathItem {
    meta_item("This document as a web page, for people", "api_reference", "An HTML page", "text/html; charset=utf-8", Type::String)
}

fn meta_item(summary: &str, id: &str, what: &str, content_type: &str, ty: Type) -> utoipa::openapi::PathItem {
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
    let body = Content::new(Some(RefOr::T(Schema::Object(ObjectBuilder::new().schema_type(ty).build()))));
    let op = OperationBuilder::new()
        .tag("meta")
        .summary(Some(summary))
        .operation_id(Some(id))
        .response("200", ResponseBuilder::new().description(what).content(content_type, body))
        .build();
    PathItem::new(HttpMethod::Get, op)
}
