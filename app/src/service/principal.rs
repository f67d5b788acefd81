//! Who is calling: a user through a browser session or through an API key, and request facts for the audit.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub via: Via,
}

#[derive(Debug, Clone)]
pub enum Via {
    Session { session_id: String, method: String, connection_id: Option<String>, mfa_done: bool },
    /// An API key acts as its user; when pinned it reaches only that organization. `via_connection`: the SSO
    /// connection of the session the key was created from, if any; `mfa_verified`: that session had passed its
    /// second factor (only such keys satisfy an org's MFA policy).
    ApiKey { key_id: String, org_id: Option<String>, via_connection: Option<String>, mfa_verified: bool },
}

impl Principal {
    pub fn auth_method(&self) -> &str {
        match &self.via {
            Via::Session { method, .. } => method,
            Via::ApiKey { .. } => "api_key",
        }
    }
    pub fn pinned_org(&self) -> Option<&str> {
        match &self.via {
            Via::ApiKey { org_id, .. } => org_id.as_deref(),
            Via::Session { .. } => None,
        }
    }
    /// The SSO connection this caller's credentials come from (the session's, or the one the key was minted in).
    pub fn sso_connection(&self) -> Option<&str> {
        match &self.via {
            Via::Session { method, connection_id, .. } if method == "sso" => connection_id.as_deref(),
            Via::Session { .. } => None,
            Via::ApiKey { via_connection, .. } => via_connection.as_deref(),
        }
    }
    /// The second factor was passed: by this session, or by the session that minted this key.
    pub fn mfa_done(&self) -> bool {
        matches!(&self.via, Via::Session { mfa_done: true, .. } | Via::ApiKey { mfa_verified: true, .. })
    }
    /// Refuses a key pinned to one organization on user-wide endpoints (sessions, new orgs, MFA): a pinned key
    /// reaches only its org, `me` and its own keys.
    pub fn require_unpinned(&self) -> Result<(), super::ServiceError> {
        match self.pinned_org() {
            Some(_) => Err(super::ServiceError::Forbidden(
                "This API key is pinned to one organization: it cannot reach account-wide endpoints. Use a session or an unpinned key.".into(),
            )),
            None => Ok(()),
        }
    }
    pub fn session_id(&self) -> Option<&str> {
        match &self.via {
            Via::Session { session_id, .. } => Some(session_id),
            Via::ApiKey { .. } => None,
        }
    }
}

/// Facts about the request, for sessions, rate limits and audit events.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Request facts from the TCP peer and the headers, with `X-Forwarded-For` honoured only behind `trusted` proxies.
pub fn request_meta(peer: Option<std::net::IpAddr>, headers: &http::HeaderMap, trusted: &[ipnet::IpNet]) -> RequestMeta {
    let header = |name: http::header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    // Several X-Forwarded-For headers count as one list, in order.
    let forwarded: Vec<&str> = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    let forwarded = (!forwarded.is_empty()).then(|| forwarded.join(","));
    RequestMeta {
        ip: client_ip(peer, forwarded.as_deref(), trusted),
        user_agent: header(http::header::USER_AGENT).map(|ua| ua.chars().take(300).collect()),
    }
}

/// The client's address: the TCP peer, or, when the peer is one of `trusted` proxies, the right-most address of
/// `X-Forwarded-For` that is not itself a trusted proxy. A client can prepend anything to that header, so only the
/// entries added by trusted proxies count; without trusted proxies the header is ignored.
pub fn client_ip(peer: Option<std::net::IpAddr>, forwarded_for: Option<&str>, trusted: &[ipnet::IpNet]) -> Option<String> {
    let peer = peer?;
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer.to_string());
    }
    let mut client = peer;
    if let Some(header) = forwarded_for {
        for hop in header.rsplit(',') {
            match hop.trim().parse::<std::net::IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !is_trusted(&ip) {
                        break;
                    }
                }
                // Garbage in the chain: stop at the last address we could trust.
                Err(_) => break,
            }
        }
    }
    Some(client.to_string())
}

#[cfg(test)]
mod tests {
    use super::client_ip;

    #[test]
    fn forwarded_for_counts_only_behind_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "127.0.0.1/32".parse().unwrap()];
        let peer = Some("127.0.0.1".parse().unwrap());
        assert_eq!(client_ip(peer, Some("203.0.113.7"), &trusted).as_deref(), Some("203.0.113.7"));
        // A spoofed left part is ignored: the right-most untrusted hop is the client.
        assert_eq!(client_ip(peer, Some("1.2.3.4, 203.0.113.7, 10.1.1.1"), &trusted).as_deref(), Some("203.0.113.7"));
        assert_eq!(client_ip(peer, None, &trusted).as_deref(), Some("127.0.0.1"));
        assert_eq!(client_ip(peer, Some("junk"), &trusted).as_deref(), Some("127.0.0.1"));
        // An untrusted peer's header is ignored.
        let direct = Some("198.51.100.9".parse().unwrap());
        assert_eq!(client_ip(direct, Some("203.0.113.7"), &trusted).as_deref(), Some("198.51.100.9"));
        assert_eq!(client_ip(peer, Some("203.0.113.7"), &[]).as_deref(), Some("127.0.0.1"));
    }
}
