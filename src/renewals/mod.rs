//! Renewals of the certificates on a device, through the desktop agent:
//!
//! 1. [`request`]: the agent sends, per certificate, a CSR made on the device and a
//!    coupon code; every rule is checked, the coupon is reserved and the renewal `queued`,
//!    in one transaction.
//! 2. [`issuance`]: a batch worker claims queued renewals (never two workers the same
//!    one), signs through the [`crate::ca::CertificateAuthority`] and stores the
//!    certificate: `issued`. Failures retry with backoff, then `failed`.
//! 3. [`install`]: the agent downloads the certificate, installs it and confirms: the new
//!    certificate becomes `active`, the old one `superseded`, the coupon `redeemed`.
//!
//! Also: renewal information for clients that poll (RFC 9773) and reminders by email.

pub mod info;
pub mod install;
pub mod issuance;
mod notify;
pub mod reminders;
pub mod request;
mod signing;
pub mod state;

use diesel::prelude::*;

use crate::db::schema::renewals;
use crate::db::DbConnection;

/// CSR checks are registry-level (enrolment fingerprints keys too); kept reachable here,
/// where the agent's requests use them.
pub use crate::registry::csr;
pub use crate::registry::RenewalState;

/// The policy is the lookup's too, which must not propose what a renewal would refuse.
pub use crate::lookup::RenewalPolicy;

/// Gives a reserved coupon back, unless another renewal still holds it (a coupon that
/// covers both certificates serves both renewals of the device).
///
/// Who frees a coupon (here) and who lets a coupon covering both certificates serve its
/// second one ([`request`]) count the renewals holding it; each counts under the
/// coupon's row lock ([`crate::coupons::state::lock`]), so neither acts on a count the other is
/// about to change.
fn release_coupon(
    conn: &mut DbConnection,
    coupon_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> QueryResult<bool> {
    crate::coupons::state::lock(conn, coupon_id)?;
    let still_held: i64 = renewals::table
        .filter(renewals::coupon_id.eq(coupon_id))
        .filter(renewals::status.eq_any(RenewalState::counted()))
        .count()
        .get_result(conn)?;
    if still_held > 0 {
        return Ok(false);
    }
    crate::coupons::state::release(conn, coupon_id, now)
}
