//! SSO benchmark (not a test): prints the OIDC callback's cost and complete sign-ins per second against a
//! local IdP (end2end/peers/forge-idp.mjs: real discovery, RS256-signed ID tokens, PKCE and client_secret_basic
//! checked), on SQLite and, when LATCHKEY_TEST_POSTGRES_URL is set, PostgreSQL. Run: `cargo bench --bench sso`.
#![recursion_limit = "256"]

#[path = "../tests/api/peers.rs"]
mod peers;

use latchkey::config::Config;
use reqwest::Client;
use serde_json::json;
use std::time::{Duration, Instant};

const SIGN_INS: usize = 400;
const CONCURRENCY: usize = 8;

fn client() -> Client {
    Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

async fn app(database_url: String, dir: &std::path::Path) -> String {
    let config = Config {
        bind: "127.0.0.1:0".into(),
        database_url,
        public_url: None,
        key_file: dir.join("key"),
        allow_private_idp: true,
        dns_server: None,
        domain_check_unit_ms: 60_000,
        site_root: "target/site".into(),
        trusted_proxies: vec![],
        // The load generator is one client address: lift the per-client SSO limit.
        sso_rate_limit: 1_000_000,
        log_format: "text".into(),
    };
    let app = latchkey::startup::build(config).await.unwrap();
    let base = format!("http://{}", app.addr);
    tokio::spawn(latchkey::startup::run(app));
    base
}

/// One complete sign-in by a new browser: login → IdP → callback. Returns the callback's latency.
async fn sign_in(base: &str, i: usize, idp: &str) -> Duration {
    let b = client();
    let r = b.get(format!("{base}/api/auth/sso/bench/login")).send().await.unwrap();
    let r = b.get(location(&r)).send().await.unwrap();
    let callback = location(&r);
    let _ = (i, idp);
    let t = Instant::now();
    let r = b.get(&callback).send().await.unwrap();
    let took = t.elapsed();
    assert!(location(&r).starts_with("/orgs/"), "sign-in failed: {}", location(&r));
    took
}

async fn run(label: &str, database_url: String) {
    let dir = tempfile::tempdir().unwrap();
    let idp = peers::Peer::start("forge-idp.mjs", &[("CLIENT_ID", "bench"), ("CLIENT_SECRET", "bench-secret")]).await;
    let base = app(database_url, dir.path()).await;
    let owner = client();
    owner.post(format!("{base}/api/auth/signup")).json(&json!({"email": "o@example.com", "password": "correct horse battery", "name": "O"})).send().await.unwrap();
    let org: serde_json::Value = owner.post(format!("{base}/api/user/organizations")).json(&json!({"name": "Bench", "slug": "bench"})).send().await.unwrap().json().await.unwrap();
    let org = org["data"]["id"].as_str().unwrap().to_string();
    let body = json!({"provider": "oidc", "issuerUrl": idp.url, "clientId": "bench", "clientSecret": "bench-secret"});
    owner.put(format!("{base}/api/user/organizations/{org}/settings/sso")).json(&body).send().await.unwrap();

    // Warm-up: discovery and JWKS are cached after the first sign-in; same subject → returning user.
    idp.post("/scenario", json!({"sub": "bench-user", "email": "bench@example.com"})).await;
    for i in 0..20 {
        sign_in(&base, i, &idp.url).await;
    }
    // Sequential: the callback's latency (token exchange with the local IdP + verification + DB writes).
    let mut lat: Vec<Duration> = Vec::new();
    for i in 0..200 {
        lat.push(sign_in(&base, i, &idp.url).await);
    }
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = lat.iter().map(|d| ms(*d)).sum::<f64>() / lat.len() as f64;
    println!(
        "{label:<10} callback latency (returning user, sequential, n={}): mean {:.2} ms, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
        lat.len(), mean, ms(lat[lat.len() / 2]), ms(lat[lat.len() * 95 / 100]), ms(lat[lat.len() * 99 / 100])
    );
    // Concurrent: complete sign-ins (3 HTTP round trips to Latchkey, 2 to the IdP) per second.
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..CONCURRENCY {
        let (base, url) = (base.clone(), idp.url.clone());
        tasks.spawn(async move {
            for i in 0..SIGN_INS / CONCURRENCY {
                sign_in(&base, w * 1000 + i, &url).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let secs = t.elapsed().as_secs_f64();
    println!("{label:<10} complete sign-ins: {} in {:.2} s with {CONCURRENCY} browsers = {:.0} sign-ins/s", SIGN_INS, secs, SIGN_INS as f64 / secs);
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<f64>().unwrap_or(0.0)))
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        println!("Latchkey SSO benchmark (2 cores; app, IdP and load generator share the machine)");
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
        println!("peak RSS of the benchmark process (server + load generator): {:.1} MiB", rss_mib());
    });
}
