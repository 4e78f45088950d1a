//! How events are laid out in the stream: subjects, headers and payloads.
//!
//! - One message per event: its Go-compatible JSON object. The stream sequence of that
//!   message *is* the event's store-wide sequence, so no client has to agree with another
//!   on numbering. A batch is several messages published as one JetStream atomic batch
//!   (nats-server 2.12+), stored contiguously, whole or not at all.
//! - Subject `{prefix}.events.{token}` per actor, where `token` is `a` + base64url(actor ID)
//!   for IDs of up to [`MAX_INLINE_ACTOR_ID`] bytes and `h` + hex(SHA-256(actor ID)) for
//!   longer ones (a NATS control line is limited to 4 KiB by default). Either way the token
//!   uses only `[A-Za-z0-9_-]`, so IDs holding `.`, `*`, `>`, spaces or NUL are safe.
//! - Headers: `Nats-Msg-Id` (deduplication of retries: a hash of actor, version and event
//!   ID, see [`msg_id`]) on every message,
//!   `Nats-Expected-Last-Subject-Sequence` (the version check) on a single event and on the
//!   first message of a batch, and the batch headers on batches. The server keeps every
//!   header of a publish and a consumer parses each on every read, so a single save
//!   carries just those two.

use async_nats::HeaderMap;
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use aether_core::Event;

/// NATS's deduplication header.
pub const HDR_MSG_ID: &str = "Nats-Msg-Id";
/// NATS: reject unless the last sequence on this message's subject is this (0: none).
pub const HDR_EXPECTED_LAST_SUBJECT_SEQ: &str = "Nats-Expected-Last-Subject-Sequence";
/// NATS: make the `Nats-Expected-Last-Subject-Sequence` check on this subject instead of
/// the message's own (how a commit checks an actor it does not write to).
pub const HDR_EXPECTED_LAST_SUBJECT_SEQ_SUBJECT: &str =
    "Nats-Expected-Last-Subject-Sequence-Subject";
/// NATS: reject unless the stream's last sequence is this (first message of a batch only).
pub const HDR_EXPECTED_LAST_SEQ: &str = "Nats-Expected-Last-Sequence";
/// NATS atomic batch (2.12+): the batch's ID, at most 64 characters.
pub const HDR_BATCH_ID: &str = "Nats-Batch-Id";
/// NATS atomic batch: the message's place in its batch, from 1, without gaps.
pub const HDR_BATCH_SEQ: &str = "Nats-Batch-Sequence";
/// NATS atomic batch: `1` on the last message commits the batch.
pub const HDR_BATCH_COMMIT: &str = "Nats-Batch-Commit";

/// Actor IDs up to this many bytes appear (base64url-encoded) in the subject.
pub const MAX_INLINE_ACTOR_ID: usize = 192;
/// An upper bound on the header block of any message this store publishes: the
/// `max_payload` a server needs is the largest event plus this.
pub const MAX_HEADER_BYTES: usize = 1024;

/// The subject token of `actor_id`.
pub fn actor_token(actor_id: &str) -> String {
    if actor_id.len() <= MAX_INLINE_ACTOR_ID {
        let mut t = String::with_capacity(1 + actor_id.len().div_ceil(3) * 4);
        t.push('a');
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(actor_id, &mut t);
        t
    } else {
        format!("h{}", sha256_hex(actor_id))
    }
}

fn sha256_hex(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    let mut t = String::with_capacity(64);
    for b in digest {
        t.push_str(&format!("{b:02x}"));
    }
    t
}

/// The `Nats-Msg-Id` of an event: `e1:` + hex(SHA-256(actor ID, version, event ID)),
/// each part length-prefixed. An event's identity is (actor, version): the server's
/// deduplication then drops exactly a retry (the same actor, version and ID within the
/// stream's `duplicate_window`) and nothing else. An ID reused at another version or by
/// another actor is a different message and is stored, as on every backend; the same
/// version with another ID is refused by the version check (a conflict). Fixed length,
/// printable, whatever the event ID holds.
pub fn msg_id(actor_id: &str, version: i64, event_id: &str) -> String {
    let mut h = Sha256::new();
    h.update((actor_id.len() as u64).to_be_bytes());
    h.update(actor_id.as_bytes());
    h.update(version.to_be_bytes());
    h.update((event_id.len() as u64).to_be_bytes());
    h.update(event_id.as_bytes());
    let mut t = String::with_capacity(3 + 64);
    t.push_str("e1:");
    for b in h.finalize() {
        t.push_str(&format!("{b:02x}"));
    }
    t
}

/// The bytes a header block takes on the wire (`NATS/1.0\r\n`, each `Name: value\r\n`,
/// a closing `\r\n`), which NATS counts against `max_payload`.
pub fn header_block_len(headers: &HeaderMap) -> usize {
    let mut n = "NATS/1.0\r\n".len() + 2;
    for (name, values) in headers.iter() {
        for v in values {
            n += name.to_string().len() + 2 + v.as_str().len() + 2;
        }
    }
    n
}

/// The fields of an event the store itself needs (for EventStored and the version check).
#[derive(Debug, Clone, Deserialize)]
pub struct EventHead {
    pub id: String,
    #[serde(rename = "actorId")]
    pub actor_id: String,
    pub version: i64,
}

/// A message's payload must be one JSON object: an array is a batch in the layout of
/// aether releases before atomic batches, which this store does not read.
fn check_object(payload: &[u8]) -> Result<(), String> {
    match payload.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err("empty message".into()),
        Some(b'[') => Err(
            "a JSON array (a batch in the one-message layout of earlier aether releases): one message holds one event"
                .into(),
        ),
        Some(_) => Ok(()),
    }
}

/// Decode the event a message holds.
pub fn decode_event(payload: &[u8]) -> Result<Event, String> {
    check_object(payload)?;
    Event::from_json(payload).map_err(|e| e.to_string())
}

/// Decode the head of the event a message holds (cheaper than the whole event).
pub fn decode_head(payload: &[u8]) -> Result<EventHead, String> {
    check_object(payload)?;
    serde_json::from_slice(payload).map_err(|e| e.to_string())
}

/// Whether a message is one this store published for `event` (its `Nats-Msg-Id` names the
/// event's actor, version and ID), so its payload is the canonical JSON this store wrote.
pub fn published_by_us(headers: Option<&HeaderMap>, event: &Event) -> bool {
    headers
        .and_then(|h| h.get(HDR_MSG_ID))
        .is_some_and(|v| v.as_str() == msg_id(&event.actor_id, event.version, &event.id))
}

/// The actor ID a subject token spells, when it is inline (`a` + base64url); `None` for a
/// hashed token (the ID is then only in the payload).
pub fn actor_of_token(token: &str) -> Option<Vec<u8>> {
    let b64 = token.strip_prefix('a')?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .ok()
}

/// A message read from a stream (by direct get or a consumer).
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// Stream sequence: the store-wide sequence of the event it holds.
    pub seq: u64,
    pub subject: String,
    pub headers: Option<HeaderMap>,
    pub payload: Bytes,
    /// Server time the message was stored, Unix nanoseconds.
    pub time_nanos: i128,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_subject_safe_and_distinct() {
        let ids = ["a", "ab", "a\0b", "a\0", "a.b", "*", ">", "a b", "ü🦀"];
        let mut seen = std::collections::HashSet::new();
        for id in ids {
            let t = actor_token(id);
            assert!(t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert!(seen.insert(t));
        }
        let long = "x".repeat(4000);
        let t = actor_token(&long);
        assert_eq!(t.len(), 65);
        assert_ne!(t, actor_token(&"x".repeat(3999)));
    }

    #[test]
    fn msg_ids_name_actor_version_and_id_and_are_header_safe() {
        let long = "a".repeat(1 << 20);
        let cases = [
            ("a", 1, "e-1"),
            ("a", 2, "e-1"),
            ("b", 1, "e-1"),
            ("a", 1, "e-2"),
            ("a1", 1, "e"),
            ("a", 1, "1e"),
            ("a", 1, "x\r\ny"),
            ("a", 1, ""),
            ("a", 1, &long),
        ];
        let mut seen = std::collections::HashSet::new();
        for (actor, version, id) in cases {
            let m = msg_id(actor, version, id);
            assert_eq!(m, msg_id(actor, version, id));
            assert!(m.starts_with("e1:") && m.len() == 67, "{m}");
            assert!(m.bytes().all(|b| (0x21..0x7f).contains(&b)));
            assert!(seen.insert(m));
        }
        assert_eq!(actor_of_token(&actor_token("a.b")).unwrap(), b"a.b");
        assert!(actor_of_token(&actor_token(&"x".repeat(300))).is_none());
    }

    #[test]
    fn header_blocks_are_measured_as_sent() {
        let mut h = HeaderMap::new();
        h.insert(HDR_MSG_ID, "e-1");
        h.insert(HDR_EXPECTED_LAST_SUBJECT_SEQ, "0");
        let expected =
            "NATS/1.0\r\nNats-Msg-Id: e-1\r\nNats-Expected-Last-Subject-Sequence: 0\r\n\r\n";
        assert_eq!(header_block_len(&h), expected.len());
    }

    #[test]
    fn one_message_holds_one_event() {
        let a = br#"{"id":"1","eventType":"T","actorId":"a","version":1,"data":null,"timestamp":"2024-01-01T00:00:00Z"}"#;
        assert_eq!(decode_event(a).unwrap().id, "1");
        assert_eq!(decode_head(a).unwrap().version, 1);
        assert!(decode_event(b"not json").is_err());
        assert!(decode_event(b"").is_err());
        let arr = [&b"["[..], a, b"]"].concat();
        assert!(decode_event(&arr)
            .unwrap_err()
            .contains("one message holds one event"));
        assert!(decode_head(&arr).is_err());
    }
}
