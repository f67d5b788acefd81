#!/usr/bin/env python3
"""Self-test of ldap-directory.py: starts the peer as the tests do (stdin and stdout piped, READY line), then talks
to its slapd with ldap-utils (StartTLS and LDAPS, the service account, the people, wrong and empty passwords, the
other CA, ACLs, memberOf) and drives the control server (/info, /entry, /group, /password, errors). Finally closes
the peer's stdin and checks that slapd and the temporary directory are gone.

    python3 end2end/peers/ldap-directory-selftest.py               # one peer; exits 0 on success, log on stderr
    python3 end2end/peers/ldap-directory-selftest.py --parallel 2  # that many peers at once, checked side by side
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "ldap-directory.py")
BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
SVC = f"cn=latchkey,ou=services,{BASE}"
INFO_KEYS = {"ldap_url", "ldaps_url", "ca_pem", "other_ca_pem", "base_dn", "people_dn", "groups_dn", "bind_dn",
             "bind_password"}
lock = threading.Lock()
failures = []
passed = 0


def dn(uid):
    return f"uid={uid},{PEOPLE}"


def gdn(name):
    return f"cn={name},{GROUPS}"


def http(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def parse_ldif(text):
    """Minimal LDIF reader for `ldapsearch -LLL -o ldif-wrap=no` (base64 values decoded)."""
    import base64

    entries, cur = [], None
    for line in text.splitlines() + [""]:
        if not line:
            if cur:
                entries.append(cur)
            cur = None
            continue
        name, _, rest = line.partition(":")
        value = base64.b64decode(rest[1:].strip()).decode() if rest.startswith(":") else rest.lstrip(" ")
        if name == "dn":
            cur = {"dn": value}
        else:
            cur.setdefault(name, []).append(value)
    return entries


class Run:
    """One peer and the checks made against it."""

    def __init__(self, tag):
        self.tag = tag
        self.tmp = tempfile.mkdtemp(prefix="ldap-selftest-")

    def check(self, cond, what):
        global passed
        with lock:
            if cond:
                passed += 1
                print(f"ok   [{self.tag}] {what}", file=sys.stderr)
            else:
                failures.append(f"[{self.tag}] {what}")
                print(f"FAIL [{self.tag}] {what}", file=sys.stderr)
        return cond

    def ldap(self, tool, *args, url=None, who=None, pw=None, ca=None, starttls=False):
        """Runs an ldap-utils tool; returns (exit code, stdout, stderr)."""
        pw_file = os.path.join(self.tmp, "pw")
        argv = [tool, "-x", "-H", url or self.info["ldap_url"], "-o", "nettimeout=5"]
        if starttls:
            argv.append("-ZZ")
        if who is not None:
            with open(os.open(pw_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(pw)
            argv += ["-D", who, "-y", pw_file]
        env = dict(os.environ, LDAPTLS_CACERT=ca or self.ca_file, LDAPTLS_REQCERT="demand")
        p = subprocess.run(argv + list(args), capture_output=True, text=True, env=env, timeout=30)
        return p.returncode, p.stdout, p.stderr

    def search(self, base, filt, *attrs, who=SVC, pw="service-secret", scope="sub", **kw):
        rc, out, err = self.ldap("ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", base, "-s", scope, filt, *attrs,
                                 who=who, pw=pw, starttls=kw.pop("starttls", True), **kw)
        return rc, parse_ldif(out) if rc == 0 else [], err

    def member_of(self, uid):
        rc, entries, _ = self.search(dn(uid), "(objectClass=*)", "memberOf", scope="base")
        return sorted(entries[0].get("memberOf", [])) if rc == 0 and entries else None

    def whoami(self, uid, pw, **kw):
        rc, out, err = self.ldap("ldapwhoami", who=dn(uid), pw=pw, **kw)
        return rc, out.strip()

    # ------------------------------------------------------------------------------------------------------------
    def start(self):
        t0 = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, PEER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.peer_dir = self.slapd_pid = None
        threading.Thread(target=self.relay_stderr, daemon=True).start()
        line = self.proc.stdout.readline()
        self.ready_s = time.monotonic() - t0
        self.check(line.startswith("READY http://127.0.0.1:"), f"READY line ({line.strip()!r})")
        self.check(self.ready_s < 20, f"READY within 20 s ({self.ready_s:.2f} s)")
        self.url = line.split()[1]

    def relay_stderr(self):
        """The peer's log, passed on; notes its temporary directory and slapd's PID."""
        for line in self.proc.stderr:
            sys.stderr.write(line)
            m = re.search(r"directory (/\S+)$", line)
            self.peer_dir = m.group(1) if m else self.peer_dir
            m = re.search(r"slapd (\d+) answers", line)
            self.slapd_pid = int(m.group(1)) if m else self.slapd_pid

    def gone(self, timeout):
        """slapd has ended (a zombie counts: an orphan may be reaped late) and the directory is removed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{self.slapd_pid}/stat") as f:
                    running = f.read().rsplit(")", 1)[1].split()[0] not in "ZX"
            except OSError:
                running = False
            if not running and not os.path.exists(self.peer_dir):
                return True
            time.sleep(0.05)
        return False

    def run(self):
        self.start()
        st, self.info = http("GET", self.url + "/info")
        self.check(st == 200 and set(self.info) == INFO_KEYS, "/info has exactly the documented keys")
        i = self.info
        self.check(i["ldap_url"].startswith("ldap://127.0.0.1:") and i["ldaps_url"].startswith("ldaps://127.0.0.1:"),
                   f"/info URLs {i['ldap_url']} {i['ldaps_url']}")
        self.check((i["base_dn"], i["people_dn"], i["groups_dn"], i["bind_dn"], i["bind_password"])
                   == (BASE, PEOPLE, GROUPS, SVC, "service-secret"), "/info DNs and the service password")
        self.ca_file = os.path.join(self.tmp, "ca.pem")
        self.other_ca_file = os.path.join(self.tmp, "other-ca.pem")
        with open(self.ca_file, "w") as f:
            f.write(i["ca_pem"])
        with open(self.other_ca_file, "w") as f:
            f.write(i["other_ca_pem"])
        text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", self.ca_file], capture_output=True,
                              text=True).stdout
        self.check("CA:TRUE" in text, "ca_pem is a CA certificate")
        self.check(i["ca_pem"] != i["other_ca_pem"] and "BEGIN CERTIFICATE" in i["other_ca_pem"],
                   "other_ca_pem is another certificate")

        # --- TLS ---
        rc, out = self.whoami("alice", "alice-pw", starttls=True)
        self.check(rc == 0 and out == f"dn:{dn('alice')}", f"StartTLS bind as alice with alice-pw ({rc} {out})")
        rc, out = self.whoami("alice", "wrong", starttls=True)
        self.check(rc == 49, f"StartTLS bind as alice with a wrong password: exit 49 ({rc})")
        rc, out = self.whoami("alice", "alice-pw", url=i["ldaps_url"])
        self.check(rc == 0, f"LDAPS bind as alice ({rc})")
        # (libldap itself cannot check DNS:localhost: for "localhost" it verifies the reverse-resolved host name.)
        for flag, name, good in (("-verify_hostname", "localhost", True), ("-verify_ip", "127.0.0.1", True),
                                 ("-verify_hostname", "ldap.example.com", False)):
            p = subprocess.run(["openssl", "s_client", "-connect", i["ldaps_url"][len("ldaps://"):], "-CAfile",
                                self.ca_file, flag, name, "-verify_return_error", "-brief"],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
            self.check((p.returncode == 0) == good, f"server certificate {flag} {name}: "
                       f"{'verifies' if good else 'refused'} ({p.returncode})")
        for version, good in (("-tls1_3", True), ("-tls1_2", True), ("-tls1_1", False)):
            p = subprocess.run(["openssl", "s_client", "-connect", i["ldaps_url"][len("ldaps://"):], "-CAfile",
                                self.ca_file, version, "-cipher", "DEFAULT@SECLEVEL=0", "-verify_return_error",
                                "-brief"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
            self.check((p.returncode == 0) == good, f"LDAPS {version[1:]}: {'accepted' if good else 'refused'} "
                       f"({p.returncode})")
        rc, out = self.whoami("alice", "alice-pw", url=i["ldaps_url"], ca=self.other_ca_file)
        self.check(rc != 0, f"LDAPS with the other CA is refused by the client ({rc})")
        rc, out = self.whoami("alice", "alice-pw", starttls=True, ca=self.other_ca_file)
        self.check(rc != 0, f"StartTLS with the other CA is refused by the client ({rc})")
        rc, out = self.whoami("alice", "", starttls=True)
        self.check(rc == 53, f"DN with an empty password: 53 unwillingToPerform, not an anonymous success ({rc})")
        rc, out = self.whoami("alice", "alice-pw")  # plain LDAP, no StartTLS
        self.check(rc == 0, f"plain ldap:// without StartTLS is accepted by the server ({rc}): clients must insist")

        # --- searches as the service account ---
        rc, people, err = self.search(PEOPLE, "(objectClass=inetOrgPerson)", "uid", "mail")
        uids = sorted(e["uid"][0] for e in people)
        self.check(rc == 0 and uids == ["alice", "bob", "carol", "dup1", "dup2", "nomail"],
                   f"StartTLS search as the service account sees the six people ({rc} {uids} {err.strip()})")
        by_uid = {e["uid"][0]: e for e in people}
        self.check("mail" not in by_uid.get("nomail", {"mail": 1}), "nomail has no mail")
        rc, dups, _ = self.search(PEOPLE, "(mail=shared@example.com)", "uid")
        self.check(sorted(e["uid"][0] for e in dups) == ["dup1", "dup2"], "shared@example.com matches dup1 and dup2")
        rc, alice, _ = self.search(PEOPLE, "(uid=alice)", "*")
        a = alice[0] if alice else {}
        self.check(a.get("cn") == ["Alice Liddell"] and a.get("givenName") == ["Alice"] and a.get("sn") == ["Liddell"]
                   and a.get("mail") == ["alice@example.com"], "alice's cn, givenName, sn, mail")
        self.check("userPassword" not in a, "userPassword is not readable by the service account")
        self.check("memberOf" not in a, "memberOf is operational: not returned for '*', must be asked for by name")
        self.check(self.member_of("alice") == sorted([gdn("engineers"), gdn("admins")]),
                   f"alice memberOf engineers and admins ({self.member_of('alice')})")
        self.check(self.member_of("bob") == [gdn("engineers")], "bob memberOf engineers")
        self.check(self.member_of("carol") == [], "carol is in no group")
        rc, groups, _ = self.search(GROUPS, "(member=" + dn("alice") + ")", "cn")
        self.check(sorted(g["cn"][0] for g in groups) == ["admins", "engineers"], "groups searchable by member")
        rc, uuid, _ = self.search(dn("alice"), "(objectClass=*)", "entryUUID", scope="base")
        self.check(bool(uuid and uuid[0].get("entryUUID")), "entryUUID readable by the service account")

        # --- ACLs for others ---
        rc, out, _ = self.ldap("ldapsearch", "-LLL", "-b", BASE, "(objectClass=*)", starttls=True)
        self.check(rc == 32 and not out.strip(), f"anonymous search finds nothing (exit {rc}: noSuchObject)")
        rc, got, _ = self.search(PEOPLE, "(uid=alice)", who=dn("carol"), pw="carol-pw")
        self.check(not got, f"carol cannot read alice (exit {rc})")
        rc, got, _ = self.search(dn("carol"), "(objectClass=*)", "*", "userPassword", scope="base", who=dn("carol"),
                                 pw="carol-pw")
        self.check(rc == 0 and got and got[0].get("cn") == ["Carol Danvers"] and "userPassword" not in got[0],
                   "carol reads her own entry, but not her userPassword")
        rc, out, err = self.ldap("ldappasswd", "-a", "carol-pw", "-s", "carol-pw2", dn("carol"), who=dn("carol"),
                                 pw="carol-pw", starttls=True)
        self.check(rc == 0 and self.whoami("carol", "carol-pw2", starttls=True)[0] == 0,
                   f"carol changes her own password ({rc} {err.strip()})")

        # --- control server ---
        st, e = http("GET", self.url + "/entry?uid=alice")
        attrs = e.get("attributes", {}) if isinstance(e, dict) else {}
        self.check(st == 200 and e["dn"] == dn("alice") and len(attrs.get("entryUUID", [])) == 1
                   and sorted(attrs.get("memberOf", [])) == sorted([gdn("engineers"), gdn("admins")]),
                   "/entry?uid=alice: dn, entryUUID, memberOf")
        self.check(attrs.get("entryUUID") == uuid[0].get("entryUUID") if uuid else False,
                   "/entry entryUUID equals what the service account reads")
        self.check(http("GET", self.url + "/entry?uid=nobody")[0] == 404, "/entry of an unknown uid: 404")
        st, g = http("POST", self.url + "/group", {"group": "admins", "add": ["bob"], "remove": ["alice"]})
        self.check(st == 200 and g == {"ok": True, "members": ["bob"], "member_dns": [dn("bob")]},
                   f"/group admins +bob -alice ({st} {g})")
        self.check(self.member_of("alice") == [gdn("engineers")], "alice's memberOf lost admins")
        self.check(self.member_of("bob") == sorted([gdn("engineers"), gdn("admins")]), "bob's memberOf gained admins")
        st, g = http("POST", self.url + "/group", {"group": "engineers", "add": ["carol", "carol"], "remove": ["dup1"]})
        self.check(st == 200 and g["members"] == ["alice", "bob", "carol"],
                   f"/group is idempotent (duplicates, non-members ignored) ({g})")
        self.check(self.member_of("carol") == [gdn("engineers")], "carol's memberOf gained engineers")
        st, g = http("POST", self.url + "/group", {"group": "admins", "remove": ["bob"]})
        self.check(st == 400 and "member" in g.get("error", ""), f"emptying a groupOfNames: 400 ({g})")
        self.check(http("POST", self.url + "/group", {"group": "nope", "add": ["bob"]})[0] == 400, "unknown group: 400")
        self.check(http("POST", self.url + "/group", {"group": "admins", "add": ["zed"]})[0] == 400, "unknown uid: 400")
        self.check(http("POST", self.url + "/group", {"group": "admins", "add": "bob"})[0] == 400, "bad JSON: 400")
        st, p = http("POST", self.url + "/password", {"uid": "bob", "password": "bob-new ü"})
        self.check(st == 200 and p == {"ok": True}, f"/password bob ({st} {p})")
        self.check(self.whoami("bob", "bob-new ü", starttls=True)[0] == 0, "bob binds with the new password")
        self.check(self.whoami("bob", "bob-pw", starttls=True)[0] == 49, "bob's old password: 49")
        self.check(http("POST", self.url + "/password", {"uid": "zed", "password": "x"})[0] == 400,
                   "/password for an unknown uid: 400")
        self.check(http("GET", self.url + "/nothing")[0] == 404 and http("POST", self.url + "/nothing", {})[0] == 404,
                   "other paths: 404")

    def stop(self):
        t0 = time.monotonic()
        self.proc.stdin.close()
        self.proc.wait(20)
        self.check(self.proc.returncode == 0, f"peer exits 0 after stdin EOF ({time.monotonic() - t0:.2f} s)")
        shutil.rmtree(self.tmp, ignore_errors=True)
        if not getattr(self, "info", None):
            return
        rc = subprocess.run(["ldapwhoami", "-x", "-H", self.info["ldap_url"], "-o", "nettimeout=2"],
                            capture_output=True).returncode
        self.check(rc == 255, f"slapd no longer answers on {self.info['ldap_url']} (ldapwhoami exit {rc})")
        self.check(self.gone(2), f"slapd {self.slapd_pid} ended and {self.peer_dir} removed")

    def killed(self):
        """What the Rust tests do (tokio kill_on_drop): SIGKILL. slapd (parent-death signal) and the directory
        (the peer's janitor) must still go."""
        self.start()
        self.check(bool(self.slapd_pid and self.peer_dir and os.path.isdir(self.peer_dir)),
                   f"peer runs slapd {self.slapd_pid} in {self.peer_dir}")
        self.proc.kill()
        self.proc.wait(10)
        t0 = time.monotonic()
        ok = self.gone(10)
        self.check(ok, f"after SIGKILL: slapd ended and the directory removed ({time.monotonic() - t0:.2f} s)")
        shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    n = 1
    if len(sys.argv) == 3 and sys.argv[1] == "--parallel":
        n = int(sys.argv[2])
    runs = [Run(f"peer{k + 1}") for k in range(n)]

    def one(r):
        try:
            r.run()
        except Exception as e:  # noqa: BLE001
            r.check(False, f"unexpected {type(e).__name__}: {e}")

    threads = [threading.Thread(target=one, args=(r,)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if n > 1:
        ports = [p for r in runs for p in (r.info["ldap_url"], r.info["ldaps_url"], r.url)]
        runs[0].check(len(set(ports)) == len(ports), f"{n} peers use distinct ports")
        runs[0].check(len({r.info["ca_pem"] for r in runs}) == n, f"{n} peers have their own CA")
    for r in runs:
        if getattr(r, "proc", None):
            r.stop()
    Run("killed").killed()
    for r in runs:
        print(f"[{r.tag}] READY after {getattr(r, 'ready_s', float('nan')):.2f} s", file=sys.stderr)
    print(f"{passed} passed, {len(failures)} failed", file=sys.stderr)
    for f in failures:
        print(f"  FAILED {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
