//! Houses cannot reach each other: every house-scoped service method (those taking an `Actor`)
//! and every store method taking a `HouseId` is called by another house, aimed at this house's
//! objects, and must answer `NotFound` (or leave this house's objects out of a list) and change
//! nothing. The list of methods is read from the source, so a new public method without a row
//! here fails the test.

use std::collections::BTreeSet;

use arbe_core::{
    AgentRef, Classify, EntryBody, EnvironmentRef, ErrorKind, ModelRef, Name, ParentRef, Quotas, Role, SandboxRef,
    SandboxState, SecretName, SecretValue,
};
use arbe_dispatch::{CreateAgent, CreateThread};
use arbe_env::{CreateEnvironment, EnvironmentPatch};
use arbe_store::{Actor, AgentPatch, Claim, NewAgent, NewSandbox, NewSecretVersion, SealedSecret, testkit};
use arbe_vault::SetOptions;

use crate::Fixture;

/// `(Type::method)` for each public method whose signature holds `needle`, in the Rust files
/// under `dir` (a path relative to this crate).
fn methods_taking(dir: &str, files: &[&str], needles: &[&str]) -> BTreeSet<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut found = BTreeSet::new();
    let mut paths: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    for path in paths {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if !file.ends_with(".rs") || (!files.is_empty() && !files.contains(&file.as_str())) || file == "testkit.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut owner = String::new();
        for (at, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if let Some(rest) = trimmed.strip_prefix("impl ") {
                owner = rest.split([' ', '{', '<']).next().unwrap_or_default().to_owned();
            }
            let Some(rest) = trimmed.strip_prefix("pub async fn ").or_else(|| trimmed.strip_prefix("pub fn ")) else {
                continue;
            };
            let name = rest.split(['(', '<']).next().unwrap().to_owned();
            // The parameter list, which may span lines.
            let signature: String = text.lines().skip(at).take(12).collect::<Vec<_>>().join(" ");
            let params = signature.split_once('(').map(|(_, p)| p).unwrap_or_default();
            let mut depth = 1;
            let params: String = params
                .chars()
                .take_while(|c| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth > 0
                })
                .collect();
            if needles.iter().any(|needle| params.contains(needle)) {
                found.insert(format!("{owner}::{name}"));
            }
        }
    }
    found
}

/// The victim's objects and the intruder.
struct Ctx {
    fx: Fixture,
    victim: Actor,
    intruder: Actor,
    intruder_key: SecretValue,
    secret_id: arbe_core::SecretId,
    env: arbe_core::Environment,
    thread: arbe_core::Thread,
    agent: arbe_core::Agent,
    sandbox: arbe_core::Sandbox,
    job: arbe_core::JobId,
    claim_b: Claim,
}

type Check = Result<(), String>;

fn unsupported<T: std::fmt::Debug, E: Classify + std::fmt::Display>(what: &str, res: Result<T, E>) -> Check {
    match res {
        Err(err) if err.kind() == ErrorKind::Unsupported => Ok(()),
        other => Err(format!("{what}: expected unsupported (no GitHub App), got {other:?}")),
    }
}

/// House A's connection to installation 7.
fn connection(house: arbe_core::HouseId) -> arbe_core::GitHubConnection {
    arbe_core::GitHubConnection {
        house_id: house,
        installation_id: 7,
        account_login: "org".into(),
        github_login: "alice".into(),
        connected_by: None,
        connected_at: chrono::Utc::now(),
    }
}

fn nf<T: std::fmt::Debug, E: Classify + std::fmt::Display>(what: &str, res: Result<T, E>) -> Check {
    match res {
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
        Err(err) => Err(format!("{what}: expected not found, got {} ({err})", err.kind())),
        Ok(v) => Err(format!("{what}: reached another house's object: {v:?}")),
    }
}

/// Not found, or found but the intruder's own (a name both houses use).
fn not_theirs<T: std::fmt::Debug, E: Classify + std::fmt::Display>(
    what: &str,
    res: Result<T, E>,
    is_theirs: impl Fn(&T) -> bool,
) -> Check {
    match res {
        Ok(v) if is_theirs(&v) => Err(format!("{what}: reached another house's object: {v:?}")),
        Ok(_) => Ok(()),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
        Err(err) => Err(format!("{what}: expected not found, got {} ({err})", err.kind())),
    }
}

fn none_of<T: std::fmt::Debug>(what: &str, items: &[T], theirs: impl Fn(&T) -> bool) -> Check {
    match items.iter().find(|it| theirs(it)) {
        Some(it) => Err(format!("{what}: listed another house's object {it:?}")),
        None => Ok(()),
    }
}

fn ok<T, E: std::fmt::Display>(what: &str, res: Result<T, E>) -> Result<T, String> {
    res.map_err(|err| format!("{what}: {err}"))
}

/// What house A looks like, to compare before and after.
async fn snapshot(c: &Ctx) -> String {
    let store = &c.fx.test.store;
    let house = c.fx.house.id;
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        store.house(house).await.unwrap(),
        store.house_quotas(house).await.unwrap(),
        store.list_members(house).await.unwrap(),
        store.list_secrets(house).await.unwrap(),
        store.house_keys(house).await.unwrap().iter().map(|k| k.version).collect::<Vec<_>>(),
        store.list_environments(house).await.unwrap(),
        store.list_sandboxes(house, None).await.unwrap().iter().map(|s| (s.id, s.state)).collect::<Vec<_>>(),
        store.list_threads(house, 100).await.unwrap(),
        store.entries(house, c.thread.id, 0, 1000).await.unwrap(),
        store.list_agents(house).await.unwrap(),
        store.jobs_of_thread(house, c.thread.id).await.unwrap(),
        store.list_github_connections(house).await.unwrap(),
        store.list_audit(house, None, 500).await.unwrap(),
    )
}

async fn service_row(c: &Ctx, name: &str) -> Check {
    let s = &c.fx.services;
    let b = &c.intruder;
    let env = EnvironmentRef::Id(c.env.id);
    let env_by_name = EnvironmentRef::Name(c.env.name.clone());
    let sandbox = SandboxRef::Id(c.sandbox.id);
    let sandbox_by_name = SandboxRef::Name(c.sandbox.name.clone());
    let by_runtime_id =
        SandboxRef::external(c.sandbox.runtime.clone(), c.sandbox.external_id.as_deref().unwrap()).unwrap();
    let agent = AgentRef::Id(c.agent.id);
    let secret = SecretName::parse("DEPLOY_TOKEN").unwrap();
    let theirs_env = |e: &arbe_core::Environment| e.id == c.env.id;
    match name {
        "Access::house" => {
            let house = ok(name, s.access.house(b).await)?;
            if house.id == c.fx.house.id { Err("Access::house: the other house".into()) } else { Ok(()) }
        }
        "Access::quotas" => {
            let quotas = ok(name, s.access.quotas(b).await)?;
            if quotas.sandboxes == Some(77) { Err("Access::quotas: the other house's".into()) } else { Ok(()) }
        }
        "Access::members" => none_of(name, &ok(name, s.access.members(b).await)?, |m| m.house_id == c.fx.house.id),
        "Access::member" => nf(name, s.access.member(b, c.victim.member_id()).await),
        "Access::add_member" => {
            // Adding a user who is in A puts them in B, not A: A's member list is unchanged.
            ok(name, s.access.add_member(b, &c.victim.user().name, Role::Reader).await).map(drop)
        }
        "Access::set_role" => nf(name, s.access.set_role(b, c.victim.member_id(), Role::Reader).await),
        "Access::remove_member" => nf(name, s.access.remove_member(b, c.victim.member_id()).await),
        "Vault::set" => {
            // The same name in B is B's own secret; A's is untouched (the snapshot checks).
            let value = SecretValue::new("intruder-value".into()).unwrap();
            ok(name, s.secrets.set(b, &secret, &value, SetOptions::default()).await).map(drop)
        }
        "Vault::rollback" => nf(name, s.secrets.rollback(b, &SecretName::parse("OPENROUTER_API_KEY").unwrap()).await),
        "Vault::meta" => nf(name, s.secrets.meta(b, &SecretName::parse("OPENROUTER_API_KEY").unwrap()).await),
        "Vault::list" => none_of(name, &ok(name, s.secrets.list(b).await)?, |m| m.house_id == c.fx.house.id),
        "Vault::delete" => nf(name, s.secrets.delete(b, &SecretName::parse("OPENROUTER_API_KEY").unwrap()).await),
        "Vault::rotate_house_key" => ok(name, s.secrets.rotate_house_key(b).await).map(drop),
        "Environments::create" => {
            let mut req = CreateEnvironment::new(c.env.name.clone());
            req.sandbox = Some(sandbox.clone());
            nf(name, s.environments.create(b, req).await)
        }
        "Environments::view" => {
            nf(name, s.environments.view(b, &env).await)?;
            nf(name, s.environments.view(b, &env_by_name).await)
        }
        "Environments::list" => none_of(name, &ok(name, s.environments.list(b).await)?, theirs_env),
        "Environments::update" => nf(name, s.environments.update(b, &env, EnvironmentPatch::default()).await),
        "Environments::bind_secret" => nf(name, s.environments.bind_secret(b, &env, secret.clone(), true).await),
        "Environments::unbind_secret" => nf(name, s.environments.unbind_secret(b, &env, &secret).await),
        "Environments::delete" => nf(name, s.environments.delete(b, &env).await),
        "Environments::diagnose" => nf(name, s.environments.diagnose(b, &env, &ModelRef::default()).await),
        "Environments::github_connect_start" => {
            // No App is configured here: unsupported for everyone.
            unsupported(name, s.environments.github_connect_start(b, None).map(|start| start.state))
        }
        "Environments::github_connect" => {
            let user =
                arbe_env::GitHubUser { login: "intruder".into(), token: SecretValue::new("ghu_x".into()).unwrap() };
            unsupported(name, s.environments.github_connect(b, &user, 7).await)
        }
        "Environments::github_connections" => {
            none_of(name, &ok(name, s.environments.github_connections(b).await)?, |x| x.house_id == c.fx.house.id)
        }
        "Environments::github_disconnect" => nf(name, s.environments.github_disconnect(b, 7).await),
        "Access::audit" => {
            none_of(name, &ok(name, s.access.audit(b, None, 500).await)?, |e| e.house_id == Some(c.fx.house.id))
        }
        "Sandboxes::list" => none_of(name, &ok(name, s.sandboxes.list(b, None).await)?, |x| x.id == c.sandbox.id),
        "Sandboxes::view" => {
            nf(name, s.sandboxes.view(b, &sandbox).await)?;
            nf(name, s.sandboxes.view(b, &by_runtime_id).await)?;
            not_theirs(name, s.sandboxes.view(b, &sandbox_by_name).await, |x| x.id == c.sandbox.id)
        }
        "Sandboxes::create" => {
            // Named like A's: B would get a sandbox of its own, but the local runtime (on the
            // server's host) serves one house only, and this deployment has two.
            match s.sandboxes.create(b, c.sandbox.name.clone(), None).await {
                Ok(made) if made.house_id == c.fx.house.id => Err(format!("{name}: made in A")),
                Ok(_) => Ok(()),
                Err(err) if err.kind() == ErrorKind::Misconfigured => Ok(()),
                Err(err) => Err(format!("{name}: {err}")),
            }
        }
        "Sandboxes::start" => nf(name, s.sandboxes.start(b, &sandbox).await),
        "Sandboxes::stop" => nf(name, s.sandboxes.stop(b, &sandbox).await),
        "Sandboxes::destroy" => nf(name, s.sandboxes.destroy(b, &sandbox).await),
        "Sandboxes::ping" => nf(name, s.sandboxes.ping(b, &sandbox).await),
        "Sandboxes::diagnose" => nf(name, s.sandboxes.diagnose(b, &sandbox).await),
        "Sandboxes::env_names" => nf(name, s.sandboxes.env_names(b, &sandbox).await),
        "Sandboxes::put_file" => nf(name, s.sandboxes.put_file(b, &sandbox, "x.txt", b"x").await),
        "Sandboxes::get_file" => nf(name, s.sandboxes.get_file(b, &sandbox, "x.txt").await),
        "Dispatcher::post" => nf(name, s.dispatcher.post(b, c.thread.id, "hello").await),
        "Dispatcher::cancel" => nf(name, s.dispatcher.cancel(b, c.thread.id).await),
        "Dispatcher::entries" => nf(name, s.dispatcher.entries(b, c.thread.id, 0, 10).await),
        "Dispatcher::subscribe" => nf(name, s.dispatcher.subscribe(b, c.thread.id, 0).await.map(drop)),
        "Threads::create" => {
            let mut by_env = CreateThread::new(ParentRef::parse("x").unwrap());
            by_env.environment = Some(env.clone());
            nf(name, s.threads.create(b, by_env).await)?;
            let mut by_agent = CreateThread::new(ParentRef::parse("x").unwrap());
            by_agent.agents = vec![agent.clone()];
            nf(name, s.threads.create(b, by_agent).await)?;
            nf(name, s.threads.create(b, CreateThread::new(ParentRef::Thread(c.thread.id))).await)
        }
        "Threads::list" => none_of(name, &ok(name, s.threads.list(b, 100).await)?, |t| t.id == c.thread.id),
        "Threads::view" => nf(name, s.threads.view(b, c.thread.id).await),
        "Threads::children" => nf(name, s.threads.children(b, c.thread.id).await),
        "Agents::create" => {
            let req = CreateAgent { name: c.agent.name.clone(), model: None, system_prompt: None, is_default: false };
            ok(name, s.agents.create(b, req).await).map(drop)
        }
        "Agents::list" => none_of(name, &ok(name, s.agents.list(b).await)?, |a| a.id == c.agent.id),
        "Agents::view" => {
            nf(name, s.agents.view(b, &agent).await)?;
            not_theirs(name, s.agents.view(b, &AgentRef::Name(c.agent.name.clone())).await, |x| x.id == c.agent.id)
        }
        "Agents::update" => nf(name, s.agents.update(b, &agent, AgentPatch::default()).await),
        "Agents::delete" => nf(name, s.agents.delete(b, &agent).await),
        other => Err(format!("no isolation row for the service method {other}: add one")),
    }
}

async fn store_row(c: &Ctx, name: &str) -> Check {
    let store = &c.fx.test.store;
    let b = c.intruder.house_id();
    let a = c.fx.house.id;
    let secret = SecretName::parse("DEPLOY_TOKEN").unwrap();
    match name {
        "Store::house" => {
            let house = ok(name, store.house(b).await)?;
            if house.id == a { Err("Store::house".into()) } else { Ok(()) }
        }
        "Store::house_quota_overrides" | "Store::house_quotas" => {
            let quotas = ok(name, store.house_quotas(b).await)?;
            let overrides = ok(name, store.house_quota_overrides(b).await)?;
            if quotas.sandboxes == Some(77) || overrides.sandboxes == Some(77) { Err(name.into()) } else { Ok(()) }
        }
        "Store::set_house_quotas" => ok(name, store.set_house_quotas(b, Quotas::default()).await),
        "Store::actor" | "Access::actor" => {
            nf(name, store.actor(c.intruder.caller(), a).await)?;
            nf(name, c.fx.services.access.actor(c.intruder.caller(), a).await)
        }
        "Store::authenticate_in" | "Access::authenticate_in" => {
            nf(name, store.authenticate_in(c.intruder_key.expose(), a).await)?;
            nf(name, c.fx.services.access.authenticate_in(c.intruder_key.expose(), a).await)
        }
        "Store::admin_actor" => nf(name, store.admin_actor(&testkit::admin(), c.intruder.user().id, a).await),
        "Access::admin_set_quotas" => {
            // The operator sets B's quotas; A's overrides (in the snapshot) stay.
            let quotas = c.fx.services.access.admin_set_quotas(&testkit::admin(), b, Quotas::default()).await;
            ok(name, quotas).map(drop)
        }
        "Store::rewrap_house_key" => {
            let kek = store.house_keys(a).await.unwrap()[0].kek_id.clone();
            let done = ok(name, store.rewrap_house_key(b, 2, &kek, &[0; 48], &[0; 12], "other").await)?;
            if done { Err(format!("{name}: rewrapped another house's key")) } else { Ok(()) }
        }
        "Store::add_member" => ok(name, store.add_member(b, c.fx.writer.user().id, Role::Reader).await).map(drop),
        "Store::create_environment" => {
            // B's row pointing at A's sandbox is refused.
            let new = arbe_store::NewEnvironment {
                house_id: b,
                author_id: c.intruder.member_id(),
                name: arbe_core::EnvironmentName::parse("stolen").unwrap(),
                runtime: c.env.runtime.clone(),
                sandbox_id: c.sandbox.id,
                default_repo: None,
                allowed_repos: vec![],
                github_installation_id: None,
                secret_bindings: vec![],
            };
            nf(name, store.create_environment(new).await)
        }
        "Store::update_environment" => {
            let doctored = arbe_core::Environment { house_id: b, ..c.env.clone() };
            nf(name, store.update_environment(&doctored).await)
        }
        "Store::create_sandbox" => {
            let new = NewSandbox {
                house_id: b,
                runtime: c.sandbox.runtime.clone(),
                name: Name::parse("store-row").unwrap(),
                state: SandboxState::Provisioning,
                image: None,
                resources: arbe_core::Resources::default(),
                labels: arbe_core::Labels::default(),
            };
            let made = ok(name, store.create_sandbox(new).await)?;
            if made.house_id == b { Ok(()) } else { Err(name.into()) }
        }
        "Store::put_secret_version" => {
            // B's own secret of that name: version 2 after Vault::set made version 1.
            let new = NewSecretVersion {
                house_id: b,
                name: SecretName::parse("STORE_ROW").unwrap(),
                audience: arbe_core::Audience::Environment,
                shared: true,
                author_id: c.intruder.member_id(),
                sealed: SealedSecret { version: 1, ciphertext: vec![1; 32], nonce: vec![1; 12], key_version: 1 },
            };
            ok(name, store.put_secret_version(&new).await).map(drop)
        }
        "Store::create_agent" => {
            let new = NewAgent {
                house_id: b,
                name: Name::parse("helper-b").unwrap(),
                model: ModelRef::default(),
                system_prompt: String::new(),
                is_default: false,
            };
            ok(name, store.create_agent(new).await).map(drop)
        }
        "Store::create_thread" => {
            // B's thread keeping A's environment is refused.
            let new = arbe_store::NewThread {
                house_id: b,
                author_id: c.intruder.member_id(),
                parent: ParentRef::parse("x").unwrap(),
                environment: Some(c.env.snapshot()),
                model_override: None,
                agent_ids: vec![],
            };
            nf(name, store.create_thread(new).await)
        }
        "Store::member" => nf(name, store.member(b, c.victim.member_id()).await),
        "Store::membership" => {
            // The victim's user is now a member of B (Store::add_member above): B's membership only.
            let m = ok(name, store.membership(b, c.victim.user().id).await)?;
            if m.house_id == a { Err(name.into()) } else { Ok(()) }
        }
        "Store::list_members" => none_of(name, &ok(name, store.list_members(b).await)?, |m| m.house_id == a),
        "Store::set_member_role" => nf(name, store.set_member_role(b, c.victim.member_id(), Role::Reader).await),
        "Store::remove_member" => nf(name, store.remove_member(b, c.victim.member_id()).await),
        "Store::environment_name_free" => ok(name, store.environment_name_free(b, &c.env.name).await),
        "Store::environment" => nf(name, store.environment(b, &EnvironmentRef::Id(c.env.id)).await),
        "Store::list_environments" => none_of(name, &ok(name, store.list_environments(b).await)?, |e| e.id == c.env.id),
        "Store::delete_environment" => nf(name, store.delete_environment(b, c.env.id).await),
        "Store::purge_environment" => nf(name, store.purge_environment(b, c.env.id).await),
        "Store::agent" => nf(name, store.agent(b, c.agent.id).await),
        "Store::agent_by_name" => not_theirs(name, store.agent_by_name(b, "helper").await, |x| x.id == c.agent.id),
        "Store::default_agent" => nf(name, store.default_agent(b).await),
        "Store::list_agents" => none_of(name, &ok(name, store.list_agents(b).await)?, |x| x.id == c.agent.id),
        "Store::update_agent" => nf(name, store.update_agent(b, c.agent.id, AgentPatch::default()).await),
        "Store::delete_agent" => nf(name, store.delete_agent(b, c.agent.id).await),
        "Store::sandbox" => nf(name, store.sandbox(b, c.sandbox.id).await),
        "Store::sandbox_by_name" => {
            not_theirs(name, store.sandbox_by_name(b, c.sandbox.name.as_str()).await, |x| x.id == c.sandbox.id)
        }
        "Store::github_connection" => nf(name, store.github_connection(b, 7).await),
        "Store::list_github_connections" => {
            none_of(name, &ok(name, store.list_github_connections(b).await)?, |x| x.house_id == a)
        }
        "Store::disconnect_github_installation" => nf(name, store.disconnect_github_installation(b, 7).await),
        "Store::connect_github_installation" => {
            // B's own row, for another installation; A's stays (the snapshot checks).
            let row = arbe_core::GitHubConnection { house_id: b, installation_id: 9, ..connection(a) };
            let made = ok(name, store.connect_github_installation(&row).await)?;
            if made.house_id == b { Ok(()) } else { Err(name.into()) }
        }
        "Store::record_audit" | "Store::audit" => {
            let by = arbe_store::AuditActor::Member(&c.intruder);
            ok(name, store.record_audit(Some(b), None, by, arbe_core::AuditAction::SecretCreated, "x").await)?;
            store.audit(Some(b), None, by, arbe_core::AuditAction::SecretCreated, "x").await;
            Ok(())
        }
        "Store::list_audit" => {
            none_of(name, &ok(name, store.list_audit(b, None, 500).await)?, |e| e.house_id == Some(a))
        }
        // Deliberately across houses: whether a shared-account runtime is already in use.
        "Store::runtime_used_by_another_house" => {
            ok(name, store.runtime_used_by_another_house(b, "local").await).map(drop)
        }
        "Store::sandbox_by_external_id" => {
            nf(name, store.sandbox_by_external_id(b, c.sandbox.external_id.as_deref().unwrap()).await)
        }
        "Store::list_sandboxes" => {
            none_of(name, &ok(name, store.list_sandboxes(b, None).await)?, |x| x.id == c.sandbox.id)
        }
        "Store::set_sandbox_state" => {
            nf(name, store.set_sandbox_state(b, c.sandbox.id, SandboxState::Destroyed, Some("x")).await)
        }
        "Store::touch_sandbox" => nf(name, store.touch_sandbox(b, c.sandbox.id).await),
        "Store::secret_meta" => not_theirs(name, store.secret_meta(b, &secret).await, |m| m.id == c.secret_id),
        "Store::list_secrets" => none_of(name, &ok(name, store.list_secrets(b).await)?, |m| m.house_id == a),
        "Store::delete_secret" => {
            nf(name, store.delete_secret(b, &SecretName::parse("OPENROUTER_API_KEY").unwrap()).await)
        }
        "Store::sealed_secrets" => none_of(
            name,
            &ok(name, store.sealed_secrets(b, &[SecretName::parse("OPENROUTER_API_KEY").unwrap()]).await)?,
            |(m, _)| m.house_id == a,
        ),
        "Store::sealed_secret_version" => {
            nf(name, store.sealed_secret_version(b, &SecretName::parse("OPENROUTER_API_KEY").unwrap(), 1).await)
        }
        "Store::house_keys" => {
            let mine = ok(name, store.house_keys(b).await)?;
            none_of(name, &mine, |k| k.house_id == a)
        }
        "Store::insert_house_key" => {
            // B's own key version; A's keys are in the snapshot.
            ok(name, store.insert_house_key(b, 99, &[1; 48], &[1; 12], "kek").await).map(drop)
        }
        "Store::sealed_versions_under_key" => {
            none_of(name, &ok(name, store.sealed_versions_under_key(b, 1).await)?, |v| v.secret_id == c.secret_id)
        }
        "Store::delete_unused_house_key" => ok(name, store.delete_unused_house_key(b, 1).await).map(drop),
        "Store::thread" => nf(name, store.thread(b, c.thread.id).await),
        "Store::list_threads" => none_of(name, &ok(name, store.list_threads(b, 100).await)?, |t| t.id == c.thread.id),
        "Store::child_threads" => {
            none_of(name, &ok(name, store.child_threads(b, c.thread.id).await)?, |t| t.house_id == a)
        }
        "Store::append_entry" => {
            nf(name, store.append_entry(b, c.thread.id, EntryBody::Warning { message: "x".into() }).await)
        }
        "Store::entries" => nf(name, store.entries(b, c.thread.id, 0, 10).await),
        "Store::append_and_enqueue" => {
            let body = EntryBody::UserMessage { author_id: c.intruder.member_id(), text: "x".into() };
            nf(name, store.append_and_enqueue(b, c.thread.id, body).await)
        }
        "Store::enqueue_job" => nf(name, store.enqueue_job(b, c.thread.id, 1).await),
        "Store::job" => nf(name, store.job(b, c.job).await),
        "Store::jobs_of_thread" => {
            none_of(name, &ok(name, store.jobs_of_thread(b, c.thread.id).await)?, |j| j.house_id == a)
        }
        "Store::cancel_jobs" => {
            let cancelled = ok(name, store.cancel_jobs(b, c.thread.id).await)?;
            if cancelled.queued.is_empty() && cancelled.running == 0 {
                Ok(())
            } else {
                Err(format!("{name}: {cancelled:?}"))
            }
        }
        // A claim on B's job writes to B's threads only.
        "Store::append_job_entry" | "Store::append_job_entries" => {
            nf(
                name,
                store.append_job_entry(&c.claim_b, c.thread.id, EntryBody::Warning { message: "x".into() }).await,
            )?;
            nf(name, store.append_job_entries(&c.claim_b, c.thread.id, vec![]).await)
        }
        other => Err(format!("no isolation row for the store method {other}: add one")),
    }
}

pub(crate) async fn another_house_reaches_nothing_through_any_service_or_store_method(
    test: arbe_store::testkit::TestStore,
) {
    let fx = Fixture::new(test, vec![]).await;
    let store = fx.test.store.clone();
    let victim = testkit::member(&store, &fx.house, "victim", Role::Owner).await.0;
    store.set_house_quotas(fx.house.id, Quotas { sandboxes: Some(77), ..Quotas::default() }).await.unwrap();
    let thread = fx.thread("work", &[("DEPLOY_TOKEN", true)]).await;
    let env = fx.services.environments.view(&fx.writer, &EnvironmentRef::parse("work").unwrap()).await.unwrap();
    let sandbox = store.sandbox(fx.house.id, env.sandbox_id).await.unwrap();
    let req = CreateAgent { name: Name::parse("helper").unwrap(), model: None, system_prompt: None, is_default: true };
    let agent = fx.services.agents.create(&fx.writer, req).await.unwrap();
    let intruders = testkit::house(&store, "intruder").await;
    let intruder = intruders.owner;
    let intruder_key = testkit::member(&store, &intruders.house, "intruder-keyed", Role::Owner).await.1;
    let claim_b = testkit::claim(&store, intruder.house_id()).await;
    let secret_id = store.secret_meta(fx.house.id, &SecretName::parse("DEPLOY_TOKEN").unwrap()).await.unwrap().id;
    let (_, job) = fx.services.dispatcher.post(&fx.writer, thread.id, "queued, never run").await.unwrap();
    fx.services.secrets.rotate_house_key(&victim).await.unwrap();
    store.connect_github_installation(&connection(fx.house.id)).await.unwrap();
    let c = Ctx { fx, victim, intruder, intruder_key, secret_id, env, thread, agent, sandbox, job: job.id, claim_b };
    let before = snapshot(&c).await;

    let services: BTreeSet<String> = [
        methods_taking("../arbe-store/src", &["access.rs"], &["&Actor"]),
        methods_taking("../arbe-vault/src", &[], &["&Actor"]),
        methods_taking("../arbe-env/src", &[], &["&Actor"]),
        methods_taking("src", &[], &["&Actor"]),
    ]
    .into_iter()
    .flatten()
    .collect();
    // House-scoped store methods: those taking a house id, or a row that carries one.
    let scoped = [
        "HouseId",
        "NewEnvironment",
        "NewSandbox",
        "NewSecretVersion",
        "NewAgent",
        "NewThread",
        "&Environment",
        "&GitHubConnection",
    ];
    let store_methods = methods_taking("../arbe-store/src", &[], &scoped);
    assert!(services.len() > 40 && store_methods.len() > 40, "the source scan found too little: {services:?}");
    let mut failures = Vec::new();
    for name in &services {
        if let Err(problem) = service_row(&c, name).await {
            failures.push(problem);
        }
    }
    for name in &store_methods {
        if let Err(problem) = store_row(&c, name).await {
            failures.push(problem);
        }
    }
    assert!(failures.is_empty(), "isolation failures:\n{}", failures.join("\n"));
    assert_eq!(snapshot(&c).await, before, "house A changed");
    // The rows that may succeed did so in the intruder's house.
    let b = c.intruder.house_id();
    assert!(store.list_secrets(b).await.unwrap().iter().any(|m| m.name.as_str() == "DEPLOY_TOKEN"));
}
