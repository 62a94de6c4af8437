//! Email bodies from handlebars templates in `templates/email/`, compiled into the binary.
//! Strict mode: a variable missing from the context is an error (caught by tests), never
//! a blank in a customer's inbox. HTML templates escape values; text templates do not.

use std::sync::LazyLock;

use handlebars::Handlebars;
use serde::Serialize;

/// (name, subject, text body, HTML body)
const TEMPLATES: &[(&str, &str, &str, &str)] = &[
    (
        "coupon_delivery",
        "{{brand}}: i tuoi coupon di rinnovo (ordine {{invoice_number}})",
        include_str!("../../templates/email/coupon_delivery.text.hbs"),
        include_str!("../../templates/email/coupon_delivery.html.hbs"),
    ),
    (
        "order_receipt",
        "{{brand}}: ricevuta ordine {{invoice_number}}",
        include_str!("../../templates/email/order_receipt.text.hbs"),
        include_str!("../../templates/email/order_receipt.html.hbs"),
    ),
    (
        "transfer_instructions",
        "{{brand}}: come pagare con il codice {{reference}}",
        include_str!("../../templates/email/transfer_instructions.text.hbs"),
        include_str!("../../templates/email/transfer_instructions.html.hbs"),
    ),
    (
        "reservation_expired",
        "{{brand}}: prenotazione {{reference}} scaduta",
        include_str!("../../templates/email/reservation_expired.text.hbs"),
        include_str!("../../templates/email/reservation_expired.html.hbs"),
    ),
    (
        "payment_update",
        "{{brand}}: pagamento {{reference}}",
        include_str!("../../templates/email/payment_update.text.hbs"),
        include_str!("../../templates/email/payment_update.html.hbs"),
    ),
    (
        "renewal_reminder",
        "{{brand}}: il tuo certificato scade tra {{days}} giorni o meno",
        include_str!("../../templates/email/renewal_reminder.text.hbs"),
        include_str!("../../templates/email/renewal_reminder.html.hbs"),
    ),
    (
        "renewal_ready",
        "{{brand}}: il nuovo certificato di {{kind}} è pronto da installare",
        include_str!("../../templates/email/renewal_ready.text.hbs"),
        include_str!("../../templates/email/renewal_ready.html.hbs"),
    ),
    (
        "renewal_installed",
        "{{brand}}: nuovo certificato di {{kind}} installato",
        include_str!("../../templates/email/renewal_installed.text.hbs"),
        include_str!("../../templates/email/renewal_installed.html.hbs"),
    ),
    (
        "renewal_failed",
        "{{brand}}: rinnovo del certificato di {{kind}} non riuscito",
        include_str!("../../templates/email/renewal_failed.text.hbs"),
        include_str!("../../templates/email/renewal_failed.html.hbs"),
    ),
    (
        "officer_decision",
        "{{brand}}: la tua richiesta di incarico alla registrazione{{#if approved}} è stata accolta{{else}} non è stata accolta{{/if}}",
        include_str!("../../templates/email/officer_decision.text.hbs"),
        include_str!("../../templates/email/officer_decision.html.hbs"),
    ),
    (
        "password_reset",
        "{{brand}}: imposta una nuova password",
        include_str!("../../templates/email/password_reset.text.hbs"),
        include_str!("../../templates/email/password_reset.html.hbs"),
    ),
    (
        "email_confirmation",
        "{{brand}}: conferma il tuo indirizzo email",
        include_str!("../../templates/email/email_confirmation.text.hbs"),
        include_str!("../../templates/email/email_confirmation.html.hbs"),
    ),
    (
        "email_change_notice",
        "{{brand}}: richiesta di cambio dell'indirizzo email",
        include_str!("../../templates/email/email_change_notice.text.hbs"),
        include_str!("../../templates/email/email_change_notice.html.hbs"),
    ),
    (
        "invoice_not_delivered",
        "{{brand}}: la {{document}} {{number}} è nel tuo cassetto fiscale",
        include_str!("../../templates/email/invoice_not_delivered.text.hbs"),
        include_str!("../../templates/email/invoice_not_delivered.html.hbs"),
    ),
];

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
    for (name, subject, text_source, html_source) in TEMPLATES {
        text.register_template_string(&format!("{name}.subject"), *subject)
            .unwrap_or_else(|e| panic!("template {name} subject: {e}"));
        text.register_template_string(name, *text_source)
            .unwrap_or_else(|e| panic!("template {name}.text.hbs: {e}"));
        html.register_template_string(name, *html_source)
            .unwrap_or_else(|e| panic!("template {name}.html.hbs: {e}"));
    }
    Templates { text, html }
});

pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Subject, text and HTML of the named email.
pub fn render(name: &str, context: &impl Serialize) -> anyhow::Result<Rendered> {
    let templates = &*INSTANCE;
    anyhow::ensure!(
        templates.html.has_template(name),
        "no email template '{name}'"
    );
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
        assert!(render("order_receipt", &json!({ "name": "x" })).is_err());
    }

    #[test]
    fn html_is_escaped_text_is_not() {
        let rendered = render(
            "order_receipt",
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
        assert!(render("no_such_template", &json!({})).is_err());
    }
}
