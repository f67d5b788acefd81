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
    /// connection of the session the key was created from, if any.
    ApiKey { key_id: String, org_id: Option<String>, via_connection: Option<String> },
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
    pub fn mfa_done(&self) -> bool {
        matches!(&self.via, Via::Session { mfa_done: true, .. })
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
