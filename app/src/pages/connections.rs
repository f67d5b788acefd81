//! Every connection of the org (OIDC and SAML) on the Identity provider page, and "Add a SAML connection" with the
//! exact steps for Okta, Entra ID, Google Workspace, ADFS and any SAML IdP. The SP values to paste at the IdP (ACS
//! URL, entity ID, metadata) have copy buttons; a test sign-in opens a real SP-initiated sign-in, whose success
//! makes the connection active.
use super::{ActionError, CopyValue, ErrorNotice, Submit};
use crate::api::{get_connections, CreateSamlConnection, DeleteConnection, MakeDefaultConnection};
use crate::model::ConnectionInfo;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;

const SAML_PRESETS: [(&str, &str, &str); 5] = [
    ("okta", "Okta", "Okta Admin Console → Applications → Create App Integration → SAML 2.0. Single sign-on URL: the ACS URL below (tick \"Use this for Recipient URL and Destination URL\"); Audience URI (SP Entity ID): the entity ID below; Name ID format EmailAddress; attribute statement email = user.email. Then copy the \"Metadata URL\" from the Sign On tab."),
    ("entra", "Microsoft Entra ID", "Entra admin center → Enterprise applications → New application → Create your own (non-gallery) → Single sign-on → SAML. Upload the SP metadata below (or set Identifier = entity ID, Reply URL = ACS URL). Copy the \"App Federation Metadata Url\" from section 3."),
    ("google", "Google Workspace", "Admin console → Apps → Web and mobile apps → Add app → Add custom SAML app. Download the IdP metadata (step 2) and paste it below. Service provider details: ACS URL and Entity ID from below, Name ID format EMAIL, Name ID Basic Information > Primary email."),
    ("adfs", "ADFS", "AD FS Management → Relying Party Trusts → Add Relying Party Trust → Claims aware → Import data from the SP metadata URL below. Add a claim rule sending E-Mail-Addresses as E-Mail Address and as Name ID (Transform). The IdP metadata is https://<your-adfs>/FederationMetadata/2007-06/FederationMetadata.xml."),
    ("generic", "Other SAML 2.0 IdP", "Register a SAML service provider with the entity ID and ACS URL below (HTTP-POST binding, signed responses or assertions with SHA-256), send the email as the NameID or an email attribute, then give Latchkey the IdP's metadata URL or XML."),
];

#[component]
pub fn Connections(org_id: String) -> impl IntoView {
    let create = ServerAction::<CreateSamlConnection>::new();
    let make_default = ServerAction::<MakeDefaultConnection>::new();
    let delete = ServerAction::<DeleteConnection>::new();
    let list = Resource::new({
        let o = org_id.clone();
        move || o.clone()
    }, get_connections);
    let org_for_form = org_id.clone();
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
                        match list.await {
                            Ok(rows) if rows.is_empty() => view! { <p>"No connections yet."</p> }.into_any(),
                            Ok(rows) => rows.into_iter().map(|c| view! { <ConnectionCard org_id=org_id.clone() c=c/> }).collect_view().into_any(),
                            Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                        }
                    })
                }}
            </Suspense>
        </section>
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
    }
}

#[component]
fn ConnectionCard(org_id: String, c: ConnectionInfo) -> impl IntoView {
    let status = match c.status.as_str() {
        "active" => "Active: takes sign-ins.",
        "error" => "Failing: the last test did not pass.",
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
            <p><a href=c.test_sign_in_url.clone() class="button secondary">"Test sign-in"</a></p>
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
