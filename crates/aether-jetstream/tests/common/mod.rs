//! Test harness: private `nats-server` processes on 127.0.0.1 (free ports, temporary store
//! folders), killed when their guard drops.
//!
//! Without `nats-server` on PATH, or with one older than 2.12, the tests fail, saying so
//! (`require_nats`), unless `AETHER_SKIP_JETSTREAM=1` asked for the skip when they were
//! built: then `build.rs` sets `--cfg aether_skip_jetstream` and they are `#[ignore]`d,
//! counted as ignored by the runner. `crates/aether-jetstream/scripts/nats-server.sh`
//! installs the pinned server (`make test-jetstream` does).
//!
//! Every server runs from a configuration file ([`server_config`]): the documented
//! single-server settings (`sync_interval: always`, `max_payload: 2MB`, atomic batches of
//! up to 10,000 messages).

#![allow(dead_code)]

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::collections::{BTreeMap, HashSet};
use std::process::Command as Process;

use aether_core::{Error, Event, EventStore, Timestamp};
use aether_jetstream::{JetStreamOptions, JetStreamStore};

/// The oldest server the tests accept: the store needs atomic batch publish (2.12).
pub const MIN_VERSION: (u64, u64) = (2, 12);

const INSTALL: &str =
    "install the pinned one with `bash crates/aether-jetstream/scripts/nats-server.sh` \
     (it prints the folder to put first on PATH; `make test-jetstream` does both)";

/// Every test that needs a server calls this first: it fails, saying what to do, when
/// `nats-server` is not on PATH or is older than 2.12. Skipping is decided at build time
/// (see the module doc), so a test that did not run shows as ignored, never as passed.
pub fn require_nats() {
    assert!(
        nats_on_path(),
        "nats-server is not on PATH: the JetStream backend's tests need nats-server 2.12 or \
         later; {INSTALL}. Build the tests with AETHER_SKIP_JETSTREAM=1 to mark them ignored instead."
    );
    let (version, parsed) = nats_version();
    assert!(
        parsed >= MIN_VERSION,
        "nats-server on PATH is {version:?}, older than {}.{}: the JetStream tests need atomic \
         batch publish and sync_interval; {INSTALL}",
        MIN_VERSION.0,
        MIN_VERSION.1
    );
}

/// `nats-server --version` as printed, and its (major, minor).
pub fn nats_version() -> (String, (u64, u64)) {
    let out = Command::new("nats-server")
        .arg("--version")
        .output()
        .expect("running nats-server --version");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let number = text
        .rsplit(' ')
        .next()
        .unwrap_or("")
        .trim_start_matches('v');
    let mut parts = number
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse().ok());
    let parsed = match (parts.next().flatten(), parts.next().flatten()) {
        (Some(a), Some(b)) => (a, b),
        _ => (0, 0),
    };
    (text, parsed)
}

/// The configuration every test server runs with: the README's single-server settings,
/// plus `extra` (cluster settings). `sync_interval: always` fsyncs every write before it is
/// acknowledged; `max_payload: 2MB` fits a 1 MiB event with its headers; `max_msgs: 10000`
/// lets an atomic batch hold the store's 10,000 events.
pub fn server_config(store_dir: &Path, port: u16, sync_always: bool, extra: &str) -> String {
    let sync = if sync_always {
        "sync_interval: always"
    } else {
        ""
    };
    format!(
        "listen: \"127.0.0.1:{port}\"\nmax_payload: 2MB\njetstream {{\n  store_dir: \"{}\"\n  {sync}\n  limits {{ batch {{ max_msgs: 10000 }} }}\n}}\n{extra}\n",
        store_dir.display()
    )
}

fn nats_on_path() -> bool {
    Command::new("nats-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// For the examples (programs, not tests): whether they can run; panics with instructions
/// when the server binary is missing and skipping was not asked for.
pub fn nats_available() -> bool {
    if nats_on_path() {
        require_nats();
        return true;
    }
    if std::env::var("AETHER_SKIP_JETSTREAM").as_deref() == Ok("1") {
        eprintln!("skipped: nats-server is not on PATH and AETHER_SKIP_JETSTREAM=1");
        return false;
    }
    panic!(
        "nats-server is not on PATH: the JetStream backend's tests need it \
         (Debian: apt-get install -y nats-server). Set AETHER_SKIP_JETSTREAM=1 to skip them."
    );
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One `nats-server` process; killed (SIGKILL) on drop.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    args: Vec<String>,
    log: PathBuf,
}

impl NatsServer {
    /// A single JetStream server storing in `dir`, configured as the README documents.
    pub fn single(dir: &Path) -> NatsServer {
        let port = free_port();
        NatsServer::with_config(dir, port, &server_config(&dir.join("js"), port, true, ""))
    }

    /// A server run from `config`, written to `dir/server.conf`.
    pub fn with_config(dir: &Path, port: u16, config: &str) -> NatsServer {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("server.conf");
        std::fs::write(&path, config).unwrap();
        NatsServer::start(dir, port, vec!["-c".into(), path.display().to_string()])
    }

    /// A server started with `args`, logging to `dir/server.log`.
    pub fn start(dir: &Path, port: u16, args: Vec<String>) -> NatsServer {
        std::fs::create_dir_all(dir).unwrap();
        let mut s = NatsServer {
            child: None,
            port,
            dir: dir.to_owned(),
            args,
            log: dir.join("server.log"),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new("nats-server")
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on port {} within 10 s; log: {}",
                self.port,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, and wait for the process to go.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again with the same port, folder and arguments.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Freeze (SIGSTOP) or thaw (SIGCONT) the process.
    pub fn signal(&self, sig: libc::c_int) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) on a child we own.
            unsafe {
                libc::kill(pid as libc::pid_t, sig);
            }
            if sig == libc::SIGSTOP {
                // Return only once every thread of the server has stopped.
                let deadline = Instant::now() + Duration::from_secs(5);
                let task_dir = format!("/proc/{pid}/task");
                loop {
                    let all_stopped = std::fs::read_dir(&task_dir)
                        .map(|tasks| {
                            tasks.flatten().all(|t| {
                                std::fs::read_to_string(t.path().join("stat"))
                                    .ok()
                                    .and_then(|st| {
                                        st.rsplit_once(')')
                                            .map(|(_, rest)| rest.trim_start().starts_with('T'))
                                    })
                                    .unwrap_or(true)
                            })
                        })
                        .unwrap_or(true);
                    if all_stopped || Instant::now() > deadline {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            // A frozen server ignores nothing but SIGKILL anyway; thaw it for a clean exit.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGCONT);
            }
        }
        self.kill();
    }
}

/// Three JetStream servers clustered on 127.0.0.1.
pub struct Cluster {
    pub nodes: Vec<NatsServer>,
}

impl Cluster {
    pub fn start(root: &Path) -> Cluster {
        let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes = cluster_ports
            .iter()
            .map(|p| format!("\"nats://127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let nodes = (0..3)
            .map(|i| {
                let dir = root.join(format!("n{i}"));
                let extra = format!(
                    "server_name: n{i}\ncluster {{\n  name: aether-test\n  listen: \"127.0.0.1:{}\"\n  routes: [{routes}]\n}}",
                    cluster_ports[i]
                );
                // R3: an acknowledged save is on a quorum of two nodes; each node syncs
                // on JetStream's default interval (the README's cluster settings).
                let config = server_config(&dir.join("js"), client_ports[i], false, &extra);
                NatsServer::with_config(&dir, client_ports[i], &config)
            })
            .collect();
        Cluster { nodes }
    }

    /// Every node's URL, comma-separated (the client fails over between them).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The name (`n0`..`n2`) of the node leading the events stream.
pub fn stream_leader(store: &JetStreamStore) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = store.nats_client().clone();
    let name = store.stream_name().to_owned();
    rt.block_on(async move {
        let js = async_nats::jetstream::new(client);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut stream) = js.get_stream(&name).await {
                if let Ok(info) = stream.info().await {
                    if let Some(leader) = info.cluster.as_ref().and_then(|c| c.leader.clone()) {
                        return leader;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no stream leader");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// The examples' event: about 280 bytes of JSON, a fixed timestamp per version.
pub fn bench_event(actor: &str, version: i64) -> Event {
    let mut e = Event::new(format!("{actor}-{version}"), "Deposited", actor, version)
        .with_data("amount", version)
        .with_data("currency", "EUR")
        .with_data("note", "x".repeat(120));
    e.timestamp = Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + version as i128);
    e
}

/// Open a store, retrying while the server (or the cluster's JetStream meta leader) is
/// still coming up.
pub fn open_when_ready(urls: &str, opts: JetStreamOptions) -> JetStreamStore {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match JetStreamStore::connect(urls, opts.clone()) {
            Ok(s) => return s,
            Err(e @ (Error::Unavailable { .. } | Error::Timeout { .. }))
                if Instant::now() < deadline =>
            {
                let _ = e;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("opening the JetStream store at {urls}: {e}"),
        }
    }
}

// ---- processes racing ---------------------------------------------------------------

/// The body of a racing child process (see `race_processes`). Each test binary that
/// races has an ignored test `race_child` calling this, which `race_processes` runs with
/// `--ignored --exact`; run any other way, it fails.
pub fn race_child_main() {
    let urls = std::env::var("AETHER_RACE_URLS")
        .expect("race_child runs only as race_processes' child (AETHER_RACE_URLS unset)");
    let me = std::env::var("AETHER_RACE_ID").unwrap();
    let actors: usize = std::env::var("AETHER_RACE_ACTORS")
        .unwrap()
        .parse()
        .unwrap();
    let versions: i64 = std::env::var("AETHER_RACE_VERSIONS")
        .unwrap()
        .parse()
        .unwrap();
    let mut o = JetStreamOptions::default();
    o.connect_timeout = Duration::from_secs(10);
    o.request_timeout = Duration::from_secs(3);
    let store = open_when_ready(&urls, o);
    println!("READY {me}");
    // Start together: wait for the parent's go file.
    let go = std::path::PathBuf::from(std::env::var("AETHER_RACE_GO").unwrap());
    while !go.exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    for v in 1..=versions {
        for a in 0..actors {
            let actor = format!("race-{a}");
            let mut e = Event::new(format!("{actor}-{v}-{me}"), "Raced", actor.as_str(), v);
            e.timestamp = aether_core::Timestamp::from_unix_nanos(1_700_000_000_000_000_000);
            loop {
                match store.save_event(&e) {
                    Ok(seq) => {
                        println!("WIN {actor} {v} {} {seq}", e.id);
                        break;
                    }
                    Err(Error::VersionConflict {
                        current_version, ..
                    }) => {
                        assert!(current_version >= v);
                        break;
                    }
                    // Unknown outcome: retry the same event (same ID) until it is known.
                    Err(Error::Timeout { .. } | Error::Unavailable { .. }) => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(e) => panic!("{me}: {e}"),
                }
            }
        }
    }
    println!("DONE {me}");
}

/// Run `n` child processes racing on the same actors against `urls`; return each win as
/// (actor, version, event id, sequence).
pub fn race_processes(
    urls: &str,
    n: usize,
    actors: usize,
    versions: i64,
) -> Vec<(String, i64, String, u64)> {
    let go = tempfile::tempdir().unwrap();
    let go_file = go.path().join("go");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..n)
        .map(|i| {
            Process::new(&exe)
                .args([
                    "--ignored",
                    "--exact",
                    "race_child",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("AETHER_RACE_URLS", urls)
                .env("AETHER_RACE_ID", format!("p{i}"))
                .env("AETHER_RACE_ACTORS", actors.to_string())
                .env("AETHER_RACE_VERSIONS", versions.to_string())
                .env("AETHER_RACE_GO", &go_file)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Give every child time to connect before the start signal.
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::write(&go_file, b"go").unwrap();
    let mut wins = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("DONE"),
            "racer failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        for line in stdout.lines().filter(|l| l.starts_with("WIN ")) {
            let f: Vec<&str> = line.split(' ').collect();
            wins.push((
                f[1].to_owned(),
                f[2].parse().unwrap(),
                f[3].to_owned(),
                f[4].parse().unwrap(),
            ));
        }
    }
    wins
}

/// Check the outcome of a race: exactly one winner per (actor, version), the stored events
/// are exactly the winners, and the store-wide sequence is gapless.
pub fn check_race(
    store: &JetStreamStore,
    wins: &[(String, i64, String, u64)],
    actors: usize,
    versions: i64,
) {
    let mut by_version: BTreeMap<(String, i64), Vec<&str>> = BTreeMap::new();
    for (a, v, id, _) in wins {
        by_version.entry((a.clone(), *v)).or_default().push(id);
    }
    for a in 0..actors {
        let actor = format!("race-{a}");
        for v in 1..=versions {
            let w = by_version
                .get(&(actor.clone(), v))
                .unwrap_or_else(|| panic!("nobody won {actor} v{v}"));
            assert_eq!(w.len(), 1, "{actor} v{v} won by {w:?}");
        }
        let stored = store.get_events(&actor, 0).unwrap();
        assert_eq!(stored.len() as i64, versions);
        for e in &stored {
            assert_eq!(by_version[&(actor.clone(), e.version)], [e.id.as_str()]);
        }
    }
    let seqs: HashSet<u64> = wins.iter().map(|w| w.3).collect();
    assert_eq!(seqs.len(), wins.len(), "two wins share a sequence");
    let all = store.read_all(1, usize::MAX).unwrap();
    assert_eq!(all.len(), wins.len());
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.sequence, i as u64 + 1);
    }
}
