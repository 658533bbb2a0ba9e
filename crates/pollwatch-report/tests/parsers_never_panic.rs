//! Whatever text they are given, the report and histogram parsers return, never panic.

mod support;

use pollwatch_report::{histogram, json};
use proptest::prelude::*;

fn valid_report_text() -> String {
    json::to_string(&support::two_site_report())
}

proptest! {
    #[test]
    fn report_parser_survives_random_text(text in any::<String>()) {
        let _ = json::from_str(&text);
    }

    #[test]
    fn report_parser_rejects_every_truncation(cut in 0usize..10_000) {
        let text = valid_report_text();
        let cut = cut % (text.len() - 2);
        if text.is_char_boundary(cut) {
            prop_assert!(json::from_str(&text[..cut]).is_err());
        }
    }

    #[test]
    fn report_parser_survives_a_corrupted_byte(at in 0usize..10_000, byte in any::<u8>()) {
        let mut bytes = valid_report_text().into_bytes();
        let at = at % bytes.len();
        bytes[at] = byte;
        let _ = json::from_str(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn histogram_decoder_survives_random_text(text in any::<String>()) {
        let _ = histogram::decode(&text);
    }

    #[test]
    fn histogram_decoder_survives_random_base64(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let text = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes);
        let _ = histogram::decode(&text);
    }

    #[test]
    fn histogram_decoder_survives_truncation_and_corruption(
        cut in 0usize..10_000,
        at in 0usize..10_000,
        byte in any::<u8>(),
    ) {
        let report = support::two_site_report();
        let encoded = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            &report.sites[0].histogram,
        ).unwrap();
        let mut bytes = encoded[..cut % encoded.len()].to_vec();
        if !bytes.is_empty() {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        let text = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes);
        let _ = histogram::decode(&text);
        let text = &report.sites[0].histogram[..cut % report.sites[0].histogram.len()];
        let _ = histogram::decode(text);
    }

    #[test]
    fn histogram_decoder_survives_corrupt_uncompressed_counts(
        values in proptest::collection::vec(0u64..=histogram::HIGHEST_NS, 1..50),
        corruptions in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        use hdrhistogram::serialization::{Serializer as _, V2Serializer};
        let mut h = histogram::new_histogram();
        for &v in &values {
            h.record(v).unwrap();
        }
        let mut bytes = Vec::new();
        V2Serializer::new().serialize(&h, &mut bytes).unwrap();
        for (at, byte) in corruptions {
            // Leave the cookie alone so the corruption reaches the header and counts.
            let at = 4 + at % (bytes.len() - 4);
            bytes[at] = byte;
        }
        let text = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes);
        if let Ok(h) = histogram::decode(&text) {
            let _ = histogram::percentiles(&h);
        }
    }

    #[test]
    fn histograms_round_trip(values in proptest::collection::vec(0u64..=histogram::HIGHEST_NS, 1..200)) {
        let mut h = histogram::new_histogram();
        for &v in &values {
            h.record(v).unwrap();
        }
        let back = histogram::decode(&histogram::encode(&h)).unwrap();
        prop_assert_eq!(back, h);
    }
}
