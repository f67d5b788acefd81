//! `/admin`, for operators of this instance: registered applications (create, rotate the secret, edit redirect
//! URIs, delete). Secrets are shown once with a copy button.
use super::{ActionError, CopyValue, SignedIn};
use crate::api::{list_applications, CreateApplication, DeleteApplication, RotateApplicationSecret, UpdateRedirectUris};
use crate::model::ApplicationInfo;
use leptos::prelude::*;

#[component]
pub fn Admin() -> impl IntoView {
    view! {
        <SignedIn title="Applications" children=|me| {
            if me.operator {
                view! { <Applications/> }.into_any()
            } else {
                view! {
                    <h1>"Applications"</h1>
                    <div class="notice error" role="alert">"Only operators of this Latchkey instance manage applications. The operator role is granted on the server: "
                        <code>"latchkey operators add EMAIL"</code></div>
                }.into_any()
            }
        }/>
    }
}

#[component]
fn Applications() -> impl IntoView {
    let create = ServerAction::<CreateApplication>::new();
    let rotate = ServerAction::<RotateApplicationSecret>::new();
    let update = ServerAction::<UpdateRedirectUris>::new();
    let delete = ServerAction::<DeleteApplication>::new();
    let apps = Resource::new(
        move || (create.version().get(), rotate.version().get(), update.version().get(), delete.version().get()),
        |_| list_applications(),
    );
    view! {
        <h1>"Applications"</h1>
        <p class="muted">"An application is a product that deploys Latchkey: it sends people here to sign in and receives them back at one of its registered redirect URIs with a one-time token, which it redeems with its client id and secret."</p>
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
                <button type="submit" disabled=move || create.pending().get()>
                    {move || if create.pending().get() { "Registering…" } else { "Register application" }}
                </button>
            </ActionForm>
            <ActionError result=create.value().into()/>
            {move || create.value().get().and_then(Result::ok).map(|c| view! {
                <div class="notice success" role="status" id="new-secret">
                    <p><strong>{format!("\"{}\" registered.", c.application.name)}</strong>" Copy the client secret now: it is shown only once."</p>
                    <CopyValue value=c.application.client_id.clone() label="client id"/>
                    <CopyValue value=c.client_secret label="client secret"/>
                </div>
            })}
        </section>
        <ActionError result=rotate.value().into()/>
        {move || rotate.value().get().and_then(Result::ok).map(|c| view! {
            <div class="notice success" role="status" id="rotated-secret">
                <p><strong>{format!("New secret for \"{}\".", c.application.name)}</strong>
                    " Copy it now: it is shown only once. The previous secret keeps working for 24 hours, so you can roll the new one out first."</p>
                <CopyValue value=c.client_secret label="new client secret"/>
            </div>
        })}
        <ActionError result=update.value().into()/>
        <ActionError result=delete.value().into()/>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match apps.await {
                    Ok(list) if list.is_empty() => view! { <p class="empty">"No applications yet."</p> }.into_any(),
                    Ok(list) => list.into_iter().map(|a| view! { <AppCard app=a rotate update delete/> }).collect_view().into_any(),
                    Err(e) => view! { <super::ErrorNotice error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn AppCard(
    app: ApplicationInfo,
    rotate: ServerAction<RotateApplicationSecret>,
    update: ServerAction<UpdateRedirectUris>,
    delete: ServerAction<DeleteApplication>,
) -> impl IntoView {
    let id = app.id.clone();
    let on_delete = {
        let (id, name) = (app.id.clone(), app.name.clone());
        move |ev: leptos::ev::MouseEvent| {
            ev.prevent_default();
            let q = format!("Delete the application \"{name}\"? Its secrets stop working at once and its sign-ins fail.");
            if window().confirm_with_message(&q).unwrap_or(false) {
                delete.dispatch(DeleteApplication { id: id.clone() });
            }
        }
    };
    let on_rotate = {
        let id = app.id.clone();
        move |ev: leptos::ev::MouseEvent| {
            ev.prevent_default();
            rotate.dispatch(RotateApplicationSecret { id: id.clone() });
        }
    };
    view! {
        <section class="card" data-client-id=app.client_id.clone() aria-label=format!("Application {}", app.name)>
            <h2>{app.name.clone()}</h2>
            <CopyValue value=app.client_id.clone() label=format!("client id of {}", app.name)/>
            <p class="muted">{format!("Second factor: {}. Sessions last {} minutes by default, at most {}.",
                if app.mfa_handling == "app" { "handled by the application" } else { "challenged by Latchkey" },
                app.session_duration_minutes, app.max_session_minutes)}</p>
            <p class="muted">"Secrets: " {app.secrets.iter().map(|s| format!("{}… (created {}{})", s.prefix, s.created_at,
                s.expires_at.as_ref().map(|e| format!(", stops working {e}")).unwrap_or_default())).collect::<Vec<_>>().join("; ")}</p>
            <ActionForm action=update attr:class="stack">
                <input type="hidden" name="id" value=id.clone()/>
                <label for=format!("uris-{id}")>"Redirect URIs (one per line)"</label>
                <textarea id=format!("uris-{id}") name="redirect_uris" rows="3" required>{app.redirect_uris.join("\n")}</textarea>
                <button type="submit">"Save redirect URIs"</button>
            </ActionForm>
            <div class="row">
                <button type="button" on:click=on_rotate disabled=move || rotate.pending().get()>"Rotate secret"</button>
                <button type="button" class="danger" on:click=on_delete>"Delete"</button>
            </div>
        </section>
    }
}
