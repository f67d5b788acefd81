//! Configuration: every setting is a flag and an environment variable (SPEC §5).
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Clone, Parser)]
#[command(name = "latchkey", version, about = "Self-hosted enterprise single sign-on")]
pub struct Config {
    /// Address to listen on (`host:port`; port 0 picks a free one).
    #[arg(long, env = "LATCHKEY_BIND", default_value = "127.0.0.1:3000")]
    pub bind: String,
    /// `sqlite://file.db?mode=rwc` (default, one node) or `postgres://…` (several nodes).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://latchkey.db?mode=rwc", global = true)]
    pub database_url: String,
    /// The URL people and identity providers reach Latchkey at; callback URLs are built from it.
    /// Default: `http://` + the bound address (http://127.0.0.1:3000 with the default --bind).
    #[arg(long, env = "LATCHKEY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// File holding the key that encrypts secrets at rest; generated on first start.
    #[arg(long, env = "LATCHKEY_KEY_FILE", default_value = "latchkey.key", global = true)]
    pub key_file: PathBuf,
    /// Allow server-side fetches of IdP URLs that resolve to private, loopback or link-local addresses.
    #[arg(long, env = "LATCHKEY_ALLOW_PRIVATE_IDP")]
    pub allow_private_idp: bool,
    /// Allow webhook endpoints on private, loopback and link-local addresses, and plain http (on-premises
    /// receivers). Separate from --allow-private-idp: that one trusts an operator's IdP, this one every org owner.
    #[arg(long, env = "LATCHKEY_ALLOW_PRIVATE_WEBHOOKS")]
    pub allow_private_webhooks: bool,
    /// `ip:port` of the DNS resolver used for domain checks (default: the system's).
    #[arg(long, env = "LATCHKEY_DNS_SERVER")]
    pub dns_server: Option<String>,
    /// Unit of the domain re-check schedule, in milliseconds: pending domains are re-checked after 1, 2, 4 …
    /// (at most 60) units, verified ones every 1440 units (one day at the default of one minute).
    #[arg(long, env = "LATCHKEY_DOMAIN_CHECK_UNIT_MS", default_value_t = 60_000, value_parser = clap::value_parser!(i64).range(100..=3_600_000))]
    pub domain_check_unit_ms: i64,
    /// Where the built console (pkg/ and assets) is; cargo-leptos sets it.
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: String,
    /// Comma-separated CIDRs of the reverse proxies / load balancers in front of Latchkey (e.g.
    /// `10.0.0.0/8,127.0.0.1/32`). Only when the TCP peer is one of them is the client address taken from
    /// `X-Forwarded-For` (its right-most untrusted entry); rate limits, sessions and the audit log use it.
    #[arg(long, env = "LATCHKEY_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_cidr)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// SSO sign-in starts (and, separately, callbacks) allowed per client address per minute.
    #[arg(long, env = "LATCHKEY_SSO_RATE_LIMIT", default_value_t = 60, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub sso_rate_limit: i64,
    /// Audit events older than this many days are deleted by the housekeeping pass (one node at a time).
    #[arg(long, env = "LATCHKEY_AUDIT_RETENTION_DAYS", default_value_t = 365, value_parser = clap::value_parser!(i64).range(1..=36_500))]
    pub audit_retention_days: i64,
    /// Unit of the webhook retry schedule in milliseconds (retries after 5, 300, 1800, 7200, 18000, 36000 and 36000
    /// units: 27 hours at the default of one second); tests shorten it.
    #[arg(long, env = "LATCHKEY_WEBHOOK_RETRY_UNIT_MS", default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=60_000))]
    pub webhook_retry_unit_ms: i64,
    /// Serve `/metrics` on this separate address (`host:port`) instead of the main one, e.g. `127.0.0.1:9100`
    /// so that only the Prometheus server on the internal network can scrape it. Unset: `/metrics` is on --bind.
    #[arg(long, env = "LATCHKEY_METRICS_BIND")]
    pub metrics_bind: Option<String>,
    /// Where instance providers of type `google` discover Google. Only tests change it (to their own IdP, which
    /// then stands in for Google, `hd` claim included); never set it in production.
    #[arg(long, env = "LATCHKEY_GOOGLE_ISSUER", default_value = "https://accounts.google.com", hide = true)]
    pub google_issuer: String,
    /// Log format: `text` or `json`.
    #[arg(long, env = "LATCHKEY_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Without a command, Latchkey serves. With one, it acts on the database and exits.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Instance operators (they manage registered applications). Works while a server runs, on SQLite and PostgreSQL.
    Operators {
        #[command(subcommand)]
        action: OperatorAction,
    },
    /// The signing keys of session JWTs.
    Keys {
        #[command(subcommand)]
        action: KeyAction,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum KeyAction {
    /// Starts signing with a new key; the previous public key stays in the JWKS until its tokens have expired.
    Rotate,
}

#[derive(Debug, Clone, Subcommand)]
pub enum OperatorAction {
    /// Grants the operator role to the account with this email.
    Add { email: String },
    /// Takes the operator role away.
    Remove { email: String },
    /// Lists the operators.
    List,
}

/// A CIDR (`10.0.0.0/8`) or a single address (`127.0.0.1`, taken as /32 or /128).
fn parse_cidr(raw: &str) -> Result<ipnet::IpNet, String> {
    let s = raw.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is not an IP address or CIDR (e.g. 10.0.0.0/8)"))
}

impl Config {
    /// The public URL without a trailing slash, and whether cookies must be `Secure`. Plain http is accepted
    /// only for a loopback host.
    pub fn public_url(&self, bound: std::net::SocketAddr) -> Result<(String, bool), String> {
        let raw = self.public_url.clone().unwrap_or_else(|| format!("http://{bound}"));
        let url = url::Url::parse(raw.trim()).map_err(|e| format!("--public-url {raw:?} is not a URL: {e}"))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => return Err(format!("--public-url must be http or https, not {other}")),
        };
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => return Err("--public-url needs a host".into()),
        };
        if !https && !loopback {
            return Err("--public-url must be https unless its host is loopback (127.0.0.1, ::1, localhost)".into());
        }
        Ok((url.as_str().trim_end_matches('/').to_string(), https))
    }
}
