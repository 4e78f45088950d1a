//! Test harness: private `nats-server` processes on 127.0.0.1 (free ports, temporary store
//! folders), killed when their guard drops.
//!
//! Without `nats-server` on PATH the tests fail, saying so, unless `AETHER_SKIP_JETSTREAM=1`
//! (then they pass without running, and print that they were skipped).

#![allow(dead_code)]

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aether_core::Error;
use aether_jetstream::{JetStreamOptions, JetStreamStore};

/// Whether the JetStream tests can run; panics with instructions when the server binary is
/// missing and skipping was not asked for.
pub fn nats_available() -> bool {
    let on_path = Command::new("nats-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if on_path {
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
    /// A single JetStream server storing in `dir`.
    pub fn single(dir: &Path) -> NatsServer {
        let port = free_port();
        let args = vec![
            "-js".into(),
            "-sd".into(),
            dir.join("js").display().to_string(),
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ];
        NatsServer::start(dir, port, args)
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
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let nodes = (0..3)
            .map(|i| {
                let dir = root.join(format!("n{i}"));
                let args = vec![
                    "-js".into(),
                    "-sd".into(),
                    dir.join("js").display().to_string(),
                    "-a".into(),
                    "127.0.0.1".into(),
                    "-p".into(),
                    client_ports[i].to_string(),
                    "--server_name".into(),
                    format!("n{i}"),
                    "--cluster_name".into(),
                    "aether-test".into(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{}", cluster_ports[i]),
                    "--routes".into(),
                    routes.clone(),
                ];
                NatsServer::start(&dir, client_ports[i], args)
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
