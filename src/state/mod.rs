//! State: the small key-value store behind stateful alerting (idempotency, dedup windows,
//! correlations, first-seen rules), as one trait with two implementations.
//!
//! A store holds versioned JSON items under string keys and offers exactly three
//! operations: a consistent read, a write that succeeds only if the item is still at the
//! version the writer read (compare-and-set), and a delete under the same condition.
//! Every semantic decision is made in pure code ([`crate::stateful`]) over what was read,
//! then written back conditionally, so concurrent Lambda instances agree: the loser of a
//! race reads again and decides again. [`MemoryStore`] backs `trailwatch scan` (a backtest
//! over archives has the same semantics as live); the DynamoDB store lives in `aws`.
//!
//! Items carry an expiry (`expires_at`, epoch seconds) for DynamoDB's TTL, which deletes
//! late and lazily; the semantics never rely on it, only on times stored in the items.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

/// One stored item: its data and the version that data was written at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Incremented by every write; 1 for a new item.
    pub version: u64,
    /// The item's data (JSON).
    pub data: String,
}

/// What a conditional write or delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The item was at the expected version (or absent, when none was expected).
    Yes,
    /// Someone else wrote it first: read again and decide again.
    Conflict,
}

/// Why the store could not answer. The invocation fails so Lambda retries the batch:
/// never dropping alerts, never flooding them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The store did not answer (network, throttling, permissions, missing table).
    #[error("state store unavailable during {operation} of {key}: {reason}")]
    Unavailable {
        /// The operation (get, put, delete).
        operation: &'static str,
        /// The item key.
        key: String,
        /// What the store or the SDK said.
        reason: String,
    },
    /// An item exists but does not hold what this version of trailwatch writes.
    #[error("state item {key} is unreadable: {reason}")]
    Corrupt {
        /// The item key.
        key: String,
        /// Why it could not be read.
        reason: String,
    },
    /// Writers kept racing on one item; the retry of the invocation will try again.
    #[error("state item {key} changed under every one of {attempts} attempts")]
    Contended {
        /// The item key.
        key: String,
        /// Attempts made.
        attempts: u32,
    },
}

/// A versioned key-value store with conditional writes.
pub trait StateStore {
    /// The item at `key`, read consistently.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Stored>, StateError>>;

    /// Writes `data` at `key` if the item is at version `expected` (`None`: if there is
    /// no item), as version `expected + 1`.
    fn put(
        &self,
        key: &str,
        data: &str,
        expires_at: i64,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<Written, StateError>>;

    /// Deletes the item at `key` if it is at version `expected`.
    fn delete(&self, key: &str, expected: u64)
    -> impl Future<Output = Result<Written, StateError>>;
}

/// State in process memory: `trailwatch scan`'s backtests, unit tests, and a Lambda run
/// without a table (local runs; state then lasts as long as the warm container).
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: Mutex<HashMap<String, (u64, String, i64)>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Number of items held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no item is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, String, i64)>> {
        // A panic while holding the lock cannot leave an item half-written (each
        // operation is one insert or remove), so a poisoned map is still consistent.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl StateStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Stored>, StateError> {
        Ok(self.lock().get(key).map(|(version, data, _)| Stored {
            version: *version,
            data: data.clone(),
        }))
    }

    async fn put(
        &self,
        key: &str,
        data: &str,
        expires_at: i64,
        expected: Option<u64>,
    ) -> Result<Written, StateError> {
        let mut items = self.lock();
        let current = items.get(key).map(|(version, _, _)| *version);
        if current != expected {
            return Ok(Written::Conflict);
        }
        let version = expected.map_or(1, |v| v + 1);
        items.insert(key.to_owned(), (version, data.to_owned(), expires_at));
        Ok(Written::Yes)
    }

    async fn delete(&self, key: &str, expected: u64) -> Result<Written, StateError> {
        let mut items = self.lock();
        match items.get(key) {
            Some((version, _, _)) if *version == expected => {
                items.remove(key);
                Ok(Written::Yes)
            }
            _ => Ok(Written::Conflict),
        }
    }
}

/// Runs a future that never waits on I/O (the [`MemoryStore`]'s, in the synchronous
/// CLI) to completion on this thread.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_succeed_only_at_the_version_read() {
        let store = MemoryStore::new();
        assert_eq!(block_on(store.get("k")), Ok(None));
        assert_eq!(block_on(store.put("k", "a", 0, None)), Ok(Written::Yes));
        assert_eq!(
            block_on(store.put("k", "b", 0, None)),
            Ok(Written::Conflict)
        );
        let item = block_on(store.get("k")).unwrap().unwrap();
        assert_eq!((item.version, item.data.as_str()), (1, "a"));
        assert_eq!(block_on(store.put("k", "c", 0, Some(1))), Ok(Written::Yes));
        assert_eq!(
            block_on(store.put("k", "d", 0, Some(1))),
            Ok(Written::Conflict)
        );
        assert_eq!(block_on(store.delete("k", 1)), Ok(Written::Conflict));
        assert_eq!(block_on(store.delete("k", 2)), Ok(Written::Yes));
        assert!(store.is_empty());
    }
}
