//! Orders: lines of coupons, paid from the prepaid account or by transfer.
//!
//! Prepaid: paying is one transaction (debit, invoice number, coupons, emails in the
//! outbox, audit), all or nothing. Transfer: the order waits `awaiting_payment` with an
//! RF code until a statement brings the money (see `payments::reconcile`), which fulfils
//! it through [`fulfilment`] the same way.

pub mod checkout;
pub mod fulfilment;

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, Actor, AuditEntry};
use crate::brands;
use crate::catalog::{Product, Quote};
use crate::coupons::{self, CouponKey};
use crate::db::schema::{order_lines, orders};
use crate::db::{self, write_transaction, DbConnection};
use crate::email_address::EmailAddress;
use crate::mail::outbox;
use crate::money::Money;
use crate::payments::reservations::{self, Target};
use crate::payments::CreditorReference;
use crate::prepaid::{self, EntryKind, Posting, PrepaidError};

text_enum!(
    OrderStatus {
        AwaitingPayment => "awaiting_payment",
        Paid => "paid",
        Fulfilled => "fulfilled",
        Expired => "expired",
        Cancelled => "cancelled",
    }
);

text_enum!(
    PaymentMethod {
        Prepaid => "prepaid",
        BankTransfer => "bank_transfer",
        PostalSlip => "postal_slip",
        Cheque => "cheque",
    }
);

impl PaymentMethod {
    /// Paid by money that arrives later with an RF code (bank transfer, postal slip,
    /// cheque), rather than at once from the prepaid account.
    pub fn is_transfer(self) -> bool {
        self != PaymentMethod::Prepaid
    }

    pub fn italian(self) -> &'static str {
        match self {
            PaymentMethod::Prepaid => "conto prepagato",
            PaymentMethod::BankTransfer => "bonifico bancario",
            PaymentMethod::PostalSlip => "bollettino postale",
            PaymentMethod::Cheque => "assegno",
        }
    }
}

/// Above this many coupons, the delivery email also carries them as a CSV attachment.
pub const CSV_ATTACHMENT_FROM: usize = 20;

/// Who is buying, as the checkout needs it.
#[derive(Debug, Clone)]
pub struct Buyer {
    pub user_id: String,
    pub brand_id: String,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub line_number: i32,
    pub product_id: String,
    pub product_code: String,
    pub product_name: String,
    pub quantity: i32,
    pub net_unit_price: Money,
    pub vat_rate_basis_points: i32,
    pub net_amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    pub brand_id: String,
    pub user_id: String,
    pub status: OrderStatus,
    pub payment_method: PaymentMethod,
    pub net_total: Money,
    pub vat_total: Money,
    pub gross_total: Money,
    pub invoice_number: Option<String>,
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub fulfilled_at: Option<DateTime<Utc>>,
    pub lines: Vec<OrderLine>,
    pub coupon_count: i64,
    /// The RF code to quote when paying by transfer.
    pub payment_reference: Option<CreditorReference>,
    /// Until when a transfer order waits for its money.
    pub reserved_until: Option<DateTime<Utc>>,
    /// What transfers have brought so far (partial payments add up).
    pub received: Money,
}

impl Order {
    /// What is still to pay: zero once paid, never negative.
    pub fn amount_due(&self) -> Money {
        match self.status {
            OrderStatus::AwaitingPayment if self.received < self.gross_total => {
                self.gross_total - self.received
            }
            _ => Money::ZERO,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error(transparent)]
    Prepaid(#[from] PrepaidError),
    #[error("no such order")]
    NotFound,
    #[error(transparent)]
    Storage(#[from] anyhow::Error),
}

impl From<diesel::result::Error> for OrderError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Storage(error.into())
    }
}

/// Places and pays an order from the buyer's prepaid account, in the caller's
/// transaction (or its own). The invoice number is taken last, so the brand's counter row
/// is locked for the shortest time.
pub fn place_prepaid(
    conn: &mut DbConnection,
    key: &CouponKey,
    buyer: &Buyer,
    products: &[(Product, u32)],
    quote: &Quote,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<Order, OrderError> {
    write_transaction(conn, |conn| {
        let brand = brands::find(conn, &buyer.brand_id)?
            .ok_or_else(|| anyhow::anyhow!("brand {} missing", buyer.brand_id))?;
        let mut order = new_order(buyer, PaymentMethod::Prepaid, products, quote, now);
        order.status = OrderStatus::Fulfilled;
        order.paid_at = Some(now);
        order.fulfilled_at = Some(now);
        insert(conn, &order)?;

        let account = prepaid::account_of_owner(conn, &buyer.user_id)?;
        prepaid::post(
            conn,
            &account.id,
            Posting {
                kind: EntryKind::OrderDebit,
                amount: -quote.gross_total,
                description: "Acquisto coupon",
                reference: Some(&order.id),
                actor_id: Some(&buyer.user_id),
            },
            now,
        )?;

        let written = fulfilment::write(
            conn,
            key,
            &brand,
            &[fulfilment::Recipient::of(&order, &buyer.name)],
            public_url,
            now,
        )?;
        order.coupon_count = written.coupons as i64;
        audit::record(
            conn,
            AuditEntry {
                brand_id: Some(&buyer.brand_id),
                actor: &Actor::User(buyer.user_id.clone()),
                action: "order.paid",
                subject_type: "order",
                subject_id: &order.id,
                details: json!({
                    "payment_method": "prepaid",
                    "gross_total": quote.gross_total.to_string(),
                    "coupons": written.coupons,
                }),
            },
            now,
        )?;

        // Last: from here to commit the brand's invoice counter row is locked, and every
        // other payment of the brand waits.
        order.invoice_number = Some(db::assign_invoice_number(
            conn,
            &order.id,
            &buyer.brand_id,
            &brand.invoice_series,
            now.year(),
        )?);
        Ok(order)
    })
}

/// Places an order to be paid by transfer: it waits `awaiting_payment` with a new RF code
/// until `reserved_until`, and the buyer gets an email with the amount, the code and
/// where to pay. No invoice, no coupons until the money arrives.
#[allow(clippy::too_many_arguments)]
pub fn place_by_transfer(
    conn: &mut DbConnection,
    buyer: &Buyer,
    method: PaymentMethod,
    products: &[(Product, u32)],
    quote: &Quote,
    reservation: Duration,
    now: DateTime<Utc>,
) -> Result<Order, OrderError> {
    debug_assert!(method.is_transfer());
    write_transaction(conn, |conn| {
        let brand = brands::find(conn, &buyer.brand_id)?
            .ok_or_else(|| anyhow::anyhow!("brand {} missing", buyer.brand_id))?;
        let mut order = new_order(buyer, method, products, quote, now);
        order.reserved_until = Some(now + reservation);
        let reference = reservations::reserve(
            conn,
            &buyer.brand_id,
            now,
            |conn, reference| -> Result<Target, OrderError> {
                order.payment_reference = Some(reference.clone());
                insert(conn, &order)?;
                Ok(Target::Order(order.id.clone()))
            },
        )?;
        let instructions = reservations::Instructions {
            brand: &brand,
            recipient_name: &buyer.name,
            recipient_email: &buyer.email,
            method,
            amount: order.gross_total,
            reference: &reference,
            reserved_until: now + reservation,
            purpose: reservations::Purpose::Order {
                order_id: &order.id,
                lines: &order.lines,
            },
        };
        outbox::enqueue(conn, &instructions.email(), now)?;
        audit::record(
            conn,
            AuditEntry {
                brand_id: Some(&buyer.brand_id),
                actor: &Actor::User(buyer.user_id.clone()),
                action: "order.placed",
                subject_type: "order",
                subject_id: &order.id,
                details: json!({
                    "payment_method": method.as_str(),
                    "gross_total": quote.gross_total.to_string(),
                    "payment_reference": reference.as_str(),
                    "reserved_until": order.reserved_until,
                }),
            },
            now,
        )?;
        Ok(order)
    })
}

/// The order as the buyer asked for it, not yet stored.
fn new_order(
    buyer: &Buyer,
    method: PaymentMethod,
    products: &[(Product, u32)],
    quote: &Quote,
    now: DateTime<Utc>,
) -> Order {
    let lines = products
        .iter()
        .zip(&quote.lines)
        .enumerate()
        .map(|(index, ((product, quantity), line))| OrderLine {
            line_number: index as i32 + 1,
            product_id: product.id.clone(),
            product_code: product.code.clone(),
            product_name: product.name.clone(),
            quantity: *quantity as i32,
            net_unit_price: product.net_price,
            vat_rate_basis_points: product.vat_rate.basis_points() as i32,
            net_amount: line.net_amount,
        })
        .collect();
    Order {
        id: Uuid::now_v7().to_string(),
        brand_id: buyer.brand_id.clone(),
        user_id: buyer.user_id.clone(),
        status: OrderStatus::AwaitingPayment,
        payment_method: method,
        net_total: quote.net_total,
        vat_total: quote.vat_total,
        gross_total: quote.gross_total,
        invoice_number: None,
        email: buyer.email.clone(),
        created_at: now,
        paid_at: None,
        fulfilled_at: None,
        lines,
        coupon_count: 0,
        payment_reference: None,
        reserved_until: None,
        received: Money::ZERO,
    }
}

fn insert(conn: &mut DbConnection, order: &Order) -> QueryResult<()> {
    diesel::insert_into(orders::table)
        .values((
            orders::id.eq(&order.id),
            orders::brand_id.eq(&order.brand_id),
            orders::user_id.eq(&order.user_id),
            orders::status.eq(order.status.as_str()),
            orders::payment_method.eq(order.payment_method.as_str()),
            orders::net_cents.eq(order.net_total.cents()),
            orders::vat_cents.eq(order.vat_total.cents()),
            orders::gross_cents.eq(order.gross_total.cents()),
            orders::email.eq(&order.email),
            orders::created_at.eq(order.created_at.naive_utc()),
            orders::paid_at.eq(order.paid_at.map(|t| t.naive_utc())),
            orders::fulfilled_at.eq(order.fulfilled_at.map(|t| t.naive_utc())),
            orders::payment_reference.eq(order.payment_reference.as_ref().map(|r| r.as_str())),
            orders::reserved_until.eq(order.reserved_until.map(|t| t.naive_utc())),
            orders::received_cents.eq(order.received.cents()),
        ))
        .execute(conn)?;
    let lines: Vec<_> = order
        .lines
        .iter()
        .map(|line| {
            (
                order_lines::id.eq(Uuid::now_v7().to_string()),
                order_lines::order_id.eq(&order.id),
                order_lines::line_number.eq(line.line_number),
                order_lines::product_id.eq(&line.product_id),
                order_lines::product_code.eq(&line.product_code),
                order_lines::product_name.eq(&line.product_name),
                order_lines::quantity.eq(line.quantity),
                order_lines::net_unit_cents.eq(line.net_unit_price.cents()),
                order_lines::vat_rate_basis_points.eq(line.vat_rate_basis_points),
                order_lines::net_cents.eq(line.net_amount.cents()),
            )
        })
        .collect();
    on_backend!(conn, |c| diesel::insert_into(order_lines::table)
        .values(lines)
        .execute(c))?;
    Ok(())
}

type OrderRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<String>,
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    Option<String>,
    Option<NaiveDateTime>,
    i64,
);

columns!(
    ORDER_COLUMNS = (
        orders::id,
        orders::brand_id,
        orders::user_id,
        orders::status,
        orders::payment_method,
        orders::net_cents,
        orders::vat_cents,
        orders::gross_cents,
        orders::invoice_number,
        orders::email,
        orders::created_at,
        orders::paid_at,
        orders::fulfilled_at,
        orders::payment_reference,
        orders::reserved_until,
        orders::received_cents,
    )
);

fn from_row(row: OrderRow, lines: Vec<OrderLine>, coupon_count: i64) -> anyhow::Result<Order> {
    let (
        id,
        brand_id,
        user_id,
        status,
        method,
        net,
        vat,
        gross,
        invoice_number,
        email,
        created_at,
        paid_at,
        fulfilled_at,
        payment_reference,
        reserved_until,
        received,
    ) = row;
    Ok(Order {
        status: OrderStatus::parse(&status)
            .ok_or_else(|| anyhow::anyhow!("order {id}: status {status}"))?,
        payment_method: PaymentMethod::parse(&method)
            .ok_or_else(|| anyhow::anyhow!("order {id}: payment method {method}"))?,
        id,
        brand_id,
        user_id,
        net_total: Money::from_cents(net),
        vat_total: Money::from_cents(vat),
        gross_total: Money::from_cents(gross),
        invoice_number,
        email,
        created_at: created_at.and_utc(),
        paid_at: paid_at.map(|t| t.and_utc()),
        fulfilled_at: fulfilled_at.map(|t| t.and_utc()),
        lines,
        coupon_count,
        payment_reference: payment_reference
            .map(|r| CreditorReference::parse(&r))
            .transpose()
            .map_err(|e| anyhow::anyhow!("stored RF code: {e}"))?,
        reserved_until: reserved_until.map(|t| t.and_utc()),
        received: Money::from_cents(received),
    })
}

type LineRow = (i32, String, String, String, i32, i64, i32, i64);

columns!(
    LINE_COLUMNS = (
        order_lines::line_number,
        order_lines::product_id,
        order_lines::product_code,
        order_lines::product_name,
        order_lines::quantity,
        order_lines::net_unit_cents,
        order_lines::vat_rate_basis_points,
        order_lines::net_cents,
    )
);

fn line_from_row(row: LineRow) -> OrderLine {
    let (line_number, product_id, product_code, product_name, quantity, unit, rate, net) = row;
    OrderLine {
        line_number,
        product_id,
        product_code,
        product_name,
        quantity,
        net_unit_price: Money::from_cents(unit),
        vat_rate_basis_points: rate,
        net_amount: Money::from_cents(net),
    }
}

fn lines_of(conn: &mut DbConnection, order_id: &str) -> QueryResult<Vec<OrderLine>> {
    Ok(order_lines::table
        .filter(order_lines::order_id.eq(order_id))
        .order(order_lines::line_number.asc())
        .select(LINE_COLUMNS)
        .load::<LineRow>(conn)?
        .into_iter()
        .map(line_from_row)
        .collect())
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<Order>, OrderError> {
    let row: Option<OrderRow> = orders::table
        .filter(orders::id.eq(id))
        .select(ORDER_COLUMNS)
        .first(conn)
        .optional()?;
    let Some(row) = row else {
        return Ok(None);
    };
    let lines = lines_of(conn, id)?;
    let count = coupons::count_for_order(conn, id)?;
    Ok(Some(from_row(row, lines, count)?))
}

/// Orders newest first: of one user, or (back-office) of the whole brand; those that pass
/// `filter`.
pub fn list(
    conn: &mut DbConnection,
    brand_id: &str,
    user_id: Option<&str>,
    filter: &OrderFilter,
    limit: i64,
) -> Result<Vec<Order>, OrderError> {
    let mut query = orders::table
        .filter(orders::brand_id.eq(brand_id.to_owned()))
        .order((orders::created_at.desc(), orders::id.desc()))
        .limit(limit)
        .select(ORDER_COLUMNS)
        .into_boxed();
    if let Some(user_id) = user_id {
        query = query.filter(orders::user_id.eq(user_id.to_owned()));
    }
    if let Some(status) = filter.status {
        query = query.filter(orders::status.eq(status.as_str()));
    }
    if let Some(reference) = &filter.reference {
        query = query.filter(orders::payment_reference.eq(reference.as_str().to_owned()));
    }
    if let Some(invoice_number) = &filter.invoice_number {
        query = query.filter(orders::invoice_number.eq(invoice_number.clone()));
    }
    if let Some(email) = &filter.email {
        query = query.filter(orders::email.eq(email.as_str().to_owned()));
    }
    if let Some(id) = &filter.id {
        query = query.filter(orders::id.eq(id.clone()));
    }
    let rows: Vec<OrderRow> = query.load(conn)?;
    rows.into_iter()
        .map(|row| {
            let lines = lines_of(conn, &row.0)?;
            let count = coupons::count_for_order(conn, &row.0)?;
            Ok(from_row(row, lines, count)?)
        })
        .collect()
}

/// What to look for among orders; every filter given must hold.
#[derive(Debug, Default, Clone)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub reference: Option<CreditorReference>,
    /// As printed on the invoice (`VIS2026-000123`), upper case.
    pub invoice_number: Option<String>,
    /// The address the order's codes went to.
    pub email: Option<EmailAddress>,
    pub id: Option<String>,
}

impl OrderFilter {
    /// What an operator types into one search box, told apart by its shape: an RF code
    /// (printed in groups or not, any case), an email address, an order id, or else an
    /// invoice number. A customer on the phone quotes whichever they have at hand.
    pub fn from_search_text(text: &str) -> Self {
        let text = text.trim();
        if let Ok(reference) = CreditorReference::parse(text) {
            return Self {
                reference: Some(reference),
                ..Self::default()
            };
        }
        if text.contains('@') {
            return match EmailAddress::parse(text) {
                Ok(email) => Self {
                    email: Some(email),
                    ..Self::default()
                },
                // Not an address any order has: a filter that finds nothing.
                Err(_) => Self {
                    id: Some(text.to_owned()),
                    ..Self::default()
                },
            };
        }
        if let Ok(id) = Uuid::parse_str(text) {
            return Self {
                id: Some(id.hyphenated().to_string()),
                ..Self::default()
            };
        }
        Self {
            invoice_number: Some(text.to_uppercase()),
            ..Self::default()
        }
    }
}

/// Orders by id with their lines, for the statement import: on PostgreSQL the rows stay
/// locked until the import's transaction ends (SQLite's writer lock already excludes
/// every other writer). `coupon_count` is not loaded (0).
pub fn lock_many(conn: &mut DbConnection, ids: &[String]) -> Result<Vec<Order>, OrderError> {
    let query = orders::table
        .filter(orders::id.eq_any(ids))
        .order(orders::id.asc())
        .select(ORDER_COLUMNS);
    let rows: Vec<OrderRow> = match conn {
        DbConnection::Postgres(pg) => query.for_update().load(pg)?,
        DbConnection::Sqlite(sqlite) => query.load(sqlite)?,
    };
    let mut lines_by_order: std::collections::HashMap<String, Vec<OrderLine>> =
        std::collections::HashMap::new();
    for id in ids.chunks(1000) {
        let rows: Vec<(String, LineRow)> = order_lines::table
            .filter(order_lines::order_id.eq_any(id))
            .order((order_lines::order_id.asc(), order_lines::line_number.asc()))
            .select((order_lines::order_id, LINE_COLUMNS))
            .load(conn)?;
        for (order_id, row) in rows {
            lines_by_order
                .entry(order_id)
                .or_default()
                .push(line_from_row(row));
        }
    }
    rows.into_iter()
        .map(|row| {
            let lines = lines_by_order.remove(&row.0).unwrap_or_default();
            Ok(from_row(row, lines, 0)?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_text_is_told_apart_by_its_shape() {
        let rf = CreditorReference::generate();
        let printed = rf.printed().to_lowercase();
        let filter = OrderFilter::from_search_text(&format!("  {printed} "));
        assert_eq!(filter.reference.as_ref(), Some(&rf));
        assert!(filter.invoice_number.is_none() && filter.email.is_none());

        let filter = OrderFilter::from_search_text("Studio.Rossi@Example.IT");
        assert_eq!(
            filter.email.as_ref().map(EmailAddress::as_str),
            Some("studio.rossi@example.it")
        );

        let id = Uuid::now_v7();
        let filter = OrderFilter::from_search_text(&id.simple().to_string().to_uppercase());
        assert_eq!(filter.id, Some(id.hyphenated().to_string()));

        let filter = OrderFilter::from_search_text("vis2026-000123");
        assert_eq!(filter.invoice_number.as_deref(), Some("VIS2026-000123"));

        // Not an address: a filter no order passes rather than every order.
        let filter = OrderFilter::from_search_text("rossi@");
        assert!(filter.email.is_none());
        assert_eq!(filter.id.as_deref(), Some("rossi@"));
    }
}
