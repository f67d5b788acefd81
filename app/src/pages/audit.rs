//! The org's audit log for owners and admins: filters (a plain GET form), newest first, one page at a time with
//! "Older events", failed sign-ins with their code and what fixes them, and CSV / JSON lines exports of the same
//! filter.
use super::orgs::OrgNav;
use super::{ErrorNotice, SignedIn};
use crate::api::get_audit_page;
use crate::model::AuditPage;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

const FILTERS: [&str; 5] = ["action", "actor", "outcome", "since", "until"];

#[component]
pub fn AuditLog() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let org_id = move || params.with(|p| p.get("org_id").unwrap_or_default());
    let q = move |k: &str| query.with(|q| q.get(k).unwrap_or_default());
    // The filters as a query string (for the next page and the exports).
    let filter_query = move || {
        let mut s = url_encode_pairs(FILTERS.iter().map(|k| (*k, q(k))).filter(|(_, v)| !v.is_empty()));
        if !s.is_empty() {
            s.insert(0, '&');
        }
        s
    };
    view! {
        <SignedIn title="Audit log" children=move |_me| {
            let page = Resource::new(
                move || (org_id(), q("action"), q("actor"), q("outcome"), q("since"), q("until"), q("cursor")),
                |(o, action, actor, outcome, since, until, cursor)| get_audit_page(o, action, actor, outcome, since, until, cursor),
            );
            let outcome = q("outcome");
            view! {
                <h1>"Audit log"</h1>
                <OrgNav org_id=org_id() current="Audit log"/>
                <form method="get" class="filters stack" aria-label="Filter the audit log">
                    <label for="f-action">"Action (e.g. sso.login, member.role_mapped, connection.update)"</label>
                    <input id="f-action" name="action" type="text" value=q("action")/>
                    <label for="f-actor">"Actor (email or user id)"</label>
                    <input id="f-actor" name="actor" type="text" value=q("actor")/>
                    <label for="f-outcome">"Outcome"</label>
                    <select id="f-outcome" name="outcome">
                        <option value="" selected=outcome.is_empty()>"Any"</option>
                        <option value="success" selected=outcome == "success">"Success"</option>
                        <option value="failure" selected=outcome == "failure">"Failure"</option>
                    </select>
                    <label for="f-since">"From (UTC)"</label>
                    <input id="f-since" name="since" type="datetime-local" value=q("since")/>
                    <label for="f-until">"Until (UTC)"</label>
                    <input id="f-until" name="until" type="datetime-local" value=q("until")/>
                    <button type="submit">"Filter"</button>
                </form>
                <p>"Export these events: "
                    <a href=move || format!("/api/user/organizations/{}/audit-events/export?format=csv{}", org_id(), filter_query()) download="">"CSV"</a>
                    " · "
                    <a href=move || format!("/api/user/organizations/{}/audit-events/export?format=jsonl{}", org_id(), filter_query()) download="">"JSON lines"</a>
                </p>
                <Suspense fallback=|| view! { <p class="loading">"Loading events…"</p> }>
                    {move || Suspend::new(async move {
                        match page.await {
                            Ok(p) => view! { <AuditTable org_id=org_id() page=p filters=filter_query()/> }.into_any(),
                            Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                        }
                    })}
                </Suspense>
            }
        }/>
    }
}

fn url_encode_pairs<'a>(pairs: impl Iterator<Item = (&'a str, String)>) -> String {
    let enc = |s: &str| s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect::<String>();
    pairs.map(|(k, v)| format!("{k}={}", enc(&v))).collect::<Vec<_>>().join("&")
}

#[component]
fn AuditTable(org_id: String, page: AuditPage, filters: String) -> impl IntoView {
    if page.events.is_empty() {
        return view! { <p>"No events match."</p> }.into_any();
    }
    let next = page.next_cursor.clone().map(|c| format!("/orgs/{org_id}/audit?cursor={c}{filters}"));
    view! {
        <table>
            <caption class="sr-only">"Audit events, newest first"</caption>
            <thead><tr>
                <th scope="col">"When"</th><th scope="col">"Action"</th><th scope="col">"Outcome"</th><th scope="col">"Actor"</th>
                <th scope="col">"Target"</th><th scope="col">"From"</th><th scope="col">"Details"</th>
            </tr></thead>
            <tbody>
                {page.events.into_iter().map(|e| view! {
                    <tr class=if e.outcome == "failure" { "failure" } else { "" }>
                        <td><time datetime=e.created_at.clone()>{e.created_at.clone()}</time></td>
                        <td><code>{e.action.clone()}</code></td>
                        <td>{e.outcome.clone()}</td>
                        <td>{e.actor.clone()}</td>
                        <td>{e.target.clone().unwrap_or_default()}</td>
                        <td>{e.ip.clone().unwrap_or_default()}<br/><small>{e.user_agent.clone().unwrap_or_default()}</small></td>
                        <td>
                            {e.error_code.clone().map(|c| view! { <strong><code>{c}</code></strong> " " })}
                            {e.error_text.clone().map(|t| view! { <p class="hint">{t}</p> })}
                            <small>{e.detail.clone().unwrap_or_default()}</small>
                        </td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        {next.map(|href| view! { <p><a href=href rel="next">"Older events"</a></p> })}
    }
    .into_any()
}
