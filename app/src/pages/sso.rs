//! The owner's Identity provider page: presets that say where each IdP shows its values, the callback URL to
//! paste there, save, test (with result and time), the members' login URL, and delete with a warning.
use super::orgs::OrgNav;
use super::{ActionError, CopyValue, ErrorNotice, SignedIn};
use crate::api::{get_sso_page, DeleteSsoSettings, SaveSsoSettings, TestSsoSettings};
use crate::model::{provider_preset, SsoPage};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

#[component]
pub fn IdentityProvider() -> impl IntoView {
    let params = use_params_map();
    let org_id = move || params.with(|p| p.get("org_id").unwrap_or_default());
    view! {
        <SignedIn title="Identity provider" children=move |_me| {
            let save = ServerAction::<SaveSsoSettings>::new();
            let delete = ServerAction::<DeleteSsoSettings>::new();
            let test = ServerAction::<TestSsoSettings>::new();
            let page = Resource::new(
                move || (org_id(), save.version().get(), delete.version().get(), test.version().get()),
                |(id, ..)| get_sso_page(id),
            );
            view! {
                <h1>"Identity provider"</h1>
                <OrgNav org_id=org_id() current="Identity provider"/>
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match page.await {
                            Ok(data) => view! { <SsoForm org_id=org_id() data=data save=save delete=delete test=test/> }.into_any(),
                            Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                        }
                    })}
                </Suspense>
            }
        }/>
    }
}

#[component]
fn SsoForm(
    org_id: String,
    data: SsoPage,
    save: ServerAction<SaveSsoSettings>,
    delete: ServerAction<DeleteSsoSettings>,
    test: ServerAction<TestSsoSettings>,
) -> impl IntoView {
    let s = data.settings.clone();
    let provider = RwSignal::new(s.as_ref().map(|s| s.provider.clone()).unwrap_or_else(|| "okta".into()));
    let configured = s.is_some();
    let status_text = s.as_ref().map(|s| match s.status.as_str() {
        "active" => "Working: the last test passed.".to_string(),
        "error" => "Failing: the last test did not pass.".to_string(),
        _ => "Saved, not tested yet. Run the test before telling members to use SSO.".to_string(),
    });
    let on_delete = {
        let org_id = org_id.clone();
        move |ev: leptos::ev::MouseEvent| {
            ev.prevent_default();
            let q = "Remove this identity provider? Members will no longer be able to sign in with SSO until one is configured again.";
            if window().confirm_with_message(q).unwrap_or(false) {
                delete.dispatch(DeleteSsoSettings { org_id: org_id.clone() });
            }
        }
    };
    // The secret field empties once the secret is stored: it is never shown again, even to the owner.
    let secret = RwSignal::new(String::new());
    Effect::new(move |_| {
        if matches!(save.value().get(), Some(Ok(_))) {
            secret.set(String::new());
        }
    });
    let issuer_value = s.as_ref().map(|s| s.issuer_url.clone()).unwrap_or_default();
    let client_id_value = s.as_ref().map(|s| s.client_id.clone()).unwrap_or_default();
    let linked = s.as_ref().map(|s| s.linked_identities).unwrap_or(0);
    let org_for_form = org_id.clone();
    let tail = s.map(|s| {
        let org_for_test = org_id.clone();
        view! {
            <section class="card" aria-labelledby="step3">
                <h2 id="step3">"3. Test, then share the login link"</h2>
                <p class=format!("status {}", s.status) role="status">
                    <strong>{status_text.clone()}</strong>
                    {s.last_tested_at.clone().map(|t| format!(" Last tested {t}."))}
                </p>
                {s.last_test_message.clone().map(|m| view! { <p class="muted">{m}</p> })}
                <button type="button" class="secondary" disabled=move || test.pending().get()
                    on:click=move |_| { test.dispatch(TestSsoSettings { org_id: org_for_test.clone() }); }>
                    {move || if test.pending().get() { "Testing…" } else { "Test connection" }}
                </button>
                {move || test.value().get().map(|r| match r {
                    Ok(r) => view! {
                        <div class=if r.success { "notice success" } else { "notice error" } role="status" id="test-result">
                            <strong>{if r.success { "Test passed. " } else { "Test failed. " }}</strong>
                            {r.message.clone()}
                            {format!(" ({} ms)", r.response_time_ms)}
                        </div>
                    }.into_any(),
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                })}
                <h3>"Login URL for members"</h3>
                <CopyValue value=s.login_url.clone() label="SSO login URL"/>
                <p class="muted">"New members who sign in through the identity provider join as "
                    <strong>{s.default_role.clone()}</strong>" (just-in-time provisioning is "
                    {if s.jit_provisioning { "on" } else { "off" }}
                    "). A member you remove comes back at their next SSO sign-in while it stays on."</p>
            </section>
            <section class="card danger-zone" aria-labelledby="remove">
                <h2 id="remove">"Remove"</h2>
                <p>"Members lose single sign-on at once. Password sign-in is unaffected."</p>
                <ActionError result=delete.value().into()/>
                <form method="post" action="/sfn/delete_sso_settings">
                    <input type="hidden" name="org_id" value=org_id.clone()/>
                    <button type="submit" class="danger" on:click=on_delete.clone()>"Remove identity provider"</button>
                </form>
            </section>
        }
    });
    view! {
        <section class="card" aria-labelledby="step1">
            <h2 id="step1">"1. Register Latchkey at your identity provider"</h2>
            <p>"Create a Web application (confidential client, authorization code grant, scopes "
                <code>"openid profile email"</code>") and paste this exact redirect URI. It is the same for every organization."</p>
            <CopyValue value=data.callback_url.clone() label="callback URL"/>
            <p class="hint">"Your identity provider signs people in only with addresses at this organization's verified domains (Domains page). "
                "An address at a domain nobody verified, or that another organization verified, is refused, so an identity provider never speaks for someone else's people."</p>
        </section>
        <section class="card" aria-labelledby="step2">
            <h2 id="step2">"2. Enter what your identity provider shows"</h2>
            <ActionForm action=save attr:class="stack">
                <input type="hidden" name="org_id" value=org_for_form/>
                <label for="provider">"Identity provider"</label>
                <select id="provider" name="provider" on:change=move |ev| provider.set(event_target_value(&ev)) prop:value=move || provider.get()>
                    {["okta", "azure", "google", "oidc"].into_iter().map(|p| view! {
                        <option value=p selected=move || provider.get() == p>{provider_preset(p).0}</option>
                    }).collect_view()}
                </select>
                <p class="hint" id="provider-hint">{move || provider_preset(&provider.get()).2}</p>
                <label for="issuer">"Issuer URL"</label>
                <input id="issuer" name="issuer_url" type="url" required aria-describedby="provider-hint"
                    value=issuer_value
                    placeholder=move || provider_preset(&provider.get()).1/>
                <label for="client-id">"Client ID"</label>
                <input id="client-id" name="client_id" type="text" required autocomplete="off"
                    value=client_id_value/>
                <label for="client-secret">"Client secret"</label>
                <input id="client-secret" name="client_secret" type="password" autocomplete="new-password" required=!configured
                    prop:value=move || secret.get() on:input=move |ev| secret.set(event_target_value(&ev))
                    placeholder=if configured { "Stored encrypted. Leave empty to keep it (same issuer and client ID only)." } else { "" }/>
                <Show when=move || configured>
                    <p class="hint">"Changing the issuer URL or client ID needs the client secret again: the saved secret is only ever sent to the identity provider it was entered for. "
                        {format!("Changing the issuer URL also unlinks the {linked} people who signed in through it; they link again at their next sign-in, by their address at a verified domain.")}</p>
                </Show>
                <ActionError result=save.value().into()/>
                <button type="submit" disabled=move || save.pending().get()>
                    {move || if save.pending().get() { "Saving…" } else { "Save" }}
                </button>
            </ActionForm>
        </section>
        {tail}
    }
}
