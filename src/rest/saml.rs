//! The browser endpoints of SAML sign-in: SP metadata per connection, the one ACS of every org (the IdP's POST),
//! and `finish`, where the browser that started the sign-in collects it with its binding cookie.
use super::caller::Meta;
use super::envelope::{ApiError, Path};
use super::sso::{binding_cookie, cookie, error_page};
use app::service::oidc::binding_cookie_name;
use app::service::signin::saml;
use app::state::AppState;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use super::openapi::IdPath;
use tower_sessions::Session;

#[utoipa::path(
    get, path = "/auth/sso/saml/metadata/{id}", tag = "sign-in", summary = "The SAML service provider metadata of a connection (entity ID, ACS, signing and encryption certificates)",
    params(IdPath),
    responses((status = 200, description = "SAML metadata", body = String, content_type = "application/samlmetadata+xml")),
    security(())
)]
pub async fn metadata(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let xml = app::service::sso_connections::saml_metadata(&state, &id).await?;
    let mut resp = (StatusCode::OK, xml).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/samlmetadata+xml"));
    Ok(resp)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: String,
    #[serde(rename = "RelayState", default)]
    relay_state: Option<String>,
}

#[utoipa::path(
    post, path = "/auth/sso/saml/acs", tag = "sign-in", summary = "The one SAML assertion consumer service of every organization (HTTP-POST binding)",
    request_body(content = AcsForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "To /api/auth/sso/saml/finish, or /auth/error?code=…")),
    security(())
)]
pub async fn acs(State(state): State<AppState>, Meta(meta): Meta, form: Result<Form<AcsForm>, FormRejection>) -> Response {
    let Ok(Form(f)) = form else { return error_page("saml_malformed_response") };
    match saml::acs(&state, &f.saml_response, f.relay_state.as_deref(), &meta).await {
        Ok(ok) => {
            let enc: String = url::form_urlencoded::byte_serialize(ok.relay.as_bytes()).collect();
            // 303: the browser follows with a GET, which (unlike this cross-site POST) carries SameSite=Lax cookies.
            let mut resp = Redirect::to(&format!("/api/auth/sso/saml/finish?relay={enc}")).into_response();
            if let Some((name, token)) = ok.binding {
                if let Some(v) = binding_cookie(&state, &name, &token, 60) {
                    resp.headers_mut().insert(header::SET_COOKIE, v);
                }
            }
            resp
        }
        Err(f) => error_page(f.code),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FinishQuery {
    relay: String,
}

#[utoipa::path(
    get, path = "/auth/sso/saml/finish", tag = "sign-in", summary = "The browser that started a SAML sign-in collects it (with its binding cookie)",
    params(FinishQuery),
    responses((status = 303, description = "To where the sign-in goes, or /auth/error?code=…")),
    security(())
)]
pub async fn finish(
    State(state): State<AppState>,
    session: Session,
    q: Result<Query<FinishQuery>, QueryRejection>,
    headers: HeaderMap,
    Meta(meta): Meta,
) -> Response {
    let Ok(Query(q)) = q else { return error_page("sso_state_invalid") };
    let name = binding_cookie_name(state.settings.secure_cookies, &q.relay);
    let token = cookie(&headers, &name);
    let mut resp = match saml::finish(&state, &session, &q.relay, token.as_deref(), &meta).await {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(f) => error_page(f.code),
    };
    if token.is_some() {
        if let Some(v) = binding_cookie(&state, &name, "", 0) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}
