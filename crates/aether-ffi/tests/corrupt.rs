//! Damaged records through the C ABI: `aether_get_events` reports `AETHER_CORRUPT`;
//! `aether_get_events_with_errors` returns the good events and each damaged record's
//! sequence, raw bytes (base64) and cause.

use std::ffi::CString;
use std::path::Path;
use std::ptr;

use aether::*;
use aether_core::sled_store::layout;
use base64::Engine as _;

fn event(actor: &str, version: i64) -> String {
    format!(
        r#"{{"id":"{actor}-{version}","eventType":"T","actorId":"{actor}","version":{version},"data":null,"timestamp":"2024-01-02T03:04:05Z"}}"#
    )
}

fn open(path: &Path) -> *mut aether_store {
    let c_path = CString::new(path.to_str().unwrap()).unwrap();
    let mut store = ptr::null_mut();
    let status = unsafe {
        store::aether_store_open_sled(c_path.as_ptr(), ptr::null(), &mut store, ptr::null_mut())
    };
    assert_eq!(status, aether_status::AETHER_OK);
    store
}

#[test]
fn damaged_records_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = open(&path);
    for v in 1..=3 {
        let e = event("a", v);
        let status = unsafe {
            events::aether_save_event(
                store,
                e.as_ptr(),
                e.len(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        assert_eq!(status, aether_status::AETHER_OK);
    }
    unsafe { store::aether_store_free(store) };

    // Overwrite version 2 with garbage behind the store's back.
    {
        let db = sled::open(path.join("sled")).unwrap();
        db.open_tree(layout::TREE_EVENTS)
            .unwrap()
            .insert(layout::event_key(b"a", 2), &b"\x00garbage"[..])
            .unwrap();
        db.flush().unwrap();
    }

    let store = open(&path);
    let mut out = aether_bytes {
        ptr: ptr::null_mut(),
        len: 0,
    };
    let mut err: *mut aether_error = ptr::null_mut();
    unsafe {
        assert_eq!(
            events::aether_get_events(store, b"a".as_ptr(), 1, 0, &mut out, &mut err),
            aether_status::AETHER_CORRUPT
        );
        assert!(out.ptr.is_null());
        assert!(
            (*err).message().contains("version 2"),
            "{}",
            (*err).message()
        );
        error::aether_error_free(err);

        assert_eq!(
            events::aether_get_events_with_errors(
                store,
                b"a".as_ptr(),
                1,
                0,
                &mut out,
                ptr::null_mut()
            ),
            aether_status::AETHER_OK
        );
        let result: serde_json::Value = serde_json::from_slice(out.as_slice()).unwrap();
        bytes::aether_bytes_free(&mut out);
        let events = result["events"].as_array().unwrap();
        let versions: Vec<i64> = events
            .iter()
            .map(|e| e["version"].as_i64().unwrap())
            .collect();
        assert_eq!(versions, [1, 3]);
        let errors = result["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0]["sequence"], 0,
            "garbage carries no readable sequence"
        );
        let raw = base64::engine::general_purpose::STANDARD
            .decode(errors[0]["raw"].as_str().unwrap())
            .unwrap();
        assert_eq!(raw, b"\x00garbage");
        assert!(errors[0]["cause"].as_str().unwrap().contains("version 2"));

        let mut m = aether_metrics::default();
        assert_eq!(
            store::aether_store_metrics(store, &mut m, ptr::null_mut()),
            aether_status::AETHER_OK
        );
        assert_eq!(m.replay_errors, 1);
        store::aether_store_free(store);
    }
}
