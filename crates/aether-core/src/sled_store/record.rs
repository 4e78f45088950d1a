//! Commit records: what one save puts in the segment log, inside one frame
//! (see `frame.rs` for the framing and `segment.rs` for the files).
//!
//! Every integer is big-endian.
//!
//! - An events record, one per save call (one event, a batch, and later a commit that
//!   spans actors): `kind 1 u8 ‖ first_sequence u64 ‖ event_count u32 ‖ group_count u32`,
//!   then per actor group `actor_len u32 ‖ actor ‖ count u32`, then per event
//!   `version u64 ‖ json_len u32 ‖ json`. Events take consecutive sequences from
//!   `first_sequence`, in the order written. The JSON is the event's Go-compatible
//!   encoding, so replay hands it out without re-encoding.
//! - A snapshot record: `kind 2 u8 ‖ actor_len u32 ‖ actor ‖ version u64 ‖ json_len u32 ‖
//!   json`. Snapshots travel through the log so that they are as durable as the mode
//!   promises before they are visible, and so that the index can be rebuilt from the log.

/// Record kind: events of one save call.
pub const KIND_EVENTS: u8 = 1;
/// Record kind: a snapshot.
pub const KIND_SNAPSHOT: u8 = 2;

/// Bytes of an events record before its first group.
pub const EVENTS_HEADER_LEN: usize = 1 + 8 + 4 + 4;

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Builds an events record in place: the caller appends each event's JSON straight into
/// the buffer (no intermediate copy), and the sequence is filled in under the writer lock.
#[derive(Debug)]
pub struct EventsRecordBuilder {
    buf: Vec<u8>,
    /// Where the buffer's payload starts (room left before it for the frame header).
    start: usize,
    events: u32,
    groups: u32,
    /// Offset of the open group's count field.
    group_count_at: Option<usize>,
    group_events: u32,
}

impl EventsRecordBuilder {
    /// A builder whose buffer keeps `reserve` bytes before the payload (a frame header).
    pub fn new(reserve: usize, size_hint: usize) -> Self {
        let mut buf = Vec::with_capacity(reserve + EVENTS_HEADER_LEN + size_hint);
        buf.resize(reserve, 0);
        buf.push(KIND_EVENTS);
        buf.extend_from_slice(&[0u8; 16]);
        EventsRecordBuilder {
            start: reserve,
            buf,
            events: 0,
            groups: 0,
            group_count_at: None,
            group_events: 0,
        }
    }

    fn close_group(&mut self) {
        if let Some(at) = self.group_count_at.take() {
            self.buf[at..at + 4].copy_from_slice(&self.group_events.to_be_bytes());
        }
    }

    /// Start the events of `actor_id`.
    pub fn group(&mut self, actor_id: &[u8]) {
        self.close_group();
        self.buf
            .extend_from_slice(&(actor_id.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(actor_id);
        self.group_count_at = Some(self.buf.len());
        self.buf.extend_from_slice(&[0u8; 4]);
        self.group_events = 0;
        self.groups += 1;
    }

    /// Add an event of the open group: `write` appends its JSON to the buffer it is given.
    /// Returns the JSON's length.
    pub fn event(&mut self, version: i64, write: impl FnOnce(&mut Vec<u8>)) -> usize {
        self.buf.extend_from_slice(&(version as u64).to_be_bytes());
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0u8; 4]);
        write(&mut self.buf);
        let len = self.buf.len() - len_at - 4;
        self.buf[len_at..len_at + 4].copy_from_slice(&(len as u32).to_be_bytes());
        self.events += 1;
        self.group_events += 1;
        len
    }

    /// The finished buffer (frame header room, then the payload) and its event count.
    pub fn finish(mut self) -> (Vec<u8>, u32) {
        self.close_group();
        let s = self.start;
        self.buf[s + 9..s + 13].copy_from_slice(&self.events.to_be_bytes());
        self.buf[s + 13..s + 17].copy_from_slice(&self.groups.to_be_bytes());
        (self.buf, self.events)
    }
}

/// Write the first sequence into an events payload built by [`EventsRecordBuilder`].
pub fn set_first_sequence(payload: &mut [u8], first_sequence: u64) {
    payload[1..9].copy_from_slice(&first_sequence.to_be_bytes());
}

/// A snapshot record's payload.
pub fn snapshot_payload(reserve: usize, actor_id: &[u8], version: i64, json: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(reserve + 1 + 4 + actor_id.len() + 12 + json.len());
    buf.resize(reserve, 0);
    buf.push(KIND_SNAPSHOT);
    buf.extend_from_slice(&(actor_id.len() as u32).to_be_bytes());
    buf.extend_from_slice(actor_id);
    buf.extend_from_slice(&(version as u64).to_be_bytes());
    buf.extend_from_slice(&(json.len() as u32).to_be_bytes());
    buf.extend_from_slice(json);
    buf
}

/// One event in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordEvent<'a> {
    pub sequence: u64,
    pub actor_id: &'a [u8],
    pub version: i64,
    pub json: &'a [u8],
}

/// A parsed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    /// Events of one save call; iterate with [`Record::events`].
    Events {
        first_sequence: u64,
        count: u32,
        /// The groups, starting at the first group's header.
        body: &'a [u8],
        groups: u32,
    },
    Snapshot {
        actor_id: &'a [u8],
        version: i64,
        json: &'a [u8],
    },
}

/// Why a payload does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError(pub String);

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn malformed<T>(what: &str) -> Result<T, RecordError> {
    Err(RecordError(format!("malformed commit record: {what}")))
}

/// Parse a payload, checking that its structure is complete (every length in bounds,
/// counts that match, nothing after the end).
pub fn parse(p: &[u8]) -> Result<Record<'_>, RecordError> {
    parse_with(p, true)
}

/// Parse a payload's header only; its events are checked as [`Record::events`] walks
/// them (each step bounds-checked, an error where they are malformed). For reads of a
/// frame whose checksum already matched, which walk the events anyway.
pub fn parse_header(p: &[u8]) -> Result<Record<'_>, RecordError> {
    parse_with(p, false)
}

fn parse_with(p: &[u8], full: bool) -> Result<Record<'_>, RecordError> {
    match p.first() {
        Some(&KIND_EVENTS) => {
            let (Some(first_sequence), Some(count), Some(groups)) =
                (be_u64(p, 1), be_u32(p, 9), be_u32(p, 13))
            else {
                return malformed("header cut short");
            };
            let body = &p[EVENTS_HEADER_LEN..];
            let record = Record::Events {
                first_sequence,
                count,
                body,
                groups,
            };
            if first_sequence == 0 || count == 0 || groups == 0 || groups > count {
                return malformed("empty, or sequence 0");
            }
            if first_sequence.checked_add(count as u64).is_none() {
                return malformed("sequence overflows");
            }
            if !full {
                return Ok(record);
            }
            let mut seen = 0u32;
            let mut iter = record.events();
            for e in iter.by_ref() {
                e?;
                seen += 1;
            }
            if seen != count || iter.at != body.len() || iter.groups_seen != groups {
                return malformed("counts do not match the events");
            }
            Ok(record)
        }
        Some(&KIND_SNAPSHOT) => {
            let Some(alen) = be_u32(p, 1) else {
                return malformed("snapshot header cut short");
            };
            let a_end = 5usize.saturating_add(alen as usize);
            let (Some(actor_id), Some(version), Some(jlen)) =
                (p.get(5..a_end), be_u64(p, a_end), be_u32(p, a_end + 8))
            else {
                return malformed("snapshot cut short");
            };
            let j = a_end + 12;
            match p.get(j..) {
                Some(json) if json.len() == jlen as usize => Ok(Record::Snapshot {
                    actor_id,
                    version: version as i64,
                    json,
                }),
                _ => malformed("snapshot length does not match"),
            }
        }
        Some(k) => Err(RecordError(format!("unknown record kind {k:#04x}"))),
        None => malformed("empty"),
    }
}

/// The first and last sequence of a payload's events, (0, 0) for a snapshot; `None` when
/// it does not parse. The frame layer's [`ParsePayload`](super::frame::ParsePayload).
pub fn payload_sequences(p: &[u8]) -> Option<(u64, u64)> {
    match parse(p).ok()? {
        Record::Events {
            first_sequence,
            count,
            ..
        } => Some((first_sequence, first_sequence + count as u64 - 1)),
        Record::Snapshot { .. } => Some((0, 0)),
    }
}

impl<'a> Record<'a> {
    /// The events of an events record, in sequence order (none for a snapshot).
    pub fn events(&self) -> RecordEvents<'a> {
        match *self {
            Record::Events {
                first_sequence,
                body,
                ..
            } => RecordEvents {
                body,
                at: 0,
                next_sequence: first_sequence,
                actor: &[],
                left_in_group: 0,
                groups_seen: 0,
                failed: false,
            },
            Record::Snapshot { .. } => RecordEvents {
                body: &[],
                at: 0,
                next_sequence: 0,
                actor: &[],
                left_in_group: 0,
                groups_seen: 0,
                failed: true,
            },
        }
    }
}

/// Iterator over a record's events; yields an error (once) where the bytes are malformed.
#[derive(Debug)]
pub struct RecordEvents<'a> {
    body: &'a [u8],
    at: usize,
    next_sequence: u64,
    actor: &'a [u8],
    left_in_group: u32,
    groups_seen: u32,
    failed: bool,
}

impl<'a> RecordEvents<'a> {
    fn step(&mut self) -> Result<Option<RecordEvent<'a>>, RecordError> {
        let b = self.body;
        while self.left_in_group == 0 {
            if self.at == b.len() {
                return Ok(None);
            }
            let Some(alen) = be_u32(b, self.at) else {
                return malformed("group header cut short");
            };
            let a_start = self.at + 4;
            let a_end = a_start.saturating_add(alen as usize);
            let (Some(actor), Some(count)) = (b.get(a_start..a_end), be_u32(b, a_end)) else {
                return malformed("group cut short");
            };
            if count == 0 {
                return malformed("empty group");
            }
            self.actor = actor;
            self.left_in_group = count;
            self.groups_seen += 1;
            self.at = a_end + 4;
        }
        let (Some(version), Some(jlen)) = (be_u64(b, self.at), be_u32(b, self.at + 8)) else {
            return malformed("event header cut short");
        };
        let j = self.at + 12;
        let Some(json) = b.get(j..j.saturating_add(jlen as usize)) else {
            return malformed("event cut short");
        };
        self.at = j + json.len();
        self.left_in_group -= 1;
        let e = RecordEvent {
            sequence: self.next_sequence,
            actor_id: self.actor,
            version: version as i64,
            json,
        };
        self.next_sequence += 1;
        Ok(Some(e))
    }
}

impl<'a> Iterator for RecordEvents<'a> {
    type Item = Result<RecordEvent<'a>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.step() {
            Ok(e) => e.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_every_cut_is_refused() {
        let mut b = EventsRecordBuilder::new(16, 64);
        b.group(b"a");
        b.event(3, |o| o.extend_from_slice(b"{\"x\":1}"));
        b.event(4, |o| o.extend_from_slice(b"{}"));
        b.group(b"bb");
        b.event(1, |o| o.extend_from_slice(b"[]"));
        let (mut buf, n) = b.finish();
        assert_eq!(n, 3);
        set_first_sequence(&mut buf[16..], 7);
        let p = &buf[16..];
        let rec = parse(p).unwrap();
        let evs: Vec<_> = rec.events().map(Result::unwrap).collect();
        assert_eq!(evs.len(), 3);
        assert_eq!(
            (evs[0].sequence, evs[0].actor_id, evs[0].version),
            (7, &b"a"[..], 3)
        );
        assert_eq!(
            (evs[2].sequence, evs[2].actor_id, evs[2].json),
            (9, &b"bb"[..], &b"[]"[..])
        );
        assert_eq!(payload_sequences(p), Some((7, 9)));
        for cut in 0..p.len() {
            assert!(parse(&p[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = p.to_vec();
        longer.push(0);
        assert!(parse(&longer).is_err());
    }

    #[test]
    fn snapshots_round_trip() {
        let buf = snapshot_payload(0, b"actor", 9, b"{\"s\":1}");
        assert_eq!(
            parse(&buf).unwrap(),
            Record::Snapshot {
                actor_id: b"actor",
                version: 9,
                json: b"{\"s\":1}"
            }
        );
        assert_eq!(payload_sequences(&buf), Some((0, 0)));
        assert!(parse(&buf[..buf.len() - 1]).is_err());
    }
}
