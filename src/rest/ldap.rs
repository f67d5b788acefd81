//! `POST /api/auth/sso/ldap`: LDAP sign-in. JSON (an API client or the console's script) answers the envelope
//! with `redirectTo`; the console's plain HTML form (urlencoded) gets a 303 to where the sign-in goes, or back to
//! the form with the error code. The password is never echoed, logged or put in a URL.
use super::caller::Meta;
use super::envelope::{ok, ApiError};
use app::service::signin::{handoff::AppRequest, ldap, SsoFailure};
use app::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use super::openapi::{Envelope, RedirectTo};
use tower_sessions::Session;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LdapBody {
    connection_id: String,
    username: String,
    password: String,
    #[serde(default, alias = "returnTo")]
    return_to: Option<String>,
    #[serde(default, alias = "client_id")]
    client_id: Option<String>,
    #[serde(default, alias = "redirect_uri")]
    redirect_uri: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

fn status_of(f: &SsoFailure) -> StatusCode {
    match f.code {
        "ldap_invalid_credentials" => StatusCode::UNAUTHORIZED,
        "ldap_unavailable" | "ldap_tls_error" | "service_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        "rate_limited" => StatusCode::TOO_MANY_REQUESTS,
        "sso_connection_not_found" => StatusCode::NOT_FOUND,
        "application_invalid" => StatusCode::BAD_REQUEST,
        "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::FORBIDDEN,
    }
}

#[utoipa::path(
    post, path = "/auth/sso/ldap", tag = "sign-in", summary = "LDAP sign-in: JSON answers the envelope with where to go; the console's HTML form gets a 303",
    request_body(content((LdapBody = "application/json"), (LdapBody = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Signed in: send the browser to redirectTo", body = Envelope<RedirectTo>),
        (status = 303, description = "The HTML form: to where the sign-in goes, or back to the form with the error code"),
    ),
    security(())
)]
pub async fn sign_in(State(state): State<AppState>, session: Session, Meta(meta): Meta, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let form = super::is_form(&headers);
    let parsed: Result<LdapBody, String> =
        if form { serde_urlencoded::from_bytes(&body).map_err(|e| e.to_string()) } else { serde_json::from_slice(&body).map_err(|e| e.to_string()) };
    let b = match parsed {
        Ok(b) => b,
        Err(_) if form => return Redirect::to("/signin/ldap?error=ldap_form_incomplete").into_response(),
        Err(e) => {
            return ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", format!("Send {{\"connectionId\", \"username\", \"password\"}} as JSON: {e}")).into_response()
        }
    };
    let app = match (&b.client_id, &b.redirect_uri) {
        (Some(c), Some(r)) if !c.is_empty() => Some(AppRequest { client_id: c.clone(), redirect_uri: r.clone(), state: b.state.clone() }),
        _ => None,
    };
    let login = ldap::LdapLogin {
        connection_id: &b.connection_id,
        username: &b.username,
        password: &b.password,
        return_to: app::model::safe_return_to(b.return_to.as_deref()),
        app: app.as_ref(),
    };
    let result = ldap::sign_in(&state, &session, &login, &meta).await;
    match (result, form) {
        (Ok(to), true) => Redirect::to(&to).into_response(),
        (Ok(to), false) => ok(StatusCode::OK, "Signed in.", RedirectTo { redirect_to: to }),
        (Err(f), true) => {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            let typed: String = b.username.trim().chars().take(256).collect();
            q.append_pair("connection_id", &b.connection_id).append_pair("username", &typed).append_pair("error", f.code);
            if let Some(a) = &app {
                q.append_pair("client_id", &a.client_id).append_pair("redirect_uri", &a.redirect_uri);
                if let Some(s) = &a.state {
                    q.append_pair("state", s);
                }
            }
            if let Some(r) = app::model::safe_return_to(b.return_to.as_deref()) {
                q.append_pair("returnTo", &r);
            }
            Redirect::to(&format!("/signin/ldap?{}", q.finish())).into_response()
        }
        (Err(f), false) => {
            let (_, what, todo) = app::model::sign_in_error_text(f.code);
            ApiError::new(status_of(&f), f.code, format!("{what} {todo}")).into_response()
        }
    }
}
