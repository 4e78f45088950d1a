//! The C ABI exercised from Rust through the rlib: version and header consistency, the
//! panic boundary, and a round trip through the exports.

use std::ffi::CStr;
use std::ptr;

use aether::guard::{ffi_guard, ErrOut, Failure};
use aether::*;

const HEADER: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../include/aether.h"
));

fn header_define(name: &str) -> &'static str {
    let prefix = format!("#define {name} ");
    HEADER
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("include/aether.h defines no {name}"))
        .trim()
}

#[test]
fn version_matches_cargo_toml() {
    let v = unsafe { CStr::from_ptr(aether_version()) }
        .to_str()
        .unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
}

#[test]
fn header_version_macros_match_cargo_toml() {
    assert_eq!(
        header_define("AETHER_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MAJOR")
    );
    assert_eq!(
        header_define("AETHER_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_MINOR")
    );
    assert_eq!(
        header_define("AETHER_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION_PATCH")
    );
    assert_eq!(
        AETHER_VERSION_MAJOR.to_string(),
        env!("CARGO_PKG_VERSION_MAJOR")
    );
    // AETHER_VERSION is spelled out of the three numbers.
    let version = header_define("AETHER_VERSION");
    for part in ["MAJOR", "MINOR", "PATCH"] {
        assert!(
            version.contains(&format!("AETHER_VERSION_{part}")),
            "{version}"
        );
    }
}

#[test]
fn header_status_values_match_the_enum() {
    use aether_status::*;
    let all = [
        AETHER_OK,
        AETHER_VERSION_CONFLICT,
        AETHER_INVALID_ARGUMENT,
        AETHER_INVALID_EVENT,
        AETHER_NOT_FOUND,
        AETHER_POLL_TIMEOUT,
        AETHER_CORRUPT,
        AETHER_DATA_LOSS,
        AETHER_LOCKED,
        AETHER_STORAGE,
        AETHER_STORE_CLOSED,
        AETHER_TIMEOUT,
        AETHER_UNAVAILABLE,
        AETHER_STALE_SNAPSHOT,
        AETHER_PANIC,
    ];
    for (i, status) in all.iter().enumerate() {
        assert_eq!(*status as usize, i, "{status:?} was renumbered");
        let line = format!("  {status:?} = {i},");
        assert!(HEADER.contains(&line), "header lacks `{line}`");
        let s = unsafe { CStr::from_ptr(status::aether_status_str(i as i32)) };
        assert_eq!(s.to_str().unwrap(), status.description());
    }
}

#[test]
fn a_panic_becomes_the_panic_status() {
    let mut err: *mut aether_error = ptr::null_mut();
    let status = ffi_guard(unsafe { ErrOut::new(&mut err) }, || panic!("boom {}", 42));
    assert_eq!(status, aether_status::AETHER_PANIC);
    assert!(!err.is_null());
    unsafe {
        assert_eq!(error::aether_error_code(err), aether_status::AETHER_PANIC);
        let msg = CStr::from_ptr(error::aether_error_message(err))
            .to_str()
            .unwrap();
        assert!(msg.contains("boom 42"), "{msg}");
        error::aether_error_free(err);
    }

    // Without err_out, and with a payload that is not a string.
    let status = ffi_guard(ErrOut::none(), || std::panic::panic_any(7_u8));
    assert_eq!(status, aether_status::AETHER_PANIC);
    let mut err: *mut aether_error = ptr::null_mut();
    assert_eq!(
        ffi_guard(
            unsafe { ErrOut::new(&mut err) },
            || -> Result<(), Failure> { panic!("static str") }
        ),
        aether_status::AETHER_PANIC
    );
    assert_eq!(
        unsafe { (*err).message() },
        "internal panic (a bug in aether; please report): static str"
    );
    unsafe { error::aether_error_free(err) };
}

#[test]
fn success_leaves_err_out_untouched_and_failure_fills_it() {
    let sentinel = 0x10 as *mut aether_error;
    let mut err = sentinel;
    assert_eq!(
        ffi_guard(unsafe { ErrOut::new(&mut err) }, || Ok(())),
        aether_status::AETHER_OK
    );
    assert_eq!(err, sentinel);

    let mut err: *mut aether_error = ptr::null_mut();
    let status = ffi_guard(unsafe { ErrOut::new(&mut err) }, || {
        Err(Failure::NotFound("thing"))
    });
    assert_eq!(status, aether_status::AETHER_NOT_FOUND);
    assert_eq!(unsafe { (*err).message() }, "not found: thing");
    unsafe { error::aether_error_free(err) };
}

fn event(id: &str, actor: &str, version: i64) -> String {
    format!(
        r#"{{"id":"{id}","eventType":"T","actorId":"{actor}","version":{version},"data":{{"k":"v"}},"timestamp":"2024-01-02T03:04:05Z"}}"#
    )
}

#[test]
fn round_trip_through_the_exports() {
    unsafe {
        let mut store: *mut aether_store = ptr::null_mut();
        assert_eq!(
            store::aether_store_open_memory(0, &mut store, ptr::null_mut()),
            aether_status::AETHER_OK
        );
        let (e1, e2) = (event("e1", "a", 1), event("e2", "a", 2));
        let mut seq = 0u64;
        let mut version = 0i64;
        for e in [&e1, &e2] {
            assert_eq!(
                events::aether_save_event(
                    store,
                    e.as_ptr(),
                    e.len(),
                    &mut version,
                    &mut seq,
                    ptr::null_mut()
                ),
                aether_status::AETHER_OK
            );
        }
        assert_eq!((version, seq), (2, 2));

        let mut err: *mut aether_error = ptr::null_mut();
        let again = event("x", "a", 2);
        assert_eq!(
            events::aether_save_event(
                store,
                again.as_ptr(),
                again.len(),
                &mut version,
                &mut seq,
                &mut err
            ),
            aether_status::AETHER_VERSION_CONFLICT
        );
        assert_eq!((version, seq), (2, 2));
        let (mut actor, mut actor_len, mut attempted, mut current) = (ptr::null(), 0, 0, 0);
        assert_eq!(
            error::aether_error_conflict(
                err,
                &mut actor,
                &mut actor_len,
                &mut attempted,
                &mut current
            ),
            aether_status::AETHER_OK
        );
        assert_eq!(
            (
                std::slice::from_raw_parts(actor, actor_len),
                attempted,
                current
            ),
            (&b"a"[..], 2, 2)
        );
        error::aether_error_free(err);

        let mut out = aether_bytes {
            ptr: ptr::null_mut(),
            len: 0,
        };
        assert_eq!(
            events::aether_get_events(store, b"a".as_ptr(), 1, 0, &mut out, ptr::null_mut()),
            aether_status::AETHER_OK
        );
        assert_eq!(out.as_slice(), format!("[{e1},{e2}]").as_bytes());
        bytes::aether_bytes_free(&mut out);
        assert!(out.ptr.is_null() && out.len == 0);

        let mut n: aether_event_stored = std::mem::zeroed();
        assert_eq!(
            event_stored::aether_poll_event_stored(store, 0, &mut n, ptr::null_mut()),
            aether_status::AETHER_OK
        );
        assert_eq!(
            (n.event_id(), n.actor_id(), n.version, n.sequence),
            ("e1", "a", 1, 1)
        );
        event_stored::aether_event_stored_clear(&mut n);

        let mut m = aether_metrics::default();
        assert_eq!(
            store::aether_store_metrics(store, &mut m, ptr::null_mut()),
            aether_status::AETHER_OK
        );
        assert_eq!((m.events_saved, m.version_conflicts), (2, 1));

        assert_eq!(
            store::aether_store_close(store, ptr::null_mut()),
            aether_status::AETHER_OK
        );
        assert_eq!(
            events::aether_get_events(store, b"a".as_ptr(), 1, 0, &mut out, ptr::null_mut()),
            aether_status::AETHER_STORE_CLOSED
        );
        store::aether_store_free(store);
    }
}

/// A store handle shared by threads: exactly one save of each version wins.
#[test]
fn handle_is_shared_across_threads() {
    struct Shared(*mut aether_store);
    // SAFETY: aether_store is Send + Sync (asserted in the crate); the pointer outlives
    // the threads.
    unsafe impl Send for Shared {}
    unsafe impl Sync for Shared {}

    let mut store: *mut aether_store = ptr::null_mut();
    assert_eq!(
        unsafe { store::aether_store_open_memory(0, &mut store, ptr::null_mut()) },
        aether_status::AETHER_OK
    );
    let shared = Shared(store);
    let wins: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let shared = &shared;
                s.spawn(move || {
                    let mut wins = 0;
                    for v in 1..=100 {
                        let e = event(&format!("t{t}"), "race", v);
                        let mut current = 0;
                        let status = unsafe {
                            events::aether_save_event(
                                shared.0,
                                e.as_ptr(),
                                e.len(),
                                &mut current,
                                ptr::null_mut(),
                                ptr::null_mut(),
                            )
                        };
                        match status {
                            aether_status::AETHER_OK => wins += 1,
                            aether_status::AETHER_VERSION_CONFLICT => assert!(current >= v),
                            other => panic!("{other:?}"),
                        }
                    }
                    wins
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(wins, 100);
    unsafe { store::aether_store_free(store) };
}

/// One parameter order for every opener: inputs, then `store_out`, then `err_out`
/// (`aether_store_open_memory` used to take its output first).
#[test]
fn every_opener_takes_its_output_last() {
    let declarations: Vec<&str> = HEADER
        .match_indices("aether_status aether_store_open_")
        .map(|(at, _)| {
            let decl = &HEADER[at..];
            &decl[..decl.find(')').unwrap()]
        })
        .collect();
    assert_eq!(
        declarations.len(),
        4,
        "memory, sled, sled with a snapshot retention, and jetstream openers"
    );
    for decl in declarations {
        let params: Vec<String> = decl[decl.find('(').unwrap() + 1..]
            .split(',')
            .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        let n = params.len();
        assert!(n >= 3, "{decl}");
        assert_eq!(params[n - 2], "struct aether_store **store_out", "{decl}");
        assert_eq!(params[n - 1], "struct aether_error **err_out", "{decl}");
    }
}
