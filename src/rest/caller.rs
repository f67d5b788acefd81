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

impl FromRequestParts<AppState> for Meta {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        Ok(Meta(service::principal::request_meta(peer, &parts.headers, &state.settings.trusted_proxies)))
    }
}

pub struct Caller {
    pub principal: Principal,
    pub meta: RequestMeta,
}

/// Authenticates the request by `X-Api-Key` or the session cookie; `partial` lets a session that still owes its
/// second factor through.
async fn resolve(parts: &mut Parts, state: &AppState, partial: bool) -> Result<(Principal, RequestMeta), ApiError> {
    let Meta(meta) = Meta::from_request_parts(parts, state).await?;
    let api_key = match parts.headers.get("x-api-key") {
        Some(v) => Some(v.to_str().map_err(|_| ApiError::from(service::ServiceError::InvalidApiKey))?.to_string()),
        None => None,
    };
    let session_id = match parts.extensions.get::<Session>() {
        Some(session) => service::sessions::current_id(session).await?,
        None => None,
    };
    let principal = if partial {
        service::auth::authenticate_partial(state, session_id.as_deref(), api_key.as_deref()).await?
    } else {
        service::auth::authenticate(state, session_id.as_deref(), api_key.as_deref()).await?
    };
    Ok((principal, meta))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (principal, meta) = resolve(parts, state, false).await?;
        Ok(Caller { principal, meta })
    }
}

/// Like `Caller`, but also lets through a session that still owes its second factor: only for `me`, the MFA
/// challenge and sign-out.
pub struct PartialCaller {
    pub principal: Principal,
    pub meta: RequestMeta,
}

impl FromRequestParts<AppState> for PartialCaller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (principal, meta) = resolve(parts, state, true).await?;
        Ok(PartialCaller { principal, meta })
    }
}
