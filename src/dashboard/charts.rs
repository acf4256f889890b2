//! Server-rendered bar charts: counts per time bucket (one run, from the store's `series`
//! rollup) or per run (every run), turned into plain geometry that the templates print as
//! inline `<svg>` (no script, and no `style` attribute, which the CSP forbids: colours
//! come from classes in app.css). Each bar is a link to what it counts; 4–6 ticks per axis
//! at round values; a data table beside each chart for screen readers.

use serde::Serialize;

use crate::store::read::RunRow;
use crate::store::schema::{SERIES_WIDTHS_NS, bucket_of};
use crate::time::Timestamp;

/// At most this many bars: the bucket width is the smallest stored one that fits the run.
pub const MAX_BARS: i64 = 100;

/// Size of the chart's viewBox (scaled as a whole, so text keeps its shape); the plot
/// leaves room for the ticks and the axis titles.
pub const VIEW_W: f64 = 800.0;
pub const VIEW_H: f64 = 220.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 46.0;

/// One stacked series: its `series.key`, CSS class, legend label and the value it gives
/// a filter (`severity=…`), if any.
pub struct SeriesSpec {
    pub key: i64,
    pub class: &'static str,
    pub label: &'static str,
    pub filter: Option<&'static str>,
}

/// Exchanges by status class, stacked from the bottom in this order: errors at the base;
/// neighbours differ in lightness by at least 3:1 (see the test).
pub const STATUS_SERIES: &[SeriesSpec] = &[
    SeriesSpec {
        key: 4,
        class: "s5xx",
        label: "5xx",
        filter: None,
    },
    SeriesSpec {
        key: 3,
        class: "s4xx",
        label: "4xx",
        filter: None,
    },
    SeriesSpec {
        key: 2,
        class: "s3xx",
        label: "3xx",
        filter: None,
    },
    SeriesSpec {
        key: 1,
        class: "s2xx",
        label: "2xx",
        filter: None,
    },
    SeriesSpec {
        key: 0,
        class: "s1xx",
        label: "1xx",
        filter: None,
    },
    SeriesSpec {
        key: 5,
        class: "snone",
        label: "no response",
        filter: None,
    },
];

/// Findings by severity, errors at the base.
pub const SEVERITY_SERIES: &[SeriesSpec] = &[
    SeriesSpec {
        key: 12,
        class: "fill-error",
        label: "error",
        filter: Some("error"),
    },
    SeriesSpec {
        key: 11,
        class: "fill-warning",
        label: "warning",
        filter: Some("warning"),
    },
    SeriesSpec {
        key: 10,
        class: "fill-info",
        label: "info",
        filter: Some("info"),
    },
];

/// The fill of each series class (app.css must say the same: a test checks).
pub const FILLS: &[(&str, &str)] = &[
    ("s5xx", "#b42318"),
    ("s4xx", "#fdb022"),
    ("s3xx", "#175cd3"),
    ("s2xx", "#6ce9a6"),
    ("s1xx", "#6941c6"),
    ("snone", "#d0d5dd"),
    ("fill-error", "#b42318"),
    ("fill-warning", "#fdb022"),
    ("fill-info", "#175cd3"),
];

/// One rectangle of a stacked bar, in viewBox units (formatted, ready for an attribute).
#[derive(Clone, Debug, Serialize)]
pub struct Bar {
    pub x: String,
    pub y: String,
    pub w: String,
    pub h: String,
    pub class: &'static str,
    pub count: i64,
    /// Tooltip: column, series and count.
    pub title: String,
    /// What the bar counts, as a page.
    pub href: Option<String>,
    /// Whether the page at `href` lists exactly `count` items (a count link).
    pub exact: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Legend {
    pub class: &'static str,
    pub label: &'static str,
    pub count: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Tick {
    pub at: String,
    pub label: String,
}

/// One column of the data: its label, a count per series and each count's link.
#[derive(Clone, Debug, Serialize)]
pub struct Column {
    pub label: String,
    pub counts: Vec<i64>,
    pub hrefs: Vec<Option<String>>,
}

/// A stacked bar chart.
#[derive(Clone, Debug, Serialize)]
pub struct Chart {
    pub title: String,
    pub x_title: String,
    pub y_title: String,
    pub max: i64,
    pub total: i64,
    pub bars: Vec<Bar>,
    pub legend: Vec<Legend>,
    pub x_ticks: Vec<Tick>,
    pub y_ticks: Vec<Tick>,
    /// The data as a table (screen readers, copying).
    pub columns: Vec<Column>,
    pub series: Vec<&'static str>,
    /// Whether the bars' links list exactly the bars' counts.
    pub exact: bool,
    /// Geometry of the axes, for the template.
    pub plot_left: f64,
    pub plot_right: f64,
    pub plot_top: f64,
    pub plot_bottom: f64,
    pub x_title_y: f64,
    pub y_title_x: f64,
    pub y_title_y: f64,
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

/// A duration in the largest unit that keeps it readable: "250 ms", "1.5 s", "2 min".
pub fn duration_text(ns: i64) -> String {
    let a = ns.unsigned_abs();
    let trim = |v: f64, unit: &str| {
        let t = format!("{v:.1}");
        format!("{} {unit}", t.strip_suffix(".0").unwrap_or(&t))
    };
    match a {
        0 => "0 s".into(),
        a if a < 1_000_000 => trim(ns as f64 / 1e3, "µs"),
        a if a < 1_000_000_000 => trim(ns as f64 / 1e6, "ms"),
        a if a < 60_000_000_000 => trim(ns as f64 / 1e9, "s"),
        a if a < 3_600_000_000_000 => trim(ns as f64 / 60e9, "min"),
        a if a < 86_400_000_000_000 => trim(ns as f64 / 3600e9, "h"),
        _ => trim(ns as f64 / 86400e9, "d"),
    }
}

/// Wall-clock time of day, UTC: "14:03:20".
pub fn clock_text(ts: i64) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(ts)) {
        Ok(t) => t.strftime("%H:%M:%S").to_string(),
        Err(_) => "?".into(),
    }
}

fn num(v: f64) -> String {
    format!("{v:.1}")
}

/// A round step (1, 2 or 5 × 10ⁿ) giving at most `most` steps up to `max`.
fn nice_step(max: i64, most: i64) -> i64 {
    let mut step = 1i64;
    loop {
        for m in [1, 2, 5] {
            let s = step.saturating_mul(m);
            if max / s < most {
                return s;
            }
        }
        step = step.saturating_mul(10);
    }
}

/// Builds a stacked chart of `columns` (counts in the order of `specs`).
pub fn stacked(
    title: String,
    x_title: String,
    y_title: &str,
    columns: Vec<Column>,
    specs: &[SeriesSpec],
    exact: bool,
) -> Chart {
    let n = columns.len().max(1);
    let mut legend: Vec<Legend> = specs
        .iter()
        .map(|s| Legend {
            class: s.class,
            label: s.label,
            count: 0,
        })
        .collect();
    for c in &columns {
        for (si, l) in legend.iter_mut().enumerate() {
            l.count += c.counts.get(si).copied().unwrap_or(0);
        }
    }
    let max = columns
        .iter()
        .map(|c| c.counts.iter().sum::<i64>())
        .max()
        .unwrap_or(0);
    let step = nice_step(max.max(1), 5);
    let top = ((max + step - 1) / step).max(1) * step;
    let plot_w = VIEW_W - LEFT - RIGHT;
    let plot_h = VIEW_H - TOP - BOTTOM;
    let bottom = VIEW_H - BOTTOM;
    let y_ticks = (0..=top / step)
        .map(|i| Tick {
            at: num(bottom - (i * step) as f64 / top as f64 * plot_h),
            label: (i * step).to_string(),
        })
        .collect();
    let slot = plot_w / n as f64;
    let bar_w = (slot * 0.85).max(0.5);
    let mut bars = Vec::new();
    for (ci, c) in columns.iter().enumerate() {
        let x = LEFT + ci as f64 * slot + (slot - bar_w) / 2.0;
        let mut base = bottom;
        for (si, &count) in c.counts.iter().enumerate() {
            if count == 0 || si >= specs.len() {
                continue;
            }
            let h = (count as f64 / top as f64 * plot_h).max(0.5);
            base -= h;
            bars.push(Bar {
                x: num(x),
                y: num(base),
                w: num(bar_w),
                h: num(h),
                class: specs[si].class,
                count,
                title: format!("{} · {}: {count}", c.label, specs[si].label),
                href: c.hrefs.get(si).cloned().flatten(),
                exact,
            });
        }
    }
    let tick_every = nice_step(n as i64, 6).max(1) as usize;
    let x_ticks = columns
        .iter()
        .enumerate()
        .filter(|(i, _)| i % tick_every == 0)
        .map(|(i, c)| Tick {
            at: num(LEFT + (i as f64 + 0.5) * slot),
            label: c.label.clone(),
        })
        .collect();
    Chart {
        title,
        x_title,
        y_title: y_title.to_string(),
        max,
        total: legend.iter().map(|l| l.count).sum(),
        bars,
        legend,
        x_ticks,
        y_ticks,
        columns,
        series: specs.iter().map(|s| s.label).collect(),
        exact,
        plot_left: LEFT,
        plot_right: VIEW_W - RIGHT,
        plot_top: TOP,
        plot_bottom: bottom,
        x_title_y: VIEW_H - 6.0,
        y_title_x: 14.0,
        y_title_y: TOP + plot_h / 2.0,
    }
}

/// The columns of one run's time chart from its `(bucket, key, count)` rows at
/// `width_ns`: labelled by time since the run's first exchange (wall clock for live
/// runs). `href(series, from, to)` links a bar. `None` when the run has no capture time.
pub fn time_columns(
    run: &RunRow,
    width_ns: i64,
    rows: &[(i64, i64, i64)],
    specs: &[SeriesSpec],
    href: impl Fn(&SeriesSpec, i64, i64) -> Option<String>,
) -> Option<Vec<Column>> {
    let (first_ts, last_ts) = (run.first_ts?, run.last_ts?);
    let first = bucket_of(first_ts, width_ns);
    let last = bucket_of(last_ts, width_ns).max(first);
    let n = usize::try_from((last - first) / width_ns + 1).ok()?;
    let live = run.kind == "live";
    let mut columns: Vec<Column> = (0..n)
        .map(|i| {
            let bucket = first + i as i64 * width_ns;
            Column {
                label: if live {
                    clock_text(bucket)
                } else {
                    duration_text(bucket - first)
                },
                counts: vec![0; specs.len()],
                hrefs: specs
                    .iter()
                    .map(|s| href(s, bucket, bucket.saturating_add(width_ns)))
                    .collect(),
            }
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
        if let Some(c) = columns.get_mut(bi) {
            c.counts[si] += count;
        }
    }
    Some(columns)
}

/// Starts a run's chart title: "run 3, 100 ms buckets from 2024-…".
pub fn time_title(what: &str, run: &RunRow, width_ns: i64) -> (String, String) {
    let start = run
        .first_ts
        .map(|t| Timestamp(t).to_rfc3339())
        .unwrap_or_default();
    let x = if run.kind == "live" {
        format!("wall clock, UTC ({} per bar)", duration_text(width_ns))
    } else {
        format!(
            "time since the first exchange at {} ({} per bar)",
            start.get(..19).unwrap_or(&start).replace('T', " "),
            duration_text(width_ns)
        )
    };
    (format!("{what}, run {}", run.id), x)
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
            stored_packets: 0,
            stored_packet_bytes: 0,
            packet_evictions: 0,
            packets_over_connection_cap: 0,
            flagged_connections_dropped: 0,
            interrupted: None,
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
    fn bars_stack_per_bucket_with_errors_at_the_base_and_round_ticks() {
        let w = 1_000_000_000;
        let r = run(10 * w, 12 * w + 5);
        // Bucket 10: 3 × 2xx + 1 × 5xx; bucket 12: 2 × 2xx; an unknown key is ignored.
        let rows = [
            (10 * w, 1, 3),
            (10 * w, 4, 1),
            (12 * w, 1, 2),
            (12 * w, 99, 7),
        ];
        let cols = time_columns(&r, w, &rows, STATUS_SERIES, |_, a, b| {
            Some(format!("/x?from={a}&to={b}"))
        })
        .expect("columns");
        assert_eq!(cols.len(), 3);
        assert_eq!(cols[0].label, "0 s");
        assert_eq!(cols[2].label, "2 s");
        let c = stacked("t".into(), "x".into(), "y", cols, STATUS_SERIES, false);
        assert_eq!(c.max, 4);
        assert_eq!(c.total, 6);
        assert_eq!(c.bars.len(), 3);
        assert_eq!(c.bars[0].class, "s5xx", "errors at the bottom");
        assert!(c.bars[0].y.parse::<f64>().unwrap() > c.bars[1].y.parse::<f64>().unwrap());
        assert_eq!(
            c.bars[0].href.as_deref(),
            Some(format!("/x?from={}&to={}", 10 * w, 11 * w).as_str())
        );
        assert!(c.legend.iter().any(|l| l.label == "5xx" && l.count == 1));
        let labels: Vec<&str> = c.y_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0", "1", "2", "3", "4"]);
        assert!((4..=7).contains(&c.y_ticks.len()));
    }

    #[test]
    fn ticks_are_round_and_few() {
        for (max, want) in [(1, 1), (7, 2), (34, 10), (97, 20), (1234, 500)] {
            assert_eq!(nice_step(max, 5), want, "{max}");
        }
        let cols = (0..100)
            .map(|i| Column {
                label: i.to_string(),
                counts: vec![i],
                hrefs: vec![None],
            })
            .collect();
        let c = stacked(
            "t".into(),
            "x".into(),
            "y",
            cols,
            &SEVERITY_SERIES[..1],
            true,
        );
        assert!((4..=7).contains(&c.x_ticks.len()), "{}", c.x_ticks.len());
        assert!((4..=7).contains(&c.y_ticks.len()), "{}", c.y_ticks.len());
        assert_eq!(duration_text(1_500_000_000), "1.5 s");
        assert_eq!(duration_text(120_000_000_000), "2 min");
        assert_eq!(duration_text(250_000_000), "250 ms");
    }

    /// WCAG relative luminance of `#rrggbb`.
    fn luminance(hex: &str) -> f64 {
        let c: Vec<f64> = (0..3)
            .map(|i| {
                let v = f64::from(u8::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).unwrap());
                let v = v / 255.0;
                if v <= 0.03928 {
                    v / 12.92
                } else {
                    ((v + 0.055) / 1.055).powf(2.4)
                }
            })
            .collect();
        0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
    }

    #[test]
    fn stacked_neighbours_contrast_at_least_three_to_one_and_css_agrees() {
        let css = include_str!("../../dashboard/static/app.css");
        let fill = |class: &str| {
            FILLS
                .iter()
                .find(|(c, _)| *c == class)
                .map(|(_, f)| *f)
                .unwrap()
        };
        for specs in [STATUS_SERIES, SEVERITY_SERIES] {
            for pair in specs.windows(2) {
                let (a, b) = (
                    luminance(fill(pair[0].class)),
                    luminance(fill(pair[1].class)),
                );
                let ratio = (a.max(b) + 0.05) / (a.min(b) + 0.05);
                assert!(
                    ratio >= 3.0,
                    "{} / {}: {ratio:.2}",
                    pair[0].class,
                    pair[1].class
                );
            }
        }
        for (class, f) in FILLS {
            assert!(
                css.contains(&format!(".{class} {{ fill: {f}; }}")),
                "app.css must give .{class} the fill {f}"
            );
        }
    }
}
