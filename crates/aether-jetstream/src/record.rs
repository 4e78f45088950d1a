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
//! - Headers: `Nats-Msg-Id` (deduplication of retries) on every message,
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
/// NATS atomic batch (2.12+): the batch's ID, at most 64 characters.
pub const HDR_BATCH_ID: &str = "Nats-Batch-Id";
/// NATS atomic batch: the message's place in its batch, from 1, without gaps.
pub const HDR_BATCH_SEQ: &str = "Nats-Batch-Sequence";
/// NATS atomic batch: `1` on the last message commits the batch.
pub const HDR_BATCH_COMMIT: &str = "Nats-Batch-Commit";

/// Actor IDs up to this many bytes appear (base64url-encoded) in the subject.
pub const MAX_INLINE_ACTOR_ID: usize = 192;
/// Event IDs up to this many bytes are their own `Nats-Msg-Id`; longer ones are hashed, so
/// the headers of a message stay small whatever the event (see [`MAX_HEADER_BYTES`]).
pub const MAX_INLINE_MSG_ID: usize = 128;
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

/// A `Nats-Msg-Id` value for an event ID. IDs that are plain printable ASCII of up to
/// [`MAX_INLINE_MSG_ID`] bytes are used as they are; other short ones are written `b64:` +
/// base64url, so no ID can break the header block; long ones are `sha256:` + hex of the
/// ID's SHA-256, so a header never grows with the event.
pub fn msg_id(event_id: &str) -> String {
    let plain = !event_id.is_empty()
        && event_id.bytes().all(|b| (0x21..0x7f).contains(&b))
        && !event_id.starts_with("b64:")
        && !event_id.starts_with("sha256:");
    if event_id.len() > MAX_INLINE_MSG_ID {
        format!("sha256:{}", sha256_hex(event_id))
    } else if plain {
        event_id.to_owned()
    } else {
        format!(
            "b64:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(event_id)
        )
    }
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
/// event), so its payload is the canonical JSON this store wrote.
pub fn published_by_us(headers: Option<&HeaderMap>, event_id: &str) -> bool {
    headers
        .and_then(|h| h.get(HDR_MSG_ID))
        .is_some_and(|v| v.as_str() == msg_id(event_id))
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
    fn msg_ids_are_header_safe_short_and_injective() {
        assert_eq!(msg_id("e-1"), "e-1");
        let long_a = "a".repeat(MAX_INLINE_MSG_ID + 1);
        let long_b = "a".repeat(1 << 20);
        let odd = [
            "a b", "x\r\ny", "ü", "", "b64:abc", "sha256:x", &long_a, &long_b,
        ];
        let mut seen = std::collections::HashSet::new();
        for id in odd {
            let m = msg_id(id);
            assert!(m.starts_with("b64:") || m.starts_with("sha256:"), "{m}");
            assert!(m.bytes().all(|b| (0x21..0x7f).contains(&b)));
            assert!(m.len() <= 200);
            assert!(seen.insert(m));
        }
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
