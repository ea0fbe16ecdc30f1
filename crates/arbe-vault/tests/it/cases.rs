//! The cases `both_backends!` runs on each backend.

use std::{
    io::Write,
    sync::{Arc, Mutex, OnceLock},
};

use arbe_core::testkit::assert_kind;
use arbe_core::{Audience, ErrorKind, House, HouseId, Role, SecretName, SecretValue};
use arbe_store::{
    Actor, Claim, Store,
    testkit::{self, TestStore},
};
use arbe_vault::{MasterKey, MasterKeys, ResolvedSecret, SetOptions, Vault};

async fn owner(store: &Store, house: &str) -> (House, Actor) {
    let fx = testkit::house(store, house).await;
    (fx.house, fx.owner)
}

async fn claim(store: &Store, house: HouseId) -> Claim {
    testkit::claim(store, house).await
}

fn name(s: &str) -> SecretName {
    SecretName::parse(s).unwrap()
}

fn value(s: &str) -> SecretValue {
    SecretValue::new(s.to_owned()).unwrap()
}

fn values(resolved: &[ResolvedSecret]) -> Vec<(String, String)> {
    resolved.iter().map(|r| (r.meta.name.to_string(), r.value.expose().to_owned())).collect()
}

fn vault(store: &Store, key: &MasterKey) -> Vault {
    Vault::new(store.clone(), MasterKeys::new(key.clone()))
}

pub(crate) async fn set_resolve_rotate_and_roll_back(t: TestStore) {
    let store = &t.store;
    let (house, owner) = owner(store, "acme").await;
    let master = MasterKey::generate();
    let vault = vault(store, &master);
    let key = name("OPENROUTER_API_KEY");
    let v1 = vault
        .set(&owner, &key, &value("sk-one-value"), SetOptions { shared: Some(true), ..Default::default() })
        .await
        .unwrap();
    assert_eq!((v1.version, v1.shared, v1.audience), (1, true, Audience::Environment));
    let v2 = vault.set(&owner, &key, &value("sk-two-value"), SetOptions::default()).await.unwrap();
    assert_eq!((v2.version, v2.shared), (2, true), "rotation keeps sharing unless told otherwise");
    assert!(v2.rotated_at.is_some());
    vault.set(&owner, &name("OTHER"), &value("other-value"), SetOptions::default()).await.unwrap();
    let resolved = vault.resolve(&claim(store, house.id).await, &[key.clone(), name("MISSING")]).await.unwrap();
    assert_eq!(values(&resolved), [("OPENROUTER_API_KEY".into(), "sk-two-value".into())]);
    assert_eq!(format!("{:?}", resolved[0]).matches("sk-two-value").count(), 0, "Debug must not show the value");

    let v3 = vault.rollback(&owner, &key).await.unwrap();
    assert_eq!(v3.version, 3);
    // A fresh vault (nothing cached) reads the same.
    let resolved =
        self::vault(store, &master).resolve(&claim(store, house.id).await, std::slice::from_ref(&key)).await.unwrap();
    assert_eq!(values(&resolved), [("OPENROUTER_API_KEY".into(), "sk-one-value".into())]);
    assert_eq!(vault.meta(&owner, &key).await.unwrap(), v3);
    assert_eq!(vault.list(&owner).await.unwrap().len(), 2);
    vault.delete(&owner, &key).await.unwrap();
    assert!(vault.resolve(&claim(store, house.id).await, &[key]).await.unwrap().is_empty());
}

pub(crate) async fn bad_value_names_the_secret_and_changes_nothing(t: TestStore) {
    let store = &t.store;
    let (house, owner) = owner(store, "acme").await;
    let vault = vault(store, &MasterKey::generate());
    // A value outside 1 byte to 64 KiB never becomes a `SecretValue`, so it never reaches the vault.
    for bad in [String::new(), "x".repeat(64 * 1024 + 1)] {
        let err = SecretValue::new(bad).unwrap_err();
        assert_eq!(err.to_string(), "invalid secret value: must be 1 byte to 64 KiB");
    }
    assert!(store.list_secrets(house.id).await.unwrap().is_empty());
    assert!(store.house_keys(house.id).await.unwrap().is_empty(), "not even a data key was created");
    assert_kind(vault.rollback(&owner, &name("API_KEY")).await, ErrorKind::NotFound);
    vault.set(&owner, &name("API_KEY"), &value("x-value-0"), SetOptions::default()).await.unwrap();
    let err = assert_kind(vault.rollback(&owner, &name("API_KEY")).await, ErrorKind::InvalidInput);
    assert_eq!(err.to_string(), "invalid secret API_KEY: has no previous version to roll back to");
}

pub(crate) async fn roles_decide_who_may_set_and_delete(t: TestStore) {
    let store = &t.store;
    let fx = testkit::house(store, "acme").await;
    let (house, owner, writer, reader) = (fx.house, fx.owner, fx.writer, fx.reader);
    assert_eq!((writer.role(), reader.role()), (Role::Writer, Role::Reader));
    let vault = vault(store, &MasterKey::generate());
    let err = assert_kind(
        vault.set(&reader, &name("K"), &value("v-value-0"), SetOptions::default()).await,
        ErrorKind::Forbidden,
    );
    assert_eq!(err.to_string(), "a reader may not set secrets (it takes writer)");
    assert!(store.list_secrets(house.id).await.unwrap().is_empty());
    let meta = vault.set(&writer, &name("K"), &value("v-value-0"), SetOptions::default()).await.unwrap();
    assert_eq!(meta.author_id, writer.member_id());
    assert_eq!(vault.meta(&reader, &name("K")).await.unwrap(), meta);
    assert_kind(vault.delete(&writer, &name("K")).await, ErrorKind::Forbidden);
    assert_kind(vault.rotate_house_key(&writer).await, ErrorKind::Forbidden);
    vault.delete(&owner, &name("K")).await.unwrap();
}

pub(crate) async fn flipped_bits_in_stored_ciphertext_or_nonce_are_rejected(t: TestStore) {
    let store = &t.store;
    let (house, owner) = owner(store, "acme").await;
    let key = MasterKey::generate();
    vault(store, &key).set(&owner, &name("TOKEN"), &value("ghp_canary"), SetOptions::default()).await.unwrap();
    let (_, sealed) = store.sealed_secret_version(house.id, &name("TOKEN"), 1).await.unwrap();
    let positions = |len: usize| [0, len / 2, len - 1];
    for byte in positions(sealed.ciphertext.len()) {
        let mut bad = sealed.ciphertext.clone();
        bad[byte] ^= 0x01;
        t.tamper().overwrite_secret_version(house.id, &name("TOKEN"), 1, &bad, &sealed.nonce).await;
        let err = assert_kind(
            vault(store, &key).resolve(&claim(store, house.id).await, &[name("TOKEN")]).await,
            ErrorKind::Internal,
        );
        assert_eq!(
            err.to_string(),
            "secret TOKEN (version 1) failed to decrypt: its ciphertext was altered or belongs to another row"
        );
    }
    for byte in positions(sealed.nonce.len()) {
        let mut bad = sealed.nonce.clone();
        bad[byte] ^= 0x80;
        t.tamper().overwrite_secret_version(house.id, &name("TOKEN"), 1, &sealed.ciphertext, &bad).await;
        assert_kind(
            vault(store, &key).resolve(&claim(store, house.id).await, &[name("TOKEN")]).await,
            ErrorKind::Internal,
        );
    }
    t.tamper().overwrite_secret_version(house.id, &name("TOKEN"), 1, &sealed.ciphertext, &sealed.nonce).await;
    let resolved = vault(store, &key).resolve(&claim(store, house.id).await, &[name("TOKEN")]).await.unwrap();
    assert_eq!(resolved[0].value.expose(), "ghp_canary");
}

pub(crate) async fn renamed_secret_fails_its_associated_data(t: TestStore) {
    let store = &t.store;
    let (house, owner) = owner(store, "acme").await;
    let vault = vault(store, &MasterKey::generate());
    vault.set(&owner, &name("PROD_KEY"), &value("secret-value"), SetOptions::default()).await.unwrap();
    t.tamper().rename_secret(house.id, "PROD_KEY", "DEV_KEY").await;
    assert_kind(vault.resolve(&claim(store, house.id).await, &[name("DEV_KEY")]).await, ErrorKind::Internal);
}

pub(crate) async fn ciphertext_swapped_between_rows_is_rejected(t: TestStore) {
    let store = &t.store;
    let (house, owner) = owner(store, "acme").await;
    let vault = vault(store, &MasterKey::generate());
    vault.set(&owner, &name("A"), &value("value-a-1"), SetOptions::default()).await.unwrap();
    vault.set(&owner, &name("B"), &value("value-b-1"), SetOptions::default()).await.unwrap();
    let (_, a) = store.sealed_secret_version(house.id, &name("A"), 1).await.unwrap();
    t.tamper().overwrite_secret_version(house.id, &name("B"), 1, &a.ciphertext, &a.nonce).await;
    let err = assert_kind(vault.resolve(&claim(store, house.id).await, &[name("B")]).await, ErrorKind::Internal);
    assert!(err.to_string().starts_with("secret B (version 1)"), "{err}");
    // The same bytes moved to another version of the same secret fail too.
    vault.set(&owner, &name("A"), &value("value-a2"), SetOptions::default()).await.unwrap();
    t.tamper().overwrite_secret_version(house.id, &name("A"), 2, &a.ciphertext, &a.nonce).await;
    assert_kind(vault.resolve(&claim(store, house.id).await, &[name("A")]).await, ErrorKind::Internal);
}

pub(crate) async fn ciphertext_swapped_between_houses_is_rejected(t: TestStore) {
    let store = &t.store;
    let (one, owner_one) = owner(store, "one").await;
    let (two, owner_two) = owner(store, "two").await;
    let key = MasterKey::generate();
    let vault = vault(store, &key);
    vault.set(&owner_one, &name("TOKEN"), &value("house-one-token"), SetOptions::default()).await.unwrap();
    vault.set(&owner_two, &name("TOKEN"), &value("house-two-token"), SetOptions::default()).await.unwrap();
    let (_, sealed_one) = store.sealed_secret_version(one.id, &name("TOKEN"), 1).await.unwrap();
    t.tamper().overwrite_secret_version(two.id, &name("TOKEN"), 1, &sealed_one.ciphertext, &sealed_one.nonce).await;
    assert_kind(vault.resolve(&claim(store, two.id).await, &[name("TOKEN")]).await, ErrorKind::Internal);
    // Moving house one's wrapped data key into house two fails to unwrap (its AAD names house one).
    let key_one = &store.house_keys(one.id).await.unwrap()[0];
    t.tamper().overwrite_house_key(two.id, 1, &key_one.wrapped_key, &key_one.nonce).await;
    let err = assert_kind(
        self::vault(store, &key).resolve(&claim(store, two.id).await, &[name("TOKEN")]).await,
        ErrorKind::Internal,
    );
    assert!(err.to_string().contains(&format!("data key version 1 of house {} failed to unwrap", two.id)), "{err}");
    // House one is untouched.
    let resolved = self::vault(store, &key).resolve(&claim(store, one.id).await, &[name("TOKEN")]).await.unwrap();
    assert_eq!(resolved[0].value.expose(), "house-one-token");
}

pub(crate) async fn wrapped_house_key_tampering_is_rejected(t: TestStore) {
    let store = &t.store;
    let (house, owner) = owner(store, "acme").await;
    let key = MasterKey::generate();
    vault(store, &key).set(&owner, &name("TOKEN"), &value("v-value-0"), SetOptions::default()).await.unwrap();
    let wrapped = store.house_keys(house.id).await.unwrap().remove(0);
    for byte in [0, wrapped.wrapped_key.len() / 2, wrapped.wrapped_key.len() - 1] {
        let mut bad = wrapped.wrapped_key.clone();
        bad[byte] ^= 0x10;
        t.tamper().overwrite_house_key(house.id, 1, &bad, &wrapped.nonce).await;
        assert_kind(
            vault(store, &key).resolve(&claim(store, house.id).await, &[name("TOKEN")]).await,
            ErrorKind::Internal,
        );
    }
    let mut bad_nonce = wrapped.nonce.clone();
    bad_nonce[0] ^= 1;
    t.tamper().overwrite_house_key(house.id, 1, &wrapped.wrapped_key, &bad_nonce).await;
    assert_kind(vault(store, &key).resolve(&claim(store, house.id).await, &[name("TOKEN")]).await, ErrorKind::Internal);
    // The wrong master key is named, not guessed at.
    t.tamper().overwrite_house_key(house.id, 1, &wrapped.wrapped_key, &wrapped.nonce).await;
    let other = MasterKey::generate();
    let err = assert_kind(
        vault(store, &other).resolve(&claim(store, house.id).await, &[name("TOKEN")]).await,
        ErrorKind::Misconfigured,
    );
    assert!(err.to_string().contains(key.id()), "{err}");
}

const CANARY: &str = "arbe-canary-7f3c9e1b5d";

pub(crate) async fn canary_is_absent_from_raw_database_bytes(t: TestStore) {
    let store = &t.store;
    let (house, owner) = owner(store, "acme").await;
    let key = MasterKey::generate();
    let vault = vault(store, &key);
    vault.set(&owner, &name("CANARY"), &value(CANARY), SetOptions::default()).await.unwrap();
    vault.set(&owner, &name("CANARY"), &value(&format!("{CANARY}-2")), SetOptions::default()).await.unwrap();
    vault.rotate_house_key(&owner).await.unwrap();
    assert_eq!(
        vault.resolve(&claim(store, house.id).await, &[name("CANARY")]).await.unwrap()[0].value.expose(),
        format!("{CANARY}-2")
    );
    let raw = match t.url.strip_prefix("sqlite://") {
        Some(path) => {
            // The database, its write-ahead log and shared memory: every byte on disk.
            let dir = std::path::Path::new(path).parent().unwrap();
            let mut raw = Vec::new();
            for file in std::fs::read_dir(dir).unwrap() {
                raw.extend(std::fs::read(file.unwrap().path()).unwrap());
            }
            raw
        }
        None => arbe_store::testkit::pg_dump(&t.url),
    };
    assert!(raw.len() > 1000, "the dump must hold the data ({} bytes)", raw.len());
    assert!(contains(&raw, b"CANARY"), "the secret's name is stored, so the search is looking at the right bytes");
    assert!(!contains(&raw, CANARY.as_bytes()), "the canary value must not appear in the raw bytes");
    assert!(!contains(&raw, key.to_base64().as_bytes()), "the master key must not appear in the raw bytes");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub(crate) async fn master_key_rotation_survives_a_mixed_state_and_finishes(t: TestStore) {
    let store = &t.store;
    let (a, owner_a) = owner(store, "a").await;
    let (b, owner_b) = owner(store, "b").await;
    let (old, new) = (MasterKey::generate(), MasterKey::generate());
    let old_process = vault(store, &old);
    old_process.set(&owner_a, &name("A"), &value("value-a-1"), SetOptions::default()).await.unwrap();
    let sealed_before = store.sealed_secrets(a.id, &[name("A")]).await.unwrap();

    let rotating = Vault::new(store.clone(), MasterKeys { current: new.clone(), previous: vec![old.clone()] });
    assert_eq!(rotating.rotate_master_key(&testkit::admin()).await.unwrap().rewritten, 1);
    // Secrets were not touched, only the wrapping of their data key.
    assert_eq!(store.sealed_secrets(a.id, &[name("A")]).await.unwrap(), sealed_before);
    assert_eq!(store.house_keys(a.id).await.unwrap()[0].kek_id, new.id());

    // A process still on the old key writes a new house meanwhile: the state is now mixed.
    old_process.set(&owner_b, &name("B"), &value("value-b-1"), SetOptions::default()).await.unwrap();
    assert_eq!(store.house_keys(b.id).await.unwrap()[0].kek_id, old.id());

    // With both keys, everything opens.
    let both = Vault::new(store.clone(), MasterKeys { current: new.clone(), previous: vec![old.clone()] });
    assert_eq!(
        values(&both.resolve(&claim(store, a.id).await, &[name("A")]).await.unwrap()),
        [("A".into(), "value-a-1".into())]
    );
    assert_eq!(
        values(&both.resolve(&claim(store, b.id).await, &[name("B")]).await.unwrap()),
        [("B".into(), "value-b-1".into())]
    );
    // With the new key alone, the straggler is named.
    let err = assert_kind(
        vault(store, &new).resolve(&claim(store, b.id).await, &[name("B")]).await,
        ErrorKind::Misconfigured,
    );
    assert!(err.to_string().contains(old.id()), "{err}");

    // Running the rotation again finishes it; a third run has nothing to do.
    assert_eq!(both.rotate_master_key(&testkit::admin()).await.unwrap().rewritten, 1);
    assert_eq!(both.rotate_master_key(&testkit::admin()).await.unwrap().rewritten, 0);
    let new_only = vault(store, &new);
    assert_eq!(
        values(&new_only.resolve(&claim(store, b.id).await, &[name("B")]).await.unwrap()),
        [("B".into(), "value-b-1".into())]
    );
    assert_eq!(
        values(&new_only.resolve(&claim(store, a.id).await, &[name("A")]).await.unwrap()),
        [("A".into(), "value-a-1".into())]
    );
}

pub(crate) async fn house_key_rotation_reseals_every_version(t: TestStore) {
    let store = &t.store;
    let (house, owner) = owner(store, "acme").await;
    let (other, other_owner) = self::owner(store, "other").await;
    let key = MasterKey::generate();
    let vault = vault(store, &key);
    vault.set(&owner, &name("X"), &value("x-value-1"), SetOptions::default()).await.unwrap();
    vault.set(&owner, &name("X"), &value("x-value-2"), SetOptions::default()).await.unwrap();
    vault.set(&owner, &name("Y"), &value("y-value-1"), SetOptions::default()).await.unwrap();
    vault.set(&other_owner, &name("X"), &value("other-house-value"), SetOptions::default()).await.unwrap();
    let before = store.sealed_secrets(house.id, &[name("X"), name("Y")]).await.unwrap();

    let report = vault.rotate_house_key(&owner).await.unwrap();
    assert_eq!((report.rewritten, report.retired), (3, 1), "X v1, X v2 and Y v1 resealed; key 1 retired");
    let keys: Vec<_> = store.house_keys(house.id).await.unwrap().iter().map(|k| k.version).collect();
    assert_eq!(keys, [2]);
    let after = store.sealed_secrets(house.id, &[name("X"), name("Y")]).await.unwrap();
    for ((_, b), (_, a)) in before.iter().zip(&after) {
        assert_eq!(a.key_version, 2);
        assert_ne!(a.ciphertext, b.ciphertext);
    }
    let fresh = self::vault(store, &key);
    assert_eq!(
        values(&fresh.resolve(&claim(store, house.id).await, &[name("X"), name("Y")]).await.unwrap()),
        [("X".into(), "x-value-2".into()), ("Y".into(), "y-value-1".into())]
    );
    fresh.rollback(&owner, &name("X")).await.unwrap();
    assert_eq!(
        fresh.resolve(&claim(store, house.id).await, &[name("X")]).await.unwrap()[0].value.expose(),
        "x-value-1"
    );
    // The other house still uses its own first key.
    assert_eq!(store.house_keys(other.id).await.unwrap()[0].version, 1);
    assert_eq!(
        fresh.resolve(&claim(store, other.id).await, &[name("X")]).await.unwrap()[0].value.expose(),
        "other-house-value"
    );
}

pub(crate) async fn concurrent_sets_each_get_their_own_version(t: TestStore) {
    let store = &t.store;
    let (house, owner) = owner(store, "acme").await;
    let key = MasterKey::generate();
    let mut tasks = Vec::new();
    for i in 0..6 {
        // Separate vaults stand for separate processes.
        let (vault, owner) = (vault(store, &key), owner.clone());
        tasks.push(tokio::spawn(async move {
            vault
                .set(&owner, &name("SHARED"), &value(&format!("value-v{i}")), SetOptions::default())
                .await
                .unwrap()
                .version
        }));
    }
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
    assert_eq!(store.house_keys(house.id).await.unwrap().len(), 1, "racing first sets agree on one data key");
    assert_eq!(vault(store, &key).resolve(&claim(store, house.id).await, &[name("SHARED")]).await.unwrap().len(), 1);
}

pub(crate) async fn canary_is_absent_from_trace_logs(t: TestStore) {
    let logs = captured_logs();
    let store = &t.store;
    let (house, owner) = owner(store, "acme").await;
    let (old, new) = (MasterKey::generate(), MasterKey::generate());
    let vault = vault(store, &old);
    vault.set(&owner, &name("CANARY"), &value(CANARY), SetOptions::default()).await.unwrap();
    vault.set(&owner, &name("CANARY"), &value(&format!("{CANARY}-2")), SetOptions::default()).await.unwrap();
    vault.resolve(&claim(store, house.id).await, &[name("CANARY")]).await.unwrap();
    vault.rollback(&owner, &name("CANARY")).await.unwrap();
    vault.rotate_house_key(&owner).await.unwrap();
    let rotating = Vault::new(store.clone(), MasterKeys { current: new.clone(), previous: vec![old.clone()] });
    rotating.rotate_master_key(&testkit::admin()).await.unwrap();
    // Failures too: a value over the limit that holds the canary, and a tampered row.
    let too_big = SecretValue::new(CANARY.repeat(64 * 1024 / CANARY.len() + 1)).unwrap_err();
    tracing::error!(err = %too_big, "logged the way a server would log it");
    let forbidden = testkit::member(store, &house, "acme-peeker", Role::Reader).await.0;
    let err = rotating.set(&forbidden, &name("CANARY"), &value(CANARY), SetOptions::default()).await.unwrap_err();
    tracing::error!(%err, debug = ?err, "logged the way a server would log it");
    let (_, sealed) = store.sealed_secret_version(house.id, &name("CANARY"), 3).await.unwrap();
    let mut bad = sealed.ciphertext.clone();
    bad[0] ^= 1;
    t.tamper().overwrite_secret_version(house.id, &name("CANARY"), 3, &bad, &sealed.nonce).await;
    let err = self::vault(store, &new).resolve(&claim(store, house.id).await, &[name("CANARY")]).await.unwrap_err();
    tracing::error!(%err, debug = ?err, "logged the way a server would log it");

    let logs = logs.lock().unwrap();
    let text = String::from_utf8_lossy(&logs);
    assert!(text.contains("master key rotation finished"), "the capture must see the vault's own events");
    assert!(text.contains("house key rotation finished"));
    assert!(!text.contains(CANARY), "the canary value must never be logged");
    assert!(!text.contains(new.to_base64().as_str()) && !text.contains(old.to_base64().as_str()));
}

/// Everything every test in this process logged, at trace level.
fn captured_logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || SharedWriter(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("only this test installs a subscriber");
        logs
    })
}

struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) async fn sets_racing_house_key_rotations_all_stay_readable(t: TestStore) {
    // M5: a `set` seals under the house's data key, then commits; a rotation in between must
    // not retire that key under it. Every value written must open afterwards, in a fresh vault.
    let store = &t.store;
    let (house, owner) = owner(store, "acme").await;
    let key = MasterKey::generate();
    vault(store, &key).set(&owner, &name("S0"), &value("initial-value"), SetOptions::default()).await.unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rotations = {
        let (vault, owner, done) = (vault(store, &key), owner.clone(), done.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                vault.rotate_house_key(&owner).await.unwrap();
                n += 1;
            }
            n
        })
    };
    let mut sets = Vec::new();
    for writer in 0..4 {
        let (vault, owner) = (vault(store, &key), owner.clone());
        sets.push(tokio::spawn(async move {
            for i in 0..25 {
                let secret = name(&format!("S{}", writer * 100 + i));
                vault
                    .set(&owner, &secret, &value(&format!("value-{writer}-{i}")), SetOptions::default())
                    .await
                    .unwrap();
            }
        }));
    }
    for set in sets {
        set.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let rotated = rotations.await.unwrap();
    assert!(rotated >= 1, "the rotation ran while the sets did");
    let fresh = vault(store, &key);
    let names: Vec<SecretName> =
        (0..4).flat_map(|w| (0..25).map(move |i| name(&format!("S{}", w * 100 + i)))).collect();
    let resolved = fresh.resolve(&claim(store, house.id).await, &names).await.unwrap();
    assert_eq!(resolved.len(), 100, "every value opens");
    for r in &resolved {
        let n: usize = r.meta.name.as_str()[1..].parse().unwrap();
        assert_eq!(r.value.expose(), format!("value-{}-{}", n / 100, n % 100));
    }
}

pub(crate) async fn environment_values_too_short_to_redact_are_refused(t: TestStore) {
    let store = &t.store;
    let (house, owner) = owner(store, "acme").await;
    let vault = vault(store, &MasterKey::generate());
    let err = vault.set(&owner, &name("PIN"), &value("1234567"), SetOptions::default()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid secret value: must be 8 to 16,384 characters (output redaction cannot hide a shorter one)"
    );
    assert_kind(store.secret_meta(house.id, &name("PIN")).await, ErrorKind::NotFound);
    vault.set(&owner, &name("PIN"), &value("12345678"), SetOptions::default()).await.unwrap();
    // The rule is the same for every audience, so rotating without naming one cannot dodge it.
    let capability = SetOptions { audience: Some(Audience::Capability), ..SetOptions::default() };
    assert_kind(vault.set(&owner, &name("SHORT_KEY"), &value("k"), capability).await, ErrorKind::InvalidInput);
    // Characters are counted, not bytes: 16,384 four-byte characters fit, one more does not.
    vault.set(&owner, &name("WIDE"), &value(&"🔑".repeat(16 * 1024)), SetOptions::default()).await.unwrap();
    let err = vault.set(&owner, &name("WIDE"), &value(&"k".repeat(16 * 1024 + 1)), SetOptions::default()).await;
    assert_kind(err, ErrorKind::InvalidInput);
}
