//! Secret metadata and sealed (encrypted) versions. This crate never sees a plaintext value:
//! arbe-vault seals before writing and opens after reading.

use arbe_core::{Audience, HouseId, MemberId, SecretId, SecretMeta, SecretName};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{Pool, Result, Store, StoreError, column, now, on};

/// One encrypted version of a secret's value, as arbe-vault wrote it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// The version it belongs to.
    pub version: i64,
    /// AES-256-GCM ciphertext with its tag.
    pub ciphertext: Vec<u8>,
    /// The 96-bit nonce.
    pub nonce: Vec<u8>,
    /// The version of the house data key it was sealed under.
    pub key_version: i64,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret")
            .field("version", &self.version)
            .field("ciphertext_len", &self.ciphertext.len())
            .field("key_version", &self.key_version)
            .finish_non_exhaustive()
    }
}

/// A new version of a secret: version 1 creates it, version n+1 rotates version n.
#[derive(Clone, Debug)]
pub struct NewSecretVersion {
    /// The house.
    pub house_id: HouseId,
    /// The secret's name.
    pub name: SecretName,
    /// Who may use it.
    pub audience: Audience,
    /// Usable by every agent in the house.
    pub shared: bool,
    /// Who set it (the author, on creation).
    pub author_id: MemberId,
    /// The sealed value; `sealed.version` is the new version number.
    pub sealed: SealedSecret,
}

#[derive(sqlx::FromRow)]
struct SecretRow {
    id: Uuid,
    house_id: Uuid,
    name: String,
    audience: String,
    shared: bool,
    version: i64,
    author_id: Uuid,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    rotated_at: Option<DateTime<Utc>>,
}

impl TryFrom<SecretRow> for SecretMeta {
    type Error = StoreError;
    fn try_from(row: SecretRow) -> Result<Self> {
        Ok(SecretMeta {
            id: SecretId::from_uuid(row.id),
            house_id: HouseId::from_uuid(row.house_id),
            name: column("secrets", SecretName::parse(&row.name))?,
            audience: column("secrets", Audience::parse(&row.audience))?,
            shared: row.shared,
            version: row.version,
            author_id: MemberId::from_uuid(row.author_id),
            created_at: row.created_at,
            updated_at: row.updated_at,
            rotated_at: row.rotated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct SealedRow {
    ciphertext: Vec<u8>,
    nonce: Vec<u8>,
    key_version: i64,
    #[sqlx(flatten)]
    meta: SecretRow,
}

macro_rules! secret_columns {
    () => {
        "id, house_id, name, audience, shared, version, author_id, created_at, updated_at, rotated_at"
    };
    (s) => {
        "s.id, s.house_id, s.name, s.audience, s.shared, s.version, s.author_id, s.created_at, s.updated_at, s.rotated_at"
    };
}

impl Store {
    /// Writes a new version of a secret, in one transaction with its metadata.
    ///
    /// Version 1 creates the secret (a `Conflict` if it exists). Version n+1 rotates it only if
    /// the current version is still n (a `Conflict` otherwise), so two concurrent rotations
    /// never both win. The previous version stays, for rollback; older ones are deleted.
    pub async fn put_secret_version(&self, new: &NewSecretVersion) -> Result<SecretMeta> {
        let at = now();
        let version = new.sealed.version;
        if version < 1 {
            return Err(arbe_core::InvalidInput::new("secret version", "must be at least 1").into());
        }
        let row: Option<SecretRow> = on!(&self.write, |pool| {
            let mut tx = pool.begin().await?;
            let row: Option<SecretRow> = if version == 1 {
                sqlx::query_as(concat!(
                    "INSERT INTO secrets (id, house_id, name, audience, shared, version, author_id, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $7) RETURNING ",
                    secret_columns!()
                ))
                .bind(Uuid::now_v7())
                .bind(new.house_id.as_uuid())
                .bind(new.name.as_str())
                .bind(new.audience.as_str())
                .bind(new.shared)
                .bind(new.author_id.as_uuid())
                .bind(at)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::unique("secret", "it already exists; set it again to rotate it"))?
            } else {
                sqlx::query_as(concat!(
                    "UPDATE secrets SET version = $3, audience = $4, shared = $5, updated_at = $6, rotated_at = $6 \
                     WHERE house_id = $1 AND name = $2 AND version = $3 - 1 RETURNING ",
                    secret_columns!()
                ))
                .bind(new.house_id.as_uuid())
                .bind(new.name.as_str())
                .bind(version)
                .bind(new.audience.as_str())
                .bind(new.shared)
                .bind(at)
                .fetch_optional(&mut *tx)
                .await?
            };
            if let Some(row) = &row {
                // The data key must still exist when this commits: a house-key rotation may have
                // retired it since the value was sealed (the caller seals again under the new
                // key). On PostgreSQL the row is share-locked until commit, so a rotation's
                // delete waits and then sees this version using it.
                let key: Option<i64> = sqlx::query_scalar(if matches!(self.write, Pool::Postgres(_)) {
                    "SELECT version FROM house_keys WHERE house_id = $1 AND version = $2 FOR SHARE"
                } else {
                    "SELECT version FROM house_keys WHERE house_id = $1 AND version = $2"
                })
                .bind(new.house_id.as_uuid())
                .bind(new.sealed.key_version)
                .fetch_optional(&mut *tx)
                .await?;
                if key.is_none() {
                    return Err(StoreError::NotFound { what: "house key" });
                }
                sqlx::query(
                    "INSERT INTO secret_versions (secret_id, version, ciphertext, nonce, key_version, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(row.id)
                .bind(version)
                .bind(&new.sealed.ciphertext)
                .bind(&new.sealed.nonce)
                .bind(new.sealed.key_version)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                // Keep the current and the previous version (for rollback); older ciphertexts
                // are only a liability.
                sqlx::query("DELETE FROM secret_versions WHERE secret_id = $1 AND version < $2 - 1")
                    .bind(row.id)
                    .bind(version)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            Ok::<_, StoreError>(row)
        })?;
        row.ok_or(StoreError::Conflict {
            what: "secret",
            rule: "it was changed concurrently or does not exist at the previous version; read it and try again",
        })?
        .try_into()
    }

    /// A secret's metadata.
    pub async fn secret_meta(&self, house: HouseId, name: &SecretName) -> Result<SecretMeta> {
        let row: Option<SecretRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!("SELECT ", secret_columns!(), " FROM secrets WHERE house_id = $1 AND name = $2"))
                .bind(house.as_uuid())
                .bind(name.as_str())
                .fetch_optional(pool)
                .await
        })?;
        row.ok_or(StoreError::NotFound { what: "secret" })?.try_into()
    }

    /// Every secret's metadata in `house`, by name.
    pub async fn list_secrets(&self, house: HouseId) -> Result<Vec<SecretMeta>> {
        let rows: Vec<SecretRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!("SELECT ", secret_columns!(), " FROM secrets WHERE house_id = $1 ORDER BY name"))
                .bind(house.as_uuid())
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Deletes a secret and all of its versions.
    pub async fn delete_secret(&self, house: HouseId, name: &SecretName) -> Result<()> {
        let n = on!(&self.write, |pool| {
            sqlx::query("DELETE FROM secrets WHERE house_id = $1 AND name = $2")
                .bind(house.as_uuid())
                .bind(name.as_str())
                .execute(pool)
                .await
                .map(|res| res.rows_affected())
        })?;
        if n == 0 { Err(StoreError::NotFound { what: "secret" }) } else { Ok(()) }
    }

    /// The current sealed version of each named secret that exists, in one query; names with
    /// no secret are simply absent from the answer.
    pub async fn sealed_secrets(
        &self,
        house: HouseId,
        names: &[SecretName],
    ) -> Result<Vec<(SecretMeta, SealedSecret)>> {
        let names = Json(names);
        let rows: Vec<SealedRow> = match &self.read {
            Pool::Sqlite(pool) => {
                sqlx::query_as(concat!(
                    "SELECT v.ciphertext, v.nonce, v.key_version, ",
                    secret_columns!(s),
                    " FROM secrets s JOIN secret_versions v ON v.secret_id = s.id AND v.version = s.version \
                     WHERE s.house_id = $1 AND s.name IN (SELECT value FROM json_each($2)) ORDER BY s.name"
                ))
                .bind(house.as_uuid())
                .bind(names)
                .fetch_all(pool)
                .await?
            }
            Pool::Postgres(pool) => {
                sqlx::query_as(concat!(
                    "SELECT v.ciphertext, v.nonce, v.key_version, ",
                    secret_columns!(s),
                    " FROM secrets s JOIN secret_versions v ON v.secret_id = s.id AND v.version = s.version \
                     WHERE s.house_id = $1 AND s.name IN (SELECT jsonb_array_elements_text($2)) ORDER BY s.name"
                ))
                .bind(house.as_uuid())
                .bind(names)
                .fetch_all(pool)
                .await?
            }
        };
        rows.into_iter()
            .map(|row| {
                let sealed = SealedSecret {
                    version: row.meta.version,
                    ciphertext: row.ciphertext,
                    nonce: row.nonce,
                    key_version: row.key_version,
                };
                Ok((row.meta.try_into()?, sealed))
            })
            .collect()
    }

    /// One stored version of a secret (the current one or the one before it).
    pub async fn sealed_secret_version(
        &self,
        house: HouseId,
        name: &SecretName,
        version: i64,
    ) -> Result<(SecretMeta, SealedSecret)> {
        let row: Option<SealedRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!(
                "SELECT v.ciphertext, v.nonce, v.key_version, ",
                secret_columns!(s),
                " FROM secrets s JOIN secret_versions v ON v.secret_id = s.id \
                 WHERE s.house_id = $1 AND s.name = $2 AND v.version = $3"
            ))
            .bind(house.as_uuid())
            .bind(name.as_str())
            .bind(version)
            .fetch_optional(pool)
            .await
        })?;
        let row = row.ok_or(StoreError::NotFound { what: "secret version" })?;
        let sealed =
            SealedSecret { version, ciphertext: row.ciphertext, nonce: row.nonce, key_version: row.key_version };
        Ok((row.meta.try_into()?, sealed))
    }
}
