//! The store's one error type. Each variant is something a caller can act on; a version
//! conflict is an expected outcome of optimistic concurrency, not a failure of the store.

use std::path::PathBuf;

use crate::append::ActorConflict;

fn join_conflicts(conflicts: &[ActorConflict]) -> String {
    let parts: Vec<String> = conflicts.iter().map(ToString::to_string).collect();
    parts.join("; ")
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What became of an operation whose outcome the store could not confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Nothing was written.
    NotApplied,
    /// It may or may not have been applied; retrying a save with the same event ID is safe
    /// on backends that deduplicate by ID.
    Unknown,
}

/// Every error the store returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The event's version is not strictly greater than the actor's latest. Nothing was
    /// written. Reload the actor and retry if appropriate.
    #[error("version conflict: actor {actor_id:?} has version {current_version}, cannot save version {attempted_version}")]
    VersionConflict {
        /// The actor whose stream moved on.
        actor_id: String,
        /// The version the caller tried to save.
        attempted_version: i64,
        /// The actor's latest stored version.
        current_version: i64,
    },

    /// One or more conditions of a commit (or an append with an expected state) failed:
    /// each names the actor, what was expected and the actor's latest version. Nothing
    /// was written.
    #[error("version conflict: {}", join_conflicts(conflicts))]
    CommitConflict {
        /// Every failed condition, in entry order.
        conflicts: Vec<ActorConflict>,
    },

    /// The input is unusable (empty actor ID, too large, versions out of order in a batch, …).
    /// Nothing was written.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The offending field, named as in the JSON (`actorId`, `version`, `data`, …).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A snapshot older than the stored one was offered. Nothing was written.
    #[error("stale snapshot: actor {actor_id:?} has a snapshot at version {current_version}, refusing version {attempted_version}")]
    StaleSnapshot {
        /// The actor.
        actor_id: String,
        /// The version of the offered snapshot.
        attempted_version: i64,
        /// The version of the stored snapshot.
        current_version: i64,
    },

    /// A stored record could not be decoded. Use `get_events_with_errors` to read around it.
    #[error("corrupt record at sequence {sequence} ({location}): {cause}")]
    Corrupt {
        /// The record's store-wide sequence number, 0 if unknown.
        sequence: u64,
        /// Where the record lives (actor and version, or index entry).
        location: String,
        /// Why it does not decode.
        cause: String,
    },

    /// The store refuses to open (or continue) because data it acknowledged is missing.
    #[error("data loss detected: {0}")]
    DataLoss(String),

    /// Another process (or another handle in this process) holds the store.
    #[error("store at {} is locked by another process or handle", path.display())]
    Locked {
        /// The store's path.
        path: PathBuf,
    },

    /// The store was closed, or a failed write made it refuse further writes until reopened.
    #[error("store is closed: {0}")]
    Closed(String),

    /// A networked backend did not answer in time.
    #[error("{operation} timed out; outcome: {outcome:?}")]
    Timeout {
        /// The operation that timed out.
        operation: &'static str,
        /// Whether it may have been applied.
        outcome: Outcome,
    },

    /// A networked backend is unreachable.
    #[error("store unavailable: {message}; outcome: {outcome:?}")]
    Unavailable {
        /// Detail from the transport.
        message: String,
        /// Whether the operation may have been applied.
        outcome: Outcome,
    },

    /// The backend cannot do what was asked: a server too old for a feature the store
    /// needs, for example. `reason` names what is needed (such as the server version).
    /// Nothing was written.
    #[error("unsupported {feature}: {reason}")]
    Unsupported {
        /// The feature that is missing.
        feature: &'static str,
        /// What is needed, and what was found.
        reason: String,
    },

    /// The underlying storage failed (I/O error, disk full, sled error). A save that returns
    /// this was not acknowledged; `outcome` says whether its record may nonetheless have
    /// reached the log (`Unknown`: a failed sync after the write, for example), in which
    /// case it can reappear after the store is reopened.
    #[error("storage error: {context}: {source}")]
    Storage {
        /// What the store was doing.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
        /// Whether the operation may have been applied.
        outcome: Outcome,
    },
}

impl Error {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
        Error::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    /// A storage failure before anything was written.
    pub(crate) fn storage(context: impl Into<String>, source: impl Into<std::io::Error>) -> Error {
        Error::Storage {
            context: context.into(),
            source: source.into(),
            outcome: Outcome::NotApplied,
        }
    }

    /// A storage failure after the operation's record may have reached the log.
    pub(crate) fn storage_unknown(
        context: impl Into<String>,
        source: impl Into<std::io::Error>,
    ) -> Error {
        Error::Storage {
            context: context.into(),
            source: source.into(),
            outcome: Outcome::Unknown,
        }
    }

    /// The outcome of a failed operation: `Unknown` when it may have been applied.
    pub fn outcome(&self) -> Outcome {
        match self {
            Error::Timeout { outcome, .. }
            | Error::Unavailable { outcome, .. }
            | Error::Storage { outcome, .. } => *outcome,
            _ => Outcome::NotApplied,
        }
    }

    /// Whether this is a version conflict: the seed's [`Error::VersionConflict`] or a
    /// commit's [`Error::CommitConflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Error::VersionConflict { .. } | Error::CommitConflict { .. }
        )
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(io) => Error::storage("sled", io),
            sled::Error::Corruption { at, .. } => Error::Corrupt {
                sequence: 0,
                location: format!("sled's data files (offset {at:?})"),
                cause: "sled found damaged data".into(),
            },
            other => Error::storage("sled", std::io::Error::other(other.to_string())),
        }
    }
}
