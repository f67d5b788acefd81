#!/usr/bin/env python3
"""A webhook receiver for tests that checks Standard Webhooks signatures with the PyPI package `standardwebhooks`.

Started as `python3 end2end/peers/webhook-receiver.py` (stdlib plus `standardwebhooks`, pinned in
requirements.txt). The point is a second implementation: Latchkey signs, an independent library verifies.
It listens on 127.0.0.1:$PORT (default 0: any free port), prints "READY http://127.0.0.1:<port>" and serves
until its stdin reaches EOF or 10 minutes have passed (both end it at once with os._exit(0)). Logs go to stderr
only; stdout carries nothing but the READY line. The HTTP contract is in webhook-receiver.md.
"""
import json
import logging
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    import standardwebhooks
except ImportError:
    sys.stderr.write("webhook-receiver: the Python package standardwebhooks is missing: "
                     "python3 -m pip install -r end2end/peers/requirements.txt\n")
    sys.exit(1)

LIFETIME_SECONDS = 600
MAX_BODY = 16 * 1024 * 1024
log = logging.getLogger("webhook-receiver")

# Everything the handlers share, under one lock.
lock = threading.Lock()
DEFAULTS = {"fail": 0, "delay_ms": 0, "status": 204}
state = {"secret": None, "webhook": None, "received": [], **DEFAULTS}


def int_field(data, key, lo, hi):
    v = data[key]
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f'"{key}" must be an integer from {lo} to {hi}')
    return v


def configure(data):
    """POST /config: sets the keys that are present, keeps the others. Raises ValueError for a bad body."""
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    unknown = sorted(set(data) - {"secret", "fail", "delay_ms", "status"})
    if unknown:
        raise ValueError(f"unknown keys {unknown}: give secret, fail, delay_ms, status")
    new = {}
    if "secret" in data:
        secret = data["secret"]
        if secret is None:
            new["secret"], new["webhook"] = None, None
        elif not isinstance(secret, str) or not secret:
            raise ValueError('"secret" must be a non-empty string ("whsec_<base64>") or null')
        else:
            try:
                new["webhook"] = standardwebhooks.Webhook(secret)
            except Exception as e:  # noqa: BLE001 (binascii.Error, EmptyWebhookSecretError, ...)
                raise ValueError(f'"secret" is not usable by standardwebhooks: {type(e).__name__}: {e}') from e
            new["secret"] = secret
    if "fail" in data:
        new["fail"] = int_field(data, "fail", 0, 1_000_000)
    if "delay_ms" in data:
        new["delay_ms"] = int_field(data, "delay_ms", 0, LIFETIME_SECONDS * 1000)
    if "status" in data:
        new["status"] = int_field(data, "status", 200, 599)
    with lock:
        state.update(new)
    log.info("config: %s", {k: ("<set>" if k == "secret" and v else v) for k, v in new.items() if k != "webhook"})


def verify(webhook, body, headers):
    """(verified, error). Any exception from the library is a failure (it raises ValueError, not only
    WebhookVerificationError, for a malformed webhook-signature header)."""
    if webhook is None:
        return False, "no secret configured"
    try:
        webhook.verify(body, headers, json_parse=False)
        return True, None
    except standardwebhooks.WebhookVerificationError as e:
        return False, str(e) or "WebhookVerificationError"
    except Exception as e:  # noqa: BLE001
        return False, f"{type(e).__name__}: {e}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "webhook-receiver"
    sys_version = ""

    def log_message(self, fmt, *args):
        log.info("http: " + fmt, *args)

    def send(self, status, obj=None):
        """Answer with JSON `obj`, or with no body (204, or obj None)."""
        try:
            body = b"" if obj is None or status == 204 else json.dumps(obj).encode()
            self.send_response(status)
            if status != 204:
                if body:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            log.info("the client went away before the answer (%s)", status)
            self.close_connection = True

    def read_body(self):
        """The request body: Content-Length or chunked. Read even when refusing: the connection is kept alive."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
                if len(out) > MAX_BODY:
                    raise ValueError("body too large")
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n) if n > 0 else b""

    def do_POST(self):
        try:
            raw = self.read_body()
        except ValueError as e:
            self.close_connection = True
            return self.send(400, {"ok": False, "error": str(e)})
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/hook"):
            return self.delivery(raw)
        if path == "/config":
            try:
                configure(json.loads(raw or b"null"))
            except ValueError as e:  # json.JSONDecodeError is a ValueError
                return self.send(400, {"ok": False, "error": str(e)})
            return self.send(200, {"ok": True})
        if path == "/reset":
            with lock:
                state["received"] = []
                state.update(DEFAULTS)
            log.info("reset (the secret is kept)")
            return self.send(200, {"ok": True})
        self.send(404, {"error": "not found"})

    def do_GET(self):
        if urllib.parse.urlsplit(self.path).path == "/received":
            with lock:
                messages = list(state["received"])
            return self.send(200, {"messages": messages})
        self.send(404, {"error": "not found"})

    def delivery(self, raw):
        received_at = time.time()
        with lock:
            webhook, delay_ms, status = state["webhook"], state["delay_ms"], state["status"]
        # All headers as sent; the library lowercases the names itself.
        headers = {k: v for k, v in self.headers.items()}
        verified, error = verify(webhook, raw, headers)
        try:
            payload = json.loads(raw)
        except ValueError:  # not UTF-8 or not JSON
            payload = None
        with lock:
            if not verified:
                answered = 400
            elif state["fail"] > 0:
                state["fail"] -= 1
                answered = 500
            else:
                answered = status
            entry = {
                "path": self.path,
                "webhookId": self.headers.get("webhook-id"),
                "timestamp": self.headers.get("webhook-timestamp"),
                "signature": self.headers.get("webhook-signature"),
                "verified": verified,
                "error": error,
                "payload": payload,
                "answered": answered,
                "receivedAt": received_at,
            }
            state["received"].append(entry)
        log.info("delivery %s id=%s verified=%s%s -> %d%s", self.path, entry["webhookId"], verified,
                 f" ({error})" if error else "", answered, f" after {delay_ms} ms" if delay_ms else "")
        if delay_ms:
            time.sleep(delay_ms / 1000)
        if answered == 400:
            self.send(400, {"ok": False, "error": error})
        elif answered == 500:
            self.send(500, {"ok": False, "error": "failing on purpose (fail)"})
        else:
            self.send(answered, {"ok": True})


def bound_lifetime():
    """Exit at once when stdin reaches EOF (whoever started us is gone) and after LIFETIME_SECONDS regardless."""

    def stop(why):
        log.info("stopping: %s", why)
        logging.shutdown()
        os._exit(0)

    def watch_stdin():
        try:
            while sys.stdin.buffer.read1(65536):
                pass
        except (OSError, ValueError):
            pass
        stop("stdin closed")

    threading.Thread(target=watch_stdin, daemon=True).start()
    timer = threading.Timer(LIFETIME_SECONDS, stop, args=(f"{LIFETIME_SECONDS} s passed",))
    timer.daemon = True
    timer.start()


def main():
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="webhook-receiver: %(levelname)s %(message)s")
    try:
        port = int(os.environ.get("PORT") or 0)
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except (ValueError, OSError) as e:
        log.error("cannot listen on 127.0.0.1:%s: %s", os.environ.get("PORT"), e)
        sys.stdout.flush()
        os._exit(1)
    server.daemon_threads = True
    bound_lifetime()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    log.info("standardwebhooks %s, listening on %s", getattr(standardwebhooks, "__version__", "?"), base)
    print(f"READY {base}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        # Not a normal interpreter exit: the stdin watcher may still be blocked in read().
        os._exit(0)


if __name__ == "__main__":
    main()
