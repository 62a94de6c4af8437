"""A quick check of the fake card provider itself, so that a failing rinnovo test is not
the fake's fault. Standard library only:

    python3 -m unittest tests/support/test_fake_card_provider.py
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fake_card_provider  # noqa: E402

SECRET = "whsec_test_selftest"
API_KEY = "sk_test_selftest"
# Never through a proxy from the environment: everything here is on this machine.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


NO_REDIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())


def call(url, method="GET", *, form=None, data=None, headers=None, opener=OPENER):
    """Returns (status, headers, body: parsed JSON or text)."""
    raw = None
    if form is not None:
        raw = urllib.parse.urlencode(form).encode()
    elif data is not None:
        raw = json.dumps(data).encode()
    request = urllib.request.Request(url, data=raw, method=method)
    if form is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    elif data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with opener.open(request, timeout=20) as answer:
            status, answer_headers, body = answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        status, answer_headers, body = error.code, error.headers, error.read()
    text = body.decode("utf-8")
    if (answer_headers.get("Content-Type") or "").startswith("application/json"):
        return status, answer_headers, json.loads(text)
    return status, answer_headers, text


def verify(header: str, body: bytes, secret: str, tolerance: int = 300) -> bool:
    """Stripe's check, written independently of the fake."""
    items = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    signatures = [p.split("=", 1)[1] for p in header.split(",") if p.startswith("v1=")]
    timestamp = int(items["t"])
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body,
                        hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)


class Receiver:
    """A webhook endpoint that keeps what it receives and answers 200 (or whatever
    `status` says)."""

    def __init__(self):
        self.received: list[dict] = []
        self.lock = threading.Lock()
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.received.append({
                        "signature": self.headers.get("Stripe-Signature"),
                        "content_type": self.headers.get("Content-Type"),
                        "body": body,
                    })
                    status = receiver.status
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/card"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def session_form(**extra) -> dict:
    form = {
        "mode": "payment",
        "success_url": "http://127.0.0.1:9/ordini/42/pagato?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://127.0.0.1:9/ordini/42",
        "client_reference_id": "order-42",
        "customer_email": "mario.rossi@example.com",
        "expires_at": str(int(time.time()) + 3600),
        "line_items[0][price_data][currency]": "EUR",
        "line_items[0][price_data][unit_amount]": "10000",
        "line_items[0][price_data][product_data][name]": "Visura camerale",
        "line_items[0][quantity]": "1",
        "line_items[1][price_data][currency]": "eur",
        "line_items[1][price_data][unit_amount]": "1100",
        "line_items[1][price_data][product_data][name]": "Bollo & diritti",
        "line_items[1][quantity]": "2",
        "metadata[order_id]": "42",
        "payment_intent_data[metadata][order_id]": "42",
    }
    form.update(extra)
    return form


class FakeCardProviderTest(unittest.TestCase):
    def setUp(self):
        self.receiver = Receiver()
        self.server, self.port = fake_card_provider.start(
            secret=SECRET, webhook_url=self.receiver.url, api_key=API_KEY)
        self.base = f"http://127.0.0.1:{self.port}"
        self.auth = {"Authorization": f"Bearer {API_KEY}"}

    def tearDown(self):
        self.server.stop()
        self.receiver.stop()

    def api(self, path, method="GET", form=None, key=None):
        headers = dict(self.auth)
        if key:
            headers["Idempotency-Key"] = key
        return call(self.base + path, method, form=form, headers=headers)

    def control(self, path, data=None, method=None):
        return call(self.base + "/_control" + path, method or ("GET" if data is None else "POST"),
                    data=data)

    def test_the_whole_card_payment(self):
        # One session for two requests with the same key.
        status, headers, first = self.api("/v1/checkout/sessions", "POST", session_form(), "order-42-a")
        self.assertEqual(status, 200, first)
        status, headers, again = self.api("/v1/checkout/sessions", "POST", session_form(), "order-42-a")
        self.assertEqual(status, 200)
        self.assertEqual(again, first)
        self.assertEqual(headers.get("Idempotent-Replayed"), "true")
        self.assertEqual(len(self.control("/sessions")[2]), 1)
        status, _, conflict = self.api("/v1/checkout/sessions", "POST",
                                       session_form(client_reference_id="other"), "order-42-a")
        self.assertEqual(status, 400)
        self.assertEqual(conflict["error"]["type"], "idempotency_error")

        session = first
        self.assertTrue(session["id"].startswith("cs_test_"))
        self.assertEqual(session["object"], "checkout.session")
        self.assertEqual(session["url"], f"{self.base}/pay/{session['id']}")
        self.assertEqual((session["status"], session["payment_status"]), ("open", "unpaid"))
        self.assertEqual(session["amount_total"], 12200)
        self.assertEqual(session["currency"], "eur")
        self.assertEqual(session["metadata"], {"order_id": "42"})
        self.assertIsNone(session["payment_intent"])
        self.assertFalse(session["livemode"])

        # The hosted page, then the form's POST.
        status, _, page = call(session["url"])
        self.assertEqual(status, 200)
        self.assertIn("<title>Pagamento con carta — fornitore di prova</title>", page)
        self.assertIn("122,00 €", page)
        self.assertIn("Visura camerale", page)
        self.assertIn("Bollo &amp; diritti", page)
        self.assertIn('id="card-number"', page)
        self.assertIn('value="4242 4242 4242 4242"', page)
        self.assertIn('<button id="pay" type="submit">Paga</button>', page)
        self.assertIn('<a id="cancel" href="http://127.0.0.1:9/ordini/42">Annulla</a>', page)
        status, headers, _ = call(session["url"], "POST",
                                  form={"card_number": "4242 4242 4242 4242"}, opener=NO_REDIRECT)
        self.assertEqual(status, 303)
        self.assertEqual(headers["Location"],
                         f"http://127.0.0.1:9/ordini/42/pagato?session_id={session['id']}")
        self.assertIn("già stato effettuato", call(session["url"])[2])

        # The notification arrived, signed, before the form's answer.
        self.assertEqual(len(self.receiver.received), 1)
        delivery = self.receiver.received[0]
        self.assertEqual(delivery["content_type"], "application/json")
        self.assertTrue(verify(delivery["signature"], delivery["body"], SECRET))
        self.assertFalse(verify(delivery["signature"], delivery["body"], "whsec_other"))
        event = json.loads(delivery["body"])
        self.assertEqual(event["type"], "checkout.session.completed")
        self.assertEqual(event["api_version"], "2024-06-20")
        paid = event["data"]["object"]
        self.assertEqual((paid["status"], paid["payment_status"]), ("complete", "paid"))
        self.assertTrue(paid["payment_intent"].startswith("pi_"))
        status, _, now_session = self.api(f"/v1/checkout/sessions/{session['id']}")
        self.assertEqual(now_session["payment_intent"], paid["payment_intent"])

        # Ten deliveries of the same event at once: same body, fresh signatures.
        status, _, answer = self.control(f"/events/{event['id']}/deliver",
                                         {"times": 10, "concurrently": True})
        self.assertEqual(answer["statuses"], [200] * 10)
        self.assertEqual(len(self.receiver.received), 11)
        for delivery in self.receiver.received[1:]:
            self.assertEqual(delivery["body"], self.receiver.received[0]["body"])
            self.assertTrue(verify(delivery["signature"], delivery["body"], SECRET))

        # Part of it refunded, then more than what is left.
        intent = paid["payment_intent"]
        status, _, refund = self.api("/v1/refunds", "POST",
                                     {"payment_intent": intent, "amount": "2200",
                                      "metadata[reason]": "bollo"}, "refund-1")
        self.assertEqual(status, 200, refund)
        self.assertEqual((refund["object"], refund["amount"], refund["currency"], refund["status"]),
                         ("refund", 2200, "eur", "succeeded"))
        self.assertTrue(refund["id"].startswith("re_"))
        self.assertEqual(json.loads(self.receiver.received[-1]["body"])["type"], "refund.created")
        status, _, too_much = self.api("/v1/refunds", "POST",
                                       {"payment_intent": intent, "amount": "10001"})
        self.assertEqual(status, 400)
        self.assertEqual(too_much["error"]["code"], "amount_too_large")
        status, _, rest = self.api("/v1/refunds", "POST", {"payment_intent": intent})
        self.assertEqual((status, rest["amount"]), (200, 10000))
        status, _, none_left = self.api("/v1/refunds", "POST", {"payment_intent": intent})
        self.assertEqual(none_left["error"]["code"], "charge_already_refunded")
        status, _, fetched = self.api(f"/v1/refunds/{refund['id']}")
        self.assertEqual(fetched, refund)

        # What the control endpoints saw.
        events = self.control("/events")[2]
        self.assertEqual([e["event"]["type"] for e in events],
                         ["checkout.session.completed", "refund.created", "refund.created"])
        self.assertEqual(len(events[0]["deliveries"]), 11)
        self.assertEqual(len(self.control("/refunds")[2]), 2)
        requests = self.control("/requests")[2]
        self.assertEqual(requests[0]["idempotency_key"], "order-42-a")
        self.assertEqual(requests[0]["params"]["line_items"][1]["price_data"]["product_data"]["name"],
                         "Bollo & diritti")
        self.assertEqual(requests[0]["params"]["payment_intent_data"]["metadata"], {"order_id": "42"})
        self.assertEqual([r["method"] for r in requests].count("POST"), 7)

    def test_api_errors(self):
        status, _, body = call(self.base + "/v1/checkout/sessions/cs_test_x")
        self.assertEqual((status, body["error"]["type"]), (401, "invalid_request_error"))
        status, _, body = call(self.base + "/v1/checkout/sessions/cs_test_x",
                               headers={"Authorization": "Bearer sk_test_other"})
        self.assertEqual(status, 401)
        status, _, body = self.api("/v1/checkout/sessions/cs_test_x")
        self.assertEqual((status, body["error"]["code"], body["error"]["param"]),
                         (404, "resource_missing", "id"))
        for param in ("success_url", "line_items", "mode"):
            form = {k: v for k, v in session_form().items()
                    if k != param and not k.startswith(param + "[")}
            status, _, body = self.api("/v1/checkout/sessions", "POST", form)
            self.assertEqual((status, body["error"]["param"]), (400, param))
        self.control("/config", {"fail_next": 1})
        status, _, body = self.api("/v1/checkout/sessions", "POST", session_form(), "retry")
        self.assertEqual((status, body["error"]["type"]), (500, "api_error"))
        status, _, body = self.api("/v1/checkout/sessions", "POST", session_form(), "retry")
        self.assertEqual(status, 200)

    def test_control_endpoints(self):
        _, _, session = self.api("/v1/checkout/sessions", "POST", session_form())
        _, _, answer = self.control(f"/sessions/{session['id']}/pay",
                                    {"amount_total": 100, "currency": "USD"})
        self.assertEqual((answer["session"]["amount_total"], answer["session"]["currency"]),
                         (100, "usd"))
        self.assertEqual(answer["event"]["type"], "checkout.session.completed")
        self.assertEqual(answer["deliveries"], [200])

        _, _, other = self.api("/v1/checkout/sessions", "POST", session_form())
        _, _, answer = self.control(f"/sessions/{other['id']}/fail", {})
        self.assertEqual((answer["session"]["status"], answer["session"]["payment_status"]),
                         ("complete", "unpaid"))
        self.assertEqual(answer["event"]["type"], "checkout.session.async_payment_failed")

        _, _, third = self.api("/v1/checkout/sessions", "POST", session_form())
        status, _, expired = self.api(f"/v1/checkout/sessions/{third['id']}/expire", "POST")
        self.assertEqual((status, expired["status"]), (200, "expired"))
        status, _, _ = self.api(f"/v1/checkout/sessions/{third['id']}/expire", "POST")
        self.assertEqual(status, 400)
        self.assertIn("scaduta", call(third["url"])[2])

        # Dropped notifications are kept, and can be delivered late.
        config = self.control("/config", {"drop_notifications": True,
                                          "refund_status": "pending"})[2]
        self.assertTrue(config["drop_notifications"])
        before = len(self.receiver.received)
        _, _, refund = self.api("/v1/refunds", "POST",
                                {"payment_intent": answer["session"]["payment_intent"]})
        self.assertEqual(refund["error"]["param"], "payment_intent")  # never paid
        paid = self.control("/sessions")[2][0]
        _, _, refund = self.api("/v1/refunds", "POST", {"payment_intent": paid["payment_intent"]})
        self.assertEqual((refund["status"], refund["amount"]), ("pending", 100))
        self.assertEqual(len(self.receiver.received), before)
        dropped = self.control("/events?type=refund.created")[2][0]
        self.assertTrue(dropped["dropped"])
        self.control("/config", {"drop_notifications": False})
        _, _, answer = self.control(f"/refunds/{refund['id']}/settle", {"status": "failed"})
        self.assertEqual((answer["refund"]["status"], answer["event"]["type"]),
                         ("failed", "refund.failed"))
        _, _, answer = self.control(f"/events/{dropped['event']['id']}/deliver",
                                    {"times": 2, "concurrently": False})
        self.assertEqual(answer["statuses"], [200, 200])

        # Raw sends for forged and stale notifications.
        body = '{"id":"evt_forged"}'
        _, _, sent = self.control("/send", {"body": body, "secret": "whsec_wrong"})
        self.assertEqual(sent["status"], 200)
        _, _, sent = self.control("/send", {"body": body, "timestamp": 1000, "signature": "t=1,v1=00"})
        last = self.receiver.received[-1]
        self.assertEqual((last["body"], last["signature"]), (body.encode(), "t=1,v1=00"))
        _, _, sent = self.control("/send", {"body": body, "timestamp": int(time.time()) - 400})
        self.assertFalse(verify(self.receiver.received[-1]["signature"], body.encode(), SECRET))

        self.receiver.status = 500
        _, _, answer = self.control(f"/events/{dropped['event']['id']}/deliver", {})
        self.assertEqual(answer["statuses"], [500])
        self.control("/config", {"webhook_url": "http://127.0.0.1:9/closed"})
        _, _, answer = self.control(f"/events/{dropped['event']['id']}/deliver", {})
        self.assertEqual(answer["statuses"], [0])

        self.assertEqual(self.control("/nothing")[0], 404)
        self.assertEqual(self.control("/config", {"bogus": 1})[0], 400)


class CommandLineTest(unittest.TestCase):
    def test_prints_the_port_and_stops_on_sigterm(self):
        process = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "fake_card_provider.py"), "--port", "0",
             "--secret", SECRET],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = process.stdout.readline()
            self.assertRegex(line, r"^listening on \d+\n$")
            port = int(line.split()[2])
            status, _, body = call(f"http://127.0.0.1:{port}/_control/config")
            self.assertEqual((status, body["secret"]), (200, SECRET))
            process.terminate()
            self.assertEqual(process.wait(timeout=10), 0)
            self.assertEqual(process.stderr.read(), "")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()
            process.stderr.close()


if __name__ == "__main__":
    unittest.main()
