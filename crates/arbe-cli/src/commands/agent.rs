//! `arbe agent` (the house's agents) and `arbe key` (your API keys).

use arbe_core::Agent;

use crate::{
    args::{AgentCommand, KeyCommand},
    commands::{Ctx, maybe_when, named, when},
    error::CliError,
};

/// Runs `arbe agent …`.
pub(crate) async fn run(ctx: &Ctx, command: AgentCommand) -> Result<(), CliError> {
    let client = ctx.client()?;
    let house = ctx.house(&client).await?;
    match command {
        AgentCommand::List => {
            let agents = client.agents(house).await?;
            if ctx.out.json {
                ctx.out.json(&agents);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = agents
                .iter()
                .map(|a| {
                    vec![
                        if a.is_default { "*" } else { "" }.to_owned(),
                        a.name.to_string(),
                        a.model.to_string(),
                        a.id.to_string(),
                    ]
                })
                .collect();
            ctx.out.table(
                &["", "NAME", "MODEL", "ID"],
                &rows,
                "No agents yet: the first thread creates the house's default agent.",
            );
        }
        AgentCommand::View { agent } => {
            let agent = client.agent(house, &agent).await.map_err(named("agent", &agent, "arbe agent list"))?;
            if ctx.out.json {
                ctx.out.json(&agent);
            } else {
                view(ctx, &agent);
            }
        }
        AgentCommand::Create { name, model, system_prompt, default } => {
            let body = arbe_api::CreateAgent { name, model, system_prompt, is_default: default };
            let agent = client.create_agent(house, &body).await?;
            if ctx.out.json {
                ctx.out.json(&agent);
            } else {
                ctx.out.line(&agent.id.to_string());
            }
        }
        AgentCommand::Delete { agent } => {
            client.delete_agent(house, &agent).await.map_err(named("agent", &agent, "arbe agent list"))?;
            if ctx.out.json {
                ctx.out.json(&serde_json::json!({ "deleted": agent }));
            } else {
                ctx.out.note(&format!("Deleted agent {agent}"));
            }
        }
    }
    Ok(())
}

fn view(ctx: &Ctx, a: &Agent) {
    ctx.out.fields(&[
        ("name", a.name.to_string()),
        ("id", a.id.to_string()),
        ("model", a.model.to_string()),
        ("default", a.is_default.to_string()),
        ("created", when(&a.created_at)),
    ]);
    ctx.out.line("system prompt:");
    for line in a.system_prompt.lines() {
        ctx.out.line(&format!("  {line}"));
    }
}

/// Runs `arbe key …`.
pub(crate) async fn key(ctx: &Ctx, command: KeyCommand) -> Result<(), CliError> {
    let client = ctx.client()?;
    match command {
        KeyCommand::List => {
            let keys = client.keys().await?;
            if ctx.out.json {
                ctx.out.json(&keys);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    let state = if k.revoked_at.is_some() { "revoked" } else { "active" };
                    vec![
                        k.label.clone(),
                        state.to_owned(),
                        when(&k.created_at),
                        maybe_when(k.last_used_at.as_ref()),
                        k.id.to_string(),
                    ]
                })
                .collect();
            ctx.out.table(&["LABEL", "STATE", "CREATED", "LAST USED", "ID"], &rows, "You have no API keys.");
        }
        KeyCommand::Create { label } => {
            let made = client.create_key(&label).await?;
            if ctx.out.json {
                ctx.out.json(&made);
            } else {
                ctx.out.line(&made.api_key);
                ctx.out.hint("this is the only time the key is shown: store it now");
            }
        }
        KeyCommand::Revoke { id } => {
            client.revoke_key(&id).await?;
            if ctx.out.json {
                ctx.out.json(&serde_json::json!({ "revoked": id }));
            } else {
                ctx.out.note(&format!("Revoked key {id}"));
            }
        }
    }
    Ok(())
}
