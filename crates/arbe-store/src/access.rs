//! Who is acting, as proofs only authentication can make, and the service over houses,
//! memberships, API keys and quotas.
//!
//! A [`Caller`] is a user whose API key was verified; an [`Actor`] is a caller in one house
//! through a membership there; an [`Admin`] presented the operator's admin token. Their fields
//! are private and their only constructors are in this module, so a method that takes
//! `&Actor` cannot be reached without authenticating. Every house-scoped service method in
//! arbe takes an `Actor` (never a bare `HouseId`), and a worker's plaintext reads take the
//! [`crate::Claim`] of the job it runs.
//!
//! API keys are `arbe_<id>_<secret>`: the id (a UUID in simple form) is not secret and finds
//! the row; the secret is 32 random bytes, stored only as its SHA-256 and compared in constant
//! time. No verified key is cached, so a revoked key fails at its next request.

use std::fmt;

use arbe_core::{
    Action, ApiKeyId, ApiKeyMeta, AuditAction, AuditEvent, Forbidden, House, HouseId, Member, MemberId, Name, Quotas,
    Role, SecretValue, User, UserId,
};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{AuditActor, Result, Store, StoreError};

const KEY_PREFIX: &str = "arbe_";
/// Bytes of randomness in a key's secret part and in an admin token.
const SECRET_BYTES: usize = 32;
/// How stale a key's `last_used_at` may get before a request writes it again.
const LAST_USED_GRAIN: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

fn random_secret() -> String {
    let mut bytes = zeroize::Zeroizing::new([0u8; SECRET_BYTES]);
    getrandom::fill(bytes.as_mut_slice()).expect("the operating system's random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_slice())
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A freshly made API key: its row, and the key itself, shown to its owner once.
#[derive(Clone, Debug)]
pub struct NewApiKey {
    /// The key's metadata.
    pub meta: ApiKeyMeta,
    /// `arbe_<id>_<secret>` (prints `[redacted]`).
    pub key: SecretValue,
}

/// Makes API keys and reads them back.
#[derive(Debug)]
pub struct ApiKeySecret;

impl ApiKeySecret {
    /// A new key: its id, the whole key text, and the hash of its secret part to store.
    pub fn generate() -> (ApiKeyId, SecretValue, [u8; 32]) {
        let id = ApiKeyId::new();
        let secret = zeroize::Zeroizing::new(random_secret());
        let hash = sha256(secret.as_bytes());
        let text = format!("{KEY_PREFIX}{}_{}", id.as_uuid().simple(), secret.as_str());
        (id, SecretValue::new(text).expect("a key is short and not empty"), hash)
    }

    /// The id and secret part of a presented key, if it has a key's shape.
    fn split(key: &str) -> Option<(ApiKeyId, &str)> {
        let rest = key.trim().strip_prefix(KEY_PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        if id.len() != 32 || secret.is_empty() {
            return None;
        }
        Some((ApiKeyId::parse(id).ok()?, secret))
    }
}

/// A user whose API key was verified just now.
#[derive(Clone, Debug)]
pub struct Caller {
    user: User,
    key: Option<ApiKeyId>,
}

impl Caller {
    /// The user.
    pub fn user(&self) -> &User {
        &self.user
    }

    /// The key that authenticated it (`None` when the admin acts as the user).
    pub fn key(&self) -> Option<ApiKeyId> {
        self.key
    }
}

/// A user acting in one house, with the role its membership there gives it. Only
/// [`Store::authenticate_in`], [`Store::actor`] and [`Store::admin_actor`] make one.
#[derive(Clone, Debug)]
pub struct Actor {
    caller: Caller,
    member: Member,
}

impl Actor {
    /// The house it acts in.
    pub fn house_id(&self) -> HouseId {
        self.member.house_id
    }

    /// Its membership there.
    pub fn member(&self) -> &Member {
        &self.member
    }

    /// Its membership's id (what entries, secrets and environments record as their author).
    pub fn member_id(&self) -> MemberId {
        self.member.id
    }

    /// Its role there.
    pub fn role(&self) -> Role {
        self.member.role
    }

    /// The user.
    pub fn user(&self) -> &User {
        &self.caller.user
    }

    /// The caller behind it.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// `Ok` when its role allows `action`.
    pub fn require(&self, action: Action) -> std::result::Result<(), Forbidden> {
        self.member.require(action)
    }
}

/// The operator, proven by the admin token.
#[derive(Clone, Copy, Debug)]
pub struct Admin(());

/// The operator's admin token, as the server holds it: only its hash stays in memory.
#[derive(Clone)]
pub struct AdminToken {
    hash: [u8; 32],
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken([redacted])")
    }
}

impl AdminToken {
    /// A fresh random token to store 0600 on first start (`~/.arbe/admin_token`).
    pub fn generate() -> SecretValue {
        SecretValue::new(format!("arbe_admin_{}", random_secret())).expect("a token is short and not empty")
    }

    /// The token the operator configured.
    pub fn new(token: &SecretValue) -> Self {
        Self { hash: sha256(token.expose().trim().as_bytes()) }
    }

    /// An [`Admin`] when `presented` is the token (compared in constant time).
    pub fn verify(&self, presented: &str) -> Result<Admin> {
        if bool::from(sha256(presented.trim().as_bytes()).ct_eq(&self.hash)) {
            Ok(Admin(()))
        } else {
            Err(StoreError::Unauthenticated)
        }
    }
}

impl Store {
    /// The user behind an API key, if the key is live and its secret matches. Every failure is
    /// the same [`StoreError::Unauthenticated`], so a caller learns nothing about which part
    /// was wrong. Nothing is cached: a revoked key fails at once.
    pub async fn authenticate(&self, key: &str) -> Result<Caller> {
        let (id, secret) = ApiKeySecret::split(key).ok_or(StoreError::Unauthenticated)?;
        let (meta, stored, user) = self.api_key_for_auth(id).await?.ok_or(StoreError::Unauthenticated)?;
        if !bool::from(sha256(secret.as_bytes()).as_slice().ct_eq(stored.as_slice())) {
            return Err(StoreError::Unauthenticated);
        }
        if meta.last_used_at.is_none_or(|at| crate::now() - at >= LAST_USED_GRAIN) {
            self.touch_api_key(id).await?;
        }
        Ok(Caller { user, key: Some(id) })
    }

    /// The caller acting in `house`; a house it is no member of does not exist for it
    /// (`NotFound`).
    pub async fn actor(&self, caller: &Caller, house: HouseId) -> Result<Actor> {
        let member = self.membership(house, caller.user.id).await.map_err(|err| match err {
            StoreError::NotFound { .. } => StoreError::NotFound { what: "house" },
            err => err,
        })?;
        Ok(Actor { caller: caller.clone(), member })
    }

    /// [`Store::authenticate`] then [`Store::actor`]: what every request of the API does.
    pub async fn authenticate_in(&self, key: &str, house: HouseId) -> Result<Actor> {
        let caller = self.authenticate(key).await?;
        self.actor(&caller, house).await
    }

    /// The operator acting as `user` (to create its first key, say).
    pub async fn admin_caller(&self, _: &Admin, user: UserId) -> Result<Caller> {
        Ok(Caller { user: self.user(user).await?, key: None })
    }

    /// The operator acting as `user` in `house` (an embedding service that trusts its own
    /// callers acts this way).
    pub async fn admin_actor(&self, admin: &Admin, user: UserId, house: HouseId) -> Result<Actor> {
        let caller = self.admin_caller(admin, user).await?;
        self.actor(&caller, house).await
    }
}

/// What [`Access::admin_bootstrap`] made: a house, its owner, and the owner's first key.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    /// The house.
    pub house: House,
    /// Its owner.
    pub user: User,
    /// The owner's membership.
    pub owner: Member,
    /// The owner's first API key (shown once).
    pub key: NewApiKey,
}

/// Houses, memberships, API keys and quotas, each call checked against its caller. Cheap to
/// clone.
#[derive(Clone, Debug)]
pub struct Access {
    store: Store,
}

impl Access {
    /// The service over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// See [`Store::authenticate`].
    pub async fn authenticate(&self, key: &str) -> Result<Caller> {
        self.store.authenticate(key).await
    }

    /// See [`Store::authenticate_in`].
    pub async fn authenticate_in(&self, key: &str, house: HouseId) -> Result<Actor> {
        self.store.authenticate_in(key, house).await
    }

    /// See [`Store::actor`].
    pub async fn actor(&self, caller: &Caller, house: HouseId) -> Result<Actor> {
        self.store.actor(caller, house).await
    }

    /// The houses the caller is a member of, with its membership in each.
    pub async fn houses(&self, caller: &Caller) -> Result<Vec<(House, Member)>> {
        self.store.memberships_of_user(caller.user.id).await
    }

    /// Creates a house with the caller as its owner.
    pub async fn create_house(&self, caller: &Caller, name: &Name) -> Result<(House, Member)> {
        let house = self.store.create_house_with_owner(name, caller.user.id).await?;
        tracing::info!(house = %house.0.id, user = %caller.user.id, "house created");
        Ok(house)
    }

    /// The actor's house.
    pub async fn house(&self, actor: &Actor) -> Result<House> {
        actor.require(Action::Read)?;
        self.store.house(actor.house_id()).await
    }

    /// The quotas in force in the actor's house.
    pub async fn quotas(&self, actor: &Actor) -> Result<Quotas> {
        actor.require(Action::Read)?;
        self.store.house_quotas(actor.house_id()).await
    }

    /// The house's members. Needs a reader.
    pub async fn members(&self, actor: &Actor) -> Result<Vec<Member>> {
        actor.require(Action::Read)?;
        self.store.list_members(actor.house_id()).await
    }

    /// One member of the house. Needs a reader.
    pub async fn member(&self, actor: &Actor, id: MemberId) -> Result<Member> {
        actor.require(Action::Read)?;
        self.store.member(actor.house_id(), id).await
    }

    /// Gives the user called `user` a membership with `role`. Needs an owner.
    pub async fn add_member(&self, actor: &Actor, user: &Name, role: Role) -> Result<Member> {
        actor.require(Action::ManageMembers)?;
        let user = self.store.user_by_name(user.as_str()).await?;
        let member = self.store.add_member(actor.house_id(), user.id, role).await?;
        tracing::info!(house = %actor.house_id(), member = %member.id, %role, "member added");
        let target = format!("{} as {role}", member.name);
        self.store
            .audit(Some(actor.house_id()), None, AuditActor::Member(actor), AuditAction::MemberAdded, &target)
            .await;
        Ok(member)
    }

    /// Changes a member's role; the house keeps at least one owner. Needs an owner.
    pub async fn set_role(&self, actor: &Actor, member: MemberId, role: Role) -> Result<Member> {
        actor.require(Action::ManageMembers)?;
        let member = self.store.set_member_role(actor.house_id(), member, role).await?;
        tracing::info!(house = %actor.house_id(), member = %member.id, %role, "member role changed");
        let target = format!("{} to {role}", member.name);
        let by = AuditActor::Member(actor);
        self.store.audit(Some(actor.house_id()), None, by, AuditAction::MemberRoleChanged, &target).await;
        Ok(member)
    }

    /// Ends a membership; the house keeps at least one owner. Needs an owner.
    pub async fn remove_member(&self, actor: &Actor, member: MemberId) -> Result<()> {
        actor.require(Action::ManageMembers)?;
        let name = self.store.member(actor.house_id(), member).await?.name;
        self.store.remove_member(actor.house_id(), member).await?;
        tracing::info!(house = %actor.house_id(), member = %member, "member removed");
        let by = AuditActor::Member(actor);
        self.store.audit(Some(actor.house_id()), None, by, AuditAction::MemberRemoved, name.as_str()).await;
        Ok(())
    }

    /// A new API key of the caller's own; the key is in the answer and nowhere else.
    pub async fn create_key(&self, caller: &Caller, label: &str) -> Result<NewApiKey> {
        self.make_key(caller.user.id, label, AuditActor::User(&caller.user)).await
    }

    /// The caller's keys, revoked ones included.
    pub async fn keys(&self, caller: &Caller) -> Result<Vec<ApiKeyMeta>> {
        self.store.list_api_keys(caller.user.id).await
    }

    /// Revokes one of the caller's keys.
    pub async fn revoke_key(&self, caller: &Caller, id: ApiKeyId) -> Result<()> {
        self.store.revoke_api_key(caller.user.id, id).await?;
        tracing::info!(user = %caller.user.id, key = %id, "api key revoked");
        let by = AuditActor::User(&caller.user);
        self.store.audit(None, Some(caller.user.id), by, AuditAction::ApiKeyRevoked, &format!("key {id}")).await;
        Ok(())
    }

    async fn make_key(&self, user: UserId, label: &str, by: AuditActor<'_>) -> Result<NewApiKey> {
        let (id, key, hash) = ApiKeySecret::generate();
        let meta = self.store.create_api_key(user, id, label, &hash).await?;
        tracing::info!(%user, key = %id, "api key created");
        self.store.audit(None, Some(user), by, AuditAction::ApiKeyCreated, &format!("key {id}")).await;
        Ok(NewApiKey { meta, key })
    }

    /// Every house (the operator's view).
    pub async fn admin_houses(&self, _: &Admin) -> Result<Vec<House>> {
        self.store.list_houses().await
    }

    /// Creates a house owned by the user called `owner`.
    pub async fn admin_create_house(&self, _: &Admin, name: &Name, owner: UserId) -> Result<(House, Member)> {
        let house = self.store.create_house_with_owner(name, owner).await?;
        tracing::info!(house = %house.0.id, "house created by the operator");
        Ok(house)
    }

    /// Every user (the operator's view).
    pub async fn admin_users(&self, _: &Admin) -> Result<Vec<User>> {
        self.store.list_users().await
    }

    /// Creates a user.
    pub async fn admin_create_user(&self, _: &Admin, name: &Name) -> Result<User> {
        self.store.create_user(name).await
    }

    /// Creates an API key for `user` (its first one, say).
    pub async fn admin_create_key(&self, _: &Admin, user: UserId, label: &str) -> Result<NewApiKey> {
        self.make_key(user, label, AuditActor::Operator).await
    }

    /// Creates a user called `user`, a house called `house` it owns, and its first API key: what
    /// `arbe up` does on its first start, and how an embedding service gets its first caller.
    pub async fn admin_bootstrap(&self, admin: &Admin, house: &Name, user: &Name, label: &str) -> Result<Bootstrap> {
        // One transaction: a taken house name leaves no stray user behind, and the other way round.
        let (house, user, owner) = self.store.create_house_with_new_owner(house, user).await?;
        let key = self.admin_create_key(admin, user.id, label).await?;
        tracing::info!(house = %house.id, user = %user.id, "house, owner and first key created");
        Ok(Bootstrap { house, user, owner, key })
    }

    /// Revokes any user's key.
    pub async fn admin_revoke_key(&self, _: &Admin, user: UserId, id: ApiKeyId) -> Result<()> {
        self.store.revoke_api_key(user, id).await?;
        let target = format!("key {id}");
        self.store.audit(None, Some(user), AuditActor::Operator, AuditAction::ApiKeyRevoked, &target).await;
        Ok(())
    }

    /// The house's audit trail, oldest first, after `after` (a `seq`), at most `limit` events.
    /// Needs an owner.
    pub async fn audit(&self, actor: &Actor, after: Option<i64>, limit: u32) -> Result<Vec<AuditEvent>> {
        actor.require(Action::ReadAudit)?;
        self.store.list_audit(actor.house_id(), after, limit).await
    }

    /// Sets a house's quota overrides (`None` fields take the operator's default).
    pub async fn admin_set_quotas(&self, _: &Admin, house: HouseId, quotas: Quotas) -> Result<Quotas> {
        self.store.set_house_quotas(house, quotas).await?;
        self.store.house_quotas(house).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_a_public_id_and_a_hashed_secret() {
        let (id, key, hash) = ApiKeySecret::generate();
        let text = key.expose();
        assert!(text.starts_with("arbe_"), "{text}");
        let (parsed, secret) = ApiKeySecret::split(text).unwrap();
        assert_eq!(parsed, id);
        assert_eq!(sha256(secret.as_bytes()), hash);
        assert_eq!(secret.len(), 43, "32 bytes, base64url");
        let (_, other, _) = ApiKeySecret::generate();
        assert_ne!(other.expose(), text);
        for bad in ["", "arbe_", "arbe_x_y", "sk-123", &text.replacen("arbe_", "arbx_", 1)] {
            assert!(ApiKeySecret::split(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn the_admin_token_verifies_only_itself() {
        let token = AdminToken::generate();
        let configured = AdminToken::new(&token);
        assert!(configured.verify(token.expose()).is_ok());
        assert!(configured.verify("arbe_admin_wrong").is_err());
        assert!(!format!("{configured:?}").contains(token.expose()));
    }
}
