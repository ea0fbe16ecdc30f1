//! `arbe env`: environments (seed 001) and the active one.

use arbe_api::{BindOutcome, Binding};
use arbe_core::Environment;

use crate::{
    args::EnvCommand,
    commands::{Ctx, checklist, named, when},
    error::{CliError, code},
};

/// Runs `arbe env …`; the exit code is [`code::BLOCKED`] when `diagnose` finds a blocker.
pub(crate) async fn run(ctx: &Ctx, command: EnvCommand) -> Result<u8, CliError> {
    let client = ctx.client()?;
    let house = ctx.house(&client).await?;
    let active = || {
        ctx.env().ok_or_else(|| {
            CliError::usage("no environment given and none is active")
                .hint("name one, or pick one with `arbe env use NAME`")
        })
    };
    match command {
        EnvCommand::List => {
            let envs = client.environments(house).await?;
            if ctx.out.json {
                ctx.out.json(&envs);
                return Ok(0);
            }
            let active = ctx.env().map(|e| e.to_lowercase());
            let rows: Vec<Vec<String>> = envs
                .iter()
                .map(|e| {
                    let is_active =
                        active.as_deref().is_some_and(|a| a == e.name.as_str().to_lowercase() || a == e.id.to_string());
                    vec![
                        if is_active { "*" } else { "" }.to_owned(),
                        e.name.to_string(),
                        e.runtime.to_string(),
                        e.default_repo.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string),
                        bindings(e),
                        e.id.to_string(),
                    ]
                })
                .collect();
            ctx.out.table(&["", "NAME", "RUNTIME", "REPO", "SECRETS", "ID"], &rows, "No environments in this house.");
            if envs.is_empty() {
                ctx.out.hint("create one with `arbe env create NAME --secret OPENROUTER_API_KEY`");
            }
        }
        EnvCommand::View { env } => {
            let env = env.map_or_else(active, Ok)?;
            let env = client.environment(house, &env).await.map_err(named("environment", &env, "arbe env list"))?;
            if ctx.out.json {
                ctx.out.json(&env);
            } else {
                view(ctx, &env);
            }
        }
        EnvCommand::Create { name, sandbox, runtime, repo, secrets, optional_secrets } => {
            let secret_bindings = secrets
                .into_iter()
                .map(|name| Binding { name, required: true })
                .chain(optional_secrets.into_iter().map(|name| Binding { name, required: false }))
                .collect();
            let body = arbe_api::CreateEnvironment {
                name,
                runtime,
                sandbox_id: sandbox.clone(),
                repo,
                allowed_repos: vec![],
                github_installation_id: None,
                secret_bindings,
            };
            let spinner =
                if sandbox.is_none() { ctx.out.spinner("provisioning the environment's sandbox…") } else { None };
            let made = client.create_environment(house, &body).await;
            drop(spinner);
            let env = made?;
            if ctx.out.json {
                ctx.out.json(&env);
            } else {
                ctx.out
                    .note(&format!("Created environment {} on {} (sandbox {})", env.name, env.runtime, env.sandbox_id));
                ctx.out.hint(&format!("make it the active environment with `arbe env use {}`", env.name));
            }
        }
        EnvCommand::BindSecret { env, name, optional } => {
            let bound = client.bind_secret(house, &env, &name, !optional).await.map_err(named(
                "environment",
                &env,
                "arbe env list",
            ))?;
            if ctx.out.json {
                ctx.out.json(&bound);
            } else {
                let kind = if optional { "optional" } else { "required" };
                let what = match bound.outcome {
                    BindOutcome::Added => format!("Bound {name} to {} ({kind})", bound.environment.name),
                    BindOutcome::Changed => format!("{name} on {} is now {kind}", bound.environment.name),
                    BindOutcome::Unchanged => {
                        format!("{name} was already bound to {} ({kind})", bound.environment.name)
                    }
                };
                ctx.out.note(&what);
            }
        }
        EnvCommand::UnbindSecret { env, name } => {
            let unbound =
                client.unbind_secret(house, &env, &name).await.map_err(named("environment", &env, "arbe env list"))?;
            if ctx.out.json {
                ctx.out.json(&unbound);
            } else if unbound.removed {
                ctx.out.note(&format!("Unbound {name} from {}", unbound.environment.name));
            } else {
                ctx.out.note(&format!("{name} was not bound to {}", unbound.environment.name));
            }
        }
        EnvCommand::Use { env } => {
            let found = client.environment(house, &env).await.map_err(named("environment", &env, "arbe env list"))?;
            let mut context = ctx.settings.context.clone();
            context.house = Some(house.to_string());
            context.env = Some(found.name.to_string());
            ctx.settings.save_context(&context)?;
            if ctx.out.json {
                ctx.out.json(&found);
            } else {
                ctx.out.note(&format!("Active environment: {}", found.name));
            }
        }
        EnvCommand::Diagnose { env, model } => {
            let env = env.map_or_else(active, Ok)?;
            let found = client.diagnose_environment(house, &env, model.as_deref()).await.map_err(named(
                "environment",
                &env,
                "arbe env list",
            ))?;
            if ctx.out.json {
                ctx.out.json(&found);
            } else {
                ctx.out.line(&format!("Environment {} with model {}", found.environment, found.model));
                checklist(&ctx.out, &found.checks);
                if found.ok {
                    ctx.out.line("A dispatch would start.");
                } else {
                    ctx.out.line("A dispatch would not start: fix the ✗ above.");
                }
            }
            return Ok(if found.ok { 0 } else { code::BLOCKED });
        }
        EnvCommand::Delete { env } => {
            let found = client.environment(house, &env).await.map_err(named("environment", &env, "arbe env list"))?;
            client.delete_environment(house, &found.id.to_string()).await?;
            let was_active = ctx
                .settings
                .context
                .env
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(found.name.as_str()) || a == found.id.to_string());
            if was_active {
                let mut context = ctx.settings.context.clone();
                context.env = None;
                ctx.settings.save_context(&context)?;
            }
            if ctx.out.json {
                ctx.out.json(&serde_json::json!({ "deleted": env }));
            } else {
                ctx.out.note(&format!("Deleted environment {env}"));
            }
        }
    }
    Ok(0)
}

fn bindings(env: &Environment) -> String {
    if env.secret_bindings.is_empty() {
        return "-".to_owned();
    }
    env.secret_bindings
        .iter()
        .map(|b| if b.required { b.name.to_string() } else { format!("{}?", b.name) })
        .collect::<Vec<_>>()
        .join(",")
}

fn view(ctx: &Ctx, e: &Environment) {
    let repos: Vec<String> = e.allowed_repos.iter().map(ToString::to_string).collect();
    ctx.out.fields(&[
        ("name", e.name.to_string()),
        ("id", e.id.to_string()),
        ("runtime", e.runtime.to_string()),
        ("sandbox", e.sandbox_id.to_string()),
        ("repo", e.default_repo.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string)),
        ("allowed repos", if repos.is_empty() { "-".to_owned() } else { repos.join(", ") }),
        ("github installation", e.github_installation_id.map_or_else(|| "-".to_owned(), |i| i.to_string())),
        ("created", when(&e.created_at)),
        ("updated", when(&e.updated_at)),
    ]);
    if e.secret_bindings.is_empty() {
        ctx.out.line("secrets: none bound");
    } else {
        ctx.out.line("secrets:");
        for b in &e.secret_bindings {
            ctx.out.line(&format!("  {} ({})", b.name, if b.required { "required" } else { "optional" }));
        }
    }
}
