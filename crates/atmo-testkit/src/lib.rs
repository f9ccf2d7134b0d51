//! # atmo-testkit
//!
//! Test support for Atmo Workers stores: the [`Store`](atmo_core::Store) conformance suite,
//! request fixtures, and benchmark helpers. It depends on `atmo-core` only, so every store
//! crate (memory, SQLite, PostgreSQL) runs the same suite.
//!
//! - [`conformance`]: one `pub async fn` per case, each taking a fresh store.
//! - [`store_conformance_tests!`]: expands to one `#[tokio::test]` per case, so that failures
//!   are reported one by one.
//! - [`fixtures`]: valid requests with overridable fields, fixed times, errors.
//! - [`hooked`]: a store wrapper with hooks (slow inserts, failing applies, a stopped store).
//! - [`bench`](mod@bench): drives a store through the request pipeline in batches and times each phase.
//!
//! ```ignore
//! mod memory {
//!     atmo_testkit::store_conformance_tests!(atmo_workers::store::MemoryStore::new());
//! }
//! ```

// A test-support crate: a failed expectation is a test failure, and panicking with a message
// is how a test reports it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod bench;
pub mod conformance;
pub mod fixtures;
pub mod hooked;

/// Defines one `#[tokio::test]` (multi-threaded runtime, 2 workers) per conformance case.
///
/// `$make` is an expression evaluated once per test, inside the async test body, so it may
/// `.await` (`open_store().await`). The calling crate needs `tokio` with the `macros` and
/// `rt-multi-thread` features.
///
/// ```ignore
/// atmo_testkit::store_conformance_tests!(atmo_workers::store::MemoryStore::new());
/// ```
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::__conformance_cases! { @tests $make }
    };
}

/// Runs every conformance case in turn, each on a store from `make`; panics at the first
/// failure. Prefer [`store_conformance_tests!`], which reports each case separately.
pub async fn run_all<S: atmo_core::Store>(make: impl Fn() -> S) {
    crate::__conformance_cases!(@run make());
}

/// The names of the conformance cases, in the order [`run_all`] runs them.
pub fn case_names() -> &'static [&'static str] {
    crate::__conformance_cases!(@names)
}

/// The one list of cases, expanded as tests, as calls, or as names.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    (@tests $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $make;
                $crate::conformance::$case(store).await;
            }
        )*
    };
    (@run $make:expr; $($case:ident),* $(,)?) => {
        $( $crate::conformance::$case($make).await; )*
    };
    (@names; $($case:ident),* $(,)?) => {
        &[$(stringify!($case)),*]
    };
    (@names) => {
        $crate::__conformance_cases! { @list @names; }
    };
    (@list @$mode:ident $($make:expr)?;) => {
        $crate::__conformance_cases! { @$mode $($make)?;
            // insert
            insert_and_get_round_trip,
            idempotency_key_dedupes_across_batches,
            idempotency_key_dedupes_within_a_batch,
            requests_without_keys_never_dedupe,
            // claim
            claim_orders_by_priority_then_fifo,
            claim_takes_only_listed_tasks,
            claim_respects_limit,
            claim_assigns_counts_attempt_and_leases,
            claim_merges_tasks_by_priority,
            claim_skips_scheduled_requests,
            concurrent_claims_are_exclusive,
            // transitions
            lifecycle_to_completed,
            every_legal_transition_applies,
            every_illegal_transition_is_rejected,
            stale_attempt_cannot_overwrite,
            terminal_states_never_change,
            unknown_request_is_not_found,
            apply_batch_in_order,
            cancel_from_each_non_terminal_state,
            cancelled_requests_do_not_block_the_queue,
            // schedule
            retry_schedules_then_promotes_at_run_at,
            delayed_submissions_promote_in_run_at_order,
            promote_scheduled_takes_the_earliest_first,
            direct_promote_then_retry_uses_the_new_run_at,
            // rescue
            rescue_expired_returns_only_expired_leases,
            heartbeat_extends_the_owners_leases,
            rescued_request_is_claimable_again,
            rescue_owner_returns_what_the_owner_held,
            finishing_releases_the_lease,
            // query
            query_filters_by_every_field,
            query_sorts_by_every_field_both_ways,
            query_pages_by_offset_and_limit,
            query_cursor_walks_every_page,
            query_rejects_an_invalid_cursor,
            // metrics
            metrics_of_an_empty_store,
            metrics_count_by_status,
            metrics_count_finished_in_window,
            metrics_rank_top_errors,
            metrics_summarise_processing_time,
            // retention
            retention_deletes_by_age,
            retention_keeps_the_newest_by_count,
            retention_honours_the_batch_limit,
            retention_frees_keys_and_spares_unfinished,
        }
    };
    // Last: `@list` must not be taken for a mode followed by an expression.
    (@$mode:ident $make:expr) => {
        $crate::__conformance_cases! { @list @$mode $make; }
    };
}
