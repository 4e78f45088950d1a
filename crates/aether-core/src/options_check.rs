//! The accepted range of each [`Options`] field, checked by [`Options::validate`] so an
//! out-of-range value is an [`Error::InvalidInput`] naming the field, never a panic or
//! an allocation failure deep inside sled or the notification channel.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::notify::check_channel_capacity;
use crate::sled_store::{Options, SEGMENT_SIZE_RANGE};

impl Options {
    /// Smallest accepted `cache_capacity`, 1 MiB. sled panics below 256 bytes (its
    /// cache has 256 shards); below a megabyte it evicts on almost every read.
    pub const MIN_CACHE_CAPACITY: u64 = 1 << 20;
    /// Largest accepted `cache_capacity`, 1 TiB. sled takes the cache as it fills (and
    /// caps it at a cgroup memory limit), so this only rejects values that are mistakes.
    pub const MAX_CACHE_CAPACITY: u64 = 1 << 40;
    /// Longest accepted `lock_timeout`, one hour: opening retries that long at most.
    pub const MAX_LOCK_TIMEOUT: Duration = Duration::from_secs(3600);
    /// Longest accepted `group_commit_window`, one second: every durable save may wait
    /// that long.
    pub const MAX_GROUP_COMMIT_WINDOW: Duration = Duration::from_secs(1);

    /// Check every field against its documented range:
    ///
    /// | field | range |
    /// |---|---|
    /// | `event_stored_capacity` | 1 to [`notify::MAX_CHANNEL_CAPACITY`](crate::notify::MAX_CHANNEL_CAPACITY) (16,777,216) |
    /// | `cache_capacity` | [`Self::MIN_CACHE_CAPACITY`] (1 MiB) to [`Self::MAX_CACHE_CAPACITY`] (1 TiB) |
    /// | `lock_timeout` | up to [`Self::MAX_LOCK_TIMEOUT`] (1 hour) |
    /// | `segment_size` | a multiple of 4096 in [`SEGMENT_SIZE_RANGE`] (64 KiB to 2 GiB) |
    /// | `group_commit_window` | up to [`Self::MAX_GROUP_COMMIT_WINDOW`] (1 s) |
    /// | `snapshot_retention` | 1 or more |
    ///
    /// The first field out of range is reported as [`Error::InvalidInput`] with the
    /// field's name and its range.
    pub fn validate(&self) -> Result<()> {
        check_channel_capacity("event_stored_capacity", self.event_stored_capacity)?;
        if !(Self::MIN_CACHE_CAPACITY..=Self::MAX_CACHE_CAPACITY).contains(&self.cache_capacity) {
            return Err(Error::invalid(
                "cache_capacity",
                format!(
                    "is {} bytes; it must be between {} (1 MiB) and {} (1 TiB)",
                    self.cache_capacity,
                    Self::MIN_CACHE_CAPACITY,
                    Self::MAX_CACHE_CAPACITY
                ),
            ));
        }
        if self.lock_timeout > Self::MAX_LOCK_TIMEOUT {
            return Err(Error::invalid(
                "lock_timeout",
                format!("is {:?}; it must be at most 1 hour", self.lock_timeout),
            ));
        }
        let (lo, hi) = SEGMENT_SIZE_RANGE;
        if !(lo..=hi).contains(&self.segment_size) || self.segment_size % 4096 != 0 {
            return Err(Error::invalid(
                "segment_size",
                format!(
                    "is {} bytes; it must be a multiple of 4096 between {lo} (64 KiB) and {hi} (2 GiB)",
                    self.segment_size
                ),
            ));
        }
        if self.group_commit_window > Self::MAX_GROUP_COMMIT_WINDOW {
            return Err(Error::invalid(
                "group_commit_window",
                format!("is {:?}; it must be at most 1 s", self.group_commit_window),
            ));
        }
        check_snapshot_retention(self.snapshot_retention)
    }
}

/// A snapshot retention keeps at least one snapshot per actor.
pub(crate) fn check_snapshot_retention(n: u32) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid(
            "snapshot_retention",
            "is 0; it must be between 1 and 4294967295 (snapshots kept per actor)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(o: &Options) -> &'static str {
        match o.validate() {
            Err(Error::InvalidInput { field, .. }) => field,
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid_and_each_range_is_enforced_at_its_edges() {
        Options::default().validate().unwrap();
        let with = |f: &dyn Fn(&mut Options)| {
            let mut o = Options::default();
            f(&mut o);
            o
        };
        for cap in [1, crate::notify::MAX_CHANNEL_CAPACITY] {
            with(&|o| o.event_stored_capacity = cap).validate().unwrap();
        }
        for cap in [0, (1 << 24) + 1, 1 << 32, 1 << 40, usize::MAX] {
            let o = with(&|o| o.event_stored_capacity = cap);
            assert_eq!(field_of(&o), "event_stored_capacity");
        }
        for bytes in [Options::MIN_CACHE_CAPACITY, Options::MAX_CACHE_CAPACITY] {
            with(&|o| o.cache_capacity = bytes).validate().unwrap();
        }
        for bytes in [0, 1, 255, Options::MIN_CACHE_CAPACITY - 1, u64::MAX] {
            let o = with(&|o| o.cache_capacity = bytes);
            assert_eq!(field_of(&o), "cache_capacity");
        }
        with(&|o| o.lock_timeout = Options::MAX_LOCK_TIMEOUT)
            .validate()
            .unwrap();
        let o = with(&|o| o.lock_timeout = Duration::from_millis(u64::MAX));
        assert_eq!(field_of(&o), "lock_timeout");
        for bytes in [SEGMENT_SIZE_RANGE.0, SEGMENT_SIZE_RANGE.1] {
            with(&|o| o.segment_size = bytes).validate().unwrap();
        }
        for bytes in [
            0,
            SEGMENT_SIZE_RANGE.0 - 1,
            SEGMENT_SIZE_RANGE.1 + 1,
            u64::MAX,
        ] {
            let o = with(&|o| o.segment_size = bytes);
            assert_eq!(field_of(&o), "segment_size");
        }
        let o = with(&|o| o.group_commit_window = Duration::MAX);
        assert_eq!(field_of(&o), "group_commit_window");
        let o = with(&|o| o.snapshot_retention = 0);
        assert_eq!(field_of(&o), "snapshot_retention");
        with(&|o| o.snapshot_retention = 1).validate().unwrap();
        with(&|o| o.snapshot_retention = u32::MAX)
            .validate()
            .unwrap();
        let e = with(&|o| o.cache_capacity = 1).validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid cache_capacity: is 1 bytes; it must be between 1048576 (1 MiB) and 1099511627776 (1 TiB)"
        );
    }
}
