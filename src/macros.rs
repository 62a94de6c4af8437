//! Small macros shared by the domain modules.

/// An enum stored as text (made by `text_enum!`): its values in order and the stored name
/// of each, for what reads any of them the same way (a list's filter).
pub trait TextEnum: Copy + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
    /// The value stored as `text`, if any.
    fn parse(text: &str) -> Option<Self>;
}

/// Lets a row read a type straight from a text column, so that the row needs no text
/// field and no conversion of its own: `parse` (`&str` to `Result<Self, String>`) reads
/// the stored text, and a text that no longer parses is a damaged row, which fails the read.
macro_rules! read_from_text_column {
    ($name:ty, $parse:expr) => {
        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = String::from_sql(bytes)?;
                let parse: fn(&str) -> Result<$name, String> = $parse;
                parse(&text).map_err(Into::into)
            }
        }
    };
}

/// Makes an enum stored as text: `as_str` for writing, `parse` for reading input, a
/// column read straight into it, and the serde names the same as the stored ones.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:tt),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, utoipa::ToSchema, diesel::deserialize::FromSqlRow)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::macros::TextEnum for $name {
            const ALL: &'static [Self] = $name::ALL;

            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }

            fn parse(text: &str) -> Option<Self> {
                $name::parse(text)
            }
        }

        // An unknown text is a damaged row, not a user's mistake (the code writes only
        // `as_str`, and CHECK constraints hold most such columns to those texts).
        read_from_text_column!($name, |text| {
            $name::parse(text).ok_or_else(|| format!("unknown {} '{text}' in a stored row", stringify!($name)))
        });
    };
}

/// Declares a use-case's error enum, whose last arm is always the storage failure
/// (`Storage(anyhow::Error)`: answered as an internal error, nothing of it shown), with
/// `From` for each error listed after `storage from`, so that `?` turns a failure of the
/// store (or of a part this use-case only reads through) into that arm:
///
/// ```ignore
/// domain_error! {
///     /// Why an order cannot be placed.
///     #[derive(Debug, thiserror::Error)]
///     pub enum OrderError {
///         #[error("no such order")]
///         NotFound,
///     }
///     storage from diesel::result::Error, PrepaidError
/// }
/// ```
///
/// An error whose store failure may also mean a refusal (a unique index that a concurrent
/// request hit first) leaves diesel's error out of the list and writes its own `From`.
macro_rules! domain_error {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $($arms:tt)* }
        storage from $($source:ty),* $(,)?
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $($arms)*
            // Shown as the whole chain of its cause (`transparent` would need a binding
            // that this macro's hygiene hides from thiserror).
            #[error(fmt = crate::macros::storage_failure)]
            Storage(anyhow::Error),
        }

        impl From<anyhow::Error> for $name {
            fn from(error: anyhow::Error) -> Self {
                Self::Storage(error)
            }
        }

        $(
            impl From<$source> for $name {
                fn from(error: $source) -> Self {
                    Self::Storage(anyhow::Error::from(error))
                }
            }
        )*
    };
}

/// How a use-case's storage failure reads: its cause, with the causes of that.
pub(crate) fn storage_failure(
    cause: &anyhow::Error,
    formatter: &mut std::fmt::Formatter,
) -> std::fmt::Result {
    write!(formatter, "{cause:#}")
}

/// The lapse of a reservation that waits for a bank transfer, written once for the owner
/// modules whose table holds `status`, `reserved_until` and `closed_at` (orders, top-ups):
/// `awaiting_payment_expiry!(top_ups, TopUpStatus, "top-up")` in the table's owner module
/// defines its `due_for_expiry` and `expire`.
macro_rules! awaiting_payment_expiry {
    ($table:ident, $status:ident, $what:literal) => {
        #[doc = concat!("The ", $what, "s still waiting for money past their deadline, the longest overdue first.")]
        pub fn due_for_expiry(
            conn: &mut $crate::db::DbConnection,
            now: chrono::DateTime<chrono::Utc>,
            limit: i64,
        ) -> diesel::QueryResult<Vec<String>> {
            use diesel::prelude::*;
            $table::table
                .filter($table::status.eq($status::AwaitingPayment.as_str()))
                .filter($table::reserved_until.lt(now.naive_utc()))
                // A card payment ends when the provider says so (`payments::card`):
                // money may still be on its way when the page's time is up.
                .filter($table::payment_method.ne($crate::transfer::PaymentMethod::Card.as_str()))
                .order(($table::reserved_until.asc(), $table::id.asc()))
                .limit(limit)
                .select($table::id)
                .load(conn)
        }

        #[doc = concat!("`awaiting_payment` -> `expired`, if the ", $what, " is still waiting past its deadline. A")]
        #[doc = concat!("conditional update: of several workers that see the same ", $what, ", one expires it (true).")]
        pub fn expire(
            conn: &mut $crate::db::DbConnection,
            id: &str,
            now: chrono::DateTime<chrono::Utc>,
        ) -> diesel::QueryResult<bool> {
            use diesel::prelude::*;
            let changed = diesel::update(
                $table::table
                    .filter($table::id.eq(id))
                    .filter($table::status.eq($status::AwaitingPayment.as_str()))
                    .filter($table::reserved_until.lt(now.naive_utc()))
                    .filter($table::payment_method.ne($crate::transfer::PaymentMethod::Card.as_str())),
            )
            .set((
                $table::status.eq($status::Expired.as_str()),
                $table::closed_at.eq(Some(now.naive_utc())),
            ))
            .execute(conn)?;
            Ok(changed > 0)
        }

        #[doc = concat!("`awaiting_payment` -> `status` (an ending), whatever the deadline: the ", $what, "'s card")]
        #[doc = "payment ended unpaid at the provider. A conditional update: true if it ended it."]
        pub fn end_unpaid(
            conn: &mut $crate::db::DbConnection,
            id: &str,
            status: $status,
            now: chrono::DateTime<chrono::Utc>,
        ) -> diesel::QueryResult<bool> {
            use diesel::prelude::*;
            let changed = diesel::update(
                $table::table
                    .filter($table::id.eq(id))
                    .filter($table::status.eq($status::AwaitingPayment.as_str())),
            )
            .set((
                $table::status.eq(status.as_str()),
                $table::closed_at.eq(Some(now.naive_utc())),
            ))
            .execute(conn)?;
            Ok(changed > 0)
        }
    };
}

/// The lease, retry and dead-letter steps of an outbox, written once for the owner modules
/// whose table holds `status` (`pending`/`sent`/`dead`), `attempts`, `next_attempt_at`,
/// `claimed_until`, `last_error` and `brand_id` (emails, SdI transmissions):
/// `leased_outbox!(emails, EmailStatus)` in the table's owner module defines its
/// `lease_due`, `release_failed` and `requeue_dead`; with `, retried as "email" refused as
/// RetryError` also its public `retry`, the operator's audited retry, refused with
/// `RetryError::NotDead`.
macro_rules! leased_outbox {
    ($table:ident, $status:ident, retried as $subject:literal refused as $error:ident) => {
        leased_outbox!($table, $status);

        #[doc = concat!("An operator puts a dead ", $subject, " row of their brand back in the queue, from")]
        #[doc = concat!("zero attempts, audited as `", $subject, ".retried`, in one transaction; refused")]
        #[doc = concat!("with `", stringify!($error), "::NotDead` if no dead row of the brand has this id")]
        /// (perhaps another operator put it back first; nothing is audited then).
        pub fn retry(
            conn: &mut $crate::db::DbConnection,
            operator: $crate::audit::Operator<'_>,
            id: &str,
            now: chrono::DateTime<chrono::Utc>,
        ) -> Result<(), $error> {
            let retried = $crate::db::write_transaction(conn, |conn| -> diesel::QueryResult<bool> {
                if !requeue_dead(conn, operator.brand_id, id, now)? {
                    return Ok(false);
                }
                operator.record(
                    conn,
                    concat!($subject, ".retried"),
                    ($subject, id),
                    serde_json::json!({}),
                    now,
                )?;
                Ok(true)
            })?;
            if !retried {
                return Err($error::NotDead);
            }
            Ok(())
        }
    };
    ($table:ident, $status:ident) => {
        /// Takes the lease on up to `limit` due rows, counting an attempt on each, in the
        /// caller's write transaction; their ids, oldest due first. On PostgreSQL the
        /// candidates are locked with `FOR UPDATE SKIP LOCKED`, so concurrent senders pick
        /// different rows without waiting; on SQLite the immediate transaction serialises
        /// them. A sender that dies mid-send loses the lease when it runs out, and another
        /// takes the row over.
        fn lease_due(
            conn: &mut $crate::db::DbConnection,
            limit: i64,
            lease: chrono::Duration,
            now: chrono::DateTime<chrono::Utc>,
        ) -> diesel::QueryResult<Vec<String>> {
            use diesel::prelude::*;
            let now_naive = now.naive_utc();
            let due = $table::table
                .filter($table::status.eq($status::Pending.as_str()))
                .filter($table::next_attempt_at.le(now_naive))
                .filter(
                    $table::claimed_until
                        .is_null()
                        .or($table::claimed_until.lt(now_naive)),
                )
                .order(($table::next_attempt_at.asc(), $table::id.asc()))
                .select($table::id)
                .limit(limit);
            let ids: Vec<String> = for_update_skip_locked!(conn, due, |q, c| q.load(c))?;
            if !ids.is_empty() {
                diesel::update($table::table.filter($table::id.eq_any(&ids)))
                    .set((
                        $table::claimed_until.eq((now + lease).naive_utc()),
                        $table::attempts.eq($table::attempts + 1),
                    ))
                    .execute(conn)?;
            }
            Ok(ids)
        }

        /// A failed attempt (the `attempts`-th): back to `pending` after the backoff, or
        /// `dead` after the last attempt; the error is kept either way. True if dead.
        fn release_failed(
            conn: &mut $crate::db::DbConnection,
            id: &str,
            attempts: i32,
            error: &str,
            retry: &$crate::workers::RetryPolicy,
            now: chrono::DateTime<chrono::Utc>,
        ) -> diesel::QueryResult<bool> {
            use diesel::prelude::*;
            let dead = attempts >= retry.max_attempts;
            let next = now + $crate::workers::backoff(retry.base, attempts);
            diesel::update($table::table.filter($table::id.eq(id)))
                .set((
                    $table::status.eq(if dead {
                        $status::Dead
                    } else {
                        $status::Pending
                    }
                    .as_str()),
                    $table::next_attempt_at.eq(next.naive_utc()),
                    $table::claimed_until.eq(None::<chrono::NaiveDateTime>),
                    $table::last_error.eq(Some(error.chars().take(1000).collect::<String>())),
                ))
                .execute(conn)?;
            Ok(dead)
        }

        /// A dead row of the brand back in the queue, from zero attempts. `false` if no
        /// dead row of the brand has this id.
        fn requeue_dead(
            conn: &mut $crate::db::DbConnection,
            brand_id: &str,
            id: &str,
            now: chrono::DateTime<chrono::Utc>,
        ) -> diesel::QueryResult<bool> {
            use diesel::prelude::*;
            let changed = diesel::update(
                $table::table
                    .filter($table::id.eq(id))
                    .filter($table::brand_id.eq(brand_id))
                    .filter($table::status.eq($status::Dead.as_str())),
            )
            .set((
                $table::status.eq($status::Pending.as_str()),
                $table::attempts.eq(0),
                $table::next_attempt_at.eq(now.naive_utc()),
                $table::claimed_until.eq(None::<chrono::NaiveDateTime>),
            ))
            .execute(conn)?;
            Ok(changed == 1)
        }
    };
}

#[cfg(test)]
#[allow(dead_code)] // the test's enum uses only part of what the macro makes
mod tests {
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    text_enum!(
        /// A state for the test.
        Light { Green => "green", Red => "red" }
    );

    fn read(conn: &mut SqliteConnection, text: &str) -> QueryResult<Light> {
        diesel::select(text.into_sql::<Text>()).get_result(conn)
    }

    #[test]
    fn a_stored_text_loads_as_its_variant_and_an_unknown_one_fails_the_read() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        assert_eq!(read(&mut conn, "red").unwrap(), Light::Red);
        let error = format!("{:?}", read(&mut conn, "amber").unwrap_err());
        assert!(error.contains("unknown Light 'amber'"), "{error}");
    }

    domain_error! {
        #[derive(Debug, thiserror::Error)]
        enum CrossingError {
            #[error("the light is {0}")]
            NotGreen(Light),
        }
        storage from diesel::result::Error
    }

    fn cross(conn: &mut SqliteConnection, text: &str) -> Result<(), CrossingError> {
        match read(conn, text)? {
            Light::Green => Ok(()),
            other => Err(CrossingError::NotGreen(other)),
        }
    }

    #[test]
    fn a_domain_errors_refusals_read_as_written_and_a_store_failure_reads_as_its_causes() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        assert!(cross(&mut conn, "green").is_ok());
        let refused = cross(&mut conn, "red").unwrap_err();
        assert_eq!(refused.to_string(), "the light is red");
        let failed = cross(&mut conn, "amber").unwrap_err();
        assert!(matches!(failed, CrossingError::Storage(_)), "{failed:?}");
        assert!(
            failed.to_string().contains("unknown Light 'amber'"),
            "{failed}"
        );
        let wrapped = anyhow::anyhow!("disk full").context("writing the order");
        let failed = CrossingError::from(wrapped);
        assert_eq!(failed.to_string(), "writing the order: disk full");
    }
}
