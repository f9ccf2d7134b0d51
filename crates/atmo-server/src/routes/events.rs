//! `/v1/events`: engine events as server-sent events, filterable and resumable.

use std::convert::Infallible;
use std::sync::Arc;

use atmo_workers::{Event, EventType, RequestId};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt, stream};
use serde_json::json;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::error::ApiError;
use crate::extract::{QueryPairs, request_id};
use crate::hub::HubItem;
use crate::openapi::ErrorBody;
use crate::server::AppState;

/// Which events a client wants.
#[derive(Debug, Default)]
struct Filter {
    requests: Vec<RequestId>,
    banks: Vec<String>,
    types: Vec<EventType>,
}

impl Filter {
    fn parse(q: &QueryPairs) -> Result<Filter, ApiError> {
        q.only(&["requestId", "bankId", "type", "token", "lastEventId"])?;
        let requests = q.all("requestId").into_iter().map(request_id).collect::<Result<_, _>>()?;
        let banks = q.all("bankId").into_iter().map(str::to_owned).collect();
        let mut types = Vec::new();
        for t in q.all("type") {
            match EventType::ALL.iter().find(|e| e.as_str() == t) {
                Some(e) => types.push(*e),
                None => {
                    let known: Vec<&str> = EventType::ALL.iter().map(|e| e.as_str()).collect();
                    return Err(ApiError::bad_param(format!(
                        "`type={t}` is not an event type; known: {}",
                        known.join(", ")
                    ))
                    .with_details(json!({"knownTypes": known})));
                }
            }
        }
        Ok(Filter { requests, banks, types })
    }

    fn accepts(&self, e: &Event) -> bool {
        if !self.types.is_empty() && !self.types.contains(&e.kind.event_type()) {
            return false;
        }
        if !self.requests.is_empty() && !e.kind.request_id().is_some_and(|id| self.requests.contains(&id)) {
            return false;
        }
        if !self.banks.is_empty() {
            // Worker events name the worker (`<bank>/<index>`), not the bank.
            let bank = e.kind.bank_id().map(str::to_owned).or_else(|| worker_bank(e));
            if !bank.is_some_and(|b| self.banks.contains(&b)) {
                return false;
            }
        }
        true
    }
}

fn worker_bank(e: &Event) -> Option<String> {
    let v = serde_json::to_value(&e.kind).ok()?;
    let w = v.get("workerId")?.as_str()?;
    w.rsplit_once('/').map(|(b, _)| b.to_owned())
}

fn to_sse(e: &Event) -> sse::Event {
    let data = serde_json::to_string(e).unwrap_or_else(|_| "{}".into());
    sse::Event::default().id(e.seq.to_string()).event(e.kind.event_type().as_str()).data(data)
}

fn lagged(missed: u64) -> sse::Event {
    sse::Event::default().event("lagged").data(json!({"missed": missed}).to_string())
}

/// Server-sent events.
///
/// Every event carries `id:` (the engine's sequence number) and `event:` (its type, such as
/// `request-completed`); `data:` is the event as JSON. Reconnecting with `Last-Event-ID`
/// (or `?lastEventId=`) replays the buffered events after it. A client that falls behind, or
/// resumes from further back than the buffer holds, receives a `lagged` event (`{"missed": n}`)
/// instead of a silent gap. Comments keep the connection alive.
#[utoipa::path(
    get, path = "/v1/events", tag = "events",
    params(
        ("requestId" = Option<String>, Query, description = "Only events about these requests (repeat or comma-separate)"),
        ("bankId" = Option<String>, Query, description = "Only events about these banks"),
        ("type" = Option<String>, Query, description = "Only these event types (`request-completed`, ...)"),
        ("token" = Option<String>, Query, description = "The bearer token, for clients that cannot send headers"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id"),
    ),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "Invalid filter", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    )
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    q: QueryPairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let filter = Arc::new(Filter::parse(&q)?);
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| q.get("lastEventId").map(str::to_owned));
    let last = match last {
        Some(s) => Some(
            s.trim()
                .parse::<u64>()
                .map_err(|_| ApiError::bad_param(format!("Last-Event-ID `{s}` is not an event id")))?,
        ),
        None => None,
    };
    let resume = state.0.hub.subscribe(last);
    let head = (resume.missed > 0).then(|| lagged(resume.missed));
    let f = filter.clone();
    let backlog = resume.backlog.into_iter().filter(move |e| f.accepts(e)).map(|e| to_sse(&e));
    let live = BroadcastStream::new(resume.live).filter_map(move |item| {
        let out = match item {
            Ok(HubItem::Event(e)) => filter.accepts(&e).then(|| to_sse(&e)),
            Ok(HubItem::Lagged(n)) | Err(BroadcastStreamRecvError::Lagged(n)) => Some(lagged(n)),
        };
        std::future::ready(out)
    });
    let shutdown = state.clone();
    let stream: std::pin::Pin<Box<dyn Stream<Item = Result<sse::Event, Infallible>> + Send>> = Box::pin(
        stream::iter(head.into_iter().chain(backlog))
            .chain(live)
            .map(Ok)
            .take_until(async move { shutdown.closing_signal().await }),
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(state.config().keep_alive)).into_response())
}
