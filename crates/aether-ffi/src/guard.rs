//! The boundary every export goes through: [`ffi_guard`] runs the body inside
//! `catch_unwind`, maps a [`Failure`] to its [`aether_status`], and hands the detail to
//! the caller's optional `err_out`. [`status_of`] is the one mapping from core errors.

use std::any::Any;
use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::aether_error;
use crate::status::aether_status;

/// Why an export failed. Messages are built only when the caller asked for an
/// `aether_error`, so a conflict on the hot path costs no formatting.
#[derive(Debug)]
pub enum Failure {
    /// A NULL or misaligned pointer, a string that is not UTF-8, a number out of range.
    InvalidArgument(Cow<'static, str>),
    /// The JSON of an event, batch or snapshot does not decode.
    InvalidJson {
        /// What was being decoded ("event", "batch of events", "snapshot").
        what: &'static str,
        /// The decoder's complaint.
        cause: serde_json::Error,
    },
    /// The requested item does not exist.
    NotFound(&'static str),
    /// No notification arrived in time.
    PollTimeout,
    /// The handle was closed.
    Closed,
    /// The core store failed.
    Core(aether_core::Error),
    /// A panic was caught; the payload's message.
    Panic(String),
    /// The function's feature was left out of this build; what is missing.
    Unsupported(&'static str),
}

impl Failure {
    pub(crate) fn invalid(msg: &'static str) -> Failure {
        Failure::InvalidArgument(Cow::Borrowed(msg))
    }

    /// The status this failure is reported with.
    pub fn status(&self) -> aether_status {
        match self {
            Failure::InvalidArgument(_) => aether_status::AETHER_INVALID_ARGUMENT,
            Failure::InvalidJson { .. } => aether_status::AETHER_INVALID_EVENT,
            Failure::NotFound(_) => aether_status::AETHER_NOT_FOUND,
            Failure::PollTimeout => aether_status::AETHER_POLL_TIMEOUT,
            Failure::Closed => aether_status::AETHER_STORE_CLOSED,
            Failure::Core(e) => status_of(e),
            Failure::Panic(_) => aether_status::AETHER_PANIC,
            Failure::Unsupported(_) => aether_status::AETHER_UNSUPPORTED,
        }
    }

    /// A human-readable description (without the status name).
    pub fn message(&self) -> String {
        match self {
            Failure::InvalidArgument(m) => format!("invalid argument: {m}"),
            Failure::InvalidJson { what, cause } => format!("invalid {what} JSON: {cause}"),
            Failure::NotFound(what) => format!("not found: {what}"),
            Failure::PollTimeout => "no EventStored notification arrived within the timeout".into(),
            Failure::Closed => "store is closed: aether_store_close() was called".into(),
            Failure::Core(e) => core_message(e),
            Failure::Panic(m) => format!("internal panic (a bug in aether; please report): {m}"),
            Failure::Unsupported(m) => format!("not supported by this build: {m}"),
        }
    }
}

impl From<aether_core::Error> for Failure {
    fn from(e: aether_core::Error) -> Self {
        Failure::Core(e)
    }
}

/// The status a core error is reported with.
pub fn status_of(e: &aether_core::Error) -> aether_status {
    use aether_core::Error as E;
    match e {
        E::VersionConflict { .. } | E::CommitConflict { .. } => {
            aether_status::AETHER_VERSION_CONFLICT
        }
        // Options and paths are arguments of the open call, not parts of an event.
        E::InvalidInput {
            field:
                "path"
                | "durability"
                | "url"
                | "stream"
                | "subject_prefix"
                | "replicas"
                | "timeout"
                | "credentials_file"
                | "event_stored_capacity"
                | "cache_capacity"
                | "lock_timeout"
                | "segment_size"
                | "checkpoint_interval"
                | "group_commit_window"
                | "snapshot_retention"
                | "entries"
                | "expected"
                | "range",
            ..
        } => aether_status::AETHER_INVALID_ARGUMENT,
        E::InvalidInput { .. } => aether_status::AETHER_INVALID_EVENT,
        E::StaleSnapshot { .. } => aether_status::AETHER_STALE_SNAPSHOT,
        E::Corrupt { .. } => aether_status::AETHER_CORRUPT,
        E::DataLoss(_) => aether_status::AETHER_DATA_LOSS,
        E::Locked { .. } => aether_status::AETHER_LOCKED,
        E::Closed(_) => aether_status::AETHER_STORE_CLOSED,
        E::Timeout { .. } => aether_status::AETHER_TIMEOUT,
        E::Unavailable { .. } => aether_status::AETHER_UNAVAILABLE,
        E::Storage { .. } => aether_status::AETHER_STORAGE,
        E::Unsupported { .. } => aether_status::AETHER_UNSUPPORTED,
        // The core may grow variants; until this crate learns them they are failures
        // of the store, which is what a caller can act on (retry, reopen, report).
        _ => aether_status::AETHER_STORAGE,
    }
}

/// A core error's message. Network failures spell out what the outcome means for the
/// caller, since C and Go callers cannot match on `Outcome`.
fn core_message(e: &aether_core::Error) -> String {
    use aether_core::{Error as E, Outcome};
    let outcome = |o: &Outcome| match o {
        Outcome::Unknown => "outcome unknown; retrying with the same event ID is safe",
        Outcome::NotApplied => "nothing was written",
        _ => "outcome not stated",
    };
    match e {
        E::Timeout {
            operation,
            outcome: o,
        } => format!("{operation} timed out; {}", outcome(o)),
        E::Unavailable {
            message,
            outcome: o,
        } => {
            format!("store unavailable: {message}; {}", outcome(o))
        }
        E::Storage {
            outcome: o @ Outcome::Unknown,
            ..
        } => format!("{e}; {}", outcome(o)),
        e => e.to_string(),
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Where a failure's `aether_error` goes: the caller's optional `aether_error **err_out`.
#[derive(Debug)]
pub struct ErrOut(*mut *mut aether_error);

impl ErrOut {
    /// The caller's `err_out` parameter.
    ///
    /// # Safety
    /// `err_out` must be NULL or point to storage for one pointer that stays writable
    /// until the guard returns.
    pub unsafe fn new(err_out: *mut *mut aether_error) -> ErrOut {
        ErrOut(err_out)
    }

    /// No error detail wanted (functions without an `err_out` parameter).
    pub fn none() -> ErrOut {
        ErrOut(std::ptr::null_mut())
    }
}

/// The boundary of every export that takes a store handle and an `err_out` (the
/// preamble rustls-ffi writes with `ffi_panic_boundary!`), written once:
///
/// ```text
/// store_export!(store, err_out, {
///     // `store` is now the checked `&aether_store`
///     store.with(|s| Ok(s.flush()?))
/// })
/// ```
///
/// Runs the block inside [`ffi_guard`] (panics caught, failures mapped, `*err_out`
/// filled), with `$store` rebound to the checked handle: NULL or misaligned ->
/// `AETHER_INVALID_ARGUMENT` before the block runs. The block returns
/// `Result<(), Failure>`; other pointer arguments it checks itself (`crate::args`).
macro_rules! store_export {
    ($store:ident, $err_out:ident, $body:block) => {
        $crate::guard::ffi_guard(
            // SAFETY: the export's contract: `err_out` is NULL or writable.
            unsafe { $crate::guard::ErrOut::new($err_out) },
            || {
                // SAFETY: the export's contract: NULL or a live handle of this library.
                let $store = unsafe { $crate::store::store_arg($store) }?;
                $body
            },
        )
    };
}
pub(crate) use store_export;

/// Run an export's body at the boundary.
///
/// A panic in `body` is caught and reported as `AETHER_PANIC`. On failure, if `err_out`
/// is not NULL, `*err_out` receives a new `aether_error` (the caller frees it); on
/// success `*err_out` is left untouched. A misaligned `err_out` fails with
/// `AETHER_INVALID_ARGUMENT` before `body` runs.
///
/// `body` must write its outputs only after everything fallible has succeeded, so that
/// outputs are untouched on error.
pub fn ffi_guard<F>(err_out: ErrOut, body: F) -> aether_status
where
    F: FnOnce() -> Result<(), Failure>,
{
    let err_out = err_out.0;
    if !err_out.is_null() && !err_out.is_aligned() {
        return aether_status::AETHER_INVALID_ARGUMENT;
    }
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return aether_status::AETHER_OK,
        Ok(Err(failure)) => failure,
        Err(payload) => {
            let message = panic_message(&*payload);
            // Dropping a payload can itself panic; never let that escape.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            Failure::Panic(message)
        }
    };
    let status = failure.status();
    if !err_out.is_null() {
        // Building the error allocates; should that panic, report the status alone.
        if let Ok(err) = catch_unwind(AssertUnwindSafe(|| aether_error::new(status, failure))) {
            // SAFETY: non-NULL and aligned (checked above); writable per ErrOut::new.
            unsafe { err_out.write(Box::into_raw(Box::new(err))) };
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use aether_core::{Error, Outcome};

    #[test]
    fn network_failures_say_what_the_outcome_means() {
        let m = |e: Error| Failure::Core(e).message();
        assert_eq!(
            m(Error::Timeout {
                operation: "save",
                outcome: Outcome::Unknown
            }),
            "save timed out; outcome unknown; retrying with the same event ID is safe"
        );
        assert_eq!(
            m(Error::Unavailable {
                message: "connection lost".into(),
                outcome: Outcome::NotApplied
            }),
            "store unavailable: connection lost; nothing was written"
        );
    }

    #[test]
    fn every_core_error_has_its_status() {
        let s = |e: Error| status_of(&e);
        use aether_status::*;
        assert_eq!(
            s(Error::VersionConflict {
                actor_id: "a".into(),
                attempted_version: 1,
                current_version: 1
            }),
            AETHER_VERSION_CONFLICT
        );
        assert_eq!(
            s(Error::InvalidInput {
                field: "actorId",
                reason: "empty".into()
            }),
            AETHER_INVALID_EVENT
        );
        assert_eq!(
            s(Error::InvalidInput {
                field: "path",
                reason: "format".into()
            }),
            AETHER_INVALID_ARGUMENT
        );
        assert_eq!(
            s(Error::StaleSnapshot {
                actor_id: "a".into(),
                attempted_version: 1,
                current_version: 2
            }),
            AETHER_STALE_SNAPSHOT
        );
        assert_eq!(
            s(Error::Corrupt {
                sequence: 1,
                location: "x".into(),
                cause: "y".into()
            }),
            AETHER_CORRUPT
        );
        assert_eq!(s(Error::DataLoss("x".into())), AETHER_DATA_LOSS);
        assert_eq!(s(Error::Locked { path: "/x".into() }), AETHER_LOCKED);
        assert_eq!(s(Error::Closed("x".into())), AETHER_STORE_CLOSED);
        assert_eq!(
            s(Error::Timeout {
                operation: "save",
                outcome: Outcome::Unknown
            }),
            AETHER_TIMEOUT
        );
        assert_eq!(
            s(Error::Unavailable {
                message: "down".into(),
                outcome: Outcome::NotApplied
            }),
            AETHER_UNAVAILABLE
        );
        assert_eq!(
            s(Error::InvalidInput {
                field: "url",
                reason: "no server address given".into()
            }),
            AETHER_INVALID_ARGUMENT
        );
        assert_eq!(
            s(Error::Storage {
                context: "x".into(),
                source: std::io::Error::other("disk"),
                outcome: Outcome::NotApplied,
            }),
            AETHER_STORAGE
        );
    }
}
