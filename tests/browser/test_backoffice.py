"""The back-office in Chromium: a customer orders by bank transfer in the shop, the
operator imports the bank statement that carries the transfer, and the order turns
fulfilled: invoice number on the customer's orders page, coupon email in the sink.

The statement is a camt.053.001.08 written here with the one credit the bank would book:
the order's amount, to the brand's IBAN, with the RF code as the structured creditor
reference (what a payer's bank copies from the "causale").
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from conftest import BRAND
from test_shop import COUPON_CODE, VISURA_IBAN, compact, path_is, sign_up


def camt053(rf_code: str, amount: str, booked: datetime.date) -> str:
    """A bank statement with one booked SEPA credit carrying `rf_code`."""
    day = booked.isoformat()
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>BROWSER-{rf_code}</MsgId><CreDtTm>{day}T22:00:00+01:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>BROWSER-{rf_code}</Id>
      <CreDtTm>{day}T22:00:00+01:00</CreDtTm>
      <Acct><Id><IBAN>{VISURA_IBAN}</IBAN></Id><Ccy>EUR</Ccy></Acct>
      <Ntry>
        <NtryRef>1</NtryRef>
        <Amt Ccy="EUR">{amount}</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><Dt>{day}</Dt></BookgDt>
        <ValDt><Dt>{day}</Dt></ValDt>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls>
          <TxDtls>
            <Refs><AcctSvcrRef>BROWSER-{rf_code}</AcctSvcrRef><EndToEndId>NOTPROVIDED</EndToEndId></Refs>
            <Amt Ccy="EUR">{amount}</Amt>
            <CdtDbtInd>CRDT</CdtDbtInd>
            <RltdPties><Dbtr><Pty><Nm>Studio Prova</Nm></Pty></Dbtr></RltdPties>
            <RmtInf>
              <Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp><Ref>{rf_code}</Ref></CdtrRefInf></Strd>
            </RmtInf>
          </TxDtls>
        </NtryDtls>
      </Ntry>
    </Stmt>
  </BkToCstmrStmt>
</Document>
"""


def printed(rf_code: str) -> str:
    """An RF code in its groups of four, as the pages print it."""
    return " ".join(rf_code[i : i + 4] for i in range(0, len(rf_code), 4))


def assert_no_sideways_scroll(page: Page) -> None:
    """The page is no wider than the window; if it is, the message names what sticks out."""
    found = page.evaluate(
        """() => ({
            fits: document.documentElement.scrollWidth <= window.innerWidth,
            wider: Array.from(document.querySelectorAll("body *"))
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                .filter(e => !e.closest(".scroll"))
                .slice(0, 5)
                .map(e => e.tagName + "." + e.className + " " + e.outerHTML.slice(0, 80)),
        })"""
    )
    assert found["fits"], found["wider"]


def the_payments_queue_fits_the_screen(operator: Page, shot, rf_code: str) -> None:
    """The payments queue on a desktop screen uses its width: no sideways scroll, the RF
    code on one line, "Dettaglio" whole; on a phone the page itself does not scroll
    sideways either (a wide table scrolls inside its own box)."""
    operator.set_viewport_size({"width": 1400, "height": 900})
    operator.goto("/backoffice/pagamenti")
    cell = operator.locator("td.rf-code", has_text=printed(rf_code))
    expect(cell).to_be_visible()
    assert_no_sideways_scroll(operator)
    # One line: the text's own box no taller than one and a half lines.
    line = cell.evaluate(
        """cell => {
            const range = document.createRange();
            range.selectNodeContents(cell);
            const rects = Array.from(range.getClientRects()).filter(r => r.width > 0);
            const tops = new Set(rects.map(r => Math.round(r.top)));
            return { lines: tops.size, height: range.getBoundingClientRect().height,
                     lineHeight: parseFloat(getComputedStyle(cell).lineHeight) };
        }"""
    )
    assert line["lines"] == 1, line
    assert line["height"] <= line["lineHeight"] * 1.5, line
    detail = operator.locator("td.action a").first
    expect(detail).to_be_visible()
    whole = detail.evaluate(
        """link => {
            const box = link.getBoundingClientRect();
            const words = document.createRange();
            words.selectNodeContents(link.firstChild);
            const text = words.getBoundingClientRect();
            return { text: link.firstChild.textContent, inside: text.right <= box.right + 1
                     && text.right <= window.innerWidth, lines: words.getClientRects().length };
        }"""
    )
    assert whole == {"text": "Dettaglio", "inside": True, "lines": 1}, whole
    title = operator.title()
    assert title.count(" · ") == 1, title
    shot(operator, "backoffice-pagamenti-1400")

    operator.set_viewport_size({"width": 390, "height": 844})
    operator.goto("/backoffice/pagamenti")
    expect(cell).to_be_attached()
    assert_no_sideways_scroll(operator)
    shot(operator, "backoffice-pagamenti-390")


def test_the_back_office_imports_the_statement_and_the_order_is_fulfilled(
    page: Page, shot, server, smtp_sink, browser, tmp_path: Path
) -> None:
    # The customer orders one RIN-FIRMA by bank transfer.
    customer = sign_up(page, shot, "bonifico-bo", smtp_sink)
    page.get_by_label("Bonifico bancario").check()
    page.get_by_role("button", name="Avanti").click()
    page.get_by_role("link", name="Hai necessità di acquistare uno o più coupon?").click()
    page.locator("input[name='q_RIN-FIRMA']").fill("1")
    page.get_by_role("button", name="Avanti").click()
    page.get_by_role("button", name="Conferma l'acquisto").click()
    expect(page.locator("#rf-code")).to_be_visible()
    rf_code = compact(page.locator("#rf-code").inner_text())
    assert re.fullmatch(r"RF\d{2}[0-9A-Z]{1,21}", rf_code), rf_code
    expect(page.locator("#importo")).to_contain_text("13,42")
    order_url = page.url
    shot(page, "ordine-in-attesa")

    # The operator, in a browser of their own, imports the statement.
    statement = tmp_path / "estratto.xml"
    statement.write_text(camt053(rf_code, "13.42", datetime.date.today()))
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
        shot(operator, "backoffice-pagamenti-prima")
        operator.goto("/backoffice/estratti")
        shot(operator, "backoffice-estratti")
        operator.locator("input[type=file][name=file]").set_input_files(str(statement))
        operator.get_by_role("button", name="Importa").click()
        expect(operator.get_by_role("heading", name="Estratto importato")).to_be_visible()
        expect(operator.locator("#count-matched")).to_have_text(re.compile(r"^\s*1\s*$"))
        shot(operator, "backoffice-estratto-importato")
        operator.goto("/backoffice/pagamenti")
        expect(operator.locator("td.rf-code", has_text=printed(rf_code))).to_be_visible()
        shot(operator, "backoffice-pagamenti")
        the_payments_queue_fits_the_screen(operator, shot, rf_code)
        # The order, found by its RF code as a customer would read it out.
        operator.get_by_role("link", name="Ordini", exact=True).click()
        operator.get_by_label(
            "Codice RF, numero di fattura, email o identificativo dell'ordine"
        ).fill(rf_code.lower())
        operator.get_by_role("button", name="Cerca").click()
        expect(operator.locator("#trovati")).to_have_text("1 ordine trovato.")
        expect(operator.locator("td.status")).to_have_text("evaso")
        shot(operator, "backoffice-ordini")
    finally:
        context.close()

    # The customer's order is fulfilled, with its invoice number, and the codes arrive.
    page.goto(order_url)
    page.goto("/negozio/ordini")
    expect(page.get_by_text("evaso")).to_be_visible()
    expect(page.get_by_text(re.compile(r"V\d{4}-\d{6}"))).to_be_visible()
    shot(page, "ordini-evaso")
    mail = smtp_sink.wait_for_mail_to(customer.email, "i tuoi coupon")
    assert COUPON_CODE.search(mail.text), mail.text
