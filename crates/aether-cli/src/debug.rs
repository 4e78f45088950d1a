//! `aether debug`: fault injection on a closed store, through
//! `aether_core::sled_store::fault` so the Rust tests and this command damage stores the
//! same way.

use std::process::ExitCode;

use aether_core::sled_store::fault::{self, Damage};

use crate::util::{CmdResult, Failure};
use crate::DebugCommand;

pub fn run(cmd: DebugCommand) -> CmdResult<ExitCode> {
    match cmd {
        DebugCommand::CorruptRecord(args) => {
            let damage = match args.flip_bit {
                Some(bit) => Damage::FlipBit(bit),
                None => Damage::Garbage,
            };
            let done = fault::corrupt_record(&args.path, &args.actor, args.version, damage)?;
            let what = match damage {
                Damage::FlipBit(bit) => format!("flipped bit {bit} of"),
                _ => "overwrote with garbage".to_owned(),
            };
            eprintln!(
                "{what} the record of actor {:?} version {} (sequence {}, {} bytes)",
                args.actor, args.version, done.sequence, done.len
            );
            Ok(ExitCode::SUCCESS)
        }
        DebugCommand::RemoveIndexEntry(args) => {
            match fault::remove_index_entry(&args.path, args.sequence)? {
                Some(_) => {
                    eprintln!("removed the index entry of sequence {}", args.sequence);
                    Ok(ExitCode::SUCCESS)
                }
                None => Err(Failure(format!(
                    "the store has no index entry at sequence {}",
                    args.sequence
                ))),
            }
        }
    }
}
