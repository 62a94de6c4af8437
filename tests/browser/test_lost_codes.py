"""Codes lost or deleted, in Chromium: the buyer has an order's unused codes sent again from
the order page and reads the new ones in the email; the coupon list offers the CSV export.
And the API viewer, which must render from this origin alone."""

from __future__ import annotations

import secrets

from playwright.sync_api import expect

from conftest import Credentials
from test_shop import COUPON_CODE, path_is, sign_up


def test_lost_codes_are_sent_again_from_the_order_page(page, shot, server, smtp_sink):
    customer: Credentials = sign_up(page, shot, "persi", smtp_sink)
    server.credit_prepaid(customer.email, "50.00")
    token = server.login(customer)
    order = server.api(
        "POST",
        "/api/v1/orders",
        {"lines": [{"product": "RIN-FIRMA", "quantity": 2}], "payment_method": "prepaid"},
        token=token,
        headers={"Idempotency-Key": f"browser-lost-{secrets.token_hex(6)}"},
    )
    first = smtp_sink.wait_for_mail_to(customer.email, "coupon")
    first_codes = set(COUPON_CODE.findall(first.text))
    assert len(first_codes) == 2, first.text

    page.goto(f"/negozio/ordini/{order['id']}")
    shot(page, "ordine-evaso")
    page.get_by_role("button", name="Invia di nuovo i codici non usati").click()
    expect(page).to_have_url(path_is(f"/negozio/ordini/{order['id']}", "codici=2"))
    expect(page.locator("#codici-inviati")).to_contain_text(customer.email)
    shot(page, "codici-inviati")

    again = smtp_sink.wait_for(
        lambda m: customer.email in m.rcpt_tos and "non sono più validi" in m.text
    )
    new_codes = set(COUPON_CODE.findall(again.text))
    assert len(new_codes) == 2 and not new_codes & first_codes, again.text
    for code in first_codes:
        assert server.api("GET", f"/api/v1/coupons/{code}/status")["status"] == "voided"
    for code in new_codes:
        assert server.api("GET", f"/api/v1/coupons/{code}/status")["status"] == "available"

    page.goto("/negozio/coupon")
    shot(page, "miei-coupon")
    with page.expect_download() as download:
        page.get_by_role("link", name="Scarica l'elenco (CSV, per Excel)").click()
    path = download.value.path()
    text = open(path, encoding="utf-8-sig").read()
    rows = [line.split(";") for line in text.splitlines()]
    assert rows[0][0] == "codice", text
    # Two voided and two new, all masked.
    assert sorted(row[3] for row in rows[1:]) == ["annullato", "annullato", "disponibile", "disponibile"], text
    assert not COUPON_CODE.search(text), text


def test_the_api_viewer_renders_from_this_origin_alone(page, shot, server):
    foreign: list[str] = []
    page.on(
        "request",
        lambda request: None
        if request.url.startswith(server.url) or request.url.startswith("data:")
        else foreign.append(request.url),
    )
    refused: list[str] = []
    page.on(
        "console",
        lambda message: refused.append(message.text)
        if "Content Security Policy" in message.text
        else None,
    )
    page.goto("/api/docs")
    expect(page).to_have_url(path_is("/api/docs/"))
    # Swagger UI has drawn the operations from /api/openapi.json.
    expect(page.get_by_text("/api/v1/orders/{id}/codes/resend").first).to_be_visible(timeout=15_000)
    shot(page, "api-docs")
    assert foreign == [], foreign
    assert refused == [], refused
