//! Options for [`crate::JetStreamStore::connect`].

use std::path::PathBuf;
use std::time::Duration;

use aether_core::notify::DEFAULT_CHANNEL_CAPACITY;
use aether_core::{Error, Limits, Result, DEFAULT_SNAPSHOT_RETENTION};

/// How to reach and lay out the store on a NATS JetStream server or cluster.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JetStreamOptions {
    /// Name of the events stream (created when missing). Its snapshots live in a second
    /// stream named `{stream}_SNAPSHOTS`. Default `AETHER_EVENTS`.
    pub stream: String,
    /// First subject tokens: events go to `{subject_prefix}.events.{actor token}`,
    /// snapshots to `{subject_prefix}.snapshots.{actor token}`. Default `aether`.
    pub subject_prefix: String,
    /// Replicas of both streams when this call creates them: 1 for a single server, 3 (or 5)
    /// in a cluster. An existing stream keeps its own setting. Default 1.
    pub replicas: usize,
    /// Bound on connecting and setting up the streams at open. Default 5 s.
    pub connect_timeout: Duration,
    /// Bound on each request to the server (publish ack, read). Default 5 s.
    pub request_timeout: Duration,
    /// A NATS credentials file (`.creds`: user JWT and NKey seed), if the server wants one.
    pub credentials_file: Option<PathBuf>,
    /// EventStored notifications kept for `poll_event_stored` before new ones are dropped
    /// (and counted). Default 65,536.
    pub event_stored_capacity: usize,
    /// Size limits checked before anything is sent.
    pub limits: Limits,
    /// The server-side deduplication window of the events stream, when this call creates
    /// it: a save retried with the same event ID within it is stored at most once.
    /// Default 2 minutes (JetStream's default).
    pub duplicate_window: Duration,
    /// Snapshots kept per actor (the newest by version); default
    /// [`DEFAULT_SNAPSHOT_RETENTION`]. The snapshot stream keeps one message more per
    /// actor; opening a store updates an existing snapshot stream to this setting.
    pub snapshot_retention: u32,
}

impl Default for JetStreamOptions {
    fn default() -> Self {
        JetStreamOptions {
            stream: "AETHER_EVENTS".into(),
            subject_prefix: "aether".into(),
            replicas: 1,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            credentials_file: None,
            event_stored_capacity: DEFAULT_CHANNEL_CAPACITY,
            limits: Limits::default(),
            duplicate_window: Duration::from_secs(120),
            snapshot_retention: DEFAULT_SNAPSHOT_RETENTION,
        }
    }
}

impl JetStreamOptions {
    /// Default options with another stream name and subject prefix (e.g. one per tenant).
    pub fn new(stream: impl Into<String>, subject_prefix: impl Into<String>) -> Self {
        JetStreamOptions {
            stream: stream.into(),
            subject_prefix: subject_prefix.into(),
            ..JetStreamOptions::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let invalid = |field: &'static str, reason: &str| {
            Err(Error::InvalidInput {
                field,
                reason: reason.into(),
            })
        };
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 200
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !name_ok(&self.stream) {
            return invalid("stream", "must be 1-200 characters of [A-Za-z0-9_-]");
        }
        let prefix_ok = !self.subject_prefix.is_empty()
            && self.subject_prefix.split('.').all(|t| {
                !t.is_empty()
                    && t.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
        if !prefix_ok {
            return invalid(
                "subject_prefix",
                "must be dot-separated non-empty tokens of [A-Za-z0-9_-]",
            );
        }
        if !(1..=5).contains(&self.replicas) {
            return invalid("replicas", "must be between 1 and 5");
        }
        if self.connect_timeout.is_zero() || self.request_timeout.is_zero() {
            return invalid("timeout", "timeouts must be positive");
        }
        if self.snapshot_retention == 0 || self.snapshot_retention == u32::MAX {
            return invalid(
                "snapshot_retention",
                "must be between 1 and 4294967294 (snapshots kept per actor)",
            );
        }
        aether_core::notify::check_channel_capacity(
            "event_stored_capacity",
            self.event_stored_capacity,
        )?;
        Ok(())
    }
}
