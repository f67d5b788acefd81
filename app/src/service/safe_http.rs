//! The HTTP client for every server-side fetch of an operator-supplied URL (OIDC discovery, JWKS, token,
//! userinfo). SSRF guard: literal IPs are checked before connecting, host names after DNS resolution (every
//! address must be public), and each redirect hop is checked the same way. `--allow-private-idp` lifts it.
use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Largest response body accepted from an IdP.
const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("refused: {0} is a private, loopback, link-local or otherwise internal address (start Latchkey with --allow-private-idp to allow it)")]
    Blocked(String),
    #[error("DNS lookup failed for {0}")]
    Dns(String),
    #[error("could not connect to {0}")]
    Connect(String),
    #[error("TLS handshake with {0} failed: {1}")]
    Tls(String, String),
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("the response from {0} is larger than 1 MiB")]
    TooLarge(String),
    #[error("{0}")]
    Other(String),
}

/// True for any address an IdP on the public internet would never have.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            let seg0 = v6.segments()[0];
            // ::/96, IPv4-compatible addresses (deprecated): `::a.b.c.d` may be routed to the IPv4 address.
            let v4_compatible = v6.segments()[..6].iter().all(|s| *s == 0);
            v4_compatible
                || v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00 // unique local
                || (seg0 & 0xffc0) == 0xfe80 // link-local
                || (seg0 == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 64:ff9b::/96 and local-use 64:ff9b:1::/48 reach internal v4
                || (seg0 & 0xffc0) == 0xfec0 // site-local (deprecated, still routed inside some networks)
                || seg0 == 0x2002 // 6to4 embeds v4
                || (seg0 == 0x2001 && v6.segments()[1] == 0x0000) // Teredo 2001::/32 embeds v4
                || (seg0 == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

fn is_internal_v4(v4: Ipv4Addr) -> bool {
    let o = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local() // includes 169.254.169.254, the cloud metadata address
        || v4.is_unspecified()
        || v4.is_multicast()
        || v4.is_broadcast()
        || v4.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // carrier-grade NAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240 // reserved
}

/// Resolves names for reqwest and refuses when any address is internal (a mixed answer is refused too).
struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { format!("DNS lookup failed for {host}: {e}").into() })?
                .collect();
            if let Some(bad) = addrs.iter().find(|a| is_internal(a.ip())) {
                return Err(format!("refused-internal-address {host} -> {}", bad.ip()).into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Checks a URL's host before any connection: literal internal IPs are refused here, names by the resolver.
pub fn check_url(url: &url::Url, allow_private: bool) -> Result<(), FetchError> {
    if allow_private {
        return Ok(());
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) if is_internal(IpAddr::V4(ip)) => Err(FetchError::Blocked(ip.to_string())),
        Some(url::Host::Ipv6(ip)) if is_internal(IpAddr::V6(ip)) => Err(FetchError::Blocked(ip.to_string())),
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") => {
            Err(FetchError::Blocked(d.to_string()))
        }
        None => Err(FetchError::Other("the URL has no host".into())),
        _ => Ok(()),
    }
}

#[derive(Clone)]
pub struct SafeHttp {
    client: reqwest::Client,
    allow_private: bool,
}

impl std::fmt::Debug for SafeHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SafeHttp(allow_private={})", self.allow_private)
    }
}

impl SafeHttp {
    pub fn new(allow_private: bool) -> Result<Self, String> {
        Self::build(allow_private, 3)
    }

    /// Like `new`, following at most `max_redirects` redirects (0 for webhook deliveries: a redirect is a failure).
    pub fn build(allow_private: bool, max_redirects: usize) -> Result<Self, String> {
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if max_redirects == 0 {
                attempt.stop()
            } else if attempt.previous().len() >= max_redirects {
                attempt.error("too many redirects")
            } else if check_url(attempt.url(), allow_private).is_err() {
                attempt.error("refused-internal-address in redirect")
            } else {
                attempt.follow()
            }
        });
        // No proxy, whatever HTTP(S)_PROXY says: a proxy would resolve the target itself, past the guarded resolver.
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(redirect)
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("Latchkey/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        let client = builder.build().map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self { client, allow_private })
    }

    /// GET a URL and return (status, body), with the guard and the size limit.
    pub async fn get(&self, url: &str) -> Result<(u16, Vec<u8>), FetchError> {
        let parsed = url::Url::parse(url).map_err(|e| FetchError::Other(format!("not a URL: {e}")))?;
        check_url(&parsed, self.allow_private)?;
        let host = parsed.host_str().unwrap_or_default().to_string();
        let resp = self.client.get(parsed).send().await.map_err(|e| classify(&host, &e))?;
        let status = resp.status().as_u16();
        let body = read_limited(&host, resp).await?;
        Ok((status, body))
    }

    /// POSTs `body` with `headers` and answers the status; the response body is not read.
    pub async fn post(&self, url: &str, headers: &[(&'static str, String)], body: String) -> Result<u16, FetchError> {
        let parsed = url::Url::parse(url).map_err(|e| FetchError::Other(format!("not a URL: {e}")))?;
        check_url(&parsed, self.allow_private)?;
        let host = parsed.host_str().unwrap_or_default().to_string();
        let mut req = self.client.post(parsed).body(body);
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let resp = req.send().await.map_err(|e| classify(&host, &e))?;
        Ok(resp.status().as_u16())
    }

    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, FetchError> {
        let parsed = url::Url::parse(&request.uri().to_string()).map_err(|e| FetchError::Other(format!("not a URL: {e}")))?;
        check_url(&parsed, self.allow_private)?;
        let host = parsed.host_str().unwrap_or_default().to_string();
        let req: reqwest::Request = request.try_into().map_err(|e: reqwest::Error| FetchError::Other(e.to_string()))?;
        let resp = self.client.execute(req).await.map_err(|e| classify(&host, &e))?;
        let mut builder = http::Response::builder().status(resp.status());
        for (name, value) in resp.headers() {
            builder = builder.header(name, value);
        }
        let body = read_limited(&host, resp).await?;
        builder.body(body).map_err(|e| FetchError::Other(e.to_string()))
    }
}

async fn read_limited(host: &str, mut resp: reqwest::Response) -> Result<Vec<u8>, FetchError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| classify(host, &e))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            return Err(FetchError::TooLarge(host.to_string()));
        }
    }
    Ok(body)
}

/// Names what failed, from reqwest's error chain.
fn classify(host: &str, err: &reqwest::Error) -> FetchError {
    let mut chain = String::new();
    let mut src: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = src {
        chain.push_str(&e.to_string());
        chain.push_str(" | ");
        src = e.source();
    }
    if chain.contains("refused-internal-address") {
        let ip = chain.split("-> ").nth(1).and_then(|s| s.split([' ', '|']).next()).unwrap_or(host);
        return FetchError::Blocked(format!("{host} ({ip})"));
    }
    if err.is_timeout() {
        return FetchError::Timeout(host.to_string());
    }
    let lower = chain.to_lowercase();
    if lower.contains("dns") || lower.contains("failed to lookup") || lower.contains("name or service not known") {
        return FetchError::Dns(host.to_string());
    }
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        let reason = lower.split(" | ").find(|s| s.contains("certificate") || s.contains("tls")).unwrap_or("").to_string();
        return FetchError::Tls(host.to_string(), reason);
    }
    if err.is_connect() {
        return FetchError::Connect(host.to_string());
    }
    if err.is_redirect() {
        return FetchError::Other(format!("redirect from {host} refused: {}", lower.trim_end_matches(" | ")));
    }
    FetchError::Other(format!("request to {host} failed"))
}

impl<'c> AsyncHttpClient<'c> for SafeHttp {
    type Error = FetchError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, FetchError>> + Send + Sync + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.execute(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for ip in ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1",
            "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
            "::127.0.0.1", "::169.254.169.254", "::8.8.8.8", "64:ff9b::a00:1", "64:ff9b:1::a00:1", "fec0::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2002:a00:1::1"] {
            assert!(is_internal(ip.parse().unwrap()), "{ip} should be internal");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "93.184.216.34", "2001:4860:4860::8888", "2a00:1450:4001::1"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip} should be public");
        }
    }

    #[test]
    fn literal_and_localhost_urls_are_refused_unless_allowed() {
        for u in ["http://127.0.0.1:8080/x", "http://[::1]/", "http://169.254.169.254/latest/meta-data", "http://localhost/", "http://a.localhost/"] {
            let url = url::Url::parse(u).unwrap();
            assert!(matches!(check_url(&url, false), Err(FetchError::Blocked(_))), "{u}");
            assert!(check_url(&url, true).is_ok());
        }
        assert!(check_url(&url::Url::parse("https://idp.example.com/").unwrap(), false).is_ok());
    }

    /// A system proxy is never used: the target name must go through the guarded resolver. A proxy that would
    /// answer everything is started here; the guarded client must refuse loopback anyway.
    #[tokio::test]
    async fn a_system_proxy_does_not_bypass_the_guard() {
        let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", proxy.local_addr().unwrap());
        // SAFETY of the test: env vars are read by reqwest when the client is built, right below.
        unsafe {
            std::env::set_var("HTTP_PROXY", &url);
            std::env::set_var("HTTPS_PROXY", &url);
        }
        let http = SafeHttp::new(false).unwrap();
        // A name that does not resolve: through a proxy, the request would reach the proxy; without, DNS fails.
        let err = http.get("http://latchkey-proxy-test.invalid/").await.unwrap_err();
        assert!(matches!(err, FetchError::Dns(_)), "the guarded resolver answered, not a proxy: {err}");
        proxy.set_nonblocking(true).unwrap();
        let reached = proxy.accept();
        assert!(
            matches!(&reached, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "the proxy was contacted: {reached:?}"
        );
        unsafe {
            std::env::remove_var("HTTP_PROXY");
            std::env::remove_var("HTTPS_PROXY");
        }
        drop(proxy);
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_after_dns() {
        let http = SafeHttp::new(false).unwrap();
        // After DNS: the resolver itself refuses a name whose addresses are internal.
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let refused = GuardedResolver.resolve(name).await.err().expect("localhost resolves to loopback: refused");
        assert!(refused.to_string().contains("refused-internal-address"), "{refused}");
        let err = http.get("http://127.0.0.1.:9/").await.unwrap_err();
        assert!(matches!(err, FetchError::Blocked(_)), "a trailing-dot literal still resolves to loopback: {err}");
    }
}
