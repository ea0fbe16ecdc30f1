//! The client against a real `arbe-server` over HTTP (SQLite, the isolated local runtime, a
//! scripted model), through a proxy that can cut a tail mid-dispatch.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use arbe_client::{Client, ClientError};
use arbe_core::{EntryBody, ErrorKind, Role, RuntimeName, ThreadStatus};
use arbe_dispatch::{DispatchConfig, OneProvider, Services, ServicesConfig};
use arbe_llm::{ChatRequest, ChatResponse, FnProvider, Message, StopReason, ToolCall};
use arbe_runtime::RuntimeRegistry;
use arbe_runtime_local::{LocalConfig, LocalRuntime};
use arbe_store::testkit;
use futures_util::StreamExt;

fn model(request: &ChatRequest) -> ChatResponse {
    let ran = request.messages.iter().any(|m| matches!(m, Message::Tool { .. }));
    let (text, tool_calls, stop) = if ran {
        ("All done.".to_owned(), vec![], StopReason::EndTurn)
    } else {
        let call = ToolCall {
            id: "call-1".into(),
            name: "run_command".into(),
            arguments: r#"{"command": "sleep 0.3; echo one; sleep 0.3; echo two"}"#.into(),
        };
        (String::new(), vec![call], StopReason::ToolUse)
    };
    ChatResponse { text, tool_calls, stop, usage: Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_drives_a_dispatch_and_its_tail_survives_a_cut() {
    let test = testkit::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let mut runtimes = RuntimeRegistry::new();
    // The isolated local runtime (namespaces per command): several houses may share it.
    let config = LocalConfig::isolated(dir.path(), arbe_runtime_local::Bubblewrap::new());
    runtimes.register(Arc::new(LocalRuntime::new(config)));
    let services = Arc::new(Services::with_store(
        test.store.clone(),
        ServicesConfig {
            master_keys: arbe_vault::MasterKeys::new(arbe_vault::MasterKey::generate()),
            runtimes,
            env: arbe_env::EnvConfig::new(RuntimeName::parse("local").unwrap()),
            dispatch: DispatchConfig { poll: std::time::Duration::from_millis(50), ..DispatchConfig::default() },
            models: Arc::new(OneProvider(Arc::new(FnProvider::new("script", model)))),
            admin_token: None,
        },
    ));
    let fx = testkit::house(&test.store, "acme").await;
    let (_, key) = testkit::member(&test.store, &fx.house, "client-owner", Role::Owner).await;
    let other = testkit::house(&test.store, "other").await;
    let (_, outsider) = testkit::member(&test.store, &other.house, "client-outsider", Role::Owner).await;
    let _workers = services.start_workers();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    let router = arbe_server::router(services, arbe_server::Options::default());
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await
    });
    let tails = Arc::new(AtomicUsize::new(0));
    let url = arbe_testkit::cutting_proxy(server, tails.clone()).await;

    let client = Client::new(&url, key.expose()).unwrap();
    let houses = client.houses().await.unwrap();
    assert_eq!(houses.len(), 1);
    let house = houses[0].house.id;
    let secret = arbe_api::SetSecret {
        value: "sk-or-client-test".into(),
        audience: Some("capability".into()),
        shared: Some(true),
    };
    client.set_secret(house, "OPENROUTER_API_KEY", &secret).await.unwrap();
    let body = arbe_api::CreateEnvironment {
        name: "work".into(),
        runtime: None,
        sandbox_id: None,
        repo: None,
        allowed_repos: vec![],
        github_installation_id: None,
        secret_bindings: vec![],
    };
    client.create_environment(house, &body).await.unwrap();
    assert_eq!(client.environments(house).await.unwrap().len(), 1);
    let create = arbe_api::CreateThread {
        parent: "general".into(),
        environment: Some("work".into()),
        model: None,
        agents: vec![],
    };
    let thread = client.create_thread(house, &create).await.unwrap();
    let arbe_api::Posted { entry: posted, job } = client.post_entry(house, thread.id, "count to two").await.unwrap();
    assert_eq!(posted.seq, 1);

    // The tail is cut after its first event; it resumes and yields every entry once, in order.
    // (A client of its own, so the tail opens a connection of its own, which the proxy cuts.)
    let tailer = Client::new(&url, key.expose()).unwrap();
    let tail = tailer.follow(house, thread.id, 0);
    let entries: Vec<_> = tokio::time::timeout(std::time::Duration::from_secs(60), tail.collect::<Vec<_>>())
        .await
        .expect("the tail ends with the dispatch")
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(tails.load(Ordering::SeqCst) >= 2, "the tail reconnected");
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "every entry once, in order");
    let last = &entries.last().unwrap().body;
    assert!(
        matches!(last, EntryBody::Status { status: ThreadStatus::Succeeded, job: Some(j), .. } if *j == job.id),
        "{last:?}"
    );
    let output: String = entries
        .iter()
        .filter_map(|e| match &e.body {
            EntryBody::ToolResult { output, .. } => Some(output.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(output, "one\ntwo\n");

    // Refusals carry the problem and its kind.
    let stranger = Client::new(&url, outsider.expose()).unwrap();
    let err = stranger.environments(house).await.unwrap_err();
    assert!(matches!(&err, ClientError::Api { status: 404, .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let wrong = Client::new(&url, "arbe_not_a_key").unwrap();
    assert_eq!(wrong.houses().await.unwrap_err().kind(), ErrorKind::Unauthenticated);
    let err = client.set_secret(house, "bad name", &secret).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(!err.to_string().contains("bad name"), "the input is not echoed: {err}");
    // A server that is not there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = Client::new(&format!("http://127.0.0.1:{port}"), key.expose()).unwrap();
    let err = down.houses().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(!err.to_string().contains(key.expose()), "the key never shows");
}
