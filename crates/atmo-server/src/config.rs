//! [`ServerConfig`]: limits, authentication and buffers of the HTTP server.

use std::path::PathBuf;
use std::time::Duration;

/// How the server behaves. Every field has a sensible default ([`ServerConfig::default`]).
///
/// ```
/// use atmo_server::ServerConfig;
/// use std::time::Duration;
/// let config = ServerConfig { auth_token: Some("s3cret".into()), ..ServerConfig::default() };
/// assert_eq!(config.max_wait, Duration::from_secs(60));
/// ```
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Bearer token every API call must carry (`Authorization: Bearer <token>`; the event
    /// stream also accepts `?token=`, since `EventSource` cannot send headers). `None`: no
    /// authentication, which [`check_bind`](crate::check_bind) allows on loopback addresses only.
    pub auth_token: Option<String>,
    /// Largest request body in bytes; a larger one gets 413.
    pub max_body_bytes: usize,
    /// Deepest nesting of arrays and objects accepted in a JSON body; a deeper one gets 400
    /// before it is parsed.
    pub max_json_depth: usize,
    /// Upper bound of the `?wait=` of long polls (the result of a request, a submission).
    pub max_wait: Duration,
    /// Events kept for clients resuming an event stream with `Last-Event-ID`; also how far a
    /// live client may fall behind before it receives a `lagged` event.
    pub event_buffer: usize,
    /// Interval of the keep-alive comments on event streams.
    pub keep_alive: Duration,
    /// How often `/v1/metrics/history` is sampled.
    pub history_interval: Duration,
    /// How many samples `/v1/metrics/history` keeps (900 one-second samples: 15 minutes).
    pub history_len: usize,
    /// The `Retry-After` header (seconds) sent with 429 (queue full) and 503 (shutting down).
    pub retry_after_secs: u64,
    /// Where cron schedules and their last runs are persisted (JSON, written atomically).
    /// `None`: schedules live in memory only.
    pub cron_state_path: Option<PathBuf>,
    /// Most missed runs a `run-all` schedule catches up at once after a downtime.
    pub cron_max_catch_up: usize,
    /// How late a cron run may start and still count as on time rather than missed.
    pub cron_grace: Duration,
    /// Origins (`https://app.example`) whose pages may call the API: they get CORS headers,
    /// and their state-changing requests pass the `Origin` check. Empty (the default): only
    /// the service's own pages (the dashboard) and clients that send no `Origin` (the CLI,
    /// curl, programs).
    pub cors_origins: Vec<String>,
    /// Host names, besides IP addresses and `localhost`, that a request's `Host` header may
    /// name (the name a proxy or DNS gives the service). Any other name is refused with 403
    /// `HOST_NOT_ALLOWED`, which defeats DNS rebinding.
    pub allowed_hosts: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            auth_token: None,
            max_body_bytes: 2 * 1024 * 1024,
            max_json_depth: 64,
            max_wait: Duration::from_secs(60),
            event_buffer: 4096,
            keep_alive: Duration::from_secs(15),
            history_interval: Duration::from_secs(1),
            history_len: 900,
            retry_after_secs: 1,
            cron_state_path: None,
            cron_max_catch_up: 100,
            cron_grace: Duration::from_secs(2),
            cors_origins: Vec::new(),
            allowed_hosts: Vec::new(),
        }
    }
}
