//! The account page: who you are, your API keys (create, shown once with a copy button, revoke) and sessions.
use super::{ActionError, CopyValue, ErrorNotice, SignedIn, Submit};
use crate::api::{list_api_keys, list_my_sessions, list_orgs, take_notice, CreateApiKey, RevokeApiKey};
use crate::model::Notice;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_router::hooks::use_query_map;

#[component]
pub fn Account() -> impl IntoView {
    let query = use_query_map();
    let secured = move || query.with(|q| q.get("notice").as_deref() == Some("account_secured"));
    view! {
        <SignedIn title="Account" children=move |me| {
            view! {
                <h1>"Your account"</h1>
                <Show when=secured>
                    <div class="notice" role="status">
                        <strong>"Your account is now secured by your organization's sign-in."</strong>
                        " This address had an account whose owner was never proven (anyone can type an address at sign-up). Your organization's identity provider has now proven the address is yours, so the account is yours: its old password, API keys, sessions and authenticator app were removed, in case someone else had set them up. Create new API keys below if you need them."
                    </div>
                </Show>
                <dl class="facts">
                    <dt>"Name"</dt><dd>{me.name.clone()}</dd>
                    <dt>"Email"</dt><dd>{me.email.clone()}</dd>
                    <dt>"Signed in with"</dt><dd>{me.auth_method.clone()}</dd>
                    <dt>"Two-factor authentication"</dt>
                    <dd><MfaSummary/></dd>
                </dl>
                <ApiKeys/>
                <Sessions/>
            }
        }/>
    }
}

#[component]
fn ApiKeys() -> impl IntoView {
    let create = ServerAction::<CreateApiKey>::new();
    let revoke = ServerAction::<RevokeApiKey>::new();
    let keys = Resource::new(|| (), |_| list_api_keys());
    let orgs = Resource::new(|| (), |_| list_orgs());
    let created = Resource::new(|| (), |_| take_notice("api_key".into()));
    view! {
        <section class="card" aria-labelledby="keys-title">
            <h2 id="keys-title">"API keys"</h2>
            <p class="muted">"A key acts as you on the REST API (header " <code>"X-Api-Key"</code>
                "). Pin it to one organization to limit what it reaches. A key is never challenged for MFA, but only a key created after you passed your second factor counts for an organization that requires MFA. Keep keys secret. "
                <a href="/api/reference" rel="external">"API reference"</a>" ("<a href="/api/openapi.json" rel="external">"OpenAPI document"</a>")."</p>
            <ActionForm action=create attr:class="row">
                <label for="key-name">"Name"</label>
                <input id="key-name" name="name" type="text" required maxlength="100" placeholder="CI deploy"/>
                <label for="key-org">"Organization"</label>
                <select id="key-org" name="organization_id">
                    <option value="">"All my organizations"</option>
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            orgs.await.unwrap_or_default().into_iter().map(|o| view! {
                                <option value=o.id>{o.name}</option>
                            }).collect_view()
                        })}
                    </Suspense>
                </select>
                <Submit label="Create key" busy="Creating…"/>
            </ActionForm>
            <ActionError result=create.value().into()/>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let Ok(Some(Notice::ApiKeyCreated(created))) = created.await else { return None };
                    Some(view! {
                        <div class="notice success" role="status" id="new-key">
                            <p><strong>{format!("Key \"{}\" created.", created.api_key.name)}</strong>
                                " Copy it now: it is shown only once and cannot be recovered."</p>
                            <CopyValue value=created.key label="new API key"/>
                        </div>
                    })
                })}
            </Suspense>
            <ActionError result=revoke.value().into()/>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match keys.await {
                        Ok(list) if list.is_empty() => view! { <p class="empty">"No API keys yet."</p> }.into_any(),
                        Ok(list) => view! {
                            <table>
                                <caption class="sr-only">"Your API keys"</caption>
                                <thead><tr><th scope="col">"Name"</th><th scope="col">"Key"</th><th scope="col">"Organization"</th><th scope="col">"Created"</th><th scope="col">"Last used"</th><th scope="col">"Status"</th><th></th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|k| {
                                        let id = k.id.clone();
                                        let name = k.name.clone();
                                        let active = k.revoked_at.is_none();
                                        view! {
                                            <tr>
                                                <td>{k.name}</td>
                                                <td><code>{format!("{}…", k.prefix)}</code></td>
                                                <td>{k.organization_id.unwrap_or_else(|| "all".into())}</td>
                                                <td>{k.created_at}</td>
                                                <td>{k.last_used_at.unwrap_or_else(|| "never".into())}</td>
                                                <td>{if active { "active" } else { "revoked" }}</td>
                                                <td>{active.then(|| view! { <RevokeButton id=id.clone() name=name.clone()/> })}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                        Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// Revoking asks for confirmation first (integrations using the key stop working at once).
#[component]
fn RevokeButton(id: String, name: String) -> impl IntoView {
    let question = format!("Revoke the API key \"{name}\"? Anything using it stops working at once.");
    view! {
        <form method="post" action=RevokeApiKey::url() data-confirm=question>
            <input type="hidden" name="id" value=id/>
            <button type="submit" class="danger">"Revoke"</button>
        </form>
    }
}

#[component]
fn Sessions() -> impl IntoView {
    let sessions = Resource::new(|| (), |_| list_my_sessions());
    view! {
        <section class="card" aria-labelledby="sessions-title">
            <h2 id="sessions-title">"Where you are signed in"</h2>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match sessions.await {
                        Ok(list) => view! {
                            <ul class="plain">
                                {list.into_iter().map(|s| view! {
                                    <li>
                                        <strong>{s.user_agent.unwrap_or_else(|| "Unknown browser".into())}</strong>
                                        {format!(" · {} · from {} · since {}", s.method, s.ip.unwrap_or_else(|| "?".into()), s.created_at)}
                                        {s.current.then(|| view! { " " <span class="badge">"this browser"</span> })}
                                    </li>
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The account's second factor at a glance, with the way to set it up or turn it off.
#[component]
fn MfaSummary() -> impl IntoView {
    let status = Resource::new(|| (), |_| crate::api::get_mfa_status());
    view! {
        <Suspense fallback=|| "…">
            {move || Suspend::new(async move {
                match status.await {
                    Ok(s) if s.enabled => view! {
                        <span class="badge verified">"on"</span>" "
                        {format!("{} recovery codes left. ", s.recovery_codes_left)}
                        <a href="/mfa?next=/account">"Manage"</a>
                    }.into_any(),
                    Ok(_) => view! {
                        <span class="badge pending">"off"</span>" "
                        <a href="/mfa?next=/account">"Set up an authenticator app"</a>
                    }.into_any(),
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}
