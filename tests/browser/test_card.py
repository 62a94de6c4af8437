"""Paying an order by card, in Chromium, against the fake provider of tests/support: the
shop offers the card, sends the buyer to the provider's page, and the order's page shows
what the provider's signed notification says, not what the return suggests.

Every page visited is screenshotted into target/browser-screenshots/.
"""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Iterator

import pytest
from playwright.sync_api import expect

import fake_card_provider  # tests/support, put on the path by conftest
from conftest import BRAND
from test_shop import COUPON_CODE, DEMO_DEVICE, DEMO_HOLDER, choose_method, path_is, sign_up

# The endpoint's signing secret, shared by the fake (which signs) and rinnovo (which checks).
WEBHOOK_SECRET = "whsec_browser_test_secret"
# The fake reloads the order's page every 3 s: a few rounds of it, and the mail after.
SETTLED_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def card_provider() -> Iterator[fake_card_provider.Server]:
    provider, _ = fake_card_provider.start(port=0, secret=WEBHOOK_SECRET)
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture(scope="module")
def server_env(card_provider) -> dict[str, str]:
    """The module's server takes cards, through the fake."""
    return {
        "RINNOVO_STRIPE_SECRET_KEY": "sk_test_x",
        "RINNOVO_STRIPE_WEBHOOK_SECRETS": WEBHOOK_SECRET,
        "RINNOVO_STRIPE_API_BASE": card_provider.base_url,
    }


@pytest.fixture(scope="module")
def notifications_to_server(card_provider, server) -> None:
    """The fake's notifications go to this module's server (its port is known only now)."""
    body = json.dumps({"webhook_url": f"{server.url}/api/v1/card/notifications"}).encode()
    request = urllib.request.Request(
        f"{card_provider.base_url}/_control/config",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def test_card_purchase_is_fulfilled_once_the_provider_confirms(
    page, shot, server, smtp_sink, browser, card_provider, notifications_to_server
):
    """Sign up, choose "Carta di credito", pay on the provider's page, come back to the
    order's page, which turns fulfilled once the notification is in; the codes arrive."""
    customer = sign_up(page, shot, "carta", smtp_sink)
    expect(page.get_by_text("i codici arrivano via email pochi minuti dopo il pagamento")).to_be_visible()

    choose_method(page, shot, "Carta di credito", "card")
    page.get_by_label("Codice Fiscale", exact=True).fill(DEMO_HOLDER)
    page.get_by_role("button", name="Avanti").click()
    expect(page.get_by_text(f"Dispositivo n. {DEMO_DEVICE}")).to_be_visible()
    page.get_by_role("button", name="Avanti").click()
    expect(page).to_have_url(path_is("/negozio/acquista/riepilogo"))
    expect(page.get_by_text("Carta di credito").first).to_be_visible()
    shot(page, "riepilogo")

    page.get_by_role("button", name="Conferma l'acquisto").click()
    # The provider's page, not rinnovo's.
    expect(page).to_have_url(re.compile(rf"^{re.escape(card_provider.base_url)}/pay/[^/?#]+$"))
    expect(page.locator("#amount")).to_contain_text("26,84")
    shot(page, "pagina-del-fornitore")

    page.locator("#pay").click()
    expect(page).to_have_url(re.compile(r"/negozio/ordini/[^/?#]+$"))
    shot(page, "ritorno")
    # The page reloads itself until the notification has fulfilled the order.
    expect(page.get_by_role("heading", name="Operazione di acquisto coupon conclusa")).to_be_visible(
        timeout=SETTLED_TIMEOUT_MS
    )
    expect(page.get_by_text(customer.email).first).to_be_visible()
    assert page.locator('meta[http-equiv="refresh"]').count() == 0
    shot(page, "ordine-evaso")

    mail = smtp_sink.wait_for_mail_to(customer.email, "i tuoi coupon")
    assert COUPON_CODE.search(mail.text), f"no coupon code in:\n{mail.text}"
    order_id = page.url.rsplit("/", 1)[-1]

    # The operator finds the payment among the card payments and refunds one coupon.
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
        operator.get_by_role("link", name="Pagamenti con carta").click()
        expect(operator).to_have_url(path_is("/backoffice/pagamenti/carte"))
        # The table shows the order id shortened; the whole id is its title.
        row = operator.locator("tr", has=operator.locator(f"[title='{order_id}']"))
        expect(row.locator("td.status")).to_have_text("pagato")
        shot(operator, "backoffice-carte")
        row.get_by_role("link", name=re.compile("^Dettaglio")).click()
        expect(operator.locator("#stato")).to_have_text("pagato")
        expect(operator.get_by_text("Nessun rimborso.")).to_be_visible()
        boxes = operator.get_by_role("checkbox")
        expect(boxes).to_have_count(2)
        shot(operator, "backoffice-carta")

        # No reason: the form again, with the message next to the field.
        boxes.first.check()
        operator.get_by_label("Motivo del rimborso").evaluate("e => e.removeAttribute('required')")
        operator.get_by_role("button", name="Rimborsa").click()
        expect(operator.locator("#refund-reason-error")).to_be_visible()
        expect(operator.get_by_role("checkbox").first).to_be_checked()

        operator.get_by_label("Motivo del rimborso").fill("Il cliente ha comprato un coupon di troppo")
        operator.get_by_role("button", name="Rimborsa").click()
        expect(operator.locator("#fatto")).to_contain_text("Rimborso richiesto")
        expect(operator.get_by_role("checkbox")).to_have_count(1)
        refund = operator.locator("tr[id^=rimborso-]")
        expect(refund).to_have_count(1)
        expect(refund).to_contain_text("13,42")
        expect(operator.locator("#rimborsato")).to_contain_text("13,42")
        shot(operator, "backoffice-carta-rimborsata")
    finally:
        context.close()


def test_card_top_up_is_credited_once_the_provider_confirms(
    page, shot, server, smtp_sink, card_provider, notifications_to_server
):
    """The prepaid page offers the card; back from the provider's page, the top-up's
    state shows, and the balance includes it once the notification is in."""
    sign_up(page, shot, "ricarica-carta", smtp_sink)
    page.goto("/negozio/prepagato")
    expect(page.get_by_label("Carta di credito")).to_be_checked()
    page.get_by_label("Importo della ricarica").fill("abc")
    page.get_by_role("button", name="Ricarica").click()
    expect(page.locator("#amount-error")).to_be_visible()
    shot(page, "prepagato-importo-sbagliato")

    page.get_by_label("Importo della ricarica").fill("50,00")
    page.get_by_role("button", name="Ricarica").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(card_provider.base_url)}/pay/[^/?#]+$"))
    expect(page.locator("#amount")).to_contain_text("50,00")
    page.locator("#pay").click()
    expect(page).to_have_url(re.compile(r"/negozio/prepagato\?ricarica=[^&]+$"))
    expect(page.get_by_text("Ricarica accreditata")).to_be_visible(timeout=SETTLED_TIMEOUT_MS)
    expect(page.locator("#saldo")).to_contain_text("50,00")
    shot(page, "prepagato-ricaricato")


def test_a_buyer_back_without_paying_can_open_the_page_again(
    page, shot, server, smtp_sink, card_provider, notifications_to_server
):
    """"Annulla" on the provider's page is no payment: the order's page waits, and its
    "Paga con carta" button leads to the same provider's page again."""
    sign_up(page, shot, "carta-annulla", smtp_sink)
    choose_method(page, shot, "Carta di credito", "card")
    page.get_by_label("Codice Fiscale", exact=True).fill(DEMO_HOLDER)
    page.get_by_role("button", name="Avanti").click()
    page.get_by_role("button", name="Avanti").click()
    page.get_by_role("button", name="Conferma l'acquisto").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(card_provider.base_url)}/pay/[^/?#]+$"))
    provider_page = page.url

    page.locator("#cancel").click()
    expect(page).to_have_url(re.compile(r"/negozio/ordini/[^/?#]+$"))
    expect(page.locator("#carta-stato")).to_contain_text("Pagamento con carta in verifica")
    assert page.locator('meta[http-equiv="refresh"]').count() == 1
    shot(page, "ritorno-senza-pagare")

    page.get_by_role("button", name="Paga con carta").click()
    expect(page).to_have_url(provider_page)
