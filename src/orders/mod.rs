//! Orders: lines of coupons, paid from the prepaid account or by transfer.
//!
//! Prepaid: paying is one transaction (debit, invoice number, coupons, emails in the
//! outbox, audit), all or nothing. Transfer: the order waits `awaiting_payment` with an
//! RF code until a statement brings the money (see `payments::reconcile`), which fulfils
//! it through [`fulfilment`] the same way.

pub mod checkout;
pub mod fulfilment;
mod order;
pub mod resend;
pub mod state;

pub use fulfilment::CSV_ATTACHMENT_FROM;
pub use order::{Order, OrderLine, OrderStatus};

pub use state::{
    due_for_expiry, end_unpaid, expire, fulfil_many, record_received, release_received, take_back,
    PaidOrder,
};

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, Actor, AuditEntry};
use crate::auth::Viewer;
use crate::brands;
use crate::card::store as card_store;
use crate::card::{CardPayment, CardSettings, CardTarget};
use crate::catalog::{Product, Quote};
use crate::coupons::{self, CouponKey};
use crate::db::schema::{order_lines, orders};
use crate::db::{self, write_transaction, DbConnection};
use crate::email_address::EmailAddress;
use crate::mail::outbox;
use crate::money::Money;
use crate::paging::{Page, Paged};
use crate::prepaid::{self, EntryKind, Posting, PrepaidError};
use crate::transfer::reservation::{self as reservations, Target};
use crate::transfer::CreditorReference;
pub use crate::transfer::PaymentMethod;

pub use crate::prepaid::Buyer;

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum OrderError {
        #[error(transparent)]
        Prepaid(#[from] PrepaidError),
        #[error("no such order")]
        NotFound,
    }
    storage from diesel::result::Error
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
        let brand = brands::existing(conn, &buyer.brand_id)?;
        let mut order = new_order(buyer, PaymentMethod::Prepaid, products, quote, now);
        order.status = OrderStatus::Fulfilled;
        order.paid_at = Some(now);
        order.fulfilled_at = Some(now);
        state::create(conn, &order)?;

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
        record_by_buyer(
            conn,
            buyer,
            "order.paid",
            &order,
            json!({ "coupons": written.coupons }),
            now,
        )?;

        // Last: from here to commit the brand's invoice counter row is locked, and every
        // other payment of the brand waits.
        order.invoice_number = Some(state::assign_invoice_number(conn, &brand, &order, now)?);
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
        let brand = brands::existing(conn, &buyer.brand_id)?;
        let mut order = new_order(buyer, method, products, quote, now);
        order.reserved_until = Some(now + reservation);
        let reference = reservations::reserve(
            conn,
            &buyer.brand_id,
            now,
            |conn, reference| -> Result<Target, OrderError> {
                order.payment_reference = Some(reference.clone());
                state::create(conn, &order)?;
                Ok(Target::Order(order.id.clone()))
            },
        )?;
        let instructions = reservations::Instructions {
            brand: &brand,
            recipient_name: &buyer.name,
            recipient_email: buyer.email.as_str(),
            method,
            amount: order.gross_total,
            reference: &reference,
            reserved_until: now + reservation,
            purpose: reservations::Purpose::Order {
                order_id: &order.id,
                items: order
                    .lines
                    .iter()
                    .map(|line| reservations::OrderedItem {
                        product: &line.product_name,
                        quantity: line.quantity,
                    })
                    .collect(),
            },
        };
        outbox::enqueue(conn, &instructions.email(), now)?;
        record_by_buyer(
            conn,
            buyer,
            "order.placed",
            &order,
            json!({
                "payment_reference": reference.as_str(),
                "reserved_until": order.reserved_until,
            }),
            now,
        )?;
        Ok(order)
    })
}

/// Places an order to be paid by card on the provider's page: it waits
/// `awaiting_payment`, with its card payment stored `opening`, until the provider says it
/// is paid (then it is fulfilled as a matched transfer is) or the page expired. The
/// session is opened at the provider after this transaction commits; the order is held
/// until the page's expiry, then as long as the provider has not said how it ended.
pub fn place_by_card(
    conn: &mut DbConnection,
    buyer: &Buyer,
    card: &CardSettings,
    products: &[(Product, u32)],
    quote: &Quote,
    now: DateTime<Utc>,
) -> Result<(Order, CardPayment), OrderError> {
    write_transaction(conn, |conn| {
        let mut order = new_order(buyer, PaymentMethod::Card, products, quote, now);
        let expires_at = now + card.session_lifetime;
        order.reserved_until = Some(expires_at);
        state::create(conn, &order)?;
        let payment = card_store::open(
            conn,
            card_store::NewCardPayment {
                brand_id: &buyer.brand_id,
                user_id: &buyer.user_id,
                target: CardTarget::Order(order.id.clone()),
                provider: card.provider.name(),
                amount: order.gross_total,
                expires_at,
            },
            now,
        )?;
        record_by_buyer(
            conn,
            buyer,
            "order.placed",
            &order,
            json!({ "card_payment_id": payment.id }),
            now,
        )?;
        Ok((order, payment))
    })
}

/// One paid order fulfilled: its coupons and emails written, then (last, as the
/// statement import does for its hundreds) the invoice number, the move to fulfilled and
/// the invoice. What a payment matched by hand and a card payment both do; the import
/// does the same in bulk with [`fulfilment::write`] and [`fulfil_many`].
#[allow(clippy::too_many_arguments)]
pub fn fulfil_paid(
    conn: &mut DbConnection,
    key: &CouponKey,
    brand: &brands::Brand,
    order: &Order,
    buyer_name: &str,
    received: Money,
    public_url: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    fulfilment::write(
        conn,
        key,
        brand,
        &[fulfilment::Recipient::of(order, buyer_name)],
        public_url,
        now,
    )?;
    let paid = PaidOrder {
        order,
        received_cents: received.cents(),
    };
    fulfil_many(conn, brand, now, &[paid])
}

/// The audit entry of what the buyer did to an order: how it is paid and its total, as
/// every such entry says them, with what `action` adds (`details`, a JSON object).
fn record_by_buyer(
    conn: &mut DbConnection,
    buyer: &Buyer,
    action: &'static str,
    order: &Order,
    mut details: serde_json::Value,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    if let Some(details) = details.as_object_mut() {
        details.insert(
            "payment_method".into(),
            order.payment_method.as_str().into(),
        );
        details.insert("gross_total".into(), order.gross_total.to_string().into());
    }
    audit::record(
        conn,
        AuditEntry {
            brand_id: Some(&buyer.brand_id),
            actor: &Actor::User(buyer.user_id.clone()),
            action,
            subject_type: "order",
            subject_id: &order.id,
            details,
        },
        now,
    )?;
    Ok(())
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
        email: buyer.email.to_string(),
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

#[derive(Queryable, Selectable)]
#[diesel(table_name = orders)]
struct OrderRow {
    id: String,
    brand_id: String,
    user_id: String,
    status: OrderStatus,
    payment_method: PaymentMethod,
    net_cents: i64,
    vat_cents: i64,
    gross_cents: i64,
    invoice_number: Option<String>,
    email: String,
    created_at: NaiveDateTime,
    paid_at: Option<NaiveDateTime>,
    fulfilled_at: Option<NaiveDateTime>,
    payment_reference: Option<CreditorReference>,
    reserved_until: Option<NaiveDateTime>,
    received_cents: i64,
}

fn from_row(row: OrderRow, lines: Vec<OrderLine>, coupon_count: i64) -> Order {
    Order {
        status: row.status,
        payment_method: row.payment_method,
        payment_reference: row.payment_reference,
        id: row.id,
        brand_id: row.brand_id,
        user_id: row.user_id,
        net_total: Money::from_cents(row.net_cents),
        vat_total: Money::from_cents(row.vat_cents),
        gross_total: Money::from_cents(row.gross_cents),
        invoice_number: row.invoice_number,
        email: row.email,
        created_at: row.created_at.and_utc(),
        paid_at: row.paid_at.map(|t| t.and_utc()),
        fulfilled_at: row.fulfilled_at.map(|t| t.and_utc()),
        lines,
        coupon_count,
        reserved_until: row.reserved_until.map(|t| t.and_utc()),
        received: Money::from_cents(row.received_cents),
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = order_lines)]
struct LineRow {
    line_number: i32,
    product_id: String,
    product_code: String,
    product_name: String,
    quantity: i32,
    net_unit_cents: i64,
    vat_rate_basis_points: i32,
    net_cents: i64,
}

fn line_from_row(row: LineRow) -> OrderLine {
    OrderLine {
        line_number: row.line_number,
        product_id: row.product_id,
        product_code: row.product_code,
        product_name: row.product_name,
        quantity: row.quantity,
        net_unit_price: Money::from_cents(row.net_unit_cents),
        vat_rate_basis_points: row.vat_rate_basis_points,
        net_amount: Money::from_cents(row.net_cents),
    }
}

fn lines_of(conn: &mut DbConnection, order_id: &str) -> QueryResult<Vec<OrderLine>> {
    Ok(order_lines::table
        .filter(order_lines::order_id.eq(order_id))
        .order(order_lines::line_number.asc())
        .select(LineRow::as_select())
        .load(conn)?
        .into_iter()
        .map(line_from_row)
        .collect())
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<Order>, OrderError> {
    let row: Option<OrderRow> = orders::table
        .filter(orders::id.eq(id))
        .select(OrderRow::as_select())
        .first(conn)
        .optional()?;
    let Some(row) = row else {
        return Ok(None);
    };
    let lines = lines_of(conn, id)?;
    let count = coupons::count_for_order(conn, id)?;
    Ok(Some(from_row(row, lines, count)))
}

/// The order `id`, if the viewer may see it ([`Viewer::may_see`]); anyone else's order is
/// answered as unknown, as a made-up id is.
pub fn visible(
    conn: &mut DbConnection,
    viewer: &Viewer<'_>,
    id: &str,
) -> Result<Order, OrderError> {
    find(conn, id)?
        .filter(|order| viewer.may_see(&order.brand_id, &order.user_id))
        .ok_or(OrderError::NotFound)
}

/// One page of the orders, newest first: of one user, or (back-office) of the whole
/// brand; those that pass `filter`, with how many pass it in all.
pub fn list(
    conn: &mut DbConnection,
    brand_id: &str,
    user_id: Option<&str>,
    filter: &OrderFilter,
    page: Page,
) -> Result<Paged<Order>, OrderError> {
    let query = || {
        let mut query = orders::table
            .filter(orders::brand_id.eq(brand_id.to_owned()))
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
        query
    };
    let rows: Paged<OrderRow> = db::load_page(conn, page, query, |query| {
        query
            .order((orders::created_at.desc(), orders::id.desc()))
            .select(OrderRow::as_select())
    })?;
    rows.try_map(|row| {
        let lines = lines_of(conn, &row.id)?;
        let count = coupons::count_for_order(conn, &row.id)?;
        Ok(from_row(row, lines, count))
    })
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
    // The query is written inside the macro: each backend's arm infers its own selection.
    let rows: Vec<OrderRow> = for_update!(
        conn,
        orders::table
            .filter(orders::id.eq_any(ids))
            .order(orders::id.asc())
            .select(OrderRow::as_select()),
        |q, c| q.load(c)
    )?;
    let mut lines_by_order: std::collections::HashMap<String, Vec<OrderLine>> =
        std::collections::HashMap::new();
    for id in ids.chunks(1000) {
        let rows: Vec<(String, LineRow)> = order_lines::table
            .filter(order_lines::order_id.eq_any(id))
            .order((order_lines::order_id.asc(), order_lines::line_number.asc()))
            .select((order_lines::order_id, LineRow::as_select()))
            .load(conn)?;
        for (order_id, row) in rows {
            lines_by_order
                .entry(order_id)
                .or_default()
                .push(line_from_row(row));
        }
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let lines = lines_by_order.remove(&row.id).unwrap_or_default();
            from_row(row, lines, 0)
        })
        .collect())
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
