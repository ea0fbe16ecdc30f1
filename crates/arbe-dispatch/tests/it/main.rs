//! Dispatch end to end: real workers on a real store (both backends), the local runtime, and a
//! scripted fake model server speaking OpenRouter's wire format over HTTP.

mod cases;
mod isolation;
mod services;

use std::{collections::HashMap, sync::Arc, time::Duration};

use arbe_core::{
    Audience, Entry, EntryBody, EnvironmentName, House, JobId, ParentRef, RuntimeName, SecretBinding, SecretName,
    SecretValue, Thread, ThreadStatus,
};
use arbe_dispatch::{CreateThread, DispatchConfig, Dispatcher, HttpModels, Services, ServicesConfig};
use arbe_env::{CreateEnvironment, EnvConfig};
use arbe_llm::{
    ProviderKind, RetryPolicy,
    testkit::{FakeModel, Reply},
};
use arbe_runtime::RuntimeRegistry;
use arbe_runtime_local::{LocalConfig, LocalRuntime};
use arbe_store::{
    Actor,
    testkit::{self, TestStore},
};
use arbe_vault::{MasterKey, MasterKeys, SetOptions};
use futures_util::StreamExt;

arbe_store::both_backends!(cases =>
    many_followers_of_a_thread_each_see_every_entry_once_in_order,
    success_runs_commands_with_secrets_and_records_every_step,
    each_error_class_ends_failed_with_agent_failed,
    missing_required_secret_or_model_key_fails_naming_it,
    step_limit_ends_agent_exit,
    failing_and_invalid_tool_calls_are_reported_and_the_run_goes_on,
    command_timeout_kills_the_command_and_run_timeout_fails_the_run,
    cancel_stops_the_running_command_and_the_model_call,
    cancel_of_a_queued_dispatch_ends_it_at_once,
    worker_killed_mid_run_is_taken_over_without_loss_or_duplicates,
    two_workers_racing_for_one_job_run_it_once,
    secrets_split_across_output_chunks_are_redacted,
    delegate_task_creates_a_sub_thread_and_destroys_its_sandbox,
    subscriptions_resume_from_a_sequence_number,
    nul_bytes_and_floods_of_output_are_stored_safely,
    reused_or_missing_call_ids_are_made_unique,
    a_dispatch_whose_workers_keep_stopping_fails,
    cancel_during_a_delegate_ends_its_sub_thread_and_sandbox,
    a_worker_whose_renewals_fail_stops_before_its_lease_runs_out,
    cancelling_queued_jobs_writes_their_ends_in_the_same_transaction,
    stored_pieces_do_not_reveal_a_guess_at_a_secret,
    a_run_that_panics_ends_itself_and_its_worker_goes_on,
    a_recorded_end_whose_job_was_never_closed_is_closed_not_rerun,
);

mod service_cases {
    arbe_store::both_backends!(services =>
        houses_members_and_keys_follow_the_rules,
        threads_and_agents_validate_every_reference_up_front,
        a_thread_whose_agent_was_deleted_fails_saying_so,
        the_concurrent_dispatches_quota_refuses_a_post_and_writes_nothing,
    );
}

mod isolation_cases {
    arbe_store::both_backends!(isolation => another_house_reaches_nothing_through_any_service_or_store_method);
}

/// The value of the secret the environment binds; it must never appear in an entry.
pub(crate) const CANARY: &str = "tok-canary-9f8e7d";
/// The house's model key.
pub(crate) const MODEL_KEY: &str = "sk-or-house-key";

pub(crate) struct Fixture {
    pub(crate) test: TestStore,
    pub(crate) services: Services,
    pub(crate) house: House,
    pub(crate) writer: Actor,
    pub(crate) local: Arc<LocalRuntime>,
    pub(crate) model: FakeModel,
    master: MasterKey,
    _workspaces: tempfile::TempDir,
}

/// Quick polls and flushes; a lease long enough that a busy database never loses it.
pub(crate) fn fast_config(id: &str) -> DispatchConfig {
    DispatchConfig {
        worker_id: id.to_owned(),
        workers: 1,
        lease: Duration::from_secs(30),
        heartbeat: Duration::from_millis(200),
        poll: Duration::from_millis(50),
        sweep_every: Duration::from_millis(200),
        command_timeout: Duration::from_secs(20),
        output_flush: Duration::from_millis(50),
        ..DispatchConfig::default()
    }
}

/// For the cases where a worker dies and another takes its job over: a short lease.
pub(crate) fn takeover_config(id: &str) -> DispatchConfig {
    // Renewals must succeed within lease − heartbeat (2.8 s) even on a busy machine.
    DispatchConfig { lease: Duration::from_secs(3), ..fast_config(id) }
}

impl Fixture {
    pub(crate) async fn new(test: TestStore, replies: Vec<Reply>) -> Self {
        let model = FakeModel::start(replies).await.expect_key(MODEL_KEY);
        let workspaces = tempfile::tempdir().unwrap();
        let local = Arc::new(LocalRuntime::new(LocalConfig::new(workspaces.path())));
        let master = MasterKey::generate();
        let services = Self::build(&test, &master, &local, &model.url, fast_config("fixture"));
        let fx = testkit::house(&test.store, "acme").await;
        let fx =
            Self { test, services, house: fx.house, writer: fx.writer, local, model, master, _workspaces: workspaces };
        fx.set_secret("OPENROUTER_API_KEY", MODEL_KEY).await;
        fx.set_secret("DEPLOY_TOKEN", CANARY).await;
        fx
    }

    fn build(
        test: &TestStore,
        master: &MasterKey,
        local: &Arc<LocalRuntime>,
        model_url: &str,
        config: DispatchConfig,
    ) -> Services {
        let models = HttpModels {
            base_urls: HashMap::from([(ProviderKind::OpenRouter, model_url.to_owned())]),
            timeout: Some(Duration::from_secs(60)),
            retry: Some(RetryPolicy { max_attempts: 1, ..RetryPolicy::default() }),
        };
        Self::build_with(test, master, local, Arc::new(models), config)
    }

    fn build_with(
        test: &TestStore,
        master: &MasterKey,
        local: &Arc<LocalRuntime>,
        models: Arc<dyn arbe_dispatch::ModelFactory>,
        config: DispatchConfig,
    ) -> Services {
        let mut runtimes = RuntimeRegistry::new();
        runtimes.register(local.clone());
        Services::with_store(
            test.store.clone(),
            ServicesConfig {
                master_keys: MasterKeys::new(master.clone()),
                runtimes,
                env: EnvConfig::new(RuntimeName::parse("local").unwrap()),
                dispatch: config,
                models,
                admin_token: None,
            },
        )
    }

    pub(crate) async fn set_secret(&self, name: &str, value: &str) {
        let options = SetOptions { audience: Some(Audience::Environment), shared: Some(true) };
        let value = SecretValue::new(value.to_owned()).unwrap();
        self.services.secrets.set(&self.writer, &SecretName::parse(name).unwrap(), &value, options).await.unwrap();
    }

    /// A dispatcher of a process of its own (its own workers and config) on the same database.
    pub(crate) fn dispatcher(&self, config: DispatchConfig) -> Dispatcher {
        Self::build(&self.test, &self.master, &self.local, &self.model.url, config).dispatcher
    }

    /// A dispatcher of a process of its own whose models all answer through `models`.
    pub(crate) fn dispatcher_with(
        &self,
        config: DispatchConfig,
        models: Arc<dyn arbe_dispatch::ModelFactory>,
    ) -> Dispatcher {
        Self::build_with(&self.test, &self.master, &self.local, models, config).dispatcher
    }

    /// A thread bound to a new environment (name `env`) with the given bindings.
    pub(crate) async fn thread(&self, env: &str, bindings: &[(&str, bool)]) -> Thread {
        let mut req = CreateEnvironment::new(EnvironmentName::parse(env).unwrap());
        req.secrets = bindings
            .iter()
            .map(|(name, required)| SecretBinding { name: SecretName::parse(name).unwrap(), required: *required })
            .collect();
        let env = self.services.environments.create(&self.writer, req).await.unwrap();
        let mut create = CreateThread::new(ParentRef::parse("general").unwrap());
        create.environment = Some(arbe_core::EnvironmentRef::Id(env.id));
        self.services.threads.create(&self.writer, create).await.unwrap()
    }

    pub(crate) async fn entries(&self, thread: &Thread) -> Vec<Entry> {
        self.test.store.entries(self.house.id, thread.id, 0, 10_000).await.unwrap()
    }

    /// Follows the thread until `job` records a terminal status; returns every entry so far.
    pub(crate) async fn wait_end(&self, d: &Dispatcher, thread: &Thread, job: JobId) -> Vec<Entry> {
        let mut stream = Box::pin(d.subscribe(&self.writer, thread.id, 0).await.unwrap());
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let next = tokio::time::timeout_at(deadline, stream.next()).await;
            let entry = next.expect("the dispatch ended within 60 s").expect("the stream goes on").unwrap();
            let end = matches!(&entry.body, EntryBody::Status { status, job: Some(j), .. } if *j == job && status.is_terminal());
            seen.push(entry);
            if end {
                let invalid = self.model.invalid();
                assert!(invalid.is_empty(), "the model was sent a malformed conversation: {invalid:?}");
                return seen;
            }
        }
    }
}

/// The terminal statuses `job` recorded, in order (exactly one when all is well).
pub(crate) fn terminals(entries: &[Entry], job: JobId) -> Vec<ThreadStatus> {
    entries
        .iter()
        .filter_map(|e| match &e.body {
            EntryBody::Status { status, job: Some(j), .. } if *j == job && status.is_terminal() => Some(*status),
            _ => None,
        })
        .collect()
}

/// Every entry's text, for "the canary is nowhere" checks.
pub(crate) fn all_text(entries: &[Entry]) -> String {
    entries.iter().map(|e| serde_json::to_string(&e.body).unwrap()).collect::<Vec<_>>().join("\n")
}

pub(crate) fn kinds(entries: &[Entry]) -> Vec<&'static str> {
    entries.iter().map(|e| e.body.kind().as_str()).collect()
}
