//! What the courtesy copy shows, read back from the stored FatturaPA file rather than from
//! the order or the invoice row: the copy can then never say other than the legal file,
//! whoever wrote the file (an invoice, a credit note, a corrected file sent again).

use chrono::NaiveDate;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::Reader;

use crate::invoices::document::Address;
use crate::invoices::DocumentKind;
use crate::money::Money;

/// A party of the document (CedentePrestatore or CessionarioCommittente).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Party {
    /// Denominazione, or Nome and Cognome.
    pub name: String,
    pub partita_iva: Option<String>,
    pub codice_fiscale: Option<String>,
    /// Empty only in a damaged file: every FatturaPA party has its Sede.
    pub sede: Address,
    /// The seller's RegimeFiscale.
    pub regime_fiscale: Option<String>,
    /// The seller's REA entry, as "ufficio numero".
    pub rea: Option<String>,
}

/// A document line (DettaglioLinee).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub description: String,
    /// As the file writes it ("2.00").
    pub quantity: String,
    pub unit_price: Money,
    pub total: Money,
    /// As the file writes it ("22.00").
    pub vat_rate: String,
}

/// One VAT rate's totals (DatiRiepilogo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VatLine {
    pub vat_rate: String,
    pub taxable: Money,
    pub tax: Money,
}

/// A payment (DettaglioPagamento).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// ModalitaPagamento, MP01 to MP23.
    pub mode: String,
    pub amount: Money,
}

/// A document a credit note refers to (DatiFattureCollegate).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkedDocument {
    pub number: String,
    pub date: Option<NaiveDate>,
}

/// The document as the courtesy copy shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentView {
    pub kind: DocumentKind,
    pub number: String,
    pub date: NaiveDate,
    pub seller: Party,
    pub buyer: Party,
    /// How the SdI reaches the buyer: their codice destinatario, or their PEC address.
    pub codice_destinatario: Option<String>,
    pub pec_destinatario: Option<String>,
    pub credited: Vec<LinkedDocument>,
    pub lines: Vec<Line>,
    pub vat: Vec<VatLine>,
    pub payments: Vec<Payment>,
    pub total: Money,
}

/// Files are a few kilobytes deep and a dozen levels; the limit keeps a damaged file from
/// growing the path without end.
const MAX_DEPTH: usize = 32;

/// Reads the view out of a FatturaPA file (one body: ours never hold a batch). A file that
/// is not well-formed or lacks what every FatturaPA file has is a damaged row: an error.
pub fn read(xml: &str) -> anyhow::Result<DocumentView> {
    let mut builder = Builder::default();
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    loop {
        match reader.read_event()? {
            Event::Start(start) => {
                anyhow::ensure!(path.len() < MAX_DEPTH, "elements nested too deeply");
                let name = start.local_name().as_ref().to_owned();
                builder.open(&name);
                path.push(name);
                text.clear();
            }
            Event::End(_) => {
                // The root's name and namespace prefix are left out of the paths.
                let joined = path.get(1..).unwrap_or_default().join("/");
                builder.leaf(&joined, text.trim())?;
                text.clear();
                path.pop();
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(reference) => match reference.resolve_char_ref()? {
                Some(c) => text.push(c),
                None => text.push_str(
                    resolve_predefined_entity(&reference)
                        .ok_or_else(|| anyhow::anyhow!("unknown entity &{};", &*reference))?,
                ),
            },
            Event::DocType(_) => anyhow::bail!("a FatturaPA file has no DOCTYPE"),
            Event::Eof => break,
            Event::Empty(_) | Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    builder.finish()
}

#[derive(Default)]
struct Builder {
    kind: Option<String>,
    number: Option<String>,
    date: Option<String>,
    total: Option<String>,
    seller: Party,
    buyer: Party,
    rea_ufficio: Option<String>,
    rea_numero: Option<String>,
    seller_name: Names,
    buyer_name: Names,
    codice_destinatario: Option<String>,
    pec_destinatario: Option<String>,
    credited: Vec<LinkedDocument>,
    lines: Vec<PartialLine>,
    vat: Vec<PartialVat>,
    payments: Vec<PartialPayment>,
}

/// Denominazione, or Nome and Cognome, as read.
#[derive(Default)]
struct Names {
    denominazione: Option<String>,
    nome: Option<String>,
    cognome: Option<String>,
}

impl Names {
    fn full(self) -> Option<String> {
        match self {
            Names {
                denominazione: Some(name),
                ..
            } => Some(name),
            Names {
                nome: Some(nome),
                cognome: Some(cognome),
                ..
            } => Some(format!("{nome} {cognome}")),
            _ => None,
        }
    }
}

#[derive(Default)]
struct PartialLine {
    description: String,
    quantity: Option<String>,
    unit_price: Option<String>,
    total: Option<String>,
    vat_rate: Option<String>,
}

#[derive(Default)]
struct PartialVat {
    vat_rate: Option<String>,
    taxable: Option<String>,
    tax: Option<String>,
}

#[derive(Default)]
struct PartialPayment {
    mode: Option<String>,
    amount: Option<String>,
}

const HEADER: &str = "FatturaElettronicaHeader/";
const SELLER: &str = "FatturaElettronicaHeader/CedentePrestatore/";
const BUYER: &str = "FatturaElettronicaHeader/CessionarioCommittente/";
const GENERAL: &str = "FatturaElettronicaBody/DatiGenerali/";
const GOODS: &str = "FatturaElettronicaBody/DatiBeniServizi/";
const PAYMENT: &str = "FatturaElettronicaBody/DatiPagamento/DettaglioPagamento/";

impl Builder {
    /// A repeated group starts: its leaves that follow fill the new entry.
    fn open(&mut self, name: &str) {
        match name {
            "DettaglioLinee" => self.lines.push(PartialLine::default()),
            "DatiRiepilogo" => self.vat.push(PartialVat::default()),
            "DettaglioPagamento" => self.payments.push(PartialPayment::default()),
            "DatiFattureCollegate" => self.credited.push(LinkedDocument::default()),
            _ => {}
        }
    }

    fn leaf(&mut self, path: &str, text: &str) -> anyhow::Result<()> {
        let value = || Some(text.to_owned());
        if let Some(rest) = path.strip_prefix(SELLER) {
            party_leaf(&mut self.seller, &mut self.seller_name, rest, text);
            match rest {
                "DatiAnagrafici/RegimeFiscale" => self.seller.regime_fiscale = value(),
                "IscrizioneREA/Ufficio" => self.rea_ufficio = value(),
                "IscrizioneREA/NumeroREA" => self.rea_numero = value(),
                _ => {}
            }
        } else if let Some(rest) = path.strip_prefix(BUYER) {
            party_leaf(&mut self.buyer, &mut self.buyer_name, rest, text);
        } else if let Some(rest) = path.strip_prefix(HEADER) {
            match rest {
                "DatiTrasmissione/CodiceDestinatario" => self.codice_destinatario = value(),
                "DatiTrasmissione/PECDestinatario" => self.pec_destinatario = value(),
                _ => {}
            }
        } else if let Some(rest) = path.strip_prefix(GENERAL) {
            match rest {
                "DatiGeneraliDocumento/TipoDocumento" => self.kind = value(),
                "DatiGeneraliDocumento/Numero" => self.number = value(),
                "DatiGeneraliDocumento/Data" => self.date = value(),
                "DatiGeneraliDocumento/ImportoTotaleDocumento" => self.total = value(),
                "DatiFattureCollegate/IdDocumento" => {
                    if let Some(linked) = self.credited.last_mut() {
                        linked.number = text.to_owned();
                    }
                }
                "DatiFattureCollegate/Data" => {
                    if let Some(linked) = self.credited.last_mut() {
                        linked.date = Some(date(text)?);
                    }
                }
                _ => {}
            }
        } else if let Some(rest) = path.strip_prefix(GOODS) {
            if let Some(field) = rest.strip_prefix("DettaglioLinee/") {
                if let Some(line) = self.lines.last_mut() {
                    match field {
                        "Descrizione" => line.description = text.to_owned(),
                        "Quantita" => line.quantity = value(),
                        "PrezzoUnitario" => line.unit_price = value(),
                        "PrezzoTotale" => line.total = value(),
                        "AliquotaIVA" => line.vat_rate = value(),
                        _ => {}
                    }
                }
            } else if let Some(field) = rest.strip_prefix("DatiRiepilogo/") {
                if let Some(vat) = self.vat.last_mut() {
                    match field {
                        "AliquotaIVA" => vat.vat_rate = value(),
                        "ImponibileImporto" => vat.taxable = value(),
                        "Imposta" => vat.tax = value(),
                        _ => {}
                    }
                }
            }
        } else if let Some(field) = path.strip_prefix(PAYMENT) {
            if let Some(payment) = self.payments.last_mut() {
                match field {
                    "ModalitaPagamento" => payment.mode = value(),
                    "ImportoPagamento" => payment.amount = value(),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<DocumentView> {
        let kind = required(self.kind, "TipoDocumento")?;
        let mut seller = self.seller;
        seller.name = required(self.seller_name.full(), "the seller's name")?;
        seller.rea = match (self.rea_ufficio, self.rea_numero) {
            (Some(ufficio), Some(numero)) => Some(format!("{ufficio} {numero}")),
            _ => None,
        };
        let mut buyer = self.buyer;
        buyer.name = required(self.buyer_name.full(), "the buyer's name")?;
        let lines = self
            .lines
            .into_iter()
            .map(|line| {
                Ok(Line {
                    description: line.description,
                    quantity: required(line.quantity, "Quantita")?,
                    unit_price: money(line.unit_price, "PrezzoUnitario")?,
                    total: money(line.total, "PrezzoTotale")?,
                    vat_rate: required(line.vat_rate, "AliquotaIVA")?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let vat = self
            .vat
            .into_iter()
            .map(|vat| {
                Ok(VatLine {
                    vat_rate: required(vat.vat_rate, "AliquotaIVA")?,
                    taxable: money(vat.taxable, "ImponibileImporto")?,
                    tax: money(vat.tax, "Imposta")?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let payments = self
            .payments
            .into_iter()
            .map(|payment| {
                Ok(Payment {
                    mode: required(payment.mode, "ModalitaPagamento")?,
                    amount: money(payment.amount, "ImportoPagamento")?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(DocumentView {
            kind: DocumentKind::parse(&kind)
                .ok_or_else(|| anyhow::anyhow!("TipoDocumento {kind} is neither TD01 nor TD04"))?,
            number: required(self.number, "Numero")?,
            date: date(&required(self.date, "Data")?)?,
            seller,
            buyer,
            codice_destinatario: self.codice_destinatario,
            pec_destinatario: self.pec_destinatario,
            credited: self.credited,
            lines,
            vat,
            payments,
            total: money(self.total, "ImportoTotaleDocumento")?,
        })
    }
}

/// A leaf of a party's data, the same for the seller and the buyer.
fn party_leaf(party: &mut Party, names: &mut Names, path: &str, text: &str) {
    let value = || Some(text.to_owned());
    match path {
        "DatiAnagrafici/IdFiscaleIVA/IdCodice" => party.partita_iva = value(),
        "DatiAnagrafici/CodiceFiscale" => party.codice_fiscale = value(),
        "DatiAnagrafici/Anagrafica/Denominazione" => names.denominazione = value(),
        "DatiAnagrafici/Anagrafica/Nome" => names.nome = value(),
        "DatiAnagrafici/Anagrafica/Cognome" => names.cognome = value(),
        "Sede/Indirizzo" => party.sede.indirizzo = text.to_owned(),
        "Sede/CAP" => party.sede.cap = text.to_owned(),
        "Sede/Comune" => party.sede.comune = text.to_owned(),
        "Sede/Provincia" => party.sede.provincia = value(),
        "Sede/Nazione" => party.sede.nazione = text.to_owned(),
        _ => {}
    }
}

fn required(value: Option<String>, what: &str) -> anyhow::Result<String> {
    value.ok_or_else(|| anyhow::anyhow!("the file has no {what}"))
}

fn money(value: Option<String>, what: &str) -> anyhow::Result<Money> {
    let text = required(value, what)?;
    Money::parse(&text).map_err(|e| anyhow::anyhow!("{what} '{text}': {e}"))
}

fn date(text: &str) -> anyhow::Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| anyhow::anyhow!("date '{text}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invoices::document::{
        vat_summary, Address, Buyer, BuyerName, Document, Line as InvoiceLine, PaymentMode, Seller,
        Settles,
    };
    use crate::invoices::fatturapa;

    fn address(comune: &str) -> Address {
        Address {
            indirizzo: "Via Roma 1".into(),
            cap: "00100".into(),
            comune: comune.into(),
            provincia: Some("RM".into()),
            nazione: "IT".into(),
        }
    }

    #[test]
    fn the_view_says_what_the_file_says() {
        let seller = Seller {
            denominazione: "Visura S.p.A.".into(),
            partita_iva: "01234567897".into(),
            codice_fiscale: None,
            regime_fiscale: "RF01".into(),
            sede: address("Roma"),
            rea: None,
        };
        let buyer = Buyer {
            name: BuyerName::Person {
                nome: "Niccolò".into(),
                cognome: "D'Amico & Figli".into(),
            },
            partita_iva: None,
            codice_fiscale: Some("DMCNCL80A01H501U".into()),
            sede: Some(address("Forlì")),
            codice_destinatario: None,
            pec: None,
        };
        let lines = [InvoiceLine {
            description: "Rinnovo <firma> digitale".into(),
            quantity: 2,
            unit_price: Money::from_cents(2600),
            total: Money::from_cents(5200),
            vat_rate_basis_points: 2200,
        }];
        let summary = vat_summary(&lines);
        let xml = fatturapa::to_xml(&Document {
            transmitter: "01234567897",
            progressivo_invio: "00001",
            number: "VIS2026-000001",
            date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            seller: &seller,
            buyer: &buyer,
            lines: &lines,
            vat_summary: &summary,
            total: Money::from_cents(6344),
            settles: Settles::Sale(PaymentMode::BankTransfer),
        });
        let view = read(&xml).unwrap();
        assert_eq!(view.kind, DocumentKind::Invoice);
        assert_eq!(view.number, "VIS2026-000001");
        assert_eq!(view.seller.name, "Visura S.p.A.");
        assert_eq!(view.buyer.name, "Niccolò D'Amico & Figli");
        assert_eq!(view.buyer.sede.comune, "Forlì");
        assert_eq!(view.codice_destinatario.as_deref(), Some("0000000"));
        assert_eq!(view.lines[0].description, "Rinnovo <firma> digitale");
        assert_eq!(view.lines[0].quantity, "2.00");
        assert_eq!(view.vat[0].tax, Money::from_cents(1144));
        assert_eq!(view.payments[0].mode, "MP05");
        assert_eq!(view.total, Money::from_cents(6344));
        assert!(view.credited.is_empty());
    }

    #[test]
    fn a_file_without_its_number_is_refused() {
        let xml =
            "<p:FatturaElettronica xmlns:p=\"x\"><FatturaElettronicaBody/></p:FatturaElettronica>";
        assert!(read(xml).is_err());
        assert!(read("<not xml").is_err());
    }
}
