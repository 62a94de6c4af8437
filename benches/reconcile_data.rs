//! Prepares and measures the data of benches/reconcile.sh.
//!
//!   cargo bench --bench reconcile_data -- orders DATABASE_URL EMAIL COUNT
//!       places COUNT transfer orders (one RIN-FIRMA coupon each) for the customer EMAIL
//!       of brand visura, through the service's own order code (RF code, reservation,
//!       instructions email, audit): what a customer's POST /api/v1/orders does.
//!   cargo bench --bench reconcile_data -- statement DATABASE_URL FILE ENTRIES
//!       writes one camt.053.001.08 for visura's IBAN with ENTRIES booked credits for the
//!       open orders: per 100 orders 85 exact, 5 short, 3 over, 3 paid twice (the second
//!       credit is a duplicate) and 4 unpaid with a credit carrying an unknown RF code
//!       instead. Prints the expected outcome counts.
//!   cargo bench --bench reconcile_data -- parse FILE
//!       times the statement parser alone on FILE (the reference figure).

use std::fmt::Write as _;
use std::time::Instant;

use chrono::Utc;
use diesel::prelude::*;
use rinnovo::catalog::{self, RequestedLine};
use rinnovo::db::schema::{orders, users};
use rinnovo::db::{build_pool, DatabaseUrl};
use rinnovo::money::Money;
use rinnovo::orders::{self as order_book, Buyer, PaymentMethod};
use rinnovo::payments::creditor_reference::CreditorReference;

const BRAND: &str = "visura";
const IBAN: &str = "IT60X0542811101000000123456";
const THREADS: usize = 4;

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; only the positional arguments matter here.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["orders", url, email, count] => place_orders(url, email, count.parse()?),
        ["statement", url, file, entries] => write_statement(url, file, entries.parse()?),
        ["parse", file] => time_parse(file),
        _ => {
            eprintln!("usage: reconcile_data orders URL EMAIL COUNT | statement URL FILE ENTRIES | parse FILE");
            std::process::exit(2);
        }
    }
}

fn place_orders(url: &str, email: &str, count: usize) -> anyhow::Result<()> {
    let url = DatabaseUrl::parse(url).map_err(anyhow::Error::msg)?;
    let pool = build_pool(&url, THREADS as u32)?;
    let mut conn = pool.get()?;
    let (user_id, name): (String, String) = users::table
        .filter(users::brand_id.eq(BRAND))
        .filter(users::email.eq(email))
        .select((users::id, users::name))
        .first(&mut conn)?;
    // Orders email their payment instructions: only to a confirmed address (users made
    // with `rinnovo user add` are).
    let user = rinnovo::auth::users::find(&mut conn, &user_id)?
        .ok_or_else(|| anyhow::anyhow!("no user {user_id}"))?;
    let email = rinnovo::auth::confirmation::confirmed_email(&user)?;
    let products = catalog::resolve(
        &mut conn,
        BRAND,
        &[RequestedLine {
            product: "RIN-FIRMA".into(),
            quantity: 1,
        }],
    )?;
    drop(conn);
    let items: Vec<_> = products.iter().map(|(p, q)| (p.priced(), *q)).collect();
    let quote = catalog::quote(&items);
    let buyer = Buyer {
        user_id,
        brand_id: BRAND.into(),
        name,
        email,
    };
    let started = Instant::now();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..THREADS)
            .map(|worker| {
                let (pool, buyer, products, quote) = (&pool, &buyer, &products, &quote);
                scope.spawn(move || -> anyhow::Result<()> {
                    let mut conn = pool.get()?;
                    for _ in (worker..count).step_by(THREADS) {
                        order_book::place_by_transfer(
                            &mut conn,
                            buyer,
                            PaymentMethod::BankTransfer,
                            products,
                            quote,
                            chrono::Duration::days(10),
                            Utc::now(),
                        )
                        .map_err(|e| anyhow::anyhow!("placing an order: {e}"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("order thread panicked")?;
        }
        Ok(())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "placed {count} transfer orders in {seconds:.1} s ({:.0} orders/s)",
        count as f64 / seconds
    );
    Ok(())
}

fn write_statement(url: &str, file: &str, entries: usize) -> anyhow::Result<()> {
    let url = DatabaseUrl::parse(url).map_err(anyhow::Error::msg)?;
    let mut conn = build_pool(&url, 1)?.get()?;
    let open: Vec<(Option<String>, i64)> = orders::table
        .filter(orders::brand_id.eq(BRAND))
        .filter(orders::status.eq("awaiting_payment"))
        .order(orders::id)
        .select((orders::payment_reference, orders::gross_cents))
        .load(&mut conn)?;
    let today = Utc::now().date_naive();
    let mut out = String::with_capacity(entries * 800);
    let (mut exact, mut short, mut over, mut duplicate, mut unknown) = (0, 0, 0, 0, 0);
    let mut written = 0;
    for (index, (reference, gross)) in open.iter().enumerate() {
        if written >= entries {
            break;
        }
        let reference = reference
            .as_deref()
            .expect("transfer orders have an RF code");
        match index % 100 {
            0..=84 => {
                write_entry(&mut out, &mut written, today, *gross, reference);
                exact += 1;
            }
            85..=89 => {
                write_entry(&mut out, &mut written, today, gross - 1_000, reference);
                short += 1;
            }
            90..=92 => {
                write_entry(&mut out, &mut written, today, gross + 500, reference);
                over += 1;
            }
            93..=95 if written + 2 <= entries => {
                write_entry(&mut out, &mut written, today, *gross, reference);
                write_entry(&mut out, &mut written, today, *gross, reference);
                exact += 1;
                duplicate += 1;
            }
            _ => {
                write_entry(
                    &mut out,
                    &mut written,
                    today,
                    *gross,
                    CreditorReference::generate().as_str(),
                );
                unknown += 1;
            }
        }
    }
    anyhow::ensure!(
        written == entries,
        "only {written} entries: place more orders"
    );
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\"><BkToCstmrStmt>\
         <GrpHdr><MsgId>BENCH-{today}</MsgId><CreDtTm>{today}T20:00:00</CreDtTm></GrpHdr>\
         <Stmt><Id>BENCH-{today}</Id><CreDtTm>{today}T20:00:00</CreDtTm>\
         <Acct><Id><IBAN>{IBAN}</IBAN></Id><Ccy>EUR</Ccy></Acct>\n{out}</Stmt>\
         </BkToCstmrStmt></Document>\n"
    );
    std::fs::write(file, &document)?;
    eprintln!(
        "wrote {file}: {written} credits, {:.1} MB",
        document.len() as f64 / 1e6
    );
    // Machine-readable for the script: the outcomes the import must report.
    println!(
        "matched={exact} partial={short} overpaid={over} duplicate={duplicate} unmatched={unknown}"
    );
    Ok(())
}

/// One booked credit of a camt.053 statement, with a unique bank reference.
fn write_entry(
    out: &mut String,
    written: &mut usize,
    today: chrono::NaiveDate,
    cents: i64,
    reference: &str,
) {
    *written += 1;
    let written = *written;
    let amount = Money::from_cents(cents);
    let bank_reference = format!("BENCH{written:09}");
    writeln!(
        out,
        "<Ntry><Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>\
         <BookgDt><Dt>{today}</Dt></BookgDt><ValDt><Dt>{today}</Dt></ValDt>\
         <AcctSvcrRef>{bank_reference}</AcctSvcrRef><BkTxCd/><NtryDtls><TxDtls>\
         <Refs><AcctSvcrRef>{bank_reference}</AcctSvcrRef><EndToEndId>NOTPROVIDED</EndToEndId></Refs>\
         <Amt Ccy=\"EUR\">{amount}</Amt><RltdPties><Dbtr><Pty><Nm>Studio Rossi {written}</Nm></Pty></Dbtr></RltdPties>\
         <RmtInf><Ustrd>RINNOVO FIRMA {reference}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"
    )
    .expect("writing to a String");
}

/// The parser as the service runs it: from the file on disk, the entries into a spool.
fn time_parse(file: &str) -> anyhow::Result<()> {
    let opened = std::fs::File::open(file)?;
    let spool_dir = std::env::temp_dir();
    let mut best = f64::MAX;
    let mut entries = 0;
    for _ in 0..3 {
        let started = Instant::now();
        let parsed = rinnovo::payments::statement::read_file(&opened, &spool_dir)?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        best = best.min(started.elapsed().as_secs_f64());
        entries = parsed.entries.len();
    }
    println!("{best:.3} {entries}");
    Ok(())
}
