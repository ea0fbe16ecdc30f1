//! Wrapped per-house data keys and the re-encryption queries key rotation needs.
//! The store only moves bytes; arbe-vault wraps, unwraps, seals and opens.

use arbe_core::{HouseId, SecretId, SecretName};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Pool, Result, SealedSecret, Store, StoreError, column, now, on};

/// A house data key as stored: wrapped (encrypted) by the master key named `kek_id`.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedHouseKey {
    /// The house.
    pub house_id: HouseId,
    /// The key's version; the highest is the one new secrets are sealed under.
    pub version: i64,
    /// The data key, encrypted under the master key.
    pub wrapped_key: Vec<u8>,
    /// The nonce of that encryption.
    pub nonce: Vec<u8>,
    /// Which master key wrapped it.
    pub kek_id: String,
    /// When the data key was created.
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for WrappedHouseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrappedHouseKey")
            .field("house_id", &self.house_id)
            .field("version", &self.version)
            .field("kek_id", &self.kek_id)
            .finish_non_exhaustive()
    }
}

/// One stored version of a secret, for re-encryption.
#[derive(Clone, Debug)]
pub struct SealedVersion {
    /// The secret.
    pub secret_id: SecretId,
    /// Its name (part of the associated data).
    pub name: SecretName,
    /// The sealed value; `sealed.version` is the secret version.
    pub sealed: SealedSecret,
}

#[derive(sqlx::FromRow)]
struct HouseKeyRow {
    house_id: Uuid,
    version: i64,
    wrapped_key: Vec<u8>,
    nonce: Vec<u8>,
    kek_id: String,
    created_at: DateTime<Utc>,
}

impl From<HouseKeyRow> for WrappedHouseKey {
    fn from(row: HouseKeyRow) -> Self {
        WrappedHouseKey {
            house_id: HouseId::from_uuid(row.house_id),
            version: row.version,
            wrapped_key: row.wrapped_key,
            nonce: row.nonce,
            kek_id: row.kek_id,
            created_at: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct SealedVersionRow {
    secret_id: Uuid,
    name: String,
    version: i64,
    ciphertext: Vec<u8>,
    nonce: Vec<u8>,
    key_version: i64,
}

impl TryFrom<SealedVersionRow> for SealedVersion {
    type Error = StoreError;
    fn try_from(row: SealedVersionRow) -> Result<Self> {
        Ok(SealedVersion {
            secret_id: SecretId::from_uuid(row.secret_id),
            name: column("secrets", SecretName::parse(&row.name))?,
            sealed: SealedSecret {
                version: row.version,
                ciphertext: row.ciphertext,
                nonce: row.nonce,
                key_version: row.key_version,
            },
        })
    }
}

macro_rules! house_key_columns {
    () => {
        "house_id, version, wrapped_key, nonce, kek_id, created_at"
    };
}

impl Store {
    /// A house's data keys, oldest version first.
    pub async fn house_keys(&self, house: HouseId) -> Result<Vec<WrappedHouseKey>> {
        let rows: Vec<HouseKeyRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                house_key_columns!(),
                " FROM house_keys WHERE house_id = $1 ORDER BY version"
            ))
            .bind(house.as_uuid())
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Stores a new data key version; a `Conflict` if another process stored that version first.
    pub async fn insert_house_key(
        &self,
        house: HouseId,
        version: i64,
        wrapped_key: &[u8],
        nonce: &[u8],
        kek_id: &str,
    ) -> Result<WrappedHouseKey> {
        let key = WrappedHouseKey {
            house_id: house,
            version,
            wrapped_key: wrapped_key.to_vec(),
            nonce: nonce.to_vec(),
            kek_id: kek_id.to_owned(),
            created_at: now(),
        };
        on!(&self.write, |pool| {
            sqlx::query(concat!("INSERT INTO house_keys (", house_key_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6)"))
                .bind(house.as_uuid())
                .bind(version)
                .bind(&key.wrapped_key)
                .bind(&key.nonce)
                .bind(&key.kek_id)
                .bind(key.created_at)
                .execute(pool)
                .await
                .map(|res| res.rows_affected())
        })
        .map_err(StoreError::unique("house key", "this version was created concurrently"))?;
        Ok(key)
    }

    /// Up to `limit` data keys (of any house) wrapped by a master key other than `kek_id`.
    pub async fn house_keys_not_wrapped_by(&self, kek_id: &str, limit: u32) -> Result<Vec<WrappedHouseKey>> {
        let rows: Vec<HouseKeyRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                house_key_columns!(),
                " FROM house_keys WHERE kek_id <> $1 ORDER BY house_id, version LIMIT $2"
            ))
            .bind(kek_id)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Replaces a data key's wrapping, if it is still wrapped by `old_kek_id`; `false` if someone
    /// else rewrapped it first. The data key itself does not change, so secrets are untouched.
    pub async fn rewrap_house_key(
        &self,
        house: HouseId,
        version: i64,
        old_kek_id: &str,
        wrapped_key: &[u8],
        nonce: &[u8],
        kek_id: &str,
    ) -> Result<bool> {
        let n = on!(&self.write, |pool| {
            sqlx::query(
                "UPDATE house_keys SET wrapped_key = $4, nonce = $5, kek_id = $6 \
                 WHERE house_id = $1 AND version = $2 AND kek_id = $3",
            )
            .bind(house.as_uuid())
            .bind(version)
            .bind(old_kek_id)
            .bind(wrapped_key)
            .bind(nonce)
            .bind(kek_id)
            .execute(pool)
            .await
            .map(|res| res.rows_affected())
        })?;
        Ok(n == 1)
    }

    /// Every stored secret version of `house` sealed under data key `key_version`.
    pub async fn sealed_versions_under_key(&self, house: HouseId, key_version: i64) -> Result<Vec<SealedVersion>> {
        let rows: Vec<SealedVersionRow> = on!(&self.read, |pool| {
            sqlx::query_as(
                "SELECT v.secret_id, s.name, v.version, v.ciphertext, v.nonce, v.key_version \
                 FROM secret_versions v JOIN secrets s ON s.id = v.secret_id \
                 WHERE s.house_id = $1 AND v.key_version = $2 ORDER BY v.secret_id, v.version",
            )
            .bind(house.as_uuid())
            .bind(key_version)
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Replaces one secret version's ciphertext with one sealed under another data key, if it is
    /// still sealed under `old_key_version`; `false` if it changed meanwhile.
    pub async fn reseal_secret_version(
        &self,
        secret: SecretId,
        old_key_version: i64,
        sealed: &SealedSecret,
    ) -> Result<bool> {
        let n = on!(&self.write, |pool| {
            sqlx::query(
                "UPDATE secret_versions SET ciphertext = $4, nonce = $5, key_version = $6 \
                 WHERE secret_id = $1 AND version = $2 AND key_version = $3",
            )
            .bind(secret.as_uuid())
            .bind(sealed.version)
            .bind(old_key_version)
            .bind(&sealed.ciphertext)
            .bind(&sealed.nonce)
            .bind(sealed.key_version)
            .execute(pool)
            .await
            .map(|res| res.rows_affected())
        })?;
        Ok(n == 1)
    }

    /// Deletes a data key version that no stored secret version uses any more; `false` if one
    /// still does (or the key does not exist).
    pub async fn delete_unused_house_key(&self, house: HouseId, version: i64) -> Result<bool> {
        const DELETE: &str = "DELETE FROM house_keys WHERE house_id = $1 AND version = $2 AND NOT EXISTS ( \
             SELECT 1 FROM secret_versions v JOIN secrets s ON s.id = v.secret_id \
             WHERE s.house_id = $1 AND v.key_version = $2)";
        let n = match &self.write {
            // One writer at a time: a `set` sealed under this key either committed before (and
            // is seen) or commits after (and finds the key gone).
            Pool::Sqlite(pool) => {
                sqlx::query(DELETE).bind(house.as_uuid()).bind(version).execute(pool).await?.rows_affected()
            }
            // Lock the key row first: that waits for every `set` holding it FOR SHARE to commit,
            // and the next statement's fresh snapshot sees the versions they wrote.
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let key: Option<i64> = sqlx::query_scalar(
                    "SELECT version FROM house_keys WHERE house_id = $1 AND version = $2 FOR UPDATE",
                )
                .bind(house.as_uuid())
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
                if key.is_none() {
                    return Ok(false);
                }
                let n =
                    sqlx::query(DELETE).bind(house.as_uuid()).bind(version).execute(&mut *tx).await?.rows_affected();
                tx.commit().await?;
                n
            }
        };
        Ok(n == 1)
    }
}
