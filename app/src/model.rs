//! Data shapes shared by the REST API, the server functions and the pages (camelCase JSON).
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub id: String,
    pub email: String,
    pub name: String,
    /// `password`, `sso`, `ldap` for a session; `api_key` for a key.
    pub auth_method: String,
    /// The session must pass its second factor (`POST /api/auth/mfa/challenge`) before anything else works.
    #[serde(default)]
    pub mfa_pending: bool,
    /// An operator of this instance (manages registered applications at /admin).
    #[serde(default)]
    pub operator: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct OrgSummary {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct OrgDetail {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub role: String,
    pub member_count: i64,
    pub created_at: String,
    /// The link members can use to sign in through the org's IdP once one is connected.
    pub sso_login_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub status: String,
    pub joined_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyInfo {
    pub id: String,
    pub name: String,
    /// The first characters of the key, enough to recognise it.
    pub prefix: String,
    pub organization_id: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// Minted by a session that had passed its second factor: only such keys satisfy an org's MFA policy.
    pub mfa_verified: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    /// The whole key. Shown once; only its hash is stored.
    pub key: String,
    pub api_key: ApiKeyInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub id: String,
    pub method: String,
    pub created_at: String,
    pub expires_at: String,
    pub last_seen_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub current: bool,
}

/// The org's primary OIDC connection as `/settings/sso` shows it. The client secret is never included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SsoSettings {
    pub connection_id: String,
    pub provider: String,
    pub issuer_url: String,
    pub client_id: String,
    /// True when a secret is stored (its value is never returned).
    pub client_secret_set: bool,
    /// `inactive` until a test passes, then `active`; `error` after a failed test.
    pub status: String,
    pub last_tested_at: Option<String>,
    pub last_test_message: Option<String>,
    pub jit_provisioning: bool,
    pub default_role: String,
    /// The one redirect URI to register at the IdP, shared by all organizations.
    pub callback_url: String,
    /// Where members start SSO sign-in for this org.
    pub login_url: String,
    /// People linked to this connection's issuer; changing the issuer URL unlinks them (they link again at their
    /// next sign-in, by their address at a verified domain).
    pub linked_identities: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SsoTestResult {
    pub success: bool,
    pub message: String,
    pub response_time_ms: u64,
}

/// One IdP connection of an org (reference 001), as the connections API answers. Secrets are never included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ConnectionInfo {
    pub id: String,
    pub name: String,
    pub protocol: String,
    pub status: String,
    pub is_default: bool,
    pub is_primary: bool,
    pub domains: Vec<String>,
    pub jit_provisioning: bool,
    pub default_role: String,
    pub attribute_mapping: serde_json::Value,
    pub group_roles: Vec<GroupRole>,
    pub groups_required: bool,
    pub last_tested_at: Option<String>,
    pub last_test_message: Option<String>,
    /// Starts a real sign-in through this connection (any status): success makes it active.
    pub test_sign_in_url: String,
    pub created_at: String,
    pub updated_at: String,
    pub oidc: Option<OidcInfo>,
    pub saml: Option<SamlInfo>,
    pub ldap: Option<LdapInfo>,
}

/// An LDAP connection's settings as the API shows them (the bind password never comes back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LdapInfo {
    pub server_url: String,
    /// `ldaps`, `starttls`, or `none` (plain ldap://, allowed explicitly).
    pub tls: String,
    pub allow_plaintext: bool,
    pub ca_certificate: Option<String>,
    pub bind_dn: String,
    pub bind_password_set: bool,
    pub user_base_dn: String,
    pub user_filter: String,
    pub subject_attribute: String,
    pub email_attribute: String,
    pub name_attribute: String,
    pub group_attribute: String,
    pub group_base_dn: Option<String>,
    pub group_filter: Option<String>,
    pub connect_timeout_seconds: u64,
    pub operation_timeout_seconds: u64,
    /// Where people sign in with their directory name and password.
    pub sign_in_url: String,
}

/// Filters and cursor of an org's audit log (`GET …/audit-events`); times are RFC 3339.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditQuery {
    pub action: Option<String>,
    /// The actor's email or user id.
    pub actor: Option<String>,
    pub target: Option<String>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// Export only: `csv` or `jsonl`.
    pub format: Option<String>,
}

/// One audit event as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub id: String,
    pub created_at: String,
    pub action: String,
    pub outcome: String,
    /// Who: an email (a person, or what was typed at a failed sign-in), "(API key)" when by key.
    pub actor: String,
    pub actor_user_id: Option<String>,
    pub target: Option<String>,
    /// The stable code of a failed sign-in (e.g. `saml_signature_invalid`), with `errorText` saying what to fix.
    pub error_code: Option<String>,
    pub error_text: Option<String>,
    pub detail: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// LDAP directory templates: (key, label, user filter, subject, email, name and group attributes, where to find
/// the values). What the owner types wins over the template.
pub const LDAP_PRESETS: [(&str, &str, &str, &str, &str, &str, &str, &str); 3] = [
    ("openldap", "OpenLDAP", "(|(uid={username})(mail={username}))", "entryUUID", "mail", "cn", "memberOf",
     "Server: ldaps://ldap.example.com:636 or ldap://ldap.example.com:389 (StartTLS). Base DN of people, e.g. ou=people,dc=example,dc=com. Enable the memberof overlay so people carry memberOf; give the service account read access to people and groups."),
    ("freeipa", "FreeIPA / Red Hat IdM", "(&(objectClass=person)(|(uid={username})(mail={username})))", "ipaUniqueID", "mail", "cn", "memberOf",
     "Server: ldaps://ipa.example.com:636. Base DN: cn=users,cn=accounts,dc=example,dc=com. Service account: a system account under cn=sysaccounts,cn=etc,dc=example,dc=com. Groups come as memberOf (cn=…,cn=groups,cn=accounts,…)."),
    ("ad", "Active Directory", "(&(objectClass=user)(|(sAMAccountName={username})(userPrincipalName={username})(mail={username})))", "objectGUID", "mail", "displayName", "memberOf",
     "Server: ldaps://dc1.corp.example.com:636 (LDAP signing requires TLS). Base DN: the users' OU or the domain, e.g. OU=Staff,DC=corp,DC=example,DC=com. Bind DN: a service account's DN or user@corp.example.com. Paste your enterprise CA if the DC certificate comes from AD CS."),
];

/// Group -> role rules as the console writes them, one per line: `group = role`.
pub fn parse_group_lines(text: &str) -> Result<Vec<GroupRole>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().map(|(n, l)| (n + 1, l.trim())).filter(|(_, l)| !l.is_empty()) {
        let Some((group, role)) = line.rsplit_once('=') else {
            return Err(format!("Line {n}: write \"group = role\", e.g. \"engineers = member\"."));
        };
        out.push(GroupRole { group: group.trim().to_string(), role: role.trim().to_lowercase() });
    }
    Ok(out)
}

/// One step of an LDAP connection test (dns, connect, tls/starttls, bind, search) with its timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TestStep {
    pub step: String,
    pub ok: bool,
    pub ms: u64,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct OidcInfo {
    pub provider: String,
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret_set: bool,
    pub callback_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SamlInfo {
    pub idp_entity_id: String,
    pub idp_sso_url: String,
    pub idp_certificates: Vec<SamlCertificateInfo>,
    pub metadata_url: Option<String>,
    pub allow_idp_initiated: bool,
    pub require_signed_assertion: bool,
    pub allow_sha1: bool,
    pub clock_skew_seconds: i64,
    /// The SP side, generated by Latchkey: paste these into the IdP.
    pub entity_id: String,
    pub assertion_consumer_service_url: String,
    pub sp_metadata_url: String,
    /// The SP certificate (base64 DER) the IdP verifies AuthnRequests with and encrypts assertions to.
    pub sp_certificate: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SamlCertificateInfo {
    pub pem_base64: String,
    pub expires_at: String,
    /// Expires within 30 days (or has expired).
    pub expires_soon: bool,
}

/// Create (POST) and update (PATCH) body of a connection: the shared fields, then OIDC's or SAML's.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionInput {
    pub name: Option<String>,
    pub protocol: Option<String>,
    pub domains: Option<Vec<String>>,
    pub jit_provisioning: Option<bool>,
    pub default_role: Option<String>,
    pub attribute_mapping: Option<serde_json::Value>,
    pub is_default: Option<bool>,
    pub provider: Option<String>,
    pub issuer_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub metadata_xml: Option<String>,
    pub metadata_url: Option<String>,
    pub idp_entity_id: Option<String>,
    pub idp_sso_url: Option<String>,
    pub idp_certificates: Option<Vec<String>>,
    pub allow_idp_initiated: Option<bool>,
    pub require_signed_assertion: Option<bool>,
    pub allow_sha1: Option<bool>,
    pub clock_skew_seconds: Option<i64>,
    pub server_url: Option<String>,
    pub allow_plaintext: Option<bool>,
    pub ca_certificate: Option<String>,
    pub bind_dn: Option<String>,
    pub bind_password: Option<String>,
    pub user_base_dn: Option<String>,
    pub user_filter: Option<String>,
    pub subject_attribute: Option<String>,
    pub email_attribute: Option<String>,
    pub name_attribute: Option<String>,
    pub group_attribute: Option<String>,
    pub group_base_dn: Option<String>,
    pub group_filter: Option<String>,
    pub connect_timeout_seconds: Option<i64>,
    pub operation_timeout_seconds: Option<i64>,
    /// Group -> role rules (SAML and LDAP groups), applied at every sign-in.
    pub group_roles: Option<Vec<GroupRole>>,
    /// Only people in a mapped group may sign in; one removed from every mapped group loses the membership.
    pub groups_required: Option<bool>,
}

/// One rule of a connection's group -> role mapping: people in `group` (the IdP's group name, or a directory
/// group's DN or its CN) get `role` (`member` or `admin`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupRole {
    pub group: String,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ConnectionTest {
    pub success: bool,
    pub message: String,
    pub response_time_ms: u64,
    pub test_sign_in_url: String,
    /// LDAP: each step of the test, in order, up to the first failure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<TestStep>,
}

/// The one validator of every `next` / `returnTo`: a relative path on this site, or nothing. Never another origin:
/// not `//host` or `/\\host`, no scheme, and no control characters at all (browsers drop tab, CR and LF, so
/// `/\t/evil.example` would become `//evil.example`).
pub fn safe_return_to(raw: Option<&str>) -> Option<String> {
    let s = raw?.trim();
    let ok = s.starts_with('/')
        && !s.starts_with("//")
        && s.len() <= 512
        && !s.chars().any(|c| c.is_control() || c == '\\' || c.is_whitespace());
    ok.then(|| s.to_string())
}

/// Every code of the sign-in error page (`/auth/error?code=…`), which the LDAP JSON endpoint answers too.
pub const SIGN_IN_ERROR_CODES: &[&str] = &[
    "oauth_access_denied",
    "oauth_provider_error",
    "oauth_token_exchange_error",
    "oauth_id_token_invalid",
    "oauth_fetch_user_error",
    "oauth_email_unverified",
    "oauth_email_domain_mismatch",
    "sso_state_invalid",
    "sso_connection_not_found",
    "sso_idp_unreachable",
    "sso_user_not_provisioned",
    "sso_email_domain_not_allowed",
    "sso_domain_not_verified",
    "oauth_issuer_mismatch",
    "application_invalid",
    "rate_limited",
    "service_unavailable",
    "sso_email_in_use",
    "join_request_pending",
    "saml_not_in_allowed_group",
    "ldap_not_in_allowed_group",
    "sso_not_in_allowed_group",
    "sso_account_conflict",
    "oauth_hosted_domain_mismatch",
    "oauth_user_not_registered",
    "oauth_provider_not_found",
    "oauth_domain_uses_other_sign_in",
    "oauth_no_organization",
    "ldap_invalid_credentials",
    "ldap_form_incomplete",
    "ldap_unavailable",
    "ldap_tls_error",
    "ldap_user_attribute_missing",
    "saml_signature_invalid",
    "saml_no_idp_certificate",
    "saml_audience_mismatch",
    "saml_destination_mismatch",
    "saml_recipient_mismatch",
    "saml_issuer_mismatch",
    "saml_expired",
    "saml_not_yet_valid",
    "saml_replayed",
    "saml_in_response_to_invalid",
    "saml_response_relaystate_missing",
    "saml_idp_initiated_disabled",
    "saml_user_attribute_missing",
    "saml_email_address_domain_mismatch",
    "saml_sha1_refused",
    "saml_assertion_unsigned",
    "saml_multiple_assertions",
    "saml_assertion_missing",
    "saml_malformed_response",
    "saml_dtd_forbidden",
    "saml_subject_confirmation_invalid",
    "saml_status_not_success",
    "saml_decryption_failed",
    "mfa_required",
    "server_error",
    "invalid_request",
];

/// What a sign-in error page says for a stable error code: a title, one sentence, and the fix.
pub fn sign_in_error_text(code: &str) -> (&'static str, &'static str, &'static str) {
    match code {
        "oauth_access_denied" => ("Sign-in was cancelled", "Your identity provider did not let this sign-in through, or it was cancelled.", "Try again, and approve the request at your identity provider. If you are not allowed to use this application, ask your IT admin for access."),
        "oauth_provider_error" => ("Your identity provider reported an error", "The identity provider sent an error instead of signing you in.", "Try again in a moment. If it keeps happening, your IT admin can find the details in the organization's audit log."),
        "oauth_token_exchange_error" => ("Sign-in could not be completed", "Latchkey could not redeem the sign-in code at your identity provider.", "Try again. If it keeps happening, your IT admin should check the client id and secret in the organization's identity provider settings."),
        "oauth_id_token_invalid" => ("Sign-in could not be verified", "The identity token from your identity provider failed verification (signature, issuer, audience, time or nonce).", "Try again. If it keeps happening, your IT admin should check the issuer URL and client id, and the server clock."),
        "oauth_fetch_user_error" => ("Your profile could not be read", "Latchkey could not get your email address from your identity provider.", "Ask your IT admin to allow the openid, profile and email scopes for this application."),
        "oauth_email_unverified" => ("Your email address is not verified", "Your identity provider says your email address has not been verified.", "Verify your email address with your identity provider, then sign in again."),
        "oauth_email_domain_mismatch" => ("This email cannot sign in here", "Your email address is not in one of the domains this organization's identity provider serves.", "Sign in with your work email address, or ask your IT admin to add your domain to the connection."),
        "sso_state_invalid" => ("This sign-in link has expired", "The sign-in attempt is unknown, was already used, expired after 10 minutes, or was started in another browser.", "Start again from the sign-in page in this browser."),
        "sso_connection_not_found" => ("Single sign-on is not set up", "This organization has no identity provider connected.", "Check the sign-in link, or ask your IT admin to connect an identity provider."),
        "sso_idp_unreachable" => ("Your identity provider is unreachable", "Latchkey could not reach your organization's identity provider.", "Try again in a few minutes. If it keeps happening, your IT admin should run \"Test connection\" in the identity provider settings."),
        "sso_user_not_provisioned" => ("You are not a member yet", "You signed in at your identity provider, but this organization does not add new members automatically.", "Ask your organization's admin to add you, then sign in again."),
        "sso_email_domain_not_allowed" => ("This email cannot sign in here", "Your identity provider asserted an email address at a domain that another organization has verified. An identity provider only speaks for its own organization's domains.", "Sign in through your own organization's sign-in page. If this address should belong here, the domain's owner must release it first."),
        "sso_domain_not_verified" => ("Your email domain is not verified yet", "This organization has not proven that it owns your email domain, so its identity provider cannot sign you in with that address yet.", "Ask your IT admin to verify the domain on the organization's Domains page (a DNS TXT record), then sign in again."),
        "oauth_issuer_mismatch" => ("Sign-in came from the wrong identity provider", "The answer was issued by a different identity provider than the one this organization uses.", "Start again from the sign-in page. If it keeps happening, your IT admin should check the issuer URL."),
        "application_invalid" => ("This application is not set up to sign in here", "The application that sent you here is unknown to Latchkey, or asked to send you back to an address it has not registered.", "Go back to the application and try again. If it keeps happening, its operator must register the exact redirect URI."),
        "rate_limited" => ("Too many sign-in attempts", "Too many sign-ins were started from your network in the last minute.", "Wait a minute, then start again from the sign-in page."),
        "service_unavailable" => ("Sign-in is briefly unavailable", "Latchkey could not reach its database to finish your sign-in.", "Wait a few seconds, then start again from the sign-in page."),
        "sso_email_in_use" => ("An account with this email already exists", "Your email address belongs to an existing Latchkey account that is not linked to this identity provider.", "Sign in with your password instead. Linking happens automatically once your organization has verified its email domain."),
        "join_request_pending" => ("Your request to join is waiting for approval", "You signed in at your identity provider. This organization approves new members by hand, and your request is now with its owners and admins.", "Wait for an owner or admin to approve it, then sign in again."),
        "saml_not_in_allowed_group" | "ldap_not_in_allowed_group" | "sso_not_in_allowed_group" => ("You are not in a group that may sign in here", "This organization lets only members of certain groups in your company's directory sign in, and you are in none of them (any membership you had here has ended).", "Ask your IT admin to add you to the right group, then sign in again."),
        "oauth_hosted_domain_mismatch" => ("Use your work account", "This sign-in provider accepts only accounts of certain organizations, and the account you chose is not one of them (a personal account with a work address is not enough).", "Sign in again and pick your work account at the provider."),
        "oauth_user_not_registered" => ("No account for this address", "You signed in at the provider, but this service does not create accounts automatically and has none for your address.", "Ask the service's administrator to create your account, then sign in again."),
        "oauth_provider_not_found" => ("This sign-in option is not available", "The sign-in provider in the link does not exist (any more).", "Go back to the sign-in page and choose another way to sign in."),
        "oauth_domain_uses_other_sign_in" => ("Sign in through your organization", "Your email domain belongs to an organization that has not chosen this provider for signing in.", "Go back to the sign-in page and enter your email address: it takes you to your organization's way of signing in."),
        "oauth_no_organization" => ("Choose your organization", "You signed in, but the application needs one organization to sign you in to, and you belong to none or several.", "Ask the application's administrator to invite you, or sign in from your organization's own sign-in link."),
        "sso_account_conflict" => ("This account belongs to someone else", "Another person's entry at your identity provider already signs in to the account with this email address, so yours cannot.", "Ask your IT admin to give each person their own email address in the directory or IdP."),
        "ldap_invalid_credentials" => ("The name or password is not right", "Your company's directory did not accept that name and password.", "Check the name and password you use for your work account and try again. After several failed attempts, wait a few minutes."),
        "ldap_form_incomplete" => ("Enter your name and password", "The sign-in form was sent without a name, a password or its connection.", "Start again from the sign-in page."),
        "ldap_unavailable" => ("Your company's directory did not answer", "Latchkey could not reach your organization's LDAP directory, or it did not answer in time.", "Try again in a minute. If it keeps happening, your IT admin should run the connection's test on the Identity provider page."),
        "ldap_tls_error" => ("The connection to your directory is not secure", "The LDAP directory's TLS certificate is not trusted (wrong CA, wrong host name, or expired), so no password was sent.", "Your IT admin should check the CA certificate and server URL of the LDAP connection."),
        "ldap_user_attribute_missing" => ("Your directory entry is missing something", "Your entry in the company directory has no email address (or no stable identifier) that Latchkey can use.", "Ask your IT admin to add your email to your directory entry, or to check the connection's attribute names."),
        "saml_signature_invalid" => ("Sign-in could not be verified", "The SAML response from your identity provider is not signed by a certificate this organization configured, or its signature does not cover what it should.", "Try again. If it keeps happening, your IT admin should update the IdP's signing certificate in the SAML connection (re-import the metadata)."),
        "saml_no_idp_certificate" => ("Single sign-on is not finished being set up", "The SAML connection has no identity provider certificate, so no response can be trusted.", "Your IT admin must add the IdP's metadata or signing certificate to the SAML connection."),
        "saml_audience_mismatch" => ("Sign-in was meant for another application", "The SAML assertion names a different service provider (Audience) than this connection's entity ID.", "Your IT admin should set the IdP application's Audience / SP Entity ID to the entity ID shown on the connection."),
        "saml_destination_mismatch" | "saml_recipient_mismatch" => ("Sign-in was sent to the wrong address", "The SAML response was addressed to a different Assertion Consumer Service URL.", "Your IT admin should set the IdP application's ACS (Single sign-on) URL to the one shown on the connection."),
        "saml_issuer_mismatch" => ("Sign-in came from the wrong identity provider", "The SAML response was issued by a different entity ID than the connection's IdP.", "Your IT admin should re-import the IdP's metadata so the entity ID matches."),
        "saml_expired" => ("This sign-in has expired", "The SAML assertion is past its validity window.", "Start again from the sign-in page. If it keeps happening, the clocks of the IdP and Latchkey differ: your IT admin can raise the clock skew (up to 5 minutes)."),
        "saml_not_yet_valid" => ("This sign-in is not valid yet", "The SAML assertion's validity starts in the future: the identity provider's clock is ahead.", "Try again in a minute. Your IT admin can raise the clock skew (up to 5 minutes)."),
        "saml_replayed" => ("This sign-in was already used", "The same SAML assertion arrived twice; each can be used once.", "Start again from the sign-in page."),
        "saml_in_response_to_invalid" => ("This sign-in does not match a request", "The SAML response answers a sign-in that is unknown, expired, or already finished.", "Start again from the sign-in page."),
        "saml_response_relaystate_missing" => ("This sign-in lost its place", "The SAML response came back without the RelayState that ties it to your sign-in.", "Start again. If it keeps happening, your IT admin should make sure the IdP returns RelayState unchanged."),
        "saml_idp_initiated_disabled" => ("Start the sign-in here", "This organization accepts SAML sign-ins only when they start at Latchkey, not from the identity provider's dashboard.", "Open the application's sign-in page and sign in from there, or ask your IT admin to allow IdP-initiated sign-in."),
        "saml_user_attribute_missing" => ("Your profile is incomplete", "The SAML assertion has no NameID or no email address Latchkey could read.", "Your IT admin should send the email as an attribute (email, mail or the emailaddress claim) or use the email NameID format."),
        "saml_email_address_domain_mismatch" => ("This email cannot sign in here", "Your email address is not in one of the domains this SAML connection serves.", "Sign in with your work email address, or ask your IT admin to add your domain to the connection."),
        "saml_sha1_refused" => ("Sign-in uses a weak signature", "The identity provider signed with SHA-1, which this connection refuses.", "Your IT admin should switch the IdP application to SHA-256 signatures."),
        "saml_assertion_unsigned" => ("Sign-in could not be verified", "This connection requires the SAML assertion itself to be signed, and it was not.", "Your IT admin should enable assertion signing at the IdP, or relax the setting on the connection."),
        "saml_multiple_assertions" | "saml_assertion_missing" | "saml_malformed_response" | "saml_dtd_forbidden" | "saml_subject_confirmation_invalid" => ("The sign-in response was refused", "The SAML response is not in a form Latchkey accepts (exactly one assertion, no DTD, comments or processing instructions).", "Start again. If it keeps happening, your IT admin will find the exact reason in the organization's audit log."),
        "saml_status_not_success" => ("Your identity provider did not sign you in", "The identity provider answered with an error status instead of an assertion.", "Try again. If you should have access, ask your IT admin to assign you to the application at the IdP."),
        "saml_decryption_failed" => ("Sign-in could not be decrypted", "The encrypted SAML assertion could not be decrypted with this connection's key, or uses an unsupported algorithm.", "Your IT admin should re-download the SP metadata into the IdP (encryption certificate) and use AES-128-GCM or AES-128-CBC with RSA-OAEP."),
        "mfa_required" => ("Multi-factor authentication is required", "This organization requires a second factor.", "Complete the MFA challenge to continue."),
        _ => ("Sign-in failed", "Something went wrong while signing you in.", "Start again from the sign-in page. If it keeps happening, contact your IT admin."),
    }
}

/// What the Identity provider page needs, also before anything is configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SsoPage {
    pub callback_url: String,
    pub login_url: String,
    pub settings: Option<SsoSettings>,
}

/// The IdP presets of the console: label, issuer placeholder, and where that IdP shows each value.
pub fn provider_preset(provider: &str) -> (&'static str, &'static str, &'static str) {
    match provider {
        "okta" => ("Okta", "https://your-org.okta.com",
            "In the Okta Admin Console: Applications → Create App Integration → OIDC, Web Application. Paste the callback URL as the Sign-in redirect URI. The issuer is your Okta domain (or https://your-org.okta.com/oauth2/default for the default authorization server); the Client ID and Client secret are on the app's General tab."),
        "azure" => ("Azure AD / Entra ID", "https://login.microsoftonline.com/<tenant-id>/v2.0",
            "In the Microsoft Entra admin center: App registrations → New registration, platform Web, with the callback URL as redirect URI. The issuer is https://login.microsoftonline.com/<Directory (tenant) ID>/v2.0; the client id is the Application (client) ID on Overview; create the secret under Certificates & secrets and copy its Value (not the Secret ID)."),
        "google" => ("Google Workspace", "https://accounts.google.com",
            "In the Google Cloud console: APIs & Services → Credentials → Create credentials → OAuth client ID, type Web application, with the callback URL as an authorized redirect URI. The issuer is https://accounts.google.com; the client ID and secret are shown when the client is created."),
        _ => ("Generic OIDC", "https://idp.example.com",
            "Any OpenID Connect provider: register a confidential Web client with the authorization code grant, scopes openid profile email, and the callback URL as redirect URI. The issuer is the URL under which /.well-known/openid-configuration is served."),
    }
}

/// The TXT record an owner publishes to prove a domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TxtRecord {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DomainInfo {
    pub id: String,
    pub domain: String,
    /// `pending`, `verified` or `failed`.
    pub status: String,
    pub txt_record: TxtRecord,
    /// `off`, `auto` or `approval`.
    pub auto_join: String,
    pub last_checked_at: Option<String>,
    /// What the last DNS lookup found: `verified`, `no_record`, `nxdomain`, `wrong_value`, `multiple_values`,
    /// `timeout`, `servfail`, `dns_error`, `held_elsewhere`; null before the first check.
    pub last_result: Option<String>,
    pub last_message: Option<String>,
    pub verified_at: Option<String>,
    /// Set when a verified domain's record disappeared; SSO routing stops after the grace period.
    pub lapsed_at: Option<String>,
    pub next_check_at: Option<String>,
    /// Whether sign-ins with this domain go to the organization's identity provider now.
    pub routes_to_sso: bool,
    pub created_at: String,
}

/// What the Domains page needs in one round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DomainsPage {
    pub domains: Vec<DomainInfo>,
    pub has_active_connection: bool,
    pub lapse_grace_hours: i64,
    pub can_manage: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JoinRequestInfo {
    pub id: String,
    pub organization_id: String,
    pub organization_name: String,
    pub user_id: String,
    pub email: String,
    pub name: String,
    /// How the request came: `password` (address not proven) or `sso` (asserted by the org's IdP).
    pub via: String,
    /// `pending`, `approved` or `denied`.
    pub status: String,
    pub created_at: String,
    pub decided_at: Option<String>,
}

/// The answer of email-first discovery: `sso` with the URL to go to, or `password`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Discovery {
    pub method: String,
    pub url: Option<String>,
    /// `oidc` or `saml` when `method` is `sso`.
    pub protocol: Option<String>,
    pub connection_id: Option<String>,
}

/// An organization's security policy (SPEC §1). `exemptRoles` may still use a non-SSO method under `sso`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SecurityPolicy {
    /// `any`, `mfa` or `sso`.
    pub auth_required: String,
    pub require_mfa: bool,
    pub exempt_roles: Vec<String>,
}

/// The same policy seen as SSO enforcement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SsoEnforcement {
    pub enforced: bool,
    pub exempt_roles: Vec<String>,
}

/// What the Security page needs: the policy and the facts the lockout guard checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SecurityPage {
    pub policy: SecurityPolicy,
    pub has_tested_connection: bool,
    pub owner_signed_in_with_sso: bool,
    pub caller_session_is_sso: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct OrgSessionInfo {
    pub id: String,
    pub user_id: String,
    pub email: String,
    pub name: String,
    /// `password` or `sso`.
    pub method: String,
    pub connection_id: Option<String>,
    pub mfa_done: bool,
    pub created_at: String,
    pub expires_at: String,
    pub last_seen_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub current: bool,
    /// The registered application this session was handed to, if any (its name).
    #[serde(default)]
    pub application: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MfaStatus {
    pub enabled: bool,
    pub recovery_codes_left: i64,
    /// Whether this session has passed the second factor.
    pub session_verified: bool,
}

/// A new TOTP secret to add to an authenticator app: as a QR code (SVG) and as the key to type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MfaEnrollment {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

/// A registered application (operators only), as the API and the console show it. The secret never appears.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ApplicationInfo {
    pub id: String,
    /// Public: goes in sign-in URLs (`app_…`).
    pub client_id: String,
    pub name: String,
    /// Exact-match list: the browser is only ever sent back to one of these.
    pub redirect_uris: Vec<String>,
    pub session_duration_minutes: i64,
    pub max_session_minutes: i64,
    /// `latchkey`: Latchkey's pages challenge the second factor before handing back; `app`: hand back at once with
    /// an intermediate session and the app runs the challenge through the API.
    pub mfa_handling: String,
    /// Secrets that still work (a rotated one until its grace period ends); only their first characters.
    pub secrets: Vec<ApplicationSecretInfo>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSecretInfo {
    pub id: String,
    pub prefix: String,
    pub created_at: String,
    pub expires_at: Option<String>,
}

/// The event types a webhook can subscribe to, each with what it means (API docs and the console's checkboxes).
pub const WEBHOOK_EVENT_TYPES: &[(&str, &str)] = &[
    ("signin.succeeded", "Someone signed in through one of the organization's connections"),
    ("signin.failed", "A sign-in through one of the organization's connections failed (with its error code)"),
    ("member.added", "A member joined (first SSO sign-in, or an approved join request)"),
    ("member.removed", "A member was removed (by an owner, or by the IdP's groups)"),
    ("member.role_changed", "A member's role changed (by an owner, or by group-to-role mapping)"),
    ("connection.created", "An identity provider connection was added"),
    ("connection.changed", "A connection's settings or IdP metadata changed"),
    ("connection.deleted", "A connection was deleted"),
    ("domain.verified", "A domain was verified (or its record came back)"),
    ("domain.lapsed", "A verified domain's DNS record disappeared"),
    ("domain.failed", "A domain could not be verified within its window"),
    ("policy.changed", "The security policy changed"),
    ("session.revoked", "An owner revoked a member's session"),
    ("certificate.expiring", "An IdP signing certificate expires soon"),
];

/// A webhook endpoint of an organization. The signing secret never appears (only at creation and rotation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookInfo {
    pub id: String,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// After a rotation, the previous secret also signs until this time (RFC 3339).
    pub previous_secret_expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A new endpoint or a rotated secret: the whole signing secret (`whsec_…`), shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookWithSecret {
    pub webhook: WebhookInfo,
    pub secret: String,
}

/// One message to one endpoint, with where its attempts stand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    /// Also the `webhook-id` header: the same on every attempt, so receivers can drop duplicates.
    pub id: String,
    pub event_type: String,
    /// `pending` (sending or waiting to retry), `delivered` or `failed` (the retry schedule ran out).
    pub status: String,
    pub attempts: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<String>,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub payload: serde_json::Value,
}

/// An endpoint with its newest deliveries, for the console.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WebhookWithLog {
    pub webhook: WebhookInfo,
    pub deliveries: Vec<WebhookDelivery>,
}

/// An instance provider as the sign-in page shows it ("Continue with {name}"), public.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ProviderButton {
    pub id: String,
    pub name: String,
    pub slug: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Where the button goes (add `client_id`, `redirect_uri` and `state` for an application's sign-in).
    pub login_url: String,
}

/// An org's workspace SSO (reference 004): the instance provider it adopted, as one of its connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSso {
    pub provider_id: String,
    pub provider_name: String,
    /// The same setting as the security policy's `authRequired = sso` (one source of truth).
    pub enforce_sso: bool,
    /// New people at the org's verified `allowedDomains` become members with the default role.
    pub auto_provision: bool,
    /// Domains of this org the provider signs in for; empty: every domain the org verified.
    pub allowed_domains: Vec<String>,
    /// The connection that carries it (listed with the org's connections, protocol oidc, provider `instance`).
    pub connection_id: String,
    /// `active` once the provider answered the check made when saving; `error` otherwise (see the message).
    pub status: String,
    pub last_test_message: Option<String>,
    pub login_url: String,
}

/// An instance-level sign-in provider (operators only). The client id and secret never appear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ProviderInfo {
    pub id: String,
    pub name: String,
    pub slug: String,
    /// `google` (preset endpoints) or `oidc`.
    #[serde(rename = "type")]
    pub kind: String,
    pub issuer: Option<String>,
    pub auth_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub scopes: String,
    pub auto_register: bool,
    pub allowed_domains: Vec<String>,
    /// Always true: a provider cannot exist without its client credentials (which are never returned).
    pub client_secret_set: bool,
    /// The redirect URI to register at the provider (the one OIDC callback).
    pub callback_url: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A new application or a rotated secret: the whole secret, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ApplicationWithSecret {
    pub application: ApplicationInfo,
    pub client_secret: String,
}

/// The outcome of a console form that the page it returns to shows once. Console forms are plain HTML posts (the
/// pages are rendered on the server), so a result the browser must see, such as a secret shown only once, travels
/// in the session, sealed with the secret box, until that page is rendered; rendering takes it out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Notice {
    ApiKeyCreated(CreatedApiKey),
    ApplicationCreated(ApplicationWithSecret),
    SecretRotated(ApplicationWithSecret),
    RecoveryCodes(Vec<String>),
    /// The org whose connection was tested, and the outcome.
    SsoTested(String, SsoTestResult),
    /// The org whose policy was saved.
    PolicySaved(String),
    /// The connection that was tested, and the outcome (with an LDAP test's steps).
    ConnectionTested(String, ConnectionTest),
    /// A new webhook or a rotated signing secret (shown once).
    WebhookSecret(WebhookWithSecret),
    /// The instance provider that was tested, and the outcome.
    ProviderTested(String, SsoTestResult),
}

impl Notice {
    /// Which page shows it: one slot per kind, so a page never takes another page's notice.
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::ApiKeyCreated(_) => "api_key",
            Notice::ApplicationCreated(_) | Notice::SecretRotated(_) => "application",
            Notice::RecoveryCodes(_) => "recovery_codes",
            Notice::SsoTested(..) => "sso_test",
            Notice::PolicySaved(_) => "policy",
            Notice::ConnectionTested(..) => "connection_test",
            Notice::WebhookSecret(_) => "webhook",
            Notice::ProviderTested(..) => "provider_test",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_sign_in_code_has_its_own_text() {
        let fallback = sign_in_error_text("no_such_code");
        for code in SIGN_IN_ERROR_CODES.iter().filter(|c| !["server_error", "invalid_request"].contains(c)) {
            assert_ne!(sign_in_error_text(code), fallback, "{code} falls through to the generic text");
        }
    }
}
