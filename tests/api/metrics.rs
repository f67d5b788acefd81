//! `/metrics` scraped after real sign-ins and parsed by an independent parser (`prometheus-parse`): sign-ins by
//! method, protocol, outcome and code; requests by route template; the scrape-time gauges; no id or email in any
//! label; and `--metrics-bind` moving the endpoint off the public listener.
use crate::both;
use crate::helpers::*;
use crate::sso_login::{finish, start};
use crate::sso_settings::{configure, forge};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

/// One sample as the Prometheus project's own parser (prometheus_client, end2end/peers/prom-parse.py) read it.
struct Sample {
    name: String,
    labels: serde_json::Map<String, Value>,
    value: f64,
}

impl Sample {
    fn label(&self, k: &str) -> Option<&str> {
        self.labels.get(k).and_then(Value::as_str)
    }
}

async fn scrape(url: &str) -> (String, Vec<Sample>) {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    let ct = r.headers().get("content-type").unwrap().to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "Prometheus text format: {ct}");
    let text = r.text().await.unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/end2end/peers/prom-parse.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap();
    assert!(out.status.success(), "{}\n{text}", String::from_utf8_lossy(&out.stderr));
    let samples = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            Sample { name: v["name"].as_str().unwrap().into(), labels: v["labels"].as_object().unwrap().clone(), value: v["value"].as_f64().unwrap() }
        })
        .collect();
    (text, samples)
}

/// The sum of `metric` over the samples whose labels include all of `want`.
fn total(samples: &[Sample], metric: &str, want: &[(&str, &str)]) -> f64 {
    samples.iter().filter(|s| s.name == metric && want.iter().all(|(k, v)| s.label(k) == Some(*v))).map(|s| s.value).sum()
}

both!(sso sign_ins_and_requests_are_counted_without_ids, |app: TestApp| async move {
    let idp = forge().await;
    app.sign_up("owner@example.com").await;
    let org = app.create_org("Metrics Org", "metrics-org").await;
    configure(&app, &org, &idp.url).await;
    app.arrange_verified_domain(&org, "example.com").await;

    let (_, before) = scrape(&app.url("/metrics")).await;
    let ok_before = total(&before, "latchkey_sign_ins_total", &[("method", "sso"), ("protocol", "oidc"), ("outcome", "success")]);

    // One SSO sign-in that works, one the IdP denies, one wrong password.
    idp.post("/scenario", json!({"sub": "m-1", "email": "jit-metrics@example.com"})).await;
    let browser = app.browser();
    let callback = start(&app, &browser, "metrics-org").await;
    assert_eq!(finish(&browser, &callback).await, format!("/orgs/{org}"));
    idp.post("/scenario", json!({"name": "denied"})).await;
    let browser = app.browser();
    let callback = start(&app, &browser, "metrics-org").await;
    assert_eq!(finish(&browser, &callback).await, "/auth/error?code=oauth_access_denied");
    app.send(app.client.post(app.url("/api/auth/signin")).json(&json!({"email": "owner@example.com", "password": "wrong password here"})))
        .await
        .expect(401, "INVALID_CREDENTIALS");
    app.get(&format!("/api/user/organizations/{org}/members")).await.expect(200, "OK");

    let (text, after) = scrape(&app.url("/metrics")).await;
    let ok = total(&after, "latchkey_sign_ins_total", &[("method", "sso"), ("protocol", "oidc"), ("outcome", "success"), ("code", "")]);
    assert_eq!(ok - ok_before, 1.0, "one SSO success:\n{text}");
    let denied = total(&after, "latchkey_sign_ins_total", &[("protocol", "oidc"), ("outcome", "failure"), ("code", "oauth_access_denied")]);
    assert!(denied >= 1.0, "the denied sign-in is counted with its code:\n{text}");
    let wrong = total(&after, "latchkey_sign_ins_total", &[("method", "password"), ("outcome", "failure"), ("code", "INVALID_CREDENTIALS")]);
    assert!(wrong >= 1.0, "the wrong password is counted:\n{text}");

    // Requests are labelled by route template and status class, with a latency histogram.
    let members = [("route", "/api/user/organizations/{org_id}/members"), ("method", "GET"), ("status", "2xx")];
    assert!(total(&after, "latchkey_http_requests_total", &members) >= 1.0, "{text}");
    assert!(total(&after, "latchkey_http_requests_total", &[("route", "/api/auth/signin"), ("status", "4xx")]) >= 1.0, "{text}");
    let route = ("route", "/api/user/organizations/{org_id}/members");
    assert!(total(&after, "latchkey_http_request_duration_seconds_bucket", &[route, ("le", "+Inf")]) >= 1.0, "{text}");
    assert!(total(&after, "latchkey_http_request_duration_seconds_count", &[route]) >= 1.0, "{text}");
    assert!(total(&after, "latchkey_http_request_duration_seconds_sum", &[route]) > 0.0, "{text}");

    // Scrape-time gauges: the pool, the process, background job lag.
    assert!(after.iter().any(|s| s.name == "latchkey_db_pool_connections" && s.label("state") == Some("idle")), "{text}");
    assert!(total(&after, "process_resident_memory_bytes", &[]) > 1_000_000.0, "{text}");
    assert!(after.iter().any(|s| s.name == "latchkey_job_lag_seconds" && s.label("job") == Some("domain_checks")), "{text}");

    // No label carries an id, an email or a subject.
    for s in &after {
        for (k, v) in s.labels.iter() {
            let v = v.as_str().unwrap_or_default();
            assert!(!v.contains('@') && !v.contains(&org) && !v.contains("m-1"), "{}{{{k}={v}}} carries an unbounded value", s.name);
        }
    }
    assert!(!text.contains(&org) && !text.contains("jit-metrics"), "{text}");
});

/// With `--metrics-bind`, `/metrics` is only on that address: the public listener answers 404.
#[tokio::test]
async fn metrics_bind_moves_the_endpoint_off_the_public_listener() {
    let app = spawn_adjusted(Backend::Sqlite, |c| c.metrics_bind = Some("127.0.0.1:0".into())).await.unwrap();
    let public = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(public.status(), 404, "the public listener does not serve metrics");
    let base = app.metrics_base.clone().expect("a metrics listener");
    assert_ne!(base, app.base);
    let (_, scraped) = scrape(&format!("{base}/metrics")).await;
    assert!(scraped.iter().any(|s| s.name == "latchkey_http_requests_total" && s.label("status") == Some("4xx")), "the public 404 was counted");
    let other = reqwest::get(format!("{base}/api/user/me")).await.unwrap();
    assert_eq!(other.status(), 404, "the metrics listener serves nothing else");
}
