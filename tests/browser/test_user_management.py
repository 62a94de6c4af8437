"""User management in Chromium: an operator finds a customer, disables them (the
customer's session ends and the sign-in is refused), enables them again; a customer applies
from the profile to become a registration officer, the operator approves on the requests
page, the approval email arrives and the profile shows the new role.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator

from playwright.sync_api import Browser, Page, expect

from conftest import BRAND, Credentials, Server
from test_shop import path_is, sign_up


@contextmanager
def operator_page(browser: Browser, server: Server) -> Iterator[Page]:
    """A new operator, signed in in a browser of their own."""
    office = server.add_back_office()
    context = browser.new_context(base_url=server.url, locale="it-IT")
    context.set_default_timeout(10_000)
    operator = context.new_page()
    try:
        operator.goto(f"/negozio/{BRAND}/accedi")
        operator.get_by_label("Email", exact=True).fill(office.email)
        operator.get_by_label("Password", exact=True).fill(office.password)
        operator.get_by_role("button", name="Accedi").click()
        expect(operator).to_have_url(path_is("/backoffice/pagamenti"))
        yield operator
    finally:
        context.close()


def sign_in(page: Page, who: Credentials) -> None:
    page.goto(f"/negozio/{BRAND}/accedi")
    page.get_by_label("Email", exact=True).fill(who.email)
    page.get_by_label("Password", exact=True).fill(who.password)
    page.get_by_role("button", name="Accedi").click()


def test_the_operator_disables_a_user_who_then_cannot_sign_in_and_enables_them(
    page: Page, shot, server, smtp_sink, browser
) -> None:
    customer = sign_up(page, shot, "disattivato", smtp_sink)
    with operator_page(browser, server) as operator:
        operator.get_by_role("link", name="Utenti", exact=True).click()
        operator.get_by_label("Email o nome (anche in parte)").fill(customer.email[:18].upper())
        operator.get_by_role("button", name="Cerca").click()
        expect(operator.locator("#trovati")).to_have_text("Utenti 1–1 di 1.")
        shot(operator, "backoffice-utenti")
        operator.get_by_role("link", name=customer.email).click()
        expect(operator.locator("#stato")).to_have_text("attivo")

        operator.get_by_label("Motivo").fill("credenziali rubate")
        operator.get_by_role("button", name="Disattiva l'utente").click()
        expect(operator.locator("#fatto")).to_contain_text("Utente disattivato")
        expect(operator.locator("#stato")).to_have_text("disattivato")
        shot(operator, "backoffice-utente-disattivato")

        # The customer's open session is over, and the right password no longer signs in.
        page.goto("/negozio/profilo")
        expect(page).to_have_url(path_is(f"/negozio/{BRAND}/accedi"))
        sign_in(page, customer)
        expect(page.locator("#form-error")).to_contain_text("disattivato")
        shot(page, "accedi-disattivato")

        operator.get_by_label("Motivo").fill("password cambiata con il cliente")
        operator.get_by_role("button", name="Riattiva l'utente").click()
        expect(operator.locator("#stato")).to_have_text("attivo")

    sign_in(page, customer)
    expect(page).to_have_url(path_is("/negozio/acquista"))


def test_a_customer_applies_from_the_profile_and_the_operator_approves(
    page: Page, shot, server, smtp_sink, browser
) -> None:
    customer = sign_up(page, shot, "incaricato", smtp_sink)
    page.goto("/negozio/profilo")
    page.get_by_role("link", name="Chiedi di diventare incaricato alla registrazione").click()
    page.get_by_label("Ragione sociale").fill("Studio Prova S.r.l.")
    page.get_by_label("Partita IVA").fill("00743110158")
    page.get_by_label("PEC o email dell'azienda").fill("studioprova@pec.example.it")
    page.get_by_role("button", name="Invia la richiesta").click()
    expect(page.locator("#vat_number-error")).to_contain_text("ultima cifra")
    shot(page, "incaricato-partita-iva-errata")
    page.get_by_label("Partita IVA").fill("IT 00743110157")
    page.get_by_role("button", name="Invia la richiesta").click()
    expect(page).to_have_url(path_is("/negozio/profilo", "richiesta=1"))
    expect(page.locator("#richiesta-stato")).to_contain_text("in attesa di esame")
    shot(page, "profilo-richiesta-in-attesa")

    with operator_page(browser, server) as operator:
        operator.get_by_role("link", name="Utenti", exact=True).click()
        operator.get_by_role("link", name="Richieste di incarico alla registrazione").click()
        request = operator.locator("section.card", has_text=customer.email)
        expect(request).to_contain_text("00743110157")
        shot(operator, "backoffice-richieste")
        request.get_by_role("button", name="Accogli").click()
        expect(operator.locator("#fatto")).to_contain_text("Richiesta accolta")
        expect(operator.locator("section.card", has_text=customer.email)).to_have_count(0)

    mail = smtp_sink.wait_for_mail_to(customer.email, "incarico alla registrazione")
    assert "è stata accolta" in mail.subject and "non è stata" not in mail.subject, mail.subject
    assert "Studio Prova S.r.l." in mail.text, mail.text

    page.goto("/negozio/profilo")
    expect(page.locator("#incaricato-stato")).to_contain_text("Sei incaricato alla registrazione")
    expect(page.locator("#richiesta-stato")).to_contain_text("accolta")
    expect(page.get_by_text(re.compile(r"\(incaricato alla registrazione\)"))).to_be_visible()
    shot(page, "profilo-incaricato")
