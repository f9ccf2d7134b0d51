//! Request queries: filters, sorting, offset and cursor pagination.
//!
//! The filter ([`RequestQuery::matches`]), the sort key ([`SortField::key`]) and the cursor
//! encoding live here so that every store pages the same way.

use std::cmp::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::id::RequestId;
use crate::request::Request;
use crate::status::RequestStatus;
use crate::time::Timestamp;

/// Largest page a query returns.
pub const MAX_PAGE_SIZE: usize = 10_000;
/// Page size when none is given.
pub const DEFAULT_PAGE_SIZE: usize = 50;

/// Which requests to return, in what order, which page.
///
/// ```
/// use atmo_core::{RequestQuery, RequestStatus, SortField, SortOrder};
/// let q = RequestQuery::new()
///     .status([RequestStatus::Pending, RequestStatus::Processing])
///     .priority_range(7, 10)
///     .sort(SortField::Priority, SortOrder::Desc)
///     .limit(50);
/// assert_eq!(q.pagination.limit, 50);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestQuery {
    /// Any of these statuses (empty: any).
    pub status: Vec<RequestStatus>,
    /// This task.
    pub task_id: Option<String>,
    /// This client.
    pub client_id: Option<String>,
    /// Handled by this bank.
    pub bank_id: Option<String>,
    /// Priority within a range.
    pub priority_range: Option<PriorityRange>,
    /// Created within a range.
    pub date_range: Option<DateRange>,
    /// Every entry equal in the request's metadata.
    pub metadata: Map<String, Value>,
    /// Which page.
    pub pagination: Pagination,
}

/// An inclusive priority range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityRange {
    /// Lowest.
    pub min: u8,
    /// Highest.
    pub max: u8,
}

/// A creation-time range; `from` inclusive, `to` exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct DateRange {
    /// Created at or after.
    pub from: Option<Timestamp>,
    /// Created before.
    pub to: Option<Timestamp>,
}

/// The sort field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum SortField {
    /// Submission time.
    #[default]
    #[serde(alias = "created_at", alias = "createdAt")]
    Created,
    /// Last change.
    #[serde(alias = "updated_at", alias = "updatedAt")]
    Updated,
    /// Priority.
    Priority,
    /// Status, in lifecycle order.
    Status,
}

impl SortField {
    /// The integer the requests sort by (ties broken by request id).
    pub fn key(self, r: &Request) -> i64 {
        match self {
            SortField::Created => r.created_at.as_micros(),
            SortField::Updated => r.updated_at.as_micros(),
            SortField::Priority => i64::from(r.priority),
            SortField::Status => r.status as i64,
        }
    }
}

/// The sort order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Smallest first.
    Asc,
    /// Largest first.
    #[default]
    Desc,
}

/// Which page: `offset`/`limit`, or `cursor` (from a previous page's `next_cursor`) and `limit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Pagination {
    /// Skip this many (ignored with a cursor).
    pub offset: usize,
    /// At most this many (capped at [`MAX_PAGE_SIZE`]).
    pub limit: usize,
    /// Sort field.
    pub sort_by: SortField,
    /// Sort order.
    pub sort_order: SortOrder,
    /// Continue after the last request of a previous page.
    pub cursor: Option<String>,
}

impl Default for Pagination {
    fn default() -> Self {
        Pagination {
            offset: 0,
            limit: DEFAULT_PAGE_SIZE,
            sort_by: SortField::Created,
            sort_order: SortOrder::Desc,
            cursor: None,
        }
    }
}

/// One page of results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryPage {
    /// The requests.
    pub requests: Vec<Request>,
    /// How many match the filters in all.
    pub total: usize,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// A query filter that no request could match and no store should be given (see
/// [`RequestQuery::check`]).
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid filter: {0}")]
pub struct InvalidFilter(pub String);

/// A position in a sorted result: the last request's sort key and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Sort key of the last request returned.
    pub key: i64,
    /// Its id.
    pub id: RequestId,
}

/// The error for a cursor that was not produced by a query.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid cursor `{}`: pass the `nextCursor` of a previous page unchanged", crate::manifest::Echo(.0))]
pub struct InvalidCursor(pub String);

impl Cursor {
    /// Encodes as an opaque URL-safe string.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.key, self.id))
    }

    /// Decodes a string made by [`Cursor::encode`].
    ///
    /// # Errors
    /// [`InvalidCursor`] for anything else.
    pub fn decode(s: &str) -> Result<Cursor, InvalidCursor> {
        let bad = || InvalidCursor(s.to_owned());
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (key, id) = text.split_once(':').ok_or_else(bad)?;
        Ok(Cursor { key: key.parse().map_err(|_| bad())?, id: id.parse().map_err(|_| bad())? })
    }
}

impl RequestQuery {
    /// Matches everything, first page.
    pub fn new() -> Self {
        Self::default()
    }
    /// Any of these statuses.
    pub fn status(mut self, s: impl IntoIterator<Item = RequestStatus>) -> Self {
        self.status = s.into_iter().collect();
        self
    }
    /// This task.
    pub fn task(mut self, t: impl Into<String>) -> Self {
        self.task_id = Some(t.into());
        self
    }
    /// This client.
    pub fn client(mut self, c: impl Into<String>) -> Self {
        self.client_id = Some(c.into());
        self
    }
    /// This bank.
    pub fn bank(mut self, b: impl Into<String>) -> Self {
        self.bank_id = Some(b.into());
        self
    }
    /// Priority in `[min, max]`.
    pub fn priority_range(mut self, min: u8, max: u8) -> Self {
        self.priority_range = Some(PriorityRange { min, max });
        self
    }
    /// Created in `[from, to)`.
    pub fn created_between(mut self, from: Option<Timestamp>, to: Option<Timestamp>) -> Self {
        self.date_range = Some(DateRange { from, to });
        self
    }
    /// Metadata `key` equals `value`.
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
    /// Sorting.
    pub fn sort(mut self, by: SortField, order: SortOrder) -> Self {
        self.pagination.sort_by = by;
        self.pagination.sort_order = order;
        self
    }
    /// Skip.
    pub fn offset(mut self, n: usize) -> Self {
        self.pagination.offset = n;
        self
    }
    /// Page size.
    pub fn limit(mut self, n: usize) -> Self {
        self.pagination.limit = n;
        self
    }
    /// Continue after a cursor.
    pub fn after(mut self, cursor: impl Into<String>) -> Self {
        self.pagination.cursor = Some(cursor.into());
        self
    }

    /// Checks what a store cannot be trusted to handle: the metadata filter has at most
    /// [`MAX_METADATA_ENTRIES`](crate::request::MAX_METADATA_ENTRIES) entries and every key
    /// is one a request may carry (see
    /// [`metadata_key_problem`](crate::request::metadata_key_problem)). The engine runs this
    /// before a query reaches its store.
    ///
    /// ```
    /// use atmo_core::RequestQuery;
    /// assert!(RequestQuery::new().meta("team", "a").check().is_ok());
    /// assert!(RequestQuery::new().meta("\0", "x").check().is_err());
    /// ```
    ///
    /// # Errors
    /// [`InvalidFilter`] naming the first problem.
    pub fn check(&self) -> Result<(), InvalidFilter> {
        use crate::request::{MAX_METADATA_ENTRIES, metadata_key_problem};
        if self.metadata.len() > MAX_METADATA_ENTRIES {
            return Err(InvalidFilter(format!(
                "the metadata filter has {} entries; at most {MAX_METADATA_ENTRIES} are accepted",
                self.metadata.len()
            )));
        }
        match self.metadata.keys().find_map(|k| metadata_key_problem(k)) {
            Some(problem) => Err(InvalidFilter(problem)),
            None => Ok(()),
        }
    }

    /// The effective page size.
    pub fn page_size(&self) -> usize {
        self.pagination.limit.clamp(1, MAX_PAGE_SIZE)
    }

    /// Whether `r` passes every filter.
    pub fn matches(&self, r: &Request) -> bool {
        if !self.status.is_empty() && !self.status.contains(&r.status) {
            return false;
        }
        if self.task_id.as_deref().is_some_and(|t| t != &*r.task_id) {
            return false;
        }
        if let Some(c) = &self.client_id
            && r.client_id.as_deref() != Some(c.as_str())
        {
            return false;
        }
        if let Some(b) = &self.bank_id
            && r.bank_id.as_deref() != Some(b.as_str())
        {
            return false;
        }
        if let Some(p) = self.priority_range
            && (r.priority < p.min || r.priority > p.max)
        {
            return false;
        }
        if let Some(d) = self.date_range
            && (d.from.is_some_and(|f| r.created_at < f) || d.to.is_some_and(|t| r.created_at >= t))
        {
            return false;
        }
        if !self.metadata.is_empty() {
            let Some(meta) = r.metadata.as_deref() else { return false };
            if !self.metadata.iter().all(|(k, v)| meta.get(k) == Some(v)) {
                return false;
            }
        }
        true
    }

    /// Orders two requests by the sort field and order, ties by id in the same order.
    pub fn compare(&self, a: &Request, b: &Request) -> Ordering {
        let by = self.pagination.sort_by;
        let ord = by.key(a).cmp(&by.key(b)).then_with(|| a.request_id.cmp(&b.request_id));
        match self.pagination.sort_order {
            SortOrder::Asc => ord,
            SortOrder::Desc => ord.reverse(),
        }
    }

    /// Whether `r` comes strictly after `cursor` in this query's order.
    pub fn is_after(&self, cursor: &Cursor, r: &Request) -> bool {
        let key = self.pagination.sort_by.key(r);
        let ord = key.cmp(&cursor.key).then_with(|| r.request_id.cmp(&cursor.id));
        match self.pagination.sort_order {
            SortOrder::Asc => ord == Ordering::Greater,
            SortOrder::Desc => ord == Ordering::Less,
        }
    }

    /// The cursor pointing after `r`.
    pub fn cursor_after(&self, r: &Request) -> Cursor {
        Cursor { key: self.pagination.sort_by.key(r), id: r.request_id }
    }

    /// Pages an already filtered, unsorted set: sorts, applies the cursor or offset and the
    /// limit. Stores that hold requests in memory use this; SQL stores do the same in SQL.
    ///
    /// # Errors
    /// [`InvalidCursor`] for a malformed cursor.
    pub fn paginate(&self, mut matching: Vec<Request>) -> Result<QueryPage, InvalidCursor> {
        let total = matching.len();
        matching.sort_unstable_by(|a, b| self.compare(a, b));
        let start = match &self.pagination.cursor {
            Some(c) => {
                let cursor = Cursor::decode(c)?;
                matching.partition_point(|r| !self.is_after(&cursor, r))
            }
            None => self.pagination.offset.min(total),
        };
        let end = start.saturating_add(self.page_size()).min(total);
        let next_cursor = (end < total && end > start).then(|| self.cursor_after(&matching[end - 1]).encode());
        matching.truncate(end);
        matching.drain(..start);
        Ok(QueryPage { requests: matching, total, next_cursor })
    }
}
