//! The shape of an operation that many handlers share, said once. A back-office list is
//! always a GET of the operator's brand's rows, a page at a time, refused with 400 for a
//! wrong filter or paging and with 403 for a caller who is not an operator; a back-office
//! action always names one resource by its id in the path and is the operator's alone.
//! Written out in each handler, those promises (and the extractors that keep them) would
//! drift apart.

/// What a back-office list's handler works with: the service, the operator whose brand's
/// rows it lists, and the query (filters and paging) as the caller gave it.
pub(super) struct Listing<F>(
    pub actix_web::web::Data<super::AppState>,
    pub super::extract::CurrentUser,
    pub super::query::Listed<F>,
);

/// What a back-office list's `$run` reads: a page of rows and its paging.
pub(super) type Found<Row> = Result<(Vec<Row>, super::query::PageInfo), super::ApiError>;

/// Declares a documented back-office list handler `$name` that hands a [`Listing`] to
/// `$run`, which reads the page (what `Listed::read_page` returns, for an answer made by
/// `page_of!`); the handler answers it as `$page`:
///
/// ```ignore
/// backoffice_list!(
///     /// Find the brand's users (summary, then description, as for any handler)
///     list = "/api/v1/backoffice/users" as "users_list",
///     filters ListQuery, answers UserListResponse "A page of users",
///     by search
/// );
/// ```
///
/// `filters none` is a list that takes only the paging (`NoFilters`).
macro_rules! backoffice_list {
    (
        $(#[$doc:meta])*
        $name:ident = $path:tt as $operation_id:tt,
        filters none, answers $page:ident $description:tt,
        by $run:ident
    ) => {
        backoffice_list!(@handler $(#[$doc])* $name $path $operation_id
            [crate::http::query::NoFilters]
            [crate::http::query::PageParams]
            [crate::http::responses::BadPaging]
            $page $description $run);
    };
    (
        $(#[$doc:meta])*
        $name:ident = $path:tt as $operation_id:tt,
        filters $filters:ident, answers $page:ident $description:tt,
        by $run:ident
    ) => {
        backoffice_list!(@handler $(#[$doc])* $name $path $operation_id
            [$filters]
            [$filters, crate::http::query::PageParams]
            [crate::http::responses::BadListQuery]
            $page $description $run);
    };
    (
        @handler $(#[$doc:meta])* $name:ident $path:tt $operation_id:tt
        [$filters:ty] [$($params:tt)*] [$($bad_query:tt)*]
        $page:ident $description:tt $run:ident
    ) => {
        $(#[$doc])*
        #[utoipa::path(
            operation_id = $operation_id,
            params($($params)*),
            responses(
                (status = 200, description = $description, body = $page),
                $($bad_query)*,
                crate::http::responses::NotOperator,
            )
        )]
        #[get($path)]
        pub async fn $name(
            state: actix_web::web::Data<crate::http::AppState>,
            crate::http::extract::BackOffice(operator): crate::http::extract::BackOffice,
            listed: crate::http::query::Listed<$filters>,
        ) -> crate::http::ApiResult {
            let found = $run(crate::http::operation::Listing(state, operator, listed)).await?;
            Ok(actix_web::HttpResponse::Ok().json($page::from(found)))
        }
    };
}
pub(super) use backoffice_list;

/// What a back-office action on one of the brand's resources works with: the service, the
/// operator, and the resource's id from the path (whether it is of the operator's brand is
/// the domain's to say).
pub(super) struct Acting(
    pub actix_web::web::Data<super::AppState>,
    pub super::extract::CurrentUser,
    pub String,
);

/// Declares a documented back-office operation `$name` on one resource, named by the path
/// parameter `$param`, that hands an [`Acting`] (and the JSON body, for one that `takes`
/// it) to `$run`, a function or closure that acts and answers:
///
/// ```ignore
/// backoffice_action!(
///     /// Disable a user (summary, then description, as for any handler)
///     post disable = "/api/v1/backoffice/users/{id}/disable" as "users_disable",
///     on "id" "The user's id", takes ReasonRequest,
///     answers (status = 200, description = "Disabled", body = UserResponse),
///     refuses (BadReason, NotOperator, UnknownUser),
///     by |acting, body| act_on_user(acting, body, UserChange::Disable)
/// );
/// ```
///
/// Every one is an operator's only: the 403 of another caller is the refusals' to document
/// (`NotOperator`, or a 403 of its own that says more).
macro_rules! backoffice_action {
    (
        $(#[$doc:meta])*
        $method:ident $name:ident = $path:tt as $operation_id:tt,
        on $param:tt $param_doc:tt $(, takes $body:ident)?,
        answers ($($answer:tt)*),
        refuses ($($refusals:tt)*),
        by $run:expr
    ) => {
        $(#[$doc])*
        #[utoipa::path(
            operation_id = $operation_id,
            params(($param = String, Path, description = $param_doc)),
            $(request_body = $body,)?
            responses(($($answer)*), $($refusals)*)
        )]
        #[$method($path)]
        pub async fn $name(
            state: actix_web::web::Data<crate::http::AppState>,
            crate::http::extract::BackOffice(operator): crate::http::extract::BackOffice,
            id: actix_web::web::Path<String>,
            $(body: crate::http::json::JsonObject<$body>,)?
        ) -> crate::http::ApiResult {
            let acting = crate::http::operation::Acting(state, operator, id.into_inner());
            // The body goes along only for an action that `takes` one (the repetition
            // needs `$body`, hence the identity).
            ($run)(acting $(, std::convert::identity::<crate::http::json::JsonObject<$body>>(body))?)
                .await
        }
    };
}
pub(super) use backoffice_action;
