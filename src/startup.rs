//! Builds the whole application from a `Config`: database, secret box, router and listener. `main` only
//! calls `build` then `run`; tests call `build` with port 0.
use crate::config::Config;
use crate::{csrf, metrics, rest};
use anyhow::Context;
use app::service::session_store::DbSessionStore;
use app::state::{AppState, Settings};
use app::{shell, App};
use axum::routing::get;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

pub const SESSION_COOKIE: &str = "latchkey_session";

pub struct Application {
    pub router: Router,
    pub listener: TcpListener,
    pub addr: SocketAddr,
    pub state: AppState,
    /// `--metrics-bind`: the separate listener of `/metrics` and its address.
    pub metrics: Option<(TcpListener, SocketAddr)>,
}

pub async fn build(config: Config) -> anyhow::Result<Application> {
    let (secrets, created) = app::service::crypto::SecretBox::load_or_create(&config.key_file).map_err(anyhow::Error::msg)?;
    if created {
        tracing::warn!(
            key_file = %config.key_file.display(),
            "GENERATED A NEW ENCRYPTION KEY for secrets at rest. Back this file up: without it, stored IdP secrets cannot be decrypted."
        );
    }
    let db = app::repo::connect(&config.database_url).await.map_err(anyhow::Error::msg)?;
    let listener = TcpListener::bind(&config.bind).await.with_context(|| format!("cannot listen on {}", config.bind))?;
    let addr = listener.local_addr()?;
    let (public_url, secure_cookies) = config.public_url(addr).map_err(anyhow::Error::msg)?;
    let sso = app::service::oidc::SsoRuntime::new(config.allow_private_idp, config.allow_private_webhooks).map_err(anyhow::Error::msg)?;
    let dns = app::service::domains::DnsChecker::new(
        config.dns_server.as_deref(),
        app::service::domains::CheckTiming { base_ms: config.domain_check_unit_ms },
    )
    .map_err(anyhow::Error::msg)?;
    if config.allow_private_webhooks {
        tracing::warn!("--allow-private-webhooks is on: any org owner may send webhooks to private, loopback and link-local addresses");
    }
    if config.allow_private_idp {
        tracing::warn!("--allow-private-idp is on: IdP URLs may point at private, loopback and link-local addresses");
    }

    let leptos_options = LeptosOptions::builder()
        .output_name("latchkey")
        .site_root(config.site_root.clone())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build();
    let secrets = Arc::new(secrets);
    app::error::url_seal::install(secrets.clone());
    let state = AppState {
        db: db.clone(),
        secrets,
        settings: Arc::new(Settings {
            public_url: public_url.clone(),
            secure_cookies,
            trusted_proxies: config.trusted_proxies.clone(),
            sso_rate_limit_per_minute: config.sso_rate_limit,
            audit_retention_days: config.audit_retention_days,
            webhook_retry_unit_ms: config.webhook_retry_unit_ms,
            google_issuer: config.google_issuer.trim_end_matches('/').to_string(),
        }),
        sso: Arc::new(sso),
        dns: Arc::new(dns),
        leptos_options: leptos_options.clone(),
    };

    let sessions = SessionManagerLayer::new(DbSessionStore::new(db.clone()))
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure_cookies)
        .with_expiry(Expiry::OnInactivity(time::Duration::days(7)));

    let context = {
        let state = state.clone();
        move || {
            provide_context(state.clone());
            provide_context(app::api::ctx::RequestScope::default());
        }
    };
    metrics::install();
    let metrics_listener = match &config.metrics_bind {
        Some(bind) => {
            let l = TcpListener::bind(bind).await.with_context(|| format!("cannot listen on --metrics-bind {bind}"))?;
            let a = l.local_addr()?;
            Some((l, a))
        }
        None => None,
    };
    let routes = generate_route_list(App);
    let (api, outside, doc) = rest::routers();
    drop(doc);
    release_freed_memory();
    let mut router = Router::new().nest("/api", api).merge(outside);
    if metrics_listener.is_none() {
        router = router.route("/metrics", get(metrics::render));
    }
    let router = router
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let options = leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(context, shell))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(axum::middleware::from_fn_with_state(Arc::new(csrf::origin_of(&public_url)), csrf::guard))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(sessions)
        .layer(TraceLayer::new_for_http())
        .with_state(state.clone());

    app::service::housekeeping::spawn(state.clone(), std::time::Duration::from_secs(300));
    app::service::domains::spawn_worker(state.clone());
    app::service::webhooks::send::spawn_worker(state.clone());
    Ok(Application { router, listener, addr, state, metrics: metrics_listener })
}

/// Headers on every response: no framing (clickjacking), no MIME sniffing, no referrer beyond the origin, and
/// `Cache-Control: no-store` on everything but the built assets and what says otherwise (the JWKS), so no API key, TOTP secret, recovery code or
/// signed-in page is ever kept by a browser or proxy cache.
/// Building the OpenAPI document and its page allocates a few MiB of short-lived values; glibc keeps freed heap
/// that is not at its top. Handing it back once, after start-up, keeps idle RSS where it was without the document.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_freed_memory() {
    // SAFETY: malloc_trim only returns free pages to the kernel; it is thread-safe and takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_freed_memory() {}

async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let cacheable = req.uri().path().starts_with("/pkg/") || req.uri().path() == "/favicon.ico";
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'; base-uri 'self'; object-src 'none'"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin"));
    if !cacheable && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

pub async fn run(app: Application) -> anyhow::Result<()> {
    tracing::info!("listening on http://{}", app.addr);
    if let Some((listener, addr)) = app.metrics {
        tracing::info!("metrics on http://{addr}/metrics");
        let metrics_only = Router::new().route("/metrics", get(metrics::render)).with_state(app.state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, metrics_only).await {
                tracing::error!(error = %e, "metrics listener stopped");
            }
        });
    }
    axum::serve(app.listener, app.router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server error")
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
