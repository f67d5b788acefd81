//! The `saml:EncryptedAssertion` of a Response (XML Encryption 1.1): read with the same no-DTD parser as the
//! guard, decrypted with the connection's SP key by OpenSSL.
//!
//! Accepted, and nothing else (each refused by name before any key is used):
//! - one `xenc:EncryptedData` of type Element whose content is AES-128/192/256 in GCM or CBC mode, with an inline
//!   `CipherValue` (never a `CipherReference`: nothing is fetched);
//! - exactly one `xenc:EncryptedKey` (inside the data's `ds:KeyInfo`, or beside the data as SAML allows) wrapping
//!   the content key with RSA-OAEP (`rsa-oaep-mgf1p`, or XML Encryption 1.1's `rsa-oaep` with its MGF1 digest),
//!   never RSA PKCS#1 v1.5 (a Bleichenbacher oracle for whoever can make us decrypt).
//!
//! CBC is not authenticated: changing its ciphertext changes the plaintext in ways the sender chooses, and the
//! answers to many changed copies decrypt a captured assertion (Jager and Somorovsky, "How to Break XML
//! Encryption", 2011). So the caller accepts CBC only where a verified Response signature covers the ciphertext
//! (`Mode::Covered`); in an unsigned Response only GCM is decrypted (`Mode::AuthenticatedOnly`), and the
//! algorithm is refused before any decryption. Every failure to decrypt answers the same words.
//!
//! Not done by samael's `EncryptedAssertion::decrypt`, which this replaces: it accepts PKCS#1 v1.5 key transport,
//! does not remove CBC padding (it cut the text at the first invalid UTF-8 byte), panics on a short GCM value or a
//! plaintext without `<`, and knows AES-128 only (ADFS and Entra ID encrypt with AES-256).
use super::guard::{Refusal, ASSERTION_NS};
use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::symm::Cipher;
use roxmltree::Node;

const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
const XENC11: &str = "http://www.w3.org/2009/xmlenc11#";
const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const ELEMENT_TYPE: &str = "http://www.w3.org/2001/04/xmlenc#Element";
/// The element `Encrypted::in_context` puts a plaintext in, in a namespace of its own (no real message uses it).
pub const PLAINTEXT_ROOT: &str = "latchkey-decrypted:plaintext";
pub const PLAINTEXT_NS: &str = "urn:latchkey:saml:decrypted";
/// Why AES-CBC in an unsigned Response is refused (by the ACS before anything is decrypted, and here again).
pub const CBC_OUTSIDE_A_SIGNATURE: &str = "an assertion encrypted with AES-CBC is accepted only inside a signed Response (CBC is not authenticated): have the IdP sign the Response, or encrypt with AES-GCM";
const FAILED: &str = "the encrypted assertion could not be decrypted with this connection's SP key (encrypted to another key, or changed on the way)";

/// How the caller may use the ciphertext.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// A verified signature covers the ciphertext (a signed Response): CBC or GCM.
    Covered,
    /// Nothing signed covers it: authenticated encryption (GCM) only.
    AuthenticatedOnly,
}

/// The content encryption of an EncryptedData.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Content {
    pub key_len: usize,
    pub gcm: bool,
}

/// What an EncryptedAssertion carries, checked for shape and algorithms, nothing decrypted yet.
pub struct Encrypted {
    pub content: Content,
    /// The namespaces in scope at the EncryptedAssertion (prefix, URI): the plaintext is an element serialized
    /// out of its document, and may use a prefix only its old ancestors declared (`in_context`).
    namespaces: Vec<(Option<String>, String)>,
    oaep_digest: MessageDigest,
    mgf1_digest: MessageDigest,
    wrapped_key: String,
    ciphertext: String,
}

fn refuse<T>(detail: impl Into<String>) -> Result<T, Refusal> {
    Err(("saml_decryption_failed", detail.into()))
}

fn is(n: &Node, ns: &str, name: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(ns) && n.tag_name().name() == name
}

fn child<'a, 'i>(n: &Node<'a, 'i>, ns: &str, name: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| is(c, ns, name))
}

fn algorithm<'a>(method: Option<Node<'a, '_>>) -> &'a str {
    method.and_then(|m| m.attribute("Algorithm")).unwrap_or_default()
}

fn content_of(alg: &str) -> Option<Content> {
    Some(match alg.strip_prefix(XENC).or_else(|| alg.strip_prefix(XENC11))? {
        "aes128-cbc" if alg.starts_with(XENC) => Content { key_len: 16, gcm: false },
        "aes192-cbc" if alg.starts_with(XENC) => Content { key_len: 24, gcm: false },
        "aes256-cbc" if alg.starts_with(XENC) => Content { key_len: 32, gcm: false },
        "aes128-gcm" if alg.starts_with(XENC11) => Content { key_len: 16, gcm: true },
        "aes192-gcm" if alg.starts_with(XENC11) => Content { key_len: 24, gcm: true },
        "aes256-gcm" if alg.starts_with(XENC11) => Content { key_len: 32, gcm: true },
        _ => return None,
    })
}

fn digest_of(alg: &str) -> Option<MessageDigest> {
    match alg {
        "http://www.w3.org/2000/09/xmldsig#sha1" => Some(MessageDigest::sha1()),
        "http://www.w3.org/2001/04/xmlenc#sha256" => Some(MessageDigest::sha256()),
        "http://www.w3.org/2001/04/xmldsig-more#sha384" => Some(MessageDigest::sha384()),
        "http://www.w3.org/2001/04/xmlenc#sha512" => Some(MessageDigest::sha512()),
        _ => None,
    }
}

fn mgf1_of(alg: &str) -> Option<MessageDigest> {
    match alg.strip_prefix(XENC11)? {
        "mgf1sha1" => Some(MessageDigest::sha1()),
        "mgf1sha224" => Some(MessageDigest::sha224()),
        "mgf1sha256" => Some(MessageDigest::sha256()),
        "mgf1sha384" => Some(MessageDigest::sha384()),
        "mgf1sha512" => Some(MessageDigest::sha512()),
        _ => None,
    }
}

/// The inline CipherValue of an element's CipherData (a CipherReference is refused: it names something to fetch).
fn cipher_value(n: &Node, what: &str) -> Result<String, Refusal> {
    let data = child(n, XENC, "CipherData");
    if data.is_some_and(|d| child(&d, XENC, "CipherReference").is_some()) {
        return refuse(format!("the {what} names a CipherReference, which is not followed"));
    }
    match data.and_then(|d| child(&d, XENC, "CipherValue")).and_then(|v| v.text()) {
        Some(v) => Ok(v.chars().filter(|c| !c.is_ascii_whitespace()).collect()),
        None => refuse(format!("the {what} has no inline CipherValue (a CipherReference is not followed)")),
    }
}

/// The `saml:EncryptedAssertion` child of `root` (the Response), if any.
pub fn wrapper_of<'a, 'i>(root: &Node<'a, 'i>) -> Option<Node<'a, 'i>> {
    child(root, ASSERTION_NS, "EncryptedAssertion")
}

/// Reads `wrapper`, an EncryptedAssertion, checking the shape and algorithms above.
pub fn read(wrapper: &Node) -> Result<Encrypted, Refusal> {
    let data: Vec<_> = wrapper.children().filter(|c| is(c, XENC, "EncryptedData")).collect();
    let [data] = data.as_slice() else { return refuse(format!("the EncryptedAssertion holds {} EncryptedData; exactly one is accepted", data.len())) };
    if data.attribute("Type").is_some_and(|t| t != ELEMENT_TYPE) {
        return refuse("the EncryptedData is not of type Element");
    }
    let content_alg = algorithm(child(data, XENC, "EncryptionMethod"));
    let Some(content) = content_of(content_alg) else {
        return refuse(format!("the content encryption {content_alg:?} is not accepted (AES-128/192/256 in GCM or CBC mode are)"));
    };
    let inside = child(data, DSIG, "KeyInfo").into_iter().flat_map(|k| k.children().filter(|c| is(c, XENC, "EncryptedKey")));
    let keys: Vec<_> = inside.chain(wrapper.children().filter(|c| is(c, XENC, "EncryptedKey"))).collect();
    let [key] = keys.as_slice() else { return refuse(format!("the EncryptedAssertion holds {} EncryptedKey; exactly one is accepted", keys.len())) };
    let method = child(key, XENC, "EncryptionMethod");
    let transport = algorithm(method);
    let digest_alg = method.and_then(|m| child(&m, DSIG, "DigestMethod")).and_then(|d| d.attribute("Algorithm"));
    let oaep_digest = match digest_alg {
        None => MessageDigest::sha1(),
        Some(alg) => digest_of(alg).ok_or(("saml_decryption_failed", format!("the key transport digest {alg:?} is not accepted")))?,
    };
    let mgf1_digest = match transport.strip_prefix(XENC).or_else(|| transport.strip_prefix(XENC11)) {
        Some("rsa-oaep-mgf1p") if transport.starts_with(XENC) => MessageDigest::sha1(),
        Some("rsa-oaep") if transport.starts_with(XENC11) => match method.and_then(|m| child(&m, XENC11, "MGF")).map(|m| m.attribute("Algorithm").unwrap_or_default()) {
            None => MessageDigest::sha1(),
            Some(alg) => mgf1_of(alg).ok_or(("saml_decryption_failed", format!("the mask generation function {alg:?} is not accepted")))?,
        },
        Some("rsa-1_5") => return refuse("the content key is wrapped with RSA PKCS#1 v1.5, which is refused (Bleichenbacher's attack): the IdP must use RSA-OAEP"),
        _ => return refuse(format!("the key transport {transport:?} is not accepted (RSA-OAEP is)")),
    };
    if method.and_then(|m| child(&m, XENC, "OAEPparams")).is_some() {
        return refuse("RSA-OAEP with OAEPparams (a label) is not accepted");
    }
    let namespaces = wrapper.namespaces().filter(|n| n.name() != Some("xml")).map(|n| (n.name().map(str::to_string), n.uri().to_string())).collect();
    Ok(Encrypted { content, namespaces, oaep_digest, mgf1_digest, wrapped_key: cipher_value(key, "EncryptedKey")?, ciphertext: cipher_value(data, "EncryptedData")? })
}

impl Encrypted {
    /// The plaintext: the serialized Assertion (the caller parses it as a document of its own and checks it).
    pub fn decrypt(&self, key: &PKey<Private>, mode: Mode) -> Result<String, Refusal> {
        if mode == Mode::AuthenticatedOnly && !self.content.gcm {
            return Err(("saml_signature_invalid", CBC_OUTSIDE_A_SIGNATURE.into()));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let (Ok(wrapped), Ok(body)) = (b64.decode(&self.wrapped_key), b64.decode(&self.ciphertext)) else { return refuse(FAILED) };
        let content_key = self.unwrap_key(key, &wrapped).filter(|k| k.len() == self.content.key_len).ok_or(("saml_decryption_failed", FAILED.to_string()))?;
        let plain = if self.content.gcm { gcm(&content_key, &body) } else { cbc(&content_key, &body) };
        let plain = plain.and_then(|p| String::from_utf8(p).ok()).ok_or(("saml_decryption_failed", FAILED.to_string()))?;
        Ok(without_declaration(&plain).to_string())
    }

    /// The plaintext as a document of its own: inside a `PLAINTEXT_ROOT` element (in `PLAINTEXT_NS`) that declares
    /// the namespaces in scope where it was, the default one included (as libxmlsec and OpenSAML parse it in its
    /// context; ADFS writes `<EncryptedAssertion xmlns="…assertion">`). Exclusive c14n, the only one the guard
    /// allows, outputs only the namespaces an element uses, so the Assertion's digest does not change.
    pub fn in_context(&self, plain: &str) -> String {
        let (prefix, local) = PLAINTEXT_ROOT.split_once(':').unwrap_or_default();
        let mut out = format!("<{PLAINTEXT_ROOT} xmlns:{prefix}=\"{PLAINTEXT_NS}\"");
        for (name, uri) in self.namespaces.iter().filter(|(name, _)| name.as_deref() != Some(prefix)) {
            let mut escaped = String::with_capacity(uri.len());
            for c in uri.chars() {
                match c {
                    '&' => escaped.push_str("&amp;"),
                    '"' => escaped.push_str("&quot;"),
                    '<' => escaped.push_str("&lt;"),
                    '\t' | '\n' | '\r' => escaped.push_str(&format!("&#{};", c as u32)),
                    c => escaped.push(c),
                }
            }
            match name {
                Some(p) => out.push_str(&format!(" xmlns:{p}=\"{escaped}\"")),
                None => out.push_str(&format!(" xmlns=\"{escaped}\"")),
            }
        }
        out.push('>');
        out.push_str(plain);
        out.push_str(&format!("</{prefix}:{local}>"));
        out
    }

    fn unwrap_key(&self, key: &PKey<Private>, wrapped: &[u8]) -> Option<Vec<u8>> {
        let mut d = openssl::encrypt::Decrypter::new(key).ok()?;
        d.set_rsa_padding(openssl::rsa::Padding::PKCS1_OAEP).ok()?;
        d.set_rsa_oaep_md(self.oaep_digest).ok()?;
        d.set_rsa_mgf1_md(self.mgf1_digest).ok()?;
        let mut out = vec![0; d.decrypt_len(wrapped).ok()?];
        let n = d.decrypt(wrapped, &mut out).ok()?;
        out.truncate(n);
        Some(out)
    }
}

/// A plaintext without a leading byte order mark and XML declaration (`<?xml` and white space; not another
/// processing instruction such as `<?xml-stylesheet`, which the guard then refuses): it is put inside an element.
fn without_declaration(plain: &str) -> &str {
    let plain = plain.strip_prefix('\u{feff}').unwrap_or(plain);
    match plain.strip_prefix("<?xml") {
        Some(rest) if rest.starts_with([' ', '\t', '\r', '\n']) => rest.split_once("?>").map_or(plain, |(_, after)| after),
        _ => plain,
    }
}

fn aes(key_len: usize, gcm: bool) -> Cipher {
    match (key_len, gcm) {
        (16, false) => Cipher::aes_128_cbc(),
        (24, false) => Cipher::aes_192_cbc(),
        (32, false) => Cipher::aes_256_cbc(),
        (16, true) => Cipher::aes_128_gcm(),
        (24, true) => Cipher::aes_192_gcm(),
        _ => Cipher::aes_256_gcm(),
    }
}

/// AES-GCM as XML Encryption 1.1 lays it out: a 96-bit IV, the ciphertext, a 128-bit tag.
fn gcm(key: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    const IV: usize = 12;
    const TAG: usize = 16;
    if body.len() < IV + TAG {
        return None;
    }
    let (iv, rest) = body.split_at(IV);
    let (data, tag) = rest.split_at(rest.len() - TAG);
    openssl::symm::decrypt_aead(aes(key.len(), true), key, Some(iv), &[], data, tag).ok()
}

/// AES-CBC as XML Encryption lays it out: a 128-bit IV, then whole blocks whose last byte counts the padding
/// bytes (1 to 16; the others are arbitrary, so this is not PKCS#7).
fn cbc(key: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    const BLOCK: usize = 16;
    if body.len() < 2 * BLOCK || !body.len().is_multiple_of(BLOCK) {
        return None;
    }
    let (iv, data) = body.split_at(BLOCK);
    let mut c = openssl::symm::Crypter::new(aes(key.len(), false), openssl::symm::Mode::Decrypt, key, Some(iv)).ok()?;
    c.pad(false);
    let mut out = vec![0; data.len() + BLOCK];
    let n = c.update(data, &mut out).ok()?;
    let m = c.finalize(&mut out[n..]).ok()?;
    out.truncate(n + m);
    let pad = usize::from(*out.last()?);
    if pad == 0 || pad > BLOCK || pad > out.len() {
        return None;
    }
    out.truncate(out.len() - pad);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::rsa::Padding;

    fn b64(v: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(v)
    }

    /// An EncryptedAssertion made here with OpenSSL: `content` and `transport` are algorithm URIs.
    fn wrapper(sp: &PKey<Private>, content: &str, transport: &str, oaep: Option<MessageDigest>, plain: &[u8], key_len: usize, gcm_mode: bool) -> String {
        let cek: Vec<u8> = (0..key_len as u8).collect();
        let mut e = openssl::encrypt::Encrypter::new(sp).unwrap();
        if let Some(md) = oaep {
            e.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
            e.set_rsa_oaep_md(md).unwrap();
            e.set_rsa_mgf1_md(MessageDigest::sha1()).unwrap();
        } else {
            e.set_rsa_padding(Padding::PKCS1).unwrap();
        }
        let mut wrapped = vec![0; e.encrypt_len(&cek).unwrap()];
        let n = e.encrypt(&cek, &mut wrapped).unwrap();
        wrapped.truncate(n);
        let body = if gcm_mode {
            let iv = [7u8; 12];
            let mut tag = [0u8; 16];
            let ct = openssl::symm::encrypt_aead(aes(key_len, true), &cek, Some(&iv), &[], plain, &mut tag).unwrap();
            [&iv[..], &ct, &tag].concat()
        } else {
            let iv = [9u8; 16];
            let pad = 16 - plain.len() % 16;
            let mut padded = plain.to_vec();
            padded.extend(std::iter::repeat_n(0xAAu8, pad - 1));
            padded.push(pad as u8);
            let mut c = openssl::symm::Crypter::new(aes(key_len, false), openssl::symm::Mode::Encrypt, &cek, Some(&iv)).unwrap();
            c.pad(false);
            let mut out = vec![0; padded.len() + 16];
            let n = c.update(&padded, &mut out).unwrap();
            out.truncate(n);
            [&iv[..], &out].concat()
        };
        let digest = if oaep == Some(MessageDigest::sha256()) { r#"<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>"# } else { "" };
        format!(
            r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc="{XENC}" xmlns:ds="{DSIG}" Type="{ELEMENT_TYPE}"><xenc:EncryptionMethod Algorithm="{content}"/><ds:KeyInfo><xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="{transport}">{digest}</xenc:EncryptionMethod><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData></saml:EncryptedAssertion></samlp:Response>"#,
            b64(&wrapped),
            b64(&body)
        )
    }

    fn decrypt(xml: &str, sp: &PKey<Private>, mode: Mode) -> Result<String, Refusal> {
        let doc = roxmltree::Document::parse(xml).unwrap();
        read(&wrapper_of(&doc.root_element()).unwrap())?.decrypt(sp, mode)
    }

    const PLAIN: &str = r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a">x</saml:Assertion>"#;
    const OAEP: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";

    /// An EncryptedAssertion as ADFS writes it (default namespaces), with a `ds` prefix and an odd URI in scope.
    const ADFS_STYLE: &str = "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" xmlns:odd='urn:x:&#9;\"q\"&amp;'><EncryptedAssertion xmlns=\"urn:oasis:names:tc:SAML:2.0:assertion\"><xenc:EncryptedData xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\" Type=\"http://www.w3.org/2001/04/xmlenc#Element\"><xenc:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#aes256-cbc\"/><KeyInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><e:EncryptedKey xmlns:e=\"http://www.w3.org/2001/04/xmlenc#\"><e:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p\"/><e:CipherData><e:CipherValue>AAAA</e:CipherValue></e:CipherData></e:EncryptedKey></KeyInfo><xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData></EncryptedAssertion></samlp:Response>";

    #[test]
    fn a_plaintext_is_read_in_its_context_and_cannot_leave_it() {
        use super::super::guard::inspect_assertion;
        let doc = roxmltree::Document::parse(ADFS_STYLE).unwrap();
        let e = read(&wrapper_of(&doc.root_element()).unwrap()).unwrap();
        assert_eq!(e.content, Content { key_len: 32, gcm: false }, "the EncryptedKey was found inside a default-namespace KeyInfo");
        let ok = |plain: &str| inspect_assertion(&e.in_context(plain)).map(drop).map_err(|r| r.0);
        // Unprefixed, relying on the default namespace of the EncryptedAssertion; or with its own declaration.
        assert_eq!(ok(r#"<Assertion ID="_a"><Issuer>idp</Issuer></Assertion>"#), Ok(()));
        assert_eq!(ok(r#"<s:Assertion xmlns:s="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a"/>"#), Ok(()));
        assert_eq!(ok(without_declaration("\u{feff}<?xml version=\"1.0\"?>\n<Assertion ID=\"_a\"/>")), Ok(()));
        // The namespace URIs in scope come back exactly, tab and quotes included.
        let wrapped = e.in_context(r#"<Assertion ID="_a"/>"#);
        let again = roxmltree::Document::parse(&wrapped).unwrap();
        assert!(again.root_element().namespaces().any(|n| n.name() == Some("odd") && n.uri() == "urn:x:\t\"q\"&"), "{wrapped}");
        for (plain, code) in [
            (r#"<Assertion ID="_a"/></latchkey-decrypted:plaintext><latchkey-decrypted:plaintext>"#, "saml_malformed_response"),
            (r#"<Assertion ID="_a"/><Assertion ID="_b"/>"#, "saml_malformed_response"),
            (r#"x<Assertion ID="_a"/>"#, "saml_malformed_response"),
            (r#"<Assertion ID="_a"><Assertion ID="_b"/></Assertion>"#, "saml_multiple_assertions"),
            (r#"<Response xmlns="urn:oasis:names:tc:SAML:2.0:protocol"/>"#, "saml_malformed_response"),
            (r#"<?xml-stylesheet href="x"?><Assertion ID="_a"/>"#, "saml_malformed_response"),
            (r#"<Assertion ID="_a"><!-- x --></Assertion>"#, "saml_malformed_response"),
            (r#"<!DOCTYPE a [<!ENTITY x "y">]><Assertion ID="_a"/>"#, "saml_dtd_forbidden"),
            (r#"<Assertion ID="_a" xmlns:ds=""/>"#, "saml_malformed_response"),
        ] {
            assert_eq!(ok(without_declaration(plain)), Err(code), "{plain}");
        }
    }

    #[test]
    fn every_aes_size_and_mode_decrypts_to_the_exact_plaintext() {
        let sp = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        for (alg, len, gcm_mode) in [
            ("http://www.w3.org/2001/04/xmlenc#aes128-cbc", 16, false),
            ("http://www.w3.org/2001/04/xmlenc#aes192-cbc", 24, false),
            ("http://www.w3.org/2001/04/xmlenc#aes256-cbc", 32, false),
            ("http://www.w3.org/2009/xmlenc11#aes128-gcm", 16, true),
            ("http://www.w3.org/2009/xmlenc11#aes192-gcm", 24, true),
            ("http://www.w3.org/2009/xmlenc11#aes256-gcm", 32, true),
        ] {
            // Plaintexts of every length modulo the block, so the padding is 1 to 16 bytes.
            for extra in 0..17 {
                let plain = format!("{PLAIN}{}", " ".repeat(extra));
                let xml = wrapper(&sp, alg, OAEP, Some(MessageDigest::sha1()), plain.as_bytes(), len, gcm_mode);
                assert_eq!(decrypt(&xml, &sp, Mode::Covered).unwrap(), plain, "{alg} +{extra}");
            }
        }
        let sha256 = wrapper(&sp, "http://www.w3.org/2009/xmlenc11#aes128-gcm", OAEP, Some(MessageDigest::sha256()), PLAIN.as_bytes(), 16, true);
        assert_eq!(decrypt(&sha256, &sp, Mode::AuthenticatedOnly).unwrap(), PLAIN, "OAEP with SHA-256 named by DigestMethod");
    }

    #[test]
    fn cbc_outside_a_signature_pkcs1_and_changed_or_foreign_ciphertexts_are_refused_without_a_panic() {
        let sp = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let other = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let cbc_xml = wrapper(&sp, "http://www.w3.org/2001/04/xmlenc#aes128-cbc", OAEP, Some(MessageDigest::sha1()), PLAIN.as_bytes(), 16, false);
        assert_eq!(decrypt(&cbc_xml, &sp, Mode::AuthenticatedOnly).unwrap_err().0, "saml_signature_invalid", "CBC needs a signed Response");
        let gcm_xml = wrapper(&sp, "http://www.w3.org/2009/xmlenc11#aes128-gcm", OAEP, Some(MessageDigest::sha1()), PLAIN.as_bytes(), 16, true);
        let pkcs1 = wrapper(&sp, "http://www.w3.org/2009/xmlenc11#aes128-gcm", "http://www.w3.org/2001/04/xmlenc#rsa-1_5", None, PLAIN.as_bytes(), 16, true);
        let err = decrypt(&pkcs1, &sp, Mode::Covered).unwrap_err();
        assert!(err.0 == "saml_decryption_failed" && err.1.contains("PKCS#1 v1.5"), "{err:?}");
        // The content algorithm swapped to another mode or size, as the "backwards compatibility" attack does.
        let swapped = gcm_xml.replace("xmlenc11#aes128-gcm", "xmlenc11#aes256-gcm");
        let to_cbc = gcm_xml.replace("http://www.w3.org/2009/xmlenc11#aes128-gcm", "http://www.w3.org/2001/04/xmlenc#aes128-cbc");
        let doc = roxmltree::Document::parse(&gcm_xml).unwrap();
        let body = read(&wrapper_of(&doc.root_element()).unwrap()).unwrap().ciphertext;
        let mut raw = base64::engine::general_purpose::STANDARD.decode(&body).unwrap();
        let mid = raw.len() / 2;
        raw[mid] ^= 1;
        let flipped = gcm_xml.replace(&body, &b64(&raw));
        let short = gcm_xml.replace(&body, &b64(&[1, 2, 3]));
        let not_b64 = gcm_xml.replace(&body, "@@@");
        let mut failures = vec![];
        for (xml, key) in [(&gcm_xml, &other), (&swapped, &sp), (&flipped, &sp), (&short, &sp), (&not_b64, &sp)] {
            failures.push(decrypt(xml, key, Mode::Covered).unwrap_err());
        }
        assert!(failures.iter().all(|f| *f == ("saml_decryption_failed", FAILED.to_string())), "one answer for every failure: {failures:?}");
        assert_eq!(decrypt(&to_cbc, &sp, Mode::AuthenticatedOnly).unwrap_err().0, "saml_signature_invalid");
        for (from, to) in [
            ("xmlenc11#aes128-gcm", "xmlenc#tripledes-cbc"),
            ("<xenc:CipherData><xenc:CipherValue>", "<xenc:CipherData><xenc:CipherReference URI=\"http://x/\"/><xenc:CipherValue>"),
            ("</saml:EncryptedAssertion>", "<xenc:EncryptedKey xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\"/></saml:EncryptedAssertion>"),
            ("Type=\"http://www.w3.org/2001/04/xmlenc#Element\"", "Type=\"http://www.w3.org/2001/04/xmlenc#Content\""),
        ] {
            let xml = gcm_xml.replacen(from, to, 1);
            assert_eq!(decrypt(&xml, &sp, Mode::Covered).map_err(|e| e.0), Err("saml_decryption_failed"), "{to}");
        }
    }
}
