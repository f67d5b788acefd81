//! `/admin`, for operators of this instance: registered applications (create, rotate the secret, edit redirect
//! URIs, delete). Secrets are shown once with a copy button.
use super::{ActionError, CopyValue, OperatorOnly, Submit};
use crate::api::{list_applications, take_notice, CreateApplication, DeleteApplication, RotateApplicationSecret, UpdateRedirectUris};
use crate::model::{ApplicationInfo, Notice};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;

#[component]
pub fn Admin() -> impl IntoView {
    view! {
        <OperatorOnly title="Applications" what="applications" page=|| view! { <Applications/> }/>
    }
}

#[component]
fn Applications() -> impl IntoView {
    let create = ServerAction::<CreateApplication>::new();
    let rotate = ServerAction::<RotateApplicationSecret>::new();
    let update = ServerAction::<UpdateRedirectUris>::new();
    let delete = ServerAction::<DeleteApplication>::new();
    let apps = Resource::new(|| (), |_| list_applications());
    let notice = Resource::new(|| (), |_| take_notice("application".into()));
    view! {
        <h1>"Applications"</h1>
        <p class="muted">"An application is a product that deploys Latchkey: it sends people here to sign in and receives them back at one of its registered redirect URIs with a one-time token, which it redeems with its client id and secret."</p>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match notice.await {
                    Ok(Some(Notice::ApplicationCreated(c))) => Some(view! {
                        <div class="notice success" role="status" id="new-secret">
                            <p><strong>{format!("\"{}\" registered.", c.application.name)}</strong>" Copy the client secret now: it is shown only once."</p>
                            <CopyValue value=c.application.client_id.clone() label="client id"/>
                            <CopyValue value=c.client_secret label="client secret"/>
                        </div>
                    }.into_any()),
                    Ok(Some(Notice::SecretRotated(c))) => Some(view! {
                        <div class="notice success" role="status" id="rotated-secret">
                            <p><strong>{format!("New secret for \"{}\".", c.application.name)}</strong>
                                " Copy it now: it is shown only once. The previous secret keeps working for 24 hours, so you can roll the new one out first."</p>
                            <CopyValue value=c.client_secret label="new client secret"/>
                        </div>
                    }.into_any()),
                    _ => None,
                }
            })}
        </Suspense>
        <section class="card" aria-labelledby="new-app">
            <h2 id="new-app">"Register an application"</h2>
            <ActionForm action=create attr:class="stack">
                <label for="app-name">"Name"</label>
                <input id="app-name" name="name" type="text" required maxlength="100" placeholder="Acme CRM"/>
                <label for="app-uris">"Redirect URIs (one per line, exact match)"</label>
                <textarea id="app-uris" name="redirect_uris" rows="3" required placeholder="https://crm.example.com/auth/callback"></textarea>
                <p class="hint">"https only (http is allowed for 127.0.0.1 and localhost); no wildcards or #fragments. The browser is only ever sent back to a URI listed here, character for character."</p>
                <label for="app-mfa">"Second factor"</label>
                <select id="app-mfa" name="mfa_handling">
                    <option value="latchkey" selected>"Latchkey challenges it before handing back (recommended)"</option>
                    <option value="app">"Hand back at once; my application runs the challenge through the API"</option>
                </select>
                <Submit label="Register application" busy="Registering…"/>
            </ActionForm>
            <ActionError result=create.value().into()/>
        </section>
        <ActionError result=rotate.value().into()/>
        <ActionError result=update.value().into()/>
        <ActionError result=delete.value().into()/>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match apps.await {
                    Ok(list) if list.is_empty() => view! { <p class="empty">"No applications yet."</p> }.into_any(),
                    Ok(list) => list.into_iter().map(|a| view! { <AppCard app=a/> }).collect_view().into_any(),
                    Err(e) => view! { <super::ErrorNotice error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn AppCard(app: ApplicationInfo) -> impl IntoView {
    let id = app.id.clone();
    let confirm = format!("Delete the application \"{}\"? Its secrets stop working at once and its sign-ins fail.", app.name);
    view! {
        <section class="card" data-client-id=app.client_id.clone() aria-label=format!("Application {}", app.name)>
            <h2>{app.name.clone()}</h2>
            <CopyValue value=app.client_id.clone() label=format!("client id of {}", app.name)/>
            <p class="muted">{format!("Second factor: {}. Sessions last {} minutes by default, at most {}.",
                if app.mfa_handling == "app" { "handled by the application" } else { "challenged by Latchkey" },
                app.session_duration_minutes, app.max_session_minutes)}</p>
            <p class="muted">"Secrets: " {app.secrets.iter().map(|s| format!("{}… (created {}{})", s.prefix, s.created_at,
                s.expires_at.as_ref().map(|e| format!(", stops working {e}")).unwrap_or_default())).collect::<Vec<_>>().join("; ")}</p>
            <form method="post" action=UpdateRedirectUris::url() class="stack">
                <input type="hidden" name="id" value=id.clone()/>
                <label for=format!("uris-{id}")>"Redirect URIs (one per line)"</label>
                <textarea id=format!("uris-{id}") name="redirect_uris" rows="3" required>{app.redirect_uris.join("\n")}</textarea>
                <Submit label="Save redirect URIs" busy="Saving…"/>
            </form>
            <div class="row">
                <form method="post" action=RotateApplicationSecret::url()>
                    <input type="hidden" name="id" value=id.clone()/>
                    <Submit label="Rotate secret" busy="Rotating…"/>
                </form>
                <form method="post" action=DeleteApplication::url() data-confirm=confirm>
                    <input type="hidden" name="id" value=id.clone()/>
                    <button type="submit" class="danger">"Delete"</button>
                </form>
            </div>
        </section>
    }
}
