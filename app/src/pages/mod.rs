//! The console: routes, the HTML shell, the signed-in frame, and small shared components.
//!
//! Every page is rendered on the server and works without JavaScript: forms are plain posts to server functions,
//! which redirect back (with the error, if any, in the query). The browser bundle only adds what HTML cannot do
//! (see `enhance`): copy buttons, confirmation before destructive actions, progress labels, live regions.
#[cfg(feature = "hydrate")]
pub mod enhance;
mod account;
mod audit;
mod webhooks;
mod admin;
mod providers;
mod auth;
mod domains;
mod security;
mod orgs;
mod sso;
mod connections;
mod workspace;

use crate::api::{current_user, list_orgs, SignOut};
use crate::error::AppError;
use crate::model::Me;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Redirect, Route, Router, Routes, A};
use leptos_router::{path, SsrMode};

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/latchkey.css"/>
        <Title text="Latchkey"/>
        <Router>
            <Routes fallback=|| view! { <NotFound/> }>
                <Route path=path!("/") view=Home ssr=SsrMode::Async/>
                <Route path=path!("/signin") view=auth::SignIn ssr=SsrMode::Async/>
                <Route path=path!("/signin/ldap") view=auth::SignInLdap ssr=SsrMode::Async/>
                <Route path=path!("/signup") view=auth::SignUp ssr=SsrMode::Async/>
                <Route path=path!("/auth/error") view=auth::SignInError ssr=SsrMode::Async/>
                <Route path=path!("/orgs") view=orgs::OrgList ssr=SsrMode::Async/>
                <Route path=path!("/orgs/:org_id") view=orgs::OrgOverview ssr=SsrMode::Async/>
                <Route path=path!("/orgs/:org_id/members") view=orgs::OrgMembers ssr=SsrMode::Async/>
                <Route path=path!("/orgs/:org_id/sso") view=sso::IdentityProvider ssr=SsrMode::Async/>
                <Route path=path!("/orgs/:org_id/domains") view=domains::Domains ssr=SsrMode::Async/>
                <Route path=path!("/orgs/:org_id/security") view=security::Security ssr=SsrMode::Async/>
                <Route path=path!("/orgs/:org_id/sessions") view=security::Sessions ssr=SsrMode::Async/>
                <Route path=path!("/orgs/:org_id/audit") view=audit::AuditLog ssr=SsrMode::Async/>
                <Route path=path!("/orgs/:org_id/webhooks") view=webhooks::Webhooks ssr=SsrMode::Async/>
                <Route path=path!("/mfa") view=security::Mfa ssr=SsrMode::Async/>
                <Route path=path!("/account") view=account::Account ssr=SsrMode::Async/>
                <Route path=path!("/admin") view=admin::Admin ssr=SsrMode::Async/>
                <Route path=path!("/admin/providers") view=providers::Providers ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}

#[component]
fn Home() -> impl IntoView {
    let user = Resource::new(|| (), |_| current_user());
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match user.await {
                    Ok(Some(_)) => view! { <Redirect path="/orgs"/> }.into_any(),
                    _ => view! { <Redirect path="/signin"/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        resp.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <main class="narrow">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. " <a href="/">"Go to the console"</a></p>
        </main>
    }
}

/// A signed-in page for operators of the instance only (`page`); everyone else is told how the role is granted.
#[component]
pub fn OperatorOnly<F, V>(title: &'static str, what: &'static str, page: F) -> impl IntoView
where
    F: Fn() -> V + Send + Sync + Clone + 'static,
    V: IntoView + 'static,
{
    view! {
        <SignedIn title=title children=move |me| {
            if me.operator {
                page().into_any()
            } else {
                view! {
                    <h1>{title}</h1>
                    <div class="notice error" role="alert">{format!("Only operators of this Latchkey instance manage {what}. The operator role is granted on the server: ")}
                        <code>"latchkey operators add EMAIL"</code></div>
                }.into_any()
            }
        }/>
    }
}

/// The frame of every signed-in page: header with the org switcher, account and sign-out. Signs the visitor
/// in first when needed, then renders `children` with the user.
#[component]
pub fn SignedIn<F, V>(title: &'static str, children: F) -> impl IntoView
where
    F: Fn(Me) -> V + Send + Sync + Clone + 'static,
    V: IntoView + 'static,
{
    let user = Resource::new(|| (), |_| current_user());
    view! {
        <Title text=format!("{title} · Latchkey")/>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || {
                let children = children.clone();
                Suspend::new(async move {
                    match user.await {
                        Ok(Some(me)) if me.mfa_pending => {
                            let here = leptos_router::hooks::use_location().pathname.get_untracked();
                            let next = encode_component(&here);
                            view! { <Redirect path=format!("/mfa?next={next}")/> }.into_any()
                        }
                        Ok(Some(me)) => view! {
                            <Header me=me.clone()/>
                            <main>{children(me).into_any()}</main>
                        }.into_any(),
                        Ok(None) => view! { <Redirect path="/signin"/> }.into_any(),
                        Err(e) => view! { <main><ErrorNotice error=e/></main> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn Header(me: Me) -> impl IntoView {
    let orgs = Resource::new(|| (), |_| list_orgs());
    let sign_out = ServerAction::<SignOut>::new();
    view! {
        <header class="top">
            <a class="brand" href="/orgs">"Latchkey"</a>
            <nav aria-label="Organizations">
                <details class="switcher">
                    <summary>"Switch organization"</summary>
                    <ul>
                        <Suspense fallback=|| view! { <li>"Loading…"</li> }>
                            {move || Suspend::new(async move {
                                let list = orgs.await.unwrap_or_default();
                                view! {
                                    {list.into_iter().map(|o| view! {
                                        <li><a href=format!("/orgs/{}", o.id)>{o.name}" "<small>{o.role}</small></a></li>
                                    }).collect_view()}
                                    <li><a href="/orgs#create">"+ New organization"</a></li>
                                }
                            })}
                        </Suspense>
                    </ul>
                </details>
            </nav>
            <span class="spacer"></span>
            {me.operator.then(|| view! { <A href="/admin">"Applications"</A> <A href="/admin/providers">"Sign-in providers"</A> })}
            <A href="/account">{me.email}</A>
            <ActionForm action=sign_out attr:class="inline">
                <button type="submit" class="link">"Sign out"</button>
            </ActionForm>
        </header>
    }
}

#[component]
pub fn ErrorNotice(error: AppError) -> impl IntoView {
    let mfa = (error.code == "MFA_REQUIRED").then(|| view! { " " <a href="/mfa">"Set up or enter your second factor"</a> });
    view! {
        <div class="notice error" role="alert">
            <strong>{error.message.clone()}</strong>
            {mfa}
            " "
            <code class="code">{error.code.clone()}</code>
        </div>
    }
}

/// Shows the error of the last submission of `action`, if it failed.
#[component]
pub fn ActionError<T: Clone + Send + Sync + 'static>(result: Signal<Option<Result<T, AppError>>>) -> impl IntoView {
    move || match result.get() {
        Some(Err(e)) => Some(view! { <ErrorNotice error=e/> }),
        _ => None,
    }
}

/// A value an admin must paste elsewhere, with a Copy button. The button appears once the page's script runs
/// (`enhance`); without it the value stays selectable text.
#[component]
pub fn CopyValue(#[prop(into)] value: String, #[prop(into)] label: String) -> impl IntoView {
    view! {
        <div class="copy">
            <code class="value" aria-label=label.clone()>{value}</code>
            <button type="button" class="secondary" data-copy="" hidden aria-label=format!("Copy {label}")>"Copy"</button>
        </div>
    }
}

/// A form's submit button that says what is happening (`busy`) once pressed, while the server works.
#[component]
pub fn Submit(
    label: &'static str,
    busy: &'static str,
    #[prop(optional)] class: &'static str,
) -> impl IntoView {
    view! { <button type="submit" class=class data-busy=busy>{label}</button> }
}

/// Percent-encodes a query value (everything but unreserved characters and `/`); works on server and browser.
pub fn encode_component(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
