//! Hot reload: SIGHUP, or a change of the config file's contents, loads and validates the file
//! and swaps the routes in one step. In-flight requests finish on the snapshot they loaded; an
//! invalid file is refused, logged, counted, and the old config keeps serving.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{self, Config, ConfigError};
use crate::handler::{AppState, Snapshot};
use crate::verify::UnixTime;

/// How often the config file is checked for changes (a Kubernetes ConfigMap update arrives as
/// a new file behind a symlink, so its contents are compared, not inotify events).
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What the listeners were set up with: these cannot change without a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerSettings {
    /// As configured (port 0 stays 0).
    pub listen: std::net::SocketAddr,
    pub admin_listen: std::net::SocketAddr,
    pub preserve_header_case: bool,
}

impl ListenerSettings {
    pub fn of(config: &Config) -> Self {
        Self {
            listen: config.listen,
            admin_listen: config.admin_listen,
            preserve_header_case: config.preserve_header_case,
        }
    }
}

/// Applies new configs to a running gateway.
#[derive(Clone)]
pub struct Reloader {
    state: Arc<AppState>,
    path: PathBuf,
    listeners: ListenerSettings,
}

impl Reloader {
    pub(crate) fn new(state: Arc<AppState>, path: PathBuf, listeners: ListenerSettings) -> Self {
        Self { state, path, listeners }
    }

    /// Loads the file and, if it is valid, makes it the config in use.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let now = UnixTime::now().as_nanos() as f64 / 1e9;
        match config::load(&self.path) {
            Ok(config) => {
                self.apply(config);
                self.state.metrics.record_reload(true, now);
                Ok(())
            }
            Err(error) => {
                tracing::error!(path = %self.path.display(), %error, "config reload refused; the previous config keeps serving");
                self.state.metrics.record_reload(false, now);
                Err(error)
            }
        }
    }

    /// Swaps in a validated config.
    pub fn apply(&self, mut config: Config) {
        if ListenerSettings::of(&config) != self.listeners {
            tracing::warn!(listen = %config.listen, admin_listen = %config.admin_listen,
                preserve_header_case = config.preserve_header_case,
                "listener settings changed in the config; they take effect only after a restart");
        }
        let routes = config.routes.len();
        // A route whose replay store did not change keeps the keys it has seen.
        crate::replay::adopt(self.state.snapshot.load().routes.routes(), &mut config.routes);
        self.state.snapshot.store(Arc::new(Snapshot::new(config, &self.state.metrics)));
        tracing::info!(path = %self.path.display(), routes, "config reloaded");
    }

    /// Reloads on SIGHUP and whenever the file's contents change, until `stop` completes. The
    /// SIGHUP handler is installed before this returns (SIGHUP's default action kills).
    pub fn watch(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<impl std::future::Future<Output = ()>> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup())?;
        Ok(async move {
            let mut seen = std::fs::read(&self.path).ok();
            let mut poll = tokio::time::interval(POLL_INTERVAL);
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    _ = hangup.recv() => {
                        tracing::info!("SIGHUP received: reloading the config");
                        seen = std::fs::read(&self.path).ok();
                        let _ = self.reload();
                    }
                    _ = poll.tick() => {
                        let current = std::fs::read(&self.path).ok();
                        if current.is_some() && current != seen {
                            seen = current;
                            tracing::info!(path = %self.path.display(), "config file changed: reloading");
                            let _ = self.reload();
                        }
                    }
                    () = &mut stop => return,
                }
            }
        })
    }
}
