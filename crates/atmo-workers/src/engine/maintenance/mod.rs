//! Background services, one per file (as River's `internal/maintenance/`): the
//! [`scheduler`], the [`leases`] keeper and the [`retention`] sweeper.

use std::time::Duration;

pub(crate) mod leases;
pub(crate) mod retention;
pub(crate) mod scheduler;

/// Promoted per store call.
const PROMOTE_BATCH: usize = 1024;
/// How soon a service retries after its store failed.
const STORE_RETRY: Duration = Duration::from_secs(1);
