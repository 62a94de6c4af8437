"""The shop never sells what the renewal will refuse: once a device has been renewed as
many times as it may be, the shop says why and proposes no coupon for it.

The device is the demo's Giulia Romano USB key, which has real certificates of the
embedded CA and its keys in the data dir's `demo-agent/`. The test buys a combined coupon
as the demo customer, renews both certificates through the agent API exactly as a
desktop agent does (openssl plays the device), has the batch issue them and confirms the
installation; then the shop, in Chromium, refuses to propose anything for that device.
"""

from __future__ import annotations

import base64
import subprocess
import urllib.request
import uuid
from pathlib import Path

from playwright.sync_api import Page, expect

from conftest import BRAND, Credentials

from test_shop import COUPON_CODE, path_is

HOLDER = "RMNGLI88C52H501Q"
DEVICE_SUBJECT = "/C=IT/SN=ROMANO/GN=GIULIA/serialNumber=TINIT-RMNGLI88C52H501Q/CN=ROMANO GIULIA"
# serve --demo prints these (src/demo.rs): a customer with prepaid money and billing data.
DEMO_CUSTOMER = Credentials("cliente@demo.example", "negozio demo 2026")
DEVICE_PAGE = f"/negozio/acquista/dispositivi?metodo=prepaid&codice_fiscale={HOLDER}"
REFUSAL = "non rinnovabile: il dispositivo è già stato rinnovato il numero massimo di volte"


def openssl(*args: str, stdin: bytes = b"") -> bytes:
    return subprocess.run(
        ["openssl", *args], input=stdin, capture_output=True, check=True, timeout=60
    ).stdout


def agent_token(server, device: Path) -> str:
    """The agent's sign-in: a nonce signed with the authentication key on the device."""
    nonce = server.api("POST", "/api/v1/agent/challenges")["nonce"]
    signature = openssl(
        "dgst", "-sha256", "-sign", str(device / "authentication.key.pem"), stdin=nonce.encode()
    )
    session = server.api(
        "POST",
        "/api/v1/agent/sessions",
        {
            "certificate": (device / "authentication.pem").read_text(),
            "nonce": nonce,
            "signature": base64.b64encode(signature).decode(),
        },
    )
    return session["token"]


def renew_every_certificate(server, device: Path, coupon: str, work: Path) -> None:
    """Both certificates with one combined coupon, issued by the batch and installed."""
    token = agent_token(server, device)
    certificates = server.api("GET", "/api/v1/agent/certificates", token=token)
    requests = []
    for certificate in certificates["device"]["certificates"]:
        key = work / f"{certificate['kind']}.new.key.pem"
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
        csr = openssl("req", "-new", "-key", str(key), "-subj", DEVICE_SUBJECT).decode()
        requests.append({"certificate_id": certificate["id"], "csr": csr, "coupon_code": coupon})
    assert len(requests) == 2, certificates
    submitted = server.api("POST", "/api/v1/agent/renewals", {"renewals": requests}, token=token)
    server.cli("issue-batch")
    for renewal in submitted["renewals"]:
        path = f"/api/v1/agent/renewals/{renewal['id']}"
        download = urllib.request.Request(
            server.url + path,
            headers={"authorization": f"Bearer {token}", "accept": "application/pem-certificate-chain"},
        )
        with urllib.request.urlopen(download, timeout=15) as answer:
            assert b"BEGIN CERTIFICATE" in answer.read()
        installed = server.api("POST", f"{path}/installed", token=token)
        assert installed["status"] == "installed", installed


def sign_in(page: Page, who: Credentials) -> None:
    page.goto(f"/negozio/{BRAND}/accedi")
    page.get_by_label("Email", exact=True).fill(who.email)
    page.get_by_label("Password", exact=True).fill(who.password)
    page.get_by_role("button", name="Accedi").click()
    expect(page).to_have_url(path_is("/negozio/acquista"))


def test_the_shop_proposes_nothing_for_a_device_at_its_renewal_limit(
    page, shot, server, smtp_sink, tmp_path
):
    sign_in(page, DEMO_CUSTOMER)
    # Before: the key is renewable, and the shop proposes its coupons.
    page.goto(DEVICE_PAGE)
    expect(page.locator('input[type="number"][name^="q_"]').first).to_be_visible()
    expect(page.get_by_text(REFUSAL)).to_have_count(0)
    shot(page, "rinnovabile")

    token = server.login(DEMO_CUSTOMER)
    server.api(
        "POST",
        "/api/v1/orders",
        {"lines": [{"product": "RIN-FIRMA-CNS", "quantity": 1}], "payment_method": "prepaid"},
        token=token,
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    mail = smtp_sink.wait_for_mail_to(DEMO_CUSTOMER.email, "i tuoi coupon")
    coupon = COUPON_CODE.search(mail.text).group(0)
    device = Path(server.env["RINNOVO_DATA_DIR"]) / "demo-agent"
    renew_every_certificate(server, device, coupon, tmp_path)

    # After: each certificate says why it cannot be renewed, and nothing is for sale.
    page.goto(DEVICE_PAGE)
    expect(page.get_by_text(REFUSAL).first).to_be_visible()
    expect(page.locator('input[type="number"][name^="q_"]')).to_have_count(0)
    expect(page.get_by_text("Coupon proposti")).to_have_count(0)
    shot(page, "limite-rinnovi")
