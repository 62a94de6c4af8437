//! Page templates (`templates/pages/`), compiled into the binary. Strict mode, as for
//! emails: a missing variable is an error a test catches, never a blank on a page.
//! Values are HTML-escaped.

use std::sync::LazyLock;

use handlebars::{handlebars_helper, Handlebars};
use serde::Serialize;

use crate::transfer::CreditorReference;

/// `(name, source)` of `templates/pages/<name>.hbs`.
macro_rules! page_template {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../templates/pages/", $name, ".hbs")),
        )
    };
}

/// (name, source). `layout` is the partial every page fills, `campi_fatturazione` the
/// billing data's fields (the buyer's form, the correction of a rejected invoice),
/// `paginazione` the total and the page links under every list; the
/// shop's pages come first, then the back-office's (`bo_`).
const TEMPLATES: &[(&str, &str)] = &[
    page_template!("layout"),
    page_template!("errore"),
    page_template!("negozio"),
    page_template!("accedi"),
    page_template!("password_dimenticata"),
    page_template!("nuova_password"),
    page_template!("iscriviti"),
    page_template!("metodo"),
    page_template!("titolare"),
    page_template!("dispositivi"),
    page_template!("titolari"),
    page_template!("coupon"),
    page_template!("riepilogo"),
    page_template!("ordine"),
    page_template!("profilo"),
    page_template!("campi_fatturazione"),
    page_template!("paginazione"),
    page_template!("fatturazione"),
    page_template!("prepagato"),
    page_template!("ordini"),
    page_template!("miei_coupon"),
    page_template!("verifica"),
    page_template!("come_rinnovare"),
    page_template!("conferma_email"),
    page_template!("incaricato"),
    page_template!("bo_estratti"),
    page_template!("bo_estratto_importato"),
    page_template!("bo_pagamenti"),
    page_template!("bo_ordini"),
    page_template!("bo_fatture"),
    page_template!("bo_fattura"),
    page_template!("bo_pagamento"),
    page_template!("bo_carte"),
    page_template!("bo_carta"),
    page_template!("bo_riepilogo"),
    page_template!("bo_prepagati"),
    page_template!("bo_prepagato"),
    page_template!("bo_email"),
    page_template!("bo_sdi"),
    page_template!("bo_coupon"),
    page_template!("bo_utenti"),
    page_template!("bo_utente"),
    page_template!("bo_richieste"),
    page_template!("bo_ricevute_sdi"),
    page_template!("bo_fatture_scartate"),
    page_template!("bo_fattura_scartata"),
];

/// The stylesheet, served at `/negozio/stile.css` (the CSP allows no inline style).
pub const STYLESHEET: &str = include_str!("../../templates/pages/stile.css");

/// How many characters of a UUID a table shows: enough to tell the rows of one page
/// apart and to find the row again, short enough that the column stays narrow.
const SHORT_ID_CHARS: usize = 8;

// `{{rf reference}}`: an RF code in its printed groups of four, as the customer reads it on
// the transfer instructions, so the operator can compare them by eye. A stored text that
// is not a valid code (a bank's free text) is shown as it came.
handlebars_helper!(rf: |text: str| match CreditorReference::parse(text) {
    Ok(reference) => reference.printed(),
    Err(_) => text.to_owned(),
});

// `{{short_id id}}`: the first characters of a long id, for tables; the page puts the
// whole id in a `title` and the link still goes to it.
handlebars_helper!(short_id: |id: str| id.chars().take(SHORT_ID_CHARS).collect::<String>());

static PAGES: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
    let mut pages = Handlebars::new();
    pages.set_strict_mode(true);
    pages.register_helper("rf", Box::new(rf));
    pages.register_helper("short_id", Box::new(short_id));
    for (name, source) in TEMPLATES {
        pages
            .register_template_string(name, *source)
            .unwrap_or_else(|e| panic!("template pages/{name}.hbs: {e}"));
    }
    pages
});

pub fn render(name: &str, context: &impl Serialize) -> anyhow::Result<String> {
    Ok(PAGES.render(name, context)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_compiles() {
        assert!(super::PAGES.get_templates().len() >= super::TEMPLATES.len());
    }

    fn render_text(template: &str, context: serde_json::Value) -> String {
        super::PAGES
            .render_template(template, &context)
            .expect("renders")
    }

    #[test]
    fn an_rf_code_is_printed_in_groups_of_four() {
        let shown = render_text("{{rf r}}", serde_json::json!({ "r": "RF18539007547034" }));
        assert_eq!(shown, "RF18 5390 0754 7034");
    }

    #[test]
    fn a_text_that_is_no_rf_code_is_shown_as_it_came() {
        let shown = render_text("{{rf r}}", serde_json::json!({ "r": "—" }));
        assert_eq!(shown, "—");
    }

    #[test]
    fn a_short_id_is_its_first_eight_characters_escaped() {
        let id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(
            render_text("{{short_id i}}", serde_json::json!({ "i": id })),
            "0193a1b2"
        );
        assert_eq!(
            render_text("{{short_id i}}", serde_json::json!({ "i": "<b>" })),
            "&lt;b&gt;"
        );
    }
}
