//! LDAP sign-in: the person types a name and password on Latchkey's form; the directory is searched with the
//! service account, the found DN is bound with the password, and the entry's attributes and groups go to the
//! shared ending like any other protocol's assertion. Failures are rate limited per name and per client address
//! (in the database) and answer the same for an unknown name and a wrong password.
use super::{handoff, Assertion, Ending, SsoFailure};
use crate::repo::{self, connections::ConnectionRow, orgs::OrgRow};
use crate::service::domain::Email;
use crate::service::ldap::pool::{self, DirError, Kind, Lease};
use crate::service::ldap::{self, LdapSettings};
use crate::service::{crypto::sha256_hex, now_ms, RequestMeta};
use crate::state::AppState;
use std::time::Duration;

/// Attempts per typed name (per connection) in a 15-minute window (a success starts it again); per client address
/// the instance's SSO limit per minute applies (`--sso-rate-limit`).
const PER_NAME: i64 = 10;
const WINDOW_MS: i64 = 15 * 60 * 1000;

/// What the form or the API sent.
pub struct LdapLogin<'a> {
    pub connection_id: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    pub return_to: Option<String>,
    pub app: Option<&'a handoff::AppRequest>,
}

/// What the directory says about the person.
pub struct DirectoryUser {
    pub dn: String,
    pub subject: String,
    pub email: String,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

/// The connection and its settings and service password, for an LDAP connection id.
pub async fn load(state: &AppState, id: &str) -> Result<(ConnectionRow, LdapSettings, String), SsoFailure> {
    let (c, _) = load_with_org(state, id).await?;
    Ok(c)
}

/// `load`, and the connection's org (one statement).
async fn load_with_org(state: &AppState, id: &str) -> Result<((ConnectionRow, LdapSettings, String), OrgRow), SsoFailure> {
    let found = repo::connections::with_org(&state.db, id.trim()).await?.filter(|(c, _)| c.protocol == "ldap");
    let (c, org) = found.ok_or_else(|| SsoFailure::new("sso_connection_not_found", format!("no LDAP connection {id:?}"), None))?;
    Ok((settings_of(state, c)?, org))
}

fn settings_of(state: &AppState, c: ConnectionRow) -> Result<(ConnectionRow, LdapSettings, String), SsoFailure> {
    let s: LdapSettings = serde_json::from_str(&c.settings).map_err(|e| SsoFailure::new("server_error", format!("LDAP settings: {e}"), Some(&c.org_id)))?;
    let sealed = c.secret.as_deref().ok_or_else(|| SsoFailure::new("ldap_unavailable", "no bind password stored", Some(&c.org_id)))?;
    let password = state.secrets.open(sealed, &ldap::secret_aad(&c.id)).map_err(|e| SsoFailure::new("server_error", format!("bind password: {e}"), Some(&c.org_id)))?;
    let password = String::from_utf8(password).map_err(|_| SsoFailure::new("server_error", "bind password is not UTF-8", Some(&c.org_id)))?;
    Ok((c, s, password))
}

/// The pool key: new settings or a new password mean new connections.
fn pool_key(c: &ConnectionRow) -> String {
    sha256_hex(&format!("{}|{}|{}", c.settings, c.updated_at, c.secret.as_deref().map(hex::encode).unwrap_or_default()))
}

fn failure(c: &ConnectionRow, e: DirError) -> SsoFailure {
    SsoFailure::new(e.code(), e.detail().to_string(), Some(&c.org_id))
}

/// Runs `op` on a pooled connection; a reused connection that fails (the directory dropped it) is replaced by a
/// new one, once.
async fn with_lease<T>(
    state: &AppState,
    c: &ConnectionRow,
    s: &LdapSettings,
    service_password: &str,
    kind: Kind,
    op: impl for<'l> Fn(&'l mut Lease) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, DirError>> + Send + 'l>>,
) -> Result<T, DirError> {
    let key = pool_key(c);
    for attempt in 0..2 {
        let mut lease = state.sso.ldap.take(&c.id, kind, &key, s, service_password, state.sso.allow_private).await?;
        match op(&mut lease).await {
            Ok(v) => {
                state.sso.ldap.give_back(lease);
                return Ok(v);
            }
            // A person's bind is never sent twice (directories count failed binds towards lockouts).
            Err(DirError::Unavailable(d)) if lease.reused && attempt == 0 && kind == Kind::Service => {
                tracing::debug!(detail = %d, "a pooled LDAP connection failed; retrying on a new one");
            }
            Err(e) => return Err(e),
        }
    }
    Err(DirError::Unavailable("the directory connection failed twice".into()))
}

fn first<'e>(e: &'e ldap3::SearchEntry, attr: &str) -> Option<&'e str> {
    e.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(attr)).and_then(|(_, v)| v.first()).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// The subject: a text attribute (`entryUUID`), or a binary one (`objectGUID`) as hex.
fn subject_of(e: &ldap3::SearchEntry, attr: &str) -> Option<String> {
    first(e, attr).map(str::to_string).or_else(|| {
        e.bin_attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(attr)).and_then(|(_, v)| v.first()).filter(|v| !v.is_empty()).map(hex::encode)
    })
}

/// Finds the person by the typed name and checks the password: one `ldap_invalid_credentials` for an empty
/// password, no entry, several entries or a wrong password.
pub async fn authenticate(state: &AppState, c: &ConnectionRow, s: &LdapSettings, service_password: &str, username: &str, password: &str) -> Result<DirectoryUser, DirError> {
    let invalid = |d: String| DirError::InvalidCredentials(d);
    let username = username.trim();
    if password.is_empty() {
        return Err(invalid("empty password (refused before any bind)".into()));
    }
    if username.is_empty() || username.len() > 256 || username.chars().any(char::is_control) {
        return Err(invalid("empty or unusable name".into()));
    }
    let op_timeout = Duration::from_secs(s.operation_timeout_secs);
    let filter = ldap::fill(&s.user_filter, username, "");
    let mut attrs = vec![s.subject_attribute.clone(), s.email_attribute.clone(), s.name_attribute.clone()];
    if !s.group_attribute.is_empty() {
        attrs.push(s.group_attribute.clone());
    }
    let (entries, complete) = with_lease(state, c, s, service_password, Kind::Service, |l| {
        let (base, filter, attrs) = (s.user_base_dn.clone(), filter.clone(), attrs.clone());
        Box::pin(async move {
            let refs: Vec<&str> = attrs.iter().map(String::as_str).collect();
            pool::search(&mut l.ldap, &base, &filter, &refs, 1, op_timeout).await
        })
    })
    .await?;
    if entries.len() != 1 || !complete {
        // The same round trips as a wrong password (a bind the directory refuses), so the time taken does not
        // tell whether the name exists.
        let decoy = format!("cn=latchkey-no-such-entry-{},{}", sha256_hex(username).get(..16).unwrap_or_default(), s.user_base_dn);
        let _ = with_lease(state, c, s, service_password, Kind::People, |l| {
            let decoy = decoy.clone();
            Box::pin(async move { pool::bind(&mut l.ldap, &decoy, "not-a-password", op_timeout).await })
        })
        .await;
        // (The typed name is not recorded: it is often a password typed in the wrong field.)
        return Err(invalid(if entries.is_empty() { "no entry matches the typed name".into() } else { "several entries match the typed name".into() }));
    }
    let Some(entry) = entries.into_iter().next() else { return Err(invalid("no entry matches the typed name".into())) };
    let dn = entry.dn.clone();
    // Guessing one person's password by their aliases (uid, mail, other spellings) counts against that person.
    limit_key(state, c, &dn_key(c, &dn)).await?;
    let ok = with_lease(state, c, s, service_password, Kind::People, |l| {
        let (dn, password) = (dn.clone(), password.to_string());
        Box::pin(async move { pool::bind(&mut l.ldap, &dn, &password, op_timeout).await })
    })
    .await?;
    if !ok {
        return Err(invalid(format!("wrong password for {dn}")));
    }
    let subject = subject_of(&entry, &s.subject_attribute).ok_or_else(|| DirError::AttributeMissing(format!("{dn} has no {}", s.subject_attribute)))?;
    let email = first(&entry, &s.email_attribute).ok_or_else(|| DirError::AttributeMissing(format!("{dn} has no {}", s.email_attribute)))?.to_string();
    let name = first(&entry, &s.name_attribute).map(str::to_string);
    let mut groups: Vec<String> = if s.group_attribute.is_empty() {
        Vec::new()
    } else {
        entry.attrs.iter().filter(|(k, _)| k.eq_ignore_ascii_case(&s.group_attribute)).flat_map(|(_, v)| v.iter().cloned()).collect()
    };
    if let (Some(base), Some(template)) = (&s.group_base_dn, &s.group_filter) {
        let filter = ldap::fill(template, username, &dn);
        let (found, complete) = with_lease(state, c, s, service_password, Kind::Service, |l| {
            let (base, filter) = (base.clone(), filter.clone());
            Box::pin(async move { pool::search(&mut l.ldap, &base, &filter, &["cn"], 1000, op_timeout).await })
        })
        .await?;
        // A partial list (size limit, or a group base that does not exist) must not demote or remove anyone.
        if !complete {
            return Err(DirError::Unavailable(format!("the group search under {base} did not answer completely (missing base or size limit)")));
        }
        groups.extend(found.into_iter().map(|g| g.dn));
    }
    Ok(DirectoryUser { dn, subject, email, name, groups })
}

/// Counts one attempt against `key` (per name, per entry); refuses past `PER_NAME` in the window.
async fn limit_key(state: &AppState, c: &ConnectionRow, key: &str) -> Result<(), DirError> {
    match crate::service::auth::limit(state, key, PER_NAME, WINDOW_MS).await {
        Ok(()) => Ok(()),
        Err(crate::service::ServiceError::RateLimited { .. }) => Err(DirError::InvalidCredentials(format!("too many attempts for this entry at connection {}", c.id))),
        Err(e) => Err(DirError::Unavailable(format!("rate limit: {e}"))),
    }
}

/// Counts one attempt for the name and the client address; refuses past the limits.
async fn limit(state: &AppState, c: &ConnectionRow, username: &str, meta: &RequestMeta) -> Result<(), SsoFailure> {
    let limited = |e: crate::service::ServiceError| match e {
        crate::service::ServiceError::RateLimited { retry_after_secs } => {
            SsoFailure::new("rate_limited", format!("too many LDAP sign-in attempts; retry in {retry_after_secs} s"), Some(&c.org_id))
        }
        other => other.into(),
    };
    let name_key = name_key(c, username);
    let ip_key = meta.ip.as_ref().map(|ip| format!("ldap:ip:{ip}"));
    let mut limits = vec![(name_key.as_str(), PER_NAME, WINDOW_MS)];
    limits.extend(ip_key.as_deref().map(|k| (k, state.settings.sso_rate_limit_per_minute, 60_000)));
    crate::service::auth::limit_all(state, &limits).await.map_err(limited)
}

/// The attempts counted for a typed name (any case, surrounding spaces ignored) at a connection.
fn name_key(c: &ConnectionRow, username: &str) -> String {
    format!("ldap:name:{}:{}", c.id, sha256_hex(&username.trim().to_lowercase()))
}

/// The attempts counted for a directory entry, whichever name found it.
fn dn_key(c: &ConnectionRow, dn: &str) -> String {
    format!("ldap:dn:{}:{}", c.id, sha256_hex(&dn.to_lowercase()))
}

/// Signs the person in through an LDAP connection; returns where the browser goes (console, second factor, or the
/// application). Failures are audited for the org.
pub async fn sign_in(state: &AppState, session: &tower_sessions::Session, login: &LdapLogin<'_>, meta: &RequestMeta) -> Result<String, SsoFailure> {
    let result = sign_in_inner(state, session, login, meta).await;
    if let Err(f) = &result {
        super::audit_failure(state, meta, f, "ldap").await;
    }
    result
}

async fn sign_in_inner(state: &AppState, session: &tower_sessions::Session, login: &LdapLogin<'_>, meta: &RequestMeta) -> Result<String, SsoFailure> {
    let target = match login.app {
        Some(req) => Some(handoff::validate(state, req).await?),
        None => None,
    };
    let ((c, s, service_password), org) = load_with_org(state, login.connection_id).await?;
    limit(state, &c, login.username, meta).await?;
    let person = authenticate(state, &c, &s, &service_password, login.username, login.password).await.map_err(|e| failure(&c, e))?;
    let email = Email::parse(&person.email).map_err(|_| SsoFailure::new("ldap_user_attribute_missing", format!("{} has no usable email: {:?}", person.dn, person.email), Some(&org.id)))?;
    let signed_in_as = super::super::oidc::signed_in_user(state, session).await?;
    // Stable while the connection's server or base DN is edited (the subject, e.g. entryUUID, is the person).
    let issuer = format!("ldap:{}", c.id);
    let a = Assertion { issuer: &issuer, subject: &person.subject, email: &email, name: person.name.as_deref(), groups: Some(&person.groups), signed_in_as: signed_in_as.as_deref() };
    // The password worked: the attempts for this name and entry start again (in the session's transaction).
    let clear_limits = vec![name_key(&c, login.username), dn_key(&c, &person.dn)];
    let end = Ending { method: "sso", protocol: "ldap", return_to: login.return_to.clone(), app: target, clear_limits };
    let to = super::complete(state, session, &org, &c, &a, end, meta).await?;
    if c.status != "active" {
        let msg = format!("Sign-in succeeded: the directory signed in {} ({} groups).", email.as_str(), person.groups.len());
        repo::connections::record_test(&state.db, &c.id, "active", &msg, now_ms()).await?;
    }
    Ok(to)
}

/// The owner's connection test: each stage on a new connection (DNS, connect, TLS, the service account's bind, a
/// search for `sample`), with its timing and the exact failure. Success makes the connection active.
pub async fn test(state: &AppState, c: &ConnectionRow, sample: Option<&str>) -> (bool, String, Vec<pool::Step>) {
    let mut steps = Vec::new();
    let (s, password) = match load(state, &c.id).await {
        Ok((_, s, p)) => (s, p),
        Err(f) => return (false, format!("The connection's settings cannot be read: {}", f.detail), steps),
    };
    let op_timeout = Duration::from_secs(s.operation_timeout_secs);
    let mut ldap = match pool::open(&s, state.sso.allow_private, Some(&mut steps)).await {
        Ok(l) => l,
        Err(e) => return (false, format!("{}: {}", e.code(), e.detail()), steps),
    };
    let t = std::time::Instant::now();
    let bound = pool::bind(&mut ldap, &s.bind_dn, &password, op_timeout).await;
    let (ok, message) = match &bound {
        Ok(true) => (true, "ok".to_string()),
        Ok(false) => (false, format!("the directory refused the bind DN {} or its password", s.bind_dn)),
        Err(e) => (false, e.detail().to_string()),
    };
    steps.push(pool::Step { step: "bind", ok, ms: t.elapsed().as_millis() as u64, message: message.clone() });
    if !ok {
        return (false, format!("Bind as the service account failed: {message}"), steps);
    }
    let Some(sample) = sample.map(str::trim).filter(|v| !v.is_empty()) else {
        let _ = ldap.unbind().await;
        return (true, "Connected and bound as the service account. Type a sample name to test the search too.".into(), steps);
    };
    let t = std::time::Instant::now();
    let mut attrs = vec![s.subject_attribute.as_str(), s.email_attribute.as_str(), s.name_attribute.as_str()];
    if !s.group_attribute.is_empty() {
        attrs.push(&s.group_attribute);
    }
    let found = pool::search(&mut ldap, &s.user_base_dn, &ldap::fill(&s.user_filter, sample, ""), &attrs, 1, op_timeout).await.map(|(v, _)| v);
    let _ = ldap.unbind().await;
    let (ok, message) = match found {
        Err(e) => (false, e.detail().to_string()),
        Ok(v) if v.is_empty() => (false, format!("no entry under {} matches {sample:?} with {}", s.user_base_dn, s.user_filter)),
        Ok(v) if v.len() > 1 => (false, format!("several entries match {sample:?}: make the filter match one person")),
        Ok(v) => {
            let e = &v[0];
            let missing: Vec<&str> = [&s.subject_attribute, &s.email_attribute]
                .into_iter()
                .filter(|a| subject_of(e, a).is_none())
                .map(String::as_str)
                .collect();
            let groups = e.attrs.iter().filter(|(k, _)| k.eq_ignore_ascii_case(&s.group_attribute)).map(|(_, v)| v.len()).sum::<usize>();
            if missing.is_empty() {
                (true, format!("found {} (email {}, {groups} group(s))", e.dn, first(e, &s.email_attribute).unwrap_or_default()))
            } else {
                (false, format!("found {} but it has no {}", e.dn, missing.join(", ")))
            }
        }
    };
    steps.push(pool::Step { step: "search", ok, ms: t.elapsed().as_millis() as u64, message: message.clone() });
    if ok {
        (true, format!("The directory works: {message}."), steps)
    } else {
        (false, format!("The search failed: {message}."), steps)
    }
}

/// Latchkey's LDAP form for a sign-in started at `/api/auth/sso/{slug}/login` (email-first routing, a test
/// sign-in, or an application), carrying the typed address and the application's parameters on.
pub fn form_url(c: &ConnectionRow, start: &super::Start<'_>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("connection_id", &c.id);
    if let Some(h) = start.login_hint.filter(|h| !h.trim().is_empty()) {
        q.append_pair("username", h.trim());
    }
    if let Some(r) = crate::model::safe_return_to(start.return_to) {
        q.append_pair("returnTo", &r);
    }
    if let Some(app) = start.app {
        q.append_pair("client_id", &app.client_id).append_pair("redirect_uri", &app.redirect_uri);
        if let Some(s) = &app.state {
            q.append_pair("state", s);
        }
    }
    format!("/signin/ldap?{}", q.finish())
}
