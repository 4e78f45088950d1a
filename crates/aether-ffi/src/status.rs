//! `aether_status`: the one result type of every fallible export.

use std::ffi::{c_char, c_int};

/// The result of every fallible aether call.
///
/// The values are part of the ABI: they are fixed, never renumbered, and new codes are
/// only ever added at the end. `aether_status_str()` describes any code; an
/// `aether_error` (see `err_out` parameters) carries the detail of one failure.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::upper_case_acronyms)]
pub enum aether_status {
    /// Success.
    AETHER_OK = 0,
    /// The event's version is not strictly greater than the actor's latest version, or
    /// the expected state of an `aether_append()` / `aether_commit()` entry does not
    /// hold. Nothing was written. An expected outcome of optimistic concurrency: reload
    /// the actor's latest version and retry if appropriate. The actor's current version
    /// is reported through the call's `current_version_out` (where it has one) and the
    /// `aether_error` (every failed condition: `aether_error_conflict_at()`).
    AETHER_VERSION_CONFLICT = 1,
    /// A required pointer was NULL or misaligned, a string was not valid UTF-8, or a
    /// number was out of range (negative `from_version` or `timeout_ms`, unknown
    /// durability, zero capacity, an option outside its documented range), or a URL was
    /// malformed. Nothing was done; the message names the argument.
    AETHER_INVALID_ARGUMENT = 2,
    /// The event, batch or snapshot is unusable: malformed JSON, a missing or wrong-typed
    /// field, an empty or too long actor ID, larger than the store's record limit (1 MiB
    /// by default), or a batch that is empty, mixes actors or has unordered versions.
    /// Nothing was written.
    AETHER_INVALID_EVENT = 3,
    /// The requested item does not exist (e.g. an actor without a snapshot).
    AETHER_NOT_FOUND = 4,
    /// `aether_poll_event_stored*`: no notification arrived within the timeout.
    AETHER_POLL_TIMEOUT = 5,
    /// A stored record could not be decoded. `aether_get_events_with_errors()` reads
    /// around damaged records.
    AETHER_CORRUPT = 6,
    /// The store refuses to open because data it acknowledged as durable is missing.
    /// Restore from a backup.
    AETHER_DATA_LOSS = 7,
    /// Another process (or another open handle in this process) holds the store.
    AETHER_LOCKED = 8,
    /// The underlying storage failed (I/O error, disk full). A save that returns this
    /// was not acknowledged; after a failed write the store refuses further writes with
    /// `AETHER_STORE_CLOSED` until reopened.
    AETHER_STORAGE = 9,
    /// The store handle was closed with `aether_store_close()`, or the store refuses
    /// writes after a storage failure.
    AETHER_STORE_CLOSED = 10,
    /// Reserved for networked backends: the operation timed out and may or may not
    /// have been applied.
    AETHER_TIMEOUT = 11,
    /// Reserved for networked backends: the store is unreachable.
    AETHER_UNAVAILABLE = 12,
    /// The snapshot is older than the actor's stored snapshot. Nothing was written.
    AETHER_STALE_SNAPSHOT = 13,
    /// A bug inside the library was caught at the boundary (a Rust panic). The call
    /// did nothing observable; the handle remains usable, but please report the message.
    AETHER_PANIC = 14,
    /// The function belongs to a feature this build of the library leaves out (e.g.
    /// `aether_store_open_jetstream()` in a library built without JetStream; the same
    /// call always gives the same answer in this build), or the server a store connects
    /// to is too old for it (a nats-server before 2.12; the message names the version
    /// needed). Nothing was done.
    AETHER_UNSUPPORTED = 15,
}

impl aether_status {
    /// The description `aether_status_str()` returns, without the NUL.
    pub fn description(self) -> &'static str {
        let d = description_of(self as c_int);
        &d[..d.len() - 1]
    }
}

/// NUL-terminated descriptions, indexed by code.
const DESCRIPTIONS: [&str; 16] = [
    "ok\0",
    "version conflict\0",
    "invalid argument\0",
    "invalid event\0",
    "not found\0",
    "no notification within the timeout\0",
    "corrupt record\0",
    "data loss detected\0",
    "store is locked\0",
    "storage failure\0",
    "store is closed\0",
    "timed out\0",
    "store unavailable\0",
    "stale snapshot\0",
    "internal panic\0",
    "not supported by this build\0",
];

fn description_of(code: c_int) -> &'static str {
    usize::try_from(code)
        .ok()
        .and_then(|i| DESCRIPTIONS.get(i).copied())
        .unwrap_or("unknown status\0")
}

/// A static, NUL-terminated English description of a status code, e.g.
/// `aether_status_str(AETHER_VERSION_CONFLICT)` is "version conflict".
///
/// Takes an `int` so any value may be passed: unknown codes give "unknown status".
/// Ownership: the string is static; never free it. Never returns NULL. Cannot fail.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn aether_status_str(code: c_int) -> *const c_char {
    description_of(code).as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_nul_terminated_description() {
        for (i, d) in DESCRIPTIONS.iter().enumerate() {
            assert!(d.ends_with('\0') && !d[..d.len() - 1].contains('\0'), "{i}");
        }
        assert_eq!(
            aether_status::AETHER_UNSUPPORTED as usize + 1,
            DESCRIPTIONS.len()
        );
        assert_eq!(description_of(-1), "unknown status\0");
        assert_eq!(description_of(16), "unknown status\0");
        assert_eq!(
            aether_status::AETHER_UNSUPPORTED.description(),
            "not supported by this build"
        );
        assert_eq!(
            aether_status::AETHER_STALE_SNAPSHOT.description(),
            "stale snapshot"
        );
    }
}
