//! The Domains page: add a domain, the TXT record to copy, live DNS status (the page re-reads every few
//! seconds while a domain waits for its record, so it turns verified by itself), "Verify now", the
//! auto-join setting with the rule explained, and delete with confirmation.
use super::orgs::OrgNav;
use super::{ActionError, CopyValue, ErrorNotice, SignedIn};
use crate::api::{get_domains_page, AddDomain, DeleteDomain, SetDomainAutoJoin, VerifyDomain};
use crate::model::{DomainInfo, DomainsPage};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use std::time::Duration;

/// How often the open page re-reads the status while something is in flux.
const POLL: Duration = Duration::from_secs(2);

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
            let tick = RwSignal::new(0u64);
            let page = Resource::new(
                move || (org_id(), tick.get(), add.version().get(), verify.version().get(), delete.version().get(), auto_join.version().get()),
                |(id, ..)| get_domains_page(id),
            );
            // Live status: in the browser only, re-read while a domain is pending or its record has lapsed.
            Effect::new(move |_| {
                if let Ok(h) = set_interval_with_handle(
                    move || {
                        let waiting = page.get_untracked().and_then(|r| r.ok()).is_some_and(|p| {
                            p.domains.iter().any(|d| d.status == "pending" || d.lapsed_at.is_some())
                        });
                        if waiting {
                            tick.update(|t| *t += 1);
                        }
                    },
                    POLL,
                ) {
                    on_cleanup(move || h.clear());
                }
            });
            let org_for_add = org_id();
            // The field empties once the domain is added, ready for the next one.
            let new_domain = RwSignal::new(String::new());
            Effect::new(move |_| {
                if matches!(add.value().get(), Some(Ok(_))) {
                    new_domain.set(String::new());
                }
            });
            view! {
                <h1>"Domains"</h1>
                <OrgNav org_id=org_id() current="Domains"/>
                <p>"Prove that your organization owns an email domain by publishing a DNS TXT record. Once verified, people who
                    type an address at that domain on the sign-in page go straight to your identity provider."</p>
                <section class="card" aria-labelledby="add-domain">
                    <h2 id="add-domain">"Add a domain"</h2>
                    <ActionForm action=add attr:class="inline-form">
                        <input type="hidden" name="org_id" value=org_for_add/>
                        <label for="domain">"Domain"</label>
                        <input id="domain" name="domain" type="text" required placeholder="example.com" autocomplete="off"
                            aria-describedby="domain-help" prop:value=move || new_domain.get() on:input=move |ev| new_domain.set(event_target_value(&ev))/>
                        <button type="submit" disabled=move || add.pending().get()>
                            {move || if add.pending().get() { "Adding…" } else { "Add domain" }}
                        </button>
                    </ActionForm>
                    <small id="domain-help">"The part after the @ in your members' email addresses. Subdomains are separate domains."</small>
                    <ActionError result=add.value().into()/>
                </section>
                <ActionError result=verify.value().into()/>
                <ActionError result=delete.value().into()/>
                <ActionError result=auto_join.value().into()/>
                <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match page.await {
                            Ok(p) => view! { <DomainList org_id=org_id() page=p verify=verify delete=delete auto_join=auto_join/> }.into_any(),
                            Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                        }
                    })}
                </Transition>
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
fn DomainList(
    org_id: String,
    page: DomainsPage,
    verify: ServerAction<VerifyDomain>,
    delete: ServerAction<DeleteDomain>,
    auto_join: ServerAction<SetDomainAutoJoin>,
) -> impl IntoView {
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
    view! {
        {notice}
        <ul class="domains">
            {page.domains.into_iter().map(|d| {
                let (class, text) = status_text(&d);
                let id = d.id.clone();
                let (org_v, id_v) = (org_id.clone(), id.clone());
                let (org_d, id_d, name_d) = (org_id.clone(), id.clone(), d.domain.clone());
                let (org_a, id_a) = (org_id.clone(), id.clone());
                let on_delete = move |ev: leptos::ev::MouseEvent| {
                    ev.prevent_default();
                    let q = format!("Remove {name_d}? Sign-ins at this domain stop going to your identity provider, and auto-join stops.");
                    if window().confirm_with_message(&q).unwrap_or(false) {
                        delete.dispatch(DeleteDomain { org_id: org_d.clone(), id: id_d.clone() });
                    }
                };
                let current = d.auto_join.clone();
                let pending_verify = move || verify.pending().get();
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
                            <button type="button" class="secondary" disabled=pending_verify
                                on:click=move |_| { verify.dispatch(VerifyDomain { org_id: org_v.clone(), id: id_v.clone() }); }>
                                {move || if pending_verify() { "Checking DNS…" } else { "Verify now" }}
                            </button>
                            <label for=format!("aj-{id}")>"Auto-join"</label>
                            <select id=format!("aj-{id}") name="auto_join"
                                on:change=move |ev| { auto_join.dispatch(SetDomainAutoJoin { org_id: org_a.clone(), id: id_a.clone(), auto_join: event_target_value(&ev) }); }>
                                {[("off", "Off"), ("auto", "Automatic"), ("approval", "Needs approval")].into_iter().map(|(v, l)| {
                                    view! { <option value=v selected=current == v>{l}</option> }
                                }).collect_view()}
                            </select>
                            <button type="button" class="danger" on:click=on_delete>"Remove"</button>
                        </div>
                    </li>
                }
            }).collect_view()}
        </ul>
        <p class="muted">{format!(
            "Latchkey re-checks pending domains with increasing intervals for 7 days, and verified ones every day. \
             If a verified domain's record disappears, SSO routing continues for {grace} hours, then stops."
        )}</p>
    }
    .into_any()
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
