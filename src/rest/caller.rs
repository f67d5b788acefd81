//! Extractors for the caller: `Caller` (authenticated by `X-Api-Key` or the session cookie) and `Meta`
//! (client address and user agent, for rate limits, sessions and the audit log).
use super::envelope::ApiError;
use app::service::{self, Principal, RequestMeta};
use app::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::net::SocketAddr;
use tower_sessions::Session;

pub struct Meta(pub RequestMeta);

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Meta(RequestMeta { ip, user_agent }))
    }
}

pub struct Caller {
    pub principal: Principal,
    pub meta: RequestMeta,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Meta(meta) = Meta::from_request_parts(parts, state).await?;
        let api_key = match parts.headers.get("x-api-key") {
            Some(v) => Some(v.to_str().map_err(|_| ApiError::from(service::ServiceError::InvalidApiKey))?.to_string()),
            None => None,
        };
        let session_id = match parts.extensions.get::<Session>() {
            Some(session) => service::sessions::current_id(session).await,
            None => None,
        };
        let principal = service::auth::authenticate(state, session_id.as_deref(), api_key.as_deref()).await?;
        Ok(Caller { principal, meta })
    }
}
