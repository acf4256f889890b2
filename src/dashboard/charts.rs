//! Server-rendered bar charts: counts per time bucket from the store's `series` rollup,
//! turned into plain geometry that the templates print as inline `<svg>` (no script, and
//! no `style` attribute, which the CSP forbids: colours come from classes in app.css).

use serde::Serialize;

use crate::store::read::RunRow;
use crate::store::schema::{SERIES_WIDTHS_NS, bucket_of};
use crate::time::Timestamp;

/// At most this many bars: the bucket width is the smallest stored one that fits the run.
pub const MAX_BARS: i64 = 100;

/// Size of the chart's viewBox; the plot leaves room for the axis labels.
pub const VIEW_W: f64 = 800.0;
pub const VIEW_H: f64 = 180.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 6.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 22.0;

/// One stacked series: its `series.key`, CSS class and legend label.
pub struct SeriesSpec {
    pub key: i64,
    pub class: &'static str,
    pub label: &'static str,
}

/// Exchanges by status class, stacked from the bottom in this order.
pub const STATUS_SERIES: &[SeriesSpec] = &[
    SeriesSpec {
        key: 1,
        class: "s2xx",
        label: "2xx",
    },
    SeriesSpec {
        key: 2,
        class: "s3xx",
        label: "3xx",
    },
    SeriesSpec {
        key: 0,
        class: "s1xx",
        label: "1xx",
    },
    SeriesSpec {
        key: 3,
        class: "s4xx",
        label: "4xx",
    },
    SeriesSpec {
        key: 4,
        class: "s5xx",
        label: "5xx",
    },
    SeriesSpec {
        key: 5,
        class: "snone",
        label: "no response",
    },
];

/// Findings by severity.
pub const SEVERITY_SERIES: &[SeriesSpec] = &[
    SeriesSpec {
        key: 10,
        class: "fill-info",
        label: "info",
    },
    SeriesSpec {
        key: 11,
        class: "fill-warning",
        label: "warning",
    },
    SeriesSpec {
        key: 12,
        class: "fill-error",
        label: "error",
    },
];

/// One rectangle of a stacked bar, in viewBox units (formatted, ready for an attribute).
#[derive(Clone, Debug, Serialize)]
pub struct Bar {
    pub x: String,
    pub y: String,
    pub w: String,
    pub h: String,
    pub class: &'static str,
    /// Start of the bucket, ns since the epoch.
    pub bucket: i64,
    pub count: i64,
    /// Tooltip: bucket start, series and count.
    pub title: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Legend {
    pub class: &'static str,
    pub label: &'static str,
    pub count: i64,
}

/// A stacked bar chart of one run over time.
#[derive(Clone, Debug, Serialize)]
pub struct Chart {
    pub run: i64,
    pub width_ns: i64,
    /// The bucket width in words ("10 ms", "1 min").
    pub bucket: String,
    pub from: String,
    pub to: String,
    /// The tallest stack.
    pub max: i64,
    pub total: i64,
    pub bars: Vec<Bar>,
    pub legend: Vec<Legend>,
    /// Geometry of the axes, for the template.
    pub plot_left: f64,
    pub plot_right: f64,
    pub plot_top: f64,
    pub plot_bottom: f64,
}

/// The bucket width to chart a run spanning `first_ts..=last_ts` with at most
/// [`MAX_BARS`] bars (the widest stored width when even that is too narrow).
pub fn width_for(first_ts: i64, last_ts: i64) -> i64 {
    let span = last_ts.saturating_sub(first_ts).max(0);
    SERIES_WIDTHS_NS
        .iter()
        .copied()
        .find(|w| span / w < MAX_BARS)
        .unwrap_or(SERIES_WIDTHS_NS[SERIES_WIDTHS_NS.len() - 1])
}

fn width_text(ns: i64) -> String {
    match ns {
        n if n >= 86_400_000_000_000 && n % 86_400_000_000_000 == 0 => {
            format!("{} d", n / 86_400_000_000_000)
        }
        n if n >= 3_600_000_000_000 && n % 3_600_000_000_000 == 0 => {
            format!("{} h", n / 3_600_000_000_000)
        }
        n if n >= 60_000_000_000 && n % 60_000_000_000 == 0 => {
            format!("{} min", n / 60_000_000_000)
        }
        n if n >= 1_000_000_000 && n % 1_000_000_000 == 0 => format!("{} s", n / 1_000_000_000),
        n => format!("{} ms", n / 1_000_000),
    }
}

fn num(v: f64) -> String {
    format!("{v:.1}")
}

/// Builds the chart of `run` from its `(bucket, key, count)` rows (at `width_ns`), keeping
/// the series in `specs`. `None` when the run has no capture time yet.
pub fn chart(
    run: &RunRow,
    width_ns: i64,
    rows: &[(i64, i64, i64)],
    specs: &[SeriesSpec],
) -> Option<Chart> {
    let (first_ts, last_ts) = (run.first_ts?, run.last_ts?);
    let first = bucket_of(first_ts, width_ns);
    let last = bucket_of(last_ts, width_ns).max(first);
    let n = usize::try_from((last - first) / width_ns + 1).ok()?;
    // counts[bucket][series]
    let mut counts = vec![vec![0i64; specs.len()]; n];
    let mut legend: Vec<Legend> = specs
        .iter()
        .map(|s| Legend {
            class: s.class,
            label: s.label,
            count: 0,
        })
        .collect();
    for &(bucket, key, count) in rows {
        let Some(si) = specs.iter().position(|s| s.key == key) else {
            continue;
        };
        if bucket < first || bucket > last {
            continue;
        }
        let Ok(bi) = usize::try_from((bucket - first) / width_ns) else {
            continue;
        };
        if let Some(slot) = counts.get_mut(bi) {
            slot[si] += count;
            legend[si].count += count;
        }
    }
    let max = counts
        .iter()
        .map(|c| c.iter().sum::<i64>())
        .max()
        .unwrap_or(0);
    let plot_w = VIEW_W - LEFT - RIGHT;
    let plot_h = VIEW_H - TOP - BOTTOM;
    let slot = plot_w / n as f64;
    let bar_w = (slot * 0.85).max(0.5);
    let mut bars = Vec::new();
    for (bi, c) in counts.iter().enumerate() {
        let bucket = first + bi as i64 * width_ns;
        let x = LEFT + bi as f64 * slot + (slot - bar_w) / 2.0;
        let mut base = VIEW_H - BOTTOM;
        for (si, &count) in c.iter().enumerate() {
            if count == 0 || max == 0 {
                continue;
            }
            let h = (count as f64 / max as f64 * plot_h).max(0.5);
            base -= h;
            bars.push(Bar {
                x: num(x),
                y: num(base),
                w: num(bar_w),
                h: num(h),
                class: specs[si].class,
                bucket,
                count,
                title: format!(
                    "{} · {}: {count}",
                    Timestamp(bucket).to_rfc3339(),
                    specs[si].label
                ),
            });
        }
    }
    Some(Chart {
        run: run.id,
        width_ns,
        bucket: width_text(width_ns),
        from: Timestamp(first).to_rfc3339(),
        to: Timestamp(last.saturating_add(width_ns)).to_rfc3339(),
        max,
        total: legend.iter().map(|l| l.count).sum(),
        bars,
        legend,
        plot_left: LEFT,
        plot_right: VIEW_W - RIGHT,
        plot_top: TOP,
        plot_bottom: VIEW_H - BOTTOM,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(first: i64, last: i64) -> RunRow {
        RunRow {
            id: 1,
            kind: "files".into(),
            source: "{}".into(),
            started_wall: 0,
            finished_wall: None,
            first_ts: Some(first),
            last_ts: Some(last),
            packets: 0,
            bytes: 0,
            kernel_drops: 0,
            internal_drops: 0,
            decode_errors: 0,
            connections: 0,
            exchanges: 0,
            findings: 0,
        }
    }

    #[test]
    fn the_width_fits_the_span_in_at_most_max_bars() {
        assert_eq!(width_for(0, 0), 10_000_000);
        assert_eq!(width_for(0, 999_000_000), 10_000_000);
        assert_eq!(width_for(0, 1_000_000_000), 100_000_000);
        assert_eq!(width_for(0, 3_600_000_000_000), 60_000_000_000);
        assert_eq!(width_for(0, i64::MAX), 86_400_000_000_000);
        assert_eq!(width_for(5, 1), 10_000_000, "a reversed span is empty");
    }

    #[test]
    fn bars_stack_per_bucket_and_the_tallest_fills_the_plot() {
        let w = 1_000_000_000;
        let r = run(10 * w, 12 * w + 5);
        // Bucket 10: 3 × 2xx + 1 × 5xx; bucket 12: 2 × 2xx; an unknown key is ignored.
        let rows = [
            (10 * w, 1, 3),
            (10 * w, 4, 1),
            (12 * w, 1, 2),
            (12 * w, 99, 7),
        ];
        let c = chart(&r, w, &rows, STATUS_SERIES).expect("a chart");
        assert_eq!(c.max, 4);
        assert_eq!(c.total, 6);
        assert_eq!(c.bars.len(), 3);
        let first: Vec<_> = c.bars.iter().filter(|b| b.bucket == 10 * w).collect();
        let h: f64 = first.iter().map(|b| b.h.parse::<f64>().unwrap()).sum();
        assert!((h - (VIEW_H - TOP - BOTTOM)).abs() < 0.2, "{h}");
        assert_eq!(first[0].class, "s2xx", "2xx at the bottom");
        assert!(first[0].y.parse::<f64>().unwrap() > first[1].y.parse::<f64>().unwrap());
        assert!(c.legend.iter().any(|l| l.label == "5xx" && l.count == 1));
        assert!(chart(&run(0, 0), w, &[], SEVERITY_SERIES).is_some_and(|c| c.bars.is_empty()));
    }
}
