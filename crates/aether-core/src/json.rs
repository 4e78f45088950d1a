//! JSON exactly as Go's `encoding/json` writes it.
//!
//! serde_json and Go agree on object key order (maps are sorted byte-wise) and on most
//! escapes, but differ in two places this formatter fixes:
//! - Go escapes `<`, `>`, `&`, U+2028 and U+2029 as `\u003c`, `\u003e`, `\u0026`, `\u2028`,
//!   `\u2029` (HTML-safe output is `json.Marshal`'s default);
//! - Go writes floats with the shortest round-trip digits in fixed notation for
//!   1e-6 <= |x| < 1e21 (so `1.0` is `1`) and `1e+21` / `1e-7` style exponents otherwise.
//!
//! Two ways to the same bytes: [`to_writer_go`] (serde with [`GoFormatter`], for any
//! `Serialize` type) and the hand-written [`write_str`] / [`write_value`] / [`write_object`]
//! that [`crate::Event::write_json`] uses, since every save encodes its events and serde's
//! machinery cost a large share of a save's CPU. `tests/json_encoder.rs` holds them equal.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::Formatter;
use serde_json::{Map, Number, Value};

/// A `serde_json` formatter producing the bytes Go's `json.Marshal` produces.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        let mut buf = [0u8; GO_FLOAT_MAX];
        let n = format_go_float(value, &mut buf);
        writer.write_all(&buf[..n])
    }

    fn write_f32<W: ?Sized + Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(writer, value as f64)
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let bytes = fragment.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let escape: Option<&[u8]> = match bytes[i] {
                b'<' => Some(b"\\u003c"),
                b'>' => Some(b"\\u003e"),
                b'&' => Some(b"\\u0026"),
                // U+2028 and U+2029 are E2 80 A8 / E2 80 A9 in UTF-8.
                0xE2 if bytes.get(i + 1) == Some(&0x80) => match bytes.get(i + 2) {
                    Some(0xA8) => Some(b"\\u2028"),
                    Some(0xA9) => Some(b"\\u2029"),
                    _ => None,
                },
                _ => None,
            };
            if let Some(esc) = escape {
                writer.write_all(&bytes[start..i])?;
                writer.write_all(esc)?;
                i += if bytes[i] == 0xE2 { 3 } else { 1 };
                start = i;
            } else {
                i += 1;
            }
        }
        writer.write_all(&bytes[start..])
    }
}

/// Serialize `value` as Go would, appending to `out`.
pub fn to_writer_go<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(out, GoFormatter);
    value.serialize(&mut ser)
}

/// Serialize `value` as Go would.
pub fn to_vec_go<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    to_writer_go(&mut out, value)?;
    Ok(out)
}

/// How each byte of a string is written: 0 copies it; anything else names its escape (see
/// [`write_str`]). 0xE2 is marked because it starts U+2028 and U+2029, which Go escapes.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    // serde_json's short escapes, which Go (1.22 and later) writes too.
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0A] = b'n';
    t[0x0C] = b'f';
    t[0x0D] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[b'<' as usize] = b'<';
    t[b'>' as usize] = b'>';
    t[b'&' as usize] = b'&';
    t[0xE2] = 0xE2;
    t
};

/// Append `s` as a quoted JSON string, escaped as [`GoFormatter`] escapes it (the same
/// bytes as [`to_writer_go`] writes for a `&str`, without serde).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut i = 0;
    while i < bytes.len() {
        // Eight bytes at a time while none needs a look (most strings, end to end), copied
        // as one word: short strings cost no call to memcpy.
        while let Some(chunk) = bytes.get(i..i + 8) {
            let word: [u8; 8] = chunk.try_into().expect("eight bytes");
            if needs_escape_or_non_ascii(u64::from_le_bytes(word)) {
                break;
            }
            out.extend_from_slice(&word);
            i += 8;
        }
        // The last 1..=7 bytes, also as one word when none needs a look: the string's last
        // eight bytes (those before `i` need no escape either, so they are in `out`
        // unchanged; they are cut and written again), or in a shorter string the tail
        // padded with spaces (the padding is cut).
        let tail = bytes.len() - i;
        if (1..8).contains(&tail) {
            let (word, cut) = if bytes.len() >= 8 {
                let last = &bytes[bytes.len() - 8..];
                (
                    u64::from_le_bytes(last.try_into().expect("eight bytes")),
                    8 - tail,
                )
            } else {
                let mut word = u64::from_le_bytes([b' '; 8]);
                for (k, &b) in bytes[i..].iter().enumerate() {
                    word ^= u64::from(b ^ b' ') << (8 * k);
                }
                (word, 0)
            };
            if !needs_escape_or_non_ascii(word) {
                out.truncate(out.len() - cut);
                out.extend_from_slice(&word.to_le_bytes());
                // The padding, when the word was padded.
                out.truncate(out.len() - (8 - tail - cut));
                break;
            }
        }
        // Then byte by byte through the chunk that stopped the scan (or the short tail).
        let end = bytes.len().min(i + 8);
        while i < end {
            let byte = bytes[i];
            let kind = ESCAPE[byte as usize];
            if kind == 0 {
                out.push(byte);
                i += 1;
                continue;
            }
            match kind {
                b'u' => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(&[
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[(byte >> 4) as usize],
                        HEX[(byte & 0xF) as usize],
                    ]);
                }
                b'<' => out.extend_from_slice(b"\\u003c"),
                b'>' => out.extend_from_slice(b"\\u003e"),
                b'&' => out.extend_from_slice(b"\\u0026"),
                // U+2028 and U+2029 are E2 80 A8 / E2 80 A9 in UTF-8; other E2 sequences pass.
                0xE2 => match (bytes.get(i + 1), bytes.get(i + 2)) {
                    (Some(0x80), Some(0xA8)) => {
                        out.extend_from_slice(b"\\u2028");
                        i += 2;
                    }
                    (Some(0x80), Some(0xA9)) => {
                        out.extend_from_slice(b"\\u2029");
                        i += 2;
                    }
                    _ => out.push(byte),
                },
                // \b \t \n \f \r \" \\
                c => out.extend_from_slice(&[b'\\', c]),
            }
            i += 1;
        }
    }
    out.push(b'"');
}

/// Whether any of the eight bytes of `word` is marked in [`ESCAPE`] or is not ASCII (the
/// bit tricks of "Bit Twiddling Hacks": exact for telling whether one exists, which is all
/// the scan needs; it then looks at the bytes one by one).
#[inline]
fn needs_escape_or_non_ascii(word: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    #[inline]
    fn has_zero_byte(x: u64) -> u64 {
        x.wrapping_sub(LO) & !x & HI
    }
    // Bytes below 0x20; valid for a bound of at most 0x80.
    let control = word.wrapping_sub(LO * 0x20) & !word & HI;
    // '<' (3C) and '>' (3E) differ only in bit 1: one test for both.
    let angle = has_zero_byte((word ^ (LO * 0x3C)) & !(LO * 0x02));
    let others = has_zero_byte(word ^ (LO * u64::from(b'"')))
        | has_zero_byte(word ^ (LO * u64::from(b'\\')))
        | has_zero_byte(word ^ (LO * u64::from(b'&')));
    (word & HI) | control | angle | others != 0
}

/// Append `v` as [`to_writer_go`] would write it (objects in their map's order, which is
/// sorted by key as Go sorts), without serde.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

/// Append a JSON object as [`to_writer_go`] would write it, without serde.
pub fn write_object(out: &mut Vec<u8>, map: &Map<String, Value>) {
    out.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_value(out, v);
    }
    out.push(b'}');
}

/// Append a map of strings (sorted by key, as Go writes a `map[string]string`).
pub fn write_string_map(out: &mut Vec<u8>, map: &BTreeMap<String, String>) {
    out.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_str(out, v);
    }
    out.push(b'}');
}

/// Append an integer in decimal.
pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn write_number(out: &mut Vec<u8>, n: &Number) {
    if let Some(u) = n.as_u64() {
        out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
    } else if let Some(i) = n.as_i64() {
        write_i64(out, i);
    } else {
        match n.as_f64() {
            Some(f) if f.is_finite() => {
                let mut buf = [0u8; GO_FLOAT_MAX];
                let len = format_go_float(f, &mut buf);
                out.extend_from_slice(&buf[..len]);
            }
            // serde_json writes a non-finite float as null (a `Value` cannot hold one).
            _ => out.extend_from_slice(b"null"),
        }
    }
}

/// The longest text [`format_go_float`] writes is 26 bytes: a sign, then either "0." with
/// up to five zeros (|v| >= 1e-6) and 17 digits, or 21 integer digits (|v| < 1e21), or 17
/// digits with a point and "e-324".
const GO_FLOAT_MAX: usize = 32;

/// Write `v` as Go's `encoding/json` float64 encoder does; returns the length written.
fn format_go_float(v: f64, out: &mut [u8; GO_FLOAT_MAX]) -> usize {
    if v == 0.0 {
        let s: &[u8] = if v.is_sign_negative() { b"-0" } else { b"0" };
        out[..s.len()].copy_from_slice(s);
        return s.len();
    }
    // Shortest round-trip digits, as Go's strconv.FormatFloat(f, _, -1, 64) picks them.
    let mut rbuf = ryu::Buffer::new();
    let text = rbuf.format_finite(v).as_bytes();
    // ryu writes fixed notation (for 1e-5 <= |v| < 1e16) with the same digits and point as
    // Go, except that it ends a whole number with ".0": most values take this path.
    if !text.contains(&b'e') && (1e-6..1e21).contains(&v.abs()) {
        let text = text.strip_suffix(b".0").unwrap_or(text);
        out[..text.len()].copy_from_slice(text);
        return text.len();
    }
    format_go_float_from_ryu(v, text, out)
}

/// The general case of [`format_go_float`]: Go's text rebuilt from ryu's digits and
/// exponent, for any finite non-zero `v` whose ryu text is `text`.
fn format_go_float_from_ryu(v: f64, text: &[u8], out: &mut [u8; GO_FLOAT_MAX]) -> usize {
    let (neg, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let (mantissa, exp10) = match text.iter().position(|&c| c == b'e') {
        Some(p) => (
            &text[..p],
            std::str::from_utf8(&text[p + 1..])
                .ok()
                .and_then(|e| e.parse::<i32>().ok())
                .unwrap_or(0),
        ),
        None => (text, 0),
    };
    // digits × 10^(point - len(digits)), i.e. the value is 0.DIGITS × 10^point.
    let mut digits = [0u8; 32];
    let mut nd = 0usize;
    let mut point = exp10;
    let mut seen_dot = false;
    for &c in mantissa {
        if c == b'.' {
            seen_dot = true;
            continue;
        }
        if nd == 0 && c == b'0' {
            if seen_dot {
                point -= 1;
            }
            continue;
        }
        digits[nd] = c;
        nd += 1;
        if !seen_dot {
            point += 1;
        }
    }
    while nd > 1 && digits[nd - 1] == b'0' {
        nd -= 1;
    }
    let digits = &digits[..nd];
    let abs = v.abs();
    let mut w = 0usize;
    let mut put = |b: &[u8]| {
        out[w..w + b.len()].copy_from_slice(b);
        w += b.len();
    };
    if neg {
        put(b"-");
    }
    if !(1e-6..1e21).contains(&abs) {
        put(&digits[..1]);
        if digits.len() > 1 {
            put(b".");
            put(&digits[1..]);
        }
        let e = point - 1;
        put(if e < 0 { b"e-" } else { b"e+" });
        // Go prints "%e" (two exponent digits at least) then shortens e-07 to e-7; positive
        // exponents here are >= 21, so no padding is ever left.
        put(itoa::Buffer::new().format(e.unsigned_abs()).as_bytes());
    } else if point <= 0 {
        put(b"0.");
        for _ in 0..(-point) {
            put(b"0");
        }
        put(digits);
    } else if point as usize >= digits.len() {
        put(digits);
        for _ in 0..(point as usize - digits.len()) {
            put(b"0");
        }
    } else {
        put(&digits[..point as usize]);
        put(b".");
        put(&digits[point as usize..]);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let mut b = [0u8; GO_FLOAT_MAX];
        let n = format_go_float(v, &mut b);
        String::from_utf8(b[..n].to_vec()).unwrap()
    }

    #[test]
    fn floats_match_go() {
        // Expected values are what Go 1.2x's json.Marshal prints.
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.2345678901234568e29, "1.2345678901234568e+29"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (1.5e-10, "1.5e-10"),
            (123456.789, "123456.789"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (-0.0, "-0"),
            (9007199254740993.0, "9007199254740992"),
            (3.0e100, "3e+100"),
        ];
        for (v, want) in cases {
            assert_eq!(f(*v), *want, "formatting {v:e}");
        }
    }

    /// The fixed-notation shortcut of `format_go_float` against the general path, on values
    /// around every notation boundary and on spread-out bit patterns.
    #[test]
    fn float_shortcut_matches_the_general_path() {
        let general = |v: f64| {
            let mut rbuf = ryu::Buffer::new();
            let mut b = [0u8; GO_FLOAT_MAX];
            let n = format_go_float_from_ryu(v, rbuf.format_finite(v).as_bytes(), &mut b);
            String::from_utf8(b[..n].to_vec()).unwrap()
        };
        let mut values = Vec::new();
        for e in -330..=310 {
            let p = 10f64.powi(e);
            for m in [1.0, 1.5, 9.999999999999999, 123.456, 0.1] {
                let x = m * p;
                values.extend([
                    x,
                    -x,
                    f64::from_bits(x.to_bits() + 1),
                    f64::from_bits(x.to_bits().saturating_sub(1)),
                ]);
            }
        }
        let mut bits = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200_000 {
            bits ^= bits << 13;
            bits ^= bits >> 7;
            bits ^= bits << 17;
            values.push(f64::from_bits(bits));
        }
        for cents in 0..100_000u32 {
            values.push(f64::from(cents) / 100.0);
        }
        for v in values.into_iter().filter(|v| v.is_finite() && *v != 0.0) {
            assert_eq!(f(v), general(v), "formatting {v:e}");
        }
    }

    #[test]
    fn strings_are_html_escaped_like_go() {
        let s = to_vec_go("<a href=\"x\">&\u{2028}\u{2029}é\u{1}\t\u{7f}").unwrap();
        assert_eq!(
            String::from_utf8(s).unwrap(),
            r#""\u003ca href=\"x\"\u003e\u0026\u2028\u2029é\u0001\t"#.to_owned() + "\u{7f}\""
        );
    }
}
