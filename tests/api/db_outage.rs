//! A database outage never signs people out and never loses an acknowledged write.
//!
//! The app runs on its own throwaway PostgreSQL cluster (`OwnPostgres`), which the test stops for ~6 s under load
//! and starts again. Eight clients, each its own signed-in user, keep reading (`/api/user/me` with the session
//! cookie, an organization with an API key) and creating organizations the whole time. This proves that:
//! - the only failure anyone sees is `503 SERVICE_UNAVAILABLE` with `Retry-After`; never 401 (signed out), 404,
//!   500 or anything else;
//! - while the database is down every answer comes fast (under 3 s: no 10 s wait for a pool connection);
//! - `/readyz` is 503 while down and 200 after; service resumes within seconds of the database;
//! - afterwards every session and the API key still work, and every organization acknowledged with 201 exists.
use crate::helpers::*;
use crate::own_postgres::OwnPostgres;
use reqwest::{Client, Method, RequestBuilder};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TASKS: usize = 8;
/// The slowest acceptable answer while the database is down.
const FAST: Duration = Duration::from_secs(3);
/// After the database is back, failures are tolerated only this long.
const RECOVERY: Duration = Duration::from_millis(2500);

/// One answer as a client saw it.
struct Seen {
    task: usize,
    what: &'static str,
    sent: Instant,
    took: Duration,
    /// 0: no HTTP answer at all (transport error or client timeout).
    status: u16,
    /// The envelope's code, or `TRANSPORT` / `NOT_JSON`.
    code: String,
    retry_after: bool,
    body: String,
}

impl Seen {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
    fn describe(&self, t0: Instant) -> String {
        let body: String = self.body.chars().take(200).collect();
        format!(
            "task {} {} sent at +{:.2}s took {:.3}s: {} {} (Retry-After: {}) {body}",
            self.task,
            self.what,
            self.sent.duration_since(t0).as_secs_f64(),
            self.took.as_secs_f64(),
            self.status,
            self.code,
            self.retry_after
        )
    }
}

async fn call(task: usize, what: &'static str, req: RequestBuilder) -> Seen {
    let sent = Instant::now();
    let (status, retry_after, body) = match req.timeout(Duration::from_secs(20)).send().await {
        Ok(r) => {
            let (status, retry_after) = (r.status().as_u16(), r.headers().contains_key("retry-after"));
            (status, retry_after, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, false, format!("transport error: {e}")),
    };
    let took = sent.elapsed();
    let code = match serde_json::from_str::<serde_json::Value>(&body) {
        _ if status == 0 => "TRANSPORT".to_string(),
        Ok(v) => v["code"].as_str().unwrap_or("NO_CODE").to_string(),
        Err(_) => "NOT_JSON".to_string(),
    };
    Seen { task, what, sent, took, status, code, retry_after, body }
}

/// One client: a read and a write per round until `done`; returns what it saw and the slugs acknowledged with 201.
async fn load(task: usize, base: String, c: Client, key: String, org: String, done: Arc<AtomicBool>) -> (Vec<Seen>, Vec<String>) {
    let (mut seen, mut acked) = (Vec::new(), Vec::new());
    let hard_stop = Instant::now() + Duration::from_secs(90);
    for n in 0..100_000 {
        if done.load(Ordering::Relaxed) || Instant::now() > hard_stop {
            break;
        }
        seen.push(if n % 2 == 0 {
            call(task, "GET /api/user/me (cookie)", c.get(format!("{base}/api/user/me"))).await
        } else {
            let read = c.get(format!("{base}/api/user/organizations/{org}")).header("x-api-key", &key);
            call(task, "GET /api/user/organizations/{org} (key)", read).await
        });
        let slug = format!("o-{task}-{n}");
        let write = c.post(format!("{base}/api/user/organizations")).json(&json!({"name": format!("Org {task} {n}"), "slug": &slug}));
        let w = call(task, "POST /api/user/organizations (cookie)", write).await;
        if w.status == 201 {
            acked.push(slug);
        }
        seen.push(w);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (seen, acked)
}

async fn readyz(app: &TestApp) -> u16 {
    match app.browser().get(app.url("/readyz")).timeout(Duration::from_secs(10)).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_answers_503_and_loses_nothing() {
    let pg = OwnPostgres::start().await;
    let (mut config, dir) = config(Backend::Sqlite).await.unwrap();
    config.database_url = pg.url.clone();
    let app = spawn_with(config, dir).await;

    app.sign_up("owner@example.com").await;
    let org = app.create_org("Outage Co", "outage-co").await;
    let created = app.post("/api/user/api-keys", json!({"name": "k"})).await.expect(201, "OK");
    let key = created.data()["key"].as_str().unwrap().to_string();
    let mut users = Vec::new();
    for i in 0..TASKS {
        users.push(app.other_user(&format!("user{i}@example.com")).await.0);
    }

    // Timeline: ~2 s of load, database down ~6 s, then ~4 s more after it is back.
    let t0 = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(load(i, app.base.clone(), c.clone(), key.clone(), org.clone(), done.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let down_at = Instant::now();
    pg.stop().await;
    let down_done = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let readyz_down = readyz(&app).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let up_at = Instant::now();
    pg.restart().await;
    let up_done = Instant::now();
    let mut readyz_up = readyz(&app).await;
    while readyz_up != 200 && up_done.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        readyz_up = readyz(&app).await;
    }
    tokio::time::sleep_until((up_done + Duration::from_secs(4)).into()).await;
    done.store(true, Ordering::Relaxed);
    let (mut seen, mut acked) = (Vec::new(), Vec::new());
    for t in tasks {
        let (s, a) = t.await.expect("client task");
        seen.extend(s);
        acked.push(a);
    }

    let mut counts: BTreeMap<(u16, &str), usize> = BTreeMap::new();
    for s in &seen {
        *counts.entry((s.status, s.code.as_str())).or_default() += 1;
    }
    let summary = counts.iter().map(|((st, code), n)| format!("{st} {code}: {n}")).collect::<Vec<_>>().join(", ");
    eprintln!("{} answers by (status, code): {summary}", seen.len());

    let mut problems = Vec::new();
    for s in &seen {
        let fail = |why: &str| format!("{why}: {}", s.describe(t0));
        if ![200, 201, 503].contains(&s.status) || s.code == "NOT_JSON" {
            problems.push(fail("not 2xx nor 503 (401/404/500 mean signed out, lost or broken)"));
        }
        if s.status == 503 && (s.code != "SERVICE_UNAVAILABLE" || !s.retry_after) {
            problems.push(fail("503 without code SERVICE_UNAVAILABLE and a Retry-After header"));
        }
        if s.status == 503 && s.took >= FAST {
            problems.push(fail("slow 503"));
        }
        if s.sent >= down_done && s.sent < up_at && s.took >= FAST {
            problems.push(fail("slow answer while the database was down"));
        }
        if s.sent + s.took < down_at && !s.ok() {
            problems.push(fail("failed before the outage"));
        }
        if s.sent >= up_done + RECOVERY && !s.ok() {
            problems.push(fail("still failing after the database was back"));
        }
    }
    let shown = problems.iter().take(20).cloned().collect::<Vec<_>>().join("\n");
    assert!(problems.is_empty(), "{} problems; answers by (status, code): {summary}\n{shown}", problems.len());

    let down_503 = seen.iter().filter(|s| s.status == 503 && s.sent >= down_done && s.sent < up_at).count();
    assert!(down_503 > 0, "no 503 while the database was down: the outage was not exercised ({summary})");
    assert!(seen.iter().any(|s| s.sent >= up_done && s.ok()), "no success after the restart ({summary})");
    assert_eq!(readyz_down, 503, "/readyz while the database was down");
    assert_eq!(readyz_up, 200, "/readyz within 5 s of the database coming back");

    // Nobody was signed out, the API key still works, and nothing acknowledged was lost.
    app.get("/api/user/me").await.expect(200, "OK");
    let with_key = app.browser().get(app.url(&format!("/api/user/organizations/{org}"))).header("x-api-key", &key);
    app.send(with_key).await.expect(200, "OK");
    for (i, c) in users.iter().enumerate() {
        app.as_client(c, Method::GET, "/api/user/me", None).await.expect(200, "OK");
        let list = app.as_client(c, Method::GET, "/api/user/organizations", None).await.expect(200, "OK");
        let slugs: HashSet<&str> = list.data().as_array().unwrap().iter().filter_map(|o| o["slug"].as_str()).collect();
        let lost: Vec<&String> = acked[i].iter().filter(|s| !slugs.contains(s.as_str())).collect();
        assert!(lost.is_empty(), "user{i}: acknowledged with 201 but missing after the outage: {lost:?}");
    }
    let total: usize = acked.iter().map(Vec::len).sum();
    eprintln!("{total} organizations acknowledged and all present");
    drop(pg);
}
