//! `/admin/providers`, for operators: the instance's sign-in providers (reference 004): add one with the Google
//! preset or any OpenID Provider, see what each is set to (never its client id or secret), delete with
//! confirmation. The callback URL to register at the provider has a copy button.
use super::{ActionError, CopyValue, OperatorOnly, Submit};
use crate::api::{list_providers, take_notice, CreateProvider, DeleteProvider, TestProvider, UpdateProvider};
use crate::model::{Notice, ProviderInfo, SsoTestResult};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;

#[component]
pub fn Providers() -> impl IntoView {
    view! {
        <OperatorOnly title="Sign-in providers" what="sign-in providers" page=|| view! { <ProviderList/> }/>
    }
}

#[component]
fn ProviderList() -> impl IntoView {
    let create = ServerAction::<CreateProvider>::new();
    // Refetched after an add, so the new card appears without a reload.
    let providers = Resource::new(move || create.version().get(), |_| list_providers());
    // A test or an edit posts its form and comes back here (no script needed); the test's outcome comes along.
    let tested = Resource::new(|| (), |_| take_notice("provider_test".into()));
    view! {
        <h1>"Sign-in providers"</h1>
        <p class="muted">"Providers for the whole instance, such as \"Continue with Google\" or your company's own OpenID Provider. "
            "Each one is a \"Continue with …\" button on the sign-in page. An address at a domain an organization verified signs in "
            "through it only when that organization adopted it (Identity providers → Use an instance provider)."</p>
        <section class="card" aria-labelledby="new-provider">
            <h2 id="new-provider">"Add a provider"</h2>
            <ActionForm action=create attr:class="stack">
                <label for="p-type">"Type"</label>
                <select id="p-type" name="kind" data-switch="" aria-describedby="p-type-hint">
                    <option value="google" selected>"Google (endpoints preset)"</option>
                    <option value="oidc">"Any OpenID Connect provider (Keycloak, authentik, Okta…)"</option>
                </select>
                <div id="p-type-hint">
                    <p class="hint" data-case="google">"In Google Cloud console: APIs & Services → Credentials → OAuth client ID (Web application); add the callback URL below as an authorized redirect URI."</p>
                    <p class="hint" data-case="oidc">"Give the issuer (Latchkey reads the rest from its discovery document), or the three endpoints."</p>
                </div>
                <label for="p-name">"Display name"</label>
                <input id="p-name" name="name" type="text" required maxlength="100" placeholder="Google"/>
                <label for="p-slug">"Slug (a-z, 0-9 and -; unique)"</label>
                <input id="p-slug" name="slug" type="text" required maxlength="48" pattern="[a-z0-9][a-z0-9-]{1,47}" placeholder="google"/>
                <label for="p-client-id">"Client id"</label>
                <input id="p-client-id" name="client_id" type="text" required autocomplete="off"/>
                <label for="p-client-secret">"Client secret (stored encrypted, never shown again)"</label>
                <input id="p-client-secret" name="client_secret" type="password" required autocomplete="new-password"/>
                <div data-case="oidc" class="stack">
                    <label for="p-issuer">"Issuer URL"</label>
                    <input id="p-issuer" name="issuer" type="url" placeholder="https://keycloak.example.com/realms/main"/>
                    <label for="p-auth">"Authorization endpoint (optional with an issuer)"</label>
                    <input id="p-auth" name="auth_url" type="url"/>
                    <label for="p-token">"Token endpoint"</label>
                    <input id="p-token" name="token_url" type="url"/>
                    <label for="p-userinfo">"Userinfo endpoint"</label>
                    <input id="p-userinfo" name="userinfo_url" type="url"/>
                </div>
                <label for="p-scopes">"Scopes"</label>
                <input id="p-scopes" name="scopes" type="text" value="openid email profile"/>
                <label for="p-domains">"Allowed email domains (comma-separated; empty: anyone)"</label>
                <input id="p-domains" name="allowed_domains" type="text" placeholder="example.com, company.org"/>
                <label><input type="checkbox" name="auto_register" value="on" checked/>" Create accounts for people who sign in for the first time"</label>
                <Submit label="Add provider" busy="Adding…"/>
            </ActionForm>
            <ActionError result=create.value().into()/>
        </section>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let tested = match tested.await { Ok(Some(Notice::ProviderTested(id, r))) => Some((id, r)), _ => None };
                match providers.await {
                    Ok(list) if list.is_empty() => view! { <p class="empty">"No sign-in providers yet."</p> }.into_any(),
                    Ok(list) => list
                        .into_iter()
                        .map(|p| {
                            let t = tested.clone().filter(|(id, _)| *id == p.id).map(|(_, r)| r);
                            view! { <ProviderCard provider=p tested=t/> }
                        })
                        .collect_view()
                        .into_any(),
                    Err(e) => view! { <super::ErrorNotice error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ProviderCard(provider: ProviderInfo, tested: Option<SsoTestResult>) -> impl IntoView {
    let p = provider;
    let tested = tested.map(|r| view! {
        <p class=if r.success { "notice success" } else { "notice error" } role="status">{format!("{} ({} ms)", r.message, r.response_time_ms)}</p>
    });
    let (id_test, id_edit) = (p.id.clone(), p.id.clone());
    let domains = p.allowed_domains.join(", ");
    let (edit_name, edit_scopes, edit_auto) = (p.name.clone(), p.scopes.clone(), p.auto_register);
    let confirm = format!("Delete the sign-in provider \"{}\"?", p.name);
    let endpoints = match (&p.auth_url, &p.token_url, &p.userinfo_url) {
        (Some(a), Some(t), Some(u)) => format!("Endpoints: {a}, {t}, {u}."),
        _ => "Endpoints from discovery.".to_string(),
    };
    view! {
        <section class="card" data-provider=p.slug.clone() aria-label=format!("Sign-in provider {}", p.name)>
            <h2>{p.name.clone()}</h2>
            <p class="muted">{format!("Slug {} · {} · issuer {}", p.slug, if p.kind == "google" { "Google" } else { "OpenID Connect" }, p.issuer.clone().unwrap_or_else(|| "none".into()))}</p>
            <p class="muted">{endpoints}</p>
            <p class="muted">{format!("Scopes: {}. {} Allowed domains: {}.", p.scopes,
                if p.auto_register { "New accounts are created." } else { "Only existing accounts may sign in." },
                if p.allowed_domains.is_empty() { "any".to_string() } else { p.allowed_domains.join(", ") })}</p>
            <CopyValue value=p.callback_url.clone() label="callback URL to register at the provider"/>
            <form method="post" action=TestProvider::url() class="inline">
                <input type="hidden" name="id" value=id_test/>
                <Submit label="Test" busy="Reaching the provider…"/>
            </form>
            <div aria-live="polite">{tested}</div>
            <details>
                <summary>"Edit"</summary>
                <form method="post" action=UpdateProvider::url() class="stack">
                    <input type="hidden" name="id" value=id_edit/>
                    <label>"Display name" <input name="name" type="text" maxlength="100" value=edit_name/></label>
                    <label>"Scopes" <input name="scopes" type="text" value=edit_scopes/></label>
                    <label>"Allowed email domains (comma-separated; empty: anyone)" <input name="allowed_domains" type="text" value=domains/></label>
                    <label><input type="checkbox" name="auto_register" value="on" checked=edit_auto/>" Create accounts for people who sign in for the first time"</label>
                    <label>"New client secret (empty: keep the current one)" <input name="client_secret" type="password" autocomplete="new-password"/></label>
                    <Submit label="Save changes" busy="Saving…"/>
                </form>
            </details>
            <form method="post" action=DeleteProvider::url() data-confirm=confirm>
                <input type="hidden" name="id" value=p.id.clone()/>
                <button type="submit" class="danger">"Delete"</button>
            </form>
        </section>
    }
}
