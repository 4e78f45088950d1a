//! Damaged records through the C ABI: `aether_get_events` reports `AETHER_CORRUPT`;
//! `aether_get_events_with_errors` returns the good events and each damaged record's
//! sequence, raw bytes (base64) and cause. The damage is a flipped bit in a frame of the
//! segment log, after a clean close: open trusts what the index covers, and the read finds
//! the frame's checksum wrong.

use std::ffi::CString;
use std::path::Path;
use std::ptr;

use aether::*;
use aether_core::sled_store::segment::{self, LOG_DIR, SEGMENT_HEADER_LEN};
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
    // Closed, so the damage lies before the index's high-water mark: a read finds it
    // (a free alone would leave the records to the next open's recovery, which refuses a
    // damaged record followed by intact ones).
    let status = unsafe { store::aether_store_close(store, ptr::null_mut()) };
    assert_eq!(status, aether_status::AETHER_OK);
    unsafe { store::aether_store_free(store) };

    // Flip a bit inside version 2's JSON behind the store's back: one save, one record,
    // one frame, so it is the second frame of the only segment.
    let damaged = {
        let segments = segment::list(&path.join(LOG_DIR)).unwrap();
        assert_eq!(segments.len(), 1);
        let seg = &segments[0];
        let mut bytes = std::fs::read(&seg.path).unwrap();
        let scan = segment::scan(&bytes, seg.id, SEGMENT_HEADER_LEN as usize);
        assert_eq!(scan.frames.len(), 3);
        let frame = scan.frames[1];
        assert_eq!(frame.sequences, (2, 2));
        let json = frame.payload(&bytes);
        let at = frame.at + 16 + json.len() - json.len() / 4;
        bytes[at] ^= 0x04;
        std::fs::write(&seg.path, &bytes).unwrap();
        bytes[frame.at..frame.next].to_vec()
    };

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
            (*err).message().contains("sequence 2"),
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
            errors[0]["sequence"], 2,
            "the index names the damaged record's sequence"
        );
        let raw = base64::engine::general_purpose::STANDARD
            .decode(errors[0]["raw"].as_str().unwrap())
            .unwrap();
        assert!(
            raw.starts_with(&damaged),
            "the raw bytes begin with the damaged frame"
        );
        let cause = errors[0]["cause"].as_str().unwrap();
        assert!(cause.contains("damaged"), "{cause}");

        let mut m = aether_metrics::default();
        assert_eq!(
            store::aether_store_metrics(store, &mut m, ptr::null_mut()),
            aether_status::AETHER_OK
        );
        assert_eq!(m.replay_errors, 1);
        store::aether_store_free(store);
    }
}
