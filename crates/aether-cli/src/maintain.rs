//! `aether reindex` and `aether migrate`: the store's own maintenance routines, run on a
//! closed store.

use std::process::ExitCode;

use aether_core::sled_store;
use aether_core::Options;

use crate::util::{self, CmdResult};
use crate::{MigrateArgs, ReindexArgs};

/// Rebuild the index from the log (the log is the truth; the index is derived).
pub fn reindex(args: &ReindexArgs) -> CmdResult<ExitCode> {
    util::require_store(&args.path)?;
    // Keep the mode the store records; a missing or damaged index records none.
    let durability = util::recorded_durability(&args.path)
        .ok()
        .flatten()
        .unwrap_or_default();
    let mut options = Options::with_durability(durability);
    options.lock_timeout = util::LOCK_TIMEOUT;
    let report = sled_store::reindex(&args.path, options)?;
    for line in report.lines() {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Convert a format-1 store (events in sled) to format 2, keeping the old files beside it.
pub fn migrate(args: &MigrateArgs) -> CmdResult<ExitCode> {
    let report = sled_store::migrate(&args.path)?;
    println!(
        "migrated {} events and {} snapshots into {} (format 2); the format-1 files are kept at {}",
        util::thousands(report.events),
        util::thousands(report.snapshots),
        args.path.display(),
        report.old_kept_at.display()
    );
    Ok(ExitCode::SUCCESS)
}
