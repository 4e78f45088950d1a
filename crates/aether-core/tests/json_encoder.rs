//! The hand-written event encoder (`Event::write_json`, `json::write_str`, `json::write_value`)
//! against the serde path it replaced on the save path (`json::to_vec_go` on the derived
//! `Serialize` with `GoFormatter`), which the golden files tie to Go: for any event, the
//! two must write the same bytes.
//!
//! `AETHER_JSON_CASES` sets the number of random events (default 4,000).

use std::collections::BTreeMap;

use aether_core::json::{to_vec_go, write_str, write_value};
use aether_core::{Event, Timestamp};
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

fn cases() -> u32 {
    std::env::var("AETHER_JSON_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000)
}

/// Characters from every class the encoders treat differently.
fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        // Plain ASCII: the fast path.
        4 => prop::char::range('a', 'z'),
        // Every control character (short escapes \b \t \n \f \r, the rest \u00XX) and DEL.
        2 => prop::char::range('\u{0}', '\u{1f}'),
        1 => Just('\u{7f}'),
        // Quote, backslash, the HTML characters Go escapes, and a few it does not.
        3 => prop::sample::select(vec!['"', '\\', '<', '>', '&', '/', '\'', ' ']),
        // U+2028/U+2029 (E2 80 A8/A9) and their E2-led neighbours, which pass unescaped.
        3 => prop::sample::select(vec![
            '\u{2028}', '\u{2029}', '\u{2027}', '\u{202a}', '\u{2000}', '\u{20ac}', '\u{2fff}',
        ]),
        // Two- and three-byte UTF-8, astral characters, and anything at all.
        1 => prop::char::range('\u{80}', '\u{7ff}'),
        1 => prop::char::range('\u{800}', '\u{ffff}'),
        1 => prop::char::range('\u{10000}', '\u{10ffff}'),
        2 => any::<char>(),
    ]
}

fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        6 => prop::collection::vec(any_char(), 1..24).prop_map(|c| c.into_iter().collect()),
        // Long runs, as a padded note has them, with an escape somewhere in the middle.
        1 => (0usize..300, any_char(), 0usize..300).prop_map(|(a, c, b)| {
            let mut s = "x".repeat(a);
            s.push(c);
            s.push_str(&"y".repeat(b));
            s
        }),
    ]
}

fn any_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        // Around every boundary of Go's notation switch, and the extremes.
        3 => prop::sample::select(vec![
            0.0, -0.0, 1.0, -1.5, 0.1, 1e-6, f64::from_bits(1e-6f64.to_bits() - 1), 1e-7, 1e20, 1e21,
            9.999999999999999e20, 1e-5, 123456.789, f64::MAX, f64::MIN, f64::MIN_POSITIVE,
            5e-324, -5e-324, 9007199254740993.0, f64::from_bits(f64::MIN_POSITIVE.to_bits() - 1),
            -1.2345678901234567e-100, -0.0000012345678901234567, -123456789012345680000.0,
        ]),
        // Any magnitude: a mantissa scaled by any power of ten.
        3 => (any::<i64>(), -330i32..310).prop_map(|(m, e)| m as f64 * 10f64.powi(e)),
        // Any bit pattern (non-finite ones are filtered out by the caller).
        2 => any::<u64>().prop_map(f64::from_bits),
        // Prices and totals, as the workload writes them.
        2 => (0u32..1_000_000).prop_map(|c| f64::from(c) / 100.0),
    ]
}

fn any_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec![i64::MIN, i64::MAX, -1, 0, 1]).prop_map(Value::from),
        prop::sample::select(vec![u64::MAX, i64::MAX as u64 + 1]).prop_map(Value::from),
        any_float().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
    ]
}

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any_number(),
        any_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            any_object(inner).prop_map(Value::Object),
        ]
    })
}

fn any_object(values: impl Strategy<Value = Value>) -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((any_string(), values), 0..6)
        .prop_map(|pairs| pairs.into_iter().collect())
}

fn any_timestamp() -> impl Strategy<Value = Timestamp> {
    // Local dates anywhere in Go's marshalable years, fractions with and without trailing
    // zeros, and offsets of whole minutes within ±24h (zero is written as Z).
    let nanos = prop_oneof![
        Just(0u32),
        0u32..1_000_000_000,
        (0u32..1000).prop_map(|n| n * 1_000_000),
    ];
    let offset = prop_oneof![Just(0i32), (-1439i32..1440).prop_map(|m| m * 60)];
    (-62_167_132_800i64..253_402_214_400, nanos, offset).prop_map(|(secs, nanos, offset)| {
        Timestamp::from_parts(secs, nanos, offset).expect("a representable time")
    })
}

fn any_event() -> impl Strategy<Value = Event> {
    (
        (any_string(), any_string(), any_string()),
        prop_oneof![Just(String::new()), any_string()],
        prop_oneof![any::<i64>(), 0i64..1000],
        prop_oneof![
            1 => Just(None),
            1 => Just(Some(Map::new())),
            4 => any_object(any_value()).prop_map(Some),
        ],
        prop::collection::btree_map(any_string(), any_string(), 0..4),
        any_timestamp(),
    )
        .prop_map(
            |((id, event_type, actor_id), command_id, version, data, metadata, timestamp)| Event {
                id,
                event_type,
                actor_id,
                command_id,
                version,
                data,
                metadata,
                timestamp,
            },
        )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn events_encode_as_the_serde_path_does(event in any_event(), other_version in any::<i64>()) {
        let want = to_vec_go(&event).unwrap();
        prop_assert_eq!(text(&event.to_json()), text(&want));

        // Appended after other bytes, as a batch writes them.
        let mut out = b"prefix".to_vec();
        event.write_json(&mut out);
        prop_assert_eq!(&out[..6], b"prefix");
        prop_assert_eq!(text(&out[6..]), text(&want));

        let mut moved = event.clone();
        moved.version = other_version;
        let mut at = Vec::new();
        event.write_json_at_version(other_version, &mut at);
        prop_assert_eq!(text(&at), text(&to_vec_go(&moved).unwrap()));
    }

    #[test]
    fn strings_encode_as_the_serde_path_does(s in any_string()) {
        let mut out = Vec::new();
        write_str(&mut out, &s);
        prop_assert_eq!(text(&out), text(&to_vec_go(&s).unwrap()));
    }

    #[test]
    fn values_encode_as_the_serde_path_does(v in any_value()) {
        let mut out = Vec::new();
        write_value(&mut out, &v);
        prop_assert_eq!(text(&out), text(&to_vec_go(&v).unwrap()));
    }

    #[test]
    fn floats_encode_as_the_serde_path_does(f in any_float()) {
        if let Some(n) = Number::from_f64(f) {
            let v = Value::Number(n);
            let mut out = Vec::new();
            write_value(&mut out, &v);
            prop_assert_eq!(text(&out), text(&to_vec_go(&v).unwrap()));
        }
    }
}

/// Every single character, alone and between plain text, through both paths.
#[test]
fn every_character_encodes_as_the_serde_path_does() {
    for c in (0u32..=0x10FFFF).filter_map(char::from_u32) {
        // Alone, inside a word, and far enough in for the eight-byte scan to meet it.
        for s in [
            c.to_string(),
            format!("ab{c}cd"),
            format!("abcdefghi{c}jklmnopq"),
        ] {
            let mut out = Vec::new();
            write_str(&mut out, &s);
            assert_eq!(out, to_vec_go(&s).unwrap(), "character U+{:04X}", c as u32);
        }
    }
}

/// Adjacent escapes, escapes at both ends, and U+2028/9 cut short by the end of the string.
#[test]
fn escape_edges_encode_as_the_serde_path_does() {
    let mut metadata = BTreeMap::new();
    metadata.insert("<&>".to_owned(), "\u{2028}\u{2029}\u{2028}".to_owned());
    metadata.insert("\"".to_owned(), "\\\\\n\u{0}\u{1f}".to_owned());
    for s in [
        "\u{2028}",
        "a\u{2029}",
        "\u{2028}b",
        "<<>>&&",
        "\"\"",
        "\u{e2}",
        "€\u{2028}€",
        "\u{1F600}<\u{1F600}",
    ] {
        let mut out = Vec::new();
        write_str(&mut out, s);
        assert_eq!(text(&out), text(&to_vec_go(s).unwrap()));
        let event = Event {
            id: s.to_owned(),
            command_id: s.to_owned(),
            metadata: metadata.clone(),
            ..Event::default()
        };
        assert_eq!(text(&event.to_json()), text(&to_vec_go(&event).unwrap()));
    }
}
