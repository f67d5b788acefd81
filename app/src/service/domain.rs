//! Domain newtypes: every value a person types is parsed here once, so invalid input never reaches SQL.
use super::error::{ServiceError, ServiceResult};
use serde::{Deserialize, Serialize};

/// A normalized (trimmed, lowercased) email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> ServiceResult<Self> {
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err(ServiceError::validation("email", "Enter your email address."));
        }
        let invalid = || ServiceError::validation("email", "Enter a valid email address, like name@company.com.");
        let (local, domain) = s.rsplit_once('@').ok_or_else(invalid)?;
        if !domain.contains('.') || domain.starts_with('[') {
            return Err(ServiceError::validation("email", "Use an email address at a real domain, like name@company.com."));
        }
        // The domain goes through the same IDNA mapping as verified domains (punycode), so `bücher.example` and
        // `xn--bcher-kva.example` are one domain for routing, the domain check and linking.
        let ascii = idna::domain_to_ascii(domain).map_err(|_| invalid())?;
        let s = format!("{local}@{ascii}");
        if s.len() > 254 || ascii.is_empty() || !email_address::EmailAddress::is_valid(&s) {
            return Err(invalid());
        }
        Ok(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn domain(&self) -> &str {
        self.0.rsplit('@').next().unwrap_or_default()
    }
}

/// A URL-safe organization slug: 3–48 of `a-z 0-9 -`, no hyphen at either end, not a reserved word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgSlug(String);

const RESERVED_SLUGS: &[&str] = &["api", "new", "admin", "login", "signin", "signup", "callback", "settings", "static", "pkg"];

impl OrgSlug {
    pub fn parse(raw: &str) -> ServiceResult<Self> {
        let s = raw.trim().to_string();
        let msg = "The slug must be 3 to 48 characters of lowercase letters, digits and hyphens, not starting or ending with a hyphen (e.g. acme-corp).";
        let ok_chars = s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !(3..=48).contains(&s.len()) || !ok_chars || s.starts_with('-') || s.ends_with('-') {
            return Err(ServiceError::validation("slug", msg));
        }
        if RESERVED_SLUGS.contains(&s.as_str()) {
            return Err(ServiceError::validation("slug", format!("\"{s}\" is reserved; choose another slug.")));
        }
        Ok(Self(s))
    }
    /// A slug suggested from an organization name ("Acme Corp." → "acme-corp").
    pub fn suggest(name: &str) -> String {
        let mut out = String::new();
        for c in name.trim().to_lowercase().chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
        }
        out.trim_matches('-').chars().take(48).collect::<String>().trim_end_matches('-').to_string()
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name: trimmed, 1 to `max` characters, no control characters.
pub fn parse_name(field: &'static str, raw: &str, max: usize, required: bool) -> ServiceResult<String> {
    let s = raw.trim();
    if s.is_empty() && required {
        return Err(ServiceError::validation(field, format!("Enter a {field}.")));
    }
    if s.chars().count() > max {
        return Err(ServiceError::validation(field, format!("The {field} can be at most {max} characters.")));
    }
    if s.chars().any(char::is_control) {
        return Err(ServiceError::validation(field, format!("The {field} cannot contain control characters.")));
    }
    Ok(s.to_string())
}

/// A new password: 10 to 256 characters (NIST 800-63B: length over composition rules).
pub fn parse_new_password(raw: &str) -> ServiceResult<&str> {
    let n = raw.chars().count();
    if n < 10 {
        return Err(ServiceError::validation("password", "Use a password of at least 10 characters."));
    }
    if n > 256 {
        return Err(ServiceError::validation("password", "Use a password of at most 256 characters."));
    }
    Ok(raw)
}

/// A ULID given in a URL or body; `field` names it in the error.
pub fn parse_id(field: &'static str, raw: &str) -> ServiceResult<String> {
    ulid::Ulid::from_string(raw.trim())
        .map(|u| u.to_string())
        .map_err(|_| ServiceError::validation(field, format!("{field} must be a 26-character ULID, as returned by the API.")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn parse(raw: &str) -> ServiceResult<Self> {
        match raw.trim() {
            "owner" => Ok(Self::Owner),
            "admin" => Ok(Self::Admin),
            "member" => Ok(Self::Member),
            _ => Err(ServiceError::validation("role", "The role must be one of owner, admin or member.")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(Email::parse("  Ann@Example.COM ").map(|e| e.0).ok(), Some("ann@example.com".into()));
        // Internationalized domains are stored as punycode, like verified domains.
        assert_eq!(Email::parse("ann@Bücher.example").map(|e| e.0).ok(), Some("ann@xn--bcher-kva.example".into()));
        assert_eq!(Email::parse("ann@xn--bcher-kva.example").map(|e| e.0).ok(), Some("ann@xn--bcher-kva.example".into()));
        for bad in ["", "ann", "ann@", "@example.com", "ann@localhost", "a b@example.com", "ann@[127.0.0.1]"] {
            assert!(Email::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn slugs_follow_the_rules() {
        assert!(OrgSlug::parse("acme-corp").is_ok());
        for bad in ["ab", "-acme", "acme-", "Acme", "ac me", "acme_corp", "api", &"a".repeat(49)] {
            assert!(OrgSlug::parse(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(OrgSlug::suggest("  Acme Corp. (EU) "), "acme-corp-eu");
    }

    #[test]
    fn roles_order_by_power() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Member);
        assert!(Role::parse("root").is_err());
    }
}

/// Whether `url` names this machine (127.0.0.0/8, [::1] or localhost): the one place plain http is allowed for an
/// operator-supplied URL.
pub fn is_loopback_host(url: &url::Url) -> bool {
    matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || url.host_str() == Some("localhost")
}
