//! The common opening of a signed-in user's page: who, their brand, the CSRF token and the
//! layout's context, taken once by an extractor instead of in every handler.

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest};
use serde_json::{json, Value};

use super::{
    merge, page, signed_in_context, with_conn, Csrf, Operator, PageResult, Shopper, UserFuture,
    WebError,
};
use crate::auth::User;
use crate::brands::{self, Brand};
use crate::db::DbConnection;
use crate::http::State;

/// The brand (shop) called `id`; an unknown one is a 404 page.
pub async fn brand_named(state: &State, id: String) -> Result<Brand, WebError> {
    with_conn(state, move |conn| {
        brands::find(conn, &id)?
            .ok_or_else(|| WebError::NotFound(format!("Nessun negozio '{id}'.")))
    })
    .await
}

/// The common opening of a page: who (`W`, the extractor of the signed-in user), the
/// state and the page's CSRF token, handed to `build`.
fn opening<W, T>(
    request: &HttpRequest,
    build: impl AsyncFnOnce(W, State, Csrf) -> Result<T, WebError> + 'static,
) -> UserFuture<T>
where
    W: FromRequest<Error = WebError>,
    T: 'static,
{
    let request = request.clone();
    Box::pin(async move {
        let who = W::extract(&request).await?;
        build(who, app_state(&request)?, Csrf::of(&request)).await
    })
}

fn app_state(request: &HttpRequest) -> Result<State, WebError> {
    request
        .app_data::<State>()
        .cloned()
        .ok_or_else(|| WebError::Unexpected(anyhow::anyhow!("no state")))
}

/// A form of a brand's shop (`/negozio/{brand}/...`) for a visitor not signed in
/// (sign-in, sign-up): the state, the brand the path names (an unknown one is a 404
/// page) and the page's CSRF token.
pub struct VisitorPage {
    pub state: State,
    pub brand: Brand,
    pub csrf: Csrf,
}

impl VisitorPage {
    /// The form `name` titled `title`, with `fields`: what was typed, the messages.
    pub fn render(
        &self,
        status: StatusCode,
        (name, title): (&str, &str),
        fields: Value,
    ) -> PageResult {
        let brand = &self.brand;
        let context = merge(
            json!({
                "title": title, "brand": brand.id, "brand_name": brand.name, "user": null,
                "csrf_token": self.csrf.token,
                // The sign-up form states the password rule's own length.
                "password_min_length": crate::auth::password::MIN_LENGTH,
            }),
            fields,
        );
        page(&self.state, &self.csrf, status, name, context)
    }
}

impl FromRequest for VisitorPage {
    type Error = WebError;
    type Future = UserFuture<Self>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let state = app_state(&request)?;
            let brand = request.match_info().get("brand").unwrap_or_default();
            let brand = brand_named(&state, brand.to_owned()).await?;
            let csrf = Csrf::of(&request);
            Ok(Self { state, brand, csrf })
        })
    }
}

/// A page of a signed-in buyer (see [`Shopper`]).
pub struct BuyerPage {
    pub state: State,
    pub user: User,
    pub brand: Brand,
    pub csrf: Csrf,
    /// The layout's context: who, the brand, the sections, the sign-out form's token.
    pub base: Value,
}

impl BuyerPage {
    /// Who looks holders up from this page: the buyer, from the address `request` came from
    /// (the same as the API counts, so the limits are shared).
    pub fn lookup_asker(&self, request: &HttpRequest) -> crate::lookup::Asker {
        self.state.lookup_asker(crate::lookup::Caller {
            user_id: self.user.id.clone(),
            role: self.user.role,
            address: crate::http::client_address(request),
        })
    }

    /// The page `name`, with the layout's context and `extra`.
    pub fn render(&self, status: StatusCode, name: &str, extra: Value) -> PageResult {
        let context = merge(self.base.clone(), extra);
        page(&self.state, &self.csrf, status, name, context)
    }

    /// What `work` reads for the buyer, on the blocking pool.
    pub async fn read<T, F>(&self, work: F) -> Result<T, WebError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection, &User) -> Result<T, WebError> + Send + 'static,
    {
        let user = self.user.clone();
        with_conn(&self.state, move |conn| work(conn, &user)).await
    }
}

impl FromRequest for BuyerPage {
    type Error = WebError;
    type Future = UserFuture<Self>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        opening(request, async |Shopper(user), state, csrf| {
            let brand = brand_named(&state, user.brand_id.clone()).await?;
            let base = signed_in_context(&user, &brand.name, &csrf);
            Ok(Self {
                state,
                user,
                brand,
                csrf,
                base,
            })
        })
    }
}

/// A page of a signed-in back-office operator (see [`Operator`]): the state, who, and
/// the CSRF token, the common opening of every back-office page.
pub struct OperatorPage {
    pub state: State,
    pub user: User,
    pub csrf: Csrf,
}

impl FromRequest for OperatorPage {
    type Error = WebError;
    type Future = UserFuture<Self>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        opening(request, async |Operator(user), state, csrf| {
            Ok(Self { state, user, csrf })
        })
    }
}
