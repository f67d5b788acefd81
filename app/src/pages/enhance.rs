//! What the browser bundle adds to the server-rendered console. Each behaviour is one listener on the document
//! (so it also covers content swapped in by a live region) keyed by a data attribute the pages render:
//! - `button[data-copy]` (hidden until this runs): copies the text of the `code.value` before it;
//! - `form[data-confirm="question"]`: asks first, and submits only on OK;
//! - `button[data-busy="Saving…"]`: the pressed submit button says what is happening;
//! - `select[data-autosubmit]`: a choice submits its form (its `[data-nojs]` Apply button is hidden);
//! - `select[data-switch]` with `[data-case]` siblings in the same form: only the chosen case is shown;
//! - `[data-live-ms]` regions (with an `id`): re-read from the server every so many milliseconds and swapped in
//!   place, without reloading the page, for as long as the server keeps rendering them with that attribute.
//!
//! When it has run, `<body data-hydrated="true">` tells tests and scripts that the page is interactive.
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{Document, Element, Event, HtmlFormElement};

#[wasm_bindgen]
extern "C" {
    /// `navigator.clipboard.writeText`, bound directly: web-sys marks the Clipboard API unstable.
    #[wasm_bindgen(js_namespace = ["navigator", "clipboard"], js_name = writeText, catch)]
    fn clipboard_write_text(text: &str) -> Result<js_sys::Promise, JsValue>;
}

pub fn install() {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else { return };
    listen(&doc, "click", on_click);
    listen(&doc, "submit", on_submit);
    listen(&doc, "change", on_change);
    prepare(&doc);
    if let Some(first) = doc.query_selector("[data-live-ms]").ok().flatten() {
        let every = first.get_attribute("data-live-ms").and_then(|v| v.parse::<i32>().ok()).unwrap_or(2000).clamp(500, 60_000);
        spawn_local(keep_live(every));
    }
    if let Some(body) = doc.body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}

fn listen(doc: &Document, event: &str, handler: fn(Event)) {
    let closure = Closure::<dyn Fn(Event)>::new(handler);
    let _ = doc.add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
    closure.forget();
}

/// What must be set up on content as it arrives: copy buttons shown, switches applied.
fn prepare(root: &Document) {
    for button in all(root, "button[data-copy]") {
        let _ = button.remove_attribute("hidden");
    }
    for fallback in all(root, "[data-nojs]") {
        let _ = fallback.set_attribute("hidden", "");
    }
    for select in all(root, "select[data-switch]") {
        apply_switch(&select);
    }
}

fn all(doc: &Document, selector: &str) -> Vec<Element> {
    let Ok(list) = doc.query_selector_all(selector) else { return Vec::new() };
    (0..list.length()).filter_map(|i| list.item(i)?.dyn_into::<Element>().ok()).collect()
}

/// The element the event happened on, or its closest ancestor matching `selector`.
fn closest(ev: &Event, selector: &str) -> Option<Element> {
    ev.target()?.dyn_into::<Element>().ok()?.closest(selector).ok().flatten()
}

fn on_click(ev: Event) {
    let Some(button) = closest(&ev, "button[data-copy]") else { return };
    let text = button.previous_element_sibling().and_then(|code| code.text_content()).unwrap_or_default();
    match clipboard_write_text(text.trim()) {
        Ok(promise) => spawn_local(async move {
            let ok = JsFuture::from(promise).await.is_ok();
            button.set_text_content(Some(if ok { "Copied" } else { "Select and copy" }));
        }),
        Err(_) => button.set_text_content(Some("Select and copy")),
    }
}

fn on_submit(ev: Event) {
    let Some(form) = ev.target().and_then(|t| t.dyn_into::<HtmlFormElement>().ok()) else { return };
    if let Some(question) = form.get_attribute("data-confirm") {
        let ok = web_sys::window().and_then(|w| w.confirm_with_message(&question).ok()).unwrap_or(false);
        if !ok {
            ev.prevent_default();
            return;
        }
    }
    let submitter = ev.dyn_ref::<web_sys::SubmitEvent>().and_then(|s| s.submitter());
    if let Some(button) = submitter.and_then(|s| s.dyn_into::<Element>().ok()) {
        if let Some(busy) = button.get_attribute("data-busy") {
            button.set_text_content(Some(&busy));
            let _ = button.set_attribute("aria-busy", "true");
        }
    }
}

fn on_change(ev: Event) {
    let Some(select) = closest(&ev, "select") else { return };
    if select.has_attribute("data-switch") {
        apply_switch(&select);
    }
    if select.has_attribute("data-autosubmit") {
        if let Some(form) = select.closest("form").ok().flatten().and_then(|f| f.dyn_into::<HtmlFormElement>().ok()) {
            let _ = form.request_submit();
        }
    }
}

/// Shows the `[data-case]` elements of the select's form that match its value, hides the others.
fn apply_switch(select: &Element) {
    let Some(value) = select.dyn_ref::<web_sys::HtmlSelectElement>().map(|s| s.value()) else { return };
    let Some(form) = select.closest("form").ok().flatten() else { return };
    let Ok(cases) = form.query_selector_all("[data-case]") else { return };
    for el in (0..cases.length()).filter_map(|i| cases.item(i)?.dyn_into::<Element>().ok()) {
        let _ = if el.get_attribute("data-case").as_deref() == Some(value.as_str()) {
            el.remove_attribute("hidden")
        } else {
            el.set_attribute("hidden", "")
        };
    }
}

/// Re-reads this page every `every` ms and swaps its live regions; stops when none is left live.
async fn keep_live(every: i32) {
    loop {
        sleep(every).await;
        match refresh().await {
            Ok(true) => {}
            Ok(false) => break,
            // A failed read (server restarting, network blip) is retried at the next tick.
            Err(_) => {}
        }
    }
}

async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Fetches the current URL, swaps every live region by id; true while the new page still has live regions.
async fn refresh() -> Result<bool, JsValue> {
    let window = web_sys::window().ok_or(JsValue::NULL)?;
    let doc = window.document().ok_or(JsValue::NULL)?;
    let href = window.location().href()?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str(&href)).await?.dyn_into()?;
    if !response.ok() {
        return Err(JsValue::NULL);
    }
    let html = JsFuture::from(response.text()?).await?.as_string().unwrap_or_default();
    let fresh = web_sys::DomParser::new()?.parse_from_string(&html, web_sys::SupportedType::TextHtml)?;
    for region in all(&doc, "[data-live-ms]") {
        let id = region.id();
        if id.is_empty() {
            continue;
        }
        match fresh.get_element_by_id(&id) {
            Some(new) => region.set_outer_html(&new.outer_html()),
            None => region.remove(),
        }
    }
    prepare(&doc);
    Ok(doc.query_selector("[data-live-ms]")?.is_some())
}
