//! Opening a store on NATS JetStream (crate `aether-jetstream`) through the C ABI.

//!
//! JetStream is the `jetstream` cargo feature of aether-ffi (on by default); it brings
//! tokio, async-nats and ring into the library. Without it (`cargo build -p aether-ffi
//! --no-default-features`) the header is the same, and `aether_store_open_jetstream()`
//! returns `AETHER_UNSUPPORTED`.

use std::ffi::c_char;

use crate::args::out;
use crate::error::aether_error;
use crate::guard::{ffi_guard, ErrOut};
use crate::status::aether_status;
use crate::store::aether_store;

/// Options for `aether_store_open_jetstream()`. A zero (or NULL) field means "the
/// default", so a zero-initialised struct (or `aether_jetstream_options_default()`) gives
/// the defaults. Plain data owned by the caller; the library only reads it (and the
/// strings it points to) during the call and keeps no pointer to it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aether_jetstream_options {
    /// NUL-terminated name of the events stream (created when missing; its snapshots live
    /// in `{stream}_SNAPSHOTS`), 1-200 characters of `[A-Za-z0-9_-]`; NULL =
    /// `"AETHER_EVENTS"`.
    pub stream: *const c_char,
    /// NUL-terminated first subject tokens (`{prefix}.events.*`, `{prefix}.snapshots.*`),
    /// dot-separated tokens of `[A-Za-z0-9_-]`; NULL = `"aether"`.
    pub subject_prefix: *const c_char,
    /// Replicas of the streams when this call creates them (1 for one server, 3 or 5 in a
    /// cluster; at most 5); 0 = 1.
    pub replicas: u32,
    /// Bound on connecting and setting up the streams, in milliseconds; 0 = 5000.
    pub connect_timeout_ms: u32,
    /// Bound on each request to the server (publish acknowledgement, read), in
    /// milliseconds; 0 = 5000.
    pub request_timeout_ms: u32,
    /// NUL-terminated path of a NATS credentials file (`.creds`); NULL = none.
    pub credentials_file: *const c_char,
    /// Undrained EventStored notifications kept before new ones are dropped (and counted
    /// in `aether_metrics.event_stored_dropped`); 0 = 65536, otherwise 1 to 16777216.
    pub event_stored_capacity: usize,
}

impl Default for aether_jetstream_options {
    fn default() -> Self {
        aether_jetstream_options {
            stream: std::ptr::null(),
            subject_prefix: std::ptr::null(),
            replicas: 0,
            connect_timeout_ms: 0,
            request_timeout_ms: 0,
            credentials_file: std::ptr::null(),
            event_stored_capacity: 0,
        }
    }
}

/// Fill `*options_out` with the defaults (all zero / NULL: stream `"AETHER_EVENTS"`,
/// subject prefix `"aether"`, 1 replica, 5000 ms connect and request timeouts, no
/// credentials, 65536 undrained notifications). NULL is a no-op. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn aether_jetstream_options_default(
    options_out: *mut aether_jetstream_options,
) {
    let _ = ffi_guard(ErrOut::none(), || {
        // SAFETY: the caller passes NULL or writable storage for the struct.
        unsafe { out(options_out, "options_out") }?.write(aether_jetstream_options::default());
        Ok(())
    });
}

/// Open a store on a NATS JetStream server or cluster: connect to `url`
/// (NUL-terminated UTF-8; one `nats://host:port`, or a comma-separated list of a
/// cluster's servers), create the events and snapshot streams when missing, and start
/// following the events stream, so EventStored notifications report the saves of every
/// process using the same stream.
///
/// `options` may be NULL for the defaults; it and its strings are only read during the
/// call. The call blocks for at most about `options->connect_timeout_ms`.
///
/// Network failures, here and on later calls, are `AETHER_UNAVAILABLE` (no server
/// answers: opening fails so within the connect timeout) or `AETHER_TIMEOUT`. When
/// such a failure's message says "outcome unknown", a save may or may not have been
/// stored: retrying it with the same event ID is safe (it is stored at most once; the
/// retry answers `AETHER_VERSION_CONFLICT` if the first attempt landed).
///
/// Each store runs a small internal thread pool; calls block on it, so they may come
/// from any thread. On success `*store_out` receives a new handle, owned by the caller
/// and released with `aether_store_free()` (which also disconnects). NULL `url` or
/// `store_out`, a malformed URL (no host, a path, an unknown scheme: checked before
/// connecting), or options out of range -> `AETHER_INVALID_ARGUMENT`. On error
/// `*store_out` is untouched and, if `err_out` is not NULL, `*err_out` receives an
/// `aether_error` to free with `aether_error_free()`. Thread-safe.
///
/// In a library built without JetStream (`cargo build -p aether-ffi
/// --no-default-features`) this function exists but connects nowhere: every call
/// returns `AETHER_UNSUPPORTED`, whatever its arguments, with `*store_out` untouched.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_store_open_jetstream(
    url: *const c_char,
    options: *const aether_jetstream_options,
    store_out: *mut *mut aether_store,
    err_out: *mut *mut aether_error,
) -> aether_status {
    ffi_guard(unsafe { ErrOut::new(err_out) }, || {
        // SAFETY: forwarded contract.
        unsafe { backend::open(url, options, store_out) }
    })
}

#[cfg(feature = "jetstream")]
mod backend {
    use std::ffi::{c_char, CStr};
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    use aether_jetstream::{JetStreamOptions, JetStreamStore};

    use super::aether_jetstream_options;
    use crate::args::out;
    use crate::guard::Failure;
    use crate::store::aether_store;

    /// An optional NUL-terminated UTF-8 string field of the options.
    ///
    /// # Safety
    /// `ptr` is NULL or a NUL-terminated string readable for the call.
    unsafe fn opt_str<'a>(
        ptr: *const c_char,
        what: &'static str,
    ) -> Result<Option<&'a str>, Failure> {
        if ptr.is_null() {
            return Ok(None);
        }
        // SAFETY: non-NULL; the caller promises a NUL-terminated string.
        let s = unsafe { CStr::from_ptr(ptr) };
        s.to_str()
            .map(Some)
            .map_err(|e| Failure::InvalidArgument(format!("{what} is not valid UTF-8: {e}").into()))
    }

    impl aether_jetstream_options {
        /// # Safety
        /// The string fields are NULL or NUL-terminated strings readable for the call.
        unsafe fn to_core(self) -> Result<JetStreamOptions, Failure> {
            let mut o = JetStreamOptions::default();
            // SAFETY: forwarded contract.
            if let Some(s) = unsafe { opt_str(self.stream, "options->stream") }? {
                o.stream = s.to_owned();
            }
            // SAFETY: forwarded contract.
            if let Some(s) = unsafe { opt_str(self.subject_prefix, "options->subject_prefix") }? {
                o.subject_prefix = s.to_owned();
            }
            // SAFETY: forwarded contract.
            if let Some(s) = unsafe { opt_str(self.credentials_file, "options->credentials_file") }?
            {
                if s.is_empty() {
                    return Err(Failure::invalid(
                        "options->credentials_file is empty (use NULL for none)",
                    ));
                }
                o.credentials_file = Some(PathBuf::from(s));
            }
            if self.replicas != 0 {
                o.replicas = self.replicas as usize;
            }
            if self.connect_timeout_ms != 0 {
                o.connect_timeout = Duration::from_millis(self.connect_timeout_ms.into());
            }
            if self.request_timeout_ms != 0 {
                o.request_timeout = Duration::from_millis(self.request_timeout_ms.into());
            }
            if self.event_stored_capacity != 0 {
                o.event_stored_capacity = crate::store::capacity_arg(
                    "options->event_stored_capacity",
                    self.event_stored_capacity,
                )?;
            }
            Ok(o)
        }
    }

    /// The body of `aether_store_open_jetstream()`.
    ///
    /// # Safety
    /// The export's contract.
    pub(super) unsafe fn open(
        url: *const c_char,
        options: *const aether_jetstream_options,
        store_out: *mut *mut aether_store,
    ) -> Result<(), Failure> {
        if url.is_null() {
            return Err(Failure::invalid("url is NULL"));
        }
        if !options.is_aligned() {
            return Err(Failure::invalid("options is misaligned"));
        }
        // SAFETY: the caller passes writable storage for a pointer (checked non-NULL).
        let store_out = unsafe { out(store_out, "store_out") }?;
        // SAFETY: non-NULL; the caller promises a NUL-terminated string.
        let url = unsafe { CStr::from_ptr(url) }
            .to_str()
            .map_err(|e| Failure::InvalidArgument(format!("url is not valid UTF-8: {e}").into()))?;
        if url.trim().is_empty() {
            return Err(Failure::invalid("url is empty"));
        }
        // SAFETY: NULL or a readable options struct whose strings are NULL or
        // NUL-terminated, per the contract.
        let options = unsafe { options.as_ref() }.copied().unwrap_or_default();
        let options = unsafe { options.to_core() }?;
        let store = JetStreamStore::connect(url, options)?;
        store_out.write(Box::into_raw(Box::new(aether_store::new(Arc::new(store)))));
        Ok(())
    }
}

#[cfg(not(feature = "jetstream"))]
mod backend {
    use std::ffi::c_char;

    use super::aether_jetstream_options;
    use crate::guard::Failure;
    use crate::store::aether_store;

    /// Without the backend every call is refused alike, whatever its arguments, so a
    /// caller can probe for support with `aether_store_open_jetstream(NULL, NULL, NULL,
    /// NULL)`.
    pub(super) unsafe fn open(
        _url: *const c_char,
        _options: *const aether_jetstream_options,
        _store_out: *mut *mut aether_store,
    ) -> Result<(), Failure> {
        Err(Failure::Unsupported(
            "this libaether was built without JetStream (aether-ffi's `jetstream` cargo feature)",
        ))
    }
}
