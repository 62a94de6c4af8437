//! The courtesy copy as a PDF: A4 pages, the standard Helvetica fonts (every reader has
//! them, so nothing is embedded and the file stays a few kilobytes) in the WinAnsi
//! encoding, which holds every letter of Italian and the euro sign, so readers show and
//! text extraction gives back "Città" and "€" as written.

use chrono::NaiveDate;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use super::view::{DocumentView, Party};
use crate::invoices::DocumentKind;
use crate::money::euro;

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 50.0;
const RIGHT: f32 = PAGE_WIDTH - MARGIN;
/// Where the text of the pages ends, above the footer.
const BOTTOM: f32 = 70.0;

const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// The notice every copy carries: the PDF is only for reading.
pub const NOTICE: &str = "Questo documento è una copia di cortesia, priva di valore fiscale: \
il documento fiscalmente valido è la fattura elettronica in formato XML trasmessa tramite \
il Sistema di Interscambio (SdI) dell'Agenzia delle Entrate, che trovi anche nella tua area \
riservata del sito dell'Agenzia (Fatture e Corrispettivi).";

/// The PDF of `view`.
pub fn render(view: &DocumentView) -> Vec<u8> {
    let mut pages = Pages::new();
    let title = format!(
        "{} n. {} del {}",
        kind_title(view.kind),
        view.number,
        date_it(view.date)
    );
    pages.text(BOLD, 16.0, MARGIN, &title);
    pages.advance(22.0);
    pages.text(BOLD, 12.0, MARGIN, "Copia di cortesia");
    pages.advance(14.0);
    pages.paragraph(REGULAR, 8.5, MARGIN, RIGHT - MARGIN, NOTICE);
    for linked in &view.credited {
        pages.advance(4.0);
        let date = linked
            .date
            .map(|d| format!(" del {}", date_it(d)))
            .unwrap_or_default();
        let text = format!(
            "Nota di credito che rettifica la fattura n. {}{date}.",
            linked.number
        );
        pages.text(BOLD, 10.0, MARGIN, &text);
        pages.advance(14.0);
    }
    pages.advance(10.0);

    parties(&mut pages, view);
    lines(&mut pages, view);
    summary(&mut pages, view);

    pages.finish(&title)
}

fn kind_title(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Invoice => "Fattura",
        DocumentKind::CreditNote => "Nota di credito",
    }
}

/// The seller on the left, the buyer on the right.
fn parties(pages: &mut Pages, view: &DocumentView) {
    let column = (RIGHT - MARGIN) / 2.0;
    let buyer_x = MARGIN + column + 10.0;
    let mut seller = party_lines(&view.seller);
    if let Some(regime) = &view.seller.regime_fiscale {
        seller.push(format!("Regime fiscale: {regime}"));
    }
    if let Some(rea) = &view.seller.rea {
        seller.push(format!("REA: {rea}"));
    }
    let mut buyer = party_lines(&view.buyer);
    match (&view.pec_destinatario, &view.codice_destinatario) {
        (Some(pec), _) => buyer.push(format!("PEC: {pec}")),
        (None, Some(code)) if code != super::super::fatturapa::NO_RECIPIENT_CODE => {
            buyer.push(format!("Codice destinatario: {code}"))
        }
        _ => {}
    }
    let rows = seller.len().max(buyer.len()) + 2;
    pages.ensure(rows as f32 * 12.0 + 10.0);
    pages.text(BOLD, 9.0, MARGIN, "CEDENTE / PRESTATORE");
    pages.text(BOLD, 9.0, buyer_x, "CESSIONARIO / COMMITTENTE");
    pages.advance(14.0);
    pages.text(BOLD, 10.0, MARGIN, &view.seller.name);
    pages.text(BOLD, 10.0, buyer_x, &view.buyer.name);
    pages.advance(12.0);
    for row in 0..seller.len().max(buyer.len()) {
        if let Some(text) = seller.get(row) {
            pages.text(REGULAR, 9.0, MARGIN, text);
        }
        if let Some(text) = buyer.get(row) {
            pages.text(REGULAR, 9.0, buyer_x, text);
        }
        pages.advance(11.5);
    }
    pages.advance(12.0);
}

/// A party's address and tax codes, a line each.
fn party_lines(party: &Party) -> Vec<String> {
    let mut lines = Vec::new();
    let sede = &party.sede;
    if !sede.indirizzo.is_empty() {
        lines.push(sede.indirizzo.clone());
        let provincia = (sede.provincia.as_ref())
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        lines.push(format!(
            "{} {}{provincia} {}",
            sede.cap, sede.comune, sede.nazione
        ));
    }
    if let Some(partita_iva) = &party.partita_iva {
        lines.push(format!("Partita IVA: IT{partita_iva}"));
    }
    if let Some(codice_fiscale) = &party.codice_fiscale {
        lines.push(format!("Codice fiscale: {codice_fiscale}"));
    }
    lines
}

/// Columns of the lines' table: right edges of the figures.
const QUANTITY_RIGHT: f32 = 340.0;
const PRICE_RIGHT: f32 = 420.0;
const RATE_RIGHT: f32 = 465.0;
const DESCRIPTION_WIDTH: f32 = 250.0;

fn lines(pages: &mut Pages, view: &DocumentView) {
    let head = |pages: &mut Pages| {
        pages.text(BOLD, 9.0, MARGIN, "Descrizione");
        pages.text_right(BOLD, 9.0, QUANTITY_RIGHT, "Quantità");
        pages.text_right(BOLD, 9.0, PRICE_RIGHT, "Prezzo unitario");
        pages.text_right(BOLD, 9.0, RATE_RIGHT, "IVA");
        pages.text_right(BOLD, 9.0, RIGHT, "Importo");
        pages.advance(5.0);
        pages.rule();
        pages.advance(12.0);
    };
    pages.ensure(40.0);
    head(pages);
    for line in &view.lines {
        let wrapped = wrap(&line.description, 9.0, DESCRIPTION_WIDTH);
        if pages.ensure(wrapped.len() as f32 * 11.0 + 4.0) {
            head(pages);
        }
        pages.text_right(REGULAR, 9.0, QUANTITY_RIGHT, &quantity_it(&line.quantity));
        pages.text_right(REGULAR, 9.0, PRICE_RIGHT, &euro(line.unit_price));
        pages.text_right(REGULAR, 9.0, RATE_RIGHT, &rate_it(&line.vat_rate));
        pages.text_right(REGULAR, 9.0, RIGHT, &euro(line.total));
        for text in &wrapped {
            pages.text(REGULAR, 9.0, MARGIN, text);
            pages.advance(11.0);
        }
        pages.advance(3.0);
    }
    pages.rule();
    pages.advance(18.0);
}

/// The VAT summary, the totals and the payment.
fn summary(pages: &mut Pages, view: &DocumentView) {
    const TAXABLE_RIGHT: f32 = 420.0;
    pages.ensure(60.0 + view.vat.len() as f32 * 12.0 + view.payments.len() as f32 * 12.0);
    pages.text(BOLD, 9.0, MARGIN, "Riepilogo IVA");
    pages.text_right(BOLD, 9.0, TAXABLE_RIGHT, "Imponibile");
    pages.text_right(BOLD, 9.0, RIGHT, "Imposta");
    pages.advance(12.0);
    let mut taxable = crate::money::Money::ZERO;
    let mut tax = crate::money::Money::ZERO;
    for vat in &view.vat {
        pages.text(
            REGULAR,
            9.0,
            MARGIN,
            &format!("Aliquota {}", rate_it(&vat.vat_rate)),
        );
        pages.text_right(REGULAR, 9.0, TAXABLE_RIGHT, &euro(vat.taxable));
        pages.text_right(REGULAR, 9.0, RIGHT, &euro(vat.tax));
        pages.advance(12.0);
        taxable = taxable + vat.taxable;
        tax = tax + vat.tax;
    }
    pages.advance(6.0);
    for (label, amount) in [("Totale imponibile", taxable), ("Totale IVA", tax)] {
        pages.text(REGULAR, 10.0, 300.0, label);
        pages.text_right(REGULAR, 10.0, RIGHT, &euro(amount));
        pages.advance(13.0);
    }
    pages.text(BOLD, 11.0, 300.0, "Totale documento");
    pages.text_right(BOLD, 11.0, RIGHT, &euro(view.total));
    pages.advance(22.0);
    for payment in &view.payments {
        let text = format!(
            "Pagamento: {} ({})",
            payment_label(&payment.mode),
            payment.mode
        );
        pages.text(REGULAR, 9.0, MARGIN, &text);
        pages.text_right(REGULAR, 9.0, RIGHT, &euro(payment.amount));
        pages.advance(12.0);
    }
}

/// ModalitaPagamento in words (those rinnovo writes, and the common others).
fn payment_label(code: &str) -> &'static str {
    match code {
        "MP01" => "contanti",
        "MP02" => "assegno",
        "MP05" => "bonifico",
        "MP08" => "carta di pagamento",
        "MP18" => "bollettino di c/c postale",
        "MP22" => "trattenuta su somme già riscosse (credito prepagato)",
        _ => "altra modalità",
    }
}

fn date_it(date: NaiveDate) -> String {
    date.format("%d/%m/%Y").to_string()
}

/// "2.00" → "2", "1.50" → "1,50".
fn quantity_it(text: &str) -> String {
    let text = text.strip_suffix(".00").unwrap_or(text);
    text.replace('.', ",")
}

/// "22.00" → "22%", "5.50" → "5,5%".
fn rate_it(text: &str) -> String {
    let text = match text.contains('.') {
        true => text.trim_end_matches('0').trim_end_matches('.'),
        false => text,
    };
    format!("{}%", text.replace('.', ","))
}

/// `text` cut into lines that fit `width` at `size` points, at spaces where it can.
fn wrap(text: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_owned()
        } else {
            format!("{line} {word}")
        };
        if text_width(&candidate, size) <= width || line.is_empty() {
            line = candidate;
        } else {
            lines.push(std::mem::replace(&mut line, word.to_owned()));
        }
        // A word longer than the line is cut.
        while text_width(&line, size) > width && line.chars().count() > 1 {
            let fits = (1..line.chars().count())
                .rev()
                .find(|&n| text_width(&line.chars().take(n).collect::<String>(), size) <= width)
                .unwrap_or(1);
            let rest: String = line.chars().skip(fits).collect();
            lines.push(line.chars().take(fits).collect());
            line = rest;
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Helvetica's advance widths (thousandths of the size) of what right-aligned figures
/// and wrapped words hold; letters not listed take a typical width, slightly wide so a
/// wrapped line never overruns.
fn glyph_width(c: char) -> f32 {
    match c {
        ' ' | ',' | '.' | ':' | ';' | '/' | '!' | 'i' | 'j' | 'l' | 'I' | '\'' | 'ì' | 'í' => {
            278.0
        }
        'f' | 't' | 'r' | '(' | ')' | '-' => 333.0,
        '0'..='9' | '€' | 'a'..='e' | 'g' | 'h' | 'k' | 'n'..='q' | 'u' | 'v' | 'x'..='z' => {
            556.0
        }
        '%' => 889.0,
        'm' | 'M' | 'W' | 'w' | '@' => 944.0,
        _ => 722.0,
    }
}

fn text_width(text: &str, size: f32) -> f32 {
    text.chars().map(glyph_width).sum::<f32>() * size / 1000.0
}

/// `text` in WinAnsiEncoding: Latin-1 where it coincides, the euro sign and typographic
/// punctuation where Windows-1252 put them, `?` for anything else (FatturaPA text is
/// Latin-1 already).
fn winansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '€' => 0x80,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '–' => 0x96,
            '—' => 0x97,
            '…' => 0x85,
            c if (' '..='~').contains(&c) || ('\u{A0}'..='\u{FF}').contains(&c) => c as u8,
            _ => b'?',
        })
        .collect()
}

/// The pages being written: a content stream each, and where the next line goes.
struct Pages {
    done: Vec<Content>,
    current: Content,
    y: f32,
}

impl Pages {
    fn new() -> Self {
        Self {
            done: Vec::new(),
            current: Content::new(),
            y: PAGE_HEIGHT - MARGIN - 10.0,
        }
    }

    fn text(&mut self, font: Name<'_>, size: f32, x: f32, text: &str) {
        self.current
            .begin_text()
            .set_font(font, size)
            .next_line(x, self.y)
            .show(Str(&winansi(text)))
            .end_text();
    }

    fn text_right(&mut self, font: Name<'_>, size: f32, right: f32, text: &str) {
        self.text(font, size, right - text_width(text, size), text);
    }

    /// `text` wrapped to `width`, a line at a time.
    fn paragraph(&mut self, font: Name<'_>, size: f32, x: f32, width: f32, text: &str) {
        for line in wrap(text, size, width) {
            self.ensure(size * 1.3);
            self.text(font, size, x, &line);
            self.advance(size * 1.3);
        }
    }

    fn rule(&mut self) {
        self.current
            .set_line_width(0.5)
            .move_to(MARGIN, self.y)
            .line_to(RIGHT, self.y)
            .stroke();
    }

    fn advance(&mut self, by: f32) {
        self.y -= by;
    }

    /// Starts a new page unless `height` still fits on this one; whether it did.
    fn ensure(&mut self, height: f32) -> bool {
        if self.y - height >= BOTTOM {
            return false;
        }
        let full = std::mem::replace(&mut self.current, Content::new());
        self.done.push(full);
        self.y = PAGE_HEIGHT - MARGIN - 10.0;
        true
    }

    fn finish(mut self, title: &str) -> Vec<u8> {
        self.done.push(self.current);
        let count = self.done.len();
        let mut pdf = Pdf::new();
        let catalog = Ref::new(1);
        let tree = Ref::new(2);
        let regular = Ref::new(3);
        let bold = Ref::new(4);
        let info = Ref::new(5);
        let first_page = 6;
        let page_ids: Vec<Ref> = (0..count)
            .map(|n| Ref::new(first_page + 2 * n as i32))
            .collect();
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree)
            .kids(page_ids.iter().copied())
            .count(count as i32);
        for (font, base) in [(regular, "Helvetica"), (bold, "Helvetica-Bold")] {
            pdf.type1_font(font)
                .base_font(Name(base.as_bytes()))
                .encoding_predefined(Name(b"WinAnsiEncoding"));
        }
        pdf.document_info(info)
            .title(TextStr(title))
            .subject(TextStr("Copia di cortesia"));
        for (number, mut content) in self.done.into_iter().enumerate() {
            let page_id = page_ids[number];
            let content_id = Ref::new(page_id.get() + 1);
            let footer = format!("Copia di cortesia · pagina {} di {count}", number + 1);
            content
                .begin_text()
                .set_font(REGULAR, 8.0)
                .next_line(MARGIN, MARGIN - 10.0)
                .show(Str(&winansi(&footer)))
                .end_text();
            let mut page = pdf.page(page_id);
            page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
                .parent(tree)
                .contents(content_id);
            let mut resources = page.resources();
            resources.fonts().pair(REGULAR, regular).pair(BOLD, bold);
            resources.finish();
            page.finish();
            pdf.stream(content_id, &content.finish());
        }
        pdf.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn italian_letters_and_the_euro_are_in_the_font_encoding() {
        assert_eq!(winansi("Città € 1,00"), b"Citt\xe0 \x80 1,00".to_vec());
        assert_eq!(winansi("東"), b"?".to_vec());
    }

    #[test]
    fn figures_are_written_the_italian_way() {
        assert_eq!(quantity_it("2.00"), "2");
        assert_eq!(quantity_it("1.50"), "1,50");
        assert_eq!(rate_it("22.00"), "22%");
        assert_eq!(rate_it("5.50"), "5,5%");
        assert_eq!(rate_it("0.00"), "0%");
    }

    #[test]
    fn long_text_wraps_within_the_width() {
        let lines = wrap(&"parola ".repeat(40), 9.0, 200.0);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| text_width(l, 9.0) <= 200.0));
        let long = wrap(&"x".repeat(200), 9.0, 100.0);
        assert!(long.iter().all(|l| text_width(l, 9.0) <= 100.0));
    }
}
