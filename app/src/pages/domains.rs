//! The Domains page: add a domain, the TXT record to copy, live DNS status (while a domain waits for its record,
//! the list is a live region that the browser re-reads every few seconds, so it turns verified by itself),
//! "Verify now", the auto-join setting with the rule explained, and delete with confirmation.
use super::orgs::OrgNav;
use super::{ActionError, CopyValue, ErrorNotice, SignedIn, Submit};
use crate::api::{get_domains_page, AddDomain, DeleteDomain, SetDomainAutoJoin, VerifyDomain};
use crate::model::{DomainInfo, DomainsPage};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_router::hooks::use_params_map;

/// How often the open page re-reads the status while something is in flux, in milliseconds.
const POLL_MS: &str = "2000";

#[component]
pub fn Domains() -> impl IntoView {
    let params = use_params_map();
    let org_id = move || params.with(|p| p.get("org_id").unwrap_or_default());
    view! {
        <SignedIn title="Domains" children=move |_me| {
            let add = ServerAction::<AddDomain>::new();
            let verify = ServerAction::<VerifyDomain>::new();
            let delete = ServerAction::<DeleteDomain>::new();
            let auto_join = ServerAction::<SetDomainAutoJoin>::new();
            let page = Resource::new(org_id, get_domains_page);
            view! {
                <h1>"Domains"</h1>
                <OrgNav org_id=org_id() current="Domains"/>
                <p>"Prove that your organization owns an email domain by publishing a DNS TXT record. Once verified, people who
                    type an address at that domain on the sign-in page go straight to your identity provider."</p>
                <section class="card" aria-labelledby="add-domain">
                    <h2 id="add-domain">"Add a domain"</h2>
                    <ActionForm action=add attr:class="inline-form">
                        <input type="hidden" name="org_id" value=org_id()/>
                        <label for="domain">"Domain"</label>
                        <input id="domain" name="domain" type="text" required placeholder="example.com" autocomplete="off"
                            aria-describedby="domain-help"/>
                        <Submit label="Add domain" busy="Adding…"/>
                    </ActionForm>
                    <small id="domain-help">"The part after the @ in your members' email addresses. Subdomains are separate domains."</small>
                    <ActionError result=add.value().into()/>
                </section>
                <ActionError result=verify.value().into()/>
                <ActionError result=delete.value().into()/>
                <ActionError result=auto_join.value().into()/>
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match page.await {
                            Ok(p) => view! { <DomainList org_id=org_id() page=p/> }.into_any(),
                            Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                        }
                    })}
                </Suspense>
                <AutoJoinHelp/>
            }
        }/>
    }
}

fn status_text(d: &DomainInfo) -> (&'static str, String) {
    match (d.status.as_str(), d.lapsed_at.as_ref()) {
        ("verified", Some(t)) => ("lapsed", format!("Verified, but the record disappeared at {t}. Put it back: SSO routing stops after the grace period.")),
        ("verified", None) => ("verified", "Verified".into()),
        ("failed", _) => ("failed", "Not verified: Latchkey stopped checking. Publish the record, then use Verify now.".into()),
        _ => ("pending", "Waiting for the TXT record. This page updates by itself once it is found.".into()),
    }
}

#[component]
fn DomainList(org_id: String, page: DomainsPage) -> impl IntoView {
    if page.domains.is_empty() {
        return view! { <p class="empty">"No domains yet. Add the domain of your work email addresses above."</p> }.into_any();
    }
    let notice = (!page.has_active_connection).then(|| view! {
        <div class="notice warning" role="note">
            "This organization has no working identity provider yet, so verified domains do not route anyone to SSO. "
            <a href=format!("/orgs/{org_id}/sso")>"Connect and test one"</a>"."
        </div>
    });
    let grace = page.lapse_grace_hours;
    // Live while a domain waits for its record or has lost it: the status changes without anyone acting.
    let live = page.domains.iter().any(|d| d.status == "pending" || d.lapsed_at.is_some()).then_some(POLL_MS);
    view! {
        <div id="domain-list" data-live-ms=live>
        {notice}
        <ul class="domains">
            {page.domains.into_iter().map(|d| view! { <DomainCard org_id=org_id.clone() d=d/> }).collect_view()}
        </ul>
        </div>
        <p class="muted">{format!(
            "Latchkey re-checks pending domains with increasing intervals for 7 days, and verified ones every day. \
             If a verified domain's record disappears, SSO routing continues for {grace} hours, then stops."
        )}</p>
    }
    .into_any()
}

#[component]
fn DomainCard(org_id: String, d: DomainInfo) -> impl IntoView {
    let (class, text) = status_text(&d);
    let id = d.id.clone();
    let confirm = format!("Remove {}? Sign-ins at this domain stop going to your identity provider, and auto-join stops.", d.domain);
    let current = d.auto_join.clone();
    let hidden = move || view! {
        <input type="hidden" name="org_id" value=org_id.clone()/>
        <input type="hidden" name="id" value=id.clone()/>
    };
    view! {
        <li class="card domain" data-domain=d.domain.clone() data-status=d.status.clone()>
            <h2>{d.domain.clone()}
                " " <span class=format!("badge {class}") role="status" aria-live="polite">{class}</span>
                {d.routes_to_sso.then(|| view! { " " <span class="badge sso">"routes to SSO"</span> })}
            </h2>
            <p>{text}</p>
            <dl class="facts">
                <dt>"TXT record name"</dt>
                <dd><CopyValue value=d.txt_record.name.clone() label=format!("TXT record name for {}", d.domain)/></dd>
                <dt>"TXT record value"</dt>
                <dd><CopyValue value=d.txt_record.value.clone() label=format!("TXT record value for {}", d.domain)/></dd>
                <dt>"Last DNS answer"</dt>
                <dd class="last-result">
                    {match (&d.last_checked_at, &d.last_message) {
                        (Some(t), Some(m)) => format!("{m} (checked {t})"),
                        _ => "Not checked yet.".to_string(),
                    }}
                </dd>
                {d.next_check_at.clone().map(|t| view! { <dt>"Next automatic check"</dt><dd>{t}</dd> })}
            </dl>
            <div class="actions">
                <form method="post" action=VerifyDomain::url()>
                    {hidden()}
                    <Submit label="Verify now" busy="Checking DNS…" class="secondary"/>
                </form>
                <form method="post" action=SetDomainAutoJoin::url() class="inline">
                    {hidden()}
                    <label for=format!("aj-{}", d.id)>"Auto-join"</label>
                    <select id=format!("aj-{}", d.id) name="auto_join" data-autosubmit="">
                        {[("off", "Off"), ("auto", "Automatic"), ("approval", "Needs approval")].into_iter().map(|(v, l)| {
                            view! { <option value=v selected=current == v>{l}</option> }
                        }).collect_view()}
                    </select>
                    // Without the page's script the choice needs a button; with it, choosing submits.
                    <button type="submit" class="secondary" data-nojs="">"Apply"</button>
                </form>
                <form method="post" action=DeleteDomain::url() data-confirm=confirm>
                    {hidden()}
                    <button type="submit" class="danger">"Remove"</button>
                </form>
            </div>
        </li>
    }
}

#[component]
fn AutoJoinHelp() -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="auto-join-help">
            <h2 id="auto-join-help">"What auto-join does"</h2>
            <p>"It decides what happens when someone with an address at a verified domain signs in and is not a member yet."</p>
            <dl class="facts">
                <dt>"Off"</dt>
                <dd>"Nothing from the domain. People who sign in through your identity provider follow its just-in-time setting."</dd>
                <dt>"Automatic"</dt>
                <dd>"People who sign in through your identity provider become members with the default role. People who sign
                    in with a password get a join request instead: Latchkey cannot prove they own the address."</dd>
                <dt>"Needs approval"</dt>
                <dd>"Everyone gets a join request that an owner or admin approves on the Members page, including people who sign
                    in through your identity provider (this wins over just-in-time provisioning)."</dd>
            </dl>
        </section>
    }
}
