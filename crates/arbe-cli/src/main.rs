//! `arbe`: the command line of arbe. Parses the arguments, resolves settings, runs one command,
//! and exits with the code README's table gives its outcome.
#![doc = include_str!("../README.md")]

mod args;
mod commands;
mod error;
mod output;
mod settings;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::{
    args::{Cli, Command},
    commands::Ctx,
    error::{CliError, exit_code},
    output::Printer,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let no_color = settings::no_color();
    let out = Printer::new(cli.json, no_color);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            out.error(&format!("cannot start: {e}"));
            return ExitCode::from(error::code::INTERNAL);
        }
    };
    match runtime.block_on(run(cli, out.clone())) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if out.json {
                out.json(&serde_json::json!({ "error": { "kind": err.kind.as_str(), "message": err.message } }));
            }
            out.error(&err.message);
            if let Some(hint) = &err.hint {
                out.hint(hint);
            }
            ExitCode::from(exit_code(err.kind))
        }
    }
}

async fn run(cli: Cli, out: Printer) -> Result<u8, CliError> {
    match cli.command {
        Command::Up(args) => return commands::up::up(&out, args).await.map(|()| 0),
        Command::Quickstart => return commands::up::quickstart(&out).await,
        Command::Login(args) => return commands::up::login(&out, args).await.map(|()| 0),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "arbe", &mut script);
            out.raw(&script);
            return Ok(0);
        }
        _ => {}
    }
    let ctx = Ctx { settings: settings::Settings::resolve()?, env: cli.env, out };
    match cli.command {
        Command::House(command) => commands::house::run(&ctx, command).await.map(|()| 0),
        Command::Secret(command) => commands::secret::run(&ctx, command).await.map(|()| 0),
        Command::Env(command) => commands::env::run(&ctx, command).await,
        Command::Sandbox(args) => commands::sandbox::run(&ctx, args).await,
        Command::Thread(command) => commands::thread::run(&ctx, command).await,
        Command::Agent(command) => commands::agent::run(&ctx, command).await.map(|()| 0),
        Command::Key(command) => commands::agent::key(&ctx, command).await.map(|()| 0),
        Command::Up(_) | Command::Quickstart | Command::Login(_) | Command::Completions { .. } => {
            unreachable!("handled above")
        }
    }
}
