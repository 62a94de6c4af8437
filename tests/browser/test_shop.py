"""The shop as a customer uses it, in Chromium: sign-up, the purchase steps, the order
page and the emails that follow. The pages are Italian and server-rendered (no JavaScript
needed), so the tests find things the way a person does: by label, button text and the
few ids the page contract names (`totale`, `rf-code`, `importo`, `codice_fiscale-error`).

Every page visited is screenshotted into target/browser-screenshots/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from conftest import BRAND, PASSWORD, REPO, Credentials, confirm_email_in_browser, unique_email

# Demo registry (seeds/demo.json): a holder whose smart card has both certificates
# renewable now. The shop proposes the cheapest cover (catalog::propose_for_device): with
# the seed prices one RIN-FIRMA + one RIN-CNS (11.00 + 11.00 = 22.00) beats the combined
# RIN-FIRMA-CNS (26.00), so the total is 22.00 + 22% IVA = 26.84.
DEMO_HOLDER = "RSSMRA80A01H501U"
DEMO_DEVICE = "1205100000"
# The same codice fiscale with a wrong check character (the last one).
BAD_CHECK_CHARACTER = "RSSMRA80A01H501A"
VISURA_IBAN = "IT60X0542811101000000123456"

COUPON_CODE = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]\b")
PRODUCTS = {
    p["code"]: p["name"]
    for p in json.loads(Path(REPO, "seeds", "catalog.json").read_text())["products"]
}


def path_is(path: str, query: str | None = None) -> re.Pattern[str]:
    """A URL matcher for `expect(page).to_have_url`: this path, any host, and (when given)
    a query string that contains `query`."""
    tail = r"(\?.*)?$" if query is None else rf"\?(.*&)?{re.escape(query)}(&.*)?$"
    return re.compile(rf"^https?://[^/]+{re.escape(path)}{tail}")


def compact(text: str) -> str:
    """Without whitespace: RF codes are printed in groups of four on pages, not in mail."""
    return re.sub(r"\s+", "", text)


def sign_up(page: Page, shot, prefix: str, smtp_sink, confirm: bool = True) -> Credentials:
    """A new customer through the sign-up form who (unless `confirm` is false) opens the
    emailed confirmation link; leaves them signed in on step 1."""
    customer = Credentials(unique_email(prefix))
    page.goto(f"/negozio/{BRAND}/iscriviti")
    shot(page, "iscriviti")
    page.get_by_label("Nome o ragione sociale", exact=True).fill("Studio Prova")
    page.get_by_label("Email", exact=True).fill(customer.email)
    page.get_by_label("Password", exact=True).fill(customer.password)
    page.get_by_role("button", name="Iscriviti").click()
    # Before the first purchase, the billing data: then back to the purchase.
    expect(page).to_have_url(path_is("/negozio/profilo/fatturazione", "dopo=acquista"))
    fill_billing_data(page, shot)
    expect(page).to_have_url(path_is("/negozio/acquista"))
    if confirm:
        confirm_email_in_browser(page, smtp_sink, customer.email)
        page.goto("/negozio/acquista")
    shot(page, "acquista")
    return customer


def fill_billing_data(page: Page, shot) -> None:
    """The "Dati di fatturazione" form, as a consumer fills it."""
    expect(page.get_by_text("Prima del primo ordine servono i tuoi dati di fatturazione")).to_be_visible()
    page.get_by_label("Persona fisica (consumatore)").check()
    page.get_by_label("Nome", exact=True).fill("Maria")
    page.get_by_label("Cognome", exact=True).fill("Rossi")
    page.get_by_label("Codice fiscale", exact=True).fill("RSSMRA80A01H501U")
    page.get_by_label("Indirizzo e numero civico").fill("Via Roma 1")
    page.get_by_label("CAP", exact=True).fill("00184")
    page.get_by_label("Comune", exact=True).fill("Roma")
    page.get_by_label("Provincia (sigla, come RM; EE per l'estero)").fill("RM")
    shot(page, "fatturazione")
    page.get_by_role("button", name="Salva").click()


def choose_method(page: Page, shot, label: str, value: str) -> None:
    """Step 1: the payment method, then on to the holder's page."""
    page.get_by_label(label).check()
    page.get_by_role("button", name="Avanti").click()
    expect(page).to_have_url(path_is("/negozio/acquista/titolare", f"metodo={value}"))
    shot(page, "titolare")


def confirm(page: Page, shot) -> None:
    """The summary's POST form; the order page follows."""
    page.get_by_role("button", name="Conferma l'acquisto").click()
    expect(page).to_have_url(re.compile(r"/negozio/ordini/[^/?#]+$"))
    shot(page, "ordine")


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_prepaid_purchase_of_the_proposed_coupons(page, shot, server, smtp_sink, viewport):
    """(a) The main path: sign up, get credit from the back-office, buy what the shop
    proposes for the holder's device, and receive the codes by email."""
    customer = sign_up(page, shot, f"prepagato-{viewport}", smtp_sink)
    server.credit_prepaid(customer.email, "50.00")
    page.reload()  # step 1 may show the balance: show the credited one
    shot(page, "acquista-con-credito")

    choose_method(page, shot, "Preleva da Conto Prepagato", "prepaid")
    page.get_by_label("Codice Fiscale", exact=True).fill(DEMO_HOLDER)
    page.get_by_role("button", name="Avanti").click()
    expect(page).to_have_url(path_is("/negozio/acquista/dispositivi"))
    expect(page.get_by_text(f"Dispositivo n. {DEMO_DEVICE}")).to_be_visible()
    expect(page.locator("main, body").first).to_contain_text(re.compile(r"\d{2}/\d{2}/\d{4}"))
    shot(page, "dispositivi")
    proposed = page.locator('input[type="number"][name^="q_"]')
    prefilled = {
        proposed.nth(i).get_attribute("name"): proposed.nth(i).input_value()
        for i in range(proposed.count())
    }
    assert prefilled == {"q_RIN-FIRMA": "1", "q_RIN-CNS": "1"}, prefilled

    page.get_by_role("button", name="Avanti").click()
    expect(page).to_have_url(path_is("/negozio/acquista/riepilogo"))
    expect(page.locator("#totale")).to_contain_text("26,84")
    expect(page.locator("#totale")).to_contain_text("€")
    expect(page.get_by_text(customer.email).first).to_be_visible()
    expect(page.locator("table")).to_contain_text(PRODUCTS["RIN-FIRMA"])
    expect(page.locator("table")).to_contain_text(PRODUCTS["RIN-CNS"])
    shot(page, "riepilogo")

    confirm(page, shot)
    expect(page.get_by_role("heading", name="Operazione di acquisto coupon conclusa")).to_be_visible()
    expect(page.get_by_text(customer.email).first).to_be_visible()

    mail = smtp_sink.wait_for_mail_to(customer.email, "i tuoi coupon")
    assert COUPON_CODE.search(mail.text), f"no coupon code in:\n{mail.text}"


def test_bank_transfer_purchase_from_the_manual_list(page, shot, smtp_sink):
    """(b) Coupons chosen by hand, paid by bank transfer: the order page gives the RF
    code, the amount and the brand's IBAN, and the same RF code is in the email."""
    customer = sign_up(page, shot, "bonifico", smtp_sink)
    # This module's server has no card provider: the card is not offered.
    expect(page.get_by_label("Carta di credito")).to_have_count(0)
    choose_method(page, shot, "Bonifico bancario", "bank_transfer")

    page.get_by_role("link", name="Hai necessità di acquistare uno o più coupon?").click()
    expect(page).to_have_url(path_is("/negozio/acquista/coupon", "metodo=bank_transfer"))
    shot(page, "coupon")
    for code, name in PRODUCTS.items():
        # Not exact: a label may add the price after the name (names are distinct).
        field = page.get_by_label(name)
        expect(field).to_have_attribute("name", f"q_{code}")
        expect(field).to_have_attribute("type", "number")
    page.locator('input[name="q_RIN-FIRMA"]').fill("2")

    page.get_by_role("button", name="Avanti").click()
    expect(page).to_have_url(path_is("/negozio/acquista/riepilogo"))
    expect(page.locator("#totale")).to_contain_text("26,84")  # 2 × 11,00 + 22% IVA
    expect(page.get_by_text(customer.email).first).to_be_visible()
    shot(page, "riepilogo")

    confirm(page, shot)
    rf_code = page.locator("#rf-code")
    expect(rf_code).to_have_text(re.compile(r"^\s*RF"))
    expect(page.locator("#importo")).to_contain_text("26,84")
    expect(page.get_by_text(VISURA_IBAN).first).to_be_visible()
    # The page groups the code in fours for reading: compare without the spaces.
    reference = compact(rf_code.inner_text())
    smtp_sink.wait_for(
        lambda m: customer.email in m.rcpt_tos and reference in compact(m.subject)
    )


def test_cheque_purchase_for_a_holder_names_the_holder_on_the_summary(page, shot, smtp_sink):
    """(c) Paid by cheque (assegno), as the guide lists it: the holder's flow, whose summary
    names the holder and their codice fiscale; the order waits for the cheque with its
    RF code. The demo card expires in 45 days, later than any transfer: no warning."""
    sign_up(page, shot, "assegno", smtp_sink)
    choose_method(page, shot, "Assegno", "cheque")
    page.get_by_label("Codice Fiscale", exact=True).fill(DEMO_HOLDER)
    page.get_by_role("button", name="Avanti").click()
    expect(page).to_have_url(path_is("/negozio/acquista/dispositivi", "metodo=cheque"))
    expect(page.locator("#scadenza-ravvicinata")).to_have_count(0)
    page.get_by_role("button", name="Avanti").click()
    expect(page).to_have_url(path_is("/negozio/acquista/riepilogo", f"codice_fiscale={DEMO_HOLDER}"))
    expect(page.locator("#titolare")).to_have_text("Mario Rossi")
    expect(page.locator("#titolare-codice-fiscale")).to_have_text(DEMO_HOLDER)
    expect(page.get_by_text("Assegno").first).to_be_visible()
    shot(page, "riepilogo-assegno")
    confirm(page, shot)
    expect(page.locator("#rf-code")).to_have_text(re.compile(r"^\s*RF"))


def test_an_invalid_codice_fiscale_is_shown_next_to_the_field(page, shot, smtp_sink):
    """(c) A wrong check character keeps the customer on the holder's page, with the rule
    broken written beside the field."""
    sign_up(page, shot, "cf-errato", smtp_sink)
    choose_method(page, shot, "Bonifico bancario", "bank_transfer")

    field = page.get_by_label("Codice Fiscale", exact=True)
    field.fill(BAD_CHECK_CHARACTER)
    page.get_by_role("button", name="Avanti").click()
    # The titolare page again (its URL may be the next step's, rendered with the error).
    expect(field).to_be_visible()
    error = page.locator("#codice_fiscale-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("carattere di controllo")
    shot(page, "titolare-errore")

    # "Next to the field": within a couple of lines of it, not in a banner far away.
    field_box, error_box = field.bounding_box(), error.bounding_box()
    assert field_box and error_box
    gap = max(error_box["y"] - (field_box["y"] + field_box["height"]),
              field_box["y"] - (error_box["y"] + error_box["height"]), 0)
    assert gap < 120, f"the error is {gap:.0f} px away from the field"


def test_the_shop_without_a_session_asks_to_sign_in(page, shot):
    """(d) Step 1 is for signed-in customers: anyone else lands on the sign-in form."""
    page.goto("/negozio/acquista")
    expect(page).to_have_url(re.compile(r"/negozio/([a-z]+/)?accedi(\?.*)?$"))
    expect(page.get_by_role("button", name="Accedi")).to_be_visible()
    shot(page, "accedi")


def test_sign_out_and_sign_in_again(page, shot, smtp_sink):
    """"Esci" ends the session (the shop asks to sign in again) and the sign-in form
    opens it again."""
    customer = sign_up(page, shot, "esci", smtp_sink)
    with page.expect_navigation():
        page.get_by_role("button", name="Esci").click()
    shot(page, "dopo-esci")
    page.goto("/negozio/acquista")
    expect(page).to_have_url(re.compile(r"/accedi(\?.*)?$"))
    shot(page, "uscito")

    page.goto(f"/negozio/{BRAND}/accedi")
    page.get_by_label("Email", exact=True).fill(customer.email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Accedi").click()
    expect(page).to_have_url(path_is("/negozio/acquista"))
    shot(page, "rientrato")
