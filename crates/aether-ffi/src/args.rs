//! Checked conversions of C arguments: every pointer is checked for NULL and alignment,
//! every string for UTF-8, before anything else happens.

use crate::guard::Failure;

/// An output location, checked to be non-NULL and aligned. Writing never reads or drops
/// what was there (it may be uninitialised).
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    pub(crate) fn write(self, value: T) {
        // SAFETY: checked non-NULL and aligned by `out`; the caller of the export promises
        // it points to writable storage for a T.
        unsafe { self.0.write(value) }
    }
}

/// A required output pointer.
pub(crate) unsafe fn out<T>(ptr: *mut T, what: &'static str) -> Result<Out<T>, Failure> {
    if ptr.is_null() {
        return Err(Failure::InvalidArgument(format!("{what} is NULL").into()));
    }
    if !ptr.is_aligned() {
        return Err(Failure::InvalidArgument(
            format!("{what} is misaligned").into(),
        ));
    }
    Ok(Out(ptr))
}

/// An optional output pointer: NULL means "not wanted".
pub(crate) unsafe fn opt_out<T>(
    ptr: *mut T,
    what: &'static str,
) -> Result<Option<Out<T>>, Failure> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { out(ptr, what) }.map(Some)
    }
}

/// A borrowed byte buffer (`const uint8_t *ptr, size_t len`). NULL is refused even when
/// `len` is 0, so a forgotten pointer never passes as an empty input.
pub(crate) unsafe fn bytes<'a>(
    ptr: *const u8,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], Failure> {
    if ptr.is_null() {
        return Err(Failure::InvalidArgument(format!("{what} is NULL").into()));
    }
    if len > isize::MAX as usize {
        return Err(Failure::InvalidArgument(
            format!("{what}: length {len} is not a valid buffer length").into(),
        ));
    }
    // SAFETY: non-NULL, length in range; the caller promises `len` readable bytes that
    // stay unchanged for the duration of the call.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A borrowed UTF-8 string (`const uint8_t *ptr, size_t len`), not NUL-terminated.
pub(crate) unsafe fn utf8<'a>(
    ptr: *const u8,
    len: usize,
    what: &'static str,
) -> Result<&'a str, Failure> {
    // SAFETY: forwarded contract.
    let b = unsafe { bytes(ptr, len, what) }?;
    std::str::from_utf8(b)
        .map_err(|e| Failure::InvalidArgument(format!("{what} is not valid UTF-8: {e}").into()))
}

/// A non-negative version bound.
pub(crate) fn from_version(v: i64) -> Result<i64, Failure> {
    if v < 0 {
        return Err(Failure::InvalidArgument(
            format!(
                "from_version is {v}; it must be >= 0 (0 and 1 both mean from the first event)"
            )
            .into(),
        ));
    }
    Ok(v)
}
