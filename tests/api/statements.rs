//! Statement files for the tests, built around the RF codes and amounts a test needs:
//! camt.053 (001.08 and 001.02, one or several accounts), camt.054, the CBI envelope with
//! one or several business days, postal CSV; and the tests of what a file with several
//! statements or accounts imports, each checking the money stored against the file's.

use chrono::{NaiveDate, Utc};
use diesel::prelude::*;
use rinnovo::db::schema::{orders, payments};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{problem, spawn_app, SignedIn, TestApp};
use crate::web_client::{text_of, Browser};

/// The Visura brand's account.
pub const IBAN: &str = "IT60X0542811101000000123456";
/// An account of the same customer at the same bank that is not the brand's.
pub const OTHER_IBAN: &str = "IT02L1234512345123456789012";
pub const POSTAL_ACCOUNT: &str = "000012345678";

/// One line of a statement.
#[derive(Debug, Clone)]
pub struct Line {
    pub amount: String,
    /// Put in the structured creditor reference (SCOR).
    pub scor: Option<String>,
    /// The unstructured remittance lines (Ustrd), one element each.
    pub text: Vec<String>,
    pub bank_reference: Option<String>,
    pub booking_date: NaiveDate,
    pub reversal: bool,
}

impl Line {
    /// A credit with the RF code in the payment reason, booked today.
    pub fn credit(amount: &str, reason: &str, bank_reference: &str) -> Self {
        Self {
            amount: amount.into(),
            scor: None,
            text: vec![reason.into()],
            bank_reference: Some(bank_reference.into()),
            booking_date: Utc::now().date_naive(),
            reversal: false,
        }
    }

    pub fn scor(mut self, reference: &str) -> Self {
        self.scor = Some(reference.into());
        self.text = vec!["RINNOVO FIRMA".into()];
        self
    }

    pub fn reversed(mut self) -> Self {
        self.reversal = true;
        self
    }

    pub fn booked(mut self, date: NaiveDate) -> Self {
        self.booking_date = date;
        self
    }

    fn tx_details(&self, version: u8) -> String {
        let reference = self
            .bank_reference
            .as_ref()
            .map(|r| format!("<Refs><AcctSvcrRef>{r}</AcctSvcrRef><EndToEndId>NOTPROVIDED</EndToEndId></Refs>"))
            .unwrap_or_default();
        let amount = if version >= 3 {
            format!("<Amt Ccy=\"EUR\">{}</Amt>", self.amount)
        } else {
            format!(
                "<AmtDtls><TxAmt><Amt Ccy=\"EUR\">{}</Amt></TxAmt></AmtDtls>",
                self.amount
            )
        };
        let debtor = if version >= 8 {
            "<RltdPties><Dbtr><Pty><Nm>Studio Rossi</Nm></Pty></Dbtr></RltdPties>"
        } else {
            "<RltdPties><Dbtr><Nm>Studio Rossi</Nm></Dbtr></RltdPties>"
        };
        let mut remittance: String = self
            .text
            .iter()
            .map(|t| format!("<Ustrd>{t}</Ustrd>"))
            .collect();
        if let Some(scor) = &self.scor {
            remittance.push_str(&format!(
                "<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp><Ref>{scor}</Ref></CdtrRefInf></Strd>"
            ));
        }
        format!("<NtryDtls><TxDtls>{reference}{amount}{debtor}<RmtInf>{remittance}</RmtInf></TxDtls></NtryDtls>")
    }

    pub fn entry(&self, version: u8) -> String {
        let status = if version >= 6 {
            "<Sts><Cd>BOOK</Cd></Sts>"
        } else {
            "<Sts>BOOK</Sts>"
        };
        let (indicator, reversal) = if self.reversal {
            ("DBIT", "<RvslInd>true</RvslInd>")
        } else {
            ("CRDT", "")
        };
        let entry_reference = self
            .bank_reference
            .as_ref()
            .map(|r| format!("<AcctSvcrRef>{r}</AcctSvcrRef>"))
            .unwrap_or_default();
        format!(
            "<Ntry><Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>{indicator}</CdtDbtInd>{reversal}{status}\
             <BookgDt><Dt>{date}</Dt></BookgDt><ValDt><Dt>{date}</Dt></ValDt>{entry_reference}\
             <BkTxCd/>{details}</Ntry>\n",
            amount = self.amount,
            date = self.booking_date,
            details = self.tx_details(version),
        )
    }
}

fn account(iban: &str) -> String {
    format!("<Acct><Id><IBAN>{iban}</IBAN></Id><Ccy>EUR</Ccy></Acct>")
}

/// Cents of an amount written `1234.56`.
pub fn cents(amount: &str) -> i64 {
    let (units, decimals) = amount.split_once('.').unwrap_or((amount, "0"));
    units.parse::<i64>().unwrap() * 100 + format!("{decimals:0<2}").parse::<i64>().unwrap()
}

/// A `Stmt` of `iban`, with its closing balance as banks write it.
fn stmt(version: u8, iban: &str, lines: &[Line]) -> String {
    let entries: String = lines.iter().map(|l| l.entry(version)).collect();
    let moved: i64 = lines
        .iter()
        .map(|l| {
            if l.reversal {
                -cents(&l.amount)
            } else {
                cents(&l.amount)
            }
        })
        .sum();
    let closing = 1_000_000 + moved;
    let date = lines
        .first()
        .map_or(Utc::now().date_naive(), |l| l.booking_date);
    format!(
        "<Stmt><Id>STMT-{id}</Id><ElctrncSeqNb>1</ElctrncSeqNb><CreDtTm>2026-11-23T20:00:00</CreDtTm>{account}\n\
         <Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"EUR\">{units}.{decimals:02}</Amt>\
         <CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{date}</Dt></Dt></Bal>\n{entries}</Stmt>",
        id = Uuid::new_v4().simple(),
        account = account(iban),
        units = closing / 100,
        decimals = closing % 100,
    )
}

/// A camt.053 of message version `version` (2 to 8).
pub fn camt053(version: u8, lines: &[Line]) -> String {
    camt053_accounts(version, &[(IBAN, lines)])
}

/// A camt.053 with one `Stmt` per (account, lines).
pub fn camt053_accounts(version: u8, statements: &[(&str, &[Line])]) -> String {
    let statements: String = statements
        .iter()
        .map(|(iban, lines)| stmt(version, iban, lines))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.0{version}\"><BkToCstmrStmt>\
         <GrpHdr><MsgId>MSG-{id}</MsgId><CreDtTm>2026-11-23T20:00:00</CreDtTm></GrpHdr>\
         {statements}</BkToCstmrStmt></Document>\n",
        id = uuid::Uuid::new_v4().simple(),
    )
}

/// A camt.054 (001.08) notification.
pub fn camt054(lines: &[Line]) -> String {
    let entries: String = lines.iter().map(|l| l.entry(8)).collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.054.001.08\"><BkToCstmrDbtCdtNtfctn>\
         <GrpHdr><MsgId>NTF-1</MsgId><CreDtTm>2026-11-23T20:00:00</CreDtTm></GrpHdr>\
         <Ntfctn><Id>NTF-1</Id><CreDtTm>2026-11-23T20:00:00</CreDtTm>{account}\n{entries}</Ntfctn>\
         </BkToCstmrDbtCdtNtfctn></Document>\n",
        account = account(IBAN),
    )
}

/// A camt.053.001.02 statement in the Italian CBI envelope, elements prefixed.
pub fn cbi_camt053(lines: &[Line]) -> String {
    cbi_envelope(&[(IBAN, lines)])
}

/// The CBI envelope as Italian banks send it: one logical message per business day (per
/// (account, lines)), each with its group header and its statement.
pub fn cbi_envelope(days: &[(&str, &[Line])]) -> String {
    let messages: String = days
        .iter()
        .enumerate()
        .map(|(n, (iban, lines))| {
            // Every element of the statement in the DLST namespace, as the banks send it.
            let body = format!(
                "<GrpHdr><MsgId>RH0542{n:04}</MsgId><CreDtTm>2026-11-23T21:30:00</CreDtTm></GrpHdr>{}",
                stmt(2, iban, lines)
            );
            format!(
                "<BODY:CBIEnvelBkToCstmrStmtReqLogMsg><BODY:CBIBkToCstmrStmtReqLogMsg>\
                 <LMSG:CBIDlyStmtReqLogMsg>{}</LMSG:CBIDlyStmtReqLogMsg>\
                 </BODY:CBIBkToCstmrStmtReqLogMsg></BODY:CBIEnvelBkToCstmrStmtReqLogMsg>\n",
                prefix_elements(&body, "DLST")
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <BODY:CBIBdyBkToCstmrStmtReq xmlns:BODY=\"urn:CBI:xsd:CBIBdyBkToCstmrStmtReq.00.01.02\" \
         xmlns:LMSG=\"urn:CBI:xsd:CBIBkToCstmrStmtReqLogMsg.00.01.02\" \
         xmlns:DLST=\"urn:CBI:xsd:CBIDlyStmtReqLogMsg.00.01.02\">\
         <BODY:PhyMsgInf><BODY:PhyMsgTpCd>INC-BCS-CAMT</BODY:PhyMsgTpCd>\
         <BODY:NbOfLogMsg>{}</BODY:NbOfLogMsg></BODY:PhyMsgInf>\n{messages}\
         </BODY:CBIBdyBkToCstmrStmtReq>\n",
        days.len()
    )
}

fn prefix_elements(xml: &str, prefix: &str) -> String {
    xml.replace("</", "\u{1}")
        .replace('<', &format!("<{prefix}:"))
        .replace('\u{1}', &format!("</{prefix}:"))
}

/// The postal CSV: (amount "31,72", tipo, reference, causale).
pub fn postal_csv(rows: &[(&str, &str, &str, &str)]) -> String {
    let today = Utc::now().format("%d/%m/%Y");
    let mut csv = String::from(
        "conto;data_contabile;data_valuta;importo;tipo;riferimento;causale;versante\n",
    );
    for (amount, kind, reference, reason) in rows {
        csv.push_str(&format!(
            "{POSTAL_ACCOUNT};{today};{today};{amount};{kind};{reference};\"{reason}\";Mario Rossi\n"
        ));
    }
    csv
}

// ---- What a file with several statements or accounts imports ----

/// RIN-FIRMA-CNS: 26.00 + 22% = 31.72.
const PRICE: &str = "31.72";

async fn transfer_order(app: &TestApp, customer: &SignedIn) -> (String, String) {
    let response = app
        .client
        .post(format!("{}/api/v1/orders", app.address))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .json(&json!({
            "lines": [{ "product": "RIN-FIRMA-CNS", "quantity": 1 }],
            "payment_method": "bank_transfer",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.unwrap();
    made_days_ago(app, order["id"].as_str().unwrap(), 40);
    (
        order["id"].as_str().unwrap().to_owned(),
        order["transfer"]["reference"].as_str().unwrap().to_owned(),
    )
}

/// Uploads `file` as the operator's statement, as XML.
pub async fn import(app: &TestApp, operator: &SignedIn, file: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/api/v1/backoffice/statements", app.address))
        .bearer_auth(&operator.token)
        .header("content-type", "application/xml")
        .body(file.to_owned())
        .send()
        .await
        .unwrap()
}

async fn import_ok(app: &TestApp, operator: &SignedIn, file: &str) -> (u16, Value) {
    let response = import(app, operator, file).await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert!(status == 201 || status == 200, "{status} {body}");
    (status, body)
}

async fn order_status(app: &TestApp, customer: &SignedIn, id: &str) -> String {
    app.get_json(&customer.token, &format!("/api/v1/orders/{id}"))
        .await["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn bank_ref() -> String {
    format!("BR{}", Uuid::new_v4().simple())
}

/// The money the stored payments say arrived: credits less reversals, in cents.
fn stored_cents(app: &TestApp) -> i64 {
    let mut conn = app.pool.get().unwrap();
    let rows: Vec<(String, i64)> = payments::table
        .select((payments::direction, payments::amount_cents))
        .load(&mut conn)
        .unwrap();
    rows.iter()
        .map(|(direction, cents)| match direction.as_str() {
            "reversal" => -cents,
            _ => *cents,
        })
        .sum()
}

fn stored_count(app: &TestApp) -> i64 {
    let mut conn = app.pool.get().unwrap();
    payments::table.count().get_result(&mut conn).unwrap()
}

/// The money of lines: credits less reversals, in cents.
fn file_cents(lines: &[Line]) -> i64 {
    lines
        .iter()
        .map(|l| {
            if l.reversal {
                -cents(&l.amount)
            } else {
                cents(&l.amount)
            }
        })
        .sum()
}

/// Day `d` (1 to 31) of the last 31 days, the 31st being today: the statements' booking
/// dates, after the orders they pay (made forty days ago) and never in the future.
fn day(d: u32) -> NaiveDate {
    Utc::now().date_naive() - chrono::Duration::days(31 - i64::from(d))
}

/// Moves an order's making `days` back, its reservation left as it is: a payment booked
/// on a past day must come after the order for its RF code to pay it.
fn made_days_ago(app: &TestApp, order_id: &str, days: i64) {
    let made = Utc::now().naive_utc() - chrono::Duration::days(days);
    let mut conn = app.pool.get().unwrap();
    diesel::update(orders::table.filter(orders::id.eq(order_id)))
        .set(orders::created_at.eq(made))
        .execute(&mut conn)
        .unwrap();
}

#[tokio::test]
async fn every_daily_statement_of_a_cbi_envelope_is_imported_and_another_account_is_listed() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    // Twelve business days of the brand's account, with an order paid on some of them,
    // and between them a day of another account of the same customer.
    let mut orders = Vec::new();
    let mut days: Vec<(&str, Vec<Line>)> = Vec::new();
    for d in 1..=12u32 {
        let mut lines = vec![
            Line::credit(&format!("{}.{:02}", 100 + d, d), "FATTURA", &bank_ref()).booked(day(d)),
            Line::credit("0.50", "", &bank_ref()).booked(day(d)),
        ];
        if d % 3 == 0 {
            let (id, rf) = transfer_order(&app, &customer).await;
            lines.push(Line::credit(PRICE, &rf, &bank_ref()).booked(day(d)));
            orders.push(id);
        }
        days.push((IBAN, lines));
        if d == 7 {
            let rent = Line::credit("1500.00", "AFFITTO", &bank_ref()).booked(day(d));
            days.push((OTHER_IBAN, vec![rent.clone(), rent]));
        }
    }
    let ours: Vec<Line> = days
        .iter()
        .filter(|(iban, _)| *iban == IBAN)
        .flat_map(|(_, lines)| lines.clone())
        .collect();
    let parts: Vec<(&str, &[Line])> = days.iter().map(|(i, l)| (*i, l.as_slice())).collect();
    let file = cbi_envelope(&parts);

    let (status, report) = import_ok(&app, &operator, &file).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(report["format"], "cbi-camt.053");
    assert_eq!(report["statements"], 12, "{report}");
    assert_eq!(report["entries"], ours.len(), "{report}");
    assert_eq!(report["new_entries"], ours.len());
    assert_eq!(report["outcomes"]["matched"]["count"], 4, "{report}");
    let skipped = report["skipped_statements"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{report}");
    assert_eq!(skipped[0]["account"], OTHER_IBAN);
    assert_eq!(
        skipped[0]["location"].as_str().unwrap().split(' ').next(),
        Some("CBIDlyStmtReqLogMsg[8]/Stmt[1]")
    );
    assert_eq!(skipped[0]["entries"], 2);
    assert_eq!(
        skipped[0]["money_in"],
        json!({ "count": 2, "amount": "3000.00" })
    );
    assert_eq!(
        skipped[0]["money_out"],
        json!({ "count": 0, "amount": "0.00" })
    );
    let expected = file_cents(&ours);
    assert_eq!(expected, 128_478 + 4 * 3172, "the file's own total");
    assert_eq!(stored_cents(&app), expected, "every day's money, once");
    for id in &orders {
        assert_eq!(order_status(&app, &customer, id).await, "fulfilled");
    }

    // Again: nothing new, nothing counted twice.
    let (status, again) = import_ok(&app, &operator, &file).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["new_entries"], 0);
    assert_eq!(again["already_imported"], ours.len());
    assert_eq!(stored_cents(&app), expected);
}

#[tokio::test]
async fn a_file_with_a_statement_per_account_imports_the_brands_and_lists_the_others() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let lextel = app.back_office("lextel").await;
    let (id, rf) = transfer_order(&app, &customer).await;
    let other = vec![
        Line::credit("900.00", "FATTURA 12", &bank_ref()),
        Line::credit("12.00", "RIMBORSO", &bank_ref()).reversed(),
    ];
    let ours = vec![
        Line::credit(PRICE, "RINNOVO", &bank_ref()).scor(&rf),
        Line::credit("20.00", "SENZA RIFERIMENTO", &bank_ref()),
    ];
    let file = camt053_accounts(8, &[(OTHER_IBAN, &other), (IBAN, &ours)]);

    // A brand with no statement in the file: refused, naming the account.
    let before = stored_count(&app);
    let body = problem(import(&app, &lextel, &file).await, 422).await;
    assert_eq!(body["type"], "/problems/statement-of-another-account");
    assert!(
        body["detail"].as_str().unwrap().contains(OTHER_IBAN),
        "{body}"
    );
    assert_eq!(stored_count(&app), before, "nothing stored");

    // An empty file names the field, and stores nothing either.
    let body = problem(import(&app, &operator, "").await, 400).await;
    assert_eq!(body["type"], "/problems/invalid-field");
    assert_eq!(body["errors"][0]["field"], "file");
    assert_eq!(body["errors"][0]["rule"], "required");
    assert_eq!(body["errors"][0]["detail"], "the statement file is empty");
    assert_eq!(stored_count(&app), before, "nothing stored");

    let (status, report) = import_ok(&app, &operator, &file).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(report["statements"], 1);
    assert_eq!(report["entries"], 2);
    assert_eq!(report["outcomes"]["matched"]["count"], 1, "{report}");
    assert_eq!(report["outcomes"]["unmatched"]["count"], 1, "{report}");
    let skipped = &report["skipped_statements"];
    assert_eq!(skipped.as_array().unwrap().len(), 1, "{report}");
    assert_eq!(skipped[0]["account"], OTHER_IBAN);
    assert!(skipped[0]["location"]
        .as_str()
        .unwrap()
        .starts_with("Stmt[1] (line "));
    assert_eq!(skipped[0]["money_in"]["amount"], "900.00");
    assert_eq!(skipped[0]["money_out"]["amount"], "12.00");
    assert_eq!(stored_cents(&app), file_cents(&ours));
    assert_eq!(stored_cents(&app), 5172);
    assert_eq!(order_status(&app, &customer, &id).await, "fulfilled");

    let listed = app
        .get_json(&operator.token, "/api/v1/backoffice/statements")
        .await;
    assert_eq!(listed["statements"][0]["entries"], 2, "{listed}");

    // The page lists the other account too (the file again: nothing new, still listed).
    let (office, _) = Browser::signed_in(&app, &operator.email).await;
    let page = office.import(Some(&office.csrf), &file).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(text_of(&page.body, "count-statements"), "1");
    assert!(
        page.body.contains("id=\"skipped-statements\""),
        "{}",
        page.body
    );
    assert!(page.body.contains(OTHER_IBAN));
    assert!(page.body.contains("€ 900,00"), "{}", page.body);
}

#[tokio::test]
async fn the_report_keeps_money_in_and_money_out_apart_for_every_outcome() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let (id, rf) = transfer_order(&app, &customer).await;
    let lines = vec![
        Line::credit(PRICE, &rf, &bank_ref()),
        Line::credit("20.00", "SENZA RIFERIMENTO", &bank_ref()),
        // A storno of a credit never imported: waits, unmatched, as money out.
        Line::credit("45.00", "STORNO ASSEGNO 0001234", &bank_ref()).reversed(),
        // The bank takes the order's payment back.
        Line::credit(PRICE, &rf, &bank_ref()).reversed(),
    ];
    let (status, report) = import_ok(&app, &operator, &camt053(8, &lines)).await;
    assert_eq!(status, 201, "{report}");
    let outcomes = &report["outcomes"];
    assert_eq!(
        outcomes["unmatched"],
        json!({
            "count": 2, "amount": "-25.00",
            "money_in": { "count": 1, "amount": "20.00" },
            "money_out": { "count": 1, "amount": "45.00" },
        }),
        "{report}"
    );
    assert_eq!(
        outcomes["matched"]["money_in"],
        json!({ "count": 1, "amount": "31.72" })
    );
    assert_eq!(outcomes["matched"]["money_out"]["count"], 0);
    assert_eq!(
        outcomes["reversal"]["money_out"],
        json!({ "count": 1, "amount": "31.72" })
    );
    assert_eq!(outcomes["reversal"]["money_in"]["count"], 0);
    assert_eq!(report["money_in"], json!({ "count": 2, "amount": "51.72" }));
    assert_eq!(
        report["money_out"],
        json!({ "count": 2, "amount": "76.72" })
    );
    assert_eq!(stored_cents(&app), file_cents(&lines));
    assert_eq!(stored_cents(&app), -2500);
    let order = app
        .get_json(&customer.token, &format!("/api/v1/orders/{id}"))
        .await;
    assert_eq!(order["transfer"]["amount_received"], "0.00", "{order}");
}

#[tokio::test]
async fn a_bank_reference_reused_for_another_payment_is_imported_and_flagged() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let (first_order, first_rf) = transfer_order(&app, &customer).await;
    let (second_order, second_rf) = transfer_order(&app, &customer).await;
    let reused = bank_ref();
    let linked = bank_ref();
    let january = vec![
        Line::credit(PRICE, &first_rf, &reused).booked(day(2)),
        Line::credit("80.00", "FATTURA 7", &linked).booked(day(2)),
    ];
    // The same reference, another day and another amount: another payment. And the
    // storno of the 80.00 repeating its credit's reference, as banks link the two.
    let february = vec![
        Line::credit(PRICE, &second_rf, &reused).booked(day(20)),
        Line::credit("80.00", "STORNO FATTURA 7", &linked)
            .booked(day(21))
            .reversed(),
    ];
    // The same reference again, as a storno of an amount never credited under it.
    let march = vec![Line::credit("5.00", "STORNO", &reused)
        .booked(day(25))
        .reversed()];
    let first = camt053(8, &january);
    let second = camt053(8, &february);
    let third = camt053(8, &march);

    import_ok(&app, &operator, &first).await;
    let earlier = {
        let mut conn = app.pool.get().unwrap();
        payments::table
            .filter(payments::bank_reference.eq(&reused))
            .select(payments::id)
            .first::<String>(&mut conn)
            .unwrap()
    };
    let (status, report) = import_ok(&app, &operator, &second).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(
        report["new_entries"], 2,
        "not taken for the earlier one: {report}"
    );
    assert_eq!(report["already_imported"], 0);
    let flagged = report["reused_references"].as_array().unwrap();
    assert_eq!(
        flagged.len(),
        1,
        "the linked storno is not flagged: {report}"
    );
    assert_eq!(flagged[0]["bank_reference"], reused.as_str());
    assert_eq!(flagged[0]["amount"], PRICE);
    assert_eq!(flagged[0]["same_reference_as"], earlier.as_str());
    assert_eq!(report["outcomes"]["matched"]["count"], 1, "{report}");
    assert_eq!(
        order_status(&app, &customer, &first_order).await,
        "fulfilled"
    );
    assert_eq!(
        order_status(&app, &customer, &second_order).await,
        "fulfilled"
    );

    let (_, report) = import_ok(&app, &operator, &third).await;
    assert_eq!(report["new_entries"], 1, "{report}");
    assert_eq!(
        report["reused_references"][0]["direction"], "reversal",
        "{report}"
    );

    // Every file again, in another order: nothing new.
    for file in [&third, &second, &first] {
        let (status, again) = import_ok(&app, &operator, file).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["new_entries"], 0, "{again}");
        assert!(again["reused_references"].as_array().unwrap().is_empty());
    }
    let all: Vec<Line> = [january, february, march].concat();
    assert_eq!(stored_cents(&app), file_cents(&all));
    assert_eq!(stored_cents(&app), 2 * 3172 - 500);

    // The queue shows the flag on the later payment.
    let listed = app
        .get_json(&operator.token, "/api/v1/backoffice/payments?limit=100")
        .await;
    let flags: Vec<(&str, &str)> = listed["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| Some((p["amount"].as_str()?, p["same_reference_as"].as_str()?)))
        .collect();
    assert_eq!(flags.len(), 2, "{listed}");
    assert!(flags.iter().all(|(_, earlier_id)| *earlier_id == earlier));
    // And so does the payment's page, with a link to the earlier one; the earlier one's
    // page has no flag.
    let later = listed["payments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["same_reference_as"].is_string())
        .and_then(|p| p["id"].as_str())
        .unwrap()
        .to_owned();
    let (office, _) = Browser::signed_in(&app, &operator.email).await;
    let page = office.get(&format!("/backoffice/pagamenti/{later}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        text_of(&page.body, "same-reference-as").starts_with("da un altro movimento"),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains(&format!("href=\"/backoffice/pagamenti/{earlier}\"")));
    let page = office
        .get(&format!("/backoffice/pagamenti/{earlier}"))
        .await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("id=\"same-reference-as\""));

    // Within one file: both kept, the second flagged; identical twins are not flagged.
    let repeated = bank_ref();
    let twin = bank_ref();
    let one_file = vec![
        Line::credit("12.00", "QUOTA", &repeated),
        Line::credit("13.00", "QUOTA", &repeated),
        Line::credit("7.00", "QUOTA", &twin),
        Line::credit("7.00", "QUOTA", &twin),
    ];
    let file = camt053(8, &one_file);
    let (_, report) = import_ok(&app, &operator, &file).await;
    assert_eq!(report["new_entries"], 4, "{report}");
    let flagged = report["reused_references"].as_array().unwrap();
    assert_eq!(flagged.len(), 1, "{report}");
    assert_eq!(flagged[0]["amount"], "13.00");
    let (_, again) = import_ok(&app, &operator, &file).await;
    assert_eq!(again["new_entries"], 0);
    assert!(again["reused_references"].as_array().unwrap().is_empty());
    let everything: Vec<Line> = [all, one_file].concat();
    assert_eq!(stored_cents(&app), file_cents(&everything));
}

// ---- A batch booked as one sum in the camt.053 and detailed in a camt.054 ----

/// Incoming transfers the bank books as one entry.
pub struct Batch {
    pub entry_reference: String,
    pub booking_date: NaiveDate,
    pub transfers: Vec<Line>,
}

impl Batch {
    fn total_cents(&self) -> i64 {
        file_cents(&self.transfers)
    }

    fn total(&self) -> String {
        let cents = self.total_cents();
        format!("{}.{:02}", cents / 100, cents % 100)
    }

    fn header(&self) -> String {
        format!(
            "<Amt Ccy=\"EUR\">{total}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>\
             <BookgDt><Dt>{date}</Dt></BookgDt><ValDt><Dt>{date}</Dt></ValDt>\
             <AcctSvcrRef>{reference}</AcctSvcrRef>\
             <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn>\
             <Prtry><Cd>48</Cd><Issr>ABI</Issr></Prtry></BkTxCd>",
            total = self.total(),
            date = self.booking_date,
            reference = self.entry_reference,
        )
    }

    fn batch(&self) -> String {
        format!(
            "<Btch><NbOfTxs>{}</NbOfTxs><TtlAmt Ccy=\"EUR\">{}</TtlAmt><CdtDbtInd>CRDT</CdtDbtInd></Btch>",
            self.transfers.len(),
            self.total()
        )
    }

    /// The entry as the day's camt.053 shows it: one sum, the number of transfers, no
    /// payer's references.
    pub fn as_sum(&self) -> String {
        format!(
            "<Ntry>{}<NtryDtls>{}</NtryDtls>\
             <AddtlNtryInf>ACCREDITO CUMULATIVO DI {} BONIFICI SEPA</AddtlNtryInf></Ntry>\n",
            self.header(),
            self.batch(),
            self.transfers.len()
        )
    }

    /// The same entry with its detail, transaction by transaction (each with the bank's
    /// own transaction reference when `transaction_references`), as a camt.054 or the
    /// camt.053 entry's own `TxDtls` show it.
    pub fn in_detail(&self, transaction_references: bool) -> String {
        let transactions: String = self
            .transfers
            .iter()
            .enumerate()
            .map(|(n, line)| {
                let reference = if transaction_references {
                    format!(
                        "<AcctSvcrRef>{}-{:03}</AcctSvcrRef>",
                        self.entry_reference,
                        n + 1
                    )
                } else {
                    String::new()
                };
                let remittance = match &line.scor {
                    Some(rf) => format!(
                        "<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp>\
                         <Ref>{rf}</Ref></CdtrRefInf></Strd>"
                    ),
                    None => line
                        .text
                        .iter()
                        .map(|t| format!("<Ustrd>{t}</Ustrd>"))
                        .collect(),
                };
                format!(
                    "<TxDtls><Refs>{reference}<EndToEndId>E2E-{}-{n}</EndToEndId></Refs>\
                     <Amt Ccy=\"EUR\">{}</Amt><CdtDbtInd>CRDT</CdtDbtInd>\
                     <RltdPties><Dbtr><Pty><Nm>PAYER {n}</Nm></Pty></Dbtr></RltdPties>\
                     <RmtInf>{remittance}</RmtInf></TxDtls>",
                    self.entry_reference, line.amount
                )
            })
            .collect();
        format!(
            "<Ntry>{}<NtryDtls>{}{transactions}</NtryDtls></Ntry>\n",
            self.header(),
            self.batch()
        )
    }
}

/// A camt.053.001.08 of the brand's account with these entries (`Line::entry` or a
/// batch's) as they are.
pub fn camt053_entries(entries: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\"><BkToCstmrStmt>\
         <GrpHdr><MsgId>MSG-{id}</MsgId><CreDtTm>2026-11-23T20:00:00</CreDtTm></GrpHdr>\
         <Stmt><Id>STMT-{id}</Id><CreDtTm>2026-11-23T20:00:00</CreDtTm>{account}\n{entries}</Stmt>\
         </BkToCstmrStmt></Document>\n",
        id = Uuid::new_v4().simple(),
        account = account(IBAN),
    )
}

/// A camt.054.001.08 notification of the brand's account detailing `batch`.
pub fn camt054_detailing(batch: &Batch) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.054.001.08\"><BkToCstmrDbtCdtNtfctn>\
         <GrpHdr><MsgId>NTF-{id}</MsgId><CreDtTm>2026-11-23T20:00:00</CreDtTm></GrpHdr>\
         <Ntfctn><Id>NTF-{id}</Id><CreDtTm>2026-11-23T20:00:00</CreDtTm>{account}\n{entry}</Ntfctn>\
         </BkToCstmrDbtCdtNtfctn></Document>\n",
        id = Uuid::new_v4().simple(),
        account = account(IBAN),
        entry = batch.in_detail(true),
    )
}

/// Three orders paid by transfer, booked together with a transfer without RF code.
async fn batch_of_orders(app: &TestApp, customer: &SignedIn) -> (Batch, Vec<String>) {
    let mut transfers = Vec::new();
    let mut orders = Vec::new();
    for _ in 0..3 {
        let (id, rf) = transfer_order(app, customer).await;
        transfers.push(Line::credit(PRICE, "", &bank_ref()).scor(&rf));
        orders.push(id);
    }
    transfers.push(Line::credit("10.00", "EROGAZIONE LIBERALE", &bank_ref()));
    let batch = Batch {
        entry_reference: format!("CUM{}", &Uuid::new_v4().simple().to_string()[..12]),
        booking_date: Utc::now().date_naive(),
        transfers,
    };
    (batch, orders)
}

async fn coupons(app: &TestApp) -> i64 {
    let mut conn = app.pool.get().unwrap();
    rinnovo::db::schema::coupons::table
        .count()
        .get_result(&mut conn)
        .unwrap()
}

#[tokio::test]
async fn a_sum_in_the_statement_then_its_detail_counts_the_money_once_and_pays_the_orders() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let (batch, orders) = batch_of_orders(&app, &customer).await;
    let other = Line::credit("40.00", "FATTURA 9", &bank_ref());
    let statement = camt053_entries(&format!("{}{}", batch.as_sum(), other.entry(8)));
    let notification = camt054_detailing(&batch);
    let received = batch.total_cents() + 4000;
    assert_eq!(batch.total_cents(), 3 * 3172 + 1000);

    let (_, report) = import_ok(&app, &operator, &statement).await;
    assert_eq!(
        report["outcomes"]["unmatched"]["money_in"]["count"], 2,
        "{report}"
    );
    assert_eq!(stored_cents(&app), received);

    let (status, report) = import_ok(&app, &operator, &notification).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(report["new_entries"], 4, "{report}");
    assert_eq!(
        report["outcomes"]["matched"]["money_in"]["count"], 3,
        "{report}"
    );
    assert_eq!(
        report["replaced_sums"],
        json!({ "count": 1, "amount": "105.16" }),
        "{report}"
    );
    assert_eq!(stored_cents(&app), received, "the sum is now its transfers");
    let mut conn = app.pool.get().unwrap();
    let replaced: i64 = rinnovo::db::schema::audit_log::table
        .filter(rinnovo::db::schema::audit_log::action.eq("payment.replaced_by_detail"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    drop(conn);
    assert_eq!(replaced, 1, "the replaced sum is in the audit log");
    for id in &orders {
        assert_eq!(order_status(&app, &customer, id).await, "fulfilled");
    }

    // Both again, in either order: nothing new.
    for file in [&statement, &notification, &statement] {
        let (status, again) = import_ok(&app, &operator, file).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["new_entries"], 0, "{again}");
    }
    assert_eq!(stored_cents(&app), received);
    assert_eq!(stored_count(&app), 5, "four transfers and the other credit");
    assert_eq!(coupons(&app).await, 3);
}

#[tokio::test]
async fn a_detail_then_the_statement_with_its_sum_counts_the_money_once() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let (batch, orders) = batch_of_orders(&app, &customer).await;
    let other = Line::credit("40.00", "FATTURA 9", &bank_ref());
    let statement = camt053_entries(&format!("{}{}", batch.as_sum(), other.entry(8)));
    let notification = camt054_detailing(&batch);

    let (_, report) = import_ok(&app, &operator, &notification).await;
    assert_eq!(report["outcomes"]["matched"]["count"], 3, "{report}");
    assert_eq!(stored_cents(&app), batch.total_cents());
    for id in &orders {
        assert_eq!(order_status(&app, &customer, id).await, "fulfilled");
    }
    let (status, report) = import_ok(&app, &operator, &statement).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(report["new_entries"], 1, "only the other credit: {report}");
    assert_eq!(
        report["already_imported"], 1,
        "the sum, detailed before: {report}"
    );
    assert_eq!(stored_cents(&app), batch.total_cents() + 4000);

    // The same detail in a camt.053 entry's own TxDtls, without the transactions' own
    // references: the same entry, counted once.
    let detailed_statement = camt053_entries(&batch.in_detail(false));
    let (status, again) = import_ok(&app, &operator, &detailed_statement).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["already_imported"], 4, "{again}");
    assert_eq!(stored_cents(&app), batch.total_cents() + 4000);
    assert_eq!(coupons(&app).await, 3);
}

#[tokio::test]
async fn the_statement_and_its_detail_uploaded_at_once_count_the_money_once() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let (batch, orders) = batch_of_orders(&app, &customer).await;
    let statement = camt053_entries(&batch.as_sum());
    let notification = camt054_detailing(&batch);
    let files = vec![
        statement.clone(),
        notification.clone(),
        statement,
        notification.clone(),
    ];
    for (status, body) in app.upload_statements_at_once(&operator.token, files).await {
        assert!(status == 201 || status == 200, "{status} {body}");
    }
    assert_eq!(
        stored_cents(&app),
        batch.total_cents(),
        "once, whatever the race"
    );
    assert_eq!(coupons(&app).await, 3, "each order fulfilled once");
    // Whichever came first, the detail is what stays.
    let (status, again) = import_ok(&app, &operator, &notification).await;
    assert_eq!(status, 200, "{again}");
    for id in &orders {
        assert_eq!(order_status(&app, &customer, id).await, "fulfilled");
    }
    assert_eq!(stored_count(&app), 4);
}

#[tokio::test]
async fn a_sum_resolved_by_hand_keeps_its_money_when_its_detail_comes() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let (batch, orders) = batch_of_orders(&app, &customer).await;
    import_ok(&app, &operator, &camt053_entries(&batch.as_sum())).await;
    let sum_id = {
        let mut conn = app.pool.get().unwrap();
        payments::table
            .select(payments::id)
            .first::<String>(&mut conn)
            .unwrap()
    };
    // The operator credits the whole sum to the customer's prepaid account.
    let account: Value = app.get_json(&customer.token, "/api/v1/prepaid").await;
    let matched = app
        .post_json_as(
            &operator.token,
            &format!("/api/v1/backoffice/payments/{sum_id}/match"),
            &json!({ "account_id": account["account_id"], "reason": "accredito cumulativo" }),
        )
        .await;
    assert_eq!(matched.status(), 200);

    // Its detail then changes nothing: the money was counted, and spent, once.
    let (status, report) = import_ok(&app, &operator, &camt054_detailing(&batch)).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["new_entries"], 0, "{report}");
    assert_eq!(report["already_imported"], 4, "{report}");
    assert_eq!(stored_cents(&app), batch.total_cents());
    let (balance, ledger) = app.prepaid_balance_and_ledger_sum(&customer.user_id);
    assert_eq!(balance.cents(), batch.total_cents());
    assert_eq!(balance, ledger);
    for id in &orders {
        assert_eq!(order_status(&app, &customer, id).await, "awaiting_payment");
    }
    assert_eq!(coupons(&app).await, 0, "no order paid twice");
}

#[tokio::test]
async fn an_entry_booked_in_the_future_or_before_its_order_waits_for_the_back_office() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let today = Utc::now().date_naive();
    let (made_now, made_now_rf) = transfer_order(&app, &customer).await;
    made_days_ago(&app, &made_now, 0);
    let (ahead, ahead_rf) = transfer_order(&app, &customer).await;
    let (tomorrow, tomorrow_rf) = transfer_order(&app, &customer).await;
    let file = camt053(
        8,
        &[
            Line::credit(PRICE, &made_now_rf, &bank_ref()).booked(today - chrono::Days::new(5)),
            Line::credit(PRICE, &ahead_rf, &bank_ref()).booked(today + chrono::Days::new(3)),
            // A day ahead is the bank's calendar, not an error.
            Line::credit(PRICE, &tomorrow_rf, &bank_ref()).booked(today + chrono::Days::new(1)),
        ],
    );
    let (_, report) = import_ok(&app, &operator, &file).await;
    assert_eq!(report["outcomes"]["unmatched"]["count"], 2, "{report}");
    assert_eq!(report["outcomes"]["matched"]["count"], 1, "{report}");
    assert_eq!(
        order_status(&app, &customer, &made_now).await,
        "awaiting_payment"
    );
    assert_eq!(
        order_status(&app, &customer, &ahead).await,
        "awaiting_payment"
    );
    assert_eq!(order_status(&app, &customer, &tomorrow).await, "fulfilled");

    let queue = app
        .get_json(
            &operator.token,
            "/api/v1/backoffice/payments?status=unmatched",
        )
        .await;
    let reason_of = |rf: &str| {
        queue["payments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["reference"] == rf)
            .map(|p| (p["id"].as_str().unwrap().to_owned(), p["reason"].clone()))
            .unwrap()
    };
    let (before_id, before_reason) = reason_of(&made_now_rf);
    assert_eq!(before_reason, "booked_before_order", "{queue}");
    assert_eq!(reason_of(&ahead_rf).1, "booked_in_future", "{queue}");
    assert_eq!(
        stored_cents(&app),
        3 * 3172,
        "the money is kept, only not applied"
    );

    // The operator, having checked it, matches it by hand: the order is paid.
    let matched = app
        .post_json_as(
            &operator.token,
            &format!("/api/v1/backoffice/payments/{before_id}/match"),
            &json!({ "order_id": made_now, "reason": "data di contabile errata della banca" }),
        )
        .await;
    assert_eq!(matched.status(), 200);
    assert_eq!(order_status(&app, &customer, &made_now).await, "fulfilled");
}
