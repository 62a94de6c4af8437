"""Scale-out test: three `rinnovo serve` processes and two `rinnovo worker` processes on
one PostgreSQL database, driven through all of them at once; then every invariant of
DESIGN.md is checked in the database, every email must have reached the SMTP sink once,
every renewal must have been issued once, every fulfilled order must have exactly one
invoice, and each invoice's file must have reached the SdI (a second SMTP sink plays the
PEC provider) exactly once.

Run by tests/scaleout/run.sh (which builds the binary and provides aiosmtpd).
"""

from __future__ import annotations

import argparse
import base64
import collections
import concurrent.futures
import datetime
import email
import email.policy
import hashlib
import hmac
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import http_json  # noqa: E402  (tests/support: shared by the Python harnesses)
import fake_card_provider  # noqa: E402  (the card provider's stand-in, Stripe's API)

BRAND = "visura"
IBAN = "IT60X0542811101000000123456"
PASSWORD = "cavallo batteria graffetta 2026"
HOLDER = "BNCLRA85T52F205E"
SUBJECT = "/C=IT/SN=BIANCHI/GN=LAURA/serialNumber=TINIT-BNCLRA85T52F205E/CN=BIANCHI LAURA"
CUSTOMERS = 12
PREPAID_ORDERS_EACH = 3
TRANSFER_ORDERS = 10
DEVICES = 6
CARD_ORDERS = 12
CARD_SECRET = "whsec_scaleout_" + secrets.token_hex(8)


# Valid billing data of a person: every order needs some.
BILLING = {"kind": "person", "nome": "Maria", "cognome": "Rossi",
           "codice_fiscale": "RSSMRA80A01H501U", "indirizzo": "Via Roma 1", "cap": "00184",
           "comune": "Roma", "provincia": "RM"}


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """Every message the service sends, parsed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def attachments(self) -> collections.Counter:
        """How many messages carried each attachment, by (file name, MD5 of the content)."""
        with self.lock:
            return collections.Counter(
                (part.get_filename(), hashlib.md5(part.get_content()).hexdigest())
                for _, m in self.messages for part in m.iter_attachments())

    def text_to(self, address: str, subject_part: str) -> list[str]:
        with self.lock:
            found = [m for to, m in self.messages if address in to and subject_part in m["Subject"]]
        return [m.get_body(("plain",)).get_content() for m in found]


class Api:
    """JSON over urllib against one of the servers."""

    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method, path, body=None, token=None, headers=None, raw=None, expect=(200, 201)):
        answer = http_json.request(self.base + path, method, body, raw=raw, token=token,
                                   headers=headers, timeout=60)
        if expect and answer.status not in expect:
            raise AssertionError(f"{method} {self.base}{path}: {answer.status} {answer.text()[:500]}")
        return answer.status, answer.body


class Cluster:
    def __init__(self, binary: Path, pg_server: str) -> None:
        self.binary = binary
        self.db = f"rinnovo_scaleout_{secrets.token_hex(4)}"
        self.pg_server = pg_server
        self.url = f"{pg_server}/{self.db}"
        self.dir = Path(tempfile.mkdtemp(prefix="rinnovo-scaleout-"))
        self.sink = Sink()
        self.smtp = Controller(self.sink, hostname="127.0.0.1", port=free_port())
        # The PEC provider the SdI files go through, shared by every process.
        self.pec_sink = Sink()
        self.pec = Controller(self.pec_sink, hostname="127.0.0.1", port=free_port())
        self.processes: list[subprocess.Popen] = []
        # The card provider: its notifications are posted to every server by the test;
        # its own deliveries are dropped, so the workers must ask it about the rest.
        self.card_provider, card_port = fake_card_provider.start(secret=CARD_SECRET)
        self.card_base = f"http://127.0.0.1:{card_port}"
        self.env = {
            "PATH": os.environ["PATH"],
            "RINNOVO_DATABASE_URL": self.url,
            "RINNOVO_DATA_DIR": str(self.dir / "data"),
            # Shared by every process, as the README tells operators to do.
            "RINNOVO_JWT_SECRET": secrets.token_hex(32),
            "RINNOVO_COUPON_KEY": secrets.token_hex(32),
            "RINNOVO_LOG": "warn",
            "RINNOVO_MAIL_RETRY_BASE_SECS": "1",
            # The workers poll five minutes apart: the emails the servers queue reach
            # the sink in time only because the servers announce them (NOTIFY) and the
            # workers listen.
            "RINNOVO_MAIL_POLL_MS": "300000",
            "RINNOVO_ISSUANCE_INTERVAL_SECS": "1",
            "RINNOVO_ISSUANCE_BATCH_SIZE": "3",
            "RINNOVO_STRIPE_SECRET_KEY": "sk_test_scaleout",
            "RINNOVO_STRIPE_WEBHOOK_SECRETS": CARD_SECRET,
            "RINNOVO_STRIPE_API_BASE": self.card_base,
            "RINNOVO_CARD_CHECK_AFTER_SECS": "2",
            "RINNOVO_CARD_WORKER_INTERVAL_SECS": "1",
        }
        self.servers: list[Api] = []

    def psql(self, sql: str) -> list[list[str]]:
        out = subprocess.run(
            ["psql", "-Atq", "-F", "\t", self.url, "-c", sql],
            check=True, capture_output=True, text=True,
        ).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def cli(self, *args: str, stdin: str = "") -> str:
        done = subprocess.run(
            [str(self.binary), *args], input=stdin, env=self.env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise AssertionError(f"rinnovo {args}: exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}")
        return done.stdout

    def start(self) -> None:
        subprocess.run(
            ["psql", "-q", f"{self.pg_server}/postgres", "-c", f"CREATE DATABASE {self.db}"],
            check=True,
        )
        self.smtp.start()
        self.pec.start()
        self.env["RINNOVO_SMTP_URL"] = f"smtp://127.0.0.1:{self.smtp.port}?tls=none"
        self.env["RINNOVO_SDI_CHANNEL"] = "pec"
        self.env["RINNOVO_SDI_SMTP_URL"] = f"smtp://127.0.0.1:{self.pec.port}?tls=none"
        self.cli("migrate")
        self.cli("seed", "--demo")
        for n in range(3):
            port = free_port()
            env = dict(self.env, RINNOVO_BIND=f"127.0.0.1:{port}", RINNOVO_RUN_WORKERS="false",
                       RINNOVO_PUBLIC_URL=f"http://127.0.0.1:{port}")
            log = open(self.dir / f"serve-{n}.log", "w")
            self.processes.append(
                subprocess.Popen([str(self.binary), "serve"], env=env, stdout=log, stderr=log))
            self.servers.append(Api(f"http://127.0.0.1:{port}"))
        for n in range(2):
            log = open(self.dir / f"worker-{n}.log", "w")
            self.processes.append(
                subprocess.Popen([str(self.binary), "worker"], env=self.env, stdout=log, stderr=log))
        for api in self.servers:
            deadline = time.time() + 60
            while True:
                try:
                    if api.call("GET", "/health/ready", expect=None)[0] == 200:
                        break
                except OSError:
                    pass
                assert time.time() < deadline, f"{api.base} never got ready"
                time.sleep(0.2)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.smtp.stop()
        self.pec.stop()
        self.card_provider.stop()
        subprocess.run(
            ["psql", "-q", f"{self.pg_server}/postgres", "-c",
             f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)"],
            check=False,
        )

    def api(self, n: int) -> Api:
        return self.servers[n % len(self.servers)]


def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(["openssl", *args], input=stdin, check=True, capture_output=True).stdout


def camt053(credits: list[tuple[str, str]]) -> bytes:
    """One booked SEPA credit per (RF code, amount), to the brand's IBAN."""
    day = datetime.date.today().isoformat()
    entries = "".join(
        f"""<Ntry><NtryRef>{n}</NtryRef><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd>
<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{day}</Dt></BookgDt><ValDt><Dt>{day}</Dt></ValDt>
<NtryDtls><TxDtls><Refs><AcctSvcrRef>SCALE-{n}-{reference}</AcctSvcrRef></Refs>
<Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd>
<RmtInf><Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp><Ref>{reference}</Ref></CdtrRefInf></Strd></RmtInf>
</TxDtls></NtryDtls></Ntry>"""
        for n, (reference, amount) in enumerate(credits, 1)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>
<GrpHdr><MsgId>SCALEOUT</MsgId><CreDtTm>{day}T22:00:00+01:00</CreDtTm></GrpHdr>
<Stmt><Id>SCALEOUT-{day}</Id><CreDtTm>{day}T22:00:00+01:00</CreDtTm>
<Acct><Id><IBAN>{IBAN}</IBAN></Id><Ccy>EUR</Ccy></Acct>{entries}</Stmt>
</BkToCstmrStmt></Document>""".encode()


def confirmation_token(sink: Sink, address: str) -> str:
    """The token of the confirmation link emailed to `address`, waiting up to 60 s."""
    import re
    deadline = time.time() + 60
    while time.time() < deadline:
        for text in sink.text_to(address, "conferma il tuo indirizzo email"):
            found = re.search(r"conferma-email\?token=([0-9a-f]{64})", text)
            if found:
                return found.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no confirmation email to {address}")


def coupon_codes(text: str) -> list[str]:
    import re
    return re.findall(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]\b", text)


def run(cluster: Cluster) -> None:
    office = "office@scaleout.example"
    cluster.cli("user", "add", "--brand", BRAND, "--email", office, "--name", "Office",
                "--role", "back_office", stdin=PASSWORD + "\n")
    office_token = cluster.api(0).call("POST", "/api/v1/auth/login",
                                       {"brand": BRAND, "email": office, "password": PASSWORD})[1]["access_token"]

    say(f"{CUSTOMERS} customers sign up and sign in, through all three servers")
    customers = []
    for n in range(CUSTOMERS):
        address = f"studio{n}-{secrets.token_hex(3)}@scaleout.example"
        api = cluster.api(n)
        api.call("POST", "/api/v1/auth/signup",
                 {"brand": BRAND, "name": f"Studio {n}", "email": address, "password": PASSWORD})
        token = cluster.api(n + 1).call("POST", "/api/v1/auth/login",
                                         {"brand": BRAND, "email": address, "password": PASSWORD})[1]["access_token"]
        # Only a confirmed address buys: the token of the emailed link, sent to another server.
        cluster.api(n + 2).call("POST", "/api/v1/auth/email/confirm",
                                {"token": confirmation_token(cluster.sink, address)}, token=token)
        # Every order is invoiced: the buyer's billing data first.
        cluster.api(n).call("PUT", "/api/v1/me/billing", BILLING, token=token)
        accounts = cluster.api(n + 2).call(
            "GET", "/api/v1/backoffice/prepaid?" + urllib.parse.urlencode({"email": address}),
            token=office_token)[1]["accounts"]
        cluster.api(n).call("POST", f"/api/v1/backoffice/prepaid/{accounts[0]['account_id']}/adjustments",
                            {"amount": "200.00", "reason": "scale-out credit", "direction": "credit"},
                            token=office_token)
        customers.append((address, token))

    say("prepaid checkouts at once on all servers, each retried with its key on another")
    def checkout(job):
        n, (address, token) = job
        key = secrets.token_hex(16)
        body = {"lines": [{"product": "RIN-FIRMA-CNS", "quantity": 1}], "payment_method": "prepaid"}
        first = cluster.api(n).call("POST", "/api/v1/orders", body, token=token,
                                    headers={"Idempotency-Key": key})[1]
        again = cluster.api(n + 1).call("POST", "/api/v1/orders", body, token=token,
                                        headers={"Idempotency-Key": key})[1]
        assert first["id"] == again["id"], "a retry on another process is the same order"
        return first
    jobs = [(n, customers[n % CUSTOMERS]) for n in range(CUSTOMERS * PREPAID_ORDERS_EACH)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        prepaid_orders = list(pool.map(checkout, jobs))
    assert all(o["status"] == "fulfilled" for o in prepaid_orders)

    say(f"{TRANSFER_ORDERS} transfer orders, then the statement imported twice on two servers")
    transfers = []
    for n in range(TRANSFER_ORDERS):
        address, token = customers[n]
        order = cluster.api(n).call(
            "POST", "/api/v1/orders",
            {"lines": [{"product": "RIN-FIRMA", "quantity": 1}], "payment_method": "bank_transfer"},
            token=token, headers={"Idempotency-Key": secrets.token_hex(16)})[1]
        transfers.append((order["transfer"]["reference"], order["gross_total"]))
    statement = camt053(transfers)
    headers = {"Content-Type": "application/xml"}
    first = cluster.api(0).call("POST", "/api/v1/backoffice/statements?file_name=scaleout.xml",
                                token=office_token, raw=statement, headers=headers)[1]
    assert first["new_entries"] == TRANSFER_ORDERS, first
    again = cluster.api(1).call("POST", "/api/v1/backoffice/statements?file_name=scaleout.xml",
                                token=office_token, raw=statement, headers=headers, expect=(200, 201))[1]
    assert again["new_entries"] == 0, again

    say(f"{CARD_ORDERS} orders paid by card: notifications to every server at once, or lost")
    card = http_json.request(f"{cluster.card_base}/_control/config", "POST",
                             {"drop_notifications": True})
    assert card.status == 200, card.text()
    card_orders = []
    for n in range(CARD_ORDERS):
        address, token = customers[n % CUSTOMERS]
        order = cluster.api(n).call(
            "POST", "/api/v1/orders",
            {"lines": [{"product": "RIN-CNS", "quantity": 2}], "payment_method": "card"},
            token=token, headers={"Idempotency-Key": secrets.token_hex(16)})[1]
        assert order["status"] == "awaiting_payment" and order["card"]["status"] == "open", order
        card_orders.append(order)

    def pay_by_card(job):
        n, order = job
        session = order["card"]["checkout_url"].rsplit("/", 1)[1]
        paid = http_json.request(f"{cluster.card_base}/_control/sessions/{session}/pay", "POST",
                                 {"notify": False})
        assert paid.status == 200, paid.text()
        if n % 2:
            return  # notification lost: the workers must find it
        body = json.dumps(paid.body["event"], separators=(",", ":")).encode()
        def deliver(server: int) -> int:
            stamp = int(time.time())
            signature = hmac.new(CARD_SECRET.encode(), f"{stamp}.".encode() + body,
                                 hashlib.sha256).hexdigest()
            return http_json.request(
                f"{cluster.api(server).base}/api/v1/card/notifications", "POST", raw=body,
                content_type="application/json",
                headers={"Stripe-Signature": f"t={stamp},v1={signature}"}).status
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as each:
            statuses = list(each.map(deliver, range(3)))
        assert statuses == [200, 200, 200], statuses
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(pay_by_card, enumerate(card_orders)))
    deadline = time.time() + 90
    while True:
        waiting = int(cluster.psql(
            "SELECT count(*) FROM orders WHERE payment_method = 'card' AND status <> 'fulfilled'")[0][0])
        if waiting == 0:
            break
        assert time.time() < deadline, f"{waiting} card orders not fulfilled"
        time.sleep(0.5)

    say(f"{DEVICES} devices renewed through the agent API, across servers and workers")
    # Codes of the prepaid RIN-FIRMA-CNS coupons, from their delivery emails (the subject
    # names the order's invoice number).
    deadline = time.time() + 60
    codes: list[str] = []
    while time.time() < deadline:
        # Each code once, in the emails' order (the email names a code again in its
        # check link).
        codes = list(dict.fromkeys(
            c for order in prepaid_orders
            for text in cluster.sink.text_to(order["email"], f"(ordine {order['invoice_number']})")
            for c in coupon_codes(text)))
        if len(codes) >= len(prepaid_orders):
            break
        time.sleep(0.5)
    assert len(set(codes)) == len(prepaid_orders), f"{len(codes)} codes by email"
    devices = []
    for n in range(DEVICES):
        out = cluster.dir / f"device-{n}"
        cluster.cli("device", "enroll", "--codice-fiscale", HOLDER, "--out", str(out), "--expires-in", "40")
        devices.append(out)

    def renew(job):
        n, device = job
        api = lambda k: cluster.api(n + k)  # noqa: E731 - each step on another server
        nonce = api(0).call("POST", "/api/v1/agent/challenges", {})[1]["nonce"]
        signature = openssl("dgst", "-sha256", "-sign", str(device / "authentication.key.pem"), stdin=nonce.encode())
        session = api(1).call("POST", "/api/v1/agent/sessions", {
            "certificate": (device / "authentication.pem").read_text(), "nonce": nonce,
            "signature": base64.b64encode(signature).decode()})[1]
        token = session["token"]
        seen = api(2).call("GET", "/api/v1/agent/certificates", token=token)[1]
        items = []
        for certificate in seen["device"]["certificates"]:
            key = device / f"new-{certificate['kind']}.key.pem"
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
            csr = openssl("req", "-new", "-key", str(key), "-subj", SUBJECT).decode()
            items.append({"certificate_id": certificate["id"], "csr": csr, "coupon_code": codes[n]})
        queued = api(0).call("POST", "/api/v1/agent/renewals", {"renewals": items}, token=token)[1]
        ids = [r["id"] for r in queued["renewals"]]
        for renewal in ids:
            deadline = time.time() + 90
            while True:
                status, body = api(1).call("GET", f"/api/v1/agent/renewals/{renewal}", token=token)
                if body["status"] == "issued":
                    break
                assert body["status"] in ("queued", "issuing"), body
                assert time.time() < deadline, f"renewal {renewal} not issued: {body['status']}"
                time.sleep(0.3)
            api(2).call("POST", f"/api/v1/agent/renewals/{renewal}/installed", {}, token=token)
            api(0).call("POST", f"/api/v1/agent/renewals/{renewal}/installed", {}, token=token)
        return ids
    with concurrent.futures.ThreadPoolExecutor(max_workers=DEVICES) as pool:
        renewal_ids = [i for ids in pool.map(renew, enumerate(devices)) for i in ids]
    # One more device tries a coupon already used: refused, whichever server.
    assert len(renewal_ids) == 2 * DEVICES

    say("waiting for the outbox to drain")
    deadline = time.time() + 90
    while True:
        pending = int(cluster.psql("SELECT count(*) FROM emails WHERE status <> 'sent'")[0][0])
        if pending == 0:
            break
        assert time.time() < deadline, f"{pending} emails still not sent"
        time.sleep(0.5)
    say("waiting for the SdI transmissions")
    deadline = time.time() + 90
    while True:
        waiting = int(cluster.psql("SELECT count(*) FROM sdi_transmissions WHERE status <> 'sent'")[0][0])
        if waiting == 0:
            break
        assert time.time() < deadline, f"{waiting} files still not sent to the SdI"
        time.sleep(0.5)
    time.sleep(1)

    say("invariants")
    problems = []
    def check(name: str, rows: list[list[str]]) -> None:
        if rows:
            problems.append(f"{name}: {rows[:5]}")
    check("balance below zero or not the ledger sum", cluster.psql(
        "SELECT a.id, a.balance_cents, coalesce(sum(e.amount_cents), 0) FROM prepaid_accounts a "
        "LEFT JOIN prepaid_entries e ON e.account_id = a.id GROUP BY a.id, a.balance_cents "
        "HAVING a.balance_cents < 0 OR a.balance_cents <> coalesce(sum(e.amount_cents), 0)"))
    check("invoice numbers with gaps or repeats", cluster.psql(
        "SELECT brand_id, invoice_year, count(*), count(DISTINCT invoice_seq), max(invoice_seq) "
        "FROM orders WHERE invoice_seq IS NOT NULL GROUP BY brand_id, invoice_year "
        "HAVING count(*) <> max(invoice_seq) OR count(DISTINCT invoice_seq) <> count(*)"))
    check("fulfilled orders without exactly their coupons", cluster.psql(
        "SELECT o.id FROM orders o WHERE o.status = 'fulfilled' AND "
        "(SELECT count(*) FROM coupons c WHERE c.order_id = o.id) <> "
        "(SELECT sum(quantity) FROM order_lines l WHERE l.order_id = o.id)"))
    check("card orders not fulfilled, or card payments not paid", cluster.psql(
        "SELECT o.id, o.status, c.status FROM orders o JOIN card_payments c ON c.order_id = o.id "
        "WHERE o.status <> 'fulfilled' OR c.status <> 'paid'"))
    check("card orders paid by the provider but not here", cluster.psql(
        f"SELECT count(*) FROM card_payments WHERE status = 'paid' HAVING count(*) <> {CARD_ORDERS}"))
    check("transfer orders not fulfilled", cluster.psql(
        "SELECT id, status FROM orders WHERE payment_method = 'bank_transfer' AND status <> 'fulfilled'"))
    check("payments stored more than once", cluster.psql(
        "SELECT dedup_key, count(*) FROM payments GROUP BY dedup_key HAVING count(*) > 1"))
    check("a coupon held by renewals of more than one request", cluster.psql(
        "SELECT coupon_id, count(DISTINCT device_id) FROM renewals "
        "WHERE status IN ('queued','issuing','issued','installed') GROUP BY coupon_id HAVING count(DISTINCT device_id) > 1"))
    check("renewals not installed", cluster.psql(
        "SELECT id, status FROM renewals WHERE status <> 'installed'"))
    check("renewals issued more than once (serial reused)", cluster.psql(
        "SELECT issued_serial_number, count(*) FROM renewals GROUP BY issued_serial_number HAVING count(*) > 1"))
    check("redeemed coupons not matching installed renewals", cluster.psql(
        "SELECT c.id FROM coupons c WHERE c.status = 'redeemed' AND NOT EXISTS "
        "(SELECT 1 FROM renewals r WHERE r.coupon_id = c.id AND r.status = 'installed')"))
    check("devices with two active certificates of a kind", cluster.psql(
        "SELECT device_id, kind, count(*) FROM certificates WHERE status = 'active' "
        "GROUP BY device_id, kind HAVING count(*) > 1"))
    sent = int(cluster.psql("SELECT count(*) FROM emails WHERE status = 'sent'")[0][0])
    with cluster.sink.lock:
        received = len(cluster.sink.messages)
        ids = collections.Counter(m["Message-ID"] for _, m in cluster.sink.messages)
    if received != sent:
        problems.append(f"{sent} emails sent per the outbox, {received} received by the sink")
    duplicates = [i for i, count in ids.items() if count > 1]
    if duplicates:
        problems.append(f"emails delivered twice: {duplicates[:5]}")
    check("fulfilled orders without exactly one invoice", cluster.psql(
        "SELECT o.id, count(i.id) FROM orders o LEFT JOIN invoices i "
        "ON i.order_id = o.id AND i.kind = 'TD01' WHERE o.status = 'fulfilled' "
        "GROUP BY o.id HAVING count(i.id) <> 1"))
    check("invoices of orders not fulfilled", cluster.psql(
        "SELECT i.id, o.status FROM invoices i JOIN orders o ON o.id = i.order_id "
        "WHERE i.kind = 'TD01' AND o.status <> 'fulfilled'"))
    check("invoices sent but not transmitted", cluster.psql(
        "SELECT i.number, i.status FROM invoices i JOIN sdi_transmissions t ON t.invoice_id = i.id "
        "WHERE t.status = 'sent' AND i.status <> 'transmitted'"))
    files = {(name, digest) for name, digest in cluster.psql(
        "SELECT file_name, md5(xml) FROM sdi_transmissions WHERE status = 'sent' AND channel = 'pec'")}
    invoiced = int(cluster.psql("SELECT count(*) FROM invoices")[0][0])
    delivered = cluster.pec_sink.attachments()
    if len(files) != invoiced:
        problems.append(f"{invoiced} invoices, {len(files)} files sent by PEC")
    if set(delivered) != files:
        problems.append(f"files sent per the outbox and received by the PEC sink differ: "
                        f"{sorted(files ^ set(delivered))[:5]}")
    twice = [name for (name, _), count in delivered.items() if count > 1]
    if twice:
        problems.append(f"files delivered to the SdI more than once: {twice[:5]}")
    renewals = int(cluster.psql("SELECT count(*) FROM renewals")[0][0])
    print(json.dumps({
        "servers": 3, "workers": 2, "customers": CUSTOMERS,
        "prepaid_orders": len(prepaid_orders), "transfer_orders": TRANSFER_ORDERS,
        "card_orders": CARD_ORDERS,
        "renewals": renewals, "emails_sent": sent, "emails_received": received,
        "invoices": invoiced, "sdi_files_received": sum(delivered.values()),
    }))
    if problems:
        for problem in problems:
            print(f"INVARIANT BROKEN: {problem}", file=sys.stderr)
        raise SystemExit(1)
    say("every invariant holds")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True, type=Path)
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    cluster = Cluster(args.binary.resolve(), args.pg)
    started = time.time()
    try:
        cluster.start()
        run(cluster)
    except BaseException:
        for log in sorted(cluster.dir.glob("*.log")):
            tail = log.read_text()[-3000:]
            if tail.strip():
                print(f"--- {log.name}\n{tail}", file=sys.stderr)
        raise
    finally:
        cluster.stop()
    say(f"scale-out test passed in {time.time() - started:.1f} s")


if __name__ == "__main__":
    main()
