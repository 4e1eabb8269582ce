//! Stable number formatting (no HTML: the page's templates escape).
//!
//! Every number on the page goes through here, so the page is the same
//! byte for byte for the same bundles.

use static_call_bundle::Metric;

/// Three significant digits (two decimals below 10, one below 100).
pub fn sig3(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Removes trailing zeros (and a trailing point) from a decimal number.
pub fn trim(s: String) -> String {
    if !s.contains('.') {
        return s;
    }
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn time_parts(ns: f64) -> (f64, &'static str) {
    let a = ns.abs();
    if a < 1e3 {
        (ns, "ns")
    } else if a < 1e6 {
        (ns / 1e3, "µs")
    } else if a < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    }
}

/// A duration given in nanoseconds, in the unit that suits it, three
/// significant digits: `1.23 ns`, `45.6 µs`, `1.50 ms`.
pub fn time_ns(ns: f64) -> String {
    let (v, u) = time_parts(ns);
    format!("{} {u}", sig3(v))
}

/// An axis tick for a duration in nanoseconds: `1 µs`, `2.5 ms`.
pub fn time_tick(ns: f64) -> String {
    let (v, u) = time_parts(ns);
    format!("{} {u}", trim(format!("{v:.3}")))
}

/// Groups the digits of an integer by thousands: `10,000`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut o = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            o.push(',');
        }
        o.push(c);
    }
    o
}

/// A count: whole numbers with thousands separators, others with two
/// decimals (one from 100 up).
pub fn count(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 && v.abs() < 1e15 {
        let r = v.round();
        if r < 0.0 {
            format!("-{}", thousands((-r) as u64))
        } else {
            thousands(r as u64)
        }
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        // Three significant digits: 0.0152, 0.144.
        let digits = (2 - v.abs().log10().floor() as i32).clamp(2, 9) as usize;
        trim(format!("{v:.digits$}"))
    }
}

/// An axis tick for a count: `1`, `100`, `10k`, `2.5M`.
pub fn count_tick(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(format!("{:.2}", v / 1e6)))
    } else if a >= 1e3 {
        format!("{}k", trim(format!("{:.2}", v / 1e3)))
    } else {
        trim(format!("{v:.3}"))
    }
}

/// A value of `metric` with its unit.
pub fn value(metric: Metric, v: f64) -> String {
    match metric {
        Metric::WallTime | Metric::TaskClock => time_ns(v),
        m => format!("{} {}", count(v), m.unit()),
    }
}

/// A value of `metric` without its unit (durations keep theirs).
pub fn bare(metric: Metric, v: f64) -> String {
    match metric {
        Metric::WallTime | Metric::TaskClock => time_ns(v),
        _ => count(v),
    }
}

/// An axis tick for `metric`.
pub fn tick(metric: Metric, v: f64) -> String {
    match metric {
        Metric::WallTime | Metric::TaskClock => time_tick(v),
        _ => count_tick(v),
    }
}

/// A ratio: `1.027×`.
pub fn ratio(r: f64) -> String {
    format!("{r:.3}×")
}

/// A ratio without its sign, for interval bounds: `0.981`.
pub fn bare_ratio(r: f64) -> String {
    format!("{r:.3}")
}

/// A signed difference of counts: `+1`, `-0.50`, `±0`.
pub fn delta(d: f64) -> String {
    if d.abs() < 1e-9 {
        "±0".to_owned()
    } else if d > 0.0 {
        format!("+{}", count(d))
    } else {
        format!("−{}", count(-d))
    }
}

/// Seconds of a run part: `93.2 s`, `12 min 5 s`.
pub fn seconds(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.1} s")
    } else {
        let t = s.round() as u64;
        format!("{} min {} s", t / 60, t % 60)
    }
}

/// An RFC 3339 date as `2026-11-26 14:05 UTC` (other text as it is).
pub fn date(d: &str) -> String {
    let b = d.as_bytes();
    if b.len() >= 16 && b[4] == b'-' && b[10] == b'T' && d.ends_with('Z') {
        format!("{} {} UTC", &d[..10], &d[11..16])
    } else {
        d.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(time_ns(1.234), "1.23 ns");
        assert_eq!(time_ns(12_345.0), "12.3 µs");
        assert_eq!(time_ns(1_500_000.0), "1.50 ms");
        assert_eq!(time_ns(0.5), "0.500 ns");
        assert_eq!(time_tick(1000.0), "1 µs");
        assert_eq!(time_tick(2_500_000.0), "2.5 ms");
        assert_eq!(count(10_000.0), "10,000");
        assert_eq!(count(6.0), "6");
        assert_eq!(count(7.031), "7.03");
        assert_eq!(count(0.0152), "0.0152");
        assert_eq!(count(0.144), "0.144");
        assert_eq!(count(0.02), "0.02");
        assert_eq!(count_tick(10_000.0), "10k");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(delta(1.0), "+1");
        assert_eq!(delta(0.0), "±0");
        assert_eq!(ratio(1.0), "1.000×");
        assert_eq!(date("2026-11-26T14:05:09Z"), "2026-11-26 14:05 UTC");
    }
}
