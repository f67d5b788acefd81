//! Verified email domains: adding one (normalized, never a public suffix or an IP), proving it with a DNS TXT
//! record, background re-checks with backoff (claimed in the database, so one node checks a domain at a time),
//! lapse detection, email-first routing to SSO, and auto-join.
//!
//! Auto-join rule (also on the Domains page): a password account's address is not proven (Latchkey sends no
//! email), so a password sign-in never makes anyone a member by itself; at a domain with `auto` or
//! `approval` it files a join request for an owner or admin. A sign-in through the org's own IdP proves the
//! address: there `auto` makes a member with the connection's default role, `approval` files a join request
//! instead of just-in-time provisioning (the stricter setting wins), and `off` leaves it to the connection's
//! just-in-time setting.
use super::audit::{self, Event, Outcome};
use super::domain::{parse_id, Email, Role};
use super::error::{ServiceError, ServiceResult};
use super::{new_id, now_ms, rfc3339, Principal, RequestMeta};
use crate::model::{DomainInfo, DomainsPage, JoinRequestInfo, TxtRecord};
use crate::repo::{self, domains::DomainRow, users::UserRow};
use crate::state::AppState;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use std::net::SocketAddr;
use std::time::Duration;

pub const RECORD_PREFIX: &str = "_latchkey-challenge";
pub const VALUE_PREFIX: &str = "latchkey-verification=";
/// How long a verified domain whose record disappeared keeps routing to SSO.
pub const LAPSE_GRACE_MS: i64 = 72 * 3600 * 1000;
/// How long pending domains are re-checked before they are marked failed.
pub const PENDING_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

/// Timing of the background checks. `base` is one "minute" of the schedule: pending domains are re-checked
/// after base·2ⁿ (at most 60·base), verified ones every 1440·base, lapsed ones every 60·base.
#[derive(Debug, Clone, Copy)]
pub struct CheckTiming {
    pub base_ms: i64,
}

impl Default for CheckTiming {
    fn default() -> Self {
        Self { base_ms: 60_000 }
    }
}

/// The resolver used for domain checks: `--dns-server` when set, else the system's; no cache, so a record
/// an owner just published is seen at the next check.
pub struct DnsChecker {
    resolver: TokioResolver,
    pub timing: CheckTiming,
}

impl DnsChecker {
    pub fn new(server: Option<&str>, timing: CheckTiming) -> Result<Self, String> {
        let mut opts = ResolverOpts::default();
        opts.cache_size = 0;
        opts.timeout = Duration::from_secs(3);
        opts.attempts = 1;
        opts.ndots = 0;
        let builder = match server {
            Some(s) => {
                let addr: SocketAddr = s.parse().map_err(|_| format!("--dns-server must be ip:port, got {s:?}"))?;
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                TokioResolver::builder_with_config(ResolverConfig::from_name_servers(vec![ns]), TokioRuntimeProvider::default())
            }
            None => TokioResolver::builder(TokioRuntimeProvider::default()).map_err(|e| format!("cannot read the system DNS configuration: {e}"))?,
        };
        let resolver = builder.with_options(opts).build().map_err(|e| format!("cannot build the DNS resolver: {e}"))?;
        Ok(Self { resolver, timing })
    }

    /// Looks up the TXT record of `domain` and says what it found.
    pub async fn check(&self, domain: &str, expected: &str) -> Finding {
        let name = format!("{RECORD_PREFIX}.{domain}.");
        match self.resolver.txt_lookup(name.as_str()).await {
            Ok(lookup) => {
                let values: Vec<String> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::TXT(t) => Some(t.txt_data.iter().map(|c| String::from_utf8_lossy(c).into_owned()).collect::<String>()),
                        _ => None,
                    })
                    .collect();
                classify_values(&name, &values, expected)
            }
            Err(e) => classify_error(&name, &e),
        }
    }
}

/// The outcome of one lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub result: &'static str,
    pub message: String,
}

impl Finding {
    fn new(result: &'static str, message: String) -> Self {
        Self { result, message }
    }
    pub fn verified(&self) -> bool {
        self.result == "verified"
    }
    /// The record is definitely not there (as opposed to a DNS failure, which proves nothing).
    pub fn definite_miss(&self) -> bool {
        matches!(self.result, "no_record" | "nxdomain" | "wrong_value" | "multiple_values")
    }
}

fn shorten(v: &str) -> String {
    if v.chars().count() > 80 { format!("{}…", v.chars().take(80).collect::<String>()) } else { v.to_string() }
}

pub fn classify_values(name: &str, values: &[String], expected: &str) -> Finding {
    let trimmed: Vec<&str> = values.iter().map(|v| v.trim()).collect();
    match trimmed.as_slice() {
        [] => Finding::new("no_record", format!("{name} exists but has no TXT record. Publish the record shown below.")),
        _ if trimmed.contains(&expected) => {
            if trimmed.len() == 1 {
                Finding::new("verified", format!("Found the expected TXT record at {name}."))
            } else {
                Finding::new("verified", format!("Found the expected TXT record at {name}, beside {} other value(s).", trimmed.len() - 1))
            }
        }
        [one] => Finding::new("wrong_value", format!("{name} has a TXT record, but its value is {:?}; it must be exactly {expected:?}.", shorten(one))),
        many => Finding::new(
            "multiple_values",
            format!(
                "{name} has {} TXT values and none is {expected:?}: {}. Replace them with the value shown below.",
                many.len(),
                many.iter().take(3).map(|v| format!("{:?}", shorten(v))).collect::<Vec<_>>().join(", ")
            ),
        ),
    }
}

fn classify_error(name: &str, e: &NetError) -> Finding {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(nr)) if nr.response_code == ResponseCode::NXDomain => {
            Finding::new("nxdomain", format!("{name} does not exist (NXDOMAIN). Publish the TXT record shown below; it can take a few minutes to appear."))
        }
        NetError::Dns(DnsError::NoRecordsFound(nr)) if nr.response_code == ResponseCode::ServFail => servfail(name),
        NetError::Dns(DnsError::NoRecordsFound(_)) => {
            Finding::new("no_record", format!("{name} has no TXT record. Publish the record shown below."))
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => servfail(name),
        NetError::Dns(DnsError::ResponseCode(code)) => Finding::new("dns_error", format!("The DNS server answered {code} for {name}. Try again later.")),
        NetError::Timeout => Finding::new("timeout", format!("The DNS lookup of {name} timed out. Latchkey will try again; nothing is wrong with your record yet.")),
        other => Finding::new("dns_error", format!("The DNS lookup of {name} failed: {other}. Latchkey will try again.")),
    }
}

fn servfail(name: &str) -> Finding {
    Finding::new("servfail", format!("The DNS server failed (SERVFAIL) while looking up {name}: often a DNSSEC or delegation problem at your DNS host. Latchkey will try again."))
}

/// Normalizes what an owner typed into an ASCII domain: trimmed, lowercase, IDNA to punycode, no trailing
/// dot, LDH labels, and a registrable name (never an IP literal or a public suffix like `com` or `co.uk`).
pub fn parse_domain(raw: &str) -> ServiceResult<String> {
    let field = "domain";
    let s = raw.trim();
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() {
        return Err(ServiceError::validation(field, "Enter a domain, like example.com."));
    }
    if s.contains("://") || s.contains('/') || s.contains('@') || s.contains(':') {
        return Err(ServiceError::validation(field, "Enter only the domain name, like example.com: no scheme, path, port or email address."));
    }
    if s.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().is_ok() {
        return Err(ServiceError::validation(field, "An IP address is not a domain. Enter the domain of your email addresses, like example.com."));
    }
    if s.starts_with("*.") {
        return Err(ServiceError::validation(field, "Wildcards are not allowed: add each domain (and subdomain) you use for email."));
    }
    let ascii = idna::domain_to_ascii(s).map_err(|_| ServiceError::validation(field, format!("{s:?} is not a valid domain name.")))?;
    if ascii.len() > 253 {
        return Err(ServiceError::validation(field, "A domain name is at most 253 characters."));
    }
    for label in ascii.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(ServiceError::validation(field, format!("{s:?} is not a valid domain name: each label is 1–63 letters, digits or inner hyphens.")));
        }
    }
    if ascii.split('.').next_back().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit())) {
        return Err(ServiceError::validation(field, "An IP address is not a domain."));
    }
    if !ascii.contains('.') || psl::domain_str(&ascii).is_none() {
        return Err(ServiceError::validation(
            field,
            format!("{ascii} is a public suffix (like com or co.uk) or not a full domain name; enter your own domain, like example.com."),
        ));
    }

    Ok(ascii)
}

pub fn parse_auto_join(raw: &str) -> ServiceResult<&'static str> {
    match raw {
        "off" => Ok("off"),
        "auto" => Ok("auto"),
        "approval" => Ok("approval"),
        _ => Err(ServiceError::validation("autoJoin", "autoJoin must be one of off, auto, approval.")),
    }
}

fn not_found() -> ServiceError {
    ServiceError::NotFound("No domain with that id in this organization.".into())
}

/// Whether a verified domain still routes sign-ins (its record is there, or lapsed less than the grace ago).
pub fn in_force(d: &DomainRow, now: i64) -> bool {
    d.status == "verified" && not_lapsed(d.lapsed_at, now)
}

/// The part of `in_force` after the status: a verified domain whose record went missing `lapsed_at` still routes
/// during the grace.
pub fn not_lapsed(lapsed_at: Option<i64>, now: i64) -> bool {
    lapsed_at.is_none_or(|t| now - t < LAPSE_GRACE_MS)
}

/// Whether connection `c` may take sign-ins for `domain` now: `active`, OIDC, and serving that domain.
fn listed(c: &repo::connections::ConnectionRow) -> Vec<String> {
    serde_json::from_str(&c.domains).unwrap_or_default()
}

/// The org's connection that serves `domain` and may take sign-ins now, if any: the active connection that lists
/// the domain, else the org's active default connection, else an active connection that lists no domains.
pub(crate) async fn routing_connection(state: &AppState, org_id: &str, domain: &str) -> ServiceResult<Option<repo::connections::ConnectionRow>> {
    let conns = repo::connections::for_org(&state.db, org_id).await?;
    Ok(route(&conns, domain).cloned())
}

pub(crate) fn route<'a>(conns: &'a [repo::connections::ConnectionRow], domain: &str) -> Option<&'a repo::connections::ConnectionRow> {
    let usable = || conns.iter().filter(|c| c.status == "active" && matches!(c.protocol.as_str(), "oidc" | "saml" | "ldap"));
    usable()
        .find(|c| listed(c).iter().any(|d| d.eq_ignore_ascii_case(domain)))
        .or_else(|| usable().find(|c| c.is_default == 1))
        .or_else(|| usable().find(|c| listed(c).is_empty()))
}

fn info(d: &DomainRow, routes: bool) -> DomainInfo {
    DomainInfo {
        id: d.id.clone(),
        domain: d.name.clone(),
        status: d.status.clone(),
        txt_record: TxtRecord { name: format!("{RECORD_PREFIX}.{}", d.name), value: format!("{VALUE_PREFIX}{}", d.token) },
        auto_join: d.auto_join.clone(),
        last_checked_at: d.last_checked_at.map(rfc3339),
        last_result: d.last_result.clone(),
        last_message: d.last_message.clone(),
        verified_at: d.verified_at.map(rfc3339),
        lapsed_at: d.lapsed_at.map(rfc3339),
        next_check_at: (d.status != "failed").then(|| rfc3339(d.next_check_at)),
        routes_to_sso: routes,
        created_at: rfc3339(d.created_at),
    }
}

async fn view(state: &AppState, d: &DomainRow) -> ServiceResult<DomainInfo> {
    let routes = in_force(d, now_ms()) && routing_connection(state, &d.org_id, &d.name).await?.is_some();
    Ok(info(d, routes))
}

/// The org's domains and whether it has an active connection, reading its connections once.
async fn list_for_org(state: &AppState, org_id: &str) -> ServiceResult<(Vec<DomainInfo>, bool)> {
    let now = now_ms();
    let conns = repo::connections::for_org(&state.db, org_id).await?;
    let rows = repo::domains::list(&state.db, org_id).await?;
    let domains = rows.iter().map(|d| info(d, in_force(d, now) && route(&conns, &d.name).is_some())).collect();
    Ok((domains, conns.iter().any(|c| c.status == "active")))
}

pub async fn list(state: &AppState, p: &Principal, org_id: &str) -> ServiceResult<Vec<DomainInfo>> {
    let a = super::orgs::authorize(state, p, org_id, Role::Admin).await?;
    Ok(list_for_org(state, &a.org.id).await?.0)
}

pub async fn page(state: &AppState, p: &Principal, org_id: &str) -> ServiceResult<DomainsPage> {
    let a = super::orgs::authorize(state, p, org_id, Role::Admin).await?;
    let (domains, has_active_connection) = list_for_org(state, &a.org.id).await?;
    Ok(DomainsPage { domains, has_active_connection, lapse_grace_hours: LAPSE_GRACE_MS / 3_600_000, can_manage: true })
}

pub async fn get(state: &AppState, p: &Principal, org_id: &str, id: &str) -> ServiceResult<DomainInfo> {
    let a = super::orgs::authorize(state, p, org_id, Role::Admin).await?;
    let id = parse_id("domainId", id).map_err(|_| not_found())?;
    let d = repo::domains::get(&state.db, &a.org.id, &id).await?.ok_or_else(not_found)?;
    view(state, &d).await
}

#[tracing::instrument(skip(state, meta), fields(user = %p.user_id))]
pub async fn add(state: &AppState, p: &Principal, org_id: &str, raw: &str, meta: &RequestMeta) -> ServiceResult<DomainInfo> {
    let a = super::orgs::authorize(state, p, org_id, Role::Admin).await?;
    let name = parse_domain(raw)?;
    let now = now_ms();
    let row = DomainRow {
        id: new_id(),
        org_id: a.org.id.clone(),
        name: name.clone(),
        status: "pending".into(),
        token: super::crypto::random_token(24),
        auto_join: "off".into(),
        last_checked_at: None,
        last_result: None,
        last_message: None,
        verified_at: None,
        lapsed_at: None,
        attempts: 0,
        next_check_at: now + state.dns.timing.base_ms,
        pending_since: now,
        created_at: now,
    };
    let mut tx = crate::repo::begin(&state.db).await?;
    repo::domains::insert(&mut *tx, &row)
        .await
        .map_err(|e| super::error::on_conflict(e, &format!("{name} is already on this organization's list.")))?;
    audit::record(&mut *tx, p, meta, Event { org_id: Some(&a.org.id), action: "domain.add", target: Some(&name), outcome: Outcome::Success, detail: None }).await?;
    tx.commit().await?;
    Ok(info(&row, false))
}

pub async fn delete(state: &AppState, p: &Principal, org_id: &str, id: &str, meta: &RequestMeta) -> ServiceResult<()> {
    let a = super::orgs::authorize(state, p, org_id, Role::Admin).await?;
    let id = parse_id("domainId", id).map_err(|_| not_found())?;
    let d = repo::domains::get(&state.db, &a.org.id, &id).await?.ok_or_else(not_found)?;
    let mut tx = crate::repo::begin(&state.db).await?;
    repo::domains::delete(&mut *tx, &d.id).await?;
    audit::record(&mut *tx, p, meta, Event { org_id: Some(&a.org.id), action: "domain.delete", target: Some(&d.name), outcome: Outcome::Success, detail: Some(format!("status={}", d.status)) }).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn set_auto_join(state: &AppState, p: &Principal, org_id: &str, id: &str, raw: &str, meta: &RequestMeta) -> ServiceResult<DomainInfo> {
    let a = super::orgs::authorize(state, p, org_id, Role::Admin).await?;
    let id = parse_id("domainId", id).map_err(|_| not_found())?;
    let value = parse_auto_join(raw)?;
    let d = repo::domains::get(&state.db, &a.org.id, &id).await?.ok_or_else(not_found)?;
    let mut tx = crate::repo::begin(&state.db).await?;
    repo::domains::set_auto_join(&mut *tx, &d.id, value, now_ms()).await?;
    audit::record(&mut *tx, p, meta, Event {
        org_id: Some(&a.org.id),
        action: "domain.auto_join",
        target: Some(&d.name),
        outcome: Outcome::Success,
        detail: Some(format!("{} -> {value}", d.auto_join)),
    })
    .await?;
    tx.commit().await?;
    let d = repo::domains::get(&state.db, &a.org.id, &id).await?.ok_or_else(not_found)?;
    view(state, &d).await
}

/// What a check changes on the row. Pure, so every transition is unit tested.
pub fn next_state(d: &DomainRow, f: &Finding, held_elsewhere: bool, now: i64, t: CheckTiming) -> (String, Option<i64>, Option<i64>, i64, i64, &'static str, String) {
    let base = t.base_ms;
    match d.status.as_str() {
        "verified" if f.verified() => ("verified".into(), d.verified_at, None, 0, now + 1440 * base, f.result, f.message.clone()),
        "verified" if f.definite_miss() => {
            let lapsed = d.lapsed_at.unwrap_or(now);
            if now - lapsed >= LAPSE_GRACE_MS {
                let msg = format!("The TXT record has been gone for more than {} hours, so the domain is no longer verified. {}", LAPSE_GRACE_MS / 3_600_000, f.message);
                ("failed".into(), None, Some(lapsed), 0, now, "lapsed", msg)
            } else {
                let msg = format!("The TXT record is gone: {} SSO routing for this domain stops {} hours after the record disappeared unless it comes back.", f.message, LAPSE_GRACE_MS / 3_600_000);
                ("verified".into(), d.verified_at, Some(lapsed), d.attempts + 1, now + 60 * base, f.result, msg)
            }
        }
        // A DNS failure proves nothing: keep the state and look again soon.
        "verified" => ("verified".into(), d.verified_at, d.lapsed_at, d.attempts + 1, now + 60 * base, f.result, f.message.clone()),
        _ if f.verified() && held_elsewhere => (
            d.status.clone(),
            None,
            None,
            d.attempts + 1,
            now + backoff(d.attempts + 1, base),
            "held_elsewhere",
            "The record is correct, but another organization has already verified this domain. A domain can be verified by one organization at a time; ask its owner to remove it.".into(),
        ),
        _ if f.verified() => ("verified".into(), Some(now), None, 0, now + 1440 * base, f.result, f.message.clone()),
        "pending" if now - d.pending_since >= PENDING_WINDOW_MS => {
            ("failed".into(), None, None, d.attempts + 1, now, f.result, format!("Gave up after 7 days without finding the record. {} Use \"Verify now\" once it is published.", f.message))
        }
        status => (status.into(), None, None, d.attempts + 1, now + backoff(d.attempts + 1, base), f.result, f.message.clone()),
    }
}

fn backoff(attempts: i64, base: i64) -> i64 {
    base.saturating_mul(1i64 << attempts.clamp(0, 6)).min(60 * base)
}

/// Checks one domain now and stores what was found. Returns the stored row and whether another org holds it.
async fn check_and_record(state: &AppState, d: &DomainRow) -> ServiceResult<(DomainRow, bool)> {
    let expected = format!("{VALUE_PREFIX}{}", d.token);
    let finding = state.dns.check(&d.name, &expected).await;
    let now = now_ms();
    let holder = if finding.verified() && d.status != "verified" { repo::domains::verified_by_name(&state.db, &d.name).await? } else { None };
    let held_elsewhere = holder.is_some_and(|h| h.id != d.id);
    let (status, verified_at, lapsed_at, attempts, next, result, message) = next_state(d, &finding, held_elsewhere, now, state.dns.timing);
    let update = repo::domains::CheckUpdate {
        status: &status,
        result,
        message: &message,
        verified_at,
        lapsed_at,
        attempts,
        next_check_at: next,
        pending_since: d.pending_since,
    };
    let mut tx = crate::repo::begin(&state.db).await?;
    let write = repo::domains::record_check(&mut *tx, &d.id, &update, now).await;
    match write {
        Err(e) if is_unique(&e) => {
            // Another org verified it between our read and our write.
            drop(tx);
            let update = repo::domains::CheckUpdate {
                status: &d.status,
                result: "held_elsewhere",
                message: "The record is correct, but another organization has already verified this domain.",
                verified_at: None,
                lapsed_at: None,
                attempts: d.attempts + 1,
                next_check_at: now + backoff(d.attempts + 1, state.dns.timing.base_ms),
                pending_since: d.pending_since,
            };
            repo::domains::record_check(&state.db, &d.id, &update, now).await?;
            super::metrics::domain_check("held_elsewhere");
            let row = repo::domains::by_id(&state.db, &d.id).await?.ok_or_else(not_found)?;
            return Ok((row, true));
        }
        other => other?,
    }
    super::metrics::domain_check(result);
    if status != d.status || lapsed_at.is_some() != d.lapsed_at.is_some() {
        let action = match status.as_str() {
            "verified" if d.status != "verified" => "domain.verified",
            "verified" if lapsed_at.is_some() => "domain.lapsed",
            "verified" => "domain.restored",
            _ => "domain.failed",
        };
        audit::record_anonymous(&mut *tx, None, "latchkey (DNS check)", &RequestMeta::default(), Event {
            org_id: Some(&d.org_id),
            action,
            target: Some(&d.name),
            outcome: if status == "failed" { Outcome::Failure } else { Outcome::Success },
            detail: Some(message.clone()),
        })
        .await?;
    }
    tx.commit().await?;
    let row = repo::domains::by_id(&state.db, &d.id).await?.ok_or_else(not_found)?;
    Ok((row, held_elsewhere))
}

fn is_unique(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// "Verify now": looks the record up at once and answers what it found; 409 when another org holds it.
pub async fn verify_now(state: &AppState, p: &Principal, org_id: &str, id: &str, meta: &RequestMeta) -> ServiceResult<DomainInfo> {
    let a = super::orgs::authorize(state, p, org_id, Role::Admin).await?;
    let id = parse_id("domainId", id).map_err(|_| not_found())?;
    let mut d = repo::domains::get(&state.db, &a.org.id, &id).await?.ok_or_else(not_found)?;
    if d.status == "failed" {
        // An explicit check restarts the schedule (and its 7-day window).
        d.status = "pending".into();
        d.pending_since = now_ms();
        d.attempts = 0;
    }
    let (row, held_elsewhere) = check_and_record(state, &d).await?;
    audit::record(&state.db, p, meta, Event {
        org_id: Some(&a.org.id),
        action: "domain.verify",
        target: Some(&row.name),
        outcome: if row.status == "verified" { Outcome::Success } else { Outcome::Failure },
        detail: row.last_result.clone(),
    })
    .await?;
    if held_elsewhere {
        return Err(ServiceError::Conflict(format!(
            "{} is already verified by another organization. A domain can be verified by one organization at a time: ask that organization's owner to remove it first.",
            row.name
        )));
    }
    view(state, &row).await
}

/// One pass of the background worker: checks every due domain this node manages to claim.
pub async fn run_due_checks(state: &AppState) -> ServiceResult<usize> {
    let now = now_ms();
    let ids = repo::domains::due(&state.db, now, 50).await?;
    let mut done = 0;
    for id in ids {
        let now = now_ms();
        if !repo::domains::claim(&state.db, &id, now, now + 60_000).await? {
            continue;
        }
        let Some(d) = repo::domains::by_id(&state.db, &id).await? else { continue };
        check_and_record(state, &d).await?;
        done += 1;
    }
    Ok(done)
}

/// Starts the background checker on this node. Every node may run it: claims keep them from doubling up.
pub fn spawn_worker(state: AppState) {
    tokio::spawn(async move {
        let period = Duration::from_millis(state.dns.timing.base_ms.clamp(200, 60_000) as u64);
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let started = std::time::Instant::now();
            let pass = run_due_checks(&state).await;
            super::metrics::job_pass("domain_checks", pass.is_ok(), started.elapsed().as_secs_f64());
            if let Err(e) = pass {
                tracing::warn!(error = %e, "domain checks failed");
            }
        }
    });
}

/// The domain row that decides routing and auto-join for `email`: verified by some org and in force.
pub async fn governing(state: &AppState, email: &Email) -> ServiceResult<Option<DomainRow>> {
    governing_on(&state.db, email).await
}

/// `governing` on a given connection (inside a transaction, so a sign-in never takes a second pool connection).
pub async fn governing_on<'e>(ex: impl sqlx::Executor<'e, Database = sqlx::Any>, email: &Email) -> ServiceResult<Option<DomainRow>> {
    let d = repo::domains::verified_by_name(ex, &email.domain().to_ascii_lowercase()).await?;
    Ok(d.filter(|d| in_force(d, now_ms())))
}

/// Where `email` signs in with SSO, if its domain is verified (in force) by an org with an active connection for it.
pub async fn sso_route(state: &AppState, email: &Email) -> ServiceResult<Option<String>> {
    Ok(sso_target(state, email).await?.map(|(url, _)| url))
}

/// `sso_route` with the connection it routes to.
async fn sso_target(state: &AppState, email: &Email) -> ServiceResult<Option<(String, repo::connections::ConnectionRow)>> {
    let Some(d) = governing(state, email).await? else { return Ok(None) };
    let Some(conn) = routing_connection(state, &d.org_id, &d.name).await? else { return Ok(None) };
    let Some(org) = repo::orgs::by_id(&state.db, &d.org_id).await? else { return Ok(None) };
    let hint: String = url::form_urlencoded::byte_serialize(email.as_str().as_bytes()).collect();
    Ok(Some((format!("/api/auth/sso/{}/login?login_hint={hint}&connection_id={}", org.slug, conn.id), conn)))
}

/// Email-first discovery. Answers from the email's domain only, so it never tells whether an account exists.
pub async fn discover(state: &AppState, raw_email: &str) -> ServiceResult<crate::model::Discovery> {
    let email = Email::parse(raw_email)?;
    Ok(match sso_target(state, &email).await? {
        Some((url, c)) => crate::model::Discovery { method: "sso".into(), url: Some(url), protocol: Some(c.protocol), connection_id: Some(c.id) },
        None => crate::model::Discovery { method: "password".into(), url: None, protocol: None, connection_id: None },
    })
}

/// After a password sign-in: at a verified domain with `auto` or `approval`, a non-member gets a join
/// request (the address is not proven, so never a membership). Idempotent.
pub async fn after_password_sign_in(state: &AppState, user: &UserRow, meta: &RequestMeta) -> ServiceResult<()> {
    let Ok(email) = Email::parse(&user.email) else { return Ok(()) };
    let Some(d) = governing(state, &email).await? else { return Ok(()) };
    if d.auto_join == "off" {
        return Ok(());
    }
    file_join_request(state, &d, user, "password", meta).await.map(|_| ())
}

/// Files a join request unless the user is already a member or has one open. True when one is open now.
pub async fn file_join_request(state: &AppState, d: &DomainRow, user: &UserRow, via: &str, meta: &RequestMeta) -> ServiceResult<bool> {
    let mut tx = crate::repo::begin(&state.db).await?;
    if repo::orgs::with_membership(&mut *tx, &d.org_id, &user.id).await?.is_some_and(|m| m.status == "active") {
        return Ok(false);
    }
    if repo::domains::open_join_request(&mut *tx, &d.org_id, &user.id).await?.is_some() {
        return Ok(true);
    }
    let id = new_id();
    repo::domains::insert_join_request(&mut *tx, &id, &d.org_id, &user.id, Some(&d.id), via, now_ms()).await?;
    audit::record_anonymous(&mut *tx, Some(&user.id), &user.email, meta, Event {
        org_id: Some(&d.org_id),
        action: "join_request.create",
        target: Some(&id),
        outcome: Outcome::Success,
        detail: Some(format!("domain={} auto_join={} via={via}", d.name, d.auto_join)),
    })
    .await?;
    tx.commit().await?;
    Ok(true)
}

fn request_info(r: repo::domains::JoinRequestRow) -> JoinRequestInfo {
    JoinRequestInfo {
        id: r.id,
        organization_id: r.org_id,
        organization_name: r.org_name,
        user_id: r.user_id,
        email: r.email,
        name: r.name,
        via: r.via,
        status: r.status,
        created_at: rfc3339(r.created_at),
        decided_at: r.decided_at.map(rfc3339),
    }
}

pub async fn join_requests(state: &AppState, p: &Principal, org_id: &str) -> ServiceResult<Vec<JoinRequestInfo>> {
    let a = super::orgs::authorize(state, p, org_id, Role::Admin).await?;
    Ok(repo::domains::join_requests(&state.db, &a.org.id).await?.into_iter().map(request_info).collect())
}

pub async fn my_join_requests(state: &AppState, p: &Principal) -> ServiceResult<Vec<JoinRequestInfo>> {
    p.require_unpinned()?;
    Ok(repo::domains::join_requests_of_user(&state.db, &p.user_id).await?.into_iter().map(request_info).collect())
}

/// Approves (member with the default role) or denies a pending request. Owners and admins; audited.
pub async fn decide(state: &AppState, p: &Principal, org_id: &str, id: &str, approve: bool, meta: &RequestMeta) -> ServiceResult<JoinRequestInfo> {
    let a = super::orgs::authorize(state, p, org_id, Role::Admin).await?;
    let missing = || ServiceError::NotFound("No join request with that id in this organization.".into());
    let id = parse_id("requestId", id).map_err(|_| missing())?;
    let r = repo::domains::join_request(&state.db, &a.org.id, &id).await?.ok_or_else(missing)?;
    let now = now_ms();
    let mut tx = crate::repo::begin(&state.db).await?;
    if !repo::domains::decide(&mut *tx, &r.id, if approve { "approved" } else { "denied" }, &p.user_id, now).await? {
        return Err(ServiceError::Conflict(format!("This request was already {}.", r.status)));
    }
    if approve {
        match repo::orgs::with_membership(&mut *tx, &a.org.id, &r.user_id).await? {
            Some(m) if m.status == "active" => {}
            Some(_) => {
                repo::orgs::delete_membership(&mut *tx, &a.org.id, &r.user_id).await?;
                repo::orgs::insert_membership(&mut *tx, &a.org.id, &r.user_id, Role::Member.as_str(), "active", now).await?;
            }
            None => repo::orgs::insert_membership(&mut *tx, &a.org.id, &r.user_id, Role::Member.as_str(), "active", now).await?,
        }
    }
    audit::record(&mut *tx, p, meta, Event {
        org_id: Some(&a.org.id),
        action: if approve { "join_request.approve" } else { "join_request.deny" },
        target: Some(&r.user_id),
        outcome: Outcome::Success,
        detail: Some(format!("request={} email={} via={}", r.id, r.email, r.via)),
    })
    .await?;
    tx.commit().await?;
    let r = repo::domains::join_request(&state.db, &a.org.id, &id).await?.ok_or_else(missing)?;
    Ok(request_info(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_normalized_and_bad_ones_refused() {
        assert_eq!(parse_domain(" Example.COM. ").unwrap(), "example.com");
        assert_eq!(parse_domain("bücher.example").unwrap(), "xn--bcher-kva.example");
        assert_eq!(parse_domain("mail.acme.co.uk").unwrap(), "mail.acme.co.uk");
        for bad in ["com", "co.uk", "github.io", "127.0.0.1", "[::1]", "::1", "localhost", "a..b.com", "-a.com", "https://acme.com", "bob@acme.com", "*.acme.com", "", "acme.com:443", "1.2.3.4"] {
            assert!(parse_domain(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn txt_values_are_classified() {
        let want = "latchkey-verification=abc";
        assert_eq!(classify_values("n", &[], want).result, "no_record");
        assert_eq!(classify_values("n", &[want.into()], want).result, "verified");
        assert_eq!(classify_values("n", &["v=spf1 -all".into(), want.into()], want).result, "verified");
        assert_eq!(classify_values("n", &["latchkey-verification=zzz".into()], want).result, "wrong_value");
        assert_eq!(classify_values("n", &["a".into(), "b".into()], want).result, "multiple_values");
    }

    fn row(status: &str, lapsed_at: Option<i64>, created_at: i64) -> DomainRow {
        DomainRow {
            id: "d".into(),
            org_id: "o".into(),
            name: "acme.test".into(),
            status: status.into(),
            token: "t".into(),
            auto_join: "off".into(),
            last_checked_at: None,
            last_result: None,
            last_message: None,
            verified_at: (status == "verified").then_some(1),
            lapsed_at,
            attempts: 2,
            next_check_at: 0,
            pending_since: created_at,
            created_at,
        }
    }

    #[test]
    fn transitions_follow_the_record() {
        let t = CheckTiming { base_ms: 1000 };
        let ok = Finding::new("verified", String::new());
        let gone = Finding::new("nxdomain", String::new());
        let flaky = Finding::new("timeout", String::new());
        let now = 10 * 24 * 3600 * 1000;
        // pending → verified, or backoff, or failed after 7 days
        assert_eq!(next_state(&row("pending", None, now - 1000), &ok, false, now, t).0, "verified");
        let (s, _, _, attempts, next, ..) = next_state(&row("pending", None, now - 1000), &gone, false, now, t);
        assert_eq!((s.as_str(), attempts, next), ("pending", 3, now + 8000));
        assert_eq!(next_state(&row("pending", None, 0), &gone, false, now, t).0, "failed");
        assert_eq!(next_state(&row("pending", None, now), &ok, true, now, t).5, "held_elsewhere");
        // verified → lapsed (still verified) → failed after the grace; a timeout changes nothing
        let (s, _, lapsed, ..) = next_state(&row("verified", None, 0), &gone, false, now, t);
        assert_eq!((s.as_str(), lapsed), ("verified", Some(now)));
        assert_eq!(next_state(&row("verified", Some(now - LAPSE_GRACE_MS), 0), &gone, false, now, t).0, "failed");
        assert_eq!(next_state(&row("verified", None, 0), &flaky, false, now, t).2, None);
        assert_eq!(next_state(&row("verified", Some(now - 5), 0), &ok, false, now, t).2, None);
        assert!(in_force(&row("verified", Some(now - 5), 0), now));
        assert!(!in_force(&row("verified", Some(now - LAPSE_GRACE_MS), 0), now));
    }
}
