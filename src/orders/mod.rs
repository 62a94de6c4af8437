//! Orders: lines of coupons, paid from the prepaid account (this module) or by transfer
//! (a later milestone). Paying is one transaction: debit, invoice number, coupons,
//! emails in the outbox, audit. All or nothing.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, Actor, AuditEntry};
use crate::brands::{self, Brand};
use crate::catalog::{Product, Quote};
use crate::coupons::{self, CouponKey};
use crate::db::schema::{order_lines, orders};
use crate::db::{self, write_transaction, DbConnection};
use crate::mail::outbox::{self, Attachment, OutgoingEmail};
use crate::money::Money;
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
    fn italian(self) -> &'static str {
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
}

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error(transparent)]
    Prepaid(#[from] PrepaidError),
    #[error("payment by {0} is not available yet")]
    UnsupportedPayment(PaymentMethod),
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
        let order_id = Uuid::now_v7().to_string();
        diesel::insert_into(orders::table)
            .values((
                orders::id.eq(&order_id),
                orders::brand_id.eq(&buyer.brand_id),
                orders::user_id.eq(&buyer.user_id),
                orders::status.eq(OrderStatus::Fulfilled.as_str()),
                orders::payment_method.eq(PaymentMethod::Prepaid.as_str()),
                orders::net_cents.eq(quote.net_total.cents()),
                orders::vat_cents.eq(quote.vat_total.cents()),
                orders::gross_cents.eq(quote.gross_total.cents()),
                orders::email.eq(&buyer.email),
                orders::created_at.eq(now.naive_utc()),
                orders::paid_at.eq(Some(now.naive_utc())),
                orders::fulfilled_at.eq(Some(now.naive_utc())),
            ))
            .execute(conn)?;
        let mut lines = Vec::with_capacity(products.len());
        for (index, ((product, quantity), line)) in products.iter().zip(&quote.lines).enumerate() {
            lines.push(OrderLine {
                line_number: index as i32 + 1,
                product_id: product.id.clone(),
                product_code: product.code.clone(),
                product_name: product.name.clone(),
                quantity: *quantity as i32,
                net_unit_price: product.net_price,
                vat_rate_basis_points: product.vat_rate.basis_points() as i32,
                net_amount: line.net_amount,
            });
            diesel::insert_into(order_lines::table)
                .values((
                    order_lines::id.eq(Uuid::now_v7().to_string()),
                    order_lines::order_id.eq(&order_id),
                    order_lines::line_number.eq(index as i32 + 1),
                    order_lines::product_id.eq(&product.id),
                    order_lines::product_code.eq(&product.code),
                    order_lines::product_name.eq(&product.name),
                    order_lines::quantity.eq(*quantity as i32),
                    order_lines::net_unit_cents.eq(product.net_price.cents()),
                    order_lines::vat_rate_basis_points.eq(product.vat_rate.basis_points() as i32),
                    order_lines::net_cents.eq(line.net_amount.cents()),
                ))
                .execute(conn)?;
        }

        let account = prepaid::account_of_owner(conn, &buyer.user_id)?;
        prepaid::post(
            conn,
            &account.id,
            Posting {
                kind: EntryKind::OrderDebit,
                amount: -quote.gross_total,
                description: "Acquisto coupon",
                reference: Some(&order_id),
                actor_id: Some(&buyer.user_id),
            },
            now,
        )?;

        let valid_until = now + Duration::days(coupons::VALIDITY_DAYS);
        let mut issued = Vec::new();
        for (product, quantity) in products {
            for _ in 0..*quantity {
                let code = coupons::issue(
                    conn,
                    key,
                    &buyer.brand_id,
                    &order_id,
                    &buyer.user_id,
                    product,
                    valid_until,
                    now,
                )?;
                issued.push((code, product));
            }
        }

        audit::record(
            conn,
            AuditEntry {
                brand_id: Some(&buyer.brand_id),
                actor: &Actor::User(buyer.user_id.clone()),
                action: "order.paid",
                subject_type: "order",
                subject_id: &order_id,
                details: json!({
                    "payment_method": "prepaid",
                    "gross_total": quote.gross_total.to_string(),
                    "coupons": issued.len(),
                }),
            },
            now,
        )?;

        let mut order = Order {
            id: order_id.clone(),
            brand_id: buyer.brand_id.clone(),
            user_id: buyer.user_id.clone(),
            status: OrderStatus::Fulfilled,
            payment_method: PaymentMethod::Prepaid,
            net_total: quote.net_total,
            vat_total: quote.vat_total,
            gross_total: quote.gross_total,
            invoice_number: None,
            email: buyer.email.clone(),
            created_at: now,
            paid_at: Some(now),
            fulfilled_at: Some(now),
            lines,
            coupon_count: issued.len() as i64,
        };
        // The emails print the invoice number, which the dispatcher reads from the order
        // when it sends them: they can be written before the number is taken.
        for email in order_emails(&brand, buyer, &order, &issued, valid_until, public_url) {
            outbox::enqueue(conn, &email, now)?;
        }

        // Last: from here to commit the brand's invoice counter row is locked, and every
        // other payment of the brand waits.
        order.invoice_number = Some(db::assign_invoice_number(
            conn,
            &order_id,
            &buyer.brand_id,
            &brand.invoice_series,
            now.year(),
        )?);
        Ok(order)
    })
}

/// The coupon delivery (codes, how to renew) and the receipt (invoice number, amounts),
/// as template values: rendering happens when the dispatcher sends them, which adds the
/// order's invoice number (`reference` is the order).
fn order_emails(
    brand: &Brand,
    buyer: &Buyer,
    order: &Order,
    issued: &[(coupons::CouponCode, &Product)],
    valid_until: DateTime<Utc>,
    public_url: &str,
) -> Vec<OutgoingEmail> {
    let valid_until_text = valid_until.format("%d/%m/%Y").to_string();
    let attachment = (issued.len() > CSV_ATTACHMENT_FROM).then(|| {
        let mut csv = String::from("codice,prodotto,valido_fino_al\n");
        for (code, product) in issued {
            csv.push_str(&format!(
                "{code},\"{}\",{valid_until_text}\n",
                product.name.replace('"', "\"\"")
            ));
        }
        Attachment {
            file_name: format!(
                "coupon-{}-{}.csv",
                order.created_at.format("%Y%m%d"),
                &order.id[..8]
            ),
            content_type: "text/csv",
            content: csv,
        }
    });
    let coupons_context: Vec<_> = issued
        .iter()
        .map(|(code, product)| json!({ "code": code.to_string(), "product": product.name, "valid_until": valid_until_text }))
        .collect();
    let delivery = OutgoingEmail {
        brand_id: brand.id.clone(),
        kind: "coupon_delivery",
        reference: Some(order.id.clone()),
        sender: brand.sender_address.clone(),
        recipient: buyer.email.clone(),
        context: json!({
            "name": buyer.name, "brand": brand.name,
            "single": issued.len() == 1, "count": issued.len(), "coupons": coupons_context,
            "attachment": attachment.as_ref().map(|a| a.file_name.clone()),
            "public_url": public_url,
        }),
        attachment,
    };
    let lines: Vec<_> = order
        .lines
        .iter()
        .map(|l| json!({
            "product": l.product_name, "quantity": l.quantity, "net_amount": l.net_amount.to_string(),
            "vat_rate": format!("{:.2}", rust_decimal::Decimal::new(l.vat_rate_basis_points as i64, 2)),
        }))
        .collect();
    let receipt = OutgoingEmail {
        brand_id: brand.id.clone(),
        kind: "order_receipt",
        reference: Some(order.id.clone()),
        sender: brand.sender_address.clone(),
        recipient: buyer.email.clone(),
        context: json!({
            "name": buyer.name, "brand": brand.name,
            "date": order.created_at.format("%d/%m/%Y").to_string(),
            "payment_method": order.payment_method.italian(), "lines": lines,
            "net_total": order.net_total.to_string(), "vat_total": order.vat_total.to_string(),
            "gross_total": order.gross_total.to_string(),
        }),
        attachment: None,
    };
    vec![delivery, receipt]
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
    })
}

type LineRow = (i32, String, String, String, i32, i64, i32, i64);

fn lines_of(conn: &mut DbConnection, order_id: &str) -> QueryResult<Vec<OrderLine>> {
    Ok(order_lines::table
        .filter(order_lines::order_id.eq(order_id))
        .order(order_lines::line_number.asc())
        .select((
            order_lines::line_number,
            order_lines::product_id,
            order_lines::product_code,
            order_lines::product_name,
            order_lines::quantity,
            order_lines::net_unit_cents,
            order_lines::vat_rate_basis_points,
            order_lines::net_cents,
        ))
        .load::<LineRow>(conn)?
        .into_iter()
        .map(
            |(line_number, product_id, product_code, product_name, quantity, unit, rate, net)| {
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
            },
        )
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

/// Orders newest first: of one user, or (back-office) of the whole brand.
pub fn list(
    conn: &mut DbConnection,
    brand_id: &str,
    user_id: Option<&str>,
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
    let rows: Vec<OrderRow> = query.load(conn)?;
    rows.into_iter()
        .map(|row| {
            let lines = lines_of(conn, &row.0)?;
            let count = coupons::count_for_order(conn, &row.0)?;
            Ok(from_row(row, lines, count)?)
        })
        .collect()
}
