"""Many holders at once, as a registration officer does it in Chromium: the list pasted
from the renewal step's "Possiedi più firme digitali da rinnovare?", a wrong line named
with its number, the table of every device with its state, the CSV downloaded, and the
proposed coupons bought in one order from the prepaid account.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conftest import Credentials
from test_renewal_limit import sign_in
from test_shop import choose_method, confirm, path_is

# serve --demo prints it (src/demo.rs): an officer with prepaid money and billing data.
DEMO_OFFICER = Credentials("incaricato@demo.example", "ufficio demo 2026")
# Mario Rossi (a card renewable now, both certificates), Laura Bianchi (signature
# renewable, authentication not yet), Giuseppe Verdi (nothing of Visura).
LIST = ["RSSMRA80A01H501U", "BNCLRA85T52F205E", "VRDGPP70M15L219P"]
WRONG_CHECK_CHARACTER = "RSSMRA80A01H501A"


def test_an_officer_looks_up_a_list_and_buys_for_every_renewable_holder(page, shot, server):
    sign_in(page, DEMO_OFFICER)
    choose_method(page, shot, "Preleva da Conto Prepagato", "prepaid")
    page.get_by_role("link", name=re.compile("Possiedi più firme digitali da rinnovare")).click()
    expect(page).to_have_url(path_is("/negozio/acquista/titolari", "metodo=prepaid"))

    # A wrong line: named by its number, nothing looked up.
    page.get_by_label("Codici fiscali, uno per riga").fill("\n".join([*LIST, WRONG_CHECK_CHARACTER]))
    page.get_by_role("button", name="Cerca").click()
    expect(page.locator("#elenco-errore")).to_contain_text("Riga 4")
    expect(page.locator("#titolari")).to_have_count(0)
    shot(page, "titolari-errore")

    page.get_by_label("Codici fiscali, uno per riga").fill("\n".join(LIST))
    page.get_by_role("button", name="Cerca").click()
    expect(page.locator("#risultato")).to_contain_text("Titolari trovati: 2 su 3")
    table = page.locator("#titolari")
    expect(table).to_contain_text("1205100000")
    expect(table).to_contain_text("1205100002")
    shot(page, "titolari")

    with page.expect_download() as download:
        page.locator("#scarica-csv").click()
    csv = download.value.path().read_text(encoding="utf-8-sig")
    lines = [line for line in csv.splitlines() if line]
    assert ";" in lines[0], lines[0]
    assert all(cf in csv for cf in LIST), csv
    # A row per certificate of the two holders found, one for the holder not found.
    assert len(lines) == 1 + 4 + 1, csv

    # Three proposed coupons: Rossi's two certificates, Bianchi's signature.
    buy = page.get_by_role("button", name=re.compile(r"Acquista i coupon proposti \(3\)"))
    buy.click()
    expect(page).to_have_url(path_is("/negozio/acquista/riepilogo"))
    shot(page, "titolari-riepilogo")
    confirm(page, shot)
    expect(page.get_by_role("heading", name="Operazione di acquisto coupon conclusa")).to_be_visible()
