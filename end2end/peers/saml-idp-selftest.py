#!/usr/bin/env python3
"""Self-test of saml-idp.py: runs the peer as a subprocess and drives it as an SP would (pysaml2's own SP client
with a throwaway key), then checks every forge kind with Debian's xmlsec1 CLI (and lxml where a DTD is involved).
Also reports which forge kinds pysaml2's SP accepts (informational, not asserted, except valid*).

    python3 end2end/peers/saml-idp-selftest.py          # exits 0 on success; log on stderr
"""
import base64
import copy
import datetime as dt
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
from html.parser import HTMLParser

warnings.filterwarnings("ignore", message=".*has been moved to cryptography.hazmat.decrepit.*")

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
import xmlsec  # noqa: E402
from lxml import etree  # noqa: E402
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT  # noqa: E402
from saml2.client import Saml2Client  # noqa: E402
from saml2.config import SPConfig  # noqa: E402
from saml2.metadata import entity_descriptor  # noqa: E402
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS  # noqa: E402
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256  # noqa: E402

logging.getLogger("saml2").addHandler(logging.NullHandler())
logging.getLogger("saml2").propagate = False  # pysaml2 logs every refusal with tracebacks: the table says enough
HERE = os.path.dirname(os.path.abspath(__file__))
NS = {"samlp": "urn:oasis:names:tc:SAML:2.0:protocol", "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
      "ds": "http://www.w3.org/2000/09/xmldsig#", "xenc": "http://www.w3.org/2001/04/xmlenc#"}
failures = []
passed = 0
XSW_XMLSEC = {}  # kind -> does xmlsec1 (spec-conforming, references resolved by ID) verify the signature?


def check(cond, what):
    global passed
    if cond:
        passed += 1
        print(f"ok   {what}", file=sys.stderr)
    else:
        failures.append(what)
        print(f"FAIL {what}", file=sys.stderr)
    return cond


# ---- HTTP helpers ---------------------------------------------------------------------------------------------
def http(method, url, body=None, content_type="application/json"):
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else (json.dumps(body) if not isinstance(body, str) else body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.action, self.method, self.inputs = None, None, {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.action, self.method = a.get("action"), a.get("method")
        elif tag == "input" and a.get("type") == "hidden":
            self.inputs[a["name"]] = a.get("value", "")


def parse_form(page):
    p = FormParser()
    p.feed(page)
    return p


# ---- keys -----------------------------------------------------------------------------------------------------
def keypair(directory, name):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subj).issuer_name(subj).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    kf, cf = os.path.join(directory, f"{name}.key"), os.path.join(directory, f"{name}.crt")
    with open(kf, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(cf, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return kf, cf


def sp_client(directory, base, idp_md, name="sp"):
    kf, cf = keypair(directory, name)
    entity = f"http://127.0.0.1:9/{name}/metadata"
    acs = f"http://127.0.0.1:9/{name}/acs"
    conf = {
        "entityid": entity,
        "service": {"sp": {
            "endpoints": {"assertion_consumer_service": [(acs, BINDING_HTTP_POST)]},
            "authn_requests_signed": True,
            "want_response_signed": False,
            "want_assertions_signed": False,
            "want_assertions_or_response_signed": True,
            "allow_unsolicited": True,
            "name_id_format": NAMEID_FORMAT_EMAILADDRESS,
        }},
        "key_file": kf, "cert_file": cf,
        "encryption_keypairs": [{"key_file": kf, "cert_file": cf}],
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "metadata": {"inline": [idp_md]},
        "signing_algorithm": SIG_RSA_SHA256, "digest_algorithm": DIGEST_SHA256,
        "accepted_time_diff": 60,
        "allow_unknown_attributes": True,  # else pysaml2 drops attributes its own name maps do not know
    }
    config = SPConfig().load(conf)
    client = Saml2Client(config)
    md = str(entity_descriptor(config))
    return client, md, entity, acs, open(cf).read()


# ---- xmlsec1 ------------------------------------------------------------------------------------------------------
def xmlsec_verify(xml, cert_file, xpath, directory, extra=()):
    """xmlsec1 --verify of the ds:Signature selected by xpath, with the IdP cert; True when it verifies."""
    path = os.path.join(directory, "verify.xml")
    with open(path, "wb") as f:
        f.write(xml if isinstance(xml, bytes) else xml.encode())
    cmd = ["xmlsec1", "--verify", "--pubkey-cert-pem", cert_file,
           "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
           "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:Response",
           "--node-xpath", xpath, *extra, path]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return r.returncode == 0


RESP_SIG = "/*[local-name()='Response']/*[local-name()='Signature']"
ASSN_SIG = "/*[local-name()='Response']/*[local-name()='Assertion']/*[local-name()='Signature']"
PLAIN_SIG = "/*[local-name()='Assertion']/*[local-name()='Signature']"  # in a decrypted Assertion on its own
XENC = "http://www.w3.org/2001/04/xmlenc#"
AES128_CBC, AES256_CBC = XENC + "aes128-cbc", XENC + "aes256-cbc"
OAEP, RSA15 = XENC + "rsa-oaep-mgf1p", XENC + "rsa-1_5"
AES128_GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
# kind -> (content encryption, key transport, Response signed?, what the decrypted plaintext must be)
ENCRYPTED_KINDS = {
    "encrypted_aes256_cbc": (AES256_CBC, OAEP, True, "genuine"),
    "encrypted_assertion_signed_gcm": (AES128_GCM, OAEP, False, "genuine"),
    "encrypted_assertion_signed_cbc": (AES128_CBC, OAEP, False, "genuine"),
    "encrypted_inner_foreign_key": (AES128_GCM, OAEP, False, "attacker"),
    "encrypted_inner_tampered": (AES128_GCM, OAEP, False, "tampered"),
    "encrypted_gcm_tampered": (AES128_GCM, OAEP, False, "undecryptable"),
    "encrypted_inner_dtd": (AES128_GCM, OAEP, False, "doctype"),
    "encrypted_rsa15": (AES128_GCM, RSA15, True, "genuine"),
    "encrypted_signed_response_unsigned_assertion": (AES128_CBC, OAEP, True, "unsigned"),
    # ADFS's namespace shape (default_ns_verdict): the plaintext needs the EncryptedAssertion's default namespace /
    # declares its own
    "encrypted_default_ns_signed_response": (AES256_CBC, OAEP, True, "default ns in context"),
    "encrypted_default_ns_assertion_signed_gcm": (AES128_GCM, OAEP, False, "default ns self-contained"),
}
SAML_DEFAULT_NS = b'xmlns="urn:oasis:names:tc:SAML:2.0:assertion"'
DS_DEFAULT_NS = b'xmlns="http://www.w3.org/2000/09/xmldsig#"'


def main():
    directory = tempfile.mkdtemp(prefix="saml-idp-selftest-")
    env = {**os.environ, "PORT": "0", "SAML_IDP_DIR": os.path.join(directory, "idp")}
    peer = subprocess.Popen([sys.executable, os.path.join(HERE, "saml-idp.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=open(os.path.join(directory, "peer.log"), "w"),
                            env=env, text=True)
    try:
        line = peer.stdout.readline().strip()
        check(re.fullmatch(r"READY http://127\.0\.0\.1:\d+", line) is not None, f"ready line {line!r}")
        base = line.split(" ", 1)[1]
        run(base, directory)
    finally:
        peer.stdin.close()  # EOF on stdin must stop the peer
        try:
            peer.wait(timeout=10)
            check(peer.returncode == 0, "peer exits 0 when stdin reaches EOF")
        except subprocess.TimeoutExpired:
            peer.kill()
            check(False, "peer exits when stdin reaches EOF")
    if failures:
        print(f"peer log: {os.path.join(directory, 'peer.log')}", file=sys.stderr)
    else:
        shutil.rmtree(directory, ignore_errors=True)
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


def run(base, directory):
    # ---- metadata and certs ----
    status, idp_md = http("GET", f"{base}/metadata")
    check(status == 200 and f'entityID="{base}/metadata"' in idp_md and 'WantAuthnRequestsSigned="true"' in idp_md
          and f'Location="{base}/sso/redirect"' in idp_md and idp_md.count("<md:KeyDescriptor") == 1,
          "GET /metadata")
    _, md_nocert = http("GET", f"{base}/metadata?nocert=1")
    _, md_extra = http("GET", f"{base}/metadata?extra_cert=1")
    check("KeyDescriptor" not in md_nocert, "?nocert=1 has no KeyDescriptor")
    _, cert_pem = http("GET", f"{base}/cert")
    _, attacker_pem = http("GET", f"{base}/attacker-cert")
    body = lambda p: "".join(x for x in p.strip().splitlines() if not x.startswith("-----"))  # noqa: E731
    extra_certs = re.findall(r"<ds:X509Certificate>([^<]+)<", md_extra)
    check(len(extra_certs) == 2 and extra_certs[1] == body(cert_pem) and extra_certs[0] != body(cert_pem),
          "?extra_cert=1: an unused cert first, then the genuine one")
    check(body(cert_pem) != body(attacker_pem), "attacker cert differs from the genuine cert")
    idp_cert = os.path.join(directory, "idp-genuine.crt")
    with open(idp_cert, "w") as f:
        f.write(cert_pem)

    # ---- an SP (pysaml2's client) registers and signs in ----
    client, sp_md, sp_entity, acs, sp_cert = sp_client(directory, base, idp_md)
    sp_key = serialization.load_pem_private_key(open(os.path.join(directory, "sp.key"), "rb").read(), None)
    status, text = http("POST", f"{base}/sp", sp_md, "application/xml")
    check(status == 200, f"POST /sp ({status} {text.strip()})")
    status, text = http("POST", f"{base}/sp", "<not-xml", "application/xml")
    check(status == 400, f"POST /sp with garbage -> 400 ({text.strip()})")
    user = {"name_id": "alice@example.com", "name_id_format": "email", "email": "alice@example.com",
            "given_name": "Alice", "family_name": "Liddell", "groups": ["staff", "admins"]}
    check(http("POST", f"{base}/user", user)[0] == 200, "POST /user")

    relay = "state ~*'&/ü=="  # characters that different percent-encoders treat differently

    def login(relay_state=relay, mutate=None):
        reqid, info = client.prepare_for_authenticate(entityid=f"{base}/metadata", relay_state=relay_state,
                                                      binding=BINDING_HTTP_REDIRECT, sign=True,
                                                      sigalg=SIG_RSA_SHA256)
        location = dict(info["headers"])["Location"]
        if mutate:
            location = mutate(location)
        status, page = http("GET", location)
        return reqid, status, page

    reqid, status, page = login()
    form = parse_form(page)
    check(status == 200 and form.method == "post" and form.action == acs, f"SSO redirect -> POST form to ACS ({status})")
    check(form.inputs.get("RelayState") == relay, "RelayState echoed exactly")
    xml = base64.b64decode(form.inputs["SAMLResponse"])
    resp = client.parse_authn_request_response(form.inputs["SAMLResponse"], BINDING_HTTP_POST,
                                               outstanding={reqid: "/"})
    check(resp is not None and resp.name_id.text == "alice@example.com"
          and resp.name_id.format == NAMEID_FORMAT_EMAILADDRESS, "pysaml2 SP accepts the genuine Response")
    ava = resp.ava if resp else {}
    check(ava.get("email") == ["alice@example.com"] and ava.get("givenName") == ["Alice"]
          and ava.get("sn") == ["Liddell"] and sorted(ava.get("groups", [])) == ["admins", "staff"],
          f"attributes email/givenName/sn/groups ({ava})")
    doc = etree.fromstring(xml)
    check(doc.get("InResponseTo") == reqid and doc.get("Destination") == acs
          and doc.findtext("saml:Issuer", namespaces=NS) == f"{base}/metadata", "InResponseTo/Destination/Issuer")
    check(doc.findtext(".//saml:Audience", namespaces=NS) == sp_entity
          and doc.find(".//saml:SubjectConfirmationData", NS).get("Recipient") == acs, "Audience and Recipient")
    check(all(a.get("NameFormat") == "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
              for a in doc.iterfind(".//saml:Attribute", NS)), "attribute NameFormat basic")
    sig_algs = {m.get("Algorithm") for m in doc.iterfind(".//ds:SignatureMethod", NS)}
    dig_algs = {m.get("Algorithm") for m in doc.iterfind(".//ds:DigestMethod", NS)}
    check(sig_algs == {SIG_RSA_SHA256} and dig_algs == {DIGEST_SHA256}, "RSA-SHA256 and SHA-256 digests")
    check(xmlsec_verify(xml, idp_cert, RESP_SIG, directory) and xmlsec_verify(xml, idp_cert, ASSN_SIG, directory),
          "xmlsec1 verifies the genuine Response and Assertion signatures")
    check(http("GET", f"{base}/probe-hits")[1] and json.loads(http("GET", f"{base}/probe-hits")[1]) ==
          {"xxe": 0, "ref": 0}, "no probe hits yet")

    # ---- the Redirect-binding signature is required and verified ----
    def drop(*names):
        def f(loc):
            u = urllib.parse.urlsplit(loc)
            kept = [p for p in u.query.split("&") if p.split("=", 1)[0] not in names]
            return urllib.parse.urlunsplit(u._replace(query="&".join(kept)))
        return f

    def flip_signature(loc):
        u = urllib.parse.urlsplit(loc)
        parts = []
        for p in u.query.split("&"):
            k, v = p.split("=", 1)
            if k == "Signature":
                raw = bytearray(base64.b64decode(urllib.parse.unquote(v)))
                raw[10] ^= 1
                v = urllib.parse.quote(base64.b64encode(bytes(raw)).decode(), safe="")
            parts.append(f"{k}={v}")
        return urllib.parse.urlunsplit(u._replace(query="&".join(parts)))

    def change_relay(loc):
        return loc.replace("RelayState=", "RelayState=x", 1)

    _, status, text = login(mutate=drop("Signature", "SigAlg"))
    check(status == 400 and "not signed" in text, f"unsigned AuthnRequest -> 400 ({text.strip()[:80]})")
    _, status, text = login(mutate=flip_signature)
    check(status == 400 and "does not verify" in text, f"bad signature -> 400 ({text.strip()[:80]})")
    _, status, text = login(mutate=change_relay)
    check(status == 400, f"RelayState changed after signing -> 400 ({text.strip()[:80]})")
    # an SP that percent-encodes differently from Python (lower-case hex, '~' encoded): the signature is over the
    # octets it sent, which pysaml2's own re-encoding check gets wrong; the peer must still accept it
    reqid, info = client.prepare_for_authenticate(entityid=f"{base}/metadata", relay_state=relay,
                                                  binding=BINDING_HTTP_REDIRECT, sign=True, sigalg=SIG_RSA_SHA256)
    loc = urllib.parse.urlsplit(dict(info["headers"])["Location"])
    vals = dict(urllib.parse.parse_qsl(loc.query))
    enc = lambda v: re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(),  # noqa: E731
                           urllib.parse.quote(v, safe="").replace("~", "%7e"))
    signed = "&".join(f"{k}={enc(vals[k])}" for k in ("SAMLRequest", "RelayState", "SigAlg"))
    sig = sp_key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    status, page = http("GET", urllib.parse.urlunsplit(loc._replace(
        query=signed + "&Signature=" + enc(base64.b64encode(sig).decode()))))
    check(status == 200 and parse_form(page).inputs.get("RelayState") == relay,
          f"signature over the raw query with another percent-encoding is accepted ({status} {page[:100]!r})")
    # a wrong Destination in the AuthnRequest, and an ACS URL that is not in the SP's metadata
    _id, req = client.create_authn_request("http://127.0.0.1:9/not-the-idp", sign=False)
    info = client.apply_binding(BINDING_HTTP_REDIRECT, str(req), destination=f"{base}/sso/redirect",
                                relay_state="r", sign=True, sigalg=SIG_RSA_SHA256)
    status, text = http("GET", dict(info["headers"])["Location"])
    check(status == 400 and "destined" in text, f"wrong AuthnRequest Destination -> 400 ({text.strip()[:80]})")
    _id, info = client.prepare_for_authenticate(entityid=f"{base}/metadata", relay_state="r", sign=True,
                                                binding=BINDING_HTTP_REDIRECT, sigalg=SIG_RSA_SHA256,
                                                assertion_consumer_service_url="http://127.0.0.1:9/evil/acs")
    status, text = http("GET", dict(info["headers"])["Location"])
    check(status == 400 and "AssertionConsumerService" in text, f"unknown ACS URL -> 400 ({text.strip()[:80]})")
    # an SP the IdP does not know, with its own key
    other, _other_md, _, _, _ = sp_client(directory, base, idp_md, name="unknown-sp")
    _reqid, info = other.prepare_for_authenticate(entityid=f"{base}/metadata", relay_state="r",
                                                  binding=BINDING_HTTP_REDIRECT, sign=True, sigalg=SIG_RSA_SHA256)
    status, text = http("GET", dict(info["headers"])["Location"])
    check(status == 400 and "unknown SP" in text, f"unregistered SP -> 400 ({text.strip()[:80]})")
    # the same SP entity id, but the request signed by a different key (re-registered metadata later restores it)
    _, status, text = login(relay_state="")
    check(status == 200 and "RelayState" not in parse_form(text).inputs, "no RelayState -> none echoed")

    # ---- modes: response-only/assertion-only signing, encryption ----
    http("POST", f"{base}/mode", {"sign_response": False})
    reqid, status, page = login()
    xml = base64.b64decode(parse_form(page).inputs["SAMLResponse"])
    check(xml.count(b"SignatureValue>") == 2 and xmlsec_verify(xml, idp_cert, ASSN_SIG, directory)
          and etree.fromstring(xml).find("ds:Signature", NS) is None, "mode sign_response=false")
    http("POST", f"{base}/mode", {"sign_response": True, "sign_assertion": False})
    reqid, status, page = login()
    xml = base64.b64decode(parse_form(page).inputs["SAMLResponse"])
    check(xmlsec_verify(xml, idp_cert, RESP_SIG, directory)
          and etree.fromstring(xml).find("saml:Assertion/ds:Signature", NS) is None, "mode sign_assertion=false")
    http("POST", f"{base}/mode", {"sign_response": True, "sign_assertion": True, "encrypt": True})
    reqid, status, page = login()
    form = parse_form(page)
    check(status == 200, f"encrypted flow answers a form ({status} {page[:120]!r})")
    if status == 200:
        xml = base64.b64decode(form.inputs["SAMLResponse"])
        enc = etree.fromstring(xml).find("saml:EncryptedAssertion", NS)
        algs = [m.get("Algorithm") for m in enc.iterfind(".//xenc:EncryptionMethod", NS)] if enc is not None else []
        check(enc is not None and algs == ["http://www.w3.org/2001/04/xmlenc#aes128-cbc",
                                           "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"],
              f"mode encrypt: EncryptedAssertion, AES-128-CBC + RSA-OAEP-MGF1P ({algs})")
        resp = client.parse_authn_request_response(form.inputs["SAMLResponse"], BINDING_HTTP_POST,
                                                   outstanding={reqid: "/"})
        check(resp is not None and resp.name_id.text == "alice@example.com", "pysaml2 SP decrypts and accepts it")
    http("POST", f"{base}/mode", {"encrypt": False})

    # ---- attribute names like Okta/Entra, persistent NameID ----
    claims = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
    http("POST", f"{base}/user", {**user, "name_id": "00u1abcd", "name_id_format": "persistent",
                                  "attribute_names": {"email": claims + "emailaddress", "given_name": claims +
                                                      "givenname", "family_name": claims + "surname"},
                                  "attribute_name_format": "uri"})
    reqid, status, page = login()
    doc = etree.fromstring(base64.b64decode(parse_form(page).inputs["SAMLResponse"]))
    names = sorted(a.get("Name") for a in doc.iterfind(".//saml:Attribute", NS))
    nid = doc.find(".//saml:NameID", NS)
    check(names == sorted([claims + "emailaddress", claims + "givenname", claims + "surname", "groups"])
          and nid.text == "00u1abcd" and nid.get("Format").endswith("persistent"), f"attribute_names ({names})")
    check({a.get("NameFormat") for a in doc.iterfind(".//saml:Attribute", NS)}
          == {"urn:oasis:names:tc:SAML:2.0:attrname-format:uri"}, "attribute_name_format uri")
    http("POST", f"{base}/user", {**user, "attribute_name_format": "none"})
    reqid, status, page = login()
    doc = etree.fromstring(base64.b64decode(parse_form(page).inputs["SAMLResponse"]))
    check(status == 200 and all(a.get("NameFormat") is None for a in doc.iterfind(".//saml:Attribute", NS)),
          "attribute_name_format none: no NameFormat attribute")
    http("POST", f"{base}/user", user)

    # ---- IdP-initiated ----
    status, page = http("GET", f"{base}/idp-initiated?sp={urllib.parse.quote(sp_entity, safe='')}&relay_state=rs1")
    form = parse_form(page)
    doc = etree.fromstring(base64.b64decode(form.inputs["SAMLResponse"]))
    check(status == 200 and form.action == acs and form.inputs.get("RelayState") == "rs1"
          and doc.get("InResponseTo") is None
          and doc.find(".//saml:SubjectConfirmationData", NS).get("InResponseTo") is None, "IdP-initiated form")
    resp = client.parse_authn_request_response(form.inputs["SAMLResponse"], BINDING_HTTP_POST)
    check(resp is not None and resp.name_id.text == "alice@example.com", "pysaml2 SP accepts the unsolicited one")

    forge_checks(base, directory, client, sp_entity, acs, sp_cert, idp_cert, attacker_pem)


def forge_checks(base, directory, client, sp_entity, acs, sp_cert, idp_cert, attacker_pem):
    status, text = http("POST", f"{base}/forge", {"kind": "nope", "sp_entity_id": sp_entity, "acs_url": acs,
                                                  "name_id": "a@example.com"})
    check(status == 400 and "xsw1" in text and "encrypted_tampered" in text, "unknown kind -> 400 listing kinds")
    kinds = re.search(r"known kinds: (.*)", text).group(1).split(", ")
    missing = [k for k in ENCRYPTED_KINDS if k not in kinds]
    check(not missing, f"the kinds list has every encrypted_* kind checked here (missing: {missing})")
    attacker_cert = os.path.join(directory, "attacker.crt")
    with open(attacker_cert, "w") as f:
        f.write(attacker_pem)
    http("POST", f"{base}/probe-hits/reset")
    pysaml2_sp = {}
    evil = "evil@example.com"
    for kind in kinds:
        irt = "_req" + kind
        status, text = http("POST", f"{base}/forge", {"kind": kind, "sp_entity_id": sp_entity, "acs_url": acs,
                                                      "in_response_to": irt, "name_id": "bob@example.com",
                                                      "email": "bob@example.com", "sp_cert_pem": sp_cert})
        if not check(status == 200, f"forge {kind} ({status} {text[:100] if status != 200 else ''})"):
            continue
        out = json.loads(text)
        xml = base64.b64decode(out["SAMLResponse"])
        check(xml.decode() == out["xml"] and out["evil_identity"] == evil, f"forge {kind}: xml == base64 payload")
        try:
            v = verdict(kind, xml, directory, idp_cert, attacker_cert, acs, sp_entity, irt, base)
            check(v is True, f"forge {kind}: built as named" + ("" if v is True else f" ({v})"))
        except Exception as e:  # noqa: BLE001
            check(False, f"forge {kind}: built as named ({type(e).__name__}: {e})")
        if kind not in ("billion_laughs", "xxe_http", "reference_uri_http"):
            # pysaml2 as a reference SP (informational): does it refuse? (it would fetch the probes: skipped)
            try:
                r = client.parse_authn_request_response(out["SAMLResponse"], BINDING_HTTP_POST,
                                                        outstanding={irt: "/"})
                if r is None:
                    pysaml2_sp[kind] = "refused (parse returned None)"
                elif r.name_id is None:  # e.g. a wrong Destination: pysaml2 hands back an unverified shell
                    pysaml2_sp[kind] = "refused (returned a response with no verified assertion)"
                else:
                    pysaml2_sp[kind] = f"ACCEPTED as {r.name_id.text}"
            except Exception as e:  # noqa: BLE001
                pysaml2_sp[kind] = f"refused ({type(e).__name__})"
    for kind in ("valid", "valid_assertion_signed", "valid_response_signed"):
        check(pysaml2_sp.get(kind, "").startswith("ACCEPTED as bob@example.com"), f"pysaml2 SP accepts {kind}")
    print("pysaml2 7.5.5 as the SP, per forge kind (informational):", file=sys.stderr)
    for kind, v in pysaml2_sp.items():
        print(f"    {kind:30} {v}", file=sys.stderr)
    print("xmlsec1 (references resolved by ID, as the spec says) on the XSW kinds (informational):", file=sys.stderr)
    for kind, v in XSW_XMLSEC.items():
        print(f"    {kind:30} {'verifies' if v else 'does not verify'}", file=sys.stderr)


def verdict(kind, xml, directory, idp_cert, attacker_cert, acs, sp_entity, irt, base):
    """True when the forged document is what the kind says; otherwise a short reason."""
    evil = "evil@example.com"
    dtd_kinds = ("xxe", "xxe_http", "billion_laughs", "dtd_internal_entity")
    if kind in dtd_kinds:
        check(b"<!DOCTYPE samlp:Response [" in xml, f"forge {kind}: has a DOCTYPE")
        if kind == "billion_laughs":  # never parsed here: libxml2 itself refuses the amplification
            return (True if b'<!ENTITY lol9 "&lol8;&lol8;' in xml and b'<!ENTITY lol "lol">' in xml
                    and b"&lol9;</saml:NameID>" in xml else "no lol9 bomb")
        if kind == "xxe_http":
            # libxml2 >= 2.13 has no HTTP client, so play the vulnerable parser with expat (xml.sax fetches
            # external general entities with urllib when asked to): that fetch must show up as a probe hit.
            before = json.loads(http("GET", f"{base}/probe-hits")[1])["xxe"]
            value = sax_nameid(xml)
            after = json.loads(http("GET", f"{base}/probe-hits")[1])["xxe"]
            if after <= before or value != evil:  # one fetch per entity reference (NameID and email)
                return f"expanding did not fetch /xxe-probe ({before} -> {after}) or gave {value!r}"
            expanded = re.sub(rb"<!DOCTYPE[^]]*]>", b"", xml, count=1).replace(b"&xxe;", value.encode())
        else:
            expanded = etree.tostring(etree.fromstring(xml, etree.XMLParser(resolve_entities=True,
                                                                             load_dtd=True)))
        nid = etree.fromstring(expanded).findtext(".//saml:NameID", namespaces=NS)
        if kind == "dtd_internal_entity" and nid != evil:
            return f"NameID expands to {nid!r}"
        if kind == "xxe" and nid != open("/etc/hostname").read():
            return f"NameID expands to {nid!r}, not /etc/hostname"
        if not (xmlsec_verify(expanded, idp_cert, RESP_SIG, directory)
                and xmlsec_verify(expanded, idp_cert, ASSN_SIG, directory)):
            return "signatures do not verify after expansion"
        return True

    doc = etree.fromstring(xml)
    assertions = doc.findall("saml:Assertion", NS)
    first = doc.find(".//saml:Assertion", NS)  # the first in document order, anywhere
    nid_first = first.findtext("saml:Subject/saml:NameID", namespaces=NS) if first is not None else None
    v_resp = lambda: xmlsec_verify(xml, idp_cert, RESP_SIG, directory)  # noqa: E731
    v_assn = lambda: xmlsec_verify(xml, idp_cert, ASSN_SIG, directory)  # noqa: E731
    sigs = len(doc.findall(".//ds:Signature", NS))

    if kind == "valid":
        return True if v_resp() and v_assn() else "does not verify"
    if kind == "valid_assertion_signed":
        return True if v_assn() and doc.find("ds:Signature", NS) is None else "wrong signatures"
    if kind == "valid_response_signed":
        return True if v_resp() and first.find("ds:Signature", NS) is None else "wrong signatures"
    if kind.startswith("xsw"):
        # Exactly one ds:Signature; its Reference resolves (by ID, to the clean copy) and verifies the way a naive
        # verifier checks it, while the element an SP would read first carries the evil identity.
        all_sigs = list(doc.iter(f"{{{NS['ds']}}}Signature"))
        ref = all_sigs[0].find("ds:SignedInfo/ds:Reference", NS).get("URI")[1:] if len(all_sigs) == 1 else None
        tag = "Response" if kind in ("xsw1", "xsw2") else "Assertion"
        ns = "samlp" if tag == "Response" else "saml"
        own_nameid = "saml:Subject/saml:NameID" if tag == "Assertion" else "saml:Assertion/saml:Subject/saml:NameID"
        clean = [e for e in doc.iter(f"{{{NS[ns]}}}{tag}") if e.get("ID") == ref
                 and e.findtext(own_nameid, namespaces=NS) == "bob@example.com"]
        naive = len(clean) == 1 and naive_verify(all_sigs[0], clean[0], idp_cert)
        if tag == "Response":
            read_first = doc.find("saml:Assertion", NS)
        else:
            read_first = next(doc.iter(f"{{{NS['saml']}}}Assertion"))
        evil_first = read_first.findtext("saml:Subject/saml:NameID", namespaces=NS) == evil
        shapes = {
            "xsw1": all_sigs and all_sigs[0].getparent() is doc and all_sigs[0].find("samlp:Response", NS) is not None
            and doc.get("ID") != ref,
            "xsw2": all_sigs and all_sigs[0].getparent() is doc
            and all_sigs[0].getprevious() is not None and all_sigs[0].getprevious().get("ID") == ref
            and doc.get("ID") != ref,
            "xsw3": len(assertions) == 2 and assertions[0].find("ds:Signature", NS) is None
            and assertions[0].get("ID") != ref and assertions[1].get("ID") == ref,
            "xsw4": len(assertions) == 1 and assertions[0].get("ID") != ref
            and assertions[0].find("saml:Assertion", NS) is not None,
            "xsw5": len(assertions) == 2 and assertions[1].get("ID") == ref and assertions[0].get("ID") != ref
            and assertions[0].find("ds:Signature", NS) is not None,
            "xsw6": len(assertions) == 1 and assertions[0].get("ID") != ref
            and assertions[0].find("ds:Signature/saml:Assertion", NS) is not None,
            "xsw7": doc.find("samlp:Extensions/saml:Assertion", NS) is not None
            and doc.find("samlp:Extensions", NS).getnext().tag == f"{{{NS['samlp']}}}Status",
            "xsw8": len(assertions) == 1 and assertions[0].get("ID") == ref
            and assertions[0].find("ds:Signature/ds:Object/saml:Assertion", NS) is not None,
        }
        ok = bool(shapes[kind]) and naive and evil_first
        XSW_XMLSEC[kind] = v_resp() if tag == "Response" else v_assn_any(xml, idp_cert, directory, kind)
        return True if ok else f"shape {bool(shapes[kind])}, naive verify {naive}, evil read first {evil_first}"
    if kind in ("comment_in_nameid", "pi_in_nameid"):
        node = first.find(".//saml:NameID", NS)
        marker = b"<!---->" if kind == "comment_in_nameid" else b"<?evil ?>"
        ok = (node.text == evil and len(node) == 1 and node[0].tail == ".attacker.invalid"
              and b"evil@example.com" + marker + b".attacker.invalid</saml:NameID>" in xml)
        return True if ok and v_resp() and v_assn() else f"value split {ok}, verifies {v_resp()} {v_assn()}"
    if kind == "unsigned":
        return True if sigs == 0 and nid_first == "bob@example.com" else "has a signature"
    if kind == "signature_removed":
        return True if sigs == 0 else "has a signature"
    if kind == "tampered":
        return True if nid_first == evil and not v_assn() and not v_resp() else "still verifies"
    if kind == "foreign_key":
        ok = (not v_resp() and not v_assn() and xmlsec_verify(xml, attacker_cert, RESP_SIG, directory)
              and xmlsec_verify(xml, attacker_cert, ASSN_SIG, directory))
        return True if ok else "not signed by the attacker key only"
    if kind == "inner_foreign_key":
        ok = v_resp() and not v_assn() and xmlsec_verify(xml, attacker_cert, ASSN_SIG, directory)
        return True if ok else "not the genuine Response over an Assertion signed by the attacker key"
    if kind == "encrypted_unsigned_response":
        return True if sigs == 0 and doc.find("saml:EncryptedAssertion", NS) is not None else "signed or clear"
    if kind in ENCRYPTED_KINDS:
        return encrypted_verdict(kind, doc, directory, idp_cert, attacker_cert, irt, v_resp, sigs)
    if kind.startswith("encrypted_"):
        enc = doc.find("saml:EncryptedAssertion/xenc:EncryptedData", NS)
        algs = [m.get("Algorithm") for m in enc.iterfind(".//xenc:EncryptionMethod", NS)]
        want = {"encrypted_aes128_cbc": "xmlenc#aes128-cbc", "encrypted_tampered": "xmlenc#aes128-cbc",
                "encrypted_aes128_gcm": "xmlenc11#aes128-gcm", "encrypted_aes256_gcm": "xmlenc11#aes256-gcm"}[kind]
        ok = algs[0].endswith(want) and algs[1] == "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p" and v_resp()
        return True if ok and first is None else f"algorithms {algs}, response verifies {v_resp()}"

    # properly signed, wrong content
    s = lambda path: doc.find(path, NS)  # noqa: E731
    now = dt.datetime.now(dt.timezone.utc)
    t = lambda v: dt.datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)  # noqa: E731
    content = {
        "wrong_audience": lambda: first.findtext(".//saml:Audience", namespaces=NS) not in (None, sp_entity),
        "wrong_destination": lambda: doc.get("Destination") != acs,
        "wrong_recipient": lambda: s(".//saml:SubjectConfirmationData").get("Recipient") != acs,
        "wrong_issuer": lambda: doc.findtext("saml:Issuer", namespaces=NS) != f"{base}/metadata"
        and first.findtext("saml:Issuer", namespaces=NS) != f"{base}/metadata",
        "no_audience": lambda: first.find(".//saml:AudienceRestriction", NS) is None,
        "expired": lambda: t(s(".//saml:Conditions").get("NotOnOrAfter")) < now - dt.timedelta(minutes=9)
        and t(s(".//saml:SubjectConfirmationData").get("NotOnOrAfter")) < now - dt.timedelta(minutes=9)
        and t(doc.get("IssueInstant")) < now - dt.timedelta(minutes=14),
        "not_yet_valid": lambda: t(s(".//saml:Conditions").get("NotBefore")) > now + dt.timedelta(minutes=9),
        "sha1": lambda: {m.get("Algorithm") for m in doc.iterfind(".//ds:SignatureMethod", NS)}
        == {"http://www.w3.org/2000/09/xmldsig#rsa-sha1"}
        and {m.get("Algorithm") for m in doc.iterfind(".//ds:DigestMethod", NS)}
        == {"http://www.w3.org/2000/09/xmldsig#sha1"},
        "two_assertions": lambda: len(assertions) == 2 and assertions[1].findtext(".//saml:NameID",
                                                                                  namespaces=NS) == evil
        and xmlsec_verify(xml, idp_cert, "(" + ASSN_SIG + ")[1]", directory)
        and xmlsec_verify(xml, idp_cert, "(" + ASSN_SIG + ")[2]", directory),
        "status_failure": lambda: first is None
        and s("samlp:Status/samlp:StatusCode").get("Value").endswith("Responder"),
        "reference_uri_http": lambda: external_ref(doc, f"{base}/ref-probe"),
        "reference_uri_file": lambda: external_ref(doc, "file:///etc/hostname"),
    }
    if kind not in content:
        return "no check for this kind"
    if not content[kind]():
        return "content not as named"
    irt_ok = doc.get("InResponseTo") == irt and (first is None or s(".//saml:SubjectConfirmationData").get(
        "InResponseTo") == irt)
    if not irt_ok:
        return "InResponseTo not as given"
    if kind == "reference_uri_http":
        before = json.loads(http("GET", f"{base}/probe-hits")[1])["ref"]
        ok = v_resp() and v_assn()  # xmlsec1 dereferences the URI: that is a probe hit
        after = json.loads(http("GET", f"{base}/probe-hits")[1])["ref"]
        return True if ok and after == before + 1 else f"verifies {ok}, ref hits {before} -> {after}"
    if kind in ("status_failure", "two_assertions"):
        return True if v_resp() else "does not verify"
    return True if v_resp() and v_assn() else "signatures do not verify"


def encrypted_verdict(kind, doc, directory, idp_cert, attacker_cert, irt, v_resp, sigs):
    """The shape of the newer encrypted_* kinds: EncryptionMethod algorithms, the Response signature (present and
    verifying, or absent), then the EncryptedData decrypted with the SP's key by python-xmlsec and the plaintext
    checked as ENCRYPTED_KINDS says."""
    content_alg, transport_alg, response_signed, plain = ENCRYPTED_KINDS[kind]
    sp_key = os.path.join(directory, "sp.key")
    enc = doc.find("saml:EncryptedAssertion/xenc:EncryptedData", NS)
    if enc is None or doc.find(".//saml:Assertion", NS) is not None:
        return "no EncryptedAssertion, or an Assertion in the clear"
    algs = [enc.find("xenc:EncryptionMethod", NS).get("Algorithm"),
            enc.find("ds:KeyInfo/xenc:EncryptedKey/xenc:EncryptionMethod", NS).get("Algorithm")]
    if algs != [content_alg, transport_alg]:
        return f"algorithms {algs}"
    if response_signed and not (sigs == 1 and doc.find("ds:Signature", NS) is not None and v_resp()):
        return "the Response signature is missing or does not verify"
    if not response_signed and sigs != 0:
        return "the Response (or something in the clear) is signed"
    if doc.get("InResponseTo") != irt:
        return "InResponseTo not as given"
    octets = decrypt_octets(enc, sp_key)
    if plain == "undecryptable":
        if octets is not None:
            return "decrypts although the ciphertext was changed"
        # control: flipping the same byte back (the middle of the CipherValue) makes it decrypt and verify
        fixed = copy.deepcopy(doc)
        value = fixed.find("saml:EncryptedAssertion/xenc:EncryptedData/xenc:CipherData/xenc:CipherValue", NS)
        raw = bytearray(base64.b64decode(value.text))
        raw[len(raw) // 2] ^= 0x01
        value.text = base64.b64encode(bytes(raw)).decode()
        assertion = decrypt_in_place(fixed, sp_key)
        if assertion is None or not xmlsec_verify(etree.tostring(assertion), idp_cert, PLAIN_SIG, directory):
            return "the byte flipped back does not give a genuinely signed Assertion"
        return True
    if octets is None:
        return "does not decrypt with the SP key"
    if plain.startswith("default ns"):
        return default_ns_verdict(plain, doc, enc, octets, sp_key, directory, idp_cert, attacker_cert, irt)
    if plain == "doctype":
        if not octets.startswith(b"<!DOCTYPE saml:Assertion ["):
            return f"plaintext starts {octets[:40]!r}, not with a DOCTYPE"
        # behind the DTD (which declares an unused internal entity) a genuinely signed Assertion, as it stands
        plaintext = etree.fromstring(octets, etree.XMLParser(resolve_entities=False, no_network=True))
        nid = plaintext.findtext("saml:Subject/saml:NameID", namespaces=NS)
        if not (plaintext.getroottree().docinfo.internalDTD is not None and nid == "bob@example.com"
                and xmlsec_verify(octets, idp_cert, PLAIN_SIG, directory)):
            return "no internal DTD subset before a genuinely signed Assertion for bob"
        return True
    if not octets.startswith(b"<saml:Assertion ") or b"<!DOCTYPE" in octets:
        return f"plaintext starts {octets[:40]!r}"
    # decrypted in place, where the Response's namespace declarations are in scope (the plaintext uses the saml
    # prefix without declaring it); lxml serializes the element with the declarations it inherits
    assertion = decrypt_in_place(doc, sp_key)
    if assertion is None:
        return "does not decrypt in place into a saml:Assertion"
    plaintext = etree.tostring(assertion)
    nid = assertion.findtext("saml:Subject/saml:NameID", namespaces=NS)
    if assertion.find(".//saml:SubjectConfirmationData", NS).get("InResponseTo") != irt:
        return "SubjectConfirmationData InResponseTo not as given"
    by_idp = lambda: xmlsec_verify(plaintext, idp_cert, PLAIN_SIG, directory)  # noqa: E731
    by_attacker = lambda: xmlsec_verify(plaintext, attacker_cert, PLAIN_SIG, directory)  # noqa: E731
    if plain == "genuine":
        ok = nid == "bob@example.com" and by_idp() and not by_attacker()
    elif plain == "attacker":
        ok = nid == "bob@example.com" and not by_idp() and by_attacker()
    elif plain == "tampered":
        ok = nid == "evil@example.com" and assertion.find("ds:Signature", NS) is not None and not by_idp()
    else:  # unsigned
        ok = nid == "bob@example.com" and assertion.find(".//ds:Signature", NS) is None
    return True if ok else f"decrypted Assertion is not {plain} (NameID {nid!r})"


def default_ns_verdict(plain, doc, enc, octets, sp_key, directory, idp_cert, attacker_cert, irt):
    """ADFS's namespace shape: no saml prefix anywhere, <EncryptedAssertion xmlns="...assertion">, the
    EncryptedData's <KeyInfo xmlns="...xmldsig#">, and a genuinely signed default-namespace Assertion inside.
    "in context": the plaintext is <Assertion ID=... with no xmlns (on its own, a no-namespace element), a SAML
    Assertion once parsed inside the EncryptedAssertion, where its signature verifies; "self-contained": the
    plaintext starts <Assertion xmlns="...assertion" and its octets verify as they are."""
    clear = etree.tostring(doc)
    if b"xmlns:saml=" in clear or b"<saml:" in clear:
        return "the saml prefix is used in the Response"
    wrapper = doc.find("saml:EncryptedAssertion", NS)
    if wrapper.prefix is not None or b"<EncryptedAssertion " + SAML_DEFAULT_NS + b">" not in clear:
        return "the EncryptedAssertion is not unprefixed with its own default namespace declaration"
    key_info = enc.find("ds:KeyInfo", NS)
    if key_info.prefix is not None or b"<KeyInfo " + DS_DEFAULT_NS + b">" not in clear:
        return "the EncryptedData's KeyInfo does not declare XML-DSig as its default namespace"
    alone = etree.fromstring(octets, etree.XMLParser(resolve_entities=False, no_network=True))
    if plain == "default ns in context":
        if not octets.startswith(b'<Assertion ID="') or SAML_DEFAULT_NS in octets[:octets.index(b">")]:
            return f"plaintext starts {octets[:60]!r}, not an Assertion without its own xmlns"
        if alone.tag != "Assertion":
            return f"the plaintext on its own parses as {alone.tag}, not a no-namespace Assertion"
        # as a receiver that parses the plaintext where the EncryptedAssertion's namespaces are in scope
        in_context = etree.fromstring(b"<EncryptedAssertion " + SAML_DEFAULT_NS + b">" + octets
                                      + b"</EncryptedAssertion>")[0]
    else:
        if not octets.startswith(b"<Assertion " + SAML_DEFAULT_NS + b' ID="'):
            return f"plaintext starts {octets[:80]!r}, not an Assertion declaring its default namespace"
        if not (xmlsec_verify(octets, idp_cert, PLAIN_SIG, directory)
                and not xmlsec_verify(octets, attacker_cert, PLAIN_SIG, directory)):
            return "the plaintext octets on their own are not an Assertion signed by the genuine key"
        in_context = alone
    placed = decrypt_in_place(doc, sp_key)  # libxmlsec1 parses it in the EncryptedAssertion's context
    for assertion in (in_context, placed):
        if assertion is None or assertion.tag != f"{{{NS['saml']}}}Assertion":
            return "does not decrypt into a SAML Assertion"
        if any(e.prefix is not None for e in assertion.iter(f"{{{NS['saml']}}}*")):
            return "a SAML element of the Assertion has a prefix"
        attrs = {a.get("Name"): a.findtext("saml:AttributeValue", namespaces=NS)
                 for a in assertion.iterfind("saml:AttributeStatement/saml:Attribute", NS)}
        if (assertion.findtext("saml:Subject/saml:NameID", namespaces=NS) != "bob@example.com"
                or attrs != {"email": "bob@example.com", "givenName": "Test", "sn": "User"}
                or assertion.find(".//saml:SubjectConfirmationData", NS).get("InResponseTo") != irt):
            return f"decrypted Assertion content not as built (attributes {attrs})"
        plaintext = etree.tostring(assertion)  # lxml declares the inherited default namespace on it
        if not (xmlsec_verify(plaintext, idp_cert, PLAIN_SIG, directory)
                and not xmlsec_verify(plaintext, attacker_cert, PLAIN_SIG, directory)):
            return "the decrypted Assertion, in its context, is not signed by the genuine key"
    return True


def sp_keys_manager(sp_key):
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_file(sp_key, xmlsec.KeyFormat.PEM))
    return manager


def decrypt_octets(enc, sp_key):
    """The plaintext octets of an xenc:EncryptedData, decrypted by python-xmlsec with the SP's private key
    (a copy without Type, so that libxmlsec1 returns the octets instead of parsing them into the tree); None when
    decryption fails."""
    enc = copy.deepcopy(enc)
    enc.attrib.pop("Type", None)
    try:
        out = xmlsec.EncryptionContext(sp_keys_manager(sp_key)).decrypt(enc)
    except xmlsec.Error:
        return None
    return out if isinstance(out, bytes) else None


def decrypt_in_place(doc, sp_key):
    """Decrypt (a copy of) the document's EncryptedData in place, as a Type=Element receiver does: the Assertion
    that replaces it, or None."""
    doc = copy.deepcopy(doc)
    try:
        out = xmlsec.EncryptionContext(sp_keys_manager(sp_key)).decrypt(
            doc.find("saml:EncryptedAssertion/xenc:EncryptedData", NS))
    except xmlsec.Error:
        return None
    return out if getattr(out, "tag", None) == f"{{{NS['saml']}}}Assertion" else None


def sax_nameid(document):
    """The NameID text as seen by a SAX parser that resolves external entities (a deliberately unsafe one)."""
    import xml.sax

    class H(xml.sax.handler.ContentHandler):
        def __init__(self):
            super().__init__()
            self.inside, self.text = False, ""

        def startElementNS(self, name, qname, attrs):
            self.inside = name == (NS["saml"], "NameID") and not self.text

        def endElementNS(self, name, qname):
            self.inside = False

        def characters(self, content):
            if self.inside:
                self.text += content

    parser = xml.sax.make_parser()
    parser.setFeature(xml.sax.handler.feature_namespaces, True)
    parser.setFeature(xml.sax.handler.feature_external_ges, True)
    h = H()
    parser.setContentHandler(h)
    import io

    parser.parse(io.BytesIO(document))
    return h.text


def external_ref(doc, uri):
    refs = [r.get("URI") for r in doc.find("saml:Assertion/ds:Signature", NS).iterfind(".//ds:Reference", NS)]
    return len(refs) == 2 and refs[1] == uri


def v_assn_any(xml, idp_cert, directory, kind):
    """Verify the one signed Assertion wherever it sits (xsw3–xsw6 move it)."""
    return xmlsec_verify(xml, idp_cert, "//*[local-name()='Assertion']/*[local-name()='Signature']", directory)


def naive_verify(sig, target, cert_file):
    """A verifier that trusts its own idea of what the Reference points at: target minus its own ds:Signature
    children (enveloped), exclusive c14n, SHA-256 compared with DigestValue, then RSA-SHA256 over SignedInfo."""
    import hashlib

    clean = copy.deepcopy(target)
    for child in clean.findall("ds:Signature", NS):
        clean.remove(child)
    digest = base64.b64encode(hashlib.sha256(etree.tostring(clean, method="c14n", exclusive=True)).digest())
    if digest.decode() != sig.findtext("ds:SignedInfo/ds:Reference/ds:DigestValue", namespaces=NS).strip():
        return False
    signed_info = etree.tostring(sig.find("ds:SignedInfo", NS), method="c14n", exclusive=True)
    key = x509.load_pem_x509_certificate(open(cert_file, "rb").read()).public_key()
    try:
        key.verify(base64.b64decode(sig.findtext("ds:SignatureValue", namespaces=NS)), signed_info,
                   padding.PKCS1v15(), hashes.SHA256())
        return True
    except Exception:  # noqa: BLE001
        return False


if __name__ == "__main__":
    sys.exit(main())
