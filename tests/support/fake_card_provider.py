#!/usr/bin/env python3
"""A local stand-in for the card payment provider (the part of Stripe's API that rinnovo
uses), so the Rust integration tests, the browser tests and the scale-out script can take
card payments without the network.

It answers the API calls rinnovo makes (Checkout Sessions, refunds) the way Stripe
documents them, serves a hosted payment page a browser can fill in, and posts webhook
notifications signed with Stripe's scheme. Endpoints under /_control let a test play the
parts the real provider plays on its own: a customer paying or abandoning, a refund
settling days later, a notification lost, repeated or forged.

Run it as a process:

    python3 tests/support/fake_card_provider.py --port 0 --secret whsec_xxx \
        [--webhook-url URL] [--api-key sk_test_xxx]

The first stdout line is `listening on <port>`; nothing else goes to stdout, and nothing
goes to stderr unless --verbose, so a harness that pipes them without reading on cannot
block it. SIGTERM and SIGINT end it cleanly. Or import it and call `start(...)`, which
serves from a background thread.

Standard library only: the harnesses that use it must not need anything installed.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import hmac
import html
import json
import re
import secrets
import signal
import string
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_VERSION = "2024-06-20"
DEFAULT_SECRET = "whsec_test_fake_card_provider"
WEBHOOK_TIMEOUT_SECS = 5
# Stripe lets a Checkout Session live between 30 minutes and 24 hours; a few seconds of
# slack absorb the time between the caller computing expires_at and the request landing.
EXPIRES_MIN_SECS = 30 * 60
EXPIRES_MAX_SECS = 24 * 60 * 60
EXPIRES_SLACK_SECS = 10
# Stripe refuses a charge below the currency's minimum; these are the ones a test may use.
MINIMUM_AMOUNT = {"eur": 50, "usd": 50, "gbp": 30, "chf": 50}
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500
REFUND_REASONS = {"duplicate", "fraudulent", "requested_by_customer"}
# Statuses whose amount is held against the payment: a failed or canceled refund gives
# its amount back, as Stripe does.
REFUND_HOLDING = {"succeeded", "pending", "requires_action"}
# Stripe's generic-decline test card: paying with it on the hosted page is refused.
DECLINED_CARD = "4000000000000002"

SESSION_PARAMS = {
    "mode", "line_items", "success_url", "cancel_url", "client_reference_id",
    "customer_email", "expires_at", "metadata", "payment_intent_data",
}
# Accepted as Stripe accepts them, with no effect on what this fake does.
SESSION_PARAMS_IGNORED = {
    "expand", "locale", "payment_method_types", "submit_type", "billing_address_collection",
    "customer_creation", "ui_mode", "allow_promotion_codes", "phone_number_collection",
}
LINE_ITEM_PARAMS = {"price_data", "quantity"}
PRICE_DATA_PARAMS = {"currency", "unit_amount", "product_data"}
PRODUCT_DATA_PARAMS = {"name", "description", "metadata"}
PAYMENT_INTENT_DATA_PARAMS = {"metadata", "description", "statement_descriptor_suffix"}
REFUND_PARAMS = {"payment_intent", "amount", "metadata", "reason", "expand"}

ALNUM = string.ascii_letters + string.digits


def random_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(ALNUM) for _ in range(length))


def now() -> int:
    return int(time.time())


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Stripe's v1 scheme: hex HMAC-SHA256, keyed with the whole `whsec_...` string, of
    `<timestamp>.<body>`."""
    payload = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def compact(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class ApiError(Exception):
    """An error answered with Stripe's error JSON. `saved` says whether an idempotent
    request keeps it as its result: Stripe keeps what an endpoint answered once it started
    executing, but not a refusal of the parameters themselves."""

    def __init__(self, status, message, *, type_="invalid_request_error", code=None,
                 param=None, saved=True):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.saved = saved

    def body(self) -> dict:
        error = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


def missing(param: str) -> ApiError:
    return ApiError(400, f"Missing required param: {param}.", code="parameter_missing",
                    param=param, saved=False)


def invalid(param: str, message: str, code: str = "parameter_invalid") -> ApiError:
    return ApiError(400, message, code=code, param=param, saved=False)


def unknown_params(given: dict, allowed: set, prefix: str = "") -> None:
    for name in given:
        if name not in allowed:
            full = f"{prefix}[{name}]" if prefix else name
            raise ApiError(400, f"Received unknown parameter: {full}",
                           code="parameter_unknown", param=full, saved=False)


# --- Stripe's form encoding ------------------------------------------------------------

def split_key(key: str) -> list[str]:
    """`line_items[0][price_data][currency]` -> ['line_items', '0', 'price_data', 'currency'];
    anything that is not well-formed bracket notation stays one flat name."""
    start = key.find("[")
    if start <= 0 or not key.endswith("]"):
        return [key]
    parts = [key[:start]]
    rest = key[start:]
    while rest:
        end = rest.find("]")
        if not rest.startswith("[") or end < 0:
            return [key]
        parts.append(rest[1:end])
        rest = rest[end + 1:]
    return parts


def listify(node, parent: str | None = None):
    """Maps whose keys are all indices become lists, ordered by index. Metadata stays a
    map whatever its keys look like, since its keys are the caller's."""
    if not isinstance(node, dict):
        return node
    if parent != "metadata" and node and all(k.isdigit() for k in node):
        return [listify(node[k]) for k in sorted(node, key=int)]
    return {k: listify(v, k) for k, v in node.items()}


def parse_form(text: str) -> dict:
    root: dict = {}
    for key, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        parts = split_key(key)
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":
                # `expand[]=a&expand[]=b`: each empty index is the next one.
                part = str(len(node))
            if last:
                if isinstance(node.get(part), dict):
                    raise invalid(key, f"Invalid value for {key}: it is also given as a hash.")
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise invalid(key, f"Invalid value for {key}: it is also given as a string.")
                node = child
    return listify(root)


def parse_int(value, param: str, minimum: int | None = None) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise invalid(param, f"Invalid integer: {value}", "parameter_invalid_integer")
    number = int(value)
    if minimum is not None and number < minimum:
        raise invalid(param, f"Invalid {param}: must be at least {minimum}")
    return number


def parse_metadata(value, param: str) -> dict:
    if value is None:
        return {}
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid(param, f"Invalid object: {param} must be a hash of strings.", "parameter_invalid")
    if len(value) > METADATA_MAX_KEYS:
        raise invalid(param, f"Invalid {param}: at most {METADATA_MAX_KEYS} keys.")
    for key, item in value.items():
        if not isinstance(item, str):
            raise invalid(f"{param}[{key}]", f"Invalid value for {param}[{key}]: must be a string.")
        if len(key) > METADATA_KEY_MAX:
            raise invalid(f"{param}[{key}]",
                          f"Metadata keys can have up to {METADATA_KEY_MAX} characters.")
        if len(item) > METADATA_VALUE_MAX:
            raise invalid(f"{param}[{key}]",
                          f"Metadata values can have up to {METADATA_VALUE_MAX} characters.")
    # Stripe drops a key sent with an empty value.
    return {k: v for k, v in value.items() if v != ""}


def money_text(amount: int, currency: str) -> str:
    """Italian notation: 122,00 € and 1.234,56 €."""
    sign_ = "-" if amount < 0 else ""
    units, cents = divmod(abs(amount), 100)
    grouped = f"{units:,}".replace(",", ".")
    symbol = "€" if currency == "eur" else currency.upper()
    return f"{sign_}{grouped},{cents:02d} {symbol}"


def money_plain(amount: int, currency: str) -> str:
    symbol = {"eur": "€", "usd": "$", "gbp": "£"}.get(currency, currency.upper() + " ")
    return f"{symbol}{amount // 100}.{amount % 100:02d}"


# --- The provider's state --------------------------------------------------------------

class Provider:
    """Everything in memory, behind one lock. Webhooks are sent with the lock released, so
    a receiver that calls back into the API while handling one does not deadlock."""

    def __init__(self, secret: str, webhook_url: str | None, api_key: str | None,
                 base_url: str = ""):
        self.lock = threading.RLock()
        self.initial = {"secret": secret, "webhook_url": webhook_url}
        self.api_key = api_key
        self.base_url = base_url
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.config = {
                "webhook_url": self.initial["webhook_url"],
                "drop_notifications": False,
                "refund_status": "succeeded",
                "fail_next": 0,
                "secret": self.initial["secret"],
            }
            self.sessions: dict[str, dict] = {}
            self.line_items: dict[str, list] = {}
            self.payment_intents: dict[str, dict] = {}
            self.refunds: dict[str, dict] = {}
            self.events: dict[str, dict] = {}
            self.requests: list[dict] = []
            self.idempotency: dict[str, dict] = {}
            # One lock per idempotency key, held for the whole request, so two concurrent
            # requests with the same key make one object and the second gets its answer.
            self.key_locks: dict[str, threading.Lock] = {}

    # --- API entry point ---------------------------------------------------------------

    def handle_api(self, method: str, path: str, query: str, headers, raw: bytes):
        """Returns (status, body, extra headers)."""
        idempotency_key = headers.get("Idempotency-Key")
        parse_error = None
        params: dict = {}
        try:
            if method == "POST":
                content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if raw and content_type != "application/x-www-form-urlencoded":
                    raise ApiError(400, "Invalid request: the body must be "
                                   "application/x-www-form-urlencoded, not "
                                   f"{content_type or 'untyped'}.", saved=False)
                params = parse_form(raw.decode("utf-8"))
            else:
                params = parse_form(query)
        except (ApiError, UnicodeDecodeError) as error:
            parse_error = error if isinstance(error, ApiError) else ApiError(
                400, "Invalid request: the body is not UTF-8.", saved=False)
        record = {"method": method, "path": path, "idempotency_key": idempotency_key,
                  "params": params, "status": None}
        with self.lock:
            self.requests.append(record)
        status, body, extra = self._api(method, path, headers, params, parse_error,
                                        idempotency_key)
        with self.lock:
            record["status"] = status
        extra = dict(extra)
        extra["Request-Id"] = random_id("req_", 14)
        if idempotency_key and method == "POST":
            extra["Idempotency-Key"] = idempotency_key
        return status, body, extra

    def _api(self, method, path, headers, params, parse_error, idempotency_key):
        try:
            self.check_auth(headers)
        except ApiError as error:
            return error.status, error.body(), {}
        with self.lock:
            if self.config["fail_next"] > 0:
                self.config["fail_next"] -= 1
                # Not kept for the idempotency key: a retry with the same key must be able
                # to succeed, which is what these injected failures are there to test.
                return 500, {"error": {"type": "api_error", "message":
                                       "An unknown error occurred (injected by the test)."}}, {}
        try:
            if parse_error:
                raise parse_error
            handler, args = self.route(method, path)
        except ApiError as error:
            return error.status, error.body(), {}

        if method != "POST" or not idempotency_key:
            status, body, events = self.run(handler, args, params, idempotency_key)
            self.notify(events)
            return status, body, {}

        fingerprint = [method, path, params]
        with self.lock:
            key_lock = self.key_locks.setdefault(idempotency_key, threading.Lock())
        with key_lock:
            with self.lock:
                stored = self.idempotency.get(idempotency_key)
            if stored is not None:
                if stored["fingerprint"] != fingerprint:
                    error = ApiError(
                        400,
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with. Try using a key other than "
                        f"'{idempotency_key}' if you meant to execute a different request.",
                        type_="idempotency_error")
                    return error.status, error.body(), {}
                return stored["status"], copy.deepcopy(stored["body"]), {"Idempotent-Replayed": "true"}
            status, body, events, saved = self.run(handler, args, params, idempotency_key,
                                                   with_saved=True)
            if saved:
                with self.lock:
                    self.idempotency[idempotency_key] = {
                        "fingerprint": fingerprint, "status": status, "body": copy.deepcopy(body)}
            self.notify(events)
            return status, body, {}

    def run(self, handler, args, params, idempotency_key, with_saved=False):
        try:
            status, body, events = handler(params, *args)
            saved = True
        except ApiError as error:
            status, body, events, saved = error.status, error.body(), [], error.saved
        if with_saved:
            return status, body, events, saved
        return status, body, events

    def check_auth(self, headers) -> None:
        value = headers.get("Authorization") or ""
        key = None
        if value.startswith("Bearer "):
            key = value[len("Bearer "):].strip()
        elif value.startswith("Basic "):
            # Stripe also takes the key as the user name of basic auth.
            try:
                key = base64.b64decode(value[len("Basic "):]).decode().split(":", 1)[0]
            except Exception:
                key = None
        if not key:
            raise ApiError(401, "You did not provide an API key. You need to provide your API "
                           "key in the Authorization header, using Bearer auth (e.g. "
                           "'Authorization: Bearer YOUR_SECRET_KEY').")
        good = key == self.api_key if self.api_key else key.startswith("sk_")
        if not good:
            shown = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else key
            raise ApiError(401, f"Invalid API Key provided: {shown}")

    def route(self, method: str, path: str):
        parts = [p for p in path.split("/") if p][1:]  # without "v1"
        table = [
            ("POST", ["checkout", "sessions"], self.create_session),
            ("GET", ["checkout", "sessions", None], self.get_session),
            ("POST", ["checkout", "sessions", None, "expire"], self.expire_session_api),
            ("POST", ["refunds"], self.create_refund),
            ("GET", ["refunds", None], self.get_refund),
            ("GET", ["payment_intents", None], self.get_payment_intent),
        ]
        for want_method, pattern, handler in table:
            if method != want_method or len(pattern) != len(parts):
                continue
            args = []
            for want, got in zip(pattern, parts):
                if want is None:
                    args.append(urllib.parse.unquote(got))
                elif want != got:
                    break
            else:
                return handler, args
        raise ApiError(404, f"Unrecognized request URL ({method}: {path}). Please see "
                       "https://stripe.com/docs or we can help at https://support.stripe.com/.")

    # --- Checkout Sessions -------------------------------------------------------------

    def create_session(self, params):
        unknown_params(params, SESSION_PARAMS | SESSION_PARAMS_IGNORED)
        mode = params.get("mode")
        if mode in (None, ""):
            raise missing("mode")
        if mode != "payment":
            raise invalid("mode", f"Invalid mode: this provider only supports payment, not {mode}.")
        success_url = params.get("success_url")
        if success_url in (None, ""):
            raise missing("success_url")
        for name in ("success_url", "cancel_url"):
            url = params.get(name)
            if url is not None and not re.match(r"https?://[^\s]+$", str(url)):
                raise invalid(name, "Not a valid URL", "url_invalid")
        items = params.get("line_items")
        if items in (None, ""):
            raise missing("line_items")
        if not isinstance(items, list) or not items:
            raise invalid("line_items", "Invalid array: line_items must be an array of hashes.")

        currency = None
        amount_total = 0
        stored_items = []
        for i, item in enumerate(items):
            where = f"line_items[{i}]"
            if not isinstance(item, dict):
                raise invalid(where, f"Invalid hash: {where}")
            if "price" in item:
                raise invalid(f"{where}[price]", "This provider takes prices only as "
                              f"{where}[price_data], not as Price ids.")
            unknown_params(item, LINE_ITEM_PARAMS, where)
            price = item.get("price_data")
            if not isinstance(price, dict):
                raise missing(f"{where}[price_data]")
            unknown_params(price, PRICE_DATA_PARAMS, f"{where}[price_data]")
            item_currency = price.get("currency")
            if not item_currency:
                raise missing(f"{where}[price_data][currency]")
            if not re.fullmatch(r"[A-Za-z]{3}", item_currency):
                raise invalid(f"{where}[price_data][currency]",
                              f"Invalid currency: {item_currency}")
            item_currency = item_currency.lower()
            if currency is None:
                currency = item_currency
            elif currency != item_currency:
                raise invalid(f"{where}[price_data][currency]",
                              "All line items must have the same currency.")
            if "unit_amount" not in price:
                raise missing(f"{where}[price_data][unit_amount]")
            unit_amount = parse_int(price["unit_amount"], f"{where}[price_data][unit_amount]", 0)
            product = price.get("product_data")
            if not isinstance(product, dict):
                raise missing(f"{where}[price_data][product_data]")
            unknown_params(product, PRODUCT_DATA_PARAMS, f"{where}[price_data][product_data]")
            name = product.get("name")
            if not name:
                raise missing(f"{where}[price_data][product_data][name]")
            if "quantity" not in item:
                raise missing(f"{where}[quantity]")
            quantity = parse_int(item["quantity"], f"{where}[quantity]", 1)
            amount_total += unit_amount * quantity
            stored_items.append({
                "id": random_id("li_"), "object": "item", "description": name,
                "currency": item_currency, "quantity": quantity,
                "price": {"object": "price", "currency": item_currency,
                          "unit_amount": unit_amount, "product_data": {"name": name}},
                "amount_subtotal": unit_amount * quantity, "amount_total": unit_amount * quantity,
            })
        minimum = MINIMUM_AMOUNT.get(currency)
        if minimum is not None and amount_total < minimum:
            raise invalid("line_items", "The Checkout Session's total amount due must add up "
                          f"to at least {money_plain(minimum, currency)} {currency}")

        created = now()
        if params.get("expires_at") not in (None, ""):
            expires_at = parse_int(params["expires_at"], "expires_at")
            if expires_at < created + EXPIRES_MIN_SECS - EXPIRES_SLACK_SECS:
                raise invalid("expires_at", "The `expires_at` timestamp must be at least 30 "
                              "minutes from Checkout Session creation.")
            if expires_at > created + EXPIRES_MAX_SECS + EXPIRES_SLACK_SECS:
                raise invalid("expires_at", "The `expires_at` timestamp must be less than 24 "
                              "hours from Checkout Session creation.")
        else:
            expires_at = created + EXPIRES_MAX_SECS

        email = params.get("customer_email") or None
        if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            raise invalid("customer_email", f"Invalid email address: {email}", "email_invalid")
        reference = params.get("client_reference_id") or None
        if reference is not None and len(reference) > 200:
            raise invalid("client_reference_id",
                          "client_reference_id can have up to 200 characters.")
        metadata = parse_metadata(params.get("metadata"), "metadata")
        intent_data = params.get("payment_intent_data") or {}
        if not isinstance(intent_data, dict):
            raise invalid("payment_intent_data", "Invalid hash: payment_intent_data")
        unknown_params(intent_data, PAYMENT_INTENT_DATA_PARAMS, "payment_intent_data")
        intent_metadata = parse_metadata(intent_data.get("metadata"),
                                         "payment_intent_data[metadata]")

        session_id = random_id("cs_test_", 58)
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "payment",
            "url": f"{self.base_url}/pay/{session_id}",
            "status": "open",
            "payment_status": "unpaid",
            "amount_subtotal": amount_total,
            "amount_total": amount_total,
            "currency": currency,
            "expires_at": expires_at,
            "created": created,
            "client_reference_id": reference,
            "metadata": metadata,
            "payment_intent": None,
            "success_url": success_url,
            "cancel_url": params.get("cancel_url") or None,
            "customer_email": email,
            "livemode": False,
        }
        with self.lock:
            self.sessions[session_id] = session
            self.line_items[session_id] = stored_items
            session["_intent_metadata"] = intent_metadata
            return 200, self.public_session(session_id, params), []

    def public_session(self, session_id: str, params=None) -> dict:
        session = self.sessions[session_id]
        shown = {k: copy.deepcopy(v) for k, v in session.items() if not k.startswith("_")}
        expand = (params or {}).get("expand") or []
        if isinstance(expand, list) and "line_items" in expand:
            shown["line_items"] = self.line_items_list(session_id)
        return shown

    def line_items_list(self, session_id: str) -> dict:
        return {"object": "list", "data": copy.deepcopy(self.line_items[session_id]),
                "has_more": False, "url": f"/v1/checkout/sessions/{session_id}/line_items"}

    def find_session(self, session_id: str, param: str = "id") -> dict:
        session = self.sessions.get(session_id)
        if session is None:
            raise ApiError(404, f"No such checkout.session: '{session_id}'",
                           code="resource_missing", param=param)
        return session

    def get_session(self, params, session_id):
        with self.lock:
            self.find_session(session_id)
            return 200, self.public_session(session_id, params), []

    def expire_session_api(self, params, session_id):
        with self.lock:
            session = self.find_session(session_id)
            if session["status"] != "open":
                raise ApiError(400, "Only Checkout Sessions with a status in [\"open\"] can be "
                               f"expired. This session has status \"{session['status']}\".")
            session["status"] = "expired"
            event = self.new_event("checkout.session.expired", self.public_session(session_id))
            return 200, self.public_session(session_id), [event]

    # The state changes behind the hosted page and the control endpoints; the caller holds
    # the lock and checks the session's status first.

    def mark_paid(self, session: dict, amount_total=None, currency=None) -> None:
        if amount_total is not None:
            session["amount_total"] = amount_total
            session["amount_subtotal"] = amount_total
        if currency is not None:
            session["currency"] = currency
        intent_id = session["payment_intent"] or random_id("pi_")
        session["payment_intent"] = intent_id
        session["status"] = "complete"
        session["payment_status"] = "paid"
        self.payment_intents[intent_id] = {
            "id": intent_id, "object": "payment_intent", "amount": session["amount_total"],
            "amount_received": session["amount_total"], "currency": session["currency"],
            "status": "succeeded", "metadata": copy.deepcopy(session["_intent_metadata"]),
            "latest_charge": random_id("ch_"), "created": now(), "livemode": False,
            "_session": session["id"],
        }

    def mark_failed(self, session: dict) -> None:
        intent_id = session["payment_intent"] or random_id("pi_")
        session["payment_intent"] = intent_id
        session["status"] = "complete"
        session["payment_status"] = "unpaid"
        self.payment_intents[intent_id] = {
            "id": intent_id, "object": "payment_intent", "amount": session["amount_total"],
            "amount_received": 0, "currency": session["currency"],
            "status": "requires_payment_method",
            "metadata": copy.deepcopy(session["_intent_metadata"]), "latest_charge": None,
            "created": now(), "livemode": False, "_session": session["id"],
        }

    def get_payment_intent(self, params, intent_id):
        with self.lock:
            intent = self.payment_intents.get(intent_id)
            if intent is None:
                raise ApiError(404, f"No such payment_intent: '{intent_id}'",
                               code="resource_missing", param="intent")
            return 200, {k: copy.deepcopy(v) for k, v in intent.items()
                         if not k.startswith("_")}, []

    # --- Refunds -----------------------------------------------------------------------

    def create_refund(self, params):
        unknown_params(params, REFUND_PARAMS)
        intent_id = params.get("payment_intent")
        if not intent_id:
            raise missing("payment_intent")
        amount = None
        if params.get("amount") not in (None, ""):
            amount = parse_int(params["amount"], "amount", 1)
        reason = params.get("reason") or None
        if reason is not None and reason not in REFUND_REASONS:
            raise invalid("reason", f"Invalid reason: must be one of "
                          f"{', '.join(sorted(REFUND_REASONS))}")
        metadata = parse_metadata(params.get("metadata"), "metadata")
        with self.lock:
            intent = self.payment_intents.get(intent_id)
            if intent is None:
                raise ApiError(400, f"No such payment_intent: '{intent_id}'",
                               code="resource_missing", param="payment_intent")
            if intent["status"] != "succeeded":
                raise ApiError(400, f"This PaymentIntent ({intent_id}) does not have a "
                               "successful charge to refund.", param="payment_intent")
            held = sum(r["amount"] for r in self.refunds.values()
                       if r["payment_intent"] == intent_id and r["status"] in REFUND_HOLDING)
            remaining = intent["amount_received"] - held
            if remaining <= 0:
                raise ApiError(400, f"Charge {intent['latest_charge']} has already been refunded.",
                               code="charge_already_refunded")
            if amount is None:
                amount = remaining
            if amount > remaining:
                currency = intent["currency"]
                raise ApiError(400, f"Refund amount ({money_plain(amount, currency)}) is greater "
                               "than unrefunded amount on charge "
                               f"({money_plain(remaining, currency)})",
                               code="amount_too_large", param="amount")
            refund = {
                "id": random_id("re_"),
                "object": "refund",
                "amount": amount,
                "currency": intent["currency"],
                "payment_intent": intent_id,
                "charge": intent["latest_charge"],
                "status": self.config["refund_status"],
                "reason": reason,
                "metadata": metadata,
                "created": now(),
            }
            self.refunds[refund["id"]] = refund
            event = self.new_event("refund.created", refund)
            return 200, copy.deepcopy(refund), [event]

    def get_refund(self, params, refund_id):
        with self.lock:
            refund = self.refunds.get(refund_id)
            if refund is None:
                raise ApiError(404, f"No such refund: '{refund_id}'", code="resource_missing",
                               param="id")
            return 200, copy.deepcopy(refund), []

    # --- Events and their delivery -----------------------------------------------------

    def new_event(self, type_: str, obj: dict) -> str:
        """Stores an event with the bytes every delivery of it sends; the caller holds the
        lock. Returns its id."""
        event = {
            "id": random_id("evt_"),
            "object": "event",
            "api_version": API_VERSION,
            "created": now(),
            "livemode": False,
            "type": type_,
            "data": {"object": copy.deepcopy(obj)},
        }
        self.events[event["id"]] = {"event": event, "body": compact(event), "deliveries": [],
                                    "dropped": False}
        return event["id"]

    def notify(self, event_ids: list[str], force: bool = False) -> list[int]:
        """Delivers each event once, unless notifications are being dropped (the events are
        kept all the same, so a test can deliver them late). Returns the statuses."""
        statuses = []
        for event_id in event_ids:
            with self.lock:
                dropping = self.config["drop_notifications"] and not force
                if dropping:
                    self.events[event_id]["dropped"] = True
            if dropping:
                continue
            status = self.deliver(event_id)
            if status is not None:
                statuses.append(status)
        return statuses

    def deliver(self, event_id: str) -> int | None:
        """One delivery, signed now with the secret configured now. None when there is no
        webhook URL; 0 when the receiver gave no HTTP answer."""
        with self.lock:
            url = self.config["webhook_url"]
            secret = self.config["secret"]
            body = self.events[event_id]["body"]
        if not url:
            return None
        timestamp = now()
        started = time.monotonic()
        status, text, error = post_webhook(url, body, signature_header(secret, timestamp, body))
        with self.lock:
            self.events[event_id]["deliveries"].append({
                "at": timestamp, "url": url, "status": status, "error": error,
                "response": text[:1000], "millis": int((time.monotonic() - started) * 1000),
            })
        return status

    # --- Hosted payment page -----------------------------------------------------------

    def handle_page(self, method: str, session_id: str, raw: bytes):
        """Returns (status, headers, html bytes)."""
        events: list[str] = []
        with self.lock:
            session = self.sessions.get(session_id)
            if session is None:
                return 404, {}, page("Sessione di pagamento sconosciuta",
                                     "<p id=\"message\">Questa sessione di pagamento non esiste.</p>")
            if method == "GET" or session["status"] != "open":
                status = 200 if method == "GET" else 409
                return status, {}, self.render_session(session)
            form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"))
            card = re.sub(r"\D", "", (form.get("card_number") or [""])[0])
            if card == DECLINED_CARD or len(card) < 12:
                why = ("La carta è stata rifiutata." if card == DECLINED_CARD
                       else "Il numero della carta non è valido.")
                return 402, {}, self.render_session(session, error=why)
            self.mark_paid(session)
            events.append(self.new_event("checkout.session.completed",
                                         self.public_session(session_id)))
            target = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
        self.notify(events)
        return 303, {"Location": target}, b""

    def render_session(self, session: dict, error: str | None = None) -> bytes:
        items = self.line_items[session["id"]]
        amount = html.escape(money_text(session["amount_total"], session["currency"]))
        rows = "".join(
            f"<li class=\"product\">{html.escape(i['description'])}"
            + (f" × {i['quantity']}" if i["quantity"] != 1 else "") + "</li>"
            for i in items)
        cancel = ""
        if session["cancel_url"]:
            cancel = (f"<a id=\"cancel\" href=\"{html.escape(session['cancel_url'])}\">"
                      "Annulla</a>")
        summary = (f"<p>Importo: <strong id=\"amount\">{amount}</strong></p>"
                   f"<ul id=\"products\">{rows}</ul>")
        if session["status"] == "expired":
            body = summary + "<p id=\"message\">Questa sessione di pagamento è scaduta.</p>"
        elif session["payment_status"] == "paid":
            body = summary + "<p id=\"message\">Questo pagamento è già stato effettuato.</p>"
        elif session["status"] == "complete":
            body = summary + "<p id=\"message\">Il pagamento non è andato a buon fine.</p>"
        else:
            shown_error = (f"<p id=\"error\" role=\"alert\">{html.escape(error)}</p>"
                           if error else "")
            body = summary + shown_error + (
                f"<form method=\"post\" action=\"/pay/{html.escape(session['id'])}\">"
                "<label for=\"card-number\">Numero della carta</label> "
                "<input id=\"card-number\" name=\"card_number\" inputmode=\"numeric\" "
                "autocomplete=\"cc-number\" value=\"4242 4242 4242 4242\"> "
                "<button id=\"pay\" type=\"submit\">Paga</button></form>"
                f"<p>{cancel}</p>")
        return page("Pagamento con carta — fornitore di prova", body)

    # --- Control endpoints -------------------------------------------------------------

    def handle_control(self, method: str, path: str, raw: bytes, query: str):
        """Returns (status, json body)."""
        try:
            data = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return 400, control_error("the body is not JSON")
        if not isinstance(data, dict):
            return 400, control_error("the body must be a JSON object")
        parts = [urllib.parse.unquote(p) for p in path.split("/") if p][1:]
        try:
            return self.control(method, parts, data, urllib.parse.parse_qs(query))
        except ControlError as error:
            return error.status, control_error(error.message)

    def control(self, method, parts, data, query):
        if parts == ["config"] and method in ("GET", "POST"):
            return 200, self.set_config(data if method == "POST" else {})
        if parts == ["reset"] and method == "POST":
            self.reset()
            return 200, self.set_config({})
        if method == "GET" and len(parts) == 1:
            with self.lock:
                if parts[0] == "sessions":
                    listed = []
                    for session_id in self.sessions:
                        shown = self.public_session(session_id)
                        shown["line_items"] = self.line_items_list(session_id)
                        listed.append(shown)
                    return 200, listed
                if parts[0] == "refunds":
                    return 200, copy.deepcopy(list(self.refunds.values()))
                if parts[0] == "events":
                    kinds = query.get("type")
                    return 200, [
                        {"event": copy.deepcopy(e["event"]), "body": e["body"].decode("utf-8"),
                         "deliveries": copy.deepcopy(e["deliveries"]), "dropped": e["dropped"]}
                        for e in self.events.values()
                        if not kinds or e["event"]["type"] in kinds]
                if parts[0] == "requests":
                    return 200, copy.deepcopy(self.requests)
        if method == "POST" and len(parts) == 3 and parts[0] == "sessions":
            return self.control_session(parts[1], parts[2], data)
        if method == "POST" and len(parts) == 3 and parts[0] == "refunds" and parts[2] == "settle":
            return self.settle_refund(parts[1], data)
        if method == "POST" and len(parts) == 3 and parts[0] == "events" and parts[2] == "deliver":
            return self.redeliver(parts[1], data)
        if method == "POST" and parts == ["send"]:
            return self.send_raw(data)
        raise ControlError(404, f"no control endpoint {method} /_control/{'/'.join(parts)}")

    def set_config(self, data: dict) -> dict:
        kinds = {"webhook_url": (str, type(None)), "drop_notifications": bool,
                 "refund_status": str, "fail_next": int, "secret": str}
        for key, value in data.items():
            if key not in kinds:
                raise ControlError(400, f"unknown config key {key!r}")
            if not isinstance(value, kinds[key]) or (kinds[key] is int and isinstance(value, bool)):
                raise ControlError(400, f"wrong type for {key!r}")
        if data.get("refund_status", "succeeded") not in ("succeeded", "pending"):
            raise ControlError(400, "refund_status is succeeded or pending")
        if data.get("fail_next", 0) < 0:
            raise ControlError(400, "fail_next cannot be negative")
        with self.lock:
            self.config.update(data)
            return dict(self.config)

    def control_session(self, session_id: str, action: str, data: dict):
        notify = flag(data, "notify", True)
        with self.lock:
            session = self.sessions.get(session_id)
            if session is None:
                raise ControlError(404, f"no session {session_id}")
            if action == "pay":
                if session["status"] != "open":
                    raise ControlError(400, f"session is {session['status']}, not open")
                amount = data.get("amount_total")
                if amount is not None and (not isinstance(amount, int) or isinstance(amount, bool)):
                    raise ControlError(400, "amount_total must be an integer")
                currency = data.get("currency")
                if currency is not None and not isinstance(currency, str):
                    raise ControlError(400, "currency must be a string")
                self.mark_paid(session, amount, currency.lower() if currency else None)
                kind = "checkout.session.completed"
            elif action == "expire":
                if session["status"] != "open":
                    raise ControlError(400, f"session is {session['status']}, not open")
                session["status"] = "expired"
                kind = "checkout.session.expired"
            elif action == "fail":
                if session["status"] == "expired" or session["payment_status"] == "paid":
                    raise ControlError(400, f"session is {session['status']}/"
                                       f"{session['payment_status']}")
                self.mark_failed(session)
                kind = "checkout.session.async_payment_failed"
            else:
                raise ControlError(404, f"no control action {action!r} for sessions")
            event_id = self.new_event(kind, self.public_session(session_id))
        deliveries = self.notify([event_id]) if notify else []
        with self.lock:
            return 200, {"session": self.public_session(session_id),
                         "event": copy.deepcopy(self.events[event_id]["event"]),
                         "deliveries": deliveries}

    def settle_refund(self, refund_id: str, data: dict):
        status = data.get("status")
        if status not in ("succeeded", "failed"):
            raise ControlError(400, "status is succeeded or failed")
        notify = flag(data, "notify", True)
        with self.lock:
            refund = self.refunds.get(refund_id)
            if refund is None:
                raise ControlError(404, f"no refund {refund_id}")
            refund["status"] = status
            if status == "failed":
                refund["failure_reason"] = data.get("failure_reason") or "unknown"
            kind = "refund.failed" if status == "failed" else "refund.updated"
            event_id = self.new_event(kind, refund)
        deliveries = self.notify([event_id]) if notify else []
        with self.lock:
            return 200, {"refund": copy.deepcopy(refund),
                         "event": copy.deepcopy(self.events[event_id]["event"]),
                         "deliveries": deliveries}

    def redeliver(self, event_id: str, data: dict):
        times = data.get("times", 1)
        if not isinstance(times, int) or isinstance(times, bool) or not 1 <= times <= 100:
            raise ControlError(400, "times is an integer from 1 to 100")
        concurrently = flag(data, "concurrently", True)
        with self.lock:
            if event_id not in self.events:
                raise ControlError(404, f"no event {event_id}")
            if not self.config["webhook_url"]:
                raise ControlError(400, "no webhook_url configured")
        statuses: list[int] = [0] * times
        if not concurrently:
            for i in range(times):
                statuses[i] = self.deliver(event_id) or 0
            return 200, {"statuses": statuses}
        # All the deliveries wait at the barrier and go out together, so they really do
        # reach the receiver at the same time.
        barrier = threading.Barrier(times)

        def one(i: int) -> None:
            try:
                barrier.wait(timeout=WEBHOOK_TIMEOUT_SECS)
            except threading.BrokenBarrierError:
                pass
            statuses[i] = self.deliver(event_id) or 0

        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(times)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return 200, {"statuses": statuses}

    def send_raw(self, data: dict):
        body = data.get("body")
        if not isinstance(body, str):
            raise ControlError(400, "body (a string) is required")
        with self.lock:
            url = self.config["webhook_url"]
            secret = data.get("secret") or self.config["secret"]
        if not url:
            raise ControlError(400, "no webhook_url configured")
        raw = body.encode("utf-8")
        if flag(data, "omit_signature", False):
            header = None
        elif data.get("signature") is not None:
            header = str(data["signature"])
        else:
            timestamp = data.get("timestamp")
            if timestamp is None:
                timestamp = now()
            if not isinstance(timestamp, int) or isinstance(timestamp, bool):
                raise ControlError(400, "timestamp must be an integer")
            header = signature_header(secret, timestamp, raw)
        status, text, error = post_webhook(url, raw, header)
        return 200, {"status": status, "body": text, "error": error, "signature": header}


class ControlError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def control_error(message: str) -> dict:
    return {"error": {"type": "control_error", "message": message}}


def flag(data: dict, name: str, default: bool) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise ControlError(400, f"{name} must be true or false")
    return value


class NoRedirect(urllib.request.HTTPRedirectHandler):
    # Stripe treats a redirect from the webhook endpoint as a failed delivery.
    def redirect_request(self, *args, **kwargs):
        return None


# No proxy from the environment: the receiver is always on this machine.
WEBHOOK_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())


def post_webhook(url: str, body: bytes, signature: str | None):
    """Returns (HTTP status or 0, response text, error or None)."""
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
    if signature is not None:
        request.add_header("Stripe-Signature", signature)
    try:
        with WEBHOOK_OPENER.open(request, timeout=WEBHOOK_TIMEOUT_SECS) as answer:
            return answer.status, answer.read(65536).decode("utf-8", "replace"), None
    except urllib.error.HTTPError as error:
        try:
            text = error.read(65536).decode("utf-8", "replace")
        except Exception:
            text = ""
        return error.code, text, None
    except Exception as error:  # refused, timed out, reset: no HTTP answer at all
        return 0, "", f"{type(error).__name__}: {error}"


def page(title: str, body: str) -> bytes:
    return (
        "<!doctype html><html lang=\"it\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}"
        "#error{color:#a00}input{font-size:1.1rem;width:100%;margin:.5rem 0}"
        "button{font-size:1.1rem;padding:.4rem 1.5rem}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    ).encode("utf-8")


# --- HTTP server -----------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    # Keep-alive, as the real API offers: every answer carries its Content-Length.
    protocol_version = "HTTP/1.1"
    server_version = "FakeCardProvider/1.0"

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def dispatch(self, method: str) -> None:
        provider: Provider = self.server.provider
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        try:
            raw = self.read_body()
            if path.startswith("/v1/"):
                status, body, headers = provider.handle_api(method, path, url.query,
                                                            self.headers, raw)
                self.answer(status, compact(body), "application/json", headers)
            elif path.startswith("/pay/") and method in ("GET", "POST"):
                session_id = urllib.parse.unquote(path[len("/pay/"):].strip("/"))
                status, headers, content = provider.handle_page(method, session_id, raw)
                self.answer(status, content, "text/html; charset=utf-8", headers)
            elif path.startswith("/_control/"):
                status, body = provider.handle_control(method, path, raw, url.query)
                self.answer(status, compact(body), "application/json")
            else:
                self.answer(404, compact(control_error(f"nothing at {path}")), "application/json")
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self.answer(500, compact({"error": {"type": "api_error",
                                                "message": "the fake provider failed"}}),
                        "application/json")

    def answer(self, status: int, content: bytes, content_type: str, headers=None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(content)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, provider: Provider, verbose: bool):
        super().__init__(("127.0.0.1", port), Handler)
        self.provider = provider
        self.verbose = verbose
        self.port = self.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        provider.base_url = self.base_url

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def make_server(port=0, secret=DEFAULT_SECRET, webhook_url=None, api_key=None,
                verbose=False) -> Server:
    return Server(port, Provider(secret, webhook_url, api_key), verbose)


def start(port=0, secret=DEFAULT_SECRET, webhook_url=None, api_key=None, verbose=False):
    """Serves from a daemon thread; returns (server, port). `server.stop()` ends it,
    `server.provider` is the state, `server.base_url` its address."""
    server = make_server(port, secret, webhook_url, api_key, verbose)
    thread = threading.Thread(target=server.serve_forever, name="fake-card-provider",
                              daemon=True)
    thread.start()
    return server, server.port


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--secret", required=True, help="webhook signing secret, whsec_...")
    parser.add_argument("--webhook-url", default=None)
    parser.add_argument("--api-key", default=None,
                        help="the only API key accepted (default: any sk_ key)")
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = parser.parse_args(argv)

    server = make_server(args.port, args.secret, args.webhook_url, args.api_key, args.verbose)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening on {server.port}", flush=True)
    try:
        server.serve_forever()
    except SystemExit:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
