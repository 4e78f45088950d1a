//! How events are laid out in the stream: subjects, headers and payloads.
//!
//! - One message per save: a single event is its Go-compatible JSON object; a batch of
//!   `k > 1` events is one JSON array of those objects, so a batch is stored whole or not
//!   at all.
//! - Subject `{prefix}.events.{token}` per actor, where `token` is `a` + base64url(actor ID)
//!   for IDs of up to [`MAX_INLINE_ACTOR_ID`] bytes and `h` + hex(SHA-256(actor ID)) for
//!   longer ones (a NATS control line is limited to 4 KiB by default). Either way the token
//!   uses only `[A-Za-z0-9_-]`, so IDs holding `.`, `*`, `>`, spaces or NUL are safe.
//! - Headers: `Aether-Sequence` (store-wide sequence of the message's first event) and, on
//!   batches only, `Aether-Count` (events in the message; absent means 1), next to NATS's
//!   `Nats-Msg-Id` and expectation headers. The server stores every header of a publish
//!   and a consumer parses each on every read (five headers halved a raw consumer's rate
//!   against header-less messages; one costs nothing measurable), so single saves, the
//!   common case, carry one header fewer.

use async_nats::HeaderMap;
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use aether_core::Event;

/// Header: the store-wide sequence of the first event in the message.
pub const HDR_SEQUENCE: &str = "Aether-Sequence";
/// Header: how many events the message holds; written only when more than one.
pub const HDR_COUNT: &str = "Aether-Count";
/// NATS's deduplication header.
pub const HDR_MSG_ID: &str = "Nats-Msg-Id";
/// NATS: reject unless the stream's last sequence is this.
pub const HDR_EXPECTED_LAST_SEQ: &str = "Nats-Expected-Last-Sequence";
/// NATS: reject unless the last sequence on this message's subject is this (0: none).
pub const HDR_EXPECTED_LAST_SUBJECT_SEQ: &str = "Nats-Expected-Last-Subject-Sequence";

/// Actor IDs up to this many bytes appear (base64url-encoded) in the subject.
pub const MAX_INLINE_ACTOR_ID: usize = 192;

/// The subject token of `actor_id`.
pub fn actor_token(actor_id: &str) -> String {
    if actor_id.len() <= MAX_INLINE_ACTOR_ID {
        let mut t = String::with_capacity(1 + actor_id.len().div_ceil(3) * 4);
        t.push('a');
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(actor_id, &mut t);
        t
    } else {
        let digest = Sha256::digest(actor_id.as_bytes());
        let mut t = String::with_capacity(65);
        t.push('h');
        for b in digest {
            t.push_str(&format!("{b:02x}"));
        }
        t
    }
}

/// A `Nats-Msg-Id` value for an event ID. IDs that are plain printable ASCII are used as
/// they are; anything else (control characters, non-ASCII, surrounding spaces, or the
/// escape prefix itself) is written `b64:` + base64url, so no ID can break the header block.
pub fn msg_id(event_id: &str) -> String {
    let plain = !event_id.is_empty()
        && event_id.bytes().all(|b| (0x21..0x7f).contains(&b))
        && !event_id.starts_with("b64:");
    if plain {
        event_id.to_owned()
    } else {
        format!(
            "b64:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(event_id)
        )
    }
}

/// The payload of a save: one event's JSON, or a JSON array of a batch's events.
pub fn encode_payload(encoded: &[Vec<u8>]) -> Vec<u8> {
    if encoded.len() == 1 {
        return encoded[0].clone();
    }
    let len = encoded.iter().map(|e| e.len() + 1).sum::<usize>() + 1;
    let mut out = Vec::with_capacity(len);
    out.push(b'[');
    for (i, e) in encoded.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(e);
    }
    out.push(b']');
    out
}

/// The fields of an event the store itself needs (for EventStored and the version check).
#[derive(Debug, Clone, Deserialize)]
pub struct EventHead {
    pub id: String,
    #[serde(rename = "actorId")]
    pub actor_id: String,
    pub version: i64,
}

/// `(first event sequence, count)` from a message's headers, if it carries valid ones.
pub fn sequence_header(headers: Option<&HeaderMap>) -> Option<(u64, u64)> {
    let h = headers?;
    let seq = h.get(HDR_SEQUENCE)?.as_str().parse::<u64>().ok()?;
    let count = match h.get(HDR_COUNT) {
        Some(v) => v.as_str().parse::<u64>().ok()?,
        None => 1,
    };
    (seq >= 1 && count >= 1).then_some((seq, count))
}

/// Split a payload into the raw JSON of each event it holds.
pub fn split_payload(payload: &[u8]) -> Result<Vec<&[u8]>, String> {
    let first = payload
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .copied()
        .ok_or_else(|| "empty message".to_owned())?;
    if first == b'[' {
        let parts: Vec<&RawValue> = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
        if parts.is_empty() {
            return Err("empty batch".into());
        }
        Ok(parts.into_iter().map(|r| r.get().as_bytes()).collect())
    } else {
        Ok(vec![payload])
    }
}

/// Decode every event of a payload.
pub fn decode_events(payload: &[u8]) -> Result<Vec<Event>, String> {
    split_payload(payload)?
        .into_iter()
        .map(|raw| Event::from_json(raw).map_err(|e| e.to_string()))
        .collect()
}

/// Decode the heads of every event of a payload (cheaper than whole events).
pub fn decode_heads(payload: &[u8]) -> Result<Vec<EventHead>, String> {
    let first = payload
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .copied()
        .ok_or_else(|| "empty message".to_owned())?;
    if first == b'[' {
        let heads: Vec<EventHead> = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
        if heads.is_empty() {
            return Err("empty batch".into());
        }
        Ok(heads)
    } else {
        Ok(vec![
            serde_json::from_slice(payload).map_err(|e| e.to_string())?
        ])
    }
}

/// A message read from a stream (by direct get or a consumer).
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// Stream sequence.
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
    fn msg_ids_are_header_safe_and_injective() {
        assert_eq!(msg_id("e-1"), "e-1");
        let odd = ["a b", "x\r\ny", "ü", "", "b64:abc"];
        let mut seen = std::collections::HashSet::new();
        for id in odd {
            let m = msg_id(id);
            assert!(m.starts_with("b64:"), "{m}");
            assert!(m.bytes().all(|b| (0x21..0x7f).contains(&b)));
            assert!(seen.insert(m));
        }
    }

    #[test]
    fn payloads_split_back_into_events() {
        let a = br#"{"id":"1","eventType":"T","actorId":"a","version":1,"data":null,"timestamp":"2024-01-01T00:00:00Z"}"#.to_vec();
        let b = br#"{"id":"2","eventType":"T","actorId":"a","version":2,"data":{"x":[1]},"timestamp":"2024-01-01T00:00:00Z"}"#.to_vec();
        let one = encode_payload(std::slice::from_ref(&a));
        assert_eq!(split_payload(&one).unwrap(), vec![&a[..]]);
        let two = encode_payload(&[a.clone(), b.clone()]);
        assert_eq!(split_payload(&two).unwrap(), vec![&a[..], &b[..]]);
        let heads = decode_heads(&two).unwrap();
        assert_eq!((heads[1].id.as_str(), heads[1].version), ("2", 2));
        assert!(decode_events(b"not json").is_err());
        assert!(decode_events(b"[]").is_err());
    }
}
