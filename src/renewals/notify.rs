//! The emails a renewal sends: issued (ready to install), installed, or given up
//! (rejected or failed). They go to
//! the holder's address, or, when the registry has none, to whoever bought the coupon
//! (the professional who sold the renewal).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use crate::brands;
use crate::db::schema::{coupons, devices, holders, renewals, users};
use crate::db::DbConnection;
use crate::mail::outbox::{self, OutgoingEmail};
use crate::mail::templates::EmailKind;
use crate::registry::CertificateKind;

pub(super) enum Notice<'a> {
    /// The new certificate is signed: the desktop agent will download and install it.
    Issued { not_after: DateTime<Utc> },
    Installed {
        serial_number: &'a str,
        not_after: DateTime<Utc>,
    },
    GivenUp {
        reason: &'a str,
        coupon_released: bool,
    },
}

/// Who is told about a renewal, and what about: its device, and the coupon's buyer, told
/// when the holder has no email address.
#[derive(Queryable)]
struct NoticeRow {
    brand_id: String,
    kind: CertificateKind,
    serial: String,
    given_name: String,
    surname: String,
    holder_email: Option<String>,
    buyer_email: String,
    hint: String,
}

/// Queues the email about renewal `renewal_id`, in the caller's transaction.
pub(super) fn enqueue(
    conn: &mut DbConnection,
    renewal_id: &str,
    notice: Notice<'_>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let NoticeRow {
        brand_id,
        kind,
        serial,
        given_name,
        surname,
        holder_email,
        buyer_email,
        hint,
    } = renewals::table
        .inner_join(devices::table.inner_join(holders::table))
        .inner_join(coupons::table.inner_join(users::table.on(users::id.eq(coupons::owner_id))))
        .filter(renewals::id.eq(renewal_id))
        .select((
            renewals::brand_id,
            renewals::kind,
            devices::serial_number,
            holders::given_name,
            holders::surname,
            holders::email,
            users::email,
            coupons::code_hint,
        ))
        .first(conn)?;
    let brand = brands::existing(conn, &brand_id)?;
    let mut context = json!({
        "name": format!("{given_name} {surname}"),
        "brand": brand.name,
        "device": serial,
        "kind": kind.italian(),
        "coupon": hint,
    });
    let template = match notice {
        Notice::Issued { not_after } => {
            context["expires_on"] = json!(not_after.format("%d/%m/%Y").to_string());
            EmailKind::RenewalReady
        }
        Notice::Installed {
            serial_number,
            not_after,
        } => {
            context["serial_number"] = json!(serial_number);
            context["expires_on"] = json!(not_after.format("%d/%m/%Y").to_string());
            EmailKind::RenewalInstalled
        }
        Notice::GivenUp {
            reason,
            coupon_released,
        } => {
            context["reason"] = json!(reason);
            context["coupon_released"] = json!(coupon_released);
            EmailKind::RenewalFailed
        }
    };
    outbox::enqueue(
        conn,
        &OutgoingEmail {
            brand_id: brand.id.clone(),
            kind: template,
            reference: Some(renewal_id.to_owned()),
            sender: brand.sender_address,
            recipient: holder_email.unwrap_or(buyer_email),
            context,
            attachment: None,
        },
        now,
    )?;
    Ok(())
}
