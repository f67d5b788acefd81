//! The first look at a SAML Response, before any signature work: a strict, well-formed parse (roxmltree: no DTD,
//! so no entities, XXE or billion laughs) and structural rules that leave libxmlsec nothing dangerous to do and
//! no second reading to disagree with. Nothing read here is trusted for identity: it only picks the connection
//! whose pinned certificates then verify the message, and refuses what no honest IdP sends.
//!
//! Refused here:
//! - anything but one `samlp:Response` root; comments and processing instructions anywhere (they make the
//!   canonicalizer and the parser read different values: the ruby-saml / xml-crypto bypasses of 2024-2026);
//! - more than one Assertion or EncryptedAssertion, or one that is not a direct child of the Response;
//! - duplicate ID values (libxml2 resolves `#id` to the first, a wrapper could be the second);
//! - a `ds:Signature` that is not a direct child of the Response or Assertion, does not have exactly one
//!   Reference, or whose Reference is not `#<its parent's ID>`; any transform other than enveloped-signature
//!   and exclusive c14n (no XPath, XSLT, external URIs: xmlsec would fetch them before checking the signature);
//!   `ds:Object` and `ds:Manifest`;
//!
//! SHA-1 signatures or digests are reported (`uses_sha1`); the caller refuses them unless the connection allows.
use roxmltree::{Document, Node, NodeType, ParsingOptions};
use std::collections::HashSet;

pub const PROTOCOL_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Largest decoded Response accepted (real ones are a few KB; encrypted with many groups, tens).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

pub const ALLOWED_TRANSFORMS: [&str; 2] = ["http://www.w3.org/2000/09/xmldsig#enveloped-signature", "http://www.w3.org/2001/10/xml-exc-c14n#"];
const SHA1_ALGS: [&str; 2] = ["http://www.w3.org/2000/09/xmldsig#rsa-sha1", "http://www.w3.org/2000/09/xmldsig#sha1"];
/// Signature and digest algorithms accepted at all (SHA-1 additionally only where the connection allows it).
const SIGNATURE_ALGS: [&str; 6] = [
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
];
const DIGEST_ALGS: [&str; 3] =
    ["http://www.w3.org/2001/04/xmlenc#sha256", "http://www.w3.org/2001/04/xmldsig-more#sha384", "http://www.w3.org/2001/04/xmlenc#sha512"];
/// An `InclusiveNamespaces PrefixList` longer than this is refused (each prefix costs canonicalization work).
const MAX_PREFIX_LIST: usize = 256;

/// At most this much of a value from the message goes into a refusal's detail (audit log, server log).
fn clip(v: &str) -> String {
    let mut out: String = v.chars().take(120).collect();
    if out.len() < v.len() {
        out.push('…');
    }
    format!("{out:?}")
}

/// An ID every IdP uses (a letter or `_`, then letters, digits, `.`, `_`, `-`; at most 256): a subset of NCName
/// with nothing an XPointer expression could be built from.
pub fn is_simple_id(v: &str) -> bool {
    let mut chars = v.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && v.len() <= 256
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// What the unverified message says, for routing only.
#[derive(Debug, Default)]
pub struct Unverified {
    pub in_response_to: Option<String>,
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
    pub encrypted: bool,
    /// The EncryptedAssertion's content is AES-GCM (authenticated), not CBC.
    pub encrypted_gcm: bool,
    pub response_signed: bool,
    pub assertion_signed: bool,
    pub status_success: bool,
    pub uses_sha1: bool,
}

/// A refusal: the stable code and a detail for the audit log.
pub type Refusal = (&'static str, String);

fn refuse<T>(code: &'static str, detail: impl Into<String>) -> Result<T, Refusal> {
    Err((code, detail.into()))
}

fn is(n: &Node, ns: &str, name: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(ns) && n.tag_name().name() == name
}

/// Refuses what is too large or carries a DTD, then parses without one.
pub(super) fn parse<'a>(xml: &'a str, what: &str) -> Result<Document<'a>, Refusal> {
    if xml.len() > MAX_RESPONSE_BYTES {
        return refuse("saml_malformed_response", format!("the {what} is {} bytes, over the limit", xml.len()));
    }
    if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
        return refuse("saml_dtd_forbidden", format!("the {what} carries a DTD (entities are refused: XXE, billion laughs)"));
    }
    let opts = ParsingOptions { allow_dtd: false, ..ParsingOptions::default() };
    Document::parse_with_options(xml, opts).map_err(|e| ("saml_malformed_response", format!("the {what} is not well-formed XML: {e}")))
}

/// The rules every node of a document must follow (comments, processing instructions, IDs, signatures; see the
/// module comment). Returns the Assertion and EncryptedAssertion elements met, and whether a signature uses SHA-1.
fn walk<'a, 'i>(doc: &'a Document<'i>, what: &str) -> Result<(Vec<Node<'a, 'i>>, bool), Refusal> {
    let mut ids = HashSet::new();
    let mut assertions = Vec::new();
    let mut uses_sha1 = false;
    for n in doc.descendants() {
        match n.node_type() {
            NodeType::Comment => return refuse("saml_malformed_response", format!("the {what} contains an XML comment")),
            NodeType::PI => return refuse("saml_malformed_response", format!("the {what} contains a processing instruction")),
            NodeType::Element => {}
            _ => continue,
        }
        // `xmlns:ds=""` is not namespace-well-formed: roxmltree binds the prefix to no namespace while libxml2 keeps
        // the outer binding, so a `ds:Signature` under it would be checked by xmlsec but not here.
        if n.namespaces().any(|ns| ns.name().is_some() && ns.uri().is_empty()) {
            return refuse("saml_malformed_response", format!("the {what} declares a namespace prefix with an empty URI"));
        }
        for a in n.attributes().filter(|a| matches!(a.name(), "ID" | "Id" | "id")) {
            // libxml2 resolves `#id` by value whatever the attribute's namespace (xml:id included), and xmlsec turns
            // it into an XPointer expression, run before any signature is checked: only plain, simple IDs.
            if a.namespace().is_some() {
                return refuse("saml_malformed_response", format!("a namespaced {} attribute", a.name()));
            }
            // Only `ID` (registered as an ID for `#` references) and the signature's own `Id`s can become XPointer
            // targets; an `id` in custom attribute XML or an EncryptedData `Id` only needs to be unique.
            if (a.name() == "ID" || n.tag_name().namespace() == Some(DSIG_NS)) && !is_simple_id(a.value()) {
                return refuse("saml_malformed_response", format!("the ID {} is not a plain XML name", clip(a.value())));
            }
            if !ids.insert(a.value().to_string()) {
                return refuse("saml_malformed_response", format!("the ID {} appears twice", clip(a.value())));
            }
        }
        if is(&n, ASSERTION_NS, "Assertion") || is(&n, ASSERTION_NS, "EncryptedAssertion") {
            assertions.push(n);
        }
        if n.tag_name().namespace() == Some(DSIG_NS) {
            match n.tag_name().name() {
                "Object" | "Manifest" => return refuse("saml_signature_invalid", format!("ds:{} is not accepted", n.tag_name().name())),
                "Signature" => uses_sha1 |= check_signature(&n)?,
                _ => {}
            }
        }
    }
    Ok((assertions, uses_sha1))
}

/// Checks a decrypted Assertion (`xml`: the plaintext in its context, `xmlenc::Encrypted::in_context`) with the
/// same rules as a Response: the context element holds one `saml:Assertion` and nothing else, no other Assertion
/// anywhere, and a signature, if any, only over that Assertion. Returns whether the signature uses SHA-1.
pub fn inspect_assertion(xml: &str) -> Result<bool, Refusal> {
    let doc = parse(xml, "decrypted assertion")?;
    let root = doc.root_element();
    let holds_one_assertion = root.tag_name().namespace() == Some(super::xmlenc::PLAINTEXT_NS)
        && Some(root.tag_name().name()) == super::xmlenc::PLAINTEXT_ROOT.split_once(':').map(|(_, local)| local)
        && root.children().filter(|c| !(c.is_text() && c.text().is_some_and(|t| t.trim().is_empty()))).count() == 1
        && root.first_element_child().is_some_and(|a| is(&a, ASSERTION_NS, "Assertion"));
    if !holds_one_assertion {
        return refuse("saml_malformed_response", "the decrypted content is not one saml:Assertion");
    }
    let (assertions, uses_sha1) = walk(&doc, "decrypted assertion")?;
    if assertions.len() != 1 {
        return refuse("saml_multiple_assertions", "the decrypted assertion holds another assertion");
    }
    Ok(uses_sha1)
}

/// Checks the decoded Response `xml` (see the module comment).
pub fn inspect(xml: &str) -> Result<Unverified, Refusal> {
    let doc = parse(xml, "response")?;
    let root = doc.root_element();
    if !is(&root, PROTOCOL_NS, "Response") {
        return refuse("saml_malformed_response", format!("the root element is {}, not samlp:Response", clip(root.tag_name().name())));
    }
    let (assertions, uses_sha1) = walk(&doc, "response")?;
    let mut out = Unverified { in_response_to: root.attribute("InResponseTo").map(str::to_string), uses_sha1, ..Default::default() };
    out.status_success = root
        .children()
        .find(|c| is(c, PROTOCOL_NS, "Status"))
        .and_then(|s| s.children().find(|c| is(c, PROTOCOL_NS, "StatusCode")))
        .and_then(|c| c.attribute("Value"))
        == Some("urn:oasis:names:tc:SAML:2.0:status:Success");
    out.issuer = root.children().find(|c| is(c, ASSERTION_NS, "Issuer")).and_then(|i| i.text()).map(|t| t.trim().to_string());
    out.response_signed = root.children().any(|c| is(&c, DSIG_NS, "Signature"));
    match assertions.as_slice() {
        [] if !out.status_success => return refuse("saml_status_not_success", "the IdP answered a non-success status"),
        [] => return refuse("saml_assertion_missing", "the response has no assertion"),
        [a] => {
            if a.parent_element() != Some(root) {
                return refuse("saml_malformed_response", "the assertion is not a direct child of the Response");
            }
            out.encrypted = a.tag_name().name() == "EncryptedAssertion";
            if out.encrypted {
                // Its shape and algorithms, refused by name before anything is verified or decrypted.
                out.encrypted_gcm = super::xmlenc::read(a)?.content.gcm;
            }
            out.assertion_signed = a.children().any(|c| is(&c, DSIG_NS, "Signature"));
            if !out.encrypted {
                out.issuer = out.issuer.or_else(|| a.children().find(|c| is(c, ASSERTION_NS, "Issuer")).and_then(|i| i.text()).map(|t| t.trim().to_string()));
                out.audiences = a
                    .descendants()
                    .filter(|c| is(c, ASSERTION_NS, "Audience"))
                    .filter_map(|c| c.text())
                    .map(|t| t.trim().to_string())
                    .collect();
            }
        }
        _ => return refuse("saml_multiple_assertions", format!("the response holds {} assertions; exactly one is accepted", assertions.len())),
    }
    Ok(out)
}

/// Returns whether the signature uses SHA-1. The signature must be exactly one per element, with one Reference to
/// its parent, at most the two plain transforms (each once, nothing inside them but a short InclusiveNamespaces),
/// and known algorithms: xmlsec runs every transform before it checks the signature value, so an unchecked
/// transform chain is work an anonymous sender can make the server do.
fn check_signature(sig: &Node) -> Result<bool, Refusal> {
    // The Response that may carry a signature is the root: a signed Response nested elsewhere (in Extensions, say)
    // would be a second signed reference for samael to choose from. (The one Assertion is checked to be a direct
    // child of the root after this walk.)
    let parent = sig
        .parent_element()
        .filter(|p| (is(p, PROTOCOL_NS, "Response") && p.parent_element().is_none()) || is(p, ASSERTION_NS, "Assertion"));
    let Some(parent) = parent else {
        return refuse("saml_signature_invalid", "a signature sits somewhere other than the root Response or the Assertion");
    };
    if parent.children().filter(|c| is(c, DSIG_NS, "Signature")).count() > 1 {
        return refuse("saml_signature_invalid", "an element carries more than one signature");
    }
    let parent_id = parent.attribute("ID").unwrap_or_default();
    let signed_info = sig.children().find(|c| is(c, DSIG_NS, "SignedInfo"));
    let Some(signed_info) = signed_info else { return refuse("saml_signature_invalid", "a signature has no SignedInfo") };
    let references: Vec<_> = signed_info.children().filter(|c| is(c, DSIG_NS, "Reference")).collect();
    let [reference] = references.as_slice() else {
        return refuse("saml_signature_invalid", format!("a signature has {} references; exactly one is accepted", references.len()));
    };
    let uri = reference.attribute("URI").unwrap_or_default();
    if parent_id.is_empty() || uri != format!("#{parent_id}") {
        return refuse("saml_signature_invalid", format!("a signature references {}, not its own element", clip(uri)));
    }
    let transforms: Vec<_> = sig.descendants().filter(|c| is(c, DSIG_NS, "Transform")).collect();
    let mut seen = Vec::new();
    if transforms.len() > ALLOWED_TRANSFORMS.len() {
        return refuse("saml_signature_invalid", format!("{} transforms; at most enveloped-signature and exclusive c14n", transforms.len()));
    }
    for t in sig.descendants().filter(|c| is(c, DSIG_NS, "Transform") || is(c, DSIG_NS, "CanonicalizationMethod")) {
        let alg = t.attribute("Algorithm").unwrap_or_default();
        if !ALLOWED_TRANSFORMS.contains(&alg) {
            return refuse("saml_signature_invalid", format!("the transform {} is not accepted", clip(alg)));
        }
        if is(&t, DSIG_NS, "Transform") {
            if seen.contains(&alg) {
                return refuse("saml_signature_invalid", "a transform is repeated");
            }
            seen.push(alg);
        }
        for child in t.children().filter(|c| c.is_element()) {
            let list = child.attribute("PrefixList").unwrap_or_default();
            if child.tag_name().name() != "InclusiveNamespaces" || list.len() > MAX_PREFIX_LIST || child.children().any(|c| c.is_element()) {
                return refuse("saml_signature_invalid", "a transform carries more than a short InclusiveNamespaces list");
            }
        }
    }
    let mut sha1 = false;
    for m in sig.descendants().filter(|c| is(c, DSIG_NS, "SignatureMethod") || is(c, DSIG_NS, "DigestMethod")) {
        let alg = m.attribute("Algorithm").unwrap_or_default();
        let known = if m.tag_name().name() == "SignatureMethod" { SIGNATURE_ALGS.contains(&alg) } else { DIGEST_ALGS.contains(&alg) };
        if SHA1_ALGS.contains(&alg) {
            sha1 = true;
        } else if !known {
            return refuse("saml_signature_invalid", format!("the algorithm {} is not accepted", clip(alg)));
        }
    }
    Ok(sha1)
}

#[cfg(test)]
mod tests {
    use super::{inspect, is_simple_id};

    #[test]
    fn ids_of_every_idp_are_simple() {
        for id in ["_8f3c2a", "id-4a1b", "pfx41d8ef22-e612-8c50-9960-1b16f15741b3", "_a.b_c-1", "ONELOGIN_4fee3b04", "id123"] {
            assert!(is_simple_id(id), "{id}");
        }
        for id in ["", "1a", "-a", "a b", "a'", "a)", "a|b", "é", "a:b"] {
            assert!(!is_simple_id(id), "{id}");
        }
    }

    const OK: &str = r##"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r" InResponseTo="_q"><saml:Issuer>idp</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status><saml:Assertion ID="_a"><saml:Issuer>idp</saml:Issuer><saml:Conditions><saml:AudienceRestriction><saml:Audience>sp</saml:Audience></saml:AudienceRestriction></saml:Conditions></saml:Assertion></samlp:Response>"##;

    #[test]
    fn reads_what_routing_needs() {
        let u = inspect(OK).unwrap();
        assert_eq!(u.in_response_to.as_deref(), Some("_q"));
        assert_eq!(u.issuer.as_deref(), Some("idp"));
        assert_eq!(u.audiences, vec!["sp".to_string()]);
        assert!(u.status_success && !u.encrypted && !u.response_signed);
    }

    #[test]
    fn an_id_in_custom_attribute_xml_only_needs_to_be_unique() {
        let custom = OK.replace("</saml:Conditions>", "</saml:Conditions><saml:AttributeStatement><saml:Attribute Name=\"x\"><saml:AttributeValue><item id=\"42\"/></saml:AttributeValue></saml:Attribute></saml:AttributeStatement>");
        assert!(inspect(&custom).is_ok());
        assert_eq!(inspect(&custom.replace("<item id=\"42\"/>", "<item id=\"_a\"/>")).unwrap_err().0, "saml_malformed_response", "still unique");
    }

    #[test]
    fn refuses_what_no_honest_idp_sends() {
        let cases = [
            (OK.replace("<saml:Issuer>idp</saml:Issuer><samlp:Status>", "<saml:Issuer>idp<!-- x --></saml:Issuer><samlp:Status>"), "saml_malformed_response"),
            (OK.replace("<saml:Issuer>idp</saml:Issuer><samlp:Status>", "<saml:Issuer>idp<?x y?></saml:Issuer><samlp:Status>"), "saml_malformed_response"),
            (format!("<!DOCTYPE r [<!ENTITY e \"x\">]>{OK}"), "saml_dtd_forbidden"),
            (OK.replace("</samlp:Response>", "<saml:Assertion ID=\"_b\"/></samlp:Response>"), "saml_multiple_assertions"),
            (OK.replace("ID=\"_a\"", "ID=\"_r\""), "saml_malformed_response"),
            (OK.replace("<saml:Assertion ID=\"_a\">", "<x><saml:Assertion ID=\"_a\">").replace("</saml:Assertion>", "</saml:Assertion></x>"), "saml_malformed_response"),
            ("<a/>".to_string(), "saml_malformed_response"),
            // IDs xmlsec would paste into an XPointer expression, or that resolve whatever their namespace.
            (OK.replace("ID=\"_a\"", "ID=\"a') | //*[count(//*)>0] | id('b\""), "saml_malformed_response"),
            (OK.replace("ID=\"_a\"", "ID=\"_a\" xml:id=\"_x\""), "saml_malformed_response"),
            (OK.replace("ID=\"_a\"", "ID=\"_a\" xmlns:x=\"urn:x\" x:ID=\"_x\""), "saml_malformed_response"),
            (OK.replace("ID=\"_a\"", "ID=\"1a\""), "saml_malformed_response"),
            // A prefix bound to no namespace (libxml2 keeps the outer binding, roxmltree does not).
            (OK.replace("<saml:Assertion ID=\"_a\">", "<saml:Assertion ID=\"_a\" xmlns:ds=\"\">"), "saml_malformed_response"),
            (OK.replace("ID=\"_a\"", &format!("ID=\"_{}\"", "a".repeat(256))), "saml_malformed_response"),
            ("<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"".to_string(), "saml_malformed_response"),
        ];
        for (xml, code) in cases {
            assert_eq!(inspect(&xml).unwrap_err().0, code, "{xml}");
        }
    }

    #[test]
    fn signatures_must_cover_their_own_element_with_plain_transforms() {
        let sig = |uri: &str, transform: &str, alg: &str| {
            format!(
                r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="{alg}"/><ds:Reference URI="{uri}"><ds:Transforms><ds:Transform Algorithm="{transform}"/></ds:Transforms></ds:Reference></ds:SignedInfo></ds:Signature>"##
            )
        };
        let good = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
        let rsa256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
        let with = |s: String| OK.replace("<saml:Assertion ID=\"_a\"><saml:Issuer>idp</saml:Issuer>", &format!("<saml:Assertion ID=\"_a\"><saml:Issuer>idp</saml:Issuer>{s}"));
        assert!(inspect(&with(sig("#_a", good, rsa256))).unwrap().assertion_signed);
        for (s, code) in [
            (sig("#_r", good, rsa256), "saml_signature_invalid"),
            (sig("", good, rsa256), "saml_signature_invalid"),
            (sig("file:///etc/hostname", good, rsa256), "saml_signature_invalid"),
            (sig("#_a", "http://www.w3.org/TR/1999/REC-xpath-19991116", rsa256), "saml_signature_invalid"),
            (sig("#_a", good, "http://www.w3.org/2001/04/xmldsig-more#rsa-md5"), "saml_signature_invalid"),
            (sig("#_a", &format!("{good}\"/><ds:Transform Algorithm=\"{good}"), rsa256), "saml_signature_invalid"),
            (sig("#_a", &format!("{good}\"/><ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/><ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#"), rsa256), "saml_signature_invalid"),
        ] {
            assert_eq!(inspect(&with(s.clone())).unwrap_err().0, code, "{s}");
        }
        assert!(inspect(&with(sig("#_a", good, "http://www.w3.org/2000/09/xmldsig#rsa-sha1"))).unwrap().uses_sha1, "SHA-1 is reported");
    }
}
