//! The connections API (reference 001): several IdP connections per org, OIDC or SAML, owner only. Secrets (the
//! OIDC client secret, the SAML SP private key) are sealed and never returned. `/settings/sso` remains the view
//! over the org's primary OIDC connection, which this list also shows.
use super::audit::{self, Event, Outcome};
use super::connections::{self as oidc_conn, OidcSettings};
use super::domain::{parse_name, Role};
use super::error::{ServiceError, ServiceResult};
use super::saml::{self, SamlSettings};
use super::signin::groups::GroupPolicy;
use super::{new_id, now_ms, rfc3339, Principal, RequestMeta};
use super::ldap::{self, LdapSettings};
use crate::model::{ConnectionInfo, ConnectionInput, ConnectionTest, LdapInfo, OidcInfo, SamlCertificateInfo, SamlInfo, TestStep};
use crate::repo::{self, connections::ConnectionRow};
use crate::state::AppState;

const MAPPING_FIELDS: [&str; 4] = ["email", "firstName", "lastName", "groups"];
/// The console warns this long before an IdP certificate expires.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

fn info(state: &AppState, slug: &str, c: &ConnectionRow) -> ServiceResult<ConnectionInfo> {
    let public = &state.settings.public_url;
    let (mut oidc, mut saml_info, mut ldap_info) = (None, None, None);
    if c.protocol == "ldap" {
        let s: LdapSettings = serde_json::from_str(&c.settings).map_err(|e| ServiceError::internal("LDAP settings", e))?;
        let tls = if s.is_ldaps() { "ldaps" } else if s.allow_plaintext { "none" } else { "starttls" };
        ldap_info = Some(LdapInfo {
            tls: tls.into(),
            server_url: s.server_url,
            allow_plaintext: s.allow_plaintext,
            ca_certificate: s.ca_certificate,
            bind_dn: s.bind_dn,
            bind_password_set: c.secret.is_some(),
            user_base_dn: s.user_base_dn,
            user_filter: s.user_filter,
            subject_attribute: s.subject_attribute,
            email_attribute: s.email_attribute,
            name_attribute: s.name_attribute,
            group_attribute: s.group_attribute,
            group_base_dn: s.group_base_dn,
            group_filter: s.group_filter,
            connect_timeout_seconds: s.connect_timeout_secs,
            operation_timeout_seconds: s.operation_timeout_secs,
            sign_in_url: format!("{public}/signin/ldap?connection_id={}", c.id),
        });
    } else if c.protocol == "saml" {
        let s: SamlSettings = serde_json::from_str(&c.settings).map_err(|e| ServiceError::internal("SAML settings", e))?;
        let now = now_ms() / 1000;
        let certs = s
            .idp_certificates
            .iter()
            .map(|b64| {
                let exp = saml::certificate_expiry(b64).unwrap_or(0);
                SamlCertificateInfo { expires_at: rfc3339(exp * 1000), expires_soon: exp - now < EXPIRY_WARNING_DAYS * 86_400, pem_base64: b64.clone() }
            })
            .collect();
        let entity_id = saml::sp_entity_id(public, &c.id);
        saml_info = Some(SamlInfo {
            idp_entity_id: s.idp_entity_id,
            idp_sso_url: s.idp_sso_url,
            idp_certificates: certs,
            metadata_url: s.metadata_url,
            allow_idp_initiated: s.allow_idp_initiated,
            require_signed_assertion: s.require_signed_assertion,
            allow_sha1: s.allow_sha1,
            clock_skew_seconds: s.clock_skew_secs,
            sp_metadata_url: entity_id.clone(),
            sp_certificate: s.sp_certificate.clone(),
            entity_id,
            assertion_consumer_service_url: saml::acs_url(public),
        });
    } else {
        let s: OidcSettings = serde_json::from_str(&c.settings).map_err(|e| ServiceError::internal("OIDC settings", e))?;
        oidc = Some(OidcInfo {
            provider: c.provider.clone().unwrap_or_else(|| "oidc".into()),
            issuer_url: s.issuer_url,
            client_id: s.client_id,
            client_secret_set: c.secret.is_some(),
            callback_url: oidc_conn::callback_url(state),
        });
    }
    Ok(ConnectionInfo {
        id: c.id.clone(),
        name: c.name.clone(),
        protocol: c.protocol.clone(),
        status: c.status.clone(),
        is_default: c.is_default == 1,
        is_primary: c.is_primary == 1,
        domains: serde_json::from_str(&c.domains).unwrap_or_default(),
        jit_provisioning: c.jit_provisioning != 0,
        default_role: c.default_role.clone(),
        attribute_mapping: serde_json::from_str(&c.attribute_mapping).unwrap_or_default(),
        group_roles: GroupPolicy::from_column(&c.group_roles).rules,
        groups_required: GroupPolicy::from_column(&c.group_roles).required,
        last_tested_at: c.last_tested_at.map(rfc3339),
        last_test_message: c.last_test_message.clone(),
        test_sign_in_url: format!("{public}/api/auth/sso/{slug}/login?connection_id={}", c.id),
        created_at: rfc3339(c.created_at),
        updated_at: rfc3339(c.updated_at),
        oidc,
        saml: saml_info,
        ldap: ldap_info,
    })
}

async fn owned(state: &AppState, p: &Principal, org_id: &str, id: &str) -> ServiceResult<(super::orgs::Access, ConnectionRow)> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let c = repo::connections::by_id(&state.db, id).await?.filter(|c| c.org_id == a.org.id);
    let c = c.ok_or_else(|| ServiceError::NotFound("No such connection in this organization.".into()))?;
    Ok((a, c))
}

pub async fn list(state: &AppState, p: &Principal, org_id: &str) -> ServiceResult<Vec<ConnectionInfo>> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let rows = repo::connections::for_org(&state.db, &a.org.id).await?;
    rows.iter().map(|c| info(state, &a.org.slug, c)).collect()
}

pub async fn get(state: &AppState, p: &Principal, org_id: &str, id: &str) -> ServiceResult<ConnectionInfo> {
    let (a, c) = owned(state, p, org_id, id).await?;
    info(state, &a.org.slug, &c)
}

/// `raw`, parsed and without repeats, when every one is a domain of org `org_id` (pending or verified: routing and
/// sign-in still require them verified); else a validation error on `field`.
pub(crate) async fn own_domains(state: &AppState, org_id: &str, field: &'static str, raw: &[String]) -> ServiceResult<Vec<String>> {
    let own = repo::domains::list(&state.db, org_id).await?;
    let mut out = Vec::new();
    for r in raw {
        let d = super::domains::parse_domain(r).map_err(|_| ServiceError::validation(field, format!("{r:?} is not a domain name.")))?;
        if !own.iter().any(|o| o.name == d) {
            return Err(ServiceError::validation(field, format!("{d} is not a domain of this organization: add it on the Domains page first.")));
        }
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

/// Fields every protocol shares, applied onto `c`.
async fn apply_common(state: &AppState, org_id: &str, c: &mut ConnectionRow, b: &ConnectionInput) -> ServiceResult<()> {
    if let Some(name) = &b.name {
        c.name = parse_name("name", name, 100, true)?;
    }
    if let Some(domains) = &b.domains {
        let out = own_domains(state, org_id, "domains", domains).await?;
        c.domains = serde_json::to_string(&out).map_err(|e| ServiceError::internal("domains", e))?;
    }
    if let Some(j) = b.jit_provisioning {
        c.jit_provisioning = j as i64;
    }
    if let Some(r) = &b.default_role {
        match Role::parse(r) {
            Ok(Role::Member) | Ok(Role::Admin) => c.default_role = r.clone(),
            _ => return Err(ServiceError::validation("defaultRole", "The default role must be member or admin (owners are made by an owner).")),
        }
    }
    if let Some(m) = &b.attribute_mapping {
        let obj = m.as_object().ok_or_else(|| ServiceError::validation("attributeMapping", "Give an object like {\"email\": \"mail\"}."))?;
        for (k, v) in obj {
            if !MAPPING_FIELDS.contains(&k.as_str()) || !v.as_str().is_some_and(|s| s.len() <= 256) {
                return Err(ServiceError::validation("attributeMapping", format!("Map only {} to attribute names (text).", MAPPING_FIELDS.join(", "))));
            }
        }
        c.attribute_mapping = m.to_string();
    }
    if b.group_roles.is_some() || b.groups_required.is_some() {
        let now = GroupPolicy::from_column(&c.group_roles);
        let rules = b.group_roles.as_deref().unwrap_or(&now.rules);
        let policy = GroupPolicy::parse(rules, b.groups_required.unwrap_or(now.required))?;
        if c.protocol == "oidc" && !policy.rules.is_empty() {
            return Err(ServiceError::validation("groupRoles", "Group rules apply to SAML and LDAP connections (OIDC sign-ins carry no groups here)."));
        }
        c.group_roles = serde_json::to_string(&policy).map_err(|e| ServiceError::internal("group roles", e))?;
    }
    Ok(())
}

fn sso_url(raw: &str) -> ServiceResult<String> {
    let url = oidc_conn::parse_issuer(raw).map_err(|_| ServiceError::validation("idpSsoUrl", "Enter the IdP's single sign-on URL, starting with https://, without a query or fragment."))?;
    Ok(url)
}

/// A metadata URL: https (http on loopback only), no credentials or fragment; a query is fine (Entra's has one).
fn metadata_url(raw: &str) -> ServiceResult<String> {
    let bad = || ServiceError::validation("metadataUrl", "Enter the IdP's metadata URL, starting with https://.");
    let url = url::Url::parse(raw.trim()).map_err(|_| bad())?;
    let loopback = super::domain::is_loopback_host(&url);
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !scheme_ok || raw.len() > 2048 || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad());
    }
    Ok(url.to_string())
}

/// The IdP side of a SAML connection from the input: pasted metadata, a metadata URL (fetched through the SSRF
/// guard), or entity ID + SSO URL + certificates typed in. Fields given alongside metadata override it.
async fn apply_saml(state: &AppState, s: &mut SamlSettings, b: &ConnectionInput) -> ServiceResult<()> {
    let mut from_meta = None;
    if let Some(xml) = b.metadata_xml.as_deref().filter(|x| !x.trim().is_empty()) {
        from_meta = Some(saml::parse_idp_metadata(xml).map_err(|m| ServiceError::validation("metadataXml", m))?);
    } else if let Some(url) = b.metadata_url.as_deref().filter(|u| !u.trim().is_empty()) {
        let url = metadata_url(url)?;
        let (status, body) = state.sso.http.get(&url).await.map_err(|e| ServiceError::validation("metadataUrl", oidc_conn::fetch_failure("metadata", e)))?;
        if status != 200 {
            return Err(ServiceError::validation("metadataUrl", format!("The metadata URL answered HTTP {status}, not 200.")));
        }
        let xml = String::from_utf8(body).map_err(|_| ServiceError::validation("metadataUrl", "The metadata is not UTF-8 text."))?;
        from_meta = Some(saml::parse_idp_metadata(&xml).map_err(|m| ServiceError::validation("metadataUrl", m))?);
        s.metadata_url = Some(url);
        s.metadata_fetched_at = Some(now_ms());
    }
    if let Some(m) = from_meta {
        s.idp_entity_id = m.entity_id;
        s.idp_sso_url = m.sso_url;
        s.idp_certificates = m.certificates;
    }
    if let Some(e) = b.idp_entity_id.as_deref() {
        let e = e.trim();
        if e.is_empty() || e.len() > 1024 || e.chars().any(char::is_control) {
            return Err(ServiceError::validation("idpEntityId", "Enter the IdP's entity ID (its Issuer), as its metadata names it."));
        }
        s.idp_entity_id = e.to_string();
    }
    if let Some(u) = b.idp_sso_url.as_deref() {
        s.idp_sso_url = sso_url(u)?;
    }
    if let Some(certs) = &b.idp_certificates {
        s.idp_certificates = certs
            .iter()
            .map(|c| saml::parse_certificate(c).map(|(der, _)| der).map_err(|m| ServiceError::validation("idpCertificates", format!("A certificate {m}."))))
            .collect::<ServiceResult<_>>()?;
    }
    if s.idp_entity_id.is_empty() || s.idp_sso_url.is_empty() {
        return Err(ServiceError::validation("metadataXml", "Give the IdP's metadata (metadataXml or metadataUrl), or idpEntityId, idpSsoUrl and idpCertificates."));
    }
    s.idp_sso_url = sso_url(&s.idp_sso_url)?;
    if let Some(v) = b.allow_idp_initiated {
        s.allow_idp_initiated = v;
    }
    if let Some(v) = b.require_signed_assertion {
        s.require_signed_assertion = v;
    }
    if let Some(v) = b.allow_sha1 {
        s.allow_sha1 = v;
    }
    if let Some(v) = b.clock_skew_seconds {
        if !(0..=saml::MAX_CLOCK_SKEW_SECS).contains(&v) {
            return Err(ServiceError::validation("clockSkewSeconds", "The clock skew must be 0 to 300 seconds."));
        }
        s.clock_skew_secs = v;
    }
    Ok(())
}

/// The LDAP settings from the input; the bind password is sealed (never returned).
fn apply_ldap(state: &AppState, c: &mut ConnectionRow, b: &ConnectionInput, creating: bool) -> ServiceResult<()> {
    let mut s: LdapSettings = if creating { LdapSettings::default() } else { serde_json::from_str(&c.settings).map_err(|e| ServiceError::internal("LDAP settings", e))? };
    let before = s.clone();
    let password = ldap::apply(&mut s, b, creating)?;
    match password {
        Some(p) => c.secret = Some(state.secrets.seal(p.as_bytes(), &ldap::secret_aad(&c.id))?),
        // The stored password was given for one server and account: it is never sent to another.
        None if before.server_url != s.server_url
            || before.bind_dn != s.bind_dn
            || before.ca_certificate != s.ca_certificate
            || (s.allow_plaintext && !before.allow_plaintext) =>
        {
            return Err(ServiceError::validation(
                "bindPassword",
                "Give the service account's password again when the server URL, bind DN, CA certificate or plaintext setting changes.",
            ));
        }
        None => {}
    }
    c.settings = serde_json::to_string(&s).map_err(|e| ServiceError::internal("settings", e))?;
    Ok(())
}

fn apply_oidc(state: &AppState, c: &mut ConnectionRow, b: &ConnectionInput, creating: bool) -> ServiceResult<()> {
    let mut s: OidcSettings = if creating {
        OidcSettings { issuer_url: String::new(), client_id: String::new() }
    } else {
        serde_json::from_str(&c.settings).map_err(|e| ServiceError::internal("OIDC settings", e))?
    };
    let before = s.clone();
    if let Some(p) = &b.provider {
        c.provider = Some(oidc_conn::parse_provider(p)?.to_string());
    }
    if let Some(i) = &b.issuer_url {
        s.issuer_url = oidc_conn::parse_issuer(i)?;
    }
    if let Some(i) = &b.client_id {
        s.client_id = oidc_conn::parse_client_id(i)?;
    }
    if s.issuer_url.is_empty() || s.client_id.is_empty() {
        return Err(ServiceError::validation("issuerUrl", "An OIDC connection needs issuerUrl, clientId and clientSecret."));
    }
    match b.client_secret.as_deref() {
        Some(secret) => c.secret = Some(state.secrets.seal(oidc_conn::parse_client_secret(secret)?.as_bytes(), &oidc_conn::secret_aad(&c.id))?),
        // The stored secret was given for one issuer and client: it is never sent anywhere else.
        None if creating || before.issuer_url != s.issuer_url || before.client_id != s.client_id => {
            return Err(ServiceError::validation("clientSecret", "Enter the client secret (again when the issuer URL or client id changes)."));
        }
        None => {}
    }
    c.settings = serde_json::to_string(&s).map_err(|e| ServiceError::internal("settings", e))?;
    Ok(())
}

/// Connections per organization, of every protocol.
pub const MAX_CONNECTIONS_PER_ORG: i64 = 25;

pub async fn create(state: &AppState, p: &Principal, org_id: &str, b: &ConnectionInput, meta: &RequestMeta) -> ServiceResult<ConnectionInfo> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let protocol = match b.protocol.as_deref().map(str::trim) {
        Some("oidc") => "oidc",
        Some("saml") => "saml",
        Some("ldap") => "ldap",
        _ => return Err(ServiceError::validation("protocol", "The protocol must be oidc, saml or ldap.")),
    };
    let now = now_ms();
    let id = new_id();
    let mut c = ConnectionRow {
        id: id.clone(),
        org_id: a.org.id.clone(),
        protocol: protocol.into(),
        name: String::new(),
        status: "inactive".into(),
        is_primary: 0,
        is_default: 0,
        provider: None,
        domains: "[]".into(),
        jit_provisioning: 1,
        default_role: Role::Member.as_str().into(),
        attribute_mapping: "{}".into(),
        group_roles: "{}".into(),
        settings: "{}".into(),
        secret: None,
        last_tested_at: None,
        last_test_message: None,
        created_at: now,
        updated_at: now,
        instance_provider_id: None,
    };
    if b.name.is_none() {
        return Err(ServiceError::validation("name", "Name the connection, e.g. \"Okta (employees)\"."));
    }
    // Each LDAP connection keeps pooled sockets on every node, and every connection is work for housekeeping.
    if repo::connections::count_for_org(&state.db, &a.org.id).await? >= MAX_CONNECTIONS_PER_ORG {
        return Err(ServiceError::Conflict(format!("An organization can have at most {MAX_CONNECTIONS_PER_ORG} connections: delete one you no longer use first.")));
    }
    apply_common(state, &a.org.id, &mut c, b).await?;
    if protocol == "saml" {
        let entity = saml::sp_entity_id(&state.settings.public_url, &id);
        let (key_pem, cert_der) = saml::new_sp_keypair(&entity)?;
        use base64::Engine;
        let mut s = SamlSettings { sp_certificate: base64::engine::general_purpose::STANDARD.encode(cert_der), clock_skew_secs: saml::DEFAULT_CLOCK_SKEW_SECS, ..Default::default() };
        apply_saml(state, &mut s, b).await?;
        c.settings = serde_json::to_string(&s).map_err(|e| ServiceError::internal("settings", e))?;
        c.secret = Some(state.secrets.seal(&key_pem, &saml::key_aad(&id))?);
    } else if protocol == "ldap" {
        apply_ldap(state, &mut c, b, true)?;
    } else {
        apply_oidc(state, &mut c, b, true)?;
        // The org's first OIDC connection is the one /settings/sso shows.
        c.is_primary = repo::connections::primary(&state.db, &a.org.id, "oidc").await?.is_none() as i64;
    }
    let mut tx = crate::repo::begin(&state.db).await?;
    repo::connections::insert(&mut *tx, &c).await?;
    if b.is_default == Some(true) {
        repo::connections::set_default(&mut tx, &a.org.id, Some(&id)).await?;
    }
    audit::record(&mut *tx, p, meta, Event {
        org_id: Some(&a.org.id),
        action: "connection.create",
        target: Some(&id),
        outcome: Outcome::Success,
        detail: Some(format!("protocol={protocol} name={:?} domains={}", c.name, c.domains)),
    })
    .await?;
    tx.commit().await?;
    get(state, p, &a.org.id, &id).await
}

pub async fn update(state: &AppState, p: &Principal, org_id: &str, id: &str, b: &ConnectionInput, meta: &RequestMeta) -> ServiceResult<ConnectionInfo> {
    let (a, mut c) = owned(state, p, org_id, id).await?;
    if c.instance_provider_id.is_some() {
        return Err(ServiceError::Conflict(format!(
            "This connection is the organization's workspace SSO (an instance provider): change it with PUT /api/user/organizations/{}/sso/provider.",
            a.org.id
        )));
    }
    if b.protocol.as_deref().is_some_and(|x| x != c.protocol) {
        return Err(ServiceError::validation("protocol", "A connection's protocol cannot change: create a new connection."));
    }
    apply_common(state, &a.org.id, &mut c, b).await?;
    let before = c.settings.clone();
    if c.protocol == "saml" {
        let mut s: SamlSettings = serde_json::from_str(&c.settings).map_err(|e| ServiceError::internal("SAML settings", e))?;
        apply_saml(state, &mut s, b).await?;
        c.settings = serde_json::to_string(&s).map_err(|e| ServiceError::internal("settings", e))?;
    } else if c.protocol == "ldap" {
        apply_ldap(state, &mut c, b, false)?;
    } else {
        apply_oidc(state, &mut c, b, false)?;
    }
    // New IdP settings are untested: the connection stops taking routed sign-ins until a test sign-in passes.
    // (For SAML only what names and proves the IdP counts; the SP's own policy switches do not.)
    // (For LDAP: the directory, the trust in it and how people are found; group settings and timeouts do not.)
    let idp_side = |json: &str| match (c.protocol.as_str(), serde_json::from_str::<SamlSettings>(json), serde_json::from_str::<LdapSettings>(json)) {
        ("saml", Ok(s), _) => format!("{}|{}|{:?}", s.idp_entity_id, s.idp_sso_url, s.idp_certificates),
        ("ldap", _, Ok(s)) => format!("{}|{}|{:?}|{}|{}|{}|{}", s.server_url, s.allow_plaintext, s.ca_certificate, s.bind_dn, s.user_base_dn, s.user_filter, s.subject_attribute),
        _ => json.to_string(),
    };
    if idp_side(&c.settings) != idp_side(&before) {
        c.status = "inactive".into();
        c.last_tested_at = None;
        c.last_test_message = None;
    }
    c.updated_at = now_ms();
    let mut tx = crate::repo::begin(&state.db).await?;
    repo::connections::update(&mut *tx, &c).await?;
    match b.is_default {
        Some(true) => repo::connections::set_default(&mut tx, &a.org.id, Some(&c.id)).await?,
        Some(false) if c.is_default == 1 => repo::connections::set_default(&mut tx, &a.org.id, None).await?,
        _ => {}
    }
    audit::record(&mut *tx, p, meta, Event {
        org_id: Some(&a.org.id),
        action: "connection.update",
        target: Some(&c.id),
        outcome: Outcome::Success,
        detail: Some(format!("settings_changed={} secret_changed={}", c.settings != before, b.client_secret.is_some() || b.bind_password.is_some())),
    })
    .await?;
    tx.commit().await?;
    super::oidc::forget_metadata(state, &c.id);
    state.sso.ldap.forget(&c.id);
    get(state, p, &a.org.id, &c.id).await
}

/// Deletes a connection (the lockout guard applies) and ends the sessions it signed in.
pub async fn delete(state: &AppState, p: &Principal, org_id: &str, id: &str, meta: &RequestMeta) -> ServiceResult<()> {
    let (a, c) = owned(state, p, org_id, id).await?;
    super::policy::guard_connection_delete(state, &a.org.id, &c.id).await?;
    let mut tx = crate::repo::begin(&state.db).await?;
    let ended = repo::sessions::delete_for_connection(&mut *tx, &c.id).await?;
    state.sso.ldap.forget(&c.id);
    repo::connections::delete(&mut *tx, &c.id).await?;
    audit::record(&mut *tx, p, meta, Event {
        org_id: Some(&a.org.id),
        action: "connection.delete",
        target: Some(&c.id),
        outcome: Outcome::Success,
        detail: Some(format!("protocol={} name={:?} sessions_ended={ended}", c.protocol, c.name)),
    })
    .await?;
    tx.commit().await?;
    super::oidc::forget_metadata(state, &c.id);
    Ok(())
}

/// OIDC: discovery and JWKS (success makes the connection active). SAML: the settings are checked (certificates
/// present and valid, metadata URL reachable); the connection becomes active when a test sign-in passes.
pub async fn test(state: &AppState, p: &Principal, org_id: &str, id: &str, sample: Option<&str>, meta: &RequestMeta) -> ServiceResult<ConnectionTest> {
    let (a, c) = owned(state, p, org_id, id).await?;
    let started = std::time::Instant::now();
    let mut steps = Vec::new();
    let (success, message) = if c.protocol == "ldap" {
        let (ok, message, s) = super::signin::ldap::test(state, &c, sample).await;
        steps = s.into_iter().map(|s| TestStep { step: s.step.into(), ok: s.ok, ms: s.ms, message: s.message }).collect();
        (ok, message)
    } else if c.protocol == "saml" {
        let s: SamlSettings = serde_json::from_str(&c.settings).map_err(|e| ServiceError::internal("SAML settings", e))?;
        let now = now_ms() / 1000;
        let expiries: Vec<i64> = s.idp_certificates.iter().filter_map(|b| saml::certificate_expiry(b)).collect();
        if s.idp_certificates.is_empty() {
            (false, "No IdP signing certificate: every response would be refused. Add the IdP's metadata or its certificate.".to_string())
        } else if expiries.iter().all(|e| *e <= now) {
            (false, "Every IdP signing certificate has expired: get the IdP's current certificate.".to_string())
        } else {
            (true, format!("Settings are complete ({} IdP certificate(s)). Open the test sign-in to finish: success makes the connection active.", s.idp_certificates.len()))
        }
    } else if let Some(pid) = &c.instance_provider_id {
        match repo::providers::by_id(&state.db, pid).await? {
            Some(row) => match super::providers::check_reachable(state, &row).await {
                Ok(m) => (true, m),
                Err(m) => (false, m),
            },
            None => (false, "The instance provider was removed.".to_string()),
        }
    } else {
        let s: OidcSettings = serde_json::from_str(&c.settings).map_err(|e| ServiceError::internal("OIDC settings", e))?;
        match oidc_conn::discover_and_check(state, &s.issuer_url).await {
            Ok(n) => (true, format!("SSO configuration is valid: discovery answered, the issuer matches, and the JWKS has {n} key(s).")),
            Err(m) => (false, m),
        }
    };
    let status = match (c.protocol.as_str(), success) {
        ("oidc" | "ldap", true) => "active",
        (_, false) => "error",
        _ => c.status.as_str(),
    };
    let mut tx = crate::repo::begin(&state.db).await?;
    repo::connections::record_test(&mut *tx, &c.id, status, &message, now_ms()).await?;
    audit::record(&mut *tx, p, meta, Event {
        org_id: Some(&a.org.id),
        action: "connection.test",
        target: Some(&c.id),
        outcome: if success { Outcome::Success } else { Outcome::Failure },
        detail: Some(message.clone()),
    })
    .await?;
    tx.commit().await?;
    let info = info(state, &a.org.slug, &c)?;
    Ok(ConnectionTest { success, message, response_time_ms: started.elapsed().as_millis() as u64, test_sign_in_url: info.test_sign_in_url, steps })
}

/// The public SP metadata of a SAML connection (IdPs fetch it; it holds nothing secret).
pub async fn saml_metadata(state: &AppState, id: &str) -> ServiceResult<String> {
    let c = repo::connections::by_id(&state.db, id).await?.filter(|c| c.protocol == "saml");
    let c = c.ok_or_else(|| ServiceError::NotFound("No SAML connection with this id.".into()))?;
    let s: SamlSettings = serde_json::from_str(&c.settings).map_err(|e| ServiceError::internal("SAML settings", e))?;
    let public = &state.settings.public_url;
    saml::sp_metadata(&s, &saml::sp_entity_id(public, &c.id), &saml::acs_url(public))
}

/// How often a SAML connection's metadata URL is fetched again (the IdP's certificate rollover, without an admin).
pub const METADATA_REFRESH_MS: i64 = 12 * 3600 * 1000;

/// Background upkeep of SAML connections (run by the node holding the housekeeping lease): metadata URLs fetched
/// again every 12 hours (new signing certificates, SSO URL), and an audit event in the org's log once per IdP
/// certificate that expires within 30 days. Returns how many connections changed.
pub async fn saml_upkeep(state: &AppState) -> ServiceResult<usize> {
    let now = now_ms();
    let meta = RequestMeta::default();
    let mut changed = 0;
    for c in repo::connections::all_of_protocol(&state.db, "saml").await? {
        let Ok(mut s) = serde_json::from_str::<SamlSettings>(&c.settings) else { continue };
        let before = serde_json::to_string(&s).unwrap_or_default();
        let mut events = Vec::new();
        if let Some(url) = s.metadata_url.clone().filter(|_| s.metadata_fetched_at.is_none_or(|t| now - t >= METADATA_REFRESH_MS)) {
            s.metadata_fetched_at = Some(now);
            let fetched = match state.sso.http.get(&url).await {
                Ok((200, body)) => String::from_utf8(body).map_err(|_| "not UTF-8".to_string()).and_then(|x| saml::parse_idp_metadata(&x)),
                Ok((status, _)) => Err(format!("HTTP {status}")),
                Err(e) => Err(oidc_conn::fetch_failure("metadata", e)),
            };
            match fetched {
                Ok(m) if m.certificates != s.idp_certificates || m.sso_url != s.idp_sso_url || m.entity_id != s.idp_entity_id => {
                    events.push(("connection.metadata_refresh", Outcome::Success, format!("from {url}: {} signing certificate(s), SSO URL {}", m.certificates.len(), m.sso_url)));
                    (s.idp_entity_id, s.idp_sso_url, s.idp_certificates) = (m.entity_id, m.sso_url, m.certificates);
                }
                Ok(_) => {}
                Err(why) => events.push(("connection.metadata_refresh", Outcome::Failure, format!("from {url}: {why}; the saved settings stay in use"))),
            }
        }
        for cert in &s.idp_certificates {
            let exp = saml::certificate_expiry(cert).unwrap_or(0);
            if exp * 1000 - now < EXPIRY_WARNING_DAYS * 86_400_000 && !s.expiry_warned.contains(cert) {
                events.push(("connection.certificate_expiring", Outcome::Failure, format!("an IdP signing certificate of {:?} expires {}", c.name, rfc3339(exp * 1000))));
                s.expiry_warned.push(cert.clone());
            }
        }
        let after = serde_json::to_string(&s).map_err(|e| ServiceError::internal("settings", e))?;
        if after == before {
            continue;
        }
        let mut tx = crate::repo::begin(&state.db).await?;
        repo::connections::set_settings(&mut *tx, &c.id, &after, now).await?;
        for (action, outcome, detail) in events {
            audit::record_anonymous(&mut *tx, None, "system", &meta, Event { org_id: Some(&c.org_id), action, target: Some(&c.id), outcome, detail: Some(detail) }).await?;
        }
        tx.commit().await?;
        changed += 1;
    }
    Ok(changed)
}
