//! hookgate: a reverse proxy that verifies webhook signatures before forwarding.
//!
//! A request moves through the modules in this order: [`server`] accepts it, [`routes`] finds
//! its route, [`handler`] reads the [`body`] under the route's limit and calls [`verify`], and
//! [`forward`] sends what verified to the upstream. [`config`] builds everything at startup;
//! [`metrics`] and [`admin`] let operators watch it.
// One audited exception: `server::heap` asks glibc to return freed pages.
#![deny(unsafe_code)]

pub mod admin;
pub mod body;
pub mod challenge;
pub mod config;
pub mod forward;
pub mod handler;
pub mod metrics;
pub mod reload;
pub mod replay;
pub mod routes;
pub mod server;
pub mod slots;
pub mod tls;
pub mod upstream;
pub mod verify;
mod watchdog;

pub use server::Gateway;

/// Locks `mutex`, also after a holder panicked: every mutex here guards data that stays usable
/// (a pool, a timestamp, a spare box), and a panic in one request must not stop the others.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Binds the listeners of `config` and serves until `shutdown` completes.
pub async fn run(config: config::Config, shutdown: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
    Gateway::bind(config).await?.serve(shutdown).await;
    Ok(())
}
