"""The harness itself, without the shop pages: if these fail, the shop tests' failures
say nothing about the pages. They check that the server starts on its own data, that its
emails reach the sink, that the CLI and back-office API helpers work, and that Chromium
launches and screenshots."""

import re
import secrets

from conftest import BRAND, PASSWORD, Credentials, unique_email

COUPON_CODE = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]\b")


def test_chromium_renders_the_readiness_page(page, shot):
    response = page.goto("/health/ready")
    assert response is not None and response.status == 200
    shot(page, "health-ready")


def test_a_prepaid_api_order_mails_coupons_to_the_sink(server, smtp_sink):
    """Sign-up, back-office credit (CLI user + API) and a prepaid order, all by API: the
    coupon email must arrive decoded, with its codes."""
    customer = Credentials(unique_email("api"))
    server.api(
        "POST",
        "/api/v1/auth/signup",
        {"brand": BRAND, "name": "Cliente API", "email": customer.email, "password": PASSWORD},
    )
    token = server.login(customer)
    server.confirm_email(token, smtp_sink, customer.email)
    server.give_billing_data(token)
    server.credit_prepaid(customer.email, "50.00")
    server.api(
        "POST",
        "/api/v1/orders",
        {"lines": [{"product": "RIN-FIRMA", "quantity": 1}], "payment_method": "prepaid"},
        token=token,
        headers={"Idempotency-Key": f"browser-harness-{secrets.token_hex(6)}"},
    )
    mail = smtp_sink.wait_for_mail_to(customer.email, "i tuoi coupon")
    assert COUPON_CODE.search(mail.text), mail.text
