//! The cases `both_backends!` runs on each backend.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use arbe_core::EnvironmentRef;
use arbe_core::testkit::assert_kind;
use arbe_core::{
    Audience, Classify, EntryBody, EnvironmentName, ErrorKind, House, JobId, JobState, Labels, Member, MemberId,
    ModelRef, Name, ParentRef, Resources, Role, RuntimeName, Sandbox, SandboxState, SecretBinding, SecretName,
    ThreadStatus,
};
use arbe_store::{
    ApiKeySecret, Lease, NewAgent, NewEnvironment, NewSandbox, NewSecretVersion, NewThread, SealedSecret, Store,
    StoreConfig, testkit::TestStore,
};
use sqlx::Connection;

struct Fixture {
    house: House,
    owner: Member,
    sandbox: Sandbox,
}

async fn fixture(store: &Store, house: &str) -> Fixture {
    let house = store.create_house(&Name::parse(house).unwrap()).await.unwrap();
    let user = store.create_user(&Name::parse(&format!("{}-owner", house.name)).unwrap()).await.unwrap();
    let owner = store.add_member(house.id, user.id, Role::Owner).await.unwrap();
    let sandbox = store.create_sandbox(new_sandbox(&house, "box")).await.unwrap();
    // The data key the fixtures' sealed secrets name (`key_version: 1`).
    store.insert_house_key(house.id, 1, &[7; 48], &[7; 12], "test-kek").await.unwrap();
    Fixture { house, owner, sandbox }
}

fn new_sandbox(house: &House, name: &str) -> NewSandbox {
    NewSandbox {
        house_id: house.id,
        runtime: RuntimeName::parse("docker").unwrap(),
        name: Name::parse(name).unwrap(),
        state: SandboxState::Provisioning,
        image: Some("arbe-sandbox:latest".into()),
        resources: Resources { cpus: Some(1.0), memory_mb: Some(512), ..Resources::default() },
        labels: Labels::parse([("arbe.dev/house", house.id.to_string())]).unwrap(),
    }
}

fn new_env(fx: &Fixture, name: &str) -> NewEnvironment {
    NewEnvironment {
        house_id: fx.house.id,
        author_id: fx.owner.id,
        name: EnvironmentName::parse(name).unwrap(),
        runtime: RuntimeName::parse("docker").unwrap(),
        sandbox_id: fx.sandbox.id,
        default_repo: Some(arbe_core::RepoRef::parse("org/repo").unwrap()),
        allowed_repos: vec![arbe_core::RepoRef::parse("org/repo").unwrap()],
        github_installation_id: Some(42),
        secret_bindings: vec![SecretBinding { name: SecretName::parse("OPENROUTER_API_KEY").unwrap(), required: true }],
    }
}

fn sealed(version: i64, byte: u8) -> SealedSecret {
    SealedSecret { version, ciphertext: vec![byte; 32], nonce: vec![byte; 12], key_version: 1 }
}

fn new_secret(fx: &Fixture, name: &str, version: i64, byte: u8) -> NewSecretVersion {
    NewSecretVersion {
        house_id: fx.house.id,
        name: SecretName::parse(name).unwrap(),
        audience: Audience::Environment,
        shared: true,
        author_id: fx.owner.id,
        sealed: sealed(version, byte),
    }
}

fn user_message(author: MemberId, text: &str) -> EntryBody {
    EntryBody::UserMessage { author_id: author, text: text.into() }
}

pub(crate) async fn house_names_are_unique(t: TestStore) {
    let store = t.store;
    let name = Name::parse("acme").unwrap();
    let house = store.create_house(&name).await.unwrap();
    assert_kind(store.create_house(&name).await, ErrorKind::Conflict);
    assert_eq!(store.house_by_name("acme").await.unwrap(), house);
    assert_eq!(store.house(house.id).await.unwrap(), house);
    assert_eq!(store.list_houses().await.unwrap(), vec![house]);
}

pub(crate) async fn api_key_auth_finds_member_and_honours_revocation(t: TestStore) {
    let store = t.store;
    let fx = fixture(&store, "acme").await;
    let user = store.create_user(&Name::parse("wri").unwrap()).await.unwrap();
    let writer = store.add_member(fx.house.id, user.id, Role::Writer).await.unwrap();
    let (id, key, hash) = ApiKeySecret::generate();
    let meta = store.create_api_key(user.id, id, "laptop", &hash).await.unwrap();
    assert_eq!((meta.user_id, meta.last_used_at), (user.id, None));
    let actor = store.authenticate_in(key.expose(), fx.house.id).await.unwrap();
    assert_eq!((actor.member(), actor.user()), (&writer, &user));
    // The role is read at each authentication: a change applies to the next request.
    store.set_member_role(fx.house.id, writer.id, Role::Reader).await.unwrap();
    assert_eq!(store.authenticate_in(key.expose(), fx.house.id).await.unwrap().role(), Role::Reader);
    // Last use is kept.
    assert!(store.list_api_keys(user.id).await.unwrap()[0].last_used_at.is_some());
    // A wrong secret, a malformed key and a house without membership fail alike or as NotFound.
    let wrong = format!("{}x", &key.expose()[..key.expose().len() - 1]);
    assert_kind(store.authenticate(&wrong).await, ErrorKind::Unauthenticated);
    assert_kind(store.authenticate("arbe_nope").await, ErrorKind::Unauthenticated);
    let other = fixture(&store, "other").await;
    assert_kind(store.authenticate_in(key.expose(), other.house.id).await, ErrorKind::NotFound);
    // Revoked: the next request fails, with no cache in between.
    store.revoke_api_key(user.id, id).await.unwrap();
    assert_kind(store.authenticate(key.expose()).await, ErrorKind::Unauthenticated);
    assert_kind(store.revoke_api_key(user.id, id).await, ErrorKind::NotFound);
    let keys = store.list_api_keys(user.id).await.unwrap();
    assert!(keys[0].revoked_at.is_some());
    // A house keeps an owner.
    assert_kind(store.set_member_role(fx.house.id, fx.owner.id, Role::Writer).await, ErrorKind::Conflict);
    assert_kind(store.remove_member(fx.house.id, fx.owner.id).await, ErrorKind::Conflict);
    store.remove_member(fx.house.id, writer.id).await.unwrap();
    assert_kind(store.member(fx.house.id, writer.id).await, ErrorKind::NotFound);
}

pub(crate) async fn objects_of_another_house_are_not_found(t: TestStore) {
    let store = t.store;
    let a = fixture(&store, "a").await;
    let b = fixture(&store, "b").await;
    let env = store.create_environment(new_env(&a, "prod")).await.unwrap();
    let thread = store
        .create_thread(NewThread {
            house_id: a.house.id,
            author_id: a.owner.id,
            parent: ParentRef::parse("general").unwrap(),
            environment: Some(env.snapshot()),
            model_override: None,
            agent_ids: vec![],
        })
        .await
        .unwrap();
    store.put_secret_version(&new_secret(&a, "TOKEN", 1, 1)).await.unwrap();
    let other = b.house.id;
    assert_kind(store.environment(other, &EnvironmentRef::Id(env.id)).await, ErrorKind::NotFound);
    assert_kind(store.environment(other, &EnvironmentRef::parse("prod").unwrap()).await, ErrorKind::NotFound);
    assert_kind(store.thread(other, thread.id).await, ErrorKind::NotFound);
    assert_kind(store.entries(other, thread.id, 0, 10).await, ErrorKind::NotFound);
    assert_kind(store.append_entry(other, thread.id, user_message(b.owner.id, "hi")).await, ErrorKind::NotFound);
    assert_kind(store.enqueue_job(other, thread.id, 1).await, ErrorKind::NotFound);
    assert_kind(store.sandbox(other, a.sandbox.id).await, ErrorKind::NotFound);
    assert_kind(store.member(other, a.owner.id).await, ErrorKind::NotFound);
    assert_kind(store.secret_meta(other, &SecretName::parse("TOKEN").unwrap()).await, ErrorKind::NotFound);
    assert_kind(store.delete_environment(other, env.id).await, ErrorKind::NotFound);
    // An environment may not point at another house's sandbox.
    let mut stolen = new_env(&b, "steal");
    stolen.sandbox_id = a.sandbox.id;
    assert_kind(store.create_environment(stolen).await, ErrorKind::NotFound);
    // Nothing of house a changed.
    assert_eq!(store.environment(a.house.id, &EnvironmentRef::Id(env.id)).await.unwrap(), env);
}

pub(crate) async fn secret_versions_rotate_with_compare_and_set(t: TestStore) {
    let store = t.store;
    let fx = fixture(&store, "acme").await;
    let v1 = store.put_secret_version(&new_secret(&fx, "API_KEY", 1, 1)).await.unwrap();
    assert_eq!((v1.version, v1.rotated_at), (1, None));
    // Creating it again is a conflict: rotation goes through version 2.
    assert_kind(store.put_secret_version(&new_secret(&fx, "API_KEY", 1, 9)).await, ErrorKind::Conflict);
    let mut rotate = new_secret(&fx, "API_KEY", 2, 2);
    rotate.audience = Audience::Capability;
    let v2 = store.put_secret_version(&rotate).await.unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(v2.id, v1.id);
    assert_eq!(v2.audience, Audience::Capability);
    assert!(v2.rotated_at.is_some());
    // A version sealed under a data key that is gone (a rotation retired it) is refused.
    let mut orphan = new_secret(&fx, "API_KEY", 3, 4);
    orphan.sealed.key_version = 99;
    assert_kind(store.put_secret_version(&orphan).await, ErrorKind::NotFound);
    // A writer that read version 1 and tries to write 2 loses; nothing changes.
    assert_kind(store.put_secret_version(&new_secret(&fx, "API_KEY", 2, 3)).await, ErrorKind::Conflict);
    // Skipping a version is refused the same way.
    assert_kind(store.put_secret_version(&new_secret(&fx, "API_KEY", 5, 3)).await, ErrorKind::Conflict);
    let sealed = store.sealed_secrets(fx.house.id, &[SecretName::parse("API_KEY").unwrap()]).await.unwrap();
    assert_eq!(sealed.len(), 1);
    assert_eq!(sealed[0].1, self::sealed(2, 2));
    assert_eq!(store.list_secrets(fx.house.id).await.unwrap(), vec![v2]);
    store.delete_secret(fx.house.id, &SecretName::parse("API_KEY").unwrap()).await.unwrap();
    assert_kind(store.secret_meta(fx.house.id, &SecretName::parse("API_KEY").unwrap()).await, ErrorKind::NotFound);
    assert_kind(store.delete_secret(fx.house.id, &SecretName::parse("API_KEY").unwrap()).await, ErrorKind::NotFound);
}

pub(crate) async fn sealed_secrets_returns_current_versions_of_named_secrets(t: TestStore) {
    let store = t.store;
    let fx = fixture(&store, "acme").await;
    for (i, name) in ["A", "B", "C"].iter().enumerate() {
        store.put_secret_version(&new_secret(&fx, name, 1, i as u8)).await.unwrap();
    }
    store.put_secret_version(&new_secret(&fx, "B", 2, 20)).await.unwrap();
    let names: Vec<_> = ["B", "C", "MISSING"].iter().map(|n| SecretName::parse(n).unwrap()).collect();
    let got = store.sealed_secrets(fx.house.id, &names).await.unwrap();
    let summary: Vec<_> = got.iter().map(|(m, s)| (m.name.as_str().to_owned(), s.version, s.ciphertext[0])).collect();
    assert_eq!(summary, vec![("B".to_owned(), 2, 20), ("C".to_owned(), 1, 2)]);
    assert!(store.sealed_secrets(fx.house.id, &[]).await.unwrap().is_empty());
}

pub(crate) async fn environment_names_are_unique_without_case_among_live_rows(t: TestStore) {
    let store = t.store;
    let fx = fixture(&store, "acme").await;
    let prod = store.create_environment(new_env(&fx, "Prod")).await.unwrap();
    assert_kind(store.create_environment(new_env(&fx, "PROD")).await, ErrorKind::Conflict);
    let mut staging = store.create_environment(new_env(&fx, "staging")).await.unwrap();
    // Renaming onto a taken name is refused, and changes nothing.
    staging.name = EnvironmentName::parse("prod").unwrap();
    assert_kind(store.update_environment(&staging).await, ErrorKind::Conflict);
    let names: Vec<_> =
        store.list_environments(fx.house.id).await.unwrap().into_iter().map(|e| e.name.to_string()).collect();
    assert_eq!(names, ["Prod", "staging"]);
    // Another house may use the name.
    let other = fixture(&store, "other").await;
    store.create_environment(new_env(&other, "prod")).await.unwrap();
    assert_eq!(store.environment(fx.house.id, &EnvironmentRef::Id(prod.id)).await.unwrap(), prod);
}

pub(crate) async fn environment_lookup_by_name_ignores_case(t: TestStore) {
    let store = t.store;
    let fx = fixture(&store, "acme").await;
    let env = store.create_environment(new_env(&fx, "Staging")).await.unwrap();
    for name in ["staging", "STAGING", "Staging", &env.id.to_string()] {
        let by = EnvironmentRef::parse(name).unwrap();
        assert_eq!(store.environment(fx.house.id, &by).await.unwrap(), env, "{name}");
    }
    let mut changed = env.clone();
    changed.secret_bindings.push(SecretBinding { name: SecretName::parse("GITHUB_TOKEN").unwrap(), required: false });
    changed.github_installation_id = None;
    let stored = store.update_environment(&changed).await.unwrap();
    assert_eq!(stored.secret_bindings, changed.secret_bindings);
    assert_eq!(stored.github_installation_id, None);
    assert!(stored.updated_at >= env.updated_at);
}

pub(crate) async fn environment_soft_delete_hides_row_and_frees_name(t: TestStore) {
    let store = t.store;
    let fx = fixture(&store, "acme").await;
    let env = store.create_environment(new_env(&fx, "prod")).await.unwrap();
    store.delete_environment(fx.house.id, env.id).await.unwrap();
    assert_kind(store.environment(fx.house.id, &EnvironmentRef::Id(env.id)).await, ErrorKind::NotFound);
    assert!(store.list_environments(fx.house.id).await.unwrap().is_empty());
    assert_kind(store.delete_environment(fx.house.id, env.id).await, ErrorKind::NotFound);
    assert_kind(store.update_environment(&env).await, ErrorKind::NotFound);
    let again = store.create_environment(new_env(&fx, "PROD")).await.unwrap();
    assert_ne!(again.id, env.id);
}

pub(crate) async fn thread_snapshot_survives_environment_edit_delete_and_purge(t: TestStore) {
    let store = t.store;
    let fx = fixture(&store, "acme").await;
    let env = store.create_environment(new_env(&fx, "prod")).await.unwrap();
    let thread = store
        .create_thread(NewThread {
            house_id: fx.house.id,
            author_id: fx.owner.id,
            parent: ParentRef::parse("#general").unwrap(),
            environment: Some(env.snapshot()),
            model_override: Some(ModelRef::parse("anthropic/claude-haiku-4-5").unwrap()),
            agent_ids: vec![],
        })
        .await
        .unwrap();
    let mut edited = env.clone();
    edited.name = EnvironmentName::parse("renamed").unwrap();
    edited.secret_bindings.clear();
    store.update_environment(&edited).await.unwrap();
    let read = store.thread(fx.house.id, thread.id).await.unwrap();
    assert_eq!(read, thread);
    assert_eq!(read.environment, Some(env.snapshot()));

    store.delete_environment(fx.house.id, env.id).await.unwrap();
    let read = store.thread(fx.house.id, thread.id).await.unwrap();
    assert_eq!((read.environment_id, read.environment.clone()), (Some(env.id), Some(env.snapshot())));

    // Removing the row for good nulls the reference (ON DELETE SET NULL); the snapshot stays.
    store.purge_environment(fx.house.id, env.id).await.unwrap();
    let read = store.thread(fx.house.id, thread.id).await.unwrap();
    assert_eq!(read.environment_id, None);
    assert_eq!(read.environment, Some(env.snapshot()));
    assert_eq!(read.model_override.unwrap().as_str(), "anthropic/claude-haiku-4-5");
}

/// Waits until the sweep requeues the one job whose 1 ms lease ran out.
async fn requeued(store: &Store) {
    arbe_testkit::eventually("the expired lease to be swept", Duration::from_secs(10), || async {
        (store.requeue_expired_jobs().await.unwrap() == 1).then_some(())
    })
    .await;
}

async fn thread_for(store: &Store, fx: &Fixture) -> arbe_core::Thread {
    store
        .create_thread(NewThread {
            house_id: fx.house.id,
            author_id: fx.owner.id,
            parent: ParentRef::parse("general").unwrap(),
            environment: None,
            model_override: None,
            agent_ids: vec![],
        })
        .await
        .unwrap()
}

async fn append_concurrently(stores: Vec<Store>, fx: &Fixture, thread: arbe_core::ThreadId, per_task: usize) {
    let mut tasks = Vec::new();
    for task in 0..8 {
        let store = stores[task % stores.len()].clone();
        let (house, author) = (fx.house.id, fx.owner.id);
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..per_task {
                let entry =
                    store.append_entry(house, thread, user_message(author, &format!("{task}/{i}"))).await.unwrap();
                seqs.push(entry.seq);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let seqs = task.await.unwrap();
        // Each task sees its own appends in increasing order.
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        all.extend(seqs);
    }
    all.sort_unstable();
    let expected: Vec<i64> = (1..=(8 * per_task) as i64).collect();
    assert_eq!(all, expected, "sequence numbers must be 1..=n with no gaps and no duplicates");
}

async fn assert_stored_sequence(store: &Store, fx: &Fixture, thread: arbe_core::ThreadId, n: i64) {
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = store.entries(fx.house.id, thread, after, 100).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        seen.extend(page.iter().map(|e| e.seq));
    }
    assert_eq!(seen, (1..=n).collect::<Vec<_>>());
    assert_eq!(store.thread(fx.house.id, thread).await.unwrap().last_seq, n);
}

pub(crate) async fn entries_are_numbered_without_gaps_under_concurrent_appends(t: TestStore) {
    let store = t.store;
    let fx = fixture(&store, "acme").await;
    let thread = thread_for(&store, &fx).await;
    append_concurrently(vec![store.clone()], &fx, thread.id, 50).await;
    assert_stored_sequence(&store, &fx, thread.id, 400).await;
}

pub(crate) async fn entries_are_numbered_without_gaps_across_two_stores(t: TestStore) {
    // Two stores on one database stand for two server processes.
    let store = t.store;
    let second = Store::connect(&StoreConfig::new(&t.url)).await.unwrap();
    let fx = fixture(&store, "acme").await;
    let thread = thread_for(&store, &fx).await;
    append_concurrently(vec![store.clone(), second], &fx, thread.id, 25).await;
    assert_stored_sequence(&store, &fx, thread.id, 200).await;
}

pub(crate) async fn entries_are_append_only(t: TestStore) {
    let store = t.store;
    let fx = fixture(&store, "acme").await;
    let thread = thread_for(&store, &fx).await;
    let entry = store.append_entry(fx.house.id, thread.id, user_message(fx.owner.id, "original")).await.unwrap();
    // Even a direct UPDATE, past the API, is refused by the database.
    let err = if t.url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(&t.url).await.unwrap();
        sqlx::query("UPDATE entries SET kind = 'tampered'").execute(&mut conn).await.unwrap_err()
    } else {
        let mut conn = sqlx::PgConnection::connect(&t.url).await.unwrap();
        sqlx::query("UPDATE entries SET kind = 'tampered'").execute(&mut conn).await.unwrap_err()
    };
    assert!(err.to_string().contains("entries are append-only"), "{err}");
    // Nor may one be deleted, and a second entry with a taken sequence number is refused.
    let (delete, duplicate) = (
        "DELETE FROM entries",
        "INSERT INTO entries (id, thread_id, seq, kind, body, created_at) \
         SELECT $1, thread_id, seq, kind, body, created_at FROM entries",
    );
    let (delete_err, duplicate_err) = if t.url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(&t.url).await.unwrap();
        let d = sqlx::query(delete).execute(&mut conn).await.unwrap_err();
        let u = sqlx::query(duplicate).bind(uuid::Uuid::now_v7()).execute(&mut conn).await.unwrap_err();
        (d, u)
    } else {
        let mut conn = sqlx::PgConnection::connect(&t.url).await.unwrap();
        let d = sqlx::query(delete).execute(&mut conn).await.unwrap_err();
        let u = sqlx::query(duplicate).bind(uuid::Uuid::now_v7()).execute(&mut conn).await.unwrap_err();
        (d, u)
    };
    assert!(delete_err.to_string().contains("entries are append-only"), "{delete_err}");
    assert!(duplicate_err.as_database_error().is_some_and(|e| e.is_unique_violation()), "{duplicate_err}");
    let read = store.entries(fx.house.id, thread.id, 0, 10).await.unwrap();
    assert_eq!(read, vec![entry]);
    // Deleting the whole thread still takes its entries with it.
    let drop_thread = "DELETE FROM threads";
    if t.url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(&t.url).await.unwrap();
        sqlx::query("PRAGMA foreign_keys = ON").execute(&mut conn).await.unwrap();
        sqlx::query(drop_thread).execute(&mut conn).await.unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(&t.url).await.unwrap();
        sqlx::query(drop_thread).execute(&mut conn).await.unwrap();
    }
    assert_kind(store.entries(fx.house.id, thread.id, 0, 10).await, ErrorKind::NotFound);
}

pub(crate) async fn entries_resume_after_a_sequence_number(t: TestStore) {
    let store = t.store;
    let fx = fixture(&store, "acme").await;
    let thread = thread_for(&store, &fx).await;
    assert!(store.entries(fx.house.id, thread.id, 0, 10).await.unwrap().is_empty());
    let bodies = [
        user_message(fx.owner.id, "go"),
        EntryBody::Status { status: ThreadStatus::Running, job: None, ledger: None },
        EntryBody::Warning { message: "optional secret NICE_KEY is missing".into() },
        EntryBody::Status { status: ThreadStatus::Succeeded, job: None, ledger: Some(arbe_core::Ledger::default()) },
    ];
    for body in &bodies {
        store.append_entry(fx.house.id, thread.id, body.clone()).await.unwrap();
    }
    let tail = store.entries(fx.house.id, thread.id, 2, 10).await.unwrap();
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(tail.iter().map(|e| e.body.clone()).collect::<Vec<_>>(), bodies[2..]);
    let page = store.entries(fx.house.id, thread.id, 0, 1).await.unwrap();
    assert_eq!(page.len(), 1);
}

pub(crate) async fn default_agent_moves_to_the_newest_default(t: TestStore) {
    let store = t.store;
    let fx = fixture(&store, "acme").await;
    assert_kind(store.default_agent(fx.house.id).await, ErrorKind::NotFound);
    let new_agent = |name: &str, is_default| NewAgent {
        house_id: fx.house.id,
        name: Name::parse(name).unwrap(),
        model: ModelRef::default(),
        system_prompt: "You are helpful.".into(),
        is_default,
    };
    let first = store.create_agent(new_agent("first", true)).await.unwrap();
    assert_eq!(store.default_agent(fx.house.id).await.unwrap(), first);
    let second = store.create_agent(new_agent("second", true)).await.unwrap();
    assert_eq!(store.default_agent(fx.house.id).await.unwrap().id, second.id);
    assert!(!store.agent(fx.house.id, first.id).await.unwrap().is_default);
    assert_kind(store.create_agent(new_agent("second", false)).await, ErrorKind::Conflict);
    assert_eq!(store.list_agents(fx.house.id).await.unwrap().len(), 2);
}

pub(crate) async fn job_claim_race_has_exactly_one_winner(t: TestStore) {
    let store = t.store;
    let fx = fixture(&store, "acme").await;
    let thread = thread_for(&store, &fx).await;
    let job = store.enqueue_job(fx.house.id, thread.id, 1).await.unwrap();
    assert_eq!(job.state, JobState::Queued);
    let second = Store::connect(&StoreConfig::new(&t.url)).await.unwrap();
    let stores = Arc::new([store.clone(), second]);
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let stores = stores.clone();
        tasks.push(tokio::spawn(async move {
            stores[worker % 2].claim_job(&format!("worker-{worker}"), Duration::from_secs(30)).await.unwrap()
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        if let Some(job) = task.await.unwrap() {
            winners.push(job);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one worker may claim the job");
    let won = &winners[0];
    assert_eq!((won.id, won.state, won.attempts), (job.id, JobState::Running, 1));
    assert_eq!(won.lease_owner.as_deref(), Some(won.owner()));
    assert_eq!(store.renew_lease(won, Duration::from_secs(30)).await.unwrap(), Lease::Held { cancel_requested: false });
    assert!(store.finish_job(won, JobState::Succeeded).await.unwrap());
    assert!(!store.finish_job(won, JobState::Succeeded).await.unwrap(), "a finished job is finished once");
    assert_eq!(store.job(fx.house.id, job.id).await.unwrap().state, JobState::Succeeded);
    assert!(store.claim_job("late", Duration::from_secs(30)).await.unwrap().is_none());
    assert_kind(store.finish_job(won, JobState::Running).await, ErrorKind::InvalidInput);
}

pub(crate) async fn expired_lease_is_requeued_and_old_owner_loses_it(t: TestStore) {
    let store = t.store;
    let fx = fixture(&store, "acme").await;
    let thread = thread_for(&store, &fx).await;
    let job = store.enqueue_job(fx.house.id, thread.id, 1).await.unwrap();
    let claimed = store.claim_job("dies", Duration::from_millis(1)).await.unwrap().unwrap();
    assert_eq!(claimed.id, job.id);
    requeued(&store).await;
    let taken = store.claim_job("survivor", Duration::from_secs(30)).await.unwrap().unwrap();
    assert_eq!((taken.id, taken.attempts), (job.id, 2));
    // The first worker comes back: its lease is gone and it may not finish the job.
    assert_eq!(store.renew_lease(&claimed, Duration::from_secs(30)).await.unwrap(), Lease::Lost);
    assert!(!store.finish_job(&claimed, JobState::Failed).await.unwrap());
    // A live lease is not swept.
    assert_eq!(store.requeue_expired_jobs().await.unwrap(), 0);
    assert!(store.finish_job(&taken, JobState::Succeeded).await.unwrap());
}

pub(crate) async fn cancel_jobs_cancels_queued_and_flags_running(t: TestStore) {
    let store = t.store;
    let fx = fixture(&store, "acme").await;
    let thread = thread_for(&store, &fx).await;
    let running = store.enqueue_job(fx.house.id, thread.id, 1).await.unwrap();
    let claim = store.claim_job("w", Duration::from_secs(30)).await.unwrap().unwrap();
    assert_eq!(claim.id, running.id);
    let queued = store.enqueue_job(fx.house.id, thread.id, 2).await.unwrap();
    let cancelled = store.cancel_jobs(fx.house.id, thread.id).await.unwrap();
    assert_eq!(cancelled, arbe_store::CancelledJobs { queued: vec![queued.id], running: 1 });
    assert_eq!(store.job(fx.house.id, queued.id).await.unwrap().state, JobState::Cancelled);
    assert_eq!(
        store.renew_lease(&claim, Duration::from_secs(30)).await.unwrap(),
        Lease::Held { cancel_requested: true }
    );
    assert!(store.finish_job(&claim, JobState::Cancelled).await.unwrap());
    assert_eq!(store.cancel_jobs(fx.house.id, thread.id).await.unwrap(), arbe_store::CancelledJobs::default());
}

pub(crate) async fn idle_sandboxes_lists_only_started_and_stale(t: TestStore) {
    let store = t.store;
    let fx = fixture(&store, "acme").await;
    let docker = RuntimeName::parse("docker").unwrap();
    store.set_sandbox_state(fx.house.id, fx.sandbox.id, SandboxState::Started, Some("c0ffee")).await.unwrap();
    let busy = store.create_sandbox(new_sandbox(&fx.house, "busy")).await.unwrap();
    store.set_sandbox_state(fx.house.id, busy.id, SandboxState::Started, None).await.unwrap();
    let stopped = store.create_sandbox(new_sandbox(&fx.house, "stopped")).await.unwrap();
    store.set_sandbox_state(fx.house.id, stopped.id, SandboxState::Stopped, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cutoff = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    store.touch_sandbox(fx.house.id, busy.id).await.unwrap();
    let idle = store.idle_sandboxes(&docker, cutoff).await.unwrap();
    assert_eq!(idle.iter().map(|s| s.id).collect::<Vec<_>>(), vec![fx.sandbox.id]);
    assert_eq!(idle[0].external_id.as_deref(), Some("c0ffee"));
    assert_eq!(idle[0].state, SandboxState::Started);
    let all: BTreeSet<_> =
        store.list_sandboxes(fx.house.id, Some(&docker)).await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(all.len(), 3);
    assert!(store.list_sandboxes(fx.house.id, Some(&RuntimeName::parse("ssh").unwrap())).await.unwrap().is_empty());
    assert_kind(store.create_sandbox(new_sandbox(&fx.house, "busy")).await, ErrorKind::Conflict);
}

pub(crate) async fn secret_versions_keep_only_current_and_previous(t: TestStore) {
    let store = t.store;
    let fx = fixture(&store, "acme").await;
    let name = SecretName::parse("API_KEY").unwrap();
    for version in 1..=3 {
        store.put_secret_version(&new_secret(&fx, "API_KEY", version, version as u8)).await.unwrap();
    }
    assert_kind(store.sealed_secret_version(fx.house.id, &name, 1).await, ErrorKind::NotFound);
    let (meta, previous) = store.sealed_secret_version(fx.house.id, &name, 2).await.unwrap();
    assert_eq!((meta.version, previous), (3, sealed(2, 2)));
    assert_eq!(store.sealed_secret_version(fx.house.id, &name, 3).await.unwrap().1, sealed(3, 3));
}

pub(crate) async fn job_entries_are_written_only_while_the_lease_is_held(t: TestStore) {
    let store = t.store;
    let fx = fixture(&store, "acme").await;
    let thread = thread_for(&store, &fx).await;
    let job = store.enqueue_job(fx.house.id, thread.id, 1).await.unwrap();
    let w1 = store.claim_job("w1", Duration::from_millis(1)).await.unwrap().unwrap();
    let body = |text: &str| EntryBody::Warning { message: text.into() };
    let first = store.append_job_entry(&w1, thread.id, body("w1 holds it")).await.unwrap();
    assert_eq!(first.unwrap().seq, 1);
    // The lease runs out; the sweep requeues the job and w2 takes it over.
    requeued(&store).await;
    let w2 = store.claim_job("w2", Duration::from_secs(30)).await.unwrap().unwrap();
    assert_eq!(w2.id, job.id);
    assert_eq!(store.append_job_entry(&w1, thread.id, body("too late")).await.unwrap(), None);
    let second = store.append_job_entry(&w2, thread.id, body("w2 now")).await.unwrap();
    assert_eq!(second.unwrap().seq, 2);
    // Several at once: all, numbered in a row, or none.
    let turn = vec![body("turn a"), body("turn b")];
    let written = store.append_job_entries(&w2, thread.id, turn.clone()).await.unwrap().unwrap();
    assert_eq!(written.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(store.append_job_entries(&w1, thread.id, turn).await.unwrap(), None);
    let texts: Vec<_> = store
        .entries(fx.house.id, thread.id, 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| match e.body {
            EntryBody::Warning { message } => message,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(texts, ["w1 holds it", "w2 now", "turn a", "turn b"]);
    // Finished: nobody writes for the job any more, and another house's thread is not found.
    assert!(store.finish_job(&w2, JobState::Succeeded).await.unwrap());
    assert_eq!(store.append_job_entry(&w2, thread.id, body("after")).await.unwrap(), None);
    let other = fixture(&store, "other").await;
    let other_thread = thread_for(&store, &other).await;
    assert_kind(store.append_job_entry(&w2, other_thread.id, body("x")).await, ErrorKind::NotFound);
}

pub(crate) async fn a_thread_runs_one_job_at_a_time(t: TestStore) {
    let store = t.store;
    let fx = fixture(&store, "acme").await;
    let busy = thread_for(&store, &fx).await;
    let idle = thread_for(&store, &fx).await;
    let first = store.enqueue_job(fx.house.id, busy.id, 1).await.unwrap();
    let second = store.enqueue_job(fx.house.id, busy.id, 2).await.unwrap();
    let other = store.enqueue_job(fx.house.id, idle.id, 1).await.unwrap();
    let lease = Duration::from_secs(30);
    let w1 = store.claim_job("w1", lease).await.unwrap().unwrap();
    assert_eq!(w1.id, first.id);
    // The busy thread's second job waits; the other thread's job goes ahead of it.
    let w2 = store.claim_job("w2", lease).await.unwrap().unwrap();
    assert_eq!(w2.id, other.id);
    assert!(store.claim_job("w3", lease).await.unwrap().is_none());
    assert!(store.finish_job(&w1, JobState::Succeeded).await.unwrap());
    assert_eq!(store.claim_job("w3", lease).await.unwrap().unwrap().id, second.id);
    // Many workers racing for one thread's jobs: one at a time, never an error.
    for n in 3..8 {
        store.enqueue_job(fx.house.id, idle.id, n).await.unwrap();
    }
    assert!(store.finish_job(&w2, JobState::Succeeded).await.unwrap());
    let claims = futures_claims(&store, 8).await;
    assert_eq!(claims.iter().filter(|c| c.is_some()).count(), 1, "{claims:?}");
}

async fn futures_claims(store: &Store, n: usize) -> Vec<Option<JobId>> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.claim_job(&format!("racer{i}"), Duration::from_secs(30)).await.unwrap().map(|j| j.id)
        }));
    }
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

pub(crate) async fn appends_wake_listeners(t: TestStore) {
    let store = t.store.clone();
    let fx = fixture(&store, "acme").await;
    let thread = thread_for(&store, &fx).await;
    let mut listener = store.entry_listener().await.unwrap().expect("a PostgreSQL store has a listener");
    // An append through another store (another process) reaches this one's listener.
    let other = Store::connect(&StoreConfig::new(&t.url)).await.unwrap();
    other.append_entry(fx.house.id, thread.id, EntryBody::Warning { message: "hi".into() }).await.unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(10), listener.next()).await.expect("a notification").unwrap();
    assert_eq!(heard, thread.id);
    // A fenced append that writes nothing notifies nothing: the next notification is the
    // other thread's.
    let second = thread_for(&store, &fx).await;
    other.enqueue_job(fx.house.id, thread.id, 1).await.unwrap();
    let claim = other.claim_job("w", Duration::from_millis(1)).await.unwrap().unwrap();
    requeued(&other).await;
    let lost = other.append_job_entry(&claim, thread.id, EntryBody::Warning { message: "x".into() });
    assert!(lost.await.unwrap().is_none());
    other.append_entry(fx.house.id, second.id, EntryBody::Warning { message: "again".into() }).await.unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(10), listener.next()).await.expect("a notification").unwrap();
    assert_eq!(heard, second.id);
    assert_eq!(store.entries(fx.house.id, thread.id, 0, 10).await.unwrap().len(), 1);
}

pub(crate) async fn thread_status_follows_its_latest_status_entry(t: TestStore) {
    let store = t.store;
    let fx = fixture(&store, "acme").await;
    let thread = thread_for(&store, &fx).await;
    assert_eq!(store.thread(fx.house.id, thread.id).await.unwrap().status, ThreadStatus::Idle);
    // Posting is one transaction: the entry, its job, and `queued`.
    let body = user_message(fx.owner.id, "hello");
    let (entry, job) = store.append_and_enqueue(fx.house.id, thread.id, body).await.unwrap();
    assert_eq!((entry.seq, job.trigger_seq, job.state), (1, 1, JobState::Queued));
    let entries = store.entries(fx.house.id, thread.id, 0, 10).await.unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].body, EntryBody::Status { status: ThreadStatus::Queued, job: Some(job.id), ledger: None });
    assert_eq!(store.thread(fx.house.id, thread.id).await.unwrap().status, ThreadStatus::Queued);
    for status in [ThreadStatus::Running, ThreadStatus::Failed] {
        let body = EntryBody::Status { status, job: Some(job.id), ledger: None };
        store.append_entry(fx.house.id, thread.id, body).await.unwrap();
        assert_eq!(store.thread(fx.house.id, thread.id).await.unwrap().status, status);
    }
    // Other entries leave it alone; another house's thread is not found and nothing is written.
    store.append_entry(fx.house.id, thread.id, EntryBody::Warning { message: "w".into() }).await.unwrap();
    assert_eq!(store.thread(fx.house.id, thread.id).await.unwrap().status, ThreadStatus::Failed);
    let other = fixture(&store, "other").await;
    let res = store.append_and_enqueue(other.house.id, thread.id, user_message(fx.owner.id, "x")).await;
    assert_kind(res, ErrorKind::NotFound);
    assert_eq!(store.jobs_of_thread(fx.house.id, thread.id).await.unwrap().len(), 1);
}

pub(crate) async fn migration_carries_members_and_keys_over_to_users(t: TestStore) {
    use arbe_store::testkit::{database_at_version, execute_raw};
    let backend = t.store.backend();
    let (url, _dir) = database_at_version(backend, 4).await;
    // Rows as the release before users wrote them: two houses share a member name.
    let (h1, h2) = (arbe_core::HouseId::new(), arbe_core::HouseId::new());
    let (ann1, ann2, bob) = (MemberId::new(), MemberId::new(), MemberId::new());
    let (key_id, key, hash) = ApiKeySecret::generate();
    let id = |id: uuid::Uuid| match backend {
        arbe_store::Backend::Sqlite => format!("X'{}'", id.simple()),
        arbe_store::Backend::Postgres => format!("'{id}'"),
    };
    let bytes = |b: &[u8]| match backend {
        arbe_store::Backend::Sqlite => format!("X'{}'", b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        arbe_store::Backend::Postgres => format!("'\\x{}'", b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
    };
    let at = "'2026-01-01T00:00:00Z'";
    execute_raw(
        &url,
        &format!(
            "INSERT INTO houses (id, name, created_at) VALUES ({h1}, 'one', {at}), ({h2}, 'two', {at});
             INSERT INTO members (id, house_id, name, role, created_at) VALUES
                 ({a1}, {h1}, 'ann', 'owner', {at}), ({a2}, {h2}, 'ann', 'writer', {at}), ({b}, {h1}, 'bob', 'reader', {at});
             INSERT INTO api_keys (id, member_id, house_id, label, secret_hash, created_at) VALUES
                 ({k}, {b}, {h1}, 'laptop', {hash}, {at});",
            h1 = id(h1.as_uuid()),
            h2 = id(h2.as_uuid()),
            a1 = id(ann1.as_uuid()),
            a2 = id(ann2.as_uuid()),
            b = id(bob.as_uuid()),
            k = id(key_id.as_uuid()),
            hash = bytes(&hash),
        ),
    )
    .await;
    let store = Store::connect(&StoreConfig::new(&url)).await.unwrap();
    // Every member is a user now, its membership keeps its id, role and house.
    let members = store.list_members(h1).await.unwrap();
    let summary: Vec<_> = members.iter().map(|m| (m.id, m.role, m.name.as_str().to_owned())).collect();
    let ann1_name = format!("ann-{}", &ann1.as_uuid().simple().to_string()[24..]);
    assert_eq!(summary, vec![(ann1, Role::Owner, ann1_name), (bob, Role::Reader, "bob".to_owned())]);
    assert_eq!(store.user_by_name("bob").await.unwrap().id.as_uuid(), bob.as_uuid());
    assert_eq!(store.list_users().await.unwrap().len(), 3, "two anns stay two users, with names made unique");
    assert_eq!(store.list_members(h2).await.unwrap()[0].role, Role::Writer);
    // The key acts as bob, in bob's house only.
    let actor = store.authenticate_in(key.expose(), h1).await.unwrap();
    assert_eq!((actor.member_id(), actor.role()), (bob, Role::Reader));
    assert_kind(store.authenticate_in(key.expose(), h2).await, ErrorKind::NotFound);
}

pub(crate) async fn a_user_in_two_houses_acts_in_each_with_that_role(t: TestStore) {
    let store = t.store;
    let a = fixture(&store, "a").await;
    let b = fixture(&store, "b").await;
    let user = store.create_user(&Name::parse("both").unwrap()).await.unwrap();
    store.add_member(a.house.id, user.id, Role::Owner).await.unwrap();
    store.add_member(b.house.id, user.id, Role::Reader).await.unwrap();
    assert_kind(store.add_member(b.house.id, user.id, Role::Writer).await, ErrorKind::Conflict);
    let (id, key, hash) = ApiKeySecret::generate();
    store.create_api_key(user.id, id, "one key", &hash).await.unwrap();
    let in_a = store.authenticate_in(key.expose(), a.house.id).await.unwrap();
    let in_b = store.authenticate_in(key.expose(), b.house.id).await.unwrap();
    assert_eq!((in_a.role(), in_a.house_id()), (Role::Owner, a.house.id));
    assert_eq!((in_b.role(), in_b.house_id()), (Role::Reader, b.house.id));
    assert_ne!(in_a.member_id(), in_b.member_id(), "authorship is per house");
    let houses: Vec<_> =
        store.memberships_of_user(user.id).await.unwrap().into_iter().map(|(h, m)| (h.id, m.role)).collect();
    assert_eq!(houses, vec![(a.house.id, Role::Owner), (b.house.id, Role::Reader)]);
}

pub(crate) async fn quotas_cap_sandboxes_and_concurrent_dispatches(t: TestStore) {
    use arbe_core::{QuotaKind, Quotas};
    let defaults = Quotas { sandboxes: Some(2), concurrent_dispatches: Some(1), workspace_bytes: None };
    let store = arbe_store::testkit::reopen(&t, |config| config.quotas = defaults).await;
    let fx = fixture(&store, "acme").await; // its fixture sandbox is the first of two
    assert_eq!(store.house_quotas(fx.house.id).await.unwrap(), defaults);
    store.create_sandbox(new_sandbox(&fx.house, "second")).await.unwrap();
    let over = store.create_sandbox(new_sandbox(&fx.house, "third")).await.unwrap_err();
    assert_eq!(over.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(
        over.to_string(),
        "quota sandboxes reached: the house may have at most 2 sandboxes that are not destroyed"
    );
    assert_kind(store.sandbox_by_name(fx.house.id, "third").await, ErrorKind::NotFound);
    // A destroyed sandbox frees its place; the operator can raise one house's cap.
    store.set_sandbox_state(fx.house.id, fx.sandbox.id, SandboxState::Destroyed, None).await.unwrap();
    store.create_sandbox(new_sandbox(&fx.house, "third")).await.unwrap();
    store.set_house_quotas(fx.house.id, Quotas { sandboxes: Some(10), ..Quotas::default() }).await.unwrap();
    store.create_sandbox(new_sandbox(&fx.house, "fourth")).await.unwrap();
    assert_eq!(store.house_quotas(fx.house.id).await.unwrap().get(QuotaKind::Sandboxes), Some(10));

    // One dispatch queued or running at once.
    let thread = thread_for(&store, &fx).await;
    store.append_and_enqueue(fx.house.id, thread.id, user_message(fx.owner.id, "one")).await.unwrap();
    let over = store.append_and_enqueue(fx.house.id, thread.id, user_message(fx.owner.id, "two")).await.unwrap_err();
    assert_eq!(over.kind(), ErrorKind::QuotaExceeded);
    assert!(over.to_string().starts_with("quota concurrent_dispatches reached"), "{over}");
    assert_eq!(store.entries(fx.house.id, thread.id, 0, 10).await.unwrap().len(), 2, "nothing written");
    let claim = store.claim_job("w", Duration::from_secs(30)).await.unwrap().unwrap();
    assert!(store.finish_job(&claim, JobState::Succeeded).await.unwrap());
    store.append_and_enqueue(fx.house.id, thread.id, user_message(fx.owner.id, "two")).await.unwrap();
}

pub(crate) async fn a_single_house_deployment_refuses_a_second_house(t: TestStore) {
    let store = arbe_store::testkit::reopen(&t, |config| config.single_house = true).await;
    let user = store.create_user(&Name::parse("solo").unwrap()).await.unwrap();
    store.create_house_with_owner(&Name::parse("home").unwrap(), user.id).await.unwrap();
    // Racing creators: none gets through, and the rule is named.
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..4 {
        let store = store.clone();
        attempts.spawn(async move { store.create_house(&Name::parse(&format!("second-{i}")).unwrap()).await });
    }
    for res in attempts.join_all().await {
        let err = assert_kind(res, ErrorKind::Conflict);
        assert!(err.to_string().contains("this deployment serves one house only"), "{err}");
        assert!(err.to_string().contains("ARBE_LOCAL_RUNTIME=trusted"), "{err}");
    }
    assert_kind(store.create_house_with_owner(&Name::parse("third").unwrap(), user.id).await, ErrorKind::Conflict);
    assert_eq!(store.count_houses().await.unwrap(), 1);
    // Without the setting, houses are created as usual.
    t.store.create_house(&Name::parse("second").unwrap()).await.unwrap();
}

pub(crate) async fn github_connections_and_the_audit_trail_belong_to_their_house(t: TestStore) {
    let a = fixture(&t.store, "alpha").await;
    let b = fixture(&t.store, "beta").await;
    let connection = |house: &House| arbe_core::GitHubConnection {
        house_id: house.id,
        installation_id: 7,
        account_login: "org".into(),
        github_login: "alice".into(),
        connected_by: None,
        connected_at: chrono::Utc::now(),
    };
    t.store.connect_github_installation(&connection(&a.house)).await.unwrap();
    // Connecting again refreshes the row rather than failing.
    let again = t
        .store
        .connect_github_installation(&arbe_core::GitHubConnection {
            github_login: "bob".into(),
            ..connection(&a.house)
        })
        .await
        .unwrap();
    assert_eq!(again.github_login, "bob");
    assert_eq!(t.store.list_github_connections(a.house.id).await.unwrap().len(), 1);
    assert_kind(t.store.github_connection(b.house.id, 7).await, ErrorKind::NotFound);
    assert_kind(t.store.disconnect_github_installation(b.house.id, 7).await, ErrorKind::NotFound);
    t.store.disconnect_github_installation(a.house.id, 7).await.unwrap();
    assert_kind(t.store.github_connection(a.house.id, 7).await, ErrorKind::NotFound);

    let by = arbe_store::AuditActor::Operator;
    t.store.record_audit(Some(a.house.id), None, by, arbe_core::AuditAction::SecretCreated, "A_KEY").await.unwrap();
    t.store.record_audit(Some(b.house.id), None, by, arbe_core::AuditAction::SecretCreated, "B_KEY").await.unwrap();
    // A user's own key events show in every house the user belongs to.
    t.store
        .record_audit(None, Some(a.owner.user_id), by, arbe_core::AuditAction::ApiKeyCreated, "key 1")
        .await
        .unwrap();
    let trail = t.store.list_audit(a.house.id, None, 10).await.unwrap();
    assert_eq!(trail.iter().map(|e| e.target.as_str()).collect::<Vec<_>>(), ["A_KEY", "key 1"]);
    assert_eq!(trail[0].actor_name, "operator");
    let theirs = t.store.list_audit(b.house.id, None, 10).await.unwrap();
    assert_eq!(theirs.iter().map(|e| e.target.as_str()).collect::<Vec<_>>(), ["B_KEY"]);
    // Deleting a house takes its trail with it; the append-only rule holds for the rest.
    assert!(t.tamper().execute("DELETE FROM audit_events").await.unwrap_err().contains("append-only"));
    t.tamper().execute("DELETE FROM houses WHERE name = 'beta'").await.unwrap();
    assert!(t.store.list_audit(b.house.id, None, 10).await.unwrap().is_empty());
    assert_eq!(t.store.list_audit(a.house.id, None, 10).await.unwrap().len(), 2);
}
