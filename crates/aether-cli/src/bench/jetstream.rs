//! NATS JetStream as a peer of `aether bench --compare`, when a `nats-server` binary is on
//! PATH: a private server on 127.0.0.1 (random free port, `-js -sd <tempdir>`), stopped
//! afterwards, and a stream `EVENTS` with one subject per actor.
//!
//! Each save is a publish with `Nats-Expected-Last-Subject-Sequence` (JetStream's
//! optimistic concurrency per subject) whose ack is awaited before the next, so it does
//! the same work as our single-writer save, conflicts included.
//!
//! The client is a small synchronous implementation of the NATS text protocol (CONNECT,
//! SUB, HPUB, MSG/HMSG, PING/PONG) rather than async-nats: one outstanding request at a
//! time needs no runtime, and the workspace's build on a 2-core machine stays light.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::peers::Contender;
use super::report::{histogram, record, OpStats};
use super::workload::Workload;
use crate::util::{CmdResult, Failure};

const STREAM: &str = "EVENTS";
const INBOX: &str = "_INBOX.aether-bench";

/// A `nats-server` started for the bench; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Start `nats-server` with JetStream storing in `dir`, and wait until it accepts.
    pub fn start(dir: &Path) -> CmdResult<Server> {
        // A port the OS just handed out is free unless someone races us for it.
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| Failure(format!("finding a free port for nats-server: {e}")))?
            .port();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        std::fs::create_dir_all(dir).map_err(|e| Failure(format!("{}: {e}", dir.display())))?;
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Failure(format!("starting nats-server: {e}")))?;
        let server = Server { child, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() >= deadline {
                return Err(Failure(format!(
                    "nats-server did not listen on {addr} within 10 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }
}

/// One connection, one request in flight.
struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    next_reply: u64,
    line: String,
}

impl Client {
    fn connect(addr: SocketAddr) -> CmdResult<Client> {
        let io = |e: std::io::Error| Failure(format!("NATS connection: {e}"));
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(io)?;
        let reader = BufReader::new(stream.try_clone().map_err(io)?);
        let mut client = Client {
            writer: stream,
            reader,
            next_reply: 0,
            line: String::new(),
        };
        client.read_line()?; // INFO
        client.send(
            format!(
                "CONNECT {{\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true,\"lang\":\"rust\",\"version\":\"{}\",\"protocol\":1}}\r\nSUB {INBOX}.* 1\r\nPING\r\n",
                aether_core::VERSION
            )
            .as_bytes(),
        )?;
        loop {
            let line = client.read_line()?;
            if line.starts_with("PONG") {
                return Ok(client);
            }
            if line.starts_with("-ERR") {
                return Err(Failure(format!("NATS: {line}")));
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) -> CmdResult<()> {
        self.writer
            .write_all(bytes)
            .map_err(|e| Failure(format!("NATS write: {e}")))
    }

    fn read_line(&mut self) -> CmdResult<String> {
        self.line.clear();
        let n = self
            .reader
            .read_line(&mut self.line)
            .map_err(|e| Failure(format!("NATS read: {e}")))?;
        if n == 0 {
            return Err(Failure("NATS: the server closed the connection".into()));
        }
        Ok(self.line.trim_end().to_owned())
    }

    /// Publish `payload` (with `headers`, if any) and wait for the reply on our inbox.
    fn request(
        &mut self,
        subject: &str,
        headers: Option<&str>,
        payload: &[u8],
    ) -> CmdResult<Vec<u8>> {
        self.next_reply += 1;
        let reply = format!("{INBOX}.{}", self.next_reply);
        let mut frame = Vec::with_capacity(payload.len() + 128);
        match headers {
            Some(h) => {
                let hdr = format!("NATS/1.0\r\n{h}\r\n\r\n");
                frame.extend_from_slice(
                    format!(
                        "HPUB {subject} {reply} {} {}\r\n",
                        hdr.len(),
                        hdr.len() + payload.len()
                    )
                    .as_bytes(),
                );
                frame.extend_from_slice(hdr.as_bytes());
            }
            None => frame.extend_from_slice(
                format!("PUB {subject} {reply} {}\r\n", payload.len()).as_bytes(),
            ),
        }
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        self.send(&frame)?;
        loop {
            let line = self.read_line()?;
            let mut parts = line.split_ascii_whitespace();
            match parts.next() {
                Some("PING") => self.send(b"PONG\r\n")?,
                Some("MSG") | Some("HMSG") => {
                    let fields: Vec<&str> = parts.collect();
                    let total: usize = fields
                        .last()
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| Failure(format!("NATS: bad message line {line:?}")))?;
                    let header_len: usize = if line.starts_with("HMSG") {
                        fields
                            .get(fields.len().wrapping_sub(2))
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0)
                    } else {
                        0
                    };
                    let mut body = vec![0u8; total + 2];
                    self.reader
                        .read_exact(&mut body)
                        .map_err(|e| Failure(format!("NATS read: {e}")))?;
                    body.truncate(total);
                    if fields.first() != Some(&reply.as_str()) {
                        continue; // a late reply to an earlier request
                    }
                    if header_len > 0 && body.len() == header_len {
                        // A status-only reply, e.g. 503 no responders.
                        return Err(Failure(format!(
                            "NATS: {}",
                            String::from_utf8_lossy(&body).trim()
                        )));
                    }
                    return Ok(body.split_off(header_len));
                }
                Some("-ERR") => return Err(Failure(format!("NATS: {line}"))),
                _ => {}
            }
        }
    }
}

/// Our save workload as JetStream publishes with per-subject optimistic concurrency.
pub struct JetStreamSaves<'w> {
    client: Client,
    work: &'w Workload,
    next: usize,
    /// Stream sequence of each actor's messages, by version - 1.
    sequences: Vec<Vec<u64>>,
    hist: Histogram<u64>,
    pub rejected: u64,
    pub unexpected: Option<String>,
}

impl<'w> JetStreamSaves<'w> {
    pub fn new(server: &Server, work: &'w Workload) -> CmdResult<Self> {
        let mut client = Client::connect(server.addr)?;
        let config = format!(
            "{{\"name\":\"{STREAM}\",\"subjects\":[\"events.>\"],\"storage\":\"file\",\"num_replicas\":1}}"
        );
        let answer = client.request(
            &format!("$JS.API.STREAM.CREATE.{STREAM}"),
            None,
            config.as_bytes(),
        )?;
        let answer: serde_json::Value = serde_json::from_slice(&answer)
            .map_err(|e| Failure(format!("JetStream: stream creation answer: {e}")))?;
        if let Some(error) = answer.get("error") {
            return Err(Failure(format!("JetStream: creating the stream: {error}")));
        }
        Ok(JetStreamSaves {
            client,
            work,
            next: 0,
            sequences: vec![Vec::new(); work.actors.len()],
            hist: histogram(),
            rejected: 0,
            unexpected: None,
        })
    }

    pub fn stats(&self, busy: Duration) -> OpStats {
        let mut s = OpStats::new(
            "JetStream publish (file, ack awaited)",
            self.hist.len(),
            self.hist.len(),
            busy,
        );
        s.hist = self.hist.clone();
        s
    }
}

impl Contender for JetStreamSaves<'_> {
    fn events(&self) -> u64 {
        self.hist.len()
    }

    fn run_slice(&mut self, until: Instant) -> CmdResult<bool> {
        while let Some(op) = self.work.ops.get(self.next) {
            if self.next % 8 == 0 && Instant::now() >= until {
                return Ok(true);
            }
            self.next += 1;
            let actor = op.actor as usize;
            // The subject sequence the writer last saw: for a stale version, that of the
            // version before it, which the stream has moved past.
            let expected = match op.event.version {
                v if v >= 2 => self.sequences[actor]
                    .get(v as usize - 2)
                    .copied()
                    .unwrap_or(0),
                _ => 0,
            };
            let t0 = Instant::now();
            let ack = self.client.request(
                &format!("events.{}", op.event.actor_id),
                Some(&format!("Nats-Expected-Last-Subject-Sequence: {expected}")),
                &op.json,
            )?;
            let dt = t0.elapsed();
            let ack: serde_json::Value = serde_json::from_slice(&ack)
                .map_err(|e| Failure(format!("JetStream: publish ack: {e}")))?;
            // An error answer carries "seq": 0 beside its "error".
            let stored = match ack.get("error") {
                None => ack.get("seq").and_then(|s| s.as_u64()),
                Some(_) => None,
            };
            match (stored, op.conflict) {
                (Some(seq), false) => {
                    record(&mut self.hist, dt);
                    self.sequences[actor].push(seq);
                }
                (None, true) => self.rejected += 1,
                (_, conflict) => {
                    self.unexpected.get_or_insert_with(|| {
                        format!(
                            "JetStream publish of actor {:?} version {} (conflict expected: {conflict}) answered {ack}",
                            op.event.actor_id, op.event.version
                        )
                    });
                }
            }
        }
        Ok(false)
    }
}
