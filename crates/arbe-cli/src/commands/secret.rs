//! `arbe secret`: the house's secrets. Values come from stdin only (a hidden prompt on a
//! terminal) and are never printed.

use std::io::{IsTerminal, Read, Write};

use arbe_core::SecretMeta;

use crate::{
    args::SecretCommand,
    commands::{Ctx, maybe_when, when},
    error::CliError,
};

/// Runs `arbe secret …`.
pub(crate) async fn run(ctx: &Ctx, command: SecretCommand) -> Result<(), CliError> {
    // Refused before anything is read or sent: a value on the command line is already in the
    // shell's history, and saying so is all that can be done.
    if let SecretCommand::Set { value: Some(_), .. } = &command {
        return Err(CliError::usage("a secret's value is read from stdin only, never from the command line")
            .hint("printf '%s' \"$VALUE\" | arbe secret set NAME  (and remove the value from your shell history)"));
    }
    let client = ctx.client()?;
    let house = ctx.house(&client).await?;
    match command {
        SecretCommand::List => {
            let secrets = client.secrets(house).await?;
            if ctx.out.json {
                ctx.out.json(&secrets);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = secrets
                .iter()
                .map(|s| {
                    vec![
                        s.name.to_string(),
                        s.audience.as_str().to_owned(),
                        if s.shared { "yes" } else { "no" }.to_owned(),
                        s.version.to_string(),
                        when(&s.updated_at),
                    ]
                })
                .collect();
            ctx.out.table(&["NAME", "AUDIENCE", "SHARED", "VERSION", "UPDATED"], &rows, "No secrets in this house.");
            if secrets.is_empty() {
                ctx.out.hint("set one with `printf '%s' \"$VALUE\" | arbe secret set NAME`");
            }
        }
        SecretCommand::View { name } => {
            let secret = client.secret(house, &name).await?;
            if ctx.out.json {
                ctx.out.json(&secret);
            } else {
                view(ctx, &secret);
            }
        }
        SecretCommand::Set { name, audience, shared, value: _ } => {
            let value = read_value(&name)?;
            let body = arbe_api::SetSecret { value, audience, shared: shared.then_some(true) };
            let secret = client.set_secret(house, &name, &body).await?;
            if ctx.out.json {
                ctx.out.json(&secret);
            } else {
                let what = if secret.version > 1 { "Rotated" } else { "Set" };
                ctx.out.note(&format!(
                    "{what} {} (version {}, {})",
                    secret.name,
                    secret.version,
                    secret.audience.as_str()
                ));
            }
        }
        SecretCommand::Delete { name } => {
            client.delete_secret(house, &name).await?;
            if ctx.out.json {
                ctx.out.json(&serde_json::json!({ "deleted": name }));
            } else {
                ctx.out.note(&format!("Deleted {name}"));
            }
        }
    }
    Ok(())
}

fn view(ctx: &Ctx, s: &SecretMeta) {
    ctx.out.fields(&[
        ("name", s.name.to_string()),
        ("audience", s.audience.as_str().to_owned()),
        ("shared", s.shared.to_string()),
        ("version", s.version.to_string()),
        ("created", when(&s.created_at)),
        ("updated", when(&s.updated_at)),
        ("rotated", maybe_when(s.rotated_at.as_ref())),
        ("id", s.id.to_string()),
    ]);
}

/// The value from stdin: a hidden prompt on a terminal, else everything piped in, without the
/// one line break `echo` adds.
fn read_value(name: &str) -> Result<String, CliError> {
    let stdin = std::io::stdin();
    let mut value = if stdin.is_terminal() {
        prompt_hidden(&format!("Value for {name} (hidden): "))?
    } else {
        let mut text = String::new();
        stdin
            .lock()
            .read_to_string(&mut text)
            .map_err(|e| CliError::usage(format!("cannot read the value from stdin: {e}")))?;
        text
    };
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    if value.is_empty() {
        return Err(CliError::usage("value: nothing on stdin; the value is read from stdin")
            .hint(format!("printf '%s' \"$VALUE\" | arbe secret set {name}")));
    }
    Ok(value)
}

/// Reads a line from the terminal with echo off.
fn prompt_hidden(prompt: &str) -> Result<String, CliError> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let fail = |e: std::io::Error| CliError::usage(format!("cannot read the value from the terminal: {e}"));
    let saved = tcgetattr(&stdin).map_err(|e| fail(e.into()))?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    let _ = std::io::stderr().write_all(prompt.as_bytes());
    tcsetattr(&stdin, OptionalActions::Now, &quiet).map_err(|e| fail(e.into()))?;
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    let _ = tcsetattr(&stdin, OptionalActions::Now, &saved);
    read.map_err(fail)?;
    Ok(line)
}
