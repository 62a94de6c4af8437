//! JSON request bodies. `web::Json<T>` would take `[null, null]` for a struct of two
//! optional fields (serde reads a struct from an array too), so a PATCH sent as an array
//! would pass as "change nothing". Every body of this API is an object: [`JsonObject`]
//! refuses anything else with a problem, then reads the struct as `web::Json` would (same
//! size limit, same content-type rule, same errors).

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::problem::ApiError;

/// A JSON object body read into `T`.
pub struct JsonObject<T>(T);

impl<T> JsonObject<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonObject<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Json::<serde_json::Value>::from_request(request, payload);
        Box::pin(async move {
            let value = body.await?.into_inner();
            if !value.is_object() {
                return Err(ApiError::MalformedRequest(
                    "the JSON body must be an object ({...})".into(),
                )
                .into());
            }
            T::deserialize(value).map(JsonObject).map_err(|e| {
                ApiError::MalformedRequest(format!("the JSON body does not fit: {e}")).into()
            })
        })
    }
}
