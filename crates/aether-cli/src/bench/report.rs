//! Figures of one measured operation, and how they are printed (a table) and written
//! (`--json`).

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::util;

/// A latency histogram in nanoseconds, 3 significant digits, up to an hour.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// Record one call's latency.
pub fn record(hist: &mut Histogram<u64>, elapsed: Duration) {
    hist.saturating_record((elapsed.as_nanos() as u64).max(1));
}

/// One measured operation.
#[derive(Debug, Clone)]
pub struct OpStats {
    pub name: String,
    /// Calls made.
    pub calls: u64,
    /// Events those calls moved (equal to `calls` for single-event operations).
    pub events: u64,
    /// Wall time of the whole phase.
    pub elapsed: Duration,
    /// Per-call latency, ns.
    pub hist: Histogram<u64>,
    /// Whether a rate makes sense (not for rejected saves, which are a share of another phase).
    pub has_rate: bool,
}

impl OpStats {
    pub fn new(name: impl Into<String>, calls: u64, events: u64, elapsed: Duration) -> OpStats {
        OpStats {
            name: name.into(),
            calls,
            events,
            elapsed,
            hist: histogram(),
            has_rate: true,
        }
    }

    pub fn calls_per_sec(&self) -> f64 {
        per_sec(self.calls, self.elapsed)
    }

    pub fn events_per_sec(&self) -> f64 {
        per_sec(self.events, self.elapsed)
    }

    pub fn quantile(&self, q: f64) -> u64 {
        if self.hist.is_empty() {
            0
        } else {
            self.hist.value_at_quantile(q)
        }
    }

    pub fn to_json(&self) -> OpJson {
        OpJson {
            name: self.name.clone(),
            calls: self.calls,
            events: self.events,
            elapsed_s: self.elapsed.as_secs_f64(),
            calls_per_s: self.has_rate.then(|| self.calls_per_sec()),
            events_per_s: self.has_rate.then(|| self.events_per_sec()),
            latency_ns: LatencyJson {
                mean: self.hist.mean(),
                p50: self.quantile(0.50),
                p99: self.quantile(0.99),
                p999: self.quantile(0.999),
                max: self.hist.max(),
            },
        }
    }
}

pub fn per_sec(n: u64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s > 0.0 {
        n as f64 / s
    } else {
        0.0
    }
}

#[derive(Debug, Serialize)]
pub struct LatencyJson {
    pub mean: f64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

#[derive(Debug, Serialize)]
pub struct OpJson {
    pub name: String,
    pub calls: u64,
    pub events: u64,
    pub elapsed_s: f64,
    pub calls_per_s: Option<f64>,
    pub events_per_s: Option<f64>,
    pub latency_ns: LatencyJson,
}

/// Print the per-operation table.
pub fn print_table(title: &str, ops: &[OpStats]) {
    let name_width = ops
        .iter()
        .map(|o| o.name.chars().count())
        .max()
        .unwrap_or(10)
        .max(9);
    println!("{title}");
    println!(
        "  {:<name_width$}  {:>9}  {:>10}  {:>10}  {:>9}  {:>9}  {:>9}",
        "operation", "calls", "calls/s", "events/s", "p50", "p99", "p99.9"
    );
    for op in ops {
        let (calls_s, events_s) = if op.has_rate {
            (
                util::rate(op.calls_per_sec()),
                util::rate(op.events_per_sec()),
            )
        } else {
            ("-".into(), "-".into())
        };
        println!(
            "  {:<name_width$}  {:>9}  {:>10}  {:>10}  {:>9}  {:>9}  {:>9}",
            op.name,
            util::thousands(op.calls),
            calls_s,
            events_s,
            util::latency(op.quantile(0.50)),
            util::latency(op.quantile(0.99)),
            util::latency(op.quantile(0.999)),
        );
    }
}

/// One line of the comparison: ours against a peer, with the target ratio.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// What is compared, e.g. "buffered save vs raw sled insert".
    pub name: String,
    /// Our operation, as named in the tables.
    pub ours_name: String,
    pub ours: f64,
    /// The peer's operation, as named in the tables (empty for absolute targets).
    pub peer_name: String,
    pub peer: f64,
    /// `events/s` for throughput ratios, `ns` for latency targets.
    pub unit: String,
    /// `ours / peer` for throughput; the latency itself for latency targets.
    pub ratio: f64,
    pub target: String,
    pub met: bool,
}

impl Comparison {
    /// A throughput ratio that must be at least `min`, from the rates `o` of `ours` and `p`
    /// of `peer` (measured over the same stretch of time).
    pub fn at_least(
        name: &str,
        ours: &OpStats,
        o: f64,
        peer: &OpStats,
        p: f64,
        min: f64,
    ) -> Comparison {
        let ratio = if p > 0.0 { o / p } else { 0.0 };
        Comparison {
            name: name.into(),
            ours_name: ours.name.clone(),
            ours: o,
            peer_name: peer.name.clone(),
            peer: p,
            unit: "events/s".into(),
            ratio,
            target: format!("≥ {min}×"),
            met: ratio >= min,
        }
    }

    /// An absolute rate of `ours` (events/s, `o`) that must be at least `min`.
    pub fn at_least_rate(name: &str, ours: &OpStats, o: f64, min: f64) -> Comparison {
        Comparison {
            name: name.into(),
            ours_name: ours.name.clone(),
            ours: o,
            peer_name: String::new(),
            peer: 0.0,
            unit: "events/s".into(),
            ratio: o,
            target: format!("≥ {}", util::rate(min)),
            met: o >= min,
        }
    }

    /// Bytes per event of ours (`o`) over the peer's (`p`), which must be at most `max`.
    pub fn at_most_bytes(
        name: &str,
        ours_name: &str,
        o: f64,
        peer_name: &str,
        p: f64,
        max: f64,
    ) -> Comparison {
        let ratio = if p > 0.0 { o / p } else { f64::INFINITY };
        Comparison {
            name: name.into(),
            ours_name: ours_name.into(),
            ours: o,
            peer_name: peer_name.into(),
            peer: p,
            unit: "bytes/event".into(),
            ratio,
            target: format!("≤ {max}×"),
            met: ratio <= max,
        }
    }

    /// A latency quantile of `ours` that must be at most `max_ns`.
    pub fn at_most_ns(name: &str, ours: &OpStats, quantile: f64, max_ns: u64) -> Comparison {
        let ns = ours.quantile(quantile);
        Comparison {
            name: name.into(),
            ours_name: ours.name.clone(),
            ours: ns as f64,
            peer_name: String::new(),
            peer: 0.0,
            unit: "ns".into(),
            ratio: ns as f64,
            target: format!("≤ {}", util::latency(max_ns)),
            met: ns <= max_ns,
        }
    }
}

/// Print the comparison table.
pub fn print_comparisons(rows: &[Comparison]) {
    let name_width = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(10);
    println!(
        "  {:<name_width$}  {:>10}  {:>10}  {:>7}  {:>9}  result",
        "comparison", "ours", "peer", "ratio", "target"
    );
    for r in rows {
        let (ours, peer, ratio) = if r.unit == "ns" {
            (util::latency(r.ours as u64), String::new(), String::new())
        } else if r.unit == "bytes/event" {
            (
                format!("{:.0} B/ev", r.ours),
                format!("{:.0} B/ev", r.peer),
                format!("{:.2}×", r.ratio),
            )
        } else if r.peer_name.is_empty() {
            (util::rate(r.ours), String::new(), String::new())
        } else {
            (
                util::rate(r.ours),
                util::rate(r.peer),
                format!("{:.2}×", r.ratio),
            )
        };
        println!(
            "  {:<name_width$}  {:>10}  {:>10}  {:>7}  {:>9}  {}",
            r.name,
            ours,
            peer,
            ratio,
            r.target,
            if r.met { "met" } else { "MISSED" }
        );
    }
}
