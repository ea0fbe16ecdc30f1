//! `arbe house`: the houses you are a member of, and which one is active.

use crate::{args::HouseCommand, commands::Ctx, error::CliError};

/// Runs `arbe house …`.
pub(crate) async fn run(ctx: &Ctx, command: HouseCommand) -> Result<(), CliError> {
    let client = ctx.client()?;
    match command {
        HouseCommand::List => {
            let houses = client.houses().await?;
            if ctx.out.json {
                ctx.out.json(&houses);
                return Ok(());
            }
            let active = match &ctx.settings.context.house {
                Some(id) => Some(id.clone()),
                None if houses.len() == 1 => Some(houses[0].house.id.to_string()),
                None => None,
            };
            let rows: Vec<Vec<String>> = houses
                .iter()
                .map(|h| {
                    let mark = if active.as_deref() == Some(&h.house.id.to_string()) { "*" } else { "" };
                    vec![
                        mark.to_owned(),
                        h.house.name.to_string(),
                        h.membership.role.to_string(),
                        h.house.id.to_string(),
                    ]
                })
                .collect();
            ctx.out.table(&["", "NAME", "ROLE", "ID"], &rows, "You are a member of no house.");
        }
        HouseCommand::Select { house } => {
            let houses = client.houses().await?;
            let found = houses
                .iter()
                .find(|h| h.house.id.to_string() == house || h.house.name.as_str().eq_ignore_ascii_case(&house))
                .ok_or_else(|| {
                    CliError::new(
                        arbe_core::ErrorKind::NotFound,
                        format!("house `{house}`: you are a member of no house by that name or id"),
                    )
                    .hint("`arbe house list` shows yours")
                })?;
            let mut context = ctx.settings.context.clone();
            if context.house.as_deref() != Some(&found.house.id.to_string()) {
                // Another house's environment means nothing here.
                context.env = None;
            }
            context.house = Some(found.house.id.to_string());
            ctx.settings.save_context(&context)?;
            if ctx.out.json {
                ctx.out.json(found);
            } else {
                ctx.out.note(&format!("Active house: {}", found.house.name));
            }
        }
        HouseCommand::Create { name } => {
            let made = client.create_house(&name).await?;
            if ctx.out.json {
                ctx.out.json(&made);
            } else {
                ctx.out.line(&made.house.id.to_string());
                ctx.out.hint(&format!("make it the active house with `arbe house select {}`", made.house.name));
            }
        }
    }
    Ok(())
}
