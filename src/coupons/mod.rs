//! Coupons: one per unit bought, each renewing the certificates its product covers.
//! Codes are shown once (in the delivery email) and stored only as keyed hashes.

pub mod code;
pub mod export;
pub mod state;

pub use state::insert_all;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

pub use code::{CouponCode, CouponCodeError, CouponKey, COUPON_KEY_FILE};

use crate::audit::Operator;
use crate::brands;
use crate::catalog::{round_to_cent, Covers, VatRate};
use crate::db::schema::{coupons, orders, products};
use crate::db::{write_transaction, DbConnection};
use crate::invoices::{self, CreditNoteDraft, CreditedCoupon, InvoiceError, IssuedCreditNote};
use crate::money::Money;
use crate::paging::{Page, Paged};
use crate::prepaid::{self, EntryKind, Posting, PrepaidError};
use crate::validation::Reason;

/// Twelve months (365 days) from purchase.
pub const VALIDITY_DAYS: i64 = 365;

/// The public status check ("verifica stato coupon"), per client address, shared by the
/// API and the pages. Guessing an 80-bit code is hopeless anyway; the limit keeps the
/// service from being used as an oracle at scale and spares the database.
pub const STATUS_CHECKS: crate::rate_limit::Limit = crate::rate_limit::Limit {
    bucket: "coupon_status",
    max_hits: 30,
    window: chrono::Duration::minutes(10),
};

text_enum!(
    /// The stored state; `expired` is derived from `valid_until` when shown.
    CouponStatus {
        Available => "available",
        Reserved => "reserved",
        Redeemed => "redeemed",
        Voided => "voided",
    }
);

text_enum!(
    /// What a user is told: the stored state, or `expired` past validity if unused.
    ShownStatus {
        Available => "available",
        Reserved => "reserved",
        Redeemed => "redeemed",
        Voided => "voided",
        Expired => "expired",
    }
);

impl ShownStatus {
    /// As the pages and the export say it.
    pub fn italian(self) -> &'static str {
        match self {
            Self::Available => "disponibile",
            Self::Reserved => "in uso per un rinnovo",
            Self::Redeemed => "utilizzato",
            Self::Voided => "annullato",
            Self::Expired => "scaduto",
        }
    }
}

impl From<CouponStatus> for ShownStatus {
    /// The stored state as it is told, past validity or not.
    fn from(status: CouponStatus) -> Self {
        match status {
            CouponStatus::Available => Self::Available,
            CouponStatus::Reserved => Self::Reserved,
            CouponStatus::Redeemed => Self::Redeemed,
            CouponStatus::Voided => Self::Voided,
        }
    }
}

fn shown(status: CouponStatus, valid_until: DateTime<Utc>, now: DateTime<Utc>) -> ShownStatus {
    match status {
        CouponStatus::Available | CouponStatus::Reserved if now > valid_until => {
            ShownStatus::Expired
        }
        status => status.into(),
    }
}

/// A coupon about to be stored, with its code (shown once, in the delivery email).
#[derive(Debug, Clone)]
pub struct NewCoupon {
    pub code: CouponCode,
    pub id: String,
    pub brand_id: String,
    pub order_id: String,
    pub owner_id: String,
    pub product_id: String,
    pub net_unit_cents: i64,
    pub vat_rate_basis_points: i32,
    pub valid_until: DateTime<Utc>,
}

impl NewCoupon {
    /// A fresh code for one unit of an order line.
    pub fn generate(
        brand_id: &str,
        order_id: &str,
        owner_id: &str,
        product_id: &str,
        net_unit_cents: i64,
        vat_rate_basis_points: i32,
        valid_until: DateTime<Utc>,
    ) -> Self {
        Self {
            code: CouponCode::generate(),
            id: Uuid::now_v7().to_string(),
            brand_id: brand_id.to_owned(),
            order_id: order_id.to_owned(),
            owner_id: owner_id.to_owned(),
            product_id: product_id.to_owned(),
            net_unit_cents,
            vat_rate_basis_points,
            valid_until,
        }
    }
}

pub fn count_for_order(conn: &mut DbConnection, order_id: &str) -> QueryResult<i64> {
    coupons::table
        .filter(coupons::order_id.eq(order_id))
        .count()
        .get_result(conn)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponView {
    pub id: String,
    pub hint: String,
    pub product_code: String,
    pub product_name: String,
    pub covers: Covers,
    pub order_id: String,
    pub invoice_number: Option<String>,
    pub status: ShownStatus,
    pub valid_until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub redeemed_at: Option<DateTime<Utc>>,
    pub voided_at: Option<DateTime<Utc>>,
}

/// A coupon joined to its product and its order, as the owner's list shows it.
#[derive(Queryable, Selectable)]
#[diesel(table_name = coupons)]
struct ViewRow {
    id: String,
    code_hint: String,
    #[diesel(select_expression = products::code)]
    product_code: String,
    #[diesel(select_expression = products::name)]
    product_name: String,
    #[diesel(select_expression = products::covers)]
    covers: Covers,
    order_id: String,
    #[diesel(select_expression = orders::invoice_number)]
    invoice_number: Option<String>,
    status: CouponStatus,
    valid_until: NaiveDateTime,
    created_at: NaiveDateTime,
    redeemed_at: Option<NaiveDateTime>,
    voided_at: Option<NaiveDateTime>,
}

fn view(row: ViewRow, now: DateTime<Utc>) -> CouponView {
    CouponView {
        covers: row.covers,
        status: shown(row.status, row.valid_until.and_utc(), now),
        id: row.id,
        hint: row.code_hint,
        product_code: row.product_code,
        product_name: row.product_name,
        order_id: row.order_id,
        invoice_number: row.invoice_number,
        valid_until: row.valid_until.and_utc(),
        created_at: row.created_at.and_utc(),
        redeemed_at: row.redeemed_at.map(|t| t.and_utc()),
        voided_at: row.voided_at.map(|t| t.and_utc()),
    }
}

/// A page of the owner's coupons, newest first, codes masked, and how many they have.
pub fn page_for_owner(
    conn: &mut DbConnection,
    owner_id: &str,
    page: Page,
    now: DateTime<Utc>,
) -> anyhow::Result<Paged<CouponView>> {
    // Every coupon has its product and its order, so the joins of the list drop none.
    let total: i64 = coupons::table
        .filter(coupons::owner_id.eq(owner_id))
        .count()
        .get_result(conn)?;
    let items = list_for_owner(conn, owner_id, Some(page), now)?;
    Ok(Paged { items, total })
}

/// The owner's coupons, newest first, codes masked; one page, or all.
pub fn list_for_owner(
    conn: &mut DbConnection,
    owner_id: &str,
    page: Option<Page>,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<CouponView>> {
    let mut query = coupons::table
        .inner_join(products::table)
        .inner_join(orders::table.on(orders::id.eq(coupons::order_id)))
        .filter(coupons::owner_id.eq(owner_id))
        .order((coupons::created_at.desc(), coupons::id.desc()))
        .select(ViewRow::as_select())
        .into_boxed();
    if let Some(page) = page {
        query = query.limit(page.limit()).offset(page.offset());
    }
    let rows: Vec<ViewRow> = query.load(conn)?;
    Ok(rows.into_iter().map(|r| view(r, now)).collect())
}

/// What the "verifica stato coupon" service tells about a code: nothing about its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicStatus {
    pub status: ShownStatus,
    pub covers: Covers,
    pub brand_id: String,
    pub valid_until: DateTime<Utc>,
}

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum StatusCheckError {
        #[error("no coupon has this code")]
        UnknownCode,
        /// The client's address checked too many codes (guessing them is what the limit stops).
        #[error("too many coupon checks; retry in {retry_after_seconds} seconds")]
        TooManyChecks { retry_after_seconds: i64 },
    }
    storage from diesel::result::Error
}

/// A status check from `client` (its address), counted against [`STATUS_CHECKS`]: the
/// coupon's public status, whatever its brand.
pub fn public_status(
    conn: &mut DbConnection,
    key: &CouponKey,
    code: &CouponCode,
    client: &str,
    now: DateTime<Utc>,
) -> Result<PublicStatus, StatusCheckError> {
    if let Err(retry_after_seconds) = crate::rate_limit::hit(conn, STATUS_CHECKS, client, now)? {
        return Err(StatusCheckError::TooManyChecks {
            retry_after_seconds,
        });
    }
    let coupon = by_code(conn, key, code)?.ok_or(StatusCheckError::UnknownCode)?;
    Ok(PublicStatus {
        status: shown(coupon.status, coupon.valid_until, now),
        covers: coupon.covers,
        brand_id: coupon.brand_id,
        valid_until: coupon.valid_until,
    })
}

/// A coupon found by its code, with what its product covers.
#[derive(Queryable, Selectable)]
#[diesel(table_name = coupons)]
pub(crate) struct CodedCoupon {
    pub id: String,
    pub brand_id: String,
    pub status: CouponStatus,
    #[diesel(select_expression = products::covers)]
    pub covers: Covers,
    #[diesel(deserialize_as = crate::db::UtcTimestamp)]
    pub valid_until: DateTime<Utc>,
}

/// The coupon with this code, if any, whatever its brand or status.
pub(crate) fn by_code(
    conn: &mut DbConnection,
    key: &CouponKey,
    code: &CouponCode,
) -> anyhow::Result<Option<CodedCoupon>> {
    let coupon = coupons::table
        .inner_join(products::table)
        .filter(coupons::code_hash.eq(key.hash(code)))
        .select(CodedCoupon::as_select())
        .first(conn)
        .optional()?;
    Ok(coupon)
}

/// The id of the coupon with this code, if any: what the back-office needs when the
/// customer quotes the code (the id appears nowhere the customer sees).
pub fn id_by_code(
    conn: &mut DbConnection,
    key: &CouponKey,
    code: &CouponCode,
) -> QueryResult<Option<String>> {
    coupons::table
        .filter(coupons::code_hash.eq(key.hash(code)))
        .select(coupons::id)
        .first(conn)
        .optional()
}

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum VoidError {
        #[error("no such coupon")]
        NotFound,
        #[error("the coupon belongs to another brand")]
        OtherBrand,
        #[error("only an available coupon can be voided; this one is {0}")]
        NotAvailable(CouponStatus),
        #[error(transparent)]
        Prepaid(#[from] PrepaidError),
        #[error(transparent)]
        Credit(#[from] InvoiceError),
    }
    storage from diesel::result::Error
}

/// A coupon voided: what went back to the owner's prepaid account, and the credit note
/// that credits it (none for an order fulfilled before invoices were issued).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voided {
    pub refund: Money,
    pub credit_note: Option<IssuedCreditNote>,
}

/// Voids an unused coupon, refunds it to the owner's prepaid account and issues the credit
/// note that credits it; one transaction, audited. The status flip is a conditional
/// update, so a coupon being reserved at the same moment is never voided too.
///
/// The refund is the credit note's total: the buyer gets back what the credit note says
/// (the coupon's price with its VAT; see [`crate::invoices::document::credit_vat_summary`]
/// for the cent that keeps an invoice's credit notes within it). An order without an
/// invoice refunds the price as the checkout computed it (net plus IVA, rounded half up).
pub fn void(
    conn: &mut DbConnection,
    operator: Operator<'_>,
    coupon_id: &str,
    reason: &Reason,
    now: DateTime<Utc>,
) -> Result<Voided, VoidError> {
    let Operator {
        id: operator_id,
        brand_id: operator_brand,
    } = operator;
    write_transaction(conn, |conn| {
        /// The coupon to void: whose it is, what it was sold in, and how it is credited.
        #[derive(Queryable, Selectable)]
        #[diesel(table_name = coupons)]
        struct ToVoid {
            brand_id: String,
            owner_id: String,
            order_id: String,
            status: CouponStatus,
            #[diesel(select_expression = state::CREDITED)]
            #[diesel(select_expression_type = state::Credited)]
            coupon: CreditedCoupon,
        }
        let ToVoid {
            brand_id,
            owner_id,
            order_id,
            status,
            coupon,
        } = coupons::table
            .filter(coupons::id.eq(coupon_id))
            .select(ToVoid::as_select())
            .first(conn)
            .optional()?
            .ok_or(VoidError::NotFound)?;
        if brand_id != operator_brand {
            return Err(VoidError::OtherBrand);
        }
        if !state::void_available(conn, coupon_id, now)? {
            return Err(VoidError::NotAvailable(status));
        }
        let brand = brands::existing(conn, &brand_id)?;
        let credit = CreditNoteDraft::of(conn, &brand, &order_id, std::slice::from_ref(&coupon))?;
        let refund = match &credit {
            Some(credit) => credit.total(),
            None => price_with_vat(&coupon)?,
        };
        let account = prepaid::account_of_owner(conn, &owner_id)?;
        prepaid::post(
            conn,
            &account.id,
            Posting {
                kind: EntryKind::Refund,
                amount: refund,
                description: reason.as_str(),
                reference: Some(coupon_id),
                actor_id: Some(operator_id),
            },
            now,
        )?;
        // Numbered after the refund, as every document is numbered last: from then to
        // commit the brand's counters are locked.
        let credit_note = credit.map(|credit| credit.issue(conn, now)).transpose()?;
        let mut details = json!({
            "reason": reason.as_str(),
            "refund": refund.to_string(),
            "credit_note": credit_note.as_ref().map(|note| note.number.as_str()),
        });
        if credit_note.is_none() {
            details["no_credit_note"] = json!(invoices::NO_INVOICE_TO_CREDIT);
        }
        operator.record(conn, "coupon.voided", ("coupon", coupon_id), details, now)?;
        Ok(Voided {
            refund,
            credit_note,
        })
    })
}

/// A coupon's price with its VAT, rounded half up, as the checkout charged it.
pub fn price_with_vat(coupon: &CreditedCoupon) -> anyhow::Result<Money> {
    let rate = coupon.vat_rate_basis_points;
    let rate = VatRate::from_basis_points(rate as u32)
        .ok_or_else(|| anyhow::anyhow!("coupon {}: VAT rate {rate}", coupon.id))?;
    let net = Money::from_cents(coupon.net_unit_cents).amount();
    Ok(round_to_cent(net + net * rate.as_fraction()))
}
