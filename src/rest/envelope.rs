//! The response envelope `{success, status, code, message, data}` and the extractors whose rejections use it,
//! so no route ever answers with axum's plain-text errors.
use app::service::ServiceError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    success: bool,
    status: u16,
    code: &'a str,
    message: &'a str,
    data: Option<T>,
}

/// Every `code` an error envelope carries, its HTTP status and what it means (the OpenAPI document lists them).
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    ("BAD_REQUEST", 400, "A path or query parameter, or the body's encoding, could not be read."),
    ("MALFORMED_JSON", 400, "The body is not valid JSON."),
    ("UNAUTHORIZED", 401, "No session cookie or X-Api-Key header."),
    ("INVALID_CREDENTIALS", 401, "The email or password is not right."),
    ("INVALID_API_KEY", 401, "The API key is unknown or revoked."),
    ("INVALID_CLIENT", 401, "The application's HTTP Basic credentials are missing or wrong."),
    ("INVALID_TOKEN", 401, "A single-use or session token that is unknown, expired, used, revoked or another application's."),
    ("FORBIDDEN", 403, "Authenticated but not allowed (role, operator-only)."),
    ("CSRF_REJECTED", 403, "A cookie-authenticated write that did not come from Latchkey's own origin."),
    ("SSO_REQUIRED", 403, "The organization's policy needs a session through its identity provider."),
    ("MFA_REQUIRED", 403, "The session must finish or enrol a second factor first."),
    ("NOT_FOUND", 404, "No such resource (or another organization's), or no such API route."),
    ("METHOD_NOT_ALLOWED", 405, "The route does not take that HTTP method."),
    ("CONFLICT", 409, "Conflicts with the current state: a duplicate, or a change the lockout guard refuses."),
    ("PAYLOAD_TOO_LARGE", 413, "The body is larger than the endpoint accepts."),
    ("UNSUPPORTED_MEDIA_TYPE", 415, "The body must be JSON (Content-Type: application/json)."),
    ("VALIDATION_ERROR", 422, "The input is not valid; the message names the field."),
    ("RATE_LIMITED", 429, "Too many attempts; wait the Retry-After seconds."),
    ("INTERNAL_ERROR", 500, "A fault on Latchkey's side (logged, never detailed)."),
    ("SERVICE_UNAVAILABLE", 503, "The database is briefly unreachable; nothing was changed."),
    ("NOT_READY", 503, "/readyz: the database does not answer."),
];

/// A successful answer.
pub fn ok<T: Serialize>(status: StatusCode, message: &str, data: T) -> Response {
    let body = Envelope { success: true, status: status.as_u16(), code: "OK", message, data: Some(data) };
    (status, axum::Json(body)).into_response()
}

/// An error answer: stable code and a message that says what to fix.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Envelope::<()> { success: false, status: self.status.as_u16(), code: self.code, message: &self.message, data: None };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            if let Some(secs) = self.message.split_whitespace().find_map(|w| w.parse::<u64>().ok()) {
                if let Ok(v) = secs.to_string().parse() {
                    resp.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
                }
            }
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, app::service::error::UNAVAILABLE_RETRY_SECS.into());
        }
        resp
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match &err {
            ServiceError::Internal(detail) => tracing::error!(%detail, "internal error"),
            ServiceError::Unavailable(detail) => tracing::warn!(%detail, "database unavailable"),
            _ => {}
        }
        let status = StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = match &err {
            ServiceError::Validation { field, message } => format!("{field}: {message}"),
            other => other.public_message(),
        };
        Self::new(status, err.code(), message)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "Send the body as JSON with the header Content-Type: application/json.",
            ),
            JsonRejection::JsonSyntaxError(e) => {
                Self::new(StatusCode::BAD_REQUEST, "MALFORMED_JSON", format!("The body is not valid JSON: {}", e.body_text()))
            }
            JsonRejection::JsonDataError(e) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", data_error(&e.body_text())),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                format!("The body is too large; the limit is {} KiB.", super::BODY_LIMIT / 1024),
            ),
            other => Self::new(other.status(), "BAD_REQUEST", "The request body could not be read."),
        }
    }
}

/// serde's message names the field ("unknown field `x`, expected one of …" / "missing field `x`").
fn data_error(body_text: &str) -> String {
    let detail = body_text.rsplit("target type: ").next().unwrap_or(body_text);
    format!("The JSON body does not match what this endpoint takes: {detail}")
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", format!("Invalid path parameter: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", format!("Invalid query string: {}", r.body_text()))
    }
}

/// `axum::Json` with envelope rejections.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

/// `axum::extract::Path` with envelope rejections.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "There is no API route at this path. See the API reference in the README.")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "This route does not accept that HTTP method.")
}
