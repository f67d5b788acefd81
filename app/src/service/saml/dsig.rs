//! XML signature verification of a Response by libxmlsec1 (through the `xmlsec` crate), against the connection's
//! pinned IdP certificates only (a KeyInfo inside the message is never read: the key is set on the context).
//!
//! - Each certificate becomes an xmlsec key once per thread and is lent to every verification on that thread.
//!   Loading one runs OpenSSL 3's decoder framework: done per signature (two per Response) it was a quarter of a
//!   signed ACS's CPU (profiled).
//! - Only the signatures the guard allows are looked at: the root Response's and its one Assertion's. Each must
//!   verify with one of the certificates. xmlsec is also told to accept nothing else: same-document references
//!   only, and only the transforms and algorithms of the guard's list (defence in depth, should the two disagree).
//! - What comes back for each is xmlsec's pre-digest buffer: the exact canonical bytes its one Reference digested,
//!   which is what the caller parses (never the document around them: no signature wrapping).
use super::guard::Refusal;
use base64::Engine;
use libxml::parser::{Parser, ParserOptions};
use libxml::tree::{Document, Node};
use std::cell::RefCell;
use std::collections::HashMap;
use xmlsec::{bindings as b, XmlSecKey, XmlSecKeyFormat, XmlSecSignatureContext};

const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Certificates kept loaded per thread; past that the cache starts over.
const KEYS_PER_THREAD: usize = 64;

thread_local! {
    /// Base64 DER certificate → its xmlsec key. A key is taken out while a context borrows it, then put back.
    static KEYS: RefCell<HashMap<String, XmlSecKey>> = RefCell::new(HashMap::new());
}

/// The canonical bytes each verified signature covered.
#[derive(Debug, Default)]
pub struct Signed {
    /// The Response (its own Signature removed by the enveloped transform), when the Response is signed.
    pub response: Option<String>,
    /// The Assertion, when its own signature was verified: when the Response is not signed, or the caller asked
    /// for it (`assertion_signature`). `None` does not mean the Assertion is unsigned: inside a verified Response
    /// its signature is not looked at.
    pub assertion: Option<String>,
}

fn invalid<T>(detail: impl Into<String>) -> Result<T, Refusal> {
    Err(("saml_signature_invalid", detail.into()))
}

/// Verifies the signatures of `xml` (a Response that passed `guard::inspect`) with `certificates` (base64 DER).
///
/// A verified Response signature covers the Assertion inside it (only the Response's own Signature is taken out
/// by the enveloped transform), and the caller reads the Assertion from what that signature covered. So the
/// Assertion's own signature is verified too only when `assertion_signature` asks for it (a connection that
/// requires the Assertion signed), or when the Response is not signed. Skipping it refuses nothing but responses
/// only the IdP could have made, and saves a second canonicalization and RSA check: 13% of a signed ACS's CPU,
/// measured.
pub fn verify(xml: &str, certificates: &[String], allow_sha1: bool, assertion_signature: bool) -> Result<Signed, Refusal> {
    let (doc, root) = parse(xml, certificates, "response")?;
    register_ids(&doc, &root);
    let mut out = Signed::default();
    if let Some(sig) = signature_of(&root) {
        out.response = Some(verify_one(&root, &sig, certificates, allow_sha1)?);
    }
    if out.response.is_none() || assertion_signature {
        let assertion = root.get_child_elements().into_iter().find(|n| n.get_name() == "Assertion" && ns_of(n) == super::guard::ASSERTION_NS);
        if let Some((a, sig)) = assertion.as_ref().and_then(|a| signature_of(a).map(|s| (a, s))) {
            out.assertion = Some(verify_one(a, &sig, certificates, allow_sha1)?);
        }
    }
    // An EncryptedAssertion may carry the only signature inside its ciphertext: `saml::verify` requires it there.
    let encrypted = root.get_child_elements().iter().any(|n| n.get_name() == "EncryptedAssertion" && ns_of(n) == super::guard::ASSERTION_NS);
    if out.response.is_none() && out.assertion.is_none() && !encrypted {
        return invalid("neither the Response nor the Assertion is signed");
    }
    Ok(out)
}

/// Verifies the signature of a decrypted Assertion (`xml`: the plaintext in its context element, which passed
/// `guard::inspect_assertion`) with `certificates`; returns what it covered, or `None` when it carries none.
pub fn verify_assertion(xml: &str, certificates: &[String], allow_sha1: bool) -> Result<Option<String>, Refusal> {
    let (doc, root) = parse(xml, certificates, "decrypted assertion")?;
    let assertion = root.get_first_element_child().ok_or(("saml_malformed_response", "the decrypted content holds no element".to_string()))?;
    register_ids(&doc, &root);
    signature_of(&assertion).map(|sig| verify_one(&assertion, &sig, certificates, allow_sha1)).transpose()
}

/// Refuses when there is no certificate to verify with (fail closed), then parses `xml` with libxml2: the document
/// and its root element.
fn parse(xml: &str, certificates: &[String], what: &str) -> Result<(Document, Node), Refusal> {
    if certificates.is_empty() {
        return Err(("saml_no_idp_certificate", "the connection has no IdP signing certificate: every response is refused".into()));
    }
    init();
    // The declared encoding is ignored: the guard read the text as UTF-8, and a second reading must not differ.
    // (No explicit `encoding`: libxml 0.3.3 hands libxml2 a pointer to a CString it has already dropped, which
    // intermittently decoded a genuine response differently and failed its digest.)
    let opts = ParserOptions { recover: false, no_net: true, ignore_enc: true, ..ParserOptions::default() };
    let doc = Parser::default().parse_string_with_options(xml, opts).map_err(|e| ("saml_malformed_response", format!("libxml2 could not parse the {what}: {e:?}")))?;
    let root = doc.get_root_element().ok_or(("saml_malformed_response", format!("the {what} has no root element")))?;
    Ok((doc, root))
}

/// libxml2's and libxmlsec1's globals, set up once before any thread parses or verifies. libxml2 2.9 asks for
/// `xmlInitParser` before use from several threads (its lazy set-up is not thread-safe), and the first ACS requests
/// of a process can arrive together; xmlsec's own initialisation is serialised, a parse on another thread is not.
fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: called once, before any other libxml2 use by this module.
        unsafe { b::xmlInitParser() };
        // The xmlsec crate runs xmlSecInit / xmlSecOpenSSLAppInit / xmlSecOpenSSLInit once, on its first context.
        drop(XmlSecSignatureContext::new());
    });
}

fn ns_of(n: &Node) -> String {
    n.get_namespace().map(|ns| ns.get_href()).unwrap_or_default()
}

/// The `ds:Signature` child of `parent`, if any (the guard allowed at most one).
fn signature_of(parent: &Node) -> Option<Node> {
    parent.get_child_elements().into_iter().find(|n| n.get_name() == "Signature" && ns_of(n) == DSIG_NS)
}

/// Tells libxml2 which attributes are IDs (SAML's `ID`), so `#id` references resolve. The guard refused duplicates.
fn register_ids(doc: &Document, root: &Node) {
    let mut names = [c"ID".as_ptr() as *const u8, std::ptr::null()];
    // SAFETY: the document and root are alive for the call; the list is NULL-terminated and outlives it.
    unsafe { b::xmlSecAddIDs(doc.doc_ptr() as b::xmlDocPtr, root.node_ptr() as b::xmlNodePtr, names.as_mut_ptr()) };
}

/// Verifies `sig`, the signature of `parent`, with each certificate in turn; returns what its Reference digested.
fn verify_one(parent: &Node, sig: &Node, certificates: &[String], allow_sha1: bool) -> Result<String, Refusal> {
    let id = parent.get_attribute("ID").unwrap_or_default();
    if !super::guard::is_simple_id(&id) {
        return invalid("the signed element has no plain ID");
    }
    let expected_uri = format!("#{id}");
    // The canonical form starts with the element's own name (exclusive c14n keeps the prefix).
    let qname = match parent.get_namespace().map(|ns| ns.get_prefix()).filter(|p| !p.is_empty()) {
        Some(prefix) => format!("<{prefix}:{}", parent.get_name()),
        None => format!("<{}", parent.get_name()),
    };
    plain_references(sig, &expected_uri)?;
    let mut loaded = false;
    for cert in certificates {
        // A certificate xmlsec cannot load (an algorithm it lacks) must not keep a rollover's good one from working.
        let Some(key) = KEYS.with(|k| k.borrow_mut().remove(cert)).or_else(|| load(cert)) else { continue };
        loaded = true;
        let mut ctx = XmlSecSignatureContext::new();
        restrict(&ctx, allow_sha1)?;
        ctx.insert_key(key);
        let verified = ctx.verify_node(sig);
        if let Some(key) = ctx.release_key() {
            KEYS.with(|k| {
                let mut k = k.borrow_mut();
                if k.len() >= KEYS_PER_THREAD {
                    k.clear();
                }
                k.insert(cert.clone(), key);
            });
        }
        match verified {
            Ok(true) => {
                let covered = predigest(&ctx, &expected_uri)?;
                let rest = covered.strip_prefix(&qname).unwrap_or("?");
                if !rest.starts_with([' ', '>', '/']) {
                    return invalid("what the signature covered is not the element that carries it");
                }
                return Ok(covered);
            }
            // The digest does not depend on the key: content that does not match it fails with every certificate.
            _ if digest_failed(&ctx) => return invalid("the signed content was changed after signing (digest mismatch)"),
            // A wrong key and a broken message look the same to xmlsec: try the next certificate.
            Ok(false) | Err(_) => continue,
        }
    }
    if !loaded {
        return Err(("server_error", "xmlsec could not load any of the connection's IdP certificates".into()));
    }
    invalid("no signature verifies with the connection's IdP certificates")
}

/// The guard's signature rules again, on libxml2's reading of the document (the two parsers could disagree on a
/// namespace), before xmlsec runs anything: one Reference, to `expected_uri`, and only the transforms `restrict`
/// lets xmlsec run. xmlsec evaluates a Reference (an XPointer, say) before it checks the signature value.
fn plain_references(sig: &Node, expected_uri: &str) -> Result<(), Refusal> {
    let dsig = |n: &Node, name: &str| n.get_name() == name && ns_of(n) == DSIG_NS;
    let signed_info = sig.get_child_elements().into_iter().find(|n| dsig(n, "SignedInfo"));
    let references: Vec<Node> = signed_info.iter().flat_map(|i| i.get_child_elements()).filter(|n| dsig(n, "Reference")).collect();
    let [reference] = references.as_slice() else { return invalid("a signature does not have exactly one Reference") };
    if reference.get_attribute("URI").as_deref() != Some(expected_uri) {
        return invalid("a signature's Reference is not to its own element");
    }
    let transforms = reference.get_child_elements().into_iter().filter(|n| dsig(n, "Transforms")).flat_map(|t| t.get_child_elements());
    for t in transforms {
        let alg = t.get_attribute("Algorithm").unwrap_or_default();
        if !dsig(&t, "Transform") || !super::guard::ALLOWED_TRANSFORMS.contains(&alg.as_str()) {
            return invalid("a signature's Reference has a transform other than enveloped-signature and exclusive c14n");
        }
    }
    Ok(())
}

/// The Reference contexts xmlsec kept for the last verification (`STORE_SIGNEDINFO_REFERENCES`). They belong to
/// the context: use them only while it is alive.
fn references(ctx: &XmlSecSignatureContext) -> Vec<b::xmlSecDSigReferenceCtxPtr> {
    // SAFETY: the context is alive; its reference list holds items it owns.
    unsafe {
        let list = std::ptr::addr_of_mut!((*ctx.as_ptr()).signedInfoReferences);
        (0..b::xmlSecPtrListGetSize(list)).map(|i| b::xmlSecPtrListGetItem(list, i) as b::xmlSecDSigReferenceCtxPtr).filter(|r| !r.is_null()).collect()
    }
}

/// Whether a Reference was digested and did not match (xmlsec checks references before the signature value).
fn digest_failed(ctx: &XmlSecSignatureContext) -> bool {
    // SAFETY: `references` of a live context.
    references(ctx).into_iter().any(|r| unsafe { (*r).status } == b::xmlSecDSigStatus_xmlSecDSigStatusInvalid)
}

/// The xmlsec key of a base64 DER certificate, or `None` (logged) when xmlsec cannot load it. Never with a password:
/// xmlsec 0.2.3 hands xmlsec a pointer to a password string it has already dropped.
fn load(cert: &str) -> Option<XmlSecKey> {
    let der = base64::engine::general_purpose::STANDARD.decode(cert).ok()?;
    match XmlSecKey::from_memory(&der, XmlSecKeyFormat::CertDer, None) {
        Ok(key) => Some(key),
        Err(e) => {
            tracing::warn!(error = ?e, "xmlsec could not load an IdP certificate");
            None
        }
    }
}

/// Same-document references, exclusive c14n, the enveloped-signature transform, and SHA-2 RSA / ECDSA (SHA-1 only
/// where the connection allows it): xmlsec refuses anything else before it runs it.
fn restrict(ctx: &XmlSecSignatureContext, allow_sha1: bool) -> Result<(), Refusal> {
    // SAFETY: the context is alive and not yet used; the transform klasses are static data of libxmlsec1.
    unsafe {
        let c = ctx.as_ptr();
        (*c).flags |= b::XMLSEC_DSIG_FLAGS_STORE_SIGNEDINFO_REFERENCES | b::XMLSEC_DSIG_FLAGS_IGNORE_MANIFESTS;
        (*c).enabledReferenceUris = b::xmlSecTransformUriTypeSameDocument;
        let mut signature: Vec<b::xmlSecTransformId> = vec![
            b::xmlSecTransformExclC14NGetKlass(),
            b::xmlSecOpenSSLTransformRsaSha256GetKlass(),
            b::xmlSecOpenSSLTransformRsaSha384GetKlass(),
            b::xmlSecOpenSSLTransformRsaSha512GetKlass(),
            b::xmlSecOpenSSLTransformEcdsaSha256GetKlass(),
            b::xmlSecOpenSSLTransformEcdsaSha384GetKlass(),
            b::xmlSecOpenSSLTransformEcdsaSha512GetKlass(),
        ];
        let mut reference: Vec<b::xmlSecTransformId> = vec![
            b::xmlSecTransformExclC14NGetKlass(),
            b::xmlSecTransformEnvelopedGetKlass(),
            b::xmlSecOpenSSLTransformSha256GetKlass(),
            b::xmlSecOpenSSLTransformSha384GetKlass(),
            b::xmlSecOpenSSLTransformSha512GetKlass(),
        ];
        if allow_sha1 {
            signature.push(b::xmlSecOpenSSLTransformRsaSha1GetKlass());
            reference.push(b::xmlSecOpenSSLTransformSha1GetKlass());
        }
        for id in signature {
            if b::xmlSecDSigCtxEnableSignatureTransform(c, id) < 0 {
                return Err(("server_error", "xmlsec refused a signature transform".into()));
            }
        }
        for id in reference {
            if b::xmlSecDSigCtxEnableReferenceTransform(c, id) < 0 {
                return Err(("server_error", "xmlsec refused a reference transform".into()));
            }
        }
    }
    Ok(())
}

/// The pre-digest bytes of the one Reference of a verified signature, which must point at `expected_uri`.
fn predigest(ctx: &XmlSecSignatureContext, expected_uri: &str) -> Result<String, Refusal> {
    let [r] = references(ctx)[..] else {
        return invalid("a verified signature does not have exactly one Reference");
    };
    // SAFETY: `r` belongs to the live context, which is dropped after this function copies what it needs.
    unsafe {
        if (*r).status != b::xmlSecDSigStatus_xmlSecDSigStatusSucceeded {
            return invalid("the Reference of a signature did not verify");
        }
        let uri = if (*r).uri.is_null() { "" } else { std::ffi::CStr::from_ptr((*r).uri as *const std::ffi::c_char).to_str().unwrap_or("") };
        if uri != expected_uri {
            return invalid("a signature's Reference is not to its own element");
        }
        let buf = b::xmlSecDSigReferenceCtxGetPreDigestBuffer(r);
        if buf.is_null() {
            return invalid("xmlsec kept no pre-digest bytes");
        }
        let (data, size) = (b::xmlSecBufferGetData(buf), b::xmlSecBufferGetSize(buf) as usize);
        if data.is_null() || size == 0 {
            return invalid("the signed content is empty");
        }
        String::from_utf8(std::slice::from_raw_parts(data, size).to_vec()).map_err(|_| ("saml_signature_invalid", "the signed content is not UTF-8".to_string()))
    }
}

#[cfg(test)]
mod tests {
    //! Signatures made here with libxmlsec1 itself over a template, checked by `verify` directly (the pysaml2
    //! corpus in tests/api/saml.rs covers the whole ACS, guard first).
    use super::*;

    const SHA256: (&str, &str) = ("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "http://www.w3.org/2001/04/xmlenc#sha256");
    const SHA1: (&str, &str) = ("http://www.w3.org/2000/09/xmldsig#rsa-sha1", "http://www.w3.org/2000/09/xmldsig#sha1");

    /// A Response with the given ID, signed (enveloped, exclusive c14n) by a new key pair; returns the XML and the
    /// signer's certificate (base64 DER).
    fn signed_response((sig_alg, digest_alg): (&str, &str), reference: &str) -> (String, String) {
        let template = format!(
            r##"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0"><saml:Issuer>https://idp.test</saml:Issuer><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="{sig_alg}"/><ds:Reference URI="{reference}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="{digest_alg}"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/></ds:Signature><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:Response>"##
        );
        let (pem, cert) = super::super::new_sp_keypair("https://idp.test").unwrap();
        let doc = Parser::default().parse_string(&template).unwrap();
        let root = doc.get_root_element().unwrap();
        register_ids(&doc, &root);
        let mut ctx = XmlSecSignatureContext::new();
        ctx.insert_key(XmlSecKey::from_memory(&pem, XmlSecKeyFormat::Pem, None).unwrap());
        ctx.sign_node(&signature_of(&root).unwrap()).unwrap();
        (doc.to_string(), base64::engine::general_purpose::STANDARD.encode(cert))
    }

    fn cached() -> usize {
        KEYS.with(|k| k.borrow().len())
    }

    #[test]
    fn a_signed_response_gives_back_exactly_what_was_signed_and_its_key_is_loaded_once() {
        let (xml, cert) = signed_response(SHA256, "#_r1");
        let before = cached();
        let signed = verify(&xml, std::slice::from_ref(&cert), false, false).unwrap();
        let covered = signed.response.expect("the Response's signature verified");
        assert!(covered.starts_with("<samlp:Response ") && covered.contains(">https://idp.test</saml:Issuer>"), "{covered}");
        assert!(!covered.contains("Signature"), "the enveloped signature is not part of what it signed: {covered}");
        assert!(signed.assertion.is_none());
        assert_eq!(cached(), before + 1);
        verify(&xml, std::slice::from_ref(&cert), false, false).unwrap();
        assert_eq!(cached(), before + 1, "the second verification borrowed the same key");
    }

    #[test]
    fn tampering_another_key_or_no_certificate_is_refused() {
        let (xml, cert) = signed_response(SHA256, "#_r1");
        let (_, other) = signed_response(SHA256, "#_r1");
        let tampered = xml.replace("https://idp.test</saml:Issuer>", "https://evil.test</saml:Issuer>");
        assert_eq!(verify(&tampered, std::slice::from_ref(&cert), false, false).unwrap_err().0, "saml_signature_invalid");
        assert_eq!(verify(&xml, std::slice::from_ref(&other), false, false).unwrap_err().0, "saml_signature_invalid");
        assert_eq!(verify(&xml, &[], false, false).unwrap_err().0, "saml_no_idp_certificate");
        // A rollover: the old certificate first, then the new one that signed; one xmlsec cannot load is skipped.
        assert!(verify(&xml, &[other, cert.clone()], false, false).unwrap().response.is_some());
        let unloadable = base64::engine::general_purpose::STANDARD.encode(b"not a certificate");
        assert!(verify(&xml, &[unloadable.clone(), cert], false, false).unwrap().response.is_some());
        assert_eq!(verify(&xml, &[unloadable], false, false).unwrap_err().0, "server_error");
    }

    #[test]
    fn xmlsec_itself_refuses_sha1_unless_allowed_and_references_elsewhere() {
        // The guard refuses these first; this checks the second line of defence on its own.
        let (xml, cert) = signed_response(SHA1, "#_r1");
        assert_eq!(verify(&xml, std::slice::from_ref(&cert), false, false).unwrap_err().0, "saml_signature_invalid");
        assert!(verify(&xml, std::slice::from_ref(&cert), true, false).unwrap().response.is_some());
        // A whole-document reference (URI=""): not a same-document `#id` reference, and not to the Response's ID.
        let (xml, cert) = signed_response(SHA256, "");
        assert_eq!(verify(&xml, std::slice::from_ref(&cert), false, false).unwrap_err().0, "saml_signature_invalid");
    }

    /// The first verifications in a process, on several threads at once (nothing here touched libxml2 or xmlsec
    /// before): every one verifies. The fixture is a `signed_response(SHA256, "#_r1")` and its certificate.
    #[test]
    fn the_first_verifications_of_a_process_can_run_at_once() {
        let xml = include_str!("testdata/signed-response.xml");
        let cert = include_str!("testdata/signed-response.cert").trim();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    verify(xml, &[cert.to_string()], false, false).map(|s| s.response.is_some())
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), Ok(true));
        }
    }

    #[test]
    fn threads_verifying_at_once_each_get_the_same_answer() {
        let (xml, cert) = signed_response(SHA256, "#_r1");
        for round in 0..20 {
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let (xml, cert, barrier) = (xml.clone(), cert.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        verify(&xml, &[cert], false, false).map(|s| s.response.is_some())
                    })
                })
                .collect();
            for t in threads {
                assert_eq!(t.join().unwrap(), Ok(true), "round {round}");
            }
        }
    }

    #[test]
    fn an_unsigned_response_is_refused() {
        let (xml, cert) = signed_response(SHA256, "#_r1");
        let start = xml.find("<ds:Signature").unwrap();
        let end = xml.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
        let unsigned = format!("{}{}", &xml[..start], &xml[end..]);
        assert_eq!(verify(&unsigned, &[cert], false, false).unwrap_err().0, "saml_signature_invalid");
    }
}
