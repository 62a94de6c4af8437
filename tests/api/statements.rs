//! Statement files for the tests, built around the RF codes and amounts a test needs:
//! camt.053 (001.08 and 001.02), camt.054, camt.053 in the CBI envelope, postal CSV.

use chrono::{NaiveDate, Utc};

pub const IBAN: &str = "IT60X0542811101000000123456";
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

    fn entry(&self, version: u8) -> String {
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

fn account() -> String {
    format!("<Acct><Id><IBAN>{IBAN}</IBAN></Id><Ccy>EUR</Ccy></Acct>")
}

/// A camt.053 of message version `version` (2 to 8).
pub fn camt053(version: u8, lines: &[Line]) -> String {
    let entries: String = lines.iter().map(|l| l.entry(version)).collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.0{version}\"><BkToCstmrStmt>\
         <GrpHdr><MsgId>MSG-{id}</MsgId><CreDtTm>2026-11-23T20:00:00</CreDtTm></GrpHdr>\
         <Stmt><Id>STMT-{id}</Id><CreDtTm>2026-11-23T20:00:00</CreDtTm>{account}\n{entries}</Stmt>\
         </BkToCstmrStmt></Document>\n",
        id = uuid::Uuid::new_v4().simple(),
        account = account(),
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
        account = account(),
    )
}

/// A camt.053.001.02 statement in the Italian CBI envelope, elements prefixed.
pub fn cbi_camt053(lines: &[Line]) -> String {
    let entries: String = lines.iter().map(|l| l.entry(2)).collect();
    // Every element of the statement in the DLST namespace, as the banks send it.
    let body = format!(
        "<GrpHdr><MsgId>RH0542</MsgId><CreDtTm>2026-11-23T21:30:00</CreDtTm></GrpHdr>\
         <Stmt><Id>0542</Id><CreDtTm>2026-11-23T21:30:00</CreDtTm>{}\n{entries}</Stmt>",
        account()
    );
    let prefixed = prefix_elements(&body, "DLST");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <BODY:CBIBdyBkToCstmrStmtReq xmlns:BODY=\"urn:CBI:xsd:CBIBdyBkToCstmrStmtReq.00.01.02\" \
         xmlns:LMSG=\"urn:CBI:xsd:CBIBkToCstmrStmtReqLogMsg.00.01.02\" \
         xmlns:DLST=\"urn:CBI:xsd:CBIDlyStmtReqLogMsg.00.01.02\">\
         <BODY:PhyMsgInf><BODY:NbOfLogMsg>1</BODY:NbOfLogMsg></BODY:PhyMsgInf>\
         <BODY:CBIEnvelBkToCstmrStmtReqLogMsg><BODY:CBIBkToCstmrStmtReqLogMsg>\
         <LMSG:CBIDlyStmtReqLogMsg>{prefixed}</LMSG:CBIDlyStmtReqLogMsg>\
         </BODY:CBIBkToCstmrStmtReqLogMsg></BODY:CBIEnvelBkToCstmrStmtReqLogMsg>\
         </BODY:CBIBdyBkToCstmrStmtReq>\n"
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
