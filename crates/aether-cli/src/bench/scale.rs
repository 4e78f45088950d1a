//! `aether bench --scale`: a store of a million events (by default), and what it costs to
//! keep and to open: disk bytes per event, open time after a clean close, open time after
//! a crash as the unindexed tail grows, and the open store's resident memory.
//!
//! Opening and memory are measured in child processes (this binary, re-run with the
//! hidden `--scale-child`), so the parent's heap from building the store is not counted
//! and a crash is a real SIGKILL: a child opens the store with a checkpoint interval
//! longer than the run (so the index's high-water mark stays where it was), saves the
//! tail, says so, and is killed; a fresh child then opens the store and reports.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use aether_core::{Durability, Event, EventStore, Options, SledStore};
use serde::{Deserialize, Serialize};

use super::workload::EventMaker;
use super::BenchArgs;
use crate::util::{self, CmdResult, Failure, Progress};

/// Events saved per timed stretch while building (generated untimed between stretches).
const CHUNK: usize = 10_000;
/// Unindexed tails the crash probes leave behind, in events (one save each).
const TAILS: [u64; 3] = [0, 10_000, 100_000];
/// The small sled cache of the memory probe: what the store holds beyond it is its own.
const SMALL_CACHE: u64 = 8 << 20;
/// What a child prints before its report, so the parent can find it among other output.
const REPORT_TAG: &str = "aether-scale-probe ";

/// What a child does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChildRole {
    /// Open the store, measure open time and memory, read everything, close.
    Probe,
    /// Open with a long checkpoint interval, save `--scale-tail` events, report, wait to
    /// be killed.
    Tail,
}

/// A probe's findings.
#[derive(Debug, Serialize, Deserialize)]
struct ProbeReport {
    open_s: f64,
    records_indexed: u64,
    report_lines: Vec<String>,
    cache_capacity: u64,
    /// kB from /proc/self/status: before opening, after opening, after reading everything.
    rss_kb: [u64; 3],
    anon_kb: [u64; 3],
    file_kb: [u64; 3],
    events: u64,
    read_all_s: f64,
    disk_bytes: u64,
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(field)
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

fn memory_kb() -> (u64, u64, u64) {
    (
        status_kb("VmRSS:"),
        status_kb("RssAnon:"),
        status_kb("RssFile:"),
    )
}

fn options(cache_capacity: u64) -> Options {
    let mut o = Options::with_durability(Durability::Buffered);
    o.cache_capacity = cache_capacity;
    o
}

/// Run in the child: `--scale-child probe|tail --path DIR`.
pub fn child(args: &BenchArgs, role: ChildRole) -> CmdResult<ExitCode> {
    let dir = args
        .path
        .clone()
        .ok_or_else(|| Failure::new("--scale-child needs --path"))?;
    let cache = args.scale_cache.unwrap_or(super::CACHE_CAPACITY);
    match role {
        ChildRole::Probe => {
            let before = memory_kb();
            let t0 = Instant::now();
            let store = SledStore::open_with(&dir, options(cache))?;
            let open_s = t0.elapsed().as_secs_f64();
            let opened = memory_kb();
            // Touch what a running service would: every actor's latest version, and the
            // whole log once through read_all.
            for a in 0..args.actors {
                store.get_latest_version(&format!("order-{a:06}"))?;
            }
            let t1 = Instant::now();
            let (mut from, mut events) = (1u64, 0u64);
            loop {
                let (json, last) = store.read_all_json(from, 10_000)?;
                std::hint::black_box(json);
                if last < from {
                    break;
                }
                events += last + 1 - from;
                from = last + 1;
            }
            let read_all_s = t1.elapsed().as_secs_f64();
            let touched = memory_kb();
            let report = ProbeReport {
                open_s,
                records_indexed: store.open_report().records_indexed,
                report_lines: store.open_report().lines(),
                cache_capacity: cache,
                rss_kb: [before.0, opened.0, touched.0],
                anon_kb: [before.1, opened.1, touched.1],
                file_kb: [before.2, opened.2, touched.2],
                events,
                read_all_s,
                disk_bytes: store.disk_bytes(),
            };
            store.close()?;
            println!(
                "{REPORT_TAG}{}",
                serde_json::to_string(&report).expect("report serializes")
            );
        }
        ChildRole::Tail => {
            let mut o = options(cache);
            // Longer than the run: the high-water mark stays put, the tail unindexed.
            o.checkpoint_interval = Duration::from_secs(24 * 3600);
            let store = SledStore::open_with(&dir, o)?;
            let actors: Vec<String> = (0..args.actors).map(|a| format!("order-{a:06}")).collect();
            let mut latest = actors
                .iter()
                .map(|a| store.get_latest_version(a))
                .collect::<Result<Vec<i64>, _>>()?;
            let mut maker = EventMaker::new(args.seed ^ 0x7A11, args.payload_size as usize);
            for i in 0..args.scale_tail {
                let a = (i % actors.len() as u64) as usize;
                latest[a] += 1;
                store.save_event(&maker.event(&actors[a], latest[a]))?;
            }
            // Buffered saves are in the log file once they return: a kill loses none.
            println!("{REPORT_TAG}ready");
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn child_command(dir: &Path, args: &BenchArgs, role: &str) -> CmdResult<Command> {
    let exe = std::env::current_exe().map_err(util::io_failure("finding this program"))?;
    let mut cmd = Command::new(exe);
    cmd.args(["bench", "--scale-child", role, "--path"])
        .arg(dir)
        .args(["--actors", &args.actors.to_string()])
        .args(["--payload-size", &args.payload_size.to_string()])
        .args(["--seed", &args.seed.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    Ok(cmd)
}

/// Run a probe child and return its report.
fn probe(dir: &Path, args: &BenchArgs, cache: u64) -> CmdResult<ProbeReport> {
    let out = child_command(dir, args, "probe")?
        .args(["--scale-cache", &cache.to_string()])
        .output()
        .map_err(util::io_failure("running the probe"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(REPORT_TAG))
        .ok_or_else(|| Failure(format!("the probe reported nothing ({})", out.status)))?;
    serde_json::from_str(line).map_err(|e| Failure(format!("the probe's report: {e}")))
}

/// Run a tail child until it has saved `tail` events, then SIGKILL it.
fn crash_with_tail(dir: &Path, args: &BenchArgs, tail: u64) -> CmdResult<Duration> {
    let mut child = child_command(dir, args, "tail")?
        .args(["--scale-tail", &tail.to_string()])
        .spawn()
        .map_err(util::io_failure("running the tail writer"))?;
    let t0 = Instant::now();
    let stdout = child.stdout.take().expect("piped stdout");
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.starts_with(REPORT_TAG));
    let took = t0.elapsed();
    // `kill` is SIGKILL: no destructor, no checkpoint, no clean-close mark.
    let _ = child.kill();
    let _ = child.wait();
    if !ready {
        return Err(Failure::new(
            "the tail writer stopped before saving its tail",
        ));
    }
    Ok(took)
}

fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

fn print_probe(label: &str, p: &ProbeReport) {
    let grow = |v: &[u64; 3], i: usize| v[i].saturating_sub(v[0]);
    println!(
        "  {label}: open {:.3} s{}; RSS +{} after open, +{} after reading everything (anonymous +{}, file-mapped +{}); read_all of {} events in {:.2} s ({} events/s); sled cache {}",
        p.open_s,
        if p.records_indexed > 0 {
            format!(", {} records indexed from the log", util::thousands(p.records_indexed))
        } else {
            String::new()
        },
        mib(grow(&p.rss_kb, 1)),
        mib(grow(&p.rss_kb, 2)),
        mib(grow(&p.anon_kb, 2)),
        mib(grow(&p.file_kb, 2)),
        util::thousands(p.events),
        p.read_all_s,
        util::rate(p.events as f64 / p.read_all_s.max(1e-9)),
        util::bytes(p.cache_capacity),
    );
    for line in &p.report_lines {
        println!("      open report: {line}");
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

pub fn run(args: &BenchArgs) -> CmdResult<ExitCode> {
    let started = Instant::now();
    let events = args.scale_events;
    let (_scratch, dir): (Option<tempfile::TempDir>, PathBuf) = match &args.path {
        Some(p) => (None, p.clone()),
        None => {
            let t = tempfile::Builder::new()
                .prefix("aether-scale-")
                .tempdir()
                .map_err(util::io_failure("creating a temporary folder"))?;
            let dir = t.path().join("store");
            (Some(t), dir)
        }
    };
    println!(
        "aether bench --scale: {} events over {} actors (~{} bytes each, buffered saves), store {}",
        util::thousands(events),
        util::thousands(args.actors),
        args.payload_size,
        dir.display()
    );

    // 1. Build.
    let store = SledStore::open_with(&dir, options(super::CACHE_CAPACITY))?;
    let actors: Vec<String> = (0..args.actors).map(|a| format!("order-{a:06}")).collect();
    let mut maker = EventMaker::new(args.seed, args.payload_size as usize);
    let mut progress = Progress::new("scale: saving", events, false);
    let (mut saving, mut payload, mut done) = (Duration::ZERO, 0u64, 0u64);
    let mut chunk: Vec<Event> = Vec::with_capacity(CHUNK);
    while done < events {
        chunk.clear();
        for i in done..(done + CHUNK as u64).min(events) {
            let a = (i % actors.len() as u64) as usize;
            let version = (i / actors.len() as u64) as i64 + 1;
            let event = maker.event(&actors[a], version);
            payload += event.to_json().len() as u64;
            chunk.push(event);
        }
        let t0 = Instant::now();
        for event in &chunk {
            store.save_event(event)?;
        }
        saving += t0.elapsed();
        done += chunk.len() as u64;
        progress.set(done);
    }
    progress.finish();
    store.flush()?;
    let disk_flushed = store.disk_bytes();
    store.close()?;
    drop(store);
    let disk_closed = util::dir_size(&dir).0;
    let per_event = payload as f64 / events.max(1) as f64;
    let ratio = disk_flushed as f64 / payload.max(1) as f64;
    println!(
        "  built: {} saves in {:.1} s of saving ({} saves/s), {:.0} JSON bytes per event",
        util::thousands(events),
        saving.as_secs_f64(),
        util::rate(events as f64 / saving.as_secs_f64().max(1e-9)),
        per_event
    );
    println!(
        "  disk: {} after flush (disk_bytes(), every byte incl. zero fill ahead of the writer) = {:.0} bytes per event, {:.2}× the payload (goal ≤ 1.5×: {}); {} after close (log {}, index {})",
        util::bytes(disk_flushed),
        disk_flushed as f64 / events.max(1) as f64,
        ratio,
        verdict(ratio <= 1.5),
        util::bytes(disk_closed),
        util::bytes(util::dir_size(&dir.join("log")).0),
        util::bytes(util::dir_size(&dir.join("sled")).0),
    );

    // 2. Open after a clean close, and memory: the first probe finds a cold sled (its files
    // may still be in the page cache from building), the second a warm one; the third
    // runs with a small sled cache, so what it holds beyond that is the store's own.
    let cold = probe(&dir, args, super::CACHE_CAPACITY)?;
    print_probe("clean open #1", &cold);
    let warm = probe(&dir, args, super::CACHE_CAPACITY)?;
    print_probe("clean open #2", &warm);
    let small = probe(&dir, args, SMALL_CACHE)?;
    print_probe("clean open, 8 MiB cache", &small);
    let clean_open = cold.open_s.max(warm.open_s);
    println!(
        "  open after a clean close: {:.3} s / {:.3} s (goal ≤ 0.5 s: {})",
        cold.open_s,
        warm.open_s,
        verdict(clean_open <= 0.5)
    );
    let beyond = |p: &ProbeReport| {
        (p.anon_kb[2].saturating_sub(p.anon_kb[0]) * 1024).saturating_sub(p.cache_capacity)
    };
    println!(
        "  resident memory beyond sled's configured cache (anonymous RSS growth of the open store after reading everything, minus the cache): {} with a {} cache, {} with an {} cache (goal ≤ 64 MiB: {}); the log's mapped pages (file-backed, the page cache's) are shown apart above",
        util::bytes(beyond(&warm)),
        util::bytes(warm.cache_capacity),
        util::bytes(beyond(&small)),
        util::bytes(small.cache_capacity),
        verdict(beyond(&warm).max(beyond(&small)) <= 64 << 20)
    );

    // 3. Open after a crash, by unindexed tail.
    println!("  open after a crash (SIGKILL of a writer whose checkpoint never ran):");
    for tail in TAILS {
        let saving = crash_with_tail(&dir, args, tail)?;
        let p = probe(&dir, args, super::CACHE_CAPACITY)?;
        println!(
            "    tail of {:>7} saves (written in {:.1} s): open {:.3} s, {} records indexed from the log{}",
            util::thousands(tail),
            saving.as_secs_f64(),
            p.open_s,
            util::thousands(p.records_indexed),
            if p.report_lines.is_empty() {
                String::new()
            } else {
                format!(" ({})", p.report_lines.join("; "))
            }
        );
    }
    println!("  (finished in {:.0} s)", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}
