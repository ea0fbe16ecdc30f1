//! Every error as a problem document: the status and `type` from the error's [`ErrorKind`], the
//! detail from its message (which names the field and the rule, never the input), and for
//! internal errors a generic detail while the real one goes to the log.

use arbe_api::{PROBLEM_JSON, Problem};
use arbe_core::{Classify, ErrorKind};
use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    kind: ErrorKind,
    detail: String,
    /// Seconds to wait, for `RateLimited`.
    retry_after: Option<u64>,
    /// A route that does not take the method: 405, which no [`ErrorKind`] maps to.
    method_not_allowed: bool,
}

impl ApiError {
    /// An error of `kind` saying `detail`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self { kind, detail: detail.into(), retry_after: None, method_not_allowed: false }
    }

    /// 405: the route exists and does not take this method.
    pub fn method_not_allowed() -> Self {
        Self {
            method_not_allowed: true,
            ..Self::new(
                ErrorKind::Unsupported,
                "this route does not take that method; the Allow header lists those it takes",
            )
        }
    }

    /// Too many requests: try again in `seconds`.
    pub fn rate_limited(detail: impl Into<String>, seconds: u64) -> Self {
        Self { retry_after: Some(seconds), ..Self::new(ErrorKind::RateLimited, detail) }
    }

    /// Its kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Failed authentication: one answer, whichever part was wrong.
    pub fn unauthenticated() -> Self {
        Self::new(ErrorKind::Unauthenticated, "a valid API key is required: Authorization: Bearer <key>")
    }
}

impl<E: Classify> From<E> for ApiError {
    fn from(err: E) -> Self {
        match err.kind() {
            ErrorKind::Internal | ErrorKind::Misconfigured => {
                tracing::error!(error = %err, "a request failed inside the server");
                Self::new(err.kind(), "the server could not complete the request; its log says why")
            }
            ErrorKind::Unauthenticated => Self::unauthenticated(),
            kind => Self::new(kind, err.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut problem = Problem::new(self.kind, self.detail);
        if self.method_not_allowed {
            problem.type_ = "urn:arbe:error:method_not_allowed".into();
            problem.title = "Method not allowed".into();
            problem.status = 405;
        }
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).expect("a problem serializes");
        let mut response = (status, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response();
        if self.kind == ErrorKind::Unauthenticated {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        response
    }
}
