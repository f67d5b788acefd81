//! `/api/reference`: the OpenAPI document as a plain HTML page, rendered once at start-up from the same document
//! `/api/openapi.json` serves. No script, no CDN: operations grouped by tag, their parameters, bodies, responses and
//! security, then every schema with its fields.
use serde_json::Value;
use std::fmt::Write;
use std::sync::Arc;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A schema in one line: a link for a reference, `array of …`, `a | b`, the enum's values.
fn type_of(s: &Value) -> String {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("<a href=\"#schema-{0}\">{0}</a>", esc(name));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(list) = s.get(key).and_then(Value::as_array) {
            let sep = if key == "allOf" { " &amp; " } else { " | " };
            return list.iter().map(type_of).collect::<Vec<_>>().join(sep);
        }
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        if values.len() <= 12 {
            return values.iter().map(|v| format!("<code>{}</code>", esc(&v.to_string()))).collect::<Vec<_>>().join(" | ");
        }
        return format!("one of {} codes (below)", values.len());
    }
    let types: Vec<String> = match s.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => vec![],
    };
    let mut parts = Vec::new();
    for t in &types {
        parts.push(match t.as_str() {
            "array" => format!("array of {}", s.get("items").map(type_of).unwrap_or_else(|| "any".into())),
            "object" if s.get("properties").is_some() => "object (fields below)".into(),
            other => other.to_string(),
        });
    }
    if parts.is_empty() {
        "any".into()
    } else {
        parts.join(" | ")
    }
}

fn fields_table(out: &mut String, s: &Value) {
    let Some(props) = s.get("properties").and_then(Value::as_object) else { return };
    let required: Vec<&str> = s.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    out.push_str("<table><thead><tr><th>Field</th><th>Type</th><th>Required</th><th>Description</th></tr></thead><tbody>");
    for (name, p) in props {
        let desc = p.get("description").and_then(Value::as_str).unwrap_or("");
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            type_of(p),
            if required.contains(&name.as_str()) { "yes" } else { "no" },
            esc(desc).replace('\n', "<br>")
        );
    }
    out.push_str("</tbody></table>");
}

fn body(out: &mut String, content: Option<&Value>) {
    let Some(content) = content.and_then(Value::as_object) else { return };
    for (mime, media) in content {
        let schema = media.get("schema").cloned().unwrap_or(Value::Null);
        let _ = write!(out, "<p><code>{}</code>: {}</p>", esc(mime), type_of(&schema));
        fields_table(out, &schema);
    }
}

fn operation(out: &mut String, path: &str, method: &str, op: &Value, components: &Value) {
    let id = op.get("operationId").and_then(Value::as_str).unwrap_or("");
    let _ = write!(
        out,
        "<section class=\"op\" id=\"op-{}\"><h3><span class=\"method\">{}</span> <code>{}</code></h3>",
        esc(id),
        method.to_uppercase(),
        esc(path)
    );
    for key in ["summary", "description"] {
        if let Some(t) = op.get(key).and_then(Value::as_str) {
            let _ = write!(out, "<p>{}</p>", esc(t));
        }
    }
    let security: Vec<String> = op
        .get("security")
        .and_then(Value::as_array)
        .map(|reqs| reqs.iter().filter_map(Value::as_object).map(|r| if r.is_empty() { "none".into() } else { r.keys().cloned().collect::<Vec<_>>().join(" + ") }).collect())
        .unwrap_or_default();
    if !security.is_empty() {
        let _ = write!(out, "<p><strong>Authentication:</strong> {}</p>", esc(&security.join(" or ")));
    }
    if let Some(params) = op.get("parameters").and_then(Value::as_array).filter(|p| !p.is_empty()) {
        out.push_str("<h4>Parameters</h4><table><thead><tr><th>Name</th><th>In</th><th>Type</th><th>Required</th><th>Description</th></tr></thead><tbody>");
        for p in params {
            let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s("name")),
                esc(&s("in")),
                p.get("schema").map(type_of).unwrap_or_default(),
                if p.get("required").and_then(Value::as_bool).unwrap_or(false) { "yes" } else { "no" },
                esc(&s("description"))
            );
        }
        out.push_str("</tbody></table>");
    }
    if let Some(rb) = op.get("requestBody") {
        out.push_str("<h4>Request body</h4>");
        body(out, rb.get("content"));
    }
    out.push_str("<h4>Responses</h4><dl>");
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        for (status, r) in responses {
            let r = match r.get("$ref").and_then(Value::as_str) {
                Some(reference) => components.pointer(&reference.trim_start_matches("#/components").replace('#', "")).unwrap_or(r),
                None => r,
            };
            let desc = r.get("description").and_then(Value::as_str).unwrap_or("");
            let _ = write!(out, "<dt>{}</dt><dd>{}", esc(status), esc(desc));
            if !status.starts_with('4') && !status.starts_with('5') {
                body(out, r.get("content"));
            }
            out.push_str("</dd>");
        }
    }
    out.push_str("</dl></section>");
}

/// The page, rendered once from the document.
pub fn render(doc: &Value) -> String {
    let mut out = String::with_capacity(256 * 1024);
    let title = doc.pointer("/info/title").and_then(Value::as_str).unwrap_or("API");
    let version = doc.pointer("/info/version").and_then(Value::as_str).unwrap_or("");
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} reference</title><link rel=\"stylesheet\" href=\"/pkg/latchkey.css\"><style>{css}</style></head><body><main class=\"reference\">\
         <h1>{t} <small>{v}</small></h1><p>{d}</p><p>The machine-readable document: <a href=\"/api/openapi.json\">/api/openapi.json</a> (OpenAPI 3.1).</p>",
        t = esc(title),
        v = esc(version),
        d = esc(doc.pointer("/info/description").and_then(Value::as_str).unwrap_or("")),
        css = CSS
    );
    if let Some(schemes) = doc.pointer("/components/securitySchemes").and_then(Value::as_object) {
        out.push_str("<h2 id=\"authentication\">Authentication</h2><dl>");
        for (name, s) in schemes {
            let _ = write!(out, "<dt><code>{}</code></dt><dd>{}</dd>", esc(name), esc(s.get("description").and_then(Value::as_str).unwrap_or("")));
        }
        out.push_str("</dl>");
    }
    let tags: Vec<(String, String)> = doc
        .get("tags")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .map(|t| (t.get("name").and_then(Value::as_str).unwrap_or("").to_string(), t.get("description").and_then(Value::as_str).unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let components = doc.get("components").cloned().unwrap_or(Value::Null);
    let empty = serde_json::Map::new();
    let paths = doc.get("paths").and_then(Value::as_object).unwrap_or(&empty);
    out.push_str("<nav aria-label=\"Sections\"><ul>");
    for (tag, _) in &tags {
        let _ = write!(out, "<li><a href=\"#tag-{0}\">{0}</a></li>", esc(tag));
    }
    out.push_str("<li><a href=\"#schemas\">schemas</a></li></ul></nav>");
    for (tag, description) in &tags {
        let _ = write!(out, "<h2 id=\"tag-{0}\">{0}</h2><p>{1}</p>", esc(tag), esc(description));
        for (path, item) in paths {
            for method in ["get", "post", "put", "patch", "delete"] {
                let Some(op) = item.get(method) else { continue };
                let in_tag = op.get("tags").and_then(Value::as_array).is_some_and(|t| t.iter().any(|x| x.as_str() == Some(tag)));
                if in_tag {
                    operation(&mut out, path, method, op, &components);
                }
            }
        }
    }
    out.push_str("<h2 id=\"schemas\">Schemas</h2>");
    if let Some(schemas) = components.get("schemas").and_then(Value::as_object) {
        for (name, s) in schemas {
            let _ = write!(out, "<section class=\"schema\" id=\"schema-{0}\"><h3>{0}</h3>", esc(name));
            if let Some(d) = s.get("description").and_then(Value::as_str) {
                let _ = write!(out, "<p>{}</p>", esc(d).replace('\n', "<br>"));
            }
            let _ = write!(out, "<p>{}</p>", type_of(s));
            fields_table(&mut out, s);
            if let Some(values) = s.pointer("/properties/code/enum").and_then(Value::as_array).filter(|v| v.len() > 12) {
                out.push_str("<p>Codes: ");
                out.push_str(&values.iter().filter_map(Value::as_str).map(|v| format!("<code>{}</code>", esc(v))).collect::<Vec<_>>().join(", "));
                out.push_str("</p>");
            }
            out.push_str("</section>");
        }
    }
    out.push_str("</main></body></html>");
    out
}

const CSS: &str = ".reference{max-width:60rem;margin:0 auto;padding:1rem}.reference table{border-collapse:collapse;width:100%;margin:.5rem 0}\
.reference th,.reference td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}\
.reference .op,.reference .schema{border-top:1px solid #ddd;padding-top:.5rem;margin-top:1rem}\
.reference .method{font-family:monospace;background:#eef;padding:0 .3rem;border-radius:3px}.reference nav ul{display:flex;flex-wrap:wrap;gap:1rem;list-style:none;padding:0}\
.reference dt{font-weight:bold;margin-top:.5rem}";

/// `GET /api/reference`.
pub async fn page(html: Arc<str>) -> axum::response::Response {
    use axum::response::IntoResponse;
    ([(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")], html.to_string()).into_response()
}
