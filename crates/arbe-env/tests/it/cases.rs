//! The cases `both_backends!` runs on SQLite and on PostgreSQL.

use std::sync::Arc;

use arbe_core::{
    Audience, EnvironmentName, ErrorKind, ModelRef, ParentRef, RepoRef, RuntimeName, SandboxState, SecretBinding,
    SecretName,
};
use arbe_env::{
    BindOutcome, CheckStatus, CreateEnvironment, EnvError, EnvironmentPatch, EnvironmentRef, SandboxRef, WorkerKeys,
};
use arbe_runtime::{ExecRequest, ExternalId, Runtime};
use arbe_store::{NewThread, testkit::TestStore};
use arbe_vault::SetOptions;

use crate::{Fixture, assert_kind, fake_github, test_app};

fn env_name(s: &str) -> EnvironmentName {
    EnvironmentName::parse(s).unwrap()
}

fn by(s: &str) -> EnvironmentRef {
    EnvironmentRef::parse(s).unwrap()
}

fn secret(s: &str) -> SecretName {
    SecretName::parse(s).unwrap()
}

fn repo(s: &str) -> RepoRef {
    RepoRef::parse(s).unwrap()
}

fn binding(name: &str, required: bool) -> SecretBinding {
    SecretBinding { name: secret(name), required }
}

async fn set(f: &Fixture, who: &arbe_store::Actor, name: &str, value: &str, audience: Audience, shared: bool) {
    let options = SetOptions { audience: Some(audience), shared: Some(shared) };
    f.vault.set(who, &secret(name), &arbe_core::SecretValue::new(value.to_owned()).unwrap(), options).await.unwrap();
}

/// An environment named `name` on a freshly provisioned local sandbox.
async fn create(f: &Fixture, name: &str, bindings: Vec<SecretBinding>) -> arbe_core::Environment {
    let mut req = CreateEnvironment::new(env_name(name));
    req.secrets = bindings;
    f.envs.create(&f.writer, req).await.unwrap()
}

/// A thread in the environment, keeping its snapshot.
async fn thread_in(f: &Fixture, env: &arbe_core::Environment) -> arbe_core::Thread {
    let thread = NewThread {
        house_id: f.house.id,
        author_id: f.writer.member_id(),
        parent: ParentRef::parse("general").unwrap(),
        environment: Some(env.snapshot()),
        model_override: None,
        agent_ids: vec![],
    };
    f.test.store.create_thread(thread).await.unwrap()
}

async fn sandbox_count(f: &Fixture) -> usize {
    f.test.store.list_sandboxes(f.house.id, None).await.unwrap().len()
}

pub(crate) async fn create_with_a_sandbox_adds_the_repo_to_allowed_repos(test: TestStore) {
    let f = Fixture::new(test).await;
    let first = create(&f, "first", vec![]).await;
    let mut req = CreateEnvironment::new(env_name("staging"));
    req.sandbox = Some(SandboxRef::Id(first.sandbox_id));
    req.repo = Some(repo("https://github.com/Org/Repo.git"));
    req.allowed_repos = vec![repo("org/repo"), repo("org/other")];
    req.secrets = vec![binding("OPENROUTER_API_KEY", true), binding("NICE_TO_HAVE_KEY", false)];
    let env = f.envs.create(&f.writer, req).await.unwrap();
    assert_eq!(env.sandbox_id, first.sandbox_id);
    assert_eq!(env.runtime.as_str(), "local");
    assert_eq!(env.author_id, f.writer.member_id());
    assert_eq!(env.default_repo, Some(repo("https://github.com/Org/Repo")));
    // The repo joins the allowed list once (GitHub compares names without case).
    assert_eq!(env.allowed_repos, [repo("org/repo"), repo("org/other")]);
    assert_eq!(env.secret_bindings, [binding("OPENROUTER_API_KEY", true), binding("NICE_TO_HAVE_KEY", false)]);
    // By sandbox name too; no new sandbox was provisioned for either.
    let sandbox = f.test.store.sandbox(f.house.id, first.sandbox_id).await.unwrap();
    let mut req = CreateEnvironment::new(env_name("by-name"));
    req.sandbox = Some(SandboxRef::parse(sandbox.name.as_str()).unwrap());
    assert_eq!(f.envs.create(&f.writer, req).await.unwrap().sandbox_id, first.sandbox_id);
    assert_eq!(sandbox_count(&f).await, 1);
}

pub(crate) async fn create_without_a_sandbox_provisions_one_on_the_runtime(test: TestStore) {
    let f = Fixture::new(test).await;
    let env = create(&f, "prod", vec![]).await;
    let sandbox = f.test.store.sandbox(f.house.id, env.sandbox_id).await.unwrap();
    assert_eq!(sandbox.state, SandboxState::Started);
    assert!(sandbox.name.as_str().starts_with("prod-"), "{}", sandbox.name);
    // It is real: the runtime runs commands in it.
    let id = ExternalId(sandbox.external_id.clone().unwrap());
    let out = f.local.exec(&id, ExecRequest::shell("echo hello from $PWD"), &mut ()).await.unwrap();
    assert_eq!(out.exit_code, Some(0));
    assert!(out.stdout_text().starts_with("hello from"));
    // Naming the default runtime explicitly does the same; an unconfigured one says why.
    let mut req = CreateEnvironment::new(env_name("other"));
    req.runtime = Some(RuntimeName::parse("docker").unwrap());
    let err = assert_kind(f.envs.create(&f.writer, req).await, ErrorKind::Misconfigured);
    assert!(err.to_string().contains("runtime docker is not configured: no Docker engine in this test"), "{err}");
    assert_eq!(sandbox_count(&f).await, 1);
}

pub(crate) async fn names_are_unique_without_case_and_lookups_ignore_case(test: TestStore) {
    let f = Fixture::new(test).await;
    let env = create(&f, "Prod", vec![]).await;
    for name in ["prod", "PROD", "Prod"] {
        assert_eq!(f.envs.view(&f.reader, &by(name)).await.unwrap().id, env.id);
    }
    assert_eq!(f.envs.view(&f.reader, &by(&env.id.to_string())).await.unwrap().name.as_str(), "Prod");
    let before = sandbox_count(&f).await;
    let err =
        assert_kind(f.envs.create(&f.writer, CreateEnvironment::new(env_name("PROD"))).await, ErrorKind::Conflict);
    assert!(err.to_string().contains("already exists"), "{err}");
    // The clash is found before a sandbox is provisioned for it.
    assert_eq!(sandbox_count(&f).await, before);
    let list = f.envs.list(&f.reader).await.unwrap();
    assert_eq!(list.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["Prod"]);
}

pub(crate) async fn bad_input_names_the_field_and_changes_nothing(test: TestStore) {
    let f = Fixture::new(test).await;
    let env = create(&f, "prod", vec![]).await;
    let before = (sandbox_count(&f).await, f.envs.list(&f.reader).await.unwrap());

    let mut req = CreateEnvironment::new(env_name("dupe"));
    req.secrets = vec![binding("A_KEY", true), binding("A_KEY", false)];
    let err = assert_kind(f.envs.create(&f.writer, req).await, ErrorKind::InvalidInput);
    assert_eq!(
        err.to_string(),
        "invalid secret binding A_KEY: must be listed once (as required or as optional, not both)"
    );

    let mut req = CreateEnvironment::new(env_name("mismatch"));
    req.sandbox = Some(SandboxRef::Id(env.sandbox_id));
    req.runtime = Some(RuntimeName::parse("docker").unwrap());
    let err = assert_kind(f.envs.create(&f.writer, req).await, ErrorKind::Conflict);
    assert!(err.to_string().starts_with("runtime conflicts with the sandbox: sandbox prod-"), "{err}");

    let mut req = CreateEnvironment::new(env_name("gh"));
    req.github_installation_id = Some(-3);
    let err = assert_kind(f.envs.create(&f.writer, req).await, ErrorKind::InvalidInput);
    assert_eq!(err.to_string(), "invalid github_installation_id: must be a positive integer");

    let mut req = CreateEnvironment::new(env_name("nosuch"));
    req.sandbox = Some(SandboxRef::parse("no-such-box").unwrap());
    assert_kind(f.envs.create(&f.writer, req).await, ErrorKind::NotFound);

    let patch =
        EnvironmentPatch { secret_bindings: Some(vec![binding("X", true), binding("X", true)]), ..Default::default() };
    assert_kind(f.envs.update(&f.writer, &by("prod"), patch).await, ErrorKind::InvalidInput);

    // Parse errors name the field and never echo the input.
    let err = EnvironmentName::parse("sk-live secret!").unwrap_err().to_string();
    assert!(err.starts_with("invalid environment name:") && !err.contains("sk-live"), "{err}");

    assert_eq!((sandbox_count(&f).await, f.envs.list(&f.reader).await.unwrap()), before);
}

pub(crate) async fn bind_secret_is_idempotent_and_upgrades_or_downgrades(test: TestStore) {
    let f = Fixture::new(test).await;
    create(&f, "prod", vec![]).await;
    let (env, outcome) = f.envs.bind_secret(&f.writer, &by("prod"), secret("GITHUB_TOKEN"), true).await.unwrap();
    assert_eq!(outcome, BindOutcome::Added);
    let updated = env.updated_at;
    let (env, outcome) = f.envs.bind_secret(&f.writer, &by("PROD"), secret("GITHUB_TOKEN"), true).await.unwrap();
    assert_eq!(outcome, BindOutcome::Unchanged);
    assert_eq!(env.updated_at, updated, "a no-op bind writes nothing");
    let (env, outcome) = f.envs.bind_secret(&f.writer, &by("prod"), secret("GITHUB_TOKEN"), false).await.unwrap();
    assert_eq!(outcome, BindOutcome::Changed);
    assert_eq!(env.secret_bindings, [binding("GITHUB_TOKEN", false)]);
    let (env, outcome) = f.envs.bind_secret(&f.writer, &by("prod"), secret("GITHUB_TOKEN"), true).await.unwrap();
    assert_eq!(outcome, BindOutcome::Changed);
    assert_eq!(env.secret_bindings, [binding("GITHUB_TOKEN", true)]);
    // Stored, not just returned.
    assert_eq!(f.envs.view(&f.reader, &by("prod")).await.unwrap().secret_bindings, [binding("GITHUB_TOKEN", true)]);
}

pub(crate) async fn unbind_secret_removes_only_that_binding(test: TestStore) {
    let f = Fixture::new(test).await;
    create(&f, "prod", vec![binding("A_KEY", true), binding("B_KEY", false)]).await;
    let (env, removed) = f.envs.unbind_secret(&f.writer, &by("prod"), &secret("A_KEY")).await.unwrap();
    assert!(removed);
    assert_eq!(env.secret_bindings, [binding("B_KEY", false)]);
    let (env, removed) = f.envs.unbind_secret(&f.writer, &by("prod"), &secret("A_KEY")).await.unwrap();
    assert!(!removed);
    assert_eq!(env.secret_bindings, [binding("B_KEY", false)]);
}

pub(crate) async fn roles_follow_the_rule_table_and_houses_are_isolated(test: TestStore) {
    let f = Fixture::new(test).await;
    create(&f, "prod", vec![]).await;
    let err = assert_kind(f.envs.create(&f.reader, CreateEnvironment::new(env_name("x"))).await, ErrorKind::Forbidden);
    assert_eq!(err.to_string(), "a reader may not create or change environments (it takes writer)");
    assert_kind(f.envs.bind_secret(&f.reader, &by("prod"), secret("K"), true).await, ErrorKind::Forbidden);
    let err = assert_kind(f.envs.delete(&f.writer, &by("prod")).await, ErrorKind::Forbidden);
    assert_eq!(err.to_string(), "a writer may not delete environments (it takes owner)");
    assert!(f.envs.view(&f.reader, &by("prod")).await.is_ok());
    // Another house sees nothing, by name or by id: not found, never forbidden.
    let store = &f.test.store;
    let stranger = arbe_store::testkit::house(store, "other").await.owner;
    let env = f.envs.view(&f.reader, &by("prod")).await.unwrap();
    assert_kind(f.envs.view(&stranger, &by("prod")).await, ErrorKind::NotFound);
    assert_kind(f.envs.view(&stranger, &by(&env.id.to_string())).await, ErrorKind::NotFound);
    assert_kind(f.envs.delete(&stranger, &by(&env.id.to_string())).await, ErrorKind::NotFound);
    assert!(f.envs.list(&stranger).await.unwrap().is_empty());
    // Nor can it borrow this house's sandbox.
    let mut req = CreateEnvironment::new(env_name("borrow"));
    req.sandbox = Some(SandboxRef::Id(env.sandbox_id));
    assert_kind(f.envs.create(&stranger, req).await, ErrorKind::NotFound);
}

pub(crate) async fn soft_delete_hides_the_row_but_not_the_thread_snapshot(test: TestStore) {
    let f = Fixture::new(test).await;
    let env = create(&f, "prod", vec![binding("A_KEY", true)]).await;
    let thread = thread_in(&f, &env).await;
    f.envs.delete(&f.owner, &by("prod")).await.unwrap();
    assert_kind(f.envs.view(&f.reader, &by("prod")).await, ErrorKind::NotFound);
    assert!(f.envs.list(&f.reader).await.unwrap().is_empty());
    assert_kind(f.envs.delete(&f.owner, &by("prod")).await, ErrorKind::NotFound);
    // The thread keeps its snapshot, and still points at the (soft-deleted) row.
    let thread = f.test.store.thread(f.house.id, thread.id).await.unwrap();
    assert_eq!(thread.environment, Some(env.snapshot()));
    assert_eq!(thread.environment_id, Some(env.id));
    // The name is free again.
    let again = create(&f, "PROD", vec![]).await;
    assert_ne!(again.id, env.id);
}

pub(crate) async fn purge_sets_thread_environment_null_and_keeps_the_snapshot(test: TestStore) {
    let f = Fixture::new(test).await;
    let env = create(&f, "prod", vec![]).await;
    let thread = thread_in(&f, &env).await;
    f.envs
        .update(&f.writer, &by("prod"), EnvironmentPatch { name: Some(env_name("renamed")), ..Default::default() })
        .await
        .unwrap();
    f.test.store.purge_environment(f.house.id, env.id).await.unwrap();
    let thread = f.test.store.thread(f.house.id, thread.id).await.unwrap();
    assert_eq!(thread.environment_id, None, "ON DELETE SET NULL");
    assert_eq!(thread.environment.unwrap().name.as_str(), "prod", "the snapshot is as it was at creation");
}

pub(crate) async fn patch_changes_only_the_fields_given(test: TestStore) {
    let f = Fixture::new(test).await;
    f.connect(7, "org").await;
    let env = create(&f, "prod", vec![binding("A_KEY", true)]).await;
    let other = create(&f, "spare", vec![]).await;
    let patch = EnvironmentPatch {
        default_repo: Some(Some(repo("org/app"))),
        github_installation_id: Some(Some(7)),
        sandbox: Some(SandboxRef::Id(other.sandbox_id)),
        ..Default::default()
    };
    let updated = f.envs.update(&f.writer, &by("prod"), patch).await.unwrap();
    assert_eq!(updated.default_repo, Some(repo("org/app")));
    assert_eq!(updated.allowed_repos, [repo("org/app")]);
    assert_eq!(updated.github_installation_id, Some(7));
    assert_eq!(updated.sandbox_id, other.sandbox_id);
    assert_eq!((updated.name.as_str(), &updated.secret_bindings), ("prod", &env.secret_bindings));
    let cleared = f
        .envs
        .update(&f.writer, &by("prod"), EnvironmentPatch { github_installation_id: Some(None), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(cleared.github_installation_id, None);
    assert_eq!(cleared.default_repo, Some(repo("org/app")));
    // Renaming onto another live name is a conflict.
    let patch = EnvironmentPatch { name: Some(env_name("SPARE")), ..Default::default() };
    assert_kind(f.envs.update(&f.writer, &by("prod"), patch).await, ErrorKind::Conflict);
}

pub(crate) async fn resolve_names_every_missing_required_secret_at_once(test: TestStore) {
    let f = Fixture::new(test).await;
    set(&f, &f.writer, "PRESENT", "present-v1", Audience::Environment, true).await;
    let env = create(
        &f,
        "prod",
        vec![
            binding("PRESENT", true),
            binding("MISSING_ONE", true),
            binding("MISSING_TWO", true),
            binding("OPT", false),
        ],
    )
    .await;
    let err = f.envs.resolve(&f.claim().await, &env.snapshot()).await.unwrap_err();
    let EnvError::UnresolvedSecrets { problems, .. } = &err else { panic!("{err:?}") };
    assert_eq!(problems.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["MISSING_ONE", "MISSING_TWO"]);
    assert_eq!(
        err.to_string(),
        "environment prod cannot dispatch: required secrets MISSING_ONE is not set in the house; \
         MISSING_TWO is not set in the house"
    );
    assert_eq!(arbe_core::Classify::kind(&err), ErrorKind::InvalidInput);
    assert!(!format!("{err:?}").contains("present-v1"));
}

pub(crate) async fn resolve_returns_values_and_warns_on_missing_optional(test: TestStore) {
    let f = Fixture::new(test).await;
    set(&f, &f.writer, "OPENROUTER_API_KEY", "sk-or-canary", Audience::Environment, true).await;
    set(&f, &f.writer, "GITHUB_TOKEN", "ghp-canary", Audience::Environment, false).await;
    let env = create(
        &f,
        "prod",
        vec![binding("OPENROUTER_API_KEY", true), binding("GITHUB_TOKEN", true), binding("NICE_TO_HAVE_KEY", false)],
    )
    .await;
    let res = f.envs.resolve(&f.claim().await, &env.snapshot()).await.unwrap();
    let vars: Vec<_> = res.vars.iter().map(|(n, v)| (n.as_str(), v.expose())).collect();
    assert_eq!(vars, [("OPENROUTER_API_KEY", "sk-or-canary"), ("GITHUB_TOKEN", "ghp-canary")]);
    assert_eq!(res.warnings, ["optional secret NICE_TO_HAVE_KEY is not set in the house; the run goes on without it"]);
    let debug = format!("{res:?}");
    assert!(!debug.contains("canary") && debug.contains("GITHUB_TOKEN"), "{debug}");
    // A rotation is picked up at the next dispatch.
    set(&f, &f.writer, "GITHUB_TOKEN", "ghp-rotated", Audience::Environment, false).await;
    let res = f.envs.resolve(&f.claim().await, &env.snapshot()).await.unwrap();
    assert_eq!(res.vars[1].1.expose(), "ghp-rotated");
}

pub(crate) async fn resolve_never_injects_capability_or_another_authors_secret(test: TestStore) {
    let f = Fixture::new(test).await;
    // Bound before the secrets exist (bindings hold names), then set by their authors.
    let env =
        create(&f, "prod", vec![binding("CAP_KEY", true), binding("OWNERS_OWN", true), binding("WRITERS_OWN", true)])
            .await;
    set(&f, &f.owner, "CAP_KEY", "cap-value", Audience::Capability, true).await;
    set(&f, &f.owner, "OWNERS_OWN", "owner-value", Audience::Environment, false).await;
    set(&f, &f.writer, "WRITERS_OWN", "writer-value", Audience::Environment, false).await;
    // The writer's dispatch: the owner's unshared secret and any capability secret fail.
    let err = f.envs.resolve(&f.claim().await, &env.snapshot()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment prod cannot dispatch: required secrets CAP_KEY has audience capability and is never \
         injected into sandboxes; OWNERS_OWN is private to another member: only dispatches its author posts can use it"
    );
    // Only the owner may make its own binding optional; as optional bindings they are warnings,
    // and only the writer's own secret resolves.
    let optional = || EnvironmentPatch {
        secret_bindings: Some(vec![
            binding("CAP_KEY", false),
            binding("OWNERS_OWN", false),
            binding("WRITERS_OWN", true),
        ]),
        ..Default::default()
    };
    assert_kind(f.envs.update(&f.writer, &by("prod"), optional()).await, ErrorKind::Forbidden);
    let env = f.envs.update(&f.owner, &by("prod"), optional()).await.unwrap();
    let res = f.envs.resolve(&f.claim().await, &env.snapshot()).await.unwrap();
    assert_eq!(res.secret_names(), [secret("WRITERS_OWN")]);
    assert_eq!(res.warnings.len(), 2);
    // The repo policy comes with the resolution.
    assert_eq!(arbe_core::Classify::kind(&res.check_repo(&repo("org/app")).unwrap_err()), ErrorKind::InvalidInput);
}

pub(crate) async fn resolve_without_a_github_app_skips_the_token(test: TestStore) {
    let f = Fixture::new(test).await;
    f.connect(7, "org").await;
    let mut req = CreateEnvironment::new(env_name("prod"));
    req.repo = Some(repo("org/app"));
    req.github_installation_id = Some(7);
    let env = f.envs.create(&f.writer, req).await.unwrap();
    let res = f.envs.resolve(&f.claim().await, &env.snapshot()).await.unwrap();
    assert!(res.vars.is_empty() && res.warnings.is_empty());
    assert_kind(f.envs.github_connect_start(&f.owner, None), ErrorKind::Unsupported);
}

pub(crate) async fn model_key_prefers_the_house_then_the_worker(test: TestStore) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ANTHROPIC_API_KEY"), "sk-ant-file\n").unwrap();
    let keys = WorkerKeys::new(
        |var| (var == "OPENAI_API_KEY").then(|| "sk-openai-env".to_owned()),
        Some(dir.path().to_owned()),
    );
    let f = Fixture::with(test, None, keys).await;
    let claim = f.claim().await;
    let model = |s: &str| ModelRef::parse(s).unwrap();
    let key = f.envs.model_key(&claim, &ModelRef::default()).await.unwrap();
    assert_eq!(key.var, Some("OPENROUTER_API_KEY"));
    assert!(!key.is_available());
    set(&f, &f.owner, "OPENROUTER_API_KEY", "sk-or-house", Audience::Capability, true).await;
    let key = f.envs.model_key(&claim, &ModelRef::default()).await.unwrap();
    let (value, source) = key.found.unwrap();
    assert_eq!((value.expose(), source.to_string().as_str()), ("sk-or-house", "house secret"));
    let key = f.envs.model_key(&claim, &model("openai/gpt-4o-mini")).await.unwrap();
    assert_eq!(key.found.unwrap().1.to_string(), "environment variable");
    let key = f.envs.model_key(&claim, &model("anthropic/claude-haiku-4-5")).await.unwrap();
    assert_eq!(key.found.unwrap().0.expose(), "sk-ant-file");
    let key = f.envs.model_key(&claim, &model("ollama/llama3.2")).await.unwrap();
    assert!(key.var.is_none() && key.is_available());
    // A member's unshared key serves only the dispatches that member posts.
    set(&f, &f.writer, "GEMINI_API_KEY", "gem-writer", Audience::Capability, false).await;
    let gemini = model("gemini/gemini-2.5-flash");
    assert!(f.envs.model_key(&f.claim_by(&f.owner).await, &gemini).await.unwrap().found.is_none());
    assert!(f.envs.model_key(&f.claim_by(&f.writer).await, &gemini).await.unwrap().found.is_some());
}

pub(crate) async fn diagnose_lists_blockers_warnings_and_sources(test: TestStore) {
    let f = Fixture::new(test).await;
    create(&f, "prod", vec![binding("GITHUB_TOKEN", true), binding("NICE_TO_HAVE_KEY", false)]).await;
    let d = f.envs.diagnose(&f.reader, &by("prod"), &ModelRef::default()).await.unwrap();
    let lines: Vec<_> = d.checks.iter().map(|c| (c.name.as_str(), c.status)).collect();
    assert_eq!(
        lines,
        [
            ("runtime local", CheckStatus::Ok),
            (d.checks[1].name.as_str(), CheckStatus::Ok),
            ("secret GITHUB_TOKEN", CheckStatus::Blocker),
            ("secret NICE_TO_HAVE_KEY", CheckStatus::Warning),
            ("model key OPENROUTER_API_KEY", CheckStatus::Blocker),
            ("repo policy", CheckStatus::Ok),
            ("github app", CheckStatus::Ok),
        ]
    );
    assert!(d.checks[1].name.starts_with("sandbox prod-"));
    assert!(!d.is_ok());
    assert!(d.checks[2].detail.contains("arbe secret set GITHUB_TOKEN"), "{}", d.checks[2].detail);
    // Set what was missing: no blockers, and the key's source is named (never its value).
    set(&f, &f.writer, "GITHUB_TOKEN", "ghp-diag-canary", Audience::Environment, true).await;
    set(&f, &f.writer, "OPENROUTER_API_KEY", "sk-diag-canary", Audience::Environment, true).await;
    let d = f.envs.diagnose(&f.reader, &by("prod"), &ModelRef::default()).await.unwrap();
    assert!(d.is_ok(), "{d:?}");
    let key_line = d.checks.iter().find(|c| c.name == "model key OPENROUTER_API_KEY").unwrap();
    assert_eq!(key_line.detail, "for openrouter/anthropic/claude-haiku-4.5, from the house secret");
    assert!(!format!("{d:?}").contains("canary"));
    // A stopped sandbox is a warning (dispatch starts it); nothing was started by diagnose.
    let env = f.envs.view(&f.reader, &by("prod")).await.unwrap();
    let sandbox = f.test.store.sandbox(f.house.id, env.sandbox_id).await.unwrap();
    let id = ExternalId(sandbox.external_id.unwrap());
    f.local.stop(&id).await.unwrap();
    let d = f.envs.diagnose(&f.reader, &by("prod"), &ModelRef::default()).await.unwrap();
    assert_eq!(d.checks[1].status, CheckStatus::Warning, "{:?}", d.checks[1]);
    assert_eq!(f.local.get(&id).await.unwrap().state, SandboxState::Stopped);
}

pub(crate) async fn ensure_sandbox_starts_a_stopped_sandbox_and_reprovisions_a_lost_one(test: TestStore) {
    let f = Fixture::new(test).await;
    let env = create(&f, "prod", vec![]).await;
    let sandbox = f.test.store.sandbox(f.house.id, env.sandbox_id).await.unwrap();
    let id = ExternalId(sandbox.external_id.clone().unwrap());
    f.local.put_file(&id, "notes.txt", b"kept").await.unwrap();
    f.local.stop(&id).await.unwrap();
    let ready = f.envs.ensure_sandbox(&f.claim().await, env.sandbox_id).await.unwrap();
    assert_eq!(ready.external_id, id);
    assert_eq!(f.local.get(&id).await.unwrap().state, SandboxState::Started);
    assert_eq!(f.local.get_file(&id, "notes.txt").await.unwrap(), b"kept");
    // Gone from the runtime behind arbe's back: provisioned again on demand.
    f.local.destroy(&id).await.unwrap();
    let ready = f.envs.ensure_sandbox(&f.claim().await, env.sandbox_id).await.unwrap();
    let out = ready.runtime.exec(&ready.external_id, ExecRequest::shell("echo ok"), &mut ()).await.unwrap();
    assert_eq!(out.stdout_text(), "ok\n");
    // Destroyed through arbe: the row says so, and it is not brought back.
    f.envs.destroy_for(&f.claim().await, env.sandbox_id).await.unwrap();
    assert_eq!(f.test.store.sandbox(f.house.id, env.sandbox_id).await.unwrap().state, SandboxState::Destroyed);
    assert_kind(f.envs.ensure_sandbox(&f.claim().await, env.sandbox_id).await, ErrorKind::NotFound);
}

pub(crate) async fn sandboxes_service_keeps_the_row_in_step_with_the_runtime(test: TestStore) {
    let f = Fixture::new(test).await;
    let boxes = f.envs.sandboxes();
    let env = create(&f, "prod", vec![binding("DEPLOY_KEY", true), binding("NICE_KEY", false)]).await;
    let by_id = SandboxRef::Id(env.sandbox_id);
    let listed = boxes.list(&f.reader, None).await.unwrap();
    assert_eq!(listed.iter().map(|s| (s.id, s.state)).collect::<Vec<_>>(), [(env.sandbox_id, SandboxState::Started)]);
    let local = RuntimeName::parse("local").unwrap();
    assert_eq!(boxes.list(&f.reader, Some(&local)).await.unwrap().len(), 1);
    assert!(boxes.list(&f.reader, Some(&RuntimeName::parse("docker").unwrap())).await.unwrap().is_empty());
    // Stopped behind arbe's back (the idle reaper, say): a view reads the runtime and records it.
    let row = boxes.view(&f.reader, &by_id).await.unwrap();
    let external = ExternalId(row.external_id.clone().unwrap());
    f.local.stop(&external).await.unwrap();
    assert_eq!(
        boxes.view(&f.reader, &SandboxRef::parse(row.name.as_str()).unwrap()).await.unwrap().state,
        SandboxState::Stopped
    );
    assert_eq!(f.test.store.sandbox(f.house.id, env.sandbox_id).await.unwrap().state, SandboxState::Stopped);
    // Start and stop go to the runtime and the row together; ping runs `true` in a started box.
    assert_eq!(boxes.start(&f.writer, &by_id).await.unwrap().state, SandboxState::Started);
    assert_eq!(f.local.get(&external).await.unwrap().state, SandboxState::Started);
    let ping = boxes.ping(&f.writer, &by_id).await.unwrap();
    assert!(ping.round_trip.is_some() && ping.sandbox.state == SandboxState::Started);
    assert_eq!(boxes.stop(&f.writer, &by_id).await.unwrap().state, SandboxState::Stopped);
    assert_eq!(f.local.get(&external).await.unwrap().state, SandboxState::Stopped);
    assert!(boxes.ping(&f.writer, &by_id).await.unwrap().round_trip.is_none(), "ping starts nothing");
    // Diagnose: the runtime's checklist and the state; env: the names commands get, no values.
    let d = boxes.diagnose(&f.reader, &by_id).await.unwrap();
    assert_eq!((d.runtime.runtime, d.sandbox.state), ("local", SandboxState::Stopped));
    let names: Vec<_> = boxes
        .env_names(&f.reader, &by_id)
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.name.to_string(), n.required))
        .collect();
    assert_eq!(names, [("DEPLOY_KEY".to_owned(), true), ("NICE_KEY".to_owned(), false)]);
    // Files go through the house's row; roles from the rule table.
    boxes.put_file(&f.writer, &by_id, "notes.txt", b"hello").await.unwrap();
    assert_eq!(boxes.get_file(&f.writer, &by_id, "notes.txt").await.unwrap(), b"hello");
    assert_kind(boxes.stop(&f.reader, &by_id).await, ErrorKind::Forbidden);
    assert_kind(boxes.destroy(&f.writer, &by_id).await, ErrorKind::Forbidden);
    assert_eq!(boxes.destroy(&f.owner, &by_id).await.unwrap().state, SandboxState::Destroyed);
    assert_kind(f.local.get(&external).await.map_err(EnvError::from), ErrorKind::NotFound);
    assert_kind(boxes.start(&f.writer, &by_id).await, ErrorKind::InvalidInput);
    // Another house's member finds nothing, by id or by name.
    let stranger = arbe_store::testkit::house(&f.test.store, "other").await.owner;
    assert_kind(boxes.view(&stranger, &by_id).await, ErrorKind::NotFound);
    assert_kind(boxes.view(&stranger, &SandboxRef::parse(row.name.as_str()).unwrap()).await, ErrorKind::NotFound);
    assert!(boxes.list(&stranger, None).await.unwrap().is_empty());
}

pub(crate) async fn quotas_cap_sandboxes_and_workspace_bytes(test: TestStore) {
    use arbe_core::{Name, Quotas};
    let quotas = Quotas { sandboxes: Some(1), workspace_bytes: Some(1000), ..Quotas::default() };
    let store = arbe_store::testkit::reopen(&test, |config| config.quotas = quotas).await;
    let f = Fixture::on(test, store).await;
    let boxes = f.envs.sandboxes();
    let first = boxes.create(&f.writer, Name::parse("first").unwrap(), None).await.unwrap();
    // The workspace cap reached the runtime: a file over it is refused, naming the quota.
    let by = SandboxRef::Id(first.id);
    boxes.put_file(&f.writer, &by, "a", &[1; 600]).await.unwrap();
    let err = assert_kind(boxes.put_file(&f.writer, &by, "b", &[1; 600]).await, ErrorKind::QuotaExceeded);
    assert!(err.to_string().contains("workspace_bytes quota of 1000 bytes"), "{err}");
    // One sandbox at most: a second is refused, by the service and by environment creation,
    // and nothing is provisioned.
    let err =
        assert_kind(boxes.create(&f.writer, Name::parse("second").unwrap(), None).await, ErrorKind::QuotaExceeded);
    assert_eq!(
        err.to_string(),
        "quota sandboxes reached: the house may have at most 1 sandboxes that are not destroyed"
    );
    let mut req = CreateEnvironment::new(env_name("prod"));
    req.secrets = vec![];
    assert_kind(f.envs.create(&f.writer, req).await, ErrorKind::QuotaExceeded);
    assert!(f.envs.list(&f.reader).await.unwrap().is_empty());
    assert_eq!(f.local.list(&arbe_core::Labels::default()).await.unwrap().len(), 1);
}

pub(crate) async fn github_installations_connect_only_through_a_verified_flow(test: TestStore) {
    let gh = fake_github::start().await;
    let f = Fixture::with(test, Some(Arc::new(test_app(&gh.url))), WorkerKeys::none()).await;
    // Only an owner starts the flow.
    assert_kind(f.envs.github_connect_start(&f.writer, None), ErrorKind::Forbidden);
    let start = f.envs.github_connect_start(&f.owner, None).unwrap();
    // Mallory signs in with the owner's state but cannot reach installation 7: nothing is stored.
    let err = f.envs.github_connect_finish(&start.state, &gh.code_for("mallory"), 7, None).await.unwrap_err();
    assert_eq!(arbe_core::Classify::kind(&err), ErrorKind::Forbidden);
    assert_eq!(err.to_string(), "GitHub user mallory cannot reach installation 7 of the app");
    assert!(f.envs.github_connections(&f.reader).await.unwrap().is_empty());
    // A state that was altered, or is not ours, connects nothing either.
    let forged = format!("{}x", start.state);
    assert_kind(f.envs.github_connect_finish(&forged, &gh.code_for("alice"), 7, None).await, ErrorKind::InvalidInput);
    // Alice can reach it: connected to the house the state names, on the installation's account.
    let (connected, _) = f.envs.github_connect_finish(&start.state, &gh.code_for("alice"), 7, None).await.unwrap();
    assert_eq!(
        (connected.house_id, connected.account_login.as_str(), connected.github_login.as_str()),
        (f.house.id, "org", "alice")
    );
    assert_eq!(connected.connected_by, Some(f.owner.user().id));
    let listed = f.envs.github_connections(&f.reader).await.unwrap();
    assert_eq!(listed.iter().map(|c| c.installation_id).collect::<Vec<_>>(), [7]);

    // The house's own environments may name it (provisioned now: the local runtime serves one
    // house, and a second arrives below).
    let mut req = CreateEnvironment::new(env_name("api"));
    req.repo = Some(repo("org/api"));
    req.github_installation_id = Some(7);
    let api = f.envs.create(&f.writer, req.clone()).await.unwrap();
    let mut snapshot = create(&f, "prod", vec![]).await.snapshot();
    req.sandbox = Some(SandboxRef::Id(api.sandbox_id));

    // Another house cannot name it: not on an environment, not at resolution.
    let other = arbe_store::testkit::house(&f.test.store, "other").await;
    req.name = env_name("stolen");
    req.sandbox = None;
    let err = f.envs.create(&other.writer, req.clone()).await.unwrap_err();
    assert_eq!(arbe_core::Classify::kind(&err), ErrorKind::NotFound);
    assert!(err.to_string().starts_with("GitHub installation 7 is not connected to this house"), "{err}");
    assert!(f.envs.list(&other.reader).await.unwrap().is_empty());
    assert!(f.envs.github_connections(&other.reader).await.unwrap().is_empty());
    snapshot.allowed_repos = vec![repo("org/api")];
    snapshot.github_installation_id = Some(7);
    let theirs = arbe_store::testkit::claim_posted_by(&f.test.store, &other.writer).await;
    let err = f.envs.resolve(&theirs, &snapshot).await.unwrap_err();
    assert!(matches!(err, EnvError::GitHubNotConnected { installation: 7 }), "{err:?}");
    assert!(gh.seen.lock().unwrap().token_requests.is_empty(), "no token was minted for the other house");
    // Repos of another account are refused on the house's own environment too.
    req.repo = Some(repo("evil/api"));
    req.sandbox = Some(SandboxRef::Id(api.sandbox_id));
    let err = assert_kind(f.envs.create(&f.writer, req.clone()).await, ErrorKind::InvalidInput);
    assert!(err.to_string().contains("the account of installation 7"), "{err}");
    let patch = EnvironmentPatch { allowed_repos: Some(vec![repo("evil/api")]), ..Default::default() };
    assert_kind(f.envs.update(&f.writer, &by("api"), patch).await, ErrorKind::InvalidInput);

    // The owner disconnects it: environments naming it stop resolving tokens.
    let env = api;
    assert!(f.envs.resolve(&f.claim().await, &env.snapshot()).await.is_ok());
    assert_kind(f.envs.github_disconnect(&f.writer, 7).await, ErrorKind::Forbidden);
    f.envs.github_disconnect(&f.owner, 7).await.unwrap();
    assert_kind(f.envs.resolve(&f.claim().await, &env.snapshot()).await, ErrorKind::NotFound);
    assert!(gh.problems().is_empty(), "{:?}", gh.problems());
}

pub(crate) async fn a_dispatch_token_is_minted_from_the_connection_and_revoked_on_release(test: TestStore) {
    let gh = fake_github::start().await;
    let f = Fixture::with(test, Some(Arc::new(test_app(&gh.url))), WorkerKeys::none()).await;
    f.connect(7, "org").await;
    set(&f, &f.writer, "GITHUB_TOKEN", "ghp-bound", Audience::Environment, true).await;
    let mut req = CreateEnvironment::new(env_name("prod"));
    req.repo = Some(repo("https://github.com/org/api"));
    req.allowed_repos = vec![repo("org/web")];
    req.github_installation_id = Some(7);
    req.secrets = vec![binding("GITHUB_TOKEN", false)];
    let env = f.envs.create(&f.writer, req).await.unwrap();
    let first = f.envs.resolve(&f.claim().await, &env.snapshot()).await.unwrap();
    // The minted token replaces the bound secret of the same name.
    let vars: Vec<_> = first.vars.iter().map(|(n, v)| (n.as_str(), v.expose().to_owned())).collect();
    let minted = first.github_token.as_ref().unwrap().token.expose().to_owned();
    assert_eq!(vars, [("GITHUB_TOKEN", minted.clone())]);
    assert!(minted.starts_with("ghs_"));
    assert!(first.check_repo(&repo("git@github.com:org/web.git")).is_ok());
    assert!(first.check_repo(&repo("org/secret-repo")).is_err());
    // Each dispatch mints its own, with the least permissions; release revokes it.
    let second = f.envs.resolve(&f.claim().await, &env.snapshot()).await.unwrap();
    assert_ne!(second.github_token.as_ref().unwrap().token.expose(), minted);
    // The first token may still be in the sandbox (in `.git/config`, say) and still valid: the
    // second dispatch redacts it too, without injecting it.
    let earlier: Vec<&str> = second.redact_also.iter().map(|(_, v)| v.expose()).collect();
    assert_eq!(earlier, [minted.as_str()]);
    assert!(second.vars.iter().all(|(_, v)| v.expose() != minted));
    f.envs.release(&first).await;
    assert!(!gh.token_live(&minted));
    assert!(gh.token_live(second.github_token.as_ref().unwrap().token.expose()));
    let requests = gh.seen.lock().unwrap().token_requests.clone();
    let body = serde_json::json!({"repositories": ["api", "web"], "permissions": {"contents": "write", "pull_requests": "write"}});
    assert_eq!(requests, [(7, body.clone()), (7, body)]);
    assert!(!format!("{first:?}").contains(&minted));
    assert!(gh.problems().is_empty(), "{:?}", gh.problems());
}

pub(crate) async fn private_secrets_are_their_authors_alone(test: TestStore) {
    let f = Fixture::new(test).await;
    let value = |s: &str| arbe_core::SecretValue::new(s.to_owned()).unwrap();
    set(&f, &f.owner, "OWNERS_KEY", "owner-canary", Audience::Environment, false).await;
    set(&f, &f.writer, "TEAM_KEY", "team-key-v1", Audience::Environment, true).await;
    // Another writer cannot rotate the owner's private secret, nor make it shared.
    for options in [SetOptions::default(), SetOptions { shared: Some(true), ..SetOptions::default() }] {
        let err = f.vault.set(&f.writer, &secret("OWNERS_KEY"), &value("writer-swap"), options).await.unwrap_err();
        assert_eq!(arbe_core::Classify::kind(&err), ErrorKind::Forbidden);
        assert!(err.to_string().starts_with("secret OWNERS_KEY is private to the member who created it"), "{err}");
    }
    assert_kind(f.vault.rollback(&f.writer, &secret("OWNERS_KEY")).await, ErrorKind::Forbidden);
    let meta = f.vault.meta(&f.reader, &secret("OWNERS_KEY")).await.unwrap();
    assert_eq!((meta.version, meta.shared), (1, false), "nothing changed");
    // A shared secret: any writer rotates it, but only its author or an owner reshapes it.
    set(&f, &f.writer, "TEAM_KEY", "team-key-v2", Audience::Environment, true).await;
    let unshare = SetOptions { shared: Some(false), ..SetOptions::default() };
    f.vault.set(&f.owner, &secret("TEAM_KEY"), &value("team-key-v3"), unshare).await.unwrap();
    let reshare = SetOptions { shared: Some(true), ..SetOptions::default() };
    assert_kind(f.vault.set(&f.owner, &secret("TEAM_KEY"), &value("team-key-v4"), reshare).await, ErrorKind::Forbidden);

    // Binding another member's private secret is refused, on create, update and bind; nothing changes.
    let mut req = CreateEnvironment::new(env_name("prod"));
    req.secrets = vec![binding("OWNERS_KEY", true)];
    assert_kind(f.envs.create(&f.writer, req).await, ErrorKind::Forbidden);
    let env = create(&f, "prod", vec![binding("LATER_KEY", true)]).await;
    assert_kind(f.envs.bind_secret(&f.writer, &by("prod"), secret("OWNERS_KEY"), true).await, ErrorKind::Forbidden);
    let patch = EnvironmentPatch { secret_bindings: Some(vec![binding("OWNERS_KEY", false)]), ..Default::default() };
    assert_kind(f.envs.update(&f.writer, &by("prod"), patch).await, ErrorKind::Forbidden);
    assert_eq!(f.envs.view(&f.reader, &by("prod")).await.unwrap().secret_bindings, env.secret_bindings);
    // Its author binds it; then another writer can neither unbind nor flip it.
    f.envs.bind_secret(&f.owner, &by("prod"), secret("OWNERS_KEY"), true).await.unwrap();
    assert_kind(f.envs.unbind_secret(&f.writer, &by("prod"), &secret("OWNERS_KEY")).await, ErrorKind::Forbidden);
    assert_kind(f.envs.bind_secret(&f.writer, &by("prod"), secret("OWNERS_KEY"), false).await, ErrorKind::Forbidden);

    // A binding made before the secret existed: the private value resolves only for dispatches
    // its author posts.
    set(&f, &f.owner, "LATER_KEY", "later-canary", Audience::Environment, false).await;
    let env = f.envs.view(&f.reader, &by("prod")).await.unwrap();
    let err = f.envs.resolve(&f.claim_by(&f.writer).await, &env.snapshot()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment prod cannot dispatch: required secrets LATER_KEY is private to another member: only \
         dispatches its author posts can use it; OWNERS_KEY is private to another member: only dispatches its \
         author posts can use it"
    );
    assert!(!format!("{err:?}").contains("canary"));
    let res = f.envs.resolve(&f.claim_by(&f.owner).await, &env.snapshot()).await.unwrap();
    let vars: Vec<_> = res.vars.iter().map(|(n, v)| (n.as_str(), v.expose())).collect();
    assert_eq!(vars, [("LATER_KEY", "later-canary"), ("OWNERS_KEY", "owner-canary")]);
    // An owner may still delete it.
    f.vault.delete(&f.owner, &secret("OWNERS_KEY")).await.unwrap();
}

pub(crate) async fn a_host_runtime_serves_one_house_and_a_shared_account_one_house(test: TestStore) {
    let f = Fixture::new(test).await;
    let env = create(&f, "prod", vec![]).await;
    let boxes = f.envs.sandboxes();
    // A second house on the deployment: the local runtime (on the server's host) is refused for
    // everyone, before anything is provisioned or started, and diagnose says why.
    let other = arbe_store::testkit::house(&f.test.store, "other").await;
    let before = f.local.list(&arbe_core::Labels::default()).await.unwrap().len();
    let err = boxes.create(&other.writer, arbe_core::Name::parse("mine").unwrap(), None).await.unwrap_err();
    assert_eq!(arbe_core::Classify::kind(&err), ErrorKind::Misconfigured);
    assert_eq!(
        err.to_string(),
        "runtime local cannot be used here: it runs commands on the server's host as the server's user, where they \
         could read every house's secrets, so it serves a deployment with one house only (this one has 2)"
    );
    assert!(f.test.store.list_sandboxes(other.house.id, None).await.unwrap().is_empty());
    assert_kind(f.envs.ensure_sandbox(&f.claim().await, env.sandbox_id).await, ErrorKind::Misconfigured);
    assert_kind(boxes.start(&f.writer, &SandboxRef::Id(env.sandbox_id)).await, ErrorKind::Misconfigured);
    assert_eq!(f.local.list(&arbe_core::Labels::default()).await.unwrap().len(), before);
    let d = f.envs.diagnose(&f.reader, &by("prod"), &ModelRef::default()).await.unwrap();
    assert_eq!(d.checks[0].status, CheckStatus::Blocker);
    assert!(d.checks[0].detail.contains("serves a deployment with one house only"), "{:?}", d.checks[0]);
    // Stopping and destroying stay possible: they reach nothing new.
    boxes.stop(&f.writer, &SandboxRef::Id(env.sandbox_id)).await.unwrap();
}

pub(crate) async fn a_runtime_id_the_house_does_not_own_is_not_found(test: TestStore) {
    let f = Fixture::new(test).await;
    let env = create(&f, "prod", vec![]).await;
    let sandbox = f.test.store.sandbox(f.house.id, env.sandbox_id).await.unwrap();
    let external = sandbox.external_id.clone().unwrap();
    let local = RuntimeName::parse("local").unwrap();
    let boxes = f.envs.sandboxes();
    // The house finds its own sandbox by the runtime's id, and only on that runtime.
    let by_runtime = SandboxRef::external(local.clone(), &external).unwrap();
    assert_eq!(boxes.view(&f.reader, &by_runtime).await.unwrap().id, sandbox.id);
    let elsewhere = SandboxRef::external(RuntimeName::parse("docker").unwrap(), &external).unwrap();
    assert_kind(boxes.view(&f.reader, &elsewhere).await, ErrorKind::NotFound);
    assert_kind(SandboxRef::external(local.clone(), "has space"), ErrorKind::InvalidInput);
    // Another house that learns the id reaches nothing, and the sandbox keeps running.
    let other = arbe_store::testkit::house(&f.test.store, "other").await;
    assert_kind(boxes.stop(&other.owner, &by_runtime).await, ErrorKind::NotFound);
    assert_kind(boxes.destroy(&other.owner, &by_runtime).await, ErrorKind::NotFound);
    assert_kind(boxes.get_file(&other.owner, &by_runtime, "x").await, ErrorKind::NotFound);
    assert_eq!(f.local.get(&ExternalId(external)).await.unwrap().state, SandboxState::Started);
}

pub(crate) async fn operator_keys_serve_only_the_houses_the_operator_chose(test: TestStore) {
    use arbe_env::OperatorKeys;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("OPENROUTER_API_KEY"), "sk-operator-file\n").unwrap();
    let keys_dir = dir.path().to_owned();
    let keys = move || WorkerKeys::new(|_| None, Some(keys_dir.clone()));
    // Every house by default (seed 000).
    let f = Fixture::with(test, None, keys()).await;
    let key = f.envs.model_key(&f.claim().await, &ModelRef::default()).await.unwrap();
    assert_eq!(key.found.unwrap().0.expose(), "sk-operator-file");
    let d = f
        .envs
        .diagnose(&f.reader, &by(create(&f, "prod", vec![]).await.name.as_str()), &ModelRef::default())
        .await
        .unwrap();
    let line = d.checks.iter().find(|c| c.name == "model key OPENROUTER_API_KEY").unwrap();
    assert_eq!(line.status, CheckStatus::Ok);
    assert!(line.detail.contains("operator's key (a key file on the worker)"), "{}", line.detail);
    assert!(!format!("{d:?}").contains(&dir.path().display().to_string()), "no key file path is shown");
    // Restricted to other houses, or to none: this house must bring its own.
    for policy in [OperatorKeys::Houses(vec![arbe_core::HouseId::new()]), OperatorKeys::None] {
        let envs = f.envs.with_operator_keys(policy);
        assert!(envs.model_key(&f.claim().await, &ModelRef::default()).await.unwrap().found.is_none());
        let d = envs.diagnose(&f.reader, &by("prod"), &ModelRef::default()).await.unwrap();
        let line = d.checks.iter().find(|c| c.name == "model key OPENROUTER_API_KEY").unwrap();
        assert_eq!(line.status, CheckStatus::Blocker);
        assert!(line.detail.contains("the operator's own keys do not serve this house"), "{}", line.detail);
        set(&f, &f.writer, "OPENROUTER_API_KEY", "sk-house", Audience::Capability, true).await;
        let key = envs.model_key(&f.claim().await, &ModelRef::default()).await.unwrap();
        assert_eq!(key.found.unwrap().0.expose(), "sk-house");
        f.vault.delete(&f.owner, &secret("OPENROUTER_API_KEY")).await.unwrap();
    }
    let envs = f.envs.with_operator_keys(OperatorKeys::Houses(vec![f.house.id]));
    assert!(envs.model_key(&f.claim().await, &ModelRef::default()).await.unwrap().found.is_some());
}

pub(crate) async fn owners_read_an_audit_trail_that_holds_no_value(test: TestStore) {
    use arbe_core::AuditAction as A;
    let gh = fake_github::start().await;
    let f = Fixture::with(test, Some(Arc::new(test_app(&gh.url))), WorkerKeys::none()).await;
    let access = arbe_store::Access::new(f.test.store.clone());
    set(&f, &f.writer, "DEPLOY_KEY", "audit-canary-1", Audience::Environment, true).await;
    set(&f, &f.writer, "DEPLOY_KEY", "audit-canary-2", Audience::Environment, true).await;
    f.vault.rollback(&f.writer, &secret("DEPLOY_KEY")).await.unwrap();
    create(&f, "prod", vec![]).await;
    f.envs.bind_secret(&f.writer, &by("prod"), secret("DEPLOY_KEY"), true).await.unwrap();
    f.envs.unbind_secret(&f.writer, &by("prod"), &secret("DEPLOY_KEY")).await.unwrap();
    f.envs
        .update(&f.writer, &by("prod"), EnvironmentPatch { name: Some(env_name("live")), ..Default::default() })
        .await
        .unwrap();
    f.envs.delete(&f.owner, &by("live")).await.unwrap();
    f.vault.delete(&f.owner, &secret("DEPLOY_KEY")).await.unwrap();
    f.vault.rotate_house_key(&f.owner).await.unwrap();
    let start = f.envs.github_connect_start(&f.owner, None).unwrap();
    f.envs.github_connect_finish(&start.state, &gh.code_for("alice"), 7, None).await.unwrap();
    f.envs.github_disconnect(&f.owner, 7).await.unwrap();
    let user = f.test.store.create_user(&arbe_core::Name::parse("dana").unwrap()).await.unwrap();
    let member = access.add_member(&f.owner, &user.name, arbe_core::Role::Reader).await.unwrap();
    access.set_role(&f.owner, member.id, arbe_core::Role::Writer).await.unwrap();
    let key = access.create_key(f.writer.caller(), "laptop").await.unwrap();
    access.revoke_key(f.writer.caller(), key.meta.id).await.unwrap();
    access.remove_member(&f.owner, member.id).await.unwrap();

    let trail = access.audit(&f.owner, None, 500).await.unwrap();
    // The fixture's own keys come first; what this test did follows, in order.
    let ours: Vec<_> = trail
        .iter()
        .skip_while(|e| e.action == A::ApiKeyCreated)
        .map(|e| (e.action, e.target.as_str(), e.actor_name.as_str()))
        .collect();
    let writer = f.writer.user().name.to_string();
    let owner = f.owner.user().name.to_string();
    let key_target = format!("key {}", key.meta.id);
    assert_eq!(
        ours,
        [
            (A::SecretCreated, "DEPLOY_KEY", writer.as_str()),
            (A::SecretRotated, "DEPLOY_KEY", writer.as_str()),
            (A::SecretRolledBack, "DEPLOY_KEY", writer.as_str()),
            (A::EnvironmentCreated, "prod", writer.as_str()),
            (A::SecretBound, "DEPLOY_KEY in prod", writer.as_str()),
            (A::SecretUnbound, "DEPLOY_KEY in prod", writer.as_str()),
            (A::EnvironmentUpdated, "live", writer.as_str()),
            (A::EnvironmentDeleted, "live", owner.as_str()),
            (A::SecretDeleted, "DEPLOY_KEY", owner.as_str()),
            (A::HouseKeyRotated, "data key version 2", owner.as_str()),
            (A::GitHubInstallationConnected, "installation 7 (org)", owner.as_str()),
            (A::GitHubInstallationDisconnected, "installation 7", owner.as_str()),
            (A::MemberAdded, "dana as reader", owner.as_str()),
            (A::MemberRoleChanged, "dana to writer", owner.as_str()),
            (A::ApiKeyCreated, key_target.as_str(), writer.as_str()),
            (A::ApiKeyRevoked, key_target.as_str(), writer.as_str()),
            (A::MemberRemoved, "dana", owner.as_str()),
        ]
    );
    assert!(!format!("{trail:?}").contains("canary"));
    assert!(trail.windows(2).all(|w| w[0].seq < w[1].seq));
    // Paged by seq; owners only; another house sees none of it.
    let last = trail[trail.len() - 2].seq;
    assert_eq!(access.audit(&f.owner, Some(last), 10).await.unwrap().len(), 1);
    assert_kind(access.audit(&f.writer, None, 10).await, ErrorKind::Forbidden);
    let other = arbe_store::testkit::house(&f.test.store, "other").await;
    assert!(access.audit(&other.owner, None, 500).await.unwrap().iter().all(|e| e.house_id != Some(f.house.id)));
    // Append-only in the database itself.
    let seq = trail[0].seq;
    for sql in [
        format!("UPDATE audit_events SET target = 'x' WHERE seq = {seq}"),
        format!("DELETE FROM audit_events WHERE seq = {seq}"),
    ] {
        let err = f.test.tamper().execute(&sql).await.unwrap_err();
        assert!(err.contains("append-only"), "{err}");
    }
}
