//! The API over real HTTP: a server on a random loopback port, the real services on both
//! backends, sandboxes on this machine's Docker engine (isolated, so several houses may share
//! it), and a scripted model.

mod cases;
// The fake GitHub the environments service's tests run against, faithful to GitHub's docs.
#[path = "../../../arbe-env/tests/it/fake_github.rs"]
#[allow(dead_code)]
mod fake_github;
mod github;
mod matrix;

/// The GitHub App test key pair the fake verifies against.
pub(crate) const TEST_KEY: &str = include_str!("../../../arbe-env/tests/it/fixtures/github-app-test-key.pem");
pub(crate) const TEST_PUBLIC_KEY: &str =
    include_str!("../../../arbe-env/tests/it/fixtures/github-app-test-key.pub.pem");

use std::sync::Arc;

use arbe_core::{House, Role, RuntimeName, SecretValue};
use arbe_dispatch::{DispatchConfig, OneProvider, Services, ServicesConfig};
use arbe_env::EnvConfig;
use arbe_llm::{ChatRequest, ChatResponse, FnProvider, Message, StopReason, ToolCall};
use arbe_runtime::{Runtime, RuntimeRegistry};
use arbe_runtime_docker::{DockerConfig, DockerRuntime};
use arbe_store::testkit::{self, TestStore};
use arbe_vault::{MasterKey, MasterKeys};

arbe_store::both_backends!(cases =>
    environments_answer_seed_001s_roles_and_another_house_finds_nothing,
    secret_values_never_come_back,
    bad_input_is_a_problem_that_names_the_field_and_echoes_nothing,
    a_posted_entry_dispatches_and_its_stream_ends_with_the_dispatch,
    the_admin_token_makes_a_house_and_its_first_key_and_nothing_else_does,
    sandboxes_keys_and_agents_follow_their_rules,
    members_join_change_and_leave_and_owners_read_the_audit_trail,
    failed_authentication_is_limited_per_address_and_never_limits_another,
    a_dispatch_in_flight_finishes_after_a_restart,
    every_house_route_refuses_whom_seed_001_says_and_refusals_change_nothing,
    github_installations_connect_through_the_callback_and_list_with_the_session,
);

/// A server on a random port, with a house (`acme`: owner, writer, reader) and a member of
/// another house (`outsider`).
pub(crate) struct App {
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
    pub(crate) house: House,
    pub(crate) other: House,
    pub(crate) owner: SecretValue,
    pub(crate) writer: SecretValue,
    pub(crate) reader: SecretValue,
    pub(crate) outsider: SecretValue,
    pub(crate) admin: SecretValue,
    docker: Arc<DockerRuntime>,
    workers: Option<arbe_dispatch::Workers>,
    master: MasterKey,
    test: TestStore,
    /// Every response body the test read.
    pub(crate) bodies: Arc<std::sync::Mutex<Vec<String>>>,
    /// A secret set through the API at the start; its value must come back nowhere.
    canary: String,
    /// The test process's log at trace level.
    logs: arbe_testkit::LogCapture,
    /// The GitHub App the server is configured with, if any.
    pub(crate) github: Option<Arc<arbe_env::GitHubApp>>,
}

/// The scripted model: asked with no tool result yet, it runs `echo hello-from-the-sandbox`
/// (after `sleep 3` when the message asks for something slow); asked again, it answers.
fn model(request: &ChatRequest) -> ChatResponse {
    let ran = request.messages.iter().any(|m| matches!(m, Message::Tool { .. }));
    let slow = request.messages.iter().any(|m| matches!(m, Message::User { text } if text.contains("slow")));
    let (text, tool_calls, stop) = if ran {
        ("All done.".to_owned(), vec![], StopReason::EndTurn)
    } else {
        // The canary, when the environment binds it, must come back redacted.
        let command =
            if slow { "sleep 3; echo hello-from-the-sandbox" } else { "echo hello-from-the-sandbox \"$CANARY_TOKEN\"" };
        let call = ToolCall {
            id: "call-1".into(),
            name: "run_command".into(),
            arguments: serde_json::json!({ "command": command }).to_string(),
        };
        (String::new(), vec![call], StopReason::ToolUse)
    };
    ChatResponse { text, tool_calls, stop, usage: Default::default() }
}

pub(crate) async fn spawn_app(test: TestStore) -> App {
    let logs = arbe_testkit::LogCapture::install();
    let admin = arbe_store::AdminToken::generate();
    let docker = DockerRuntime::new(DockerConfig::default()).expect("a docker runtime");
    assert!(
        docker.diagnose().await.is_ok(),
        "the server tests need a running Docker engine and the sandbox image (`cargo xtask sandbox-image`)"
    );
    let docker = Arc::new(docker);
    let master = MasterKey::generate();
    let fx = testkit::house(&test.store, "acme").await;
    let (_, owner) = testkit::member(&test.store, &fx.house, "acme-key-owner", Role::Owner).await;
    let (_, writer) = testkit::member(&test.store, &fx.house, "acme-key-writer", Role::Writer).await;
    let (_, reader) = testkit::member(&test.store, &fx.house, "acme-key-reader", Role::Reader).await;
    let other = testkit::house(&test.store, "other").await;
    let (_, outsider) = testkit::member(&test.store, &other.house, "outsider", Role::Owner).await;
    let mut app = App {
        url: String::new(),
        http: reqwest::Client::new(),
        house: fx.house,
        other: other.house,
        owner,
        writer,
        reader,
        outsider,
        admin,
        docker,
        workers: None,
        master,
        test,
        bodies: Arc::default(),
        canary: format!("canary-{}", arbe_core::SecretId::new()),
        logs,
        github: None,
    };
    app.start().await;
    let res = app
        .http
        .put(format!("{}/api/secrets/CANARY_TOKEN?house_id={}", app.url, app.house.id))
        .bearer_auth(app.owner.expose())
        .json(&serde_json::json!({"value": app.canary, "shared": true}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "the canary is set");
    app
}

impl App {
    /// Starts a server process's worth of services over the test's store: its workers and a
    /// server on a new port.
    pub(crate) async fn start(&mut self) {
        let mut runtimes = RuntimeRegistry::new();
        runtimes.register(self.docker.clone());
        let services = Arc::new(Services::with_store(
            self.test.store.clone(),
            ServicesConfig {
                master_keys: MasterKeys::new(self.master.clone()),
                runtimes,
                env: EnvConfig { github: self.github.clone(), ..EnvConfig::new(RuntimeName::parse("docker").unwrap()) },
                dispatch: DispatchConfig {
                    poll: std::time::Duration::from_millis(50),
                    output_flush: std::time::Duration::from_millis(50),
                    lease: std::time::Duration::from_secs(2),
                    heartbeat: std::time::Duration::from_millis(300),
                    sweep_every: std::time::Duration::from_millis(200),
                    ..DispatchConfig::default()
                },
                models: Arc::new(OneProvider(Arc::new(FnProvider::new("script", model)))),
                admin_token: Some(arbe_store::AdminToken::new(&self.admin)),
            },
        ));
        let workers = services.start_workers();
        let options = arbe_server::Options { workers: Some(workers.health()), ..arbe_server::Options::default() };
        self.workers = Some(workers);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.url = format!("http://{}", listener.local_addr().unwrap());
        let router = arbe_server::router(services, options);
        tokio::spawn(async move {
            axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await
        });
    }

    /// What a restart does to the dispatches in flight: the old process drains (here with no
    /// grace at all) and a new one starts over the same store.
    pub(crate) async fn restart(&mut self) {
        self.stop().await;
        self.start().await;
    }

    /// Drains this process's workers (with no grace), as a stopping server does.
    pub(crate) async fn stop(&mut self) {
        if let Some(workers) = self.workers.take() {
            workers.drain(std::time::Duration::ZERO).await;
        }
    }

    /// Checks that the canary's value came back in no response and no log line, then destroys
    /// the sandboxes the test's houses provisioned on the engine.
    pub(crate) async fn clean_up(self) {
        let leaked = self.bodies.lock().unwrap().iter().any(|b| b.contains(&self.canary));
        assert!(!leaked, "a response held the canary's value");
        let log = self.logs.text();
        assert!(log.contains("TRACE") || log.contains("DEBUG"), "the log is captured at every level");
        assert!(!log.contains(&self.canary), "the log held the canary's value");
        for house in [&self.house, &self.other] {
            let labels = arbe_core::Labels::parse([(arbe_runtime::HOUSE_LABEL, house.id.to_string())]).unwrap();
            for sandbox in self.docker.list(&labels).await.unwrap() {
                self.docker.destroy(&sandbox.external_id).await.unwrap();
            }
        }
    }
}
