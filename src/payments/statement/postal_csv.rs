//! The postal CSV: our own layout, for payments received on a postal current account
//! (bollettini, postal transfers), as an operator exports or retypes them from the post
//! office's reports.
//!
//! - UTF-8 text (a byte order mark is tolerated), one record per line, fields separated
//!   by `;`. A field may be quoted with `"` (a quote inside is doubled: `""`); a quoted
//!   field may hold `;` and line breaks.
//! - The first line is the header, exactly these columns in this order (letter case and
//!   spaces around the names do not matter):
//!   `conto;data_contabile;data_valuta;importo;tipo;riferimento;causale;versante`
//! - Every other line is one operation with exactly those eight fields:
//!   - `conto`: the postal account credited (`000012345678`), or its IBAN; letters and
//!     digits (spaces are removed, letters uppercased). Required.
//!   - `data_contabile`: the booking date, `dd/mm/yyyy` or `yyyy-mm-dd`. Required.
//!   - `data_valuta`: the value date, same forms; may be empty.
//!   - `importo`: the amount, positive, in euro, at most two decimals, no sign or
//!     currency symbol. The decimal separator is a comma (`31,72`; then dots may only
//!     separate thousands, in groups of three: `1.234,56`) or a dot (`31.72`, with no
//!     thousands separator). `1.234` or `1,234.56` are ambiguous and refused, never
//!     guessed. `31` means 31,00.
//!   - `tipo`: `accredito` (a payment received), `storno` (a payment received and then
//!     taken back, such as a returned cheque) or `addebito` (money out: read, checked and
//!     ignored). Letter case does not matter.
//!   - `riferimento`: the post office's id of the operation; may be empty.
//!   - `causale`: the payment reason, where the payer wrote the RF code; may be empty.
//!   - `versante`: who paid; may be empty.
//! - Blank lines are skipped. Any other bad line refuses the whole file, naming the line
//!   and the column.

use chrono::NaiveDate;

use super::{
    EntryDirection, Failing, Failure, Head, Source, StatementEntry, StatementError,
    StatementFormat, StatementPart,
};
use crate::money::Money;

const HEADER: [&str; 8] = [
    "conto",
    "data_contabile",
    "data_valuta",
    "importo",
    "tipo",
    "riferimento",
    "causale",
    "versante",
];

type Result<T> = std::result::Result<T, StatementError>;

/// Reads the rows one at a time, the entries into `sink`.
pub(super) fn read(source: &dyn Source, sink: &mut dyn FnMut(StatementEntry)) -> Failing<Head> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .has_headers(false)
        .flexible(true)
        .from_reader(source.open()?);
    let mut statements: Vec<StatementPart> = Vec::new();
    let mut ignored = 0;
    let mut header_seen = false;
    for record in reader.records() {
        let record = record.map_err(|error| {
            let line = error.position().map_or(1, |position| position.line());
            StatementError::new(
                "csv_row",
                format!("line {line}"),
                format!("not readable as CSV: {error}"),
            )
        })?;
        let line = record.position().map_or(1, |position| position.line());
        if record.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        if !header_seen {
            check_header(&record, line)?;
            header_seen = true;
            continue;
        }
        let (account, entry) = row(&record, line)?;
        // The rows of one account are one statement, in the order the accounts first
        // appear.
        let statement = match statements
            .iter()
            .position(|s: &StatementPart| s.account == account)
        {
            Some(index) => index,
            None => {
                statements.push(StatementPart {
                    account,
                    location: format!("line {line}"),
                    ignored: 0,
                });
                statements.len() - 1
            }
        };
        match entry {
            Some(mut entry) => {
                entry.statement = statement;
                sink(entry)
            }
            None => {
                ignored += 1;
                statements[statement].ignored += 1;
            }
        }
    }
    if !header_seen {
        return Err(Failure::Statement(StatementError::new(
            "csv_header",
            "line 1",
            format!(
                "the file is empty: a header {} is expected",
                HEADER.join(";")
            ),
        )));
    }
    Ok(Head {
        format: StatementFormat::PostalCsv,
        version: "postal-csv-1".to_owned(),
        message_id: None,
        statements,
        entries: (),
        ignored,
    })
}

fn check_header(record: &csv::StringRecord, line: u64) -> Result<()> {
    let matches = record.len() == HEADER.len()
        && record
            .iter()
            .zip(HEADER)
            .all(|(found, expected)| found.trim().eq_ignore_ascii_case(expected));
    if matches {
        return Ok(());
    }
    Err(StatementError::new(
        "csv_header",
        format!("line {line}"),
        format!(
            "the header must be {} (found {})",
            HEADER.join(";"),
            record.iter().collect::<Vec<_>>().join(";")
        ),
    ))
}

/// One operation: its account, and the entry, `None` for a debit.
fn row(record: &csv::StringRecord, line: u64) -> Result<(String, Option<StatementEntry>)> {
    if record.len() != HEADER.len() {
        return Err(StatementError::new(
            "csv_row",
            format!("line {line}"),
            format!(
                "{} fields instead of {} (a ';' inside the causale needs the field in quotes)",
                record.len(),
                HEADER.len()
            ),
        ));
    }
    let field = |column: usize| record.get(column).unwrap_or_default().trim();
    let error = |column: usize, kind: &'static str, message: String| {
        StatementError::new(
            kind,
            format!("line {line}, column {}", HEADER[column]),
            message,
        )
    };

    let account: String = field(0).chars().filter(|c| !c.is_whitespace()).collect();
    if account.is_empty() {
        return Err(error(
            0,
            "csv_row",
            "the account credited is missing".into(),
        ));
    }
    if !account.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(error(
            0,
            "value",
            format!("'{account}' is not an account number (letters and digits only)"),
        ));
    }
    let booking_date = match field(1) {
        "" => return Err(error(1, "csv_row", "the booking date is missing".into())),
        text => date(text).ok_or_else(|| error(1, "date", not_a_date(text)))?,
    };
    let value_date = match field(2) {
        "" => None,
        text => Some(date(text).ok_or_else(|| error(2, "date", not_a_date(text)))?),
    };
    let amount = amount(field(3)).map_err(|message| error(3, "amount", message))?;
    let direction = match field(4).to_ascii_lowercase().as_str() {
        "accredito" => Some(EntryDirection::Credit),
        "storno" => Some(EntryDirection::Reversal),
        "addebito" => None,
        other => {
            return Err(error(
                4,
                "value",
                format!("'{other}' is not accredito, storno or addebito"),
            ))
        }
    };
    let account = account.to_ascii_uppercase();
    let Some(direction) = direction else {
        return Ok((account, None));
    };
    let optional = |column: usize| Some(field(column).to_owned()).filter(|text| !text.is_empty());
    Ok((
        account.clone(),
        Some(StatementEntry {
            account,
            statement: 0,
            direction,
            amount,
            booking_date,
            value_date,
            bank_reference: optional(5),
            end_to_end_id: None,
            structured_reference: None,
            structured_is_scor: false,
            // The same causale exported on Windows and elsewhere must give the same key.
            remittance_text: field(6).replace("\r\n", "\n"),
            payer_name: optional(7),
            bank_entry: None,
            dedup_key: String::new(),
            location: format!("line {line}"),
        }),
    ))
}

fn not_a_date(text: &str) -> String {
    format!("'{text}' is not a date (dd/mm/yyyy or yyyy-mm-dd)")
}

/// `dd/mm/yyyy` or `yyyy-mm-dd`, with every digit written.
fn date(text: &str) -> Option<NaiveDate> {
    let slashed: Vec<&str> = text.split('/').collect();
    let dashed: Vec<&str> = text.split('-').collect();
    let (day, month, year) = match (slashed.as_slice(), dashed.as_slice()) {
        ([day, month, year], _) => (*day, *month, *year),
        (_, [year, month, day]) => (*day, *month, *year),
        _ => return None,
    };
    let digits = |part: &str, length: usize| {
        (part.len() == length && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u32>().ok())
            .flatten()
    };
    let year = i32::try_from(digits(year, 4)?).ok()?;
    NaiveDate::from_ymd_opt(year, digits(month, 2)?, digits(day, 2)?)
}

/// An Italian or plain decimal amount, converted to the plain form `Money::parse` reads.
/// Anything that could be read two ways is refused: a misread amount would confirm the
/// wrong order, a refused one only costs a retype.
fn amount(text: &str) -> std::result::Result<Money, String> {
    let refuse = |why: &str| Err(format!("'{text}' {why}"));
    if text.is_empty() {
        return refuse("is not an amount: the amount is missing");
    }
    if text.starts_with(['-', '+']) {
        return refuse("has a sign: amounts are positive, the tipo says the direction");
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b',')
    {
        return refuse("is not an amount such as 31,72 or 1.234,56");
    }
    let plain = match text.split_once(',') {
        Some((whole, fraction)) => {
            if fraction.contains([',', '.']) {
                return refuse("is ambiguous: write it as 1.234,56 or 1234.56");
            }
            if fraction.len() > 2 {
                return refuse("has more than two decimals");
            }
            let groups: Vec<&str> = whole.split('.').collect();
            let grouped = groups.len() == 1
                || (matches!(groups[0].len(), 1..=3) && groups[1..].iter().all(|g| g.len() == 3));
            if !grouped {
                return refuse("has dots that are not thousands separators (1.234,56)");
            }
            format!("{}.{fraction}", groups.concat())
        }
        None => {
            if let Some((_, fraction)) = text.split_once('.') {
                if fraction.contains('.') || fraction.len() == 3 {
                    return refuse("is ambiguous (thousands or decimals?): write 1234,00 or 1,234");
                }
                if fraction.len() > 3 {
                    return refuse("has more than two decimals");
                }
            }
            text.to_owned()
        }
    };
    let money = Money::parse(&plain).map_err(|error| format!("'{text}': {error}"))?;
    if !money.is_positive() {
        return refuse("must be greater than zero");
    }
    Ok(money)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_one_way_or_refused() {
        let cents = |text: &str| amount(text).map(Money::cents);
        assert_eq!(cents("31,72"), Ok(3172));
        assert_eq!(cents("31.72"), Ok(3172));
        assert_eq!(cents("31,7"), Ok(3170));
        assert_eq!(cents("31"), Ok(3100));
        assert_eq!(cents("1.234,56"), Ok(123456));
        assert_eq!(cents("1.234.567,00"), Ok(123456700));
        assert_eq!(cents("1234,56"), Ok(123456));
        for refused in [
            "",
            "0",
            "0,00",
            "-31,72",
            "+31,72",
            "1.234",
            "1,234.56",
            "1.23,45",
            "12.3456",
            "31,725",
            "31.725",
            "1.2.3",
            "€ 31,72",
            "31,72 EUR",
            "1 234,56",
            "1e3",
            ",5",
            "5,",
            "1.234.56",
            "12.34,56",
        ] {
            assert!(amount(refused).is_err(), "{refused:?} should be refused");
        }
    }

    #[test]
    fn dates_in_both_forms() {
        let expected = NaiveDate::from_ymd_opt(2024, 3, 5);
        assert_eq!(date("05/03/2024"), expected);
        assert_eq!(date("2024-03-05"), expected);
        for refused in [
            "5/3/2024",
            "2024/03/05",
            "05-03-2024",
            "31/02/2024",
            "05/03/24",
            "",
        ] {
            assert_eq!(date(refused), None, "{refused:?}");
        }
    }
}
