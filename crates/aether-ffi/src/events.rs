//! Saving and reading events and snapshots. Events cross the boundary as UTF-8 JSON in
//! the Go original's format; results come back as JSON in an `aether_bytes`.

use aether_core::{ActorSnapshot, Event};
use base64::Engine as _;

use crate::args::{bytes, opt_out, out, utf8};
use crate::bytes::aether_bytes;
use crate::error::aether_error;
use crate::guard::{store_export, Failure};
use crate::status::aether_status;
use crate::store::aether_store;

/// Decode the borrowed JSON once. The UTF-8 check comes first so that bad UTF-8 is an
/// invalid argument (like everywhere else), not a JSON error.
pub(crate) fn decode<'a, T: serde::de::Deserialize<'a>>(
    json: &'a [u8],
    what: &'static str,
) -> Result<T, Failure> {
    let text = std::str::from_utf8(json).map_err(|e| {
        Failure::InvalidArgument(format!("{what} JSON is not valid UTF-8: {e}").into())
    })?;
    serde_json::from_str(text).map_err(|cause| Failure::InvalidJson { what, cause })
}

/// Save one event if its version is strictly greater than the actor's latest version.
///
/// `json`/`json_len`: one event in the Go format (`{"id","eventType","actorId","version",
/// "data","metadata","commandId","timestamp"}`; `id`, `eventType`, `actorId`, `version`
/// and `timestamp` are required), UTF-8, borrowed for the call. When this returns
/// `AETHER_OK` the event is as durable as the store's mode promises and its EventStored
/// notification has been published.
///
/// Outputs (each may be NULL if not wanted): `*current_version_out` receives the actor's
/// version after the call - the saved version on success, the actor's current version
/// on `AETHER_VERSION_CONFLICT`; `*sequence_out` receives the event's store-wide sequence
/// on success.
///
/// Errors: `AETHER_VERSION_CONFLICT` (nothing written; `*current_version_out` is
/// written, and the `aether_error` carries actor and versions),
/// `AETHER_INVALID_ARGUMENT` (NULL `store` or `json`, bad UTF-8), `AETHER_INVALID_EVENT`
/// (malformed or wrong-shaped JSON, empty actor ID, larger than 1 MiB encoded),
/// `AETHER_STORE_CLOSED`, `AETHER_STORAGE`. Other outputs are untouched on error; if
/// `err_out` is not NULL, `*err_out` receives an `aether_error` to free with
/// `aether_error_free()`. Thread-safe: concurrent saves to one actor are serialised and
/// exactly one of several saves of the same version wins.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_save_event(
    store: *const aether_store,
    json: *const u8,
    json_len: usize,
    current_version_out: *mut i64,
    sequence_out: *mut u64,
    err_out: *mut *mut aether_error,
) -> aether_status {
    store_export!(store, err_out, {
        // SAFETY: every pointer is NULL or valid, per the contract.
        let json = unsafe { bytes(json, json_len, "json") }?;
        let current_out = unsafe { opt_out(current_version_out, "current_version_out") }?;
        let sequence_out = unsafe { opt_out(sequence_out, "sequence_out") }?;
        let event: Event = decode(json, "event")?;
        let saved = store.with(|s| Ok(s.save_event(&event)?));
        finish_save(saved, event.version, current_out, sequence_out)
    })
}

/// Report a save: outputs on success, the current version on a conflict.
fn finish_save(
    saved: Result<u64, Failure>,
    last_version: i64,
    current_out: Option<crate::args::Out<i64>>,
    sequence_out: Option<crate::args::Out<u64>>,
) -> Result<(), Failure> {
    match saved {
        Ok(sequence) => {
            if let Some(o) = current_out {
                o.write(last_version);
            }
            if let Some(o) = sequence_out {
                o.write(sequence);
            }
            Ok(())
        }
        Err(f) => {
            if let (
                Failure::Core(aether_core::Error::VersionConflict {
                    current_version, ..
                }),
                Some(o),
            ) = (&f, current_out)
            {
                o.write(*current_version);
            }
            Err(f)
        }
    }
}

/// Save a batch of one actor's events atomically: all or none.
///
/// `json`/`json_len`: a JSON array of events (format as in `aether_save_event()`), UTF-8,
/// borrowed for the call. Versions must be strictly increasing and the first greater
/// than the actor's latest; at most 10000 events.
///
/// Outputs (each may be NULL): `*current_version_out` receives the actor's version after
/// the call - the last event's version on success, the actor's current version on
/// `AETHER_VERSION_CONFLICT`; `*last_sequence_out` receives the sequence of the batch's
/// last event on success (the batch occupies consecutive sequences).
///
/// Errors as for `aether_save_event()`; a batch that is empty, mixes actors or has
/// unordered versions is `AETHER_INVALID_EVENT`. Other outputs are untouched on error;
/// if `err_out` is not NULL, `*err_out` receives an `aether_error` to free with
/// `aether_error_free()`. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_save_events(
    store: *const aether_store,
    json: *const u8,
    json_len: usize,
    current_version_out: *mut i64,
    last_sequence_out: *mut u64,
    err_out: *mut *mut aether_error,
) -> aether_status {
    store_export!(store, err_out, {
        // SAFETY: every pointer is NULL or valid, per the contract.
        let json = unsafe { bytes(json, json_len, "json") }?;
        let current_out = unsafe { opt_out(current_version_out, "current_version_out") }?;
        let sequence_out = unsafe { opt_out(last_sequence_out, "last_sequence_out") }?;
        let events: Vec<Event> = decode(json, "batch of events")?;
        let saved = store.with(|s| Ok(s.save_events(&events)?));
        let last_version = events.last().map_or(0, |e| e.version);
        finish_save(saved, last_version, current_out, sequence_out)
    })
}

/// The actor's events with `version >= from_version`, in version order, as one JSON
/// array (each element in the Go format) in `*events_out`. An unknown actor gives `[]`.
///
/// `actor_id`/`actor_id_len`: UTF-8, not NUL-terminated, borrowed for the call.
/// `from_version` must be >= 0 (0 and 1 both mean "from the first event"). On a sled
/// store the stored JSON is handed out without being decoded.
///
/// Ownership: on success the caller owns `*events_out` and releases it with
/// `aether_bytes_free()`. Errors: `AETHER_INVALID_ARGUMENT` (NULL pointer, bad UTF-8,
/// negative `from_version`), `AETHER_CORRUPT` (a stored record is damaged; see
/// `aether_get_events_with_errors()`), `AETHER_STORE_CLOSED`, `AETHER_STORAGE`.
/// `*events_out` is untouched on error; if `err_out` is not NULL, `*err_out` receives an
/// `aether_error` to free with `aether_error_free()`. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_get_events(
    store: *const aether_store,
    actor_id: *const u8,
    actor_id_len: usize,
    from_version: i64,
    events_out: *mut aether_bytes,
    err_out: *mut *mut aether_error,
) -> aether_status {
    store_export!(store, err_out, {
        // SAFETY: every pointer is NULL or valid, per the contract.
        let actor_id = unsafe { utf8(actor_id, actor_id_len, "actor_id") }?;
        let events_out = unsafe { out(events_out, "events_out") }?;
        let from = crate::args::from_version(from_version)?;
        let json = store.with(|s| Ok(s.get_events_json(actor_id, from)?))?;
        events_out.write(aether_bytes::from_vec(json));
        Ok(())
    })
}

/// Like `aether_get_events()`, but records that do not decode are reported instead of
/// failing the call. `*result_out` receives one JSON object:
/// `{"events":[...],"errors":[{"sequence":N,"raw":"<base64 of the stored bytes>",
/// "cause":"..."}]}`.
///
/// Ownership, arguments, errors and thread safety as for `aether_get_events()` (without
/// `AETHER_CORRUPT` for damaged records). `*result_out` is untouched on error.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_get_events_with_errors(
    store: *const aether_store,
    actor_id: *const u8,
    actor_id_len: usize,
    from_version: i64,
    result_out: *mut aether_bytes,
    err_out: *mut *mut aether_error,
) -> aether_status {
    store_export!(store, err_out, {
        // SAFETY: every pointer is NULL or valid, per the contract.
        let actor_id = unsafe { utf8(actor_id, actor_id_len, "actor_id") }?;
        let result_out = unsafe { out(result_out, "result_out") }?;
        let from = crate::args::from_version(from_version)?;
        let result = store.with(|s| Ok(s.get_events_with_errors(actor_id, from)?))?;
        let mut json = Vec::with_capacity(result.events.len() * 256 + 32);
        json.extend_from_slice(b"{\"events\":[");
        for (i, e) in result.events.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            e.write_json(&mut json);
        }
        json.extend_from_slice(b"],\"errors\":[");
        for (i, e) in result.errors.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            json.extend_from_slice(format!("{{\"sequence\":{},\"raw\":\"", e.sequence).as_bytes());
            json.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(&e.raw)
                    .as_bytes(),
            );
            json.extend_from_slice(b"\",\"cause\":");
            serde_json::to_writer(&mut json, &e.cause).expect("writing to a Vec cannot fail");
            json.push(b'}');
        }
        json.extend_from_slice(b"]}");
        result_out.write(aether_bytes::from_vec(json));
        Ok(())
    })
}

/// The actor's latest version into `*version_out`; 0 for an unknown actor.
///
/// `actor_id`/`actor_id_len`: UTF-8, borrowed for the call. Errors:
/// `AETHER_INVALID_ARGUMENT` (NULL pointer, bad UTF-8), `AETHER_STORE_CLOSED`,
/// `AETHER_STORAGE`. `*version_out` is untouched on error; if `err_out` is not NULL,
/// `*err_out` receives an `aether_error` to free with `aether_error_free()`. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_get_latest_version(
    store: *const aether_store,
    actor_id: *const u8,
    actor_id_len: usize,
    version_out: *mut i64,
    err_out: *mut *mut aether_error,
) -> aether_status {
    store_export!(store, err_out, {
        // SAFETY: every pointer is NULL or valid, per the contract.
        let actor_id = unsafe { utf8(actor_id, actor_id_len, "actor_id") }?;
        let version_out = unsafe { out(version_out, "version_out") }?;
        let v = store.with(|s| Ok(s.get_latest_version(actor_id)?))?;
        version_out.write(v);
        Ok(())
    })
}

/// Up to `limit` events with `sequence >= from_sequence`, in sequence (commit) order, as
/// a JSON array of `{"sequence":N,"event":{...}}` in `*events_out`. Sequences start at
/// 1 and have no gaps; `from_sequence` 0 means 1; `limit` 0 gives `[]`.
///
/// Ownership: on success the caller owns `*events_out` and releases it with
/// `aether_bytes_free()`. Errors: `AETHER_INVALID_ARGUMENT` (NULL pointer),
/// `AETHER_CORRUPT`, `AETHER_STORE_CLOSED`, `AETHER_STORAGE`. `*events_out` is untouched
/// on error; if `err_out` is not NULL, `*err_out` receives an `aether_error` to free with
/// `aether_error_free()`. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_read_all(
    store: *const aether_store,
    from_sequence: u64,
    limit: usize,
    events_out: *mut aether_bytes,
    err_out: *mut *mut aether_error,
) -> aether_status {
    store_export!(store, err_out, {
        // SAFETY: every pointer is NULL or valid, per the contract.
        let events_out = unsafe { out(events_out, "events_out") }?;
        let json = store.with(|s| Ok(s.read_all_sequenced_json(from_sequence, limit)?))?;
        events_out.write(aether_bytes::from_vec(json));
        Ok(())
    })
}

/// The sequence of the last stored event into `*sequence_out` (0 for an empty store).
///
/// Errors: `AETHER_INVALID_ARGUMENT` (NULL pointer), `AETHER_STORE_CLOSED`.
/// `*sequence_out` is untouched on error; if `err_out` is not NULL, `*err_out` receives
/// an `aether_error` to free with `aether_error_free()`. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_last_sequence(
    store: *const aether_store,
    sequence_out: *mut u64,
    err_out: *mut *mut aether_error,
) -> aether_status {
    store_export!(store, err_out, {
        // SAFETY: every pointer is NULL or valid, per the contract.
        let sequence_out = unsafe { out(sequence_out, "sequence_out") }?;
        let seq = store.with(|s| Ok(s.last_sequence()?))?;
        sequence_out.write(seq);
        Ok(())
    })
}

/// Store a snapshot as the actor's latest.
///
/// `json`/`json_len`: an ActorSnapshot in the Go format (`{"actorId","version","state",
/// "timestamp"}`; all but `state` required), UTF-8, borrowed for the call. A snapshot
/// with the same version as the stored one replaces it.
///
/// Errors: `AETHER_STALE_SNAPSHOT` (older than the stored snapshot; nothing written; the
/// `aether_error` carries actor and versions, see `aether_error_conflict()`),
/// `AETHER_INVALID_ARGUMENT` (NULL pointer, bad UTF-8), `AETHER_INVALID_EVENT`
/// (malformed JSON, empty actor ID, larger than 1 MiB), `AETHER_STORE_CLOSED`,
/// `AETHER_STORAGE`. If `err_out` is not NULL, `*err_out` receives an `aether_error` on
/// error, to free with `aether_error_free()`. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_save_snapshot(
    store: *const aether_store,
    json: *const u8,
    json_len: usize,
    err_out: *mut *mut aether_error,
) -> aether_status {
    store_export!(store, err_out, {
        // SAFETY: every pointer is NULL or valid, per the contract.
        let json = unsafe { bytes(json, json_len, "json") }?;
        let snapshot: ActorSnapshot = decode(json, "snapshot")?;
        store.with(|s| Ok(s.save_snapshot(&snapshot)?))
    })
}

/// The actor's latest snapshot as JSON (Go format) in `*snapshot_out`;
/// `AETHER_NOT_FOUND` when the actor has none.
///
/// `actor_id`/`actor_id_len`: UTF-8, borrowed for the call. Ownership: on success the
/// caller owns `*snapshot_out` and releases it with `aether_bytes_free()`. Errors:
/// `AETHER_NOT_FOUND`, `AETHER_INVALID_ARGUMENT` (NULL pointer, bad UTF-8),
/// `AETHER_CORRUPT`, `AETHER_STORE_CLOSED`, `AETHER_STORAGE`. `*snapshot_out` is
/// untouched on error; if `err_out` is not NULL, `*err_out` receives an `aether_error`
/// to free with `aether_error_free()`. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn aether_get_latest_snapshot(
    store: *const aether_store,
    actor_id: *const u8,
    actor_id_len: usize,
    snapshot_out: *mut aether_bytes,
    err_out: *mut *mut aether_error,
) -> aether_status {
    store_export!(store, err_out, {
        // SAFETY: every pointer is NULL or valid, per the contract.
        let actor_id = unsafe { utf8(actor_id, actor_id_len, "actor_id") }?;
        let snapshot_out = unsafe { out(snapshot_out, "snapshot_out") }?;
        let snapshot = store
            .with(|s| Ok(s.get_latest_snapshot(actor_id)?))?
            .ok_or(Failure::NotFound("the actor has no snapshot"))?;
        snapshot_out.write(aether_bytes::from_vec(snapshot.to_json()));
        Ok(())
    })
}
