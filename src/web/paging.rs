//! The paging of the pages' lists: the one paging rule ([`Page`]) with a page number in
//! the address (`pagina`, from 1), and what the `paginazione` partial shows under each
//! list.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::macros::TextEnum;
use crate::paging::{Page, Paged};

/// The query of a list page that has no filters: only which page.
#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    pub pagina: String,
}

/// The page of a list page asked for by its `pagina` parameter (a page number, from 1),
/// with the rows per page of every list ([`Page::DEFAULT_LIMIT`]); anything that is not
/// a page number is the first page: a person who edits the address gets a page, not an
/// error.
pub fn page_numbered(pagina: &str) -> Page {
    let number = pagina.trim().parse::<i64>().unwrap_or(1);
    Page::numbered(number, Page::DEFAULT_LIMIT).unwrap_or_default()
}

/// A list page's state filter as its form sends it: empty is every state; a text that is
/// not one of `T`'s states is refused with the words the page shows by the field.
pub fn state_filter<T: TextEnum>(stato: &str) -> Result<Option<T>, &'static str> {
    match stato.trim() {
        "" => Ok(None),
        text => T::parse(text)
            .map(Some)
            .ok_or("Scegli uno degli stati dell'elenco."),
    }
}

/// What the `paginazione` partial shows under a list: how many rows match ("N
/// risultati"), "Pagina X di Y", and the links to the pages around this one, which keep
/// the list's `filters` (empty ones left out).
pub fn pager(path: &str, filters: &[(&str, &str)], page: Page, total: i64) -> Value {
    let link = |to: Page| {
        let number = to.number().to_string();
        let mut pairs = filters.to_vec();
        if to.number() > 1 {
            pairs.push(("pagina", &number));
        }
        match query_string(&pairs) {
            query if query.is_empty() => path.to_owned(),
            query => format!("{path}?{query}"),
        }
    };
    json!({
        "results": match total {
            1 => "1 risultato".to_owned(),
            n => format!("{n} risultati"),
        },
        "number": page.number(),
        "pages": page.count_of_pages(total),
        "previous": page.previous().map(link),
        "next": page.next(total).map(link),
    })
}

/// A page of a list as its list page shows it: each row as `row` shows it, and the
/// [`pager`] under them.
pub fn rows_and_pager<T>(
    path: &str,
    filters: &[(&str, &str)],
    page: Page,
    list: Paged<T>,
    row: impl FnMut(T) -> Value,
) -> (Vec<Value>, Value) {
    let pager = pager(path, filters, page, list.total);
    (list.items.into_iter().map(row).collect(), pager)
}

/// `pairs` as a query string, the empty ones left out.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if !value.is_empty() {
            query.append_pair(name, value);
        }
    }
    query.finish()
}
