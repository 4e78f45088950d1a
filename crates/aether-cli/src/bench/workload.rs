//! The workload, generated in full before anything is timed: events (with their actor and
//! version), their encoded JSON for the peers, the deliberate conflicts, the batches and
//! the lookup order. The harness then only hands prepared values to the store.

use aether_core::{Event, Timestamp};
use serde_json::{json, Map, Value};

/// A small deterministic generator (SplitMix64): the same seed gives the same workload.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(len);
        s
    }
}

/// One save of the interleaved workload.
#[derive(Debug)]
pub struct Op {
    pub event: Event,
    /// `event`'s Go-compatible JSON, what the store writes and the peers receive.
    pub json: Vec<u8>,
    pub actor: u32,
    /// A deliberately stale version: the store must reject it.
    pub conflict: bool,
}

/// One `save_events` call of the batch phase.
#[derive(Debug)]
pub struct Batch {
    pub events: Vec<Event>,
    pub json: Vec<Vec<u8>>,
}

#[derive(Debug)]
pub struct Workload {
    pub actors: Vec<String>,
    /// Interleaved saves across actors, in the order one writer would issue them.
    pub ops: Vec<Op>,
    pub batches: Vec<Batch>,
    /// Actor indices for the latest-version lookups.
    pub lookups: Vec<u32>,
    /// Mean encoded event size in bytes.
    pub mean_event_len: f64,
}

/// Shape of the workload.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub actors: u64,
    /// Successful saves (conflicts come on top).
    pub events: u64,
    pub payload_size: usize,
    pub conflict_rate: f64,
    pub batch_size: usize,
    pub batch_events: u64,
    pub lookups: u64,
    pub seed: u64,
}

const EVENT_TYPES: [&str; 5] = [
    "OrderPlaced",
    "ItemAdded",
    "ItemRemoved",
    "PaymentAuthorized",
    "OrderShipped",
];
const TIERS: [&str; 3] = ["bronze", "silver", "gold"];

struct Generator {
    rng: Rng,
    payload_size: usize,
    clock: i128,
}

impl Generator {
    /// A realistic event: nested customer and line items, metadata, and a note padded so
    /// the encoded event is about `payload_size` bytes.
    fn event(&mut self, actor: &str, version: i64) -> (Event, Vec<u8>) {
        let rng = &mut self.rng;
        // Mostly one line item, sometimes two: ~300 bytes encoded.
        let items: Vec<Value> = (0..1 + u64::from(rng.below(4) == 0))
            .map(|_| {
                json!({
                    "sku": format!("SKU-{:05}", rng.below(100_000)),
                    "qty": 1 + rng.below(5),
                    "price": (99 + rng.below(10_000)) as f64 / 100.0,
                })
            })
            .collect();
        let total: f64 = items
            .iter()
            .map(|i| i["price"].as_f64().unwrap_or(0.0) * i["qty"].as_f64().unwrap_or(0.0))
            .sum();
        let mut data = Map::new();
        data.insert(
            "customer".into(),
            json!({
                "id": format!("cust-{}", rng.below(1_000_000)),
                "tier": TIERS[rng.below(3) as usize],
            }),
        );
        data.insert("items".into(), Value::Array(items));
        data.insert("total".into(), json!((total * 100.0).round() / 100.0));
        self.clock += 1_000_000 + rng.below(1_000_000) as i128;
        let mut event = Event {
            id: format!("evt-{}", rng.hex(16)),
            event_type: EVENT_TYPES[rng.below(EVENT_TYPES.len() as u64) as usize].into(),
            actor_id: actor.into(),
            version,
            data: Some(data),
            timestamp: Timestamp::from_unix_nanos(self.clock),
            ..Event::default()
        };
        event.set_correlation_id(format!("corr-{}", rng.hex(16)));
        let len = event.to_json().len();
        if len < self.payload_size {
            event
                .data_mut()
                .insert("note".into(), json!("x".repeat(self.payload_size - len)));
        }
        let json = event.to_json();
        (event, json)
    }
}

/// Events made one at a time, for workloads too large to hold in memory (`--scale`): the
/// same generator as [`Workload::generate`].
pub struct EventMaker(Generator);

impl EventMaker {
    pub fn new(seed: u64, payload_size: usize) -> EventMaker {
        EventMaker(Generator {
            rng: Rng::new(seed),
            payload_size,
            clock: 1_750_000_000_000_000_000,
        })
    }

    /// One event of `actor` at `version`.
    pub fn event(&mut self, actor: &str, version: i64) -> Event {
        self.0.event(actor, version).0
    }
}

impl Workload {
    pub fn generate(shape: Shape) -> Workload {
        let mut gen = Generator {
            rng: Rng::new(shape.seed),
            payload_size: shape.payload_size,
            clock: 1_750_000_000_000_000_000,
        };
        let actors: Vec<String> = (0..shape.actors).map(|i| format!("order-{i:06}")).collect();
        let mut latest = vec![0i64; actors.len()];
        let mut ops =
            Vec::with_capacity((shape.events as f64 * (1.0 + shape.conflict_rate)) as usize);
        let mut stored = 0u64;
        let mut json_bytes = 0usize;
        while stored < shape.events {
            let actor = gen.rng.below(actors.len() as u64) as usize;
            let current = latest[actor];
            let conflict = current > 0 && gen.rng.chance(shape.conflict_rate);
            let version = if conflict {
                // A writer that loaded the actor before its last save(s).
                1 + gen.rng.below(current as u64) as i64
            } else {
                current + 1
            };
            let (event, json) = gen.event(&actors[actor], version);
            if !conflict {
                latest[actor] = version;
                stored += 1;
                json_bytes += json.len();
            }
            ops.push(Op {
                event,
                json,
                actor: actor as u32,
                conflict,
            });
        }

        let batch_size = shape.batch_size.max(1);
        let batch_count = (shape.batch_events as usize).div_ceil(batch_size).max(1);
        // A few busy actors taking successive batches, interleaved round-robin.
        let batch_actors: Vec<String> = (0..batch_count.div_ceil(4))
            .map(|i| format!("batch-{i:05}"))
            .collect();
        let mut batch_latest = vec![0i64; batch_actors.len()];
        let batches = (0..batch_count)
            .map(|i| {
                let a = i % batch_actors.len();
                let (events, json) = (0..batch_size)
                    .map(|_| {
                        batch_latest[a] += 1;
                        gen.event(&batch_actors[a], batch_latest[a])
                    })
                    .unzip();
                Batch { events, json }
            })
            .collect();
        let lookups = (0..shape.lookups)
            .map(|_| gen.rng.below(actors.len() as u64) as u32)
            .collect();
        Workload {
            actors,
            ops,
            batches,
            lookups,
            mean_event_len: json_bytes as f64 / shape.events.max(1) as f64,
        }
    }

    /// Indices of `ops` per writer: actors are split between writers so each actor's
    /// versions stay in order and the only conflicts are the deliberate ones.
    pub fn partition(&self, writers: usize) -> Vec<Vec<usize>> {
        let mut parts = vec![Vec::with_capacity(self.ops.len() / writers + 1); writers];
        for (i, op) in self.ops.iter().enumerate() {
            parts[op.actor as usize % writers].push(i);
        }
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_is_deterministic_sized_and_consistent() {
        let shape = Shape {
            actors: 20,
            events: 500,
            payload_size: 300,
            conflict_rate: 0.05,
            batch_size: 10,
            batch_events: 100,
            lookups: 50,
            seed: 7,
        };
        let a = Workload::generate(shape);
        let b = Workload::generate(shape);
        assert_eq!(a.ops.len(), b.ops.len());
        assert_eq!(a.ops[17].json, b.ops[17].json);
        assert_eq!(a.ops.iter().filter(|o| !o.conflict).count(), 500);
        let conflicts = a.ops.iter().filter(|o| o.conflict).count();
        assert!(conflicts > 5 && conflicts < 60, "{conflicts}");
        assert!(
            (a.mean_event_len - 300.0).abs() < 45.0,
            "{}",
            a.mean_event_len
        );
        assert_eq!(a.batches.len(), 10);
        for op in &a.ops {
            // Decoding and re-encoding gives the same bytes (Go writes 634.0 as 634).
            assert_eq!(Event::from_json(&op.json).unwrap().to_json(), op.json);
        }
        let parts = a.partition(3);
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), a.ops.len());
    }
}
