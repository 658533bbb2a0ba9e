//! Structure-aware mutations of valid report files, for the never-panic tests.

use std::io::Write as _;

use base64::Engine as _;
use proptest::prelude::*;

/// Text for a number field that its parser may not expect: signs, overflow, exponents, too
/// many digits, NaN.
pub fn extreme_number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("18446744073709551615".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("99999999999999999999999".to_owned()),
        Just("-1".to_owned()),
        Just("-0".to_owned()),
        Just("0".to_owned()),
        Just("1e308".to_owned()),
        Just("1e309".to_owned()),
        Just("-1e-400".to_owned()),
        Just("NaN".to_owned()),
        Just("inf".to_owned()),
        Just("0x10".to_owned()),
        Just("".to_owned()),
        Just("9".repeat(5_000)),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
    ]
}

/// Text for an interval log timestamp (`SECONDS.FRACTION`) its parser may not expect.
pub fn extreme_timestamp() -> impl Strategy<Value = String> {
    prop_oneof![
        extreme_number(),
        Just("18446744073709551615.999999999".to_owned()),
        Just("18446744073709551616.0".to_owned()),
        Just("0.9999999999999999999999".to_owned()),
        Just("1.".to_owned()),
        Just(".5".to_owned()),
        Just("+1.5".to_owned()),
        Just("-1.5".to_owned()),
        Just("1.5.5".to_owned()),
        (any::<u64>(), "[0-9]{1,30}").prop_map(|(s, f)| format!("{s}.{f}")),
    ]
}

/// A JSON value of any shape: the wrong type for almost every field of a report.
pub fn odd_json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{json, Value};
    prop_oneof![
        Just(Value::Null),
        Just(json!(true)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(-1)),
        Just(json!(1e300)),
        Just(json!("")),
        Just(json!("x".repeat(100_000))),
        Just(json!([])),
        Just(json!({})),
        Just(json!([u64::MAX, -1])),
        Just(json!({"format": "pollwatch-report", "version": 1})),
        any::<String>().prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
    ]
}

/// A mutation of one JSON value somewhere in a document.
#[derive(Debug, Clone)]
pub enum JsonEdit {
    /// Replace the value found by walking `path` (each step picks a child by index).
    Replace(Vec<usize>, serde_json::Value),
    /// Remove the member or element found by walking `path`.
    Remove(Vec<usize>),
    /// Duplicate every array found by walking `path` until it has `n` elements.
    Grow(Vec<usize>, usize),
}

pub fn json_edit() -> impl Strategy<Value = JsonEdit> {
    let path = proptest::collection::vec(any::<usize>(), 0..6);
    prop_oneof![
        (path.clone(), odd_json_value()).prop_map(|(p, v)| JsonEdit::Replace(p, v)),
        path.clone().prop_map(JsonEdit::Remove),
        (path, 0usize..500).prop_map(|(p, n)| JsonEdit::Grow(p, n)),
    ]
}

/// Applies `edit` to `value`.
pub fn apply(value: &mut serde_json::Value, edit: &JsonEdit) {
    use serde_json::Value;
    let (path, last) = match edit {
        JsonEdit::Replace(p, _) | JsonEdit::Remove(p) | JsonEdit::Grow(p, _) => {
            (p.as_slice(), p.last().copied().unwrap_or(0))
        }
    };
    let mut at = value;
    for &step in path.iter().take(path.len().saturating_sub(1)) {
        let container = match &*at {
            Value::Object(map) => !map.is_empty(),
            Value::Array(items) => !items.is_empty(),
            _ => false,
        };
        if !container {
            break;
        }
        at = match at {
            Value::Object(map) => {
                let key = map
                    .keys()
                    .nth(step % map.len())
                    .cloned()
                    .unwrap_or_default();
                map.get_mut(&key).unwrap()
            }
            Value::Array(items) => {
                let n = items.len();
                &mut items[step % n]
            }
            _ => unreachable!("checked above"),
        };
    }
    match (edit, at) {
        (JsonEdit::Replace(_, new), Value::Object(map)) if !map.is_empty() => {
            let key = map
                .keys()
                .nth(last % map.len())
                .cloned()
                .unwrap_or_default();
            map.insert(key, new.clone());
        }
        (JsonEdit::Replace(_, new), Value::Array(items)) if !items.is_empty() => {
            let n = items.len();
            items[last % n] = new.clone();
        }
        (JsonEdit::Replace(_, new), at) => *at = new.clone(),
        (JsonEdit::Remove(_), Value::Object(map)) if !map.is_empty() => {
            let key = map
                .keys()
                .nth(last % map.len())
                .cloned()
                .unwrap_or_default();
            map.remove(&key);
        }
        (JsonEdit::Remove(_), Value::Array(items)) if !items.is_empty() => {
            let n = items.len();
            items.remove(last % n);
        }
        (JsonEdit::Grow(_, n), Value::Array(items)) if !items.is_empty() => {
            while items.len() < *n {
                items.push(items[items.len() - 1].clone());
            }
        }
        _ => {}
    }
}

/// A mutation of the lines of a file.
#[derive(Debug, Clone)]
pub enum LineEdit {
    Drop(usize),
    Duplicate(usize),
    Swap(usize, usize),
    /// Joins line `n` to the next (its newline removed).
    Join(usize),
    /// Inserts a line of `text` before line `n`.
    Insert(usize, String),
}

pub fn line_edit() -> impl Strategy<Value = LineEdit> {
    prop_oneof![
        any::<usize>().prop_map(LineEdit::Drop),
        any::<usize>().prop_map(LineEdit::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| LineEdit::Swap(a, b)),
        any::<usize>().prop_map(LineEdit::Join),
        (any::<usize>(), any::<String>()).prop_map(|(n, t)| LineEdit::Insert(n, t)),
    ]
}

/// Applies `edits` to the lines of `text`.
pub fn splice_lines(text: &str, edits: &[LineEdit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for edit in edits {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match edit {
            LineEdit::Drop(i) => {
                lines.remove(i % n);
            }
            LineEdit::Duplicate(i) => lines.insert(i % n, lines[i % n].clone()),
            LineEdit::Swap(a, b) => lines.swap(a % n, b % n),
            LineEdit::Join(i) if i % n + 1 < n => {
                let next = lines.remove(i % n + 1);
                lines[i % n].push_str(&next);
            }
            LineEdit::Join(_) => {}
            LineEdit::Insert(i, t) => lines.insert(i % n, t.clone()),
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// An uncompressed V2 histogram encoding (header then `payload`) with the given header fields.
pub fn v2(
    digits: u32,
    lowest: u64,
    highest: u64,
    ratio: f64,
    normalizing: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut v2 = Vec::new();
    v2.extend_from_slice(&0x1c84_9313_u32.to_be_bytes());
    v2.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    v2.extend_from_slice(&normalizing.to_be_bytes());
    v2.extend_from_slice(&digits.to_be_bytes());
    v2.extend_from_slice(&lowest.to_be_bytes());
    v2.extend_from_slice(&highest.to_be_bytes());
    v2.extend_from_slice(&ratio.to_be_bytes());
    v2.extend_from_slice(payload);
    v2
}

/// `v2` in the V2 compressed encoding (zlib-deflated, behind its own cookie and length).
pub fn compressed(v2: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(v2).unwrap();
    let deflated = z.finish().unwrap();
    let mut out = Vec::new();
    out.extend_from_slice(&0x1c84_9314_u32.to_be_bytes());
    out.extend_from_slice(&u32::try_from(deflated.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&deflated);
    out
}

pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Header field values a histogram encoding may claim: HdrHistogram's limits and past them.
pub fn extreme_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(2),
        Just(1_000),
        Just(3_600_000_000_000),
        Just(u64::MAX / 2),
        Just(u64::MAX / 2 + 1),
        Just(u64::MAX),
        any::<u64>(),
    ]
}
