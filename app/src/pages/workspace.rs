//! "Use an instance provider" on the org's Identity providers page (workspace SSO, reference 004): pick one of
//! the instance's sign-in providers for the org, the domains it signs in for, whether new people there become
//! members, and whether the org requires it (the same switch as the Security page's "SSO only").
use super::{ErrorNotice, Submit};
use crate::api::{get_workspace_sso, sign_in_providers, DeleteWorkspaceSso, SaveWorkspaceSso};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;

#[component]
pub fn WorkspaceSso(org_id: String) -> impl IntoView {
    // Plain forms that post and come back (no script needed), like the connection cards.
    let current = Resource::new({
        let o = org_id.clone();
        move || o.clone()
    }, get_workspace_sso);
    let providers = Resource::new(|| (), |_| sign_in_providers());
    view! {
        <section class="card" aria-labelledby="workspace-sso">
            <h2 id="workspace-sso">"Use an instance provider"</h2>
            <p class="hint">"Sign in with a provider the operators of this Latchkey set up for everyone (such as Google). "
                "It signs in only addresses at this organization's verified domains, and counts as this organization's single sign-on."</p>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || {
                    let org_id = org_id.clone();
                    Suspend::new(async move {
                        let (current, providers) = (current.await, providers.await);
                        let (current, providers) = match (current, providers) {
                            (Ok(c), Ok(p)) => (c, p),
                            (Err(e), _) | (_, Err(e)) => return view! { <ErrorNotice error=e/> }.into_any(),
                        };
                        if providers.is_empty() {
                            return view! { <p class="empty">"This instance has no sign-in providers yet: its operators add them on /admin/providers."</p> }.into_any();
                        }
                        let chosen = current.as_ref().map(|c| c.provider_id.clone()).unwrap_or_default();
                        let status = current.as_ref().map(|c| {
                            let text = format!("In use: {} ({}). {}", c.provider_name, c.status, c.last_test_message.clone().unwrap_or_default());
                            view! { <p class=if c.status == "active" { "notice success" } else { "notice error" } role="status">{text}</p> }
                        });
                        let domains = current.as_ref().map(|c| c.allowed_domains.join(", ")).unwrap_or_default();
                        let auto = current.as_ref().is_some_and(|c| c.auto_provision);
                        let enforce = current.as_ref().is_some_and(|c| c.enforce_sso);
                        let remove = current.is_some().then(|| view! {
                            <form method="post" action=DeleteWorkspaceSso::url() data-confirm="Stop using this provider? Sessions signed in through it end.">
                                <input type="hidden" name="org_id" value=org_id.clone()/>
                                <button type="submit" class="danger">"Stop using it"</button>
                            </form>
                        });
                        view! {
                            {status}
                            <form method="post" action=SaveWorkspaceSso::url() class="stack">
                                <input type="hidden" name="org_id" value=org_id.clone()/>
                                <label for="ws-provider">"Provider"</label>
                                <select id="ws-provider" name="provider_id" required>
                                    {providers.into_iter().map(|p| {
                                        let selected = p.id == chosen;
                                        view! { <option value=p.id selected=selected>{p.name}</option> }
                                    }).collect_view()}
                                </select>
                                <label for="ws-domains">"Domains it signs in for (comma-separated; empty: all verified domains)"</label>
                                <input id="ws-domains" name="allowed_domains" type="text" value=domains placeholder="example.com"/>
                                <label><input type="checkbox" name="auto_provision" value="on" checked=auto/>" Add new people at these domains as members (only domains verified by DNS)"</label>
                                <label><input type="checkbox" name="enforce_sso" value="on" checked=enforce/>" Require single sign-on for this organization (an owner must have signed in through it first)"</label>
                                <Submit label="Save" busy="Checking the provider…"/>
                            </form>
                            {remove}
                        }.into_any()
                    })
                }}
            </Suspense>
        </section>
    }
}
