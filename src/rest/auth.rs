//! `/api/auth/*`: sign-up, password sign-in and sign-out. Success sets (or clears) the session cookie.
use super::caller::Meta;
use super::envelope::{ok, ApiError, Json};
use app::service::{auth, sessions};
use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use super::openapi::{Done, Envelope};
use app::model::Me;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    email: String,
    password: String,
    name: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
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

/// The answer of a password sign-in: the user, and for an application's sign-in where the browser goes next.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedIn {
    #[serde(flatten)]
    me: Me,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_to: Option<String>,
}

#[utoipa::path(
    post, path = "/auth/signup", tag = "auth", summary = "Create an account and sign in (sets the session cookie)",
    request_body = SignUp,
    responses((status = 201, description = "The new user, signed in", body = Envelope<Me>)),
    security(())
)]
pub async fn sign_up(State(state): State<AppState>, session: Session, Meta(meta): Meta, Json(body): Json<SignUp>) -> Result<Response, ApiError> {
    let user = auth::sign_up(&state, &body.name, &body.email, &body.password, &meta).await?;
    sessions::establish(&state, &session, &user, "password", None, &meta).await?;
    let me = app::model::Me { id: user.id, email: user.email, name: user.name, auth_method: "password".into(), mfa_pending: false, operator: false };
    Ok(ok(StatusCode::CREATED, "Account created and signed in", me))
}

#[utoipa::path(
    post, path = "/auth/signin", tag = "auth", summary = "Password sign-in (sets the session cookie); with an application's client_id and redirect_uri the answer says where to send the browser",
    request_body = SignIn,
    responses((status = 200, description = "Signed in; `mfaPending` says a second factor is still owed", body = Envelope<SignedIn>)),
    security(())
)]
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
    Ok(ok(StatusCode::OK, message, SignedIn { me, redirect_to }))
}

#[utoipa::path(
    post, path = "/auth/signout", tag = "auth", summary = "End the current session",
    responses((status = 200, description = "Signed out", body = Done)),
    security(())
)]
pub async fn sign_out(State(state): State<AppState>, session: Session, Meta(meta): Meta) -> Result<Response, ApiError> {
    sessions::sign_out(&state, &session, &meta).await?;
    Ok(ok(StatusCode::OK, "Signed out", ()))
}
