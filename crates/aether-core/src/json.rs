//! JSON exactly as Go's `encoding/json` writes it.
//!
//! serde_json and Go agree on object key order (maps are sorted byte-wise) and on most
//! escapes, but differ in two places this formatter fixes:
//! - Go escapes `<`, `>`, `&`, U+2028 and U+2029 as `\u003c`, `\u003e`, `\u0026`, `\u2028`,
//!   `\u2029` (HTML-safe output is `json.Marshal`'s default);
//! - Go writes floats with the shortest round-trip digits in fixed notation for
//!   1e-6 <= |x| < 1e21 (so `1.0` is `1`) and `1e+21` / `1e-7` style exponents otherwise.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::Formatter;

/// A `serde_json` formatter producing the bytes Go's `json.Marshal` produces.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        let mut buf = [0u8; 400];
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

/// Write `v` as Go's `encoding/json` float64 encoder does; returns the length written.
fn format_go_float(v: f64, out: &mut [u8; 400]) -> usize {
    if v == 0.0 {
        let s: &[u8] = if v.is_sign_negative() { b"-0" } else { b"0" };
        out[..s.len()].copy_from_slice(s);
        return s.len();
    }
    // Shortest round-trip digits, as Go's strconv.FormatFloat(f, _, -1, 64) picks them.
    let mut rbuf = ryu::Buffer::new();
    let text = rbuf.format_finite(v).as_bytes();
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
        put(e.unsigned_abs().to_string().as_bytes());
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
        let mut b = [0u8; 400];
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

    #[test]
    fn strings_are_html_escaped_like_go() {
        let s = to_vec_go("<a href=\"x\">&\u{2028}\u{2029}é\u{1}\t\u{7f}").unwrap();
        assert_eq!(
            String::from_utf8(s).unwrap(),
            r#""\u003ca href=\"x\"\u003e\u0026\u2028\u2029é\u0001\t"#.to_owned() + "\u{7f}\""
        );
    }
}
