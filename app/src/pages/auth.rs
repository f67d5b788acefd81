//! Sign-in (email first, then the password step) and sign-up.
use super::{ActionError, Submit};
use crate::api::{sign_in_providers, SignIn as SignInFn, SignUp as SignUpFn};
use crate::model::sign_in_error_text;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// Email first: the email step submits with GET, so it works without JavaScript; the password step follows.
/// The email step goes to `/signin/continue`, which sends a verified SSO domain to its identity provider.
#[component]
pub fn SignIn() -> impl IntoView {
    let query = use_query_map();
    let email = move || query.with(|q| q.get("email").unwrap_or_default());
    // An application's hosted sign-in (`/signin?client_id=…&redirect_uri=…&state=…`): both steps carry these on.
    let param = move |k: &'static str| query.with(|q| q.get(k).unwrap_or_default());
    let app_fields = move || {
        ["client_id", "redirect_uri", "state", "organization"]
            .into_iter()
            .filter(|k| !param(k).is_empty())
            .map(|k| view! { <input type="hidden" name=k value=param(k)/> })
            .collect_view()
    };
    let action = ServerAction::<SignInFn>::new();
    // "Continue with …" for each instance provider, above the email step; an application's sign-in carries on.
    let providers = Resource::new(|| (), |_| sign_in_providers());
    let provider_href = move |login_url: String| {
        let extra: Vec<String> = ["client_id", "redirect_uri", "state"]
            .into_iter()
            .filter(|k| !param(k).is_empty())
            .map(|k| format!("{k}={}", super::encode_component(&param(k))))
            .collect();
        if extra.is_empty() { login_url } else { format!("{login_url}?{}", extra.join("&")) }
    };
    view! {
        <Title text="Sign in · Latchkey"/>
        <main class="narrow card">
            <h1>"Sign in to Latchkey"</h1>
            <Show
                when=move || !email().is_empty()
                fallback=move || view! {
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            let list = providers.await.unwrap_or_default();
                            (!list.is_empty()).then(|| view! {
                                <nav class="stack" aria-label="Sign in with a provider">
                                    {list.into_iter().map(|b| view! {
                                        <a class="button secondary" href=provider_href(b.login_url.clone()) data-provider=b.slug.clone()>
                                            {format!("Continue with {}", b.name)}
                                        </a>
                                    }).collect_view()}
                                    <p class="muted">"or with your work email:"</p>
                                </nav>
                            })
                        })}
                    </Suspense>
                    <form method="get" action="/signin/continue" class="stack">
                        {app_fields}
                        <label for="email">"Work email"</label>
                        <input id="email" name="email" type="email" autocomplete="username" required autofocus/>
                        <button type="submit">"Continue"</button>
                    </form>
                    <p>"New here? " <a href="/signup">"Create an account"</a></p>
                }
            >
                <ActionForm action=action attr:class="stack">
                    <p>"Signing in as " <strong>{email}</strong> " · " <a href="/signin">"Use another email"</a></p>
                    <input type="hidden" name="email" value=email/>
                    {app_fields}
                    <label for="password">"Password"</label>
                    <input id="password" name="password" type="password" autocomplete="current-password" required autofocus/>
                    <ActionError result=action.value().into()/>
                    <Submit label="Sign in" busy="Signing in…"/>
                </ActionForm>
            </Show>
        </main>
    }
}

/// The LDAP step: shown after the email step when the domain routes to an LDAP connection. A plain HTML form (no
/// script needed) posted to `/api/auth/sso/ldap`, which answers with a redirect; a failure comes back here with
/// its code. The password never appears in a URL.
#[component]
pub fn SignInLdap() -> impl IntoView {
    let query = use_query_map();
    let param = move |k: &'static str| query.with(|q| q.get(k).unwrap_or_default());
    let code = move || param("error").chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect::<String>();
    let hidden = move || {
        [("connectionId", "connection_id"), ("clientId", "client_id"), ("redirectUri", "redirect_uri"), ("state", "state"), ("returnTo", "returnTo")]
            .into_iter()
            .filter(|(_, k)| !param(k).is_empty())
            .map(|(name, k)| view! { <input type="hidden" name=name value=param(k)/> })
            .collect_view()
    };
    view! {
        <Title text="Sign in with your company directory · Latchkey"/>
        <main class="narrow card">
            <h1>"Sign in with your company directory"</h1>
            <p>"Your organization signs you in through its directory (LDAP). Use the name and password of your work account."</p>
            <Show when=move || !code().is_empty()>
                <div class="error" role="alert" id="ldap-error">
                    <strong>{move || sign_in_error_text(&code()).0}</strong>
                    <p>{move || sign_in_error_text(&code()).2}</p>
                </div>
            </Show>
            <form method="post" action="/api/auth/sso/ldap" class="stack" data-busy="Signing in…">
                {hidden}
                <label for="ldap-username">"Username or work email"</label>
                <input id="ldap-username" name="username" type="text" autocomplete="username" required autofocus
                    value=move || param("username")/>
                <label for="ldap-password">"Password"</label>
                <input id="ldap-password" name="password" type="password" autocomplete="current-password" required/>
                <button type="submit">"Sign in"</button>
            </form>
            <p><a href="/signin">"Use another email"</a></p>
        </main>
    }
}

#[component]
pub fn SignUp() -> impl IntoView {
    let action = ServerAction::<SignUpFn>::new();
    view! {
        <Title text="Create an account · Latchkey"/>
        <main class="narrow card">
            <h1>"Create your account"</h1>
            <ActionForm action=action attr:class="stack">
                <label for="name">"Your name"</label>
                <input id="name" name="name" type="text" autocomplete="name" required maxlength="100"/>
                <label for="email">"Work email"</label>
                <input id="email" name="email" type="email" autocomplete="email" required/>
                <label for="password">"Password"</label>
                <input id="password" name="password" type="password" autocomplete="new-password" required minlength="10"
                    aria-describedby="password-help"/>
                <small id="password-help">"At least 10 characters. A long phrase is easier to remember and harder to guess."</small>
                <ActionError result=action.value().into()/>
                <Submit label="Create account" busy="Creating…"/>
            </ActionForm>
            <p>"Already have an account? " <a href="/signin">"Sign in"</a></p>
        </main>
    }
}

/// Where every failed sign-in lands: the stable code, one sentence, and what to do. The org's admin sees the
/// same event, with details, in the audit log.
#[component]
pub fn SignInError() -> impl IntoView {
    let query = use_query_map();
    let code = move || {
        query.with(|q| q.get("code").unwrap_or_default()).chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect::<String>()
    };
    let text = move || sign_in_error_text(&code());
    view! {
        <Title text="Sign-in failed · Latchkey"/>
        <main class="narrow card" role="alert">
            <h1>{move || text().0}</h1>
            <p>{move || text().1}</p>
            <p><strong>"What to do: "</strong>{move || text().2}</p>
            <p class="muted">"Error code: " <code>{code}</code>
                " (give this to your IT admin; the details are in the organization's audit log)."</p>
            <p><a href="/signin">"Back to sign-in"</a></p>
        </main>
    }
}
