//! Values a user types, parsed once into types (parse, don't validate).
//!
//! Every constructor's error names the field and the rule and never echoes the input.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::InvalidInput;

macro_rules! string_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidInput;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

/// The slug rule shared by names of houses, environments, sandboxes and agents.
fn check_slug(field: &'static str, s: &str) -> Result<(), InvalidInput> {
    const RULE: &str =
        "must be 1 to 63 characters of letters, digits, '-', '_' or '.', starting with a letter or digit";
    let bytes = s.as_bytes();
    let ok = (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        return Err(InvalidInput::new(field, RULE));
    }
    if uuid::Uuid::parse_str(s).is_ok() {
        // Objects are addressable by name or id; a name that is a UUID would be ambiguous.
        return Err(InvalidInput::new(field, "must not be a UUID"));
    }
    Ok(())
}

string_type!(
    /// The name of a house, sandbox or agent: a slug (see [`EnvironmentName`] for the rule).
    Name
);

impl Name {
    /// Parses a slug name for `field`.
    pub fn parse_field(field: &'static str, s: &str) -> Result<Self, InvalidInput> {
        check_slug(field, s)?;
        Ok(Self(s.to_owned()))
    }

    /// Parses a slug name (field `name`).
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        Self::parse_field("name", s)
    }
}

string_type!(
    /// An environment's name: 1 to 63 letters, digits, `-`, `_` or `.`, starting with a letter
    /// or digit, and not a UUID. Unique per house without regard to case (seed 001), so
    /// [`EnvironmentName::key`] is what uniqueness and lookups compare.
    EnvironmentName
);

impl EnvironmentName {
    /// Parses an environment name.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        check_slug("environment name", s)?;
        Ok(Self(s.to_owned()))
    }

    /// The case-folded form used for uniqueness and lookup.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

string_type!(
    /// A secret's name: `[A-Z_][A-Z0-9_]*`, at most 128 characters (SPEC §2).
    SecretName
);

impl SecretName {
    /// The longest name accepted.
    pub const MAX_LEN: usize = 128;

    /// Parses a secret name.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let bytes = s.as_bytes();
        let ok = (1..=Self::MAX_LEN).contains(&bytes.len())
            && (bytes[0].is_ascii_uppercase() || bytes[0] == b'_')
            && bytes.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidInput::new("secret name", "must match [A-Z_][A-Z0-9_]* and be 1 to 128 characters"))
        }
    }
}

string_type!(
    /// A runtime's name (`docker`, `ssh`, `daytona`, …): `[a-z][a-z0-9-]*`, at most 32 characters.
    /// A string, not an enum, so a new adapter never touches this crate.
    RuntimeName
);

impl RuntimeName {
    /// Parses a runtime name.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let bytes = s.as_bytes();
        let ok = (1..=32).contains(&bytes.len())
            && bytes[0].is_ascii_lowercase()
            && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidInput::new("runtime", "must match [a-z][a-z0-9-]* and be 1 to 32 characters"))
        }
    }
}

string_type!(
    /// A git repository, kept in the canonical form `https://<host>/<owner>/<name>`.
    ///
    /// Accepted: `https://host/owner/name[.git][/]`, `git@host:owner/name[.git]`, and the GitHub
    /// shorthand `owner/name`.
    RepoRef
);

impl RepoRef {
    /// Parses a repository reference into its canonical https form.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        const RULE: &str = "must be https://<host>/<owner>/<name>, git@<host>:<owner>/<name>.git or <owner>/<name>";
        let err = || InvalidInput::new("repo", RULE);
        let s = s.trim();
        if s.len() > 256 {
            return Err(InvalidInput::new("repo", "must be at most 256 characters"));
        }
        let (host, path) = if let Some(rest) = s.strip_prefix("https://") {
            rest.split_once('/').ok_or_else(err)?
        } else if let Some(rest) = s.strip_prefix("git@") {
            rest.split_once(':').ok_or_else(err)?
        } else if s.contains("://") {
            return Err(InvalidInput::new("repo", "only https:// and git@ (ssh) URLs are accepted"));
        } else {
            ("github.com", s)
        };
        let path = path.trim_end_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        let (owner, name) = path.split_once('/').ok_or_else(err)?;
        let host_ok =
            !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
        let seg_ok = |seg: &str| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        };
        if !host_ok || !seg_ok(owner) || !seg_ok(name) {
            return Err(err());
        }
        Ok(Self(format!("https://{}/{owner}/{name}", host.to_ascii_lowercase())))
    }

    fn parts(&self) -> (&str, &str, &str) {
        let rest = &self.0["https://".len()..];
        let (host, path) = rest.split_once('/').expect("canonical form");
        let (owner, name) = path.split_once('/').expect("canonical form");
        (host, owner, name)
    }

    /// The host, e.g. `github.com`.
    pub fn host(&self) -> &str {
        self.parts().0
    }

    /// The owner (user or organisation).
    pub fn owner(&self) -> &str {
        self.parts().1
    }

    /// The repository's name, without `.git`.
    pub fn name(&self) -> &str {
        self.parts().2
    }

    /// Whether two references name the same repository (GitHub compares without case).
    pub fn same_repo(&self, other: &RepoRef) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

/// Labels on a sandbox: at most 64 pairs; keys `[a-z0-9][a-z0-9._/-]*` up to 63 characters;
/// values up to 256 characters with no control characters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    /// The most pairs a sandbox may carry.
    pub const MAX: usize = 64;

    /// Validates a set of pairs.
    pub fn parse<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self, InvalidInput> {
        let mut map = BTreeMap::new();
        for (key, value) in pairs {
            let (key, value) = (key.as_ref(), value.as_ref());
            let kb = key.as_bytes();
            let key_ok = (1..=63).contains(&kb.len())
                && (kb[0].is_ascii_lowercase() || kb[0].is_ascii_digit())
                && kb
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'/' | b'-'));
            if !key_ok {
                return Err(InvalidInput::new(
                    "label key",
                    "must match [a-z0-9][a-z0-9._/-]* and be 1 to 63 characters",
                ));
            }
            if value.chars().count() > 256 || value.chars().any(char::is_control) {
                return Err(InvalidInput::new(
                    "label value",
                    "must be at most 256 characters with no control characters",
                ));
            }
            map.insert(key.to_owned(), value.to_owned());
        }
        if map.len() > Self::MAX {
            return Err(InvalidInput::new("labels", "at most 64 labels are allowed"));
        }
        Ok(Self(map))
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// All pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(d)?;
        Self::parse(map).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check<T: fmt::Debug>(res: Result<T, InvalidInput>, expect: &str) {
        let got = match res {
            Ok(v) => format!("ok {v:?}"),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, expect);
    }

    #[test]
    fn secret_names_follow_the_spec_pattern() {
        check(SecretName::parse("OPENROUTER_API_KEY"), r#"ok SecretName("OPENROUTER_API_KEY")"#);
        check(SecretName::parse("_X1"), r#"ok SecretName("_X1")"#);
        let rule = "invalid secret name: must match [A-Z_][A-Z0-9_]* and be 1 to 128 characters";
        for bad in ["", "1ABC", "lower", "A-B", "A B", "ÄB", &"A".repeat(129)] {
            check(SecretName::parse(bad), rule);
        }
        assert!(SecretName::parse(&"A".repeat(128)).is_ok());
    }

    #[test]
    fn no_parser_echoes_its_input() {
        // What a confused user might paste where a name belongs.
        for canary in ["sk-or-v1-CANARYcanary-0042", "ghp_CANARYcanary0042 x", "CANARY/../../canary\n"] {
            let errors: Vec<String> = [
                SecretName::parse(canary).err(),
                EnvironmentName::parse(canary).err(),
                Name::parse(canary).err(),
                RuntimeName::parse(canary).err(),
                RepoRef::parse(&format!("ftp://{canary}")).err(),
                Labels::parse([(canary, "v")]).err(),
                Labels::parse([("k", format!("{canary}\u{7}"))]).err(),
                crate::ModelRef::parse(canary).err(),
                crate::ParentRef::parse(&format!("{canary} #")).err(),
                crate::HouseId::parse(canary).err(),
                crate::Role::parse(canary).err(),
                crate::Audience::parse(canary).err(),
                crate::EnvironmentRef::parse(canary).err(),
                crate::SandboxRef::parse(canary).err(),
                crate::AgentRef::parse(canary).err(),
            ]
            .into_iter()
            .flatten()
            .map(|err| err.to_string())
            .collect();
            // Most refuse it (a canary may happen to be a valid name); none that do repeats it.
            assert!(errors.len() >= 10, "{errors:?}");
            for err in errors {
                assert!(!err.to_ascii_lowercase().contains("canary"), "an error echoed its input: {err}");
            }
        }
    }

    #[test]
    fn invalid_input_never_echoes_the_value() {
        let err = SecretName::parse("sk-or-v1-canary-value").unwrap_err();
        assert!(!err.to_string().contains("canary"));
    }

    #[test]
    fn environment_names_are_slugs_compared_without_case() {
        let a = EnvironmentName::parse("Prod").unwrap();
        assert_eq!(a.key(), "prod");
        assert_eq!(a.as_str(), "Prod");
        for bad in ["", "-x", "a b", "a/b", &"a".repeat(64)] {
            assert!(EnvironmentName::parse(bad).is_err(), "{bad:?}");
        }
        check(
            EnvironmentName::parse("0190a0c4-5b6e-7c3a-8f00-000000000000"),
            "invalid environment name: must not be a UUID",
        );
    }

    #[test]
    fn repo_refs_are_canonicalised() {
        for (input, canonical) in [
            ("https://github.com/org/repo", "https://github.com/org/repo"),
            ("https://GitHub.com/org/repo.git/", "https://github.com/org/repo"),
            ("git@github.com:org/repo.git", "https://github.com/org/repo"),
            ("org/repo", "https://github.com/org/repo"),
            ("https://git.example.com:8443/team/app", "https://git.example.com:8443/team/app"),
        ] {
            assert_eq!(RepoRef::parse(input).unwrap().as_str(), canonical, "{input}");
        }
        let repo = RepoRef::parse("org/my-repo").unwrap();
        assert_eq!((repo.host(), repo.owner(), repo.name()), ("github.com", "org", "my-repo"));
        for bad in ["", "repo", "http://github.com/a/b", "https://github.com/a", "a/../b", "a/b c"] {
            assert!(RepoRef::parse(bad).is_err(), "{bad:?}");
        }
        check(RepoRef::parse("ftp://x/a/b"), "invalid repo: only https:// and git@ (ssh) URLs are accepted");
    }

    #[test]
    fn runtime_names_are_lowercase_words() {
        assert!(RuntimeName::parse("docker").is_ok());
        assert!(RuntimeName::parse("my-runtime2").is_ok());
        check(RuntimeName::parse("Docker"), "invalid runtime: must match [a-z][a-z0-9-]* and be 1 to 32 characters");
    }

    #[test]
    fn labels_validate_keys_values_and_count() {
        let labels = Labels::parse([("arbe.dev/house", "h1"), ("team", "core")]).unwrap();
        assert_eq!(labels.get("team"), Some("core"));
        check(
            Labels::parse([("Bad", "x")]),
            "invalid label key: must match [a-z0-9][a-z0-9._/-]* and be 1 to 63 characters",
        );
        check(
            Labels::parse([("k", "a\nb")]),
            "invalid label value: must be at most 256 characters with no control characters",
        );
        let many: Vec<_> = (0..65).map(|i| (format!("k{i}"), "v")).collect();
        check(Labels::parse(many), "invalid labels: at most 64 labels are allowed");
    }

    #[test]
    fn deserializing_validates() {
        let err = serde_json::from_str::<SecretName>("\"bad name\"").unwrap_err();
        assert!(err.to_string().contains("invalid secret name"));
        let ok: EnvironmentName = serde_json::from_str("\"staging\"").unwrap();
        assert_eq!(ok.as_str(), "staging");
    }
}
