//! CSRF guard for cookie-authenticated writes: a state-changing request from another site is refused.
//! SameSite=Lax cookies already stop most; this also covers same-site subdomains and old browsers.
use crate::rest::envelope::ApiError;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub async fn guard(State(public_origin): State<Arc<String>>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    // An API key is not ambient authority: a browser never attaches it by itself.
    // The SAML ACS is posted by the IdP's page from another site by design. It reads no cookie (no ambient
    // authority): the response is proven by its signature, and the browser that started the sign-in is checked
    // afterwards, on a same-site GET (`/api/auth/sso/saml/finish`), with its binding cookie.
    if safe || req.headers().contains_key("x-api-key") || req.uri().path() == SAML_ACS_PATH {
        return next.run(req).await;
    }
    let h = req.headers();
    let origin = h.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let fetch_site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let allowed = match origin {
        Some(o) => o == public_origin.as_str() || o == format!("http://{host}") || o == format!("https://{host}"),
        None => fetch_site != Some("cross-site"),
    };
    if allowed {
        next.run(req).await
    } else {
        tracing::warn!(origin, host, "cross-site write refused");
        ApiError::new(
            StatusCode::FORBIDDEN,
            "CSRF_REJECTED",
            "Cross-site request refused: submit changes from the Latchkey console itself, or call the API with X-Api-Key.",
        )
        .into_response()
    }
}

pub const SAML_ACS_PATH: &str = "/api/auth/sso/saml/acs";

/// `scheme://host[:port]` of a URL, as browsers send it in `Origin`.
pub fn origin_of(url: &str) -> String {
    url::Url::parse(url).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
}
