//! SSO benchmark (not a test). Runs the real `latchkey` binary as its own process (so its CPU can be read from
//! /proc/<pid>/stat apart from the load generator's) against a local IdP (end2end/peers/forge-idp.mjs: real
//! discovery, RS256-signed ID tokens, PKCE and client_secret_basic checked), on SQLite and, when
//! LATCHKEY_TEST_POSTGRES_URL is set, PostgreSQL. Prints, per database:
//! - the OIDC callback's latency for a returning user (sequential);
//! - complete sign-ins per second with 8 concurrent browsers, and the server's CPU per sign-in;
//! - `/healthz` latency while 8 clients keep signing in with a password (argon2 runs off the async workers);
//! - the server's peak RSS;
//! - the hand-off (token exchange, session authenticate) and the SAML ACS (signed, then encrypted responses from
//!   the pysaml2 peer): latency, throughput with 8 at a time, and the server's CPU per request.
//! Run: `cargo bench --bench sso`.
#![recursion_limit = "256"]

#[path = "../tests/api/peers.rs"]
mod peers;

use reqwest::Client;
use serde_json::json;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

/// As issue 14 measured it: 800 complete sign-ins, 8 at a time (/proc counts 10 ms ticks: fewer would blur).
const SIGN_INS: usize = 800;
const CONCURRENCY: usize = 8;
const PASSWORD_SIGN_INS: usize = 96;

fn client() -> Client {
    Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

/// The binary measured: `LATCHKEY_BIN` (e.g. the stripped production build of `make release`), else the one Cargo
/// built for this bench.
fn binary() -> String {
    std::env::var("LATCHKEY_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_latchkey").to_string())
}

/// The server process: started from `binary()`, on a free port.
struct Server {
    base: String,
    child: tokio::process::Child,
    /// From spawning the process to its "listening" line (migrations included).
    startup: Duration,
}

impl Server {
    async fn start(database_url: &str, dir: &std::path::Path) -> Server {
        let spawned = Instant::now();
        let mut child = tokio::process::Command::new(binary());
        child
            .args(["--bind", "127.0.0.1:0", "--database-url", database_url, "--allow-private-idp", "--allow-private-webhooks"])
            .arg("--key-file")
            .arg(dir.join("key"))
            // The load generator is one client address: lift the per-client SSO limit.
            .args(["--sso-rate-limit", "1000000"])
            // `BENCH_RUST_LOG=warn,sqlx::query=debug` with `BENCH_SERVER_LOG=file` lists the statements a phase runs.
            .env("RUST_LOG", std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn,latchkey::startup=info".into()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(cpus) = cpu_list("BENCH_SERVER_CPUS") {
            // SAFETY: only an async-signal-safe system call between fork and exec.
            unsafe { child.pre_exec(move || pin(&cpus)) };
        }
        let mut child = child.spawn().expect("the latchkey binary runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(i) = line.find("listening on ") {
                    return line[i + "listening on ".len()..].trim().to_string();
                }
            }
            panic!("latchkey exited before listening")
        })
        .await
        .expect("latchkey listens within 30 s");
        let startup = spawned.elapsed();
        let mut log = std::env::var("BENCH_SERVER_LOG").ok().map(|p| std::fs::File::create(p).expect("BENCH_SERVER_LOG is writable"));
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(f) = log.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(f, "{line}");
                }
            }
        });
        let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move { while let Ok(Some(_)) = err.next_line().await {} });
        Server { base, child, startup }
    }

    /// A line of /proc/<pid>/status in MiB (`VmRSS:` now, `VmHWM:` the peak).
    fn status_mib(&self, field: &str) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id().unwrap()))
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
            .unwrap_or(0.0)
            / 1024.0
    }

    /// utime + stime of the server process so far (every thread, exited ones included), in seconds.
    ///
    /// Read from the process's CPU clock, the kernel's exact sum (nanoseconds) that /proc/<pid>/stat reports as
    /// utime + stime in ticks of 10 ms: a tick is 0.05 ms per request over 200 requests, too coarse for a 0.7 ms
    /// target. /proc/<pid>/stat is the fallback.
    fn cpu_secs(&self) -> f64 {
        let pid = self.child.id().unwrap() as libc::pid_t;
        let mut clock: libc::clockid_t = 0;
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: plain libc calls with valid out-pointers; the child is alive (kill_on_drop, not yet waited).
        if unsafe { libc::clock_getcpuclockid(pid, &mut clock) == 0 && libc::clock_gettime(clock, &mut ts) == 0 } {
            return ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        ticks / 100.0 // USER_HZ is 100 on Linux
    }

    fn peak_rss_mib(&self) -> f64 {
        self.status_mib("VmHWM:")
    }
}

/// One complete sign-in by a new browser: login → IdP → callback. Returns the callback's latency.
async fn sign_in(base: &str) -> Duration {
    let b = client();
    let r = b.get(format!("{base}/api/auth/sso/bench/login")).send().await.unwrap();
    let r = b.get(location(&r)).send().await.unwrap();
    let callback = location(&r);
    let t = Instant::now();
    let r = b.get(&callback).send().await.unwrap();
    let took = t.elapsed();
    assert!(location(&r).starts_with("/orgs/"), "sign-in failed: {}", location(&r));
    took
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let mean = v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
    let p = |q: usize| ms(v[(v.len() * q / 100).min(v.len() - 1)]);
    format!("mean {mean:.2} ms, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms (n={})", p(50), p(95), p(99), v.len())
}

async fn run(label: &str, database_url: String) {
    let dir = tempfile::tempdir().unwrap();
    let idp = peers::Peer::start("forge-idp.mjs", &[("CLIENT_ID", "bench"), ("CLIENT_SECRET", "bench-secret")]).await;
    let server = Server::start(&database_url, dir.path()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!("{label:<10} start-up (spawn to listening, migrations included): {:.0} ms; idle RSS {:.1} MiB", ms(server.startup), server.status_mib("VmRSS:"));
    let base = server.base.clone();
    let owner = client();
    owner.post(format!("{base}/api/auth/signup")).json(&json!({"email": "o@example.com", "password": "correct horse battery", "name": "O"})).send().await.unwrap();
    let org: serde_json::Value = owner.post(format!("{base}/api/user/organizations")).json(&json!({"name": "Bench", "slug": "bench"})).send().await.unwrap().json().await.unwrap();
    let org = org["data"]["id"].as_str().unwrap().to_string();
    let body = json!({"provider": "oidc", "issuerUrl": idp.url, "clientId": "bench", "clientSecret": "bench-secret"});
    owner.put(format!("{base}/api/user/organizations/{org}/settings/sso")).json(&body).send().await.unwrap();
    // The org has proven example.com (arranged in the database; the DNS proof is not what is measured here).
    {
        sqlx::any::install_default_drivers();
        let db = sqlx::AnyPool::connect(&database_url).await.unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        sqlx::query(
            "INSERT INTO domains (id, org_id, name, status, token, auto_join, attempts, next_check_at, pending_since, verified_at, created_at, updated_at) \
             VALUES ($1, $2, 'example.com', 'verified', 'bench', 'off', 0, $3, $4, $4, $4, $4)",
        )
        .bind(ulid::Ulid::new().to_string())
        .bind(&org)
        .bind(now + 86_400_000)
        .bind(now)
        .execute(&db)
        .await
        .unwrap();
        db.close().await;
    }

    // `BENCH_ONLY=saml`, `=ldap`, `=webhooks`, `=handoff` or `=oidc`: only that phase (e.g. under `perf record`).
    match std::env::var("BENCH_ONLY").as_deref() {
        Ok("saml") => return saml_acs(label, &server, &owner, &org).await,
        Ok("ldap") => return ldap_sign_ins(label, &server, &owner, &org).await,
        Ok("webhooks") => return webhooks(label, &server, &database_url, &owner, &org).await,
        Ok("handoff") => {
            idp.post("/scenario", json!({"sub": "bench-user", "email": "bench@example.com"})).await;
            return handoff(label, &server, &database_url, &owner).await;
        }
        _ => {}
    }
    // Warm-up: discovery and JWKS are cached after the first sign-in; same subject → returning user.
    idp.post("/scenario", json!({"sub": "bench-user", "email": "bench@example.com"})).await;
    for _ in 0..20 {
        sign_in(&base).await;
    }
    let mut lat = Vec::new();
    for _ in 0..200 {
        lat.push(sign_in(&base).await);
    }
    println!("{label:<10} callback latency (returning user, sequential): {}", percentiles(lat));

    // Concurrent complete sign-ins (3 HTTP round trips to Latchkey, 2 to the IdP), and the server's CPU for them.
    let cpu0 = server.cpu_secs();
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let base = base.clone();
        tasks.spawn(async move {
            for _ in 0..SIGN_INS / CONCURRENCY {
                sign_in(&base).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let secs = t.elapsed().as_secs_f64();
    let cpu = server.cpu_secs() - cpu0;
    println!(
        "{label:<10} complete sign-ins: {SIGN_INS} in {secs:.2} s with {CONCURRENCY} browsers = {:.0}/s; server CPU {:.2} ms per sign-in ({:.0}% of one core); RSS after {:.1} MiB",
        SIGN_INS as f64 / secs,
        cpu * 1000.0 / SIGN_INS as f64,
        cpu / secs * 100.0,
        server.status_mib("VmRSS:")
    );
    if std::env::var("BENCH_ONLY").as_deref() == Ok("oidc") {
        return;
    }

    // /healthz while 8 clients sign in with a password (argon2id, 19 MiB, t=2): the workers stay free.
    let mut idle = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        client().get(format!("{base}/healthz")).send().await.unwrap();
        idle.push(t.elapsed());
    }
    let cpu0 = server.cpu_secs();
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let base = base.clone();
        tasks.spawn(async move {
            for _ in 0..PASSWORD_SIGN_INS / CONCURRENCY {
                let r = client().post(format!("{base}/api/auth/signin")).json(&json!({"email": "o@example.com", "password": "correct horse battery"})).send().await.unwrap();
                assert_eq!(r.status(), 200);
            }
        });
    }
    let mut busy = Vec::new();
    while !tasks.is_empty() {
        let t = Instant::now();
        client().get(format!("{base}/healthz")).send().await.unwrap();
        busy.push(t.elapsed());
        while let Some(done) = tasks.try_join_next() {
            done.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu = server.cpu_secs() - cpu0;
    println!("{label:<10} /healthz idle: {}", percentiles(idle));
    println!(
        "{label:<10} /healthz during {PASSWORD_SIGN_INS} password sign-ins by {CONCURRENCY} clients ({:.1}/s, server CPU {:.1} ms each): {}",
        PASSWORD_SIGN_INS as f64 / secs,
        cpu * 1000.0 / PASSWORD_SIGN_INS as f64,
        percentiles(busy)
    );
    handoff(label, &server, &database_url, &owner).await;
    saml_acs(label, &server, &owner, &org).await;
    ldap_sign_ins(label, &server, &owner, &org).await;
    webhooks(label, &server, &database_url, &owner, &org).await;
    println!("{label:<10} server peak RSS: {:.1} MiB", server.peak_rss_mib());
}

/// The application hand-off: token exchange and session checks, latency and the server's CPU per call.
async fn handoff(label: &str, server: &Server, database_url: &str, owner: &Client) {
    let base = &server.base;
    let ok = std::process::Command::new(binary())
        .args(["--database-url", database_url, "operators", "add", "o@example.com"])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let redirect = "http://127.0.0.1:9/cb";
    let app: serde_json::Value = owner
        .post(format!("{base}/api/admin/applications"))
        .json(&json!({"name": "Bench app", "redirectUris": [redirect]}))
        .send().await.unwrap().json().await.unwrap();
    let (client_id, secret) = (app["data"]["application"]["clientId"].as_str().unwrap().to_string(), app["data"]["clientSecret"].as_str().unwrap().to_string());
    const N: usize = 200;
    let mut tokens = Vec::new();
    for _ in 0..N {
        let b = client();
        let r = b.get(format!("{base}/api/auth/sso/bench/login?client_id={client_id}&redirect_uri={redirect}&state=s")).send().await.unwrap();
        let r = b.get(location(&r)).send().await.unwrap();
        let landing = location(&b.get(location(&r)).send().await.unwrap());
        let url = url::Url::parse(&landing).unwrap_or_else(|_| panic!("no hand-off: {landing}"));
        tokens.push(url.query_pairs().find(|(k, _)| k == "token").unwrap().1.to_string());
    }
    let api = Client::new();
    let mut lat = Vec::new();
    let mut session = String::new();
    let cpu0 = server.cpu_secs();
    for t in &tokens {
        let start = Instant::now();
        let r: serde_json::Value = api.post(format!("{base}/api/auth/sso/authenticate")).basic_auth(&client_id, Some(&secret))
            .json(&json!({"ssoToken": t})).send().await.unwrap().json().await.unwrap();
        lat.push(start.elapsed());
        session = r["data"]["sessionToken"].as_str().expect("redeemed").to_string();
    }
    let cpu = server.cpu_secs() - cpu0;
    println!("{label:<10} token exchange: {}; server CPU {:.3} ms per call", percentiles(lat), cpu * 1000.0 / N as f64);
    const M: usize = 1000;
    let mut lat = Vec::new();
    let cpu0 = server.cpu_secs();
    let t0 = Instant::now();
    for _ in 0..M {
        let start = Instant::now();
        let r = api.post(format!("{base}/api/auth/sessions/authenticate")).basic_auth(&client_id, Some(&secret))
            .json(&json!({"sessionToken": session})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        lat.push(start.elapsed());
    }
    let (secs, cpu) = (t0.elapsed().as_secs_f64(), server.cpu_secs() - cpu0);
    println!(
        "{label:<10} session authenticate: {:.0}/s sequential, {}; server CPU {:.3} ms per call (includes signing a fresh JWT)",
        M as f64 / secs,
        percentiles(lat),
        cpu * 1000.0 / M as f64
    );
    jwt_costs(label, base, &api, &client_id, &secret, &session).await;
}

/// What a session JWT costs: signing (Ed25519 over the same header and claims, as `service::jwt::sign` does) and
/// an application's verification against `/.well-known/jwks.json` (jsonwebtoken with the JWK: signature, `iss`,
/// `aud`, `exp`), in this process, per JWT.
async fn jwt_costs(label: &str, base: &str, api: &Client, client_id: &str, secret: &str, session: &str) {
    use ed25519_dalek::Signer;
    use jsonwebtoken::{decode, decode_header, jwk::JwkSet, DecodingKey, Validation};
    let r: serde_json::Value = api.post(format!("{base}/api/auth/sessions/authenticate")).basic_auth(client_id, Some(secret))
        .json(&json!({"sessionToken": session})).send().await.unwrap().json().await.unwrap();
    let token = r["data"]["sessionJwt"].as_str().expect("a session JWT").to_string();
    let jwks: JwkSet = api.get(format!("{base}/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let kid = decode_header(&token).unwrap().kid.expect("kid");
    let key = DecodingKey::from_jwk(jwks.find(&kid).expect("the JWT's key is in the JWKS")).unwrap();
    let mut v = Validation::new(jsonwebtoken::Algorithm::EdDSA);
    v.set_issuer(&[base]);
    v.set_audience(&[client_id]);
    const N: u32 = 5000;
    let t = Instant::now();
    for _ in 0..N {
        decode::<serde_json::Value>(&token, &key, &v).expect("the JWT verifies against the JWKS");
    }
    let verify = t.elapsed() / N;
    let input = token.rsplit_once('.').unwrap().0.to_string();
    let signer = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let t = Instant::now();
    for _ in 0..N {
        std::hint::black_box(signer.sign(std::hint::black_box(input.as_bytes())));
    }
    let sign = t.elapsed() / N;
    println!("{label:<10} session JWT ({} bytes): Ed25519 signing {:.1} µs, verification against the JWKS {:.1} µs (jsonwebtoken, one core)",
        token.len(), sign.as_secs_f64() * 1e6, verify.as_secs_f64() * 1e6);
}

/// SAML ACS: IdP-initiated responses (signed Response and Assertion, RSA-SHA256; then AES-128-GCM encrypted)
/// forged beforehand by the pysaml2 peer, each unique, posted to the ACS. Each request is the whole ACS: guard,
/// libxmlsec verification, replay-store insert and the flow row (the database writes included), up to the redirect
/// to `finish`.
async fn saml_acs(label: &str, server: &Server, owner: &Client, org: &str) {
    let base = &server.base;
    let idp = peers::Peer::start("saml-idp.py", &[]).await;
    let c: serde_json::Value = owner
        .post(format!("{base}/api/user/organizations/{org}/sso/connections"))
        .json(&json!({"name": "bench", "protocol": "saml", "metadataUrl": format!("{}/metadata", idp.url), "allowIdpInitiated": true}))
        .send().await.unwrap().json().await.unwrap();
    let saml = &c["data"]["saml"];
    let (entity, acs) = (saml["entityId"].as_str().expect("SAML connection").to_string(), saml["assertionConsumerServiceUrl"].as_str().unwrap().to_string());
    let b64 = saml["spCertificate"].as_str().unwrap();
    let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join("\n"));
    // A test sign-in through the real IdP activates the connection (IdP-initiated responses need an active one).
    let metadata = owner.get(saml["spMetadataUrl"].as_str().unwrap()).send().await.unwrap().text().await.unwrap();
    Client::new().post(format!("{}/sp", idp.url)).header("content-type", "application/xml").body(metadata).send().await.unwrap();
    idp.post("/user", json!({"name_id": "u-test", "email": "tester@example.com", "given_name": "T", "family_name": "T", "groups": []})).await;
    let b = client();
    let test_url = c["data"]["testSignInUrl"].as_str().unwrap();
    let html = b.get(location(&b.get(test_url).send().await.unwrap())).send().await.unwrap().text().await.unwrap();
    let field = |name: &str| html.split(&format!("name=\"{name}\" value=\"")).nth(1).and_then(|s| s.split('"').next()).unwrap().to_string();
    let r = b.post(&acs).form(&[("SAMLResponse", field("SAMLResponse")), ("RelayState", field("RelayState"))]).send().await.unwrap();
    b.get(format!("{base}{}", location(&r))).send().await.unwrap();
    // Per kind: N/5 sequential, then 2N/5 at a time on a new connection per POST (a browser arriving from the IdP),
    // then 2N/5 at a time on kept-alive connections (a reverse proxy in front, or a browser that was just here).
    // 1,500 by default (`BENCH_SAML_N`): with 200 per mode, two runs of the same binary differed by up to 0.3 ms.
    let n_total = std::env::var("BENCH_SAML_N").ok().and_then(|v| v.parse::<usize>().ok()).filter(|n| *n >= 10).unwrap_or(1500);
    // `BENCH_SAML_KIND=valid`: only that kind (e.g. under `perf record`).
    let only = std::env::var("BENCH_SAML_KIND").ok();
    // The encrypted kinds: inside a signed Response (one signature, over the ciphertext), and as ADFS / Entra ID send
    // it (the Response unsigned, the Assertion signed inside AES-GCM: decrypted, then its own signature checked).
    for kind in ["valid", "encrypted_aes128_gcm", "encrypted_assertion_signed_gcm"].into_iter().filter(|k| only.as_deref().is_none_or(|o| o == *k)) {
        let mut responses = Vec::new();
        for i in 0..n_total {
            let f = idp.call("/forge", json!({"kind": kind, "sp_entity_id": entity, "acs_url": acs, "in_response_to": null,
                "name_id": format!("u{i}"), "email": format!("u{i}@example.com"), "sp_cert_pem": pem})).await;
            responses.push(f["SAMLResponse"].as_str().unwrap().to_string());
        }
        // The form bodies are encoded before the clock starts (the same bytes reqwest's `form` sends): encoding 9 KB
        // per request in the load generator took CPU from the two cores the server runs on.
        let mut responses: Vec<axum::body::Bytes> = responses.into_iter().map(|r| format!("SAMLResponse={}", url::form_urlencoded::byte_serialize(r.as_bytes()).collect::<String>()).into()).collect();
        let url = format!("{base}/api/auth/sso/saml/acs");
        let no_redirects = || Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let post = move |c: Client, r: axum::body::Bytes| {
            let url = url.clone();
            async move {
                let resp = c.post(url).header("content-type", "application/x-www-form-urlencoded").body(r).send().await.unwrap();
                let to = location(&resp);
                assert!(to.starts_with("/api/auth/sso/saml/finish"), "accepted: {to}");
            }
        };
        // Sequential, for latency.
        let mut lat = Vec::new();
        let cpu0 = server.cpu_secs();
        for r in responses.drain(..n_total / 5) {
            let t = Instant::now();
            post(no_redirects(), r).await;
            lat.push(t.elapsed());
        }
        let seq_cpu = (server.cpu_secs() - cpu0) * 1000.0 / (n_total / 5) as f64;
        // Concurrent, for throughput and CPU per request: new connections, then kept-alive ones.
        let mut figures = Vec::new();
        for keep_alive in [false, true] {
            let batch: Vec<axum::body::Bytes> = responses.drain(..2 * n_total / 5).collect();
            let n = batch.len();
            let (cpu0, t0) = (server.cpu_secs(), Instant::now());
            let mut chunks: Vec<Vec<axum::body::Bytes>> = (0..CONCURRENCY).map(|_| Vec::new()).collect();
            for (i, r) in batch.into_iter().enumerate() {
                chunks[i % CONCURRENCY].push(r);
            }
            let tasks: Vec<_> = chunks.into_iter().map(|chunk| {
                let post = post.clone();
                tokio::spawn(async move {
                    let kept = no_redirects();
                    for r in chunk {
                        post(if keep_alive { kept.clone() } else { no_redirects() }, r).await;
                    }
                })
            }).collect();
            for t in tasks {
                t.await.unwrap();
            }
            let (secs, cpu) = (t0.elapsed().as_secs_f64(), server.cpu_secs() - cpu0);
            figures.push((n as f64 / secs, cpu * 1000.0 / n as f64));
        }
        println!(
            "{label:<10} SAML ACS ({kind}): sequential {}, server CPU {seq_cpu:.3} ms per ACS; {CONCURRENCY} at a time {:.0}/s, server CPU {:.3} ms per ACS (new connection each); {:.0}/s, server CPU {:.3} ms per ACS (kept-alive connections)",
            percentiles(lat),
            figures[0].0,
            figures[0].1,
            figures[1].0,
            figures[1].1
        );
    }
}

/// LDAP sign-ins against a real slapd over StartTLS: latency, throughput and the server's CPU per sign-in (search
/// with the pooled service connection, bind on the pooled people connection, groups, the shared ending).
async fn ldap_sign_ins(label: &str, server: &Server, owner: &Client, org: &str) {
    let base = &server.base;
    let dir = peers::Peer::start("ldap-directory.py", &[]).await;
    let info: serde_json::Value = reqwest::get(format!("{}/info", dir.url)).await.unwrap().json().await.unwrap();
    let c: serde_json::Value = owner
        .post(format!("{base}/api/user/organizations/{org}/sso/connections"))
        .json(&json!({"name": "bench-ldap", "protocol": "ldap", "serverUrl": info["ldap_url"], "caCertificate": info["ca_pem"],
            "bindDn": info["bind_dn"], "bindPassword": info["bind_password"], "userBaseDn": info["people_dn"],
            "groupRoles": [{"group": "engineers", "role": "member"}, {"group": "admins", "role": "admin"}]}))
        .send().await.unwrap().json().await.unwrap();
    let id = c["data"]["id"].as_str().expect("LDAP connection").to_string();
    let url = format!("{base}/api/auth/sso/ldap");
    let people = [("alice", "alice-pw"), ("bob", "bob-pw"), ("carol", "carol-pw")];
    let sign_in = move |i: usize| {
        let (url, id) = (url.clone(), id.clone());
        let (name, pw) = people[i % people.len()];
        async move {
            let r = client().post(url).json(&json!({"connectionId": id, "username": name, "password": pw})).send().await.unwrap();
            assert!(r.status().is_success(), "LDAP sign-in: {}", r.text().await.unwrap());
        }
    };
    for i in 0..10 {
        sign_in(i).await; // warm: pools open, identities exist
    }
    const N: usize = 600;
    let mut lat = Vec::new();
    let cpu0 = server.cpu_secs();
    for i in 0..N / 3 {
        let t = Instant::now();
        sign_in(i).await;
        lat.push(t.elapsed());
    }
    let seq_cpu = (server.cpu_secs() - cpu0) * 1000.0 / (N / 3) as f64;
    let n = N - N / 3;
    let (cpu0, t0) = (server.cpu_secs(), Instant::now());
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|k| {
            let sign_in = sign_in.clone();
            tokio::spawn(async move {
                for i in (k..n).step_by(CONCURRENCY) {
                    sign_in(i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let (secs, cpu) = (t0.elapsed().as_secs_f64(), server.cpu_secs() - cpu0);
    println!(
        "{label:<10} LDAP sign-in (StartTLS, pooled): sequential {}, server CPU {seq_cpu:.3} ms each; {CONCURRENCY} at a time {:.0}/s, server CPU {:.3} ms each",
        percentiles(lat),
        n as f64 / secs,
        cpu * 1000.0 / n as f64
    );
}

/// Webhook deliveries: N messages queued at once for one endpoint (a real receiver that verifies each with PyPI's
/// standardwebhooks), the time until all are delivered and the server's CPU per delivery (claim, sign, POST, record).
async fn webhooks(label: &str, server: &Server, database_url: &str, owner: &Client, org: &str) {
    let base = &server.base;
    let receiver = peers::Peer::start("webhook-receiver.py", &[]).await;
    let created: serde_json::Value = owner
        .post(format!("{base}/api/user/organizations/{org}/webhooks"))
        .json(&json!({"url": format!("{}/hook", receiver.url), "eventTypes": ["member.role_changed"]}))
        .send().await.unwrap().json().await.unwrap();
    let id = created["data"]["webhook"]["id"].as_str().expect("webhook").to_string();
    receiver.call("/config", json!({"secret": created["data"]["secret"]})).await;
    const N: usize = 300;
    let payload = json!({"type": "member.role_changed", "timestamp": "2026-11-24T00:00:00Z", "data": {"id": "01JBENCH", "action": "member.role_change",
        "actor": "owner@example.com", "target": "01JBENCHTARGET", "outcome": "success", "detail": "role=admin", "ip": "127.0.0.1"}}).to_string();
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(database_url).await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let (cpu0, t0) = (server.cpu_secs(), Instant::now());
    for i in 0..N {
        sqlx::query("INSERT INTO webhook_deliveries (id, webhook_id, org_id, event_type, payload, status, attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, 'member.role_changed', $4, 'pending', 0, $5, $5)")
            .bind(format!("msg_bench_{i}")).bind(&id).bind(org).bind(&payload).bind(now)
            .execute(&db).await.unwrap();
    }
    loop {
        let v: serde_json::Value = reqwest::get(format!("{}/received", receiver.url)).await.unwrap().json().await.unwrap();
        let got = v["messages"].as_array().unwrap();
        if got.len() >= N {
            assert!(got.iter().all(|m| m["verified"] == true), "every message verifies");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "{} of {N} delivered in 2 min", got.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (secs, cpu) = (t0.elapsed().as_secs_f64(), server.cpu_secs() - cpu0);
    db.close().await;
    println!(
        "{label:<10} webhooks: {N} queued for one endpoint delivered in {secs:.2} s = {:.0}/s (one in flight per endpoint); server CPU {:.3} ms per delivery",
        N as f64 / secs,
        cpu * 1000.0 / N as f64
    );
}

/// The console bundle of the last `cargo leptos build --release` (`make release`), raw and gzipped.
fn wasm_size() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/site/pkg/latchkey.wasm");
    let Ok(raw) = std::fs::metadata(path).map(|m| m.len()) else {
        println!("console WASM: not built (run `make release` first)");
        return;
    };
    let gz = std::process::Command::new("sh").arg("-c").arg(format!("gzip -9 -c {path} | wc -c")).output().ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<u64>().ok()).unwrap_or(0);
    println!("console WASM ({path}): {:.1} KB raw, {:.1} KB gzip -9", raw as f64 / 1000.0, gz as f64 / 1000.0);
}

/// The CPU numbers in the environment variable `var` (e.g. `0` or `0,1`), if set.
fn cpu_list(var: &str) -> Option<Vec<usize>> {
    let v = std::env::var(var).ok()?;
    Some(v.split(',').map(|c| c.trim().parse().unwrap_or_else(|_| panic!("{var}: CPU numbers separated by commas"))).collect())
}

/// Restricts the calling thread (and the threads and processes it starts later) to `cpus`.
fn pin(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the calls only read and write it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn main() {
    // `BENCH_SERVER_CPUS=0 BENCH_CLIENT_CPUS=1`: the server alone on one core, and the load generator and the IdPs
    // (started by this process) on the other, so that "per second on one core" is measured as such.
    if let Some(cpus) = cpu_list("BENCH_CLIENT_CPUS") {
        pin(&cpus).expect("BENCH_CLIENT_CPUS: sched_setaffinity");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        println!("Latchkey SSO benchmark (2 cores; server, IdP and load generator share the machine); binary {}", binary());
        if let (Ok(server), Ok(client)) = (std::env::var("BENCH_SERVER_CPUS"), std::env::var("BENCH_CLIENT_CPUS")) {
            println!("server pinned to CPU {server}, load generator and IdPs to CPU {client}");
        }
        wasm_size();
        let dir = tempfile::tempdir().unwrap();
        run("SQLite", format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display())).await;
        if let Ok(pg) = std::env::var("LATCHKEY_TEST_POSTGRES_URL") {
            use sqlx::Connection;
            let name = format!("lk_bench_{}", std::process::id());
            let mut conn = sqlx::PgConnection::connect(&pg).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
            let mut url = url::Url::parse(&pg).unwrap();
            url.set_path(&name);
            run("PostgreSQL", url.to_string()).await;
        } else {
            println!("PostgreSQL skipped: set LATCHKEY_TEST_POSTGRES_URL");
        }
    });
}
