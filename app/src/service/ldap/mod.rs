//! LDAP connections: the settings an owner gives, and the directory client (search the person with the service
//! account, bind as the found DN with the typed password, read attributes and groups). Sign-in itself is in
//! `service::signin::ldap`, which hands the result to the shared ending.
//!
//! - TLS always, unless the connection explicitly allows plain `ldap://`: `ldaps://`, or StartTLS on `ldap://`,
//!   verified against the connection's CA (PEM) or the system roots. The TCP connection is made here, to an
//!   address the SSRF guard accepted (`--allow-private-idp` lets an on-premises directory in), and handed to ldap3.
//! - The typed name goes into the filter escaped (RFC 4515); a name matching no entry or several is the same
//!   failure as a wrong password; an empty password never reaches a bind (an unauthenticated bind "succeeds").
//! - The person's password is used for that one bind and never kept. Connections are reused from two small pools
//!   per connection and node: one bound as the service account (searches), one only for people's binds (a bind
//!   replaces the previous identity, so it needs no rebind).
pub mod pool;
pub mod wire;

use crate::model::ConnectionInput;
use crate::service::error::{ServiceError, ServiceResult};
use serde::{Deserialize, Serialize};

pub const DEFAULT_USER_FILTER: &str = "(|(uid={username})(mail={username}))";
const MAX_TIMEOUT_SECS: u64 = 60;

/// What `connections.settings` holds for an LDAP connection (the bind password is in `connections.secret`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LdapSettings {
    pub server_url: String,
    /// Plain `ldap://` without StartTLS (the console warns).
    pub allow_plaintext: bool,
    pub ca_certificate: Option<String>,
    pub bind_dn: String,
    pub user_base_dn: String,
    pub user_filter: String,
    pub subject_attribute: String,
    pub email_attribute: String,
    pub name_attribute: String,
    /// An attribute of the person listing their groups (`memberOf`), or empty.
    pub group_attribute: String,
    /// Or a group search: its base and filter (`{dn}` is the person's DN, `{username}` the typed name).
    pub group_base_dn: Option<String>,
    pub group_filter: Option<String>,
    pub connect_timeout_secs: u64,
    pub operation_timeout_secs: u64,
}

impl Default for LdapSettings {
    fn default() -> Self {
        Self {
            server_url: String::new(),
            allow_plaintext: false,
            ca_certificate: None,
            bind_dn: String::new(),
            user_base_dn: String::new(),
            user_filter: DEFAULT_USER_FILTER.into(),
            subject_attribute: "entryUUID".into(),
            email_attribute: "mail".into(),
            name_attribute: "cn".into(),
            group_attribute: "memberOf".into(),
            group_base_dn: None,
            group_filter: None,
            connect_timeout_secs: 5,
            operation_timeout_secs: 5,
        }
    }
}

impl LdapSettings {
    pub fn is_ldaps(&self) -> bool {
        self.server_url.starts_with("ldaps://")
    }
    pub fn uses_tls(&self) -> bool {
        self.is_ldaps() || !self.allow_plaintext
    }
}

/// The secret box's associated data for a connection's bind password.
pub fn secret_aad(connection_id: &str) -> String {
    format!("ldap-bind-password:{connection_id}")
}

fn text(field: &'static str, v: &str, max: usize, what: &str) -> ServiceResult<String> {
    let v = v.trim();
    if v.is_empty() || v.len() > max || v.chars().any(char::is_control) {
        return Err(ServiceError::validation(field, what.to_string()));
    }
    Ok(v.to_string())
}

fn attribute(field: &'static str, v: &str) -> ServiceResult<String> {
    let v = v.trim();
    let ok = !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';') && v.starts_with(|c: char| c.is_ascii_alphabetic());
    if !ok {
        return Err(ServiceError::validation(field, format!("{v:?} is not an LDAP attribute name (letters, digits and hyphens, e.g. mail).")));
    }
    Ok(v.to_string())
}

/// Checks a filter template: it parses as an LDAP filter once a sample value is put in, and names `{username}`.
fn filter(field: &'static str, v: &str, needs: &str) -> ServiceResult<String> {
    let v = v.trim();
    if v.len() > 1024 || !v.contains(needs) || ldap3::parse_filter(fill(v, "sample", "cn=sample")).is_err() {
        return Err(ServiceError::validation(field, format!("Give an LDAP filter in parentheses that uses {needs}, e.g. {DEFAULT_USER_FILTER}.")));
    }
    Ok(v.to_string())
}

/// A filter template with the typed name and the DN put in, each escaped for a filter value (RFC 4515).
pub fn fill(template: &str, username: &str, dn: &str) -> String {
    template.replace("{username}", &ldap3::ldap_escape(username)).replace("{dn}", &ldap3::ldap_escape(dn))
}

/// Parses the server URL: `ldap://host[:port]` or `ldaps://host[:port]`, nothing else.
fn server_url(raw: &str) -> ServiceResult<String> {
    let bad = || ServiceError::validation("serverUrl", "Give the directory as ldaps://host:636 or ldap://host:389 (StartTLS), without a path or credentials.");
    let url = url::Url::parse(raw.trim()).map_err(|_| bad())?;
    if !matches!(url.scheme(), "ldap" | "ldaps") || url.host_str().is_none_or(str::is_empty) || !url.username().is_empty() || url.password().is_some() {
        return Err(bad());
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(bad());
    }
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!("{}://{}{port}", url.scheme(), url.host_str().unwrap_or_default()))
}

/// Applies the LDAP fields of `b` onto `s`; returns the new bind password when one was given.
pub fn apply(s: &mut LdapSettings, b: &ConnectionInput, creating: bool) -> ServiceResult<Option<String>> {
    if let Some(v) = &b.server_url {
        s.server_url = server_url(v)?;
    }
    if let Some(v) = b.allow_plaintext {
        s.allow_plaintext = v;
    }
    if let Some(v) = &b.ca_certificate {
        let v = v.trim();
        s.ca_certificate = if v.is_empty() {
            None
        } else {
            pool::roots_from_pem(v).map_err(|m| ServiceError::validation("caCertificate", m))?;
            Some(v.to_string())
        };
    }
    if let Some(v) = &b.bind_dn {
        s.bind_dn = text("bindDn", v, 1024, "Give the service account's DN, e.g. cn=latchkey,ou=services,dc=example,dc=com.")?;
    }
    if let Some(v) = &b.user_base_dn {
        s.user_base_dn = text("userBaseDn", v, 1024, "Give the base DN to search people under, e.g. ou=people,dc=example,dc=com.")?;
    }
    if let Some(v) = &b.user_filter {
        s.user_filter = filter("userFilter", v, "{username}")?;
    }
    if let Some(v) = &b.subject_attribute {
        s.subject_attribute = attribute("subjectAttribute", v)?;
    }
    if let Some(v) = &b.email_attribute {
        s.email_attribute = attribute("emailAttribute", v)?;
    }
    if let Some(v) = &b.name_attribute {
        s.name_attribute = attribute("nameAttribute", v)?;
    }
    if let Some(v) = &b.group_attribute {
        s.group_attribute = if v.trim().is_empty() { String::new() } else { attribute("groupAttribute", v)? };
    }
    if let Some(v) = &b.group_base_dn {
        s.group_base_dn = if v.trim().is_empty() { None } else { Some(text("groupBaseDn", v, 1024, "Give the base DN of the groups, e.g. ou=groups,dc=example,dc=com.")?) };
    }
    if let Some(v) = &b.group_filter {
        if v.contains("{username}") {
            // What a person types is not who they are: groups are looked up by the entry's DN only.
            return Err(ServiceError::validation("groupFilter", "A group filter finds groups by the person's entry: use {dn}, not {username}."));
        }
        s.group_filter = if v.trim().is_empty() { None } else { Some(filter("groupFilter", v, "{dn}")?) };
    }
    if s.group_base_dn.is_some() && s.group_filter.is_none() {
        s.group_filter = Some("(member={dn})".into());
    }
    for (field, v, dest) in [
        ("connectTimeoutSeconds", b.connect_timeout_seconds, &mut s.connect_timeout_secs),
        ("operationTimeoutSeconds", b.operation_timeout_seconds, &mut s.operation_timeout_secs),
    ] {
        if let Some(v) = v {
            if !(1..=MAX_TIMEOUT_SECS as i64).contains(&v) {
                return Err(ServiceError::validation(field, format!("A timeout is 1 to {MAX_TIMEOUT_SECS} seconds.")));
            }
            *dest = v as u64;
        }
    }
    if s.server_url.is_empty() || s.bind_dn.is_empty() || s.user_base_dn.is_empty() {
        return Err(ServiceError::validation("serverUrl", "An LDAP connection needs serverUrl, bindDn, bindPassword and userBaseDn."));
    }
    if s.server_url.starts_with("ldaps://") {
        s.allow_plaintext = false;
    }
    let password = match b.bind_password.as_deref() {
        Some(p) if !p.is_empty() && p.len() <= 1024 => Some(p.to_string()),
        Some(_) => return Err(ServiceError::validation("bindPassword", "Give the service account's password (up to 1024 characters).")),
        None if creating => return Err(ServiceError::validation("bindPassword", "Give the service account's password.")),
        None => None,
    };
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_names_cannot_change_the_filter() {
        let f = fill(DEFAULT_USER_FILTER, "*)(uid=*", "");
        assert_eq!(f, "(|(uid=\\2a\\29\\28uid=\\2a)(mail=\\2a\\29\\28uid=\\2a))");
        assert!(ldap3::parse_filter(&f).is_ok());
        assert_eq!(fill("(member={dn})", "", "cn=a\\,b,dc=x"), "(member=cn=a\\5c,b,dc=x)");
    }

    #[test]
    fn server_urls_and_attributes_are_checked() {
        assert_eq!(server_url("ldaps://dir.example.com:636/").unwrap(), "ldaps://dir.example.com:636");
        assert!(server_url("http://dir.example.com").is_err());
        assert!(server_url("ldap://u:p@dir.example.com").is_err());
        assert!(server_url("ldap://dir.example.com/dc=x??sub").is_err());
        assert!(attribute("a", "objectGUID").is_ok());
        assert!(attribute("a", "mail)(x").is_err());
        assert!(filter("f", "(uid={username})", "{username}").is_ok());
        assert!(filter("f", "(uid={username}", "{username}").is_err());
        assert!(filter("f", "(uid=alice)", "{username}").is_err());
    }
}
