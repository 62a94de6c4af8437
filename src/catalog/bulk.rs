//! Many holders at once: a registration officer or a studio pastes (or uploads) the
//! codici fiscali of their clients, sees every device of the brand of each with its
//! renewal status and the coupons proposed, and buys them all in one order. The API and the
//! shop's page both go through [`HolderList::parse`] and [`lookup_many_as`].

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::catalog::{self, Product, RequestedLine};
use crate::db::DbConnection;
use crate::lookup::{
    view_device, Asker, CertificateView, DeviceView, Eligibility, LookupError, RenewalPolicy,
    RenewalStatus,
};
use crate::rate_limit;
use crate::registry::{self, CodiceFiscale, CodiceFiscaleError, Holder};

/// The most holders one list may name: a studio's or an office's clients, and an answer
/// that still comes back in a second or two.
pub const MAX_HOLDERS: usize = 1000;

// Every renewable holder of a full list, with two certificates each, fits one officer's order.
const _: () = assert!(2 * MAX_HOLDERS as u32 <= catalog::OFFICER_MAX_COUPONS);

/// A list of holders to look up: valid codici fiscali, each once, at most
/// [`MAX_HOLDERS`], in the order of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderList(Vec<ListedHolder>);

/// A holder of the list, with the line (from 1) it was first named on. A holder named
/// twice is looked up, counted and shown once: lists pasted from spreadsheets repeat
/// clients, and the repeat is no mistake worth refusing the list for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedHolder {
    pub line: usize,
    pub codice_fiscale: CodiceFiscale,
}

/// A line of the list that is not a codice fiscale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLine {
    /// From 1, blank lines included, as an editor numbers them.
    pub line: usize,
    pub error: CodiceFiscaleError,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HolderListError {
    #[error("the list names no codice fiscale")]
    Empty,
    #[error("the list names {found} holders; at most {max} at once")]
    TooMany { found: usize, max: usize },
    /// Every invalid line, so that the whole list is fixed in one go. Nothing is looked up
    /// (nor counted) while any line is wrong: a half-answered list would be read as whole.
    #[error("{} line(s) are not valid codici fiscali; nothing was looked up", .0.len())]
    InvalidLines(Vec<InvalidLine>),
}

impl HolderList {
    /// Lines of text, one codice fiscale a line, as pasted or as a text or CSV file: blank
    /// lines and spaces are ignored; of a CSV line (`,` or `;` or tab) the first field is
    /// read, and a first line naming the column (`codice_fiscale`, `codice fiscale`, `cf`)
    /// is a header, not a holder.
    pub fn parse(text: &str) -> Result<Self, HolderListError> {
        let entries = text.lines().enumerate().filter_map(|(index, line)| {
            let first_field = line.split([',', ';', '\t']).next().unwrap_or("");
            let field = first_field.trim().trim_matches('"').trim();
            let is_header = index == 0 && is_column_name(field);
            (!field.is_empty() && !is_header).then_some((index + 1, field))
        });
        Self::from_entries(entries)
    }

    /// The codici fiscali of a JSON list: element `i` is line `i + 1`.
    pub fn from_items(items: &[String]) -> Result<Self, HolderListError> {
        let entries = items
            .iter()
            .enumerate()
            .map(|(index, item)| (index + 1, item.as_str()));
        Self::from_entries(entries)
    }

    fn from_entries<'a>(
        entries: impl Iterator<Item = (usize, &'a str)>,
    ) -> Result<Self, HolderListError> {
        let mut holders = Vec::new();
        let mut invalid = Vec::new();
        let mut seen = HashSet::new();
        for (line, text) in entries {
            match CodiceFiscale::parse(text) {
                Ok(codice_fiscale) => {
                    if seen.insert(codice_fiscale.clone()) {
                        holders.push(ListedHolder {
                            line,
                            codice_fiscale,
                        });
                    }
                }
                Err(error) => invalid.push(InvalidLine { line, error }),
            }
        }
        if !invalid.is_empty() {
            return Err(HolderListError::InvalidLines(invalid));
        }
        if holders.is_empty() {
            return Err(HolderListError::Empty);
        }
        if holders.len() > MAX_HOLDERS {
            return Err(HolderListError::TooMany {
                found: holders.len(),
                max: MAX_HOLDERS,
            });
        }
        Ok(Self(holders))
    }

    pub fn holders(&self) -> &[ListedHolder] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn is_column_name(field: &str) -> bool {
    let name: String = field
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    matches!(name.as_str(), "codicefiscale" | "cf")
}

/// The answer for the whole list.
#[derive(Debug, Clone)]
pub struct BulkLookup {
    pub as_of: DateTime<Utc>,
    /// In the order of the list.
    pub holders: Vec<HolderResult>,
    /// The brand's products the proposals chose from, to name them.
    pub products: Vec<Product>,
    /// Every device's proposed coupons summed per product, in catalog order: the lines of
    /// the one order that buys them all.
    pub proposed: Vec<RequestedLine>,
}

/// One holder of the list.
#[derive(Debug, Clone)]
pub struct HolderResult {
    pub line: usize,
    pub codice_fiscale: CodiceFiscale,
    /// `None`: no holder with a device of the brand has this codice fiscale (whether
    /// someone holds it elsewhere is not told, as for a single lookup).
    pub holder: Option<Holder>,
    pub devices: Vec<DeviceResult>,
}

/// A device of the brand and the coupons that renew its certificates renewable now.
#[derive(Debug, Clone)]
pub struct DeviceResult {
    pub view: DeviceView,
    /// Empty when nothing on the device is renewable now, or the shop sells no coupon that
    /// fits ([`DeviceResult::no_fitting_product`]).
    pub proposed: Vec<RequestedLine>,
}

impl DeviceResult {
    /// Something is renewable now and yet no coupon of the shop renews it.
    pub fn no_fitting_product(&self) -> bool {
        !self.view.renew_together.is_empty() && self.proposed.is_empty()
    }
}

/// Looks up every holder of the list for `caller`, within the lookup limits: each holder
/// counts as one lookup, all of them in one go. A list larger than what the caller's
/// limits leave is refused whole (nothing counted, nothing shown): half an answer would
/// pass for the whole one.
pub fn lookup_many_as(
    conn: &mut DbConnection,
    asker: &Asker,
    list: &HolderList,
    brand: &str,
    now: DateTime<Utc>,
) -> Result<BulkLookup, LookupError> {
    let counted = asker.limits.of(&asker.caller);
    let holders = list.len() as i64;
    // A list over a whole window's allowance never fits, however long one waits: said as
    // such rather than as "wait and retry".
    if let Some((limit, _)) = counted.iter().find(|(l, _)| l.max_hits < holders) {
        return Err(LookupError::ListOverAllowance {
            holders: list.len(),
            allowance: limit.max_hits,
            retry_after_seconds: limit.window.num_seconds(),
        });
    }
    let counted: Vec<_> = counted.iter().map(|(l, s)| (*l, s.as_str())).collect();
    if let Err(retry_after_seconds) =
        rate_limit::hit_all_times(conn, &counted, holders, now).map_err(anyhow::Error::from)?
    {
        return Err(LookupError::TooManyLookups {
            retry_after_seconds,
        });
    }
    lookup_many(conn, &asker.policy, list, brand, now)
}

/// Every holder of the list and their devices of `brand`, each device's certificates
/// with their renewal status, and the coupons proposed: a handful of queries for the
/// whole list (holders, devices and certificates joined; open renewals; renewal counts),
/// not a round trip per holder.
pub fn lookup_many(
    conn: &mut DbConnection,
    policy: &RenewalPolicy,
    list: &HolderList,
    brand: &str,
    now: DateTime<Utc>,
) -> Result<BulkLookup, LookupError> {
    let codici: Vec<CodiceFiscale> = list
        .holders()
        .iter()
        .map(|h| h.codice_fiscale.clone())
        .collect();
    let mut found: HashMap<CodiceFiscale, registry::HolderDevices> =
        registry::find_many_holders_devices(conn, &codici, brand)?
            .into_iter()
            // A holder with no device of the brand is, for the brand, no holder at all.
            .filter(|h| !h.devices.is_empty())
            .map(|h| (h.holder.codice_fiscale.clone(), h))
            .collect();
    let certificate_ids: Vec<&str> = found
        .values()
        .flat_map(|h| &h.devices)
        .flat_map(|d| d.certificates.iter().map(|c| c.id.as_str()))
        .collect();
    let open = registry::open_renewals(conn, &certificate_ids).map_err(anyhow::Error::from)?;
    let device_ids: Vec<&str> = found
        .values()
        .flat_map(|h| h.devices.iter().map(|d| d.id.as_str()))
        .collect();
    let counts = registry::renewal_counts(conn, &device_ids)?;
    let products = catalog::proposable(conn, brand)?;

    let mut holders = Vec::with_capacity(list.len());
    for listed in list.holders() {
        let (holder, devices) = match found.remove(&listed.codice_fiscale) {
            Some(registry::HolderDevices { holder, devices }) => (Some(holder), devices),
            None => (None, Vec::new()),
        };
        let devices = devices
            .into_iter()
            .map(|device| {
                let view = view_device(device, &open, &counts, policy, now);
                // Nothing to renew, or nothing that fits: no proposal for this device.
                let proposed = catalog::propose(&products, &view).unwrap_or_default();
                DeviceResult { view, proposed }
            })
            .collect();
        holders.push(HolderResult {
            line: listed.line,
            codice_fiscale: listed.codice_fiscale.clone(),
            holder,
            devices,
        });
    }
    let proposed = catalog::summed(
        &products,
        holders
            .iter()
            .flat_map(|h| &h.devices)
            .flat_map(|d| &d.proposed),
    );
    Ok(BulkLookup {
        as_of: now,
        holders,
        products,
        proposed,
    })
}

/// The columns of [`BulkLookup::csv`], in the order written.
pub const CSV_HEADER: [&str; 11] = [
    "riga",
    "codice_fiscale",
    "titolare",
    "dispositivo",
    "tipo_dispositivo",
    "certificato",
    "scadenza",
    "stato",
    "motivo",
    "coupon_proposto",
    "prezzo_coupon",
];

impl BulkLookup {
    /// How many holders of the list were found.
    pub fn found(&self) -> usize {
        self.holders.iter().filter(|h| h.holder.is_some()).count()
    }

    /// How many coupons the one order of the proposals buys.
    pub fn coupons(&self) -> u32 {
        self.proposed.iter().map(|l| l.quantity).sum()
    }

    /// The answer as a spreadsheet file, for the API and the page alike: one row per
    /// certificate (a holder not found, or a device with no certificate, gets one row of
    /// its own). Made like the coupon export, for a spreadsheet opened in Italy: `;`
    /// between columns, dates as dd/mm/yyyy, a UTF-8 byte-order mark. A coupon that renews
    /// both certificates of a device is named on both rows, its price on the first only,
    /// so that the column adds up to the order.
    pub fn csv(&self) -> anyhow::Result<Vec<u8>> {
        let mut file = b"\xEF\xBB\xBF".to_vec();
        {
            let mut writer = csv::WriterBuilder::new()
                .delimiter(b';')
                .from_writer(&mut file);
            writer.write_record(CSV_HEADER)?;
            for row in self.rows() {
                writer.write_record(row.map(crate::spreadsheet::inert))?;
            }
            writer.flush()?;
        }
        Ok(file)
    }

    fn rows(&self) -> Vec<[String; 11]> {
        let day = |at: DateTime<Utc>| at.format("%d/%m/%Y").to_string();
        let mut rows = Vec::new();
        for holder in &self.holders {
            let line = holder.line.to_string();
            let codice_fiscale = holder.codice_fiscale.as_str().to_owned();
            let Some(found) = &holder.holder else {
                rows.push([
                    line,
                    codice_fiscale,
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    "titolare_sconosciuto".into(),
                    "nessun dispositivo di questo negozio".into(),
                    String::new(),
                    String::new(),
                ]);
                continue;
            };
            let name = format!("{} {}", found.given_name, found.surname);
            for device in &holder.devices {
                let mut priced = HashSet::new();
                let cells = |certificate: Option<&CertificateView>,
                             priced: &mut HashSet<String>| {
                    let (status, reason) = match certificate {
                        Some(c) => status_cells(&c.renewal),
                        None => ("nessun_certificato", String::new()),
                    };
                    let coupon = certificate
                        .and_then(|c| self.coupon_for(device, c.certificate.kind))
                        .filter(|_| certificate.is_some_and(|c| c.renewal.is_renewable()));
                    let reason = if device.no_fitting_product()
                        && certificate.is_some_and(|c| c.renewal.is_renewable())
                    {
                        "nessun coupon del negozio lo rinnova".to_owned()
                    } else {
                        reason
                    };
                    let price = coupon
                        .filter(|p| priced.insert(p.id.clone()))
                        .map(|p| p.net_price.to_string().replace('.', ","))
                        .unwrap_or_default();
                    [
                        line.clone(),
                        codice_fiscale.clone(),
                        name.clone(),
                        device.view.device.serial_number.clone(),
                        device.view.device.kind.as_str().to_owned(),
                        certificate
                            .map(|c| c.certificate.kind.as_str().to_owned())
                            .unwrap_or_default(),
                        certificate
                            .map(|c| day(c.certificate.not_after))
                            .unwrap_or_default(),
                        status.to_owned(),
                        reason,
                        coupon.map(|p| p.code.clone()).unwrap_or_default(),
                        price,
                    ]
                };
                if device.view.certificates.is_empty() {
                    rows.push(cells(None, &mut priced));
                }
                for certificate in &device.view.certificates {
                    rows.push(cells(Some(certificate), &mut priced));
                }
            }
        }
        rows
    }

    /// The proposed product of the device that renews certificates of `kind`.
    pub fn coupon_for(
        &self,
        device: &DeviceResult,
        kind: crate::registry::CertificateKind,
    ) -> Option<&Product> {
        device.proposed.iter().find_map(|line| {
            self.products
                .iter()
                .find(|p| p.id == line.product && p.covers.kinds().contains(&kind))
        })
    }
}

/// The status column (a stable word) and the reason column (why, or from when).
fn status_cells(renewal: &RenewalStatus) -> (&'static str, String) {
    let day = |at: DateTime<Utc>| at.format("%d/%m/%Y").to_string();
    match renewal {
        RenewalStatus::Eligibility(Eligibility::Renewable { days_left, .. }) => {
            ("rinnovabile", format!("scade tra {days_left} giorni"))
        }
        RenewalStatus::Eligibility(Eligibility::NotYetRenewable { window_opens_at }) => (
            "non_ancora_rinnovabile",
            format!("rinnovabile dal {}", day(*window_opens_at)),
        ),
        RenewalStatus::Eligibility(Eligibility::Expired { .. }) => (
            "scaduto",
            "un certificato scaduto non si rinnova".to_owned(),
        ),
        RenewalStatus::Revoked => ("revocato", "un certificato revocato non si rinnova".into()),
        RenewalStatus::Superseded => ("non_rinnovabile", "sostituito dal suo rinnovo".into()),
        RenewalStatus::DeviceRenewedEnough { count } => (
            "non_rinnovabile",
            format!(
                "dispositivo già rinnovato {count} volte, il massimo: serve un dispositivo nuovo"
            ),
        ),
        RenewalStatus::DeviceEndOfLife { end_of_life, years } => (
            "non_rinnovabile",
            format!(
                "dispositivo a fine vita dal {} ({years} anni dalla prima attivazione)",
                day(*end_of_life)
            ),
        ),
        RenewalStatus::RenewalPending { .. } => ("rinnovo_in_corso", String::new()),
        RenewalStatus::ReadyToInstall { .. } => ("da_installare", String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROSSI: &str = "RSSMRA80A01H501U";
    const BIANCHI: &str = "BNCLRA85T52F205E";

    fn lines(list: &HolderList) -> Vec<(usize, &str)> {
        list.holders()
            .iter()
            .map(|h| (h.line, h.codice_fiscale.as_str()))
            .collect()
    }

    #[test]
    fn blank_lines_spaces_headers_and_repeats_are_tolerated() {
        let text = format!(
            "Codice fiscale;Nome\n\n  {} ;Maria Rossi\n{}\r\n\n{}\n",
            "rss mra 80a01 h501u", BIANCHI, ROSSI
        );
        let list = HolderList::parse(&text).unwrap();
        assert_eq!(lines(&list), [(3, ROSSI), (4, BIANCHI)]);
    }

    #[test]
    fn every_invalid_line_is_named_with_its_rule() {
        let text = format!("{ROSSI}\nRSSMRA80A01H501\n\n{BIANCHI}\nRSSMRA80A01H501A\n");
        let Err(HolderListError::InvalidLines(invalid)) = HolderList::parse(&text) else {
            panic!("the list must be refused");
        };
        let named: Vec<(usize, &str)> = invalid.iter().map(|i| (i.line, i.error.rule())).collect();
        assert_eq!(named, [(2, "length"), (5, "check_character")]);
    }

    #[test]
    fn an_empty_or_too_long_list_is_refused() {
        assert_eq!(HolderList::parse(" \n\n"), Err(HolderListError::Empty));
        assert_eq!(HolderList::from_items(&[]), Err(HolderListError::Empty));
        let many: Vec<String> = (0..=MAX_HOLDERS).map(codice_fiscale).collect();
        assert_eq!(
            HolderList::from_items(&many),
            Err(HolderListError::TooMany {
                found: MAX_HOLDERS + 1,
                max: MAX_HOLDERS
            })
        );
        assert_eq!(
            HolderList::from_items(&many[..MAX_HOLDERS]).unwrap().len(),
            MAX_HOLDERS
        );
    }

    /// A valid codice fiscale per index (distinct up to 26^6).
    fn codice_fiscale(index: usize) -> String {
        let mut code: Vec<u8> = (0..6)
            .map(|i| b'A' + (index / 26usize.pow(i) % 26) as u8)
            .collect();
        code.extend(b"80A01H501");
        code.push(crate::registry::codice_fiscale::check_character(&code));
        String::from_utf8(code).unwrap()
    }
}
