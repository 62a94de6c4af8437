"""Verified email in Chromium: a new customer is asked to confirm the address and cannot
buy until the emailed link is opened; a new address from the profile becomes the
account's only when its own link is opened, and the old address is told.

The links are read from the SMTP sink, as the customer reads them in their mailbox."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conftest import PASSWORD, confirmation_link, unique_email
from test_shop import confirm, path_is, sign_up

SUMMARY = "/negozio/acquista/riepilogo?metodo=prepaid&q_RIN-FIRMA=1"


def test_a_new_customer_confirms_the_email_and_then_buys(page, shot, server, smtp_sink):
    customer = sign_up(page, shot, "conferma", smtp_sink, confirm=False)
    banner = page.locator("#email-da-confermare")
    expect(banner).to_contain_text("Conferma il tuo indirizzo email")
    expect(banner).to_contain_text(customer.email)
    server.credit_prepaid(customer.email, "50.00")

    # Buying is refused until the address is confirmed, with why and the way out.
    page.goto(SUMMARY)
    page.get_by_role("button", name="Conferma l'acquisto").click()
    expect(page.get_by_role("alert")).to_contain_text("conferma il tuo indirizzo email")
    expect(page.get_by_role("button", name="Invia di nuovo il link")).to_be_visible()
    shot(page, "acquisto-rifiutato")

    # Opening the link shows a button; only the button confirms.
    page.goto(confirmation_link(smtp_sink, customer.email))
    shot(page, "conferma-email")
    expect(page.locator("#email-da-confermare")).to_be_visible()
    page.get_by_role("button", name="Conferma l'indirizzo").click()
    expect(page.get_by_role("status")).to_contain_text("è confermato")
    expect(page.locator("#email-da-confermare")).to_have_count(0)
    shot(page, "email-confermata")

    page.goto(SUMMARY)
    confirm(page, shot)
    mail = smtp_sink.wait_for_mail_to(customer.email, "i tuoi coupon")
    assert re.search(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]", mail.text)


def test_the_email_changes_from_the_profile_once_the_new_address_confirms(
    page, shot, smtp_sink
):
    customer = sign_up(page, shot, "cambio", smtp_sink)
    new_address = unique_email("nuovo")
    page.goto("/negozio/profilo")
    page.get_by_label("Email", exact=True).fill(new_address)
    page.get_by_label("Password attuale", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Salva").click()
    expect(page).to_have_url(path_is("/negozio/profilo", "salvato=1"))
    expect(page.locator("#email-in-attesa")).to_contain_text(new_address)
    # Not changed yet.
    expect(page.get_by_label("Email", exact=True)).to_have_value(customer.email)
    shot(page, "profilo-email-in-attesa")

    notice = smtp_sink.wait_for_mail_to(customer.email, "richiesta di cambio")
    assert new_address in notice.text, notice.text

    page.goto(confirmation_link(smtp_sink, new_address))
    page.get_by_role("button", name="Conferma l'indirizzo").click()
    expect(page.get_by_role("status")).to_contain_text(new_address)
    page.goto("/negozio/profilo")
    expect(page.get_by_label("Email", exact=True)).to_have_value(new_address)
    expect(page.locator("#email-in-attesa")).to_have_count(0)
    shot(page, "profilo-email-cambiata")
