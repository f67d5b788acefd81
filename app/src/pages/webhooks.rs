//! The org's webhooks for owners: add an endpoint with the events it takes (the signing secret is shown once with a
//! copy button), send a test, rotate the secret, pause or delete (with confirmation), and each endpoint's delivery
//! log with status codes and "Resend"; the log refreshes itself while deliveries are pending.
use super::orgs::OrgNav;
use super::{ActionError, CopyValue, ErrorNotice, SignedIn, Submit};
use crate::api::{get_webhooks, take_notice, CreateWebhook, DeleteWebhook, ResendWebhookDelivery, RotateWebhookSecret, SetWebhookEnabled, TestWebhook};
use crate::model::{Notice, WebhookDelivery, WebhookWithLog, WEBHOOK_EVENT_TYPES};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_router::hooks::use_params_map;

/// How often the page refreshes the delivery logs while something is pending.
const POLL_MS: u32 = 3000;

#[component]
pub fn Webhooks() -> impl IntoView {
    let params = use_params_map();
    let org_id = move || params.with(|p| p.get("org_id").unwrap_or_default());
    view! {
        <SignedIn title="Webhooks" children=move |_me| {
            let create = ServerAction::<CreateWebhook>::new();
            let hooks = Resource::new(org_id, get_webhooks);
            let notice = Resource::new(|| (), |_| take_notice("webhook".into()));
            view! {
                <h1>"Webhooks"</h1>
                <OrgNav org_id=org_id() current="Webhooks"/>
                <p class="muted">"Latchkey POSTs a signed JSON message to your endpoint when something happens in this organization. Messages follow the Standard Webhooks convention: verify the "
                    <code>"webhook-signature"</code>" header with the signing secret (any Standard Webhooks library does it). Failed deliveries are retried for about a day."</p>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        match notice.await {
                            Ok(Some(Notice::WebhookSecret(c))) => Some(view! {
                                <div class="notice success" role="status" id="webhook-secret">
                                    <p><strong>{format!("Signing secret for {}.", c.webhook.url)}</strong>
                                        " Copy it into your endpoint's configuration now: it is shown only once."
                                        {c.webhook.previous_secret_expires_at.as_ref().map(|t| format!(" Until {t} messages also carry a signature with the previous secret."))}</p>
                                    <CopyValue value=c.secret label="signing secret"/>
                                </div>
                            }),
                            _ => None,
                        }
                    })}
                </Suspense>
                <section class="card" aria-labelledby="new-webhook">
                    <h2 id="new-webhook">"Add an endpoint"</h2>
                    <ActionForm action=create attr:class="stack">
                        <input type="hidden" name="org_id" value=org_id()/>
                        <label for="wh-url">"Endpoint URL"</label>
                        <input id="wh-url" name="url" type="url" required placeholder="https://hooks.example.com/latchkey"/>
                        <p class="hint">"https only. Private and internal addresses are refused unless this instance allows them."</p>
                        <label for="wh-desc">"Description (optional)"</label>
                        <input id="wh-desc" name="description" type="text" maxlength="200" placeholder="Security team's SIEM"/>
                        <fieldset>
                            <legend>"Events to send"</legend>
                            {WEBHOOK_EVENT_TYPES.iter().map(|(t, what)| {
                                let id = format!("wh-ev-{}", t.replace('.', "-"));
                                view! {
                                    <div class="check">
                                        <input type="checkbox" id=id.clone() name="event_types[]" value=*t/>
                                        <label for=id><code>{*t}</code>" — "{*what}</label>
                                    </div>
                                }
                            }).collect_view()}
                        </fieldset>
                        <Submit label="Add endpoint" busy="Adding…"/>
                    </ActionForm>
                    <ActionError result=create.value().into()/>
                </section>
                <Suspense fallback=|| view! { <p class="loading">"Loading webhooks…"</p> }>
                    {move || Suspend::new(async move {
                        match hooks.await {
                            Ok(list) => {
                                let live = list.iter().any(|h| h.deliveries.iter().any(|d| d.status == "pending")).then_some(POLL_MS);
                                let empty = list.is_empty().then(|| view! { <p class="empty">"No endpoints yet."</p> });
                                view! {
                                    <div id="webhook-list" data-live-ms=live>
                                        {empty}
                                        {list.into_iter().map(|h| view! { <WebhookCard org_id=org_id() h=h/> }).collect_view()}
                                    </div>
                                }.into_any()
                            }
                            Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                        }
                    })}
                </Suspense>
            }
        }/>
    }
}

#[component]
fn WebhookCard(org_id: String, h: WebhookWithLog) -> impl IntoView {
    let w = h.webhook;
    let id = w.id.clone();
    let hidden = {
        let (org_id, id) = (org_id.clone(), id.clone());
        move || view! { <input type="hidden" name="org_id" value=org_id.clone()/><input type="hidden" name="id" value=id.clone()/> }
    };
    let confirm = format!("Delete the webhook to {}? Pending deliveries are dropped and no more messages are sent.", w.url);
    let status = if w.enabled { "Active" } else { "Paused" };
    view! {
        <section class="card" aria-label=format!("Webhook {}", w.url) data-webhook-id=id.clone()>
            <h2>{w.url.clone()}</h2>
            <p class="muted">{status}{(!w.description.is_empty()).then(|| format!(" · {}", w.description))}</p>
            <p>"Events: " {w.event_types.iter().map(|t| view! { <code>{t.clone()}</code>" " }).collect_view()}</p>
            <div class="row">
                <form method="post" action=TestWebhook::url()>{hidden()}<Submit label="Send test message" busy="Queueing…"/></form>
                <form method="post" action=RotateWebhookSecret::url() data-confirm="Create a new signing secret? The current one keeps signing for 24 hours.">
                    {hidden()}<Submit label="Rotate secret" busy="Rotating…"/></form>
                <form method="post" action=SetWebhookEnabled::url()>
                    {hidden()}<input type="hidden" name="enabled" value=if w.enabled { "false" } else { "true" }/>
                    <Submit label=if w.enabled { "Pause" } else { "Resume" } busy="Saving…"/></form>
                <form method="post" action=DeleteWebhook::url() data-confirm=confirm>
                    {hidden()}<button type="submit" class="danger">"Delete"</button></form>
            </div>
            <h3>"Recent deliveries"</h3>
            {if h.deliveries.is_empty() {
                view! { <p class="empty">"Nothing sent yet. Send a test message to check the endpoint."</p> }.into_any()
            } else {
                view! {
                    <table class="deliveries">
                        <thead><tr><th scope="col">"Event"</th><th scope="col">"Status"</th><th scope="col">"Attempts"</th><th scope="col">"Last answer"</th><th scope="col">"Created"</th><th scope="col"><span class="sr-only">"Actions"</span></th></tr></thead>
                        <tbody>{h.deliveries.into_iter().map(|d| view! { <DeliveryRow org_id=org_id.clone() webhook_id=id.clone() d=d/> }).collect_view()}</tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn DeliveryRow(org_id: String, webhook_id: String, d: WebhookDelivery) -> impl IntoView {
    let answer = match (d.last_status_code, d.last_error.as_deref()) {
        (Some(code), _) => format!("HTTP {code}"),
        (None, Some(e)) => e.to_string(),
        (None, None) => "—".into(),
    };
    let status = match d.status.as_str() {
        "pending" => d.next_attempt_at.as_ref().map(|t| format!("pending (next try {t})")).unwrap_or_else(|| "pending".into()),
        other => other.to_string(),
    };
    view! {
        <tr data-delivery-id=d.id.clone() data-status=d.status.clone()>
            <td><code>{d.event_type.clone()}</code></td>
            <td>{status}</td>
            <td>{d.attempts}</td>
            <td>{answer}</td>
            <td>{d.created_at.clone()}</td>
            <td>
                <form method="post" action=ResendWebhookDelivery::url()>
                    <input type="hidden" name="org_id" value=org_id/>
                    <input type="hidden" name="id" value=webhook_id/>
                    <input type="hidden" name="delivery_id" value=d.id.clone()/>
                    <Submit label="Resend" busy="Queueing…"/>
                </form>
            </td>
        </tr>
    }
}
