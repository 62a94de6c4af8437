//! The fixtures in `tests/fixtures/statements/` read end to end.

use chrono::NaiveDate;
use proptest::prelude::*;

use super::*;

const IBAN: &str = "IT60X0542811101000000123456";

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/statements/",
            $name
        ))
    };
}

const FIXTURES: [(&str, &[u8]); 14] = [
    ("camt053_batch_sum.xml", fixture!("camt053_batch_sum.xml")),
    (
        "camt054_batch_detail.xml",
        fixture!("camt054_batch_detail.xml"),
    ),
    (
        "cbi_envelope_three_days.xml",
        fixture!("cbi_envelope_three_days.xml"),
    ),
    (
        "camt053_two_accounts.xml",
        fixture!("camt053_two_accounts.xml"),
    ),
    ("camt053_v02.xml", fixture!("camt053_v02.xml")),
    ("camt053_v04.xml", fixture!("camt053_v04.xml")),
    ("camt053_v08.xml", fixture!("camt053_v08.xml")),
    ("camt054_v08.xml", fixture!("camt054_v08.xml")),
    ("cbi_camt053.xml", fixture!("cbi_camt053.xml")),
    ("postal.csv", fixture!("postal.csv")),
    (
        "camt053_duplicate_no_ref.xml",
        fixture!("camt053_duplicate_no_ref.xml"),
    ),
    ("camt053_usd.xml", fixture!("camt053_usd.xml")),
    (
        "camt053_three_decimals.xml",
        fixture!("camt053_three_decimals.xml"),
    ),
    ("camt053_malformed.xml", fixture!("camt053_malformed.xml")),
];

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 3, d).unwrap()
}

fn rf(entry: &StatementEntry) -> Option<String> {
    entry.creditor_reference().map(|r| r.as_str().to_owned())
}

fn error(bytes: &[u8]) -> StatementError {
    parse(bytes).unwrap_err()
}

#[test]
fn camt053_001_02_credits_reversal_and_ignored_entries() {
    let statement = parse(fixture!("camt053_v02.xml")).unwrap();
    assert_eq!(statement.format, StatementFormat::Camt053);
    assert_eq!(statement.format.as_str(), "camt.053");
    assert_eq!(statement.version, "camt.053.001.02");
    assert_eq!(statement.message_id.as_deref(), Some("STM-20250303-0001"));
    assert_eq!(
        statement.ignored, 2,
        "the bank charges (DBIT) and the PDNG credit"
    );
    let [scor, split, reversal] = &statement.entries[..] else {
        panic!("{:#?}", statement.entries)
    };

    assert_eq!(scor.account, IBAN, "the IBAN's spaces are removed");
    assert_eq!(scor.direction, EntryDirection::Credit);
    assert_eq!(scor.amount, Money::from_cents(12200));
    assert_eq!(scor.booking_date, day(3));
    assert_eq!(scor.value_date, Some(day(3)));
    assert_eq!(scor.bank_reference.as_deref(), Some("0542250303000101"));
    assert_eq!(scor.end_to_end_id.as_deref(), Some("NOT-2025-0311"));
    assert_eq!(
        scor.structured_reference.as_deref(),
        Some("RF18539007547034")
    );
    assert!(scor.structured_is_scor);
    assert_eq!(scor.remittance_text, "");
    assert_eq!(
        scor.payer_name.as_deref(),
        Some("Studio Notarile Bianchi & Associati")
    );
    assert_eq!(rf(scor).as_deref(), Some("RF18539007547034"));
    assert_eq!(scor.dedup_key, format!("ref:{IBAN}:0542250303000101"));
    assert_eq!(scor.location, "entry 1 (line 34)");

    assert_eq!(split.bank_reference, None);
    assert_eq!(split.end_to_end_id, None, "NOTPROVIDED is no id");
    assert_eq!(split.structured_reference, None);
    assert!(!split.structured_is_scor);
    assert_eq!(
        split.remittance_text,
        "PAGAMENTO RINNOVO FIRMA DIGITALE RF61 5260\n1815 9083 0166 DOTT. ROSSI"
    );
    assert_eq!(rf(split).as_deref(), Some("RF615260181590830166"));
    assert_eq!(split.payer_name.as_deref(), Some("Rossi Mario"));
    assert!(split.dedup_key.starts_with("hash:"));
    assert_eq!(split.location, "entry 2 (line 68)");

    assert_eq!(reversal.direction, EntryDirection::Reversal);
    assert_eq!(reversal.amount, Money::from_cents(24400));
    assert_eq!(reversal.value_date, NaiveDate::from_ymd_opt(2025, 2, 28));
    assert_eq!(rf(reversal).as_deref(), Some("RF712348231"));
    assert_eq!(
        reversal.dedup_key,
        format!("ref-reversal:{IBAN}:0542250303000215")
    );
    assert_eq!(reversal.location, "entry 5 (line 121)");
}

#[test]
fn camt053_001_04_batch_entry_is_one_payment_per_transaction() {
    let statement = parse(fixture!("camt053_v04.xml")).unwrap();
    assert_eq!(statement.version, "camt.053.001.04");
    assert_eq!(statement.ignored, 0);
    let amounts: Vec<i64> = statement.entries.iter().map(|e| e.amount.cents()).collect();
    assert_eq!(amounts, [18300, 12200, 12200, 6100]);
    let references: Vec<_> = statement
        .entries
        .iter()
        .map(|e| e.bank_reference.as_deref().unwrap())
        .collect();
    assert_eq!(
        references,
        [
            "0542250304BT0007/1",
            "0542250304BT0007/2",
            "0542250304BT0007/3",
            "0542250304TX0044",
        ],
        "the transaction's own reference wins; the batch's is numbered"
    );
    let [first, second, third, single] = &statement.entries[..] else {
        unreachable!()
    };
    assert_eq!(first.booking_date, day(4), "the date of BookgDt/DtTm");
    assert_eq!(first.location, "entry 1 transaction 1 (line 46)");
    assert_eq!(third.location, "entry 1 transaction 3 (line 80)");
    assert_eq!(rf(first).as_deref(), Some("RF021318609139099603"));
    assert_eq!(rf(second).as_deref(), Some("RF470824628194821993"));
    assert_eq!(second.payer_name.as_deref(), Some("Russo Francesca"));
    assert_eq!(rf(third), None);
    assert_eq!(third.end_to_end_id.as_deref(), Some("20250303-000981"));
    assert_eq!(rf(single).as_deref(), Some("RF115181909378657975"));
    assert_eq!(single.location, "entry 2 (line 97)");
}

#[test]
fn camt053_001_08_status_codes_and_party_names() {
    let statement = parse(fixture!("camt053_v08.xml")).unwrap();
    assert_eq!(statement.version, "camt.053.001.08");
    assert_eq!(
        statement.ignored, 2,
        "a reversal of a debit, and an INFO entry of 0.00"
    );
    let [scor, instant] = &statement.entries[..] else {
        panic!("{:#?}", statement.entries)
    };
    assert_eq!(scor.payer_name.as_deref(), Some("Greco Impianti S.r.l."));
    assert_eq!(scor.bank_reference.as_deref(), Some("0542250305TX0102"));
    assert!(scor.structured_is_scor);
    assert_eq!(instant.booking_date, day(5));
    assert_eq!(instant.value_date, Some(day(5)));
    assert_eq!(instant.payer_name.as_deref(), Some("Verdi Anna"));
    assert_eq!(rf(instant).as_deref(), Some("RF616252760189555979"));
}

#[test]
fn camt054_gives_the_keys_the_camt053_gives() {
    let notification = parse(fixture!("camt054_v08.xml")).unwrap();
    assert_eq!(notification.format, StatementFormat::Camt054);
    assert_eq!(notification.version, "camt.054.001.08");
    assert_eq!(
        notification.message_id.as_deref(),
        Some("NTF-20250305-0417")
    );
    let statement = parse(fixture!("camt053_v08.xml")).unwrap();
    let keys = |parsed: &ParsedStatement| -> Vec<String> {
        parsed.entries.iter().map(|e| e.dedup_key.clone()).collect()
    };
    assert_eq!(keys(&notification), keys(&statement));
    assert!(keys(&statement)[0].starts_with("ref:"));
    assert!(
        keys(&statement)[1].starts_with("hash:"),
        "the same without a bank reference, though the camt.054 has no value date"
    );
    assert_eq!(notification.entries[1].value_date, None);
}

#[test]
fn cbi_envelope_is_read_as_a_camt053() {
    let statement = parse(fixture!("cbi_camt053.xml")).unwrap();
    assert_eq!(statement.format, StatementFormat::CbiCamt053);
    assert_eq!(statement.format.as_str(), "cbi-camt.053");
    assert_eq!(statement.version, "CBIDlyStmtReqLogMsg.00.01.02");
    assert_eq!(statement.message_id.as_deref(), Some("RH0542250306000001"));
    assert_eq!(statement.ignored, 1);
    let [transfer, cheque] = &statement.entries[..] else {
        panic!("{:#?}", statement.entries)
    };
    assert_eq!(transfer.account, IBAN);
    assert_eq!(transfer.payer_name.as_deref(), Some("NERI LUCA"));
    assert_eq!(
        transfer.remittance_text, "BONIFICO SEPA PER RINNOVO CNS RF16 4323 1948 7574 9118",
        "Ustrd first; AddtlNtryInf only stands in for it"
    );
    assert_eq!(rf(transfer).as_deref(), Some("RF164323194875749118"));
    assert_eq!(cheque.value_date, NaiveDate::from_ymd_opt(2025, 3, 10));
    assert_eq!(rf(cheque).as_deref(), Some("RF327114710497465075"));
    assert_eq!(cheque.dedup_key, format!("ref:{IBAN}:0542250306000034"));
}

#[test]
fn every_daily_statement_of_a_cbi_envelope_is_read() {
    let statement = parse(fixture!("cbi_envelope_three_days.xml")).unwrap();
    assert_eq!(statement.format, StatementFormat::CbiCamt053);
    assert_eq!(statement.message_id.as_deref(), Some("RH0542250303000001"));
    let accounts: Vec<(&str, &str, usize)> = statement
        .statements
        .iter()
        .map(|s| (s.account.as_str(), s.location.as_str(), s.ignored))
        .collect();
    assert_eq!(
        accounts,
        [
            (IBAN, "CBIDlyStmtReqLogMsg[1]/Stmt[1] (line 14)", 1),
            (IBAN, "CBIDlyStmtReqLogMsg[2]/Stmt[1] (line 63)", 0),
            (
                "IT02L1234512345123456789012",
                "CBIDlyStmtReqLogMsg[3]/Stmt[1] (line 93)",
                0
            ),
        ]
    );
    assert_eq!(statement.ignored, 1, "the charges of the first day");
    let read: Vec<(usize, i64, NaiveDate)> = statement
        .entries
        .iter()
        .map(|e| (e.statement, e.amount.cents(), e.booking_date))
        .collect();
    assert_eq!(
        read,
        [
            (0, 18300, day(3)),
            (0, 6344, day(3)),
            (1, 3172, day(4)),
            (2, 150000, day(4))
        ]
    );
    assert_eq!(
        rf(&statement.entries[2]).as_deref(),
        Some("RF470824628194821993")
    );
    assert_eq!(statement.entries[3].location, "entry 5 (line 100)");
}

#[test]
fn a_file_with_a_statement_per_account_reads_them_all() {
    let statement = parse(fixture!("camt053_two_accounts.xml")).unwrap();
    let accounts: Vec<&str> = statement
        .statements
        .iter()
        .map(|s| s.account.as_str())
        .collect();
    assert_eq!(accounts, ["000077712345", IBAN]);
    assert_eq!(statement.statements[1].location, "Stmt[2] (line 33)");
    assert_eq!(statement.statements[1].ignored, 1);
    let read: Vec<(usize, &str, i64)> = statement
        .entries
        .iter()
        .map(|e| (e.statement, e.account.as_str(), e.amount.cents()))
        .collect();
    assert_eq!(read, [(0, "000077712345", 90000), (1, IBAN, 6344)]);
}

#[test]
fn a_sum_and_its_detail_name_the_same_bank_entry() {
    let sum = parse(fixture!("camt053_batch_sum.xml")).unwrap();
    let detail = parse(fixture!("camt054_batch_detail.xml")).unwrap();
    let [lump] = &sum.entries[..] else {
        panic!("{:#?}", sum.entries)
    };
    let expected = format!("entry:{IBAN}:credit:2025030700004711:2025-03-07:12516");
    assert_eq!(
        lump.bank_entry,
        Some(BankEntry {
            key: expected.clone(),
            detail: false
        })
    );
    assert_eq!(rf(lump), None, "the sum carries no payer's reference");
    assert_eq!(detail.entries.len(), 3);
    assert!(detail.entries.iter().all(|e| e.bank_entry
        == Some(BankEntry {
            key: expected.clone(),
            detail: true
        })));
    let total: i64 = detail.entries.iter().map(|e| e.amount.cents()).sum();
    assert_eq!(total, lump.amount.cents());
    let codes: Vec<Option<String>> = detail.entries.iter().map(rf).collect();
    assert_eq!(
        codes,
        [
            Some("RF18539007547034".to_owned()),
            Some("RF470824628194821993".to_owned()),
            None
        ]
    );
    assert_ne!(
        lump.dedup_key, detail.entries[0].dedup_key,
        "keys alone differ"
    );
    // A postal CSV names no bank entry: its rows are never linked.
    let postal = parse(fixture!("postal.csv")).unwrap();
    assert!(postal.entries.iter().all(|e| e.bank_entry.is_none()));
}

#[test]
fn postal_rows_of_each_account_are_a_statement() {
    let csv = "conto;data_contabile;data_valuta;importo;tipo;riferimento;causale;versante\n\
               000012345678;03/03/2025;;31,72;accredito;P1;RF18539007547034;A\n\
               000099999999;03/03/2025;;10,00;accredito;P2;x;B\n\
               000012345678;03/03/2025;;2,00;addebito;P3;spese;\n";
    let statement = parse(csv.as_bytes()).unwrap();
    let parts: Vec<(&str, &str, usize)> = statement
        .statements
        .iter()
        .map(|s| (s.account.as_str(), s.location.as_str(), s.ignored))
        .collect();
    assert_eq!(
        parts,
        [("000012345678", "line 2", 1), ("000099999999", "line 3", 0)]
    );
    let of: Vec<usize> = statement.entries.iter().map(|e| e.statement).collect();
    assert_eq!(of, [0, 1]);
}

#[test]
fn cbi_envelope_variants() {
    // A bare statement message, with no body envelope and no prefixes.
    let bare = br#"<CBIDlyStmtReqLogMsg xmlns="urn:CBI:xsd:CBIDlyStmtReqLogMsg.00.01.02">
<GrpHdr><MsgId>M1</MsgId></GrpHdr>
<Stmt><Acct><Id><IBAN>IT60X0542811101000000123456</IBAN></Id></Acct>
<Ntry><Amt Ccy="EUR">10</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2025-03-06</Dt></BookgDt></Ntry>
</Stmt></CBIDlyStmtReqLogMsg>"#;
    let statement = parse(bare).unwrap();
    assert_eq!(statement.format, StatementFormat::CbiCamt053);
    assert_eq!(statement.version, "CBIDlyStmtReqLogMsg.00.01.02");
    assert_eq!(statement.entries[0].amount, Money::from_cents(1000));

    let no_namespace = br#"<CBIBdyBkToCstmrStmtReq><X><Stmt><Acct><Id><IBAN>IT60X0542811101000000123456</IBAN></Id></Acct></Stmt></X></CBIBdyBkToCstmrStmtReq>"#;
    let statement = parse(no_namespace).unwrap();
    assert_eq!(statement.version, "cbi");
    assert!(statement.entries.is_empty());

    let transfers = br#"<CBIPaymentRequest xmlns="urn:CBI:xsd:CBIPaymentRequest.00.04.00"><GrpHdr/></CBIPaymentRequest>"#;
    assert_eq!(error(transfers).kind, "unsupported_format");
}

#[test]
fn postal_csv() {
    let statement = parse(fixture!("postal.csv")).unwrap();
    assert_eq!(statement.format, StatementFormat::PostalCsv);
    assert_eq!(statement.format.as_str(), "postal-csv");
    assert_eq!(statement.version, "postal-csv-1");
    assert_eq!(statement.message_id, None);
    assert_eq!(statement.ignored, 1, "the addebito");
    let [bollettino, studio, storno, vaglia] = &statement.entries[..] else {
        panic!("{:#?}", statement.entries)
    };
    assert_eq!(bollettino.account, "000012345678");
    assert_eq!(bollettino.amount, Money::from_cents(3172));
    assert_eq!(bollettino.booking_date, day(3));
    assert_eq!(
        bollettino.bank_reference.as_deref(),
        Some("PT250303-000117")
    );
    assert_eq!(bollettino.payer_name.as_deref(), Some("ESPOSITO GIUSEPPE"));
    assert_eq!(rf(bollettino).as_deref(), Some("RF172917034236671276"));
    assert_eq!(bollettino.location, "line 2");

    assert_eq!(studio.amount, Money::from_cents(123456));
    assert_eq!(studio.booking_date, day(4));
    assert_eq!(studio.value_date, None);
    assert_eq!(studio.bank_reference, None);
    assert_eq!(
        studio.remittance_text,
        "Rinnovo 10 firme; studio associato\nrif. RF97 0000 0012 3456"
    );
    assert_eq!(rf(studio).as_deref(), Some("RF97000000123456"));
    assert_eq!(
        studio.payer_name.as_deref(),
        Some("Studio Associato Gallo; Conti")
    );
    assert!(studio.dedup_key.starts_with("hash:"));
    assert_eq!(studio.location, "line 3");

    assert_eq!(storno.direction, EntryDirection::Reversal);
    assert_eq!(storno.location, "line 6");
    assert_eq!(
        storno.dedup_key,
        "ref-reversal:000012345678:PT250303-000117"
    );
    assert_eq!(bollettino.dedup_key, "ref:000012345678:PT250303-000117");

    assert_eq!(vaglia.direction, EntryDirection::Credit, "ACCREDITO");
    assert_eq!(vaglia.remittance_text, "VAGLIA \"RINNOVO\" RF712348231");
    assert_eq!(rf(vaglia).as_deref(), Some("RF712348231"));
}

#[test]
fn postal_csv_refusals_name_line_and_column() {
    let header = "conto;data_contabile;data_valuta;importo;tipo;riferimento;causale;versante\n";
    let refused = |rows: &str| error(format!("{header}{rows}").as_bytes());
    let row = "000012345678;03/03/2025;;31,72;accredito;;RF712348231;\n";

    let e = refused(&format!("{row}{}", row.replace("31,72", "31,725")));
    assert_eq!(
        (e.kind, e.location.as_str()),
        ("amount", "line 3, column importo")
    );
    let e = refused(&format!("{row}{}", row.replace("31,72", "1.234")));
    assert_eq!(
        (e.kind, e.location.as_str()),
        ("amount", "line 3, column importo")
    );
    let e = refused(&row.replace("03/03/2025", "31/02/2025"));
    assert_eq!(
        (e.kind, e.location.as_str()),
        ("date", "line 2, column data_contabile")
    );
    let e = refused(&row.replace("accredito", "bonifico"));
    assert_eq!(
        (e.kind, e.location.as_str()),
        ("value", "line 2, column tipo")
    );
    let e = refused(&row.replace("RF712348231", "RF71;2348231"));
    assert_eq!((e.kind, e.location.as_str()), ("csv_row", "line 2"));
    let e = refused(&row.replace("000012345678", ""));
    assert_eq!(
        (e.kind, e.location.as_str()),
        ("csv_row", "line 2, column conto")
    );

    let e = error(format!("conto;data;importo\n{row}").as_bytes());
    assert_eq!((e.kind, e.location.as_str()), ("csv_header", "line 1"));
    let spaced = format!(
        " Conto ; DATA_CONTABILE;data_valuta;importo;tipo;riferimento;causale;versante\r\n{}\r\n\r\n\n",
        row.trim_end()
    );
    assert_eq!(parse(spaced.as_bytes()).unwrap().entries.len(), 1);
    assert_eq!(parse(header.as_bytes()).unwrap().entries.len(), 0);
}

#[test]
fn the_same_payment_twice_in_one_file_is_two_payments() {
    let bytes = fixture!("camt053_duplicate_no_ref.xml");
    let statement = parse(bytes).unwrap();
    let [first, second] = &statement.entries[..] else {
        panic!("{:#?}", statement.entries)
    };
    assert_eq!(
        (first.amount, &first.remittance_text, first.booking_date),
        (second.amount, &second.remittance_text, second.booking_date)
    );
    assert_ne!(first.dedup_key, second.dedup_key);
    // Read again: the same keys.
    let again = parse(bytes).unwrap();
    assert_eq!(again.entries, statement.entries);
    // A statement that overlaps and holds only one of them: the key of the first.
    let text = std::str::from_utf8(bytes).unwrap();
    let second_entry = text.rfind("      <Ntry>").unwrap();
    let end = text.rfind("      </Ntry>").unwrap() + "      </Ntry>\n".len();
    let one = format!("{}{}", &text[..second_entry], &text[end..]);
    let overlapping = parse(one.as_bytes()).unwrap();
    assert_eq!(overlapping.entries.len(), 1);
    assert_eq!(overlapping.entries[0].dedup_key, first.dedup_key);
}

#[test]
fn refusals_name_where() {
    let e = error(fixture!("camt053_malformed.xml"));
    assert_eq!((e.kind, e.location.as_str()), ("xml", "line 16"), "{e}");

    let e = error(fixture!("camt053_usd.xml"));
    assert_eq!(e.kind, "currency");
    assert_eq!(e.location, "Stmt[1]/Ntry[2]/Amt (line 31)");
    assert!(e.message.contains("USD"), "{e}");

    let e = error(fixture!("camt053_three_decimals.xml"));
    assert_eq!(e.kind, "amount");
    assert_eq!(e.location, "Stmt[1]/Ntry[2]/Amt (line 31)");
    assert_eq!(
        e.to_string(),
        "Stmt[1]/Ntry[2]/Amt (line 31): 1234.567 has more than two decimals: amounts are in euro cents"
    );

    let v02 = std::str::from_utf8(fixture!("camt053_v02.xml")).unwrap();
    let truncated = &v02[..v02.find("<!-- 3:").unwrap()];
    let e = error(truncated.as_bytes());
    assert_eq!(e.kind, "xml");
    assert!(e.message.contains("truncated"), "{e}");
}

/// A camt.053.001.02 with one statement holding `entries`.
fn camt(entries: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>T</MsgId></GrpHdr>
<Stmt><Acct><Id><IBAN>IT60X0542811101000000123456</IBAN></Id></Acct>
{entries}
</Stmt></BkToCstmrStmt></Document>"#
    )
    .into_bytes()
}

const CREDIT: &str = r#"<Ntry><Amt Ccy="EUR">61.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2025-03-07</Dt></BookgDt></Ntry>"#;

#[test]
fn missing_or_bad_elements_are_named() {
    let refused = |entry: String| error(&camt(&format!("{CREDIT}\n{entry}")));
    let e = refused(CREDIT.replace(r#"<Amt Ccy="EUR">61.00</Amt>"#, ""));
    assert_eq!(
        (e.kind, e.location.as_str()),
        ("missing_element", "Stmt[1]/Ntry[2] (line 6)")
    );
    assert_eq!(e.message, "Amt is missing");
    let e = refused(CREDIT.replace("<CdtDbtInd>CRDT</CdtDbtInd>", ""));
    assert_eq!(e.message, "CdtDbtInd is missing");
    let e = refused(CREDIT.replace("CRDT", "CREDIT"));
    assert_eq!(
        (e.kind, e.location.as_str()),
        ("value", "Stmt[1]/Ntry[2]/CdtDbtInd (line 6)")
    );
    let e = refused(CREDIT.replace("<BookgDt><Dt>2025-03-07</Dt></BookgDt>", ""));
    assert_eq!(e.message, "BookgDt is missing");
    let e = refused(CREDIT.replace("2025-03-07", "07/03/2025"));
    assert_eq!(
        (e.kind, e.location.as_str()),
        ("date", "Stmt[1]/Ntry[2]/BookgDt/Dt (line 6)")
    );
    let e = refused(CREDIT.replace("61.00", "-61.00"));
    assert_eq!(e.kind, "amount");
    let e = refused(CREDIT.replace("61.00", "1e3"));
    assert_eq!(e.kind, "amount");
    let e = refused(CREDIT.replace(r#" Ccy="EUR""#, ""));
    assert_eq!(e.kind, "currency");
    let e = refused(CREDIT.replace("<Sts>BOOK</Sts>", ""));
    assert_eq!(e.message, "Sts is missing");

    let no_account = String::from_utf8(camt(CREDIT)).unwrap().replace(
        "<Acct><Id><IBAN>IT60X0542811101000000123456</IBAN></Id></Acct>",
        "<Acct><Id><Othr><SchmeNm><Cd>BBAN</Cd></SchmeNm></Othr></Id></Acct>",
    );
    let e = error(no_account.as_bytes());
    assert_eq!(
        (e.kind, e.location.as_str()),
        ("missing_element", "Stmt[1] (line 4)")
    );

    // A pending entry needs no booking date; a booked one does.
    let pending = CREDIT
        .replace("BOOK", "PDNG")
        .replace("<BookgDt><Dt>2025-03-07</Dt></BookgDt>", "");
    assert_eq!(parse(&camt(&pending)).unwrap().ignored, 1);
}

#[test]
fn batch_transactions_need_their_own_amounts() {
    let batch = |second_amount: &str| {
        format!(
            r#"<Ntry><Amt Ccy="EUR">122.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2025-03-07</Dt></BookgDt>
<NtryDtls><TxDtls><Amt Ccy="EUR">61.00</Amt></TxDtls>
<TxDtls>{second_amount}</TxDtls></NtryDtls></Ntry>"#
        )
    };
    let e = error(&camt(&batch("")));
    assert_eq!(
        (e.kind, e.location.as_str()),
        (
            "missing_element",
            "Stmt[1]/Ntry[1]/NtryDtls[1]/TxDtls[2] (line 7)"
        )
    );
    assert_eq!(e.message, "Amt is missing");
    let e = error(&camt(&batch(r#"<Amt Ccy="CHF">61.00</Amt>"#)));
    assert_eq!(e.kind, "currency");
    assert_eq!(
        e.location,
        "Stmt[1]/Ntry[1]/NtryDtls[1]/TxDtls[2]/Amt (line 7)"
    );
    // A debit inside a credit batch (a net booking) is not a payment to us.
    let net = batch(r#"<Amt Ccy="EUR">61.00</Amt><CdtDbtInd>DBIT</CdtDbtInd>"#);
    let statement = parse(&camt(&net)).unwrap();
    assert_eq!((statement.entries.len(), statement.ignored), (1, 1));
}

#[test]
fn placeholder_references_are_no_references() {
    let entry = CREDIT.replace("</BookgDt>", "</BookgDt><AcctSvcrRef>NONREF</AcctSvcrRef>");
    let statement = parse(&camt(&format!("{entry}{entry}"))).unwrap();
    assert_eq!(statement.entries[0].bank_reference, None);
    assert!(statement.entries[0].dedup_key.starts_with("hash:"));
    assert_ne!(
        statement.entries[0].dedup_key,
        statement.entries[1].dedup_key
    );
}

#[test]
fn other_messages_and_versions_are_refused() {
    let with_namespace = |namespace: &str| {
        String::from_utf8(camt(CREDIT))
            .unwrap()
            .replace("camt.053.001.02", namespace)
            .into_bytes()
    };
    for namespace in [
        "camt.053.001.09",
        "camt.053.001.01",
        "camt.052.001.08",
        "pain.001.001.03",
    ] {
        let e = error(&with_namespace(namespace));
        assert_eq!(
            (e.kind, e.location.as_str()),
            ("unsupported_format", "line 2"),
            "{namespace}"
        );
        assert!(e.message.contains(namespace), "{e}");
    }
    let e = error(&with_namespace("camt.054.001.02"));
    assert_eq!(e.kind, "missing_element", "a camt.054 has no BkToCstmrStmt");
    assert_eq!(error(b"<html><body/></html>").kind, "unsupported_format");
    assert_eq!(error(b"%PDF-1.7 estratto conto").kind, "unsupported_format");
    assert_eq!(error(b"").kind, "unsupported_format");
    let e = error(b"<Document>\n\xff</Document>");
    assert_eq!((e.kind, e.location.as_str()), ("encoding", "line 2"));
}

#[test]
fn creditor_reference_prefers_a_valid_structured_one() {
    let mut entry = parse(fixture!("camt053_v02.xml"))
        .unwrap()
        .entries
        .remove(0);
    entry.remittance_text = "RF712348231".into();
    assert_eq!(rf(&entry).as_deref(), Some("RF18539007547034"));
    entry.structured_reference = Some("FATTURA 12".into());
    assert_eq!(
        rf(&entry).as_deref(),
        Some("RF712348231"),
        "falls back on the text"
    );
    entry.structured_reference = Some("rf18 5390 0754 7034".into());
    assert_eq!(rf(&entry).as_deref(), Some("RF18539007547034"));
    entry.remittance_text.clear();
    entry.structured_reference = None;
    assert_eq!(rf(&entry), None);
}

#[test]
fn every_truncation_of_an_xml_fixture_is_refused() {
    for (name, bytes) in FIXTURES.iter().filter(|(name, _)| name.ends_with(".xml")) {
        let text = std::str::from_utf8(bytes).unwrap();
        let root_closed = text.trim_end().len();
        for cut in (0..root_closed).filter(|cut| text.is_char_boundary(*cut)) {
            assert!(
                parse(&bytes[..cut]).is_err(),
                "{name} cut at {cut} was accepted"
            );
        }
    }
}

proptest! {
    #[test]
    fn never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn never_panics_on_damaged_fixtures(
        which in 0..FIXTURES.len(),
        changes in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = FIXTURES[which].1.to_vec();
        for (at, byte) in changes {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        let cut = cut.index(bytes.len() + 1);
        let _ = parse(&bytes[..cut]);
        let _ = parse(&bytes);
    }

    #[test]
    fn never_panics_on_csv_like_text(rows in proptest::collection::vec("[0-9a-z;,./\"\n -]{0,60}", 0..6)) {
        let text = format!(
            "conto;data_contabile;data_valuta;importo;tipo;riferimento;causale;versante\n{}",
            rows.join("\n")
        );
        let _ = parse(text.as_bytes());
    }
}
