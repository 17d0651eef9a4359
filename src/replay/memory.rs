//! The in-process store: the keys one gateway has seen on one route, each until its expiry.
//!
//! Bounded in time and space: a hash map answers "seen?" in O(1), and an ordered set of
//! (expiry, key) finds what to drop in O(log n). Expired entries go first; when the store is
//! full of live ones, the one that expires soonest (the least protection lost) makes room. It
//! never holds more than its capacity, and allocates nothing per request beyond the entry.

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Token;
use super::key::Key;

/// A bounded set of keys with expiries.
pub struct Seen {
    capacity: NonZeroUsize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    by_expiry: BTreeSet<(Instant, Key)>,
}

#[derive(Clone, Copy)]
struct Entry {
    expires: Instant,
    /// Which reservation made the entry, so a late release cannot remove a newer one.
    token: Token,
}

/// What [`Seen::insert`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Insert {
    /// Recorded; `evicted` live entries were dropped to make room (0 or 1).
    Inserted { evicted: u64 },
    /// The key is there and has not expired.
    Present,
}

impl Seen {
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self { capacity, inner: Mutex::new(Inner::default()) }
    }

    /// Records `key` until `now + ttl` unless a live entry has it already.
    pub fn insert(&self, key: Key, token: Token, ttl: Duration, now: Instant) -> Insert {
        let mut inner = crate::lock(&self.inner);
        inner.expire(now);
        if inner.entries.contains_key(&key) {
            return Insert::Present;
        }
        let mut evicted = 0;
        while inner.entries.len() >= self.capacity.get() {
            inner.pop_soonest();
            evicted += 1;
        }
        let expires = now.checked_add(ttl).unwrap_or(now + super::MAX_TTL);
        inner.entries.insert(key, Entry { expires, token });
        inner.by_expiry.insert((expires, key));
        Insert::Inserted { evicted }
    }

    /// Forgets `key` if the entry is still the one `token` made.
    pub fn remove(&self, key: &Key, token: Token) {
        let mut inner = crate::lock(&self.inner);
        if let Some(entry) = inner.entries.get(key).copied()
            && entry.token == token
        {
            inner.entries.remove(key);
            inner.by_expiry.remove(&(entry.expires, *key));
        }
    }

    /// Entries held now, expired ones included until the next insert drops them.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        crate::lock(&self.inner).entries.len()
    }
}

impl Inner {
    fn expire(&mut self, now: Instant) {
        while let Some(&(expires, _)) = self.by_expiry.first()
            && expires <= now
        {
            self.pop_soonest();
        }
    }

    fn pop_soonest(&mut self) {
        if let Some((_, key)) = self.by_expiry.pop_first() {
            self.entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        Key([n; 32])
    }

    fn seen(capacity: usize) -> Seen {
        Seen::new(NonZeroUsize::new(capacity).expect("non-zero"))
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_key_is_present_until_it_expires() {
        let (seen, start) = (seen(10), Instant::now());
        assert_eq!(seen.insert(key(1), 1, MINUTE, start), Insert::Inserted { evicted: 0 });
        assert_eq!(seen.insert(key(1), 2, MINUTE, start + MINUTE / 2), Insert::Present);
        assert_eq!(seen.insert(key(2), 3, MINUTE, start), Insert::Inserted { evicted: 0 });
        assert_eq!(seen.insert(key(1), 4, MINUTE, start + MINUTE), Insert::Inserted { evicted: 0 }, "expired");
    }

    #[test]
    fn never_holds_more_than_its_capacity_and_evicts_the_soonest_to_expire() {
        let (seen, start) = (seen(3), Instant::now());
        // Key 1 lives longest; keys 2..=9 come later but expire sooner.
        assert_eq!(seen.insert(key(1), 1, 10 * MINUTE, start), Insert::Inserted { evicted: 0 });
        let mut evicted = 0;
        for n in 2..=9 {
            match seen.insert(key(n), u128::from(n), MINUTE, start + Duration::from_millis(u64::from(n))) {
                Insert::Inserted { evicted: e } => evicted += e,
                Insert::Present => panic!("key {n} is new"),
            }
            assert!(seen.len() <= 3, "{} entries", seen.len());
        }
        assert_eq!(evicted, 6);
        assert_eq!(seen.insert(key(1), 10, MINUTE, start), Insert::Present, "the longest-lived entry survived");
        assert_eq!(seen.insert(key(9), 11, MINUTE, start), Insert::Present, "the newest survived");
        assert_eq!(seen.insert(key(2), 12, MINUTE, start), Insert::Inserted { evicted: 1 }, "the soonest went");
    }

    #[test]
    fn expired_entries_make_room_before_live_ones_are_evicted() {
        let (seen, start) = (seen(2), Instant::now());
        seen.insert(key(1), 1, Duration::from_secs(1), start);
        seen.insert(key(2), 2, MINUTE, start);
        assert_eq!(seen.insert(key(3), 3, MINUTE, start + Duration::from_secs(2)), Insert::Inserted { evicted: 0 });
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn only_the_reservation_that_made_an_entry_removes_it() {
        let (seen, start) = (seen(10), Instant::now());
        seen.insert(key(1), 1, Duration::from_secs(1), start);
        // Expired and taken again by another request: the first one's release must not free it.
        seen.insert(key(1), 2, MINUTE, start + Duration::from_secs(2));
        seen.remove(&key(1), 1);
        assert_eq!(seen.insert(key(1), 3, MINUTE, start + Duration::from_secs(3)), Insert::Present);
        seen.remove(&key(1), 2);
        assert_eq!(seen.insert(key(1), 4, MINUTE, start + Duration::from_secs(3)), Insert::Inserted { evicted: 0 });
    }
}
