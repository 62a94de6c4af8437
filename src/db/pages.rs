//! One page of a list, read the same way by every list: the rows the filter matches are
//! counted (the total, so a client knows how many pages there are), then the page's rows
//! are read in the list's order.

use diesel::dsl::{CountStar, Limit, Offset, Select};
use diesel::query_dsl::methods::{LimitDsl, OffsetDsl, SelectDsl};
use diesel::query_dsl::LoadQuery;
use diesel::RunQueryDsl;

use super::DbConnection;
use crate::paging::{Page, Paged};

/// The `page` of a list: `filtered` builds the list's filter (twice: once counted for the
/// total, once for the rows), `ordered` gives it the list's order and selection; the
/// page's bounds are applied here.
pub fn load_page<'query, Q, R, T>(
    conn: &mut DbConnection,
    page: Page,
    filtered: impl Fn() -> Q,
    ordered: impl FnOnce(Q) -> R,
) -> diesel::QueryResult<Paged<T>>
where
    Q: SelectDsl<CountStar>,
    Select<Q, CountStar>: LoadQuery<'query, DbConnection, i64> + RunQueryDsl<DbConnection>,
    R: LimitDsl,
    Limit<R>: OffsetDsl,
    Offset<Limit<R>>: LoadQuery<'query, DbConnection, T> + RunQueryDsl<DbConnection>,
{
    let total = filtered()
        .select(diesel::dsl::count_star())
        .get_result(conn)?;
    let items = ordered(filtered())
        .limit(page.limit())
        .offset(page.offset())
        .load(conn)?;
    Ok(Paged { items, total })
}
