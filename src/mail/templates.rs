//! Email bodies from handlebars templates in `templates/email/`, compiled into the binary.
//! Strict mode: a variable missing from the context is an error (caught by tests), never
//! a blank in a customer's inbox. HTML templates escape values; text templates do not.

use std::sync::LazyLock;

use handlebars::Handlebars;
use serde::Serialize;

/// Declares every kind of email: its stored name, which is also the name of its two
/// bodies in `templates/email/` (`<name>.text.hbs`, `<name>.html.hbs`), and its subject.
/// One line a kind, so that a kind cannot exist without its templates, nor a template be
/// sent under a name that is not a kind.
macro_rules! email_kinds {
    ($($kind:ident => $name:literal, $subject:literal;)*) => {
        text_enum!(
            /// Every kind of email rinnovo sends, owned here with its templates.
            EmailKind { $($kind => $name),* }
        );

        /// (subject, text body, HTML body) of a kind.
        fn sources(kind: EmailKind) -> (&'static str, &'static str, &'static str) {
            match kind {
                $(EmailKind::$kind => (
                    $subject,
                    include_str!(concat!("../../templates/email/", $name, ".text.hbs")),
                    include_str!(concat!("../../templates/email/", $name, ".html.hbs")),
                ),)*
            }
        }
    };
}

email_kinds! {
    CouponDelivery => "coupon_delivery", "{{brand}}: i tuoi coupon di rinnovo (ordine {{invoice_number}})";
    OrderReceipt => "order_receipt", "{{brand}}: ricevuta ordine {{invoice_number}}";
    TransferInstructions => "transfer_instructions", "{{brand}}: come pagare con il codice {{reference}}";
    ReservationExpired => "reservation_expired", "{{brand}}: prenotazione {{reference}} scaduta";
    PaymentUpdate => "payment_update", "{{brand}}: pagamento {{reference}}";
    RenewalReminder => "renewal_reminder", "{{brand}}: il tuo certificato scade tra {{days}} giorni o meno";
    RenewalReady => "renewal_ready", "{{brand}}: il nuovo certificato di {{kind}} è pronto da installare";
    RenewalInstalled => "renewal_installed", "{{brand}}: nuovo certificato di {{kind}} installato";
    RenewalFailed => "renewal_failed", "{{brand}}: rinnovo del certificato di {{kind}} non riuscito";
    OfficerDecision => "officer_decision", "{{brand}}: la tua richiesta di incarico alla registrazione{{#if approved}} è stata accolta{{else}} non è stata accolta{{/if}}";
    PasswordReset => "password_reset", "{{brand}}: imposta una nuova password";
    EmailConfirmation => "email_confirmation", "{{brand}}: conferma il tuo indirizzo email";
    EmailChangeNotice => "email_change_notice", "{{brand}}: richiesta di cambio dell'indirizzo email";
    InvoiceNotDelivered => "invoice_not_delivered", "{{brand}}: la {{document}} {{number}} è nel tuo cassetto fiscale";
}

pub struct Templates {
    text: Handlebars<'static>,
    html: Handlebars<'static>,
}

static INSTANCE: LazyLock<Templates> = LazyLock::new(|| {
    let mut text = Handlebars::new();
    text.set_strict_mode(true);
    text.register_escape_fn(handlebars::no_escape);
    let mut html = Handlebars::new();
    html.set_strict_mode(true);
    for &kind in EmailKind::ALL {
        let (name, (subject, text_source, html_source)) = (kind.as_str(), sources(kind));
        text.register_template_string(&format!("{name}.subject"), subject)
            .unwrap_or_else(|e| panic!("template {name} subject: {e}"));
        text.register_template_string(name, text_source)
            .unwrap_or_else(|e| panic!("template {name}.text.hbs: {e}"));
        html.register_template_string(name, html_source)
            .unwrap_or_else(|e| panic!("template {name}.html.hbs: {e}"));
    }
    Templates { text, html }
});

pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Subject, text and HTML of an email of `kind`.
pub fn render(kind: EmailKind, context: &impl Serialize) -> anyhow::Result<Rendered> {
    let templates = &*INSTANCE;
    let name = kind.as_str();
    Ok(Rendered {
        subject: templates.text.render(&format!("{name}.subject"), context)?,
        text: templates.text.render(name, context)?,
        html: templates.html.render(name, context)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_missing_variable_is_an_error() {
        assert!(render(EmailKind::OrderReceipt, &json!({ "name": "x" })).is_err());
    }

    #[test]
    fn html_is_escaped_text_is_not() {
        let rendered = render(
            EmailKind::OrderReceipt,
            &json!({
                "name": "Rossi & Figli <srl>", "invoice_number": "V2026-000001", "date": "22/11/2026",
                "payment_method": "conto prepagato", "lines": [], "net_total": "0.00",
                "vat_total": "0.00", "gross_total": "0.00", "brand": "Visura"
            }),
        )
        .unwrap();
        assert!(rendered.text.contains("Rossi & Figli <srl>"));
        assert!(rendered.html.contains("Rossi &amp; Figli &lt;srl&gt;"));
        assert_eq!(rendered.subject, "Visura: ricevuta ordine V2026-000001");
        assert_eq!(EmailKind::parse("no_such_template"), None);
    }
}
