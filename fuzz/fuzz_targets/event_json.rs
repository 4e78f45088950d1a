//! `Event` and `ActorSnapshot` JSON: arbitrary bytes must decode or fail without a panic,
//! and whatever decodes must survive encode → decode, with the encoding a fixed point
//! (encode(decode(encode(e))) == encode(e), byte for byte).
//!
//! "Survive" means equal as Go sees the value: the Go format writes an integral float as
//! an integer (`2.0` as `2`), which serde_json then decodes as an integer, so `data` is
//! compared with numbers by value ([`aether_fuzz::same_opt_object`]); every other field
//! must be exactly equal. (`Event`'s derived `==` tells `2.0` and `2` apart; see
//! crates/aether-core/tests/fuzz_regressions.rs.)
#![no_main]

use aether_core::{ActorSnapshot, Event};
use aether_fuzz::same_opt_object;
use libfuzzer_sys::fuzz_target;

fn text(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

fn same_event(a: &Event, b: &Event) -> bool {
    let strip = |e: &Event| Event {
        data: None,
        ..e.clone()
    };
    strip(a) == strip(b) && same_opt_object(&a.data, &b.data)
}

fn same_snapshot(a: &ActorSnapshot, b: &ActorSnapshot) -> bool {
    let strip = |s: &ActorSnapshot| ActorSnapshot {
        state: None,
        ..s.clone()
    };
    strip(a) == strip(b) && same_opt_object(&a.state, &b.state)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = Event::from_json(data) {
        let encoded = event.to_json();
        let again = Event::from_json(&encoded).unwrap_or_else(|e| {
            panic!(
                "the encoding of a decoded event does not decode: {e}\n{}",
                text(&encoded)
            )
        });
        assert!(
            same_event(&again, &event),
            "event changed in a round trip via {}\nbefore: {event:?}\nafter:  {again:?}",
            text(&encoded)
        );
        assert_eq!(
            text(&again.to_json()),
            text(&encoded),
            "event encoding is not a fixed point"
        );
    }
    if let Ok(snapshot) = serde_json::from_slice::<ActorSnapshot>(data) {
        let encoded = snapshot.to_json();
        let again: ActorSnapshot = serde_json::from_slice(&encoded).unwrap_or_else(|e| {
            panic!(
                "the encoding of a decoded snapshot does not decode: {e}\n{}",
                text(&encoded)
            )
        });
        assert!(
            same_snapshot(&again, &snapshot),
            "snapshot changed in a round trip via {}\nbefore: {snapshot:?}\nafter:  {again:?}",
            text(&encoded)
        );
        assert_eq!(
            text(&again.to_json()),
            text(&encoded),
            "snapshot encoding is not a fixed point"
        );
    }
});
