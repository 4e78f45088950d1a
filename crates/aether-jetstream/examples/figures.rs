//! Side-by-side figures for the JetStream backend, measured in one run against servers this
//! program starts on 127.0.0.1 (a single server, then a 3-node cluster with R3 streams):
//!
//! - save: sequential `save_event` vs raw ack-awaited JetStream publishes of the same bytes;
//! - batch: `save_events` (100 events per call, one actor) vs pipelined publishes of the
//!   same events as single messages;
//! - replay: `get_events` of one actor vs a raw ordered consumer over the same messages.
//!
//! Ours and the raw peer alternate in slices so drift hits both alike.
//!
//! ```sh
//! cargo run --release -p aether-jetstream --example figures
//! ```

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::time::{Duration, Instant};

use aether_core::{Event, EventStore};
use aether_jetstream::JetStreamOptions;
use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::jetstream::stream::{Config, StorageType};
use common::bench_event as event;
use futures_util::StreamExt;

const SLICES: usize = 4;
const SAVES_PER_SLICE: usize = 1_000;
const BATCH: usize = 100;
const BATCH_EVENTS_PER_SLICE: usize = 5_000;
const REPLAY_EVENTS: usize = 20_000;
const PIPELINE_WINDOW: usize = 1_000;

/// Picks one figure out of a run.
type Pick = fn(&Figures) -> f64;

#[derive(Debug, Default, Clone, Copy)]
struct Figures {
    save: f64,
    raw_publish: f64,
    batch_save: f64,
    pipelined_publish: f64,
    replay: f64,
    raw_consumer: f64,
}

fn measure(urls: &str, replicas: usize) -> Figures {
    let mut opts = JetStreamOptions::default();
    opts.replicas = replicas;
    opts.connect_timeout = Duration::from_secs(10);
    opts.request_timeout = Duration::from_secs(10);
    let store = common::open_when_ready(urls, opts);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let servers: Vec<async_nats::ServerAddr> =
        urls.split(',').map(|u| u.parse().unwrap()).collect();
    let js = rt.block_on(async {
        let client = async_nats::connect(servers).await.unwrap();
        let js = async_nats::jetstream::new(client);
        js.create_stream(Config {
            name: "RAW".into(),
            subjects: vec!["raw.>".into()],
            storage: StorageType::File,
            num_replicas: replicas,
            ..Config::default()
        })
        .await
        .unwrap();
        js
    });
    let mut f = Figures::default();
    let (mut ours_t, mut raw_t) = (Duration::ZERO, Duration::ZERO);

    // Sequential saves vs ack-awaited publishes of the same bytes.
    let mut version = 0i64;
    for slice in 0..SLICES {
        let events: Vec<Event> = (0..SAVES_PER_SLICE)
            .map(|i| event("seq", version + 1 + i as i64))
            .collect();
        version += SAVES_PER_SLICE as i64;
        let payloads: Vec<bytes::Bytes> = events.iter().map(|e| e.to_json().into()).collect();
        let t = Instant::now();
        for e in &events {
            store.save_event(e).unwrap();
        }
        ours_t += t.elapsed();
        let t = Instant::now();
        rt.block_on(async {
            for p in &payloads {
                js.publish(format!("raw.seq{slice}"), p.clone())
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
        });
        raw_t += t.elapsed();
    }
    let n = (SLICES * SAVES_PER_SLICE) as f64;
    f.save = n / ours_t.as_secs_f64();
    f.raw_publish = n / raw_t.as_secs_f64();

    eprintln!("save: {:.0}/s vs raw {:.0}/s", f.save, f.raw_publish);
    // Batches of one actor vs pipelined single publishes of the same events.
    let (mut ours_t, mut raw_t) = (Duration::ZERO, Duration::ZERO);
    let mut version = 0i64;
    for _ in 0..SLICES {
        let events: Vec<Event> = (0..BATCH_EVENTS_PER_SLICE)
            .map(|i| event("batch", version + 1 + i as i64))
            .collect();
        version += BATCH_EVENTS_PER_SLICE as i64;
        let payloads: Vec<bytes::Bytes> = events.iter().map(|e| e.to_json().into()).collect();
        let t = Instant::now();
        for chunk in events.chunks(BATCH) {
            store.save_events(chunk).unwrap();
        }
        ours_t += t.elapsed();
        let t = Instant::now();
        rt.block_on(async {
            // async-nats bounds the acknowledgements in flight: await them in windows.
            for window in payloads.chunks(PIPELINE_WINDOW) {
                let mut acks = Vec::with_capacity(window.len());
                for p in window {
                    acks.push(js.publish("raw.pipelined", p.clone()).await.unwrap());
                }
                for ack in acks {
                    ack.await.unwrap();
                }
            }
        });
        raw_t += t.elapsed();
    }
    let n = (SLICES * BATCH_EVENTS_PER_SLICE) as f64;
    f.batch_save = n / ours_t.as_secs_f64();
    f.pipelined_publish = n / raw_t.as_secs_f64();

    eprintln!(
        "batch: {:.0}/s vs pipelined {:.0}/s",
        f.batch_save, f.pipelined_publish
    );
    // Replay: one actor of REPLAY_EVENTS events vs an ordered consumer over as many messages.
    let events: Vec<Event> = (0..REPLAY_EVENTS)
        .map(|i| event("replay", i as i64 + 1))
        .collect();
    for chunk in events.chunks(BATCH) {
        for e in chunk {
            store.save_event(e).unwrap();
        }
    }
    rt.block_on(async {
        for window in events.chunks(PIPELINE_WINDOW) {
            let mut acks = Vec::with_capacity(window.len());
            for e in window {
                acks.push(js.publish("raw.replay", e.to_json().into()).await.unwrap());
            }
            for ack in acks {
                ack.await.unwrap();
            }
        }
    });
    let (mut ours_t, mut raw_t) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..SLICES {
        let t = Instant::now();
        eprintln!("replaying");
        let got = store.get_events("replay", 1).unwrap();
        ours_t += t.elapsed();
        assert_eq!(got.len(), REPLAY_EVENTS);
        let t = Instant::now();
        let read = rt.block_on(async {
            let stream = js.get_stream("RAW").await.unwrap();
            let consumer = stream
                .create_consumer(OrderedConfig {
                    deliver_subject: js.client().new_inbox(),
                    filter_subject: "raw.replay".into(),
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
        raw_t += t.elapsed();
        assert_eq!(read, REPLAY_EVENTS);
    }
    let n = (SLICES * REPLAY_EVENTS) as f64;
    f.replay = n / ours_t.as_secs_f64();
    f.raw_consumer = n / raw_t.as_secs_f64();
    drop(store);
    f
}

fn main() {
    if !common::nats_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let single = {
        let server = common::NatsServer::single(&dir.path().join("single"));
        measure(&server.url(), 1)
    };
    let cluster = {
        let cluster = common::Cluster::start(&dir.path().join("cluster"));
        measure(&cluster.urls(), 3)
    };
    println!("aether-jetstream figures (nats-server on 127.0.0.1, file storage; per second)\n");
    println!(
        "{:<44} {:>12} {:>14} {:>10}",
        "", "1 server", "3 nodes (R3)", "R3 / 1"
    );
    let rows: [(&str, Pick); 6] = [
        ("save_event, sequential (events)", |f| f.save),
        ("raw publish, ack awaited (messages)", |f| f.raw_publish),
        ("save_events, 100 per batch (events)", |f| f.batch_save),
        ("raw publish, pipelined (messages)", |f| f.pipelined_publish),
        ("get_events replay of one actor (events)", |f| f.replay),
        ("raw ordered consumer (messages)", |f| f.raw_consumer),
    ];
    for (name, get) in rows {
        println!(
            "{:<44} {:>12.0} {:>14.0} {:>9.2}x",
            name,
            get(&single),
            get(&cluster),
            get(&cluster) / get(&single)
        );
    }
    println!();
    let ratios: [(&str, Pick, f64); 3] = [
        (
            "save / raw ack-awaited publish",
            |f| f.save / f.raw_publish,
            0.9,
        ),
        (
            "batch save / pipelined publish",
            |f| f.batch_save / f.pipelined_publish,
            0.5,
        ),
        (
            "replay / raw ordered consumer",
            |f| f.replay / f.raw_consumer,
            0.8,
        ),
    ];
    println!(
        "{:<44} {:>12} {:>14} {:>10}",
        "ratio", "1 server", "3 nodes (R3)", "target"
    );
    for (name, get, target) in ratios {
        println!(
            "{:<44} {:>11.2}x {:>13.2}x {:>8.1}x+",
            name,
            get(&single),
            get(&cluster),
            target
        );
    }
}
