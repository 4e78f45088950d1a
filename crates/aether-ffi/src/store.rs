//! The store handle: opening (memory, sled), flushing, closing, freeing, metrics.

use std::ffi::{c_char, c_int, CStr};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use aether_core::notify::MAX_CHANNEL_CAPACITY;
use aether_core::{Durability, EventStored, MemoryStore, Options, SledStore, SnapshotStore};
use crossbeam_channel::Receiver;

use crate::args::out;
use crate::error::aether_error;
use crate::guard::{ffi_guard, store_export, ErrOut, Failure};
use crate::status::aether_status;

/// An open event store (in memory, on disk, or on a NATS JetStream server).
///
/// Created by `aether_store_open_memory()`, `aether_store_open_sled()` or
/// `aether_store_open_jetstream()`, released by `aether_store_free()`. Opaque: use it
/// only through pointers.
///
/// Thread safety: a store handle may be shared across threads; every function taking a
/// `const aether_store *` may be called concurrently with any other, including
/// `aether_store_close()`. Only `aether_store_free()` must not race with other calls
/// on the same handle.
pub struct aether_store {
    state: RwLock<Option<Open>>,
}

struct Open {
    store: Arc<dyn SnapshotStore>,
    /// Kept so polling does not ask the store for a receiver on every call.
    event_stored: Receiver<EventStored>,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<aether_store>();
    assert_send_sync::<aether_error>();
};

impl std::fmt::Debug for aether_store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        f.debug_struct("aether_store").field("open", &open).finish()
    }
}

impl aether_store {
    pub(crate) fn new(store: Arc<dyn SnapshotStore>) -> aether_store {
        let event_stored = store.event_stored_receiver();
        aether_store {
            state: RwLock::new(Some(Open {
                store,
                event_stored,
            })),
        }
    }

    /// Run `f` on the open store. The read lock is held for the call, so
    /// `aether_store_close()` waits for calls in progress and, once it returns, the
    /// store's files and lock are released.
    pub(crate) fn with<R>(
        &self,
        f: impl FnOnce(&dyn SnapshotStore) -> Result<R, Failure>,
    ) -> Result<R, Failure> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        match state.as_ref() {
            Some(open) => f(&*open.store),
            None => Err(Failure::Closed),
        }
    }

    /// A receiver of the store's EventStored channel. Polling holds no lock while it
    /// waits; when the store is closed the channel disconnects and waiting ends.
    pub(crate) fn event_stored(&self) -> Result<Receiver<EventStored>, Failure> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        match state.as_ref() {
            Some(open) => Ok(open.event_stored.clone()),
            None => Err(Failure::Closed),
        }
    }

    fn close(&self) -> Result<(), Failure> {
        let open = self
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(open) = open else {
            return Ok(());
        };
        // Close checkpoints and reports failures; dropping the last reference then
        // releases the files and the lock.
        let closed = open.store.close();
        drop(open);
        closed.map_err(Failure::from)
    }
}

/// Check a store handle argument.
pub(crate) unsafe fn store_arg<'a>(
    store: *const aether_store,
) -> Result<&'a aether_store, Failure> {
    if !store.is_aligned() {
        return Err(Failure::invalid("store is misaligned"));
    }
    // SAFETY: aligned; the caller passes NULL or a live handle from this library.
    unsafe { store.as_ref() }.ok_or(Failure::invalid("store is NULL"))
}

/// What a successful save guarantees on a sled store (`aether_sled_options.durability`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::upper_case_acronyms)]
pub enum aether_durability {
    /// The default: a returned save is fdatasync'ed to the store's log (concurrent
    /// savers share one sync). Survives process crashes and power loss.
    AETHER_DURABILITY_DURABLE = 0,
    /// A returned save is written to the store's log file but not synced: a killed
    /// process loses nothing; an OS crash or power loss can lose the last ~500 ms of
    /// saves (never part of a batch or commit). `aether_store_flush()` makes everything
    /// durable.
    AETHER_DURABILITY_BUFFERED = 1,
}

/// Options for `aether_store_open_sled()`. A zero field means "the default", so a
/// zero-initialised struct (or `aether_sled_options_default()`) gives the defaults. A
/// field outside its documented range makes the open fail with
/// `AETHER_INVALID_ARGUMENT`, whose message names the field and its range.
/// Plain data owned by the caller; the library only reads it during the call.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct aether_sled_options {
    /// An `aether_durability` value; 0 = `AETHER_DURABILITY_DURABLE`. Other values are
    /// refused with `AETHER_INVALID_ARGUMENT`.
    pub durability: c_int,
    /// Undrained EventStored notifications kept before new ones are dropped (and
    /// counted in `aether_metrics.event_stored_dropped`); 0 = 65536, otherwise 1 to
    /// 16777216 (2^24). Memory is taken as notifications wait, not up front.
    pub event_stored_capacity: usize,
    /// sled's page cache, in bytes; 0 = 256 MiB, otherwise 1048576 (1 MiB) to
    /// 1099511627776 (1 TiB).
    pub cache_capacity_bytes: u64,
    /// How long opening retries while another handle holds the store's lock, in
    /// milliseconds, before failing with `AETHER_LOCKED`; 0 = 2000, otherwise 1 to
    /// 3600000 (one hour).
    pub lock_timeout_ms: u64,
    // No field may be added: programs built against an earlier header allocate the
    // struct at this size, and the library would read past it. New options come as
    // arguments of new functions (`aether_store_open_sled_with_snapshot_retention()`).
}

impl aether_sled_options {
    fn to_core(self, snapshot_retention: u32) -> Result<Options, Failure> {
        let mut o = Options::default();
        o.durability = match self.durability {
            d if d == aether_durability::AETHER_DURABILITY_DURABLE as c_int => Durability::Durable,
            d if d == aether_durability::AETHER_DURABILITY_BUFFERED as c_int => {
                Durability::Buffered
            }
            d => {
                return Err(Failure::InvalidArgument(
                    format!("options->durability is {d}, not an aether_durability value").into(),
                ))
            }
        };
        if self.event_stored_capacity != 0 {
            o.event_stored_capacity =
                capacity_arg("options->event_stored_capacity", self.event_stored_capacity)?;
        }
        if self.cache_capacity_bytes != 0 {
            o.cache_capacity = in_range(
                "options->cache_capacity_bytes",
                self.cache_capacity_bytes,
                Options::MIN_CACHE_CAPACITY,
                Options::MAX_CACHE_CAPACITY,
                "256 MiB",
            )?;
        }
        if self.lock_timeout_ms != 0 {
            let max = Options::MAX_LOCK_TIMEOUT.as_millis() as u64;
            let ms = in_range(
                "options->lock_timeout_ms",
                self.lock_timeout_ms,
                1,
                max,
                "2000",
            )?;
            o.lock_timeout = Duration::from_millis(ms);
        }
        if snapshot_retention != 0 {
            o.snapshot_retention = snapshot_retention;
        }
        // The checks above name the C fields; the core's own check guards the rest.
        o.validate()
            .map_err(|e| Failure::InvalidArgument(format!("options: {e}").into()))?;
        Ok(o)
    }
}

/// Check a numeric argument against its documented range; 0 (the default) is handled
/// by the caller.
pub(crate) fn in_range<T: PartialOrd + std::fmt::Display>(
    what: &str,
    value: T,
    min: T,
    max: T,
    default: &str,
) -> Result<T, Failure> {
    if value < min || value > max {
        return Err(Failure::InvalidArgument(
            format!("{what} is {value}; it must be between {min} and {max} (0 = the default, {default})")
                .into(),
        ));
    }
    Ok(value)
}

/// An `event_stored_capacity` argument other than 0: 1 to 16777216.
pub(crate) fn capacity_arg(what: &str, capacity: usize) -> Result<usize, Failure> {
    in_range(what, capacity, 1, MAX_CHANNEL_CAPACITY, "65536")
}

/// Fill `*options_out` with the defaults (all zero: durable, 65536 undrained
/// notifications, 256 MiB cache, 2000 ms lock timeout). NULL is a no-op. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn aether_sled_options_default(options_out: *mut aether_sled_options) {
    let _ = ffi_guard(ErrOut::none(), || {
        // SAFETY: the caller passes NULL or writable storage for the struct.
        unsafe { out(options_out, "options_out") }?.write(aether_sled_options::default());
        Ok(())
    });
}

/// Open a new, empty in-memory store (nothing survives the process).
///
/// `event_stored_capacity` is how many undrained EventStored notifications are kept
/// before new ones are dropped (and counted); 0 = 65536, otherwise 1 to 16777216 (2^24);
/// a larger value -> `AETHER_INVALID_ARGUMENT`. Memory is taken as notifications wait,
/// not up front.
///
/// On success `*store_out` receives a new handle, owned by the caller and released with
/// `aether_store_free()`. NULL `store_out` -> `AETHER_INVALID_ARGUMENT`. On error
/// `*store_out` is untouched and, if `err_out` is not NULL, `*err_out` receives an
/// `aether_error` to free with `aether_error_free()`. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_store_open_memory(
    event_stored_capacity: usize,
    store_out: *mut *mut aether_store,
    err_out: *mut *mut aether_error,
) -> aether_status {
    ffi_guard(unsafe { ErrOut::new(err_out) }, || {
        // SAFETY: the caller passes NULL or writable storage for a pointer.
        let store_out = unsafe { out(store_out, "store_out") }?;
        let store = if event_stored_capacity == 0 {
            MemoryStore::new()
        } else {
            let capacity = capacity_arg("event_stored_capacity", event_stored_capacity)?;
            MemoryStore::with_capacity(capacity)?
        };
        store_out.write(Box::into_raw(Box::new(aether_store::new(Arc::new(store)))));
        Ok(())
    })
}

/// Open (or create) a persistent store in directory `path` (NUL-terminated; any bytes
/// the OS accepts). Recovery runs here: saves acknowledged before a crash are replayed,
/// a batch cut short is rolled back, and a store whose acknowledged data is missing is
/// refused with `AETHER_DATA_LOSS`. A store held by another handle (in this or another
/// process) is retried for `options->lock_timeout_ms`, then `AETHER_LOCKED`.
///
/// `options` may be NULL for the defaults; it is only read during the call.
///
/// On success `*store_out` receives a new handle, owned by the caller and released with
/// `aether_store_free()` (close it first with `aether_store_close()` to checkpoint).
/// NULL `path` or `store_out`, or an
/// option out of its range -> `AETHER_INVALID_ARGUMENT`. On error `*store_out` is
/// untouched and, if `err_out` is not NULL, `*err_out` receives an `aether_error` to
/// free with `aether_error_free()`. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_store_open_sled(
    path: *const c_char,
    options: *const aether_sled_options,
    store_out: *mut *mut aether_store,
    err_out: *mut *mut aether_error,
) -> aether_status {
    // SAFETY: forwarded contract.
    unsafe { open_sled(path, options, 0, store_out, err_out) }
}

/// `aether_store_open_sled()` keeping `snapshot_retention` snapshots per actor: the
/// newest ones, older ones being dropped as newer ones are saved (see
/// `aether_get_snapshot()`). 0 = 3, what `aether_store_open_sled()` keeps; otherwise 1
/// to 4294967295.
///
/// (An argument rather than a field of `aether_sled_options`, whose size programs built
/// against earlier headers rely on.) Everything else as for `aether_store_open_sled()`.
/// Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_store_open_sled_with_snapshot_retention(
    path: *const c_char,
    options: *const aether_sled_options,
    snapshot_retention: u32,
    store_out: *mut *mut aether_store,
    err_out: *mut *mut aether_error,
) -> aether_status {
    // SAFETY: forwarded contract.
    unsafe { open_sled(path, options, snapshot_retention, store_out, err_out) }
}

/// The body of the sled openers; `snapshot_retention` 0 = the default.
unsafe fn open_sled(
    path: *const c_char,
    options: *const aether_sled_options,
    snapshot_retention: u32,
    store_out: *mut *mut aether_store,
    err_out: *mut *mut aether_error,
) -> aether_status {
    ffi_guard(unsafe { ErrOut::new(err_out) }, || {
        if path.is_null() {
            return Err(Failure::invalid("path is NULL"));
        }
        if !options.is_aligned() {
            return Err(Failure::invalid("options is misaligned"));
        }
        // SAFETY: the caller passes writable storage for a pointer (checked non-NULL).
        let store_out = unsafe { out(store_out, "store_out") }?;
        // SAFETY: non-NULL; the caller promises a NUL-terminated string.
        let path = unsafe { CStr::from_ptr(path) };
        let path = path_of(path)?;
        // SAFETY: NULL or a readable options struct, per the contract.
        let options = unsafe { options.as_ref() }
            .copied()
            .unwrap_or_default()
            .to_core(snapshot_retention)?;
        let store = SledStore::open_with(path, options)?;
        store_out.write(Box::into_raw(Box::new(aether_store::new(Arc::new(store)))));
        Ok(())
    })
}

#[cfg(unix)]
fn path_of(path: &CStr) -> Result<&std::path::Path, Failure> {
    use std::os::unix::ffi::OsStrExt;
    if path.is_empty() {
        return Err(Failure::invalid("path is empty"));
    }
    Ok(std::path::Path::new(std::ffi::OsStr::from_bytes(
        path.to_bytes(),
    )))
}

#[cfg(not(unix))]
fn path_of(path: &CStr) -> Result<&std::path::Path, Failure> {
    let path = path
        .to_str()
        .map_err(|_| Failure::invalid("path is not valid UTF-8"))?;
    if path.is_empty() {
        return Err(Failure::invalid("path is empty"));
    }
    Ok(std::path::Path::new(path))
}

/// Make everything saved so far durable, whatever the durability mode.
///
/// NULL `store` -> `AETHER_INVALID_ARGUMENT`; a closed store -> `AETHER_STORE_CLOSED`.
/// On error, if `err_out` is not NULL, `*err_out` receives an `aether_error` to free with
/// `aether_error_free()`. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_store_flush(
    store: *const aether_store,
    err_out: *mut *mut aether_error,
) -> aether_status {
    store_export!(store, err_out, { store.with(|s| Ok(s.flush()?)) })
}

/// Close the store now: make everything saved durable, release its files and lock (so
/// it can be reopened), and refuse later calls on this handle with
/// `AETHER_STORE_CLOSED`. Calls in progress on other threads finish first; a thread
/// waiting in `aether_poll_event_stored*()` returns `AETHER_STORE_CLOSED`.
///
/// The handle stays valid until `aether_store_free()`. Closing again returns `AETHER_OK`.
/// If the final flush fails the store is closed anyway and the failure is returned (a
/// sled store recovers at its next open). NULL `store` -> `AETHER_INVALID_ARGUMENT`. On
/// error, if `err_out` is not NULL, `*err_out` receives an `aether_error` to free with
/// `aether_error_free()`. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_store_close(
    store: *const aether_store,
    err_out: *mut *mut aether_error,
) -> aether_status {
    store_export!(store, err_out, { store.close() })
}

/// Release a store handle: its files, its lock and its memory. NULL is a no-op. No other
/// call on the handle may be in progress or follow; the handle must not be freed twice.
///
/// A store that was not closed is released without the closing checkpoint: nothing
/// acknowledged is lost (every save is in the store's log when it returns), and the next
/// open indexes the log's tail. Call `aether_store_close()` first to checkpoint and to see
/// a failure; freeing is then only a release.
#[no_mangle]
pub unsafe extern "C" fn aether_store_free(store: *mut aether_store) {
    if store.is_null() || !store.is_aligned() {
        return;
    }
    let _ = ffi_guard(ErrOut::none(), || {
        // SAFETY: created by Box::into_raw in an open function and, per the contract,
        // not freed before and not in use.
        // Dropping the last reference releases without a checkpoint (see SledStore's Drop).
        drop(unsafe { Box::from_raw(store) });
        Ok(())
    });
}

/// A point-in-time copy of a store's counters (`aether_store_metrics()`).
/// Plain data owned by the caller.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct aether_metrics {
    /// Events stored (each event of a batch counts).
    pub events_saved: u64,
    /// Saves rejected with a version conflict.
    pub version_conflicts: u64,
    /// EventStored notifications published (one per stored event).
    pub event_stored_published: u64,
    /// EventStored notifications the store's channel dropped because nobody drained it
    /// in time (see `event_stored_capacity`).
    pub event_stored_dropped: u64,
    /// Snapshots stored.
    pub snapshots_saved: u64,
    /// Malformed records met during replay.
    pub replay_errors: u64,
}

/// Read the store's counters into `*metrics_out`.
///
/// NULL `store` or `metrics_out` -> `AETHER_INVALID_ARGUMENT`; a closed store ->
/// `AETHER_STORE_CLOSED`. `*metrics_out` is untouched on error and, if `err_out` is not
/// NULL, `*err_out` receives an `aether_error` to free with `aether_error_free()`.
/// Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_store_metrics(
    store: *const aether_store,
    metrics_out: *mut aether_metrics,
    err_out: *mut *mut aether_error,
) -> aether_status {
    store_export!(store, err_out, {
        // SAFETY: every pointer is NULL or valid, per the contract.
        let metrics_out = unsafe { out(metrics_out, "metrics_out") }?;
        let m = store.with(|s| Ok(s.metrics()))?;
        metrics_out.write(aether_metrics {
            events_saved: m.events_saved,
            version_conflicts: m.version_conflicts,
            event_stored_published: m.event_stored_published,
            event_stored_dropped: m.event_stored_dropped,
            snapshots_saved: m.snapshots_saved,
            replay_errors: m.replay_errors,
        });
        Ok(())
    })
}
