//! `aether_error`: the detail of one failure, handed to the caller through `err_out`.

use std::ffi::{c_char, c_int, CString};
use std::ptr;

use crate::args::{out, Out};
use crate::guard::{ffi_guard, ErrOut, Failure};
use crate::status::aether_status;

/// The detail of one failed call: its status, a message, and for a version conflict or
/// a stale snapshot the actor and versions involved.
///
/// Created by a failing call that was given a non-NULL `err_out`; owned by the caller,
/// who releases it with `aether_error_free()`. Immutable: it may be read from any thread,
/// and from several threads at once.
pub struct aether_error {
    status: aether_status,
    message: CString,
    /// A version conflict's failed conditions (several for a commit), or a stale
    /// snapshot's one.
    conflicts: Vec<Conflict>,
    outcome: aether_outcome,
}

/// Whether a failed call may nonetheless have been applied. Values never change.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum aether_outcome {
    /// Nothing was written: the call can be retried or abandoned as it is.
    AETHER_OUTCOME_NOT_APPLIED = 0,
    /// It may have been applied: a storage failure after the record reached the log
    /// (the store then refuses writes until it is reopened, and the record may be there
    /// after reopening), or a networked backend that did not answer in time. Read the
    /// actor back, or retry the same event: a save that landed then conflicts.
    AETHER_OUTCOME_UNKNOWN = 1,
}

struct Conflict {
    actor_id: String,
    /// `aether_expected_mode` and its version (the seed's rule for a save).
    mode: c_int,
    expected_version: i64,
    attempted_version: i64,
    current_version: i64,
}

impl std::fmt::Debug for aether_error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("aether_error")
            .field("status", &self.status)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl aether_error {
    pub(crate) fn new(status: aether_status, failure: Failure) -> aether_error {
        let message = failure.message();
        // Messages quote user strings with escapes, but never let an interior NUL cut
        // the C string short.
        let message = CString::new(message.replace('\0', "\\0")).expect("NULs were replaced");
        let outcome = match &failure {
            Failure::Core(e) if e.outcome() == aether_core::Outcome::Unknown => {
                aether_outcome::AETHER_OUTCOME_UNKNOWN
            }
            _ => aether_outcome::AETHER_OUTCOME_NOT_APPLIED,
        };
        let conflicts = match failure {
            Failure::Core(aether_core::Error::VersionConflict {
                actor_id,
                attempted_version,
                current_version,
            })
            | Failure::Core(aether_core::Error::StaleSnapshot {
                actor_id,
                attempted_version,
                current_version,
            }) => vec![Conflict {
                actor_id,
                mode: 0,
                expected_version: 0,
                attempted_version,
                current_version,
            }],
            Failure::Core(aether_core::Error::CommitConflict { conflicts }) => conflicts
                .into_iter()
                .map(|c| {
                    let (mode, expected_version) = crate::appends::mode_of(c.expected);
                    Conflict {
                        actor_id: c.actor_id,
                        mode,
                        expected_version,
                        attempted_version: c.attempted_version,
                        current_version: c.current_version,
                    }
                })
                .collect(),
            _ => Vec::new(),
        };
        aether_error {
            status,
            message,
            conflicts,
            outcome,
        }
    }

    /// The status of the failure.
    pub fn status(&self) -> aether_status {
        self.status
    }

    /// The message (for Rust callers).
    pub fn message(&self) -> &str {
        self.message.to_str().unwrap_or("")
    }
}

/// The status of the failed call that created `err`.
///
/// NULL -> `AETHER_INVALID_ARGUMENT`. Cannot otherwise fail. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn aether_error_code(err: *const aether_error) -> aether_status {
    // SAFETY: the caller passes NULL or an error from this library that it has not freed.
    match unsafe { err.as_ref() } {
        Some(e) => e.status,
        None => aether_status::AETHER_INVALID_ARGUMENT,
    }
}

/// Whether the failed call that created `err` may have been applied:
/// `AETHER_OUTCOME_UNKNOWN` after a storage failure once the record may have reached the
/// log, or a timeout or lost connection of a networked backend; otherwise
/// `AETHER_OUTCOME_NOT_APPLIED`. NULL -> `AETHER_OUTCOME_NOT_APPLIED`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn aether_error_outcome(err: *const aether_error) -> aether_outcome {
    // SAFETY: NULL or a valid error, per the contract.
    match unsafe { err.as_ref() } {
        Some(e) => e.outcome,
        None => aether_outcome::AETHER_OUTCOME_NOT_APPLIED,
    }
}

/// The error's message: NUL-terminated UTF-8 English text, e.g.
/// `version conflict: actor "order-1" has version 3, cannot save version 2`.
///
/// Ownership: the string belongs to `err` and is valid until `aether_error_free(err)`;
/// do not free it. NULL `err` -> a static empty string. Never returns NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn aether_error_message(err: *const aether_error) -> *const c_char {
    // SAFETY: as for aether_error_code.
    match unsafe { err.as_ref() } {
        Some(e) => e.message.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// The details of a version conflict (`AETHER_VERSION_CONFLICT`) or a stale snapshot
/// (`AETHER_STALE_SNAPSHOT`): the actor, the version the call attempted, and the
/// actor's current version (latest event, or stored snapshot). For a commit with several
/// failed conditions, the first; see `aether_error_conflict_at()` for all of them.
///
/// `*actor_id_out`/`*actor_id_len_out` receive the actor ID (UTF-8, not NUL-terminated;
/// NULL with length 0 if empty), which belongs to `err` and is valid until
/// `aether_error_free(err)`. Returns `AETHER_NOT_FOUND` if `err` is another kind of
/// error. Any NULL pointer -> `AETHER_INVALID_ARGUMENT`. Outputs are untouched on error.
/// Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_error_conflict(
    err: *const aether_error,
    actor_id_out: *mut *const u8,
    actor_id_len_out: *mut usize,
    attempted_version_out: *mut i64,
    current_version_out: *mut i64,
) -> aether_status {
    ffi_guard(ErrOut::none(), || {
        // SAFETY: the caller passes NULL or a live error from this library.
        let err = unsafe { err.as_ref() }.ok_or(Failure::invalid("err is NULL"))?;
        let actor_out: Out<*const u8> = unsafe { out(actor_id_out, "actor_id_out") }?;
        let len_out = unsafe { out(actor_id_len_out, "actor_id_len_out") }?;
        let attempted_out = unsafe { out(attempted_version_out, "attempted_version_out") }?;
        let current_out = unsafe { out(current_version_out, "current_version_out") }?;
        let c = err.conflicts.first().ok_or(Failure::NotFound(
            "the error is neither a version conflict nor a stale snapshot",
        ))?;
        write_actor(c, actor_out, len_out);
        attempted_out.write(c.attempted_version);
        current_out.write(c.current_version);
        Ok(())
    })
}

fn write_actor(c: &Conflict, actor_out: Out<*const u8>, len_out: Out<usize>) {
    let actor = if c.actor_id.is_empty() {
        ptr::null()
    } else {
        c.actor_id.as_ptr()
    };
    actor_out.write(actor);
    len_out.write(c.actor_id.len());
}

/// How many failed conditions `err` carries: one per actor whose condition failed for a
/// commit's `AETHER_VERSION_CONFLICT`, 1 for a save's conflict or a stale snapshot, 0
/// for any other error and for NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn aether_error_conflict_count(err: *const aether_error) -> usize {
    // SAFETY: the caller passes NULL or a live error from this library.
    unsafe { err.as_ref() }.map_or(0, |e| e.conflicts.len())
}

/// The failed condition number `index` (0 to `aether_error_conflict_count(err) - 1`):
/// the actor, what was expected (`*expected_mode_out`, an `aether_expected_mode`, and
/// `*expected_version_out`, the version `AETHER_EXPECT_EXACT` expected, else 0), the
/// version of the entry's first event (`*attempted_version_out`; 0 for automatic
/// versions or a condition-only entry) and the actor's version when the commit was
/// checked (`*current_version_out`). A save's conflict reports
/// `AETHER_EXPECT_INCREASING`.
///
/// The actor ID belongs to `err` (as for `aether_error_conflict()`). Returns
/// `AETHER_NOT_FOUND` when `index` is out of range; any NULL pointer ->
/// `AETHER_INVALID_ARGUMENT`. Outputs are untouched on error. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_error_conflict_at(
    err: *const aether_error,
    index: usize,
    actor_id_out: *mut *const u8,
    actor_id_len_out: *mut usize,
    expected_mode_out: *mut c_int,
    expected_version_out: *mut i64,
    attempted_version_out: *mut i64,
    current_version_out: *mut i64,
) -> aether_status {
    ffi_guard(ErrOut::none(), || {
        // SAFETY: the caller passes NULL or a live error, and valid outputs.
        let err = unsafe { err.as_ref() }.ok_or(Failure::invalid("err is NULL"))?;
        let actor_out: Out<*const u8> = unsafe { out(actor_id_out, "actor_id_out") }?;
        let len_out = unsafe { out(actor_id_len_out, "actor_id_len_out") }?;
        let mode_out = unsafe { out(expected_mode_out, "expected_mode_out") }?;
        let expected_out = unsafe { out(expected_version_out, "expected_version_out") }?;
        let attempted_out = unsafe { out(attempted_version_out, "attempted_version_out") }?;
        let current_out = unsafe { out(current_version_out, "current_version_out") }?;
        let c = err
            .conflicts
            .get(index)
            .ok_or(Failure::NotFound("no failed condition has that index"))?;
        write_actor(c, actor_out, len_out);
        mode_out.write(c.mode);
        expected_out.write(c.expected_version);
        attempted_out.write(c.attempted_version);
        current_out.write(c.current_version);
        Ok(())
    })
}

/// Release an error. NULL is a no-op. The error must not be used afterwards, and must
/// not be freed twice. Thread-safe (for distinct errors).
#[no_mangle]
pub unsafe extern "C" fn aether_error_free(err: *mut aether_error) {
    if err.is_null() {
        return;
    }
    let _ = ffi_guard(ErrOut::none(), || {
        // SAFETY: a non-NULL err was created by Box::into_raw in ffi_guard and, per the
        // contract, not freed before.
        drop(unsafe { Box::from_raw(err) });
        Ok(())
    });
}

#[cfg(test)]
mod outcome_tests {
    use super::*;

    #[test]
    fn a_failure_that_may_have_been_applied_says_so() {
        let unknown = aether_error::new(
            aether_status::AETHER_STORAGE,
            Failure::Core(aether_core::Error::Storage {
                context: "syncing the log".into(),
                source: std::io::Error::other("EIO"),
                outcome: aether_core::Outcome::Unknown,
            }),
        );
        let not_applied = aether_error::new(
            aether_status::AETHER_STORAGE,
            Failure::Core(aether_core::Error::Storage {
                context: "opening".into(),
                source: std::io::Error::other("EACCES"),
                outcome: aether_core::Outcome::NotApplied,
            }),
        );
        // SAFETY: valid errors and NULL.
        unsafe {
            assert_eq!(
                aether_error_outcome(&unknown),
                aether_outcome::AETHER_OUTCOME_UNKNOWN
            );
            assert_eq!(
                aether_error_outcome(&not_applied),
                aether_outcome::AETHER_OUTCOME_NOT_APPLIED
            );
            assert_eq!(
                aether_error_outcome(std::ptr::null()),
                aether_outcome::AETHER_OUTCOME_NOT_APPLIED
            );
        }
    }
}
