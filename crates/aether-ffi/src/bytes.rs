//! `aether_bytes`: a buffer the library allocated and hands to the caller.

use std::ptr;

/// A byte buffer allocated by the library (JSON results), owned by the caller until it
/// passes it to `aether_bytes_free()`. `ptr` is NULL exactly when `len` is 0. The bytes
/// are not NUL-terminated. Never free `ptr` with `free()`.
///
/// A filled `aether_bytes` may be handed to any thread; freeing it is the owner's job.
#[repr(C)]
#[derive(Debug)]
pub struct aether_bytes {
    /// The first byte, or NULL when empty.
    pub ptr: *mut u8,
    /// The number of bytes.
    pub len: usize,
}

impl aether_bytes {
    /// Hand `v` to the caller. The allocation shrinks to `len` first so that freeing
    /// needs only `ptr` and `len` (glibc shrinks in place).
    pub(crate) fn from_vec(v: Vec<u8>) -> aether_bytes {
        let (ptr, len) = into_raw_parts(v.into_boxed_slice());
        aether_bytes { ptr, len }
    }

    /// The bytes, for Rust callers (tests, benches).
    ///
    /// # Safety
    /// `self` must have been filled by this library and not freed.
    pub unsafe fn as_slice(&self) -> &[u8] {
        if self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: per the contract, ptr/len describe a live allocation of ours.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }
}

/// Give up ownership of `b`: (NULL, 0) when empty.
pub(crate) fn into_raw_parts(b: Box<[u8]>) -> (*mut u8, usize) {
    if b.is_empty() {
        (ptr::null_mut(), 0)
    } else {
        let len = b.len();
        (Box::into_raw(b).cast::<u8>(), len)
    }
}

/// Take back what `into_raw_parts` gave.
///
/// # Safety
/// `(ptr, len)` must come from `into_raw_parts` and not have been released.
pub(crate) unsafe fn release_raw_parts(ptr: *mut u8, len: usize) {
    if !ptr.is_null() {
        // SAFETY: per the contract, this is the boxed slice into_raw_parts leaked.
        drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(ptr, len)) });
    }
}

/// Release the buffer `bytes` describes and reset it to `{NULL, 0}`.
///
/// NULL `bytes` and an empty buffer are no-ops, so freeing twice through the same
/// `aether_bytes` is harmless; freeing a copy of it twice is not. Only pass buffers this
/// library filled. Thread-safe (for distinct buffers).
#[no_mangle]
pub unsafe extern "C" fn aether_bytes_free(bytes: *mut aether_bytes) {
    if !bytes.is_aligned() {
        return;
    }
    // SAFETY: aligned; the caller passes NULL or a valid aether_bytes.
    let Some(b) = (unsafe { bytes.as_mut() }) else {
        return;
    };
    let (ptr, len) = (b.ptr, b.len);
    b.ptr = ptr::null_mut();
    b.len = 0;
    let _ = crate::guard::ffi_guard(crate::guard::ErrOut::none(), || {
        // SAFETY: filled by aether_bytes::from_vec, per the contract.
        unsafe { release_raw_parts(ptr, len) };
        Ok(())
    });
}
