//! The segment log's reader: whatever bytes a damaged or foreign segment file holds,
//! reading it as recovery and `aether verify` do (`segment::scan`, which frames with
//! `frame::frame_at` and parses with `record::parse`) must end in a result — never a panic,
//! an overflow or a hang — and what it reports must fit the bytes: frames in bounds, one
//! after the other, each payload a well-formed record whose events take the sequences the
//! scan reports; and the same bytes read twice give the same answer.
//!
//! The input is also used as the content of a well-formed segment (a record built from it,
//! framed as the writer frames it), so the intact path is reached on every run: the frame
//! must read back as written, and any one flipped bit of it must end the log as damage,
//! never read as a frame.
#![no_main]

use aether_core::sled_store::frame::{self, Ending, FRAME_HEADER_LEN};
use aether_core::sled_store::record::{self, EventsRecordBuilder, Record};
use aether_core::sled_store::segment::{self, SegmentId, SegmentScan, SEGMENT_HEADER_LEN};
use libfuzzer_sys::fuzz_target;

const HEADER: usize = SEGMENT_HEADER_LEN as usize;

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Check everything `record::parse` accepts: its events are complete and take consecutive
/// sequences. Returns (first, last) as `payload_sequences` reports them.
fn check_record(p: &[u8]) -> Option<(u64, u64)> {
    let r = record::parse(p).ok()?;
    let sequences = record::payload_sequences(p).expect("parse accepted it");
    match r {
        Record::Events {
            first_sequence,
            count,
            groups,
            ..
        } => {
            assert!(first_sequence > 0 && count > 0 && groups > 0 && groups <= count);
            let mut next = first_sequence;
            for e in r.events() {
                let e = e.expect("a parsed record's events are well formed");
                assert_eq!(e.sequence, next);
                assert!(e.json.len() <= p.len() && e.actor_id.len() <= p.len());
                next += 1;
            }
            assert_eq!(next - first_sequence, count as u64);
            assert_eq!(sequences, (first_sequence, next - 1));
        }
        Record::Snapshot { actor_id, json, .. } => {
            assert!(actor_id.len() + json.len() < p.len());
            assert_eq!(r.events().count(), 0);
            assert_eq!(sequences, (0, 0));
        }
    }
    Some(sequences)
}

/// What a scan reports must fit the bytes it read.
fn check_scan(data: &[u8], from: usize, scan: &SegmentScan) {
    let mut at = from;
    for f in &scan.frames {
        assert_eq!(f.at, at, "frames follow one another");
        let end = f.at + FRAME_HEADER_LEN + f.payload_len;
        assert!(end <= data.len(), "frame at {} runs past the file", f.at);
        assert_eq!(
            f.next,
            f.at + frame::padded(FRAME_HEADER_LEN + f.payload_len)
        );
        assert_eq!(check_record(f.payload(data)), Some(f.sequences));
        at = f.next;
    }
    assert_eq!(scan.end, at, "the scan ends after its last frame");
    match scan.ending {
        Ending::End => {}
        Ending::CutShort {
            one_bit_from_intact,
        } => {
            if let Some((bit_at, _)) = one_bit_from_intact {
                assert!(bit_at >= scan.end && bit_at < data.len());
            }
        }
        Ending::Damaged(d) => match d {
            frame::Damage::BeforeIntact { at, intact_at } => {
                assert_eq!(at, scan.end);
                assert!(intact_at > at && intact_at + FRAME_HEADER_LEN <= data.len());
            }
            frame::Damage::OneBitFromIntact { at, bit_at, .. } => {
                assert_eq!(at, scan.end);
                assert!(bit_at >= at && bit_at < data.len());
            }
            frame::Damage::Unparseable { at }
            | frame::Damage::WrittenInFull { at }
            | frame::Damage::FileEndsInFrame { at } => assert_eq!(at, scan.end),
        },
    }
}

fuzz_target!(|data: &[u8]| {
    // 1. The input as a segment file, named as its header claims (so the seeds, which are
    //    real segments, read their frames), and as another segment's.
    let id = SegmentId {
        base: be_u64(data, 8).unwrap_or(1),
        gen: be_u32(data, 16).unwrap_or(0),
    };
    let _ = segment::check_header(data, id);
    for id in [id, SegmentId { base: 1, gen: 0 }] {
        let scan = segment::scan(data, id, HEADER);
        check_scan(data, HEADER, &scan);
        assert_eq!(
            segment::scan(data, id, HEADER),
            scan,
            "the same bytes read twice"
        );
    }
    // From an arbitrary offset too (recovery resumes at the index's high-water mark).
    let from = (be_u32(data, 20).unwrap_or(0) as usize) % (data.len() + 16);
    check_scan(data, from, &segment::scan(data, id, from));

    // 2. The input as a record's payload.
    let _ = check_record(data);

    // 3. The input as the content of a well-formed segment: one events record (the input
    //    split into an actor and JSON bodies) framed after a header, zero fill after it.
    let split = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    let (actor, body) = data.split_at(split);
    let mut b = EventsRecordBuilder::new(FRAME_HEADER_LEN, body.len());
    b.group(actor);
    let parts: Vec<&[u8]> = body.splitn(3, |&c| c == b'\n').collect();
    for (i, part) in parts.iter().enumerate() {
        b.event(i as i64 + 1, |out| out.extend_from_slice(part));
    }
    let (mut buf, count) = b.finish();
    let first = 1 + u64::from(split as u32);
    record::set_first_sequence(&mut buf[FRAME_HEADER_LEN..], first);
    let id = SegmentId {
        base: first,
        gen: 0,
    };
    segment::seal_frame(&mut buf, id.salt());
    let frame_len = FRAME_HEADER_LEN + (buf.len() - FRAME_HEADER_LEN);
    let mut file = segment::header_bytes(id, None).to_vec();
    file.extend_from_slice(&buf);
    file.resize(file.len() + 512, 0);
    segment::check_header(&file, id).expect("a header the writer wrote");
    let scan = segment::scan(&file, id, HEADER);
    check_scan(&file, HEADER, &scan);
    assert_eq!(scan.frames.len(), 1, "the frame written reads back");
    assert_eq!(scan.ending, Ending::End);
    assert_eq!(
        scan.frames[0].sequences,
        (first, first + count as u64 - 1),
        "with the sequences written"
    );
    // Flip one bit of the frame (not its padding, which no checksum covers).
    let written = FRAME_HEADER_LEN + scan.frames[0].payload_len;
    let bit = (be_u64(data, 0).unwrap_or(split as u64) % (written as u64 * 8)) as usize;
    let mut bad = file.clone();
    bad[HEADER + bit / 8] ^= 1 << (bit % 8);
    let scan = segment::scan(&bad, id, HEADER);
    check_scan(&bad, HEADER, &scan);
    assert!(
        scan.frames.is_empty() && scan.ending != Ending::End,
        "bit {bit} of a {frame_len}-byte frame flipped, and the scan read {scan:?}"
    );
});
