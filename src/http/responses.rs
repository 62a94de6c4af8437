//! Problem responses that several operations document the same way, declared once for
//! the OpenAPI document. Apart from `openapi.rs`, which gathers the operations, so that the
//! handler modules using these never import the module that imports them.

/// A problem response said once and named in each operation that answers with it, as
/// `responses(..., NotOperator)`.
macro_rules! problem_response_type {
    ($(#[$doc:meta])* $name:ident, $status:tt, $description:tt $(, $($more:tt)+)?) => {
        $(#[$doc])*
        #[derive(utoipa::IntoResponses)]
        #[response(
            status = $status,
            description = $description,
            content_type = "application/problem+json"
            $(, $($more)+)?
        )]
        #[allow(dead_code)] // documentation only: the handlers answer with an `ApiError`
        pub(super) struct $name(crate::http::Problem);
    };
}
pub(super) use problem_response_type;

problem_response_type!(
    /// The caller of a back-office operation is not an operator.
    NotOperator,
    403,
    "The caller is not a back-office operator (`/problems/forbidden-role`)"
);
problem_response_type!(
    /// The caller of a buyer's operation does not buy.
    NotBuyer,
    403,
    "The caller's role does not buy (`/problems/forbidden-role`)"
);
problem_response_type!(
    /// The caller of an operation that sends codes or payment emails does not buy, or has
    /// not confirmed their email address yet.
    NotBuyerOrUnconfirmed,
    403,
    "The caller's role does not buy (`/problems/forbidden-role`), or the caller has not \
     confirmed their email address yet (`/problems/email-not-confirmed`)"
);
problem_response_type!(
    /// The JSON body does not fit the request.
    MalformedBody,
    400,
    "Malformed body (`/problems/malformed-request`)"
);
problem_response_type!(
    /// The codice fiscale names no holder with a device of the caller's brand.
    UnknownHolder,
    404,
    "No holder with a device of this brand has this codice fiscale; whether it is \
     registered otherwise is not told (`/problems/unknown-holder`)"
);
problem_response_type!(
    /// The caller has looked up too many holders (a lookup, or a quote for a holder's
    /// device, which looks the holder up).
    TooManyLookups,
    429,
    "Too many lookups by this user or from this address (`/problems/too-many-requests`)",
    headers(("Retry-After" = u32, description = "Seconds to wait before looking up again"))
);
problem_response_type!(
    /// The 401 of an operation that reads the caller's own account.
    AccountGone,
    401,
    "Missing, invalid or expired access token, or the account no longer exists \
     (`/problems/unauthorized`)",
    headers(("WWW-Authenticate" = String, description = "`Bearer`"))
);
problem_response_type!(
    /// A list's query is refused: a filter, the paging, or a parameter it does not take.
    BadListQuery,
    400,
    "A filter is invalid, `limit` or `offset` is out of range, or a parameter is one the \
     list does not take (rule `unknown_parameter`) (`/problems/invalid-field`), or the query \
     string does not fit (`/problems/malformed-request`)"
);
problem_response_type!(
    /// The query of a list that takes no filters is refused: the paging, or a parameter.
    BadPaging,
    400,
    "limit or offset out of range, a parameter the list does not take (rule \
     `unknown_parameter`) (`/problems/invalid-field`)"
);
problem_response_type!(
    /// The reason an operator gives for an action (kept in the audit log) is missing or
    /// invalid.
    BadReason,
    400,
    "The reason is missing or invalid (`/problems/invalid-field`), or the body is not the \
     expected JSON (`/problems/malformed-request`)"
);
