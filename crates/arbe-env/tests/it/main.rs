//! arbe-env's behaviour: seed 001's rules and resolution on both backends (with the local
//! runtime for sandboxes), and the GitHub App against PyJWT and a local fake of GitHub.

mod cases;
mod fake_github;
mod github;

use std::sync::Arc;

use arbe_core::{House, RuntimeName};
use arbe_env::{EnvConfig, Environments, GitHubApp, GitHubAppConfig, GitHubOAuthClient, WorkerKeys};
use arbe_runtime::RuntimeRegistry;
use arbe_runtime_local::{LocalConfig, LocalRuntime};
use arbe_store::{
    Actor, Claim,
    testkit::{self, TestStore},
};
use arbe_vault::{MasterKey, MasterKeys, Vault};

arbe_store::both_backends!(cases =>
    create_with_a_sandbox_adds_the_repo_to_allowed_repos,
    create_without_a_sandbox_provisions_one_on_the_runtime,
    names_are_unique_without_case_and_lookups_ignore_case,
    bad_input_names_the_field_and_changes_nothing,
    bind_secret_is_idempotent_and_upgrades_or_downgrades,
    unbind_secret_removes_only_that_binding,
    roles_follow_the_rule_table_and_houses_are_isolated,
    soft_delete_hides_the_row_but_not_the_thread_snapshot,
    purge_sets_thread_environment_null_and_keeps_the_snapshot,
    patch_changes_only_the_fields_given,
    resolve_names_every_missing_required_secret_at_once,
    resolve_returns_values_and_warns_on_missing_optional,
    resolve_never_injects_capability_or_another_authors_secret,
    github_installations_connect_only_through_a_verified_flow,
    a_dispatch_token_is_minted_from_the_connection_and_revoked_on_release,
    private_secrets_are_their_authors_alone,
    a_host_runtime_serves_one_house_and_a_shared_account_one_house,
    a_runtime_id_the_house_does_not_own_is_not_found,
    operator_keys_serve_only_the_houses_the_operator_chose,
    owners_read_an_audit_trail_that_holds_no_value,
    resolve_without_a_github_app_skips_the_token,
    model_key_prefers_the_house_then_the_worker,
    diagnose_lists_blockers_warnings_and_sources,
    ensure_sandbox_starts_a_stopped_sandbox_and_reprovisions_a_lost_one,
    sandboxes_service_keeps_the_row_in_step_with_the_runtime,
    quotas_cap_sandboxes_and_workspace_bytes,
);

pub(crate) const TEST_KEY: &str = include_str!("fixtures/github-app-test-key.pem");
pub(crate) const TEST_PUBLIC_KEY: &str = include_str!("fixtures/github-app-test-key.pub.pem");

/// Everything a case needs: a store, a vault, the service with a local runtime, and a house
/// with an owner, a writer and a reader.
pub(crate) struct Fixture {
    pub(crate) test: TestStore,
    pub(crate) vault: Vault,
    pub(crate) envs: Environments,
    pub(crate) house: House,
    pub(crate) owner: Actor,
    pub(crate) writer: Actor,
    pub(crate) reader: Actor,
    pub(crate) local: Arc<LocalRuntime>,
    _workspaces: tempfile::TempDir,
}

impl Fixture {
    pub(crate) async fn new(test: TestStore) -> Self {
        Self::with(test, None, WorkerKeys::none()).await
    }

    /// The fixture over `store` (a second store on the test's database, with other settings).
    pub(crate) async fn on(test: TestStore, store: arbe_store::Store) -> Self {
        Self::build(test, store, None, WorkerKeys::none()).await
    }

    pub(crate) async fn with(test: TestStore, github: Option<Arc<GitHubApp>>, worker_keys: WorkerKeys) -> Self {
        let store = test.store.clone();
        Self::build(test, store, github, worker_keys).await
    }

    async fn build(
        test: TestStore,
        store: arbe_store::Store,
        github: Option<Arc<GitHubApp>>,
        worker_keys: WorkerKeys,
    ) -> Self {
        let vault = Vault::new(store.clone(), MasterKeys::new(MasterKey::generate()));
        let workspaces = tempfile::tempdir().unwrap();
        let local = Arc::new(LocalRuntime::new(LocalConfig::new(workspaces.path())));
        let mut registry = RuntimeRegistry::new();
        registry.register(local.clone());
        registry.unavailable("docker", "no Docker engine in this test");
        let envs = Environments::new(
            store.clone(),
            vault.clone(),
            Arc::new(registry),
            EnvConfig { github, worker_keys, ..EnvConfig::new(RuntimeName::parse("local").unwrap()) },
        );
        let testkit::HouseFixture { house, owner, writer, reader } = testkit::house(&store, "acme").await;
        Self { test, vault, envs, house, owner, writer, reader, local, _workspaces: workspaces }
    }

    /// What a worker holds while it answers an entry the writer posted: reading values takes
    /// it.
    pub(crate) async fn claim(&self) -> Claim {
        self.claim_by(&self.writer).await
    }

    /// What a worker holds while it answers an entry `actor` posted.
    pub(crate) async fn claim_by(&self, actor: &Actor) -> Claim {
        testkit::claim_posted_by(&self.test.store, actor).await
    }

    /// Records that the house connected installation `id` on `account` (what the verified
    /// connect flow ends with).
    pub(crate) async fn connect(&self, id: i64, account: &str) {
        self.test
            .store
            .connect_github_installation(&arbe_core::GitHubConnection {
                house_id: self.house.id,
                installation_id: id,
                account_login: account.into(),
                github_login: "alice".into(),
                connected_by: Some(self.owner.user().id),
                connected_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
    }
}

/// The config of a GitHub App on the test key, with both its API and web host at `url`.
pub(crate) fn test_config(url: &str) -> GitHubAppConfig {
    GitHubAppConfig {
        api_url: url.into(),
        web_url: url.into(),
        oauth: Some(GitHubOAuthClient {
            client_id: fake_github::CLIENT_ID.into(),
            client_secret: arbe_core::SecretValue::new(fake_github::CLIENT_SECRET.into()).unwrap(),
        }),
        slug: Some("arbe-test".into()),
        ..GitHubAppConfig::new("424242", arbe_core::SecretValue::new(TEST_KEY.into()).unwrap())
    }
}

/// A GitHub App on the test key, with both its API and web host at `url`.
pub(crate) fn test_app(url: &str) -> GitHubApp {
    GitHubApp::new(&test_config(url)).unwrap()
}

pub(crate) use arbe_core::testkit::assert_kind;
