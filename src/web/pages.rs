//! Page templates (`templates/pages/`), compiled into the binary. Strict mode, as for
//! emails: a missing variable is an error a test catches, never a blank on a page.
//! Values are HTML-escaped.

use std::sync::LazyLock;

use handlebars::Handlebars;
use serde::Serialize;

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
/// billing data's fields (the buyer's form, the correction of a rejected invoice); the
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
    page_template!("coupon"),
    page_template!("riepilogo"),
    page_template!("ordine"),
    page_template!("profilo"),
    page_template!("campi_fatturazione"),
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

static PAGES: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
    let mut pages = Handlebars::new();
    pages.set_strict_mode(true);
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
}
