//! What a demo needs beyond the registry: users of every role with known passwords, a
//! customer with money to spend, and a bank statement that pays the demo's transfer
//! orders. Only `serve --demo` (and `seed --demo`) and `rinnovo demo statement` use it;
//! an installation that is not a demo never gets these users.

use chrono::{DateTime, Utc};

use crate::audit::Actor;
use crate::auth::{confirmation, users, NewPassword, NewUser, Role};
use crate::billing::{self, BillingInput};
use crate::brands;
use crate::db::{write_transaction, DbConnection};
use crate::email_address::EmailAddress;
use crate::money::Money;
use crate::orders::{self, OrderStatus};
use crate::prepaid;
use crate::registry::CodiceFiscale;
use crate::validation::PersonName;

/// A demo user as the start-up block shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoUser {
    pub brand: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub role: Role,
    pub name: &'static str,
    /// Whose billing data (a person's codice fiscale) the user buys with.
    codice_fiscale: Option<&'static str>,
    /// Put on the prepaid account when the user is made, so the demo can buy at once.
    opening_balance: Option<&'static str>,
}

/// The demo's users. The passwords are public: they are printed at every demo start and
/// written in the README, which is why only demo mode ever creates these accounts.
pub const USERS: [DemoUser; 3] = [
    DemoUser {
        brand: "visura",
        email: "cliente@demo.example",
        password: "negozio demo 2026",
        role: Role::Customer,
        name: "Mario Rossi",
        codice_fiscale: Some("RSSMRA80A01H501U"),
        opening_balance: Some("500.00"),
    },
    DemoUser {
        brand: "visura",
        email: "incaricato@demo.example",
        password: "ufficio demo 2026",
        role: Role::RegistrationOfficer,
        name: "Laura Bianchi",
        codice_fiscale: Some("BNCLRA85T52F205E"),
        // An officer buys in bulk: enough for a hundred coupons.
        opening_balance: Some("2000.00"),
    },
    DemoUser {
        brand: "visura",
        email: "operatore@demo.example",
        password: "sportello demo 2026",
        role: Role::BackOffice,
        name: "Operatore Demo",
        codice_fiscale: None,
        opening_balance: None,
    },
];

/// Creates the demo users that are missing, confirmed, with billing data and their
/// opening balance. Users already there are left as they are (their balance too): a
/// demo restarted keeps what was bought with it. Returns the number created.
pub fn ensure_users(conn: &mut DbConnection, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let mut created = 0;
    for demo in &USERS {
        if users::find_for_login(conn, demo.brand, demo.email)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .is_some()
        {
            continue;
        }
        write_transaction(conn, |conn| add(conn, demo, now))?;
        created += 1;
    }
    Ok(created)
}

fn add(conn: &mut DbConnection, demo: &DemoUser, now: DateTime<Utc>) -> anyhow::Result<()> {
    let email = EmailAddress::parse(demo.email).map_err(|e| anyhow::anyhow!("{e}"))?;
    let new = NewUser {
        brand_id: demo.brand.to_owned(),
        password: NewPassword::parse(demo.password, Some(&email))
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        email,
        name: PersonName::parse(demo.name).map_err(|e| anyhow::anyhow!("{e}"))?,
        role: demo.role,
        codice_fiscale: demo
            .codice_fiscale
            .map(CodiceFiscale::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let user = users::create(conn, new, &Actor::Cli, now).map_err(|e| anyhow::anyhow!("{e}"))?;
    confirmation::confirmed_by_operator(conn, &user, now).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(codice_fiscale) = demo.codice_fiscale {
        let (nome, cognome) = demo.name.split_once(' ').unwrap_or((demo.name, demo.name));
        let input = BillingInput {
            kind: Some("person".into()),
            nome: Some(nome.into()),
            cognome: Some(cognome.into()),
            codice_fiscale: Some(codice_fiscale.into()),
            indirizzo: Some("Via Roma 1".into()),
            cap: Some("00184".into()),
            comune: Some("Roma".into()),
            provincia: Some("RM".into()),
            ..BillingInput::default()
        };
        billing::update(conn, &user.id, demo.brand, &input, now)
            .map_err(|e| anyhow::anyhow!("demo billing data: {e:?}"))?;
    }
    if let Some(amount) = demo.opening_balance {
        let account = prepaid::account_of_owner(conn, &user.id)?;
        prepaid::post(
            conn,
            &account.id,
            prepaid::Posting {
                kind: prepaid::EntryKind::Adjustment,
                amount: Money::parse(amount)?,
                description: "saldo iniziale della demo",
                reference: None,
                actor_id: None,
            },
            now,
        )?;
    }
    Ok(())
}

/// The block `serve --demo` prints at start: who to sign in as.
pub fn users_block() -> String {
    let mut block = String::from("demo users (demo passwords, public):\n");
    for user in &USERS {
        block.push_str(&format!(
            "  {:<7} {:<24} {:<24} {}\n",
            user.brand,
            user.email,
            format!("\"{}\"", user.password),
            user.role
        ));
    }
    block
}

/// A bank statement (camt.053.001.08, as Italian banks send it) with one booked SEPA
/// credit per order, each for what the order still owes and quoting its RF code, to the
/// IBAN of the order's brand: importing it pays the orders as a real statement would.
/// Every order must await a transfer, and all of one brand (a statement is one account's).
pub fn statement(
    conn: &mut DbConnection,
    order_ids: &[String],
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    anyhow::ensure!(!order_ids.is_empty(), "no order to pay");
    let mut credits = Vec::new();
    let mut brand_id: Option<String> = None;
    for id in order_ids {
        let order = orders::find(conn, id)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .ok_or_else(|| anyhow::anyhow!("no order {id}"))?;
        anyhow::ensure!(
            order.status == OrderStatus::AwaitingPayment,
            "order {id} is {}, not awaiting a transfer",
            order.status
        );
        let reference = order
            .payment_reference
            .clone()
            .ok_or_else(|| anyhow::anyhow!("order {id} has no RF code"))?;
        match &brand_id {
            Some(brand) if *brand != order.brand_id => {
                anyhow::bail!("orders of two brands: a statement is one account's")
            }
            _ => brand_id = Some(order.brand_id.clone()),
        }
        credits.push((reference.as_str().to_owned(), order.amount_due()));
    }
    let brand_id = brand_id.expect("at least one order");
    let brand = brands::existing(conn, &brand_id)?;
    Ok(camt053(&brand.iban, &credits, now))
}

fn camt053(iban: &str, credits: &[(String, Money)], now: DateTime<Utc>) -> String {
    let day = now.format("%Y-%m-%d");
    let stamp = now.format("%Y%m%d%H%M%S%3f");
    let created = now.format("%Y-%m-%dT%H:%M:%S%.3f+00:00");
    let entries: String = credits
        .iter()
        .enumerate()
        .map(|(n, (reference, amount))| {
            let n = n + 1;
            // The bank's own reference makes the entry unique: a statement written again
            // for the same order is a new payment, as a second transfer would be.
            format!(
                r#"      <Ntry>
        <NtryRef>{n}</NtryRef>
        <Amt Ccy="EUR">{amount}</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><Dt>{day}</Dt></BookgDt>
        <ValDt><Dt>{day}</Dt></ValDt>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls>
          <TxDtls>
            <Refs><AcctSvcrRef>DEMO-{stamp}-{n}</AcctSvcrRef><EndToEndId>NOTPROVIDED</EndToEndId></Refs>
            <Amt Ccy="EUR">{amount}</Amt>
            <CdtDbtInd>CRDT</CdtDbtInd>
            <RmtInf><Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp><Ref>{reference}</Ref></CdtrRefInf></Strd></RmtInf>
          </TxDtls>
        </NtryDtls>
      </Ntry>
"#
            )
        })
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>DEMO-{stamp}</MsgId><CreDtTm>{created}</CreDtTm></GrpHdr>
    <Stmt>
      <Id>DEMO-{stamp}</Id>
      <CreDtTm>{created}</CreDtTm>
      <Acct><Id><IBAN>{iban}</IBAN></Id><Ccy>EUR</Ccy></Acct>
{entries}    </Stmt>
  </BkToCstmrStmt>
</Document>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_passwords_pass_the_password_rules() {
        for user in &USERS {
            let email = EmailAddress::parse(user.email).unwrap();
            assert!(
                NewPassword::parse(user.password, Some(&email)).is_ok(),
                "{user:?}"
            );
        }
    }
}
