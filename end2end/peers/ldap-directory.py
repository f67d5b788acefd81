#!/usr/bin/env python3
"""A private OpenLDAP directory (Debian's slapd) on 127.0.0.1 for tests, with a small HTTP control server.

Started as `python3 end2end/peers/ldap-directory.py` (packages slapd, ldap-utils and the openssl CLI; Python
stdlib only). It makes a test CA, a server certificate for 127.0.0.1/localhost and an unrelated "other CA", builds
a cn=config for its own slapd (mdb + memberof overlay, StartTLS and LDAPS, ACLs), starts that slapd on free ports,
loads a fixed set of people, groups and a service account, checks StartTLS and LDAPS binds and memberOf, and then
prints "READY http://127.0.0.1:<port>" (the control server). It stops when stdin reaches EOF, on SIGTERM, or after
10 minutes; slapd is stopped (by its PID) and the temporary directory removed, even when this process is killed
with SIGKILL (slapd runs with a parent-death signal and a forked janitor cleans up). Logs go to stderr only.
The HTTP interface, the data and the notes on Debian's slapd are in ldap-directory.md.
"""
import base64
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LIFETIME_MINUTES = 10
log = logging.getLogger("ldap-directory")

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
MODULE_PATH = "/usr/lib/ldap"
SCHEMA_DIR = "/etc/ldap/schema"
SCHEMAS = ("core", "cosine", "inetorgperson")

BASE_DN = "dc=example,dc=com"
PEOPLE_DN = f"ou=people,{BASE_DN}"
GROUPS_DN = f"ou=groups,{BASE_DN}"
SERVICES_DN = f"ou=services,{BASE_DN}"
ROOT_DN = f"cn=admin,{BASE_DN}"
BIND_DN = f"cn=latchkey,{SERVICES_DN}"
BIND_PASSWORD = "service-secret"

# The people's mail domain (env MAIL_DOMAIN, default example.com; the browser test uses its own verified domain).
MAIL_DOMAIN = os.environ.get("MAIL_DOMAIN", "example.com")
# uid -> (cn, givenName, sn, mail or None, password)
PEOPLE = {
    "alice": ("Alice Liddell", "Alice", "Liddell", f"alice@{MAIL_DOMAIN}", "alice-pw"),
    "bob": ("Bob Builder", "Bob", "Builder", f"bob@{MAIL_DOMAIN}", "bob-pw"),
    "carol": ("Carol Danvers", "Carol", "Danvers", f"carol@{MAIL_DOMAIN}", "carol-pw"),
    "nomail": ("No Mail", "No", "Mail", None, "nomail-pw"),
    "dup1": ("Dup One", "Dup", "One", f"shared@{MAIL_DOMAIN}", "dup-pw"),
    "dup2": ("Dup Two", "Dup", "Two", f"shared@{MAIL_DOMAIN}", "dup-pw"),
}
GROUPS = {"engineers": ["alice", "bob"], "admins": ["alice"]}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # what /group and /password accept as uid / group


def person_dn(uid):
    return f"uid={uid},{PEOPLE_DN}"


def group_dn(name):
    return f"cn={name},{GROUPS_DN}"


def ssha(password):
    """{SSHA} as slappasswd makes it: base64(SHA-1(password + salt) + salt)."""
    salt = os.urandom(8)
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode()


# --------------------------------------------------------------------------------------------------------------
# LDIF in and out.
# --------------------------------------------------------------------------------------------------------------
SAFE_VALUE = re.compile(r"^[\x01-\x09\x0b-\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b-\x0c\x0e-\x7f]*$")


def ldif_line(attr, value):
    """One attribute line, base64 when RFC 2849 asks for it (or when it ends with a space)."""
    if value == "" or (SAFE_VALUE.match(value) and not value.endswith(" ")):
        return f"{attr}: {value}"
    return f"{attr}:: {base64.b64encode(value.encode()).decode()}"


def ldif_entry(dn, attrs):
    lines = [ldif_line("dn", dn)]
    for attr, values in attrs:
        for v in values if isinstance(values, (list, tuple)) else [values]:
            lines.append(ldif_line(attr, v))
    return "\n".join(lines) + "\n"


def parse_ldif(text):
    """ldapsearch -LLL -o ldif-wrap=no output -> [(dn, {attr: [values]})] (continuation lines handled anyway)."""
    entries, lines = [], []
    for raw in text.splitlines():
        if raw.startswith(" ") and lines:
            lines[-1] += raw[1:]
        else:
            lines.append(raw)
    dn, attrs = None, {}
    for line in lines + [""]:
        if not line.strip():
            if dn is not None:
                entries.append((dn, attrs))
            dn, attrs = None, {}
            continue
        if line.startswith("#"):
            continue
        name, _, rest = line.partition(":")
        if rest.startswith(":"):
            value = base64.b64decode(rest[1:].strip()).decode("utf-8", "replace")
        else:
            value = rest[1:] if rest.startswith(" ") else rest
        if name.lower() == "dn":
            dn = value
        else:
            attrs.setdefault(name, []).append(value)
    return entries


# --------------------------------------------------------------------------------------------------------------
# Certificates (openssl CLI).
# --------------------------------------------------------------------------------------------------------------
OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
"""


def run(argv, input_text=None, env=None, timeout=30, check=True, cwd=None):
    p = subprocess.run(argv, input=input_text, capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd,
                       stdin=None if input_text is not None else subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise RuntimeError(f"{os.path.basename(argv[0])} exited {p.returncode}: {(p.stderr or p.stdout).strip()}")
    return p


def make_certificates(d):
    cnf = os.path.join(d, "openssl.cnf")
    with open(cnf, "w") as f:
        f.write(OPENSSL_CNF)
    serial = lambda: "0x" + secrets.token_hex(16)  # noqa: E731

    def ca(name, cn):
        run(["openssl", "req", "-x509", "-config", cnf, "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
             "-subj", f"/O=Latchkey tests/CN={cn}", "-extensions", "v3_ca", "-set_serial", serial(),
             "-keyout", os.path.join(d, f"{name}.key"), "-out", os.path.join(d, f"{name}.pem")])

    ca("ca", "Latchkey LDAP test CA")
    ca("other-ca", "Latchkey LDAP other CA")
    run(["openssl", "req", "-new", "-config", cnf, "-newkey", "rsa:2048", "-nodes", "-sha256",
         "-subj", "/O=Latchkey tests/CN=localhost",
         "-keyout", os.path.join(d, "server.key"), "-out", os.path.join(d, "server.csr")])
    run(["openssl", "x509", "-req", "-in", os.path.join(d, "server.csr"), "-sha256", "-days", "2",
         "-CA", os.path.join(d, "ca.pem"), "-CAkey", os.path.join(d, "ca.key"), "-set_serial", serial(),
         "-extfile", cnf, "-extensions", "v3_server", "-out", os.path.join(d, "server.pem")])
    for key in ("ca.key", "other-ca.key", "server.key"):
        os.chmod(os.path.join(d, key), 0o600)


# --------------------------------------------------------------------------------------------------------------
# slapd configuration and data.
# --------------------------------------------------------------------------------------------------------------
def config_ldif(d, root_pw_hash, log_level):
    parts = [ldif_entry("cn=config", [
        ("objectClass", "olcGlobal"), ("cn", "config"),
        ("olcPidFile", os.path.join(d, "slapd.pid")), ("olcArgsFile", os.path.join(d, "slapd.args")),
        ("olcLogLevel", log_level),
        ("olcTLSCACertificateFile", os.path.join(d, "ca.pem")),
        ("olcTLSCertificateFile", os.path.join(d, "server.pem")),
        ("olcTLSCertificateKeyFile", os.path.join(d, "server.key")),
        # TLS 1.2 or later. Debian's slapd uses GnuTLS, which does not enforce olcTLSProtocolMin by itself (TLS 1.0
        # was still accepted): the GnuTLS priority string does it.
        ("olcTLSProtocolMin", "3.3"),
        ("olcTLSCipherSuite", "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"),
    ]), ldif_entry("cn=module{0},cn=config", [
        ("objectClass", "olcModuleList"), ("cn", "module{0}"), ("olcModulePath", MODULE_PATH),
        ("olcModuleLoad", ["{0}back_mdb", "{1}memberof"]),
    ]), ldif_entry("cn=schema,cn=config", [("objectClass", "olcSchemaConfig"), ("cn", "schema")])]
    for name in SCHEMAS:
        with open(os.path.join(SCHEMA_DIR, f"{name}.ldif")) as f:
            parts.append(f.read().strip() + "\n")
    parts += [ldif_entry("olcDatabase={-1}frontend,cn=config", [
        ("objectClass", ["olcDatabaseConfig", "olcFrontendConfig"]), ("olcDatabase", "{-1}frontend"),
    ]), ldif_entry("olcDatabase={0}config,cn=config", [
        ("objectClass", "olcDatabaseConfig"), ("olcDatabase", "{0}config"),
        ("olcAccess", "{0}to * by * none"),
    ]), ldif_entry("olcDatabase={1}mdb,cn=config", [
        ("objectClass", ["olcDatabaseConfig", "olcMdbConfig"]), ("olcDatabase", "{1}mdb"),
        ("olcDbDirectory", os.path.join(d, "db")), ("olcDbMaxSize", "16777216"),
        ("olcSuffix", BASE_DN), ("olcRootDN", ROOT_DN), ("olcRootPW", root_pw_hash),
        ("olcDbIndex", ["objectClass eq", "uid eq", "mail eq", "cn eq", "member eq"]),
        ("olcAccess", [
            "{0}to attrs=userPassword by self =wx by anonymous auth by * none",
            f'{{1}}to * by self read by dn.exact="{BIND_DN}" read by * none',
        ]),
    ]), ldif_entry("olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config", [
        ("objectClass", ["olcOverlayConfig", "olcMemberOf"]), ("olcOverlay", "{0}memberof"),
        ("olcMemberOfGroupOC", "groupOfNames"), ("olcMemberOfMemberAD", "member"),
        ("olcMemberOfMemberOfAD", "memberOf"), ("olcMemberOfRefInt", "TRUE"), ("olcMemberOfDangling", "ignore"),
    ])]
    return "\n".join(parts)


def data_ldif():
    entries = [
        ldif_entry(BASE_DN, [("objectClass", ["top", "dcObject", "organization"]), ("dc", "example"),
                             ("o", "Example")]),
        ldif_entry(PEOPLE_DN, [("objectClass", "organizationalUnit"), ("ou", "people")]),
        ldif_entry(GROUPS_DN, [("objectClass", "organizationalUnit"), ("ou", "groups")]),
        ldif_entry(SERVICES_DN, [("objectClass", "organizationalUnit"), ("ou", "services")]),
        ldif_entry(BIND_DN, [("objectClass", ["applicationProcess", "simpleSecurityObject"]), ("cn", "latchkey"),
                             ("description", "Latchkey's service account"), ("userPassword", ssha(BIND_PASSWORD))]),
    ]
    for uid, (cn, given, sn, mail, pw) in PEOPLE.items():
        attrs = [("objectClass", "inetOrgPerson"), ("uid", uid), ("cn", cn), ("givenName", given), ("sn", sn)]
        if mail:
            attrs.append(("mail", mail))
        attrs.append(("userPassword", ssha(pw)))
        entries.append(ldif_entry(person_dn(uid), attrs))
    for name, members in GROUPS.items():
        entries.append(ldif_entry(group_dn(name), [("objectClass", "groupOfNames"), ("cn", name),
                                                    ("member", [person_dn(u) for u in members])]))
    return "\n".join(entries)


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Directory:
    """One private slapd and the ldap-utils calls made against it."""

    def __init__(self, d):
        self.dir = d
        self.proc = None
        self.ldap_port = self.ldaps_port = None
        self.root_pw_file = os.path.join(d, "root.pw")
        self.bind_pw_file = os.path.join(d, "bind.pw")
        self.lock = threading.Lock()
        # ldap-utils read ~/.ldaprc and ./ldaprc: run them with HOME and cwd in our directory; the LDAPTLS_*
        # variables override /etc/ldap/ldap.conf (Debian's sets TLS_CACERT to the system bundle).
        self.env = dict(os.environ, HOME=d, LDAPTLS_CACERT=os.path.join(d, "ca.pem"), LDAPTLS_REQCERT="demand")
        for k in ("LDAPURI", "LDAPBASE", "LDAPBINDDN", "LDAPRC", "LDAPCONF", "LDAPTLS_CERT", "LDAPTLS_KEY"):
            self.env.pop(k, None)

    @property
    def ldap_url(self):
        return f"ldap://127.0.0.1:{self.ldap_port}"

    @property
    def ldaps_url(self):
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    def configure(self):
        root_pw = secrets.token_urlsafe(24)
        for path, pw in ((self.root_pw_file, root_pw), (self.bind_pw_file, BIND_PASSWORD)):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(pw)  # ldap-utils -y uses the whole file: no newline
        os.mkdir(os.path.join(self.dir, "slapd.d"), 0o700)
        os.mkdir(os.path.join(self.dir, "db"), 0o700)
        level = "stats" if os.environ.get("LDAP_DIRECTORY_DEBUG") else "none"
        with open(os.path.join(self.dir, "config.ldif"), "w") as f:
            f.write(config_ldif(self.dir, ssha(root_pw), level))
        run([SLAPADD, "-n0", "-F", os.path.join(self.dir, "slapd.d"), "-l", os.path.join(self.dir, "config.ldif")])

    def start(self, stopping, attempts=5):
        """Start slapd on two free ports; on a port race (slapd exits at once) try new ports."""
        for attempt in range(1, attempts + 1):
            self.ldap_port, self.ldaps_port = free_ports(2)
            urls = f"ldap://127.0.0.1:{self.ldap_port}/ ldaps://127.0.0.1:{self.ldaps_port}/"
            argv = [SLAPD, "-F", os.path.join(self.dir, "slapd.d"), "-h", urls,
                    "-d", "stats" if os.environ.get("LDAP_DIRECTORY_DEBUG") else "0"]
            if shutil.which("setpriv"):
                argv = ["setpriv", "--pdeathsig", "TERM", "--"] + argv  # slapd dies with us, even on SIGKILL
            log.info("starting slapd (attempt %d): %s", attempt, urls)
            # slapd's output goes to our stderr: stdout is only for the READY line.
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=sys.stderr)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not stopping.is_set():
                if self.proc.poll() is not None:
                    log.warning("slapd exited with %s during start (most likely a port taken meanwhile; "
                                "LDAP_DIRECTORY_DEBUG=1 shows its reason)", self.proc.returncode)
                    break
                if self.answers():
                    log.info("slapd %d answers on %s", self.proc.pid, urls)
                    return
                time.sleep(0.05)
            else:
                if stopping.is_set():
                    raise RuntimeError("stopped while starting")
            self.stop()
        raise RuntimeError(f"slapd did not start after {attempts} attempts")

    def answers(self):
        for port in (self.ldap_port, self.ldaps_port):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            except OSError:
                return False
        p = self.tool("ldapwhoami", self.ldap_url, ROOT_DN, self.root_pw_file, check=False, timeout=5)
        return p.returncode == 0

    def stop(self):
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        log.info("stopping slapd %d", p.pid)
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)

    def tool(self, name, url, dn, pw_file, *args, starttls=False, input_text=None, check=True, timeout=15):
        argv = [name, "-x", "-H", url, "-o", "nettimeout=5"]
        if starttls:
            argv.append("-ZZ")
        if dn:
            argv += ["-D", dn, "-y", pw_file]
        return run(argv + list(args), input_text=input_text, env=self.env, timeout=timeout, check=check,
                   cwd=self.dir)

    def admin(self, name, *args, input_text=None, check=True):
        return self.tool(name, self.ldap_url, ROOT_DN, self.root_pw_file, *args, input_text=input_text,
                         check=check)

    def search(self, base, scope, filt, *attrs):
        p = self.admin("ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", base, "-s", scope, filt, *attrs,
                       check=False)
        if p.returncode == 32:  # noSuchObject
            return []
        if p.returncode != 0:
            raise RuntimeError(f"ldapsearch exited {p.returncode}: {p.stderr.strip()}")
        return parse_ldif(p.stdout)

    def load(self):
        self.admin("ldapadd", input_text=data_ldif())

    def verify(self):
        """What READY promises: StartTLS and LDAPS binds as the service account, memberOf on alice."""
        self.tool("ldapwhoami", self.ldap_url, BIND_DN, self.bind_pw_file, starttls=True)
        self.tool("ldapwhoami", self.ldaps_url, BIND_DN, self.bind_pw_file)
        entries = self.search(person_dn("alice"), "base", "(objectClass=*)", "memberOf")
        got = sorted(entries[0][1].get("memberOf", [])) if entries else []
        want = sorted(group_dn(g) for g in GROUPS)
        if [v.lower() for v in got] != [v.lower() for v in want]:
            raise RuntimeError(f"memberOf on alice is {got}, expected {want}")

    # ---- what the control server does ----
    def exists(self, dn):
        return bool(self.search(dn, "base", "(objectClass=*)", "1.1"))

    def members(self, name):
        entries = self.search(group_dn(name), "base", "(objectClass=groupOfNames)", "member")
        return None if not entries else entries[0][1].get("member", [])

    def change_group(self, name, add, remove):
        with self.lock:
            current = self.members(name)
            if current is None:
                raise ValueError(f"no group {name!r} under {GROUPS_DN}")
            for uid in add + remove:
                if not self.exists(person_dn(uid)):
                    raise ValueError(f"no person with uid {uid!r} under {PEOPLE_DN}")
            have = {m.lower() for m in current}
            to_add = [person_dn(u) for u in dict.fromkeys(add) if person_dn(u).lower() not in have]
            to_remove = [person_dn(u) for u in dict.fromkeys(remove) if person_dn(u).lower() in have]
            if to_add or to_remove:
                changes = [ldif_line("dn", group_dn(name)), "changetype: modify"]
                if to_add:
                    changes += ["add: member"] + [ldif_line("member", m) for m in to_add] + ["-"]
                if to_remove:
                    changes += ["delete: member"] + [ldif_line("member", m) for m in to_remove] + ["-"]
                p = self.admin("ldapmodify", input_text="\n".join(changes) + "\n", check=False)
                if p.returncode != 0:
                    raise ValueError(f"ldapmodify exited {p.returncode}: {p.stderr.strip()}")
            return self.members(name)

    def set_password(self, uid, password):
        with self.lock:
            if not self.exists(person_dn(uid)):
                raise ValueError(f"no person with uid {uid!r} under {PEOPLE_DN}")
            pw_file = os.path.join(self.dir, f"new-{secrets.token_hex(8)}.pw")
            with open(os.open(pw_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
                f.write(password)
            try:
                # ldappasswd -T reads the new password from a file; slapd hashes it ({SSHA} by default).
                self.admin("ldappasswd", "-T", pw_file, person_dn(uid))
            finally:
                os.unlink(pw_file)

    def entry(self, dn):
        entries = self.search(dn, "base", "(objectClass=*)", "*", "+")
        return entries[0] if entries else None


# --------------------------------------------------------------------------------------------------------------
# Control HTTP server.
# --------------------------------------------------------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    directory: Directory = None
    info: dict = None
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        log.info("http: " + fmt, *args)

    def answer(self, status, obj):
        body = json.dumps(obj, indent=1).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""  # read even when refusing: the connection is kept alive
        path = urllib.parse.urlsplit(self.path).path
        if path not in ("/group", "/password"):
            return self.answer(404, {"error": "not found"})
        try:
            data = json.loads(raw or b"null")
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            return self.post(path, data)
        except (ValueError, RuntimeError) as e:  # json.JSONDecodeError is a ValueError
            return self.answer(400, {"ok": False, "error": str(e)})
        except Exception as e:  # noqa: BLE001
            log.exception("POST %s", path)
            return self.answer(500, {"ok": False, "error": f"{type(e).__name__}: {e}"})

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        if url.path == "/info":
            return self.answer(200, self.info)
        if url.path == "/entry":
            if "uid" in q:
                if not NAME_RE.match(q["uid"][0]):
                    return self.answer(400, {"error": "bad uid"})
                dn = person_dn(q["uid"][0])
            elif "dn" in q:
                dn = q["dn"][0]
            else:
                return self.answer(400, {"error": "give ?uid= or ?dn="})
            try:
                found = self.directory.entry(dn)
            except RuntimeError as e:
                return self.answer(400, {"error": str(e)})
            except Exception as e:  # noqa: BLE001
                log.exception("GET /entry")
                return self.answer(500, {"error": f"{type(e).__name__}: {e}"})
            if not found:
                return self.answer(404, {"error": f"no entry {dn}"})
            return self.answer(200, {"dn": found[0], "attributes": found[1]})
        self.answer(404, {"error": "not found"})

    def post(self, path, data):
        if path == "/group":
            name, add, remove = data.get("group"), data.get("add", []), data.get("remove", [])
            if not isinstance(name, str) or not NAME_RE.match(name):
                raise ValueError("\"group\" must be a group's cn, e.g. \"admins\"")
            for lst in (add, remove):
                if not isinstance(lst, list) or not all(isinstance(u, str) and NAME_RE.match(u) for u in lst):
                    raise ValueError("\"add\" and \"remove\" must be lists of uids")
            members = sorted(self.directory.change_group(name, add, remove))
            uids = sorted(m.split(",", 1)[0].split("=", 1)[1] for m in members)
            log.info("group %s now has %s", name, uids)
            return self.answer(200, {"ok": True, "members": uids, "member_dns": members})
        uid, password = data.get("uid"), data.get("password")
        if not isinstance(uid, str) or not NAME_RE.match(uid):
            raise ValueError("\"uid\" must be a person's uid, e.g. \"bob\"")
        if not isinstance(password, str) or not password:
            raise ValueError("\"password\" must be a non-empty string")
        self.directory.set_password(uid, password)
        log.info("password of %s changed", uid)
        return self.answer(200, {"ok": True})


# --------------------------------------------------------------------------------------------------------------
# Lifetime, cleanup and main.
# --------------------------------------------------------------------------------------------------------------
def alive(pid):
    """Running, not a zombie (slapd orphaned by a SIGKILL is reparented to an init that may reap it late)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def start_janitor(d):
    """Fork a process that waits for this one to end (however it ends, SIGKILL included), then stops the slapd
    whose pidfile is in `d` (only if that PID's command line still names `d`) and removes `d`."""
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(r)
        return w  # kept open (never written) until this process ends
    try:
        os.close(w)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)  # never hold the READY pipe (or a captured stderr) open
        os.dup2(devnull, 2)
        os.setsid()
        while os.read(r, 1):
            pass
        try:
            with open(os.path.join(d, "slapd.pid")) as f:
                slapd = int(f.read().strip())
            with open(f"/proc/{slapd}/cmdline", "rb") as f:
                ours = d.encode() in f.read()
        except (OSError, ValueError):
            ours = False
        if ours:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and alive(slapd):
                time.sleep(0.05)  # it got SIGTERM via pdeathsig (or from the peer) and is shutting down
            try:
                os.kill(slapd, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(d, ignore_errors=True)
    finally:
        os._exit(0)


def bound_lifetime(server, stopping, minutes=LIFETIME_MINUTES):
    """Stop when stdin reaches EOF (whoever started us is gone), on SIGTERM, or after `minutes`."""

    def stop(why):
        if not stopping.is_set():
            log.info("stopping: %s", why)
            stopping.set()
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
    signal.signal(signal.SIGINT, lambda *_: stop("SIGINT"))
    return stop


def watch_slapd(proc, stopping, stop):
    """If slapd dies while we serve, say so and stop: a test then fails at once, not on a confusing timeout."""
    code = proc.wait()
    if not stopping.is_set():
        log.error("slapd %d exited with %s", proc.pid, code)
        stop("slapd is gone")


def main():
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="ldap-directory: %(levelname)s %(message)s")
    for tool in (SLAPD, SLAPADD):
        if not os.access(tool, os.X_OK):
            log.error("%s is missing: apt-get install slapd ldap-utils", tool)
            return 1
    t0 = time.monotonic()
    d = tempfile.mkdtemp(prefix="ldap-directory-")
    start_janitor(d)
    stopping = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}"
    stop = bound_lifetime(server, stopping)
    directory = Directory(d)
    code = 0
    try:
        make_certificates(d)
        directory.configure()
        directory.start(stopping)
        directory.load()
        directory.verify()
        with open(os.path.join(d, "ca.pem")) as f:
            ca_pem = f.read()
        with open(os.path.join(d, "other-ca.pem")) as f:
            other_ca_pem = f.read()
        Handler.directory = directory
        Handler.info = {
            "ldap_url": directory.ldap_url, "ldaps_url": directory.ldaps_url,
            "ca_pem": ca_pem, "other_ca_pem": other_ca_pem,
            "base_dn": BASE_DN, "people_dn": PEOPLE_DN, "groups_dn": GROUPS_DN,
            "bind_dn": BIND_DN, "bind_password": BIND_PASSWORD,
        }
        if not stopping.is_set():
            log.info("ready after %.1f s: ldap %s, ldaps %s, directory %s", time.monotonic() - t0,
                     directory.ldap_url, directory.ldaps_url, d)
            threading.Thread(target=watch_slapd, args=(directory.proc, stopping, stop), daemon=True).start()
            print(f"READY {base}", flush=True)
            server.serve_forever(poll_interval=0.2)
    except Exception as e:  # noqa: BLE001
        if stopping.is_set():
            log.info("stopped while starting (%s)", e)
        else:
            log.error("%s", e)
            code = 1
    finally:
        server.server_close()
        directory.stop()
        shutil.rmtree(d, ignore_errors=True)
        logging.shutdown()
        sys.stdout.flush()
        # Not a normal interpreter exit: the stdin watcher may still be blocked in read(), which makes
        # finalization abort ("could not acquire lock for <stdin>").
        os._exit(code)


if __name__ == "__main__":
    main()
