//! Every connection of the org (OIDC, SAML, LDAP) on the Identity provider page, "Add a SAML connection" with the
//! exact steps for Okta, Entra ID, Google Workspace, ADFS and any SAML IdP, "Add an LDAP connection" with
//! OpenLDAP, FreeIPA and Active Directory templates, the group -> role table, and an LDAP test step by step. The SP values to paste at the IdP (ACS
//! URL, entity ID, metadata) have copy buttons; a test sign-in opens a real SP-initiated sign-in, whose success
//! makes the connection active.
use super::{ActionError, CopyValue, ErrorNotice, Submit};
use crate::api::{get_connections, take_notice, CreateLdapConnection, CreateSamlConnection, DeleteConnection, MakeDefaultConnection, SetGroupRoles, TestConnection};
use crate::model::{ConnectionInfo, ConnectionTest, Notice, LDAP_PRESETS};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;

const SAML_PRESETS: [(&str, &str, &str); 5] = [
    ("okta", "Okta", "Okta Admin Console → Applications → Create App Integration → SAML 2.0. Single sign-on URL: the ACS URL below (tick \"Use this for Recipient URL and Destination URL\"); Audience URI (SP Entity ID): the entity ID below; Name ID format EmailAddress; attribute statement email = user.email. Then copy the \"Metadata URL\" from the Sign On tab."),
    ("entra", "Microsoft Entra ID", "Entra admin center → Enterprise applications → New application → Create your own (non-gallery) → Single sign-on → SAML. Upload the SP metadata below (or set Identifier = entity ID, Reply URL = ACS URL). Copy the \"App Federation Metadata Url\" from section 3. If you turn on token encryption, also set the signing option to \"Sign SAML response and assertion\" (Entra encrypts with AES-CBC, accepted only inside a signed response)."),
    ("google", "Google Workspace", "Admin console → Apps → Web and mobile apps → Add app → Add custom SAML app. Download the IdP metadata (step 2) and paste it below. Service provider details: ACS URL and Entity ID from below, Name ID format EMAIL, Name ID Basic Information > Primary email."),
    ("adfs", "ADFS", "AD FS Management → Relying Party Trusts → Add Relying Party Trust → Claims aware → Import data from the SP metadata URL below. Add a claim rule sending E-Mail-Addresses as E-Mail Address and as Name ID (Transform). ADFS encrypts with AES-CBC and signs only the assertion, so also run Set-AdfsRelyingPartyTrust -TargetName <name> -SamlResponseSignature MessageAndAssertion (AES-CBC is accepted only inside a signed response). The IdP metadata is https://<your-adfs>/FederationMetadata/2007-06/FederationMetadata.xml."),
    ("generic", "Other SAML 2.0 IdP", "Register a SAML service provider with the entity ID and ACS URL below (HTTP-POST binding, signed responses or assertions with SHA-256), send the email as the NameID or an email attribute, then give Latchkey the IdP's metadata URL or XML."),
];

#[component]
pub fn Connections(org_id: String) -> impl IntoView {
    let create = ServerAction::<CreateSamlConnection>::new();
    let make_default = ServerAction::<MakeDefaultConnection>::new();
    let delete = ServerAction::<DeleteConnection>::new();
    let create_ldap = ServerAction::<CreateLdapConnection>::new();
    let tested = Resource::new(|| (), |_| take_notice("connection_test".into()));
    let list = Resource::new({
        let o = org_id.clone();
        move || o.clone()
    }, get_connections);
    let org_for_form = org_id.clone();
    let org_for_ldap = org_id.clone();
    let org_for_workspace = org_id.clone();
    view! {
        <section class="card" aria-labelledby="connections">
            <h2 id="connections">"All connections"</h2>
            <p class="hint">"An email is routed to the active connection that lists its domain, else to the default connection. A new connection takes routed sign-ins once a test sign-in through it succeeds."</p>
            <ActionError result=make_default.value().into()/>
            <ActionError result=delete.value().into()/>
            <Suspense fallback=|| view! { <p class="loading">"Loading connections…"</p> }>
                {move || {
                    let org_id = org_id.clone();
                    Suspend::new(async move {
                        let tested = match tested.await { Ok(Some(Notice::ConnectionTested(id, r))) => Some((id, r)), _ => None };
                        match list.await {
                            Ok(rows) if rows.is_empty() => view! { <p>"No connections yet."</p> }.into_any(),
                            Ok(rows) => rows
                                .into_iter()
                                .map(|c| {
                                    let t = tested.clone().filter(|(id, _)| *id == c.id).map(|(_, r)| r);
                                    view! { <ConnectionCard org_id=org_id.clone() c=c tested=t/> }
                                })
                                .collect_view()
                                .into_any(),
                            Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                        }
                    })
                }}
            </Suspense>
        </section>
        <super::workspace::WorkspaceSso org_id=org_for_workspace/>
        <section class="card" aria-labelledby="add-saml">
            <h2 id="add-saml">"Add a SAML connection"</h2>
            <ActionForm action=create attr:class="stack">
                <input type="hidden" name="org_id" value=org_for_form/>
                <label for="saml-preset">"SAML identity provider"</label>
                <select id="saml-preset" data-switch="" aria-describedby="saml-preset-hint">
                    {SAML_PRESETS.iter().map(|(k, label, _)| view! { <option value=*k>{*label}</option> }).collect_view()}
                </select>
                <div id="saml-preset-hint">
                    {SAML_PRESETS.iter().map(|(k, _, steps)| view! { <p class="hint" data-case=*k>{*steps}</p> }).collect_view()}
                </div>
                <label for="saml-name">"Connection name"</label>
                <input id="saml-name" name="name" type="text" required placeholder="Okta (employees)"/>
                <label for="saml-metadata-url">"IdP metadata URL"</label>
                <input id="saml-metadata-url" name="metadata_url" type="url" placeholder="https://your-idp.example.com/metadata" aria-describedby="saml-meta-hint"/>
                <label for="saml-metadata-xml">"…or paste the IdP metadata XML"</label>
                <textarea id="saml-metadata-xml" name="metadata_xml" rows="4" aria-describedby="saml-meta-hint"></textarea>
                <p class="hint" id="saml-meta-hint">"Latchkey reads the IdP's entity ID, sign-in URL and signing certificates from it. Certificates are pinned: a response signed by any other key is refused."</p>
                <label for="saml-domains">"Domains it serves (optional, comma-separated)"</label>
                <input id="saml-domains" name="domains" type="text" placeholder="example.com"/>
                <ActionError result=create.value().into()/>
                <Submit label="Add SAML connection" busy="Reading metadata…"/>
            </ActionForm>
        </section>
        <section class="card" aria-labelledby="add-ldap">
            <h2 id="add-ldap">"Add an LDAP connection"</h2>
            <p class="hint">"People type their directory name and password on Latchkey's form; Latchkey finds them with a service account, checks the password with one bind, and never keeps it. TLS is required (LDAPS, or StartTLS on ldap://)."</p>
            <ActionForm action=create_ldap attr:class="stack">
                <input type="hidden" name="org_id" value=org_for_ldap/>
                <label for="ldap-preset">"Directory"</label>
                <select id="ldap-preset" name="preset" data-switch="" aria-describedby="ldap-preset-hint">
                    {LDAP_PRESETS.iter().map(|t| view! { <option value=t.0>{t.1}</option> }).collect_view()}
                </select>
                <div id="ldap-preset-hint">
                    {LDAP_PRESETS.iter().map(|t| view! {
                        <p class="hint" data-case=t.0>{t.7} " Filter: " <code>{t.2}</code> "; subject " <code>{t.3}</code> ", email " <code>{t.4}</code> ", groups " <code>{t.6}</code> "."</p>
                    }).collect_view()}
                </div>
                <label for="ldap-name">"Connection name"</label>
                <input id="ldap-name" name="name" type="text" required placeholder="Company directory"/>
                <label for="ldap-url">"Server URL"</label>
                <input id="ldap-url" name="server_url" type="text" required placeholder="ldaps://ldap.example.com:636" aria-describedby="ldap-url-hint"/>
                <p class="hint" id="ldap-url-hint">"ldaps:// (TLS from the start) or ldap:// with StartTLS. A directory on a private network needs the operator to start Latchkey with --allow-private-idp."</p>
                <label for="ldap-ca">"CA certificate (PEM, optional: the system's trusted roots otherwise)"</label>
                <textarea id="ldap-ca" name="ca_certificate" rows="3" placeholder="-----BEGIN CERTIFICATE-----"></textarea>
                <label for="ldap-bind-dn">"Service account bind DN"</label>
                <input id="ldap-bind-dn" name="bind_dn" type="text" required placeholder="cn=latchkey,ou=services,dc=example,dc=com"/>
                <label for="ldap-bind-password">"Service account password"</label>
                <input id="ldap-bind-password" name="bind_password" type="password" required autocomplete="new-password" aria-describedby="ldap-pw-hint"/>
                <p class="hint" id="ldap-pw-hint">"Stored encrypted; it is never shown again."</p>
                <label for="ldap-base">"Base DN of people"</label>
                <input id="ldap-base" name="user_base_dn" type="text" required placeholder="ou=people,dc=example,dc=com"/>
                <label for="ldap-domains">"Domains it serves (optional, comma-separated)"</label>
                <input id="ldap-domains" name="domains" type="text" placeholder="example.com"/>
                <ActionError result=create_ldap.value().into()/>
                <Submit label="Add LDAP connection" busy="Saving…"/>
            </ActionForm>
        </section>
    }
}

/// What a test found, step by step (an LDAP test: dns, connect, tls, bind, search).
#[component]
fn TestResult(r: ConnectionTest) -> impl IntoView {
    let steps = r.steps.clone();
    view! {
        <div class=if r.success { "notice success" } else { "notice error" } role="status">
            <p><strong>{if r.success { "Test passed" } else { "Test failed" }}</strong> {format!(" ({} ms): ", r.response_time_ms)} {r.message.clone()}</p>
            {(!steps.is_empty()).then(|| view! {
                <table>
                    <thead><tr><th scope="col">"Step"</th><th scope="col">"Result"</th><th scope="col">"Time"</th></tr></thead>
                    <tbody>
                        {steps.into_iter().map(|s| view! {
                            <tr><td>{s.step}</td><td>{if s.ok { "ok".to_string() } else { format!("failed: {}", s.message) }}</td><td>{format!("{} ms", s.ms)}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        </div>
    }
}

#[component]
fn ConnectionCard(org_id: String, c: ConnectionInfo, tested: Option<ConnectionTest>) -> impl IntoView {
    let status = match c.status.as_str() {
        "active" => "Active: takes sign-ins.",
        "error" => "Failing: the last test did not pass.",
        _ if c.protocol == "ldap" => "Not active yet: run the connection test (or a first sign-in) to activate it.",
        _ => "Not active yet: open the test sign-in to activate it.",
    };
    let domains = if c.domains.is_empty() { "every verified domain of the organization".to_string() } else { c.domains.join(", ") };
    let saml = c.saml.clone().map(|s| {
        let certs = s.idp_certificates.iter().map(|cert| view! {
            <li class=if cert.expires_soon { "warning" } else { "" }>
                {format!("IdP signing certificate, expires {}", cert.expires_at)}
                {cert.expires_soon.then(|| view! { <strong>" Expires within 30 days: get the new certificate from the IdP."</strong> })}
            </li>
        }).collect_view();
        view! {
            <h4>"Paste these at the identity provider"</h4>
            <p>"ACS (Single sign-on / Reply) URL"</p>
            <CopyValue value=s.assertion_consumer_service_url.clone() label="ACS URL"/>
            <p>"Entity ID (Audience URI / Identifier)"</p>
            <CopyValue value=s.entity_id.clone() label="SP entity ID"/>
            <p><a href=s.sp_metadata_url.clone() download="latchkey-sp-metadata.xml">"Download SP metadata"</a></p>
            <p class="muted">{format!("IdP entity ID: {}", s.idp_entity_id)}</p>
            {if s.idp_certificates.is_empty() {
                view! { <p class="notice error" role="alert">"No IdP signing certificate: every response will be refused."</p> }.into_any()
            } else {
                view! { <ul>{certs}</ul> }.into_any()
            }}
        }
    });
    let ldap = c.ldap.clone().map(|l| {
        let (org_test, id_test) = (org_id.clone(), c.id.clone());
        view! {
            <p>"Directory: " <code>{l.server_url.clone()}</code> {format!(" · TLS: {}", l.tls)}</p>
            {(l.tls == "none").then(|| view! {
                <p class="notice error" role="alert">"Plain LDAP: passwords cross the network unencrypted. Use ldaps:// or StartTLS."</p>
            })}
            <p>"People sign in at (email-first sign-in also routes them there)"</p>
            <CopyValue value=l.sign_in_url.clone() label="LDAP sign-in URL"/>
            <form method="post" action=TestConnection::url() class="inline">
                <input type="hidden" name="org_id" value=org_test/>
                <input type="hidden" name="id" value=id_test.clone()/>
                <label for=format!("sample-{id_test}")>"Sample name to search for"</label>
                <input id=format!("sample-{id_test}") name="username" type="text" placeholder="alice"/>
                <Submit label="Test connection" busy="Testing…" class="secondary"/>
            </form>
        }
    });
    let groups = (c.protocol != "oidc").then(|| {
        let (org_groups, id_groups) = (org_id.clone(), c.id.clone());
        let lines: String = c.group_roles.iter().map(|r| format!("{} = {}\n", r.group, r.role)).collect();
        view! {
            <details>
                <summary>{format!("Groups to roles ({} rule(s))", c.group_roles.len())}</summary>
                <form method="post" action=SetGroupRoles::url() class="stack">
                    <input type="hidden" name="org_id" value=org_groups/>
                    <input type="hidden" name="id" value=id_groups.clone()/>
                    <label for=format!("groups-{id_groups}")>"One rule per line: group = member or admin (a group's name, DN or CN)"</label>
                    <textarea id=format!("groups-{id_groups}") name="rules" rows="4" placeholder="engineers = member\nit-admins = admin">{lines}</textarea>
                    <label><input type="checkbox" name="required" value="on" checked=c.groups_required/>
                        " Only people in a mapped group may sign in (someone removed from every mapped group loses the membership)"</label>
                    <Submit label="Save group rules" busy="Saving…" class="secondary"/>
                </form>
            </details>
        }
    });
    let sign_in_test = (c.protocol != "ldap").then(|| view! { <p><a href=c.test_sign_in_url.clone() class="button secondary">"Test sign-in"</a></p> });
    let (org_default, org_delete, id_default, id_delete) = (org_id.clone(), org_id, c.id.clone(), c.id.clone());
    view! {
        <article class="connection" aria-label=format!("{} connection {}", c.protocol.to_uppercase(), c.name)>
            <h3>{c.name.clone()} " " <span class="badge">{c.protocol.to_uppercase()}</span>
                {c.is_default.then(|| view! { " " <span class="badge">"default"</span> })}</h3>
            <p class=format!("status {}", c.status) role="status"><strong>{status}</strong>
                {c.last_tested_at.clone().map(|t| format!(" Last tested {t}."))}</p>
            {c.last_test_message.clone().map(|m| view! { <p class="muted">{m}</p> })}
            <p>"Domains: " {domains}</p>
            {saml}
            {ldap}
            {tested.map(|r| view! { <TestResult r=r/> })}
            {groups}
            {sign_in_test}
            {(!c.is_default).then(|| view! {
                <form method="post" action=MakeDefaultConnection::url()>
                    <input type="hidden" name="org_id" value=org_default/>
                    <input type="hidden" name="id" value=id_default/>
                    <Submit label="Make default" busy="Saving…" class="secondary"/>
                </form>
            })}
            <form method="post" action=DeleteConnection::url()
                data-confirm=format!("Delete the connection \"{}\"? People signed in through it are signed out, and it can no longer sign anyone in. An organization that requires SSO keeps at least one working connection.", c.name)>
                <input type="hidden" name="org_id" value=org_delete/>
                <input type="hidden" name="id" value=id_delete/>
                <button type="submit" class="danger">"Delete connection"</button>
            </form>
        </article>
    }
}
