//! Which rows of a coordinated read are re-sends, as pure state: the message ids seen (a
//! message re-sent to the other platform after a failover has the same id), bounded.
//!
//! A snapshot read keeps every id it saw and fails once it would keep more than its limit
//! (rather than let a duplicate through unnoticed); a followed read keeps the latest `limit`
//! ids and forgets the oldest (a re-send further back than that is not recognised).
//!
//! `'dedup' 'variant'` keeps one row per canonical variant key, the last written
//! ([`LatestPerKey`]: greatest `_timestamp`, then greatest `_offset`), found by a first pass
//! over the snapshot; it too fails past its limit of keys.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};

/// Which rows of a coordinated read are the same row (`'dedup'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dedup {
    /// One row per message id: a re-sent message is read once.
    Message,
    /// One row per canonical variant key (`_key`), the one written last; rows without a key
    /// are kept (a message each).
    Variant,
}

/// What a full window does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Fail the read (snapshots: every duplicate must be found).
    Fail,
    /// Forget the oldest id (follow mode: the window slides).
    Forget,
}

/// The window is full and forgetting is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full(pub usize);

/// Message ids seen so far.
#[derive(Debug)]
pub struct SeenIds {
    seen: HashSet<u128>,
    /// Arrival order, kept only when the window slides.
    order: VecDeque<u128>,
    limit: usize,
    when_full: WhenFull,
}

impl SeenIds {
    /// At most `limit` ids kept (at least 1).
    pub fn new(limit: usize, when_full: WhenFull) -> Self {
        SeenIds {
            seen: HashSet::new(),
            order: VecDeque::new(),
            limit: limit.max(1),
            when_full,
        }
    }

    /// Whether `id` is seen for the first time (a row to keep); `Err` when it would be
    /// remembered beyond the limit of a window that may not forget.
    pub fn first_time(&mut self, id: u128) -> Result<bool, Full> {
        if self.seen.contains(&id) {
            return Ok(false);
        }
        if self.seen.len() >= self.limit {
            match self.when_full {
                WhenFull::Fail => return Err(Full(self.limit)),
                WhenFull::Forget => {
                    if let Some(oldest) = self.order.pop_front() {
                        self.seen.remove(&oldest);
                    }
                }
            }
        }
        self.seen.insert(id);
        if self.when_full == WhenFull::Forget {
            self.order.push_back(id);
        }
        Ok(true)
    }

    /// Ids kept now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no id is kept.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// The message written last for each variant key, as pure state.
#[derive(Debug)]
pub struct LatestPerKey {
    latest: HashMap<String, (i64, i64, u128)>,
    limit: usize,
}

impl LatestPerKey {
    /// At most `limit` keys kept (at least 1).
    pub fn new(limit: usize) -> Self {
        LatestPerKey {
            latest: HashMap::new(),
            limit: limit.max(1),
        }
    }

    /// Message `id` of `key`, written at `timestamp` (ms) at `offset` of its partition; `Err`
    /// when a new key would go beyond the limit.
    pub fn offer(&mut self, key: &str, timestamp: i64, offset: i64, id: u128) -> Result<(), Full> {
        let len = self.latest.len();
        if let Some(latest) = self.latest.get_mut(key) {
            if (timestamp, offset) > (latest.0, latest.1) {
                *latest = (timestamp, offset, id);
            }
            return Ok(());
        }
        if len >= self.limit {
            return Err(Full(self.limit));
        }
        if let Entry::Vacant(slot) = self.latest.entry(key.to_string()) {
            slot.insert((timestamp, offset, id));
        }
        Ok(())
    }

    /// The ids of the last-written messages, one per key.
    pub fn winners(self) -> HashSet<u128> {
        self.latest.into_values().map(|(_, _, id)| id).collect()
    }
}

/// A 32-hex-digit id (the `_id` column) as a number.
pub fn parse_id(hex: &str) -> Option<u128> {
    (hex.len() == 32)
        .then(|| u128::from_str_radix(hex, 16).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_re_sent_id_is_dropped_wherever_it_comes_from() {
        let mut seen = SeenIds::new(10, WhenFull::Fail);
        assert_eq!(seen.first_time(1), Ok(true));
        assert_eq!(seen.first_time(2), Ok(true));
        assert_eq!(seen.first_time(1), Ok(false));
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn a_snapshot_window_fails_when_full_and_never_forgets() {
        let mut seen = SeenIds::new(2, WhenFull::Fail);
        seen.first_time(1).unwrap();
        seen.first_time(2).unwrap();
        // an id already kept is still recognised when full
        assert_eq!(seen.first_time(2), Ok(false));
        assert_eq!(seen.first_time(3), Err(Full(2)));
        assert_eq!(seen.first_time(1), Ok(false));
    }

    #[test]
    fn a_following_window_forgets_the_oldest() {
        let mut seen = SeenIds::new(2, WhenFull::Forget);
        seen.first_time(1).unwrap();
        seen.first_time(2).unwrap();
        assert_eq!(seen.first_time(3), Ok(true));
        assert_eq!(seen.len(), 2);
        assert_eq!(seen.first_time(2), Ok(false));
        // 1 was forgotten; remembering it again forgets 2, the oldest left
        assert_eq!(seen.first_time(1), Ok(true));
        assert_eq!(seen.first_time(3), Ok(false));
        assert_eq!(seen.first_time(2), Ok(true));
    }

    #[test]
    fn the_last_written_message_of_a_key_wins() {
        let mut latest = LatestPerKey::new(10);
        latest.offer("chr1:10:A:C", 100, 5, 1).unwrap();
        latest.offer("chr1:10:A:C", 200, 1, 2).unwrap();
        // older: ignored whatever its offset
        latest.offer("chr1:10:A:C", 150, 9, 3).unwrap();
        // the same millisecond: the later offset
        latest.offer("chr2:5:G:T", 100, 1, 4).unwrap();
        latest.offer("chr2:5:G:T", 100, 2, 5).unwrap();
        latest.offer("chr2:5:G:T", 100, 0, 6).unwrap();
        assert_eq!(latest.winners(), HashSet::from([2, 5]));
    }

    #[test]
    fn keys_beyond_the_limit_fail_and_known_keys_still_update() {
        let mut latest = LatestPerKey::new(1);
        latest.offer("a", 1, 0, 1).unwrap();
        assert_eq!(latest.offer("b", 1, 0, 2), Err(Full(1)));
        latest.offer("a", 2, 0, 3).unwrap();
        assert_eq!(latest.winners(), HashSet::from([3]));
    }

    #[test]
    fn ids_parse_from_32_hex_digits_only() {
        assert_eq!(parse_id("0000000000000000000000000000000a"), Some(10));
        assert_eq!(parse_id("a"), None);
        assert_eq!(parse_id("zz000000000000000000000000000000"), None);
    }
}
