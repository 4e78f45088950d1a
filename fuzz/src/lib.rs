//! Helpers shared by the fuzz targets.

use serde_json::{Map, Value};

/// Whether two JSON values are equal as Go's `encoding/json` sees them: numbers compare
/// by value, so `1.0` (decoded as a float) equals `1` (decoded as an integer), which is
/// how the Go encoder writes it. Integers still compare exactly (no rounding through f64).
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x.is_f64() || y.is_f64() {
                match (x.as_f64(), y.as_f64()) {
                    // Bit equality keeps -0 and 0 apart; both are written differently.
                    (Some(p), Some(q)) => p.to_bits() == q.to_bits() || p == q && p != 0.0,
                    _ => false,
                }
            } else {
                x == y
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q))
        }
        (Value::Object(x), Value::Object(y)) => same_object(x, y),
        _ => a == b,
    }
}

/// [`same_json`] for objects.
pub fn same_object(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| same_json(v, w)))
}

/// [`same_json`] for optional objects (an event's `data`, a snapshot's `state`).
pub fn same_opt_object(a: &Option<Map<String, Value>>, b: &Option<Map<String, Value>>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => same_object(x, y),
        (None, None) => true,
        _ => false,
    }
}
