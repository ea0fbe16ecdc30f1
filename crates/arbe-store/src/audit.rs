//! The audit trail: append-only rows (triggers refuse updates and deletes) naming who changed
//! what and when, never a value.

use arbe_core::{AuditAction, AuditEvent, HouseId, User, UserId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Actor, Result, Store, StoreError, now, on};

/// The name recorded for changes made with the admin token.
pub const OPERATOR: &str = "operator";

/// The most events one page of the trail holds.
pub const MAX_AUDIT_PAGE: u32 = 500;

/// Who made a change: a member of the house, a user acting on their own keys, or the operator.
#[derive(Clone, Copy, Debug)]
pub enum AuditActor<'a> {
    /// A member, through an API key or a session.
    Member(&'a Actor),
    /// A user acting outside any house (their own API keys), or proven by other means (a
    /// signed GitHub connect state).
    User(&'a User),
    /// The operator, with the admin token.
    Operator,
}

impl AuditActor<'_> {
    fn user_and_name(self) -> (Option<UserId>, String) {
        match self {
            Self::Member(actor) => (Some(actor.user().id), actor.user().name.to_string()),
            Self::User(user) => (Some(user.id), user.name.to_string()),
            Self::Operator => (None, OPERATOR.to_owned()),
        }
    }
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    seq: i64,
    house_id: Option<Uuid>,
    actor_user_id: Option<Uuid>,
    actor_name: String,
    action: String,
    target: String,
    at: DateTime<Utc>,
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = StoreError;
    fn try_from(row: AuditRow) -> Result<Self> {
        Ok(AuditEvent {
            seq: row.seq,
            house_id: row.house_id.map(HouseId::from_uuid),
            actor_user_id: row.actor_user_id.map(UserId::from_uuid),
            actor_name: row.actor_name,
            action: AuditAction::parse(&row.action)
                .ok_or_else(|| StoreError::Corrupt { table: "audit_events", reason: "unknown action".into() })?,
            target: row.target,
            at: row.at,
        })
    }
}

impl Store {
    /// Appends an event to `house`'s trail (`house` `None`: to `subject`'s, a user's own keys).
    /// `target` names the object (a secret's name, a key id): never a value.
    pub async fn record_audit(
        &self,
        house: Option<HouseId>,
        subject: Option<UserId>,
        by: AuditActor<'_>,
        action: AuditAction,
        target: &str,
    ) -> Result<()> {
        let (actor_user, actor_name) = by.user_and_name();
        on!(&self.write, |pool| {
            sqlx::query(
                "INSERT INTO audit_events (house_id, subject_user_id, actor_user_id, actor_name, action, target, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(house.map(|h| h.as_uuid()))
            .bind(subject.map(|u| u.as_uuid()))
            .bind(actor_user.map(|u| u.as_uuid()))
            .bind(&actor_name)
            .bind(action.as_str())
            .bind(target)
            .bind(now())
            .execute(pool)
            .await
            .map(|res| res.rows_affected())
        })?;
        Ok(())
    }

    /// Records a change that already happened. A failure to record is logged, not returned: the
    /// change stands either way, and the caller must not retry it.
    pub async fn audit(
        &self,
        house: Option<HouseId>,
        subject: Option<UserId>,
        by: AuditActor<'_>,
        action: AuditAction,
        target: &str,
    ) {
        if let Err(err) = self.record_audit(house, subject, by, action, target).await {
            tracing::error!(?house, %action, error = %err, "could not record an audit event");
        }
    }

    /// The house's trail, oldest first, after `after` (a `seq`; `None` from the start), at most
    /// `limit` events (capped at [`MAX_AUDIT_PAGE`]). It includes the API-key events of the
    /// house's members.
    pub async fn list_audit(&self, house: HouseId, after: Option<i64>, limit: u32) -> Result<Vec<AuditEvent>> {
        let limit = i64::from(limit.clamp(1, MAX_AUDIT_PAGE));
        let rows: Vec<AuditRow> = on!(&self.read, |pool| {
            sqlx::query_as(
                "SELECT seq, house_id, actor_user_id, actor_name, action, target, at FROM audit_events \
                 WHERE seq > $2 AND (house_id = $1 OR (house_id IS NULL AND subject_user_id IN \
                 (SELECT user_id FROM members WHERE house_id = $1))) ORDER BY seq LIMIT $3",
            )
            .bind(house.as_uuid())
            .bind(after.unwrap_or(0))
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}
