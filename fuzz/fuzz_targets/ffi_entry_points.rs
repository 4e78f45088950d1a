//! The C ABI's save / read / snapshot / poll entry points on an in-memory store, driven by
//! a script of arbitrary bytes and checked against a model of what the store must hold.
//!
//! Input: lines (split on `\n`, at most `MAX_OPS`), each an operation byte and its payload:
//!
//! | op  | call                                  | payload                                   |
//! |-----|---------------------------------------|-------------------------------------------|
//! | `E` | `aether_save_event`                   | event JSON                                |
//! | `B` | `aether_save_events`                  | JSON array of events                      |
//! | `S` | `aether_save_snapshot`                | snapshot JSON                             |
//! | `g` | `aether_get_events`                   | from_version byte (`'0'` = 0), actor ID   |
//! | `w` | `aether_get_events_with_errors`       | from_version byte, actor ID               |
//! | `v` | `aether_get_latest_version`           | actor ID                                  |
//! | `n` | `aether_get_latest_snapshot`          | actor ID                                  |
//! | `r` | `aether_read_all`                     | from_sequence byte, limit byte (`~` = max)|
//! | `q` | `aether_last_sequence`                |                                           |
//! | `p` | `aether_poll_event_stored_batch`      |                                           |
//! | `m` | `aether_store_metrics`                |                                           |
//! | `c` | `aether_store_close`                  |                                           |
//!
//! Every call must return a defined status, never `AETHER_PANIC`; an `aether_error` comes
//! back exactly on failure, carries the same status and a message, and is freed; outputs
//! are untouched on error; every buffer the library hands out is freed (so LeakSanitizer
//! sees a leak in an ASan run). Statuses and outputs must equal what the model predicts.
#![no_main]

use std::collections::{HashMap, VecDeque};
use std::ffi::CStr;
use std::ptr;

use aether::bytes::aether_bytes_free;
use aether::error::{
    aether_error_code, aether_error_conflict, aether_error_free, aether_error_message,
};
use aether::event_stored::{aether_event_stored_clear_batch, aether_poll_event_stored_batch};
use aether::events::{
    aether_get_events, aether_get_events_with_errors, aether_get_latest_snapshot,
    aether_get_latest_version, aether_last_sequence, aether_read_all, aether_save_event,
    aether_save_events, aether_save_snapshot,
};
use aether::store::{
    aether_store_close, aether_store_free, aether_store_metrics, aether_store_open_memory,
};
use aether::{
    aether_bytes, aether_error, aether_event_stored, aether_metrics, aether_status, aether_store,
};
use aether_core::{ActorSnapshot, Event, Limits};
use libfuzzer_sys::fuzz_target;

use aether_status::*;

const MAX_OPS: usize = 64;
/// Small, so a full channel (dropped notifications) is reachable, and so opening a store
/// per input stays cheap (the channel's buffer is allocated up front).
const CHANNEL_CAPACITY: usize = 8;
const POLL_CAPACITY: usize = 5;

/// What the store must hold.
#[derive(Default)]
struct Model {
    /// Per actor: (version, Go JSON) in version order.
    actors: HashMap<String, Vec<(i64, Vec<u8>)>>,
    /// Go JSON of every event, index = sequence - 1.
    log: Vec<Vec<u8>>,
    /// Per actor: (version, Go JSON) of the latest snapshot.
    snapshots: HashMap<String, (i64, Vec<u8>)>,
    /// Undrained notifications: (event ID, actor ID, version, sequence).
    pending: VecDeque<(String, String, i64, u64)>,
    conflicts: u64,
    dropped: u64,
    snapshots_saved: u64,
    closed: bool,
}

impl Model {
    fn latest(&self, actor_id: &str) -> i64 {
        self.actors
            .get(actor_id)
            .and_then(|v| v.last())
            .map_or(0, |(v, _)| *v)
    }

    /// The status a save of `events` must return (before the version check).
    fn check_batch(&self, events: &[Event]) -> aether_status {
        let limits = Limits::default();
        if self.closed {
            return AETHER_STORE_CLOSED;
        }
        if limits.check_batch(events).is_err()
            || events
                .iter()
                .any(|e| limits.check_record_len("event", e.to_json().len()).is_err())
        {
            return AETHER_INVALID_EVENT;
        }
        if events[0].version <= self.latest(&events[0].actor_id) {
            return AETHER_VERSION_CONFLICT;
        }
        AETHER_OK
    }

    fn append(&mut self, events: &[Event]) {
        for e in events {
            let json = e.to_json();
            self.log.push(json.clone());
            let sequence = self.log.len() as u64;
            self.actors
                .entry(e.actor_id.clone())
                .or_default()
                .push((e.version, json));
            if self.pending.len() < CHANNEL_CAPACITY {
                self.pending
                    .push_back((e.id.clone(), e.actor_id.clone(), e.version, sequence));
            } else {
                self.dropped += 1;
            }
        }
    }
}

/// Check the status of one call and the `aether_error` it produced, then free the error.
fn check(what: &str, status: aether_status, err: *mut aether_error) -> aether_status {
    let code = status as i32;
    assert!((0..=14).contains(&code), "{what}: undefined status {code}");
    // SAFETY: err is NULL or an error this call created.
    unsafe {
        if status == AETHER_OK {
            assert!(err.is_null(), "{what}: an aether_error on success");
            return status;
        }
        assert!(
            !err.is_null(),
            "{what}: status {status:?} without an aether_error"
        );
        assert_eq!(aether_error_code(err), status, "{what}: error code");
        let msg = CStr::from_ptr(aether_error_message(err));
        let msg = msg.to_str().expect("error message is UTF-8");
        assert!(!msg.is_empty(), "{what}: empty error message");
        assert_ne!(
            status, AETHER_PANIC,
            "{what}: panic inside the library: {msg}"
        );
    }
    status
}

/// The conflict detail of `err` (a version conflict or stale snapshot).
unsafe fn conflict_of(err: *const aether_error) -> (Vec<u8>, i64, i64) {
    let (mut actor, mut len, mut attempted, mut current) = (ptr::null(), 0usize, 0i64, 0i64);
    let st =
        unsafe { aether_error_conflict(err, &mut actor, &mut len, &mut attempted, &mut current) };
    assert_eq!(st, AETHER_OK, "aether_error_conflict");
    let actor = if actor.is_null() {
        Vec::new()
    } else {
        unsafe { std::slice::from_raw_parts(actor, len) }.to_vec()
    };
    (actor, attempted, current)
}

/// An `aether_bytes` the library must not touch on error: a recognisable fake.
fn untouched_bytes() -> aether_bytes {
    aether_bytes {
        ptr: ptr::NonNull::<u8>::dangling().as_ptr(),
        len: 0xDEAD,
    }
}

fn is_untouched(b: &aether_bytes) -> bool {
    b.ptr == ptr::NonNull::<u8>::dangling().as_ptr() && b.len == 0xDEAD
}

/// Copy out and free a buffer the library filled.
fn take(mut b: aether_bytes) -> Vec<u8> {
    assert_eq!(
        b.ptr.is_null(),
        b.len == 0,
        "aether_bytes: ptr is NULL exactly when empty"
    );
    // SAFETY: filled by the library on success.
    let v = unsafe { b.as_slice() }.to_vec();
    unsafe { aether_bytes_free(&mut b) };
    assert!(
        b.ptr.is_null() && b.len == 0,
        "aether_bytes_free resets the buffer"
    );
    v
}

fn json_array(items: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
    let mut out = b"[".to_vec();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&item);
    }
    out.push(b']');
    out
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `(from, rest)` of a payload that starts with a small number (`'0'` = 0, `'/'` = -1).
fn small_number(payload: &[u8]) -> (i64, &[u8]) {
    match payload.split_first() {
        Some((&b, rest)) => (b as i64 - b'0' as i64, rest),
        None => (0, payload),
    }
}

struct Run {
    store: *mut aether_store,
    model: Model,
}

impl Run {
    fn save(&mut self, batch: bool, json: &[u8]) {
        let (mut current, mut sequence) = (i64::MIN + 7, u64::MAX - 7);
        let mut err = ptr::null_mut();
        // SAFETY: a live store; pointers to locals.
        let status = unsafe {
            if batch {
                aether_save_events(
                    self.store,
                    json.as_ptr(),
                    json.len(),
                    &mut current,
                    &mut sequence,
                    &mut err,
                )
            } else {
                aether_save_event(
                    self.store,
                    json.as_ptr(),
                    json.len(),
                    &mut current,
                    &mut sequence,
                    &mut err,
                )
            }
        };
        let what = if batch {
            "aether_save_events"
        } else {
            "aether_save_event"
        };
        let decoded: Option<Vec<Event>> = match std::str::from_utf8(json) {
            Err(_) => None,
            Ok(text) if batch => serde_json::from_str(text).ok(),
            Ok(text) => serde_json::from_str::<Event>(text).ok().map(|e| vec![e]),
        };
        let expected = match (&decoded, std::str::from_utf8(json).is_ok()) {
            (_, false) => AETHER_INVALID_ARGUMENT,
            (None, true) => AETHER_INVALID_EVENT,
            (Some(events), true) => self.model.check_batch(events),
        };
        if status != expected {
            // Keep the message for the report, then fail.
            let msg = if err.is_null() {
                String::new()
            } else {
                unsafe { CStr::from_ptr(aether_error_message(err)) }
                    .to_string_lossy()
                    .into_owned()
            };
            panic!(
                "{what}({}) returned {status:?} ({msg}), the model expects {expected:?}",
                show(json)
            );
        }
        if status == AETHER_VERSION_CONFLICT {
            let events = decoded.as_ref().expect("decoded");
            let latest = self.model.latest(&events[0].actor_id);
            // SAFETY: the call's error, not yet freed.
            let (actor, attempted, cur) = unsafe { conflict_of(err) };
            assert_eq!(
                (actor.as_slice(), attempted, cur),
                (events[0].actor_id.as_bytes(), events[0].version, latest),
                "{what}: conflict detail"
            );
            assert_eq!(current, latest, "{what}: current_version_out on a conflict");
            assert_eq!(
                sequence,
                u64::MAX - 7,
                "{what}: sequence_out written on a conflict"
            );
            self.model.conflicts += 1;
        } else if status == AETHER_OK {
            let events = decoded.expect("decoded");
            self.model.append(&events);
            let last = events.last().expect("a saved batch is not empty");
            assert_eq!(current, last.version, "{what}: current_version_out");
            assert_eq!(
                sequence,
                self.model.log.len() as u64,
                "{what}: sequence_out"
            );
        } else {
            assert_eq!(
                (current, sequence),
                (i64::MIN + 7, u64::MAX - 7),
                "{what}: outputs written on error"
            );
        }
        check(what, status, err);
        unsafe { aether_error_free(err) };
    }

    fn save_snapshot(&mut self, json: &[u8]) {
        let mut err = ptr::null_mut();
        // SAFETY: a live store.
        let status =
            unsafe { aether_save_snapshot(self.store, json.as_ptr(), json.len(), &mut err) };
        let decoded = std::str::from_utf8(json)
            .ok()
            .map(|t| serde_json::from_str::<ActorSnapshot>(t).ok());
        let limits = Limits::default();
        let expected = match &decoded {
            None => AETHER_INVALID_ARGUMENT,
            Some(None) => AETHER_INVALID_EVENT,
            Some(Some(_)) if self.model.closed => AETHER_STORE_CLOSED,
            Some(Some(s))
                if limits.check_actor_id(&s.actor_id).is_err()
                    || limits
                        .check_record_len("snapshot", s.to_json().len())
                        .is_err() =>
            {
                AETHER_INVALID_EVENT
            }
            Some(Some(s)) => match self.model.snapshots.get(&s.actor_id) {
                Some((v, _)) if s.version < *v => AETHER_STALE_SNAPSHOT,
                _ => AETHER_OK,
            },
        };
        assert_eq!(status, expected, "aether_save_snapshot({})", show(json));
        if let Some(Some(s)) = decoded {
            if status == AETHER_STALE_SNAPSHOT {
                let stored = self.model.snapshots[&s.actor_id].0;
                // SAFETY: the call's error, not yet freed.
                let detail = unsafe { conflict_of(err) };
                assert_eq!(
                    detail,
                    (s.actor_id.clone().into_bytes(), s.version, stored),
                    "stale snapshot detail"
                );
            } else if status == AETHER_OK {
                self.model
                    .snapshots
                    .insert(s.actor_id.clone(), (s.version, s.to_json()));
                self.model.snapshots_saved += 1;
            }
        }
        check("aether_save_snapshot", status, err);
        unsafe { aether_error_free(err) };
    }

    /// A read that fills an `aether_bytes`; returns the bytes on success.
    fn read_bytes(
        &self,
        what: &str,
        call: impl FnOnce(*mut aether_bytes, *mut *mut aether_error) -> aether_status,
        expected: aether_status,
    ) -> Option<Vec<u8>> {
        let mut out = untouched_bytes();
        let mut err = ptr::null_mut();
        let status = call(&mut out, &mut err);
        check(what, status, err);
        unsafe { aether_error_free(err) };
        assert_eq!(status, expected, "{what}");
        if status == AETHER_OK {
            Some(take(out))
        } else {
            assert!(is_untouched(&out), "{what}: output written on error");
            None
        }
    }

    fn get_events(&self, with_errors: bool, payload: &[u8]) {
        let (from, actor) = small_number(payload);
        let expected = match std::str::from_utf8(actor) {
            Err(_) => AETHER_INVALID_ARGUMENT,
            Ok(_) if from < 0 => AETHER_INVALID_ARGUMENT,
            Ok(_) if self.model.closed => AETHER_STORE_CLOSED,
            Ok(_) => AETHER_OK,
        };
        let what = if with_errors {
            "aether_get_events_with_errors"
        } else {
            "aether_get_events"
        };
        let store = self.store;
        let got = self.read_bytes(
            what,
            // SAFETY: a live store; the actor bytes outlive the call.
            |out, err| unsafe {
                if with_errors {
                    aether_get_events_with_errors(
                        store,
                        actor.as_ptr(),
                        actor.len(),
                        from,
                        out,
                        err,
                    )
                } else {
                    aether_get_events(store, actor.as_ptr(), actor.len(), from, out, err)
                }
            },
            expected,
        );
        let Some(got) = got else { return };
        let actor = std::str::from_utf8(actor).expect("checked");
        let mut want = json_array(
            self.model
                .actors
                .get(actor)
                .into_iter()
                .flatten()
                .filter(|(v, _)| *v >= from)
                .map(|(_, j)| j.clone()),
        );
        if with_errors {
            want.splice(0..0, b"{\"events\":".iter().copied());
            want.extend_from_slice(b",\"errors\":[]}");
        }
        assert_eq!(show(&got), show(&want), "{what}({actor:?}, {from})");
    }

    fn get_latest_version(&self, actor: &[u8]) {
        let mut version = -77i64;
        let mut err = ptr::null_mut();
        // SAFETY: a live store.
        let status = unsafe {
            aether_get_latest_version(
                self.store,
                actor.as_ptr(),
                actor.len(),
                &mut version,
                &mut err,
            )
        };
        check("aether_get_latest_version", status, err);
        unsafe { aether_error_free(err) };
        match std::str::from_utf8(actor) {
            Err(_) => assert_eq!((status, version), (AETHER_INVALID_ARGUMENT, -77)),
            Ok(_) if self.model.closed => assert_eq!((status, version), (AETHER_STORE_CLOSED, -77)),
            Ok(a) => assert_eq!(
                (status, version),
                (AETHER_OK, self.model.latest(a)),
                "latest version of {a:?}"
            ),
        }
    }

    fn get_latest_snapshot(&self, actor: &[u8]) {
        let text = std::str::from_utf8(actor);
        let stored = text.ok().and_then(|a| self.model.snapshots.get(a));
        let expected = match (text, stored) {
            (Err(_), _) => AETHER_INVALID_ARGUMENT,
            _ if self.model.closed => AETHER_STORE_CLOSED,
            (Ok(_), None) => AETHER_NOT_FOUND,
            (Ok(_), Some(_)) => AETHER_OK,
        };
        let store = self.store;
        // SAFETY: a live store.
        let got = self.read_bytes(
            "aether_get_latest_snapshot",
            |out, err| unsafe {
                aether_get_latest_snapshot(store, actor.as_ptr(), actor.len(), out, err)
            },
            expected,
        );
        if let Some(got) = got {
            assert_eq!(
                show(&got),
                show(&stored.expect("expected OK").1),
                "snapshot of {:?}",
                show(actor)
            );
        }
    }

    fn read_all(&self, payload: &[u8]) {
        let from = match payload.first() {
            Some(b'~') => u64::MAX,
            Some(&b) => b.saturating_sub(b'0') as u64,
            None => 0,
        };
        let limit = match payload.get(1) {
            Some(b'~') | None => usize::MAX,
            Some(&b) => b.saturating_sub(b'0') as usize,
        };
        let expected = if self.model.closed {
            AETHER_STORE_CLOSED
        } else {
            AETHER_OK
        };
        let store = self.store;
        // SAFETY: a live store.
        let got = self.read_bytes(
            "aether_read_all",
            |out, err| unsafe { aether_read_all(store, from, limit, out, err) },
            expected,
        );
        let Some(got) = got else { return };
        let start = from.max(1) - 1;
        let want = json_array(
            self.model
                .log
                .iter()
                .enumerate()
                .skip(usize::try_from(start).unwrap_or(usize::MAX))
                .take(limit)
                .map(|(i, j)| {
                    let mut item = format!("{{\"sequence\":{},\"event\":", i + 1).into_bytes();
                    item.extend_from_slice(j);
                    item.push(b'}');
                    item
                }),
        );
        assert_eq!(show(&got), show(&want), "aether_read_all({from}, {limit})");
    }

    fn last_sequence(&self) {
        let mut seq = 77u64;
        let mut err = ptr::null_mut();
        // SAFETY: a live store.
        let status = unsafe { aether_last_sequence(self.store, &mut seq, &mut err) };
        check("aether_last_sequence", status, err);
        unsafe { aether_error_free(err) };
        if self.model.closed {
            assert_eq!((status, seq), (AETHER_STORE_CLOSED, 77));
        } else {
            assert_eq!((status, seq), (AETHER_OK, self.model.log.len() as u64));
        }
    }

    fn poll(&mut self) {
        let mut events: [aether_event_stored; POLL_CAPACITY] =
            std::array::from_fn(|_| aether_event_stored {
                event_id: ptr::null(),
                event_id_len: 0,
                actor_id: ptr::null(),
                actor_id_len: 0,
                version: 0,
                timestamp_unix_nanos: 0,
                sequence: 0,
            });
        let mut count = 99usize;
        let mut err = ptr::null_mut();
        // SAFETY: a live store; POLL_CAPACITY writable elements.
        let status = unsafe {
            aether_poll_event_stored_batch(
                self.store,
                0,
                events.as_mut_ptr(),
                POLL_CAPACITY,
                &mut count,
                &mut err,
            )
        };
        check("aether_poll_event_stored_batch", status, err);
        unsafe { aether_error_free(err) };
        let expected = if self.model.closed {
            AETHER_STORE_CLOSED
        } else if self.model.pending.is_empty() {
            AETHER_POLL_TIMEOUT
        } else {
            AETHER_OK
        };
        assert_eq!(status, expected, "aether_poll_event_stored_batch");
        if status != AETHER_OK {
            assert_eq!(count, 99, "count_out written on error");
            return;
        }
        assert_eq!(
            count,
            self.model.pending.len().min(POLL_CAPACITY),
            "notifications taken"
        );
        for e in &events[..count] {
            let want = self.model.pending.pop_front().expect("counted");
            // SAFETY: filled by the library; strings live until cleared.
            let got = unsafe {
                (
                    slice_or_empty(e.event_id, e.event_id_len),
                    slice_or_empty(e.actor_id, e.actor_id_len),
                    e.version,
                    e.sequence,
                )
            };
            assert_eq!(
                got,
                (want.0.as_bytes(), want.1.as_bytes(), want.2, want.3),
                "EventStored notification"
            );
        }
        // SAFETY: the first `count` elements were filled by the call.
        unsafe { aether_event_stored_clear_batch(events.as_mut_ptr(), count) };
    }

    fn metrics(&self) {
        let mut m = aether_metrics {
            events_saved: 1,
            version_conflicts: 2,
            event_stored_published: 3,
            event_stored_dropped: 4,
            snapshots_saved: 5,
            replay_errors: 6,
        };
        let mut err = ptr::null_mut();
        // SAFETY: a live store.
        let status = unsafe { aether_store_metrics(self.store, &mut m, &mut err) };
        check("aether_store_metrics", status, err);
        unsafe { aether_error_free(err) };
        let got = (
            m.events_saved,
            m.version_conflicts,
            m.event_stored_published,
            m.event_stored_dropped,
            m.snapshots_saved,
            m.replay_errors,
        );
        if self.model.closed {
            assert_eq!((status, got), (AETHER_STORE_CLOSED, (1, 2, 3, 4, 5, 6)));
        } else {
            let saved = self.model.log.len() as u64;
            let model = &self.model;
            assert_eq!(
                (status, got),
                (
                    AETHER_OK,
                    (
                        saved,
                        model.conflicts,
                        saved,
                        model.dropped,
                        model.snapshots_saved,
                        0
                    )
                ),
                "metrics (saved, conflicts, published, dropped, snapshots, replay errors)"
            );
        }
    }

    fn close(&mut self) {
        let mut err = ptr::null_mut();
        // SAFETY: a live store; closing twice is allowed.
        let status = unsafe { aether_store_close(self.store, &mut err) };
        check("aether_store_close", status, err);
        unsafe { aether_error_free(err) };
        assert_eq!(status, AETHER_OK, "aether_store_close");
        self.model.closed = true;
    }
}

unsafe fn slice_or_empty<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() {
        assert_eq!(len, 0, "NULL string with a length");
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut store = ptr::null_mut();
    let mut err = ptr::null_mut();
    // SAFETY: pointers to locals.
    let status = unsafe { aether_store_open_memory(CHANNEL_CAPACITY, &mut store, &mut err) };
    assert_eq!(check("aether_store_open_memory", status, err), AETHER_OK);
    let mut run = Run {
        store,
        model: Model::default(),
    };
    for line in data.split(|&b| b == b'\n').take(MAX_OPS) {
        let Some((&op, payload)) = line.split_first() else {
            continue;
        };
        match op {
            b'E' => run.save(false, payload),
            b'B' => run.save(true, payload),
            b'S' => run.save_snapshot(payload),
            b'g' => run.get_events(false, payload),
            b'w' => run.get_events(true, payload),
            b'v' => run.get_latest_version(payload),
            b'n' => run.get_latest_snapshot(payload),
            b'r' => run.read_all(payload),
            b'q' => run.last_sequence(),
            b'p' => run.poll(),
            b'm' => run.metrics(),
            b'c' => run.close(),
            _ => {}
        }
    }
    // SAFETY: created above, no call in progress, freed once (undrained notifications and
    // all are released with it).
    unsafe { aether_store_free(run.store) };
});
