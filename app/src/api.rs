//! Server functions: the console's calls into the service layer. Each one extracts the caller, calls one
//! service function and returns its result; no rule lives here.
use crate::error::AppError;
use crate::model::*;
use leptos::prelude::*;

/// A form's comma-separated list (domains), trimmed, without empty entries.
#[cfg(feature = "ssr")]
fn comma_list(raw: &str) -> Vec<String> {
    raw.split(',').map(|d| d.trim().to_string()).filter(|d| !d.is_empty()).collect()
}

#[cfg(feature = "ssr")]
pub mod ctx {
    //! Request context for server functions: state, the tower-sessions session, the caller.
    use crate::error::AppError;
    use crate::service::{self, Principal, RequestMeta};
    use crate::state::AppState;
    use leptos::prelude::*;
    use tower_sessions::Session;

    pub fn state() -> Result<AppState, AppError> {
        use_context::<AppState>().ok_or_else(|| AppError::new("INTERNAL_ERROR", "Server state is missing."))
    }

    pub async fn session() -> Result<Session, AppError> {
        leptos_axum::extract::<Session>()
            .await
            .map_err(|_| AppError::new("INTERNAL_ERROR", "Sessions are not available."))
    }

    pub async fn meta() -> RequestMeta {
        let headers = leptos_axum::extract::<axum::http::HeaderMap>().await.unwrap_or_default();
        let peer = leptos_axum::extract::<axum::extract::ConnectInfo<std::net::SocketAddr>>().await.ok().map(|c| c.0.ip());
        let trusted = state().map(|s| s.settings.trusted_proxies.clone()).unwrap_or_default();
        service::principal::request_meta(peer, &headers, &trusted)
    }

    /// What one console request works out once, however many server functions its page calls while it is rendered
    /// (a page asks for the caller in every resource, and may render its signed-in part twice): the caller, the
    /// notices taken out of the session, a TOTP enrolment begun. Provided fresh for every request (see `startup`).
    /// Only successes are kept: a render that Leptos throws away can fail for want of its context, and that
    /// failure must not become the answer of the render that is shown.
    #[derive(Clone, Default)]
    pub struct RequestScope {
        caller: std::sync::Arc<tokio::sync::OnceCell<Principal>>,
        partial_caller: std::sync::Arc<tokio::sync::OnceCell<Principal>>,
        notices: std::sync::Arc<tokio::sync::Mutex<std::collections::HashMap<String, Option<crate::model::Notice>>>>,
        enrollment: std::sync::Arc<tokio::sync::OnceCell<crate::model::MfaEnrollment>>,
    }

    /// Runs `begin` once per request (two renders at once would each start a different secret), or directly when
    /// there is no request scope.
    pub async fn enrollment_once<F, Fut>(begin: F) -> Result<crate::model::MfaEnrollment, AppError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<crate::model::MfaEnrollment, AppError>>,
    {
        match use_context::<RequestScope>() {
            Some(scope) => scope.enrollment.get_or_try_init(begin).await.cloned(),
            None => begin().await,
        }
    }

    async fn caller(partial: bool) -> Result<(AppState, Principal), AppError> {
        let state = state()?;
        let authenticate = || async {
            let session = session().await?;
            let id = service::sessions::current_id(&session).await?;
            let p = if partial {
                service::auth::authenticate_partial(&state, id.as_deref(), None).await?
            } else {
                service::auth::authenticate(&state, id.as_deref(), None).await?
            };
            Ok::<_, AppError>(p)
        };
        let p = match use_context::<RequestScope>() {
            Some(scope) => {
                let cell = if partial { &scope.partial_caller } else { &scope.caller };
                cell.get_or_try_init(authenticate).await?.clone()
            }
            None => authenticate().await?,
        };
        Ok((state, p))
    }

    /// The signed-in caller of this console request.
    pub async fn principal() -> Result<(AppState, Principal), AppError> {
        caller(false).await
    }

    /// Like `principal`, also for a session that still owes its second factor (the MFA page only).
    pub async fn partial_principal() -> Result<(AppState, Principal), AppError> {
        caller(true).await
    }

    /// How long a notice waits for its page (a browser that never follows the redirect leaves it behind).
    const NOTICE_TTL_MS: i64 = 10 * 60 * 1000;

    /// Keeps `notice` for the next render of the page that shows it, sealed (it may carry a secret shown once).
    /// Bound to the user who caused it: another person signing in on the same browser never sees it.
    pub async fn put_notice(user_id: &str, notice: &crate::model::Notice) -> Result<(), AppError> {
        let state = state()?;
        let json = serde_json::to_vec(&(service::now_ms(), user_id, notice)).map_err(|_| AppError::new("INTERNAL_ERROR", "Could not keep the result."))?;
        let sealed = state.secrets.seal(&json, &format!("notice:{}", notice.kind()))?;
        session()
            .await?
            .insert(&format!("notice:{}", notice.kind()), hex::encode(sealed))
            .await
            .map_err(|_| AppError::new("INTERNAL_ERROR", "Could not keep the result."))
    }

    /// Takes the notice of `kind` out of the session, if one is there and still fresh (once per request).
    pub async fn take_notice(kind: &str) -> Result<Option<crate::model::Notice>, AppError> {
        // Once per request (a page may render twice); held across the take, so two renders at once do not
        // both go to the session.
        let scope = use_context::<RequestScope>();
        let mut cache = match &scope {
            Some(s) => Some(s.notices.lock().await),
            None => None,
        };
        if let Some(seen) = cache.as_ref().and_then(|m| m.get(kind).cloned()) {
            return Ok(seen);
        }
        // Only a signed-in caller takes notices, and only their own; a database outage stays an error.
        let (state, caller) = match caller(true).await {
            Ok(found) => found,
            Err(e) if e.is_unauthenticated() => return Ok(None),
            Err(e) => return Err(e),
        };
        // Read first: removing marks the session changed, and most page views have no notice to take.
        let (session, key) = (session().await?, format!("notice:{kind}"));
        let stored = match session.get::<String>(&key).await {
            Ok(Some(_)) => session.remove::<String>(&key).await.ok().flatten(),
            _ => None,
        };
        let opened = stored.and_then(|s| hex::decode(s).ok()).and_then(|sealed| state.secrets.open(&sealed, &format!("notice:{kind}")).ok());
        let parsed = opened.and_then(|json| serde_json::from_slice::<(i64, String, crate::model::Notice)>(&json).ok());
        let notice = parsed
            .filter(|(at, user_id, n)| service::now_ms() - at < NOTICE_TTL_MS && *user_id == caller.user_id && n.kind() == kind)
            .map(|(_, _, n)| n);
        if let Some(map) = cache.as_mut() {
            map.insert(kind.to_string(), notice.clone());
        }
        Ok(notice)
    }

}

/// The signed-in user, or `None` when this browser is not signed in.
#[server(prefix = "/sfn", endpoint = "current_user")]
pub async fn current_user() -> Result<Option<Me>, AppError> {
    match ctx::partial_principal().await {
        Ok((state, p)) => Ok(Some(crate::service::auth::me(&state, &p).await?)),
        Err(e) if e.is_unauthenticated() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The notice of `kind` a form left for this page (see `Notice`), taken out as it is shown.
#[server(prefix = "/sfn", endpoint = "take_notice")]
pub async fn take_notice(kind: String) -> Result<Option<Notice>, AppError> {
    ctx::take_notice(&kind).await
}

/// The password step; with `client_id` (the hosted sign-in page of an application) it ends in the hand-off.
#[server(prefix = "/sfn", endpoint = "sign_in")]
pub async fn sign_in(
    email: String,
    password: String,
    #[server(default)] client_id: Option<String>,
    #[server(default)] redirect_uri: Option<String>,
    #[server(default)] state: Option<String>,
    #[server(default)] organization: Option<String>,
) -> Result<(), AppError> {
    use crate::service::{auth, sessions};
    let app_state = ctx::state()?;
    let meta = ctx::meta().await;
    let user = auth::sign_in_password(&app_state, &email, &password, &meta).await?;
    let sid = sessions::establish(&app_state, &ctx::session().await?, &user, "password", None, &meta).await?;
    if let Some(client_id) = client_id.filter(|c| !c.is_empty()) {
        let req = crate::service::signin::handoff::AppRequest { client_id, redirect_uri: redirect_uri.unwrap_or_default(), state };
        let to = crate::service::signin::handoff::after_password(&app_state, &user, &sid, &req, organization.as_deref()).await?;
        leptos_axum::redirect(&to);
        return Ok(());
    }
    let mfa = crate::service::mfa::enrolled(&app_state, &user.id).await?;
    leptos_axum::redirect(if mfa { "/mfa?next=/orgs" } else { "/orgs" });
    Ok(())
}

#[server(prefix = "/sfn", endpoint = "sign_up")]
pub async fn sign_up(name: String, email: String, password: String) -> Result<(), AppError> {
    use crate::service::{auth, sessions};
    let state = ctx::state()?;
    let meta = ctx::meta().await;
    let user = auth::sign_up(&state, &name, &email, &password, &meta).await?;
    sessions::establish(&state, &ctx::session().await?, &user, "password", None, &meta).await?;
    leptos_axum::redirect("/orgs");
    Ok(())
}

#[server(prefix = "/sfn", endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    let state = ctx::state()?;
    crate::service::sessions::sign_out(&state, &ctx::session().await?, &ctx::meta().await).await?;
    leptos_axum::redirect("/signin");
    Ok(())
}

#[server(prefix = "/sfn", endpoint = "list_orgs")]
pub async fn list_orgs() -> Result<Vec<OrgSummary>, AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::orgs::list_mine(&state, &p).await?)
}

#[server(prefix = "/sfn", endpoint = "create_org")]
pub async fn create_org(name: String, slug: String) -> Result<OrgSummary, AppError> {
    let (state, p) = ctx::principal().await?;
    let org = crate::service::orgs::create(&state, &p, &name, Some(&slug), &ctx::meta().await).await?;
    leptos_axum::redirect(&format!("/orgs/{}", org.id));
    Ok(org)
}

#[server(prefix = "/sfn", endpoint = "get_org_detail")]
pub async fn get_org_detail(org_id: String) -> Result<OrgDetail, AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::orgs::detail(&state, &p, &org_id).await?)
}

#[server(prefix = "/sfn", endpoint = "list_members")]
pub async fn list_members(org_id: String) -> Result<Vec<Member>, AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::orgs::members(&state, &p, &org_id).await?)
}

#[server(prefix = "/sfn", endpoint = "list_api_keys")]
pub async fn list_api_keys() -> Result<Vec<ApiKeyInfo>, AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::api_keys::list(&state, &p).await?)
}

#[server(prefix = "/sfn", endpoint = "create_api_key")]
pub async fn create_api_key(name: String, organization_id: Option<String>) -> Result<CreatedApiKey, AppError> {
    let (state, p) = ctx::principal().await?;
    let created = crate::service::api_keys::create(&state, &p, &name, organization_id.as_deref(), &ctx::meta().await).await?;
    ctx::put_notice(&p.user_id, &Notice::ApiKeyCreated(created.clone())).await?;
    Ok(created)
}

#[server(prefix = "/sfn", endpoint = "revoke_api_key")]
pub async fn revoke_api_key(id: String) -> Result<(), AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::api_keys::revoke(&state, &p, &id, &ctx::meta().await).await?)
}

#[server(prefix = "/sfn", endpoint = "list_my_sessions")]
pub async fn list_my_sessions() -> Result<Vec<SessionInfo>, AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::sessions::list_mine(&state, &p).await?)
}

#[server(prefix = "/sfn", endpoint = "get_sso_page")]
pub async fn get_sso_page(org_id: String) -> Result<SsoPage, AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::connections::sso_page(&state, &p, &org_id).await?)
}

/// An empty `client_secret` keeps the stored one (the field is never filled in by the page).
#[server(prefix = "/sfn", endpoint = "save_sso_settings")]
pub async fn save_sso_settings(
    org_id: String,
    provider: String,
    issuer_url: String,
    client_id: String,
    client_secret: String,
) -> Result<SsoSettings, AppError> {
    let (state, p) = ctx::principal().await?;
    let secret = Some(client_secret.as_str()).filter(|s| !s.is_empty());
    Ok(crate::service::connections::put_sso(&state, &p, &org_id, &provider, &issuer_url, &client_id, secret, &ctx::meta().await).await?)
}

#[server(prefix = "/sfn", endpoint = "test_sso_settings")]
pub async fn test_sso_settings(org_id: String) -> Result<SsoTestResult, AppError> {
    let (state, p) = ctx::principal().await?;
    let result = crate::service::connections::test_sso(&state, &p, &org_id, &ctx::meta().await).await?;
    ctx::put_notice(&p.user_id, &Notice::SsoTested(org_id.clone(), result.clone())).await?;
    Ok(result)
}

#[server(prefix = "/sfn", endpoint = "delete_sso_settings")]
pub async fn delete_sso_settings(org_id: String) -> Result<(), AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::connections::delete_sso(&state, &p, &org_id, &ctx::meta().await).await?)
}

#[server(prefix = "/sfn", endpoint = "get_connections")]
pub async fn get_connections(org_id: String) -> Result<Vec<ConnectionInfo>, AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::sso_connections::list(&state, &p, &org_id).await?)
}

/// The console's "Add a SAML connection": metadata by URL or pasted XML, and the domains it serves (comma-separated).
#[server(prefix = "/sfn", endpoint = "create_saml_connection")]
pub async fn create_saml_connection(org_id: String, name: String, metadata_url: String, metadata_xml: String, domains: String) -> Result<ConnectionInfo, AppError> {
    let (state, p) = ctx::principal().await?;
    let input = ConnectionInput {
        name: Some(name),
        protocol: Some("saml".into()),
        metadata_url: Some(metadata_url).filter(|u| !u.trim().is_empty()),
        metadata_xml: Some(metadata_xml).filter(|x| !x.trim().is_empty()),
        domains: Some(comma_list(&domains)),
        ..Default::default()
    };
    Ok(crate::service::sso_connections::create(&state, &p, &org_id, &input, &ctx::meta().await).await?)
}

/// The console's "Add an LDAP connection": the chosen template fills the filter and attribute names.
#[server(prefix = "/sfn", endpoint = "create_ldap_connection")]
pub async fn create_ldap_connection(
    org_id: String,
    preset: String,
    name: String,
    server_url: String,
    ca_certificate: String,
    bind_dn: String,
    bind_password: String,
    user_base_dn: String,
    domains: String,
) -> Result<ConnectionInfo, AppError> {
    let (state, p) = ctx::principal().await?;
    let t = LDAP_PRESETS.iter().find(|t| t.0 == preset).unwrap_or(&LDAP_PRESETS[0]);
    let input = ConnectionInput {
        name: Some(name),
        protocol: Some("ldap".into()),
        server_url: Some(server_url),
        ca_certificate: Some(ca_certificate),
        bind_dn: Some(bind_dn),
        bind_password: Some(bind_password),
        user_base_dn: Some(user_base_dn),
        user_filter: Some(t.2.into()),
        subject_attribute: Some(t.3.into()),
        email_attribute: Some(t.4.into()),
        name_attribute: Some(t.5.into()),
        group_attribute: Some(t.6.into()),
        domains: Some(comma_list(&domains)),
        ..Default::default()
    };
    Ok(crate::service::sso_connections::create(&state, &p, &org_id, &input, &ctx::meta().await).await?)
}

/// A connection's test from its card (an LDAP connection also searches for the sample name); the result, with
/// its steps, is shown on the card after the redirect.
#[server(prefix = "/sfn", endpoint = "test_connection")]
pub async fn test_connection(org_id: String, id: String, username: Option<String>) -> Result<ConnectionTest, AppError> {
    let (state, p) = ctx::principal().await?;
    let r = crate::service::sso_connections::test(&state, &p, &org_id, &id, username.as_deref(), &ctx::meta().await).await?;
    ctx::put_notice(&p.user_id, &Notice::ConnectionTested(id, r.clone())).await?;
    Ok(r)
}

/// The group -> role table of a SAML or LDAP connection, one `group = role` per line.
#[server(prefix = "/sfn", endpoint = "set_group_roles")]
pub async fn set_group_roles(org_id: String, id: String, rules: String, required: Option<String>) -> Result<ConnectionInfo, AppError> {
    let (state, p) = ctx::principal().await?;
    let rules = parse_group_lines(&rules).map_err(|m| AppError::new("VALIDATION_ERROR", m))?;
    let input = ConnectionInput { group_roles: Some(rules), groups_required: Some(required.is_some()), ..Default::default() };
    Ok(crate::service::sso_connections::update(&state, &p, &org_id, &id, &input, &ctx::meta().await).await?)
}

/// One page of the org's audit log for the console (owners and admins); a `datetime-local` value is read as UTC.
#[server(prefix = "/sfn", endpoint = "get_audit_page")]
pub async fn get_audit_page(
    org_id: String,
    action: String,
    actor: String,
    outcome: String,
    since: String,
    until: String,
    cursor: String,
) -> Result<AuditPage, AppError> {
    let (state, p) = ctx::principal().await?;
    let some = |v: String| Some(v).filter(|v| !v.trim().is_empty());
    // `2026-11-24T09:00` (a datetime-local field) has no offset: UTC.
    let time = |v: String| some(v).map(|v| if v.len() == 16 { format!("{v}:00Z") } else { v });
    let q = AuditQuery { action: some(action), actor: some(actor), outcome: some(outcome), since: time(since), until: time(until), cursor: some(cursor), limit: Some(50), ..Default::default() };
    Ok(crate::service::audit::list(&state, &p, &org_id, &q).await?)
}

#[server(prefix = "/sfn", endpoint = "make_default_connection")]
pub async fn make_default_connection(org_id: String, id: String) -> Result<ConnectionInfo, AppError> {
    let (state, p) = ctx::principal().await?;
    let input = ConnectionInput { is_default: Some(true), ..Default::default() };
    Ok(crate::service::sso_connections::update(&state, &p, &org_id, &id, &input, &ctx::meta().await).await?)
}

#[server(prefix = "/sfn", endpoint = "delete_connection")]
pub async fn delete_connection(org_id: String, id: String) -> Result<(), AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::sso_connections::delete(&state, &p, &org_id, &id, &ctx::meta().await).await?)
}

#[server(prefix = "/sfn", endpoint = "get_domains_page")]
pub async fn get_domains_page(org_id: String) -> Result<DomainsPage, AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::domains::page(&state, &p, &org_id).await?)
}

#[server(prefix = "/sfn", endpoint = "add_domain")]
pub async fn add_domain(org_id: String, domain: String) -> Result<DomainInfo, AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::domains::add(&state, &p, &org_id, &domain, &ctx::meta().await).await?)
}

#[server(prefix = "/sfn", endpoint = "verify_domain")]
pub async fn verify_domain(org_id: String, id: String) -> Result<DomainInfo, AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::domains::verify_now(&state, &p, &org_id, &id, &ctx::meta().await).await?)
}

#[server(prefix = "/sfn", endpoint = "delete_domain")]
pub async fn delete_domain(org_id: String, id: String) -> Result<(), AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::domains::delete(&state, &p, &org_id, &id, &ctx::meta().await).await?)
}

#[server(prefix = "/sfn", endpoint = "set_domain_auto_join")]
pub async fn set_domain_auto_join(org_id: String, id: String, auto_join: String) -> Result<DomainInfo, AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::domains::set_auto_join(&state, &p, &org_id, &id, &auto_join, &ctx::meta().await).await?)
}

#[server(prefix = "/sfn", endpoint = "list_join_requests")]
pub async fn list_join_requests(org_id: String) -> Result<Vec<JoinRequestInfo>, AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::domains::join_requests(&state, &p, &org_id).await?)
}

/// `decision` is `approve` or `deny`.
#[server(prefix = "/sfn", endpoint = "decide_join_request")]
pub async fn decide_join_request(org_id: String, id: String, decision: String) -> Result<JoinRequestInfo, AppError> {
    let (state, p) = ctx::principal().await?;
    let approve = match decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return Err(AppError::new("VALIDATION_ERROR", "decision must be approve or deny.")),
    };
    Ok(crate::service::domains::decide(&state, &p, &org_id, &id, approve, &ctx::meta().await).await?)
}

#[server(prefix = "/sfn", endpoint = "my_join_requests")]
pub async fn my_join_requests() -> Result<Vec<JoinRequestInfo>, AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::domains::my_join_requests(&state, &p).await?)
}

#[server(prefix = "/sfn", endpoint = "get_mfa_status")]
pub async fn get_mfa_status() -> Result<MfaStatus, AppError> {
    let (state, p) = ctx::partial_principal().await?;
    Ok(crate::service::mfa::status(&state, &p).await?)
}

/// The session key under which a browser remembers which pending TOTP secret it was shown (a fingerprint only).
#[cfg(feature = "ssr")]
const MFA_PENDING_KEY: &str = "mfa_pending";

#[server(prefix = "/sfn", endpoint = "begin_mfa_enrollment")]
pub async fn begin_mfa_enrollment() -> Result<MfaEnrollment, AppError> {
    ctx::enrollment_once(begin_enrollment_here).await
}

#[cfg(feature = "ssr")]
async fn begin_enrollment_here() -> Result<MfaEnrollment, AppError> {
    let (state, p) = ctx::principal().await?;
    // The page is rendered again after a mistyped code: it keeps showing the key this browser was shown (its
    // fingerprint rides in this browser's session; a key begun elsewhere is replaced).
    let session = ctx::session().await?;
    let shown = session.get::<String>(MFA_PENDING_KEY).await.ok().flatten();
    let (enrollment, fingerprint) = crate::service::mfa::begin_enrollment(&state, &p, shown.as_deref()).await?;
    if shown.as_deref() != Some(fingerprint.as_str()) {
        session.insert(MFA_PENDING_KEY, fingerprint).await.map_err(|_| AppError::new("INTERNAL_ERROR", "Could not start enrolment."))?;
    }
    Ok(enrollment)
}

#[server(prefix = "/sfn", endpoint = "confirm_mfa_enrollment")]
pub async fn confirm_mfa_enrollment(code: String) -> Result<Vec<String>, AppError> {
    let (state, p) = ctx::principal().await?;
    let codes = crate::service::mfa::confirm_enrollment(&state, &p, &code, &ctx::meta().await).await?;
    ctx::put_notice(&p.user_id, &Notice::RecoveryCodes(codes.clone())).await?;
    Ok(codes)
}

#[server(prefix = "/sfn", endpoint = "mfa_challenge")]
pub async fn mfa_challenge(code: String, #[server(default)] next: Option<String>) -> Result<(), AppError> {
    let (state, p) = ctx::partial_principal().await?;
    crate::service::mfa::challenge(&state, &p, &code, &ctx::meta().await).await?;
    leptos_axum::redirect(&safe_return_to(next.as_deref()).unwrap_or_else(|| "/orgs".into()));
    Ok(())
}

#[server(prefix = "/sfn", endpoint = "disable_mfa")]
pub async fn disable_mfa(code: String) -> Result<(), AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::mfa::disable(&state, &p, &code, &ctx::meta().await).await?)
}

#[server(prefix = "/sfn", endpoint = "get_security_page")]
pub async fn get_security_page(org_id: String) -> Result<SecurityPage, AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::policy::page(&state, &p, &org_id).await?)
}

/// Checkbox fields arrive only when ticked: `require_mfa` and the exempt roles are optional.
#[server(prefix = "/sfn", endpoint = "save_security_policy")]
pub async fn save_security_policy(
    org_id: String,
    auth_required: String,
    require_mfa: Option<String>,
    exempt_owner: Option<String>,
    exempt_admin: Option<String>,
    exempt_member: Option<String>,
) -> Result<SecurityPolicy, AppError> {
    let (state, p) = ctx::principal().await?;
    let roles: Vec<String> = [("owner", exempt_owner), ("admin", exempt_admin), ("member", exempt_member)]
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .map(|(r, _)| r.to_string())
        .collect();
    let policy = crate::service::policy::put_security(&state, &p, &org_id, &auth_required, require_mfa.is_some(), &roles, &ctx::meta().await).await?;
    ctx::put_notice(&p.user_id, &Notice::PolicySaved(org_id.clone())).await?;
    Ok(policy)
}

#[server(prefix = "/sfn", endpoint = "list_org_sessions")]
pub async fn list_org_sessions(org_id: String) -> Result<Vec<OrgSessionInfo>, AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::policy::org_sessions(&state, &p, &org_id).await?)
}

#[server(prefix = "/sfn", endpoint = "revoke_org_session")]
pub async fn revoke_org_session(org_id: String, id: String) -> Result<(), AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::policy::revoke_org_session(&state, &p, &org_id, &id, &ctx::meta().await).await?)
}

/// One redirect URI per line (the console's textarea), as a list.
#[cfg(feature = "ssr")]
fn lines(raw: &str) -> Vec<String> {
    raw.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

#[server(prefix = "/sfn", endpoint = "list_applications")]
pub async fn list_applications() -> Result<Vec<ApplicationInfo>, AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::applications::list(&state, &p).await?)
}

#[server(prefix = "/sfn", endpoint = "create_application")]
pub async fn create_application(name: String, redirect_uris: String, mfa_handling: String) -> Result<ApplicationWithSecret, AppError> {
    let (state, p) = ctx::principal().await?;
    let input = crate::service::applications::ApplicationInput {
        name: Some(name),
        redirect_uris: Some(lines(&redirect_uris)),
        mfa_handling: Some(mfa_handling),
        ..Default::default()
    };
    let created = crate::service::applications::create(&state, &p, &input, &ctx::meta().await).await?;
    ctx::put_notice(&p.user_id, &Notice::ApplicationCreated(created.clone())).await?;
    Ok(created)
}

#[server(prefix = "/sfn", endpoint = "update_redirect_uris")]
pub async fn update_redirect_uris(id: String, redirect_uris: String) -> Result<ApplicationInfo, AppError> {
    let (state, p) = ctx::principal().await?;
    let input = crate::service::applications::ApplicationInput { redirect_uris: Some(lines(&redirect_uris)), ..Default::default() };
    Ok(crate::service::applications::update(&state, &p, &id, &input, &ctx::meta().await).await?)
}

#[server(prefix = "/sfn", endpoint = "rotate_application_secret")]
pub async fn rotate_application_secret(id: String) -> Result<ApplicationWithSecret, AppError> {
    let (state, p) = ctx::principal().await?;
    let rotated = crate::service::applications::rotate_secret(&state, &p, &id, &ctx::meta().await).await?;
    ctx::put_notice(&p.user_id, &Notice::SecretRotated(rotated.clone())).await?;
    Ok(rotated)
}

#[server(prefix = "/sfn", endpoint = "delete_application")]
pub async fn delete_application(id: String) -> Result<(), AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::applications::delete(&state, &p, &id, &ctx::meta().await).await?)
}

#[server(prefix = "/sfn", endpoint = "list_providers")]
pub async fn list_providers() -> Result<Vec<ProviderInfo>, AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::providers::list(&state, &p).await?)
}

/// The console's "Add a sign-in provider" form (operators only). Empty endpoint fields are not set; the checkbox
/// is absent when unticked.
#[server(prefix = "/sfn", endpoint = "create_provider")]
#[allow(clippy::too_many_arguments)]
pub async fn create_provider(
    name: String,
    slug: String,
    kind: String,
    client_id: String,
    client_secret: String,
    issuer: Option<String>,
    auth_url: Option<String>,
    token_url: Option<String>,
    userinfo_url: Option<String>,
    scopes: Option<String>,
    allowed_domains: Option<String>,
    auto_register: Option<String>,
) -> Result<ProviderInfo, AppError> {
    let (state, p) = ctx::principal().await?;
    let set = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let input = crate::service::providers::ProviderInput {
        name: Some(name),
        slug: Some(slug),
        kind: Some(kind),
        client_id: Some(client_id),
        client_secret: Some(client_secret),
        issuer: set(issuer),
        auth_url: set(auth_url),
        token_url: set(token_url),
        userinfo_url: set(userinfo_url),
        scopes: set(scopes),
        allowed_domains: Some(comma_list(&allowed_domains.unwrap_or_default())),
        auto_register: Some(auto_register.is_some()),
    };
    Ok(crate::service::providers::create(&state, &p, &input, &ctx::meta().await).await?)
}

#[server(prefix = "/sfn", endpoint = "delete_provider")]
pub async fn delete_provider(id: String) -> Result<(), AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::providers::delete(&state, &p, &id, &ctx::meta().await).await?)
}

#[server(prefix = "/sfn", endpoint = "test_provider")]
pub async fn test_provider(id: String) -> Result<SsoTestResult, AppError> {
    let (state, p) = ctx::principal().await?;
    let r = crate::service::providers::test(&state, &p, &id, &ctx::meta().await).await?;
    ctx::put_notice(&p.user_id, &Notice::ProviderTested(id, r.clone())).await?;
    Ok(r)
}

/// The console's "Edit" form of a provider: empty fields keep their value (the secret too).
#[server(prefix = "/sfn", endpoint = "update_provider")]
pub async fn update_provider(
    id: String,
    name: Option<String>,
    scopes: Option<String>,
    allowed_domains: Option<String>,
    auto_register: Option<String>,
    client_secret: Option<String>,
) -> Result<ProviderInfo, AppError> {
    let (state, p) = ctx::principal().await?;
    let set = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let input = crate::service::providers::ProviderInput {
        name: set(name),
        scopes: set(scopes),
        client_secret: set(client_secret),
        allowed_domains: Some(comma_list(&allowed_domains.unwrap_or_default())),
        auto_register: Some(auto_register.is_some()),
        ..Default::default()
    };
    Ok(crate::service::providers::update(&state, &p, &id, &input, &ctx::meta().await).await?)
}

/// The "Continue with …" buttons of the sign-in page (public).
#[server(prefix = "/sfn", endpoint = "sign_in_providers")]
pub async fn sign_in_providers() -> Result<Vec<ProviderButton>, AppError> {
    let state = ctx::state()?;
    Ok(crate::service::workspace_sso::buttons(&state).await?)
}

/// The org's workspace SSO, or `None` when it uses no instance provider (owners only).
#[server(prefix = "/sfn", endpoint = "get_workspace_sso")]
pub async fn get_workspace_sso(org_id: String) -> Result<Option<WorkspaceSso>, AppError> {
    let (state, p) = ctx::principal().await?;
    match crate::service::workspace_sso::get(&state, &p, &org_id).await {
        Ok(w) => Ok(Some(w)),
        Err(crate::service::ServiceError::NotFound(_)) if crate::service::orgs::authorize(&state, &p, &org_id, crate::service::domain::Role::Owner).await.is_ok() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// "Use an instance provider" on the Identity providers page; unticked boxes are absent.
#[server(prefix = "/sfn", endpoint = "save_workspace_sso")]
pub async fn save_workspace_sso(
    org_id: String,
    provider_id: String,
    allowed_domains: Option<String>,
    auto_provision: Option<String>,
    enforce_sso: Option<String>,
) -> Result<WorkspaceSso, AppError> {
    let (state, p) = ctx::principal().await?;
    let input = crate::service::workspace_sso::WorkspaceInput {
        provider_id: Some(provider_id),
        allowed_domains: Some(comma_list(&allowed_domains.unwrap_or_default())),
        auto_provision: Some(auto_provision.is_some()),
        enforce_sso: Some(enforce_sso.is_some()),
    };
    Ok(crate::service::workspace_sso::put(&state, &p, &org_id, &input, &ctx::meta().await).await?)
}

#[server(prefix = "/sfn", endpoint = "delete_workspace_sso")]
pub async fn delete_workspace_sso(org_id: String) -> Result<(), AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::workspace_sso::delete(&state, &p, &org_id, &ctx::meta().await).await?)
}

/// The org's webhooks, each with its 10 newest deliveries (owners only).
#[server(prefix = "/sfn", endpoint = "get_webhooks")]
pub async fn get_webhooks(org_id: String) -> Result<Vec<WebhookWithLog>, AppError> {
    let (state, p) = ctx::principal().await?;
    let mut out = Vec::new();
    for webhook in crate::service::webhooks::list(&state, &p, &org_id).await? {
        let mut deliveries = crate::service::webhooks::deliveries(&state, &p, &org_id, &webhook.id).await?;
        deliveries.truncate(10);
        out.push(WebhookWithLog { webhook, deliveries });
    }
    Ok(out)
}

/// Checkboxes post `event_types[]` once per ticked type.
#[server(prefix = "/sfn", endpoint = "create_webhook")]
pub async fn create_webhook(org_id: String, url: String, description: String, event_types: Option<Vec<String>>) -> Result<WebhookWithSecret, AppError> {
    let (state, p) = ctx::principal().await?;
    let input = crate::service::webhooks::WebhookInput { url: Some(url), description: Some(description), event_types: Some(event_types.unwrap_or_default()), enabled: Some(true) };
    let created = crate::service::webhooks::create(&state, &p, &org_id, &input, &ctx::meta().await).await?;
    ctx::put_notice(&p.user_id, &Notice::WebhookSecret(created.clone())).await?;
    Ok(created)
}

#[server(prefix = "/sfn", endpoint = "rotate_webhook_secret")]
pub async fn rotate_webhook_secret(org_id: String, id: String) -> Result<WebhookWithSecret, AppError> {
    let (state, p) = ctx::principal().await?;
    let rotated = crate::service::webhooks::rotate(&state, &p, &org_id, &id, &ctx::meta().await).await?;
    ctx::put_notice(&p.user_id, &Notice::WebhookSecret(rotated.clone())).await?;
    Ok(rotated)
}

#[server(prefix = "/sfn", endpoint = "test_webhook")]
pub async fn test_webhook(org_id: String, id: String) -> Result<WebhookDelivery, AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::webhooks::test(&state, &p, &org_id, &id, &ctx::meta().await).await?)
}

/// `enabled` is "true" or "false" (the button's hidden field).
#[server(prefix = "/sfn", endpoint = "set_webhook_enabled")]
pub async fn set_webhook_enabled(org_id: String, id: String, enabled: String) -> Result<WebhookInfo, AppError> {
    let (state, p) = ctx::principal().await?;
    let input = crate::service::webhooks::WebhookInput { enabled: Some(enabled == "true"), ..Default::default() };
    Ok(crate::service::webhooks::update(&state, &p, &org_id, &id, &input, &ctx::meta().await).await?)
}

#[server(prefix = "/sfn", endpoint = "delete_webhook")]
pub async fn delete_webhook(org_id: String, id: String) -> Result<(), AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::webhooks::delete(&state, &p, &org_id, &id, &ctx::meta().await).await?)
}

#[server(prefix = "/sfn", endpoint = "resend_webhook_delivery")]
pub async fn resend_webhook_delivery(org_id: String, id: String, delivery_id: String) -> Result<WebhookDelivery, AppError> {
    let (state, p) = ctx::principal().await?;
    Ok(crate::service::webhooks::resend(&state, &p, &org_id, &id, &delivery_id, &ctx::meta().await).await?)
}
