//! `aether verify`: print what [`aether_core::verify`] finds in a store — damage in the
//! segment log, and every disagreement between the index and the log — with a progress bar
//! for large stores. Exit 0 when sound, 1 when a problem was found (notes, e.g. records an
//! unclean close left for the next open to index, are fine).

use std::process::ExitCode;

use aether_core::verify::{self, Severity, VerifyEvent, VerifyOptions};

use crate::util::{self, CmdResult, Progress, EXIT_PROBLEMS};
use crate::VerifyArgs;

/// Logs smaller than this get no progress bar: they take well under a second.
const PROGRESS_THRESHOLD_BYTES: u64 = 16 << 20;
const PROGRESS_THRESHOLD_ENTRIES: u64 = 20_000;

pub fn run(args: &VerifyArgs) -> CmdResult<ExitCode> {
    util::require_store(&args.path)?;
    let mut options = VerifyOptions::default();
    // Findings are printed as they come; the report need not keep more than are listed.
    options.max_problems = args.max_listed;
    options.lock_timeout = util::LOCK_TIMEOUT;
    let show_progress = util::stderr_is_terminal();
    let mut progress: Option<Progress> = None;
    let mut listed = 0usize;
    let report = verify::verify_with(&args.path, &options, &mut |event| match event {
        VerifyEvent::PassStarted { pass, total } => {
            let threshold = match pass {
                verify::Pass::Log => PROGRESS_THRESHOLD_BYTES,
                _ => PROGRESS_THRESHOLD_ENTRIES,
            };
            progress = (show_progress && total >= threshold)
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
        VerifyEvent::Found(finding) => match finding.severity {
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

    println!(
        "checked {} segments ({}), {} records holding {} events (last sequence {}), {} and {} snapshots: {}",
        util::thousands(report.segments),
        util::bytes(report.log_bytes),
        util::thousands(report.records),
        util::thousands(report.events),
        util::thousands(report.last_sequence),
        if report.index_read {
            format!("{} index entries", util::thousands(report.index_entries))
        } else {
            "no index".to_owned()
        },
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
