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

use aether_core::append::{already_appended, check_commit, Rule, StoredId};
use aether_core::notify::Notifier;
use aether_core::store::push_sequenced_prefix;
use aether_core::{
    ActorSnapshot, AppendStatus, CommitEntry, Committed, Direction, Error, Event, EventBus,
    EventFilter, EventRange, EventStore, EventStored, ExpectedState, Metrics, MetricsSnapshot,
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
/// A read of an actor from a version up to this one scans the actor from its first
/// message; past it, the first message to read is found by a binary search over the
/// stream (one get per step, about log2 of the stream's length).
const SCAN_FROM_START_VERSIONS: i64 = 64;
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
    if !is_events && flag("deny_delete") {
        wrong.push(
            "deny_delete is true (needs false: a snapshot replaced by one of the same version is deleted)"
                .into(),
        );
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
            // One more than the history kept, so replacing the newest snapshot by one
            // of the same version (publish, then delete the old) never drops an older
            // version first; readers take the newest `snapshot_retention` versions.
            "max_msgs_per_subject": i64::from(self.opts.snapshot_retention) + 1,
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
            if !is_events
                && info["config"]["max_msgs_per_subject"] != config["max_msgs_per_subject"]
            {
                // Snapshot retention is this store's setting: a stream made with another
                // (or by a release that kept one snapshot per actor) is updated to it.
                let mut updated = info["config"].clone();
                updated["max_msgs_per_subject"] = config["max_msgs_per_subject"].clone();
                self.api(format!("$JS.API.STREAM.UPDATE.{name}"), updated, op)
                    .await?
                    .map_err(|e| api_unavailable(op, &name, &e))?;
            }
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

    /// The actor's events in `range` with the messages that hold them, in the range's
    /// direction, at most its limit.
    ///
    /// - The last event (a backward read of one) is one get of the actor's last message
    ///   at the stream leader.
    /// - Otherwise one ordered consumer on the actor's subject reads versions
    ///   `from..=to`, starting at the actor's first message with a version of at least
    ///   `from` (found by a binary search over stream sequences, one get per step, when
    ///   `from` is past the first few versions) and stopping past `to`.
    /// - A backward read with a limit `n` first reads the versions `last - n + 1..`
    ///   (all of them when the actor's versions have no gaps), widening the window only
    ///   while it holds fewer than `n` events.
    ///
    /// A message that does not decode is an [`Error::Corrupt`], as in `get_events`.
    fn range_records(
        &self,
        actor_id: &str,
        range: &EventRange,
        operation: &'static str,
    ) -> Result<Vec<(RawRecord, Event)>> {
        range.check()?;
        if range.limit == 0 {
            return Ok(Vec::new());
        }
        let subject = self.names.events_subject(actor_id);
        self.block_on(async {
            let Some(last) = self.last_on(&subject, operation).await? else {
                return Ok(Vec::new());
            };
            let last_event = match record::decode_event(&last.payload) {
                Ok(e) if e.actor_id == actor_id => Some(e),
                Ok(_) => None,
                Err(cause) => return Err(self.corrupt(&last, cause)),
            };
            let last_seq = last.seq;
            let mut from = range.from;
            if let Some(e) = &last_event {
                if e.version < range.from {
                    return Ok(Vec::new());
                }
                if range.direction == Direction::Backward {
                    if range.limit == 1 && e.version <= range.to {
                        return Ok(vec![(last, last_event.expect("checked above"))]);
                    }
                    // The newest `limit` events: try the narrowest window that can hold
                    // them, then wider ones.
                    let top = e.version.min(range.to);
                    let mut width = i64::try_from(range.limit).unwrap_or(i64::MAX);
                    loop {
                        from = range.from.max(top.saturating_sub(width).saturating_add(1));
                        let mut got = self
                            .versions_forward(
                                &subject,
                                actor_id,
                                from,
                                range.to,
                                last_seq,
                                usize::MAX,
                                operation,
                            )
                            .await?;
                        if got.len() >= range.limit || from == range.from {
                            got.reverse();
                            got.truncate(range.limit);
                            return Ok(got);
                        }
                        width = width.saturating_mul(4);
                    }
                }
            }
            let mut got = self
                .versions_forward(
                    &subject,
                    actor_id,
                    from,
                    range.to,
                    last_seq,
                    usize::MAX,
                    operation,
                )
                .await?;
            if range.direction == Direction::Backward {
                got.reverse();
            }
            got.truncate(range.limit);
            Ok(got)
        })
    }

    /// The actor's events with versions `from..=to`, oldest first, at most `limit`, read
    /// with one ordered consumer on its subject up to stream sequence `last`.
    #[allow(clippy::too_many_arguments)]
    async fn versions_forward(
        &self,
        subject: &str,
        actor_id: &str,
        from: i64,
        to: i64,
        last: u64,
        limit: usize,
        operation: &'static str,
    ) -> Result<Vec<(RawRecord, Event)>> {
        let start = self
            .first_at_version(subject, actor_id, from, last, operation)
            .await?;
        let mut out = Vec::new();
        let mut failure = None;
        self.scan(subject, start, last, operation, |rec| {
            let e = match record::decode_event(&rec.payload) {
                Ok(e) => e,
                Err(cause) => {
                    failure = Some(self.corrupt(&rec, cause));
                    return false;
                }
            };
            if e.actor_id != actor_id || e.version < from {
                return true;
            }
            if e.version > to {
                return false;
            }
            out.push((rec, e));
            out.len() < limit
        })
        .await?;
        match failure {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// The stream sequence to read an actor from to meet its first event with a version of
    /// at least `version`: 1 for the first [`SCAN_FROM_START_VERSIONS`] versions (a scan
    /// from the start is cheaper than the gets), else found by a binary search over
    /// `1..=last` with gets of "the actor's next message from sequence s" (versions grow
    /// with the stream sequence). A message that does not decode ends the search where it
    /// is, so the scan meets it and reports it.
    async fn first_at_version(
        &self,
        subject: &str,
        actor_id: &str,
        version: i64,
        last: u64,
        operation: &'static str,
    ) -> Result<u64> {
        if version <= SCAN_FROM_START_VERSIONS {
            return Ok(1);
        }
        // Invariant: every message of the actor before `lo` has a version below `version`,
        // and the actor's first message at or after `hi` has at least `version` (`last`
        // is the actor's last message, whose version the callers checked).
        let (mut lo, mut hi) = (1u64, last);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let next = self
                .msg_get(
                    &self.names.stream,
                    serde_json::json!({ "seq": mid, "next_by_subj": subject }),
                    operation,
                )
                .await?;
            let Some(rec) = next else { return Ok(lo) };
            match record::decode_head(&rec.payload) {
                Ok(h) if h.actor_id == actor_id && h.version < version => lo = rec.seq + 1,
                // No message of the actor in `mid..rec.seq`: reading from `mid` meets it.
                Ok(h) if h.actor_id == actor_id => hi = mid,
                _ => return Ok(lo),
            }
        }
        Ok(lo)
    }

    /// Up to `limit` events from stream sequence `from` that pass `filter`, each with its
    /// message. The filter is applied to the stored bytes before decoding: the actor ID
    /// comes from the subject (or, for hashed subjects, the message's head) and the event
    /// type from the stored JSON; only events that pass are decoded. A message that does
    /// not decode and is not ruled out by the filter is an [`Error::Corrupt`].
    fn filtered_records(
        &self,
        from_sequence: u64,
        limit: usize,
        filter: &EventFilter,
        operation: &'static str,
    ) -> Result<Vec<(RawRecord, Event)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let raw = filter.raw();
        let from = from_sequence.max(1);
        self.block_on(async {
            let Some(last) = self.last_on(&self.names.events_all, operation).await? else {
                return Ok(Vec::new());
            };
            if from > last.seq {
                return Ok(Vec::new());
            }
            let mut out = Vec::with_capacity(limit.min(4096));
            let mut failure: Option<Error> = None;
            self.scan(&self.names.events_all, from, last.seq, operation, |rec| {
                if !filter.actor_prefix.is_empty() || !filter.event_types.is_empty() {
                    let token = rec
                        .subject
                        .strip_prefix(self.names.events_prefix.as_str())
                        .unwrap_or_default();
                    let actor = match record::actor_of_token(token) {
                        Some(a) => Some(a),
                        None => record::decode_head(&rec.payload)
                            .ok()
                            .map(|h| h.actor_id.into_bytes()),
                    };
                    if let Some(actor) = actor {
                        if !raw.matches(&actor, &rec.payload) {
                            return true;
                        }
                    }
                }
                match record::decode_event(&rec.payload) {
                    Ok(event) if filter.matches(&event) => out.push((rec, event)),
                    Ok(_) => {}
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

    fn corrupt(&self, rec: &RawRecord, cause: String) -> Error {
        Error::Corrupt {
            sequence: rec.seq,
            location: self.corrupt_location(rec),
            cause,
        }
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

    /// The seed's saves: one entry under [`Rule::Seed`] (versions as given, a conflict is
    /// a `VersionConflict`, no retry detection). Returns the last event's sequence.
    fn append(&self, events: &[Event], operation: &'static str) -> Result<u64> {
        self.opts.limits.check_batch(events)?;
        let entry = CommitEntry::new(&events[0].actor_id, ExpectedState::Increasing, events);
        Ok(self.write(&[entry], Rule::Seed, operation)?.last_sequence)
    }

    /// Encode each entry's events at the versions they take when its actor's latest is
    /// `latest[i]`, checking the store's limits and the server's `max_payload`.
    fn encode(
        &self,
        entries: &[CommitEntry<'_>],
        latest: &[i64],
        rule: Rule,
    ) -> Result<Vec<Vec<Bytes>>> {
        let limits = &self.opts.limits;
        let mut total = 0;
        let mut largest = 0;
        let mut count = 0;
        let encoded = entries
            .iter()
            .zip(latest)
            .map(|(entry, &l)| {
                (0..entry.events.len())
                    .map(|i| {
                        let mut json = Vec::with_capacity(256);
                        entry.events[i]
                            .write_json_at_version(rule.version_at(entry, i, l), &mut json);
                        limits.check_record_len("event", json.len())?;
                        total += json.len();
                        largest = largest.max(json.len());
                        count += 1;
                        Ok(Bytes::from(json))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        limits.check_batch_bytes(total)?;
        if largest + record::MAX_HEADER_BYTES > self.max_payload {
            let field = if count == 1 { "event" } else { "events" };
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
        Ok(encoded)
    }

    /// The entries' actors as they are now, read at the stream leader: per entry (the
    /// stream sequence of its last message, its version), and the stream's last sequence
    /// `L` they are all true at (no actor's last message is past `L`), so a conflict is
    /// reported as one state of the store, and a commit expecting `L` is checked against
    /// exactly what was read.
    fn read_tails(
        &self,
        entries: &[CommitEntry<'_>],
        subjects: &[String],
        operation: &'static str,
    ) -> Result<(u64, Vec<(u64, i64)>)> {
        let give_up = Instant::now() + self.opts.request_timeout * 4;
        loop {
            let (last, tails) = self.block_on(async {
                let last = self
                    .last_on(&self.names.events_all, operation)
                    .await?
                    .map_or(0, |r| r.seq);
                let tails = futures_util::future::try_join_all(
                    entries
                        .iter()
                        .zip(subjects)
                        .map(|(e, s)| self.actor_tail(e.actor_id, s, operation)),
                )
                .await?;
                Ok::<_, Error>((last, tails))
            })?;
            {
                let mut t = self.shared.tail();
                for (s, &(seq, version)) in subjects.iter().zip(&tails) {
                    if seq > 0 {
                        t.remember(s, seq, version);
                    }
                }
            }
            if tails.iter().all(|&(seq, _)| seq <= last) {
                return Ok((last, tails));
            }
            // Saves landed between the reads: read again for one consistent state.
            if Instant::now() >= give_up {
                return Err(Error::Timeout {
                    operation,
                    outcome: Outcome::NotApplied,
                });
            }
        }
    }

    /// Whether a commit whose conditions failed is already stored (see
    /// [`already_appended`]): the actors' events at the retried versions, read back.
    fn stored_retry(
        &self,
        entries: &[CommitEntry<'_>],
        operation: &'static str,
    ) -> Result<Option<Committed>> {
        already_appended(entries, |entry, first, last| {
            let stored =
                self.range_records(entry.actor_id, &EventRange::new(first, last), operation)?;
            Ok(stored
                .into_iter()
                .map(|(rec, e)| StoredId {
                    version: e.version,
                    sequence: rec.seq,
                    same_id: entry
                        .retry_event(e.version)
                        .is_some_and(|mine| mine.id == e.id),
                })
                .collect())
        })
    }

    /// The one write path of the seed's saves and of commits: check `rule`'s conditions
    /// against the actors' last messages, and publish every event as one message (a
    /// single publish, or one atomic batch for several), each actor's first message
    /// expecting the actor's last stream sequence, so the server stores the commit only if
    /// no actor moved since it was checked.
    ///
    /// A condition-only entry is checked by the server too: its expectation rides on a
    /// message of the commit that carries none of its own (not an actor's first), with
    /// `Nats-Expected-Last-Subject-Sequence-Subject` naming the condition's actor. When the
    /// commit has fewer such messages than conditions, the first message also expects the
    /// stream's last sequence as read with the actors: sound, but it is refused (and the
    /// commit retried) whenever any other save lands between the read and the commit. A
    /// commit of conditions only writes nothing: one consistent read decides it.
    fn write(
        &self,
        entries: &[CommitEntry<'_>],
        rule: Rule,
        operation: &'static str,
    ) -> Result<Committed> {
        self.check_open()?;
        let automatic = |e: &CommitEntry<'_>| rule == Rule::Expected && e.automatic();
        let subjects: Vec<String> = entries
            .iter()
            .map(|e| self.names.events_subject(e.actor_id))
            .collect();
        let with_events = entries.iter().filter(|e| !e.events.is_empty()).count();
        let count: usize = entries.iter().map(|e| e.events.len()).sum();
        let conditions = entries.len() - with_events;
        // Conditions beyond the messages that can carry them: expect the stream's end.
        let stream_wide = conditions > count - with_events;
        let metrics = self.shared.metrics();
        let give_up = Instant::now() + self.opts.request_timeout * 4;
        // An actor this process has not seen is assumed new; if it is not, the server says
        // so (wrong last subject sequence) and it is read.
        let mut stream_last = 0;
        let mut tails: Vec<(u64, i64)> = {
            let t = self.shared.tail();
            subjects
                .iter()
                .map(|s| t.actors.get(s).copied().unwrap_or((0, 0)))
                .collect()
        };
        // Encoded before anything is read or sent, so bad input is refused as such
        // whatever the actors' state; an entry with automatic versions whose actor turns
        // out to have moved is encoded again.
        let mut encoded: Option<(Vec<i64>, Vec<Vec<Bytes>>)> = None;
        if count > 0 {
            let latest: Vec<i64> = tails.iter().map(|t| t.1).collect();
            let jsons = self.encode(entries, &latest, rule)?;
            encoded = Some((latest, jsons));
        }
        let mut fresh = false;
        if stream_wide || count == 0 {
            (stream_last, tails) = self.read_tails(entries, &subjects, operation)?;
            fresh = true;
        }
        loop {
            let latest: Vec<i64> = tails.iter().map(|t| t.1).collect();
            if let Some(conflict) = rule.conflict(entries, &latest) {
                if !fresh {
                    // Report the actors as they are now, not as this process last saw them.
                    (stream_last, tails) = self.read_tails(entries, &subjects, operation)?;
                    fresh = true;
                    continue;
                }
                if rule == Rule::Expected {
                    if let Some(done) = self.stored_retry(entries, operation)? {
                        return Ok(done);
                    }
                }
                metrics.add_conflict();
                return Err(conflict);
            }
            if count == 0 {
                return Ok(Committed {
                    status: AppendStatus::Appended,
                    first_sequence: 0,
                    last_sequence: 0,
                    actors: Vec::new(),
                });
            }
            let stale = match &encoded {
                None => true,
                Some((at, _)) => entries
                    .iter()
                    .zip(at.iter().zip(&latest))
                    .any(|(e, (a, l))| automatic(e) && a != l),
            };
            if stale {
                encoded = Some((latest.clone(), self.encode(entries, &latest, rule)?));
            }
            let jsons = &encoded.as_ref().expect("encoded above").1;
            let messages = self.plan(
                entries,
                rule,
                &subjects,
                &tails,
                &latest,
                jsons,
                stream_wide.then_some(stream_last),
            );
            let ack = self.publish(&messages, operation)?;
            let retry_after = match ack.error {
                None if !ack.duplicate => {
                    let n = messages.len() as u64;
                    if n > 1 && ack.count != n {
                        return Err(unavailable(
                            format!(
                                "{operation}: the server committed a batch of {} messages for {n} events",
                                ack.count
                            ),
                            Outcome::Unknown,
                        ));
                    }
                    // One message per event, stored contiguously: the commit's last message
                    // is `ack.seq`, its first `n - 1` before it.
                    let last_seq = ack.seq;
                    let first_seq = last_seq + 1 - n;
                    metrics.add_events_saved(n);
                    self.announce(entries, rule, &subjects, &latest, first_seq, last_seq);
                    return Ok(Committed {
                        status: AppendStatus::Appended,
                        first_sequence: first_seq,
                        last_sequence: last_seq,
                        actors: rule.committed_actors(entries, &latest),
                    });
                }
                // The server holds a message with this save's ID (actor, version, event ID):
                // a retry whose first attempt landed, within the deduplication window.
                // Read the actors: the conflict path decides (a conflict, or already
                // appended).
                None => None,
                Some(err) if err.err_code == ERR_BATCH_DUPLICATE => None,
                // An actor moved on since it was read (10071; also the stream's end, when
                // expected), or another save of it is in flight at a clustered stream's
                // leader (10164). Read the actors as they are now: a conflict if a
                // condition fails, otherwise try again.
                Some(err) if err.err_code == ERR_WRONG_LAST_SEQUENCE => None,
                Some(err) if err.err_code == ERR_WRONG_LAST_SEQUENCE_IN_FLIGHT => {
                    Some(Duration::from_millis(1))
                }
                Some(err) if err.err_code == ERR_BATCH_TOO_MANY_INFLIGHT => {
                    Some(Duration::from_millis(5))
                }
                Some(err) => return Err(self.refused(&err, count, operation)),
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
            (stream_last, tails) = self.read_tails(entries, &subjects, operation)?;
            fresh = true;
        }
    }

    /// The error for a publish the server refused for a reason other than a check.
    fn refused(&self, err: &ApiError, count: usize, operation: &'static str) -> Error {
        let limits = &self.opts.limits;
        let field = if count == 1 { "event" } else { "events" };
        match err.err_code {
            ERR_MESSAGE_TOO_LARGE => invalid(
                field,
                format!(
                    "the server refused the message: {} (the server's max_payload, or the stream's max_msg_size)",
                    err.description
                ),
            ),
            ERR_BATCH_TOO_LARGE => invalid(
                "events",
                format!(
                    "the server refused a batch of {count} events: {}; its limit is the nats-server setting jetstream {{ limits {{ batch {{ max_msgs }} }} }} (1,000 by default), which must be at least the store's max_batch_len of {} (the README's configuration sets 10000)",
                    err.description, limits.max_batch_len
                ),
            ),
            ERR_ATOMIC_DISABLED => invalid(
                "stream",
                format!(
                    "stream {}: allow_atomic was turned off after this store opened it; batches need it (nats-server 2.12+)",
                    self.names.stream
                ),
            ),
            ERR_BATCH_INCOMPLETE => unavailable(
                format!(
                    "{operation}: the server dropped the batch before its commit ({}); nothing of it was stored",
                    err.description
                ),
                Outcome::NotApplied,
            ),
            _ => unavailable(
                format!(
                    "{operation}: JetStream refused the publish: {} (code {}, err_code {})",
                    err.description, err.code, err.err_code
                ),
                Outcome::NotApplied,
            ),
        }
    }

    /// The messages of one attempt at a commit, in entry order, with their checks: each
    /// actor's first message expects the actor's last stream sequence; each condition
    /// rides on a later message of another actor (see [`JetStreamStore::write`]);
    /// `stream_last`, when given, is expected of the stream by the first message.
    #[allow(clippy::too_many_arguments)]
    fn plan(
        &self,
        entries: &[CommitEntry<'_>],
        rule: Rule,
        subjects: &[String],
        tails: &[(u64, i64)],
        latest: &[i64],
        jsons: &[Vec<Bytes>],
        stream_last: Option<u64>,
    ) -> Vec<(String, HeaderMap, Bytes)> {
        let mut conditions = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.events.is_empty())
            .map(|(i, _)| i);
        let mut out = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            for (k, json) in jsons[i].iter().enumerate() {
                let version = rule.version_at(entry, k, latest[i]);
                let mut h = HeaderMap::new();
                h.insert(
                    record::HDR_MSG_ID,
                    record::msg_id(entry.actor_id, version, &entry.events[k].id).as_str(),
                );
                if k == 0 {
                    h.insert(
                        record::HDR_EXPECTED_LAST_SUBJECT_SEQ,
                        tails[i].0.to_string().as_str(),
                    );
                } else if let Some(c) = conditions.next() {
                    h.insert(
                        record::HDR_EXPECTED_LAST_SUBJECT_SEQ,
                        tails[c].0.to_string().as_str(),
                    );
                    h.insert(
                        record::HDR_EXPECTED_LAST_SUBJECT_SEQ_SUBJECT,
                        subjects[c].as_str(),
                    );
                }
                if out.is_empty() {
                    if let Some(last) = stream_last {
                        h.insert(record::HDR_EXPECTED_LAST_SEQ, last.to_string().as_str());
                    }
                }
                out.push((subjects[i].clone(), h, json.clone()));
            }
        }
        out
    }

    /// Publish one attempt: a single message, or several as one JetStream atomic batch
    /// (the last message committing it).
    fn publish(
        &self,
        messages: &[(String, HeaderMap, Bytes)],
        operation: &'static str,
    ) -> Result<PubAck> {
        let timeout = self.opts.request_timeout;
        let request = |headers: HeaderMap, payload: &Bytes| {
            Request::new()
                .headers(headers)
                .payload(payload.clone())
                .timeout(Some(timeout))
        };
        let reply = if let [(subject, h, payload)] = messages {
            self.block_on(
                self.client
                    .send_request(subject.clone(), request(h.clone(), payload)),
            )
            .map_err(|e| request_error(operation, e, Outcome::Unknown))?
        } else {
            let batch_id = format!(
                "{}-{}",
                self.batch_prefix,
                self.batch_counter.fetch_add(1, Ordering::Relaxed)
            );
            let n = messages.len();
            self.block_on(async {
                for (i, (subject, h, payload)) in messages.iter().enumerate() {
                    let mut h = h.clone();
                    h.insert(record::HDR_BATCH_ID, batch_id.as_str());
                    h.insert(record::HDR_BATCH_SEQ, (i + 1).to_string().as_str());
                    if i + 1 == n {
                        h.insert(record::HDR_BATCH_COMMIT, "1");
                        return self
                            .client
                            .send_request(subject.clone(), request(h, payload))
                            .await
                            .map_err(|e| request_error(operation, e, Outcome::Unknown));
                    }
                    if i == 0 {
                        // The server answers the first message (empty when staged), so a
                        // batch it will not take fails here, before the rest is sent.
                        // Nothing is stored before the commit, whatever happens now.
                        let reply = self
                            .client
                            .send_request(subject.clone(), request(h, payload))
                            .await
                            .map_err(|e| request_error(operation, e, Outcome::NotApplied))?;
                        if !reply.payload.is_empty() {
                            return Ok(reply);
                        }
                    } else {
                        self.client
                            .publish_with_headers(subject.clone(), h, payload.clone())
                            .await
                            .map_err(|e| {
                                unavailable(format!("{operation}: {e}"), Outcome::NotApplied)
                            })?;
                    }
                }
                unreachable!("a batch has at least two messages")
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

    /// Account an acknowledged commit (stream sequences `first_seq..=last_seq`, its
    /// events in entry order) and see its EventStored notifications out, in stream order,
    /// before the commit returns.
    fn announce(
        &self,
        entries: &[CommitEntry<'_>],
        rule: Rule,
        subjects: &[String],
        latest: &[i64],
        first_seq: u64,
        last_seq: u64,
    ) {
        let mut t = self.shared.tail();
        t.acked_seq = t.acked_seq.max(last_seq);
        if t.stream_seq + 1 == first_seq {
            t.stream_seq = last_seq;
        }
        let mut seq = first_seq;
        for (i, e) in entries.iter().enumerate() {
            let n = e.events.len() as u64;
            if n > 0 {
                let last_version = rule.version_at(e, e.events.len() - 1, latest[i]);
                t.remember(&subjects[i], seq + n - 1, last_version);
            }
            seq += n;
        }
        if t.notified_seq + 1 == first_seq {
            // Everything before this commit is notified: publish ours now rather than wait
            // for the follower to bring it back. The timestamp is this process's clock at
            // the acknowledgement.
            let now = Timestamp::now();
            let notifier = self
                .shared
                .notifier
                .read()
                .unwrap_or_else(|p| p.into_inner());
            let mut seq = first_seq;
            for (i, entry) in entries.iter().enumerate() {
                for (k, e) in entry.events.iter().enumerate() {
                    notifier.publish(EventStored {
                        event_id: e.id.clone(),
                        actor_id: e.actor_id.clone(),
                        version: rule.version_at(entry, k, latest[i]),
                        timestamp: now,
                        sequence: seq,
                    });
                    seq += 1;
                }
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

/// An event's JSON as handed out: the stored bytes when this store wrote them (its
/// headers say so), otherwise the canonical encoding of the decoded event.
fn push_stored_json(out: &mut Vec<u8>, rec: &RawRecord, e: &Event) {
    if record::published_by_us(rec.headers.as_ref(), e) {
        out.extend_from_slice(&rec.payload);
    } else {
        e.write_json(out);
    }
}

fn sequenced(records: Vec<(RawRecord, Event)>) -> Vec<SequencedEvent> {
    records
        .into_iter()
        .map(|(rec, event)| SequencedEvent {
            sequence: rec.seq,
            event,
        })
        .collect()
}

/// Records in the layout of `read_all_sequenced_json`.
fn sequenced_json(records: &[(RawRecord, Event)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        records
            .iter()
            .map(|(r, _)| r.payload.len() + 32)
            .sum::<usize>()
            + 2,
    );
    out.push(b'[');
    for (i, (rec, e)) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_sequenced_prefix(&mut out, rec.seq);
        push_stored_json(&mut out, rec, e);
        out.push(b'}');
    }
    out.push(b']');
    out
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
            if record::published_by_us(rec.headers.as_ref(), &e) {
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
        let records =
            self.filtered_records(from_sequence, limit, &EventFilter::default(), "read_all")?;
        Ok(sequenced(records))
    }

    fn read_all_sequenced_json(&self, from_sequence: u64, limit: usize) -> Result<Vec<u8>> {
        let op = "read_all_sequenced_json";
        let records = self.filtered_records(from_sequence, limit, &EventFilter::default(), op)?;
        Ok(sequenced_json(&records))
    }

    fn commit(&self, entries: &[CommitEntry<'_>]) -> Result<Committed> {
        check_commit(&self.opts.limits, entries)?;
        self.write(entries, Rule::Expected, "commit")
    }

    fn get_events_range(&self, actor_id: &str, range: &EventRange) -> Result<Vec<Event>> {
        let records = self.range_records(actor_id, range, "get_events_range")?;
        Ok(records.into_iter().map(|(_, e)| e).collect())
    }

    fn get_events_range_json(&self, actor_id: &str, range: &EventRange) -> Result<Vec<u8>> {
        let records = self.range_records(actor_id, range, "get_events_range_json")?;
        let mut out = Vec::with_capacity(
            records
                .iter()
                .map(|(r, _)| r.payload.len() + 1)
                .sum::<usize>()
                + 2,
        );
        out.push(b'[');
        for (i, (rec, e)) in records.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_stored_json(&mut out, rec, e);
        }
        out.push(b']');
        Ok(out)
    }

    /// The actor-ID prefix and event types are tested on each message's stored bytes
    /// before it is decoded, in this process: the subject layout (one base64url token per
    /// actor) has no server-side subject filter for an ID prefix, so every message from
    /// `from_sequence` is delivered and only the ones that pass are decoded.
    fn read_all_filtered(
        &self,
        from_sequence: u64,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<Vec<SequencedEvent>> {
        let records = self.filtered_records(from_sequence, limit, filter, "read_all_filtered")?;
        Ok(sequenced(records))
    }

    fn read_all_filtered_json(
        &self,
        from_sequence: u64,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<Vec<u8>> {
        let records =
            self.filtered_records(from_sequence, limit, filter, "read_all_filtered_json")?;
        Ok(sequenced_json(&records))
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
    /// The snapshot is published on the actor's snapshot subject, expecting the subject's
    /// last message as read (so two savers cannot both pass the staleness check). A
    /// snapshot of the same version as the newest replaces it: the new message is
    /// published, then the old one deleted (if the delete is lost, readers take the
    /// newer message of a version, and the history holds one version fewer until the
    /// next save).
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
            let stored = current
                .as_ref()
                .and_then(|c| serde_json::from_slice::<ActorSnapshot>(&c.payload).ok());
            if let Some(stored) = &stored {
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
                    if stored.is_some_and(|s| s.version == snapshot.version) {
                        // Best effort: readers already prefer the newer message.
                        let _ = self.block_on(self.api(
                            format!("$JS.API.STREAM.MSG.DELETE.{}", self.names.snapshot_stream),
                            serde_json::json!({ "seq": last_seq, "no_erase": true }),
                            op,
                        ));
                    }
                    self.shared.metrics().add_snapshot();
                    return Ok(());
                }
                // Another writer saved a snapshot meanwhile: compare again.
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
        self.decode_snapshot(actor_id, &rec)
    }

    /// One get when the newest snapshot qualifies; otherwise the actor's kept snapshots
    /// (at most `snapshot_retention + 1` messages) are read one get each. The history is
    /// the newest `snapshot_retention` versions among them (the stream keeps one message
    /// more per actor, so a same-version replacement never pushes out an older version
    /// before the replaced message is deleted).
    fn get_snapshot(&self, actor_id: &str, at_or_below: i64) -> Result<Option<ActorSnapshot>> {
        let op = "get_snapshot";
        let subject = self.names.snapshots_subject(actor_id);
        let stream = &self.names.snapshot_stream;
        let Some(newest) = self.block_on(self.msg_get(
            stream,
            serde_json::json!({ "last_by_subj": subject }),
            op,
        ))?
        else {
            return Ok(None);
        };
        let Some(latest) = self.decode_snapshot(actor_id, &newest)? else {
            return Ok(None);
        };
        if latest.version <= at_or_below {
            return Ok(Some(latest));
        }
        // Oldest first; a later message of a version replaces an earlier one.
        let mut history: std::collections::BTreeMap<i64, ActorSnapshot> = Default::default();
        let mut seq = 1;
        while seq < newest.seq {
            let Some(rec) = self.block_on(self.msg_get(
                stream,
                serde_json::json!({ "seq": seq, "next_by_subj": subject }),
                op,
            ))?
            else {
                break;
            };
            if rec.seq >= newest.seq {
                break;
            }
            seq = rec.seq + 1;
            if let Some(s) = self.decode_snapshot(actor_id, &rec)? {
                history.insert(s.version, s);
            }
        }
        history.insert(latest.version, latest);
        let kept = history
            .into_iter()
            .rev()
            .take(self.opts.snapshot_retention as usize);
        Ok(kept
            .filter(|(v, _)| *v <= at_or_below)
            .map(|(_, s)| s)
            .next())
    }
}

impl JetStreamStore {
    fn decode_snapshot(&self, actor_id: &str, rec: &RawRecord) -> Result<Option<ActorSnapshot>> {
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
