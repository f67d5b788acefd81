//! `/metrics` in the Prometheus text format: HTTP requests by route template, method and status class (with a
//! latency histogram), what the service layer counts (`app::service::metrics`: sign-ins, MFA challenges, domain
//! checks, background jobs), and gauges read at scrape time (database pool, background job lag, process CPU and
//! memory). Labels never carry ids, emails or other unbounded values: a request that matched no route is
//! `route="unmatched"`, an unusual method is `method="other"`.
use app::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();

/// Installs the process-wide recorder once (every `build` in one process shares it) and keeps its histograms
/// drained. `None` when another recorder was installed first; `/metrics` then answers 503.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), LATENCY_BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            let process = PROCESS.get_or_init(metrics_process::Collector::default);
            process.describe();
            describe();
            let upkeep = handle.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    upkeep.run_upkeep();
                }
            });
            Some(handle)
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!("latchkey_http_requests_total", "HTTP requests by method, route template and status class.");
    describe_histogram!("latchkey_http_request_duration_seconds", Unit::Seconds, "Time to answer an HTTP request.");
    describe_counter!("latchkey_sign_ins_total", "Finished sign-in attempts by method, protocol, outcome and error code.");
    describe_counter!("latchkey_mfa_challenges_total", "Second-factor challenges by outcome.");
    describe_counter!("latchkey_domain_checks_total", "DNS checks of domains by result.");
    describe_counter!("latchkey_job_passes_total", "Passes of background jobs on this node.");
    describe_histogram!("latchkey_job_pass_duration_seconds", Unit::Seconds, "Time one pass of a background job took.");
    describe_counter!("latchkey_webhook_attempts_total", "Webhook delivery attempts by result (delivered, pending = will retry, failed = gave up).");
    describe_gauge!("latchkey_job_lag_seconds", Unit::Seconds, "How long the oldest due item of a background job has been waiting (0 when none is due).");
    describe_gauge!("latchkey_job_due_items", "Items a background job has due now.");
    describe_gauge!("latchkey_db_pool_connections", "Database pool connections of this node, in use and idle.");
}

/// Middleware: counts and times every request by its route template (`/api/user/organizations/{org_id}`).
pub async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = method_label(req.method());
    let start = Instant::now();
    let resp = next.run(req).await;
    let labels = [("method", method.to_string()), ("route", route), ("status", status_class(resp.status()).to_string())];
    metrics::counter!("latchkey_http_requests_total", &labels).increment(1);
    metrics::histogram!("latchkey_http_request_duration_seconds", &labels).record(start.elapsed().as_secs_f64());
    resp
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(s: StatusCode) -> &'static str {
    match s.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// `GET /metrics`: reads the scrape-time gauges, then renders everything.
pub async fn render(State(state): State<AppState>) -> Response {
    let Some(handle) = HANDLE.get().cloned().flatten() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "metrics are not available in this process\n").into_response();
    };
    if let Some(p) = PROCESS.get() {
        p.collect();
    }
    let size = state.db.size() as f64;
    let idle = state.db.num_idle() as f64;
    metrics::gauge!("latchkey_db_pool_connections", "state" => "in_use").set((size - idle).max(0.0));
    metrics::gauge!("latchkey_db_pool_connections", "state" => "idle").set(idle);
    match app::service::housekeeping::job_lag(&state).await {
        Ok(lags) => {
            for lag in lags {
                metrics::gauge!("latchkey_job_lag_seconds", "job" => lag.job).set(lag.seconds);
                metrics::gauge!("latchkey_job_due_items", "job" => lag.job).set(lag.due as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: job lag not read"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
}
