//! The write-ahead log's reader: whatever bytes a damaged or foreign `aether.wal` holds,
//! reading it as recovery does (`aether_core::verify::analyse_wal`, which runs the store's
//! own `wal::scan`) must end in a result — never a panic, an overflow or a hang — and what
//! it reports must be consistent.
#![no_main]

use std::path::Path;

use aether_core::verify::{analyse_wal, WalState};
use libfuzzer_sys::fuzz_target;

/// Smallest frame: 16-byte header and a 20-byte payload header, padded to 8.
const MIN_FRAME: usize = 40;
const RECORDS_START: usize = 4096;

fuzz_target!(|data: &[u8]| {
    // The seeds are real logs; the fuzzer's edits land in their frames. Inputs shorter
    // than the header area also reach the frames once padded to it.
    let padded;
    let data = if data.len() < RECORDS_START && data.first() == Some(&b'P') {
        let mut p = vec![0u8; RECORDS_START];
        p[..data.len() - 1].copy_from_slice(&data[1..]);
        padded = p;
        &padded[..]
    } else {
        data
    };
    match analyse_wal(data, Path::new("aether.wal")) {
        WalState::Read(info) => {
            assert_eq!(info.pending_batches.len() as u64, info.pending_frames);
            let room = data.len().saturating_sub(RECORDS_START) / MIN_FRAME;
            assert!(
                info.pending_frames as usize <= room,
                "{} frames in {} bytes",
                info.pending_frames,
                data.len()
            );
            let (lo, hi) = info.pending_sequences;
            assert!(lo <= hi, "pending sequences {lo}..={hi}");
            if info.pending_frames == 0 {
                assert_eq!((lo, hi), (0, 0));
            }
            // The same bytes read again give the same answer.
            assert_eq!(
                analyse_wal(data, Path::new("aether.wal")),
                WalState::Read(info)
            );
        }
        WalState::Unreadable(message) => assert!(message.contains("header")),
        WalState::Missing => panic!("bytes in hand cannot be a missing log"),
    }
});
