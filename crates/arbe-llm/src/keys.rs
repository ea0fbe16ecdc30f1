//! Finding a provider key, in the documented order: the value the caller passes (the house
//! secret) → the process environment → `~/.arbe/keys/<VAR>`. The library reads no environment
//! itself: the caller passes a lookup function and the keys folder.

use std::path::{Path, PathBuf};

use arbe_core::SecretValue;

/// Where a key came from. Says where, never what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// The value the caller passed: a house secret.
    House,
    /// The worker's environment variable.
    Environment,
    /// A key file.
    File(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::House => f.write_str("house secret"),
            Self::Environment => f.write_str("environment variable"),
            Self::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// Looks up `var` in the documented order and says which source answered. Empty values count
/// as missing.
pub fn lookup_key(
    var: &str,
    from_caller: Option<SecretValue>,
    env: impl Fn(&str) -> Option<String>,
    keys_dir: Option<&Path>,
) -> Option<(SecretValue, KeySource)> {
    if let Some(value) = from_caller {
        return Some((value, KeySource::House));
    }
    if let Some(value) = env(var).and_then(|v| SecretValue::new(v.trim().to_owned()).ok()) {
        return Some((value, KeySource::Environment));
    }
    let path = keys_dir?.join(var);
    let text = std::fs::read_to_string(&path).ok()?;
    let value = SecretValue::new(text.trim().to_owned()).ok()?;
    Some((value, KeySource::File(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_in_order_and_the_source_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("OPENAI_API_KEY"), "sk-file\n").unwrap();
        let env = |var: &str| (var == "OPENAI_API_KEY").then(|| "sk-env".to_owned());
        let no_env = |_: &str| None;
        let house = SecretValue::new("sk-house".into()).unwrap();

        let (value, source) = lookup_key("OPENAI_API_KEY", Some(house), env, Some(dir.path())).unwrap();
        assert_eq!((value.expose(), source), ("sk-house", KeySource::House));
        let (value, source) = lookup_key("OPENAI_API_KEY", None, env, Some(dir.path())).unwrap();
        assert_eq!((value.expose(), source), ("sk-env", KeySource::Environment));
        let (value, source) = lookup_key("OPENAI_API_KEY", None, no_env, Some(dir.path())).unwrap();
        assert_eq!(value.expose(), "sk-file");
        assert_eq!(source.to_string(), format!("file {}", dir.path().join("OPENAI_API_KEY").display()));
        assert!(lookup_key("ANTHROPIC_API_KEY", None, no_env, Some(dir.path())).is_none());
        assert!(lookup_key("OPENAI_API_KEY", None, |_: &str| Some("  ".into()), None).is_none());
    }
}
