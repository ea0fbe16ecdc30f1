//! The services beside dispatch: houses, members, API keys, threads and agents, each checked
//! against the caller's membership and the rule table, and the concurrent-dispatch quota.

use arbe_core::testkit::assert_kind;
use arbe_core::{AgentRef, Classify, EnvironmentRef, ErrorKind, ModelRef, Name, ParentRef, Quotas, Role, ThreadId};
use arbe_dispatch::{CreateAgent, CreateThread, DEFAULT_PROMPT};
use arbe_llm::testkit::Reply;
use arbe_store::{AgentPatch, testkit::TestStore};

use crate::Fixture;

pub(crate) async fn houses_members_and_keys_follow_the_rules(test: TestStore) {
    let fx = Fixture::new(test, vec![]).await;
    let access = &fx.services.access;
    let store = &fx.test.store;
    let owner = arbe_store::testkit::member(store, &fx.house, "olga", Role::Owner).await.0;
    // Members: a writer may list but not manage; an owner adds an existing user by name.
    let newcomer = store.create_user(&Name::parse("nick").unwrap()).await.unwrap();
    assert_kind(access.add_member(&fx.writer, &newcomer.name, Role::Reader).await, ErrorKind::Forbidden);
    let member = access.add_member(&owner, &newcomer.name, Role::Reader).await.unwrap();
    assert_eq!((member.user_id, member.role), (newcomer.id, Role::Reader));
    assert_kind(access.add_member(&owner, &newcomer.name, Role::Writer).await, ErrorKind::Conflict);
    assert_kind(access.add_member(&owner, &Name::parse("nobody").unwrap(), Role::Reader).await, ErrorKind::NotFound);
    assert_eq!(access.set_role(&owner, member.id, Role::Writer).await.unwrap().role, Role::Writer);
    assert!(access.members(&fx.writer).await.unwrap().iter().any(|m| m.id == member.id));
    access.remove_member(&owner, member.id).await.unwrap();
    assert_kind(access.member(&owner, member.id).await, ErrorKind::NotFound);
    // The last owner stays.
    let others = access
        .members(&owner)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.role == Role::Owner && m.id != owner.member_id());
    for m in others {
        access.remove_member(&owner, m.id).await.unwrap();
    }
    assert_kind(access.set_role(&owner, owner.member_id(), Role::Writer).await, ErrorKind::Conflict);

    // Keys: created for oneself, shown once, listed without the secret, revoked at once.
    let caller = fx.writer.caller();
    let made = access.create_key(caller, "ci").await.unwrap();
    assert!(made.key.expose().starts_with("arbe_") && !format!("{made:?}").contains(made.key.expose()));
    let actor = fx.services.authenticate(made.key.expose(), fx.house.id).await.unwrap();
    assert_eq!(actor.member_id(), fx.writer.member_id());
    let listed = access.keys(caller).await.unwrap();
    assert!(listed.iter().any(|k| k.id == made.meta.id && k.last_used_at.is_some()));
    let err = access.create_key(caller, "bad\nlabel").await.unwrap_err();
    assert_eq!(err.to_string(), "invalid label: must be at most 100 characters with no control characters");
    access.revoke_key(caller, made.meta.id).await.unwrap();
    assert_kind(fx.services.authenticate(made.key.expose(), fx.house.id).await, ErrorKind::Unauthenticated);
    // Another user cannot revoke it (it is not theirs to find).
    assert_kind(access.revoke_key(owner.caller(), listed[0].id).await, ErrorKind::NotFound);

    // Houses: a caller creates one and owns it; its list shows each membership.
    let (house, membership) = access.create_house(caller, &Name::parse("side").unwrap()).await.unwrap();
    assert_eq!(membership.role, Role::Owner);
    let mine: Vec<_> =
        access.houses(caller).await.unwrap().into_iter().map(|(h, m)| (h.name.to_string(), m.role)).collect();
    assert_eq!(mine, [("acme".to_owned(), Role::Writer), ("side".to_owned(), Role::Owner)]);
    assert_kind(access.create_house(caller, &Name::parse("side").unwrap()).await, ErrorKind::Conflict);
    let in_side = access.actor(caller, house.id).await.unwrap();
    assert_eq!(access.house(&in_side).await.unwrap().id, house.id);
    assert_eq!(access.quotas(&in_side).await.unwrap(), Quotas::default());
    // The admin token is the operator's alone.
    assert_kind(fx.services.admin("arbe_admin_guess"), ErrorKind::Unauthenticated);
}

pub(crate) async fn threads_and_agents_validate_every_reference_up_front(test: TestStore) {
    let fx = Fixture::new(test, vec![]).await;
    let (threads, agents) = (&fx.services.threads, &fx.services.agents);
    let env = fx.thread("work", &[]).await.environment.unwrap();
    // Agents: created with seed 000's defaults, renamed, made default, deleted by an owner.
    let create = |name: &str| CreateAgent {
        name: Name::parse(name).unwrap(),
        model: None,
        system_prompt: None,
        is_default: false,
    };
    let helper = agents.create(&fx.writer, create("helper")).await.unwrap();
    assert_eq!((helper.model.as_str(), helper.system_prompt.as_str()), (ModelRef::DEFAULT, DEFAULT_PROMPT));
    assert_kind(agents.create(&fx.writer, create("helper")).await, ErrorKind::Conflict);
    let huge = CreateAgent { system_prompt: Some("é".repeat(16 * 1024 + 1)), ..create("huge") };
    let err = agents.create(&fx.writer, huge).await.unwrap_err();
    assert_eq!(err.to_string(), "invalid system_prompt: must be at most 16,384 characters with no NUL characters");
    // The limit counts characters, not bytes.
    let wide = CreateAgent { system_prompt: Some("é".repeat(16 * 1024)), ..create("wide") };
    agents.create(&fx.writer, wide).await.unwrap();
    let patch = AgentPatch {
        name: Some(Name::parse("coder").unwrap()),
        model: Some(ModelRef::parse("anthropic/claude-haiku-4-5").unwrap()),
        is_default: Some(true),
        ..AgentPatch::default()
    };
    let coder = agents.update(&fx.writer, &AgentRef::parse("helper").unwrap(), patch).await.unwrap();
    assert_eq!((coder.id, coder.name.as_str(), coder.is_default), (helper.id, "coder", true));
    assert_eq!(agents.view(&fx.writer, &AgentRef::Id(coder.id)).await.unwrap(), coder);

    // Threads: the environment by name or id, agents by name or id, a model override; every
    // reference checked first, naming what was not found, creating nothing.
    let mut req = CreateThread::new(ParentRef::parse("general").unwrap());
    req.environment = Some(EnvironmentRef::parse("WORK").unwrap());
    req.agents = vec![AgentRef::parse("coder").unwrap(), AgentRef::Id(coder.id)];
    req.model_override = Some(ModelRef::parse("openai/gpt-4o-mini").unwrap());
    let thread = threads.create(&fx.writer, req.clone()).await.unwrap();
    assert_eq!(thread.agent_ids, [coder.id], "an agent named twice replies once");
    assert_eq!(thread.environment.as_ref().unwrap().id, env.id);
    assert_eq!(thread.model_override.as_ref().unwrap().as_str(), "openai/gpt-4o-mini");
    let before = threads.list(&fx.writer, 100).await.unwrap().len();
    let mut unknown = req.clone();
    unknown.agents = vec![AgentRef::parse("ghost").unwrap()];
    let err = threads.create(&fx.writer, unknown).await.unwrap_err();
    assert_eq!((err.kind(), err.to_string()), (ErrorKind::NotFound, "agent not found".to_owned()));
    let mut orphan = req.clone();
    orphan.parent = ParentRef::Thread(ThreadId::new());
    assert_eq!(threads.create(&fx.writer, orphan).await.unwrap_err().to_string(), "parent thread not found");
    let mut nowhere = req;
    nowhere.environment = Some(EnvironmentRef::parse("nowhere").unwrap());
    assert_kind(threads.create(&fx.writer, nowhere).await, ErrorKind::NotFound);
    assert_eq!(threads.list(&fx.writer, 100).await.unwrap().len(), before, "bad input created nothing");
    assert_eq!(threads.view(&fx.writer, thread.id).await.unwrap(), thread);
    let mut child = CreateThread::new(ParentRef::Thread(thread.id));
    child.environment = Some(EnvironmentRef::Id(env.id));
    let child = threads.create(&fx.writer, child).await.unwrap();
    assert_eq!(threads.children(&fx.writer, thread.id).await.unwrap(), [child]);

    // A reader reads but neither creates threads nor changes agents; a writer may not delete.
    let (reader, _) = arbe_store::testkit::member(&fx.test.store, &fx.house, "rita", Role::Reader).await;
    assert_kind(threads.create(&reader, CreateThread::new(ParentRef::parse("x").unwrap())).await, ErrorKind::Forbidden);
    assert_kind(agents.create(&reader, create("nope")).await, ErrorKind::Forbidden);
    assert_kind(agents.delete(&fx.writer, &AgentRef::Id(coder.id)).await, ErrorKind::Forbidden);
    let owner = arbe_store::testkit::member(&fx.test.store, &fx.house, "olga", Role::Owner).await.0;
    agents.delete(&owner, &AgentRef::Id(coder.id)).await.unwrap();
    let left: Vec<String> = agents.list(&reader).await.unwrap().into_iter().map(|a| a.name.to_string()).collect();
    assert_eq!(left, ["wide"]);
}

pub(crate) async fn a_thread_whose_agent_was_deleted_fails_saying_so(test: TestStore) {
    let fx = Fixture::new(test, vec![Reply::text_answer("unused")]).await;
    let agent = CreateAgent { name: Name::parse("gone").unwrap(), model: None, system_prompt: None, is_default: false };
    let agent = fx.services.agents.create(&fx.writer, agent).await.unwrap();
    let mut req = CreateThread::new(ParentRef::parse("general").unwrap());
    req.agents = vec![AgentRef::Id(agent.id)];
    let thread = fx.services.threads.create(&fx.writer, req).await.unwrap();
    let owner = arbe_store::testkit::member(&fx.test.store, &fx.house, "olga", Role::Owner).await.0;
    fx.services.agents.delete(&owner, &AgentRef::Id(agent.id)).await.unwrap();
    let d = fx.dispatcher(crate::fast_config("w"));
    let workers = d.start();
    let (_, job) = d.post(&fx.writer, thread.id, "hello").await.unwrap();
    let entries = fx.wait_end(&d, &thread, job.id).await;
    workers.shutdown(std::time::Duration::from_secs(5)).await;
    assert_eq!(crate::terminals(&entries, job.id), [arbe_core::ThreadStatus::Failed]);
    let failed = entries.iter().find_map(|e| match &e.body {
        arbe_core::EntryBody::AgentFailed { message, .. } => Some(message.clone()),
        _ => None,
    });
    assert!(failed.unwrap().contains("was deleted"));
    assert_eq!(fx.test.store.job(fx.house.id, job.id).await.unwrap().attempts, 1, "not retried");
    assert!(fx.model.received().is_empty());
}

pub(crate) async fn the_concurrent_dispatches_quota_refuses_a_post_and_writes_nothing(test: TestStore) {
    let quotas = Quotas { concurrent_dispatches: Some(1), ..Quotas::default() };
    let fx = Fixture::new(test, vec![]).await;
    fx.test.store.set_house_quotas(fx.house.id, quotas).await.unwrap();
    let thread = fx.thread("work", &[]).await;
    // No workers run: the first dispatch stays queued.
    fx.services.dispatcher.post(&fx.writer, thread.id, "first").await.unwrap();
    let err = fx.services.dispatcher.post(&fx.writer, thread.id, "second").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(
        err.to_string(),
        "quota concurrent_dispatches reached: the house may have at most 1 dispatches queued or running at once"
    );
    assert_eq!(fx.entries(&thread).await.len(), 2, "the first entry and its queued status only");
    // Cancelling the queued one frees the place.
    fx.services.dispatcher.cancel(&fx.writer, thread.id).await.unwrap();
    fx.services.dispatcher.post(&fx.writer, thread.id, "second").await.unwrap();
}
