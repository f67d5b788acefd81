//! Signed webhooks: an org's endpoints (owner only), the event types they take, and their deliveries.
//!
//! Events are audit events: `audit::write` calls `enqueue` on the same connection (inside the caller's
//! transaction when there is one), so a delivery exists exactly when the change it reports was committed. `send`
//! delivers them from any node, signed the Standard Webhooks way.
pub mod send;

use super::audit::{self, Event, Outcome};
use super::domain::{parse_id, Role};
use super::error::{ServiceError, ServiceResult};
use super::{new_id, now_ms, rfc3339, Principal, RequestMeta};
use crate::model::{WebhookDelivery, WebhookInfo, WebhookWithSecret, WEBHOOK_EVENT_TYPES};
use crate::repo::{self, audit::AuditRow, webhooks::DeliveryRow, webhooks::WebhookRow};
use crate::state::AppState;

pub const SECRET_PREFIX: &str = "whsec_";
/// After a rotation the previous secret also signs for this long, so receivers can switch without losing messages.
pub const SECRET_GRACE_MS: i64 = 24 * 3600 * 1000;
const MAX_PER_ORG: i64 = 20;
const LOG_LIMIT: i64 = 50;
const MAX_DESCRIPTION: usize = 200;

/// What an owner sends to create or change an endpoint; `None` keeps the current value on update.
#[derive(Debug, Default, Clone)]
pub struct WebhookInput {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// The webhook event type an audit event is delivered as, if any.
pub fn event_type(action: &str, outcome: &str) -> Option<&'static str> {
    Some(match action {
        "sso.login" if outcome == "success" => "signin.succeeded",
        "sso.login" => "signin.failed",
        "member.jit_provision" | "join_request.approve" => "member.added",
        "member.remove" | "member.removed_by_groups" => "member.removed",
        "member.role_change" | "member.role_mapped" => "member.role_changed",
        "connection.create" | "sso.settings.create" => "connection.created",
        "connection.update" | "sso.settings.update" | "connection.metadata_refresh" => "connection.changed",
        "connection.delete" | "sso.settings.delete" => "connection.deleted",
        "domain.verified" | "domain.restored" => "domain.verified",
        "domain.lapsed" => "domain.lapsed",
        "domain.failed" => "domain.failed",
        "security.policy.update" => "policy.changed",
        "session.revoke" => "session.revoked",
        "connection.certificate_expiring" => "certificate.expiring",
        _ => return None,
    })
}

/// The body every delivery of `row` carries: `{type, timestamp, data}` with the event as the audit log shows it.
pub fn payload(kind: &str, row: &AuditRow) -> String {
    let mut data = audit::view(row.clone());
    // A sign-in's detail can quote what an anonymous sender typed, directory host names and group names: it stays
    // in the audit log. The error code and its fix go out.
    if kind.starts_with("signin.") {
        data.detail = None;
    }
    serde_json::json!({
        "type": kind,
        "timestamp": rfc3339(row.created_at),
        "data": data,
    })
    .to_string()
}

/// Whether `row` is an event some webhook could take (an org's, of a mapped action).
pub(crate) fn may_deliver(row: &AuditRow) -> bool {
    row.org_id.is_some() && event_type(&row.action, &row.outcome).is_some()
}

/// Writes a delivery of `row` for every endpoint of its org subscribed to its type (called by `audit::write`).
pub(crate) async fn enqueue<C>(conn: &mut C, row: &AuditRow) -> sqlx::Result<()>
where
    for<'e> &'e mut C: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let (Some(org_id), Some(kind)) = (row.org_id.as_deref(), event_type(&row.action, &row.outcome)) else { return Ok(()) };
    repo::webhooks::enqueue(conn, org_id, kind, &format!("msg_{}_", row.id), &payload(kind, row), row.created_at).await.map(|_| ())
}

fn not_found() -> ServiceError {
    ServiceError::NotFound("No webhook with that id in this organization.".into())
}

/// An endpoint URL: https (http only with --allow-private-webhooks, for on-premises receivers),
/// no credentials or fragment, and not an internal address unless allowed (checked again at every delivery).
pub fn parse_url(raw: &str, allow_private: bool) -> ServiceResult<String> {
    let field = "url";
    let s = raw.trim();
    if s.is_empty() || s.len() > 2048 || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ServiceError::validation(field, "Give the endpoint's full URL, like https://hooks.example.com/latchkey."));
    }
    let url = url::Url::parse(s).map_err(|_| ServiceError::validation(field, format!("{s} is not a full URL, like https://hooks.example.com/latchkey.")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(ServiceError::validation(field, format!("{s} must use https."))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ServiceError::validation(field, format!("{s} has no host.")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ServiceError::validation(field, "The URL cannot contain credentials: the signature authenticates Latchkey to your endpoint."));
    }
    if url.fragment().is_some() {
        return Err(ServiceError::validation(field, format!("{s}: a webhook URL cannot have a #fragment.")));
    }
    super::safe_http::check_url(&url, allow_private)
        .map_err(|_| ServiceError::validation(field, format!("{s} is a private, loopback or link-local address: webhooks go to public endpoints.")))?;
    Ok(s.to_string())
}

/// `scheme://host:port` of an endpoint, for the audit log: paths and queries often hold a token (Slack-style URLs).
fn origin(url: &str) -> String {
    url::Url::parse(url).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
}

fn parse_event_types(raw: &[String]) -> ServiceResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for t in raw {
        let t = t.trim();
        if !WEBHOOK_EVENT_TYPES.iter().any(|(k, _)| *k == t) {
            let known: Vec<&str> = WEBHOOK_EVENT_TYPES.iter().map(|(k, _)| *k).collect();
            return Err(ServiceError::validation("eventTypes", format!("{t:?} is not an event type. Known types: {}.", known.join(", "))));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    if out.is_empty() {
        return Err(ServiceError::validation("eventTypes", "Choose at least one event type."));
    }
    Ok(out)
}

fn parse_description(raw: &str) -> ServiceResult<String> {
    let s = raw.trim();
    if s.chars().count() > MAX_DESCRIPTION || s.chars().any(char::is_control) {
        return Err(ServiceError::validation("description", format!("The description is plain text of at most {MAX_DESCRIPTION} characters.")));
    }
    Ok(s.to_string())
}

fn aad(id: &str) -> String {
    format!("webhook:{id}")
}

fn new_secret() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn info(w: &WebhookRow) -> WebhookInfo {
    let now = now_ms();
    WebhookInfo {
        id: w.id.clone(),
        url: w.url.clone(),
        description: w.description.clone(),
        event_types: serde_json::from_str(&w.event_types).unwrap_or_default(),
        enabled: w.enabled != 0,
        previous_secret_expires_at: w.previous_until.filter(|t| *t > now && w.previous_secret.is_some()).map(rfc3339),
        created_at: rfc3339(w.created_at),
        updated_at: rfc3339(w.updated_at),
    }
}

async fn load(state: &AppState, org_id: &str, id: &str) -> ServiceResult<WebhookRow> {
    let id = parse_id("webhookId", id).map_err(|_| not_found())?;
    repo::webhooks::get(&state.db, org_id, &id).await?.ok_or_else(not_found)
}

pub async fn list(state: &AppState, p: &Principal, org_id: &str) -> ServiceResult<Vec<WebhookInfo>> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    Ok(repo::webhooks::list(&state.db, &a.org.id).await?.iter().map(info).collect())
}

pub async fn get(state: &AppState, p: &Principal, org_id: &str, id: &str) -> ServiceResult<WebhookInfo> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    Ok(info(&load(state, &a.org.id, id).await?))
}

pub async fn create(state: &AppState, p: &Principal, org_id: &str, input: &WebhookInput, meta: &RequestMeta) -> ServiceResult<WebhookWithSecret> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let url = parse_url(input.url.as_deref().unwrap_or_default(), state.sso.allow_private_webhooks)?;
    let event_types = parse_event_types(input.event_types.as_deref().unwrap_or_default())?;
    let description = parse_description(input.description.as_deref().unwrap_or_default())?;
    if repo::webhooks::count(&state.db, &a.org.id).await? >= MAX_PER_ORG {
        return Err(ServiceError::Conflict(format!("An organization can have at most {MAX_PER_ORG} webhooks: delete one first.")));
    }
    let id = new_id();
    let secret = new_secret();
    let now = now_ms();
    let row = WebhookRow {
        id: id.clone(),
        org_id: a.org.id.clone(),
        url,
        description,
        event_types: serde_json::to_string(&event_types).unwrap_or_default(),
        enabled: i64::from(input.enabled.unwrap_or(true)),
        secret: state.secrets.seal(secret.as_bytes(), &aad(&id))?,
        previous_secret: None,
        previous_until: None,
        created_at: now,
        updated_at: now,
    };
    let mut tx = repo::begin(&state.db).await?;
    repo::webhooks::insert(&mut *tx, &row).await?;
    audit::record(&mut *tx, p, meta, Event { org_id: Some(&a.org.id), action: "webhook.create", target: Some(&id), outcome: Outcome::Success, detail: Some(format!("url={} events={}", origin(&row.url), event_types.join(","))) }).await?;
    tx.commit().await?;
    Ok(WebhookWithSecret { webhook: info(&row), secret })
}

pub async fn update(state: &AppState, p: &Principal, org_id: &str, id: &str, input: &WebhookInput, meta: &RequestMeta) -> ServiceResult<WebhookInfo> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let mut row = load(state, &a.org.id, id).await?;
    if let Some(u) = &input.url {
        row.url = parse_url(u, state.sso.allow_private_webhooks)?;
    }
    if let Some(t) = &input.event_types {
        row.event_types = serde_json::to_string(&parse_event_types(t)?).unwrap_or_default();
    }
    if let Some(d) = &input.description {
        row.description = parse_description(d)?;
    }
    if let Some(e) = input.enabled {
        row.enabled = i64::from(e);
    }
    row.updated_at = now_ms();
    let mut tx = repo::begin(&state.db).await?;
    repo::webhooks::update(&mut *tx, &row).await?;
    audit::record(&mut *tx, p, meta, Event { org_id: Some(&a.org.id), action: "webhook.update", target: Some(&row.id), outcome: Outcome::Success, detail: Some(format!("url={} enabled={}", origin(&row.url), row.enabled != 0)) }).await?;
    tx.commit().await?;
    Ok(info(&row))
}

pub async fn delete(state: &AppState, p: &Principal, org_id: &str, id: &str, meta: &RequestMeta) -> ServiceResult<()> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let row = load(state, &a.org.id, id).await?;
    let mut tx = repo::begin(&state.db).await?;
    repo::webhooks::delete(&mut *tx, &a.org.id, &row.id).await?;
    audit::record(&mut *tx, p, meta, Event { org_id: Some(&a.org.id), action: "webhook.delete", target: Some(&row.id), outcome: Outcome::Success, detail: Some(format!("url={}", origin(&row.url))) }).await?;
    tx.commit().await?;
    Ok(())
}

/// A new signing secret, shown once; the previous one keeps signing (a second signature) for `SECRET_GRACE_MS`.
pub async fn rotate(state: &AppState, p: &Principal, org_id: &str, id: &str, meta: &RequestMeta) -> ServiceResult<WebhookWithSecret> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let mut row = load(state, &a.org.id, id).await?;
    let secret = new_secret();
    let now = now_ms();
    row.previous_secret = Some(std::mem::replace(&mut row.secret, state.secrets.seal(secret.as_bytes(), &aad(&row.id))?));
    row.previous_until = Some(now + SECRET_GRACE_MS);
    row.updated_at = now;
    let mut tx = repo::begin(&state.db).await?;
    repo::webhooks::update(&mut *tx, &row).await?;
    audit::record(&mut *tx, p, meta, Event { org_id: Some(&a.org.id), action: "webhook.secret.rotate", target: Some(&row.id), outcome: Outcome::Success, detail: None }).await?;
    tx.commit().await?;
    Ok(WebhookWithSecret { webhook: info(&row), secret })
}

fn delivery_view(d: DeliveryRow) -> WebhookDelivery {
    WebhookDelivery {
        next_attempt_at: (d.status == "pending").then(|| rfc3339(d.next_attempt_at)),
        id: d.id,
        event_type: d.event_type,
        status: d.status,
        attempts: d.attempts,
        last_status_code: d.last_status,
        last_error: d.last_error,
        last_attempt_at: d.last_attempt_at.map(rfc3339),
        created_at: rfc3339(d.created_at),
        payload: serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null),
    }
}

/// Sends a `webhook.test` message to this endpoint now (whatever it subscribes to); answers the queued delivery.
pub async fn test(state: &AppState, p: &Principal, org_id: &str, id: &str, meta: &RequestMeta) -> ServiceResult<WebhookDelivery> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let row = load(state, &a.org.id, id).await?;
    if row.enabled == 0 {
        return Err(ServiceError::Conflict("This endpoint is paused: resume it first.".into()));
    }
    manual_send_limit(state, &row.id).await?;
    let now = now_ms();
    let msg = format!("msg_{}", new_id());
    let body = serde_json::json!({
        "type": "webhook.test",
        "timestamp": rfc3339(now),
        "data": {"organizationId": a.org.id, "webhookId": row.id, "message": "A test message from Latchkey: this endpoint receives and verifies webhooks."},
    });
    let d = queued(&row, &msg, "webhook.test", body.to_string(), now);
    let mut tx = repo::begin(&state.db).await?;
    repo::webhooks::insert_delivery(&mut *tx, &d).await?;
    audit::record(&mut *tx, p, meta, Event { org_id: Some(&a.org.id), action: "webhook.test", target: Some(&row.id), outcome: Outcome::Success, detail: Some(format!("message={msg}")) }).await?;
    tx.commit().await?;
    Ok(delivery_view(d))
}

/// Test messages and resends: 30 a minute per endpoint, so nobody floods a receiver (or the queue) by hand.
async fn manual_send_limit(state: &AppState, webhook_id: &str) -> ServiceResult<()> {
    super::auth::limit(state, &format!("webhook:send:{webhook_id}"), 30, 60_000).await
}

fn queued(w: &WebhookRow, id: &str, kind: &str, payload: String, now: i64) -> DeliveryRow {
    DeliveryRow {
        id: id.to_string(),
        webhook_id: w.id.clone(),
        org_id: w.org_id.clone(),
        event_type: kind.to_string(),
        payload,
        status: "pending".into(),
        attempts: 0,
        next_attempt_at: now,
        claimed_until: None,
        last_status: None,
        last_error: None,
        last_attempt_at: None,
        created_at: now,
    }
}

/// The newest deliveries of an endpoint (the delivery log).
pub async fn deliveries(state: &AppState, p: &Principal, org_id: &str, id: &str) -> ServiceResult<Vec<WebhookDelivery>> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let row = load(state, &a.org.id, id).await?;
    Ok(repo::webhooks::log(&state.db, &row.id, LOG_LIMIT).await?.into_iter().map(delivery_view).collect())
}

/// Sends a delivery's message again as a new delivery with a fresh schedule (its `webhook-id` says "resend").
pub async fn resend(state: &AppState, p: &Principal, org_id: &str, id: &str, delivery_id: &str, meta: &RequestMeta) -> ServiceResult<WebhookDelivery> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let row = load(state, &a.org.id, id).await?;
    let nf = || ServiceError::NotFound("No delivery with that id for this webhook.".into());
    let delivery_id = delivery_id.trim();
    if delivery_id.is_empty() || delivery_id.len() > 128 {
        return Err(nf());
    }
    let old = repo::webhooks::delivery(&state.db, delivery_id).await?.filter(|d| d.webhook_id == row.id).ok_or_else(nf)?;
    manual_send_limit(state, &row.id).await?;
    let now = now_ms();
    let d = queued(&row, &format!("msg_{}_resend", new_id()), &old.event_type, old.payload, now);
    let mut tx = repo::begin(&state.db).await?;
    repo::webhooks::insert_delivery(&mut *tx, &d).await?;
    audit::record(&mut *tx, p, meta, Event { org_id: Some(&a.org.id), action: "webhook.resend", target: Some(&row.id), outcome: Outcome::Success, detail: Some(format!("of={} as={}", old.id, d.id)) }).await?;
    tx.commit().await?;
    Ok(delivery_view(d))
}

/// The signing secret(s) of `w` now: the current one, and the previous one during its grace period.
pub(crate) fn secrets(state: &AppState, w: &WebhookRow, now: i64) -> ServiceResult<Vec<String>> {
    let open = |sealed: &[u8]| -> ServiceResult<String> {
        let raw = state.secrets.open(sealed, &aad(&w.id))?;
        String::from_utf8(raw).map_err(|e| ServiceError::internal("webhook secret", e))
    };
    let mut out = vec![open(&w.secret)?];
    if let (Some(prev), Some(until)) = (&w.previous_secret, w.previous_until) {
        if until > now {
            out.push(open(prev)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(action: &str, outcome: &str, detail: &str) -> AuditRow {
        AuditRow {
            id: "01JTEST".into(),
            org_id: Some("01JORG".into()),
            actor_user_id: None,
            actor: "sso".into(),
            action: action.into(),
            target: Some("01JCONN".into()),
            outcome: outcome.into(),
            detail: Some(detail.into()),
            ip: Some("203.0.113.9".into()),
            created_at: 1_795_000_000_000,
            user_agent: None,
        }
    }

    #[test]
    fn a_failed_sign_in_leaves_with_its_code_but_not_its_detail() {
        let r = row("sso.login", "failure", "ldap_invalid_credentials: bind of uid=<typed by anyone> at ldap01.corp:636 failed (protocol=ldap)");
        assert_eq!(event_type(&r.action, &r.outcome), Some("signin.failed"));
        let v: serde_json::Value = serde_json::from_str(&payload("signin.failed", &r)).unwrap();
        assert_eq!(v["type"], "signin.failed");
        assert_eq!(v["data"]["errorCode"], "ldap_invalid_credentials");
        assert!(v["data"]["errorText"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(v["data"]["detail"].is_null(), "{v}");
        assert!(!v.to_string().contains("ldap01.corp"), "{v}");
        // Other events keep their detail (the owner's own settings).
        let changed = row("member.role_change", "success", "role=admin");
        let v: serde_json::Value = serde_json::from_str(&payload("member.role_changed", &changed)).unwrap();
        assert_eq!(v["data"]["detail"], "role=admin");
    }

    #[test]
    fn only_org_events_of_mapped_actions_are_delivered() {
        assert!(may_deliver(&row("sso.login", "success", "")));
        assert!(!may_deliver(&row("webhook.create", "success", "")), "webhook changes never feed webhooks");
        assert!(!may_deliver(&AuditRow { org_id: None, ..row("session.revoke", "success", "") }));
        // Every type an action maps to is one an endpoint can subscribe to.
        for action in ["sso.login", "member.jit_provision", "member.remove", "member.role_mapped", "connection.update", "domain.lapsed",
            "security.policy.update", "session.revoke", "connection.certificate_expiring"] {
            for outcome in ["success", "failure"] {
                let t = event_type(action, outcome).unwrap();
                assert!(WEBHOOK_EVENT_TYPES.iter().any(|(k, _)| *k == t), "{t}");
            }
        }
    }
}
