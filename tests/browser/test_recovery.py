"""Password recovery in Chromium: "Password dimenticata?" on the sign-in page, the email
that reaches the SMTP sink, its link, the new password, and signing in with it. The reset
ends the sessions that were open: the browser where the customer was signed in is out.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from conftest import BRAND
from test_shop import path_is, sign_up

NEW_PASSWORD = "nuvola arancione sul tetto"
# The link of the plain-text part (the HTML part escapes its `=`).
LINK = re.compile(r"https?://\S+/negozio/[a-z]+/accedi/nuova-password\?token=[0-9a-f]{64}")


def test_a_forgotten_password_is_reset_from_the_emailed_link(page: Page, shot, server, smtp_sink, browser):
    customer = sign_up(page, shot, "smemorato", smtp_sink)

    # Another browser, signed out: the customer has forgotten the password.
    context = browser.new_context(base_url=server.url, locale="it-IT")
    context.set_default_timeout(10_000)
    visitor = context.new_page()
    try:
        visitor.goto(f"/negozio/{BRAND}/accedi")
        visitor.get_by_role("link", name="Password dimenticata?").click()
        expect(visitor).to_have_url(path_is(f"/negozio/{BRAND}/accedi/password-dimenticata"))
        shot(visitor, "password-dimenticata")
        visitor.get_by_label("Email", exact=True).fill(customer.email)
        visitor.get_by_role("button", name="Inviami il link").click()
        expect(visitor.locator("#richiesta-inviata")).to_contain_text(
            "Se questo indirizzo ha un account"
        )
        shot(visitor, "link-inviato")

        mail = smtp_sink.wait_for_mail_to(customer.email, "imposta una nuova password")
        assert "30 minuti" in mail.text, mail.text
        found = LINK.search(mail.text)
        assert found, mail.text
        link = found.group(0)
        assert link.startswith(server.url), link

        visitor.goto(link)
        shot(visitor, "nuova-password")
        visitor.get_by_label("Nuova password", exact=True).fill(NEW_PASSWORD)
        visitor.get_by_role("button", name="Salva la nuova password").click()
        expect(visitor).to_have_url(path_is(f"/negozio/{BRAND}/accedi", "password=nuova"))
        expect(visitor.locator("#form-notice")).to_contain_text("La nuova password è impostata")
        shot(visitor, "password-impostata")

        # The new password signs in.
        visitor.get_by_label("Email", exact=True).fill(customer.email)
        visitor.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
        visitor.get_by_role("button", name="Accedi").click()
        expect(visitor).to_have_url(path_is("/negozio/acquista"))

        # The link worked once.
        visitor.goto(link)
        expect(visitor.locator("#form-error")).to_contain_text("non è più valido")
        expect(visitor.get_by_label("Nuova password", exact=True)).to_have_count(0)
        shot(visitor, "link-usato")
    finally:
        context.close()

    # The session that was open before the reset has ended.
    page.goto("/negozio/profilo")
    expect(page).to_have_url(path_is(f"/negozio/{BRAND}/accedi"))
