//! The FatturaPA file of an invoice: format FPR12 (invoices between private parties) of
//! the Agenzia delle Entrate's schema, version 1.2.1. A pure function of the invoice's
//! data; tests validate what it writes against the official XSD.
//!
//! Text fields of the schema accept Basic Latin and Latin-1 only, on one line, with a
//! maximum length: [`latin`] makes any text fit (typographic quotes and dashes become
//! their ASCII forms, anything else outside Latin-1 becomes `?`, runs of whitespace one
//! space), so a product name pasted from a word processor never makes a file the SdI
//! rejects. quick-xml escapes what XML needs escaped.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use rust_decimal::Decimal;

use super::document::{Address, Buyer, BuyerName, Document, Settles};
use super::store::DocumentKind;
use crate::money::Money;

const NAMESPACE: &str = "http://ivaservizi.agenziaentrate.gov.it/docs/xsd/fatture/v1.2";
/// The CodiceDestinatario of a buyer reached by PEC or not at all (a consumer, who finds
/// the invoice in their area of the Agenzia's site).
pub const NO_RECIPIENT_CODE: &str = "0000000";

/// The SdI's name for a transmitter's file: `IT` + the transmitter's IdCodice + `_` + a
/// progressive of five alphanumeric characters, `.xml`.
pub fn file_name(transmitter: &str, progressivo: &str) -> String {
    format!("IT{transmitter}_{progressivo}.xml")
}

/// The `seq`-th ProgressivoInvio of a transmitter (from 1): five characters, base 36,
/// upper case, so it also serves as the file name's progressive (60 million files).
pub fn progressivo_invio(seq: i64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut n = seq.rem_euclid(36_i64.pow(5));
    let mut out = [b'0'; 5];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The FatturaPA XML of an invoice (TD01) or a credit note (TD04).
pub fn to_xml(document: &Document<'_>) -> String {
    let mut x = Xml(Writer::new_with_indent(Vec::new(), b' ', 2));
    x.event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let root = BytesStart::new("p:FatturaElettronica").with_attributes([
        ("versione", "FPR12"),
        ("xmlns:p", NAMESPACE),
        ("xmlns:ds", "http://www.w3.org/2000/09/xmldsig#"),
        ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
    ]);
    x.event(Event::Start(root));

    x.open("FatturaElettronicaHeader");
    header(&mut x, document);
    x.close("FatturaElettronicaHeader");

    x.open("FatturaElettronicaBody");
    body(&mut x, document);
    x.close("FatturaElettronicaBody");

    x.event(Event::End(BytesEnd::new("p:FatturaElettronica")));
    let mut text = String::from_utf8(x.0.into_inner()).expect("quick-xml writes UTF-8");
    text.push('\n');
    text
}

fn header(x: &mut Xml, document: &Document<'_>) {
    let buyer = document.buyer;
    let seller = document.seller;
    transmission_data(x, document.transmitter, document.progressivo_invio, buyer);

    x.open("CedentePrestatore");
    x.open("DatiAnagrafici");
    x.open("IdFiscaleIVA");
    x.leaf("IdPaese", "IT");
    x.leaf("IdCodice", &seller.partita_iva);
    x.close("IdFiscaleIVA");
    if let Some(cf) = &seller.codice_fiscale {
        x.leaf("CodiceFiscale", cf);
    }
    x.open("Anagrafica");
    x.leaf("Denominazione", &latin(&seller.denominazione, 80));
    x.close("Anagrafica");
    x.leaf("RegimeFiscale", &seller.regime_fiscale);
    x.close("DatiAnagrafici");
    address(x, "Sede", &seller.sede);
    if let Some(rea) = &seller.rea {
        x.open("IscrizioneREA");
        x.leaf("Ufficio", &rea.ufficio);
        x.leaf("NumeroREA", &latin(&rea.numero, 20));
        // LN: not in liquidation (the only state a selling company issues in).
        x.leaf("StatoLiquidazione", "LN");
        x.close("IscrizioneREA");
    }
    x.close("CedentePrestatore");

    buyer_party(x, buyer);
}

/// DatiTrasmissione: who sends the file, its ProgressivoInvio, and how the SdI reaches
/// the buyer.
fn transmission_data(x: &mut Xml, transmitter: &str, progressivo_invio: &str, buyer: &Buyer) {
    x.open("DatiTrasmissione");
    x.open("IdTrasmittente");
    x.leaf("IdPaese", "IT");
    x.leaf("IdCodice", transmitter);
    x.close("IdTrasmittente");
    x.leaf("ProgressivoInvio", progressivo_invio);
    x.leaf("FormatoTrasmissione", "FPR12");
    let code = match (&buyer.codice_destinatario, &buyer.pec) {
        (Some(code), None) => code.as_str(),
        _ => NO_RECIPIENT_CODE,
    };
    x.leaf("CodiceDestinatario", code);
    if let (None, Some(pec)) = (&buyer.codice_destinatario, &buyer.pec) {
        x.leaf("PECDestinatario", pec);
    }
    x.close("DatiTrasmissione");
}

/// The file of a document sent again (a rejected one, same number, date and lines): `xml`
/// with a new ProgressivoInvio and the buyer (CessionarioCommittente and how the SdI
/// reaches them) replaced; everything else as it was. Works for any document type, since
/// it never looks at the body.
pub fn resent_file(
    xml: &str,
    transmitter: &str,
    progressivo_invio: &str,
    buyer: &Buyer,
) -> anyhow::Result<String> {
    use quick_xml::Reader;
    let mut reader = Reader::from_str(xml);
    let mut x = Xml(Writer::new_with_indent(Vec::new(), b' ', 2));
    let mut replaced = 0;
    loop {
        match reader.read_event()? {
            Event::Eof => break,
            Event::Start(start)
                if matches!(
                    start.name().as_ref(),
                    "DatiTrasmissione" | "CessionarioCommittente"
                ) =>
            {
                let end = start.to_end().into_owned();
                reader.read_to_end(end.name())?;
                match end.name().as_ref() {
                    "DatiTrasmissione" => {
                        transmission_data(&mut x, transmitter, progressivo_invio, buyer)
                    }
                    _ => buyer_party(&mut x, buyer),
                }
                replaced += 1;
            }
            // The indentation between elements: the writer indents anew. Values never
            // hold a line break (see [`latin`]), so no value is lost.
            Event::Text(text) if text.contains('\n') && text.trim().is_empty() => {}
            event => x.event(event),
        }
    }
    anyhow::ensure!(
        replaced == 2,
        "the stored file lacks DatiTrasmissione or CessionarioCommittente"
    );
    let mut text = String::from_utf8(x.0.into_inner())?;
    text.push('\n');
    Ok(text)
}

fn buyer_party(x: &mut Xml, buyer: &Buyer) {
    x.open("CessionarioCommittente");
    x.open("DatiAnagrafici");
    if let Some(partita_iva) = &buyer.partita_iva {
        x.open("IdFiscaleIVA");
        x.leaf("IdPaese", "IT");
        x.leaf("IdCodice", partita_iva);
        x.close("IdFiscaleIVA");
    }
    if let Some(cf) = &buyer.codice_fiscale {
        x.leaf("CodiceFiscale", cf);
    }
    x.open("Anagrafica");
    match &buyer.name {
        BuyerName::Person { nome, cognome } => {
            x.leaf("Nome", &latin(nome, 60));
            x.leaf("Cognome", &latin(cognome, 60));
        }
        BuyerName::Business { denominazione } => {
            x.leaf("Denominazione", &latin(denominazione, 80));
        }
    }
    x.close("Anagrafica");
    x.close("DatiAnagrafici");
    if let Some(sede) = &buyer.sede {
        address(x, "Sede", sede);
    }
    x.close("CessionarioCommittente");
}

fn address(x: &mut Xml, element: &str, address: &Address) {
    x.open(element);
    x.leaf("Indirizzo", &latin(&address.indirizzo, 60));
    x.leaf("CAP", &address.cap);
    x.leaf("Comune", &latin(&address.comune, 60));
    if let Some(provincia) = &address.provincia {
        x.leaf("Provincia", provincia);
    }
    x.leaf("Nazione", &address.nazione);
    x.close(element);
}

fn body(x: &mut Xml, document: &Document<'_>) {
    x.open("DatiGenerali");
    x.open("DatiGeneraliDocumento");
    let kind = match document.settles {
        Settles::Sale(_) => DocumentKind::Invoice,
        Settles::Credit(_) => DocumentKind::CreditNote,
    };
    x.leaf("TipoDocumento", kind.as_str());
    x.leaf("Divisa", "EUR");
    x.leaf("Data", &date(document.date));
    x.leaf("Numero", document.number);
    x.leaf("ImportoTotaleDocumento", &amount(document.total));
    x.close("DatiGeneraliDocumento");
    if let Settles::Credit(credited) = &document.settles {
        x.open("DatiFattureCollegate");
        x.leaf("IdDocumento", credited.number);
        x.leaf("Data", &date(credited.date));
        x.close("DatiFattureCollegate");
    }
    x.close("DatiGenerali");

    x.open("DatiBeniServizi");
    for (index, line) in document.lines.iter().enumerate() {
        x.open("DettaglioLinee");
        x.leaf("NumeroLinea", &(index + 1).to_string());
        x.leaf("Descrizione", &latin(&line.description, 1000));
        x.leaf("Quantita", &format!("{}.00", line.quantity));
        x.leaf("PrezzoUnitario", &amount(line.unit_price));
        x.leaf("PrezzoTotale", &amount(line.total));
        x.leaf("AliquotaIVA", &rate(line.vat_rate_basis_points));
        x.close("DettaglioLinee");
    }
    for summary in document.vat_summary {
        x.open("DatiRiepilogo");
        x.leaf("AliquotaIVA", &rate(summary.vat_rate_basis_points));
        x.leaf("ImponibileImporto", &amount(summary.taxable));
        x.leaf("Imposta", &amount(summary.tax));
        // I: VAT due at once (not split payment, not deferred).
        x.leaf("EsigibilitaIVA", "I");
        x.close("DatiRiepilogo");
    }
    x.close("DatiBeniServizi");

    if let Settles::Sale(payment) = document.settles {
        x.open("DatiPagamento");
        // TP02: paid in full at once.
        x.leaf("CondizioniPagamento", "TP02");
        x.open("DettaglioPagamento");
        x.leaf("ModalitaPagamento", payment.code());
        x.leaf("ImportoPagamento", &amount(document.total));
        x.close("DettaglioPagamento");
        x.close("DatiPagamento");
    }
}

/// "2026-12-01".
fn date(date: chrono::NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// "1234.50": two decimals, a point, no thousands separator.
fn amount(money: Money) -> String {
    money.to_string()
}

/// "22.00" for 2200 basis points.
fn rate(basis_points: i32) -> String {
    format!("{:.2}", Decimal::new(basis_points as i64, 2))
}

/// `text` as the schema's Latin text types accept it: Latin-1 only, one line, trimmed,
/// at most `max` characters, never empty.
pub fn latin(text: &str, max: usize) -> String {
    let mapped = text.chars().map(|c| match c {
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{2032}' => '\'',
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{2033}' => '"',
        '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
        '\u{2026}' => '.',
        c if c.is_whitespace() || c.is_control() => ' ',
        c if (c as u32) <= 0xFF => c,
        _ => '?',
    });
    let mut out = String::new();
    for c in mapped {
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    let mut out: String = out.trim_end().chars().take(max).collect();
    out.truncate(out.trim_end().len());
    if out.is_empty() {
        out.push('-');
    }
    out
}

/// A writer to memory: its writes cannot fail.
struct Xml(Writer<Vec<u8>>);

impl Xml {
    fn event(&mut self, event: Event<'_>) {
        self.0
            .write_event(event)
            .expect("writing to memory does not fail");
    }

    fn open(&mut self, name: &str) {
        self.event(Event::Start(BytesStart::new(name)));
    }

    fn close(&mut self, name: &str) {
        self.event(Event::End(BytesEnd::new(name)));
    }

    fn leaf(&mut self, name: &str, text: &str) {
        self.open(name);
        self.event(Event::Text(BytesText::new(text)));
        self.close(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progressives_are_five_base_36_characters() {
        assert_eq!(progressivo_invio(1), "00001");
        assert_eq!(progressivo_invio(36), "00010");
        assert_eq!(progressivo_invio(36_i64.pow(5) - 1), "ZZZZZ");
        assert_eq!(file_name("01234567897", "0000A"), "IT01234567897_0000A.xml");
    }

    #[test]
    fn a_resent_file_changes_only_the_transmission_and_the_buyer() {
        use crate::invoices::document::{vat_summary, Line, PaymentMode, Seller};
        let seller = Seller {
            denominazione: "Rossi & Figli S.r.l.".into(),
            partita_iva: "00743110157".into(),
            codice_fiscale: None,
            regime_fiscale: "RF01".into(),
            sede: Address {
                indirizzo: "Via Po 1".into(),
                cap: "00100".into(),
                comune: "Roma".into(),
                provincia: Some("RM".into()),
                nazione: "IT".into(),
            },
            rea: None,
        };
        let buyer = |cap: &str, code: Option<&str>| Buyer {
            name: BuyerName::Person {
                nome: "Maria".into(),
                cognome: "D'Angelo & C.".into(),
            },
            partita_iva: None,
            codice_fiscale: Some("RSSMRA80A01H501U".into()),
            sede: Some(Address {
                cap: cap.into(),
                ..seller.sede.clone()
            }),
            codice_destinatario: code.map(str::to_owned),
            pec: None,
        };
        let lines = [Line {
            description: "Rinnovo <firma> & CNS".into(),
            quantity: 2,
            unit_price: Money::from_cents(1000),
            total: Money::from_cents(2000),
            vat_rate_basis_points: 2200,
        }];
        let summary = vat_summary(&lines);
        let file = |progressivo: &str, buyer: &Buyer| {
            to_xml(&Document {
                transmitter: "01234567897",
                progressivo_invio: progressivo,
                number: "V2026-000001",
                date: chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
                seller: &seller,
                buyer,
                lines: &lines,
                vat_summary: &summary,
                total: Money::from_cents(2440),
                settles: Settles::Sale(PaymentMode::FromPrepaidBalance),
            })
        };
        let rejected = file("00001", &buyer("0010", None));
        let corrected = buyer("00184", Some("M5UXCR1"));
        let resent = resent_file(&rejected, "01234567897", "00002", &corrected).unwrap();
        assert_eq!(resent, file("00002", &corrected));
        assert!(resent.contains("Rossi &amp; Figli"), "{resent}");
    }

    #[test]
    fn text_is_made_to_fit_the_latin_types() {
        assert_eq!(
            latin("  L’Aquila — “centro”\n\tstorico ", 60),
            "L'Aquila - \"centro\" storico"
        );
        assert_eq!(latin("Città ☃ 東京", 60), "Città ? ??");
        assert_eq!(latin("abcdef", 3), "abc");
        assert_eq!(latin(" \u{0007} ", 10), "-");
    }
}
