"""The API contract test, run by tests/contract/run.sh.

Starts the real `rinnovo serve --demo` on a fresh data directory (or a fresh PostgreSQL
database when TEST_DATABASE_URL is set), gives it a little of everything (a customer with
a prepaid order and a transfer order paid by an imported postal statement, a payment
nobody expected, a registration officer, a back-office operator, the demo desktop agent
signed in with openssl and its issued renewal), then runs schemathesis once per role
against /api/openapi.json, with the identifiers of all that mixed into the path
parameters. Every role must end with no 5xx and no response outside the document; a
secured operation must refuse a request without credentials.

Nothing here is mocked: the users are made the way an operator makes them (sign-up API,
`rinnovo user add`), the agent signs its nonce with `openssl dgst`.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "support"))
import http_json  # noqa: E402  (tests/support: shared by the Python harnesses)

BINARY = REPO / "target" / "debug" / "rinnovo"
REPORTS = REPO / "target" / "contract"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
BRAND = "visura"
PASSWORD = "cavallo batteria graffetta 2026"
# What "every response conforms" means here; `negative_data_rejection` also holds the
# service to refusing what the document says is invalid.
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "ignored_auth",
        "missing_required_header",
        "unsupported_method",
        "allow_header_conformance",
    ]
)
# Cases per operation and phase; enough to walk every documented field and status, small
# enough that five roles stay within a few minutes on CI's two cores.
COUPON_CODE = re.compile(r"\b[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]\b")
MAX_EXAMPLES = os.environ.get("RINNOVO_CONTRACT_EXAMPLES", "40")
# Which of schemathesis' phases run. CI's second pass (PostgreSQL) drops the random
# fuzzing: the same seed already fuzzed the same document on SQLite, and what the backend
# changes (stored values, constraints, ordering) shows in the examples and boundary values.
PHASES = os.environ.get("RINNOVO_CONTRACT_PHASES", "examples,coverage,fuzzing")


# Valid billing data of a person: every order needs some.
BILLING = {"kind": "person", "nome": "Maria", "cognome": "Rossi",
           "codice_fiscale": "RSSMRA80A01H501U", "indirizzo": "Via Roma 1", "cap": "00184",
           "comune": "Roma", "provincia": "RM"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """One `rinnovo serve --demo` and the calls the setup makes to it."""

    def __init__(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="rinnovo-contract-"))
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "RINNOVO_DATA_DIR": str(self.data_dir),
            "RINNOVO_BIND": f"127.0.0.1:{port}",
            "RINNOVO_LOG": "warn",
            "RINNOVO_PUBLIC_URL": self.url,
            "RINNOVO_METRICS_TOKEN": secrets.token_urlsafe(24),
            # Every role's run looks holders up from this one address, more often than a
            # person would: lift the lookup limits so the lookup's answers are checked
            # rather than its 429 (documented too, so either conforms).
            "RINNOVO_LOOKUPS_CUSTOMER_PER_HOUR": "100000",
            "RINNOVO_LOOKUPS_CUSTOMER_PER_DAY": "100000",
            "RINNOVO_LOOKUPS_OFFICER_PER_HOUR": "100000",
            "RINNOVO_LOOKUPS_OFFICER_PER_DAY": "100000",
            "RINNOVO_LOOKUPS_ADDRESS_PER_HOUR": "100000",
            "RINNOVO_LOOKUPS_ADDRESS_PER_DAY": "100000",
        }
        self.env.pop("RINNOVO_SMTP_URL", None)  # emails become .eml files in the data dir
        self.env.pop("RINNOVO_DATABASE_URL", None)
        self.database: str | None = None
        test_url = os.environ.get("TEST_DATABASE_URL", "")
        if test_url.startswith(("postgres://", "postgresql://")):
            parts = urllib.parse.urlsplit(test_url)
            self.database = f"rinnovo_contract_{secrets.token_hex(6)}"
            self._maintenance = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
            self._psql(f'CREATE DATABASE "{self.database}"')
            self.env["RINNOVO_DATABASE_URL"] = urllib.parse.urlunsplit(
                parts._replace(path=f"/{self.database}")
            )
        self.log_path = self.data_dir / "server.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(BINARY), "serve", "--demo"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
        )
        self._wait_until_ready()

    def _psql(self, sql: str) -> None:
        subprocess.run(
            ["psql", self._maintenance, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], check=True
        )

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"rinnovo serve exited at start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/health/ready", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        raise SystemExit(f"rinnovo serve not ready after 60 s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        REPORTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.log_path, REPORTS / "server.log")
        if self.database is not None:
            self._psql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def cli(self, *args: str, stdin: str = "") -> str:
        done = subprocess.run(
            [str(BINARY), *args], input=stdin, env=self.env, capture_output=True, text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise SystemExit(f"rinnovo {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None,
            headers: dict[str, str] | None = None):
        """One JSON request of the setup; anything but a success stops the run."""
        answer = http_json.request(self.url + path, method, body, token=token, headers=headers)
        if answer.status >= 400:
            raise SystemExit(f"setup: {method} {path} answered {answer.status}: "
                             f"{answer.text()}\n{self.log_tail()}")
        return answer.body

    def upload(self, path: str, content: bytes, content_type: str, token: str) -> None:
        answer = http_json.request(self.url + path, "POST", raw=content,
                                   content_type=content_type, token=token)
        if answer.status >= 400:
            raise SystemExit(f"setup: POST {path} answered {answer.status}: {answer.text()}")

    def user(self, role: str) -> str:
        """A user of the role made as an operator would; its access token."""
        email = f"{role.replace('_', '-')}-{secrets.token_hex(4)}@example.it"
        if role == "customer":
            self.api("POST", "/api/v1/auth/signup",
                     {"brand": BRAND, "name": "Cliente Contratto", "email": email,
                      "password": PASSWORD})
        else:
            self.cli("user", "add", "--brand", BRAND, "--email", email, "--name",
                     "Operatore Contratto", "--role", role, stdin=PASSWORD + "\n")
        answer = self.api("POST", "/api/v1/auth/login",
                          {"brand": BRAND, "email": email, "password": PASSWORD})
        if role == "customer":
            # A customer buys only with a confirmed address: open the emailed link's token.
            self.api("POST", "/api/v1/auth/email/confirm",
                     {"token": confirmation_token(self.data_dir / "mail", email)},
                     token=answer["access_token"])
        if role in ("customer", "registration_officer"):
            # Every order is invoiced: a buyer gives billing data before the first one.
            self.api("PUT", "/api/v1/me/billing", BILLING, token=answer["access_token"])
        return answer["access_token"]

    def agent(self) -> str:
        """The demo device's agent, signed in with its authentication certificate via openssl."""
        device = self.data_dir / "demo-agent"
        nonce = self.api("POST", "/api/v1/agent/challenges")["nonce"]
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(device / "authentication.key.pem")],
            input=nonce.encode(), capture_output=True, check=True,
        ).stdout
        answer = self.api("POST", "/api/v1/agent/sessions", {
            "certificate": (device / "authentication.pem").read_text(),
            "nonce": nonce,
            "signature": base64.b64encode(signature).decode(),
        })
        return answer["token"]


def give_it_data(service: Service, tokens: dict[str, str | None]) -> dict[str, list[str]]:
    """Something in every list the roles read, and the identifiers of it: a prepaid order
    (coupons, invoice, emails), a transfer order and a postal statement that pays it plus
    a credit nobody expects (payments to match and refund), a renewal requested by the
    demo agent and issued. Returns the dictionaries schemathesis mixes into the path
    parameters, so fuzzing reaches real resources and not only 404s."""
    customer, office, agent = tokens["customer"], tokens["back_office"], tokens["agent"]
    me = service.api("GET", "/api/v1/me", token=customer)
    found = service.api(
        "GET", "/api/v1/backoffice/prepaid?" + urllib.parse.urlencode({"email": me["email"]}),
        token=office,
    )
    account = found["accounts"][0]["account_id"]
    service.api("POST", f"/api/v1/backoffice/prepaid/{urllib.parse.quote(account)}/adjustments",
                {"amount": "200.00", "reason": "contract test credit", "direction": "credit"},
                token=office)
    orders = {}
    for method in ("prepaid", "bank_transfer"):
        orders[method] = service.api(
            "POST", "/api/v1/orders",
            {"lines": [{"product": "RIN-FIRMA-CNS", "quantity": 2}], "payment_method": method},
            token=customer, headers={"Idempotency-Key": str(uuid.uuid4())},
        )
    transfer = service.api("GET", f"/api/v1/orders/{orders['bank_transfer']['id']}",
                           token=customer)["transfer"]
    statement = (
        "conto;data_contabile;data_valuta;importo;tipo;riferimento;causale;versante\n"
        f"000012345678;{time.strftime('%d/%m/%Y')};;{transfer['amount_due'].replace('.', ',')};"
        f"accredito;BP1;{transfer['reference_print']} rinnovo;STUDIO ROSSI\n"
        f"000012345678;{time.strftime('%d/%m/%Y')};;10,00;accredito;BP2;"
        "RF47 0000 0000 0000 0000 1 senza ordine;MARIO BIANCHI\n"
    )
    service.upload("/api/v1/backoffice/statements?file_name=contract.csv",
                   statement.encode(), "text/csv", token=office)
    payments = service.api("GET", "/api/v1/backoffice/payments", token=office)["payments"]

    codes = coupon_codes(service.data_dir / "mail")
    renewal = request_renewal(service, agent, codes[0])
    service.cli("issue-batch")

    products = service.api("GET", "/api/v1/products", token=customer)["products"]
    coupons = service.api("GET", "/api/v1/coupons", token=customer)["coupons"]
    demo = json.loads((REPO / "seeds" / "demo.json").read_text())
    ids = (
        [order["id"] for order in orders.values()]
        + [payment["id"] for payment in payments]
        + [product["id"] for product in products]
        + [coupon["id"] for coupon in coupons]
        + [renewal]
    )
    return {
        "ids": ids,
        "accounts": [account],
        "coupon_codes": codes,
        # The demo registry's holders, and Giulia Romano of the demo device.
        "codici_fiscali": sorted({h["codice_fiscale"] for h in demo["holders"]}
                                 | {"RMNGLI88C52H501Q"}),
        "cert_ids": [ari_cert_id(service.data_dir / "demo-agent" / name)
                     for name in ("signature.pem", "authentication.pem")],
    }


def confirmation_token(mail_dir: Path, address: str) -> str:
    """The token of the confirmation link the service emailed to `address` (without SMTP,
    an .eml file), waiting up to 60 s for the dispatcher to write it."""
    link = re.compile(r"conferma-email\?token=([0-9a-f]{64})")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for path in sorted(mail_dir.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if address.lower() not in str(message.get("To", "")).lower():
                continue
            for part in message.walk():
                if part.get_content_type() == "text/plain":
                    found = link.search(part.get_content())
                    if found:
                        return found.group(1)
        time.sleep(0.2)
    raise SystemExit(f"no confirmation email to {address} in {mail_dir} after 60 s")


def coupon_codes(mail_dir: Path) -> list[str]:
    """The coupon codes of the emails the service wrote (without SMTP, .eml files), once
    the outbox worker has sent them."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        codes: set[str] = set()
        for path in sorted(mail_dir.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for part in message.walk():
                if part.get_content_type() == "text/plain":
                    codes.update(COUPON_CODE.findall(part.get_content()))
        if codes:
            return sorted(codes)
        time.sleep(0.5)
    raise SystemExit(f"no coupon code in the emails of {mail_dir} after 60 s")


def request_renewal(service: Service, agent: str, code: str) -> str:
    """The demo agent asks to renew its signature certificate, as the README's story does."""
    device = service.data_dir / "demo-agent"
    certificates = service.api("GET", "/api/v1/agent/certificates", token=agent)
    signature = next(c for c in certificates["device"]["certificates"] if c["kind"] == "signature")
    key, csr = device / "contract.key.pem", device / "contract.csr"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", str(key)], check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-new", "-key", str(key), "-out", str(csr), "-subj",
                    "/C=IT/SN=ROMANO/GN=GIULIA/serialNumber=TINIT-RMNGLI88C52H501Q"
                    "/CN=ROMANO GIULIA"], check=True, capture_output=True)
    answer = service.api("POST", "/api/v1/agent/renewals", {"renewals": [
        {"certificate_id": signature["id"], "csr": csr.read_text(), "coupon_code": code}
    ]}, token=agent)
    return answer["renewals"][0]["id"]


def ari_cert_id(certificate: Path) -> str:
    """RFC 9773 CertID of a certificate: base64url(AKI) "." base64url(DER serial)."""
    text = subprocess.run(
        ["openssl", "x509", "-in", str(certificate), "-noout", "-serial", "-ext",
         "authorityKeyIdentifier"], check=True, capture_output=True, text=True,
    ).stdout
    serial = bytes.fromhex(re.search(r"serial=([0-9A-F]+)", text).group(1).rjust(2, "0"))
    if serial[0] & 0x80:
        serial = b"\x00" + serial  # DER INTEGER: positive
    key_id = re.search(r"(?:keyid:)?((?:[0-9A-F]{2}:)+[0-9A-F]{2})", text.split("\n", 1)[1])
    aki = bytes.fromhex(key_id.group(1).replace(":", ""))
    b64 = lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("=")  # noqa: E731
    return f"{b64(aki)}.{b64(serial)}"


def write_config(known: dict[str, list[str]]) -> Path:
    """schemathesis.toml: the dictionaries, each path parameter drawing from its own half
    of the time (the other half stays random, for the 404s and the refusals)."""
    bindings = {"id": "ids", "account": "accounts", "code": "coupon_codes",
                "codice_fiscale": "codici_fiscali", "cert_id": "cert_ids"}
    # Each role's credentials are the header it is given; schemathesis must not sign up
    # an account of its own (the anonymous role would then not be anonymous).
    lines = ["[auth]", "auto-signup = false"]
    for name, values in known.items():
        lines.append(f"[dictionaries.{name}]")
        lines.append("values = " + json.dumps(values))
    lines.append("[parameters]")
    for parameter, dictionary in bindings.items():
        lines.append(f'"path.{parameter}" = {{ dictionary = "{dictionary}", probability = 0.5 }}')
    REPORTS.mkdir(parents=True, exist_ok=True)
    path = REPORTS / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def schemathesis(service: Service, config: Path, role: str, token: str | None,
                 extra: list[str]) -> bool:
    command = [
        str(SCHEMATHESIS), "--config-file", str(config), "run",
        f"{service.url}/api/openapi.json",
        "--checks", CHECKS,
        "--max-examples", MAX_EXAMPLES,
        "--phases", PHASES,
        # One worker: with two, hypothesis parses lambda sources (ast.parse) in two threads
        # at once, which CPython 3.11 sometimes fails with "AST constructor recursion depth
        # mismatch" (a schemathesis "Runtime Error", not a finding): seen once in CI.
        "--workers", "1",
        "--seed", os.environ.get("RINNOVO_CONTRACT_SEED", "20261126"),
        "--suppress-health-check", "all",
        "--request-timeout", "30",
        "--report", "junit",
        "--report-junit-path", str(REPORTS / f"{role}.xml"),
        "--no-color",
        # Signing out everywhere would end the role's token for the rest of its run; the
        # integration tests (tests/api/auth.rs) cover it.
        "--exclude-operation-id", "me_sessions_revoke",
    ]
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    print(f"\n==> schemathesis as {role}", flush=True)
    started = time.monotonic()
    # Run from target/contract: schemathesis keeps a cache directory where it runs.
    code = subprocess.run(command + extra, env={**os.environ, "NO_COLOR": "1"},
                          cwd=REPORTS).returncode
    print(f"<== {role}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
    return code == 0


def main() -> int:
    if not BINARY.exists():
        raise SystemExit(f"{BINARY} is missing: run tests/contract/run.sh (it builds it)")
    service = Service()
    try:
        # Every token first: the fuzzing of sign-in soon trips the throttle of this
        # client address, and every token lives 15 minutes, longer than the run.
        tokens = {"anonymous": None}
        for role in ("customer", "registration_officer", "back_office"):
            tokens[role] = service.user(role)
        tokens["agent"] = service.agent()
        config = write_config(give_it_data(service, tokens))
        failed = [role for role, token in tokens.items()
                  if not schemathesis(service, config, role, token, sys.argv[1:])]
    finally:
        service.stop()
    # The service's own errors; actix-http also logs a client's unparsable request at
    # ERROR level, which is the client's fault and answered 400.
    errors = [line for line in (REPORTS / "server.log").read_text(errors="replace").splitlines()
              if "ERROR" in line and "rinnovo" in line]
    if errors:
        print("\nthe server logged errors:\n" + "\n".join(errors[-20:]))
    if failed:
        print(f"\ncontract broken for: {', '.join(failed)} (reports in {REPORTS})")
        return 1
    print("\ncontract held for every role")
    return 0


if __name__ == "__main__":
    sys.exit(main())
