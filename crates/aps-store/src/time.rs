//! [`Timestamp`]: the store's point in time, given by the caller's clock.
//!
//! Main decision: the store never reads the clock itself (the `Env` context owns it, so tests can
//! fix it); callers pass a [`SystemTime`] and the store keeps whole milliseconds since the Unix
//! epoch (UTC) in an INTEGER column, which round-trips exactly and sorts correctly. In the
//! `sqlite3` shell, `datetime(created_at / 1000, 'unixepoch')` shows it as a date.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time with millisecond precision, as stored (milliseconds since the Unix epoch, UTC;
/// negative before 1970). Serialized as that number.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The timestamp `millis` milliseconds after the Unix epoch.
    pub const fn from_unix_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// `time` truncated to whole milliseconds (saturating beyond ±292 million years).
    pub fn from_system_time(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Self(i64::try_from(after.as_millis()).unwrap_or(i64::MAX)),
            Err(before) => {
                Self(i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms))
            }
        }
    }

    /// The same point as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        let magnitude = Duration::from_millis(self.0.unsigned_abs());
        if self.0 >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        Self::from_system_time(time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_sides_of_the_epoch() {
        let later = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        let t = Timestamp::from_system_time(later);
        assert_eq!(t.unix_millis(), 1_700_000_000_123);
        assert_eq!(
            t.to_system_time(),
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
        );

        let earlier = UNIX_EPOCH - Duration::from_millis(1500);
        let t = Timestamp::from(earlier);
        assert_eq!(t.unix_millis(), -1500);
        assert_eq!(t.to_system_time(), earlier);
        assert!(Timestamp::from_unix_millis(-1) < Timestamp::from_unix_millis(0));
        assert_eq!(serde_json::to_string(&t).unwrap(), "-1500");
    }
}
