//! `arbe secret`: the house's secrets. Values come from stdin only (a hidden prompt on a
//! terminal) and are never printed.

use std::io::{IsTerminal, Read, Write};

use arbe_core::SecretMeta;

use crate::{
    args::SecretCommand,
    commands::{Ctx, maybe_when, named, when},
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
            let secret = client.secret(house, &name).await.map_err(named("secret", &name, "arbe secret list"))?;
            if ctx.out.json {
                ctx.out.json(&secret);
            } else {
                view(ctx, &secret);
            }
        }
        SecretCommand::Set { name, audience, shared, value: _ } => {
            // The name is checked before anyone types a value for it.
            arbe_core::SecretName::parse(&name).map_err(|e| CliError::usage(e.to_string()))?;
            let value = read_value(&name).await?;
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
            client.delete_secret(house, &name).await.map_err(named("secret", &name, "arbe secret list"))?;
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
async fn read_value(name: &str) -> Result<String, CliError> {
    let stdin = std::io::stdin();
    let mut value = if stdin.is_terminal() {
        prompt_hidden(&format!("Value for {name} (hidden): ")).await?
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

/// Reads a line from the terminal with echo off. The terminal is restored however the read
/// ends; Ctrl-C restores it and exits 130, changing nothing.
pub(crate) async fn prompt_hidden(prompt: &str) -> Result<String, CliError> {
    use rustix::termios::{LocalModes, OptionalActions, Termios, tcgetattr, tcsetattr};

    /// Puts the terminal back as it was when dropped.
    struct Restore(Termios);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.0);
        }
    }

    let stdin = std::io::stdin();
    let fail = |e: std::io::Error| CliError::usage(format!("cannot read from the terminal: {e}"));
    let saved = tcgetattr(&stdin).map_err(|e| fail(e.into()))?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    let _ = std::io::stderr().write_all(prompt.as_bytes());
    let restore = Restore(saved);
    tcsetattr(&stdin, OptionalActions::Now, &quiet).map_err(|e| fail(e.into()))?;
    // A thread of its own (not the runtime's blocking pool, which the runtime would wait for
    // at exit), so Ctrl-C can end the program while it reads.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = tx.send(std::io::stdin().read_line(&mut line).map(|_| line));
    });
    tokio::select! {
        line = rx => {
            drop(restore);
            line.map_err(|_| CliError::local("the terminal reader stopped"))?.map_err(fail)
        }
        _ = tokio::signal::ctrl_c() => {
            drop(restore);
            let _ = std::io::stderr().write_all(b"\n");
            std::process::exit(130);
        }
    }
}
