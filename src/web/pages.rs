//! Page templates (`templates/pages/`), compiled into the binary. Strict mode, as for
//! emails: a missing variable is an error a test catches, never a blank on a page.
//! Values are HTML-escaped.

use std::sync::LazyLock;

use handlebars::Handlebars;
use serde::Serialize;

/// (name, source). `layout` is the partial every page fills.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout", include_str!("../../templates/pages/layout.hbs")),
    ("errore", include_str!("../../templates/pages/errore.hbs")),
    ("negozio", include_str!("../../templates/pages/negozio.hbs")),
    ("accedi", include_str!("../../templates/pages/accedi.hbs")),
    (
        "iscriviti",
        include_str!("../../templates/pages/iscriviti.hbs"),
    ),
    ("metodo", include_str!("../../templates/pages/metodo.hbs")),
    (
        "titolare",
        include_str!("../../templates/pages/titolare.hbs"),
    ),
    (
        "dispositivi",
        include_str!("../../templates/pages/dispositivi.hbs"),
    ),
    ("coupon", include_str!("../../templates/pages/coupon.hbs")),
    (
        "riepilogo",
        include_str!("../../templates/pages/riepilogo.hbs"),
    ),
    ("ordine", include_str!("../../templates/pages/ordine.hbs")),
    ("profilo", include_str!("../../templates/pages/profilo.hbs")),
    (
        "prepagato",
        include_str!("../../templates/pages/prepagato.hbs"),
    ),
    ("ordini", include_str!("../../templates/pages/ordini.hbs")),
    (
        "miei_coupon",
        include_str!("../../templates/pages/miei_coupon.hbs"),
    ),
    (
        "verifica",
        include_str!("../../templates/pages/verifica.hbs"),
    ),
];

/// The stylesheet, served at `/negozio/stile.css` (the CSP allows no inline style).
pub const STYLESHEET: &str = include_str!("../../templates/pages/stile.css");

static PAGES: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
    let mut pages = Handlebars::new();
    pages.set_strict_mode(true);
    for (name, source) in TEMPLATES.iter().chain(super::backoffice::TEMPLATES) {
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
