//! Provider failures → auth | billing | quota | network | unknown (reference table D), with
//! whether a retry can help and how long the provider asked us to wait.

use std::time::Duration;

use arbe_core::ErrorClass;
use serde_json::Value;

use crate::ProviderFailure;

/// The longest message kept from a provider's error body.
const MESSAGE_MAX: usize = 300;

/// Classifies a failed response (an HTTP status with its body) or a mid-stream error event
/// (`status: None`, the event's data as the body). Never panics, whatever the body.
pub fn classify_provider_error(
    provider: &str,
    model: &str,
    status: Option<u16>,
    body: &str,
    retry_after: Option<Duration>,
) -> ProviderFailure {
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    // OpenAI/OpenRouter: {"error": {...}}; Anthropic: {"type":"error","error":{...}}.
    let error = json.get("error").unwrap_or(&Value::Null);
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let message = text(&error["message"])
        .or_else(|| text(error))
        .or_else(|| text(&json["message"]))
        .unwrap_or_else(|| body.chars().take(MESSAGE_MAX).collect::<String>());
    let kind = text(&error["type"]).unwrap_or_default();
    let code = match &error["code"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let detail_code = text(&error["details"]["error_code"]).unwrap_or_default();
    // OpenRouter puts the HTTP-like status in error.code, also inside 200 streams.
    let status = status.or_else(|| error["code"].as_u64().and_then(|c| u16::try_from(c).ok()));
    let lower = message.to_ascii_lowercase();

    let billing = matches!(code.as_str(), "insufficient_quota" | "credit_balance_exhausted")
        || matches!(kind.as_str(), "insufficient_quota" | "billing_error")
        || detail_code == "enforced_spend_limit_reached"
        || lower.contains("credit balance is too low")
        || lower.contains("spend limit")
        || lower.contains("insufficient credits");
    let moderation = !error["metadata"]["reasons"].is_null();

    let (class, retryable) = match (status, kind.as_str()) {
        _ if billing => (ErrorClass::Billing, false),
        (Some(402), _) | (_, "billing_error") => (ErrorClass::Billing, false),
        (Some(403), _) if moderation => (ErrorClass::Unknown, false),
        (Some(401 | 403), _) | (_, "authentication_error" | "permission_error") => (ErrorClass::Auth, false),
        (Some(429), _) | (_, "rate_limit_error") => (ErrorClass::Quota, true),
        (Some(408 | 504), _) | (_, "timeout_error") => (ErrorClass::Network, true),
        (Some(500..=599), _) | (_, "server_error" | "api_error" | "overloaded_error" | "service_unavailable_error") => {
            (ErrorClass::Network, true)
        }
        (Some(409), _) => (ErrorClass::Network, true),
        _ => (ErrorClass::Unknown, false),
    };
    let mut message: String = message.trim().chars().take(MESSAGE_MAX).collect();
    if message.is_empty() {
        message = match status {
            Some(status) => format!("{provider} answered HTTP {status}"),
            None => format!("{provider} reported an error"),
        };
    }
    ProviderFailure {
        class,
        message,
        provider: provider.to_owned(),
        model: model.to_owned(),
        status,
        retryable,
        retry_after: if retryable { retry_after } else { None },
    }
}

/// Classifies a failure to reach the provider or to read its answer.
pub fn classify_transport_error(provider: &str, model: &str, err: &reqwest::Error) -> ProviderFailure {
    let (class, retryable, what) = if err.is_timeout() {
        (ErrorClass::Network, true, "timed out")
    } else if err.is_connect() {
        (ErrorClass::Network, true, "could not connect")
    } else if err.is_body() || err.is_decode() || err.is_request() {
        (ErrorClass::Network, true, "connection failed mid-request")
    } else {
        (ErrorClass::Unknown, false, "request failed")
    };
    ProviderFailure {
        class,
        message: format!("{provider} {what}"),
        provider: provider.to_owned(),
        model: model.to_owned(),
        status: None,
        retryable,
        retry_after: None,
    }
}

/// The wait a response asks for: `retry-after-ms`, else `retry-after` in seconds.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    retry_after_at(headers, chrono::Utc::now())
}

/// [`retry_after`] as of `now`: seconds (`retry-after-ms`, `retry-after`) or an HTTP date
/// (`retry-after: Wed, 21 Oct 2026 07:28:00 GMT`), capped at an hour.
fn retry_after_at(headers: &reqwest::header::HeaderMap, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    let seconds = |name: &str| text(name)?.parse::<f64>().ok();
    let date = || {
        let at = chrono::DateTime::parse_from_rfc2822(text("retry-after")?).ok()?;
        Some((at.with_timezone(&chrono::Utc) - now).num_milliseconds().max(0) as f64 / 1000.0)
    };
    let wait = seconds("retry-after-ms").map(|ms| ms / 1000.0).or_else(|| seconds("retry-after")).or_else(date)?;
    (wait.is_finite() && wait >= 0.0).then(|| Duration::from_secs_f64(wait.min(3600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: Option<u16>, body: &str) -> (ErrorClass, bool) {
        let f = classify_provider_error("p", "m", status, body, Some(Duration::from_secs(2)));
        (f.class, f.retryable)
    }

    #[test]
    fn retry_after_reads_seconds_milliseconds_and_http_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-10-21T07:28:00Z").unwrap().with_timezone(&chrono::Utc);
        let at = |pairs: &[(&'static str, &str)]| {
            let mut headers = reqwest::header::HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(*name, value.parse().unwrap());
            }
            retry_after_at(&headers, now)
        };
        assert_eq!(at(&[("retry-after", "7")]), Some(Duration::from_secs(7)));
        assert_eq!(at(&[("retry-after-ms", "250"), ("retry-after", "7")]), Some(Duration::from_millis(250)));
        assert_eq!(at(&[("retry-after", "Wed, 21 Oct 2026 07:28:30 GMT")]), Some(Duration::from_secs(30)));
        assert_eq!(at(&[("retry-after", "Wed, 21 Oct 2026 07:00:00 GMT")]), Some(Duration::ZERO), "a past date");
        assert_eq!(at(&[("retry-after", "soon")]), None);
    }

    #[test]
    fn reference_table_d() {
        use ErrorClass::*;
        // bad or missing key
        assert_eq!(
            check(Some(401), r#"{"error":{"message":"Incorrect API key","type":"invalid_request_error"}}"#),
            (Auth, false)
        );
        assert_eq!(
            check(Some(403), r#"{"type":"error","error":{"type":"permission_error","message":"no"}}"#),
            (Auth, false)
        );
        // out of money: OpenAI's 429 insufficient_quota is billing, not a rate limit
        assert_eq!(
            check(
                Some(429),
                r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#
            ),
            (Billing, false)
        );
        assert_eq!(check(Some(402), r#"{"error":{"code":402,"message":"Insufficient credits"}}"#), (Billing, false));
        assert_eq!(
            check(Some(402), r#"{"type":"error","error":{"type":"billing_error","message":"pay up"}}"#),
            (Billing, false)
        );
        // Anthropic's 429 spend cap is billing and never retried
        assert_eq!(
            check(
                Some(429),
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"limit","details":{"error_code":"enforced_spend_limit_reached"}}}"#
            ),
            (Billing, false)
        );
        assert_eq!(
            check(
                Some(400),
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the API"}}"#
            ),
            (Billing, false)
        );
        // throttled
        assert_eq!(
            check(
                Some(429),
                r#"{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}"#
            ),
            (Quota, true)
        );
        assert_eq!(
            check(Some(429), r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#),
            (Quota, true)
        );
        // overloaded or upstream down
        for status in [500, 502, 503, 529] {
            assert_eq!(check(Some(status), "upstream trouble"), (Network, true), "{status}");
        }
        // timeouts
        assert_eq!(check(Some(408), ""), (Network, true));
        assert_eq!(
            check(Some(504), r#"{"type":"error","error":{"type":"timeout_error","message":"t"}}"#),
            (Network, true)
        );
        // moderation on OpenRouter
        assert_eq!(
            check(Some(403), r#"{"error":{"code":403,"message":"flagged","metadata":{"reasons":["violence"]}}}"#),
            (Unknown, false)
        );
        // mid-stream errors: classified by inner type or code
        assert_eq!(
            check(None, r#"{"error":{"message":"The server had an error","type":"server_error"}}"#),
            (Network, true)
        );
        assert_eq!(
            check(None, r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
            (Network, true)
        );
        assert_eq!(check(None, r#"{"error":{"code":402,"message":"out of credits"}}"#), (Billing, false));
        assert_eq!(check(Some(400), r#"{"error":{"message":"bad param"}}"#), (Unknown, false));
    }

    #[test]
    fn messages_come_from_the_body_and_retry_after_only_when_retryable() {
        let f = classify_provider_error(
            "openai",
            "gpt",
            Some(429),
            r#"{"error":{"message":"Rate limit reached"}}"#,
            Some(Duration::from_secs(3)),
        );
        assert_eq!(f.message, "Rate limit reached");
        assert_eq!(f.retry_after, Some(Duration::from_secs(3)));
        let f = classify_provider_error("openai", "gpt", Some(401), "", Some(Duration::from_secs(3)));
        assert_eq!((f.message.as_str(), f.retry_after), ("openai answered HTTP 401", None));
    }

    #[test]
    fn retry_after_headers() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        headers.insert("retry-after-ms", "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
    }

    proptest::proptest! {
        #[test]
        fn classification_never_panics(status in proptest::option::of(0u16..1000), body in ".*") {
            let f = classify_provider_error("p", "m", status, &body, None);
            proptest::prop_assert!(f.message.chars().count() <= MESSAGE_MAX + 40);
        }

        #[test]
        fn classification_never_panics_on_json_like_bodies(
            status in proptest::option::of(0u16..1000),
            kind in "[a-z_]{0,20}",
            code in proptest::prop_oneof![proptest::strategy::Just("null".to_owned()), "[0-9]{1,6}", "\"[a-z_]{0,12}\""],
            message in ".{0,400}",
        ) {
            let body = serde_json::json!({"error": {"type": kind, "message": message}}).to_string()
                .replace("}}", &format!(",\"code\":{code}}}}}"));
            let _ = classify_provider_error("p", "m", status, &body, None);
        }
    }
}
