//! Durations in the text report read like `850ns`, `12.3µs`, `4.56ms`, `1.20s`.

use pollwatch_report::units::format_duration_ns;

#[test]
fn durations_have_three_significant_digits_and_a_unit() {
    let cases = [
        (0, "0ns"),
        (850, "850ns"),
        (999, "999ns"),
        (1_000, "1.00µs"),
        (12_345, "12.3µs"),
        (123_456, "123µs"),
        (4_561_000, "4.56ms"),
        (312_000_000, "312ms"),
        (1_200_000_000, "1.20s"),
        (59_000_000_000, "59.0s"),
        (999_000_000_000, "999s"),
        (1_000_000_000_000, "16.7m"),
        (3_600_000_000_000, "60.0m"),
        (9_000_000_000_000, "150m"),
        (60_000_000_000_000, "16.7h"),
        (u64::MAX, "5124096h"),
    ];
    for (ns, want) in cases {
        assert_eq!(format_duration_ns(ns), want, "{ns} ns");
    }
}

#[test]
fn rounding_to_1000_moves_to_the_next_unit() {
    assert_eq!(format_duration_ns(999_499), "999µs");
    assert_eq!(format_duration_ns(999_500), "1.00ms");
    assert_eq!(format_duration_ns(9_995), "10.0µs");
    assert_eq!(format_duration_ns(99_950), "100µs");
}
