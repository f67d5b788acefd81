#!/usr/bin/env python3
"""Checks the REST API against its own OpenAPI document with schemathesis (PyPI, pinned in peers/requirements.txt).

Starts the release binary ($LATCHKEY_BIN) on 127.0.0.1 with a fresh SQLite database, signs up an owner, creates
an organization and an API key, then runs `schemathesis run /api/openapi.json` authenticated with that key, the
organization's id in every `{org_id}` (so org routes reach their handlers, not only 404s), and these checks:
no 5xx, every status / content type / header / body as documented, 405 for undocumented methods. Fails when any
check fails, when the server logged an internal error or a panic, or when it exits. Everything it starts stops
with it; the run is bounded by --max-time and a watchdog.
"""
import http.cookiejar
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BIN = os.environ.get("LATCHKEY_BIN", "target/release/latchkey")
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "20")
MAX_SECONDS = int(os.environ.get("SCHEMATHESIS_MAX_SECONDS", "360"))
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method"


def start_server(work):
    log = open(os.path.join(work, "server.log"), "w+")
    proc = subprocess.Popen(
        [BIN, "--bind", "127.0.0.1:0", "--database-url", f"sqlite://{work}/latchkey.db?mode=rwc", "--key-file", f"{work}/latchkey.key",
         # No DNS server: domain checks fail fast instead of waiting on a resolver this sandbox may not have.
         "--dns-server", "127.0.0.1:9", "--sso-rate-limit", "1000000"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "info", "NO_COLOR": "1"})
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            sys.exit(f"server exited at start-up:\n{log.read()}")
        log.seek(0)
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", log.read())
        if m:
            return proc, log, m.group(1)
        time.sleep(0.1)
    proc.kill()
    sys.exit("server did not start in 30 s")


def totp(secret_b32):
    """RFC 6238 (SHA-1, 6 digits, 30 s), as authenticator apps compute it."""
    import base64, hashlib, hmac, struct
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000)


def owner_with_key(base):
    """An owner with a second factor, and an API key minted by that verified session: so a policy the fuzzer
    turns on (MFA required) does not lock the key out of the rest of the run."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def post(path, body):
        req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST")
        with opener.open(req, timeout=10) as r:
            return json.load(r)["data"]

    post("/api/auth/signup", {"email": "owner@schema.example.com", "password": "correct horse battery staple", "name": "Schema Owner"})
    secret = post("/api/auth/mfa/enroll", {})["secret"]
    post("/api/auth/mfa/enroll/confirm", {"code": totp(secret)})
    org = post("/api/user/organizations", {"name": "Schema Check"})
    key = post("/api/user/api-keys", {"name": "schemathesis"})["key"]
    return post, org["id"], key


def operator_and_application(work, post):
    """The owner becomes an operator (the CLI, as an operator would) and registers an application, so the admin
    routes and the application routes (HTTP Basic) are reached too."""
    subprocess.run([BIN, "--database-url", f"sqlite://{work}/latchkey.db?mode=rwc", "--key-file", f"{work}/latchkey.key",
                    "operators", "add", "owner@schema.example.com"], check=True, capture_output=True, env={**os.environ, "RUST_LOG": "error"})
    app = post("/api/admin/applications", {"name": "Schema app", "redirectUris": ["http://127.0.0.1:9/callback"]})
    return app["application"]["clientId"], app["clientSecret"]


def summarize(report_dir):
    """What the server answered, by status and code: shows at a glance whether the run reached the handlers."""
    import collections, glob
    counts = collections.Counter()
    for path in glob.glob(os.path.join(report_dir, "*.json")):
        with open(path) as f:
            for e in json.load(f)["log"]["entries"]:
                text = e["response"].get("content", {}).get("text") or ""
                m = re.search(r'"code":"([A-Za-z_]+)"', text)
                counts[(e["response"]["status"], m.group(1) if m else "")] += 1
    print("answers by status and code:", ", ".join(f"{s} {c or '-'}: {n}" for (s, c), n in sorted(counts.items())))


def main():
    with tempfile.TemporaryDirectory() as work:
        server, log, base = start_server(work)
        # A watchdog: nothing this script starts outlives it.
        timer = threading.Timer(MAX_SECONDS + 120, lambda: (server.kill(), os._exit(3)))
        timer.start()
        try:
            post, org_id, key = owner_with_key(base)
            client_id, client_secret = operator_and_application(work, post)
            config = os.path.join(work, "schemathesis.toml")
            with open(config, "w") as f:
                f.write('[parameters]\n"path.org_id" = "${LATCHKEY_ORG_ID}"\n')
            cmd = ["schemathesis", "--config-file", config, "run", f"{base}/api/openapi.json",
                   "-H", f"X-Api-Key: {key}", "--auth", f"{client_id}:{client_secret}", "--checks", CHECKS, "--max-examples", MAX_EXAMPLES, "--max-time", str(MAX_SECONDS),
                   "--workers", "1", "--seed", "20261124", "--generation-database", "none", "--request-timeout", "30",
                   "--max-redirects", "0", "--no-color", "--suppress-health-check", "all",
                   # The owner's key on every request: generated credentials would only test the 401 path.
                   "--generation-with-security-parameters", "false",
                   # Revoking its own key or deleting its application would turn the rest of the run into 401s (the
                   # integration tests cover both).
                   "--exclude-operation-id", "account_revoke_key", "--exclude-operation-id", "admin_delete",
                   "--report", "har", "--report-dir", os.path.join(work, "report")]
            print("+", " ".join("…" if key in c or client_secret in c else c for c in cmd), flush=True)
            result = subprocess.run(cmd, env={**os.environ, "LATCHKEY_ORG_ID": org_id}, cwd=work)
            summarize(os.path.join(work, "report"))
            log.seek(0)
            server_log = log.read()
            problems = [l for l in server_log.splitlines() if "panicked" in l or "internal error" in l]
            if server.poll() is not None:
                problems.append(f"the server exited with {server.returncode}")
            if problems:
                print("server problems:\n" + "\n".join(problems[:20]), file=sys.stderr)
            if result.returncode != 0 or problems:
                sys.exit(1)
            print("schemathesis: the API matches its OpenAPI document")
        finally:
            timer.cancel()
            if server.poll() is None:
                server.terminate()
                try:
                    server.wait(10)
                except subprocess.TimeoutExpired:
                    server.kill()


if __name__ == "__main__":
    main()
