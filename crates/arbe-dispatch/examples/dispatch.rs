//! A full dispatch in-process, with nothing to set up: a SQLite store in a temporary folder,
//! the local runtime, a house with a secret and an environment, and a scripted model that runs
//! one command in the sandbox and then answers. Prints the thread's entries as they come.
//!
//! Run with: `cargo run -p arbe-dispatch --example dispatch`

#![allow(clippy::print_stdout, missing_docs)]

use std::{sync::Arc, time::Duration};

use arbe_core::{
    Audience, EntryBody, EnvironmentName, EnvironmentRef, Name, ParentRef, RuntimeName, SecretBinding, SecretName,
    SecretValue,
};
use arbe_dispatch::{CreateThread, DispatchConfig, OneProvider, Services, ServicesConfig};
use arbe_env::{CreateEnvironment, EnvConfig};
use arbe_llm::{ChatRequest, ChatResponse, FnProvider, Message, StopReason, ToolCall, Usage};
use arbe_runtime::RuntimeRegistry;
use arbe_runtime_local::{LocalConfig, LocalRuntime};
use arbe_store::{AdminToken, StoreConfig};
use arbe_vault::{MasterKey, MasterKeys, SetOptions};
use futures_util::StreamExt;

/// The scripted model: first a command, then, once it has the command's output, an answer.
fn script(request: &ChatRequest) -> ChatResponse {
    let last_output = request.messages.iter().rev().find_map(|m| match m {
        Message::Tool { content, .. } => Some(content.clone()),
        _ => None,
    });
    let (text, tool_calls, stop) = match last_output {
        None => (
            "Let me look at the sandbox.".to_owned(),
            vec![ToolCall {
                id: "call_1".into(),
                name: "run_command".into(),
                arguments: r#"{"command": "echo hello from $(basename $PWD); echo token=$DEPLOY_TOKEN"}"#.into(),
            }],
            StopReason::ToolUse,
        ),
        Some(output) => (format!("The sandbox answered:\n{output}"), vec![], StopReason::EndTurn),
    };
    ChatResponse { text, tool_calls, stop, usage: Usage { input_tokens: 50, output_tokens: 10 } }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // The one composition root: a store, the vault, the runtimes, environments and dispatch.
    let mut runtimes = RuntimeRegistry::new();
    runtimes.register(Arc::new(LocalRuntime::new(LocalConfig::new(dir.path().join("workspaces")))));
    let admin_token = AdminToken::generate();
    let services = Services::build(
        &StoreConfig::new(format!("sqlite://{}", dir.path().join("arbe.db").display())),
        ServicesConfig {
            master_keys: MasterKeys::new(MasterKey::generate()),
            runtimes,
            env: EnvConfig::new(RuntimeName::parse("local")?),
            dispatch: DispatchConfig::default(),
            models: Arc::new(OneProvider(Arc::new(FnProvider::new("script", script)))),
            admin_token: Some(AdminToken::new(&admin_token)),
        },
    )
    .await?;

    // The operator makes a house, its owner and the owner's API key; every call after acts as
    // the owner the key proves, in that house.
    let admin = services.admin(admin_token.expose())?;
    let first =
        services.access.admin_bootstrap(&admin, &Name::parse("default")?, &Name::parse("me")?, "example").await?;
    let owner = services.authenticate(first.key.key.expose(), first.house.id).await?;

    // A model key and a secret for the sandbox.
    let shared = SetOptions { audience: Some(Audience::Environment), shared: Some(true) };
    for (name, value) in [("OPENROUTER_API_KEY", "sk-or-demo"), ("DEPLOY_TOKEN", "tok-demo-secret")] {
        services.secrets.set(&owner, &SecretName::parse(name)?, &SecretValue::new(value.to_owned())?, shared).await?;
    }

    // An environment (its sandbox is provisioned on the local runtime) and a thread in it.
    let mut create = CreateEnvironment::new(EnvironmentName::parse("demo")?);
    create.secrets = vec![SecretBinding { name: SecretName::parse("DEPLOY_TOKEN")?, required: true }];
    let env = services.environments.create(&owner, create).await?;
    let mut thread = CreateThread::new(ParentRef::parse("general")?);
    thread.environment = Some(EnvironmentRef::Id(env.id));
    let thread = services.threads.create(&owner, thread).await?;

    // The workers, and one user entry, which dispatches the thread's agent.
    let workers = services.start_workers();
    let (_, job) = services.dispatcher.post(&owner, thread.id, "say hello from the sandbox").await?;

    let mut entries = Box::pin(services.dispatcher.subscribe(&owner, thread.id, 0).await?);
    while let Some(entry) = entries.next().await {
        let entry = entry?;
        let line = match &entry.body {
            EntryBody::UserMessage { text, .. } | EntryBody::AgentMessage { text, .. } => text.clone(),
            EntryBody::ToolCall { tool, arguments, .. } => format!("{tool} {arguments}"),
            EntryBody::ToolResult { output, done, exit_code, .. } => {
                format!("{}{}", output.trim_end(), if *done { format!(" [exit {exit_code:?}]") } else { String::new() })
            }
            EntryBody::Status { status, ledger, .. } => match ledger {
                Some(l) => format!("{status} (turns {}, commands {}, {} ms)", l.model_turns, l.commands_run, l.wall_ms),
                None => status.to_string(),
            },
            EntryBody::AgentFailed { error_class, message, .. } => format!("{error_class}: {message}"),
            EntryBody::Warning { message } => message.clone(),
        };
        println!("{:>3} {:<27} {line}", entry.seq, entry.body.kind().as_str());
        if let EntryBody::Status { status, job: Some(j), .. } = &entry.body
            && *j == job.id
            && status.is_terminal()
        {
            break;
        }
    }
    workers.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
