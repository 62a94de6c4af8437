//! When a certificate can be renewed: one pure function of (now, not_after).
//!
//! The window opens 90 days before expiry and closes at expiry. RFC 5280 makes
//! `notAfter` part of the validity period ("notBefore through notAfter, inclusive"), so
//! at the very instant of `not_after` the certificate is still valid and still renewable;
//! one second later it is expired and can never be renewed, only replaced.

use chrono::{DateTime, Duration, Utc};

pub const RENEWAL_WINDOW_DAYS: i64 = 90;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eligibility {
    /// Too early: the window opens at `window_opens_at`.
    NotYetRenewable { window_opens_at: DateTime<Utc> },
    /// Inside the window. `days_left` counts whole days until expiry (0 on the last day).
    Renewable {
        days_left: i64,
        expires_at: DateTime<Utc>,
    },
    /// Past `not_after`.
    Expired { expired_at: DateTime<Utc> },
}

pub fn renewal_window_opens_at(not_after: DateTime<Utc>) -> DateTime<Utc> {
    not_after - Duration::days(RENEWAL_WINDOW_DAYS)
}

pub fn eligibility(now: DateTime<Utc>, not_after: DateTime<Utc>) -> Eligibility {
    let window_opens_at = renewal_window_opens_at(not_after);
    if now > not_after {
        Eligibility::Expired {
            expired_at: not_after,
        }
    } else if now < window_opens_at {
        Eligibility::NotYetRenewable { window_opens_at }
    } else {
        Eligibility::Renewable {
            days_left: (not_after - now).num_days(),
            expires_at: not_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn not_after() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, 15, 23, 59, 59).unwrap()
    }

    fn second() -> Duration {
        Duration::seconds(1)
    }

    #[test]
    fn window_opens_exactly_ninety_days_before_expiry() {
        let opens = Utc.with_ymd_and_hms(2026, 12, 15, 23, 59, 59).unwrap();
        assert_eq!(renewal_window_opens_at(not_after()), opens);

        assert_eq!(
            eligibility(opens - second(), not_after()),
            Eligibility::NotYetRenewable {
                window_opens_at: opens
            }
        );
        assert_eq!(
            eligibility(opens, not_after()),
            Eligibility::Renewable {
                days_left: 90,
                expires_at: not_after()
            }
        );
        assert_eq!(
            eligibility(opens + second(), not_after()),
            Eligibility::Renewable {
                days_left: 89,
                expires_at: not_after()
            }
        );
    }

    #[test]
    fn renewable_until_the_instant_of_expiry_then_expired() {
        assert_eq!(
            eligibility(not_after() - second(), not_after()),
            Eligibility::Renewable {
                days_left: 0,
                expires_at: not_after()
            }
        );
        assert_eq!(
            eligibility(not_after(), not_after()),
            Eligibility::Renewable {
                days_left: 0,
                expires_at: not_after()
            }
        );
        assert_eq!(
            eligibility(not_after() + second(), not_after()),
            Eligibility::Expired {
                expired_at: not_after()
            }
        );
    }

    #[test]
    fn days_left_counts_whole_days() {
        let now = not_after() - Duration::days(30) - Duration::hours(5);
        assert!(matches!(
            eligibility(now, not_after()),
            Eligibility::Renewable { days_left: 30, .. }
        ));
    }

    #[test]
    fn far_from_the_window_and_long_expired() {
        assert!(matches!(
            eligibility(not_after() - Duration::days(1000), not_after()),
            Eligibility::NotYetRenewable { .. }
        ));
        assert!(matches!(
            eligibility(not_after() + Duration::days(1000), not_after()),
            Eligibility::Expired { .. }
        ));
    }
}
