//! How a user names an object: by id, or by its name in the house. A UUID is always an id,
//! since no name may be a UUID.

use crate::{
    error::InvalidInput,
    ids::{AgentId, EnvironmentId, SandboxId},
    names::{EnvironmentName, Name, RuntimeName},
};

/// An environment by id or by name (compared without regard to case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvironmentRef {
    /// By id.
    Id(EnvironmentId),
    /// By name.
    Name(EnvironmentName),
}

impl EnvironmentRef {
    /// A UUID is an id; anything else must be a valid name.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        match EnvironmentId::parse(s) {
            Ok(id) => Ok(Self::Id(id)),
            Err(_) => EnvironmentName::parse(s).map(Self::Name),
        }
    }
}

/// A sandbox by id, by name, or by the id its runtime gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SandboxRef {
    /// By id.
    Id(SandboxId),
    /// By name.
    Name(Name),
    /// By its runtime's own id (`arbe sandbox stop <id> --runtime docker`). It finds only a
    /// sandbox the house's records say the house owns on that runtime.
    External {
        /// The runtime.
        runtime: RuntimeName,
        /// The runtime's id.
        id: String,
    },
}

impl SandboxRef {
    /// The sandbox that `runtime` calls `id`. The id must be 1 to 256 characters with no
    /// whitespace or control characters.
    pub fn external(runtime: RuntimeName, id: &str) -> Result<Self, InvalidInput> {
        if id.is_empty() || id.len() > 256 || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidInput::new(
                "sandbox",
                "must be the runtime's id for it: 1 to 256 characters with no whitespace",
            ));
        }
        Ok(Self::External { runtime, id: id.to_owned() })
    }

    /// A UUID is an id; anything else must be a valid sandbox name.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        match SandboxId::parse(s) {
            Ok(id) => Ok(Self::Id(id)),
            Err(_) => Name::parse_field("sandbox", s).map(Self::Name),
        }
    }
}

/// An agent by id or by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentRef {
    /// By id.
    Id(AgentId),
    /// By name.
    Name(Name),
}

impl AgentRef {
    /// A UUID is an id; anything else must be a valid agent name.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        match AgentId::parse(s) {
            Ok(id) => Ok(Self::Id(id)),
            Err(_) => Name::parse_field("agent", s).map(Self::Name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_ids_and_the_rest_are_names() {
        let id = EnvironmentId::new();
        assert_eq!(EnvironmentRef::parse(&id.to_string()).unwrap(), EnvironmentRef::Id(id));
        assert_eq!(
            EnvironmentRef::parse("Prod").unwrap(),
            EnvironmentRef::Name(EnvironmentName::parse("Prod").unwrap())
        );
        assert_eq!(SandboxRef::parse("a b").unwrap_err().to_string().split(':').next(), Some("invalid sandbox"));
        assert!(matches!(AgentRef::parse("helper").unwrap(), AgentRef::Name(_)));
    }
}
