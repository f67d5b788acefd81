//! The browser endpoints of SAML sign-in: SP metadata per connection, the one ACS of every org (the IdP's POST),
//! and `finish`, where the browser that started the sign-in collects it with its binding cookie.
use super::caller::Meta;
use super::envelope::{ApiError, Path};
use super::sso::{binding_cookie, cookie, error_page};
use app::service::oidc::binding_cookie_name;
use app::service::signin::saml;
use app::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use super::openapi::IdPath;
use tower_sessions::Session;

#[utoipa::path(
    get, path = "/auth/sso/saml/metadata/{id}", tag = "sign-in", summary = "The SAML service provider metadata of a connection (entity ID, ACS, signing and encryption certificates)",
    params(IdPath),
    responses((status = 200, description = "SAML metadata", body = String, content_type = "application/samlmetadata+xml")),
    security(())
)]
pub async fn metadata(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let xml = app::service::sso_connections::saml_metadata(&state, &id).await?;
    let mut resp = (StatusCode::OK, xml).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/samlmetadata+xml"));
    Ok(resp)
}

/// The ACS form (documentation; `acs_form` reads it).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    _saml_response: String,
    #[serde(rename = "RelayState", default)]
    _relay_state: Option<String>,
}

/// Reads the ACS form: the SAMLResponse as its base64 text (percent-decoded, without the whitespace of IdPs that
/// wrap it), and the RelayState. `None`: not a form of one SAMLResponse and at most one RelayState.
///
/// Not axum's `Form`: general form decoding makes a string of the 10 KB value (percent-decoding, `+` to space,
/// then a lossy UTF-8 pass), 7% of a signed ACS's instructions (callgrind). A base64 value needs neither: every
/// byte that is not base64 is refused by the decoder after this.
fn acs_form(headers: &HeaderMap, body: &[u8]) -> Option<(Vec<u8>, Option<String>)> {
    if !super::is_form(headers) {
        return None;
    }
    let (mut response, mut relay) = (None, None);
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.iter().position(|b| *b == b'=').map_or((pair, &b""[..]), |i| (&pair[..i], &pair[i + 1..]));
        match key {
            b"SAMLResponse" if response.is_none() => response = Some(base64_text(value)),
            b"RelayState" if relay.is_none() => relay = Some(url::form_urlencoded::parse(pair).next().map(|(_, v)| v.into_owned()).unwrap_or_default()),
            b"SAMLResponse" | b"RelayState" => return None,
            _ => {}
        }
    }
    Some((response?, relay))
}

/// Percent-decodes a form value that carries base64 text, without its whitespace: a `+` (an encoded space), and
/// the line breaks some IdPs put in (`%0D%0A`, or literal). An invalid escape stays as it is (as in
/// `percent_encoding`), for the base64 decoder to refuse.
///
/// The same bytes as `percent_encoding::percent_decode` with a whitespace filter (a test compares them), which as
/// iterator adaptors cost over 30 instructions per byte: 300,000 per signed ACS (callgrind). Here the runs
/// between escapes are found by `memchr` and copied whole (when they hold no byte at or below a space): about
/// 6 instructions per byte.
fn base64_text(value: &[u8]) -> Vec<u8> {
    fn hex(b: Option<&u8>) -> Option<u8> {
        b.and_then(|b| (*b as char).to_digit(16)).map(|d| d as u8)
    }
    let mut text = Vec::with_capacity(value.len());
    let mut rest = value;
    loop {
        let end = memchr::memchr2(b'%', b'+', rest).unwrap_or(rest.len());
        let run = &rest[..end];
        // No early exit, so the scan is vectorized; the exact filter runs only on a run that needs it.
        if run.iter().fold(false, |any, b| any | (*b <= b' ')) {
            text.extend(run.iter().filter(|b| !b.is_ascii_whitespace()));
        } else {
            text.extend_from_slice(run);
        }
        let Some(&mark) = rest.get(end) else { break };
        rest = &rest[end + 1..];
        if mark == b'%' {
            match (hex(rest.first()), hex(rest.get(1))) {
                (Some(high), Some(low)) => {
                    let byte = high << 4 | low;
                    if !byte.is_ascii_whitespace() {
                        text.push(byte);
                    }
                    rest = &rest[2..];
                }
                _ => text.push(b'%'),
            }
        }
    }
    text
}

#[utoipa::path(
    post, path = "/auth/sso/saml/acs", tag = "sign-in", summary = "The one SAML assertion consumer service of every organization (HTTP-POST binding)",
    request_body(content = AcsForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "To /api/auth/sso/saml/finish, or /auth/error?code=…")),
    security(())
)]
pub async fn acs(State(state): State<AppState>, Meta(meta): Meta, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let Some((response, relay)) = body.ok().and_then(|b| acs_form(&headers, &b)) else { return error_page("saml_malformed_response") };
    match saml::acs(&state, &response, relay.as_deref(), &meta).await {
        Ok(ok) => {
            let enc: String = url::form_urlencoded::byte_serialize(ok.relay.as_bytes()).collect();
            // 303: the browser follows with a GET, which (unlike this cross-site POST) carries SameSite=Lax cookies.
            let mut resp = Redirect::to(&format!("/api/auth/sso/saml/finish?relay={enc}")).into_response();
            if let Some((name, token)) = ok.binding {
                if let Some(v) = binding_cookie(&state, &name, &token, 60) {
                    resp.headers_mut().insert(header::SET_COOKIE, v);
                }
            }
            resp
        }
        Err(f) => error_page(f.code),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FinishQuery {
    relay: String,
}

#[utoipa::path(
    get, path = "/auth/sso/saml/finish", tag = "sign-in", summary = "The browser that started a SAML sign-in collects it (with its binding cookie)",
    params(FinishQuery),
    responses((status = 303, description = "To where the sign-in goes, or /auth/error?code=…")),
    security(())
)]
pub async fn finish(
    State(state): State<AppState>,
    session: Session,
    q: Result<Query<FinishQuery>, QueryRejection>,
    headers: HeaderMap,
    Meta(meta): Meta,
) -> Response {
    let Ok(Query(q)) = q else { return error_page("sso_state_invalid") };
    let name = binding_cookie_name(state.settings.secure_cookies, &q.relay);
    let token = cookie(&headers, &name);
    let mut resp = match saml::finish(&state, &session, &q.relay, token.as_deref(), &meta).await {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(f) => error_page(f.code),
    };
    if token.is_some() {
        if let Some(v) = binding_cookie(&state, &name, "", 0) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(content_type: &str, body: &str) -> Option<(String, Option<String>)> {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        acs_form(&headers, body.as_bytes()).map(|(r, relay)| (String::from_utf8(r).unwrap(), relay))
    }

    /// The SAMLResponse comes back as base64 text however the form encoded it; the RelayState as any form value.
    #[test]
    fn the_acs_form_gives_the_base64_text_and_the_relay_state() {
        let form = "application/x-www-form-urlencoded";
        let (text, relay) = read(form, "SAMLResponse=PD94%2Bb%2F8%3D&RelayState=a%2Bb+c%26d").unwrap();
        assert_eq!((text.as_str(), relay.as_deref()), ("PD94+b/8=", Some("a+b c&d")));
        // Wrapped by the IdP (CRLF, encoded) or with `+` for spaces: whitespace is dropped, `%2B` stays a `+`.
        assert_eq!(read(form, "SAMLResponse=PD94%0D%0Ab%2B+8%3D").unwrap().0, "PD94b+8=");
        assert_eq!(read("Application/X-WWW-Form-Urlencoded; charset=UTF-8", "RelayState=&SAMLResponse=QQ%3D%3D&x=1").unwrap(), ("QQ==".into(), Some("".into())));
        // Bytes that are not base64 stay for the decoder to refuse.
        assert_eq!(read(form, "SAMLResponse=%C3%A9%zz").unwrap().0.as_bytes(), "é%zz".as_bytes());
        assert_eq!(read(form, "RelayState=x"), None, "no SAMLResponse");
        assert_eq!(read(form, "SAMLResponse=QQ%3D%3D&SAMLResponse=Qg%3D%3D"), None, "two SAMLResponses");
        assert_eq!(read(form, "SAMLResponse=QQ%3D%3D&RelayState=a&RelayState=b"), None, "two RelayStates");
        assert_eq!(read("application/json", "SAMLResponse=QQ%3D%3D"), None, "not a form");
        assert_eq!(read("multipart/form-data; boundary=x", "SAMLResponse=QQ%3D%3D"), None, "not this form encoding");
    }

    /// The one-pass decoding gives what `percent_encoding` and a whitespace filter give, on escapes cut short at the
    /// end, invalid hex, mixed case, literal and encoded whitespace, and every byte value escaped.
    #[test]
    fn the_base64_text_is_what_the_general_decoder_gives() {
        let general = |v: &[u8]| -> Vec<u8> {
            v.split(|b| *b == b'+').flat_map(|part| percent_encoding::percent_decode(part).filter(|b| !b.is_ascii_whitespace()).collect::<Vec<_>>()).collect()
        };
        let every_byte: String = (0..=255u8).map(|b| format!("%{b:02X}%{b:02x}")).collect();
        let cases: [&[u8]; 13] = [
            b"", b"%", b"%4", b"%4G", b"%%41", b"abc%2b%2B%2f%3D", b"a+b c\r\nd\te", b"%0D%0A%0d%0a%20%09x",
            b"%zz%C3%A9", b"QUJD%0aREVG+R0hJ%3d%3D", b"%%%", b"\x0b\x0c\x1f x%0b", every_byte.as_bytes(),
        ];
        for case in cases {
            assert_eq!(base64_text(case), general(case), "{:?}", String::from_utf8_lossy(case));
        }
    }
}
