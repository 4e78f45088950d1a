//! `JetStreamStore`: the store contract on a NATS JetStream stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
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

/// Room kept in each snapshot message for headers when checking `max_payload`.
const HEADER_ALLOWANCE: usize = record::MAX_HEADER_BYTES;
/// The per-actor cache of `(subject sequence, version)` is cleared past this many actors;
/// it only saves reads, correctness rests on the server's checks.
const MAX_CACHED_ACTORS: usize = 1 << 20;
/// JetStream's "wrong last sequence" error code.
const ERR_WRONG_LAST_SEQUENCE: u64 = 10071;
/// JetStream's "wrong last sequence" without a number: another publish on the same subject
/// is in flight at the stream leader (clustered streams), so the check could not be made.
const ERR_WRONG_LAST_SEQUENCE_IN_FLIGHT: u64 = 10164;
/// JetStream's "message size exceeds maximum allowed" error code.
const ERR_MESSAGE_TOO_LARGE: u64 = 10054;
/// JetStream: "atomic publish is disabled" on this stream.
const ERR_ATOMIC_DISABLED: u64 = 10174;
/// JetStream: "atomic publish batch is incomplete" (a message of it went missing or the
/// batch timed out at the server; nothing of it was stored).
const ERR_BATCH_INCOMPLETE: u64 = 10176;
/// JetStream: "atomic publish batch is too large: {size}" (the server's
/// `jetstream.limits.batch.max_msgs`, 1,000 by default).
const ERR_BATCH_TOO_LARGE: u64 = 10199;
/// JetStream: "atomic publish batch contains duplicate message id".
const ERR_BATCH_DUPLICATE: u64 = 10201;
/// JetStream: "atomic publish too many inflight" (per stream, or per server).
const ERR_BATCH_TOO_MANY_INFLIGHT: u64 = 10210;
/// How long the stream follower may deliver nothing while a save of this process waits
/// for it before it is recreated.
const FOLLOWER_STALL: Duration = Duration::from_millis(300);
/// Bound on creating the follower's consumer (no stream leader: try again).
const FOLLOWER_CREATE_TIMEOUT: Duration = Duration::from_secs(1);
/// The oldest nats-server this store works with: atomic batch publish came in 2.12.
pub const MIN_SERVER_VERSION: (u64, u64) = (2, 12);

/// What this process knows about the end of the events stream. Kept current by the stream
/// follower (every message, from any process) and by this process's own acknowledged saves.
#[derive(Debug, Default)]
struct Tail {
    /// The last stream sequence this process has seen (= the last store-wide sequence).
    stream_seq: u64,
    /// The last stream sequence whose EventStored notifications have been published.
    notified_seq: u64,
    /// Per actor subject: (stream sequence of its last message, the actor's version there).
    actors: HashMap<String, (u64, i64)>,
    /// The last stream sequence this process's own saves were acknowledged at.
    acked_seq: u64,
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
    /// On the commit of an atomic batch: how many messages it stored (`seq` is the last).
    #[serde(default)]
    count: u64,
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
    /// Atomic batch IDs: unique per store (`batch_prefix`) and per batch (`batch_counter`).
    batch_prefix: String,
    batch_counter: AtomicU64,
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

fn api_unavailable(operation: &'static str, stream: &str, e: &ApiError) -> Error {
    unavailable(
        format!(
            "{operation}: stream {stream}: {} (code {}, err_code {})",
            e.description, e.code, e.err_code
        ),
        Outcome::NotApplied,
    )
}

/// Refuse a server older than [`MIN_SERVER_VERSION`], naming the version needed.
fn check_server_version(version: &str) -> Result<()> {
    let mut parts = version
        .trim_start_matches('v')
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u64>().ok());
    let have = match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor),
        _ => (0, 0),
    };
    if have < MIN_SERVER_VERSION {
        let (major, minor) = MIN_SERVER_VERSION;
        return Err(Error::Unsupported {
            feature: "nats-server",
            reason: format!(
                "nats-server {version:?} is too old: this store needs nats-server {major}.{minor} or later (atomic batch publish)"
            ),
        });
    }
    Ok(())
}

/// A batch ID prefix unique to this store handle: process ID, clock and a random seed.
fn batch_prefix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:x}-{:016x}", std::process::id(), h.finish())
}

/// Check an existing stream against the settings this store would create it with: every
/// setting the contract rests on must match, else an error naming each one that does not.
fn check_stream_config(
    name: &str,
    wanted: &serde_json::Value,
    have: &serde_json::Value,
    is_events: bool,
) -> Result<()> {
    use serde_json::Value;
    let mut wrong = Vec::new();
    let subject = &wanted["subjects"][0];
    let subjects = have["subjects"].as_array().cloned().unwrap_or_default();
    if !subjects.contains(subject) {
        wrong.push(format!(
            "subjects is {subjects:?} (needs {subject}: every actor's subject)"
        ));
    }
    let flag = |key: &str| have[key].as_bool().unwrap_or(false);
    // A limit is off when absent, 0 or negative.
    let limit = |key: &str| have[key].as_i64().unwrap_or(0) > 0;
    if flag("no_ack") {
        wrong.push(
            "no_ack is true (needs false: a save returns on the server's acknowledgement)".into(),
        );
    }
    if have["retention"].as_str().unwrap_or("limits") != "limits" {
        wrong.push(format!(
            "retention is {} (needs limits: other policies remove acknowledged messages)",
            have["retention"]
        ));
    }
    for key in ["allow_msg_counter", "allow_msg_schedules", "mirror"] {
        if !matches!(have[key], Value::Null | Value::Bool(false)) {
            wrong.push(format!(
                "{key} is set (needs it off: the stream takes aether's messages as they are)"
            ));
        }
    }
    if is_events {
        if !flag("allow_atomic") {
            wrong.push(
                "allow_atomic is false (needs true: batches are JetStream atomic batches, nats-server 2.12+; a stream of an earlier aether release, which stored a batch as one message, is not read)"
                    .into(),
            );
        }
        for key in ["deny_delete", "deny_purge"] {
            if !flag(key) {
                wrong.push(format!(
                    "{key} is false (needs true: a removed message would leave a gap in the store-wide sequence)"
                ));
            }
        }
        for key in ["allow_rollup_hdrs", "allow_msg_ttl"] {
            if flag(key) {
                wrong.push(format!(
                    "{key} is true (needs false: it lets a publish remove acknowledged events)"
                ));
            }
        }
        for key in ["max_msgs", "max_bytes", "max_age", "max_msgs_per_subject"] {
            if limit(key) {
                wrong.push(format!(
                    "{key} is {} (needs no limit: the stream would drop acknowledged events)",
                    have[key]
                ));
            }
        }
    }
    if wrong.is_empty() {
        return Ok(());
    }
    Err(invalid(
        "stream",
        format!(
            "existing stream {name} was created with other settings than this store needs: {}",
            wrong.join("; ")
        ),
    ))
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
        let info = client.server_info();
        check_server_version(&info.version)?;
        let max_payload = info.max_payload;
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
            batch_prefix: batch_prefix(),
            batch_counter: AtomicU64::new(0),
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
        {
            let mut t = store.shared.tail();
            t.stream_seq = last;
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

    /// A request to the JetStream API; the answer's JSON, or the error it holds.
    async fn api(
        &self,
        subject: String,
        body: serde_json::Value,
        operation: &'static str,
    ) -> Result<std::result::Result<serde_json::Value, ApiError>> {
        let reply = self
            .client
            .send_request(
                subject,
                Request::new()
                    .payload(Bytes::from(body.to_string()))
                    .timeout(Some(self.opts.request_timeout)),
            )
            .await
            .map_err(|e| request_error(operation, e, Outcome::NotApplied))?;
        let mut value: serde_json::Value = serde_json::from_slice(&reply.payload).map_err(|e| {
            unavailable(
                format!("{operation}: unreadable JetStream API answer ({e})"),
                Outcome::NotApplied,
            )
        })?;
        if let Some(err) = value.get_mut("error").map(serde_json::Value::take) {
            let err: ApiError = serde_json::from_value(err).map_err(|e| {
                unavailable(
                    format!("{operation}: unreadable JetStream API error ({e})"),
                    Outcome::NotApplied,
                )
            })?;
            return Ok(Err(err));
        }
        Ok(Ok(value))
    }

    /// Create both streams if missing and check that existing ones have the settings the
    /// contract rests on; returns the events stream's last sequence.
    async fn ensure_streams(&self) -> Result<u64> {
        let op = "open";
        let events = serde_json::json!({
            "name": self.names.stream,
            "subjects": [self.names.events_all],
            "retention": "limits",
            "storage": "file",
            "num_replicas": self.opts.replicas,
            "duplicate_window": self.opts.duplicate_window.as_nanos() as u64,
            "max_msgs": -1,
            "max_bytes": -1,
            "max_age": 0,
            "max_msgs_per_subject": -1,
            "max_msg_size": -1,
            "discard": "old",
            "deny_delete": true,
            "deny_purge": true,
            "allow_rollup_hdrs": false,
            "allow_atomic": true,
        });
        let snapshots = serde_json::json!({
            "name": self.names.snapshot_stream,
            "subjects": [format!("{}>", self.names.snapshots_prefix)],
            "retention": "limits",
            "storage": "file",
            "num_replicas": self.opts.replicas,
            "duplicate_window": self.opts.duplicate_window.as_nanos() as u64,
            "max_msgs_per_subject": 1,
            "max_msg_size": -1,
            "discard": "old",
        });
        let mut last = 0;
        for (config, is_events) in [(events, true), (snapshots, false)] {
            let name = config["name"].as_str().unwrap_or_default().to_owned();
            let info = match self
                .api(
                    format!("$JS.API.STREAM.INFO.{name}"),
                    serde_json::json!({}),
                    op,
                )
                .await?
            {
                Ok(info) => info,
                Err(e) if e.code == 404 => {
                    match self
                        .api(format!("$JS.API.STREAM.CREATE.{name}"), config.clone(), op)
                        .await?
                    {
                        Ok(info) => info,
                        // Created by another process meanwhile: take it as it is.
                        Err(e) if e.err_code == 10058 => self
                            .api(
                                format!("$JS.API.STREAM.INFO.{name}"),
                                serde_json::json!({}),
                                op,
                            )
                            .await?
                            .map_err(|e| api_unavailable(op, &name, &e))?,
                        Err(e) => return Err(api_unavailable(op, &name, &e)),
                    }
                }
                Err(e) => return Err(api_unavailable(op, &name, &e)),
            };
            check_stream_config(&name, &config, &info["config"], is_events)?;
            if is_events {
                last = info["state"]["last_seq"].as_u64().unwrap_or(0);
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
        let version = match record::decode_head(&last.payload) {
            Ok(head) if head.actor_id == actor_id => head.version,
            // A malformed (or foreign) last message: the version is the highest among the
            // actor's events that do decode.
            _ => {
                let mut max = 0;
                self.scan(subject, 1, last.seq, operation, |rec| {
                    if let Ok(h) = record::decode_head(&rec.payload) {
                        if h.actor_id == actor_id {
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
            let e = record::decode_event(&rec.payload)?;
            if e.actor_id == actor_id && e.version >= from_version {
                events.push(e);
            }
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
        let _ = operation;
        if let (Some(rec), Some(cause)) = (bad.first(), causes.first()) {
            return Err(Error::Corrupt {
                sequence: rec.seq,
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
                Ok(Bytes::from(json))
            })
            .collect::<Result<Vec<_>>>()?;
        limits.check_batch_bytes(encoded.iter().map(Bytes::len).sum())?;
        let field = if events.len() == 1 { "event" } else { "events" };
        let largest = encoded.iter().map(Bytes::len).max().unwrap_or(0);
        if largest + record::MAX_HEADER_BYTES > self.max_payload {
            return Err(invalid(
                field,
                format!(
                    "an event encodes to {largest} bytes; with its headers (up to {} bytes) that exceeds the server's max_payload of {} bytes: run nats-server with max_payload of at least {} bytes to store events up to the store's limit of {} bytes (the README's configuration sets 2MB)",
                    record::MAX_HEADER_BYTES,
                    self.max_payload,
                    limits.max_record_len + record::MAX_HEADER_BYTES,
                    limits.max_record_len,
                ),
            ));
        }
        let first = &events[0];
        let last_version = events[events.len() - 1].version;
        let count = events.len() as u64;
        let actor_id = first.actor_id.as_str();
        let subject = self.names.events_subject(actor_id);
        let metrics = self.shared.metrics();
        let give_up = Instant::now() + self.opts.request_timeout * 4;
        // Set when `known` comes straight from the server rather than from the cache.
        let mut fresh: Option<(u64, i64)> = None;
        loop {
            let cached = self.shared.tail().actors.get(&subject).copied();
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
            let ack = self.publish(events, &encoded, &subject, subject_seq, operation)?;
            let retry_after = match ack.error {
                None if !ack.duplicate => {
                    // One message per event, stored contiguously: the batch's last message
                    // is `ack.seq`, its first `count - 1` before it.
                    let last_seq = ack.seq;
                    if count > 1 && ack.count != count {
                        return Err(unavailable(
                            format!(
                                "{operation}: the server committed a batch of {} messages for {count} events",
                                ack.count
                            ),
                            Outcome::Unknown,
                        ));
                    }
                    metrics.add_events_saved(count);
                    self.announce(events, &subject, last_seq + 1 - count, last_seq, last_version);
                    return Ok(last_seq);
                }
                None => {
                    return self.resolve_duplicate(ack.seq, events, &subject, &encoded[0], operation)
                }
                Some(err) if err.err_code == ERR_BATCH_DUPLICATE => {
                    return self.resolve_batch_duplicate(events, &subject, operation)
                }
                // The actor moved on since we looked (10071), or another save of it is in
                // flight at a clustered stream's leader (10164). Read the actor as it is
                // now: a conflict if its version caught up, otherwise try again.
                Some(err)
                    if err.err_code == ERR_WRONG_LAST_SEQUENCE
                        || err.err_code == ERR_WRONG_LAST_SEQUENCE_IN_FLIGHT =>
                {
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
                    fresh = Some(now);
                    (err.err_code == ERR_WRONG_LAST_SEQUENCE_IN_FLIGHT)
                        .then_some(Duration::from_millis(1))
                }
                Some(err) if err.err_code == ERR_BATCH_TOO_MANY_INFLIGHT => {
                    Some(Duration::from_millis(5))
                }
                Some(err) if err.err_code == ERR_MESSAGE_TOO_LARGE => {
                    return Err(invalid(
                        field,
                        format!(
                            "the server refused the message: {} (the server's max_payload, or the stream's max_msg_size)",
                            err.description
                        ),
                    ))
                }
                Some(err) if err.err_code == ERR_BATCH_TOO_LARGE => {
                    return Err(invalid(
                        "events",
                        format!(
                            "the server refused a batch of {count} events: {}; its limit is the nats-server setting jetstream {{ limits {{ batch {{ max_msgs }} }} }} (1,000 by default), which must be at least the store's max_batch_len of {} (the README's configuration sets 10000)",
                            err.description, limits.max_batch_len
                        ),
                    ))
                }
                Some(err) if err.err_code == ERR_ATOMIC_DISABLED => {
                    return Err(invalid(
                        "stream",
                        format!(
                            "stream {}: allow_atomic was turned off after this store opened it; batches need it (nats-server 2.12+)",
                            self.names.stream
                        ),
                    ))
                }
                Some(err) if err.err_code == ERR_BATCH_INCOMPLETE => {
                    return Err(unavailable(
                        format!(
                            "{operation}: the server dropped the batch before its commit ({}); nothing of it was stored",
                            err.description
                        ),
                        Outcome::NotApplied,
                    ))
                }
                Some(err) => {
                    return Err(unavailable(
                        format!(
                            "{operation}: JetStream refused the publish: {} (code {}, err_code {})",
                            err.description, err.code, err.err_code
                        ),
                        Outcome::NotApplied,
                    ));
                }
            };
            if Instant::now() >= give_up {
                return Err(Error::Timeout {
                    operation,
                    outcome: Outcome::NotApplied,
                });
            }
            if let Some(pause) = retry_after {
                std::thread::sleep(pause);
            }
        }
    }

    /// Publish one save: a single event as one message, a batch as one JetStream atomic
    /// batch (one message per event, the last committing it). Only the first message
    /// states the actor's last stream sequence: the server refuses an expectation on a
    /// subject the batch already wrote to, and the check on the first message covers the
    /// whole batch, which is stored contiguously or not at all.
    fn publish(
        &self,
        events: &[Event],
        encoded: &[Bytes],
        subject: &str,
        subject_seq: u64,
        operation: &'static str,
    ) -> Result<PubAck> {
        let timeout = self.opts.request_timeout;
        let request = |headers: HeaderMap, payload: &Bytes| {
            Request::new()
                .headers(headers)
                .payload(payload.clone())
                .timeout(Some(timeout))
        };
        let subject_seq = subject_seq.to_string();
        let reply = if encoded.len() == 1 {
            let mut h = HeaderMap::new();
            h.insert(record::HDR_MSG_ID, record::msg_id(&events[0].id).as_str());
            h.insert(record::HDR_EXPECTED_LAST_SUBJECT_SEQ, subject_seq.as_str());
            self.block_on(
                self.client
                    .send_request(subject.to_owned(), request(h, &encoded[0])),
            )
            .map_err(|e| request_error(operation, e, Outcome::Unknown))?
        } else {
            let batch_id = format!(
                "{}-{}",
                self.batch_prefix,
                self.batch_counter.fetch_add(1, Ordering::Relaxed)
            );
            let n = encoded.len();
            self.block_on(async {
                for (i, (e, payload)) in events.iter().zip(encoded).enumerate() {
                    let mut h = HeaderMap::new();
                    h.insert(record::HDR_MSG_ID, record::msg_id(&e.id).as_str());
                    h.insert(record::HDR_BATCH_ID, batch_id.as_str());
                    h.insert(record::HDR_BATCH_SEQ, (i + 1).to_string().as_str());
                    if i == 0 {
                        h.insert(record::HDR_EXPECTED_LAST_SUBJECT_SEQ, subject_seq.as_str());
                    }
                    if i + 1 == n {
                        h.insert(record::HDR_BATCH_COMMIT, "1");
                        return self
                            .client
                            .send_request(subject.to_owned(), request(h, payload))
                            .await
                            .map_err(|e| request_error(operation, e, Outcome::Unknown));
                    }
                    if i == 0 {
                        // The server answers the first message (empty when staged), so a
                        // batch it will not take fails here, before the rest is sent.
                        // Nothing is stored before the commit, whatever happens now.
                        let reply = self
                            .client
                            .send_request(subject.to_owned(), request(h, payload))
                            .await
                            .map_err(|e| request_error(operation, e, Outcome::NotApplied))?;
                        if !reply.payload.is_empty() {
                            return Ok(reply);
                        }
                    } else {
                        self.client
                            .publish_with_headers(subject.to_owned(), h, payload.clone())
                            .await
                            .map_err(|e| {
                                unavailable(format!("{operation}: {e}"), Outcome::NotApplied)
                            })?;
                    }
                }
                unreachable!("a batch has at least two events")
            })?
        };
        serde_json::from_slice(&reply.payload).map_err(|e| {
            unavailable(
                format!(
                    "{operation}: unreadable publish acknowledgement ({e}): {}",
                    String::from_utf8_lossy(&reply.payload)
                ),
                Outcome::Unknown,
            )
        })
    }

    /// Account an acknowledged save (stream sequences `first_seq..=last_seq`) and see its
    /// EventStored notifications out, in stream order, before the save returns.
    fn announce(
        &self,
        events: &[Event],
        subject: &str,
        first_seq: u64,
        last_seq: u64,
        last_version: i64,
    ) {
        let mut t = self.shared.tail();
        t.acked_seq = t.acked_seq.max(last_seq);
        if t.stream_seq + 1 == first_seq {
            t.stream_seq = last_seq;
        }
        t.remember(subject, last_seq, last_version);
        if t.notified_seq + 1 == first_seq {
            // Everything before this save is notified: publish ours now rather than wait
            // for the follower to bring it back. The timestamp is this process's clock at
            // the acknowledgement.
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
                    sequence: first_seq + i as u64,
                });
            }
            t.notified_seq = last_seq;
            drop(t);
            self.shared.moved.notify_all();
        } else {
            drop(t);
            // Messages of other saves come first: the follower publishes in stream order,
            // ours included.
            self.wait_notified(last_seq);
        }
    }

    /// The server refused a batch because one of its message IDs is taken. If the batch is
    /// this very save (a retry after an unknown outcome whose first attempt landed), its
    /// first version is stored: answer as every backend answers a second save of a stored
    /// version, with a conflict. Otherwise an event ID of the batch is taken by another
    /// message within the deduplication window.
    fn resolve_batch_duplicate(
        &self,
        events: &[Event],
        subject: &str,
        operation: &'static str,
    ) -> Result<u64> {
        let actor_id = events[0].actor_id.as_str();
        let now = self.block_on(self.actor_tail(actor_id, subject, operation))?;
        self.shared.tail().remember(subject, now.0, now.1);
        if events[0].version <= now.1 {
            self.shared.metrics().add_conflict();
            return Err(Error::VersionConflict {
                actor_id: actor_id.to_owned(),
                attempted_version: events[0].version,
                current_version: now.1,
            });
        }
        Err(invalid(
            "id",
            "an event ID of the batch was used by a different message within the stream's deduplication window",
        ))
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
        let create = js.create_consumer_on_stream(config, &names.stream);
        let messages = match tokio::time::timeout(FOLLOWER_CREATE_TIMEOUT, create).await {
            Ok(Ok(c)) => c.messages().await.map_err(|e| e.to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("creating the stream follower timed out".into()),
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
        let mut last_delivery = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(FOLLOWER_STALL / 3);
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                _ = tick.tick() => {
                    // A save of this process was acknowledged past what the follower has
                    // delivered, and nothing came for a while: the consumer is cut off
                    // (its server or the stream leader went away). The client library
                    // would notice only after two missed 5 s heartbeats, and every save
                    // meanwhile waits for its notifications: start a new one now.
                    let behind = {
                        let t = shared.tail();
                        t.acked_seq > t.notified_seq
                    };
                    if behind && last_delivery.elapsed() >= FOLLOWER_STALL {
                        shared.tail().follower_error =
                            Some("the stream follower stalled; recreating it".into());
                        break;
                    }
                    continue;
                }
            };
            let Some(next) = next else { break };
            last_delivery = tokio::time::Instant::now();
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
            apply(&shared, seq, msg.subject.as_str(), &msg.payload, time);
            start = seq + 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Account one message of the events stream and publish its EventStored notification.
fn apply(shared: &Shared, seq: u64, subject: &str, payload: &[u8], time: Timestamp) {
    {
        // This process's own save already accounted and announced this message (the usual
        // case when the acknowledgement beats the follower): nothing to decode.
        let t = shared.tail();
        let known = t.actors.get(subject).is_some_and(|&(s, _)| s >= seq);
        if known && t.stream_seq >= seq && t.notified_seq >= seq {
            return;
        }
    }
    let head = record::decode_head(payload).ok();
    let mut t = shared.tail();
    t.stream_seq = t.stream_seq.max(seq);
    match &head {
        Some(h) => t.remember(subject, seq, h.version),
        // The actor's last message does not decode: forget what we knew, so the next
        // save reads the actor again.
        None => {
            t.actors.remove(subject);
        }
    }
    // Notifications leave in stream order, each once: the save that stored a message may
    // have published it already (see `announce`); both sides decide under the tail lock.
    if seq > t.notified_seq {
        if let Some(h) = head {
            let notifier = shared.notifier.read().unwrap_or_else(|p| p.into_inner());
            notifier.publish(EventStored {
                event_id: h.id,
                actor_id: h.actor_id,
                version: h.version,
                timestamp: time,
                sequence: seq,
            });
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
            let e = record::decode_event(&rec.payload)?;
            if e.actor_id != actor_id || e.version < from_version {
                return Ok(());
            }
            if out.len() > 1 {
                out.push(b',');
            }
            if record::published_by_us(rec.headers.as_ref(), &e.id) {
                out.extend_from_slice(&rec.payload);
            } else {
                e.write_json(&mut out);
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
            errors.push(ReplayError {
                sequence: rec.seq,
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
            if from > last.seq {
                return Ok(Vec::new());
            }
            // The store-wide sequence is the stream sequence: start right at `from`.
            let mut out = Vec::with_capacity(limit.min(4096));
            let mut failure: Option<Error> = None;
            self.scan(&self.names.events_all, from, last.seq, op, |rec| {
                match record::decode_event(&rec.payload) {
                    Ok(event) => out.push(SequencedEvent {
                        sequence: rec.seq,
                        event,
                    }),
                    Err(cause) => {
                        failure = Some(Error::Corrupt {
                            sequence: rec.seq,
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
            Ok(self
                .last_on(&self.names.events_all, op)
                .await?
                .map_or(0, |last| last.seq))
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
    fn servers_older_than_2_12_are_unsupported_naming_the_version() {
        for old in ["2.9.10", "v2.11.9", "2.10.0-beta", "garbage", ""] {
            match super::check_server_version(old) {
                Err(aether_core::Error::Unsupported { reason, .. }) => {
                    assert!(reason.contains("2.12 or later"), "{reason}")
                }
                other => panic!("{old}: {other:?}"),
            }
        }
        for ok in ["2.12.0", "2.15.2", "v2.15.2-dev", "3.0.0"] {
            assert!(super::check_server_version(ok).is_ok(), "{ok}");
        }
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
