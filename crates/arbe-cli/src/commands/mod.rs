//! One module per command group; each command is one or two client calls and their printing.

pub(crate) mod agent;
pub(crate) mod env;
pub(crate) mod house;
pub(crate) mod sandbox;
pub(crate) mod secret;
pub(crate) mod thread;
pub(crate) mod up;

use arbe_client::{Client, ClientError};
use arbe_core::{ErrorKind, HouseId};
use chrono::{DateTime, Utc};

use crate::{
    error::CliError,
    output::{Printer, Style},
    settings::Settings,
};

/// What every command works with.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// Resolved settings.
    pub(crate) settings: Settings,
    /// The root `--env`.
    pub(crate) env: Option<String>,
    /// Where output goes.
    pub(crate) out: Printer,
}

impl Ctx {
    /// A client of the configured server with the configured key.
    pub(crate) fn client(&self) -> Result<Client, CliError> {
        let Some(key) = &self.settings.api_key else {
            return Err(CliError::new(
                ErrorKind::Unauthenticated,
                "no API key: ~/.arbe/credentials holds none and ARBE_API_KEY is not set",
            )
            .hint("run `arbe up` on this HOME (its first start saves an owner key), or `arbe login`"));
        };
        Client::new(&self.settings.url, key).map_err(CliError::from)
    }

    /// The active house: the selected one, else the only one.
    pub(crate) async fn house(&self, client: &Client) -> Result<HouseId, CliError> {
        if let Some(id) = &self.settings.context.house {
            return HouseId::parse(id).map_err(|_| {
                CliError::usage(format!("~/.arbe/cli names house `{id}`, which is not a house id"))
                    .hint("pick one with `arbe house select NAME`")
            });
        }
        let houses = client.houses().await?;
        match houses.as_slice() {
            [one] => Ok(one.house.id),
            [] => Err(CliError::new(ErrorKind::NotFound, "you are a member of no house")
                .hint("create one with `arbe house create NAME`")),
            _ => Err(CliError::usage(format!("you are a member of {} houses and none is active", houses.len()))
                .hint("pick one with `arbe house select NAME` (`arbe house list` shows them)")),
        }
    }

    /// The environment a command acts in: the root `--env`, else the active one.
    pub(crate) fn env(&self) -> Option<String> {
        self.env.clone().or_else(|| self.settings.context.env.clone())
    }
}

/// Names a not-found refusal after what the user typed (the server only says which kind of
/// object), with the command that lists the house's objects of that kind.
pub(crate) fn named<'a>(what: &'a str, name: &'a str, list: &'a str) -> impl FnOnce(ClientError) -> CliError + 'a {
    move |err| {
        let err = CliError::from(err);
        // Only the refusal about this kind of object (a thread's `--agent` may be the missing one).
        if err.kind == ErrorKind::NotFound && err.message.starts_with(what) {
            CliError::new(ErrorKind::NotFound, format!("no {what} `{name}` in this house"))
                .hint(format!("`{list}` shows them"))
        } else {
            err
        }
    }
}

/// A diagnosis's checks, one line each: ✓ passed, ! a warning, ✗ a blocker.
pub(crate) fn checklist(out: &Printer, checks: &[arbe_api::Check]) {
    for check in checks {
        let mark = match check.status {
            arbe_api::CheckStatus::Ok => out.paint(Style::Green, "✓"),
            arbe_api::CheckStatus::Warning => out.paint(Style::Yellow, "!"),
            arbe_api::CheckStatus::Blocker => out.paint(Style::Red, "✗"),
        };
        out.line(&format!("  {mark} {}: {}", check.name, check.detail));
    }
}

/// A time as people read it, in UTC to the second.
pub(crate) fn when(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A time, or `-`.
pub(crate) fn maybe_when(at: Option<&DateTime<Utc>>) -> String {
    at.map_or_else(|| "-".to_owned(), when)
}
