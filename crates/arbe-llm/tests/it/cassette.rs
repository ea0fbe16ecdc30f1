//! Record real exchanges, replay them offline, with secrets scrubbed.

use arbe_core::{ErrorClass, SecretValue};
use arbe_llm::{Cassette, CassetteMode, ChatProvider, Collect, LlmError, Message, ProviderKind, provider_for};
use serde_json::json;

use arbe_llm::testkit::{FakeModel, Reply};

use crate::{KEY, config, request};

const SECRET: &str = "ghp_canary0123456789";

#[tokio::test]
async fn cassette_round_trip_scrubs_secrets_and_replays_offline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("turn.json");
    let text = format!(
        "data: {}\n\n",
        json!({"choices": [{"index": 0, "delta": {"content": format!("token is {SECRET}")}, "finish_reason": null}]})
    );
    let stop = format!("data: {}\n\n", json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}));
    let server = FakeModel::start(vec![
        Reply::sse(&[&text, &stop, "data: [DONE]\n\n"]),
        Reply::json(429, json!({"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}})),
    ])
    .await;
    let secrets = vec![("GITHUB_TOKEN".to_owned(), SecretValue::new(SECRET.into()).unwrap())];
    let mut req = request("anthropic/claude-haiku-4.5");
    let call =
        arbe_llm::ToolCall { id: "c".into(), name: "run_command".into(), arguments: r#"{"command":"env"}"#.into() };
    req.messages.push(Message::Assistant { text: String::new(), tool_calls: vec![call] });
    req.messages.push(Message::Tool { call_id: "c".into(), content: format!("GITHUB_TOKEN={SECRET}") });
    let mut second = req.clone();
    second.messages.push(Message::User { text: "again".into() });

    let recorder = Cassette::open(
        &path,
        CassetteMode::Record(Box::new(provider_for(config(ProviderKind::OpenRouter, &server.url, true)))),
        secrets.clone(),
    )
    .unwrap();
    let mut live = Collect::default();
    let recorded = recorder.chat(&req, &mut live).await.unwrap();
    assert!(recorder.chat(&second, &mut ()).await.is_err());
    drop(server);

    let file = std::fs::read_to_string(&path).unwrap();
    assert!(!file.contains(SECRET), "the secret must be scrubbed from the cassette");
    assert!(!file.contains(KEY), "credentials never reach the cassette");
    assert!(file.contains("[redacted:GITHUB_TOKEN]"));

    let player = Cassette::open(&path, CassetteMode::Replay, secrets).unwrap();
    let mut replayed = Collect::default();
    let reply = player.chat(&req, &mut replayed).await.unwrap();
    assert_eq!(reply.text, "token is [redacted:GITHUB_TOKEN]");
    assert_eq!(reply.stop, recorded.stop);
    // The replay streams what the live call streamed, with the secret scrubbed.
    let scrubbed: Vec<String> =
        live.0.iter().map(|d| format!("{d:?}").replace(SECRET, "[redacted:GITHUB_TOKEN]")).collect();
    let replayed_text: Vec<String> = replayed.0.iter().map(|d| format!("{d:?}")).collect();
    assert_eq!(replayed_text, scrubbed);
    let failure = player.chat(&second, &mut ()).await.unwrap_err();
    assert_eq!(failure.class(), ErrorClass::Quota, "recorded failures replay as failures");

    let mut unknown = req.clone();
    unknown.messages.push(Message::User { text: "never recorded".into() });
    match player.chat(&unknown, &mut ()).await.unwrap_err() {
        LlmError::CassetteMiss { fingerprint, path: missing } => {
            assert_eq!(fingerprint.len(), 32);
            assert!(missing.ends_with("turn.json"));
        }
        other => panic!("expected a cassette miss, got {other}"),
    }
}

#[tokio::test]
async fn replaying_a_missing_cassette_names_the_file() {
    let err =
        Cassette::open(std::path::Path::new("/nonexistent/cassette.json"), CassetteMode::Replay, vec![]).unwrap_err();
    assert!(err.to_string().starts_with("cassette /nonexistent/cassette.json:"), "{err}");
}
