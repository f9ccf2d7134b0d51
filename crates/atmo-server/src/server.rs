//! [`Server`]: the shared state, the router and serving.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use atmo_workers::WorkerManager;
use axum::Router;
use tokio::sync::watch;

use crate::config::ServerConfig;
use crate::cron::CronScheduler;
use crate::error::ServerError;
use crate::hub::EventHub;
use crate::monitor::{self, Monitor};
use crate::routes;

/// What every handler shares.
pub(crate) struct Shared {
    pub(crate) manager: WorkerManager,
    pub(crate) config: ServerConfig,
    pub(crate) hub: Arc<EventHub>,
    pub(crate) monitor: Arc<Monitor>,
    pub(crate) cron: CronScheduler,
    /// `true` once shutdown began (the drain): readiness fails and writes get 503, while
    /// reads, result waits and event streams go on.
    pub(crate) shutting_down: Arc<watch::Sender<bool>>,
    /// `true` once the server closes (after the drain): event streams and long polls end so
    /// that the connections finish.
    pub(crate) closing: watch::Sender<bool>,
    /// Dropped with the last clone of the state, which stops the background tasks.
    _stop: watch::Sender<bool>,
}

/// The state handlers receive: cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState(pub(crate) Arc<Shared>);

impl AppState {
    pub(crate) fn config(&self) -> &ServerConfig {
        &self.0.config
    }

    pub(crate) fn manager(&self) -> &WorkerManager {
        &self.0.manager
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        *self.0.shutting_down.borrow()
    }

    /// Whether the store still takes writes (see `Store::health`).
    pub(crate) fn store_health(&self) -> Result<(), atmo_workers::StoreError> {
        self.manager().request_manager().store().health()
    }

    /// Whether the server takes work: not shutting down, and its store takes writes.
    pub(crate) fn is_ready(&self) -> bool {
        !self.is_shutting_down() && self.store_health().is_ok()
    }

    /// Resolves once the server closes (the drain is over).
    pub(crate) async fn closing_signal(&self) {
        let mut rx = self.0.closing.subscribe();
        // An error means the sender is gone, which also means shutting down.
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// The HTTP server of Atmo Workers: the JSON API, event streams, Prometheus metrics, cron
/// schedules and the dashboard, over one [`WorkerManager`].
///
/// ```no_run
/// use atmo_server::{Server, ServerConfig, check_bind};
/// # async fn run(manager: atmo_workers::WorkerManager) -> Result<(), Box<dyn std::error::Error>> {
/// let addr: std::net::SocketAddr = "127.0.0.1:7700".parse()?;
/// let config = ServerConfig::default();
/// check_bind(addr, config.auth_token.as_deref())?;
/// let server = Server::new(manager.clone(), config)?;
/// let listener = tokio::net::TcpListener::bind(addr).await?;
/// let stop = async { /* resolve on SIGTERM or Ctrl-C */ };
/// server.serve(listener, stop).await?;
/// manager.shutdown(std::time::Duration::from_secs(10)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Server {
    state: AppState,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("config", &self.state.0.config).finish_non_exhaustive()
    }
}

impl Server {
    /// A server over `manager`. Starts, on the current tokio runtime, the event pump (engine
    /// events into the resumable buffer and the counters), the history sampler and the cron
    /// loop; they stop when the last clone of the server and its routers is dropped.
    ///
    /// # Errors
    /// [`ServerError::NoRuntime`] outside a tokio runtime; [`ServerError::Cron`] when the cron
    /// state file exists but cannot be read or parsed.
    pub fn new(manager: WorkerManager, config: ServerConfig) -> Result<Server, ServerError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| ServerError::NoRuntime)?;
        let cron = CronScheduler::new(
            manager.request_manager().clone(),
            config.cron_state_path.clone(),
            config.cron_grace,
            config.cron_max_catch_up,
        )?;
        let hub = Arc::new(EventHub::new(config.event_buffer));
        let monitor = Arc::new(Monitor::new(config.history_interval, config.history_len));
        let (stop, stop_rx) = watch::channel(false);
        let shutting_down = Arc::new(watch::channel(false).0);
        handle.spawn(monitor::pump(
            manager.subscribe(),
            hub.clone(),
            monitor.clone(),
            shutting_down.clone(),
            stop_rx.clone(),
        ));
        handle.spawn(monitor::sampler(manager.clone(), monitor.clone(), stop_rx.clone()));
        handle.spawn(cron.clone().run(stop_rx));
        let closing = watch::channel(false).0;
        let shared = Shared { manager, config, hub, monitor, cron, shutting_down, closing, _stop: stop };
        Ok(Server { state: AppState(Arc::new(shared)) })
    }

    /// Every route, with authentication, limits and JSON fallbacks: serve it, or call it in
    /// tests with `tower::ServiceExt::oneshot`.
    pub fn router(&self) -> Router {
        routes::router(self.state.clone())
    }

    /// The cron scheduler, to add the schedules of a configuration file.
    pub fn cron(&self) -> &CronScheduler {
        &self.state.0.cron
    }

    /// The engine.
    pub fn manager(&self) -> &WorkerManager {
        &self.state.0.manager
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.state.0.config
    }

    /// Marks the server as shutting down (the drain): `/readyz` answers 503 and writes 503
    /// `SHUTTING_DOWN` with `Retry-After`, while reads, result waits and event streams keep
    /// working. [`Server::serve_with_drain`] does this when its shutdown future resolves; the
    /// engine's own shutdown does too.
    pub fn begin_shutdown(&self) {
        self.state.0.shutting_down.send_replace(true);
    }

    /// Ends event streams and long polls, so that the connections in flight finish (the end
    /// of a graceful shutdown).
    fn close(&self) {
        self.begin_shutdown();
        self.state.0.closing.send_replace(true);
    }

    /// Whether the server takes work (`/readyz`): it is not shutting down and its store still
    /// takes writes.
    pub fn is_ready(&self) -> bool {
        self.state.is_ready()
    }

    /// Serves on `listener` until `shutdown` resolves, then closes at once: stops accepting
    /// connections, ends event streams and long polls, and returns once the connections in
    /// flight are done. The caller then drains the engine (`WorkerManager::shutdown`). A
    /// service wants [`Server::serve_with_drain`], which keeps serving during the drain.
    ///
    /// # Errors
    /// An I/O error of the listener.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.router();
        let server = self.clone();
        let signal = async move {
            shutdown.await;
            server.close();
        };
        axum::serve(listener, router).with_graceful_shutdown(signal).await
    }

    /// Serves on `listener` until `shutdown` resolves, then drains and closes:
    ///
    /// 1. the drain: `/readyz` answers 503 and writes (submissions, cancels, cron changes) get
    ///    503 `SHUTTING_DOWN` with `Retry-After`, while reads and result waits keep working
    ///    and new connections are still accepted; meanwhile the engine shuts down
    ///    (`WorkerManager::shutdown(drain)`: running requests get up to `drain` to finish);
    /// 2. then the listener closes, event streams and long polls end, and this returns once
    ///    the connections in flight are done.
    ///
    /// # Errors
    /// An I/O error of the listener ([`ServerError::Io`]), or the engine's shutdown failing
    /// ([`ServerError::Shutdown`]).
    pub async fn serve_with_drain(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
        drain: std::time::Duration,
    ) -> Result<(), ServerError> {
        let router = self.router();
        let server = self.clone();
        let (drained_tx, drained_rx) = tokio::sync::oneshot::channel();
        let signal = async move {
            shutdown.await;
            server.begin_shutdown();
            tracing::info!(drain_secs = drain.as_secs_f64(), "shutting down: draining");
            let result = server.manager().shutdown(drain).await;
            server.close();
            let _ = drained_tx.send(result);
        };
        axum::serve(listener, router).with_graceful_shutdown(signal).await?;
        match drained_rx.await {
            Ok(Err(e)) => Err(ServerError::Shutdown(e)),
            // `Err(_)`: serving ended before a shutdown was asked for (it cannot, but then
            // there is nothing to report either).
            Ok(Ok(())) | Err(_) => Ok(()),
        }
    }
}

/// Refuses to listen beyond loopback without a bearer token.
///
/// ```
/// use atmo_server::check_bind;
/// assert!(check_bind("127.0.0.1:7700".parse().unwrap(), None).is_ok());
/// assert!(check_bind("0.0.0.0:7700".parse().unwrap(), None).is_err());
/// assert!(check_bind("0.0.0.0:7700".parse().unwrap(), Some("s3cret")).is_ok());
/// ```
///
/// # Errors
/// [`ServerError::InsecureBind`] for a non-loopback address without a (non-empty) token.
pub fn check_bind(addr: SocketAddr, token: Option<&str>) -> Result<(), ServerError> {
    let has_token = token.is_some_and(|t| !t.trim().is_empty());
    if addr.ip().is_loopback() || has_token { Ok(()) } else { Err(ServerError::InsecureBind { addr }) }
}
