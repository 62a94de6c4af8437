//! Small macros shared by the domain modules.

/// Makes an enum stored as text: `as_str` for writing, `parse` for reading, and the
/// serde names the same as the stored ones.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:tt),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
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
    };
}

/// `columns!(NAME = (table::a, table::b))` declares a constant selection of columns. Diesel
/// columns are unit structs, so the same list is the constant's type and its value; the
/// macro writes it once.
macro_rules! columns {
    ($(#[$meta:meta])* $name:ident = ($($column:path),+ $(,)?)) => {
        $(#[$meta])*
        #[allow(clippy::type_complexity)]
        const $name: ($($column,)+) = ($($column,)+);
    };
}

/// Runs the same diesel expression on whichever concrete connection `conn` holds, for
/// the statements the multi-backend type cannot build (multi-row inserts, `FOR UPDATE`,
/// upserts): `on_backend!(conn, |c| diesel::insert_into(t).values(&rows).execute(c))`.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Postgres($c) => $body,
            $crate::db::DbConnection::Sqlite($c) => $body,
        }
    };
}

/// Inserts many rows at once. On PostgreSQL, from `db::COPY_FROM_ROWS` rows on, with
/// `COPY ... FROM STDIN (FORMAT binary)`, which sends the rows without a statement to parse
/// and plan (a 500-row INSERT of 20 columns is 10,000 bind parameters, parsed and planned
/// every time); fewer rows, and SQLite, get one multi-row INSERT. `rows` is a `Vec` of
/// column tuples, as for `insert_into(..).values(..)`.
macro_rules! insert_many {
    ($conn:expr, $table:expr, $rows:expr) => {{
        let rows = $rows;
        match $conn {
            $crate::db::DbConnection::Postgres(c) if rows.len() >= $crate::db::COPY_FROM_ROWS => {
                diesel::copy_from($table).from_insertable(rows).execute(c)
            }
            $crate::db::DbConnection::Postgres(c) => {
                diesel::insert_into($table).values(rows).execute(c)
            }
            $crate::db::DbConnection::Sqlite(c) => {
                diesel::insert_into($table).values(rows).execute(c)
            }
        }
    }};
}
