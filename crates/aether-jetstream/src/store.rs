//! `JetStreamStore`: the store contract on a NATS JetStream stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use async_nats::{HeaderMap, Request, RequestErrorKind};
use base64::Engine;
use bytes::Bytes;
use crossbeam_channel::Receiver;
use futures_util::StreamExt;
use serde::Deserialize;

use aether_core::notify::Notifier;
use aether_core::{
    ActorSnapshot, Error, Event, EventBus, EventStore, EventStored, Metrics, MetricsSnapshot,
    Outcome, ReplayError, ReplayResult, Result, SequencedEvent, SnapshotStore, Timestamp,
};

use crate::options::JetStreamOptions;
use crate::record::{self, RawRecord};

/// Room kept in each message for NATS and aether headers when checking `max_payload`.
const HEADER_ALLOWANCE: usize = 1024;
/// The per-actor cache of `(subject sequence, version)` is cleared past this many actors;
/// it only saves reads, correctness rests on the server's checks.
const MAX_CACHED_ACTORS: usize = 1 << 20;
/// JetStream's "wrong last sequence" error code.
const ERR_WRONG_LAST_SEQUENCE: u64 = 10071;
/// JetStream's "message size exceeds maximum allowed" error code.
const ERR_MESSAGE_TOO_LARGE: u64 = 10054;

/// What this process knows about the end of the events stream. Kept current by the stream
/// follower (every message, from any process) and by this process's own acknowledged saves.
#[derive(Debug, Default)]
struct Tail {
    /// The last stream sequence accounted for in `next_event_seq`.
    stream_seq: u64,
    /// The store-wide sequence the next stored event gets.
    next_event_seq: u64,
    /// The last stream sequence whose EventStored notifications have been published.
    notified_seq: u64,
    /// Per actor subject: (stream sequence of its last message, the actor's version there).
    actors: HashMap<String, (u64, i64)>,
    /// Why the follower is not running, if it stopped.
    follower_error: Option<String>,
}

impl Tail {
    fn remember(&mut self, subject: &str, seq: u64, version: i64) {
        match self.actors.get_mut(subject) {
            Some(known) if known.0 >= seq => {}
            Some(known) => *known = (seq, version),
            None => {
                if self.actors.len() >= MAX_CACHED_ACTORS {
                    self.actors.clear();
                }
                self.actors.insert(subject.to_owned(), (seq, version));
            }
        }
    }
}

#[derive(Debug)]
struct Shared {
    tail: Mutex<Tail>,
    moved: Condvar,
    notifier: RwLock<Notifier>,
}

impl Shared {
    fn tail(&self) -> MutexGuard<'_, Tail> {
        self.tail.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn metrics(&self) -> Arc<Metrics> {
        self.notifier
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .metrics()
            .clone()
    }

    /// Wait until `f(tail)` holds or `timeout` passes; returns whether it holds.
    fn wait_until(&self, timeout: Duration, f: impl Fn(&Tail) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut t = self.tail();
        loop {
            if f(&t) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            t = self
                .moved
                .wait_timeout(t, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

#[derive(Debug, Clone)]
struct Names {
    stream: String,
    snapshot_stream: String,
    events_prefix: String,
    snapshots_prefix: String,
    events_all: String,
}

impl Names {
    fn events_subject(&self, actor_id: &str) -> String {
        format!("{}{}", self.events_prefix, record::actor_token(actor_id))
    }
    fn snapshots_subject(&self, actor_id: &str) -> String {
        format!("{}{}", self.snapshots_prefix, record::actor_token(actor_id))
    }
}

/// The publish acknowledgement (or error) JetStream answers with.
#[derive(Debug, Deserialize)]
struct PubAck {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    duplicate: bool,
    error: Option<ApiError>,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    #[serde(default)]
    code: u64,
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

/// An aether event and snapshot store on NATS JetStream, shared by every process that
/// opens the same stream. See the crate documentation for the layout and guarantees.
///
/// Blocking: each call waits on the store's own tokio runtime, so it must not be called
/// from inside an async task (use `spawn_blocking`). `Send + Sync`.
pub struct JetStreamStore {
    // Declared first so it is dropped (and its tasks stopped) before the client.
    runtime: Option<tokio::runtime::Runtime>,
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    names: Names,
    opts: JetStreamOptions,
    max_payload: usize,
    shared: Arc<Shared>,
    /// One save at a time per process: each save states the stream sequence it follows,
    /// so concurrent saves of one process would only reject each other at the server.
    lane: Mutex<()>,
    closed: AtomicBool,
    follower: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for JetStreamStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamStore")
            .field("stream", &self.names.stream)
            .field("subject_prefix", &self.opts.subject_prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(message: impl Into<String>, outcome: Outcome) -> Error {
    Error::Unavailable {
        message: message.into(),
        outcome,
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidInput {
        field,
        reason: reason.into(),
    }
}

/// Map a request failure. `written` is the outcome when the request may have reached the
/// server: `Unknown` for writes, `NotApplied` for reads.
fn request_error(operation: &'static str, e: async_nats::RequestError, written: Outcome) -> Error {
    match e.kind() {
        RequestErrorKind::TimedOut => Error::Timeout {
            operation,
            outcome: written,
        },
        // Nobody listens on the subject: no server with the stream is reachable (server
        // down, no stream leader elected yet, or the stream was deleted). Nothing was stored.
        RequestErrorKind::NoResponders => unavailable(
            format!("{operation}: no JetStream server answered (no responders: server, stream leader or stream missing)"),
            Outcome::NotApplied,
        ),
        RequestErrorKind::Other => unavailable(format!("{operation}: {e}"), written),
    }
}

/// Parse a raw NATS header block (`NATS/1.0\r\nName: value\r\n...`).
fn parse_header_block(block: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let text = String::from_utf8_lossy(block);
    for line in text.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim(), value.trim());
        }
    }
    headers
}

fn parse_wrong_last(description: &str) -> u64 {
    description
        .rsplit(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The server addresses of a `url` argument (comma-separated). Its syntax is checked
/// here, before anything connects, so a malformed address is the caller's mistake
/// ([`Error::InvalidInput`] on `url`), not an unreachable server.
fn server_addrs(url: &str) -> Result<Vec<async_nats::ServerAddr>> {
    const FORM: &str = "a NATS server address is [nats|tls|ws|wss://][user:password@]host[:port]";
    let servers = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            let addr = u
                .parse::<async_nats::ServerAddr>()
                .map_err(|e| invalid("url", format!("{u:?}: {e}")))?;
            let parts = addr.clone().into_inner();
            if addr.host().is_empty() {
                return Err(invalid("url", format!("{u:?} names no host; {FORM}")));
            }
            if addr.port() == 0 {
                return Err(invalid("url", format!("{u:?}: port 0; {FORM}")));
            }
            if !matches!(parts.path(), "" | "/")
                || parts.query().is_some()
                || parts.fragment().is_some()
            {
                return Err(invalid(
                    "url",
                    format!("{u:?} has a path, query or fragment; {FORM}"),
                ));
            }
            Ok(addr)
        })
        .collect::<Result<Vec<_>>>()?;
    if servers.is_empty() {
        return Err(invalid("url", "no server address given"));
    }
    Ok(servers)
}

impl JetStreamStore {
    /// Connect to `url` (one server, or a comma-separated list of a cluster's servers),
    /// create the events and snapshot streams when missing, and start following the
    /// events stream for EventStored. Fails within `connect_timeout` with
    /// [`Error::Unavailable`] when no server answers; a malformed address (no host, a
    /// path, an unknown scheme) is [`Error::InvalidInput`] on `url`, before connecting.
    pub fn connect(url: &str, opts: JetStreamOptions) -> Result<JetStreamStore> {
        opts.validate()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("aether-jetstream")
            .enable_all()
            .build()
            .map_err(|e| Error::Storage {
                context: "starting the JetStream client runtime".into(),
                source: e,
                outcome: aether_core::Outcome::NotApplied,
            })?;
        let names = Names {
            stream: opts.stream.clone(),
            snapshot_stream: format!("{}_SNAPSHOTS", opts.stream),
            events_prefix: format!("{}.events.", opts.subject_prefix),
            snapshots_prefix: format!("{}.snapshots.", opts.subject_prefix),
            events_all: format!("{}.events.>", opts.subject_prefix),
        };
        let connect_timeout = opts.connect_timeout;
        let servers = server_addrs(url)?;
        let client = runtime.block_on(async {
            let mut co = async_nats::ConnectOptions::new()
                .name("aether-jetstream")
                .connection_timeout(connect_timeout)
                .request_timeout(Some(opts.request_timeout));
            if let Some(path) = &opts.credentials_file {
                co = co
                    .credentials_file(path)
                    .await
                    .map_err(|e| invalid("credentials_file", format!("{}: {e}", path.display())))?;
            }
            match tokio::time::timeout(connect_timeout, co.connect(servers)).await {
                Ok(Ok(client)) => Ok(client),
                Ok(Err(e)) => Err(unavailable(
                    format!("cannot connect to NATS at {url}: {e}"),
                    Outcome::NotApplied,
                )),
                Err(_) => Err(unavailable(
                    format!(
                        "cannot connect to NATS at {url}: no answer within {connect_timeout:?}"
                    ),
                    Outcome::NotApplied,
                )),
            }
        })?;
        let max_payload = client.server_info().max_payload;
        // The JetStream context spawns its own task: create it inside the runtime.
        let js = {
            let _inside = runtime.enter();
            async_nats::jetstream::new(client.clone())
        };
        let shared = Arc::new(Shared {
            tail: Mutex::new(Tail::default()),
            moved: Condvar::new(),
            notifier: RwLock::new(Notifier::new(opts.event_stored_capacity)),
        });
        let mut store = JetStreamStore {
            runtime: None,
            client,
            js,
            names,
            opts,
            max_payload,
            shared,
            lane: Mutex::new(()),
            closed: AtomicBool::new(false),
            follower: None,
        };
        let last = runtime.block_on(async {
            match tokio::time::timeout(connect_timeout, store.ensure_streams()).await {
                Ok(r) => r,
                Err(_) => Err(unavailable(
                    format!(
                        "setting up stream {} took longer than {connect_timeout:?} (is JetStream enabled, with a leader?)",
                        store.names.stream
                    ),
                    Outcome::NotApplied,
                )),
            }
        })?;
        let next_event_seq = if last == 0 {
            1
        } else {
            let (base, count) = runtime.block_on(store.extent(last, "open"))?;
            base + count
        };
        {
            let mut t = store.shared.tail();
            t.stream_seq = last;
            t.next_event_seq = next_event_seq;
            t.notified_seq = last;
        }
        store.follower = Some(runtime.spawn(follow(
            store.js.clone(),
            store.client.clone(),
            store.names.clone(),
            last + 1,
            store.shared.clone(),
        )));
        store.runtime = Some(runtime);
        Ok(store)
    }

    /// Also publish EventStored to `bus`'s `__internal__` namespace.
    pub fn with_event_bus(self, bus: Arc<EventBus>) -> Self {
        self.shared
            .notifier
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .set_event_bus(bus);
        self
    }

    /// Count into shared `metrics`.
    pub fn with_metrics(self, metrics: Arc<Metrics>) -> Self {
        self.shared
            .notifier
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .set_metrics(metrics);
        self
    }

    /// The events stream's name.
    pub fn stream_name(&self) -> &str {
        &self.names.stream
    }

    /// The subject an actor's events are published on.
    pub fn events_subject(&self, actor_id: &str) -> String {
        self.names.events_subject(actor_id)
    }

    /// The underlying NATS client (for tests, tools and raw comparisons).
    pub fn nats_client(&self) -> &async_nats::Client {
        &self.client
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("runtime lives as long as the store")
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt().block_on(f)
    }

    /// Create both streams if missing and check they can serve us; returns the events
    /// stream's last sequence.
    async fn ensure_streams(&self) -> Result<u64> {
        let file = |name: &str, subject: String, per_subject: i64| StreamConfig {
            name: name.to_owned(),
            subjects: vec![subject],
            storage: StorageType::File,
            num_replicas: self.opts.replicas,
            duplicate_window: self.opts.duplicate_window,
            max_messages_per_subject: per_subject,
            deny_delete: per_subject == 0,
            deny_purge: per_subject == 0,
            ..StreamConfig::default()
        };
        let events = file(&self.names.stream, self.names.events_all.clone(), 0);
        let snapshots = file(
            &self.names.snapshot_stream,
            format!("{}>", self.names.snapshots_prefix),
            1,
        );
        let mut last = 0;
        for (config, is_events) in [(events, true), (snapshots, false)] {
            let wanted = config.subjects[0].clone();
            let name = config.name.clone();
            let mut stream = self.js.get_or_create_stream(config).await.map_err(|e| {
                unavailable(format!("opening stream {name}: {e}"), Outcome::NotApplied)
            })?;
            let info = stream
                .info()
                .await
                .map_err(|e| unavailable(format!("stream {name}: {e}"), Outcome::NotApplied))?;
            if !info.config.subjects.contains(&wanted) {
                return Err(invalid(
                    "stream",
                    format!(
                        "existing stream {name} does not take subject {wanted} (it has {:?})",
                        info.config.subjects
                    ),
                ));
            }
            if is_events {
                last = info.state.last_sequence;
            }
        }
        Ok(last)
    }

    // -- reads ------------------------------------------------------------------------

    /// Get one message of `stream` through the stream leader (`$JS.API.STREAM.MSG.GET`):
    /// `None` when no message matches. Not JetStream's "direct get": with `allow_direct`
    /// any replica answers, and a lagging follower would hand out a stale message, so a
    /// reader could miss its own acknowledged save.
    async fn msg_get(
        &self,
        stream: &str,
        request: serde_json::Value,
        operation: &'static str,
    ) -> Result<Option<RawRecord>> {
        #[derive(Deserialize)]
        struct Reply {
            message: Option<StoredMsg>,
            error: Option<ApiError>,
        }
        #[derive(Deserialize)]
        struct StoredMsg {
            subject: String,
            seq: u64,
            #[serde(default)]
            hdrs: Option<String>,
            #[serde(default)]
            data: Option<String>,
            time: String,
        }
        let reply = self
            .client
            .send_request(
                format!("$JS.API.STREAM.MSG.GET.{stream}"),
                Request::new()
                    .payload(Bytes::from(request.to_string()))
                    .timeout(Some(self.opts.request_timeout)),
            )
            .await
            .map_err(|e| request_error(operation, e, Outcome::NotApplied))?;
        let bad = |what: String| {
            unavailable(
                format!("{operation}: reading stream {stream}: {what}"),
                Outcome::NotApplied,
            )
        };
        let parsed: Reply = serde_json::from_slice(&reply.payload)
            .map_err(|e| bad(format!("unreadable answer ({e})")))?;
        if let Some(err) = parsed.error {
            if err.code == 404 {
                return Ok(None);
            }
            return Err(bad(format!(
                "{} (code {}, err_code {})",
                err.description, err.code, err.err_code
            )));
        }
        let msg = parsed
            .message
            .ok_or_else(|| bad("answer without a message".into()))?;
        let b64 = &base64::engine::general_purpose::STANDARD;
        let payload = match msg.data {
            Some(d) => b64.decode(d).map_err(|e| bad(format!("payload: {e}")))?,
            None => Vec::new(),
        };
        let headers = match msg.hdrs {
            Some(h) => Some(parse_header_block(
                &b64.decode(h).map_err(|e| bad(format!("headers: {e}")))?,
            )),
            None => None,
        };
        let time_nanos = Timestamp::parse_rfc3339(&msg.time).map_or(0, |t| t.unix_nanos());
        Ok(Some(RawRecord {
            seq: msg.seq,
            subject: msg.subject,
            headers,
            payload: Bytes::from(payload),
            time_nanos,
        }))
    }

    async fn last_on(&self, subject: &str, operation: &'static str) -> Result<Option<RawRecord>> {
        self.msg_get(
            &self.names.stream,
            serde_json::json!({ "last_by_subj": subject }),
            operation,
        )
        .await
    }

    /// The store-wide sequence of the record at stream sequence `seq` and how many events it
    /// holds. Our messages say so in their headers; a message without them (published by
    /// something else) is one record, numbered after the record before it.
    async fn extent(&self, seq: u64, operation: &'static str) -> Result<(u64, u64)> {
        let mut foreign_before = 0u64;
        let mut s = seq;
        let mut own_count = None;
        while s > 0 {
            let rec = self
                .msg_get(
                    &self.names.stream,
                    serde_json::json!({ "seq": s }),
                    operation,
                )
                .await?;
            if let Some(rec) = rec {
                match record::sequence_header(rec.headers.as_ref()) {
                    Some((base, count)) => {
                        return Ok(match own_count {
                            None => (base, count),
                            Some(c) => (base + count + foreign_before, c),
                        });
                    }
                    None if own_count.is_none() => own_count = Some(1),
                    None => foreign_before += 1,
                }
            } else if own_count.is_none() {
                // Deleted message: nothing to number (callers only ask for existing ones).
                own_count = Some(0);
            }
            s -= 1;
        }
        Ok((1 + foreign_before, own_count.unwrap_or(0)))
    }

    /// The first message at or after stream sequence `seq` (which must not be past the
    /// last): its stream sequence and store-wide sequence.
    async fn first_at_or_after(&self, seq: u64, operation: &'static str) -> Result<(u64, u64)> {
        let rec = self
            .msg_get(
                &self.names.stream,
                serde_json::json!({ "seq": seq, "next_by_subj": self.names.events_all }),
                operation,
            )
            .await?
            .ok_or_else(|| {
                unavailable(
                    format!("{operation}: no message at or after stream sequence {seq}"),
                    Outcome::NotApplied,
                )
            })?;
        let base = match record::sequence_header(rec.headers.as_ref()) {
            Some((base, _)) => base,
            None => self.extent(rec.seq, operation).await?.0,
        };
        Ok((rec.seq, base))
    }

    /// Read the messages of `filter` from stream sequence `start` through `end` with an
    /// ordered consumer; `f` returns false to stop early.
    async fn scan(
        &self,
        filter: &str,
        start: u64,
        end: u64,
        operation: &'static str,
        mut f: impl FnMut(RawRecord) -> bool,
    ) -> Result<()> {
        if end < start.max(1) {
            return Ok(());
        }
        let deliver_policy = if start <= 1 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: start,
            }
        };
        let config = OrderedConfig {
            deliver_subject: self.client.new_inbox(),
            filter_subject: filter.to_owned(),
            deliver_policy,
            ..OrderedConfig::default()
        };
        let timeout = self.opts.request_timeout;
        let consumer = tokio::time::timeout(
            timeout,
            self.js
                .create_consumer_on_stream(config, &self.names.stream),
        )
        .await
        .map_err(|_| Error::Timeout {
            operation,
            outcome: Outcome::NotApplied,
        })?
        .map_err(|e| {
            unavailable(
                format!("{operation}: creating a consumer: {e}"),
                Outcome::NotApplied,
            )
        })?;
        let name = consumer.cached_info().name.clone();
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| unavailable(format!("{operation}: {e}"), Outcome::NotApplied))?;
        // One timer for the whole scan, not one per message: it fires `timeout` after the
        // last message received, and a firing that finds newer messages is moved on.
        let idle = tokio::time::sleep(timeout);
        tokio::pin!(idle);
        let mut last_message = tokio::time::Instant::now();
        let result = loop {
            let next = tokio::select! {
                biased;
                next = messages.next() => next,
                () = &mut idle => {
                    let deadline = last_message + timeout;
                    if tokio::time::Instant::now() >= deadline {
                        break Err(Error::Timeout {
                            operation,
                            outcome: Outcome::NotApplied,
                        });
                    }
                    idle.as_mut().reset(deadline);
                    continue;
                }
            };
            last_message = tokio::time::Instant::now();
            let msg = match next {
                Some(Ok(msg)) => msg,
                Some(Err(e)) => {
                    break Err(unavailable(
                        format!("{operation}: reading the stream: {e}"),
                        Outcome::NotApplied,
                    ))
                }
                None => {
                    break Err(unavailable(
                        format!("{operation}: the stream consumer ended"),
                        Outcome::NotApplied,
                    ))
                }
            };
            let (seq, time_nanos) = match msg.info() {
                Ok(info) => (info.stream_sequence, info.published.unix_timestamp_nanos()),
                Err(e) => {
                    break Err(unavailable(
                        format!("{operation}: message without stream metadata: {e}"),
                        Outcome::NotApplied,
                    ))
                }
            };
            let msg = msg.message;
            let go_on = f(RawRecord {
                seq,
                subject: msg.subject.to_string(),
                headers: msg.headers,
                payload: msg.payload,
                time_nanos,
            });
            if !go_on || seq >= end {
                break Ok(());
            }
        };
        drop(messages);
        // The consumer is ephemeral (the server would drop it after 30 s idle); delete it
        // now without waiting for the answer.
        let js = self.js.clone();
        let stream = self.names.stream.clone();
        tokio::spawn(async move {
            let _ = js.delete_consumer_from_stream(name, stream).await;
        });
        result
    }

    /// The actor's last message on `subject`: (its stream sequence, the actor's version),
    /// (0, 0) when the actor has no events.
    async fn actor_tail(
        &self,
        actor_id: &str,
        subject: &str,
        operation: &'static str,
    ) -> Result<(u64, i64)> {
        let Some(last) = self.last_on(subject, operation).await? else {
            return Ok((0, 0));
        };
        let version = match record::decode_heads(&last.payload) {
            Ok(heads) if heads.iter().all(|h| h.actor_id == actor_id) => {
                heads.iter().map(|h| h.version).max().unwrap_or(0)
            }
            // A malformed (or foreign) last message: the version is the highest among the
            // actor's events that do decode.
            _ => {
                let mut max = 0;
                self.scan(subject, 1, last.seq, operation, |rec| {
                    if let Ok(heads) = record::decode_heads(&rec.payload) {
                        for h in heads.iter().filter(|h| h.actor_id == actor_id) {
                            max = max.max(h.version);
                        }
                    }
                    true
                })
                .await?;
                max
            }
        };
        Ok((last.seq, version))
    }

    /// Every record of an actor from the start: decoded events with version >= `from`,
    /// and the records that do not decode.
    fn read_actor(
        &self,
        actor_id: &str,
        from_version: i64,
        operation: &'static str,
    ) -> Result<(Vec<Event>, Vec<RawRecord>, Vec<String>)> {
        let mut events = Vec::new();
        let (bad, causes) = self.scan_actor(actor_id, operation, |rec| {
            let decoded = record::decode_events(&rec.payload)?;
            events.extend(
                decoded
                    .into_iter()
                    .filter(|e| e.actor_id == actor_id && e.version >= from_version),
            );
            Ok(())
        })?;
        Ok((events, bad, causes))
    }

    /// Run `decode` on every record of an actor from the start, as the consumer receives
    /// them; returns the records `decode` refused, with its reasons. (Decoding on a second
    /// thread was measured no faster: the server's delivery is the bottleneck, and on two
    /// cores the extra thread competes with it.)
    fn scan_actor(
        &self,
        actor_id: &str,
        operation: &'static str,
        mut decode: impl FnMut(&RawRecord) -> std::result::Result<(), String>,
    ) -> Result<(Vec<RawRecord>, Vec<String>)> {
        let subject = self.names.events_subject(actor_id);
        let mut bad = Vec::new();
        let mut causes = Vec::new();
        self.block_on(async {
            let Some(last) = self.last_on(&subject, operation).await? else {
                return Ok(());
            };
            self.scan(&subject, 1, last.seq, operation, |rec| {
                if let Err(cause) = decode(&rec) {
                    causes.push(cause);
                    bad.push(rec);
                }
                true
            })
            .await
        })?;
        Ok((bad, causes))
    }

    /// The first malformed record as the error a plain replay reports.
    fn first_corrupt(
        &self,
        bad: &[RawRecord],
        causes: &[String],
        operation: &'static str,
    ) -> Result<()> {
        if let (Some(rec), Some(cause)) = (bad.first(), causes.first()) {
            let sequence = self.block_on(self.extent(rec.seq, operation))?.0;
            return Err(Error::Corrupt {
                sequence,
                location: self.corrupt_location(rec),
                cause: cause.clone(),
            });
        }
        Ok(())
    }

    fn corrupt_location(&self, rec: &RawRecord) -> String {
        format!(
            "stream {} sequence {}, subject {}",
            self.names.stream, rec.seq, rec.subject
        )
    }

    // -- writes -----------------------------------------------------------------------

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("the store was closed".into()));
        }
        Ok(())
    }

    fn append(&self, events: &[Event], operation: &'static str) -> Result<u64> {
        self.check_open()?;
        let limits = &self.opts.limits;
        limits.check_batch(events)?;
        let encoded = events
            .iter()
            .map(|e| {
                let json = e.to_json();
                limits.check_record_len("event", json.len())?;
                Ok(json)
            })
            .collect::<Result<Vec<_>>>()?;
        limits.check_batch_bytes(encoded.iter().map(Vec::len).sum())?;
        let payload = Bytes::from(record::encode_payload(&encoded));
        if payload.len() + HEADER_ALLOWANCE > self.max_payload {
            return Err(invalid(
                if events.len() == 1 { "event" } else { "events" },
                format!(
                    "encodes to {} bytes; with headers that exceeds the server's max_payload of {} bytes (one save is one message, so a batch must fit in one)",
                    payload.len(),
                    self.max_payload
                ),
            ));
        }
        let first = &events[0];
        let last_version = events[events.len() - 1].version;
        let count = events.len() as u64;
        let actor_id = first.actor_id.as_str();
        let subject = self.names.events_subject(actor_id);
        let msg_id = record::msg_id(&first.id);
        let metrics = self.shared.metrics();
        let timeout = self.opts.request_timeout;

        let _lane = self.lane.lock().unwrap_or_else(|p| p.into_inner());
        let give_up = Instant::now() + timeout * 4;
        // Set when `known` comes straight from the server rather than from the cache.
        let mut fresh: Option<(u64, i64)> = None;
        loop {
            let (tail_seq, next_event_seq, cached) = {
                let t = self.shared.tail();
                (
                    t.stream_seq,
                    t.next_event_seq,
                    t.actors.get(&subject).copied(),
                )
            };
            let was_fresh = fresh.is_some();
            // An actor this process has not seen is assumed new; if it is not, the server
            // says so (wrong last subject sequence) and we read it.
            let (subject_seq, current) = fresh.take().or(cached).unwrap_or((0, 0));
            if first.version <= current {
                if !was_fresh {
                    // Report the version as it is now, not as this process last saw it.
                    let now = self.block_on(self.actor_tail(actor_id, &subject, operation))?;
                    self.shared.tail().remember(&subject, now.0, now.1);
                    fresh = Some(now);
                    continue;
                }
                metrics.add_conflict();
                return Err(Error::VersionConflict {
                    actor_id: actor_id.to_owned(),
                    attempted_version: first.version,
                    current_version: current,
                });
            }
            let mut headers = HeaderMap::new();
            headers.insert(record::HDR_MSG_ID, msg_id.as_str());
            headers.insert(record::HDR_EXPECTED_LAST_SEQ, tail_seq.to_string().as_str());
            headers.insert(
                record::HDR_EXPECTED_LAST_SUBJECT_SEQ,
                subject_seq.to_string().as_str(),
            );
            headers.insert(record::HDR_SEQUENCE, next_event_seq.to_string().as_str());
            if count > 1 {
                headers.insert(record::HDR_COUNT, count.to_string().as_str());
            }
            let reply = self
                .block_on(
                    self.client.send_request(
                        subject.clone(),
                        Request::new()
                            .headers(headers)
                            .payload(payload.clone())
                            .timeout(Some(timeout)),
                    ),
                )
                .map_err(|e| request_error(operation, e, Outcome::Unknown))?;
            let ack: PubAck = serde_json::from_slice(&reply.payload).map_err(|e| {
                unavailable(
                    format!(
                        "{operation}: unreadable publish acknowledgement ({e}): {}",
                        String::from_utf8_lossy(&reply.payload)
                    ),
                    Outcome::Unknown,
                )
            })?;
            match ack.error {
                None if !ack.duplicate => {
                    let seq = ack.seq;
                    metrics.add_events_saved(count);
                    let mut t = self.shared.tail();
                    if t.stream_seq + 1 == seq {
                        t.stream_seq = seq;
                        t.next_event_seq = next_event_seq + count;
                    }
                    t.remember(&subject, seq, last_version);
                    if t.notified_seq + 1 == seq {
                        // Everything before this message is notified: publish ours now
                        // rather than wait for the follower to bring it back. The
                        // timestamp is this process's clock at the acknowledgement.
                        let now = Timestamp::now();
                        let notifier = self
                            .shared
                            .notifier
                            .read()
                            .unwrap_or_else(|p| p.into_inner());
                        for (i, e) in events.iter().enumerate() {
                            notifier.publish(EventStored {
                                event_id: e.id.clone(),
                                actor_id: e.actor_id.clone(),
                                version: e.version,
                                timestamp: now,
                                sequence: next_event_seq + i as u64,
                            });
                        }
                        t.notified_seq = seq;
                        drop(t);
                        self.shared.moved.notify_all();
                    } else {
                        drop(t);
                        // Messages of other processes come first: the follower publishes
                        // in stream order, ours included.
                        self.wait_notified(seq);
                    }
                    return Ok(next_event_seq + count - 1);
                }
                None => {
                    return self.resolve_duplicate(ack.seq, events, &subject, &payload, operation)
                }
                Some(err) if err.err_code == ERR_WRONG_LAST_SEQUENCE => {
                    // The stream or the actor moved on since we looked. Read the actor as it
                    // is now: a conflict if its version caught up, otherwise try again once
                    // this process has seen the messages it missed.
                    let server_last = parse_wrong_last(&err.description);
                    let now = self.block_on(self.actor_tail(actor_id, &subject, operation))?;
                    self.shared.tail().remember(&subject, now.0, now.1);
                    if first.version <= now.1 {
                        metrics.add_conflict();
                        return Err(Error::VersionConflict {
                            actor_id: actor_id.to_owned(),
                            attempted_version: first.version,
                            current_version: now.1,
                        });
                    }
                    let wanted = server_last.max(now.0);
                    let left = give_up.saturating_duration_since(Instant::now());
                    if left.is_zero() || !self.shared.wait_until(left, |t| t.stream_seq >= wanted) {
                        return Err(Error::Timeout {
                            operation,
                            outcome: Outcome::NotApplied,
                        });
                    }
                    fresh = Some(now);
                }
                Some(err) if err.err_code == ERR_MESSAGE_TOO_LARGE => {
                    return Err(invalid(
                        if count == 1 { "event" } else { "events" },
                        format!("the server refused the message: {}", err.description),
                    ))
                }
                Some(err) => {
                    return Err(unavailable(
                        format!(
                            "{operation}: JetStream refused the publish: {} (code {}, err_code {})",
                            err.description, err.code, err.err_code
                        ),
                        Outcome::NotApplied,
                    ))
                }
            }
        }
    }

    /// The server already holds a message with this save's `Nats-Msg-Id`. If it is this
    /// very save (a retry after an unknown outcome whose first attempt landed), answer as
    /// every backend answers a save of an already stored version: a conflict. Otherwise
    /// the ID is taken by a different message.
    fn resolve_duplicate(
        &self,
        seq: u64,
        events: &[Event],
        subject: &str,
        payload: &Bytes,
        operation: &'static str,
    ) -> Result<u64> {
        let stored = self
            .block_on(self.msg_get(&self.names.stream, serde_json::json!({ "seq": seq }), operation))?
            .ok_or_else(|| {
                unavailable(
                    format!("{operation}: the server reports a duplicate at sequence {seq}, which is gone"),
                    Outcome::NotApplied,
                )
            })?;
        if stored.subject != subject || stored.payload != *payload {
            return Err(invalid(
                "id",
                format!(
                    "the event ID was used by a different message (stream sequence {seq}) within the stream's deduplication window"
                ),
            ));
        }
        let actor_id = events[0].actor_id.as_str();
        let now = self.block_on(self.actor_tail(actor_id, subject, operation))?;
        self.shared.tail().remember(subject, now.0, now.1);
        self.shared.metrics().add_conflict();
        Err(Error::VersionConflict {
            actor_id: actor_id.to_owned(),
            attempted_version: events[0].version,
            current_version: now.1,
        })
    }

    /// Wait until the follower has published EventStored for `seq`. The save is stored
    /// either way; if the follower is cut off, its notifications follow when it resumes.
    fn wait_notified(&self, seq: u64) {
        self.shared
            .wait_until(self.opts.request_timeout, |t| t.notified_seq >= seq);
    }
}

/// Follow the events stream from `start` with an ordered consumer: account every message
/// in the tail and publish EventStored for every event, in stream order, whichever
/// process stored it. Recreated after failures.
async fn follow(
    js: async_nats::jetstream::Context,
    client: async_nats::Client,
    names: Names,
    mut start: u64,
    shared: Arc<Shared>,
) {
    loop {
        let config = OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: names.events_all.clone(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start.max(1),
            },
            ..OrderedConfig::default()
        };
        let messages = match js.create_consumer_on_stream(config, &names.stream).await {
            Ok(c) => c.messages().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let mut messages = match messages {
            Ok(m) => m,
            Err(e) => {
                shared.tail().follower_error = Some(e);
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
        };
        shared.tail().follower_error = None;
        while let Some(next) = messages.next().await {
            let msg = match next {
                Ok(msg) => msg,
                Err(e) => {
                    shared.tail().follower_error = Some(e.to_string());
                    break;
                }
            };
            let Ok(info) = msg.info() else { continue };
            let seq = info.stream_sequence;
            let time = Timestamp::from_unix_nanos(info.published.unix_timestamp_nanos());
            let msg = msg.message;
            apply(
                &shared,
                seq,
                msg.subject.as_str(),
                msg.headers.as_ref(),
                &msg.payload,
                time,
            );
            start = seq + 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Account one message of the events stream and publish its EventStored notifications.
fn apply(
    shared: &Shared,
    seq: u64,
    subject: &str,
    headers: Option<&HeaderMap>,
    payload: &[u8],
    time: Timestamp,
) {
    {
        // This process's own save already accounted and announced this message (the usual
        // case when the acknowledgement beats the follower): nothing to decode.
        let t = shared.tail();
        let known = t.actors.get(subject).is_some_and(|&(s, _)| s >= seq);
        if known && t.stream_seq >= seq && t.notified_seq >= seq {
            return;
        }
    }
    let heads = record::decode_heads(payload).ok();
    let base = {
        let mut t = shared.tail();
        let header = record::sequence_header(headers);
        let base = match header {
            Some((base, _)) => base,
            // A message without our headers counts as one record after the last one known.
            None if seq > t.stream_seq => t.next_event_seq,
            None => 0,
        };
        if seq > t.stream_seq {
            t.stream_seq = seq;
            t.next_event_seq = match header {
                Some((base, count)) => base + count,
                None => t.next_event_seq + 1,
            };
        }
        match heads.as_ref().and_then(|h| h.last()) {
            Some(last) => t.remember(subject, seq, last.version),
            // The actor's last message does not decode: forget what we knew, so the next
            // save reads the actor again.
            None => {
                t.actors.remove(subject);
            }
        }
        base
    };
    let mut t = shared.tail();
    // Notifications leave in stream order, each once: the save that stored a message may
    // have published them already (see `append`); both sides decide under the tail lock.
    if seq > t.notified_seq {
        if let (Some(heads), true) = (heads, base > 0) {
            let notifier = shared.notifier.read().unwrap_or_else(|p| p.into_inner());
            for (i, h) in heads.into_iter().enumerate() {
                notifier.publish(EventStored {
                    event_id: h.id,
                    actor_id: h.actor_id,
                    version: h.version,
                    timestamp: time,
                    sequence: base + i as u64,
                });
            }
        }
        t.notified_seq = seq;
    }
    drop(t);
    shared.moved.notify_all();
}

impl Drop for JetStreamStore {
    fn drop(&mut self) {
        if let Some(f) = self.follower.take() {
            f.abort();
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl EventStore for JetStreamStore {
    fn save_event(&self, event: &Event) -> Result<u64> {
        self.append(std::slice::from_ref(event), "save_event")
    }

    fn save_events(&self, events: &[Event]) -> Result<u64> {
        self.append(events, "save_events")
    }

    fn get_events(&self, actor_id: &str, from_version: i64) -> Result<Vec<Event>> {
        let (events, bad, causes) = self.read_actor(actor_id, from_version, "get_events")?;
        self.first_corrupt(&bad, &causes, "get_events")?;
        Ok(events)
    }

    /// Each event is decoded (a message that does not decode is an error, as in
    /// `get_events`), but what is handed out is the stored JSON when this store wrote it
    /// (its headers say so), so nothing is encoded again. A message from another
    /// publisher is handed out in the canonical encoding.
    fn get_events_json(&self, actor_id: &str, from_version: i64) -> Result<Vec<u8>> {
        let op = "get_events_json";
        let mut out = Vec::with_capacity(4096);
        out.push(b'[');
        let (bad, causes) = self.scan_actor(actor_id, op, |rec| {
            let ours = record::sequence_header(rec.headers.as_ref()).is_some();
            for raw in record::split_payload(&rec.payload)? {
                let e = Event::from_json(raw).map_err(|e| e.to_string())?;
                if e.actor_id != actor_id || e.version < from_version {
                    continue;
                }
                if out.len() > 1 {
                    out.push(b',');
                }
                if ours {
                    out.extend_from_slice(raw);
                } else {
                    e.write_json(&mut out);
                }
            }
            Ok(())
        })?;
        self.first_corrupt(&bad, &causes, op)?;
        out.push(b']');
        Ok(out)
    }

    fn get_events_with_errors(&self, actor_id: &str, from_version: i64) -> Result<ReplayResult> {
        let op = "get_events_with_errors";
        let (events, bad, causes) = self.read_actor(actor_id, from_version, op)?;
        let mut errors = Vec::with_capacity(bad.len());
        for (rec, cause) in bad.into_iter().zip(causes) {
            let sequence = self.block_on(self.extent(rec.seq, op))?.0;
            errors.push(ReplayError {
                sequence,
                cause: format!("{cause} (stream sequence {})", rec.seq),
                raw: rec.payload.to_vec(),
            });
        }
        if !errors.is_empty() {
            self.shared.metrics().add_replay_errors(errors.len() as u64);
        }
        Ok(ReplayResult { events, errors })
    }

    fn get_latest_version(&self, actor_id: &str) -> Result<i64> {
        self.opts.limits.check_actor_id(actor_id)?;
        let subject = self.names.events_subject(actor_id);
        let (seq, version) =
            self.block_on(self.actor_tail(actor_id, &subject, "get_latest_version"))?;
        if seq > 0 {
            self.shared.tail().remember(&subject, seq, version);
        }
        Ok(version)
    }

    fn read_all(&self, from_sequence: u64, limit: usize) -> Result<Vec<SequencedEvent>> {
        let op = "read_all";
        if limit == 0 {
            return Ok(Vec::new());
        }
        let from = from_sequence.max(1);
        self.block_on(async {
            let Some(last) = self.last_on(&self.names.events_all, op).await? else {
                return Ok(Vec::new());
            };
            let (last_base, last_count) = self.extent(last.seq, op).await?;
            if from >= last_base + last_count {
                return Ok(Vec::new());
            }
            // Find the message holding event `from`. The store-wide sequence never runs
            // behind the stream sequence, so it is at or before stream sequence `from`:
            // exactly there when no batches came before, otherwise a binary search finds it.
            let top = from.min(last.seq);
            let (top_seq, top_base) = self.first_at_or_after(top, op).await?;
            let start = if top_base <= from {
                top_seq
            } else {
                // Invariant: the message holding `from` is at stream sequence >= lo, < top.
                let (mut lo, mut hi) = (1u64, top - 1);
                while lo < hi {
                    let mid = lo + (hi - lo).div_ceil(2);
                    let (_, base) = self.first_at_or_after(mid, op).await?;
                    if base <= from {
                        lo = mid;
                    } else {
                        hi = mid - 1;
                    }
                }
                lo
            };
            let mut out = Vec::with_capacity(limit.min(4096));
            let mut next: Option<u64> = None;
            let mut failure: Option<Error> = None;
            // The first record's number, should it lack our headers, needs a walk back.
            let mut first_foreign = Some(self.first_at_or_after(start, op).await?.1);
            self.scan(&self.names.events_all, start, last.seq, op, |rec| {
                let (base, count) = match record::sequence_header(rec.headers.as_ref()) {
                    Some(h) => h,
                    None => (next.or(first_foreign.take()).unwrap_or(1), 1),
                };
                next = Some(base + count);
                if base + count <= from {
                    return true;
                }
                match record::decode_events(&rec.payload) {
                    Ok(events) => {
                        for (i, event) in events.into_iter().enumerate() {
                            let sequence = base + i as u64;
                            if sequence >= from && out.len() < limit {
                                out.push(SequencedEvent { sequence, event });
                            }
                        }
                    }
                    Err(cause) => {
                        failure = Some(Error::Corrupt {
                            sequence: base,
                            location: self.corrupt_location(&rec),
                            cause,
                        });
                        return false;
                    }
                }
                out.len() < limit
            })
            .await?;
            match failure {
                Some(e) => Err(e),
                None => Ok(out),
            }
        })
    }

    fn last_sequence(&self) -> Result<u64> {
        let op = "last_sequence";
        self.block_on(async {
            match self.last_on(&self.names.events_all, op).await? {
                None => Ok(0),
                Some(last) => {
                    let (base, count) = self.extent(last.seq, op).await?;
                    Ok(base + count - 1)
                }
            }
        })
    }

    fn flush(&self) -> Result<()> {
        // Every save already waited for the server's acknowledgement; nothing is buffered
        // here. How durable an acknowledged save is depends on the server (crate docs).
        self.block_on(self.client.flush())
            .map_err(|e| unavailable(format!("flush: {e}"), Outcome::NotApplied))
    }

    fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }

    fn event_stored_receiver(&self) -> Receiver<EventStored> {
        self.shared
            .notifier
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .receiver()
    }

    fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics().snapshot()
    }
}

impl SnapshotStore for JetStreamStore {
    fn save_snapshot(&self, snapshot: &ActorSnapshot) -> Result<()> {
        let op = "save_snapshot";
        self.check_open()?;
        let limits = &self.opts.limits;
        limits.check_actor_id(&snapshot.actor_id)?;
        let json = Bytes::from(snapshot.to_json());
        limits.check_record_len("snapshot", json.len())?;
        if json.len() + HEADER_ALLOWANCE > self.max_payload {
            return Err(invalid(
                "snapshot",
                format!(
                    "encodes to {} bytes, more than the server's max_payload of {} bytes allows",
                    json.len(),
                    self.max_payload
                ),
            ));
        }
        let subject = self.names.snapshots_subject(&snapshot.actor_id);
        let give_up = Instant::now() + self.opts.request_timeout * 4;
        loop {
            let current = self.block_on(self.msg_get(
                &self.names.snapshot_stream,
                serde_json::json!({ "last_by_subj": subject }),
                op,
            ))?;
            let last_seq = current.as_ref().map_or(0, |c| c.seq);
            // An undecodable stored snapshot does not block a new one.
            if let Some(stored) = current
                .as_ref()
                .and_then(|c| serde_json::from_slice::<ActorSnapshot>(&c.payload).ok())
            {
                if snapshot.version < stored.version {
                    return Err(Error::StaleSnapshot {
                        actor_id: snapshot.actor_id.clone(),
                        attempted_version: snapshot.version,
                        current_version: stored.version,
                    });
                }
            }
            let mut headers = HeaderMap::new();
            headers.insert(
                record::HDR_EXPECTED_LAST_SUBJECT_SEQ,
                last_seq.to_string().as_str(),
            );
            let reply = self
                .block_on(
                    self.client.send_request(
                        subject.clone(),
                        Request::new()
                            .headers(headers)
                            .payload(json.clone())
                            .timeout(Some(self.opts.request_timeout)),
                    ),
                )
                .map_err(|e| request_error(op, e, Outcome::Unknown))?;
            let ack: PubAck = serde_json::from_slice(&reply.payload).map_err(|e| {
                unavailable(
                    format!("{op}: unreadable acknowledgement: {e}"),
                    Outcome::Unknown,
                )
            })?;
            match ack.error {
                None => {
                    self.shared.metrics().add_snapshot();
                    return Ok(());
                }
                // Another writer replaced the snapshot meanwhile: compare again.
                Some(err) if err.err_code == ERR_WRONG_LAST_SEQUENCE => {
                    if Instant::now() >= give_up {
                        return Err(Error::Timeout {
                            operation: op,
                            outcome: Outcome::NotApplied,
                        });
                    }
                }
                Some(err) => {
                    return Err(unavailable(
                        format!(
                            "{op}: JetStream refused the publish: {} (err_code {})",
                            err.description, err.err_code
                        ),
                        Outcome::NotApplied,
                    ))
                }
            }
        }
    }

    fn get_latest_snapshot(&self, actor_id: &str) -> Result<Option<ActorSnapshot>> {
        let op = "get_latest_snapshot";
        let subject = self.names.snapshots_subject(actor_id);
        let Some(rec) = self.block_on(self.msg_get(
            &self.names.snapshot_stream,
            serde_json::json!({ "last_by_subj": subject }),
            op,
        ))?
        else {
            return Ok(None);
        };
        match serde_json::from_slice::<ActorSnapshot>(&rec.payload) {
            Ok(s) if s.actor_id == actor_id => Ok(Some(s)),
            Ok(_) => Ok(None),
            Err(e) => Err(Error::Corrupt {
                sequence: 0,
                location: format!(
                    "stream {} sequence {}, subject {}",
                    self.names.snapshot_stream, rec.seq, rec.subject
                ),
                cause: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_blocks_are_parsed() {
        let h =
            super::parse_header_block(b"NATS/1.0\r\nAether-Sequence: 7\r\nAether-Count: 2\r\n\r\n");
        assert_eq!(crate::record::sequence_header(Some(&h)), Some((7, 2)));
        // A single event's message carries no count.
        let h = super::parse_header_block(b"NATS/1.0\r\nAether-Sequence: 9\r\n\r\n");
        assert_eq!(crate::record::sequence_header(Some(&h)), Some((9, 1)));
        let h = super::parse_header_block(b"NATS/1.0\r\nAether-Count: 2\r\n\r\n");
        assert_eq!(crate::record::sequence_header(Some(&h)), None);
        let h =
            super::parse_header_block(b"NATS/1.0\r\nAether-Sequence: 9\r\nAether-Count: x\r\n\r\n");
        assert_eq!(crate::record::sequence_header(Some(&h)), None);
    }

    #[test]
    fn wrong_last_sequence_number_is_parsed() {
        assert_eq!(super::parse_wrong_last("wrong last sequence: 17"), 17);
        assert_eq!(super::parse_wrong_last("garbage"), 0);
    }

    #[test]
    fn malformed_urls_are_invalid_input_and_good_ones_parse() {
        use aether_core::Error;
        for bad in [
            "",
            " , ",
            "nats://",
            "nats://:4222",
            "tls://",
            "http://localhost:4222",
            "nats://localhost:99999",
            "nats://localhost:0",
            "nats://localhost:4222/path",
            "nats://localhost:4222?x=1",
            "nats://a:4222,nats://",
            "nats://[::1",
        ] {
            match super::server_addrs(bad) {
                Err(Error::InvalidInput { field: "url", .. }) => {}
                other => panic!("{bad:?}: expected InvalidInput on url, got {other:?}"),
            }
        }
        for good in [
            "localhost",
            "nats://127.0.0.1:4222",
            "nats://user:pw@host:4222/",
            "tls://h:1,nats://[::1]:4223",
        ] {
            assert!(super::server_addrs(good).is_ok(), "{good:?}");
        }
        // Checked before any connection attempt: no server listens on port 1.
        let opts = crate::JetStreamOptions {
            connect_timeout: std::time::Duration::from_secs(30),
            ..Default::default()
        };
        let started = std::time::Instant::now();
        assert!(matches!(
            super::JetStreamStore::connect("nats://", opts),
            Err(Error::InvalidInput { field: "url", .. })
        ));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn the_store_is_thread_safe_and_object_safe() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<super::JetStreamStore>();
        let _: Option<std::sync::Arc<dyn aether_core::SnapshotStore>> = None;
    }
}
