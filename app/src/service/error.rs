//! `ServiceError`: every way a service call can fail, each with a stable code. The web layer is the only place
//! it becomes an HTTP status; internal details are logged there and never shown.
use crate::error::AppError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Input that fails validation; `field` names what to fix (JSON field name).
    #[error("{message}")]
    Validation { field: &'static str, message: String },
    #[error("Sign in first: this needs a session cookie or an X-Api-Key header.")]
    Unauthenticated,
    #[error("The email or password is not right.")]
    InvalidCredentials,
    #[error("This API key is not valid: it is unknown or has been revoked.")]
    InvalidApiKey,
    /// An application's credentials (HTTP Basic client id and secret) are missing or wrong.
    #[error("The application credentials are not valid: send HTTP Basic with the client id and a current client secret.")]
    InvalidClient,
    /// A single-use or session token that is unknown, expired, already used, revoked or another application's.
    #[error("{0}")]
    InvalidToken(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The org's policy needs a session established through one of its identity providers.
    #[error("{0}")]
    SsoRequired(String),
    /// The session must finish a second factor (or enrol one) first.
    #[error("{0}")]
    MfaRequired(String),
    #[error("Too many attempts. Wait {retry_after_secs} seconds and try again.")]
    RateLimited { retry_after_secs: i64 },
    /// The database cannot be reached: never an authentication or not-found answer. The detail is logged only.
    #[error("Latchkey cannot reach its database right now. Nothing was changed; try again in a few seconds.")]
    Unavailable(String),
    /// Never shown: the message is logged by the web layer, the caller sees a generic sentence.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    pub fn validation(field: &'static str, message: impl Into<String>) -> Self {
        Self::Validation { field, message: message.into() }
    }
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        Self::Internal(format!("{context}: {err}"))
    }

    /// The stable machine code, as the REST envelope's `code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation { .. } => "VALIDATION_ERROR",
            Self::Unauthenticated => "UNAUTHORIZED",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::InvalidApiKey => "INVALID_API_KEY",
            Self::InvalidClient => "INVALID_CLIENT",
            Self::InvalidToken(_) => "INVALID_TOKEN",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::Conflict(_) => "CONFLICT",
            Self::SsoRequired(_) => "SSO_REQUIRED",
            Self::MfaRequired(_) => "MFA_REQUIRED",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL_ERROR",
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            Self::Validation { .. } => 422,
            Self::Unauthenticated | Self::InvalidCredentials | Self::InvalidApiKey | Self::InvalidClient | Self::InvalidToken(_) => 401,
            Self::Forbidden(_) | Self::SsoRequired(_) | Self::MfaRequired(_) => 403,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::RateLimited { .. } => 429,
            Self::Unavailable(_) => 503,
            Self::Internal(_) => 500,
        }
    }

    /// What the caller may read. Internal errors are replaced by a generic sentence.
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => "Something went wrong on our side. Try again; if it keeps happening, tell the operator.".into(),
            other => other.to_string(),
        }
    }
}

/// Seconds a client should wait before retrying while the database is unreachable.
pub const UNAVAILABLE_RETRY_SECS: u64 = 2;

/// Whether a database error means "the database cannot be reached" (pool timeout, refused or broken
/// connection, server shutting down) rather than a fault in the query.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            // PostgreSQL: 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, 08xxx connection
            // exceptions. SQLite: SQLITE_BUSY (5) / SQLITE_LOCKED (6) after the busy timeout.
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            code.starts_with("57P") || code.starts_with("08") || code == "5" || code == "6"
        }
        _ => false,
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(err: sqlx::Error) -> Self {
        if is_unavailable(&err) {
            Self::Unavailable(err.to_string())
        } else {
            Self::internal("database", err)
        }
    }
}

impl From<ServiceError> for AppError {
    fn from(err: ServiceError) -> Self {
        match &err {
            ServiceError::Internal(detail) => tracing::error!(%detail, "internal error in server function"),
            ServiceError::Unavailable(detail) => tracing::warn!(%detail, "database unavailable in server function"),
            _ => {}
        }
        AppError::new(err.code(), err.public_message())
    }
}

/// Turns a unique-constraint violation into `Conflict(message)`; any other error stays internal.
pub fn on_conflict(err: sqlx::Error, message: &str) -> ServiceError {
    if let sqlx::Error::Database(db) = &err {
        if db.is_unique_violation() {
            return ServiceError::Conflict(message.to_string());
        }
    }
    err.into()
}
