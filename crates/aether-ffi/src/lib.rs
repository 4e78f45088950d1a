//! # aether-ffi
//!
//! The C ABI of the aether event store: `libaether.so` / `libaether.a` and the generated
//! header `include/aether.h`. Every export follows the same rules (rustls-ffi's model):
//!
//! - it returns an [`aether_status`] (or cannot fail), checks every pointer (NULL ->
//!   `AETHER_INVALID_ARGUMENT`) and every string (UTF-8), and runs inside
//!   [`guard::ffi_guard`], so a panic becomes `AETHER_PANIC` instead of unwinding into C;
//! - inputs are borrowed for the call; outputs are written only on success; memory the
//!   library hands out is released by the library (`aether_bytes_free`,
//!   `aether_event_stored_clear`, `aether_error_free`);
//! - error detail travels in an optional `aether_error **err_out`, never in thread-local
//!   state (a goroutine may change OS thread between two cgo calls).
//!
//! The exports are `unsafe extern "C" fn`s: their safety contract (which pointers must be
//! valid, for how long) is the prose of each function's documentation, which cbindgen
//! copies into the header.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

// Declaration order is the order of the header's sections.
pub mod appends;
mod args;
pub mod bytes;
pub mod error;
pub mod event_stored;
pub mod events;
#[doc(hidden)]
pub mod guard;
pub mod jetstream;
pub mod status;
pub mod store;

pub use appends::{
    aether_commit_entry, aether_commit_result, aether_direction, aether_event_filter,
    aether_expected_mode, aether_str,
};
pub use bytes::aether_bytes;
pub use error::aether_error;
pub use event_stored::aether_event_stored;
pub use jetstream::aether_jetstream_options;
pub use status::aether_status;
pub use store::{aether_durability, aether_metrics, aether_sled_options, aether_store};

/// Major version of the library this header belongs to (semantic versioning).
pub const AETHER_VERSION_MAJOR: u32 = 0;
/// Minor version of the library this header belongs to.
pub const AETHER_VERSION_MINOR: u32 = 1;
/// Patch version of the library this header belongs to.
pub const AETHER_VERSION_PATCH: u32 = 0;

// cbindgen copies the literals above into the header (it cannot evaluate `env!`), and the
// header builds its `AETHER_VERSION` string from them. These assertions make a version
// bump in Cargo.toml that forgets them a compile error rather than a lying header.
const _: () = {
    assert!(AETHER_VERSION_MAJOR == parse_u32(env!("CARGO_PKG_VERSION_MAJOR")));
    assert!(AETHER_VERSION_MINOR == parse_u32(env!("CARGO_PKG_VERSION_MINOR")));
    assert!(AETHER_VERSION_PATCH == parse_u32(env!("CARGO_PKG_VERSION_PATCH")));
    // A pre-release suffix would not appear in the header's AETHER_VERSION.
    assert!(env!("CARGO_PKG_VERSION_PRE").is_empty());
};

const fn parse_u32(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n = 0u32;
    while i < b.len() {
        assert!(b[i].is_ascii_digit());
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}

/// The library's version as a NUL-terminated "MAJOR.MINOR.PATCH" string (equal to the
/// `AETHER_VERSION` macro of the header it was built with).
///
/// Ownership: the string is static; never free it. Cannot fail. Thread-safe.
#[no_mangle]
pub extern "C" fn aether_version() -> *const std::ffi::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
