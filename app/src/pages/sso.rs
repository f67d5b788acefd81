//! The owner's Identity provider page: presets that say where each IdP shows its values, the callback URL to
//! paste there, save, test (with result and time), the members' login URL, and delete with a warning.
use super::orgs::OrgNav;
use super::{ActionError, CopyValue, ErrorNotice, SignedIn, Submit};
use crate::api::{get_sso_page, take_notice, DeleteSsoSettings, SaveSsoSettings, TestSsoSettings};
use crate::model::{provider_preset, Notice, SsoPage};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
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
            let page = Resource::new(org_id, get_sso_page);
            let tested = Resource::new(|| (), |_| take_notice("sso_test".into()));
            view! {
                <h1>"Identity provider"</h1>
                <OrgNav org_id=org_id() current="Identity provider"/>
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        let tested = match tested.await { Ok(Some(Notice::SsoTested(org, r))) if org == org_id() => Some(r), _ => None };
                        match page.await {
                            Ok(data) => view! {
                                <SsoForm org_id=org_id() data=data save=save delete=delete test=test tested=tested/>
                                <super::connections::Connections org_id=org_id()/>
                            }.into_any(),
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
    tested: Option<crate::model::SsoTestResult>,
) -> impl IntoView {
    let s = data.settings.clone();
    let provider = s.as_ref().map(|s| s.provider.clone()).unwrap_or_else(|| "okta".into());
    let configured = s.is_some();
    let status_text = s.as_ref().map(|s| match s.status.as_str() {
        "active" => "Working: the last test passed.".to_string(),
        "error" => "Failing: the last test did not pass.".to_string(),
        _ => "Saved, not tested yet. Run the test before telling members to use SSO.".to_string(),
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
                <form method="post" action=TestSsoSettings::url()>
                    <input type="hidden" name="org_id" value=org_for_test/>
                    <Submit label="Test connection" busy="Testing…" class="secondary"/>
                </form>
                <ActionError result=test.value().into()/>
                {tested.map(|r| view! {
                    <div class=if r.success { "notice success" } else { "notice error" } role="status" id="test-result">
                        <strong>{if r.success { "Test passed. " } else { "Test failed. " }}</strong>
                        {r.message.clone()}
                        {format!(" ({} ms)", r.response_time_ms)}
                    </div>
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
                <form method="post" action=DeleteSsoSettings::url()
                    data-confirm="Remove this identity provider? Members will no longer be able to sign in with SSO until one is configured again.">
                    <input type="hidden" name="org_id" value=org_id.clone()/>
                    <button type="submit" class="danger">"Remove identity provider"</button>
                </form>
            </section>
        }
    });
    let placeholder = provider_preset(&provider).1;
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
                // With the page's script, only the chosen provider's directions show; without it, all of them do.
                <select id="provider" name="provider" data-switch="" aria-describedby="provider-hint">
                    {["okta", "azure", "google", "oidc"].into_iter().map(|p| view! {
                        <option value=p selected=provider == p>{provider_preset(p).0}</option>
                    }).collect_view()}
                </select>
                <div id="provider-hint">
                    {["okta", "azure", "google", "oidc"].into_iter().map(|p| view! {
                        <p class="hint" data-case=p>{provider_preset(p).2}</p>
                    }).collect_view()}
                </div>
                <label for="issuer">"Issuer URL"</label>
                <input id="issuer" name="issuer_url" type="url" required aria-describedby="provider-hint"
                    value=issuer_value placeholder=placeholder/>
                <label for="client-id">"Client ID"</label>
                <input id="client-id" name="client_id" type="text" required autocomplete="off"
                    value=client_id_value/>
                <label for="client-secret">"Client secret"</label>
                <input id="client-secret" name="client_secret" type="password" autocomplete="new-password" required=!configured
                    placeholder=if configured { "Stored encrypted. Leave empty to keep it (same issuer and client ID only)." } else { "" }/>
                {configured.then(|| view! {
                    <p class="hint">"Changing the issuer URL or client ID needs the client secret again: the saved secret is only ever sent to the identity provider it was entered for. "
                        {format!("Changing the issuer URL also unlinks the {linked} people who signed in through it; they link again at their next sign-in, by their address at a verified domain.")}</p>
                })}
                <ActionError result=save.value().into()/>
                <Submit label="Save" busy="Saving…"/>
            </ActionForm>
        </section>
        {tail}
    }
}
