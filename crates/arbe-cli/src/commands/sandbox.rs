//! `arbe sandbox`: the house's sandboxes on every runtime, or on `--runtime`'s.

use arbe_api::CheckStatus;
use arbe_client::Client;
use arbe_core::{ErrorKind, HouseId, Sandbox};

use crate::{
    args::{SandboxArgs, SandboxCommand},
    commands::{Ctx, checklist, named, when},
    error::{CliError, code},
};

/// Runs `arbe sandbox …`; `diagnose` exits [`code::BLOCKED`] on a blocker.
pub(crate) async fn run(ctx: &Ctx, args: SandboxArgs) -> Result<u8, CliError> {
    let client = ctx.client()?;
    let house = ctx.house(&client).await?;
    let runtime = args.runtime.as_deref();
    let command = match (args.command, args.sandbox) {
        (Some(command), _) => command,
        (None, Some(sandbox)) => SandboxCommand::View { sandbox },
        (None, None) => SandboxCommand::List,
    };
    match command {
        SandboxCommand::List => {
            let sandboxes = client.sandboxes(house, runtime).await?;
            if ctx.out.json {
                ctx.out.json(&sandboxes);
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = sandboxes
                .iter()
                .map(|s| {
                    vec![
                        s.name.to_string(),
                        s.runtime.to_string(),
                        s.state.as_str().to_owned(),
                        when(&s.last_active_at),
                        s.id.to_string(),
                    ]
                })
                .collect();
            let empty = match runtime {
                Some(runtime) => format!("No sandboxes on {runtime} in this house."),
                None => "No sandboxes in this house.".to_owned(),
            };
            ctx.out.table(&["NAME", "RUNTIME", "STATE", "LAST ACTIVE", "ID"], &rows, &empty);
        }
        SandboxCommand::View { sandbox } => {
            let found = narrowed(&client, house, &sandbox, runtime).await?;
            if ctx.out.json {
                ctx.out.json(&found);
            } else {
                view(ctx, &found);
            }
        }
        SandboxCommand::Start { sandbox } => {
            let id = narrowed(&client, house, &sandbox, runtime).await?.id.to_string();
            let spinner = ctx.out.spinner("starting the sandbox…");
            let done = client.start_sandbox(house, &id).await;
            drop(spinner);
            state_changed(ctx, &done?);
        }
        SandboxCommand::Stop { sandbox } => {
            let id = narrowed(&client, house, &sandbox, runtime).await?.id.to_string();
            state_changed(ctx, &client.stop_sandbox(house, &id).await?);
        }
        SandboxCommand::Destroy { sandbox } => {
            let id = narrowed(&client, house, &sandbox, runtime).await?.id.to_string();
            state_changed(ctx, &client.destroy_sandbox(house, &id).await?);
        }
        SandboxCommand::Ping { sandbox } => {
            let id = narrowed(&client, house, &sandbox, runtime).await?.id.to_string();
            let ping = client.ping_sandbox(house, &id).await?;
            if ctx.out.json {
                ctx.out.json(&ping);
            } else {
                match ping.round_trip_ms {
                    Some(ms) => ctx.out.line(&format!(
                        "{} is {}: a command round trip took {ms:.1} ms",
                        ping.sandbox.name,
                        ping.sandbox.state.as_str()
                    )),
                    None => ctx.out.line(&format!("{} is {}", ping.sandbox.name, ping.sandbox.state.as_str())),
                }
            }
        }
        SandboxCommand::Diagnose { sandbox } => {
            let id = narrowed(&client, house, &sandbox, runtime).await?.id.to_string();
            let found = client.diagnose_sandbox(house, &id).await?;
            let blocked = found.checks.iter().any(|c| c.status == CheckStatus::Blocker);
            if ctx.out.json {
                ctx.out.json(&found);
            } else {
                ctx.out.line(&format!(
                    "Sandbox {} on {} ({})",
                    found.sandbox.name,
                    found.runtime,
                    found.sandbox.state.as_str()
                ));
                checklist(&ctx.out, &found.checks);
            }
            return Ok(if blocked { code::BLOCKED } else { 0 });
        }
        SandboxCommand::Env { sandbox } => {
            let id = narrowed(&client, house, &sandbox, runtime).await?.id.to_string();
            let vars = client.sandbox_env(house, &id).await?;
            if ctx.out.json {
                ctx.out.json(&vars);
            } else {
                let rows: Vec<Vec<String>> = vars
                    .iter()
                    .map(|v| {
                        vec![
                            v.name.clone(),
                            if v.required { "required" } else { "optional" }.to_owned(),
                            v.environment.clone(),
                        ]
                    })
                    .collect();
                ctx.out.table(
                    &["NAME", "BINDING", "ENVIRONMENT"],
                    &rows,
                    "Its commands get no secrets: no environment binds any.",
                );
            }
        }
    }
    Ok(0)
}

/// The sandbox, refused as not found when `--runtime` names another runtime than its own.
async fn narrowed(client: &Client, house: HouseId, sandbox: &str, runtime: Option<&str>) -> Result<Sandbox, CliError> {
    let found = client.sandbox(house, sandbox).await.map_err(named("sandbox", sandbox, "arbe sandbox list"))?;
    match runtime {
        Some(runtime) if found.runtime.as_str() != runtime => Err(CliError::new(
            ErrorKind::NotFound,
            format!("sandbox `{sandbox}` is on {}, not on {runtime}", found.runtime),
        )
        .hint("drop --runtime to act on sandboxes of every runtime")),
        _ => Ok(found),
    }
}

fn state_changed(ctx: &Ctx, sandbox: &Sandbox) {
    if ctx.out.json {
        ctx.out.json(sandbox);
    } else {
        ctx.out.note(&format!("{} is {}", sandbox.name, sandbox.state.as_str()));
    }
}

fn view(ctx: &Ctx, s: &Sandbox) {
    ctx.out.fields(&[
        ("name", s.name.to_string()),
        ("id", s.id.to_string()),
        ("runtime", s.runtime.to_string()),
        ("state", s.state.as_str().to_owned()),
        ("external id", s.external_id.clone().unwrap_or_else(|| "-".to_owned())),
        ("image", s.image.clone().unwrap_or_else(|| "-".to_owned())),
        ("created", when(&s.created_at)),
        ("last active", when(&s.last_active_at)),
    ]);
}
