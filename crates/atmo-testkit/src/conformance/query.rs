//! Queries: every filter, every sort, offset and cursor pagination.
//!
//! Expected results are computed here from the requests as stored, with predicates written
//! out independently of [`RequestQuery::matches`]; pages are also checked against
//! [`RequestQuery::paginate`], which defines paging for every store.

use std::collections::HashSet;
use std::sync::Arc;

use atmo_core::{Request, RequestId, RequestQuery, RequestStatus, SortField, SortOrder, Store, Transition};
use serde_json::json;

use super::{apply1, claim_params, get, insert, worker};
use crate::fixtures::{at, request};

const SORTS: [(SortField, SortOrder); 8] = [
    (SortField::Created, SortOrder::Asc),
    (SortField::Created, SortOrder::Desc),
    (SortField::Updated, SortOrder::Asc),
    (SortField::Updated, SortOrder::Desc),
    (SortField::Priority, SortOrder::Asc),
    (SortField::Priority, SortOrder::Desc),
    (SortField::Status, SortOrder::Asc),
    (SortField::Status, SortOrder::Desc),
];

/// Inserts 36 varied requests (tasks, clients, priorities, creation times with ties,
/// metadata), moves some through the lifecycle on two banks, and returns them as stored.
pub async fn query_corpus<S: Store>(store: &S) -> Vec<Request> {
    let tasks = ["alpha", "beta", "gamma"];
    let mut reqs = Vec::new();
    for i in 0..36i64 {
        let mut b = request(tasks[(i % 3) as usize]).priority(1 + (i * 7 % 10) as u8).created_at(at(100 + i % 12));
        b = match i % 4 {
            0 | 2 => b.client("web"),
            1 => b.client("cli"),
            _ => b,
        };
        if i % 5 != 0 {
            b = b.meta("region", if i % 2 == 0 { "eu" } else { "us" }).meta("tier", i % 3);
        }
        if i % 9 == 4 {
            b = b.run_at(at(5000));
        }
        reqs.push(b.build());
    }
    let ids: Vec<RequestId> = reqs.iter().map(|r| r.request_id).collect();
    insert(store, reqs).await;
    let a = store.claim(claim_params("bank-a", &["alpha"], 5, "n", at(200), at(900))).await.expect("claim");
    let b = store.claim(claim_params("bank-b", &["beta", "gamma"], 6, "n", at(201), at(900))).await.expect("claim");
    for (k, r) in a.iter().chain(&b).enumerate() {
        let id = r.request_id;
        if k % 2 == 0 {
            apply1(store, Transition::start(id, 1, worker(), at(300 + k as i64))).await.expect("start");
            if k % 4 == 0 {
                apply1(store, Transition::complete(id, 1, Arc::new(json!(k)), at(400 - k as i64))).await.expect("done");
            }
        }
    }
    let mut out = Vec::new();
    for id in ids {
        out.push(get(store, id).await);
    }
    out
}

async fn all_of<S: Store>(store: &S, q: RequestQuery) -> atmo_core::QueryPage {
    store.query(q.limit(atmo_core::query::MAX_PAGE_SIZE)).await.expect("query")
}

fn id_set(rs: &[Request]) -> HashSet<RequestId> {
    rs.iter().map(|r| r.request_id).collect()
}

fn sort_key(field: SortField, r: &Request) -> i64 {
    match field {
        SortField::Created => r.created_at.as_micros(),
        SortField::Updated => r.updated_at.as_micros(),
        SortField::Priority => i64::from(r.priority),
        SortField::Status => r.status as i64,
    }
}

fn sorted(corpus: &[Request], field: SortField, order: SortOrder) -> Vec<RequestId> {
    let mut v: Vec<(i64, RequestId)> = corpus.iter().map(|r| (sort_key(field, r), r.request_id)).collect();
    v.sort();
    if order == SortOrder::Desc {
        v.reverse();
    }
    v.into_iter().map(|(_, id)| id).collect()
}

/// Each filter alone and combined selects exactly the matching requests; `total` counts them.
pub async fn query_filters_by_every_field<S: Store>(store: S) {
    let corpus = query_corpus(&store).await;
    let meta = |r: &Request, k: &str| r.metadata.as_ref().and_then(|m| m.get(k)).cloned();
    type Pred = Box<dyn Fn(&Request) -> bool>;
    let cases: Vec<(RequestQuery, Pred)> = vec![
        (RequestQuery::new(), Box::new(|_| true)),
        (RequestQuery::new().status([RequestStatus::Pending]), Box::new(|r| r.status == RequestStatus::Pending)),
        (
            RequestQuery::new().status([RequestStatus::Assigned, RequestStatus::Completed, RequestStatus::Scheduled]),
            Box::new(|r| {
                matches!(r.status, RequestStatus::Assigned | RequestStatus::Completed | RequestStatus::Scheduled)
            }),
        ),
        (RequestQuery::new().status([RequestStatus::Failed]), Box::new(|_| false)),
        (RequestQuery::new().task("beta"), Box::new(|r| &*r.task_id == "beta")),
        (RequestQuery::new().task("nope"), Box::new(|_| false)),
        (RequestQuery::new().client("web"), Box::new(|r| r.client_id.as_deref() == Some("web"))),
        (RequestQuery::new().bank("bank-a"), Box::new(|r| r.bank_id.as_deref() == Some("bank-a"))),
        (RequestQuery::new().bank("bank-b"), Box::new(|r| r.bank_id.as_deref() == Some("bank-b"))),
        (RequestQuery::new().priority_range(3, 6), Box::new(|r| (3..=6).contains(&r.priority))),
        (RequestQuery::new().priority_range(10, 10), Box::new(|r| r.priority == 10)),
        (
            RequestQuery::new().created_between(Some(at(103)), Some(at(107))),
            Box::new(|r| r.created_at >= at(103) && r.created_at < at(107)),
        ),
        (RequestQuery::new().created_between(Some(at(105)), None), Box::new(|r| r.created_at >= at(105))),
        (RequestQuery::new().created_between(None, Some(at(102))), Box::new(|r| r.created_at < at(102))),
        (RequestQuery::new().meta("region", "eu"), Box::new(move |r| meta(r, "region") == Some(json!("eu")))),
        (
            RequestQuery::new().meta("region", "eu").meta("tier", 1),
            Box::new(move |r| meta(r, "region") == Some(json!("eu")) && meta(r, "tier") == Some(json!(1))),
        ),
        (RequestQuery::new().meta("region", "mars"), Box::new(|_| false)),
        (
            RequestQuery::new()
                .task("alpha")
                .status([RequestStatus::Assigned, RequestStatus::Processing])
                .client("web"),
            Box::new(|r| &*r.task_id == "alpha" && r.status.is_running() && r.client_id.as_deref() == Some("web")),
        ),
    ];
    for (q, pred) in cases {
        let expected: Vec<Request> = corpus.iter().filter(|r| pred(r)).cloned().collect();
        let page = all_of(&store, q.clone()).await;
        assert_eq!(id_set(&page.requests), id_set(&expected), "{q:?}");
        assert_eq!(page.total, expected.len(), "{q:?}");
        assert_eq!(page.next_cursor, None);
        for r in &page.requests {
            let stored = corpus.iter().find(|c| c.request_id == r.request_id);
            assert_eq!(Some(r), stored, "a page holds whole requests");
        }
    }
}

/// Every sort field, both orders: ties broken by id in the same order.
pub async fn query_sorts_by_every_field_both_ways<S: Store>(store: S) {
    let corpus = query_corpus(&store).await;
    for (field, order) in SORTS {
        let q = RequestQuery::new().sort(field, order);
        let page = all_of(&store, q.clone()).await;
        let got: Vec<RequestId> = page.requests.iter().map(|r| r.request_id).collect();
        assert_eq!(got, sorted(&corpus, field, order), "{field:?} {order:?}");
        let oracle = q.limit(atmo_core::query::MAX_PAGE_SIZE).paginate(corpus.clone()).expect("paginate");
        assert_eq!(page, oracle, "{field:?} {order:?}");
    }
}

/// Offset and limit page through the sorted result; past the end is empty; `total` is the
/// full count; the default page is 50, newest first.
pub async fn query_pages_by_offset_and_limit<S: Store>(store: S) {
    let corpus = query_corpus(&store).await;
    let full = sorted(&corpus, SortField::Priority, SortOrder::Desc);
    for (offset, limit) in [(0, 5), (5, 5), (30, 10), (35, 1), (36, 5), (100, 5), (0, 0), (3, 1000)] {
        let q = RequestQuery::new().sort(SortField::Priority, SortOrder::Desc).offset(offset).limit(limit);
        let page = store.query(q.clone()).await.expect("query");
        let size = limit.clamp(1, atmo_core::query::MAX_PAGE_SIZE);
        let start = offset.min(full.len());
        let end = (start + size).min(full.len());
        let got: Vec<RequestId> = page.requests.iter().map(|r| r.request_id).collect();
        assert_eq!(got, full[start..end].to_vec(), "offset {offset} limit {limit}");
        assert_eq!(page.total, full.len());
        assert_eq!(page, q.paginate(corpus.clone()).expect("paginate"), "offset {offset} limit {limit}");
    }
    let default = store.query(RequestQuery::new()).await.expect("query");
    assert_eq!(default.requests.len(), corpus.len().min(atmo_core::query::DEFAULT_PAGE_SIZE));
    assert_eq!(
        default.requests.iter().map(|r| r.request_id).collect::<Vec<_>>(),
        sorted(&corpus, SortField::Created, SortOrder::Desc)
    );
}

/// Following `next_cursor` visits every matching request once, in order, for every sort;
/// the last page has no cursor.
pub async fn query_cursor_walks_every_page<S: Store>(store: S) {
    let corpus = query_corpus(&store).await;
    for (field, order) in SORTS {
        for (size, filter) in [(5usize, None), (7, Some("web")), (36, None), (100, None)] {
            let mut base = RequestQuery::new().sort(field, order).limit(size);
            let mut expected_corpus = corpus.clone();
            if let Some(c) = filter {
                base = base.client(c);
                expected_corpus.retain(|r| r.client_id.as_deref() == Some(c));
            }
            let expected = sorted(&expected_corpus, field, order);
            let mut walked = Vec::new();
            let mut q = base.clone();
            let mut pages = 0;
            loop {
                let page = store.query(q.clone()).await.expect("query");
                assert_eq!(
                    page,
                    q.paginate(expected_corpus.clone()).expect("paginate"),
                    "{field:?} {order:?} page {pages}"
                );
                assert_eq!(page.total, expected.len());
                assert!(page.requests.len() <= size);
                walked.extend(page.requests.iter().map(|r| r.request_id));
                pages += 1;
                assert!(pages <= expected.len() + 1, "the walk ends");
                match page.next_cursor {
                    Some(c) => q = base.clone().after(c),
                    None => break,
                }
            }
            assert_eq!(walked, expected, "{field:?} {order:?} size {size}");
            assert_eq!(pages, expected.len().div_ceil(size).max(1), "{field:?} {order:?} size {size}");
        }
    }
}

/// A cursor that no query produced is an error, not an empty page.
pub async fn query_rejects_an_invalid_cursor<S: Store>(store: S) {
    query_corpus(&store).await;
    for bad in ["not a cursor!", "", "eDp5", "MTI6bm90LWFuLWlk"] {
        let out = store.query(RequestQuery::new().after(bad)).await;
        assert!(out.is_err(), "cursor {bad:?} must be rejected, got {out:?}");
    }
}
