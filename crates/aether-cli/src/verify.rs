//! `aether verify`: print what [`aether_core::verify`] finds in a store — every malformed
//! index entry, record and snapshot, and each inconsistency between them and the
//! write-ahead log — with a progress bar for large stores. Exit 0 when sound, 1 when a
//! problem was found (notes, e.g. saves still in the log after an unclean close, are fine).

use std::process::ExitCode;

use aether_core::verify::{self, LogSummary, Severity, VerifyEvent, VerifyOptions};

use crate::util::{self, CmdResult, Progress, EXIT_PROBLEMS};
use crate::VerifyArgs;

/// Stores with fewer events than this get no progress bar: they take well under a second.
const PROGRESS_THRESHOLD: u64 = 20_000;

pub fn run(args: &VerifyArgs) -> CmdResult<ExitCode> {
    let db = util::open_sled_direct(&args.path)?;
    let mut options = VerifyOptions::default();
    // Findings are printed as they come; the report need not keep more than are listed.
    options.max_problems = args.max_listed;
    let show_progress = util::stderr_is_terminal();
    let mut progress: Option<Progress> = None;
    let mut listed = 0usize;
    let report = verify::verify_sled(&db, &args.path, &options, &mut |event| match event {
        VerifyEvent::PassStarted { pass, total } => {
            progress = (show_progress && total >= PROGRESS_THRESHOLD)
                .then(|| Progress::new(pass.label(), total, true));
        }
        VerifyEvent::PassProgress { done, .. } => {
            if let Some(p) = progress.as_mut() {
                p.set(done);
            }
        }
        VerifyEvent::PassFinished { .. } => {
            if let Some(p) = progress.take() {
                p.finish();
            }
        }
        VerifyEvent::Found(finding) => match finding.severity() {
            Severity::Note => println!("{finding}"),
            Severity::Problem => {
                if listed < args.max_listed {
                    listed += 1;
                    println!("{finding}");
                } else if listed == args.max_listed {
                    listed += 1;
                    println!("problem: … more problems are counted but not listed (--max-listed)");
                }
            }
        },
    })?;

    let wal_summary = match report.log {
        LogSummary::Missing => "no write-ahead log",
        LogSummary::Unreadable => "the write-ahead log (unreadable)",
        LogSummary::Read => "the write-ahead log",
    };
    println!(
        "checked {} index entries, {} records, {} snapshots and {wal_summary}: {}",
        util::thousands(report.index_entries),
        util::thousands(report.records),
        util::thousands(report.snapshots),
        match report.problems {
            0 => "sound".to_owned(),
            1 => "1 problem found".to_owned(),
            n => format!("{} problems found", util::thousands(n)),
        }
    );
    Ok(if report.is_sound() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PROBLEMS)
    })
}
