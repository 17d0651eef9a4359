//! The shared store: a Redis that every replica of the gateway asks, so a delivery one replica
//! took is a replay at all of them.
//!
//! One key per delivery, `hookgate:replay:<hex SHA-256>`, set atomically with `SET key token NX
//! PX ttl`, and released with a compare-and-delete script so a late release never removes
//! another request's entry. The connection is made on first use and re-made by the
//! `ConnectionManager` after Redis goes away; every operation is bounded by the route's
//! `timeout`, so a hung Redis delays a request by at most that.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError, Script};
use tokio::sync::OnceCell;

use super::Token;
use super::key::Key;

/// Removes the key only if it still holds this reservation's token.
const RELEASE: &str =
    r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#;

/// A Redis reached through one multiplexed, self-healing connection.
pub struct RedisStore {
    client: Client,
    timeout: Duration,
    connection: OnceCell<ConnectionManager>,
    release: Script,
}

/// Why a store operation did not complete.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no answer from redis within {0:?}")]
    Timeout(Duration),
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
}

impl RedisStore {
    /// A store for `client`'s server; nothing connects until the first operation.
    pub fn new(client: Client, timeout: Duration) -> Self {
        Self { client, timeout, connection: OnceCell::new(), release: Script::new(RELEASE) }
    }

    /// Sets `key` to `token` for `ttl` unless it exists: `true` when it was set.
    pub async fn insert(&self, key: &Key, token: Token, ttl: Duration) -> Result<bool, StoreError> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.bounded(async {
            let mut connection = self.connection().await?;
            let set: Option<String> = redis::cmd("SET")
                .arg(redis_key(key))
                .arg(token_text(token))
                .arg("NX")
                .arg("PX")
                .arg(millis)
                .query_async(&mut connection)
                .await?;
            Ok(set.is_some())
        })
        .await
    }

    /// Deletes `key` if it still holds `token`.
    pub async fn remove(&self, key: &Key, token: Token) -> Result<(), StoreError> {
        self.bounded(async {
            let mut connection = self.connection().await?;
            let _: i64 = self.release.key(redis_key(key)).arg(token_text(token)).invoke_async(&mut connection).await?;
            Ok(())
        })
        .await
    }

    async fn bounded<T>(&self, operation: impl Future<Output = Result<T, RedisError>>) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        }
    }

    async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        let manager = self
            .connection
            .get_or_try_init(|| async {
                // Each attempt and each answer is bounded; a failed connection is retried once
                // in the background and then on the next request, never in a tight loop.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_secs(1));
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            })
            .await?;
        Ok(manager.clone())
    }
}

fn redis_key(key: &Key) -> String {
    format!("hookgate:replay:{}", hex::encode(key.0))
}

fn token_text(token: Token) -> String {
    format!("{token:032x}")
}
