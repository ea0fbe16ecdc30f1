//! The vault: house secrets sealed under per-house data keys, which are stored only wrapped by
//! the master key.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use arbe_core::{
    Action, Audience, AuditAction, HouseId, InvalidInput, PrivateSecret, Role, SecretMeta, SecretName, SecretValue,
};
use arbe_store::{Actor, Admin, AuditActor, Claim, NewSecretVersion, SealedSecret, Store, StoreError, WrappedHouseKey};
use zeroize::Zeroizing;

use crate::{
    MasterKey, MasterKeys, Result, VaultError,
    aead::{Cipher, KEY_LEN, generate_key},
};

/// How `set` treats audience and sharing. `None` keeps what a rotated secret had (and means
/// `environment` and not shared for a new one).
#[derive(Clone, Copy, Debug, Default)]
pub struct SetOptions {
    /// Who may use the value.
    pub audience: Option<Audience>,
    /// Usable by every agent in the house.
    pub shared: Option<bool>,
}

/// A secret resolved for a dispatch: its metadata and its value.
#[derive(Clone, Debug)]
pub struct ResolvedSecret {
    /// Everything but the value.
    pub meta: SecretMeta,
    /// The value (prints `[redacted]`).
    pub value: SecretValue,
}

/// What a key rotation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// Data keys rewrapped (master-key rotation) or secret versions re-encrypted (house-key
    /// rotation).
    pub rewritten: u64,
    /// Old data keys deleted (house-key rotation).
    pub retired: u64,
}

/// The longest secret value [`Vault::set`] takes, in characters (at most 64 KiB of UTF-8).
pub const MAX_SECRET_CHARS: usize = 16 * 1024;

/// The secret vault. Cheap to clone; clones share the data-key cache.
#[derive(Clone, Debug)]
pub struct Vault {
    store: Store,
    keys: Arc<MasterKeys>,
    /// Unwrapped data keys by (house, version). A version's key material never changes, so
    /// entries never go stale; a rotation only adds versions.
    deks: Arc<Mutex<HashMap<(HouseId, i64), Cipher>>>,
}

/// Rewraps at most this many data keys per store round trip during a master-key rotation.
const REWRAP_BATCH: u32 = 100;
/// Attempts at a `set` that races another writer of the same secret.
const SET_ATTEMPTS: usize = 32;

/// Whether `actor` may set a new value of the existing secret `meta` with `options`: a
/// non-shared secret only by its author (an owner deletes it instead); changing whether a shared
/// secret is shared, or its audience, only by its author or an owner.
fn may_change(actor: &Actor, meta: &SecretMeta, options: SetOptions) -> Result<()> {
    if !meta.usable_by(actor.member_id()) {
        return Err(PrivateSecret { name: meta.name.clone() }.into());
    }
    let reshapes = options.shared.is_some_and(|shared| shared != meta.shared)
        || options.audience.is_some_and(|audience| audience != meta.audience);
    if reshapes && meta.author_id != actor.member_id() && actor.role() != Role::Owner {
        return Err(InvalidInput::new(
            format!("secret {}", meta.name),
            "may change its sharing or audience only by its author or an owner",
        )
        .into());
    }
    Ok(())
}

/// The associated data of a secret: house, version and name, so a ciphertext copied to another
/// row or house fails to open. Fixed-size fields first, so the encoding is unambiguous.
fn secret_aad(house: HouseId, version: i64, name: &SecretName) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + 16 + 8 + name.as_str().len());
    aad.extend_from_slice(b"arbe.secret.v1\0\0");
    aad.extend_from_slice(house.as_uuid().as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad.extend_from_slice(name.as_str().as_bytes());
    aad
}

/// The associated data of a wrapped data key: house and version.
fn house_key_aad(house: HouseId, version: i64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + 16 + 8);
    aad.extend_from_slice(b"arbe.house-key.1");
    aad.extend_from_slice(house.as_uuid().as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

impl Vault {
    /// A vault over `store` with the given master keys.
    pub fn new(store: Store, keys: MasterKeys) -> Self {
        Self { store, keys: Arc::new(keys), deks: Arc::default() }
    }

    /// Creates a secret, or rotates it into a new version when it exists (the previous version
    /// is kept for [`Vault::rollback`]). Needs a writer. A bad value changes nothing.
    pub async fn set(
        &self,
        actor: &Actor,
        name: &SecretName,
        value: &SecretValue,
        options: SetOptions,
    ) -> Result<SecretMeta> {
        actor.require(Action::SetSecret)?;
        let house = actor.house_id();
        for _ in 0..SET_ATTEMPTS {
            let current = match self.store.secret_meta(house, name).await {
                Ok(meta) => Some(meta),
                Err(StoreError::NotFound { .. }) => None,
                Err(err) => return Err(err.into()),
            };
            if let Some(meta) = &current {
                may_change(actor, meta, options)?;
            }
            let version = current.as_ref().map_or(1, |meta| meta.version + 1);
            let audience = options.audience.or(current.as_ref().map(|m| m.audience)).unwrap_or_default();
            // Counted in characters, as the API's schema counts them: 8 characters are at least
            // the 8 bytes redaction needs, 16,384 at most the 64 KiB a value may hold. Every
            // audience, so a rotation that keeps the audience never changes the rule.
            let chars = value.expose().chars().count();
            if !(SecretValue::MIN_REDACTED_BYTES..=MAX_SECRET_CHARS).contains(&chars) {
                return Err(InvalidInput::new(
                    "secret value",
                    "must be 8 to 16,384 characters (output redaction cannot hide a shorter one)",
                )
                .into());
            }
            let sealed = match self.seal(house, name, version, value.expose().as_bytes()).await {
                Ok(sealed) => sealed,
                // A house-key rotation retired the newest key between listing and reading it.
                Err(VaultError::MissingHouseKey { .. }) => continue,
                Err(err) => return Err(err),
            };
            let new = NewSecretVersion {
                house_id: house,
                name: name.clone(),
                audience,
                shared: options.shared.or(current.as_ref().map(|m| m.shared)).unwrap_or(false),
                author_id: current.as_ref().map_or(actor.member_id(), |m| m.author_id),
                sealed,
            };
            match self.store.put_secret_version(&new).await {
                Ok(meta) => {
                    let action =
                        if current.is_some() { AuditAction::SecretRotated } else { AuditAction::SecretCreated };
                    self.store.audit(Some(house), None, AuditActor::Member(actor), action, name.as_str()).await;
                    return Ok(meta);
                }
                // Another writer got there first: read again and seal for the next version.
                Err(StoreError::Conflict { .. }) => continue,
                // A house-key rotation retired the key this was sealed under: seal again under
                // the newest.
                Err(StoreError::NotFound { what: "house key" }) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(StoreError::Conflict { what: "secret", rule: "it is being changed by others; try again" }.into())
    }

    /// Makes the previous version's value current again, as a new version. Needs a writer.
    pub async fn rollback(&self, actor: &Actor, name: &SecretName) -> Result<SecretMeta> {
        actor.require(Action::SetSecret)?;
        let house = actor.house_id();
        let meta = self.store.secret_meta(house, name).await?;
        may_change(actor, &meta, SetOptions::default())?;
        if meta.version < 2 {
            return Err(InvalidInput::new(format!("secret {name}"), "has no previous version to roll back to").into());
        }
        let (_, previous) = self.store.sealed_secret_version(house, name, meta.version - 1).await?;
        let value = self.open(house, name, &previous).await?;
        let new = NewSecretVersion {
            house_id: house,
            name: name.clone(),
            audience: meta.audience,
            shared: meta.shared,
            author_id: meta.author_id,
            sealed: self.seal(house, name, meta.version + 1, &value).await?,
        };
        let meta = self.store.put_secret_version(&new).await?;
        let by = AuditActor::Member(actor);
        self.store.audit(Some(house), None, by, AuditAction::SecretRolledBack, name.as_str()).await;
        Ok(meta)
    }

    /// A secret's metadata (never its value).
    pub async fn meta(&self, actor: &Actor, name: &SecretName) -> Result<SecretMeta> {
        actor.require(Action::Read)?;
        Ok(self.store.secret_meta(actor.house_id(), name).await?)
    }

    /// Every secret's metadata in the actor's house.
    pub async fn list(&self, actor: &Actor) -> Result<Vec<SecretMeta>> {
        actor.require(Action::Read)?;
        Ok(self.store.list_secrets(actor.house_id()).await?)
    }

    /// Deletes a secret and all of its versions. Needs an owner.
    pub async fn delete(&self, actor: &Actor, name: &SecretName) -> Result<()> {
        actor.require(Action::DeleteSecret)?;
        self.store.delete_secret(actor.house_id(), name).await?;
        let by = AuditActor::Member(actor);
        self.store.audit(Some(actor.house_id()), None, by, AuditAction::SecretDeleted, name.as_str()).await;
        Ok(())
    }

    /// The current values of the named secrets of the claimed job's house that exist, for its
    /// dispatch. Only a worker holding the job's [`Claim`] can ask, so no request handler can
    /// reach a value. Names with no secret are absent from the answer; deciding what that means
    /// is the caller's job.
    pub async fn resolve(&self, claim: &Claim, names: &[SecretName]) -> Result<Vec<ResolvedSecret>> {
        let house = claim.house_id();
        let sealed = self.store.sealed_secrets(house, names).await?;
        let mut resolved = Vec::with_capacity(sealed.len());
        for (meta, sealed) in sealed {
            let bytes = self.open(house, &meta.name, &sealed).await?;
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| VaultError::SecretTampered { name: meta.name.clone(), version: sealed.version })?;
            let value = SecretValue::new(text)
                .map_err(|_| VaultError::SecretTampered { name: meta.name.clone(), version: sealed.version })?;
            resolved.push(ResolvedSecret { meta, value });
        }
        Ok(resolved)
    }

    /// Rewraps every data key not yet wrapped by the current master key, leaving secrets alone.
    /// Safe to stop at any point and to run again: each key is rewrapped in its own
    /// compare-and-set, and until all are done every key opens with one of the configured keys.
    pub async fn rotate_master_key(&self, _: &Admin) -> Result<RotationReport> {
        let current = &self.keys.current;
        let mut report = RotationReport::default();
        loop {
            let batch = self.store.house_keys_not_wrapped_by(current.id(), REWRAP_BATCH).await?;
            if batch.is_empty() {
                break;
            }
            for wrapped in batch {
                let dek = self.unwrap_house_key(&wrapped)?;
                let aad = house_key_aad(wrapped.house_id, wrapped.version);
                let (nonce, rewrapped) = current.cipher().seal(&aad, dek.as_slice());
                if self
                    .store
                    .rewrap_house_key(
                        wrapped.house_id,
                        wrapped.version,
                        &wrapped.kek_id,
                        &rewrapped,
                        &nonce,
                        current.id(),
                    )
                    .await?
                {
                    report.rewritten += 1;
                }
            }
        }
        tracing::info!(rewrapped = report.rewritten, master_key_id = current.id(), "master key rotation finished");
        Ok(report)
    }

    /// Gives the actor's house a new data key, re-encrypts every stored secret version under it,
    /// and deletes the old keys once nothing uses them. Needs an owner. Safe to stop and run
    /// again: each version moves in its own compare-and-set and records which key sealed it.
    pub async fn rotate_house_key(&self, actor: &Actor) -> Result<RotationReport> {
        actor.require(Action::RotateKeys)?;
        let house = actor.house_id();
        let keys = self.store.house_keys(house).await?;
        let next = keys.last().map_or(1, |k| k.version + 1);
        let new_version = self.create_house_key(house, next).await?;
        let mut report = RotationReport::default();
        for old in keys.iter().filter(|k| k.version < new_version) {
            for stored in self.store.sealed_versions_under_key(house, old.version).await? {
                let value = self.open(house, &stored.name, &stored.sealed).await?;
                let mut resealed = self.seal(house, &stored.name, stored.sealed.version, &value).await?;
                resealed.version = stored.sealed.version;
                if self.store.reseal_secret_version(stored.secret_id, old.version, &resealed).await? {
                    report.rewritten += 1;
                }
            }
            if self.store.delete_unused_house_key(house, old.version).await? {
                report.retired += 1;
                self.deks.lock().expect("dek cache lock").remove(&(house, old.version));
            }
        }
        tracing::info!(%house, key_version = new_version, resealed = report.rewritten, retired = report.retired, "house key rotation finished");
        let target = format!("data key version {new_version}");
        self.store.audit(Some(house), None, AuditActor::Member(actor), AuditAction::HouseKeyRotated, &target).await;
        Ok(report)
    }

    /// Seals `plaintext` as `version` of secret `name` under the house's newest data key.
    async fn seal(&self, house: HouseId, name: &SecretName, version: i64, plaintext: &[u8]) -> Result<SealedSecret> {
        let (key_version, cipher) = self.active_house_key(house).await?;
        let (nonce, ciphertext) = cipher.seal(&secret_aad(house, version, name), plaintext);
        Ok(SealedSecret { version, ciphertext, nonce: nonce.to_vec(), key_version })
    }

    async fn open(&self, house: HouseId, name: &SecretName, sealed: &SealedSecret) -> Result<Zeroizing<Vec<u8>>> {
        let cipher = self.house_key(house, sealed.key_version).await?;
        cipher
            .open(&sealed.nonce, &secret_aad(house, sealed.version, name), &sealed.ciphertext)
            .map_err(|_| VaultError::SecretTampered { name: name.clone(), version: sealed.version })
    }

    /// The house's newest data key, created on first use.
    async fn active_house_key(&self, house: HouseId) -> Result<(i64, Cipher)> {
        let keys = self.store.house_keys(house).await?;
        let version = match keys.last() {
            Some(newest) => newest.version,
            None => self.create_house_key(house, 1).await?,
        };
        Ok((version, self.house_key(house, version).await?))
    }

    /// Stores a new data key as `version`; if another process stored that version first, uses
    /// theirs. Returns the version.
    async fn create_house_key(&self, house: HouseId, version: i64) -> Result<i64> {
        let dek = generate_key();
        let current = &self.keys.current;
        let (nonce, wrapped) = current.cipher().seal(&house_key_aad(house, version), dek.as_slice());
        match self.store.insert_house_key(house, version, &wrapped, &nonce, current.id()).await {
            Ok(_) => {
                tracing::debug!(%house, key_version = version, "created a house data key");
                self.deks.lock().expect("dek cache lock").insert((house, version), Cipher::new(&dek));
                Ok(version)
            }
            Err(StoreError::Conflict { .. }) => Ok(version),
            Err(err) => Err(err.into()),
        }
    }

    /// Data key `version` of `house`, unwrapped (cached after the first time).
    async fn house_key(&self, house: HouseId, version: i64) -> Result<Cipher> {
        if let Some(cipher) = self.deks.lock().expect("dek cache lock").get(&(house, version)) {
            return Ok(cipher.clone());
        }
        let keys = self.store.house_keys(house).await?;
        let wrapped =
            keys.iter().find(|k| k.version == version).ok_or(VaultError::MissingHouseKey { house, version })?;
        let cipher = Cipher::new(&*self.unwrap_house_key(wrapped)?);
        self.deks.lock().expect("dek cache lock").insert((house, version), cipher.clone());
        Ok(cipher)
    }

    fn unwrap_house_key(&self, wrapped: &WrappedHouseKey) -> Result<Zeroizing<[u8; KEY_LEN]>> {
        let kek: &MasterKey = self
            .keys
            .by_id(&wrapped.kek_id)
            .ok_or_else(|| VaultError::UnknownMasterKey { kek_id: wrapped.kek_id.clone() })?;
        let tampered = || VaultError::HouseKeyTampered { house: wrapped.house_id, version: wrapped.version };
        let dek = kek
            .cipher()
            .open(&wrapped.nonce, &house_key_aad(wrapped.house_id, wrapped.version), &wrapped.wrapped_key)
            .map_err(|_| tampered())?;
        let dek: [u8; KEY_LEN] = dek.as_slice().try_into().map_err(|_| tampered())?;
        Ok(Zeroizing::new(dek))
    }
}
