//! SAML 2.0 service provider, per connection: settings, the SP key pair, SP metadata, IdP metadata import and the
//! verification of a Response. XML signatures are checked by libxmlsec1 (`dsig`) against the connection's pinned
//! IdP certificates only; `guard` runs first and refuses what libxmlsec could otherwise be made to do (fetch
//! references, expand entities) or what could be read twice. The sign-in flow itself is `service::signin::saml`.
pub mod dsig;
pub mod guard;
pub mod xmlenc;

use super::error::{ServiceError, ServiceResult};
use base64::Engine;
use openssl::pkey::{PKey, Private};
use samael::crypto::CertificateDer;
use samael::key_info::{KeyInfo, X509Data};
use samael::metadata::{Endpoint, EntityDescriptor, IdpSsoDescriptor, KeyDescriptor, HTTP_REDIRECT_BINDING};
use samael::schema::{Assertion, Response};
use samael::service_provider::ServiceProvider;
use serde::{Deserialize, Serialize};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
pub const DEFAULT_CLOCK_SKEW_SECS: i64 = 60;
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// A SAML connection's settings, stored as JSON (the SP private key is sealed apart, in `secret`).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SamlSettings {
    pub idp_entity_id: String,
    pub idp_sso_url: String,
    /// The IdP's signing certificates, base64 DER; several during a rollover. Empty: every response is refused.
    pub idp_certificates: Vec<String>,
    #[serde(default)]
    pub metadata_url: Option<String>,
    #[serde(default)]
    pub allow_idp_initiated: bool,
    #[serde(default)]
    pub require_signed_assertion: bool,
    #[serde(default)]
    pub allow_sha1: bool,
    #[serde(default = "default_skew")]
    pub clock_skew_secs: i64,
    /// The SP's own certificate (base64 DER), advertised for signing and encryption.
    pub sp_certificate: String,
    /// When the metadata URL was last fetched (ms), by the owner's save or the background refresh.
    #[serde(default)]
    pub metadata_fetched_at: Option<i64>,
    /// IdP certificates whose coming expiry the org's audit log already recorded.
    #[serde(default)]
    pub expiry_warned: Vec<String>,
}

fn default_skew() -> i64 {
    DEFAULT_CLOCK_SKEW_SECS
}

pub fn key_aad(connection_id: &str) -> String {
    format!("connection:{connection_id}:saml-sp-key")
}

/// The SP entity ID of a connection; also where its metadata is served.
pub fn sp_entity_id(public_url: &str, connection_id: &str) -> String {
    format!("{public_url}/api/auth/sso/saml/metadata/{connection_id}")
}

/// The one Assertion Consumer Service of every org.
pub fn acs_url(public_url: &str) -> String {
    format!("{public_url}/api/auth/sso/saml/acs")
}

/// A new SP key pair: RSA-2048 and a self-signed certificate valid ten years. Returns (private key PEM, cert DER).
pub fn new_sp_keypair(entity_id: &str) -> ServiceResult<(Vec<u8>, Vec<u8>)> {
    use openssl::{asn1::Asn1Time, bn::BigNum, hash::MessageDigest, pkey::PKey, rsa::Rsa, x509};
    let internal = |e: openssl::error::ErrorStack| ServiceError::internal("SP key pair", e);
    let key = PKey::from_rsa(Rsa::generate(2048).map_err(internal)?).map_err(internal)?;
    let mut name = x509::X509NameBuilder::new().map_err(internal)?;
    let cn: String = format!("Latchkey SAML SP {}", entity_id.rsplit('/').next().unwrap_or_default()).chars().take(64).collect();
    name.append_entry_by_text("CN", &cn).map_err(internal)?;
    let name = name.build();
    let mut b = x509::X509Builder::new().map_err(internal)?;
    b.set_version(2).map_err(internal)?;
    let serial = BigNum::from_slice(&rand::random::<[u8; 16]>()).and_then(|n| n.to_asn1_integer()).map_err(internal)?;
    b.set_serial_number(&serial).map_err(internal)?;
    b.set_subject_name(&name).map_err(internal)?;
    b.set_issuer_name(&name).map_err(internal)?;
    b.set_pubkey(&key).map_err(internal)?;
    b.set_not_before(Asn1Time::days_from_now(0).map_err(internal)?.as_ref()).map_err(internal)?;
    b.set_not_after(Asn1Time::days_from_now(3650).map_err(internal)?.as_ref()).map_err(internal)?;
    b.sign(&key, MessageDigest::sha256()).map_err(internal)?;
    let cert = b.build().to_der().map_err(internal)?;
    Ok((key.private_key_to_pem_pkcs8().map_err(internal)?, cert))
}

/// A certificate as an admin pastes it (PEM, or bare base64 DER) → base64 DER, with its expiry (Unix seconds).
pub fn parse_certificate(raw: &str) -> Result<(String, i64), String> {
    let body: String = raw
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = B64.decode(&body).map_err(|_| "is not a PEM or base64 certificate".to_string())?;
    let cert = openssl::x509::X509::from_der(&der).map_err(|_| "is not an X.509 certificate".to_string())?;
    Ok((B64.encode(&der), not_after(&cert)))
}

/// Expiry (Unix seconds) of a base64 DER certificate, for the console's warning.
pub fn certificate_expiry(b64_der: &str) -> Option<i64> {
    let der = B64.decode(b64_der).ok()?;
    openssl::x509::X509::from_der(&der).ok().map(|c| not_after(&c))
}

fn not_after(cert: &openssl::x509::X509) -> i64 {
    let epoch = openssl::asn1::Asn1Time::from_unix(0).ok();
    epoch.and_then(|e| e.diff(cert.not_after()).ok()).map(|d| d.days as i64 * 86_400 + d.secs as i64).unwrap_or(0)
}

/// What IdP metadata says: entity ID, the HTTP-Redirect SSO URL, the signing certificates (base64 DER).
pub struct IdpMetadata {
    pub entity_id: String,
    pub sso_url: String,
    pub certificates: Vec<String>,
}

/// Reads IdP metadata XML (an EntityDescriptor with an IDPSSODescriptor). The same no-DTD parse as responses.
pub fn parse_idp_metadata(xml: &str) -> Result<IdpMetadata, String> {
    if xml.len() > 512 * 1024 {
        return Err("The metadata is over 512 KB.".into());
    }
    let opts = roxmltree::ParsingOptions { allow_dtd: false, ..Default::default() };
    roxmltree::Document::parse_with_options(xml, opts).map_err(|e| format!("The metadata is not well-formed XML without a DTD: {e}."))?;
    let ed: EntityDescriptor = xml.parse().map_err(|_| "The metadata is not a SAML EntityDescriptor.".to_string())?;
    let entity_id = ed.entity_id.clone().filter(|e| !e.trim().is_empty()).ok_or("The metadata has no entityID.")?;
    let idp = ed.idp_sso_descriptors.as_ref().and_then(|d| d.first()).ok_or("The metadata has no IDPSSODescriptor: is it the IdP's metadata?")?;
    let sso_url = idp
        .single_sign_on_services
        .iter()
        .find(|s| s.binding == HTTP_REDIRECT_BINDING)
        .map(|s| s.location.clone())
        .ok_or("The IdP's metadata offers no HTTP-Redirect SingleSignOnService.")?;
    let signing = idp.key_descriptors.iter().filter(|k| k.key_use.as_deref().is_none_or(|u| u.is_empty() || u == "signing"));
    let mut certificates = Vec::new();
    for k in signing {
        for c in k.key_info.x509_data.iter().flat_map(|x| x.certificates.iter()) {
            certificates.push(parse_certificate(c).map_err(|e| format!("A signing certificate in the metadata {e}."))?.0);
        }
    }
    Ok(IdpMetadata { entity_id, sso_url, certificates })
}

/// The SP private key of a connection, parsed once per node: `sealed` is the key as stored, `open` unseals it to
/// PEM. Parsing a PEM key runs OpenSSL 3's decoder framework, which cost about as much CPU as the RSA decryption of
/// an encrypted assertion (profiled). Keyed by the connection and a digest of the sealed bytes, so a new key (a new
/// sealed value) is parsed again; at most `SP_KEYS_MAX` kept, then the cache starts over.
pub fn sp_private_key(connection_id: &str, sealed: &[u8], open: impl FnOnce() -> ServiceResult<Vec<u8>>) -> ServiceResult<PKey<Private>> {
    const SP_KEYS_MAX: usize = 1024;
    static SP_KEYS: std::sync::Mutex<Option<std::collections::HashMap<String, PKey<Private>>>> = std::sync::Mutex::new(None);
    let id = format!("{connection_id}:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(sealed)));
    if let Some(key) = SP_KEYS.lock().ok().and_then(|m| m.as_ref().and_then(|m| m.get(&id).cloned())) {
        return Ok(key);
    }
    let key = PKey::private_key_from_pem(&open()?).map_err(|e| ServiceError::internal("SP key", e))?;
    if let Ok(mut guard) = SP_KEYS.lock() {
        let map = guard.get_or_insert_with(Default::default);
        if map.len() >= SP_KEYS_MAX {
            map.clear();
        }
        map.insert(id, key.clone());
    }
    Ok(key)
}

/// samael's service provider for a connection, for its SP metadata and AuthnRequests (responses are verified by
/// `dsig` and `verify`). `key` is the SP private key when a request is signed.
fn service_provider(s: &SamlSettings, entity_id: &str, acs: &str, key: Option<PKey<Private>>) -> ServiceResult<ServiceProvider> {
    let key_descriptors = s
        .idp_certificates
        .iter()
        .map(|c| KeyDescriptor {
            key_use: Some("signing".into()),
            key_info: KeyInfo { id: None, x509_data: Some(X509Data { certificates: vec![c.clone()] }) },
            encryption_methods: None,
        })
        .collect();
    let idp = IdpSsoDescriptor {
        id: None,
        valid_until: None,
        cache_duration: None,
        protocol_support_enumeration: Some(guard::PROTOCOL_NS.into()),
        error_url: None,
        signature: None,
        key_descriptors,
        organization: None,
        contact_people: vec![],
        artifact_resolution_service: vec![],
        single_logout_services: vec![],
        manage_name_id_services: vec![],
        name_id_formats: vec![],
        want_authn_requests_signed: Some(true),
        single_sign_on_services: vec![Endpoint { binding: HTTP_REDIRECT_BINDING.into(), location: s.idp_sso_url.clone(), response_location: None }],
        name_id_mapping_services: vec![],
        assertion_id_request_services: vec![],
        attribute_profiles: vec![],
        attributes: vec![],
    };
    Ok(ServiceProvider {
        entity_id: Some(entity_id.to_string()),
        key,
        certificate: B64.decode(&s.sp_certificate).ok().map(CertificateDer::from),
        acs_url: Some(acs.to_string()),
        idp_metadata: EntityDescriptor { entity_id: Some(s.idp_entity_id.clone()), idp_sso_descriptors: Some(vec![idp]), ..Default::default() },
        ..Default::default()
    })
}

/// The SP metadata XML of a connection: entity ID, the ACS (HTTP-POST), signed AuthnRequests, signed assertions
/// wanted, the SP certificate for signing and for encryption, the NameID formats accepted.
pub fn sp_metadata(s: &SamlSettings, entity_id: &str, acs: &str) -> ServiceResult<String> {
    use samael::metadata::{EncryptionMethod, NameIdFormat};
    use samael::traits::ToXml;
    let sp = service_provider(s, entity_id, acs, None)?;
    let mut ed = sp.metadata().map_err(|e| ServiceError::internal("SP metadata", e))?;
    let key_info = KeyInfo { id: None, x509_data: Some(X509Data { certificates: vec![s.sp_certificate.clone()] }) };
    for d in ed.sp_sso_descriptors.iter_mut().flatten() {
        d.authn_requests_signed = Some(true);
        d.want_assertions_signed = Some(s.require_signed_assertion);
        d.single_logout_services = None;
        d.name_id_formats = Some(vec![NameIdFormat::EmailAddressNameIDFormat.value().into(), NameIdFormat::PersistentNameIDFormat.value().into()]);
        // What `xmlenc` decrypts, GCM first (an IdP that reads this picks authenticated encryption).
        let enc = [
            "http://www.w3.org/2009/xmlenc11#aes256-gcm",
            "http://www.w3.org/2009/xmlenc11#aes128-gcm",
            "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
            "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
            "http://www.w3.org/2009/xmlenc11#rsa-oaep",
            "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
        ];
        d.key_descriptors = Some(vec![
            KeyDescriptor { key_use: Some("signing".into()), key_info: key_info.clone(), encryption_methods: None },
            KeyDescriptor {
                key_use: Some("encryption".into()),
                key_info: key_info.clone(),
                encryption_methods: Some(enc.iter().map(|a| EncryptionMethod { algorithm: a.to_string() }).collect()),
            },
        ]);
    }
    ed.valid_until = None;
    for d in ed.sp_sso_descriptors.iter_mut().flatten() {
        d.valid_until = None;
    }
    ed.to_string().map_err(|e| ServiceError::internal("SP metadata XML", format!("{e:?}")))
}

/// A signed HTTP-Redirect AuthnRequest with our own 128-bit random ID. Returns (IdP URL with the query, request ID).
pub fn authn_request_url(s: &SamlSettings, entity_id: &str, acs: &str, key: PKey<Private>, relay_state: &str) -> ServiceResult<(String, String)> {
    let sp = service_provider(s, entity_id, acs, Some(key))?;
    let mut req = sp.make_authentication_request(&s.idp_sso_url).map_err(|e| ServiceError::internal("AuthnRequest", e))?;
    let id = format!("_{}", super::crypto::random_token(24).replace(['-', '_'], "0"));
    req.id = id.clone();
    let key = sp.key.as_ref().ok_or_else(|| ServiceError::internal("AuthnRequest", "no SP key"))?;
    let url = req
        .signed_redirect(relay_state, key)
        .map_err(|e| ServiceError::internal("AuthnRequest signature", e))?
        .ok_or_else(|| ServiceError::internal("AuthnRequest", "no destination"))?;
    Ok((url.to_string(), id))
}

/// Verifies a decoded Response (already through `guard::inspect`) for a connection. `request_id`: the AuthnRequest
/// it must answer (SP-initiated), or `None` for an unsolicited (IdP-initiated) response. `key` is the SP key, for
/// an encrypted assertion.
///
/// Signatures are checked by `dsig` (libxmlsec1); what is read afterwards comes from the bytes a verified signature
/// covered: the Response and its Assertion from the Response's signature when it has one, else the Assertion from
/// its own (and the Response's few fields from the unsigned envelope, which an attacker could forge anyway). An
/// encrypted Assertion is decrypted from those bytes (`decrypted`).
pub fn verify(s: &SamlSettings, entity_id: &str, acs: &str, key: Option<PKey<Private>>, xml: &str, request_id: Option<&str>) -> Result<Assertion, guard::Refusal> {
    let signed = dsig::verify(xml, &s.idp_certificates, s.allow_sha1, s.require_signed_assertion)?;
    // What is read is only what a verified signature covered: a signed Response's bytes (its Assertion inside,
    // whose own signature `dsig` may not have checked), else the signed Assertion's (the unsigned envelope's
    // fields are then only compared with what is expected), else the signed Assertion inside the ciphertext.
    let envelope = signed.response.as_deref().unwrap_or(xml);
    let (response_text, encrypted) = encrypted_part(envelope)?;
    let response = response_text.parse::<Response>().map_err(|e| malformed("Response", &e))?;
    if s.require_signed_assertion && signed.assertion.is_none() && encrypted.is_none() {
        return Err(("saml_assertion_unsigned", "the connection requires the Assertion itself to be signed".into()));
    }
    let rules = Rules::new(s, entity_id, acs, request_id);
    rules.response(&response, signed.response.is_some())?;
    let assertion = match (&signed.assertion, encrypted, response.assertion) {
        (Some(a), None, _) => a.parse::<Assertion>().map_err(|e| malformed("Assertion", &e))?,
        (None, Some(encrypted), None) => decrypted(s, key, &encrypted, signed.response.is_some())?,
        (None, None, Some(a)) if signed.response.is_some() => a,
        _ => return Err(("saml_malformed_response", "the response does not carry exactly one assertion".into())),
    };
    rules.assertion(&assertion)?;
    Ok(assertion)
}

fn malformed(what: &str, e: &dyn std::fmt::Display) -> guard::Refusal {
    ("saml_malformed_response", format!("the {what} is not a SAML {what}: {e}"))
}

/// The Response's text for samael without its EncryptedAssertion, and that EncryptedAssertion read by `xmlenc`
/// (`None` when there is none). samael reads only the envelope's own fields from it, and cannot read every
/// honest EncryptedAssertion (a `KeyInfo` in the default namespace, as ADFS writes it, fails its schema).
fn encrypted_part(envelope: &str) -> Result<(std::borrow::Cow<'_, str>, Option<xmlenc::Encrypted>), guard::Refusal> {
    if !envelope.contains("EncryptedAssertion") {
        return Ok((envelope.into(), None));
    }
    let doc = guard::parse(envelope, "response")?;
    let Some(wrapper) = xmlenc::wrapper_of(&doc.root_element()) else {
        return Ok((envelope.into(), None));
    };
    let range = wrapper.range();
    Ok((format!("{}{}", &envelope[..range.start], &envelope[range.end..]).into(), Some(xmlenc::read(&wrapper)?)))
}

/// The Assertion inside `encrypted`, read from a verified Response's bytes when `response_signed`, else from the
/// Response as received. Inside a signed Response the ciphertext is the IdP's, so AES-CBC is accepted
/// and the Assertion's own signature is checked only where the connection requires it; in an unsigned one only
/// AES-GCM is decrypted (`xmlenc::Mode`) and the decrypted Assertion must carry a signature that verifies, and only
/// what it covered is read. The plaintext passes the guard's rules first (no DTD, one Assertion, plain signature).
fn decrypted(s: &SamlSettings, key: Option<PKey<Private>>, encrypted: &xmlenc::Encrypted, response_signed: bool) -> Result<Assertion, guard::Refusal> {
    let key = key.ok_or(("saml_decryption_failed", "the connection has no SP key to decrypt with".to_string()))?;
    let mode = if response_signed { xmlenc::Mode::Covered } else { xmlenc::Mode::AuthenticatedOnly };
    let plain = encrypted.decrypt(&key, mode)?;
    let in_context = encrypted.in_context(&plain);
    if guard::inspect_assertion(&in_context)? && !s.allow_sha1 {
        return Err(("saml_sha1_refused", "the IdP signed the encrypted assertion with SHA-1, which this connection does not allow".into()));
    }
    if response_signed && !s.require_signed_assertion {
        return plain.parse::<Assertion>().map_err(|e| malformed("Assertion", &e));
    }
    match dsig::verify_assertion(&in_context, &s.idp_certificates, s.allow_sha1)? {
        Some(covered) => covered.parse::<Assertion>().map_err(|e| malformed("Assertion", &e)),
        None if response_signed => Err(("saml_assertion_unsigned", "the connection requires the Assertion itself to be signed, and the decrypted assertion is not".into())),
        None => Err(("saml_signature_invalid", "neither the Response nor the encrypted Assertion is signed".into())),
    }
}

/// The checks on the verified content of a Response, with their codes.
struct Rules<'a> {
    idp: &'a str,
    entity_id: &'a str,
    acs: &'a str,
    request_id: Option<&'a str>,
    skew: chrono::Duration,
    /// How long after its IssueInstant a message is accepted.
    max_age: chrono::Duration,
    now: chrono::DateTime<chrono::Utc>,
}

impl<'a> Rules<'a> {
    fn new(s: &'a SamlSettings, entity_id: &'a str, acs: &'a str, request_id: Option<&'a str>) -> Self {
        let skew = s.clock_skew_secs.clamp(0, MAX_CLOCK_SKEW_SECS);
        Rules {
            idp: &s.idp_entity_id,
            entity_id,
            acs,
            request_id,
            skew: chrono::Duration::seconds(skew),
            max_age: chrono::Duration::seconds(180 + skew),
            now: chrono::Utc::now(),
        }
    }

    fn issued(&self, what: &str, at: chrono::DateTime<chrono::Utc>) -> Result<(), guard::Refusal> {
        if at + self.max_age < self.now {
            return Err(("saml_expired", format!("the {what} was issued at {at}, too long ago")));
        }
        if at > self.now + self.skew {
            return Err(("saml_not_yet_valid", format!("the {what} was issued in the future ({at})")));
        }
        Ok(())
    }

    fn window(&self, what: &str, not_before: Option<chrono::DateTime<chrono::Utc>>, not_on_or_after: Option<chrono::DateTime<chrono::Utc>>) -> Result<(), guard::Refusal> {
        if let Some(t) = not_before.filter(|t| self.now < *t - self.skew) {
            return Err(("saml_not_yet_valid", format!("the {what} is valid from {t}")));
        }
        if let Some(t) = not_on_or_after.filter(|t| *t + self.skew <= self.now) {
            return Err(("saml_expired", format!("the {what} was valid until {t}")));
        }
        Ok(())
    }

    /// Destination (required on a signed Response), InResponseTo, IssueInstant, Issuer, Status.
    fn response(&self, r: &Response, signed: bool) -> Result<(), guard::Refusal> {
        if (signed || r.destination.is_some()) && r.destination.as_deref() != Some(self.acs) {
            return Err(("saml_destination_mismatch", format!("the Destination is {:?}, not {}", r.destination, self.acs)));
        }
        if r.in_response_to.as_deref() != self.request_id {
            return Err(("saml_in_response_to_invalid", format!("the response answers {:?}, not {:?}", r.in_response_to, self.request_id)));
        }
        self.issued("response", r.issue_instant)?;
        if let Some(issuer) = r.issuer.as_ref().filter(|i| i.value.as_deref() != Some(self.idp)) {
            return Err(("saml_issuer_mismatch", format!("the response's Issuer is {:?}, not {:?}", issuer.value, self.idp)));
        }
        let status = r.status.as_ref().and_then(|s| s.status_code.value.as_deref());
        if status.is_some_and(|v| v != "urn:oasis:names:tc:SAML:2.0:status:Success") {
            return Err(("saml_status_not_success", format!("the IdP answered {status:?}")));
        }
        Ok(())
    }

    /// IssueInstant, Issuer, the Conditions window, every AudienceRestriction naming us, and a bearer
    /// SubjectConfirmation for our ACS, within its window, answering our request (none for an unsolicited one).
    fn assertion(&self, a: &Assertion) -> Result<(), guard::Refusal> {
        self.issued("assertion", a.issue_instant)?;
        if a.issuer.value.as_deref() != Some(self.idp) {
            return Err(("saml_issuer_mismatch", format!("the assertion's Issuer is {:?}, not {:?}", a.issuer.value, self.idp)));
        }
        let conditions = a.conditions.as_ref();
        self.window("assertion's Conditions", conditions.and_then(|c| c.not_before), conditions.and_then(|c| c.not_on_or_after))?;
        let restrictions = conditions.and_then(|c| c.audience_restrictions.as_deref()).unwrap_or_default();
        if restrictions.is_empty() || !restrictions.iter().all(|r| r.audience.iter().any(|x| x == self.entity_id)) {
            let audiences: Vec<&String> = restrictions.iter().flat_map(|r| r.audience.iter()).collect();
            return Err(("saml_audience_mismatch", format!("the assertion's audiences {audiences:?} do not all include {}", self.entity_id)));
        }
        let bearer = a
            .subject
            .iter()
            .flat_map(|s| s.subject_confirmations.iter().flatten())
            .filter(|c| c.method.as_deref() == Some("urn:oasis:names:tc:SAML:2.0:cm:bearer"));
        let mut first = None;
        for c in bearer {
            let Some(d) = c.subject_confirmation_data.as_ref() else { continue };
            let result = if d.not_on_or_after.is_none() {
                Err(("saml_subject_confirmation_invalid", "the bearer confirmation has no NotOnOrAfter".to_string()))
            } else if d.recipient.as_deref() != Some(self.acs) {
                Err(("saml_recipient_mismatch", format!("the Recipient is {:?}, not {}", d.recipient, self.acs)))
            } else if d.in_response_to.as_deref() != self.request_id {
                Err(("saml_in_response_to_invalid", format!("the confirmation answers {:?}, not {:?}", d.in_response_to, self.request_id)))
            } else {
                self.window("bearer confirmation", d.not_before, d.not_on_or_after)
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        Err(first.unwrap_or(("saml_subject_confirmation_invalid", "the assertion has no bearer SubjectConfirmation with data".into())))
    }
}

/// Attribute names tried for each field, in order, when the connection's mapping names none (Okta, Entra ID,
/// Google Workspace, ADFS and LDAP-style names). Matched case-insensitively on Name or FriendlyName.
pub const DEFAULT_ATTRIBUTES: [(&str, &[&str]); 4] = [
    ("email", &["email", "mail", "emailaddress", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", "urn:oid:0.9.2342.19200300.100.1.3", "user.email"]),
    ("firstName", &["firstName", "givenName", "given_name", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", "urn:oid:2.5.4.42"]),
    ("lastName", &["lastName", "sn", "surname", "family_name", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname", "urn:oid:2.5.4.4"]),
    ("groups", &["groups", "memberOf", "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups", "http://schemas.xmlsoap.org/claims/Group"]),
];

/// The values of the first attribute that answers to `field` (the connection's own name for it first).
pub fn attribute_values(a: &Assertion, mapping: &serde_json::Value, field: &str) -> Vec<String> {
    let own = mapping.get(field).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
    let defaults = DEFAULT_ATTRIBUTES.iter().find(|(f, _)| *f == field).map(|(_, names)| *names).unwrap_or(&[]);
    let attrs: Vec<_> = a.attribute_statements.iter().flatten().flat_map(|s| s.attributes.iter()).collect();
    for name in own.into_iter().chain(defaults.iter().copied()) {
        let hit = attrs.iter().find(|at| {
            at.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)) || at.friendly_name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name))
        });
        if let Some(at) = hit {
            return at.values.iter().filter_map(|v| v.value.as_ref()).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SP key is parsed once per sealed value: the same sealed bytes never unseal again, a new key (new sealed
    /// bytes, as a key rotation writes) is parsed anew, and the same bytes at another connection are another key.
    #[test]
    fn sp_keys_are_parsed_once_per_sealed_value() {
        let (pem_a, _) = new_sp_keypair("https://sso.test/a").unwrap();
        let (pem_b, _) = new_sp_keypair("https://sso.test/b").unwrap();
        let opened = std::cell::Cell::new(0);
        let open = |pem: &[u8]| {
            opened.set(opened.get() + 1);
            Ok(pem.to_vec())
        };
        let pub_of = |k: PKey<Private>| k.public_key_to_der().unwrap();
        let a1 = sp_private_key("conn-1", b"sealed-a", || open(&pem_a)).unwrap();
        let a2 = sp_private_key("conn-1", b"sealed-a", || open(&pem_b)).unwrap();
        assert_eq!(opened.get(), 1, "the second use did not unseal or parse");
        assert_eq!(pub_of(a1), pub_of(a2.clone()));
        let b = sp_private_key("conn-1", b"sealed-b", || open(&pem_b)).unwrap();
        assert_eq!(opened.get(), 2);
        assert_ne!(pub_of(a2), pub_of(b));
        sp_private_key("conn-2", b"sealed-a", || open(&pem_b)).unwrap();
        assert_eq!(opened.get(), 3, "another connection's key is its own");
        assert!(sp_private_key("conn-3", b"x", || Ok(b"not a key".to_vec())).is_err());
    }
}
