//! Organization pages: the list with the create form, an org's overview, and its members.
use super::{ActionError, CopyValue, ErrorNotice, SignedIn, Submit};
use crate::api::{get_org_detail, list_join_requests, list_members, list_orgs, my_join_requests, CreateOrg, DecideJoinRequest};
use crate::model::JoinRequestInfo;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_router::hooks::use_params_map;

#[component]
pub fn OrgList() -> impl IntoView {
    view! {
        <SignedIn title="Organizations" children=|_me| {
            let orgs = Resource::new(|| (), |_| list_orgs());
            let requests = Resource::new(|| (), |_| my_join_requests());
            let create = ServerAction::<CreateOrg>::new();
            view! {
                <h1>"Your organizations"</h1>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let open: Vec<JoinRequestInfo> = requests.await.unwrap_or_default().into_iter().filter(|r| r.status != "approved").collect();
                        (!open.is_empty()).then(|| view! {
                            <section class="card" aria-labelledby="my-requests">
                                <h2 id="my-requests">"Your join requests"</h2>
                                <ul>
                                    {open.into_iter().map(|r| view! {
                                        <li class=format!("join-request {}", r.status)>
                                            <strong>{r.organization_name.clone()}</strong>": "
                                            {if r.status == "pending" {
                                                "waiting for an owner or admin to approve your request.".to_string()
                                            } else {
                                                "your request was declined. Ask the organization's admin if this is a mistake.".to_string()
                                            }}
                                        </li>
                                    }).collect_view()}
                                </ul>
                            </section>
                        })
                    })}
                </Suspense>
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match orgs.await {
                            Ok(list) if list.is_empty() => view! {
                                <p class="empty">"You are not a member of any organization yet. Create one below."</p>
                            }.into_any(),
                            Ok(list) => view! {
                                <ul class="cards">
                                    {list.into_iter().map(|o| view! {
                                        <li><a href=format!("/orgs/{}", o.id)>
                                            <strong>{o.name}</strong>
                                            <span class="muted">{format!(" /{} · {}", o.slug, o.role)}</span>
                                        </a></li>
                                    }).collect_view()}
                                </ul>
                            }.into_any(),
                            Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                        }
                    })}
                </Suspense>
                <section id="create" class="card">
                    <h2>"Create an organization"</h2>
                    <ActionForm action=create attr:class="stack">
                        <label for="org-name">"Name"</label>
                        <input id="org-name" name="name" type="text" required maxlength="100" placeholder="Acme Corp"/>
                        <label for="org-slug">"Slug (used in the SSO login URL)"</label>
                        <input id="org-slug" name="slug" type="text" maxlength="48" pattern="[a-z0-9][a-z0-9-]{1,46}[a-z0-9]"
                            placeholder="acme-corp" aria-describedby="slug-help"/>
                        <small id="slug-help">"Lowercase letters, digits and hyphens. Leave empty to derive it from the name."</small>
                        <ActionError result=create.value().into()/>
                        <Submit label="Create organization" busy="Creating…"/>
                    </ActionForm>
                </section>
            }
        }/>
    }
}

#[component]
pub fn OrgNav(org_id: String, current: &'static str) -> impl IntoView {
    let link = |href: String, label: &'static str| {
        let cur = if label == current { Some("page") } else { None };
        view! { <a href=href aria-current=cur>{label}</a> }
    };
    view! {
        <nav class="tabs" aria-label="Organization">
            {link(format!("/orgs/{org_id}"), "Overview")}
            {link(format!("/orgs/{org_id}/members"), "Members")}
            {link(format!("/orgs/{org_id}/domains"), "Domains")}
            {link(format!("/orgs/{org_id}/sso"), "Identity provider")}
            {link(format!("/orgs/{org_id}/security"), "Security")}
            {link(format!("/orgs/{org_id}/sessions"), "Sessions")}
            {link(format!("/orgs/{org_id}/webhooks"), "Webhooks")}
            {link(format!("/orgs/{org_id}/audit"), "Audit log")}
        </nav>
    }
}

#[component]
pub fn OrgOverview() -> impl IntoView {
    let params = use_params_map();
    let org_id = move || params.with(|p| p.get("org_id").unwrap_or_default());
    view! {
        <SignedIn title="Organization" children=move |_me| {
            let detail = Resource::new(org_id, get_org_detail);
            view! {
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match detail.await {
                            Ok(o) => view! {
                                <h1>{o.name.clone()}</h1>
                                <OrgNav org_id=o.id.clone() current="Overview"/>
                                <dl class="facts">
                                    <dt>"Slug"</dt><dd><code>{o.slug.clone()}</code></dd>
                                    <dt>"Organization id"</dt><dd><CopyValue value=o.id.clone() label="organization id"/></dd>
                                    <dt>"Your role"</dt><dd>{o.role.clone()}</dd>
                                    <dt>"Active members"</dt><dd>{o.member_count}</dd>
                                    <dt>"Created"</dt><dd><time datetime=o.created_at.clone()>{o.created_at.clone()}</time></dd>
                                    <dt>"SSO login URL"</dt>
                                    <dd>
                                        <CopyValue value=o.sso_login_url.clone() label="SSO login URL"/>
                                        <small>"Share this link with members once an identity provider is connected."</small>
                                    </dd>
                                </dl>
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
pub fn OrgMembers() -> impl IntoView {
    let params = use_params_map();
    let org_id = move || params.with(|p| p.get("org_id").unwrap_or_default());
    view! {
        <SignedIn title="Members" children=move |_me| {
            let decide = ServerAction::<DecideJoinRequest>::new();
            let members = Resource::new(org_id, list_members);
            let requests = Resource::new(org_id, list_join_requests);
            view! {
                <h1>"Members"</h1>
                <OrgNav org_id=org_id() current="Members"/>
                <ActionError result=decide.value().into()/>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        // Members without the admin role cannot see requests: nothing is shown to them.
                        let pending: Vec<JoinRequestInfo> = requests.await.unwrap_or_default().into_iter().filter(|r| r.status == "pending").collect();
                        (!pending.is_empty()).then(|| view! {
                            <section class="card" aria-labelledby="join-requests">
                                <h2 id="join-requests">{format!("Join requests ({})", pending.len())}</h2>
                                <p class="muted">"People who signed in with an address at one of your verified domains. "
                                    "\"Password\" means Latchkey could not prove they own the address."</p>
                                <table>
                                    <thead><tr><th scope="col">"Name"</th><th scope="col">"Email"</th><th scope="col">"Signed in with"</th><th scope="col">"Requested"</th><th scope="col">"Decision"</th></tr></thead>
                                    <tbody>
                                        {pending.into_iter().map(|r| {
                                            let decision = |value: &'static str, label: &'static str, class: &'static str| view! {
                                                <form method="post" action=DecideJoinRequest::url() class="inline">
                                                    <input type="hidden" name="org_id" value=r.organization_id.clone()/>
                                                    <input type="hidden" name="id" value=r.id.clone()/>
                                                    <input type="hidden" name="decision" value=value/>
                                                    <button type="submit" class=class>{label}</button>
                                                </form>
                                            };
                                            view! {
                                                <tr data-email=r.email.clone()>
                                                    <td>{r.name.clone()}</td>
                                                    <td>{r.email.clone()}</td>
                                                    <td>{if r.via == "sso" { "Identity provider" } else { "Password" }}</td>
                                                    <td><time datetime=r.created_at.clone()>{r.created_at.clone()}</time></td>
                                                    <td class="actions">
                                                        {decision("approve", "Approve", "")}
                                                        {decision("deny", "Deny", "secondary")}
                                                    </td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </section>
                        })
                    })}
                </Suspense>
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match members.await {
                            Ok(list) => view! {
                                <table>
                                    <caption class="sr-only">"Members of this organization"</caption>
                                    <thead><tr><th scope="col">"Name"</th><th scope="col">"Email"</th><th scope="col">"Role"</th><th scope="col">"Status"</th><th scope="col">"Joined"</th></tr></thead>
                                    <tbody>
                                        {list.into_iter().map(|m| view! {
                                            <tr>
                                                <td>{m.name}</td>
                                                <td>{m.email}</td>
                                                <td><span class=format!("badge {}", m.role)>{m.role.clone()}</span></td>
                                                <td>{m.status}</td>
                                                <td><time datetime=m.joined_at.clone()>{m.joined_at.clone()}</time></td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any(),
                            Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                        }
                    })}
                </Suspense>
            }
        }/>
    }
}
