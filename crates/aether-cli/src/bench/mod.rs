//! `aether bench`: a realistic event-sourcing workload on our store, and with `--compare`
//! the same workload, in the same run, on peers (raw sled, the disk, SQLite, serde_json),
//! each ratio printed beside its target.
//!
//! The harness must not be what it measures: the whole workload (events, their JSON, the
//! peers' records, lookup order) is generated before the first timed call, and each call's
//! latency goes into an HDR histogram.

mod jetstream;
mod ours;
mod peers;
mod report;
mod scale;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aether_core::{Durability, EventStore, MemoryStore, Options, SledStore};
use aether_jetstream::{JetStreamOptions, JetStreamStore};
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::util::{self, CmdResult, Failure, EXIT_PROBLEMS};
use crate::DurabilityArg;
use report::{Comparison, OpJson, OpStats};
use workload::{Shape, Workload};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The embedded, persistent sled store.
    Sled,
    /// The in-memory store (nothing on disk).
    Memory,
    /// NATS JetStream (crates/aether-jetstream): the server at --nats-url, or a private
    /// `nats-server` started for the run in the store's folder.
    Jetstream,
}

#[derive(Debug, Args)]
#[command(
    long_about = "Run a realistic event-sourcing workload and print throughput and p50/p99/p99.9 \
        latency per operation and the store's size on disk.\n\n\
        The workload: many actors with interleaved appends of ~300-byte events with nested data \
        and a share of deliberately stale versions (rejected as conflicts), while a consumer drains \
        EventStored; then batch appends, replay of every actor (decoded and raw JSON), latest-version \
        lookups and a store-wide read_all. Everything is generated before timing starts.\n\n\
        --compare also runs the save phase buffered, durable with 1 writer and durable with 8 \
        writers, and the same workload on raw sled, the disk (append+fdatasync), SQLite and \
        serde_json, and prints each ratio (ours / peer) beside its target."
)]
pub struct BenchArgs {
    /// Store backend.
    #[arg(long, value_enum, default_value_t = Backend::Sled)]
    pub backend: Backend,
    /// Keep the store in this new (or empty) folder instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Number of actors the saves interleave across.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub actors: u64,
    /// Events stored by the interleaved save phase (deliberate conflicts come on top).
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub events: u64,
    /// Approximate size of one encoded event, in bytes.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub payload_size: u64,
    /// Writer threads for the save phase (each owns a share of the actors).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub writers: u64,
    /// JetStream backend: the server (or comma-separated cluster) to use, on a stream of its
    /// own named after this run; without it a private nats-server is started for the run.
    #[arg(long, value_name = "URL")]
    pub nats_url: Option<String>,
    /// Durability mode of the sled store.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Durable)]
    pub durability: DurabilityArg,
    /// Events per `save_events` call in the batch phase.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub batch_size: u64,
    /// Events stored by the batch phase [default: half of --events].
    #[arg(long, value_name = "N")]
    pub batch_events: Option<u64>,
    /// Latest-version lookups.
    #[arg(long, default_value_t = 100_000)]
    pub lookups: u64,
    /// Percentage of saves that deliberately use a stale version.
    #[arg(long, default_value_t = 5.0)]
    pub conflict_percent: f64,
    /// Cap, in seconds, on each timed phase (a capped phase reports what it did in time).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub duration: f64,
    /// Write every figure to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Seed of the workload generator (same seed, same workload).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// How the concurrent EventStored consumer waits: polling drains every millisecond (its
    /// delivery delay includes up to that tick); blocking wakes on every notification (each
    /// save then pays a thread wake-up).
    #[arg(long, value_enum, default_value_t = ours::Consumer::Polling)]
    pub event_stored_consumer: ours::Consumer,
    /// Also run the peers and print ratios against the targets (sled backend only).
    #[arg(long)]
    pub compare: bool,
    /// Instead of the workload: build a store of --scale-events buffered saves (round-robin
    /// over --actors) and report disk bytes per event, open time after a clean close and
    /// after a crash (by unindexed tail), and the open store's resident memory.
    #[arg(long, conflicts_with = "compare")]
    pub scale: bool,
    /// Events the --scale store holds.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub scale_events: u64,
    /// Internal: a child process of --scale.
    #[arg(long, value_enum, hide = true)]
    pub scale_child: Option<scale::ChildRole>,
    /// Internal: saves of a --scale-child tail.
    #[arg(long, hide = true, default_value_t = 0)]
    pub scale_tail: u64,
    /// Internal: sled cache of a --scale-child.
    #[arg(long, hide = true)]
    pub scale_cache: Option<u64>,
}

/// sled's page cache for our store and for raw sled alike.
const CACHE_CAPACITY: u64 = 256 << 20;

#[derive(Debug, Serialize)]
struct ConfigJson {
    backend: &'static str,
    durability: Option<&'static str>,
    actors: u64,
    events: u64,
    payload_size: u64,
    writers: u64,
    batch_size: u64,
    conflict_percent: f64,
    duration_cap_s: f64,
    seed: u64,
    path: String,
}

#[derive(Debug, Serialize)]
struct WorkloadJson {
    save_calls: u64,
    deliberate_conflicts: u64,
    mean_event_bytes: f64,
    batches: u64,
    lookups: u64,
    generation_s: f64,
}

#[derive(Debug, Serialize, Default)]
struct ChecksJson {
    unexpected_save_outcomes: u64,
    first_unexpected: Option<String>,
    batch_failures: u64,
    replay_mismatches: u64,
    wrong_latest_versions: u64,
    read_all_failure: Option<String>,
    event_stored_received: u64,
    event_stored_expected: u64,
    event_stored_dropped: u64,
    save_phase_capped: bool,
}

#[derive(Debug, Serialize, Default)]
struct CompareJson {
    runs: Vec<OpJson>,
    peers: Vec<OpJson>,
    comparisons: Vec<Comparison>,
    size_on_disk: Vec<SizeJson>,
    jetstream: String,
}

/// Bytes a store takes on disk after the same buffered saves.
#[derive(Debug, Serialize)]
struct SizeJson {
    store: String,
    bytes: u64,
}

#[derive(Debug, Serialize)]
struct BenchJson {
    aether_version: &'static str,
    config: ConfigJson,
    workload: WorkloadJson,
    operations: Vec<OpJson>,
    size_on_disk_bytes: Option<u64>,
    checks: ChecksJson,
    compare: Option<CompareJson>,
}

/// A store under test; sled is kept concretely so it can be closed (checkpointed) at the end.
/// Fields drop in order: the store before the private nats-server it talks to.
struct UnderTest {
    dynamic: Arc<dyn EventStore>,
    sled: Option<Arc<SledStore>>,
    nats: Option<jetstream::Server>,
}

impl UnderTest {
    fn open(
        backend: Backend,
        dir: &Path,
        durability: Durability,
        nats_url: Option<&str>,
    ) -> CmdResult<UnderTest> {
        Ok(match backend {
            Backend::Memory => UnderTest {
                dynamic: Arc::new(MemoryStore::new()),
                sled: None,
                nats: None,
            },
            Backend::Jetstream => {
                let mut opts = JetStreamOptions::default();
                let (url, nats) = match nats_url {
                    Some(url) => {
                        // A stream of its own, so the run starts empty and touches nothing else.
                        let run = format!(
                            "{}_{}",
                            std::process::id(),
                            std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .map_or(0, |d| d.as_millis())
                        );
                        opts.stream = format!("AETHER_BENCH_{run}");
                        opts.subject_prefix = format!("aether_bench_{run}");
                        (url.to_owned(), None)
                    }
                    None => {
                        let server = jetstream::Server::start(dir)?;
                        (format!("nats://{}", server.addr), Some(server))
                    }
                };
                let store = JetStreamStore::connect(&url, opts)?;
                UnderTest {
                    dynamic: Arc::new(store),
                    sled: None,
                    nats,
                }
            }
            Backend::Sled => {
                let mut options = Options::with_durability(durability);
                options.cache_capacity = CACHE_CAPACITY;
                let store = Arc::new(SledStore::open_with(dir, options)?);
                UnderTest {
                    dynamic: store.clone(),
                    sled: Some(store),
                    nats: None,
                }
            }
        })
    }

    /// Close (checkpoint) a sled store and return its size on disk (for JetStream, the
    /// private server's storage).
    fn close(self, dir: &Path) -> CmdResult<Option<u64>> {
        if let Some(server) = self.nats {
            self.dynamic.close()?;
            drop(self.dynamic);
            drop(server);
            return Ok(Some(util::dir_size(dir).0));
        }
        if self.sled.is_none() {
            // Memory, or JetStream on a server of the user's: nothing of ours on disk.
            self.dynamic.close()?;
        }
        drop(self.dynamic);
        match self.sled {
            None => Ok(None),
            Some(store) => {
                let store = Arc::try_unwrap(store)
                    .map_err(|_| Failure::new("the store is still shared after the bench"))?;
                store.close()?;
                Ok(Some(util::dir_size(dir).0))
            }
        }
    }
}

fn check_args(args: &BenchArgs) -> CmdResult<()> {
    if !(args.duration > 0.0 && args.duration.is_finite()) {
        return Err(Failure::new(
            "--duration must be a positive number of seconds",
        ));
    }
    if !(0.0..100.0).contains(&args.conflict_percent) {
        return Err(Failure::new("--conflict-percent must be in 0..100"));
    }
    if args.compare && args.backend != Backend::Sled {
        return Err(Failure::new(
            "--compare measures the sled backend against its peers; drop --backend (JetStream's own peers: cargo run --release -p aether-jetstream --example figures)",
        ));
    }
    if args.nats_url.is_some() && args.backend != Backend::Jetstream {
        return Err(Failure::new("--nats-url goes with --backend jetstream"));
    }
    if let Some(path) = &args.path {
        let occupied = std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some());
        if occupied {
            return Err(Failure(format!(
                "{} is not empty; --path wants a new or empty folder (the bench starts from an empty store)",
                path.display()
            )));
        }
    }
    Ok(())
}

pub fn run(args: BenchArgs) -> CmdResult<ExitCode> {
    if let Some(role) = args.scale_child {
        return scale::child(&args, role);
    }
    check_args(&args)?;
    if args.scale {
        return scale::run(&args);
    }
    let cap = Duration::from_secs_f64(args.duration);
    let durability = Durability::from(args.durability);
    let writers = args.writers as usize;

    // Scratch space for the extra runs and the peers: on the store's file system.
    let (scratch, store_dir) = match &args.path {
        Some(path) => {
            std::fs::create_dir_all(path).map_err(util::io_failure(path.display()))?;
            let parent = path
                .canonicalize()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from("."));
            let scratch = tempfile::Builder::new()
                .prefix("aether-bench-")
                .tempdir_in(parent)
                .map_err(util::io_failure("creating a scratch folder"))?;
            (scratch, path.clone())
        }
        None => {
            let scratch = tempfile::Builder::new()
                .prefix("aether-bench-")
                .tempdir()
                .map_err(util::io_failure("creating a temporary folder"))?;
            let dir = scratch.path().join("store");
            (scratch, dir)
        }
    };

    let generation_started = Instant::now();
    let work = Workload::generate(Shape {
        actors: args.actors,
        events: args.events,
        payload_size: args.payload_size as usize,
        conflict_rate: args.conflict_percent / 100.0,
        batch_size: args.batch_size as usize,
        batch_events: args.batch_events.unwrap_or(args.events / 2).max(1),
        lookups: args.lookups,
        seed: args.seed,
    });
    let generation = generation_started.elapsed();
    let conflicts = work.ops.iter().filter(|op| op.conflict).count() as u64;

    let backend_name = match args.backend {
        Backend::Sled => "sled",
        Backend::Memory => "memory",
        Backend::Jetstream => "jetstream",
    };
    println!(
        "aether bench: {backend_name}{} store, {} actors, {} events of ~{} bytes ({} deliberate conflicts), {} writer{}, batches of {}",
        match args.backend {
            Backend::Sled => format!(" ({})", durability.as_str()),
            Backend::Memory => String::new(),
            Backend::Jetstream => match &args.nats_url {
                Some(url) => format!(" (at {url})"),
                None => " (a private nats-server on 127.0.0.1)".to_owned(),
            },
        },
        util::thousands(args.actors),
        util::thousands(args.events),
        work.mean_event_len.round(),
        util::thousands(conflicts),
        writers,
        if writers == 1 { "" } else { "s" },
        args.batch_size,
    );
    println!(
        "  store: {}; workload generated in {:.2} s before timing; each phase capped at {} s",
        store_dir.display(),
        generation.as_secs_f64(),
        args.duration
    );

    // The main run: every operation on one store.
    let store = UnderTest::open(
        args.backend,
        &store_dir,
        durability,
        args.nats_url.as_deref(),
    )?;
    let mut save = ours::save_phase(
        &store.dynamic,
        &work,
        writers,
        cap,
        args.event_stored_consumer,
        "bench: interleaved saves",
    );
    save.saves.name = match args.backend {
        Backend::Sled => format!(
            "save_event {} ({})",
            durability.as_str(),
            writers_label(writers)
        ),
        Backend::Memory | Backend::Jetstream => {
            format!("save_event ({})", writers_label(writers))
        }
    };
    let (batch, batch_failures, batch_failure) = ours::batch_phase(&store.dynamic, &work, cap);
    let (replay, replay_mismatches) =
        ours::replay_phase(&store.dynamic, &work, &save.latest, false);
    let (replay_raw, raw_mismatches) =
        ours::replay_phase(&store.dynamic, &work, &save.latest, true);
    let (latest, wrong_latest) = ours::latest_phase(&store.dynamic, &work, &save.latest);
    let (read_all, read_all_failure) = ours::read_all_phase(&store.dynamic);
    let size_on_disk = store.close(&store_dir)?;

    let operations = vec![
        save.saves.clone(),
        save.conflicts.clone(),
        save.event_stored.clone(),
        batch.clone(),
        replay.clone(),
        replay_raw.clone(),
        latest.clone(),
        read_all.clone(),
    ];
    println!();
    report::print_table("Operations", &operations);
    println!();
    match size_on_disk {
        Some(bytes) if args.backend == Backend::Jetstream => println!(
            "  size on disk: {} for {} events (the private nats-server's storage)",
            util::bytes(bytes),
            util::thousands(save.saves.events + batch.events),
        ),
        Some(bytes) => println!(
            "  size on disk: {} for {} events ({:.0} bytes per event; log {}, index (sled) {})",
            util::bytes(bytes),
            util::thousands(save.saves.events + batch.events),
            bytes as f64 / (save.saves.events + batch.events).max(1) as f64,
            util::bytes(util::dir_size(&store_dir.join("log")).0),
            util::bytes(util::dir_size(&store_dir.join("sled")).0),
        ),
        None if args.backend == Backend::Jetstream => {
            println!("  size on disk: on the server (not measured)")
        }
        None => println!("  size on disk: none (memory backend)"),
    }
    let expected_notes = save.saves.calls;
    println!(
        "  EventStored: {} of {} drained by a concurrent {} consumer, {} dropped; delivery delay runs from the save's commit timestamp{}",
        util::thousands(save.event_stored.calls),
        util::thousands(expected_notes),
        match args.event_stored_consumer {
            ours::Consumer::Polling => "polling",
            ours::Consumer::Blocking => "blocking",
        },
        util::thousands(save.event_stored_dropped),
        match args.event_stored_consumer {
            ours::Consumer::Polling => format!(
                " (the consumer drains every {} ms)",
                ours::POLL_TICK.as_millis()
            ),
            ours::Consumer::Blocking => String::new(),
        }
    );
    if save.capped {
        println!(
            "  note: the save phase hit the {} s cap after {} events",
            args.duration,
            util::thousands(save.saves.calls)
        );
    }

    let mut checks = ChecksJson {
        unexpected_save_outcomes: save.unexpected,
        first_unexpected: save.first_unexpected.clone(),
        batch_failures,
        replay_mismatches: replay_mismatches + raw_mismatches,
        wrong_latest_versions: wrong_latest,
        read_all_failure: read_all_failure.clone(),
        event_stored_received: save.event_stored.calls,
        event_stored_expected: expected_notes,
        event_stored_dropped: save.event_stored_dropped,
        save_phase_capped: save.capped,
    };
    let mut failures = Vec::new();
    if save.unexpected > 0 {
        failures.push(format!(
            "{} saves had an unexpected outcome, first: {}",
            save.unexpected,
            save.first_unexpected.as_deref().unwrap_or("?")
        ));
    }
    if batch_failures > 0 {
        failures.push(format!(
            "{batch_failures} batches failed, first: {}",
            batch_failure.as_deref().unwrap_or("?")
        ));
    }
    if checks.replay_mismatches > 0 {
        failures.push(format!(
            "{} replays returned the wrong events",
            checks.replay_mismatches
        ));
    }
    if wrong_latest > 0 {
        failures.push(format!("{wrong_latest} latest-version lookups were wrong"));
    }
    if let Some(f) = &read_all_failure {
        failures.push(format!("read_all failed: {f}"));
    }
    if save.event_stored.calls + save.event_stored_dropped < expected_notes {
        failures.push(format!(
            "EventStored: {} notifications neither delivered nor counted as dropped",
            expected_notes - save.event_stored.calls - save.event_stored_dropped
        ));
    }
    checks.event_stored_received = save.event_stored.calls;

    let compare = if args.compare {
        Some(compare(
            &args,
            &work,
            scratch.path(),
            cap,
            durability,
            &latest,
        )?)
    } else {
        None
    };

    if let Some(file) = &args.json {
        let out = BenchJson {
            aether_version: aether_core::VERSION,
            config: ConfigJson {
                backend: backend_name,
                durability: (args.backend == Backend::Sled).then(|| durability.as_str()),
                actors: args.actors,
                events: args.events,
                payload_size: args.payload_size,
                writers: args.writers,
                batch_size: args.batch_size,
                conflict_percent: args.conflict_percent,
                duration_cap_s: args.duration,
                seed: args.seed,
                path: store_dir.display().to_string(),
            },
            workload: WorkloadJson {
                save_calls: work.ops.len() as u64,
                deliberate_conflicts: conflicts,
                mean_event_bytes: work.mean_event_len,
                batches: work.batches.len() as u64,
                lookups: work.lookups.len() as u64,
                generation_s: generation.as_secs_f64(),
            },
            operations: operations.iter().map(OpStats::to_json).collect(),
            size_on_disk_bytes: size_on_disk,
            checks,
            compare,
        };
        let text = serde_json::to_string_pretty(&out).expect("bench results serialize");
        std::fs::write(file, text + "\n").map_err(util::io_failure(file.display()))?;
        println!("\n  every figure written to {}", file.display());
    }
    if args.path.is_some() {
        println!("  the store is kept at {}", store_dir.display());
    }
    drop(scratch);

    if failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for f in &failures {
            eprintln!("aether: bench check failed: {f}");
        }
        Ok(ExitCode::from(EXIT_PROBLEMS))
    }
}

fn writers_label(writers: usize) -> String {
    if writers == 1 {
        "1 writer".to_owned()
    } else {
        format!("{writers} writers")
    }
}

/// A fresh sled store of ours in `scratch/name`.
fn fresh_store(
    scratch: &Path,
    name: &str,
    durability: Durability,
) -> CmdResult<(PathBuf, UnderTest)> {
    let dir = scratch.join(name);
    let store = UnderTest::open(Backend::Sled, &dir, durability, None)?;
    Ok((dir, store))
}

/// Finish a comparison save runner, failing if the store misbehaved.
fn finish_saves(
    runner: ours::SaveRunner<'_>,
    durability: Durability,
    writers: usize,
) -> CmdResult<ours::SavePhase> {
    let name = format!(
        "save_event {} ({})",
        durability.as_str(),
        writers_label(writers)
    );
    let phase = runner.finish(name);
    if phase.unexpected > 0 {
        return Err(Failure(format!(
            "{}: {} unexpected outcomes, first: {}",
            phase.saves.name,
            phase.unexpected,
            phase.first_unexpected.as_deref().unwrap_or_default()
        )));
    }
    Ok(phase)
}

/// The comparison: each group of contenders runs in alternating slices on fresh stores and
/// databases, then every ratio is printed beside its target.
fn compare(
    args: &BenchArgs,
    work: &Workload,
    scratch: &Path,
    cap: Duration,
    durability: Durability,
    latest: &OpStats,
) -> CmdResult<CompareJson> {
    use peers::{
        alternate, DiskAppend, Entry, OurBatches, OurReadAll, OurReplay, OurSaves, RawInsert,
        RawScan, Round, SerdeParse, SqliteBatches, SqliteSaves, SqliteScan,
    };
    let consumer = args.event_stored_consumer;
    let sqlite_dir = scratch.join("sqlite");
    std::fs::create_dir_all(&sqlite_dir).map_err(util::io_failure(sqlite_dir.display()))?;

    // 1. Buffered saves: ours, raw sled, SQLite NORMAL.
    let (buffered_dir, buffered_store) = fresh_store(scratch, "buffered-1", Durability::Buffered)?;
    let mut ours_buffered = OurSaves {
        runner: ours::SaveRunner::new(buffered_store.dynamic.clone(), work, 1, consumer),
    };
    let raw_dir = scratch.join("raw-sled");
    let raw_tree = peers::raw_sled_open(&raw_dir, CACHE_CAPACITY)?;
    let mut raw_insert = RawInsert::new(raw_tree.clone(), peers::records(work));
    let normal_db = sqlite_dir.join("normal.db");
    let mut sqlite_normal = SqliteSaves::new(&normal_db, work, "NORMAL")?;
    // JetStream, when a server binary is there: a buffered peer (nats-server syncs its
    // files every 2 minutes by default), so it joins this group.
    let mut nats: Option<(jetstream::Server, jetstream::JetStreamSaves)> = None;
    let mut jetstream_note = String::from("JetStream: skipped (nats-server not on PATH)");
    if on_path("nats-server") {
        let started = jetstream::Server::start(&scratch.join("nats")).and_then(|server| {
            let saves = jetstream::JetStreamSaves::new(&server, work)?;
            Ok((server, saves))
        });
        match started {
            Ok(pair) => nats = Some(pair),
            Err(e) => jetstream_note = format!("JetStream: skipped ({e})"),
        }
    }
    let (busy, rounds1) = {
        let mut entries = vec![
            Entry::new(&mut ours_buffered, cap),
            Entry::new(&mut raw_insert, cap),
            Entry::new(&mut sqlite_normal, cap),
        ];
        if let Some((_, saves)) = nats.as_mut() {
            entries.push(Entry::new(saves, cap));
        }
        alternate(
            "compare: buffered saves",
            &mut entries,
            Duration::from_millis(100),
        )?;
        peers::outcome(&entries)
    };
    let jetstream_stats = match nats.take() {
        Some((server, saves)) => {
            let stats = saves.stats(busy[3]);
            match &saves.unexpected {
                Some(what) => {
                    jetstream_note = format!("JetStream: a publish went wrong: {what}");
                    None
                }
                None => Some((stats, server)),
            }
        }
        None => None,
    };
    // Stop the server now: it must not run during the other groups.
    let jetstream_stats = jetstream_stats.map(|(stats, server)| {
        drop(server);
        stats
    });
    let _ = std::fs::remove_dir_all(scratch.join("nats"));
    let buffered = finish_saves(ours_buffered.runner, Durability::Buffered, 1)?;
    let raw_insert_stats = raw_insert.stats(busy[1]);
    drop(raw_insert);
    let sqlite_normal_stats = sqlite_normal.stats(busy[2]);
    drop(sqlite_normal);
    let sqlite_size = peers::sqlite_size(&normal_db);

    // 2. Durable saves: ours with 1 and 8 writers, the disk's floor, SQLite FULL.
    let (d1_dir, d1_store) = fresh_store(scratch, "durable-1", Durability::Durable)?;
    let (d8_dir, d8_store) = fresh_store(scratch, "durable-8", Durability::Durable)?;
    let mut ours_d1 = OurSaves {
        runner: ours::SaveRunner::new(d1_store.dynamic.clone(), work, 1, consumer),
    };
    let mut ours_d8 = OurSaves {
        runner: ours::SaveRunner::new(d8_store.dynamic.clone(), work, 8, consumer),
    };
    let mut disk = DiskAppend::new(&scratch.join("disk"))?;
    let mut sqlite_full = SqliteSaves::new(&sqlite_dir.join("full.db"), work, "FULL")?;
    let (busy, rounds2) = {
        let mut entries = [
            Entry::new(&mut ours_d1, cap),
            Entry::new(&mut ours_d8, cap),
            // The floor needs no more than a few seconds to be steady.
            Entry::new(&mut disk, cap.min(Duration::from_secs(3))),
            Entry::new(&mut sqlite_full, cap),
        ];
        alternate(
            "compare: durable saves",
            &mut entries,
            Duration::from_millis(250),
        )?;
        peers::outcome(&entries)
    };
    let durable1 = finish_saves(ours_d1.runner, Durability::Durable, 1)?;
    let durable8 = finish_saves(ours_d8.runner, Durability::Durable, 8)?;
    // Group commit, measured: saves made durable per fdatasync in each durable run.
    let per_sync = |store: &UnderTest| {
        let m = store.dynamic.metrics();
        (m.synced_commits, m.syncs)
    };
    let (d1_sync, d8_sync) = (per_sync(&d1_store), per_sync(&d8_store));
    let disk_stats = disk.stats(busy[2]);
    drop(disk);
    let sqlite_full_stats = sqlite_full.stats(busy[3]);
    drop(sqlite_full);
    d1_store.close(&d1_dir)?;
    d8_store.close(&d8_dir)?;
    let _ = std::fs::remove_dir_all(&d1_dir);
    let _ = std::fs::remove_dir_all(&d8_dir);
    let _ = std::fs::remove_dir_all(scratch.join("disk"));

    // 3. Batches, in the run's durability.
    let (batch_dir, batch_store) = fresh_store(scratch, "batches", durability)?;
    let mut ours_batches = OurBatches::new(batch_store.dynamic.clone(), work);
    let sync = match durability {
        Durability::Durable => "FULL",
        Durability::Buffered => "NORMAL",
    };
    let mut sqlite_batches = SqliteBatches::new(&sqlite_dir.join("batches.db"), work, sync)?;
    let (busy, rounds3) = {
        let mut entries = [
            Entry::new(&mut ours_batches, cap),
            Entry::new(&mut sqlite_batches, cap),
        ];
        alternate("compare: batches", &mut entries, Duration::from_millis(100))?;
        peers::outcome(&entries)
    };
    if let Some(f) = &ours_batches.failure {
        return Err(Failure(format!("compare: a batch failed: {f}")));
    }
    let batch_stats = ours_batches.stats(
        &format!(
            "save_events {} (batch of {})",
            durability.as_str(),
            args.batch_size
        ),
        busy[0],
    );
    let sqlite_batch_stats = sqlite_batches.stats(busy[1]);
    drop((ours_batches, sqlite_batches));
    batch_store.close(&batch_dir)?;
    let _ = std::fs::remove_dir_all(&batch_dir);

    // 4. Replay from the buffered store of step 1 (reads do not depend on durability).
    let mut replay = OurReplay::new(
        buffered_store.dynamic.clone(),
        work,
        &buffered.latest,
        false,
    );
    let mut parse = SerdeParse::new(work, &buffered.latest);
    let (busy, rounds4) = {
        let mut entries = [Entry::new(&mut replay, cap), Entry::new(&mut parse, cap)];
        alternate(
            "compare: replay decoded",
            &mut entries,
            Duration::from_millis(50),
        )?;
        peers::outcome(&entries)
    };
    let replay_stats = replay.stats(busy[0]);
    let parse_stats = parse.stats(busy[1]);
    let mut replay_raw =
        OurReplay::new(buffered_store.dynamic.clone(), work, &buffered.latest, true);
    let mut raw_scan = RawScan::new(raw_tree.clone(), work);
    let (busy, rounds5) = {
        let mut entries = [
            Entry::new(&mut replay_raw, cap),
            Entry::new(&mut raw_scan, cap),
        ];
        alternate(
            "compare: replay raw",
            &mut entries,
            Duration::from_millis(50),
        )?;
        peers::outcome(&entries)
    };
    let replay_raw_stats = replay_raw.stats(busy[0]);
    let raw_scan_stats = raw_scan.stats(busy[1]);
    drop((replay, replay_raw, raw_scan, raw_tree));

    // 5. read_all over the buffered store against SQLite's ordered scan of the same rows:
    // one writer stored the workload's successful saves in order up to each actor's latest.
    let stored_rows: Vec<&[u8]> = work
        .ops
        .iter()
        .filter(|op| !op.conflict && op.event.version <= buffered.latest[op.actor as usize])
        .map(|op| op.json.as_slice())
        .collect();
    let payload_bytes: u64 = stored_rows.iter().map(|j| j.len() as u64).sum();
    let our_sled = buffered_store
        .sled
        .clone()
        .ok_or_else(|| Failure::new("the comparison's store is not a sled store"))?;
    let mut read_all = OurReadAll::new(our_sled.clone(), stored_rows.len() as u64);
    let mut sqlite_scan =
        SqliteScan::new(&sqlite_dir.join("scan.db"), stored_rows.iter().copied())?;
    // Both sides hand back the same bytes.
    let (first_page, _) = our_sled.read_all_json(1, peers::READ_ALL_PAGE)?;
    sqlite_scan.page(1)?;
    if first_page != sqlite_scan.last_page() {
        return Err(Failure::new(
            "compare: read_all_json and the SQLite scan of the same rows differ",
        ));
    }
    let (busy, rounds6) = {
        let mut entries = [
            Entry::new(&mut read_all, cap),
            Entry::new(&mut sqlite_scan, cap),
        ];
        alternate("compare: read_all", &mut entries, Duration::from_millis(50))?;
        peers::outcome(&entries)
    };
    let read_all_stats = read_all.stats(busy[0]);
    let sqlite_scan_stats = sqlite_scan.stats(busy[1]);
    drop((read_all, sqlite_scan));

    // 6. Disk per event: every byte in the store's directory (the log with the zero fill
    // ahead of its writer, and the index) after a flush, over the JSON it holds.
    our_sled.flush()?;
    let our_disk = our_sled.disk_bytes();
    drop(our_sled);
    let stored_events = stored_rows.len() as u64;
    drop(stored_rows);
    let our_size = buffered_store.close(&buffered_dir)?.unwrap_or(0);
    let raw_size = util::dir_size(&raw_dir).0;
    let encode = peers::json_encode(work);
    let _ = std::fs::remove_dir_all(&sqlite_dir);

    let ours_ops = vec![
        buffered.saves.clone(),
        durable1.saves.clone(),
        durable8.saves.clone(),
        batch_stats.clone(),
        replay_stats.clone(),
        replay_raw_stats.clone(),
        read_all_stats.clone(),
    ];
    let peer_ops = vec![
        raw_insert_stats.clone(),
        sqlite_normal_stats.clone(),
        disk_stats.clone(),
        sqlite_full_stats.clone(),
        sqlite_batch_stats.clone(),
        parse_stats.clone(),
        raw_scan_stats.clone(),
        sqlite_scan_stats.clone(),
        encode,
    ];
    let peer_ops: Vec<OpStats> = peer_ops
        .into_iter()
        .chain(jetstream_stats.clone())
        .collect();
    println!();
    report::print_table(
        "Comparison: ours on fresh stores, alternating time slices with the peers",
        &ours_ops,
    );
    println!();
    report::print_table("Peers (same workload, same run)", &peer_ops);

    let batch_label = format!("batch of {} ({})", args.batch_size, durability.as_str());
    // Each ratio is over the rounds in which both sides ran (see `overlapping_rates`).
    let vs = |name: &str, ours: (&OpStats, &[Round]), peer: (&OpStats, &[Round]), min: f64| {
        let (o, p) = peers::overlapping_rates(ours.1, peer.1);
        Comparison::at_least(name, ours.0, o, peer.0, p, min)
    };
    let rows = vec![
        vs(
            "buffered save vs raw sled insert",
            (&buffered.saves, &rounds1[0]),
            (&raw_insert_stats, &rounds1[1]),
            1.2,
        ),
        vs(
            "buffered save vs SQLite NORMAL",
            (&buffered.saves, &rounds1[0]),
            (&sqlite_normal_stats, &rounds1[2]),
            3.0,
        ),
        vs(
            "durable save, 1 writer vs disk append+fdatasync",
            (&durable1.saves, &rounds2[0]),
            (&disk_stats, &rounds2[2]),
            1.0,
        ),
        vs(
            "durable save, 1 writer vs SQLite FULL",
            (&durable1.saves, &rounds2[0]),
            (&sqlite_full_stats, &rounds2[3]),
            1.2,
        ),
        vs(
            "durable save, 8 writers vs 1 writer",
            (&durable8.saves, &rounds2[1]),
            (&durable1.saves, &rounds2[0]),
            4.0,
        ),
        vs(
            &format!(
                "{batch_label} vs SQLite {}-row transactions",
                args.batch_size
            ),
            (&batch_stats, &rounds3[0]),
            (&sqlite_batch_stats, &rounds3[1]),
            2.0,
        ),
        vs(
            "read_all raw JSON vs SQLite ORDER BY seq scan",
            (&read_all_stats, &rounds6[0]),
            (&sqlite_scan_stats, &rounds6[1]),
            2.0,
        ),
        Comparison::at_least_rate(
            "read_all raw JSON, events/s",
            &read_all_stats,
            peers::overlapping_rates(&rounds6[0], &rounds6[1]).0,
            5e6,
        ),
        vs(
            "replay decoded vs serde_json parse",
            (&replay_stats, &rounds4[0]),
            (&parse_stats, &rounds4[1]),
            0.8,
        ),
        vs(
            "replay raw vs raw sled range scan",
            (&replay_raw_stats, &rounds5[0]),
            (&raw_scan_stats, &rounds5[1]),
            1.0,
        ),
        Comparison::at_most_bytes(
            "disk bytes per event vs payload bytes",
            "aether (sled, buffered): disk_bytes() after flush",
            our_disk as f64 / stored_events.max(1) as f64,
            "event JSON",
            payload_bytes as f64 / stored_events.max(1) as f64,
            1.5,
        ),
        Comparison::at_most_ns("latest version p50", latest, 0.50, 2_000),
        Comparison::at_most_ns("latest version p99", latest, 0.99, 10_000),
    ];
    println!();
    println!(
        "Ratios: ours / peer in events per second over the rounds both ran; latencies absolute"
    );
    report::print_comparisons(&rows);
    let met = rows.iter().filter(|r| r.met).count();
    println!("  {met} of {} targets met", rows.len());
    let jetstream = match &jetstream_stats {
        Some(js) => {
            let (o, p) = peers::overlapping_rates(&rounds1[0], &rounds1[3]);
            format!(
                "JetStream: publish with Nats-Expected-Last-Subject-Sequence, ack awaited: {} events/s; our buffered save is {:.2}× that (no target; JetStream's file store syncs every 2 min by default)",
                util::rate(js.events_per_sec()),
                o / p.max(f64::MIN_POSITIVE)
            )
        }
        None => jetstream_note,
    };
    let sync_line = |(commits, syncs): (u64, u64)| {
        format!(
            "{:.2} ({} saves over {} fdatasyncs)",
            commits as f64 / syncs.max(1) as f64,
            util::thousands(commits),
            util::thousands(syncs)
        )
    };
    println!(
        "  saves per fdatasync (Metrics synced_commits / syncs): 1 writer {}; 8 writers {}",
        sync_line(d1_sync),
        sync_line(d8_sync)
    );
    println!("  {jetstream}");
    println!(
        "  note: the disk floor appends to a growing file; the segment log writes over space zero-filled and synced ahead of it, so a durable save can beat it"
    );
    println!(
        "  disk per event: {} bytes on disk (disk_bytes(), zero fill ahead of the writer included) for {} events of {:.0} JSON bytes on average",
        util::thousands(our_disk),
        util::thousands(stored_events),
        payload_bytes as f64 / stored_events.max(1) as f64
    );
    let sizes = vec![
        ("aether (sled, buffered)".to_owned(), our_size),
        ("raw sled".to_owned(), raw_size),
        ("SQLite (NORMAL)".to_owned(), sqlite_size),
    ];
    println!(
        "  size on disk after the buffered saves: {}",
        sizes
            .iter()
            .map(|(name, b)| format!("{name} {}", util::bytes(*b)))
            .collect::<Vec<_>>()
            .join(", ")
    );

    Ok(CompareJson {
        runs: ours_ops.iter().map(OpStats::to_json).collect(),
        peers: peer_ops.iter().map(OpStats::to_json).collect(),
        comparisons: rows,
        size_on_disk: sizes
            .into_iter()
            .map(|(store, bytes)| SizeJson { store, bytes })
            .collect(),
        jetstream,
    })
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
