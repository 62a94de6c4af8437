//! JSON request bodies. `web::Json<T>` would take `[null, null]` for a struct of two
//! optional fields (serde reads a struct from an array too), so a PATCH sent as an array
//! would pass as "change nothing". Every body of this API is an object: [`JsonObject`]
//! refuses anything else with a problem, then reads the struct as `web::Json` would (same
//! size limit, same content-type rule, same errors).
//!
//! A key given twice (`{"amount": "1", "amount": "1000"}`) is refused too: serde_json
//! would keep the last value silently, and a proxy or a log reading the first one would
//! see another request than the one served.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

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
        let body = web::Json::<NoDuplicateKeys>::from_request(request, payload);
        Box::pin(async move {
            let NoDuplicateKeys(value) = body.await?.into_inner();
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

/// A JSON value read with every object's keys unique: a repeated key is an error naming
/// it.
struct NoDuplicateKeys(Value);

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(NoDuplicateKeysVisitor)
            .map(NoDuplicateKeys)
    }
}

struct NoDuplicateKeysVisitor;

impl<'de> Visitor<'de> for NoDuplicateKeysVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(NoDuplicateKeys(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let NoDuplicateKeys(value) = map.next_value()?;
            if members.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "the key `{key}` is given twice; give each key once"
                )));
            }
            members.insert(key, value);
        }
        Ok(Value::Object(members))
    }
}
