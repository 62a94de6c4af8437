//! Query-string values that break a rule: the same problem JSON as a body field, naming
//! the parameter.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::problem::{self, ApiError, FieldErrors};
use super::AppState;
use crate::db::DbConnection;
use crate::macros::TextEnum;
use crate::paging::{Page, PageError, Paged};
use crate::validation::Rule;

#[derive(Debug, thiserror::Error)]
#[error("{1}")]
pub(super) struct QueryRule(pub &'static str, pub String);

impl Rule for QueryRule {
    fn rule(&self) -> &'static str {
        self.0
    }
}

/// `text` as one of the values of `T` (a stored state or kind), or the rule `one_of`
/// listing them, in their order.
pub(super) fn one_of_all<T: TextEnum>(field: &str, text: &str) -> Result<T, QueryRule> {
    T::parse(text).ok_or_else(|| {
        let names: Vec<&str> = T::ALL.iter().map(|value| value.as_str()).collect();
        QueryRule(
            "one_of",
            format!("{field} must be one of {}", names.join(", ")),
        )
    })
}

impl QueryRule {
    /// The refusal of the parameter `field` alone, for a list that checks it by itself.
    pub(super) fn on(self, field: &str) -> ApiError {
        ApiError::invalid_field(field, self.0, self.1)
    }
}

/// The query parameters of an endpoint, read strictly: a parameter the endpoint does not
/// take is refused (`unknown_parameter`, one error per name) rather than ignored, so a
/// misspelled filter (`?rf=` for `?reference=`) never silently returns everything.
/// `T` is a plain `Deserialize` struct of the filters (no `flatten`): its field names are
/// the parameters the endpoint takes.
pub struct Params<T>(pub T);

/// The query of a list: its filters `T` plus the paging parameters `limit` and `offset`
/// of the one paging rule ([`Page`]), and what it takes to link the next page.
pub struct Listed<T> {
    pub filter: T,
    /// The page asked for, or why `limit` or `offset` is wrong: read through [`Self::page`]
    /// or [`Self::page_checked`], so that no list forgets to refuse a wrong one.
    page: Result<Page, Vec<(&'static str, PageError)>>,
    path: String,
    pairs: Vec<(String, String)>,
}

/// Declares the answer to a paged list: its rows under their own key (`orders`, `users`...)
/// and the [`PageInfo`] members beside them, made from what [`Listed::read_page`] returns:
///
/// ```ignore
/// page_of!(
///     /// A page of the caller's orders, newest first, with the total.
///     OrderListResponse { orders: OrderResponse }
/// );
/// ```
macro_rules! page_of {
    ($(#[$doc:meta])* $name:ident { $rows:ident: $row:ty }) => {
        $(#[$doc])*
        #[derive(serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            $rows: Vec<$row>,
            #[serde(flatten)]
            page: crate::http::query::PageInfo,
        }

        impl From<(Vec<$row>, crate::http::query::PageInfo)> for $name {
            fn from((rows, info): (Vec<$row>, crate::http::query::PageInfo)) -> Self {
                Self { $rows: rows, page: info }
            }
        }
    };
}
pub(super) use page_of;

/// What every paged list answers next to its rows (flattened into the list's object, so
/// the rows keep their key): the total matching the filter, the page asked for, and the
/// address of the next page while rows remain.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PageInfo {
    /// How many rows match the filter, on every page together.
    #[schema(example = 128)]
    pub total: i64,
    /// The most rows this page holds (the `limit` asked for, or the default 50).
    #[schema(example = 50)]
    pub limit: i64,
    /// How many matching rows come before this page.
    #[schema(example = 0)]
    pub offset: i64,
    /// The address of the next page, with the same filters; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "/api/v1/orders?limit=50&offset=50")]
    pub next: Option<String>,
}

impl<T> Listed<T> {
    /// The page asked for, or the problem naming `limit` or `offset`, for a list whose
    /// filters have nothing to check.
    pub fn page(&self) -> Result<Page, ApiError> {
        let mut errors = FieldErrors::default();
        let page = self.page_checked(&mut errors);
        errors.finish().map(|()| page)
    }

    /// The page asked for; a wrong `limit` or `offset` joins the filters' `errors`, so a
    /// client learns every wrong parameter at once (the page is then never used).
    pub fn page_checked(&self, errors: &mut FieldErrors) -> Page {
        match &self.page {
            Ok(page) => *page,
            Err(wrong) => {
                for (field, error) in wrong {
                    errors.refuse(field, error.clone());
                }
                Page::default()
            }
        }
    }

    /// Reads the rows of `page` with `read` (on the blocking pool, like every read) and
    /// answers them as `show` makes each one, with the paging members: how every list
    /// handler ends, once its filters are checked.
    pub async fn read_page<R, V, E>(
        &self,
        state: &AppState,
        page: Page,
        read: impl FnOnce(&mut DbConnection) -> Result<Paged<R>, E> + Send + 'static,
        show: impl FnMut(R) -> V,
    ) -> Result<(Vec<V>, PageInfo), ApiError>
    where
        R: Send + 'static,
        E: Into<ApiError> + Send + 'static,
    {
        let found = state.with_conn(read).await?;
        let info = self.info(page, found.total);
        Ok((found.items.into_iter().map(show).collect(), info))
    }

    /// The paging members of the answer to a list of `total` rows, on `page`.
    pub fn info(&self, page: Page, total: i64) -> PageInfo {
        PageInfo {
            total,
            limit: page.limit(),
            offset: page.offset(),
            next: page.next(total).map(|next| {
                let mut link = url::form_urlencoded::Serializer::new(String::new());
                for (name, value) in &self.pairs {
                    if name != "limit" && name != "offset" {
                        link.append_pair(name, value);
                    }
                }
                link.append_pair("limit", &next.limit().to_string());
                link.append_pair("offset", &next.offset().to_string());
                format!("{}?{}", self.path, link.finish())
            }),
        }
    }
}

/// The names of the fields of the struct `T` deserializes into, asked of serde itself
/// (a deserializer that records the field list a derived struct hands it and stops), so
/// the list of parameters an endpoint takes is never written twice.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};
    use std::cell::Cell;

    struct Recorder<'a>(&'a Cell<&'static [&'static str]>);
    impl<'de> de::Deserializer<'de> for Recorder<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.set(fields);
            Err(de::Error::custom("fields recorded"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }
    let fields = Cell::new(&[][..]);
    let _ = T::deserialize(Recorder(&fields));
    fields.get()
}

/// Reads the query string of `request` into `T`, refusing parameters that are neither a
/// field of `T` nor one of `also` (each refusal goes into `errors`); the pairs are
/// returned too, for the parameters in `also`.
fn read_strictly<T: DeserializeOwned>(
    request: &HttpRequest,
    also: &[&str],
    errors: &mut FieldErrors,
) -> Result<(T, Vec<(String, String)>), ApiError> {
    let query = request.query_string();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let known = field_names::<T>();
    let mut unknown: Vec<&str> = Vec::new();
    for (name, _) in &pairs {
        let is_known = known.contains(&name.as_str()) || also.contains(&name.as_str());
        if !is_known && !unknown.contains(&name.as_str()) {
            unknown.push(name);
        }
    }
    let taken: Vec<&str> = known.iter().chain(also).copied().collect();
    for name in unknown {
        let detail = if taken.is_empty() {
            "this endpoint takes no query parameters".to_owned()
        } else {
            format!(
                "{name} is not a parameter here; the parameters are: {}",
                taken.join(", ")
            )
        };
        errors.refuse(name, QueryRule("unknown_parameter", detail));
    }
    match web::Query::<T>::from_query(query) {
        Ok(filter) => Ok((filter.into_inner(), pairs)),
        // Unknown parameters are the likelier mistake: name them first.
        Err(malformed) => {
            std::mem::take(errors).finish()?;
            Err(problem::malformed_query(malformed))
        }
    }
}

impl<T: DeserializeOwned> FromRequest for Params<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;
    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready((|| {
            let mut errors = FieldErrors::default();
            let (filter, _) = read_strictly::<T>(request, &[], &mut errors)?;
            errors.finish()?;
            Ok(Params(filter))
        })())
    }
}

impl<T: DeserializeOwned> FromRequest for Listed<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;
    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready((|| {
            let mut unknown = FieldErrors::default();
            let (filter, pairs) = read_strictly::<T>(request, &["limit", "offset"], &mut unknown)?;
            let value = |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, value)| value.as_str())
            };
            let (limit, offset) = (
                Page::parse_limit(value("limit")),
                Page::parse_offset(value("offset")),
            );
            let page = match (limit, offset) {
                (Ok(limit), Ok(offset)) => Page::new(limit, offset).map_err(|e| vec![("limit", e)]),
                (limit, offset) => Err([("limit", limit.err()), ("offset", offset.err())]
                    .into_iter()
                    .filter_map(|(field, error)| Some((field, error?)))
                    .collect()),
            };
            let listed = Listed {
                filter,
                page,
                path: request.path().to_owned(),
                pairs,
            };
            // Unknown parameters are refused at once, with what is wrong in the paging.
            if !unknown.is_empty() {
                listed.page_checked(&mut unknown);
                unknown.finish()?;
            }
            Ok(listed)
        })())
    }
}

/// The paging parameters of every list, for the OpenAPI document (read by [`Listed`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageParams {
    /// The most rows to return: 1 to 500, 50 when not given.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<i64>,
    /// How many matching rows to skip (the `offset` of the previous page plus its `limit`).
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
}

/// The filters of a list that has none: only `limit` and `offset` are taken.
#[derive(serde::Deserialize)]
pub struct NoFilters {}

/// A documented operation, to tell whether it takes query parameters.
struct Operation {
    method: actix_web::http::Method,
    /// The path's segments; `None` stands for a `{parameter}`.
    segments: Vec<Option<String>>,
    takes_query: bool,
}

impl Operation {
    fn matches(&self, method: &actix_web::http::Method, path: &[&str]) -> bool {
        self.method == method
            && self.segments.len() == path.len()
            && self
                .segments
                .iter()
                .zip(path)
                .all(|(segment, given)| segment.as_deref().is_none_or(|s| s == *given))
    }
}

/// Every operation of the OpenAPI document: the document is where each endpoint's query
/// parameters are declared, so it is also what says which endpoints take none.
pub struct Operations(Vec<Operation>);

impl Operations {
    pub fn of(document: utoipa::openapi::OpenApi) -> Self {
        use actix_web::http::Method;
        use utoipa::openapi::path::ParameterIn;
        let mut operations = Vec::new();
        for (path, item) in document.paths.paths {
            let segments: Vec<Option<String>> = path
                .trim_start_matches('/')
                .split('/')
                .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                .collect();
            let methods = [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::PATCH, &item.patch),
                (Method::DELETE, &item.delete),
            ];
            for (method, operation) in methods {
                let Some(operation) = operation else { continue };
                let takes_query = operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Query));
                operations.push(Operation {
                    method,
                    segments: segments.clone(),
                    takes_query,
                });
            }
        }
        Self(operations)
    }
}

/// The refusal of a query string sent to a documented endpoint that takes none: every
/// parameter named, as the endpoints that take some refuse the ones they don't. Others
/// (pages, probes, undocumented routes, endpoints with parameters) are left to their
/// handlers.
pub(super) fn refuse_undeclared_query(
    operations: &Operations,
    request: &actix_web::dev::ServiceRequest,
) -> Option<ApiError> {
    let query = request.query_string();
    // The API only: probes and scrapers of /health and /metrics may add what they like.
    if query.is_empty() || !request.path().starts_with("/api/") {
        return None;
    }
    let path: Vec<&str> = request.path().trim_start_matches('/').split('/').collect();
    let mut matching = operations
        .0
        .iter()
        .filter(|o| o.matches(request.method(), &path))
        .peekable();
    matching.peek()?;
    if matching.any(|o| o.takes_query) {
        return None;
    }
    let mut errors = FieldErrors::default();
    let mut named: Vec<String> = Vec::new();
    for (name, _) in url::form_urlencoded::parse(query.as_bytes()) {
        if !named.contains(&name.to_string()) {
            let rule = QueryRule(
                "unknown_parameter",
                "this endpoint takes no query parameters".to_owned(),
            );
            errors.refuse(&name, rule);
            named.push(name.into_owned());
        }
    }
    errors.finish().err()
}
