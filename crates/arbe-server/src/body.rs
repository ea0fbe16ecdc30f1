//! Request bodies as JSON, refused with a problem document that says what was wrong without
//! echoing any of it (serde's own messages quote the input).

use arbe_core::ErrorKind;
use axum::{
    Json,
    extract::{FromRequest, Request, rejection::JsonRejection},
};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// A JSON body of type `T`.
pub(crate) struct Body<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::new(
                ErrorKind::InvalidInput,
                match rejection {
                    JsonRejection::MissingJsonContentType(_) => "request body: Content-Type must be application/json",
                    JsonRejection::JsonSyntaxError(_) => "request body: must be valid JSON",
                    JsonRejection::JsonDataError(_) => {
                        "request body: must match the operation's schema (a field is missing, unknown or of the wrong type)"
                    }
                    JsonRejection::BytesRejection(_) => "request body: must be at most 256 KiB",
                    _ => "request body: could not be read",
                },
            )),
        }
    }
}
