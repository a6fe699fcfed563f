//! Performance charts as geometry for inline SVG: an endpoint's p95 trend (drawn by the sparkline macro),
//! the endpoint page's latency-and-throughput chart, and the helpers that colour durations and HTTP
//! statuses. As in `chart`, only numbers are computed here; labels go through the
//! templates' escaping.

use crate::format::{ms, opt_ms, Count};
use crate::model::time::{Ts, HOUR_US};
use crate::store::{HourStats, DAILY_AFTER_US};

use super::chart::{Bar, Marker, Sparkline};

/// The colour of a duration, as the seed's: ≥ 2 s red, ≥ 1 s orange, ≥ 500 ms yellow, else green.
pub fn duration_class(v: Option<f64>) -> &'static str {
    match v {
        Some(v) if v >= 2_000.0 => "dur-bad",
        Some(v) if v >= 1_000.0 => "dur-slow",
        Some(v) if v >= 500.0 => "dur-warn",
        Some(_) => "dur-ok",
        None => "dur-none",
    }
}

/// The colour of an HTTP status badge: ≥ 500 red, ≥ 400 yellow, else green.
pub fn status_class(status: Option<i64>) -> &'static str {
    match status {
        Some(s) if s >= 500 => "bad",
        Some(s) if s >= 400 => "warn",
        Some(_) => "ok",
        None => "",
    }
}

/// Buckets of whole hours covering `from_us..=to_us`: `(first hour in Unix seconds, hours per bucket,
/// bucket count)`, with at most `max_buckets` buckets. A window long enough to be read from daily
/// rollups gets buckets of whole days, starting at midnight, so that no day's cell straddles two.
fn bucketing(from_us: i64, to_us: i64, max_buckets: usize) -> (i64, i64, usize) {
    let unit = if to_us - from_us > DAILY_AFTER_US {
        24
    } else {
        1
    };
    let first = from_us.div_euclid(unit * HOUR_US) * unit * 3_600;
    let last = Ts(to_us).hour_secs();
    let hours = ((last - first) / 3_600 + 1).max(1);
    let units = (hours + unit - 1) / unit;
    let per = (units + max_buckets as i64 - 1) / max_buckets as i64 * unit;
    let buckets = ((hours + per - 1) / per) as usize;
    (first, per, buckets)
}

fn markers(
    deploys: &[(i64, String)],
    first_hour: i64,
    per: i64,
    buckets: usize,
    unit: f64,
) -> Vec<Marker> {
    let start_us = first_hour * 1_000_000;
    let end_us = start_us + buckets as i64 * per * HOUR_US;
    deploys
        .iter()
        .filter(|(at, _)| (start_us..end_us).contains(at))
        .map(|(at, version)| Marker {
            x: (*at - start_us) as f64 / (per * HOUR_US) as f64 * unit,
            label: format!("Release {version} first seen {}", Ts(*at).utc()),
        })
        .collect()
}

/// Per-bucket values: with one hour per bucket the hour's own figure; with several, the highest hourly
/// figure in the bucket (percentiles of different hours cannot be added up).
fn bucket_values(
    hours: &[HourStats],
    first: i64,
    per: i64,
    buckets: usize,
    pick: impl Fn(&HourStats) -> Option<f64>,
) -> Vec<Option<f64>> {
    let mut out = vec![None::<f64>; buckets];
    for h in hours {
        let i = (h.hour - first).div_euclid(3_600 * per);
        if let (Some(slot), Some(v)) = (
            usize::try_from(i).ok().and_then(|i| out.get_mut(i)),
            pick(h),
        ) {
            *slot = Some(slot.map_or(v, |s: f64| s.max(v)));
        }
    }
    out
}

fn bucket_counts(hours: &[HourStats], first: i64, per: i64, buckets: usize) -> Vec<i64> {
    let mut out = vec![0i64; buckets];
    for h in hours {
        let i = (h.hour - first).div_euclid(3_600 * per);
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
            *slot += h.stats.count;
        }
    }
    out
}

fn bucket_label(first: i64, per: i64, i: usize) -> String {
    let at = Ts((first + i as i64 * per * 3_600) * 1_000_000);
    let when = at.utc()[..16].to_owned();
    if per == 1 {
        when
    } else {
        format!("{when} (+{per} h)")
    }
}

/// An endpoint's p95 over the window in at most 25 bars (a 24-hour window touches 25 hours of rollups),
/// with deploy markers; drawn by the sparkline macro.
pub fn p95_trend(
    hours: &[HourStats],
    deploys: &[(i64, String)],
    from_us: i64,
    to_us: i64,
) -> Sparkline {
    const HEIGHT: f64 = 32.0;
    let (first, per, buckets) = bucketing(from_us, to_us, 25);
    let values = bucket_values(hours, first, per, buckets, |h| h.stats.p95_ms);
    let peak = values.iter().flatten().copied().fold(0.0, f64::max);
    let low = values
        .iter()
        .flatten()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let bars = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let h = match v {
                None => 0.6,
                Some(v) => (v / peak.max(f64::MIN_POSITIVE) * (HEIGHT - 2.0)).max(2.0),
            };
            Bar {
                x: i as f64 + 0.1,
                y: HEIGHT - h,
                w: 0.8,
                h,
                count: i64::from(v.is_some()),
                label: format!(
                    "{}: {}",
                    bucket_label(first, per, i),
                    v.map_or_else(|| "no transactions".into(), |v| format!("p95 {}", ms(v)))
                ),
            }
        })
        .collect();
    let summary = if peak > 0.0 {
        format!(
            "p95 {} over the window; highest {}, lowest {}",
            if per == 1 {
                "per hour"
            } else {
                "per bucket (highest hourly p95)"
            },
            ms(peak),
            ms(low)
        )
    } else {
        "No transactions in this window".into()
    };
    Sparkline {
        buckets,
        start_us: first * 1_000_000,
        bucket_us: per * HOUR_US,
        height: HEIGHT,
        bars,
        markers: markers(deploys, first, per, buckets, 1.0),
        total: peak.round() as i64,
        peak: peak.round() as i64,
        low: if low.is_finite() {
            low.round() as i64
        } else {
            0
        },
        summary,
    }
}

/// Transactions per hour, as the dashboard's events sparkline draws them.
pub fn count_sparkline(
    hours: &[HourStats],
    deploys: &[(i64, String)],
    buckets: usize,
    now_us: i64,
) -> Sparkline {
    let counts: Vec<(i64, i64)> = hours.iter().map(|h| (h.hour, h.stats.count)).collect();
    let mut s = Sparkline::hourly(&counts, deploys, buckets, now_us);
    for b in &mut s.bars {
        b.label = b.label.replace(" event", " transaction");
    }
    s.summary = s.summary.replace(" event", " transaction");
    s
}

/// The endpoint page's chart: transactions per bucket as bars (lower third) and p50/p95 as lines.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesChart {
    pub width: f64,
    pub height: f64,
    pub bars: Vec<Bar>,
    /// `x,y x,y …` for `<polyline points>`; one run per stretch of buckets with data.
    pub p50: Vec<String>,
    pub p95: Vec<String>,
    pub markers: Vec<Marker>,
    /// Dots with a tooltip per bucket with data: `(x, y, label)` on the p95 line.
    pub points: Vec<(f64, f64, String)>,
    pub max_latency: String,
    pub max_count: Count,
    pub from_label: String,
    pub to_label: String,
    pub summary: String,
}

impl SeriesChart {
    pub fn new(hours: &[HourStats], deploys: &[(i64, String)], from_us: i64, to_us: i64) -> Self {
        const STEP: f64 = 10.0;
        const HEIGHT: f64 = 160.0;
        const LINE_TOP: f64 = 8.0;
        const LINE_BOTTOM: f64 = 150.0;
        let (first, per, buckets) = bucketing(from_us, to_us, 169);
        let counts = bucket_counts(hours, first, per, buckets);
        let p50 = bucket_values(hours, first, per, buckets, |h| h.stats.p50_ms);
        let p95 = bucket_values(hours, first, per, buckets, |h| h.stats.p95_ms);
        let max_count = counts.iter().copied().max().unwrap_or(0);
        let max_latency = p95
            .iter()
            .chain(p50.iter())
            .flatten()
            .copied()
            .fold(0.0, f64::max);
        let bars = counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, &count)| {
                let h = (count as f64 / max_count.max(1) as f64 * HEIGHT / 3.0).max(1.5);
                Bar {
                    x: i as f64 * STEP + 1.0,
                    y: HEIGHT - h,
                    w: STEP - 2.0,
                    h,
                    count,
                    label: format!(
                        "{}: {} transaction{}",
                        bucket_label(first, per, i),
                        Count(count),
                        if count == 1 { "" } else { "s" }
                    ),
                }
            })
            .collect();
        let y = |v: f64| {
            LINE_BOTTOM - v / max_latency.max(f64::MIN_POSITIVE) * (LINE_BOTTOM - LINE_TOP)
        };
        let runs = |values: &[Option<f64>]| {
            let mut runs = Vec::new();
            let mut run = Vec::new();
            for (i, v) in values.iter().enumerate() {
                match v {
                    Some(v) => {
                        run.push(format!("{:.1},{:.1}", i as f64 * STEP + STEP / 2.0, y(*v)))
                    }
                    None if !run.is_empty() => runs.push(std::mem::take(&mut run).join(" ")),
                    None => {}
                }
            }
            if !run.is_empty() {
                runs.push(run.join(" "));
            }
            runs
        };
        let points = p95
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let v = (*v)?;
                Some((
                    i as f64 * STEP + STEP / 2.0,
                    y(v),
                    format!(
                        "{}: p50 {} · p95 {} · {} transactions",
                        bucket_label(first, per, i),
                        opt_ms(p50[i]),
                        ms(v),
                        Count(counts[i])
                    ),
                ))
            })
            .collect();
        let total: i64 = counts.iter().sum();
        let width = buckets as f64 * STEP;
        Self {
            width,
            height: HEIGHT,
            bars,
            p50: runs(&p50),
            p95: runs(&p95),
            markers: markers(deploys, first, per, buckets, STEP),
            points,
            max_latency: ms(max_latency),
            max_count: Count(max_count),
            from_label: bucket_label(first, per, 0),
            to_label: bucket_label(first, per, buckets.saturating_sub(1)),
            summary: format!(
                "{} transactions; p50 and p95 {}; highest p95 {}",
                Count(total),
                if per == 1 {
                    "per hour"
                } else {
                    "as the highest hourly value per bucket"
                },
                ms(max_latency)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EndpointStats;

    fn hour(h: i64, p95: f64, count: i64) -> HourStats {
        HourStats {
            hour: h * 3_600,
            stats: EndpointStats {
                count,
                p50_ms: Some(p95 / 2.0),
                p95_ms: Some(p95),
                ..EndpointStats::default()
            },
        }
    }

    #[test]
    fn a_day_is_hourly_and_a_month_is_whole_days() {
        // Rollups are hourly: the last 24 hours touch 25 of them (the oldest one in part).
        let to = 1_000 * HOUR_US + 5;
        assert_eq!(bucketing(to - 24 * HOUR_US, to, 25), (976 * 3_600, 1, 25));
        assert_eq!(
            bucketing(to - 7 * 24 * HOUR_US, to, 169).1,
            1,
            "a week is hourly on the chart"
        );
        // A month is read from daily rollups, so its buckets are whole days from midnight: 31 days
        // touched, two per bucket.
        let (first, per, n) = bucketing(to - 30 * 24 * HOUR_US, to, 25);
        assert_eq!((first % 86_400, per, n), (0, 48, 16));
    }

    #[test]
    fn the_trend_keeps_the_highest_hourly_p95() {
        let to = 1_000 * HOUR_US;
        let hours = [hour(990, 100.0, 3), hour(999, 400.0, 1)];
        let s = p95_trend(&hours, &[], to - 24 * HOUR_US, to);
        assert_eq!(s.bars.len(), 25);
        assert_eq!(s.peak, 400);
        assert!(
            s.bars[23].label.contains("p95 400 ms"),
            "{}",
            s.bars[23].label
        );
        assert_eq!((s.bars[0].count, s.bars[24].count), (0, 0));
        let c = SeriesChart::new(&hours, &[], to - 24 * HOUR_US, to);
        assert_eq!(c.bars.len(), 2);
        assert_eq!(c.p95.len(), 2, "a gap splits the line");
    }

    #[test]
    fn milliseconds_read_well() {
        assert_eq!(ms(0.5), "0.50 ms");
        assert_eq!(ms(12.34), "12.3 ms");
        assert_eq!(ms(190.2), "190 ms");
        assert_eq!(ms(1_250.0), "1.25 s");
        assert_eq!(duration_class(Some(2_500.0)), "dur-bad");
        assert_eq!(status_class(Some(404)), "warn");
    }
}
