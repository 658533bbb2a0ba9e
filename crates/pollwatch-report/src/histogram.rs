//! Poll-time histograms: their bounds, and their text encoding in a report.
//!
//! Every site's poll times are kept in an [HdrHistogram](https://hdrhistogram.github.io/HdrHistogram/)
//! of nanoseconds, from [`LOWEST_NS`] (1 µs) to [`HIGHEST_NS`] (1 h) with
//! [`SIGNIFICANT_DIGITS`] (3) significant digits: every recorded value is kept to within 0.1%.
//! Values below 1 µs can be recorded; they fall in the histogram's lowest buckets, which are
//! 512 ns wide (the power of two at or below 1 µs).
//!
//! In a report a histogram is stored as text: HdrHistogram's "V2 compressed" binary encoding
//! (the V2 encoding, zlib-deflated), written in base64 with the standard alphabet and padding.
//! That is exactly the text of the last field of an HdrHistogram interval log line, so any
//! HdrHistogram implementation (Java, Rust, Go, Python, JavaScript) can read it, and
//! HdrHistogram's tools can plot it. An empty histogram is stored as the empty string.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use std::io::Read as _;

pub use hdrhistogram::Histogram;

use crate::error::ReadError;
use crate::model::Percentiles;

/// The lowest value the histogram tells apart from 0, in nanoseconds (1 µs).
pub const LOWEST_NS: u64 = 1_000;

/// The highest value the histogram records, in nanoseconds (1 h). Longer polls are recorded as
/// this value and counted in [`Dropped::values_clamped`](crate::Dropped::values_clamped).
pub const HIGHEST_NS: u64 = 3_600_000_000_000;

/// The histogram's precision: values are kept to 3 significant decimal digits (0.1%).
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// The most bytes an encoded histogram may decompress to. A histogram with this crate's bounds
/// needs well under 1 MiB; the limit keeps a corrupt or hostile report from using a lot of
/// memory.
pub const MAX_DECODED_BYTES: usize = 16 * 1024 * 1024;

/// The most counts (one per bucket) a decoded histogram may hold: 1 MiB of memory. The
/// header of an encoding says the histogram's range and precision, and the decoder allocates
/// a count for every bucket they imply before reading any; a 40-byte header could claim five
/// significant digits over the whole `u64` range, 6 million counts (50 MB). This crate's
/// histograms have 24,576 counts, and any histogram of 3 significant digits fewer than 60,000,
/// whatever its range.
pub const MAX_COUNTS: usize = 1 << 17;

/// The first four bytes of a V2 encoding.
const V2_COOKIE: u32 = 0x1c84_9313;
/// The first four bytes of a V2 compressed encoding.
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;
/// The length of a V2 header: cookie, payload length, normalizing offset, significant digits
/// (4 bytes each), lowest and highest value and integer-to-double ratio (8 bytes each).
const V2_HEADER_LEN: usize = 40;

/// A new, empty histogram with this crate's bounds: nanoseconds from [`LOWEST_NS`] to
/// [`HIGHEST_NS`], [`SIGNIFICANT_DIGITS`] significant digits.
///
/// It does not resize: record values with
/// [`saturating_record`](Histogram::saturating_record), or clamp them to [`HIGHEST_NS`] first.
pub fn new_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS) {
        Ok(h) => h,
        // The bounds are constants that satisfy every condition `new_with_bounds` checks.
        Err(e) => unreachable!("histogram bounds are valid constants: {e}"),
    }
}

/// Encodes `h` as report text: V2 compressed, base64 (standard alphabet). Empty string when
/// `h` has no values.
pub fn encode(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return String::new();
    }
    encode_v2(h)
}

/// Encodes `h` as V2 compressed, base64, even when it is empty (for formats such as the
/// interval log, whose other readers expect a histogram in every line).
pub fn encode_v2(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Serializing into a Vec cannot fail on i/o; the serializer fails only if deflate does,
    // which does not happen for in-memory output. Fall back to empty rather than panic.
    match V2DeflateSerializer::new().serialize(h, &mut bytes) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(&bytes),
        Err(_) => String::new(),
    }
}

/// Decodes report text made by [`encode`] (or by any HdrHistogram implementation's V2 or V2
/// compressed encoder) back into a histogram. The empty string decodes to an empty histogram
/// from [`new_histogram`].
///
/// Never panics. Before handing the bytes to HdrHistogram's decoder, it checks what that decoder
/// trusts: that lengths fit the data, that the decompressed size is at most
/// [`MAX_DECODED_BYTES`], that the range and precision in the header need at most
/// [`MAX_COUNTS`] counts, and that the counts add up without overflowing `u64`.
///
/// # Errors
///
/// [`ReadError::BadHistogram`] (with an empty `site`) saying what is wrong.
pub fn decode(s: &str) -> Result<Histogram<u64>, ReadError> {
    if s.is_empty() {
        return Ok(new_histogram());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| bad(format!("not base64: {e}")))?;
    let v2 = match read_u32(&bytes, 0) {
        Some(V2_COMPRESSED_COOKIE) => inflate(&bytes)?,
        Some(V2_COOKIE) => bytes,
        Some(_) => {
            return Err(bad(
                "not an HdrHistogram V2 encoding (unknown cookie)".into()
            ))
        }
        None => return Err(bad("too short".into())),
    };
    check_v2(&v2)?;
    Deserializer::new()
        .deserialize(&mut v2.as_slice())
        .map_err(|e| bad(format!("{e:?}")))
}

/// Poll-time percentiles of `h`; all zero when `h` is empty.
pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        p50_ns: h.value_at_quantile(0.5),
        p90_ns: h.value_at_quantile(0.9),
        p99_ns: h.value_at_quantile(0.99),
        p999_ns: h.value_at_quantile(0.999),
    }
}

fn bad(reason: String) -> ReadError {
    ReadError::BadHistogram {
        site: String::new(),
        reason,
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    let mut be = [0; 8];
    be.copy_from_slice(b);
    Some(u64::from_be_bytes(be))
}

/// How many counts HdrHistogram allocates for a histogram from `lowest` to `highest` with
/// `digits` significant digits (as `Histogram::new_with_bounds` works it out); `None` for
/// bounds it rejects anyway.
fn counts_len(lowest: u64, highest: u64, digits: u32) -> Option<usize> {
    if lowest == 0 || lowest > u64::MAX / 2 || highest < 2 * lowest || digits > 5 {
        return None;
    }
    // Single-unit resolution up to 2 * 10^digits, in a power-of-two number of sub-buckets.
    let largest = 2 * 10_u32.pow(digits);
    let sub_bucket_magnitude = 32 - (largest - 1).leading_zeros();
    let unit_magnitude = 63 - lowest.leading_zeros();
    if unit_magnitude + sub_bucket_magnitude > 63 {
        return None;
    }
    let mut untrackable = 1_u64 << (unit_magnitude + sub_bucket_magnitude);
    let mut buckets: usize = 1;
    while untrackable <= highest {
        if untrackable > u64::MAX / 2 {
            buckets += 1;
            break;
        }
        untrackable <<= 1;
        buckets += 1;
    }
    (buckets + 1).checked_mul(1 << (sub_bucket_magnitude - 1))
}

/// Decompresses a V2 compressed encoding into the V2 encoding it wraps.
fn inflate(bytes: &[u8]) -> Result<Vec<u8>, ReadError> {
    let len = read_u32(bytes, 4).ok_or_else(|| bad("truncated header".into()))?;
    let compressed = usize::try_from(len)
        .ok()
        .and_then(|len| bytes.get(8..8usize.checked_add(len)?))
        .ok_or_else(|| bad(format!("says {len} compressed bytes follow; fewer do")))?;
    let mut out = Vec::new();
    let limit = u64::try_from(MAX_DECODED_BYTES).unwrap_or(u64::MAX);
    flate2::read::ZlibDecoder::new(compressed)
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| bad(format!("corrupt compressed data: {e}")))?;
    if out.len() > MAX_DECODED_BYTES {
        return Err(bad(format!(
            "decompresses to more than {MAX_DECODED_BYTES} bytes"
        )));
    }
    Ok(out)
}

/// Checks a V2 encoding for what the decoder would otherwise trust: the payload length, the
/// varints, and that the counts add up in a `u64`.
fn check_v2(v2: &[u8]) -> Result<(), ReadError> {
    if read_u32(v2, 0) != Some(V2_COOKIE) {
        return Err(bad(
            "not an HdrHistogram V2 encoding (unknown inner cookie)".into(),
        ));
    }
    if v2.len() < V2_HEADER_LEN {
        return Err(bad("truncated header".into()));
    }
    let digits = read_u32(v2, 12).unwrap_or(0);
    let lowest = read_u64(v2, 16).unwrap_or(0);
    let highest = read_u64(v2, 24).unwrap_or(0);
    if let Some(len) = counts_len(lowest, highest, digits).filter(|&n| n > MAX_COUNTS) {
        return Err(bad(format!(
            "its range ({lowest} to {highest}, {digits} significant digits) needs {len} \
             counts, more than {MAX_COUNTS}"
        )));
    }
    let payload_len = read_u32(v2, 4).unwrap_or(0);
    let available = v2.len() - V2_HEADER_LEN;
    let payload = usize::try_from(payload_len)
        .ok()
        .and_then(|len| v2.get(V2_HEADER_LEN..V2_HEADER_LEN.checked_add(len)?))
        .ok_or_else(|| {
            bad(format!(
                "says {payload_len} bytes of counts follow; {available} do"
            ))
        })?;
    let mut rest = payload;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let (encoded, used) = read_varint(rest).ok_or_else(|| bad("truncated counts".into()))?;
        rest = &rest[used..];
        let value = zig_zag_decode(encoded);
        if value == i64::MIN {
            return Err(bad("run of zeros too long".into()));
        }
        if value > 0 {
            total = total
                .checked_add(value.unsigned_abs())
                .ok_or_else(|| bad("counts add up to more than 2^64".into()))?;
        }
    }
    Ok(())
}

/// Reads one LEB128-64b9B varint (HdrHistogram's: up to 8 bytes of 7 bits, then one of 8 bits),
/// returning the value and the bytes used; `None` when `bytes` ends inside it.
fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(9) {
        if i == 8 {
            return Some((value | (u64::from(b) << 56), 9));
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn zig_zag_decode(encoded: u64) -> i64 {
    // Reinterpreting the bits is the point of zig-zag decoding.
    #[allow(clippy::cast_possible_wrap)]
    let half = (encoded >> 1) as i64;
    half ^ -((encoded & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_matches_hdrhistogram_layout() {
        assert_eq!(read_varint(&[0x05]), Some((5, 1)));
        assert_eq!(read_varint(&[0x80, 0x01]), Some((128, 2)));
        assert_eq!(read_varint(&[0x80]), None);
        assert_eq!(read_varint(&[0xff; 9]), Some((u64::MAX, 9)));
    }

    #[test]
    fn zig_zag_round_trips_small_values() {
        assert_eq!(zig_zag_decode(0), 0);
        assert_eq!(zig_zag_decode(1), -1);
        assert_eq!(zig_zag_decode(2), 1);
        assert_eq!(zig_zag_decode(u64::MAX), i64::MIN);
    }

    #[test]
    fn uncompressed_v2_with_lying_payload_length_is_rejected() {
        let mut v2 = Vec::new();
        v2.extend_from_slice(&V2_COOKIE.to_be_bytes());
        v2.extend_from_slice(&u32::MAX.to_be_bytes());
        v2.extend_from_slice(&[0; V2_HEADER_LEN - 8]);
        let text = base64::engine::general_purpose::STANDARD.encode(&v2);
        // Checked before the decoder would allocate 4 GiB for the counts.
        let err = decode(&text).unwrap_err();
        assert!(
            err.to_string()
                .contains("4294967295 bytes of counts follow; 0 do"),
            "{err}"
        );
    }

    /// The header of an uncompressed V2 encoding with no counts.
    fn v2_header(digits: u32, lowest: u64, highest: u64) -> Vec<u8> {
        let mut v2 = Vec::new();
        v2.extend_from_slice(&V2_COOKIE.to_be_bytes());
        v2.extend_from_slice(&0u32.to_be_bytes());
        v2.extend_from_slice(&0u32.to_be_bytes());
        v2.extend_from_slice(&digits.to_be_bytes());
        v2.extend_from_slice(&lowest.to_be_bytes());
        v2.extend_from_slice(&highest.to_be_bytes());
        v2.extend_from_slice(&1.0f64.to_be_bytes());
        v2
    }

    #[test]
    fn counts_len_matches_hdrhistogram() {
        for (digits, lowest, highest) in [
            (3, LOWEST_NS, HIGHEST_NS),
            (3, 1, u64::MAX),
            (5, 1, u64::MAX),
            (4, 1_000, 3_600_000_000_000),
            (0, 1, 2),
            (2, 1 << 40, u64::MAX),
            (1, 1 << 50, u64::MAX),
        ] {
            let h = Histogram::<u64>::new_with_bounds(lowest, highest, digits as u8).unwrap();
            assert_eq!(
                counts_len(lowest, highest, digits),
                Some(h.distinct_values()),
                "{digits} {lowest} {highest}"
            );
        }
        assert_eq!(counts_len(LOWEST_NS, HIGHEST_NS, 3), Some(24_576));
        assert_eq!(counts_len(0, 10, 3), None);
        assert_eq!(counts_len(10, 15, 3), None);
        assert_eq!(counts_len(1, 100, 6), None);
    }

    #[test]
    fn a_header_claiming_a_huge_range_is_rejected_before_allocating() {
        // 40 bytes that would make the decoder allocate 6 million counts (50 MB).
        let text = base64::engine::general_purpose::STANDARD.encode(v2_header(5, 1, u64::MAX));
        assert!(text.len() < 60);
        let err = decode(&text).unwrap_err().to_string();
        assert!(err.contains("more than 131072"), "{err}");
        // Any range at 3 significant digits still decodes.
        let text = base64::engine::general_purpose::STANDARD.encode(v2_header(3, 1, u64::MAX));
        assert_eq!(decode(&text).unwrap().len(), 0);
    }

    #[test]
    fn a_run_of_zeros_too_long_to_negate_is_rejected() {
        let mut bytes = Vec::new();
        hdrhistogram::serialization::V2Serializer::new()
            .serialize(&new_histogram(), &mut bytes)
            .unwrap();
        // One count of i64::MIN (zig-zag: u64::MAX), which the decoder would negate.
        bytes.truncate(V2_HEADER_LEN);
        bytes.extend_from_slice(&[0xff; 9]);
        bytes[4..8].copy_from_slice(&9u32.to_be_bytes());
        let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let err = decode(&text).unwrap_err();
        assert!(err.to_string().contains("run of zeros"), "{err}");
    }

    #[test]
    fn counts_that_overflow_u64_are_rejected() {
        let mut h = new_histogram();
        h.record(5_000).unwrap();
        let mut bytes = Vec::new();
        hdrhistogram::serialization::V2Serializer::new()
            .serialize(&h, &mut bytes)
            .unwrap();
        // Replace the payload with three counts of i64::MAX (zig-zag: u64::MAX - 1).
        let count = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        bytes.truncate(V2_HEADER_LEN);
        for _ in 0..3 {
            bytes.extend_from_slice(&count);
        }
        bytes[4..8].copy_from_slice(&27u32.to_be_bytes());
        let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let err = decode(&text).unwrap_err();
        assert!(err.to_string().contains("2^64"), "{err}");
    }
}
