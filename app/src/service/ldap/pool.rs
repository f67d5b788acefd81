//! The directory client: connections made through the SSRF guard, TLS by the connection's CA, and two bounded
//! pools per connection (service-bound for searches, and people's binds). Nothing here outlives a settings change:
//! a pool is keyed by the connection's settings and secret, so new settings open new connections.
use super::{wire, LdapSettings};
use crate::service::safe_http;
use ldap3::asn1::{StructureTag, PL};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, SearchOptions, StdStream};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections per pool (searches, and people's binds), per LDAP connection and node.
pub const POOL_SIZE: usize = 4;
/// An idle connection older than this is closed rather than reused (directories drop idle clients).
const MAX_IDLE: Duration = Duration::from_secs(120);

/// Why the directory step failed, in the terms of the stable codes.
#[derive(Debug)]
pub enum DirError {
    /// Wrong password, unknown name, or a name matching several entries: one answer for all.
    InvalidCredentials(String),
    Unavailable(String),
    Tls(String),
    AttributeMissing(String),
}

impl DirError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidCredentials(_) => "ldap_invalid_credentials",
            Self::Unavailable(_) => "ldap_unavailable",
            Self::Tls(_) => "ldap_tls_error",
            Self::AttributeMissing(_) => "ldap_user_attribute_missing",
        }
    }
    pub fn detail(&self) -> &str {
        match self {
            Self::InvalidCredentials(d) | Self::Unavailable(d) | Self::Tls(d) | Self::AttributeMissing(d) => d,
        }
    }
}

/// The TLS trust for a PEM bundle of CA certificates.
pub fn roots_from_pem(pem: &str) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|_| "Paste the CA certificate as PEM (-----BEGIN CERTIFICATE-----).".to_string())?;
        roots.add(cert).map_err(|e| format!("The CA certificate is not usable: {e}."))?;
    }
    if roots.is_empty() {
        return Err("Paste the CA certificate as PEM (-----BEGIN CERTIFICATE-----).".into());
    }
    Ok(roots)
}

/// One step of a connection test, with its timing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub step: &'static str,
    pub ok: bool,
    pub ms: u64,
    pub message: String,
}

/// Opens a connection: resolve and check the address (SSRF guard), connect, TLS (LDAPS or StartTLS). `steps`
/// records each stage when given (the connection test).
pub async fn open(s: &LdapSettings, allow_private: bool, mut steps: Option<&mut Vec<Step>>) -> Result<Ldap, DirError> {
    let url = url::Url::parse(&s.server_url).map_err(|_| DirError::Unavailable("the server URL does not parse".into()))?;
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
    let port = url.port().unwrap_or(if s.is_ldaps() { 636 } else { 389 });
    let connect_timeout = Duration::from_secs(s.connect_timeout_secs);
    let mut record = |step: &'static str, t: Instant, r: &Result<(), DirError>| {
        if let Some(steps) = steps.as_deref_mut() {
            let message = match r {
                Ok(()) => "ok".to_string(),
                Err(e) => e.detail().to_string(),
            };
            steps.push(Step { step, ok: r.is_ok(), ms: t.elapsed().as_millis() as u64, message });
        }
    };
    let t = Instant::now();
    let addrs: Result<Vec<std::net::SocketAddr>, DirError> = match tokio::time::timeout(connect_timeout, tokio::net::lookup_host((host.as_str(), port))).await {
        Err(_) => Err(DirError::Unavailable(format!("DNS lookup of {host} timed out"))),
        Ok(Err(e)) => Err(DirError::Unavailable(format!("DNS lookup of {host} failed: {e}"))),
        Ok(Ok(a)) => {
            let a: Vec<_> = a.collect();
            match a.iter().find(|a| safe_http::is_internal(a.ip())) {
                Some(bad) if !allow_private => Err(DirError::Unavailable(format!(
                    "refused: {host} resolves to {}, an internal address (start Latchkey with --allow-private-idp to reach an on-premises directory)",
                    bad.ip()
                ))),
                _ if a.is_empty() => Err(DirError::Unavailable(format!("{host} has no address"))),
                _ => Ok(a),
            }
        }
    };
    record("dns", t, &addrs.as_ref().map(|_| ()).map_err(|e| DirError::Unavailable(e.detail().to_string())));
    let addrs = addrs?;
    let t = Instant::now();
    let tcp = match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(&addrs[..])).await {
        Err(_) => Err(DirError::Unavailable(format!("connecting to {host}:{port} timed out after {} s", s.connect_timeout_secs))),
        Ok(Err(e)) => Err(DirError::Unavailable(format!("could not connect to {host}:{port}: {e}"))),
        Ok(Ok(tcp)) => Ok(tcp),
    };
    record("connect", t, &tcp.as_ref().map(|_| ()).map_err(|e| DirError::Unavailable(e.detail().to_string())));
    let mut tcp = tcp?;
    let t = Instant::now();
    // ldap3 speaks plaintext LDAP over a socket pair; Latchkey does StartTLS/TLS and checks every message (wire.rs).
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(|e| DirError::Unavailable(e.to_string()))?;
    ours.set_nonblocking(true).map_err(|e| DirError::Unavailable(e.to_string()))?;
    let ours = tokio::net::UnixStream::from_std(ours).map_err(|e| DirError::Unavailable(e.to_string()))?;
    let secured = if s.uses_tls() {
        let handshake = async {
            if !s.is_ldaps() {
                wire::start_tls(&mut tcp).await.map_err(|e| DirError::Tls(format!("StartTLS with {host}:{port} failed: {e}")))?;
            }
            let config = wire::tls_config(s.ca_certificate.as_deref()).map_err(DirError::Tls)?;
            let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| DirError::Tls(format!("{host} is not a usable TLS server name: {e}")))?;
            tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| DirError::Tls(format!("TLS with {host}:{port} failed: {e}")))
        };
        let r = match tokio::time::timeout(connect_timeout, handshake).await {
            Err(_) => Err(DirError::Unavailable(format!("{host}:{port} accepted the connection but did not answer within {} s", s.connect_timeout_secs))),
            Ok(r) => r,
        };
        record(if s.is_ldaps() { "tls" } else { "starttls" }, t, &r.as_ref().map(|_| ()).map_err(|e| DirError::Tls(e.detail().to_string())));
        tokio::spawn(wire::relay(r?, ours));
    } else {
        tokio::spawn(wire::relay(tcp, ours));
    };
    let _ = secured;
    let settings = LdapConnSettings::new().set_std_stream(StdStream::Unix(theirs)).set_conn_timeout(connect_timeout);
    match LdapConnAsync::with_settings(settings, "ldapi:///").await {
        Ok((conn, ldap)) => {
            ldap3::drive!(conn);
            Ok(ldap)
        }
        Err(e) => Err(DirError::Unavailable(format!("{host}:{port}: {e}"))),
    }
}

/// A simple bind; `Ok(false)` for invalid credentials (result code 49).
pub async fn bind(ldap: &mut Ldap, dn: &str, password: &str, timeout: Duration) -> Result<bool, DirError> {
    // An empty password would be an unauthenticated bind, which "succeeds" on most directories.
    if password.is_empty() || dn.is_empty() {
        return Ok(false);
    }
    match ldap.with_timeout(timeout).simple_bind(dn, password).await {
        Ok(r) if r.rc == 0 => Ok(true),
        Ok(r) if r.rc == 49 => Ok(false),
        Ok(r) => Err(DirError::Unavailable(format!("bind answered result code {} ({})", r.rc, r.text.chars().take(200).collect::<String>()))),
        Err(e) => Err(unavailable(e, timeout)),
    }
}

fn unavailable(e: LdapError, timeout: Duration) -> DirError {
    match e {
        LdapError::Timeout { .. } => DirError::Unavailable(format!("the directory did not answer within {} s", timeout.as_secs())),
        e => DirError::Unavailable(format!("the directory connection failed: {e}")),
    }
}

/// Searches `base` (subtree) for at most `limit` entries. Also answers whether the answer is complete: a size
/// limit hit (by us or by the server) or a missing base is not (for people: ambiguous; for groups: unusable).
///
/// Entries are read one at a time and at most `limit + 1` are kept: a directory that ignores the size limit is
/// abandoned, not buffered. Each entry is checked to be well-formed before ldap3 decodes it (its decoder panics on
/// a DN that is not UTF-8 or a malformed entry, which a hostile directory could send).
pub async fn search(ldap: &mut Ldap, base: &str, filter: &str, attrs: &[&str], limit: i32, timeout: Duration) -> Result<(Vec<SearchEntry>, bool), DirError> {
    let mut stream = ldap
        .with_timeout(timeout)
        .with_search_options(SearchOptions::new().sizelimit(limit + 1))
        .streaming_search(base, Scope::Subtree, filter, attrs.to_vec())
        .await
        .map_err(|e| unavailable(e, timeout))?;
    let mut entries = Vec::new();
    while let Some(e) = stream.next().await.map_err(|e| unavailable(e, timeout))? {
        if e.is_ref() || e.is_intermediate() {
            continue;
        }
        if entries.len() > limit as usize {
            let _ = stream.finish().await;
            let handle = stream.ldap_handle();
            let id = handle.last_id();
            let _ = handle.abandon(id).await;
            return Ok((entries, false));
        }
        if !well_formed(&e.0) {
            return Err(DirError::Unavailable("the directory sent an entry that is not well-formed LDAP (a DN or attribute name that is not UTF-8, or a broken structure)".into()));
        }
        entries.push(SearchEntry::construct(e));
    }
    let res = stream.finish().await;
    let complete = match res.rc {
        0 => entries.len() <= limit as usize,
        4 => false,                          // size limit exceeded
        32 => return Ok((Vec::new(), false)), // no such object: the base does not exist
        rc => return Err(DirError::Unavailable(format!("search answered result code {rc} ({})", res.text.chars().take(200).collect::<String>()))),
    };
    Ok((entries, complete))
}

/// Whether `SearchEntry::construct` can decode this entry without panicking: the shape it expects
/// (`[APPLICATION 4] { dn, { { type, { value… } }… } }`), with a UTF-8 DN and attribute types.
pub fn well_formed(st: &StructureTag) -> bool {
    let utf8 = |t: &StructureTag| matches!(&t.payload, PL::P(b) if std::str::from_utf8(b).is_ok());
    let PL::C(parts) = &st.payload else { return false };
    let [dn, attrs, ..] = parts.as_slice() else { return false };
    let PL::C(attrs) = &attrs.payload else { return false };
    st.id == 4
        && utf8(dn)
        && attrs.iter().all(|a| match &a.payload {
            PL::C(pa) => match pa.as_slice() {
                [t, v, ..] => utf8(t) && matches!(&v.payload, PL::C(vals) if vals.iter().all(|x| matches!(x.payload, PL::P(_)))),
                _ => false,
            },
            PL::P(_) => false,
        })
}

struct Idle {
    ldap: Ldap,
    since: Instant,
}

struct Pool {
    key: String,
    idle: Vec<Idle>,
    permits: Arc<Semaphore>,
}

/// The pools of every LDAP connection on this node: (connection id, kind) -> pool.
#[derive(Default)]
pub struct Pools {
    inner: Mutex<HashMap<(String, Kind), Pool>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Kind {
    /// Bound as the service account.
    Service,
    /// Used only for people's binds.
    People,
}

/// A connection taken from a pool; `give_back` returns it (a connection that failed is dropped instead).
pub struct Lease {
    pub ldap: Ldap,
    pool: (String, Kind, String),
    _permit: OwnedSemaphorePermit,
    /// Whether this connection was reused (not opened for this lease).
    pub reused: bool,
}

impl Pools {
    /// A connection of `kind` for connection `id` whose settings+secret fingerprint is `key`: an idle one, or a
    /// new one (opened, and bound as the service account for `Kind::Service`). Waits while `POOL_SIZE` are out.
    pub async fn take(&self, id: &str, kind: Kind, key: &str, s: &LdapSettings, service_password: &str, allow_private: bool) -> Result<Lease, DirError> {
        let permits = {
            let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let pool = map.entry((id.to_string(), kind)).or_insert_with(|| Pool { key: key.to_string(), idle: Vec::new(), permits: Arc::new(Semaphore::new(POOL_SIZE)) });
            if pool.key != key {
                *pool = Pool { key: key.to_string(), idle: Vec::new(), permits: Arc::new(Semaphore::new(POOL_SIZE)) };
            }
            pool.permits.clone()
        };
        let wait = Duration::from_secs(s.connect_timeout_secs + s.operation_timeout_secs);
        let permit = match tokio::time::timeout(wait, permits.acquire_owned()).await {
            Ok(Ok(p)) => p,
            _ => return Err(DirError::Unavailable("every connection to the directory is busy".into())),
        };
        let reusable = {
            let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            // Idle connections of every pool age out here, so a connection nobody uses does not keep sockets.
            for pool in map.values_mut() {
                pool.idle.retain(|i| i.since.elapsed() < MAX_IDLE);
            }
            map.retain(|_, p| !p.idle.is_empty() || Arc::strong_count(&p.permits) > 1 || p.permits.available_permits() < POOL_SIZE);
            let pool = map.get_mut(&(id.to_string(), kind)).filter(|p| p.key == key);
            let mut found = None;
            if let Some(pool) = pool {
                while let Some(mut i) = pool.idle.pop() {
                    if i.since.elapsed() < MAX_IDLE && !i.ldap.is_closed() {
                        found = Some(i.ldap);
                        break;
                    }
                }
            }
            found
        };
        let lease = |ldap, reused| Lease { ldap, pool: (id.to_string(), kind, key.to_string()), _permit: permit, reused };
        if let Some(ldap) = reusable {
            return Ok(lease(ldap, true));
        }
        let mut ldap = open(s, allow_private, None).await?;
        if kind == Kind::Service && !bind(&mut ldap, &s.bind_dn, service_password, Duration::from_secs(s.operation_timeout_secs)).await? {
            return Err(DirError::Unavailable("the directory refused the service account's bind DN or password".into()));
        }
        Ok(lease(ldap, false))
    }

    pub fn give_back(&self, lease: Lease) {
        let (id, kind, key) = lease.pool;
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pool) = map.get_mut(&(id, kind)).filter(|p| p.key == key) {
            if pool.idle.len() < POOL_SIZE {
                pool.idle.push(Idle { ldap: lease.ldap, since: Instant::now() });
            }
        }
    }

    /// Closes every pooled connection of `id` (settings changed, or the connection was deleted).
    pub fn forget(&self, id: &str) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|(cid, _), _| cid != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3::asn1::TagClass;

    fn prim(id: u64, b: &[u8]) -> StructureTag {
        StructureTag { class: TagClass::Universal, id, payload: PL::P(b.to_vec()) }
    }
    fn cons(id: u64, v: Vec<StructureTag>) -> StructureTag {
        StructureTag { class: TagClass::Universal, id, payload: PL::C(v) }
    }
    fn entry(dn: &[u8], attrs: Vec<StructureTag>) -> StructureTag {
        StructureTag { class: TagClass::Application, id: 4, payload: PL::C(vec![prim(4, dn), cons(16, attrs)]) }
    }
    fn attr(t: &[u8], vals: &[&[u8]]) -> StructureTag {
        cons(16, vec![prim(4, t), cons(17, vals.iter().map(|v| prim(4, v)).collect())])
    }

    #[test]
    fn only_entries_ldap3_can_decode_pass() {
        let good = entry(b"uid=alice,dc=example", vec![attr(b"mail", &[b"alice@example.com"]), attr(b"jpegPhoto", &[&[0xff, 0xd8]])]);
        assert!(well_formed(&good));
        // The check passes exactly what ldap3 decodes: binary values are fine, they go to bin_attrs.
        let decoded = SearchEntry::construct(ldap3::ResultEntry::new(good));
        assert_eq!(decoded.attrs["mail"], vec!["alice@example.com".to_string()]);
        assert!(decoded.bin_attrs.contains_key("jpegPhoto"));

        assert!(!well_formed(&entry(&[0xff, 0xfe], vec![])), "a DN that is not UTF-8");
        assert!(!well_formed(&entry(b"uid=a", vec![attr(&[0xc3, 0x28], &[b"x"])])), "an attribute type that is not UTF-8");
        assert!(!well_formed(&entry(b"uid=a", vec![prim(4, b"flat")])), "an attribute that is not a sequence");
        assert!(!well_formed(&entry(b"uid=a", vec![cons(16, vec![prim(4, b"mail")])])), "an attribute without values");
        assert!(!well_formed(&entry(b"uid=a", vec![cons(16, vec![prim(4, b"mail"), cons(17, vec![cons(16, vec![])])])])), "a value that is not a string");
        assert!(!well_formed(&StructureTag { class: TagClass::Application, id: 4, payload: PL::C(vec![prim(4, b"uid=a")]) }), "no attribute list");
        assert!(!well_formed(&StructureTag { class: TagClass::Application, id: 5, payload: PL::C(vec![prim(4, b"uid=a"), cons(16, vec![])]) }), "not a search entry");
        assert!(!well_formed(&prim(4, b"x")));
    }
}
