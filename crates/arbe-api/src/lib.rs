//! Wire types of arbe's HTTP API, shared by `arbe-server` and its clients: the request bodies
//! (plain strings, parsed by the server with core's validating parsers so an error names the
//! field and the rule), the problem document every error is, and the response bodies that are
//! not a core type as it is ([`views`]). Other responses are core's own types (`Environment`,
//! `SecretMeta`, `Thread`, `Entry`, …), which serialize as they are.
#![doc = include_str!("../README.md")]

pub mod views;
pub use views::*;

use arbe_core::ErrorKind;
use serde::{Deserialize, Deserializer, Serialize};

/// The media type of an error response.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error, as RFC 9457 describes it. `type` is stable per [`ErrorKind`]; `detail` names the
/// field and the rule, and never echoes the input or holds a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// `urn:arbe:error:<kind>`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The kind in words.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong, in words.
    pub detail: String,
}

impl Problem {
    /// The problem for an error of `kind` saying `detail`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self { type_: problem_type(kind), title: title(kind).to_owned(), status: status(kind), detail: detail.into() }
    }

    /// The kind this problem's `type` names, if it names one.
    pub fn kind(&self) -> Option<ErrorKind> {
        KINDS.iter().copied().find(|kind| problem_type(*kind) == self.type_)
    }
}

const KINDS: [ErrorKind; 12] = [
    ErrorKind::InvalidInput,
    ErrorKind::NotFound,
    ErrorKind::Conflict,
    ErrorKind::Unauthenticated,
    ErrorKind::Forbidden,
    ErrorKind::QuotaExceeded,
    ErrorKind::RateLimited,
    ErrorKind::Unavailable,
    ErrorKind::Timeout,
    ErrorKind::Unsupported,
    ErrorKind::Misconfigured,
    ErrorKind::Internal,
];

/// The problem `type` of an error kind: `urn:arbe:error:not_found`, say.
pub fn problem_type(kind: ErrorKind) -> String {
    format!("urn:arbe:error:{}", kind.as_str())
}

/// The HTTP status of an error kind.
pub fn status(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::InvalidInput => 400,
        ErrorKind::Unauthenticated => 401,
        ErrorKind::Forbidden => 403,
        ErrorKind::NotFound => 404,
        ErrorKind::Conflict => 409,
        ErrorKind::QuotaExceeded => 403,
        ErrorKind::RateLimited => 429,
        ErrorKind::Unsupported => 501,
        ErrorKind::Misconfigured | ErrorKind::Internal => 500,
        ErrorKind::Unavailable => 503,
        ErrorKind::Timeout => 504,
        // A kind added later is a server error until it gets its own status.
        _ => 500,
    }
}

fn title(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput => "Invalid input",
        ErrorKind::NotFound => "Not found",
        ErrorKind::Conflict => "Conflict",
        ErrorKind::Unauthenticated => "Unauthenticated",
        ErrorKind::Forbidden => "Forbidden",
        ErrorKind::QuotaExceeded => "Quota exceeded",
        ErrorKind::RateLimited => "Rate limited",
        ErrorKind::Unavailable => "Unavailable",
        ErrorKind::Timeout => "Timeout",
        ErrorKind::Unsupported => "Not supported",
        ErrorKind::Misconfigured => "Misconfigured",
        ErrorKind::Internal => "Internal error",
        _ => "Error",
    }
}

/// `PUT /api/secrets/{name}`: creates or rotates a secret. The value is never returned.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetSecret {
    /// The value: 8 to 16,384 characters.
    pub value: String,
    /// `environment` (the default for a new secret) or `capability`.
    #[serde(default)]
    pub audience: Option<String>,
    /// Usable by every agent of the house (default: only its author's).
    #[serde(default)]
    pub shared: Option<bool>,
}

impl std::fmt::Debug for SetSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetSecret")
            .field("value", &"[redacted]")
            .field("audience", &self.audience)
            .field("shared", &self.shared)
            .finish()
    }
}

/// A secret an environment binds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// The secret's name.
    pub name: String,
    /// Whether a dispatch fails without it (default) or only warns.
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

/// `POST /api/environments` (seed 001). Without `sandbox_id` a sandbox is provisioned on
/// `runtime` (or the server's default).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateEnvironment {
    /// Unique in the house, without regard to case.
    pub name: String,
    /// The runtime to provision on.
    #[serde(default)]
    pub runtime: Option<String>,
    /// An existing sandbox of the house, by id or name.
    #[serde(default)]
    pub sandbox_id: Option<String>,
    /// The default repository; it joins `allowed_repos`.
    #[serde(default)]
    pub repo: Option<String>,
    /// The only repositories a dispatch may clone or push.
    #[serde(default)]
    pub allowed_repos: Vec<String>,
    /// A GitHub App installation the house connected.
    #[serde(default, deserialize_with = "whole::optional")]
    pub github_installation_id: Option<i64>,
    /// The secrets it binds, by name.
    #[serde(default)]
    pub secret_bindings: Vec<Binding>,
}

/// `PATCH /api/environments/{id}`: what is present changes; `null` clears an optional field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PatchEnvironment {
    /// A new name.
    #[serde(default)]
    pub name: Option<String>,
    /// Another sandbox of the house.
    #[serde(default)]
    pub sandbox_id: Option<String>,
    /// A new default repository, or `null` for none.
    #[serde(default, deserialize_with = "present")]
    pub default_repo: Option<Option<String>>,
    /// The new list of allowed repositories.
    #[serde(default)]
    pub allowed_repos: Option<Vec<String>>,
    /// Another connected installation, or `null` for none.
    #[serde(default, deserialize_with = "whole::present")]
    pub github_installation_id: Option<Option<i64>>,
    /// The new bindings.
    #[serde(default)]
    pub secret_bindings: Option<Vec<Binding>>,
}

/// A field that is present (`null` included) deserializes to `Some`; an absent one stays `None`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Whole numbers as JSON Schema sees them: `3` and `3.0` alike (a generator or a JavaScript
/// client may send either); a fraction or a number out of range is refused.
mod whole {
    use serde::{Deserialize, Deserializer, de};

    struct Whole(i128);

    impl<'de> Deserialize<'de> for Whole {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visitor;
            impl de::Visitor<'_> for Visitor {
                type Value = Whole;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a whole number")
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Whole, E> {
                    Ok(Whole(v.into()))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Whole, E> {
                    Ok(Whole(v.into()))
                }
                fn visit_f64<E: de::Error>(self, v: f64) -> Result<Whole, E> {
                    // Beyond 2^63 no f64 is a number the fields below can hold anyway.
                    if v.fract() == 0.0 && v.abs() < 9.2e18 {
                        Ok(Whole(v as i128))
                    } else {
                        Err(E::custom("not a whole number"))
                    }
                }
            }
            d.deserialize_any(Visitor)
        }
    }

    fn convert<T: TryFrom<i128>, E: de::Error>(n: Whole) -> Result<T, E> {
        T::try_from(n.0).map_err(|_| E::custom("out of range"))
    }

    /// An optional whole number.
    pub(crate) fn optional<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<Option<T>, D::Error> {
        Option::<Whole>::deserialize(d)?.map(convert).transpose()
    }

    /// A whole number that may be present as `null` (see `present`).
    pub(crate) fn present<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        optional(d).map(Some)
    }
}

/// `POST /api/threads`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateThread {
    /// A channel name or another thread's id.
    pub parent: String,
    /// The environment its dispatches run in, by name or id.
    #[serde(default)]
    pub environment: Option<String>,
    /// Pins every agent of the thread to this model.
    #[serde(default)]
    pub model: Option<String>,
    /// The agents that reply, by name or id (default: the house's default agent).
    #[serde(default)]
    pub agents: Vec<String>,
}

/// `POST /api/threads/{id}/entries`: a user message, which dispatches the thread's agents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateEntry {
    /// The message: 1 to 32,768 characters, not only white space, no NUL.
    pub text: String,
}

/// `POST /api/houses`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateHouse {
    /// Its name.
    pub name: String,
}

/// `POST /api/admin/houses` (admin token): a house, a new user who owns it, and that user's
/// first API key, shown once in the answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AdminCreateHouse {
    /// The house's name.
    pub house: String,
    /// The owner's user name.
    pub user: String,
}

/// `POST /api/admin/users` (admin token): a user with no house and no key yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AdminCreateUser {
    /// The user's name.
    pub name: String,
}

/// `PUT /api/admin/houses/{id}/quotas` (admin token): a house's overrides; an absent or `null`
/// field takes the operator's default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetQuotas {
    /// Sandboxes that are not destroyed.
    #[serde(default, deserialize_with = "whole::optional")]
    pub sandboxes: Option<u64>,
    /// Dispatches queued or running at once.
    #[serde(default, deserialize_with = "whole::optional")]
    pub concurrent_dispatches: Option<u64>,
    /// Bytes one sandbox's workspace may hold.
    #[serde(default, deserialize_with = "whole::optional")]
    pub workspace_bytes: Option<u64>,
}

/// `POST /api/sandboxes`: a new sandbox on `runtime` (the server's default when absent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateSandbox {
    /// Its name.
    pub name: String,
    /// The runtime to provision on.
    #[serde(default)]
    pub runtime: Option<String>,
}

/// `POST /api/keys`: a new API key for the caller, shown once in the answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// What it is for.
    pub label: String,
}

/// `POST /api/agents`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    /// Its name, unique in the house.
    pub name: String,
    /// Its model (default `openrouter/anthropic/claude-haiku-4.5`).
    #[serde(default)]
    pub model: Option<String>,
    /// Its system prompt.
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// Whether threads without agents get this one.
    #[serde(default)]
    pub is_default: bool,
}

/// `POST /api/members`: an existing user joins the house.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// The user's name.
    pub user: String,
    /// `owner`, `writer` or `reader`.
    pub role: String,
}

/// `PATCH /api/members/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    /// `owner`, `writer` or `reader`.
    pub role: String,
}

/// `PUT /api/environments/{id}/secrets/{NAME}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BindSecret {
    /// Whether a dispatch fails without it (default) or only warns.
    #[serde(default = "yes")]
    pub required: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_type_and_reads_back() {
        for kind in KINDS {
            let problem = Problem::new(kind, "x");
            assert_eq!(problem.kind(), Some(kind));
            assert!((400..600).contains(&problem.status));
        }
        let types: std::collections::BTreeSet<String> = KINDS.iter().map(|k| problem_type(*k)).collect();
        assert_eq!(types.len(), KINDS.len());
    }

    #[test]
    fn a_patch_tells_null_from_absent_and_refuses_unknown_fields() {
        let patch: PatchEnvironment = serde_json::from_str(r#"{"default_repo": null}"#).unwrap();
        assert_eq!(patch.default_repo, Some(None));
        assert_eq!(patch.github_installation_id, None);
        assert!(serde_json::from_str::<PatchEnvironment>(r#"{"nme": "x"}"#).is_err());
    }

    #[test]
    fn whole_numbers_may_be_written_with_a_zero_fraction() {
        let quotas: SetQuotas = serde_json::from_str(r#"{"sandboxes": 3.0, "workspace_bytes": 7}"#).unwrap();
        assert_eq!((quotas.sandboxes, quotas.workspace_bytes, quotas.concurrent_dispatches), (Some(3), Some(7), None));
        for bad in [r#"{"sandboxes": 3.5}"#, r#"{"sandboxes": -1}"#, r#"{"sandboxes": "3"}"#] {
            assert!(serde_json::from_str::<SetQuotas>(bad).is_err(), "{bad}");
        }
        let patch: PatchEnvironment = serde_json::from_str(r#"{"github_installation_id": 12.0}"#).unwrap();
        assert_eq!(patch.github_installation_id, Some(Some(12)));
        let patch: PatchEnvironment = serde_json::from_str(r#"{"github_installation_id": null}"#).unwrap();
        assert_eq!(patch.github_installation_id, Some(None));
    }

    #[test]
    fn a_secret_body_never_prints_its_value() {
        let body: SetSecret = serde_json::from_str(r#"{"value": "sk-canary-value"}"#).unwrap();
        assert!(!format!("{body:?}").contains("sk-canary"));
    }
}
