//! Entries: a user message dispatches the thread's agents; entries are listed from a sequence
//! number, or tailed as Server-Sent Events (`id:` is the sequence number, so a client resumes
//! with `Last-Event-ID`). By default the tail ends once no dispatch of the thread is queued or
//! running; `?follow=true` keeps it open.

use std::{collections::HashMap, convert::Infallible};

use arbe_api::Posted;
use arbe_core::{Entry, EntryBody, ErrorKind, ThreadId, ThreadStatus};
use arbe_store::Actor;
use axum::{
    Json,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::sse::{Event, KeepAlive, Sse},
};
use futures_util::{Stream, StreamExt};

use crate::{
    ApiError, AppState,
    auth::InHouse,
    body::Body,
    routes::{HouseParam, limit},
};

/// `POST /api/threads/{id}/entries?house_id=`.
#[utoipa::path(post, path = "/api/threads/{id}/entries", tag = "entries", operation_id = "entries_create",
    params(HouseParam, ("id" = String, Path, description = "The thread's id")), request_body = arbe_api::CreateEntry,
    responses((status = 201, description = "The message and the dispatch it queued", body = Posted)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
    Body(body): Body<arbe_api::CreateEntry>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    let (entry, job) = state.services.dispatcher.post(&actor, ThreadId::parse(&id)?, &body.text).await?;
    Ok((StatusCode::CREATED, Json(Posted { entry, job })))
}

fn after(query: &HashMap<String, String>, headers: &HeaderMap) -> Result<i64, ApiError> {
    let text = headers.get("last-event-id").and_then(|v| v.to_str().ok()).or(query.get("after").map(String::as_str));
    match text {
        None => Ok(0),
        Some(text) => text.trim().parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::new(ErrorKind::InvalidInput, "invalid after: must be a sequence number (0 or more)")
        }),
    }
}

/// `GET /api/threads/{id}/entries?house_id=&after=&limit=`.
#[utoipa::path(get, path = "/api/threads/{id}/entries", tag = "entries", operation_id = "entries_list",
    params(HouseParam, ("id" = String, Path, description = "The thread's id"), ("after" = Option<i64>, Query, minimum = 0, description = "Entries after this sequence number (default 0); the `Last-Event-ID` header wins"),
        ("limit" = Option<u32>, Query, description = "At most this many (default 500, at most 1000)")),
    responses((status = 200, description = "Entries in sequence order", body = Vec<Entry>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Entry>>, ApiError> {
    let entries =
        state.services.dispatcher.entries(&actor, ThreadId::parse(&id)?, after(&query, &headers)?, limit(&query, 500)?);
    Ok(Json(entries.await?))
}

/// Where a tail stands: the entries it follows, the last sequence number it sent, and (once
/// the thread has nothing queued or running) the sequence number it ends at.
struct Tail {
    entries: futures_util::stream::BoxStream<'static, arbe_dispatch::Result<Entry>>,
    services: std::sync::Arc<arbe_dispatch::Services>,
    actor: Actor,
    thread: ThreadId,
    follow: bool,
    last: i64,
    end_at: Option<i64>,
    check: bool,
}

impl Tail {
    /// The next entry to send, or `None` when the tail is over.
    async fn next(&mut self) -> Option<Entry> {
        if !self.follow && self.check {
            self.check = false;
            let view = self.services.threads.view(&self.actor, self.thread).await.ok()?;
            if !matches!(view.status, ThreadStatus::Queued | ThreadStatus::Running) {
                self.end_at = Some(view.last_seq);
            }
        }
        if self.end_at.is_some_and(|end| self.last >= end) {
            return None;
        }
        match self.entries.next().await? {
            Ok(entry) => {
                self.last = entry.seq;
                // A dispatch may have ended: look again before waiting for more.
                self.check = matches!(entry.body, EntryBody::Status { status, .. } if !matches!(status, ThreadStatus::Queued | ThreadStatus::Running));
                Some(entry)
            }
            Err(err) => {
                tracing::warn!(error = %err, "an entry stream stopped");
                None
            }
        }
    }
}

/// `GET /api/threads/{id}/entries/stream?house_id=&after=&follow=`.
#[utoipa::path(get, path = "/api/threads/{id}/entries/stream", tag = "entries", operation_id = "entries_stream",
    params(HouseParam, ("id" = String, Path, description = "The thread's id"), ("after" = Option<i64>, Query, minimum = 0, description = "Entries after this sequence number (default 0); the `Last-Event-ID` header wins"),
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this sequence number"),
        ("follow" = Option<bool>, Query, description = "Keep the stream open after the dispatches end (default false)")),
    responses((status = 200, description = "Server-Sent Events: `id` is the sequence number, `event` the kind, `data` the entry as JSON",
        body = String, content_type = "text/event-stream")))]
pub(crate) async fn stream(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let thread = ThreadId::parse(&id)?;
    let follow = match query.get("follow").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::new(ErrorKind::InvalidInput, "invalid follow: must be true or false")),
    };
    let last = after(&query, &headers)?;
    let entries = state.services.dispatcher.subscribe(&actor, thread, last).await?.boxed();
    let tail =
        Tail { entries, services: state.services.clone(), actor, thread, follow, last, end_at: None, check: true };
    let verbose = state.options.verbose;
    let events = futures_util::stream::unfold(tail, move |mut tail| async move {
        let entry = tail.next().await?;
        if verbose {
            // Entries hold no secret (the dispatcher redacts before it writes), so the mirror
            // shows what the client sees.
            let data = serde_json::to_string(&entry.body).expect("an entry serializes");
            tracing::info!(thread = %entry.thread_id, seq = entry.seq, kind = entry.body.kind().as_str(), %data, "sse");
        }
        let event = Event::default()
            .id(entry.seq.to_string())
            .event(entry.body.kind().as_str())
            .data(serde_json::to_string(&entry).expect("an entry serializes"));
        Some((Ok(event), tail))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
