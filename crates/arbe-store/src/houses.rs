//! Houses, members and API keys.

use arbe_core::{ApiKeyId, ApiKeyMeta, House, HouseId, Member, MemberId, Name, Role};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Result, Store, StoreError, column, now, on};

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
struct MemberRow {
    id: Uuid,
    house_id: Uuid,
    name: String,
    role: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<MemberRow> for Member {
    type Error = StoreError;
    fn try_from(row: MemberRow) -> Result<Self> {
        Ok(Member {
            id: MemberId::from_uuid(row.id),
            house_id: HouseId::from_uuid(row.house_id),
            name: column("members", Name::parse(&row.name))?,
            role: column("members", Role::parse(&row.role))?,
            created_at: row.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: Uuid,
    member_id: Uuid,
    house_id: Uuid,
    label: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRow> for ApiKeyMeta {
    fn from(row: ApiKeyRow) -> Self {
        ApiKeyMeta {
            id: ApiKeyId::from_uuid(row.id),
            member_id: MemberId::from_uuid(row.member_id),
            house_id: HouseId::from_uuid(row.house_id),
            label: row.label,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ApiKeyAuthRow {
    secret_hash: Vec<u8>,
    member_name: String,
    member_role: String,
    member_created_at: DateTime<Utc>,
    #[sqlx(flatten)]
    key: ApiKeyRow,
}

macro_rules! member_columns {
    () => {
        "id, house_id, name, role, created_at"
    };
}

macro_rules! api_key_columns {
    () => {
        "id, member_id, house_id, label, created_at, revoked_at"
    };
}

impl Store {
    /// Creates a house. Names are unique.
    pub async fn create_house(&self, name: &Name) -> Result<House> {
        let house = House { id: HouseId::new(), name: name.clone(), created_at: now() };
        on!(&self.write, |pool| {
            sqlx::query("INSERT INTO houses (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(house.id.as_uuid())
                .bind(house.name.as_str())
                .bind(house.created_at)
                .execute(pool)
                .await
                .map(|res| res.rows_affected())
        })
        .map_err(StoreError::unique("house", "a house with this name already exists"))?;
        Ok(house)
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

    /// Every house, oldest first (for the admin API).
    pub async fn list_houses(&self) -> Result<Vec<House>> {
        let rows: Vec<HouseRow> = on!(&self.read, |pool| {
            sqlx::query_as("SELECT id, name, created_at FROM houses ORDER BY id").fetch_all(pool).await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Adds a member. Names are unique per house.
    pub async fn add_member(&self, house: HouseId, name: &Name, role: Role) -> Result<Member> {
        let member = Member { id: MemberId::new(), house_id: house, name: name.clone(), role, created_at: now() };
        on!(&self.write, |pool| {
            sqlx::query("INSERT INTO members (id, house_id, name, role, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(member.id.as_uuid())
                .bind(house.as_uuid())
                .bind(member.name.as_str())
                .bind(role.as_str())
                .bind(member.created_at)
                .execute(pool)
                .await
                .map(|res| res.rows_affected())
        })
        .map_err(StoreError::unique("member", "a member with this name already exists in the house"))?;
        Ok(member)
    }

    /// A member of `house`.
    pub async fn member(&self, house: HouseId, id: MemberId) -> Result<Member> {
        let sql = concat!("SELECT ", member_columns!(), " FROM members WHERE house_id = $1 AND id = $2");
        let row: Option<MemberRow> = on!(&self.read, |pool| {
            sqlx::query_as(sql).bind(house.as_uuid()).bind(id.as_uuid()).fetch_optional(pool).await
        })?;
        row.ok_or(StoreError::NotFound { what: "member" })?.try_into()
    }

    /// Every member of `house`, oldest first.
    pub async fn list_members(&self, house: HouseId) -> Result<Vec<Member>> {
        let sql = concat!("SELECT ", member_columns!(), " FROM members WHERE house_id = $1 ORDER BY id");
        let rows: Vec<MemberRow> =
            on!(&self.read, |pool| sqlx::query_as(sql).bind(house.as_uuid()).fetch_all(pool).await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Changes a member's role.
    pub async fn set_member_role(&self, house: HouseId, id: MemberId, role: Role) -> Result<()> {
        let res = on!(&self.write, |pool| {
            sqlx::query("UPDATE members SET role = $3 WHERE house_id = $1 AND id = $2")
                .bind(house.as_uuid())
                .bind(id.as_uuid())
                .bind(role.as_str())
                .execute(pool)
                .await
                .map(|res| res.rows_affected())
        })?;
        if res == 0 { Err(StoreError::NotFound { what: "member" }) } else { Ok(()) }
    }

    /// Records a new API key for `member`. `secret_hash` is a hash of the key's secret part;
    /// the key itself is never stored.
    pub async fn create_api_key(&self, member: &Member, label: &str, secret_hash: &[u8]) -> Result<ApiKeyMeta> {
        let key = ApiKeyMeta {
            id: ApiKeyId::new(),
            member_id: member.id,
            house_id: member.house_id,
            label: label.to_owned(),
            created_at: now(),
            revoked_at: None,
        };
        on!(&self.write, |pool| {
            sqlx::query(
                "INSERT INTO api_keys (id, member_id, house_id, label, secret_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(key.id.as_uuid())
            .bind(key.member_id.as_uuid())
            .bind(key.house_id.as_uuid())
            .bind(&key.label)
            .bind(secret_hash)
            .bind(key.created_at)
            .execute(pool)
            .await
            .map(|res| res.rows_affected())
        })
        .map_err(StoreError::unique("api key", "the key id is taken"))?;
        Ok(key)
    }

    /// What authenticating with key `id` needs: the key, its stored hash and its member.
    /// Revoked keys are not returned.
    pub async fn api_key_for_auth(&self, id: ApiKeyId) -> Result<(ApiKeyMeta, Vec<u8>, Member)> {
        let row: Option<ApiKeyAuthRow> = on!(&self.read, |pool| {
            sqlx::query_as(
                "SELECT k.secret_hash, k.id, k.member_id, k.house_id, k.label, k.created_at, k.revoked_at, \
                        m.name AS member_name, m.role AS member_role, m.created_at AS member_created_at \
                 FROM api_keys k JOIN members m ON m.id = k.member_id \
                 WHERE k.id = $1 AND k.revoked_at IS NULL",
            )
            .bind(id.as_uuid())
            .fetch_optional(pool)
            .await
        })?;
        let row = row.ok_or(StoreError::NotFound { what: "api key" })?;
        let member = MemberRow {
            id: row.key.member_id,
            house_id: row.key.house_id,
            name: row.member_name,
            role: row.member_role,
            created_at: row.member_created_at,
        }
        .try_into()?;
        Ok((row.key.into(), row.secret_hash, member))
    }

    /// The keys of `member`, including revoked ones.
    pub async fn list_api_keys(&self, house: HouseId, member: MemberId) -> Result<Vec<ApiKeyMeta>> {
        let sql =
            concat!("SELECT ", api_key_columns!(), " FROM api_keys WHERE house_id = $1 AND member_id = $2 ORDER BY id");
        let rows: Vec<ApiKeyRow> = on!(&self.read, |pool| {
            sqlx::query_as(sql).bind(house.as_uuid()).bind(member.as_uuid()).fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Revokes a key; it stops authenticating at once.
    pub async fn revoke_api_key(&self, house: HouseId, id: ApiKeyId) -> Result<()> {
        let n = on!(&self.write, |pool| {
            sqlx::query("UPDATE api_keys SET revoked_at = $3 WHERE house_id = $1 AND id = $2 AND revoked_at IS NULL")
                .bind(house.as_uuid())
                .bind(id.as_uuid())
                .bind(now())
                .execute(pool)
                .await
                .map(|res| res.rows_affected())
        })?;
        if n == 0 { Err(StoreError::NotFound { what: "api key" }) } else { Ok(()) }
    }
}
