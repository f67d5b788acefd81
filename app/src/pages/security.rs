//! The Security page (policy toggles, what each setting means, the lockout guard's messages), the Sessions
//! page (members' live sessions, revoke), and `/mfa` (the second-factor challenge and enrolment).
use super::orgs::OrgNav;
use super::{ActionError, CopyValue, ErrorNotice, SignedIn, Submit};
use crate::api::{
    begin_mfa_enrollment, current_user, get_mfa_status, get_security_page, list_org_sessions, take_notice, ConfirmMfaEnrollment, DisableMfa,
    MfaChallenge, RevokeOrgSession, SaveSecurityPolicy,
};
use crate::model::{Notice, OrgSessionInfo, SecurityPage};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::components::Redirect;
use leptos_router::hooks::{use_params_map, use_query_map};

#[component]
pub fn Security() -> impl IntoView {
    let params = use_params_map();
    let org_id = move || params.with(|p| p.get("org_id").unwrap_or_default());
    view! {
        <SignedIn title="Security" children=move |_me| {
            let save = ServerAction::<SaveSecurityPolicy>::new();
            let page = Resource::new(org_id, get_security_page);
            let saved = Resource::new(|| (), |_| take_notice("policy".into()));
            view! {
                <h1>"Security policy"</h1>
                <OrgNav org_id=org_id() current="Security"/>
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        let saved = matches!(saved.await, Ok(Some(Notice::PolicySaved(org))) if org == org_id());
                        match page.await {
                            Ok(p) => view! { <PolicyForm org_id=org_id() page=p save=save saved=saved/> }.into_any(),
                            Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                        }
                    })}
                </Suspense>
                <MeaningTable/>
            }
        }/>
    }
}

#[component]
fn PolicyForm(org_id: String, page: SecurityPage, save: ServerAction<SaveSecurityPolicy>, saved: bool) -> impl IntoView {
    let p = page.policy.clone();
    let roles = p.exempt_roles.clone();
    let exempt = move |r: &str| roles.iter().any(|x| x == r);
    let guard = if page.has_tested_connection {
        if page.owner_signed_in_with_sso || exempt("owner") {
            None
        } else {
            Some("To require SSO, an owner must be able to get in: keep the owner role exempt, or sign in once through the identity provider first.")
        }
    } else {
        Some("SSO cannot be required until the organization's identity provider passes its test, or everyone would be locked out.")
    };
    let org_for_link = org_id.clone();
    view! {
        <section class="card" aria-labelledby="policy">
            <h2 id="policy">"How members must sign in"</h2>
            {guard.map(|g| view! {
                <div class="notice warning" role="note">{g}" "<a href=format!("/orgs/{org_for_link}/sso")>"Open the identity provider settings and run the test"</a>"."</div>
            })}
            <ActionForm action=save attr:class="stack">
                <input type="hidden" name="org_id" value=org_id/>
                <fieldset>
                    <legend>"Required authentication"</legend>
                    {[("any", "Any method", "Password or SSO; a second factor only if the member set one up."),
                      ("mfa", "Multi-factor", "Every browser session must pass a TOTP code (members without one are asked to set it up)."),
                      ("sso", "SSO only", "Members must come through your identity provider; password sign-in is refused except for exempt roles.")]
                        .into_iter().map(|(v, l, help)| view! {
                            <label class="choice">
                                <input type="radio" name="auth_required" value=v checked=p.auth_required == v/>
                                <strong>{l}</strong>" — "<span class="muted">{help}</span>
                            </label>
                        }).collect_view()}
                </fieldset>
                <label class="choice">
                    <input type="checkbox" name="require_mfa" value="on" checked=p.require_mfa/>
                    <strong>"Also require a second factor"</strong>" — "
                    <span class="muted">"after SSO too: the session stays on hold until a TOTP code is entered."</span>
                </label>
                <fieldset>
                    <legend>"Roles exempt from \"SSO only\" (break-glass)"</legend>
                    {["owner", "admin", "member"].into_iter().map(|r| view! {
                        <label class="choice">
                            <input type="checkbox" name=format!("exempt_{r}") value="on" checked=exempt(r)/>{r}
                        </label>
                    }).collect_view()}
                </fieldset>
                <p class="muted">"API keys are never asked for a second factor. Under \"SSO only\", a key works for a non-exempt member only if it was created in an SSO session of this organization. Lowering the policy is always possible here, whatever your own session."</p>
                <ActionError result=save.value().into()/>
                {saved.then(|| view! { <div class="notice success" role="status">"Saved."</div> })}
                <Submit label="Save policy" busy="Saving…"/>
            </ActionForm>
        </section>
    }
}

#[component]
fn MeaningTable() -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="meaning">
            <h2 id="meaning">"What each setting means in practice"</h2>
            <table>
                <thead><tr><th scope="col">"Setting"</th><th scope="col">"Password sign-in"</th><th scope="col">"SSO sign-in"</th><th scope="col">"Second factor"</th><th scope="col">"API keys"</th></tr></thead>
                <tbody>
                    <tr><th scope="row">"Any method"</th><td>"allowed"</td><td>"allowed"</td><td>"if the member enrolled"</td><td>"work"</td></tr>
                    <tr><th scope="row">"Multi-factor"</th><td>"allowed, then TOTP"</td><td>"allowed, then TOTP"</td><td>"required"</td><td>"work (no MFA)"</td></tr>
                    <tr><th scope="row">"SSO only"</th><td>"refused unless the role is exempt"</td><td>"required"</td><td>"if also required"</td><td>"only keys created under SSO, or of exempt roles"</td></tr>
                </tbody>
            </table>
        </section>
    }
}

#[component]
pub fn Sessions() -> impl IntoView {
    let params = use_params_map();
    let org_id = move || params.with(|p| p.get("org_id").unwrap_or_default());
    view! {
        <SignedIn title="Sessions" children=move |_me| {
            let revoke = ServerAction::<RevokeOrgSession>::new();
            let sessions = Resource::new(org_id, list_org_sessions);
            view! {
                <h1>"Sessions"</h1>
                <OrgNav org_id=org_id() current="Sessions"/>
                <p>"Browsers signed in as members of this organization. Revoking one signs that browser out at its next request."</p>
                <ActionError result=revoke.value().into()/>
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match sessions.await {
                            Ok(list) => view! { <SessionTable org_id=org_id() list=list/> }.into_any(),
                            Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                        }
                    })}
                </Suspense>
            }
        }/>
    }
}

#[component]
fn SessionTable(org_id: String, list: Vec<OrgSessionInfo>) -> impl IntoView {
    view! {
        <table>
            <caption class="sr-only">"Active sessions"</caption>
            <thead><tr>
                <th scope="col">"Member"</th><th scope="col">"Method"</th><th scope="col">"MFA"</th><th scope="col">"Created"</th>
                <th scope="col">"Last seen"</th><th scope="col">"Expires"</th><th scope="col">"IP"</th><th scope="col">"Browser"</th><th scope="col"><span class="sr-only">"Actions"</span></th>
            </tr></thead>
            <tbody>
                {list.into_iter().map(|s| {
                    let revoke = view! {
                        <form method="post" action=RevokeOrgSession::url() data-confirm=format!("Sign {} out of this browser now?", s.email)>
                            <input type="hidden" name="org_id" value=org_id.clone()/>
                            <input type="hidden" name="id" value=s.id.clone()/>
                            <button type="submit" class="danger" aria-label=format!("Revoke the session of {}", s.email)>"Revoke"</button>
                        </form>
                    };
                    view! {
                        <tr data-email=s.email.clone()>
                            <td>{s.name.clone()}<br/><small>{s.email.clone()}</small></td>
                            <td>{if s.method == "sso" { "SSO" } else { "password" }}
                                {s.application.clone().map(|a| format!(" · for {a}"))}</td>
                            <td>{if s.mfa_done { "yes" } else { "no" }}</td>
                            <td><time datetime=s.created_at.clone()>{s.created_at.clone()}</time></td>
                            <td><time datetime=s.last_seen_at.clone()>{s.last_seen_at.clone()}</time></td>
                            <td><time datetime=s.expires_at.clone()>{s.expires_at.clone()}</time></td>
                            <td>{s.ip.clone().unwrap_or_default()}</td>
                            <td class="ua">{s.user_agent.clone().unwrap_or_default()}</td>
                            <td>{if s.current {
                                view! { <span class="muted">"this browser"</span> }.into_any()
                            } else {
                                revoke.into_any()
                            }}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// Only same-site paths are followed after MFA.
fn safe_next(raw: Option<String>) -> String {
    crate::model::safe_return_to(raw.as_deref()).unwrap_or_else(|| "/orgs".into())
}

/// The second factor: the challenge for a session that owes it, enrolment for a user without one, and
/// disabling for a user who has one.
#[component]
pub fn Mfa() -> impl IntoView {
    let query = use_query_map();
    let next = move || safe_next(query.with(|q| q.get("next")));
    let user = Resource::new(|| (), |_| current_user());
    let challenge = ServerAction::<MfaChallenge>::new();
    let confirm = ServerAction::<ConfirmMfaEnrollment>::new();
    let disable = ServerAction::<DisableMfa>::new();
    let status = Resource::new(|| (), |_| get_mfa_status());
    view! {
        <Title text="Two-factor authentication · Latchkey"/>
        <main class="narrow card">
            <h1>"Two-factor authentication"</h1>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let me = user.await;
                    let st = status.await;
                    // Taken only where they are shown: right after enrolment, the factor on and this session past it.
                    let shows_codes = matches!((&me, &st), (Ok(Some(m)), Ok(s)) if !m.mfa_pending && s.enabled);
                    let codes = match shows_codes {
                        true => match take_notice("recovery_codes".into()).await { Ok(Some(Notice::RecoveryCodes(c))) => Some(c), _ => None },
                        false => None,
                    };
                    match (me, st) {
                        (Ok(None), _) => view! { <Redirect path="/signin"/> }.into_any(),
                        (Ok(Some(me)), Ok(st)) if me.mfa_pending => view! {
                            <p>"Signed in as "<strong>{me.email}</strong>". Enter the 6-digit code from your authenticator app, or one of your recovery codes."</p>
                            <ActionForm action=challenge attr:class="stack">
                                <input type="hidden" name="next" value=next()/>
                                <label for="code">"Code"</label>
                                <input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required autofocus maxlength="20"/>
                                <ActionError result=challenge.value().into()/>
                                <Submit label="Verify" busy="Checking…"/>
                            </ActionForm>
                            <p class="muted">{format!("{} recovery codes left.", st.recovery_codes_left)}</p>
                        }.into_any(),
                        (Ok(Some(_)), Ok(st)) if st.enabled && codes.is_some() => view! {
                            <RecoveryCodes codes=codes.unwrap_or_default() next=next()/>
                        }.into_any(),
                        (Ok(Some(_)), Ok(st)) if st.enabled => view! {
                            <div class="notice success" role="status">"Two-factor authentication is on for your account."</div>
                            <p><a href=next() class="button">"Continue"</a></p>
                            <details>
                                <summary>"Turn it off"</summary>
                                <ActionForm action=disable attr:class="stack">
                                    <label for="disable-code">"Current code or a recovery code"</label>
                                    <input id="disable-code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required maxlength="20"/>
                                    <ActionError result=disable.value().into()/>
                                    <button type="submit" class="danger">"Turn off two-factor authentication"</button>
                                </ActionForm>
                            </details>
                        }.into_any(),
                        (Ok(Some(_)), Ok(_)) => view! { <Enrol confirm=confirm/> }.into_any(),
                        (Err(e), _) | (_, Err(e)) => view! { <ErrorNotice error=e/> }.into_any(),
                    }
                })}
            </Suspense>
        </main>
    }
}

/// Right after enrolment: the recovery codes, shown this once.
#[component]
fn RecoveryCodes(codes: Vec<String>, next: String) -> impl IntoView {
    view! {
        <div class="notice success" role="status">"Two-factor authentication is on."</div>
        <h2>"Your recovery codes"</h2>
        <p>"Each works once if you lose your device. Store them somewhere safe now: they are not shown again."</p>
        <CopyValue value=codes.join("\n") label="recovery codes"/>
        <ul class="codes" id="recovery-codes">{codes.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view()}</ul>
        <p><a href=next class="button">"Continue"</a></p>
    }
}

#[component]
fn Enrol(confirm: ServerAction<ConfirmMfaEnrollment>) -> impl IntoView {
    let enrollment = Resource::new(|| (), |_| begin_mfa_enrollment());
    view! {
        <p>"This organization or your account needs a second factor. Scan the QR code with an authenticator app (or type the key), then enter the code it shows."</p>
        <Suspense fallback=|| view! { <p class="loading">"Preparing a new key…"</p> }>
            {move || Suspend::new(async move {
                match enrollment.await {
                    Ok(e) => view! {
                        <div class="qr" role="img" aria-label="QR code for your authenticator app" inner_html=e.qr_svg.clone()></div>
                        <p>"Can't scan? Enter this key:"</p>
                        <CopyValue value=e.secret.clone() label="authenticator key"/>
                    }.into_any(),
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                }
            })}
        </Suspense>
        <ActionForm action=confirm attr:class="stack">
            <label for="enrol-code">"Code from the app"</label>
            <input id="enrol-code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required maxlength="6"/>
            <ActionError result=confirm.value().into()/>
            <Submit label="Turn on" busy="Checking…"/>
        </ActionForm>
    }
}
