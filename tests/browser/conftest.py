"""Fixtures of the browser end-to-end tests.

The tests drive the real binary (`target/debug/rinnovo serve --demo`, built by run.sh)
through Debian's Chromium, so they see what a customer sees: server-rendered pages,
redirects, cookies, and the emails that reach an SMTP server. Nothing is mocked:

* `smtp_sink`: an aiosmtpd server on 127.0.0.1 that keeps every message it receives;
* `server`: one `rinnovo serve --demo` per test module, on a fresh data dir (SQLite) or,
  with TEST_DATABASE_URL=postgres://..., on a fresh database of that PostgreSQL server;
* `browser` / `page`: Playwright (sync API) on /usr/bin/chromium, one context per test;
* `shot`: full-page screenshots into target/browser-screenshots/ (kept by CI).

Run them with `bash tests/browser/run.sh`, which installs all of this first.
"""

from __future__ import annotations

import email
import email.policy
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
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, Page, sync_playwright

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "support"))
import http_json  # noqa: E402  (tests/support: shared by the Python harnesses)

BINARY = REPO / "target" / "debug" / "rinnovo"
SCREENSHOTS = REPO / "target" / "browser-screenshots"
CHROMIUM = os.environ.get("RINNOVO_BROWSER_CHROMIUM", "/usr/bin/chromium")

BRAND = "visura"
# Long enough (auth::password::MIN_LENGTH) and free of any email address, as NewPassword requires.
PASSWORD = "cavallo batteria graffetta 2026"

VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "is_mobile": True,
        "has_touch": True,
    },
}

READY_TIMEOUT_S = 60
MAIL_TIMEOUT_S = 30


# Valid billing data of a person: every order needs some.
BILLING_PERSON = {
    "kind": "person",
    "nome": "Maria",
    "cognome": "Rossi",
    "codice_fiscale": "RSSMRA80A01H501U",
    "indirizzo": "Via Roma 1",
    "cap": "00184",
    "comune": "Roma",
    "provincia": "RM",
}


def free_port() -> int:
    """A port nobody listens on now (the OS picks it), for the server and the sink."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique_email(prefix: str) -> str:
    """Every test signs up its own users: servers are shared within a module."""
    return f"{prefix}-{secrets.token_hex(5)}@example.it"


# --------------------------------------------------------------------------------------
# SMTP sink
# --------------------------------------------------------------------------------------


@dataclass
class Mail:
    """One message as the sink received it."""

    mail_from: str
    rcpt_tos: list[str]
    subject: str
    # Every text/* part, decoded (quoted-printable, base64, charsets): what to search.
    text: str
    # The message as it came over the wire.
    raw: str


class MailSink:
    """Keeps the messages aiosmtpd hands over and lets tests wait for one.

    aiosmtpd runs its own event loop in a thread, so the list is guarded by a condition
    that also wakes the waiters: no polling, no sleeps.
    """

    def __init__(self) -> None:
        self._messages: list[Mail] = []
        self._changed = threading.Condition()
        self.host = "127.0.0.1"
        self.port = 0

    # aiosmtpd handler hook.
    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        parts = []
        for part in parsed.walk():
            if part.get_content_maintype() == "text" and not part.is_multipart():
                try:
                    parts.append(part.get_content())
                except (LookupError, ValueError):
                    parts.append(part.get_payload(decode=True).decode("utf-8", "replace"))
        mail = Mail(
            mail_from=envelope.mail_from,
            rcpt_tos=[r.lower() for r in envelope.rcpt_tos],
            subject=str(parsed.get("Subject", "")),
            text="\n".join(parts),
            raw=raw.decode("utf-8", "replace"),
        )
        with self._changed:
            self._messages.append(mail)
            self._changed.notify_all()
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[Mail]:
        with self._changed:
            return list(self._messages)

    def wait_for(
        self, predicate: Callable[[Mail], bool], timeout: float = MAIL_TIMEOUT_S
    ) -> Mail:
        """The first message (already received or arriving within `timeout`) that matches."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for mail in self._messages:
                    if predicate(mail):
                        return mail
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(m.rcpt_tos, m.subject) for m in self._messages]
                    raise AssertionError(
                        f"no matching email within {timeout:.0f} s; received: {seen}"
                    )
                self._changed.wait(remaining)

    def wait_for_mail_to(
        self, address: str, subject_contains: str, timeout: float = MAIL_TIMEOUT_S
    ) -> Mail:
        """The usual question: did `address` get the email whose subject has this text?"""
        address = address.lower()
        return self.wait_for(
            lambda m: address in m.rcpt_tos and subject_contains in m.subject, timeout
        )


CONFIRMATION_LINK = re.compile(r"https?://\S+/negozio/conferma-email\?token=[0-9a-f]{64}")


def confirmation_link(sink: MailSink, address: str) -> str:
    """The link of the newest confirmation email to `address` (sign-up or new address)."""
    sink.wait_for_mail_to(address, "conferma il tuo indirizzo email")
    mails = [
        m for m in sink.messages
        if address.lower() in m.rcpt_tos and "conferma il tuo indirizzo email" in m.subject
    ]
    found = CONFIRMATION_LINK.search(mails[-1].text)
    assert found, f"no confirmation link in:\n{mails[-1].text}"
    return found.group(0)


def confirm_email_in_browser(page: Page, sink: MailSink, address: str) -> None:
    """Opens the emailed link in the page and presses its button, as the customer does."""
    page.goto(confirmation_link(sink, address))
    page.get_by_role("button", name="Conferma l'indirizzo").click()
    page.get_by_text("è confermato").wait_for()


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[MailSink]:
    """One sink for the whole run; tests tell their mail apart by recipient."""
    sink = MailSink()
    sink.port = free_port()
    controller = Controller(
        sink, hostname=sink.host, port=sink.port, enable_SMTPUTF8=True
    )
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


# --------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------


@dataclass
class Credentials:
    email: str
    password: str = PASSWORD


@dataclass
class Server:
    """A running `rinnovo serve --demo` and what it takes to talk to it besides a browser."""

    url: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen = field(repr=False)
    _office: Credentials | None = field(default=None, repr=False)

    # -- CLI ---------------------------------------------------------------------------

    def cli(self, *args: str, stdin: str = "") -> str:
        """Runs the binary with the server's data dir and database, as an operator would."""
        done = subprocess.run(
            [str(BINARY), *args],
            input=stdin,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"rinnovo {' '.join(args)} failed ({done.returncode}): {done.stderr}"
            )
        return done.stdout

    def add_back_office(self) -> Credentials:
        """A new back-office operator of the brand, created with `rinnovo user add`."""
        office = Credentials(unique_email("office"))
        self.cli(
            "user", "add",
            "--brand", BRAND,
            "--email", office.email,
            "--name", "Office",
            "--role", "back_office",
            stdin=PASSWORD + "\n",
        )
        return office

    # -- JSON API ----------------------------------------------------------------------

    def api(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        """One JSON request; the decoded answer, or an AssertionError naming the refusal."""
        answer = http_json.request(
            self.url + path, method, body, token=token, headers=headers, timeout=15
        )
        if answer.status >= 400:
            # A 5xx is the server's fault: its log says why (RINNOVO_LOG=warn keeps errors).
            log = ""
            if answer.status >= 500:
                log = "\nserver log:\n" + self.log_path.read_text(errors="replace")[-4000:]
            raise AssertionError(f"{method} {path} answered {answer.status}: {answer.text()}{log}")
        return answer.body

    def login(self, who: Credentials) -> str:
        answer = self.api(
            "POST",
            "/api/v1/auth/login",
            {"brand": BRAND, "email": who.email, "password": who.password},
        )
        return answer["access_token"]

    def confirm_email(self, token: str, sink: MailSink, address: str) -> None:
        """Confirms the signed-in user's address through the API, with the token of the
        link emailed to it (for the tests that are not about email)."""
        link = confirmation_link(sink, address)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
        self.api("POST", "/api/v1/auth/email/confirm", {"token": query["token"][0]}, token=token)

    def give_billing_data(self, token: str) -> None:
        """Gives the signed-in buyer valid billing data (a person) through the API, as a
        buyer must before the first order."""
        self.api("PUT", "/api/v1/me/billing", BILLING_PERSON, token=token)

    def credit_prepaid(self, customer_email: str, amount: str) -> None:
        """Credits the customer's prepaid account as the back-office does (by API)."""
        if self._office is None:
            self._office = self.add_back_office()
        token = self.login(self._office)
        query = urllib.parse.urlencode({"email": customer_email})
        found = self.api("GET", f"/api/v1/backoffice/prepaid?{query}", token=token)
        accounts = found["accounts"]
        assert accounts, f"no prepaid account for {customer_email}"
        account_id = accounts[0]["account_id"]
        self.api(
            "POST",
            f"/api/v1/backoffice/prepaid/{urllib.parse.quote(account_id)}/adjustments",
            {"amount": amount, "reason": "test credit", "direction": "credit"},
            token=token,
        )


class PostgresDatabase:
    """A throwaway database on the server of TEST_DATABASE_URL, made and dropped with psql."""

    def __init__(self, server_url: str) -> None:
        parts = urllib.parse.urlsplit(server_url)
        self.name = f"rinnovo_browser_{secrets.token_hex(6)}"
        self._maintenance = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
        self.url = urllib.parse.urlunsplit(parts._replace(path=f"/{self.name}"))

    def _psql(self, sql: str) -> None:
        subprocess.run(
            ["psql", self._maintenance, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def create(self) -> None:
        self._psql(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        self._psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _wait_until_ready(url: str, process: subprocess.Popen, log_path: Path) -> None:
    """Polls /health/ready (the server has no other way to say it is up) for 60 s."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"rinnovo exited with {process.returncode} before it was ready:\n"
                + log_path.read_text(errors="replace")[-4000:]
            )
        try:
            with urllib.request.urlopen(url + "/health/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"rinnovo was not ready within {READY_TIMEOUT_S} s:\n"
        + log_path.read_text(errors="replace")[-4000:]
    )


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM (graceful shutdown, as in production) and wait; kill if it hangs."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """Settings of the module's server beyond the usual ones: a module that needs a
    service the others do without (a card provider) overrides this fixture."""
    return {}


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, smtp_sink: MailSink, server_env: dict[str, str]
) -> Iterator[Server]:
    """A fresh `rinnovo serve --demo` for the module, stopped at the end.

    Its log is copied next to the screenshots, so a failure in CI can be read there.
    """
    assert BINARY.exists(), f"{BINARY} is missing: run tests/browser/run.sh (it builds it)"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="rinnovo-browser-"))
    port = free_port()
    env = {
        **os.environ,
        "RINNOVO_DATA_DIR": str(data_dir),
        "RINNOVO_BIND": f"127.0.0.1:{port}",
        "RINNOVO_SMTP_URL": f"smtp://{smtp_sink.host}:{smtp_sink.port}?tls=none",
        "RINNOVO_LOG": "warn",
        "RINNOVO_MAIL_RETRY_BASE_SECS": "1",
        "RINNOVO_PUBLIC_URL": f"http://127.0.0.1:{port}",
        **server_env,
    }
    env.pop("RINNOVO_DATABASE_URL", None)
    database = None
    if os.environ.get("TEST_DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        database = PostgresDatabase(os.environ["TEST_DATABASE_URL"])
        database.create()
        env["RINNOVO_DATABASE_URL"] = database.url

    log_path = data_dir / "server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [str(BINARY), "serve", "--demo"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=data_dir,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_ready(url, process, log_path)
        yield Server(url=url, env=env, log_path=log_path, process=process)
    finally:
        if process.poll() is not None:
            # Not our SIGTERM: a crash, or something on the machine killed it. The tests
            # that failed with "connection refused" failed because of this.
            print(
                f"\nrinnovo serve exited on its own with {process.returncode} during "
                f"{request.module.__name__}; log:\n"
                + log_path.read_text(errors="replace")[-4000:],
                file=sys.stderr,
            )
        _stop(process)
        log.close()
        module = request.module.__name__.rsplit(".", 1)[-1]
        shutil.copyfile(log_path, SCREENSHOTS / f"{module}-server.log")
        if database is not None:
            database.drop()
        shutil.rmtree(data_dir, ignore_errors=True)


# --------------------------------------------------------------------------------------
# The browser
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless; --no-sandbox because CI runs as root."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def viewport() -> str:
    """Desktop unless a test parametrizes `viewport` (e.g. ["desktop", "phone"])."""
    return "desktop"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Remembers each phase's outcome on the item, so `page` can screenshot failures."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _test_slug(node: pytest.Item) -> str:
    """`test_x[phone]` -> `test_x-phone`: a file name that sorts by test."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", node.name).strip("-")


@pytest.fixture
def page(
    request: pytest.FixtureRequest, browser: Browser, server: Server, viewport: str
) -> Iterator[Page]:
    """A fresh context (no cookies) per test, with the server as base URL.

    A test that fails leaves a `<test>-failure.png` of where it stopped.
    """
    context = browser.new_context(base_url=server.url, locale="it-IT", **VIEWPORTS[viewport])
    context.set_default_timeout(10_000)
    the_page = context.new_page()
    try:
        yield the_page
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed and server.process.poll() is not None:
            print(
                f"rinnovo serve is not running (exit code {server.process.returncode})",
                file=sys.stderr,
            )
        if report is not None and report.failed and not the_page.is_closed():
            try:
                the_page.screenshot(
                    path=SCREENSHOTS / f"{_test_slug(request.node)}-failure.png",
                    full_page=True,
                )
            except Exception:  # noqa: BLE001 - the failure itself is what matters
                pass
        context.close()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """`shot(page, "riepilogo")` saves target/browser-screenshots/<test>-<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    slug = _test_slug(request.node)

    def take(the_page: Page, name: str) -> Path:
        path = SCREENSHOTS / f"{slug}-{name}.png"
        the_page.screenshot(path=path, full_page=True)
        return path

    return take
