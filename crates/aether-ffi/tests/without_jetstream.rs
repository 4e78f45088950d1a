//! A library built without the `jetstream` feature (`cargo test -p aether-ffi
//! --no-default-features`, run by `make test-rust`): the JetStream opener still exists,
//! as the header declares it, and refuses every call with AETHER_UNSUPPORTED.
#![cfg(not(feature = "jetstream"))]

use std::ffi::CStr;
use std::ptr;

use aether::*;

#[test]
fn open_jetstream_is_unsupported_whatever_the_arguments() {
    unsafe {
        let sentinel = ptr::dangling_mut::<aether_store>();
        let mut store = sentinel;
        let mut err: *mut aether_error = ptr::null_mut();
        let mut options = aether_jetstream_options::default();
        jetstream::aether_jetstream_options_default(&mut options);
        let status = jetstream::aether_store_open_jetstream(
            c"nats://127.0.0.1:4222".as_ptr(),
            &options,
            &mut store,
            &mut err,
        );
        assert_eq!(status, aether_status::AETHER_UNSUPPORTED);
        assert_eq!(store, sentinel, "store_out is untouched");
        assert!(!err.is_null());
        assert_eq!(
            error::aether_error_code(err),
            aether_status::AETHER_UNSUPPORTED
        );
        let message = CStr::from_ptr(error::aether_error_message(err))
            .to_str()
            .unwrap();
        assert!(message.contains("built without JetStream"), "{message}");
        error::aether_error_free(err);

        // Even NULL arguments get the same answer: a probe for support.
        assert_eq!(
            jetstream::aether_store_open_jetstream(
                ptr::null(),
                ptr::null(),
                ptr::null_mut(),
                ptr::null_mut()
            ),
            aether_status::AETHER_UNSUPPORTED
        );
        assert_eq!(
            CStr::from_ptr(status::aether_status_str(15)).to_str(),
            Ok("not supported by this build")
        );
    }
}

#[test]
fn the_other_backends_work() {
    unsafe {
        let mut store = ptr::null_mut();
        assert_eq!(
            store::aether_store_open_memory(0, &mut store, ptr::null_mut()),
            aether_status::AETHER_OK
        );
        store::aether_store_free(store);
    }
}

#[test]
fn the_header_documents_the_unsupported_answer() {
    let header = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../include/aether.h"
    ));
    assert!(header.contains("AETHER_UNSUPPORTED = 15,"));
    assert!(header.contains("returns `AETHER_UNSUPPORTED`, whatever its arguments"));
}
