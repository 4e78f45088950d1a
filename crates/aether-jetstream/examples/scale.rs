//! Scale-out figures on a 3-node loopback cluster (R3 streams), servers started by this
//! program with the tests' configuration:
//!
//! - **writers**: 1, 2 and 4 writer *processes* (this program re-run as children), each
//!   with its own store handle, saving single events on actors of its own for a fixed time;
//!   the total rate, and how busy the machine's cores were meanwhile;
//! - **save**: sequential `save_event` against raw ack-awaited publishes carrying the same
//!   headers (`Nats-Msg-Id`, `Nats-Expected-Last-Subject-Sequence`) into the same stream
//!   through the store's own connection (an async loop: the target's peer), alternating
//!   in slices with two variants: the same from a second connection (which may reach
//!   another node: placement alone moves the rate), and each publish in its own
//!   `block_on` (as a blocking call like `save_event` is);
//! - **raw writers**: 1 and 4 processes making those raw publishes, no store: where the
//!   cluster on these cores tops out whoever writes;
//! - **replay**: `get_events` of one actor against a raw ordered consumer over the very
//!   same messages, alternating.
//!
//! ```sh
//! cargo run --release -p aether-jetstream --example scale      # about a minute and a half
//! ```
//!
//! `AETHER_SCALE_SECONDS` sets each writer run's length (default 5).

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aether_core::{Event, EventStore};
use aether_jetstream::JetStreamOptions;
use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::{HeaderMap, Request};
use futures_util::StreamExt;

const SAVE_SLICES: usize = 9;
const SAVES_PER_SLICE: usize = 500;
const REPLAY_EVENTS: usize = 20_000;
const REPLAY_ROUNDS: usize = 6;
const ACTORS_PER_WRITER: usize = 8;

fn opts() -> JetStreamOptions {
    let mut o = JetStreamOptions::default();
    o.replicas = 3;
    o.connect_timeout = Duration::from_secs(10);
    o.request_timeout = Duration::from_secs(10);
    o
}

/// One raw publish carrying the headers a save carries, awaiting the acknowledgement;
/// returns the stream sequence it was stored at.
async fn raw_publish(
    client: &async_nats::Client,
    subject: &str,
    id: &str,
    last: u64,
    payload: &bytes::Bytes,
) -> u64 {
    let mut h = HeaderMap::new();
    h.insert("Nats-Msg-Id", id);
    h.insert(
        "Nats-Expected-Last-Subject-Sequence",
        last.to_string().as_str(),
    );
    let reply = client
        .send_request(
            subject.to_owned(),
            Request::new().headers(h).payload(payload.clone()),
        )
        .await
        .unwrap();
    let ack: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    ack["seq"].as_u64().unwrap_or_else(|| panic!("{ack}"))
}

/// CPU time (user + system, in clock ticks) a process has used so far.
fn process_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5), counted from the state (field 3) here.
    let field = |n: usize| {
        f.get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

/// Busy and total jiffies of all cores, from /proc/stat.
fn cpu_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or("");
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// The child: save single events round-robin over its own actors until `seconds` pass
/// after the parent's go file appears; print the count.
fn writer_main(urls: &str, id: &str) {
    if std::env::var("AETHER_SCALE_RAW").is_ok() {
        return raw_writer_main(urls, id);
    }
    let store = common::open_when_ready(urls, opts());
    println!("READY");
    let go = std::path::PathBuf::from(std::env::var("AETHER_SCALE_GO").unwrap());
    let seconds: f64 = std::env::var("AETHER_SCALE_RUN").unwrap().parse().unwrap();
    while !go.exists() {
        std::thread::sleep(Duration::from_millis(2));
    }
    let start = Instant::now();
    let run = Duration::from_secs_f64(seconds);
    let mut versions = [0i64; ACTORS_PER_WRITER];
    let mut n = 0u64;
    while start.elapsed() < run {
        let a = n as usize % ACTORS_PER_WRITER;
        versions[a] += 1;
        let e = common::bench_event(&format!("{id}-a{a}"), versions[a]);
        store.save_event(&e).unwrap();
        n += 1;
    }
    println!("SAVED {n} {}", start.elapsed().as_secs_f64());
    // Stay alive (for the parent to read this process's CPU time) until stdin closes.
    let _ = std::io::stdin().read_line(&mut String::new());
}

/// What one run of writer processes measured.
#[derive(Default, Clone, Copy)]
struct Run {
    /// Total saves per second.
    rate: f64,
    /// Share of the machine's CPU time that was busy (any process).
    busy: f64,
    /// Cores' worth of CPU the three nats-servers used.
    servers: f64,
    /// Cores' worth of CPU the writer processes used.
    writers: f64,
}

/// The raw peer of a writer: the same publishes with the same headers on subjects of its
/// own in stream RAW, no store (no follower, no EventStored).
fn raw_writer_main(urls: &str, id: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let servers: Vec<async_nats::ServerAddr> =
        urls.split(',').map(|u| u.parse().unwrap()).collect();
    let client = rt.block_on(async_nats::connect(servers)).unwrap();
    println!("READY");
    let go = std::path::PathBuf::from(std::env::var("AETHER_SCALE_GO").unwrap());
    let seconds: f64 = std::env::var("AETHER_SCALE_RUN").unwrap().parse().unwrap();
    while !go.exists() {
        std::thread::sleep(Duration::from_millis(2));
    }
    let start = Instant::now();
    let run = Duration::from_secs_f64(seconds);
    let mut last = [0u64; ACTORS_PER_WRITER];
    let mut versions = [0i64; ACTORS_PER_WRITER];
    let mut n = 0u64;
    while start.elapsed() < run {
        let a = n as usize % ACTORS_PER_WRITER;
        versions[a] += 1;
        let e = common::bench_event(&format!("{id}-a{a}"), versions[a]);
        let subject = format!("raw.{id}.a{a}");
        let payload: bytes::Bytes = e.to_json().into();
        last[a] = rt.block_on(raw_publish(&client, &subject, &e.id, last[a], &payload));
        n += 1;
    }
    println!("SAVED {n} {}", start.elapsed().as_secs_f64());
    let _ = std::io::stdin().read_line(&mut String::new());
}

/// Run `n` writer processes together against the cluster whose server PIDs are `servers`.
fn writers(urls: &str, servers: &[u32], n: usize, round: usize, seconds: f64, raw: bool) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<_> = (0..n)
        .map(|i| {
            let mut c = Command::new(&exe);
            if raw {
                c.env("AETHER_SCALE_RAW", "1");
            }
            c.env("AETHER_SCALE_WRITER", format!("r{round}n{n}w{i}"))
                .env("AETHER_SCALE_URLS", urls)
                .env("AETHER_SCALE_GO", &go)
                .env("AETHER_SCALE_RUN", seconds.to_string())
                .stdout(Stdio::piped())
                .stdin(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut outputs: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()).lines())
        .collect();
    for out in &mut outputs {
        let line = out.next().unwrap().unwrap();
        assert_eq!(line, "READY");
    }
    let ticks = |pids: &mut dyn Iterator<Item = u32>| pids.map(process_ticks).sum::<u64>();
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    let (cpu0, servers0, writers0) = (
        cpu_jiffies(),
        ticks(&mut servers.iter().copied()),
        ticks(&mut pids.iter().copied()),
    );
    let started = Instant::now();
    std::fs::write(&go, b"go").unwrap();
    let mut total = 0.0;
    let mut writers1 = 0;
    for (out, pid) in outputs.iter_mut().zip(&pids) {
        let line = out.next().unwrap().unwrap();
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f[0], "SAVED", "{line}");
        total += f[1].parse::<f64>().unwrap() / f[2].parse::<f64>().unwrap();
        // Before it exits (it waits for its stdin to close).
        writers1 += process_ticks(*pid);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (cpu1, servers1) = (cpu_jiffies(), ticks(&mut servers.iter().copied()));
    for mut c in children {
        drop(c.stdin.take());
        assert!(c.wait().unwrap().success());
    }
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Run {
        rate: total,
        busy: (cpu1.0 - cpu0.0) as f64 / (cpu1.1 - cpu0.1).max(1) as f64,
        servers: (servers1 - servers0) as f64 / hz / elapsed,
        writers: (writers1 - writers0) as f64 / hz / elapsed,
    }
}

fn main() {
    if let Ok(id) = std::env::var("AETHER_SCALE_WRITER") {
        writer_main(&std::env::var("AETHER_SCALE_URLS").unwrap(), &id);
        return;
    }
    if !common::nats_available() {
        return;
    }
    let seconds: f64 = std::env::var("AETHER_SCALE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::Cluster::start(dir.path());
    let urls = cluster.urls();
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let (version, _) = common::nats_version();
    // Creates the streams before any writer runs, then goes: an open store follows the
    // stream, and the writers' runs should carry only their own followers (the raw
    // writers' runs carry none).
    drop(common::open_when_ready(&urls, opts()));

    // Writer processes: 1, 2, 4, then 4, 2, 1, so drift hits each count alike.
    let counts = [1usize, 2, 4];
    let server_pids: Vec<u32> = cluster.nodes.iter().filter_map(|n| n.pid()).collect();
    let mut runs = [Run::default(); 3];
    for round in 0..2 {
        let order: Vec<usize> = if round == 0 {
            vec![0, 1, 2]
        } else {
            vec![2, 1, 0]
        };
        for i in order {
            let r = writers(&urls, &server_pids, counts[i], round, seconds, false);
            eprintln!(
                "{} writer(s): {:.0} saves/s, machine {:.0}% busy, servers {:.2} cores, writers {:.2} cores",
                counts[i],
                r.rate,
                r.busy * 100.0,
                r.servers,
                r.writers
            );
            let m = &mut runs[i];
            m.rate += r.rate / 2.0;
            m.busy += r.busy / 2.0;
            m.servers += r.servers / 2.0;
            m.writers += r.writers / 2.0;
        }
    }

    let store = common::open_when_ready(&urls, opts());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let servers: Vec<async_nats::ServerAddr> =
        urls.split(',').map(|u| u.parse().unwrap()).collect();
    let client = rt.block_on(async_nats::connect(servers)).unwrap();
    // The raw peer's stream: the settings our events stream has.
    rt.block_on(async {
        let config = serde_json::json!({
            "name": "RAW", "subjects": ["raw.>"], "retention": "limits", "storage": "file",
            "num_replicas": 3, "duplicate_window": 120_000_000_000u64, "max_msgs": -1,
            "max_bytes": -1, "max_age": 0, "max_msgs_per_subject": -1, "max_msg_size": -1,
            "discard": "old", "deny_delete": true, "deny_purge": true,
            "allow_rollup_hdrs": false, "allow_atomic": true,
        });
        let reply = client
            .request("$JS.API.STREAM.CREATE.RAW", config.to_string().into())
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
        assert!(v.get("error").is_none(), "{v}");
    });

    // The raw peer of the writers: processes publishing the same messages with the same
    // headers, no store. Where the cluster on these cores tops out, whoever writes.
    let mut raw_rates = [0.0f64; 3];
    for (round, order) in [[0usize, 2], [2, 0]].into_iter().enumerate() {
        for i in order {
            let r = writers(&urls, &server_pids, counts[i], round, seconds, true);
            eprintln!(
                "{} raw writer(s): {:.0} publishes/s, servers {:.2} cores, writers {:.2} cores",
                counts[i], r.rate, r.servers, r.writers
            );
            raw_rates[i] += r.rate / 2.0;
        }
    }

    // Sequential saves vs raw ack-awaited publishes with the same headers into the same
    // stream, on other actors' subjects (valid events, so the store stays sound), through
    // the store's own connection: the same server, the same stream leader, the same
    // follower delivering every message back. A second client's connection may land on
    // another node (placement alone moves the rate); the blocking variant makes each
    // publish its own `block_on`, as a blocking call like `save_event` is. They alternate.
    let own = store.nats_client().clone();
    let mut times = [Duration::ZERO; 4];
    let mut raw_last = [0u64; 3];
    for slice in 0..SAVE_SLICES {
        let version = |i: usize| (slice * SAVES_PER_SLICE + i) as i64 + 1;
        for k in 0..4 {
            let which = (slice + k) % 4;
            let actor = ["single", "raw-own", "raw-other", "raw-blocking"][which];
            let events: Vec<Event> = (0..SAVES_PER_SLICE)
                .map(|i| common::bench_event(actor, version(i)))
                .collect();
            let payloads: Vec<bytes::Bytes> = events.iter().map(|e| e.to_json().into()).collect();
            let subject = store.events_subject(actor);
            let t = Instant::now();
            match which {
                0 => {
                    for e in &events {
                        store.save_event(e).unwrap();
                    }
                }
                1 | 2 => {
                    let c = if which == 1 { &own } else { &client };
                    let last = &mut raw_last[which - 1];
                    rt.block_on(async {
                        for (e, p) in events.iter().zip(&payloads) {
                            *last = raw_publish(c, &subject, &e.id, *last, p).await;
                        }
                    });
                }
                _ => {
                    let last = &mut raw_last[2];
                    for (e, p) in events.iter().zip(&payloads) {
                        *last = rt.block_on(raw_publish(&own, &subject, &e.id, *last, p));
                    }
                }
            }
            times[which] += t.elapsed();
        }
    }
    let n = (SAVE_SLICES * SAVES_PER_SLICE) as f64;
    let [save, raw_publish_rate, raw_other, raw_blocking] = times.map(|t| n / t.as_secs_f64());
    eprintln!(
        "save_event {save:.0}/s, raw publish {raw_publish_rate:.0}/s, other connection {raw_other:.0}/s, blocking {raw_blocking:.0}/s"
    );

    // Replay of one actor vs a raw ordered consumer over the same messages.
    let events: Vec<Event> = (0..REPLAY_EVENTS)
        .map(|i| common::bench_event("replay", i as i64 + 1))
        .collect();
    for chunk in events.chunks(1000) {
        store.save_events(chunk).unwrap();
    }
    let subject = store.events_subject("replay");
    // Through the store's own connection too (same node, same stream leader).
    let js = {
        let _inside = rt.enter();
        async_nats::jetstream::new(own.clone())
    };
    let (mut ours_t, mut raw_t, mut json_t) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for round in 0..REPLAY_ROUNDS {
        // The undecoded replay C and Go use: the stored JSON, checked but not kept decoded.
        let s = Instant::now();
        let json = store.get_events_json("replay", 1).unwrap();
        json_t += s.elapsed();
        assert!(json.len() > REPLAY_EVENTS * 100);
        let ours = |t: &mut Duration| {
            let s = Instant::now();
            let got = store.get_events("replay", 1).unwrap();
            *t += s.elapsed();
            assert_eq!(got.len(), REPLAY_EVENTS);
        };
        let raw = |t: &mut Duration| {
            let s = Instant::now();
            let read = rt.block_on(async {
                let stream = js.get_stream(store.stream_name()).await.unwrap();
                let consumer = stream
                    .create_consumer(OrderedConfig {
                        deliver_subject: own.new_inbox(),
                        filter_subject: subject.clone(),
                        ..OrderedConfig::default()
                    })
                    .await
                    .unwrap();
                let mut messages = consumer.messages().await.unwrap();
                let mut n = 0usize;
                let mut bytes = 0usize;
                while let Some(m) = messages.next().await {
                    let m = m.unwrap();
                    bytes += m.payload.len();
                    n += 1;
                    if m.info().unwrap().pending == 0 {
                        break;
                    }
                }
                assert!(bytes > 0);
                n
            });
            *t += s.elapsed();
            assert_eq!(read, REPLAY_EVENTS);
        };
        if round % 2 == 0 {
            ours(&mut ours_t);
            raw(&mut raw_t);
        } else {
            raw(&mut raw_t);
            ours(&mut ours_t);
        }
    }
    let n = (REPLAY_ROUNDS * REPLAY_EVENTS) as f64;
    let (replay, raw_consumer) = (n / ours_t.as_secs_f64(), n / raw_t.as_secs_f64());
    let replay_json = n / json_t.as_secs_f64();
    drop(store);

    println!(
        "aether-jetstream scale figures: 3-node loopback cluster, R3, {version}, {} cores\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<36} {:>9} {:>14} {:>14} {:>14}",
        "writer processes (distinct actors)",
        "saves/s",
        "machine busy",
        "servers' CPU",
        "writers' CPU"
    );
    for i in 0..3 {
        let r = runs[i];
        println!(
            "{:<36} {:>9.0} {:>13.0}% {:>8.2} cores {:>8.2} cores",
            counts[i],
            r.rate,
            r.busy * 100.0,
            r.servers,
            r.writers
        );
    }
    let rates: Vec<f64> = runs.iter().map(|r| r.rate).collect();
    println!(
        "raw publishers, same headers, no store: 1: {:.0}/s, 4: {:.0}/s ({:.2}x)",
        raw_rates[0],
        raw_rates[2],
        raw_rates[2] / raw_rates[0]
    );
    println!();
    println!("{:<46} {:>12}", "", "per second");
    println!("{:<46} {:>12.0}", "save_event, sequential", save);
    println!(
        "{:<46} {:>12.0}",
        "raw publish, same headers, ack awaited", raw_publish_rate
    );
    println!(
        "{:<46} {:>12.0}",
        "  the same, from a second connection", raw_other
    );
    println!(
        "{:<46} {:>12.0}",
        "  the same, one block_on per publish", raw_blocking
    );
    println!("{:<46} {:>12.0}", "get_events replay of one actor", replay);
    println!("{:<46} {:>12.0}", "get_events_json (C and Go)", replay_json);
    println!(
        "{:<46} {:>12.0}",
        "raw ordered consumer, same messages", raw_consumer
    );
    println!();
    println!("{:<46} {:>12} {:>10}", "ratio", "measured", "target");
    let ratios = [
        ("4 writers / 1 writer", rates[2] / rates[0], 2.0),
        ("2 writers / 1 writer", rates[1] / rates[0], f64::NAN),
        ("save_event / raw publish", save / raw_publish_rate, 0.9),
        (
            "save_event / raw publish, second connection",
            save / raw_other,
            f64::NAN,
        ),
        (
            "save_event / raw publish, blocking",
            save / raw_blocking,
            f64::NAN,
        ),
        ("replay / raw ordered consumer", replay / raw_consumer, 0.8),
        (
            "get_events_json / raw ordered consumer",
            replay_json / raw_consumer,
            f64::NAN,
        ),
    ];
    for (name, got, target) in ratios {
        let verdict = if target.is_nan() {
            String::new()
        } else if got >= target {
            format!("{target:.1}x+ met")
        } else {
            format!("{target:.1}x+ MISSED")
        };
        println!("{name:<46} {got:>11.2}x {verdict:>10}");
    }
}
