//! Appends with an expected state, commits across actors, snapshot history, and bounded
//! and filtered reads. Events cross the boundary as JSON, as in `events.rs`.

use std::ffi::c_int;

use aether_core::{
    CommitEntry, Committed, Direction, Event, EventFilter, EventRange, ExpectedState,
};

use crate::args::{bytes, opt_out, out, utf8};
use crate::bytes::aether_bytes;
use crate::error::aether_error;
use crate::events::decode;
use crate::guard::{store_export, Failure};
use crate::status::aether_status;
use crate::store::aether_store;

/// What an append expects of an actor's stream (`expected_mode` arguments and
/// `aether_commit_entry.expected_mode`). Whatever the mode, explicit versions must be
/// greater than the actor's latest. Values never change.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum aether_expected_mode {
    /// The seed's rule, and the default: the first event's version is greater than the
    /// actor's latest (gaps allowed).
    AETHER_EXPECT_INCREASING = 0,
    /// No expectation (KurrentDB's "any"): the same check as `AETHER_EXPECT_INCREASING`.
    AETHER_EXPECT_ANY = 1,
    /// The actor has no events.
    AETHER_EXPECT_NO_STREAM = 2,
    /// The actor has at least one event.
    AETHER_EXPECT_STREAM_EXISTS = 3,
    /// The actor's latest version equals `expected_version` (0: no events).
    AETHER_EXPECT_EXACT = 4,
}

/// Which way a bounded read runs (`direction` arguments). Values never change.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum aether_direction {
    /// Oldest first.
    AETHER_FORWARD = 0,
    /// Newest first: with `limit` 1, the actor's last event.
    AETHER_BACKWARD = 1,
}

/// The core's expected state for a C mode and version.
pub(crate) fn expected_state(mode: c_int, version: i64) -> Result<ExpectedState, Failure> {
    use aether_expected_mode as M;
    Ok(match mode {
        m if m == M::AETHER_EXPECT_INCREASING as c_int => ExpectedState::Increasing,
        m if m == M::AETHER_EXPECT_ANY as c_int => ExpectedState::Any,
        m if m == M::AETHER_EXPECT_NO_STREAM as c_int => ExpectedState::NoStream,
        m if m == M::AETHER_EXPECT_STREAM_EXISTS as c_int => ExpectedState::StreamExists,
        m if m == M::AETHER_EXPECT_EXACT as c_int => ExpectedState::Exact(version),
        m => {
            return Err(Failure::InvalidArgument(
                format!("expected_mode is {m}, not an aether_expected_mode value (0 to 4)").into(),
            ))
        }
    })
}

/// The C mode of an expected state.
pub(crate) fn mode_of(state: ExpectedState) -> (c_int, i64) {
    use aether_expected_mode as M;
    match state {
        ExpectedState::Any => (M::AETHER_EXPECT_ANY as c_int, 0),
        ExpectedState::NoStream => (M::AETHER_EXPECT_NO_STREAM as c_int, 0),
        ExpectedState::StreamExists => (M::AETHER_EXPECT_STREAM_EXISTS as c_int, 0),
        ExpectedState::Exact(v) => (M::AETHER_EXPECT_EXACT as c_int, v),
        _ => (M::AETHER_EXPECT_INCREASING as c_int, 0),
    }
}

/// One actor's part of `aether_commit()`. Plain data owned by the caller; the library
/// reads it (and the buffers it points to) during the call only.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aether_commit_entry {
    /// The actor ID: UTF-8, not NUL-terminated.
    pub actor_id: *const u8,
    /// Its length in bytes.
    pub actor_id_len: usize,
    /// An `aether_expected_mode` value.
    pub expected_mode: c_int,
    /// The version `AETHER_EXPECT_EXACT` expects (0 or more); ignored by other modes.
    pub expected_version: i64,
    /// A JSON array of the actor's events (format as in `aether_save_event()`; each
    /// `actorId` must be this entry's). Versions are all explicit (strictly increasing,
    /// from 1) or all 0 (assigned: the actor's latest + 1, + 2, ...). NULL (with length 0)
    /// or `[]`: a condition-only entry, which checks the actor and writes nothing to it.
    pub events_json: *const u8,
    /// Its length in bytes.
    pub events_json_len: usize,
}

/// What `aether_commit()` and `aether_append()` did. Plain data written by the library
/// into caller-owned storage.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct aether_commit_result {
    /// 1 when every event was already stored with the same actor, version and ID (a
    /// retry of a commit that succeeded: nothing was written, no EventStored was
    /// published); 0 when the call wrote them.
    pub already_appended: c_int,
    /// The store-wide sequence of the first event; 0 when no event was written
    /// (condition-only entries).
    pub first_sequence: u64,
    /// The sequence of the last event; events of one commit have consecutive sequences,
    /// in entry order.
    pub last_sequence: u64,
}

impl From<&Committed> for aether_commit_result {
    fn from(c: &Committed) -> Self {
        aether_commit_result {
            already_appended: c_int::from(c.status == aether_core::AppendStatus::AlreadyAppended),
            first_sequence: c.first_sequence,
            last_sequence: c.last_sequence,
        }
    }
}

/// Decode an entry's events (NULL with length 0: none).
unsafe fn entry_events(
    ptr: *const u8,
    len: usize,
    what: &'static str,
) -> Result<Vec<Event>, Failure> {
    if ptr.is_null() && len == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: forwarded contract.
    let json = unsafe { bytes(ptr, len, what) }?;
    decode(json, "array of events")
}

/// Append `events_json` (a JSON array of one actor's events) to `actor_id` if the actor
/// meets `expected_mode` / `expected_version` (see `aether_expected_mode`); events with
/// version 0 are given the actor's next versions. `aether_commit()` with one entry.
///
/// Outputs (each may be NULL): `*result_out` (see `aether_commit_result`); on success
/// `*last_version_out` receives the version of the last of these events, as written (with
/// automatic versions, the one assigned) or as found stored by a retry, which is below
/// the actor's latest if the actor has moved on since; 0 for `[]`, a condition-only
/// append, which writes nothing.
///
/// A retry of an append that succeeded (same versions and event IDs) returns `AETHER_OK`
/// with `already_appended` 1; automatic versions are recognised as a retry only under
/// `AETHER_EXPECT_NO_STREAM` and `AETHER_EXPECT_EXACT`. Errors:
/// `AETHER_VERSION_CONFLICT` (nothing written; the `aether_error` carries the actor,
/// the expectation and the current version: `aether_error_conflict_at()`),
/// `AETHER_INVALID_ARGUMENT` (NULL pointer, bad UTF-8, an unknown mode, a negative exact
/// version), `AETHER_INVALID_EVENT` (malformed JSON, an event of another actor, version 0
/// mixed with explicit versions, limits as for `aether_save_events()`),
/// `AETHER_STORE_CLOSED`, `AETHER_STORAGE`, `AETHER_UNSUPPORTED` (a backend without
/// this operation). Outputs are untouched on error; if `err_out` is not NULL, `*err_out`
/// receives an `aether_error` to free with `aether_error_free()`. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_append(
    store: *const aether_store,
    actor_id: *const u8,
    actor_id_len: usize,
    expected_mode: c_int,
    expected_version: i64,
    events_json: *const u8,
    events_json_len: usize,
    result_out: *mut aether_commit_result,
    last_version_out: *mut i64,
    err_out: *mut *mut aether_error,
) -> aether_status {
    store_export!(store, err_out, {
        // SAFETY: every pointer is NULL or valid, per the contract.
        let actor_id = unsafe { utf8(actor_id, actor_id_len, "actor_id") }?;
        let expected = expected_state(expected_mode, expected_version)?;
        let events = unsafe { bytes(events_json, events_json_len, "events_json") }?;
        let result_out = unsafe { opt_out(result_out, "result_out") }?;
        let last_out = unsafe { opt_out(last_version_out, "last_version_out") }?;
        let events: Vec<Event> = decode(events, "array of events")?;
        let committed = store.with(|s| Ok(s.append(actor_id, expected, &events)?))?;
        if let Some(o) = result_out {
            o.write(aether_commit_result::from(&committed));
        }
        if let Some(o) = last_out {
            o.write(committed.actors.first().map_or(0, |a| a.last_version));
        }
        Ok(())
    })
}

/// Append to several actors at once, all or nothing: one record, consecutive sequences
/// in entry order, each event's EventStored published once the commit is as durable as
/// the store's mode promises.
///
/// `entries`/`entries_len`: 1 to 10000 entries (see `aether_commit_entry`), at most one
/// per actor, at most 10000 events in all. Every entry's condition is checked; if any
/// fails nothing is written and the `aether_error` lists every failed condition
/// (`aether_error_conflict_count()`, `aether_error_conflict_at()`), unless the commit is
/// a retry of one already stored (see `aether_append()`).
///
/// Outputs (each may be NULL): `*result_out`; `last_versions_out`, an array of
/// `entries_len` values, receives each entry's last written version (0 for a
/// condition-only entry).
///
/// Errors as for `aether_append()`, plus `AETHER_INVALID_ARGUMENT` for no entries or two
/// entries of one actor. Outputs are untouched on error. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_commit(
    store: *const aether_store,
    entries: *const aether_commit_entry,
    entries_len: usize,
    result_out: *mut aether_commit_result,
    last_versions_out: *mut i64,
    err_out: *mut *mut aether_error,
) -> aether_status {
    store_export!(store, err_out, {
        if entries.is_null() {
            return Err(Failure::invalid("entries is NULL"));
        }
        if !entries.is_aligned()
            || entries_len > isize::MAX as usize / size_of::<aether_commit_entry>()
        {
            return Err(Failure::invalid("entries is misaligned or too long"));
        }
        if entries_len == 0 {
            return Err(Failure::invalid(
                "entries_len is 0; a commit needs an entry",
            ));
        }
        // SAFETY: non-NULL, aligned, length in range; the caller promises `entries_len`
        // readable entries for the call.
        let raw = unsafe { std::slice::from_raw_parts(entries, entries_len) };
        let result_out = unsafe { opt_out(result_out, "result_out") }?;
        if !last_versions_out.is_null() && !last_versions_out.is_aligned() {
            return Err(Failure::invalid("last_versions_out is misaligned"));
        }
        let mut actors = Vec::with_capacity(raw.len());
        let mut events = Vec::with_capacity(raw.len());
        for e in raw {
            // SAFETY: each entry's pointers are valid per the contract.
            actors.push(unsafe { utf8(e.actor_id, e.actor_id_len, "entries[].actor_id") }?);
            events.push(unsafe {
                entry_events(e.events_json, e.events_json_len, "entries[].events_json")
            }?);
        }
        let core: Vec<CommitEntry<'_>> = raw
            .iter()
            .zip(&actors)
            .zip(&events)
            .map(|((e, actor), events)| {
                Ok(CommitEntry::new(
                    actor,
                    expected_state(e.expected_mode, e.expected_version)?,
                    events,
                ))
            })
            .collect::<Result<_, Failure>>()?;
        let committed = store.with(|s| Ok(s.commit(&core)?))?;
        if let Some(o) = result_out {
            o.write(aether_commit_result::from(&committed));
        }
        if !last_versions_out.is_null() {
            let mut written = committed.actors.iter();
            for (i, entry) in core.iter().enumerate() {
                let v = if entry.events.is_empty() {
                    0
                } else {
                    written.next().map_or(0, |a| a.last_version)
                };
                // SAFETY: non-NULL and aligned (checked above); the caller promises room
                // for `entries_len` values.
                unsafe { last_versions_out.add(i).write(v) };
            }
        }
        Ok(())
    })
}

/// The actor's events with versions `from_version..=to_version`, at most `limit`
/// (`SIZE_MAX`: no limit; 0 gives `[]`), oldest first (`AETHER_FORWARD`) or newest first
/// (`AETHER_BACKWARD`), as one JSON array in `*events_out`. `from_version` 0 and 1 both
/// mean the first event, `to_version` `INT64_MAX` the last; the last event of an actor
/// is `from 0, to INT64_MAX, limit 1, AETHER_BACKWARD`, one index seek on a sled store.
///
/// Errors: `AETHER_INVALID_ARGUMENT` (NULL pointer, bad UTF-8, negative `from_version`,
/// `from_version > to_version`, an unknown direction), `AETHER_CORRUPT`,
/// `AETHER_STORE_CLOSED`, `AETHER_STORAGE`. Ownership and the rest as for
/// `aether_get_events()`. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_get_events_range(
    store: *const aether_store,
    actor_id: *const u8,
    actor_id_len: usize,
    from_version: i64,
    to_version: i64,
    limit: usize,
    direction: c_int,
    events_out: *mut aether_bytes,
    err_out: *mut *mut aether_error,
) -> aether_status {
    store_export!(store, err_out, {
        // SAFETY: every pointer is NULL or valid, per the contract.
        let actor_id = unsafe { utf8(actor_id, actor_id_len, "actor_id") }?;
        let events_out = unsafe { out(events_out, "events_out") }?;
        let from = crate::args::from_version(from_version)?;
        if from > to_version {
            return Err(Failure::InvalidArgument(
                format!("from_version {from} is above to_version {to_version}").into(),
            ));
        }
        let direction = match direction {
            d if d == aether_direction::AETHER_FORWARD as c_int => Direction::Forward,
            d if d == aether_direction::AETHER_BACKWARD as c_int => Direction::Backward,
            d => {
                return Err(Failure::InvalidArgument(
                    format!("direction is {d}, not an aether_direction value (0 or 1)").into(),
                ))
            }
        };
        let range = EventRange {
            from,
            to: to_version,
            limit,
            direction,
        };
        let json = store.with(|s| Ok(s.get_events_range_json(actor_id, &range)?))?;
        events_out.write(aether_bytes::from_vec(json));
        Ok(())
    })
}

/// A borrowed UTF-8 string: `ptr`/`len`, not NUL-terminated. Plain data owned by the
/// caller.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aether_str {
    /// The bytes.
    pub ptr: *const u8,
    /// Their length.
    pub len: usize,
}

/// Which events `aether_read_all_filtered()` returns. Plain data owned by the caller;
/// read during the call only.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aether_event_filter {
    /// Accepted event types (exact match); NULL with length 0 accepts every type.
    pub event_types: *const aether_str,
    /// How many.
    pub event_types_len: usize,
    /// Accepted actor-ID prefix; NULL with length 0 accepts every actor.
    pub actor_prefix: *const u8,
    /// Its length in bytes.
    pub actor_prefix_len: usize,
}

/// Up to `limit` events with `sequence >= from_sequence` that pass `filter` (NULL: every
/// event), in sequence order, in the layout of `aether_read_all()`. The filter is
/// applied inside the store, on the stored bytes, before anything is copied out; `limit`
/// counts returned events, and the read stops at the end of the store.
///
/// Errors: `AETHER_INVALID_ARGUMENT` (NULL pointer where one is required, bad UTF-8),
/// `AETHER_CORRUPT`, `AETHER_STORE_CLOSED`, `AETHER_STORAGE`. Ownership and the rest as
/// for `aether_read_all()`. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_read_all_filtered(
    store: *const aether_store,
    from_sequence: u64,
    limit: usize,
    filter: *const aether_event_filter,
    events_out: *mut aether_bytes,
    err_out: *mut *mut aether_error,
) -> aether_status {
    store_export!(store, err_out, {
        // SAFETY: every pointer is NULL or valid, per the contract.
        let events_out = unsafe { out(events_out, "events_out") }?;
        let filter: EventFilter = unsafe { filter_arg(filter) }?.unwrap_or_default();
        let json =
            store.with(|s| Ok(s.read_all_filtered_json(from_sequence, limit, &filter)?))?;
        events_out.write(aether_bytes::from_vec(json));
        Ok(())
    })
}

/// Convert a filter argument (NULL: none).
unsafe fn filter_arg(filter: *const aether_event_filter) -> Result<Option<EventFilter>, Failure> {
    if !filter.is_aligned() {
        return Err(Failure::invalid("filter is misaligned"));
    }
    // SAFETY: NULL or valid, per the contract.
    let Some(f) = (unsafe { filter.as_ref() }) else {
        return Ok(None);
    };
    let mut out = EventFilter::default();
    if !(f.event_types.is_null() && f.event_types_len == 0) {
        if f.event_types.is_null()
            || !f.event_types.is_aligned()
            || f.event_types_len > isize::MAX as usize / size_of::<aether_str>()
        {
            return Err(Failure::invalid(
                "filter->event_types is NULL, misaligned or too long for its length",
            ));
        }
        // SAFETY: checked; the caller promises `event_types_len` readable entries.
        let types = unsafe { std::slice::from_raw_parts(f.event_types, f.event_types_len) };
        for t in types {
            // SAFETY: each string is valid per the contract.
            out.event_types
                .push(unsafe { utf8(t.ptr, t.len, "filter->event_types[]") }?.to_owned());
        }
    }
    if !(f.actor_prefix.is_null() && f.actor_prefix_len == 0) {
        // SAFETY: valid per the contract.
        out.actor_prefix =
            unsafe { utf8(f.actor_prefix, f.actor_prefix_len, "filter->actor_prefix") }?.to_owned();
    }
    Ok(Some(out))
}

/// The actor's newest kept snapshot with `version <= at_or_below`, as JSON (Go format) in
/// `*snapshot_out`; `AETHER_NOT_FOUND` when none is kept (never taken, or dropped by the
/// store's snapshot retention, 3 per actor unless configured).
///
/// Ownership, errors and thread safety as for `aether_get_latest_snapshot()`, plus
/// `AETHER_UNSUPPORTED` on a backend that keeps no snapshot history.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_get_snapshot(
    store: *const aether_store,
    actor_id: *const u8,
    actor_id_len: usize,
    at_or_below: i64,
    snapshot_out: *mut aether_bytes,
    err_out: *mut *mut aether_error,
) -> aether_status {
    store_export!(store, err_out, {
        // SAFETY: every pointer is NULL or valid, per the contract.
        let actor_id = unsafe { utf8(actor_id, actor_id_len, "actor_id") }?;
        let snapshot_out = unsafe { out(snapshot_out, "snapshot_out") }?;
        let snapshot = store
            .with(|s| Ok(s.get_snapshot(actor_id, at_or_below)?))?
            .ok_or(Failure::NotFound(
                "the actor has no snapshot at or below that version",
            ))?;
        snapshot_out.write(aether_bytes::from_vec(snapshot.to_json()));
        Ok(())
    })
}
