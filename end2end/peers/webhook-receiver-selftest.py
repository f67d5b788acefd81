#!/usr/bin/env python3
"""Self-test of webhook-receiver.py: starts the peer as the Rust tests do (stdin and stdout piped, READY line),
configures a secret, sends deliveries signed with standardwebhooks' own Webhook.sign and with a hand-made
HMAC-SHA256 (the Standard Webhooks spec, and its published test vector), good and bad, and checks the answers,
/received, /config, /reset, a slow answer that does not block others, and that the peer exits when stdin closes.

    python3 end2end/peers/webhook-receiver-selftest.py          # exits 0 on success; log on stderr
"""
import base64
import concurrent.futures
import datetime as dt
import hashlib
import hmac
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import standardwebhooks

PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "webhook-receiver.py")
ENTRY_KEYS = {"path", "webhookId", "timestamp", "signature", "verified", "error", "payload", "answered",
              "receivedAt"}
passed = 0
failures = []


def check(cond, what):
    global passed
    if cond:
        passed += 1
        print(f"ok   {what}", file=sys.stderr)
    else:
        failures.append(what)
        print(f"FAIL {what}", file=sys.stderr)
    return cond


def spec_sign(secret, msg_id, timestamp, body):
    """The Standard Webhooks scheme by hand: HMAC-SHA256 keyed with base64(secret without "whsec_") over
    "{id}.{timestamp}.{body}", base64 (standard alphabet, padded), prefixed "v1,"."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class Peer:
    def __init__(self, env=None):
        t0 = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, PEER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=dict(os.environ, **(env or {})))
        threading.Thread(target=self.relay_stderr, daemon=True).start()
        line = self.proc.stdout.readline()
        self.ready_s = time.monotonic() - t0
        check(line.startswith("READY http://127.0.0.1:"), f"READY line ({line.strip()!r})")
        check(self.ready_s < 20, f"READY within 20 s ({self.ready_s:.2f} s)")
        self.url = line.split()[1] if line.startswith("READY ") else None
        self.port = urllib.parse.urlsplit(self.url).port if self.url else None

    def relay_stderr(self):
        for line in self.proc.stderr:
            sys.stderr.write("    " + line)

    def request(self, method, path, body=b"", headers=None, timeout=30):
        """(status, parsed JSON body or None, raw body, seconds)."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        t0 = time.monotonic()
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body if method == "POST" else None,
                      headers={"Content-Type": "application/json", **(headers or {})})
            r = c.getresponse()
            raw = r.read()
        finally:
            c.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return r.status, parsed, raw, time.monotonic() - t0

    def deliver(self, body, msg_id, timestamp, signature, path="/hook", extra=None):
        headers = {}
        if msg_id is not None:
            headers["webhook-id"] = msg_id
        if timestamp is not None:
            headers["webhook-timestamp"] = str(timestamp)
        if signature is not None:
            headers["webhook-signature"] = signature
        headers.update(extra or {})
        st, obj, raw, secs = self.request("POST", path, body, headers)
        return st, obj, raw, secs

    def received(self):
        st, obj, _, _ = self.request("GET", "/received")
        assert st == 200, st
        return obj["messages"]

    def close_stdin_and_wait(self, timeout=5):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            self.proc.kill()  # only our own child, by its Popen handle
            self.proc.wait()
            return False


def main():
    # ----------------------------------------------------------------------------------------------------------
    # Offline: the package agrees with the spec (published test vector, and a hand HMAC on fresh data).
    # ----------------------------------------------------------------------------------------------------------
    vec_secret, vec_id, vec_ts = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330
    vec_body, vec_sig = b'{"test": 2432232314}', "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    check(spec_sign(vec_secret, vec_id, vec_ts, vec_body) == vec_sig, "hand HMAC reproduces the published vector")
    lib_vec = standardwebhooks.Webhook(vec_secret).sign(
        vec_id, dt.datetime.fromtimestamp(vec_ts, tz=dt.timezone.utc), vec_body.decode())
    check(lib_vec == vec_sig, f"standardwebhooks.Webhook.sign reproduces the published vector ({lib_vec})")

    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    other_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    wh = standardwebhooks.Webhook(secret)
    body = json.dumps({"type": "user.created", "data": {"id": "u_1", "name": "Zoë"}}, ensure_ascii=False).encode()
    now = dt.datetime.now(tz=dt.timezone.utc)
    ts = int(now.timestamp())
    lib_sig = wh.sign("msg_1", now, body.decode())
    check(lib_sig == spec_sign(secret, "msg_1", ts, body), "Webhook.sign == hand HMAC on a fresh secret (UTF-8 body)")
    check(lib_sig.startswith("v1,") and len(base64.b64decode(lib_sig[3:])) == 32, "signature is v1,<base64 32 bytes>")

    # ----------------------------------------------------------------------------------------------------------
    # The peer.
    # ----------------------------------------------------------------------------------------------------------
    p = Peer()
    if not p.url:
        return finish(None)
    try:
        check(p.received() == [], "/received is empty at start")
        st, obj, _, _ = p.deliver(body, "msg_0", ts, lib_sig)
        check(st == 400 and obj == {"ok": False, "error": "no secret configured"},
              f"delivery with no secret configured -> 400 ({st} {obj})")

        st, obj, _, _ = p.request("POST", "/config", {"secret": secret})
        check(st == 200 and obj == {"ok": True}, f"POST /config secret -> {st} {obj}")
        for bad in ({"secret": 5}, {"secret": ""}, {"fail": -1}, {"fail": True}, {"delay_ms": "1"},
                    {"status": 99}, {"bogus": 1}, [1]):
            st, obj, _, _ = p.request("POST", "/config", bad)
            check(st == 400 and obj["ok"] is False, f"POST /config {json.dumps(bad)} -> 400 ({obj['error']})")
        st, obj, _, _ = p.request("POST", "/config", b"not json")
        check(st == 400, "POST /config with a body that is not JSON -> 400")

        # 1. Signed by the package: 204, no body.
        st, obj, raw, _ = p.deliver(body, "msg_1", ts, lib_sig)
        check(st == 204 and raw == b"", f"delivery signed by Webhook.sign -> 204 ({st} {raw!r})")
        # 2. Signed by hand (spec): 204.
        hand = spec_sign(secret, "msg_2", ts, body)
        st, *_ = p.deliver(body, "msg_2", ts, hand, path="/hook/abc?x=1")
        check(st == 204, f"delivery signed by hand HMAC to /hook/abc?x=1 -> 204 ({st})")
        # 3. Wrong signature (other secret).
        st, obj, _, _ = p.deliver(body, "msg_3", ts, spec_sign(other_secret, "msg_3", ts, body))
        check(st == 400 and obj["error"] == "No matching signature found", f"wrong signature -> 400 ({st} {obj})")
        # 4. Right signature, tampered body / id / timestamp.
        st, *_ = p.deliver(body + b" ", "msg_1", ts, lib_sig)
        check(st == 400, f"tampered body -> 400 ({st})")
        st, *_ = p.deliver(body, "msg_1x", ts, lib_sig)
        check(st == 400, f"other webhook-id -> 400 ({st})")
        st, *_ = p.deliver(body, "msg_1", ts + 1, lib_sig)
        check(st == 400, f"other webhook-timestamp -> 400 ({st})")
        # 5. Rotation: several space-separated signatures, one matching (in any position).
        wrong = spec_sign(other_secret, "msg_5", ts, body)
        right = spec_sign(secret, "msg_5", ts, body)
        st, *_ = p.deliver(body, "msg_5", ts, f"{wrong} {right}")
        check(st == 204, f"'v1,<wrong> v1,<right>' -> 204 ({st})")
        st, *_ = p.deliver(body, "msg_5", ts, f"{right} {wrong}")
        check(st == 204, f"'v1,<right> v1,<wrong>' -> 204 ({st})")
        st, *_ = p.deliver(body, "msg_5", ts, f"v1a,{base64.b64encode(b'x' * 64).decode()} {right}")
        check(st == 204, f"'v1a,<ed25519-ish> v1,<right>' -> 204 (other versions skipped) ({st})")
        st, obj, _, _ = p.deliver(body, "msg_5", ts, f"{wrong} {wrong}")
        check(st == 400, f"two wrong signatures -> 400 ({st})")
        st, obj, _, _ = p.deliver(body, "msg_5", ts, f"garbage {right}")
        check(st == 400 and obj["error"].startswith("ValueError"),
              f"a malformed entry before the right one -> 400, not a crash ({obj['error']})")
        # 6. Timestamps outside the 5 minute tolerance, correctly signed.
        old = ts - 600
        st, obj, _, _ = p.deliver(body, "msg_6", old, spec_sign(secret, "msg_6", old, body))
        check(st == 400 and obj["error"] == "Message timestamp too old", f"10 min old -> 400 ({obj['error']})")
        new = ts + 600
        st, obj, _, _ = p.deliver(body, "msg_6", new, spec_sign(secret, "msg_6", new, body))
        check(st == 400 and obj["error"] == "Message timestamp too new", f"10 min ahead -> 400 ({obj['error']})")
        # 7. Missing headers.
        st, obj, _, _ = p.deliver(body, "msg_7", ts, None)
        check(st == 400 and obj["error"] == "Missing required headers", f"no webhook-signature -> 400 ({obj})")
        st, obj, _, _ = p.deliver(body, None, ts, lib_sig)
        check(st == 400 and obj["error"] == "Missing required headers", f"no webhook-id -> 400 ({obj})")
        # 8. Header names are case-insensitive.
        st, *_ = p.deliver(body, None, None, None, extra={"Webhook-Id": "msg_8", "WEBHOOK-TIMESTAMP": str(ts),
                                                          "Webhook-Signature": spec_sign(secret, "msg_8", ts, body)})
        check(st == 204, f"mixed-case header names -> 204 ({st})")

        # 9. fail: 1 -> 500 then 204; a failed verification does not use up the count.
        st, obj, _, _ = p.request("POST", "/config", {"fail": 1})
        check(st == 200 and obj == {"ok": True}, "POST /config fail=1")
        st, *_ = p.deliver(body, "msg_9", ts, spec_sign(other_secret, "msg_9", ts, body))
        check(st == 400, f"bad signature while fail=1 -> 400 ({st})")
        sig9 = spec_sign(secret, "msg_9", ts, body)
        st, obj, _, _ = p.deliver(body, "msg_9", ts, sig9)
        check(st == 500 and obj["ok"] is False, f"fail=1: first good delivery -> 500 ({st})")
        st, *_ = p.deliver(body, "msg_9", ts, sig9)
        check(st == 204, f"fail=1: retry of the same message -> 204 ({st})")

        # 10. status: 200 -> answers 200 with {"ok": true}.
        p.request("POST", "/config", {"status": 200})
        st, obj, _, _ = p.deliver(body, "msg_10", ts, spec_sign(secret, "msg_10", ts, body))
        check(st == 200 and obj == {"ok": True}, f"status=200 -> 200 {obj}")

        # 11. delay_ms: a slow delivery does not block /received or another delivery.
        p.request("POST", "/config", {"delay_ms": 1500, "status": 204})
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            slow = ex.submit(p.deliver, body, "msg_11", ts, spec_sign(secret, "msg_11", ts, body))
            time.sleep(0.3)
            t0 = time.monotonic()
            during = p.received()
            fast_s = time.monotonic() - t0
            st, _, _, secs = slow.result()
        check(fast_s < 0.5, f"GET /received answers during a slow delivery ({fast_s:.3f} s)")
        check(any(m["webhookId"] == "msg_11" for m in during), "the slow delivery is recorded on arrival")
        check(st == 204 and secs >= 1.5, f"delay_ms=1500 -> 204 after {secs:.2f} s")
        p.request("POST", "/config", {"delay_ms": 0})

        # 12. /received: every delivery in arrival order, exact keys and values.
        msgs = p.received()
        check(all(set(m) == ENTRY_KEYS for m in msgs), "every entry has exactly the documented keys")
        ids = [m["webhookId"] for m in msgs]
        expect_ids = ["msg_0", "msg_1", "msg_2", "msg_3", "msg_1", "msg_1x", "msg_1", "msg_5", "msg_5", "msg_5",
                      "msg_5", "msg_5", "msg_6", "msg_6", "msg_7", None, "msg_8", "msg_9", "msg_9", "msg_9",
                      "msg_10", "msg_11"]
        check(ids == expect_ids, f"entries in arrival order ({ids})")
        answered = [m["answered"] for m in msgs]
        expect_answered = [400, 204, 204, 400, 400, 400, 400, 204, 204, 204, 400, 400, 400, 400, 400, 400, 204,
                           400, 500, 204, 200, 204]
        check(answered == expect_answered, f"answered statuses ({answered})")
        check([m["verified"] for m in msgs] == [a != 400 for a in expect_answered], "verified matches answered")
        m1, m2 = msgs[1], msgs[2]
        check(m1 == {**m1, "path": "/hook", "webhookId": "msg_1", "timestamp": str(ts), "signature": lib_sig,
                     "verified": True, "error": None, "answered": 204}, f"entry of msg_1 {m1}")
        check(m1["payload"] == json.loads(body), "payload is the parsed JSON body")
        check(abs(m1["receivedAt"] - time.time()) < 60 and isinstance(m1["receivedAt"], float), "receivedAt")
        check(m2["path"] == "/hook/abc?x=1", f"path is the request target with its query ({m2['path']})")
        check(msgs[0]["error"] == "no secret configured" and msgs[0]["verified"] is False, "entry of msg_0")
        check(msgs[15]["webhookId"] is None and msgs[15]["error"] == "Missing required headers",
              "a missing header is null in the entry")
        check(all(msgs[i]["receivedAt"] <= msgs[i + 1]["receivedAt"] for i in range(len(msgs) - 1)),
              "receivedAt never decreases")

        # 13. A body that is not JSON: still verified, payload null.
        plain = b"not json \xff"
        st, obj, _, _ = p.deliver(plain, "msg_13", ts, "v1," + "A" * 44)
        check(st == 400, f"a non-UTF-8 body -> 400 ({obj})")
        text = b"plain text"
        st, *_ = p.deliver(text, "msg_13b", ts, spec_sign(secret, "msg_13b", ts, text))
        last = p.received()[-1]
        check(st == 204 and last["verified"] and last["payload"] is None, "a signed non-JSON body -> 204, payload null")

        # 14. Unknown paths and methods.
        st, *_ = p.request("GET", "/nope")
        check(st == 404, "GET /nope -> 404")
        st, *_ = p.request("POST", "/nope", {})
        check(st == 404, "POST /nope -> 404")

        # 15. /reset: entries and config go, the secret stays.
        p.request("POST", "/config", {"fail": 5, "status": 202, "delay_ms": 10})
        st, obj, _, _ = p.request("POST", "/reset")
        check(st == 200 and obj == {"ok": True} and p.received() == [], "POST /reset clears the entries")
        sig = spec_sign(secret, "msg_15", ts, body)
        st, _, _, secs = p.deliver(body, "msg_15", ts, sig)
        check(st == 204, f"after /reset: secret kept, fail/status back to defaults -> 204 ({st})")
        check(len(p.received()) == 1, "one entry after /reset")

        # 16. Keep-alive: several requests on one connection.
        c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
        statuses = []
        for i in range(3):
            c.request("POST", "/hook", body=body, headers={"webhook-id": f"ka{i}", "webhook-timestamp": str(ts),
                                                            "webhook-signature": spec_sign(secret, f"ka{i}", ts, body)})
            r = c.getresponse()
            r.read()
            statuses.append(r.status)
        c.request("GET", "/received")
        r = c.getresponse()
        n = len(json.loads(r.read())["messages"])
        c.close()
        check(statuses == [204, 204, 204] and n == 4, f"keep-alive connection: {statuses}, {n} entries")
    finally:
        exited = p.close_stdin_and_wait()
    check(exited and p.proc.returncode == 0, f"exits 0 when stdin closes (code {p.proc.returncode})")

    # PORT is honoured.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    free = s.getsockname()[1]
    s.close()
    q = Peer({"PORT": str(free)})
    check(q.url == f"http://127.0.0.1:{free}", f"PORT={free} -> {q.url}")
    check(q.close_stdin_and_wait(), "second peer exits when stdin closes")
    return finish(p)


def finish(_):
    print(f"webhook-receiver selftest: {passed} passed, {len(failures)} failed", file=sys.stderr)
    for f in failures:
        print(f"  FAILED: {f}", file=sys.stderr)
    return 0 if not failures and passed else 1


if __name__ == "__main__":
    sys.exit(main())
