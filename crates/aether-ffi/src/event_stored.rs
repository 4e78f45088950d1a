//! Draining the store's EventStored notifications.

use std::ptr;
use std::time::Duration;

use aether_core::EventStored;
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use crate::args::out;
use crate::bytes::{into_raw_parts, release_raw_parts};
use crate::error::aether_error;
use crate::guard::{ffi_guard, store_export, ErrOut, Failure};
use crate::status::aether_status;
use crate::store::aether_store;

/// One EventStored notification: published after an event was stored (and is as durable
/// as the store's mode promises).
///
/// Ownership: the strings belong to the library; release them with
/// `aether_event_stored_clear()` (or `aether_event_stored_clear_batch()`), which also
/// zeroes the struct. Do not free them with `free()`. The struct itself is the caller's.
/// A filled struct may be handed to another thread.
#[repr(C)]
#[derive(Debug)]
pub struct aether_event_stored {
    /// The stored event's ID (UTF-8, not NUL-terminated; NULL when empty).
    pub event_id: *const u8,
    /// Length of `event_id` in bytes.
    pub event_id_len: usize,
    /// The actor that owns the event (UTF-8, not NUL-terminated; NULL when empty).
    pub actor_id: *const u8,
    /// Length of `actor_id` in bytes.
    pub actor_id_len: usize,
    /// The stored event's version.
    pub version: i64,
    /// When the event was stored, in nanoseconds since the Unix epoch (saturated to the
    /// int64 range).
    pub timestamp_unix_nanos: i64,
    /// The event's store-wide sequence. A consumer that sees a gap (notifications are
    /// dropped when the channel is full) catches up with `aether_read_all()`.
    pub sequence: u64,
}

impl aether_event_stored {
    fn from_core(n: EventStored) -> aether_event_stored {
        // The strings move to the caller without copying.
        let (event_id, event_id_len) = into_raw_parts(n.event_id.into_bytes().into_boxed_slice());
        let (actor_id, actor_id_len) = into_raw_parts(n.actor_id.into_bytes().into_boxed_slice());
        let nanos = n.timestamp.unix_nanos();
        aether_event_stored {
            event_id,
            event_id_len,
            actor_id,
            actor_id_len,
            version: n.version,
            timestamp_unix_nanos: nanos.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
            sequence: n.sequence,
        }
    }

    /// The event ID, for Rust callers.
    ///
    /// # Safety
    /// `self` must have been filled by this library and not cleared.
    pub unsafe fn event_id(&self) -> &str {
        // SAFETY: per the contract, the parts of a String we gave away.
        unsafe { str_of(self.event_id, self.event_id_len) }
    }

    /// The actor ID, for Rust callers.
    ///
    /// # Safety
    /// `self` must have been filled by this library and not cleared.
    pub unsafe fn actor_id(&self) -> &str {
        // SAFETY: per the contract, the parts of a String we gave away.
        unsafe { str_of(self.actor_id, self.actor_id_len) }
    }

    fn clear(&mut self) {
        let (e, el, a, al) = (
            self.event_id,
            self.event_id_len,
            self.actor_id,
            self.actor_id_len,
        );
        *self = aether_event_stored {
            event_id: ptr::null(),
            event_id_len: 0,
            actor_id: ptr::null(),
            actor_id_len: 0,
            version: 0,
            timestamp_unix_nanos: 0,
            sequence: 0,
        };
        // SAFETY: the caller of the export promises these came from from_core.
        unsafe {
            release_raw_parts(e.cast_mut(), el);
            release_raw_parts(a.cast_mut(), al);
        }
    }
}

/// Fill `*slot` with `n`, first releasing the strings a previous poll left there.
///
/// # Safety
/// `slot` is non-NULL, aligned, and holds a zeroed struct or one this library filled.
unsafe fn replace(slot: *mut aether_event_stored, n: EventStored) {
    // SAFETY: per the contract; clearing a zeroed struct releases nothing.
    let slot = unsafe { &mut *slot };
    slot.clear();
    *slot = aether_event_stored::from_core(n);
}

unsafe fn str_of<'a>(ptr: *const u8, len: usize) -> &'a str {
    if ptr.is_null() {
        ""
    } else {
        // SAFETY: per the callers' contract, UTF-8 bytes we own.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(ptr, len)) }
    }
}

fn timeout_of(timeout_ms: i64) -> Result<Duration, Failure> {
    u64::try_from(timeout_ms)
        .map(Duration::from_millis)
        .map_err(|_| {
            Failure::InvalidArgument(format!("timeout_ms is {timeout_ms}; it must be >= 0").into())
        })
}

/// Wait up to `timeout` for one notification; no lock is held while waiting.
fn recv(rx: &Receiver<EventStored>, timeout: Duration) -> Result<EventStored, Failure> {
    if timeout.is_zero() {
        return rx.try_recv().map_err(|e| match e {
            TryRecvError::Empty => Failure::PollTimeout,
            TryRecvError::Disconnected => Failure::Closed,
        });
    }
    rx.recv_timeout(timeout).map_err(|e| match e {
        RecvTimeoutError::Timeout => Failure::PollTimeout,
        RecvTimeoutError::Disconnected => Failure::Closed,
    })
}

/// Take the next EventStored notification of this store, waiting up to `timeout_ms`
/// milliseconds (0 = do not wait) for one to arrive.
///
/// Notifications leave in commit order, so one consumer sees each actor's versions in
/// order. Each notification is delivered to exactly one poller. May be called from any
/// thread, concurrently with saves and with other pollers; no lock is held while
/// waiting, and closing the store wakes a waiting poller with `AETHER_STORE_CLOSED`.
///
/// `*event_out` must be zero-initialised (`aether_event_stored n = {0};`) or hold a
/// notification the library filled: on success the strings it holds are released first
/// (a zeroed or cleared struct holds none), so a polling loop may reuse one struct and
/// clear it once at the end. Passing an uninitialised struct is undefined behaviour.
/// After success its strings belong to the library until `aether_event_stored_clear()`
/// or the next poll into the same struct.
///
/// Errors: `AETHER_POLL_TIMEOUT` (nothing arrived in time), `AETHER_INVALID_ARGUMENT`
/// (NULL pointer, negative `timeout_ms`), `AETHER_STORE_CLOSED`. `*event_out` is
/// untouched on error; if `err_out` is not NULL, `*err_out` receives an `aether_error`
/// to free with `aether_error_free()`.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_poll_event_stored(
    store: *const aether_store,
    timeout_ms: i64,
    event_out: *mut aether_event_stored,
    err_out: *mut *mut aether_error,
) -> aether_status {
    store_export!(store, err_out, {
        // SAFETY: every pointer is NULL or valid, per the contract.
        unsafe { out(event_out, "event_out") }?;
        let timeout = timeout_of(timeout_ms)?;
        let rx = store.event_stored()?;
        let n = recv(&rx, timeout)?;
        // SAFETY: non-NULL and aligned (checked); the caller promises a zeroed or
        // library-filled struct, whose strings are ours to release.
        unsafe { replace(event_out, n) };
        Ok(())
    })
}

/// Take up to `capacity` EventStored notifications into `events_out[0..capacity)`:
/// waits up to `timeout_ms` (0 = do not wait) for the first, then takes only those
/// already waiting. `*count_out` receives how many were written (>= 1 on success).
///
/// Draining in batches costs one call per batch instead of one per notification.
/// Ordering, delivery and thread safety as for `aether_poll_event_stored()`.
///
/// Each element must be zero-initialised or hold a notification the library filled: on
/// success the first `*count_out` elements are replaced, releasing the strings they held
/// first, and their strings belong to the library until
/// `aether_event_stored_clear_batch(events_out, *count_out)` (or the next poll into
/// them); the rest are untouched. Errors: `AETHER_POLL_TIMEOUT`, `AETHER_INVALID_ARGUMENT`
/// (NULL pointer, `capacity` 0, negative `timeout_ms`), `AETHER_STORE_CLOSED`. Outputs
/// are untouched on error; if `err_out` is not NULL, `*err_out` receives an
/// `aether_error` to free with `aether_error_free()`.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_poll_event_stored_batch(
    store: *const aether_store,
    timeout_ms: i64,
    events_out: *mut aether_event_stored,
    capacity: usize,
    count_out: *mut usize,
    err_out: *mut *mut aether_error,
) -> aether_status {
    store_export!(store, err_out, {
        // SAFETY: every pointer is NULL or valid, per the contract.
        unsafe { out(events_out, "events_out") }?;
        let count_out = unsafe { out(count_out, "count_out") }?;
        if capacity == 0 {
            return Err(Failure::invalid("capacity is 0"));
        }
        let timeout = timeout_of(timeout_ms)?;
        let rx = store.event_stored()?;
        let n = recv(&rx, timeout)?;
        // SAFETY: non-NULL and aligned (checked); zeroed or library-filled, per the contract.
        unsafe { replace(events_out, n) };
        let mut count = 1;
        while count < capacity {
            let Ok(n) = rx.try_recv() else { break };
            // SAFETY: the caller promises `capacity` elements, each zeroed or filled by
            // the library; count < capacity.
            unsafe { replace(events_out.add(count), n) };
            count += 1;
        }
        count_out.write(count);
        Ok(())
    })
}

/// Release the strings of a notification filled by `aether_poll_event_stored*()` and
/// zero the struct. NULL and an already cleared (or zeroed) struct are no-ops; never
/// pass a struct the library did not fill, or a copy of one already cleared.
/// Thread-safe (for distinct structs).
#[no_mangle]
pub unsafe extern "C" fn aether_event_stored_clear(event: *mut aether_event_stored) {
    // SAFETY: forwarded contract; one element.
    unsafe { aether_event_stored_clear_batch(event, 1) }
}

/// `aether_event_stored_clear()` for each of `events[0..count)`. NULL `events` is a
/// no-op. Thread-safe (for distinct arrays).
#[no_mangle]
pub unsafe extern "C" fn aether_event_stored_clear_batch(
    events: *mut aether_event_stored,
    count: usize,
) {
    if events.is_null() || !events.is_aligned() || count > isize::MAX as usize {
        return;
    }
    let _ = ffi_guard(ErrOut::none(), || {
        // SAFETY: the caller promises `count` elements filled by this library.
        let events = unsafe { std::slice::from_raw_parts_mut(events, count) };
        events.iter_mut().for_each(aether_event_stored::clear);
        Ok(())
    });
}
