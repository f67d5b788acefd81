//! `/api/auth/*`: sign-up, password sign-in and sign-out. Success sets (or clears) the session cookie.
use super::caller::Meta;
use super::envelope::{ok, ApiError, Json};
use app::service::{auth, sessions};
use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tower_sessions::Session;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    email: String,
    password: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SignIn {
    email: String,
    password: String,
    /// A sign-in for a registered application: the answer then says where to send the browser (`redirectTo`).
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default)]
    state: Option<String>,
    /// The organization (slug or id) the application's session is for; needed when the user has several.
    #[serde(default)]
    organization: Option<String>,
}

pub async fn sign_up(State(state): State<AppState>, session: Session, Meta(meta): Meta, Json(body): Json<SignUp>) -> Result<Response, ApiError> {
    let user = auth::sign_up(&state, &body.name, &body.email, &body.password, &meta).await?;
    sessions::establish(&state, &session, &user, "password", None, &meta).await?;
    let me = app::model::Me { id: user.id, email: user.email, name: user.name, auth_method: "password".into(), mfa_pending: false, operator: false };
    Ok(ok(StatusCode::CREATED, "Account created and signed in", me))
}

pub async fn sign_in(State(state): State<AppState>, session: Session, Meta(meta): Meta, Json(body): Json<SignIn>) -> Result<Response, ApiError> {
    let user = auth::sign_in_password(&state, &body.email, &body.password, &meta).await?;
    let sid = sessions::establish(&state, &session, &user, "password", None, &meta).await?;
    let redirect_to = match &body.client_id {
        Some(client_id) => {
            let req = app::service::signin::handoff::AppRequest {
                client_id: client_id.clone(),
                redirect_uri: body.redirect_uri.clone().unwrap_or_default(),
                state: body.state.clone(),
            };
            Some(app::service::signin::handoff::after_password(&state, &user, &sid, &req, body.organization.as_deref()).await?)
        }
        None => None,
    };
    let mfa_pending = app::service::mfa::enrolled(&state, &user.id).await?;
    let me_id = user.id.clone();
    let me = app::model::Me { id: user.id, email: user.email, name: user.name, auth_method: "password".into(), mfa_pending, operator: app::repo::applications::is_operator(&state.db, &me_id).await.map_err(app::service::ServiceError::from)? };
    let message = if mfa_pending { "Password accepted. Finish signing in with your authenticator code (POST /api/auth/mfa/challenge)." } else { "Signed in" };
    let mut data = serde_json::to_value(&me).map_err(|e| app::service::ServiceError::internal("json", e))?;
    if let (Some(to), Some(obj)) = (redirect_to, data.as_object_mut()) {
        obj.insert("redirectTo".into(), serde_json::Value::String(to));
    }
    Ok(ok(StatusCode::OK, message, data))
}

pub async fn sign_out(State(state): State<AppState>, session: Session, Meta(meta): Meta) -> Result<Response, ApiError> {
    sessions::sign_out(&state, &session, &meta).await?;
    Ok(ok(StatusCode::OK, "Signed out", ()))
}
