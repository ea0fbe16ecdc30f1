//! Request bodies as JSON objects, refused with a problem document that says what was wrong
//! without echoing any of it (serde's own messages quote the input).

use arbe_core::ErrorKind;
use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::header,
};
use serde::de::DeserializeOwned;

use crate::{ApiError, MAX_BODY_BYTES};

/// A JSON object body of type `T`.
pub(crate) struct Body<T>(pub(crate) T);

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::InvalidInput, detail)
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(invalid("request body: Content-Type must be application/json"));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| invalid(format!("request body: must be at most {} KiB", MAX_BODY_BYTES / 1024)))?;
        // serde reads a struct from a JSON array too (by position); the API takes objects only.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(invalid("request body: must be a JSON object"));
        }
        match serde_json::from_slice::<T>(&bytes) {
            Ok(value) => Ok(Self(value)),
            Err(err) if err.is_syntax() || err.is_eof() => Err(invalid("request body: must be valid JSON")),
            Err(_) => Err(invalid(
                "request body: must match the operation's schema (a field is missing, unknown or of the wrong type)",
            )),
        }
    }
}
