//! Houses, users, memberships, API keys and per-house quotas: the rows behind who may act where.
//! The proofs built from them (`Caller`, `Actor`, `Admin`) live in `access`.

use arbe_core::{ApiKeyId, ApiKeyMeta, House, HouseId, Member, MemberId, Name, QuotaKind, Quotas, Role, User, UserId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Pool, Result, Store, StoreError, column, now, on};

#[derive(sqlx::FromRow)]
struct HouseRow {
    id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<HouseRow> for House {
    type Error = StoreError;
    fn try_from(row: HouseRow) -> Result<Self> {
        Ok(House {
            id: HouseId::from_uuid(row.id),
            name: column("houses", Name::parse(&row.name))?,
            created_at: row.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct QuotaRow {
    quota_sandboxes: Option<i64>,
    quota_concurrent_dispatches: Option<i64>,
    quota_workspace_bytes: Option<i64>,
}

impl From<QuotaRow> for Quotas {
    fn from(row: QuotaRow) -> Self {
        let cap = |v: Option<i64>| v.map(|v| v.max(0) as u64);
        Quotas {
            sandboxes: cap(row.quota_sandboxes),
            concurrent_dispatches: cap(row.quota_concurrent_dispatches),
            workspace_bytes: cap(row.quota_workspace_bytes),
        }
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(row: UserRow) -> Result<Self> {
        Ok(User {
            id: UserId::from_uuid(row.id),
            name: column("users", Name::parse(&row.name))?,
            created_at: row.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MemberRow {
    pub(crate) id: Uuid,
    pub(crate) house_id: Uuid,
    pub(crate) user_id: Uuid,
    pub(crate) name: String,
    pub(crate) role: String,
    pub(crate) created_at: DateTime<Utc>,
}

impl TryFrom<MemberRow> for Member {
    type Error = StoreError;
    fn try_from(row: MemberRow) -> Result<Self> {
        Ok(Member {
            id: MemberId::from_uuid(row.id),
            house_id: HouseId::from_uuid(row.house_id),
            user_id: UserId::from_uuid(row.user_id),
            name: column("users", Name::parse(&row.name))?,
            role: column("members", Role::parse(&row.role))?,
            created_at: row.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiKeyRow {
    pub(crate) id: Uuid,
    pub(crate) user_id: Uuid,
    pub(crate) label: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) last_used_at: Option<DateTime<Utc>>,
    pub(crate) revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRow> for ApiKeyMeta {
    fn from(row: ApiKeyRow) -> Self {
        ApiKeyMeta {
            id: ApiKeyId::from_uuid(row.id),
            user_id: UserId::from_uuid(row.user_id),
            label: row.label,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// Members with their user's name: `m` is members, `u` users.
macro_rules! member_select {
    () => {
        "SELECT m.id, m.house_id, m.user_id, u.name, m.role, m.created_at FROM members m JOIN users u ON u.id = m.user_id "
    };
}

macro_rules! api_key_columns {
    () => {
        "id, user_id, label, created_at, last_used_at, revoked_at"
    };
}

/// The longest API key label accepted.
pub const MAX_LABEL_CHARS: usize = 100;

fn check_label(label: &str) -> std::result::Result<(), arbe_core::InvalidInput> {
    if label.chars().count() > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
        return Err(arbe_core::InvalidInput::new("label", "must be at most 100 characters with no control characters"));
    }
    Ok(())
}

/// On PostgreSQL, takes the house's row lock until the transaction ends, so checks that count
/// a house's rows (quotas, the last owner) and the write they guard cannot interleave with
/// another transaction's. SQLite needs nothing: its single writer runs one transaction at a time.
macro_rules! lock_house {
    (postgres, $tx:expr, $house:expr) => {
        sqlx::query("SELECT id FROM houses WHERE id = $1 FOR UPDATE").bind($house.as_uuid()).execute($tx).await?
    };
    (sqlite, $tx:expr, $house:expr) => {{
        let _ = &$tx;
    }};
}
pub(crate) use lock_house;

/// On PostgreSQL, serialises house creation for the single-house rule (a transaction-scoped
/// advisory lock; the key is arbitrary but fixed). SQLite's single writer needs nothing.
macro_rules! single_house_lock {
    (postgres, $tx:expr) => {
        sqlx::query("SELECT pg_advisory_xact_lock(7305126)").execute($tx).await?
    };
    (sqlite, $tx:expr) => {{
        let _ = &$tx;
    }};
}

impl Store {
    /// Creates a house. Names are unique; with [`StoreConfig::single_house`] a second house is
    /// refused.
    ///
    /// [`StoreConfig::single_house`]: crate::StoreConfig::single_house
    pub async fn create_house(&self, name: &Name) -> Result<House> {
        self.insert_house(name, None, None).await.map(|(house, _)| house)
    }

    /// Creates a house and gives `owner` its first membership, as owner, in one transaction.
    pub async fn create_house_with_owner(&self, name: &Name, owner: UserId) -> Result<(House, Member)> {
        let (house, member) = self.insert_house(name, Some(owner), None).await?;
        let member = member.ok_or(StoreError::NotFound { what: "user" })?;
        Ok((house.clone(), self.member(house.id, member).await?))
    }

    /// Creates a user called `user` and a house called `name` it owns, in one transaction: a
    /// name taken on either side creates neither.
    pub async fn create_house_with_new_owner(&self, name: &Name, user: &Name) -> Result<(House, User, Member)> {
        let owner = User { id: UserId::new(), name: user.clone(), created_at: now() };
        let (house, member) = self.insert_house(name, Some(owner.id), Some(&owner)).await?;
        let member = member.ok_or(StoreError::NotFound { what: "user" })?;
        Ok((house.clone(), owner, self.member(house.id, member).await?))
    }

    async fn insert_house(
        &self,
        name: &Name,
        owner: Option<UserId>,
        new_owner: Option<&User>,
    ) -> Result<(House, Option<MemberId>)> {
        let house = House { id: HouseId::new(), name: name.clone(), created_at: now() };
        let member = owner.map(|_| MemberId::new());
        let single = self.single_house;
        macro_rules! body {
            ($backend:ident, $pool:expr) => {{
                let mut tx = $pool.begin().await?;
                if single {
                    // One creator at a time, so two cannot both see an empty table.
                    single_house_lock!($backend, &mut *tx);
                    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM houses").fetch_one(&mut *tx).await?;
                    if n > 0 {
                        return Err(StoreError::Conflict {
                            what: "house",
                            rule: "this deployment serves one house only: the operator turned on the unisolated \
                                   local runtime (ARBE_LOCAL_RUNTIME=trusted), which must not be shared between houses",
                        });
                    }
                }
                if let Some(user) = new_owner {
                    sqlx::query("INSERT INTO users (id, name, created_at) VALUES ($1, $2, $3)")
                        .bind(user.id.as_uuid())
                        .bind(user.name.as_str())
                        .bind(user.created_at)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::unique("user", "a user with this name already exists"))?;
                }
                sqlx::query("INSERT INTO houses (id, name, created_at) VALUES ($1, $2, $3)")
                    .bind(house.id.as_uuid())
                    .bind(house.name.as_str())
                    .bind(house.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::unique("house", "a house with this name already exists"))?;
                if let (Some(owner), Some(member)) = (owner, member) {
                    let n = sqlx::query(
                        "INSERT INTO members (id, house_id, user_id, role, created_at) \
                         SELECT $1, $2, id, 'owner', $4 FROM users WHERE id = $3",
                    )
                    .bind(member.as_uuid())
                    .bind(house.id.as_uuid())
                    .bind(owner.as_uuid())
                    .bind(house.created_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if n == 0 {
                        return Err(StoreError::NotFound { what: "user" });
                    }
                }
                tx.commit().await?;
            }};
        }
        match &self.write {
            crate::Pool::Sqlite(pool) => body!(sqlite, pool),
            crate::Pool::Postgres(pool) => body!(postgres, pool),
        }
        Ok((house, member))
    }

    /// A house by id.
    pub async fn house(&self, id: HouseId) -> Result<House> {
        let row: Option<HouseRow> = on!(&self.read, |pool| {
            sqlx::query_as("SELECT id, name, created_at FROM houses WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
        })?;
        row.ok_or(StoreError::NotFound { what: "house" })?.try_into()
    }

    /// A house by name.
    pub async fn house_by_name(&self, name: &str) -> Result<House> {
        let row: Option<HouseRow> = on!(&self.read, |pool| {
            sqlx::query_as("SELECT id, name, created_at FROM houses WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await
        })?;
        row.ok_or(StoreError::NotFound { what: "house" })?.try_into()
    }

    /// Every house, oldest first (for the operator).
    pub async fn list_houses(&self) -> Result<Vec<House>> {
        let rows: Vec<HouseRow> = on!(&self.read, |pool| {
            sqlx::query_as("SELECT id, name, created_at FROM houses ORDER BY id").fetch_all(pool).await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// How many houses exist.
    pub async fn count_houses(&self) -> Result<u64> {
        let n: i64 = on!(&self.read, |pool| sqlx::query_scalar("SELECT count(*) FROM houses").fetch_one(pool).await)?;
        Ok(n.max(0) as u64)
    }

    /// The operator's overrides of the default quotas for `house` (`None`: the default).
    pub async fn house_quota_overrides(&self, house: HouseId) -> Result<Quotas> {
        let row: Option<QuotaRow> = on!(&self.read, |pool| {
            sqlx::query_as(
                "SELECT quota_sandboxes, quota_concurrent_dispatches, quota_workspace_bytes FROM houses WHERE id = $1",
            )
            .bind(house.as_uuid())
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.ok_or(StoreError::NotFound { what: "house" })?.into())
    }

    /// The quotas in force for `house`: its overrides over the store's defaults.
    pub async fn house_quotas(&self, house: HouseId) -> Result<Quotas> {
        Ok(self.default_quotas.with(self.house_quota_overrides(house).await?))
    }

    /// Sets the operator's overrides for `house` (`None` fields take the default again).
    pub async fn set_house_quotas(&self, house: HouseId, quotas: Quotas) -> Result<()> {
        for (field, value) in [
            ("sandboxes", quotas.sandboxes),
            ("concurrent_dispatches", quotas.concurrent_dispatches),
            ("workspace_bytes", quotas.workspace_bytes),
        ] {
            if value.is_some_and(|v| i64::try_from(v).is_err()) {
                return Err(arbe_core::InvalidInput::new(field, "must be at most 9223372036854775807").into());
            }
        }
        let int = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        let n = on!(&self.write, |pool| {
            sqlx::query(
                "UPDATE houses SET quota_sandboxes = $2, quota_concurrent_dispatches = $3, quota_workspace_bytes = $4 \
                 WHERE id = $1",
            )
            .bind(house.as_uuid())
            .bind(int(quotas.sandboxes))
            .bind(int(quotas.concurrent_dispatches))
            .bind(int(quotas.workspace_bytes))
            .execute(pool)
            .await
            .map(|res| res.rows_affected())
        })?;
        if n == 0 { Err(StoreError::NotFound { what: "house" }) } else { Ok(()) }
    }

    /// The cap of `kind` for `house`, or `None`.
    pub(crate) async fn quota(&self, house: HouseId, kind: QuotaKind) -> Result<Option<u64>> {
        Ok(self.house_quotas(house).await?.get(kind))
    }

    /// Creates a user. Names are unique.
    pub async fn create_user(&self, name: &Name) -> Result<User> {
        let user = User { id: UserId::new(), name: name.clone(), created_at: now() };
        on!(&self.write, |pool| {
            sqlx::query("INSERT INTO users (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(user.id.as_uuid())
                .bind(user.name.as_str())
                .bind(user.created_at)
                .execute(pool)
                .await
                .map(|res| res.rows_affected())
        })
        .map_err(StoreError::unique("user", "a user with this name already exists"))?;
        Ok(user)
    }

    /// A user by id.
    pub async fn user(&self, id: UserId) -> Result<User> {
        let row: Option<UserRow> = on!(&self.read, |pool| {
            sqlx::query_as("SELECT id, name, created_at FROM users WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
        })?;
        row.ok_or(StoreError::NotFound { what: "user" })?.try_into()
    }

    /// A user by name.
    pub async fn user_by_name(&self, name: &str) -> Result<User> {
        let row: Option<UserRow> = on!(&self.read, |pool| {
            sqlx::query_as("SELECT id, name, created_at FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await
        })?;
        row.ok_or(StoreError::NotFound { what: "user" })?.try_into()
    }

    /// Every user, oldest first (for the operator).
    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows: Vec<UserRow> = on!(&self.read, |pool| {
            sqlx::query_as("SELECT id, name, created_at FROM users ORDER BY id").fetch_all(pool).await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Gives `user` a membership in `house` with `role`. A user has at most one per house.
    pub async fn add_member(&self, house: HouseId, user: UserId, role: Role) -> Result<Member> {
        let id = MemberId::new();
        let at = now();
        on!(&self.write, |pool| {
            sqlx::query(
                "INSERT INTO members (id, house_id, user_id, role, created_at) \
                 SELECT $1, h.id, u.id, $4, $5 FROM houses h, users u WHERE h.id = $2 AND u.id = $3",
            )
            .bind(id.as_uuid())
            .bind(house.as_uuid())
            .bind(user.as_uuid())
            .bind(role.as_str())
            .bind(at)
            .execute(pool)
            .await
            .map(|res| res.rows_affected())
        })
        .map_err(StoreError::unique("member", "the user is already a member of the house"))
        .and_then(|n| if n == 0 { Err(StoreError::NotFound { what: "user" }) } else { Ok(()) })?;
        self.member(house, id).await
    }

    /// A member of `house`.
    pub async fn member(&self, house: HouseId, id: MemberId) -> Result<Member> {
        let sql = concat!(member_select!(), "WHERE m.house_id = $1 AND m.id = $2");
        let row: Option<MemberRow> = on!(&self.read, |pool| {
            sqlx::query_as(sql).bind(house.as_uuid()).bind(id.as_uuid()).fetch_optional(pool).await
        })?;
        row.ok_or(StoreError::NotFound { what: "member" })?.try_into()
    }

    /// `user`'s membership in `house`.
    pub async fn membership(&self, house: HouseId, user: UserId) -> Result<Member> {
        let sql = concat!(member_select!(), "WHERE m.house_id = $1 AND m.user_id = $2");
        let row: Option<MemberRow> = on!(&self.read, |pool| {
            sqlx::query_as(sql).bind(house.as_uuid()).bind(user.as_uuid()).fetch_optional(pool).await
        })?;
        row.ok_or(StoreError::NotFound { what: "member" })?.try_into()
    }

    /// Every member of `house`, oldest first.
    pub async fn list_members(&self, house: HouseId) -> Result<Vec<Member>> {
        let sql = concat!(member_select!(), "WHERE m.house_id = $1 ORDER BY m.id");
        let rows: Vec<MemberRow> =
            on!(&self.read, |pool| sqlx::query_as(sql).bind(house.as_uuid()).fetch_all(pool).await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// The houses `user` is a member of, with the membership, oldest house first.
    pub async fn memberships_of_user(&self, user: UserId) -> Result<Vec<(House, Member)>> {
        let sql = concat!(member_select!(), "WHERE m.user_id = $1 ORDER BY m.house_id");
        let rows: Vec<MemberRow> =
            on!(&self.read, |pool| sqlx::query_as(sql).bind(user.as_uuid()).fetch_all(pool).await)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let member: Member = row.try_into()?;
            out.push((self.house(member.house_id).await?, member));
        }
        Ok(out)
    }

    /// Changes a member's role. A house always keeps an owner: demoting its last one is a
    /// conflict, checked in the same transaction as the change.
    pub async fn set_member_role(&self, house: HouseId, id: MemberId, role: Role) -> Result<Member> {
        macro_rules! change {
            ($pool:expr, $backend:ident) => {{
                let mut tx = $pool.begin().await?;
                lock_house!($backend, &mut *tx, house);
                let n = sqlx::query(
                    "UPDATE members SET role = $3 WHERE house_id = $1 AND id = $2 \
                     AND ($3 = 'owner' OR role <> 'owner' \
                          OR (SELECT count(*) FROM members o WHERE o.house_id = $1 AND o.role = 'owner') > 1)",
                )
                .bind(house.as_uuid())
                .bind(id.as_uuid())
                .bind(role.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                n
            }};
        }
        let n = match &self.write {
            Pool::Sqlite(pool) => change!(pool, sqlite),
            Pool::Postgres(pool) => change!(pool, postgres),
        };
        if n == 0 {
            // Tell a missing member from the last owner.
            self.member(house, id).await?;
            return Err(StoreError::Conflict { what: "member", rule: "a house must keep at least one owner" });
        }
        self.member(house, id).await
    }

    /// Ends a membership. A house always keeps an owner.
    pub async fn remove_member(&self, house: HouseId, id: MemberId) -> Result<()> {
        macro_rules! remove {
            ($pool:expr, $backend:ident) => {{
                let mut tx = $pool.begin().await?;
                lock_house!($backend, &mut *tx, house);
                let n = sqlx::query(
                    "DELETE FROM members WHERE house_id = $1 AND id = $2 \
                     AND (role <> 'owner' \
                          OR (SELECT count(*) FROM members o WHERE o.house_id = $1 AND o.role = 'owner') > 1)",
                )
                .bind(house.as_uuid())
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                n
            }};
        }
        let n = match &self.write {
            Pool::Sqlite(pool) => remove!(pool, sqlite),
            Pool::Postgres(pool) => remove!(pool, postgres),
        };
        if n == 0 {
            self.member(house, id).await?;
            return Err(StoreError::Conflict { what: "member", rule: "a house must keep at least one owner" });
        }
        Ok(())
    }

    /// Records a new API key of `user`. `secret_hash` is the SHA-256 of the key's secret part;
    /// the key itself is never stored. [`crate::ApiKeySecret::generate`] makes both.
    pub async fn create_api_key(
        &self,
        user: UserId,
        id: ApiKeyId,
        label: &str,
        secret_hash: &[u8],
    ) -> Result<ApiKeyMeta> {
        check_label(label)?;
        let key = ApiKeyMeta {
            id,
            user_id: user,
            label: label.to_owned(),
            created_at: now(),
            last_used_at: None,
            revoked_at: None,
        };
        on!(&self.write, |pool| {
            sqlx::query(
                "INSERT INTO api_keys (id, user_id, label, secret_hash, created_at) \
                 SELECT $1, id, $3, $4, $5 FROM users WHERE id = $2",
            )
            .bind(key.id.as_uuid())
            .bind(user.as_uuid())
            .bind(&key.label)
            .bind(secret_hash)
            .bind(key.created_at)
            .execute(pool)
            .await
            .map(|res| res.rows_affected())
        })
        .map_err(StoreError::unique("api key", "the key id is taken"))
        .and_then(|n| if n == 0 { Err(StoreError::NotFound { what: "user" }) } else { Ok(()) })?;
        Ok(key)
    }

    /// A live (not revoked) key, its stored hash and its user, for authentication.
    pub(crate) async fn api_key_for_auth(&self, id: ApiKeyId) -> Result<Option<(ApiKeyMeta, Vec<u8>, User)>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            secret_hash: Vec<u8>,
            user_name: String,
            user_created_at: DateTime<Utc>,
            #[sqlx(flatten)]
            key: ApiKeyRow,
        }
        let row: Option<Row> = on!(&self.read, |pool| {
            sqlx::query_as(
                "SELECT k.secret_hash, k.id, k.user_id, k.label, k.created_at, k.last_used_at, k.revoked_at, \
                        u.name AS user_name, u.created_at AS user_created_at \
                 FROM api_keys k JOIN users u ON u.id = k.user_id \
                 WHERE k.id = $1 AND k.revoked_at IS NULL",
            )
            .bind(id.as_uuid())
            .fetch_optional(pool)
            .await
        })?;
        let Some(row) = row else { return Ok(None) };
        let user: User =
            UserRow { id: row.key.user_id, name: row.user_name, created_at: row.user_created_at }.try_into()?;
        Ok(Some((row.key.into(), row.secret_hash, user)))
    }

    /// Notes that key `id` authenticated a request now.
    pub(crate) async fn touch_api_key(&self, id: ApiKeyId) -> Result<()> {
        on!(&self.write, |pool| {
            sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                .bind(id.as_uuid())
                .bind(now())
                .execute(pool)
                .await
                .map(|res| res.rows_affected())
        })?;
        Ok(())
    }

    /// The keys of `user`, including revoked ones, oldest first.
    pub async fn list_api_keys(&self, user: UserId) -> Result<Vec<ApiKeyMeta>> {
        let sql = concat!("SELECT ", api_key_columns!(), " FROM api_keys WHERE user_id = $1 ORDER BY id");
        let rows: Vec<ApiKeyRow> =
            on!(&self.read, |pool| sqlx::query_as(sql).bind(user.as_uuid()).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Revokes a key of `user`; it stops authenticating at the next request.
    pub async fn revoke_api_key(&self, user: UserId, id: ApiKeyId) -> Result<()> {
        let n = on!(&self.write, |pool| {
            sqlx::query("UPDATE api_keys SET revoked_at = $3 WHERE user_id = $1 AND id = $2 AND revoked_at IS NULL")
                .bind(user.as_uuid())
                .bind(id.as_uuid())
                .bind(now())
                .execute(pool)
                .await
                .map(|res| res.rows_affected())
        })?;
        if n == 0 { Err(StoreError::NotFound { what: "api key" }) } else { Ok(()) }
    }
}
