//! Where the time of a JetStream save and replay goes, against one local `nats-server`.
//! Each of our operations is measured beside raw client calls that add one of its costs at
//! a time, in alternating slices of one run so drift hits them alike:
//!
//! - saves: a bare ack-awaited publish; the same with our headers (deduplication ID,
//!   the actor's expected last subject sequence); the
//!   same on a stream that an ordered consumer follows (as every open store's follower
//!   does, for cross-process EventStored); both; and `save_event`;
//! - replay of one actor: an ordered consumer over the store's messages; the same decoding
//!   every event; `get_events`; `get_events_json` (what the C ABI and Go use); an ordered
//!   consumer over the same events published without headers.
//!
//! ```sh
//! cargo run --release -p aether-jetstream --example costs
//! ```

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::time::{Duration, Instant};

use aether_core::{Event, EventStore};
use aether_jetstream::JetStreamOptions;
use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::jetstream::stream::{Config, StorageType};
use async_nats::jetstream::Context;
use async_nats::HeaderMap;
use common::bench_event as event;
use futures_util::StreamExt;

const SLICES: usize = 8;
const SAVES_PER_SLICE: usize = 500;
const REPLAY_EVENTS: usize = 20_000;
const REPLAY_SLICES: usize = 4;

fn report(title: &str, names: &[&str], times: &[Duration], per: f64) {
    println!("{title}");
    for (name, t) in names.iter().zip(times) {
        println!(
            "  {name:<40} {:>9.0}/s {:>8.1} us  {:>5.2}x the first",
            per / t.as_secs_f64(),
            t.as_secs_f64() * 1e6 / per,
            times[0].as_secs_f64() / t.as_secs_f64()
        );
    }
}

/// Ack-awaited publishes of `events` on `subject`, with our save's headers when `headers`.
async fn publish_all(js: &Context, subject: &str, events: &[Event], headers: bool, last: &mut u64) {
    for e in events {
        let payload: bytes::Bytes = e.to_json().into();
        let ack = if headers {
            let mut h = HeaderMap::new();
            h.insert("Nats-Msg-Id", e.id.as_str());
            h.insert(
                "Nats-Expected-Last-Subject-Sequence",
                last.to_string().as_str(),
            );
            js.publish_with_headers(subject.to_owned(), h, payload)
                .await
        } else {
            js.publish(subject.to_owned(), payload).await
        };
        *last = ack.unwrap().await.unwrap().sequence;
    }
}

fn main() {
    if !common::nats_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = common::NatsServer::single(&dir.path().join("single"));
    let url = server.url();
    let mut opts = JetStreamOptions::default();
    opts.connect_timeout = Duration::from_secs(10);
    opts.request_timeout = Duration::from_secs(10);
    let store = common::open_when_ready(&url, opts);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let js = rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(url.as_str()).await.unwrap());
        for (name, subjects) in [("BARE", "bare.>"), ("FOLLOWED", "followed.>")] {
            js.create_stream(Config {
                name: name.into(),
                subjects: vec![subjects.into()],
                storage: StorageType::File,
                ..Config::default()
            })
            .await
            .unwrap();
        }
        js
    });
    // A follower on FOLLOWED, like the one every open store runs on its stream.
    let follower_js = js.clone();
    rt.spawn(async move {
        let stream = follower_js.get_stream("FOLLOWED").await.unwrap();
        let consumer = stream
            .create_consumer(OrderedConfig {
                deliver_subject: follower_js.client().new_inbox(),
                filter_subject: "followed.>".into(),
                ..OrderedConfig::default()
            })
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        while let Some(m) = messages.next().await {
            assert!(!m.unwrap().payload.is_empty());
        }
    });

    let names = [
        "raw publish",
        "raw publish + our headers",
        "raw publish, followed stream",
        "raw publish + our headers, followed",
        "save_event",
    ];
    let mut times = [Duration::ZERO; 5];
    let (mut bare_last, mut followed_last) = (0u64, 0u64);
    let mut version = 0i64;
    for slice in 0..SLICES {
        for k in 0..names.len() {
            let k = (k + slice) % names.len();
            let events: Vec<Event> = (0..SAVES_PER_SLICE)
                .map(|i| event(&format!("a{k}"), version + 1 + i as i64))
                .collect();
            let start = Instant::now();
            match k {
                0 | 1 => rt.block_on(publish_all(&js, "bare.a", &events, k == 1, &mut bare_last)),
                2 | 3 => rt.block_on(publish_all(
                    &js,
                    "followed.a",
                    &events,
                    k == 3,
                    &mut followed_last,
                )),
                _ => {
                    for e in &events {
                        store.save_event(e).unwrap();
                    }
                }
            }
            times[k] += start.elapsed();
        }
        version += SAVES_PER_SLICE as i64;
    }
    report(
        "sequential saves (one local server, file storage)",
        &names,
        &times,
        (SLICES * SAVES_PER_SLICE) as f64,
    );

    let events: Vec<Event> = (0..REPLAY_EVENTS)
        .map(|i| event("replay", i as i64 + 1))
        .collect();
    for e in &events {
        store.save_event(e).unwrap();
    }
    // The same events published bare (no headers), for a consumer of header-less messages.
    rt.block_on(async {
        for window in events.chunks(1_000) {
            let mut acks = Vec::with_capacity(window.len());
            for e in window {
                acks.push(js.publish("bare.replay", e.to_json().into()).await.unwrap());
            }
            for ack in acks {
                ack.await.unwrap();
            }
        }
    });
    let ours = (
        store.stream_name().to_owned(),
        store.events_subject("replay"),
    );
    let bare = ("BARE".to_owned(), "bare.replay".to_owned());
    let raw = |(stream, subject): &(String, String), decode: bool| {
        rt.block_on(async {
            let consumer = js
                .get_stream(stream)
                .await
                .unwrap()
                .create_consumer(OrderedConfig {
                    deliver_subject: js.client().new_inbox(),
                    filter_subject: subject.clone(),
                    ..OrderedConfig::default()
                })
                .await
                .unwrap();
            let mut messages = consumer.messages().await.unwrap();
            let mut n = 0usize;
            while let Some(m) = messages.next().await {
                let m = m.unwrap();
                if decode {
                    assert!(Event::from_json(&m.payload).unwrap().version > 0);
                } else {
                    assert!(!m.payload.is_empty());
                }
                n += 1;
                if m.info().unwrap().pending == 0 {
                    break;
                }
            }
            n
        })
    };
    let names = [
        "raw ordered consumer, our messages",
        "raw ordered consumer + decoding",
        "get_events",
        "get_events_json",
        "raw ordered consumer, bare messages",
    ];
    let mut times = [Duration::ZERO; 5];
    for slice in 0..REPLAY_SLICES {
        for k in 0..names.len() {
            let k = (k + slice) % names.len();
            let start = Instant::now();
            let n = match k {
                0 | 1 => raw(&ours, k == 1),
                4 => raw(&bare, false),
                2 => store.get_events("replay", 1).unwrap().len(),
                _ => {
                    let json = store.get_events_json("replay", 1).unwrap();
                    assert!(json.len() > REPLAY_EVENTS * 100);
                    REPLAY_EVENTS
                }
            };
            times[k] += start.elapsed();
            assert_eq!(n, REPLAY_EVENTS);
        }
    }
    report(
        &format!("replay of one actor's {REPLAY_EVENTS} events"),
        &names,
        &times,
        (REPLAY_SLICES * REPLAY_EVENTS) as f64,
    );
}
