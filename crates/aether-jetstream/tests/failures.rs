//! Bad input and failure on a single server: no server at open, a server that never
//! answers, a frozen server (save times out: outcome unknown), a killed server (a retry with
//! the same event ID stores the event at most once), malformed messages in the stream, and
//! EventStored across two independent connections and across processes.

mod common;

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use aether_core::{Error, Event, EventStore, Outcome, Timestamp};
use aether_jetstream::{JetStreamOptions, JetStreamStore};
use common::{require_nats, NatsServer};

fn ev(actor: &str, version: i64, id: &str) -> Event {
    let mut e = Event::new(id, "Tested", actor, version).with_data("n", version);
    e.timestamp = Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + version as i128);
    e
}

fn opts(request_timeout: Duration) -> JetStreamOptions {
    let mut o = JetStreamOptions::default();
    o.connect_timeout = Duration::from_secs(2);
    o.request_timeout = request_timeout;
    o
}

/// Retry a save whose outcome is unknown (same event, same ID) until the store answers
/// for sure: Ok, or a conflict (an earlier attempt got there first).
fn save_until_known(store: &JetStreamStore, e: &Event, within: Duration) -> Result<u64, Error> {
    let deadline = Instant::now() + within;
    loop {
        match store.save_event(e) {
            Err(Error::Timeout { .. } | Error::Unavailable { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Publish `payload` on `actor`'s subject as another publisher would: no aether headers.
fn publish_foreign(store: &JetStreamStore, actor: &str, payload: &'static str) {
    let subject = store.events_subject(actor);
    let client = store.nats_client().clone();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            // The JetStream context spawns a task: create it inside the runtime.
            let js = async_nats::jetstream::new(client);
            js.publish(subject, payload.into())
                .await
                .unwrap()
                .await
                .unwrap();
        });
}

fn assert_each_id_once(store: &JetStreamStore, actor: &str) -> Vec<Event> {
    let events = store.get_events(actor, 0).unwrap();
    let ids: HashSet<_> = events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids.len(), events.len(), "an event was stored twice");
    let versions: Vec<i64> = events.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=events.len() as i64).collect::<Vec<_>>());
    events
}

#[test]
fn no_server_at_open_is_a_clear_error_in_bounded_time() {
    // Needs no nats-server: nothing listens on the port.
    let port = common::free_port();
    let started = Instant::now();
    let err = JetStreamStore::connect(
        &format!("nats://127.0.0.1:{port}"),
        opts(Duration::from_secs(1)),
    )
    .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Unavailable {
                outcome: Outcome::NotApplied,
                message
            } if message.contains("cannot connect")
        ),
        "{err:?}"
    );
    // Bounded: the connect timeout (2 s) plus slack, never a hang.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_server_that_never_answers_at_open_times_out() {
    // Needs no nats-server: a silent listener stands in for a hung one.
    // Accepts TCP connections and then says nothing, as a hung server would.
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let err = JetStreamStore::connect(
        &format!("nats://127.0.0.1:{port}"),
        opts(Duration::from_secs(1)),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

#[test]
fn invalid_options_are_named() {
    for (mutate, field) in [
        (
            (|o: &mut JetStreamOptions| o.stream = "has.dot".into()) as fn(&mut JetStreamOptions),
            "stream",
        ),
        (|o| o.subject_prefix = "a..b".into(), "subject_prefix"),
        (|o| o.replicas = 0, "replicas"),
    ] {
        let mut o = JetStreamOptions::default();
        mutate(&mut o);
        match JetStreamStore::connect("nats://127.0.0.1:1", o) {
            Err(Error::InvalidInput { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected invalid {field}, got {other:?}"),
        }
    }
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn a_frozen_server_makes_a_save_time_out_with_unknown_outcome_and_the_retry_stores_it_once() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    let store = common::open_when_ready(&server.url(), opts(Duration::from_millis(700)));
    store.save_event(&ev("acct", 1, "frozen-1")).unwrap();

    server.signal(libc::SIGSTOP);
    let e2 = ev("acct", 2, "frozen-2");
    let err = store.save_event(&e2).unwrap_err();
    match &err {
        Error::Timeout {
            operation: "save_event",
            outcome: Outcome::Unknown,
        } => {}
        other => panic!("expected a timeout with unknown outcome, got {other:?}"),
    }
    assert!(err.to_string().contains("Unknown"), "{err}");
    server.signal(libc::SIGCONT);

    // The frozen publish reaches the server once it runs again; the retry must not store
    // the event a second time: Ok (deduplicated by ID) or a conflict naming version 2.
    match save_until_known(&store, &e2, Duration::from_secs(20)) {
        Ok(_) => {}
        Err(Error::VersionConflict {
            current_version: 2, ..
        }) => {}
        other => panic!("retry: {other:?}"),
    }
    let events = assert_each_id_once(&store, "acct");
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].id, "frozen-2");
    assert_eq!(store.last_sequence().unwrap(), 2);
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn a_killed_server_gives_unknown_outcomes_and_retries_store_each_event_at_most_once() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    let mut server = NatsServer::single(dir.path());
    let store = common::open_when_ready(&server.url(), opts(Duration::from_millis(700)));
    let mut acked = Vec::new();
    let mut unknown = 0;
    let mut version = 1;
    let started = Instant::now();
    let mut killed = false;
    let mut restarted = false;
    while version <= 60 {
        if version == 20 && !killed {
            server.kill();
            killed = true;
        }
        let e = ev("ledger", version, &format!("ledger-{version}"));
        match store.save_event(&e) {
            Ok(_) => {
                acked.push(e.id.clone());
                version += 1;
            }
            Err(Error::Timeout { outcome, .. }) | Err(Error::Unavailable { outcome, .. }) => {
                if outcome == Outcome::Unknown {
                    unknown += 1;
                }
                if killed && !restarted {
                    server.restart();
                    restarted = true;
                }
                // Retry the very same event (same ID): Ok, or a conflict when an earlier
                // attempt already stored it.
                match save_until_known(&store, &e, Duration::from_secs(30)) {
                    Ok(_) => acked.push(e.id.clone()),
                    Err(Error::VersionConflict {
                        current_version, ..
                    }) if current_version >= version => {}
                    other => panic!("retry of {}: {other:?}", e.id),
                }
                version += 1;
            }
            Err(other) => panic!("save {version}: {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(120), "stuck");
    }
    assert!(killed && restarted);
    assert!(
        unknown >= 1,
        "a save during the outage must say its outcome is unknown"
    );
    let events = assert_each_id_once(&store, "ledger");
    assert_eq!(events.len(), 60, "every version stored exactly once");
    let stored: HashSet<_> = events.iter().map(|e| e.id.clone()).collect();
    for id in &acked {
        assert!(stored.contains(id), "acknowledged {id} is missing");
    }
    let all = store.read_all(1, 1000).unwrap();
    assert_eq!(
        all.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        (1..=60).collect::<Vec<_>>()
    );
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn malformed_messages_are_reported_with_their_sequence() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    let store = common::open_when_ready(&server.url(), opts(Duration::from_secs(5)));
    store.save_event(&ev("doc", 1, "doc-1")).unwrap();
    // Something else publishes garbage on the actor's subject (no aether headers).
    publish_foreign(&store, "doc", "{not json");
    // A save after it still checks versions against the events that decode.
    store.save_event(&ev("doc", 2, "doc-2")).unwrap();
    match store.save_event(&ev("doc", 2, "doc-2b")) {
        Err(Error::VersionConflict {
            current_version: 2, ..
        }) => {}
        other => panic!("{other:?}"),
    }

    let replay = store.get_events_with_errors("doc", 0).unwrap();
    assert_eq!(
        replay.events.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(replay.errors.len(), 1);
    let bad = &replay.errors[0];
    // No batches here, so the store-wide sequence is the stream sequence: 2.
    assert_eq!(bad.sequence, 2);
    assert_eq!(bad.raw, b"{not json");
    assert!(bad.cause.contains("stream sequence 2"), "{}", bad.cause);
    assert_eq!(store.metrics().replay_errors, 1);
    match store.get_events("doc", 0) {
        Err(Error::Corrupt { sequence: 2, .. }) => {}
        other => panic!("expected corrupt at 2, got {other:?}"),
    }
    // The undecoded replay (what the C ABI and Go hand out) refuses it just the same.
    match store.get_events_json("doc", 0) {
        Err(Error::Corrupt { sequence: 2, .. }) => {}
        other => panic!("expected corrupt at 2, got {other:?}"),
    }
    match store.read_all(1, 10) {
        Err(Error::Corrupt { sequence: 2, .. }) => {}
        other => panic!("expected corrupt at 2, got {other:?}"),
    }
    assert_eq!(store.read_all(3, 10).unwrap()[0].event.id, "doc-2");
    assert_eq!(store.last_sequence().unwrap(), 3);
    assert_eq!(store.get_latest_version("doc").unwrap(), 2);
    // Notifications: only the two events, not the garbage.
    let notes: Vec<_> = store.event_stored_receiver().try_iter().collect();
    assert_eq!(
        notes
            .iter()
            .map(|n| (n.event_id.as_str(), n.sequence))
            .collect::<Vec<_>>(),
        [("doc-1", 1), ("doc-2", 3)]
    );
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn undecoded_replay_hands_out_stored_json_and_canonical_json_for_foreign_messages() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    let store = common::open_when_ready(&server.url(), opts(Duration::from_secs(5)));
    let mine = [ev("acc", 1, "acc-1"), ev("acc", 2, "acc-2")];
    store.save_events(&mine).unwrap();
    // Another publisher stores a valid event for the same actor, spelled differently from
    // Go's encoding (key order, spacing, an escaped character).
    let foreign = r#"{ "version": 3, "actorId": "acc", "id": "acc-3", "eventType": "T\u0041",
        "commandId": "", "data": {"b": 1, "a": 2}, "timestamp": "2024-01-01T00:00:00Z" }"#;
    publish_foreign(&store, "acc", foreign);
    store.save_event(&ev("acc", 4, "acc-4")).unwrap();

    let decoded = store.get_events("acc", 0).unwrap();
    assert_eq!(
        decoded.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    // Exactly what encoding the decoded events gives: the stored bytes for ours, the
    // canonical encoding for the foreign one.
    let mut expected = b"[".to_vec();
    for (i, e) in decoded.iter().enumerate() {
        if i > 0 {
            expected.push(b',');
        }
        expected.extend_from_slice(&e.to_json());
    }
    expected.push(b']');
    assert_eq!(
        String::from_utf8(store.get_events_json("acc", 0).unwrap()).unwrap(),
        String::from_utf8(expected).unwrap()
    );
    assert!(!String::from_utf8(store.get_events_json("acc", 0).unwrap())
        .unwrap()
        .contains(r#""version": 3"#));
    // `from_version` is inclusive, also inside a batch.
    let from2: Vec<Event> =
        serde_json::from_slice::<Vec<serde_json::Value>>(&store.get_events_json("acc", 2).unwrap())
            .unwrap()
            .into_iter()
            .map(|v| Event::from_json(v.to_string().as_bytes()).unwrap())
            .collect();
    assert_eq!(
        from2.iter().map(|e| e.version).collect::<Vec<_>>(),
        [2, 3, 4]
    );
    assert_eq!(store.get_events_json("nobody", 0).unwrap(), b"[]");
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn batches_and_the_sequence_after_reopen() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    {
        let store = common::open_when_ready(&server.url(), opts(Duration::from_secs(5)));
        store.save_event(&ev("b", 1, "b-1")).unwrap();
        let batch: Vec<Event> = (2..=6).map(|v| ev("b", v, &format!("b-{v}"))).collect();
        assert_eq!(store.save_events(&batch).unwrap(), 6);
        store.save_event(&ev("c", 1, "c-1")).unwrap();
    }
    // A new process (here: a new connection) numbers on from where the stream ends.
    let store = common::open_when_ready(&server.url(), opts(Duration::from_secs(5)));
    assert_eq!(store.last_sequence().unwrap(), 7);
    assert_eq!(store.save_event(&ev("c", 2, "c-2")).unwrap(), 8);
    for from in 1..=9u64 {
        let got: Vec<u64> = store
            .read_all(from, 3)
            .unwrap()
            .iter()
            .map(|e| e.sequence)
            .collect();
        let want: Vec<u64> = (from..=8).take(3).collect();
        assert_eq!(got, want, "read_all({from}, 3)");
    }
    let all = store.read_all(0, 100).unwrap();
    assert_eq!(
        all.iter().map(|e| e.event.id.as_str()).collect::<Vec<_>>(),
        ["b-1", "b-2", "b-3", "b-4", "b-5", "b-6", "c-1", "c-2"]
    );
    // Retrying the whole batch: a conflict, nothing stored twice.
    let batch: Vec<Event> = (2..=6).map(|v| ev("b", v, &format!("b-{v}"))).collect();
    assert!(store.save_events(&batch).unwrap_err().is_conflict());
    assert_eq!(store.last_sequence().unwrap(), 8);
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn every_open_store_hears_every_save() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    let a = common::open_when_ready(&server.url(), opts(Duration::from_secs(5)));
    let b = common::open_when_ready(&server.url(), opts(Duration::from_secs(5)));
    a.save_event(&ev("x", 1, "x-1")).unwrap();
    b.save_events(&[ev("y", 1, "y-1"), ev("y", 2, "y-2")])
        .unwrap();
    a.save_event(&ev("x", 2, "x-2")).unwrap();
    for store in [&a, &b] {
        let mut got = Vec::new();
        while got.len() < 4 {
            let n = store
                .poll_event_stored(Duration::from_secs(5))
                .expect("an EventStored from the stream");
            got.push((n.event_id, n.sequence));
        }
        assert_eq!(
            got,
            [
                ("x-1".to_owned(), 1),
                ("y-1".to_owned(), 2),
                ("y-2".to_owned(), 3),
                ("x-2".to_owned(), 4)
            ]
        );
    }
    // A conflict across connections is a conflict, with the current version.
    match b.save_event(&ev("x", 2, "x-2-again")) {
        Err(Error::VersionConflict {
            current_version: 2, ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

// ---- two processes racing -----------------------------------------------------------

/// Not a test on its own: the body of a racing child process (`common::race_processes`).
#[test]
#[ignore = "helper: a racing child process, run by common::race_processes"]
fn race_child() {
    common::race_child_main();
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn two_processes_racing_get_one_winner_per_version() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    let store = common::open_when_ready(&server.url(), opts(Duration::from_secs(5)));
    let wins = common::race_processes(&server.url(), 2, 3, 40);
    common::check_race(&store, &wins, 3, 40);
    // This process heard every win of both children.
    let notes: Vec<_> = store.event_stored_receiver().try_iter().collect();
    assert_eq!(notes.len(), wins.len());
}

/// A fake NATS server that introduces itself as `version` (the INFO line is all a client
/// reads before it knows the server), answering PING with PONG.
fn fake_server(version: &'static str) -> (u16, std::thread::JoinHandle<()>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut writer = stream.try_clone().unwrap();
        let info = format!(
            "INFO {{\"server_id\":\"FAKE\",\"server_name\":\"fake\",\"version\":\"{version}\",\"proto\":1,\"go\":\"go1.19\",\"host\":\"127.0.0.1\",\"port\":{port},\"headers\":true,\"max_payload\":1048576,\"jetstream\":true}}\r\n"
        );
        writer.write_all(info.as_bytes()).unwrap();
        let reader = BufReader::new(stream);
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if line.starts_with("PING") && writer.write_all(b"PONG\r\n").is_err() {
                break;
            }
        }
    });
    (port, handle)
}

#[test]
fn a_server_older_than_2_12_is_unsupported_naming_the_version_needed() {
    let (port, _server) = fake_server("2.9.10");
    let started = Instant::now();
    match JetStreamStore::connect(
        &format!("nats://127.0.0.1:{port}"),
        opts(Duration::from_secs(2)),
    ) {
        Err(Error::Unsupported { feature, reason }) => {
            assert_eq!(feature, "nats-server");
            assert!(reason.contains("2.9.10"), "{reason}");
            assert!(reason.contains("2.12 or later"), "{reason}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not a prompt answer"
    );
}

/// Create the events stream as another tool would, through the JetStream API.
fn create_stream(url: &str, config: serde_json::Value) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let client = async_nats::connect(url).await.unwrap();
            let name = config["name"].as_str().unwrap().to_owned();
            let reply = client
                .request(
                    format!("$JS.API.STREAM.CREATE.{name}"),
                    config.to_string().into(),
                )
                .await
                .unwrap();
            let answer: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
            assert!(answer.get("error").is_none(), "{answer}");
        });
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn a_stream_made_with_other_settings_is_refused_naming_each_setting() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    // What `nats stream add` with its defaults, or an earlier aether release, would make.
    create_stream(
        &server.url(),
        serde_json::json!({
            "name": "AETHER_EVENTS",
            "subjects": ["aether.events.>"],
            "storage": "file",
            "max_age": 86_400_000_000_000u64,
            "allow_rollup_hdrs": true,
        }),
    );
    match JetStreamStore::connect(&server.url(), opts(Duration::from_secs(2))) {
        Err(Error::InvalidInput {
            field: "stream",
            reason,
        }) => {
            for setting in [
                "allow_atomic is false",
                "deny_delete is false",
                "deny_purge is false",
                "max_age is 86400000000000",
                "allow_rollup_hdrs is true",
            ] {
                assert!(reason.contains(setting), "{setting} not named: {reason}");
            }
            assert!(reason.contains("AETHER_EVENTS"), "{reason}");
        }
        other => panic!("expected InvalidInput on stream, got {other:?}"),
    }
    // A stream with the right settings but other subjects.
    let mut o = opts(Duration::from_secs(2));
    o.stream = "OTHER".into();
    create_stream(
        &server.url(),
        serde_json::json!({
            "name": "OTHER",
            "subjects": ["elsewhere.>"],
            "storage": "file",
            "deny_delete": true,
            "deny_purge": true,
            "allow_atomic": true,
        }),
    );
    match JetStreamStore::connect(&server.url(), o) {
        Err(Error::InvalidInput {
            field: "stream",
            reason,
        }) => assert!(reason.contains("subjects is"), "{reason}"),
        other => panic!("expected InvalidInput on stream, got {other:?}"),
    }
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn server_limits_below_the_store_limits_are_refused_naming_the_setting() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    // A server with NATS's defaults: max_payload 1 MiB, atomic batches of up to 1,000.
    let port = common::free_port();
    let config = format!(
        "listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: \"{}\" }}\n",
        dir.path().join("js").display()
    );
    let server = NatsServer::with_config(dir.path(), port, &config);
    let store = common::open_when_ready(&server.url(), opts(Duration::from_secs(5)));
    let mut big = ev("big", 1, "big-1");
    big = big.with_data("blob", "b".repeat(1_048_000));
    match store.save_event(&big) {
        Err(Error::InvalidInput {
            field: "event",
            reason,
        }) => {
            assert!(reason.contains("max_payload"), "{reason}")
        }
        other => panic!("expected InvalidInput naming max_payload, got {other:?}"),
    }
    let batch: Vec<Event> = (1..=1001)
        .map(|v| ev("many", v, &format!("many-{v}")))
        .collect();
    match store.save_events(&batch) {
        Err(Error::InvalidInput {
            field: "events",
            reason,
        }) => {
            assert!(reason.contains("max_msgs"), "{reason}")
        }
        other => panic!("expected InvalidInput naming max_msgs, got {other:?}"),
    }
    assert_eq!(
        store.last_sequence().unwrap(),
        0,
        "a refused save wrote something"
    );
    // At the server's limits, both are taken.
    assert_eq!(store.save_events(&batch[..1000]).unwrap(), 1000);
}

#[test]
#[cfg_attr(
    aether_skip_jetstream,
    ignore = "AETHER_SKIP_JETSTREAM=1 and no nats-server"
)]
fn concurrent_batches_are_never_interleaved_and_the_sequence_stays_gapless() {
    require_nats();
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    let url = server.url();
    // Four writers in separate handles (as separate processes would be), each saving
    // batches of five on an actor of its own while the others do, plus single events.
    const BATCHES: i64 = 25;
    const SIZE: i64 = 5;
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let url = url.clone();
            std::thread::spawn(move || {
                let store = common::open_when_ready(&url, opts(Duration::from_secs(10)));
                let actor = format!("batcher-{w}");
                let mut sequences = Vec::new();
                for b in 0..BATCHES {
                    let batch: Vec<Event> = (1..=SIZE)
                        .map(|i| {
                            let v = b * SIZE + i;
                            ev(&actor, v, &format!("{actor}-{v}"))
                        })
                        .collect();
                    sequences.push(store.save_events(&batch).unwrap());
                    let single = format!("single-{w}");
                    store
                        .save_event(&ev(&single, b + 1, &format!("{single}-{}", b + 1)))
                        .unwrap();
                }
                sequences
            })
        })
        .collect();
    let last_of_batches: Vec<Vec<u64>> = writers.into_iter().map(|h| h.join().unwrap()).collect();
    let store = common::open_when_ready(&url, opts(Duration::from_secs(10)));
    let all = store.read_all(1, usize::MAX).unwrap();
    assert_eq!(all.len() as i64, 4 * BATCHES * (SIZE + 1));
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.sequence, i as u64 + 1, "a gap in the store-wide sequence");
    }
    // Every batch occupies SIZE consecutive sequences, in version order, ending at the
    // sequence its save returned.
    for (w, lasts) in last_of_batches.iter().enumerate() {
        let actor = format!("batcher-{w}");
        for (b, &last) in lasts.iter().enumerate() {
            for i in 0..SIZE {
                let e = &all[(last - (SIZE - 1 - i) as u64 - 1) as usize];
                assert_eq!(
                    e.event.actor_id, actor,
                    "batch {b} of {actor} is interleaved"
                );
                assert_eq!(e.event.version, b as i64 * SIZE + i + 1);
            }
        }
    }
}
