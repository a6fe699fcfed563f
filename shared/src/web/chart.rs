//! Inline SVG sparklines: hourly event counts as bars, with a marker where each release was first seen.
//! Only geometry is computed here; `templates/macros.html` draws it, so labels go through the template's
//! escaping like every other string.

use crate::format::Count;
use crate::model::time::{Ts, HOUR_US};

/// Height of the drawing in viewBox units; the width is one unit per bucket.
const HEIGHT: f64 = 32.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub count: i64,
    /// `2026-11-25 07:00 UTC: 12 events`, the tooltip.
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub x: f64,
    /// `Deploy 1.2.0 (first seen 2026-11-25 07:12:00 UTC)`.
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sparkline {
    pub buckets: usize,
    /// When the first bucket starts, and how long each is (microseconds): where a marker goes.
    pub start_us: i64,
    pub bucket_us: i64,
    pub height: f64,
    pub bars: Vec<Bar>,
    pub markers: Vec<Marker>,
    pub total: i64,
    pub peak: i64,
    pub low: i64,
    /// A sentence describing the chart, for screen readers.
    pub summary: String,
}

impl Sparkline {
    /// `hours` hourly buckets ending with the current hour (`now_us`), filled from `(hour, count)` pairs
    /// (Unix seconds at the hour's start); `deploys` are `(first_seen_us, version)` pairs, and those
    /// inside the window become markers.
    pub fn hourly(
        counts: &[(i64, i64)],
        deploys: &[(i64, String)],
        hours: usize,
        now_us: i64,
    ) -> Self {
        let hours = hours.max(1);
        let current = Ts(now_us).hour_secs();
        let start = current - (hours as i64 - 1) * 3_600;
        let mut values = vec![0i64; hours];
        for (hour, count) in counts {
            let i = (hour - start).div_euclid(3_600);
            if (0..hours as i64).contains(&i) {
                values[i as usize] += count;
            }
        }
        let total: i64 = values.iter().sum();
        let peak = values.iter().copied().max().unwrap_or(0);
        let low = values.iter().copied().min().unwrap_or(0);
        let bars = values
            .iter()
            .enumerate()
            .map(|(i, &count)| {
                // Non-empty hours stay visible next to a large peak; empty ones are a hairline.
                let h = if count == 0 {
                    0.6
                } else {
                    (count as f64 / peak.max(1) as f64 * (HEIGHT - 2.0)).max(2.0)
                };
                let at = Ts((start + i as i64 * 3_600) * 1_000_000);
                Bar {
                    x: i as f64 + 0.1,
                    y: HEIGHT - h,
                    w: 0.8,
                    h,
                    count,
                    label: format!(
                        "{}: {} event{}",
                        &at.utc()[..16],
                        Count(count),
                        if count == 1 { "" } else { "s" }
                    ),
                }
            })
            .collect();
        let window = (start * 1_000_000)..((current + 3_600) * 1_000_000);
        let markers = deploys
            .iter()
            .filter(|(at, _)| window.contains(at))
            .map(|(at, version)| Marker {
                x: (*at - window.start) as f64 / HOUR_US as f64,
                label: format!("Release {version} first seen {}", Ts(*at).utc()),
            })
            .collect();
        let span = if hours.is_multiple_of(24) && hours > 24 {
            format!("{} days", hours / 24)
        } else {
            format!("{hours} hours")
        };
        Self {
            buckets: hours,
            start_us: window.start,
            bucket_us: HOUR_US,
            height: HEIGHT,
            bars,
            markers,
            total,
            peak,
            low,
            summary: format!(
                "{} event{} in the last {span}; peak {} per hour",
                Count(total),
                if total == 1 { "" } else { "s" },
                Count(peak)
            ),
        }
    }
}

impl Sparkline {
    /// Adds a marker with its own label at `at_us`, when that falls inside the chart (a deploy CI
    /// recorded, beside the releases' first sightings).
    pub fn mark(&mut self, at_us: i64, label: String) {
        let end = self.start_us + self.buckets as i64 * self.bucket_us;
        if (self.start_us..end).contains(&at_us) {
            let x = (at_us - self.start_us) as f64 / self.bucket_us as f64;
            self.markers.push(Marker { x, label });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_fill_from_the_current_hour_back() {
        let now = 100 * HOUR_US + 1_234; // just after hour 100 started
        let hour = |h: i64| h * 3_600;
        let s = Sparkline::hourly(
            &[(hour(100), 4), (hour(98), 2), (hour(50), 9)],
            &[(hour(99) * 1_000_000 + 1_800_000_000, "1.0".into())],
            3,
            now,
        );
        assert_eq!(
            s.bars.iter().map(|b| b.count).collect::<Vec<_>>(),
            vec![2, 0, 4]
        );
        assert_eq!((s.total, s.peak, s.low), (6, 4, 0));
        assert_eq!(s.markers.len(), 1);
        assert!((s.markers[0].x - 1.5).abs() < 1e-9);
        assert!(s.markers[0].label.contains("1.0"));
        assert_eq!(s.bars[2].h, HEIGHT - 2.0);

        // A deploy inside the window is marked with its own label; one before it is not.
        let mut s = s;
        s.mark(
            hour(98) * 1_000_000 + 900_000_000,
            "Deploy 1.1 to production".into(),
        );
        s.mark(hour(97) * 1_000_000, "Deploy 0.9".into());
        assert_eq!(s.markers.len(), 2);
        assert!((s.markers[1].x - 0.25).abs() < 1e-9);
        assert_eq!(s.markers[1].label, "Deploy 1.1 to production");
    }
}
