//! Latency histograms with log-scale buckets: mergeable, a few hundred bytes per endpoint,
//! and good enough for p50/p95 without keeping every sample.
//!
//! Bucket 0 holds latencies below 1 µs (zero and negative ones too: a response can start
//! before the request ends). Bucket `i ≥ 1` holds `[1 µs · 2^((i-1)/8), 1 µs · 2^(i/8))`,
//! so each bucket is 9.05 % wide; the last, 255, also holds everything above its lower
//! bound (about an hour).
//!
//! **Error bound.** A percentile is found by rank (nearest rank, `⌈p·n⌉`) in the bucket
//! that holds that rank, then placed inside the bucket by geometric interpolation of the
//! rank's position among the bucket's samples. The true sample of that rank lies in the
//! same bucket, so the estimate is within one bucket width of it: relative error below
//! 9.05 % (`2^(1/8) - 1`) for latencies from 1 µs to an hour; below 1 µs the estimate is
//! reported as 0 – 1 µs interpolated, i.e. at most 1 µs off.
//!
//! Encoding (the `endpoints.latency_hist` blob): for each non-empty bucket in increasing
//! order, one byte of bucket index then its count as unsigned LEB128. Decoding ignores a
//! truncated tail rather than failing: a histogram is a statistic, not a record.

/// Sub-buckets per power of two.
const PER_OCTAVE: f64 = 8.0;
/// Lower bound of bucket 1, in ns.
const BASE_NS: f64 = 1_000.0;
/// Number of buckets (indexes fit one byte).
pub const BUCKETS: usize = 256;

/// Bucket index of a latency in ns.
pub fn bucket(ns: i64) -> usize {
    if ns < BASE_NS as i64 {
        return 0;
    }
    let i = ((ns as f64 / BASE_NS).log2() * PER_OCTAVE).floor() as usize + 1;
    i.min(BUCKETS - 1)
}

/// Lower bound of bucket `i` in ns (0 for bucket 0).
pub fn lower_ns(i: usize) -> f64 {
    if i == 0 {
        0.0
    } else {
        BASE_NS * ((i - 1) as f64 / PER_OCTAVE).exp2()
    }
}

/// Upper bound of bucket `i` in ns.
pub fn upper_ns(i: usize) -> f64 {
    BASE_NS * (i as f64 / PER_OCTAVE).exp2()
}

/// Counts per bucket, grown to the highest bucket used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
}

impl Histogram {
    pub fn add(&mut self, ns: i64) {
        let i = bucket(ns);
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `p`-th percentile (`p` in 0..=1) in ns, `None` when empty.
    pub fn percentile(&self, p: f64) -> Option<i64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((p.clamp(0.0, 1.0) * n as f64).ceil() as u64).clamp(1, n);
        let mut below = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            if below + c >= rank {
                // Position of the rank among this bucket's samples, in (0, 1).
                let f = (rank - below) as f64 / (c as f64 + 1.0);
                let (lo, hi) = (lower_ns(i), upper_ns(i));
                let v = if i == 0 {
                    hi * f
                } else {
                    lo * (hi / lo).powf(f)
                };
                return Some(v.round() as i64);
            }
            below += c;
        }
        None
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            out.push(i as u8);
            let mut v = c;
            loop {
                let byte = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    out.push(byte);
                    break;
                }
                out.push(byte | 0x80);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Histogram {
        let mut h = Histogram::default();
        let mut it = bytes.iter();
        'buckets: while let Some(&i) = it.next() {
            let mut v = 0u64;
            let mut shift = 0u32;
            loop {
                let Some(&b) = it.next() else { break 'buckets };
                if shift < 64 {
                    v |= u64::from(b & 0x7f) << shift;
                }
                shift += 7;
                if b & 0x80 == 0 {
                    break;
                }
            }
            let i = usize::from(i);
            if h.counts.len() <= i {
                h.counts.resize(i + 1, 0);
            }
            h.counts[i] = h.counts[i].saturating_add(v);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact nearest-rank percentile of sorted samples.
    fn exact(sorted: &[i64], p: f64) -> i64 {
        let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    #[test]
    fn percentiles_are_within_one_bucket_of_the_truth() {
        // A skewed, spread distribution: 1 µs .. 30 s, deterministic.
        let mut samples: Vec<i64> = (0..20_000u64)
            .map(|i| {
                let x = (i.wrapping_mul(2_654_435_761) % 1_000_003) as f64 / 1_000_003.0;
                (1_000.0 * (x * 17.2).exp()) as i64
            })
            .collect();
        let mut h = Histogram::default();
        for &s in &samples {
            h.add(s);
        }
        samples.sort_unstable();
        for p in [0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0] {
            let truth = exact(&samples, p) as f64;
            let got = h.percentile(p).expect("not empty") as f64;
            let err = (got - truth).abs() / truth;
            assert!(err < 0.0906, "p{p}: {got} vs {truth} ({err})");
        }
    }

    #[test]
    fn small_and_negative_latencies_land_in_bucket_zero() {
        let mut h = Histogram::default();
        for ns in [-5_000, 0, 999] {
            h.add(ns);
        }
        assert_eq!(bucket(-1), 0);
        assert_eq!(bucket(1_000), 1);
        assert_eq!(bucket(i64::MAX), BUCKETS - 1);
        let p = h.percentile(0.5).expect("not empty");
        assert!((0..1_000).contains(&p), "{p}");
    }

    #[test]
    fn encoding_round_trips_and_merges() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        for ns in [1, 2_000, 2_000, 40_000_000, i64::MAX] {
            a.add(ns);
        }
        for _ in 0..300 {
            b.add(2_000);
        }
        assert_eq!(Histogram::decode(&a.encode()), a);
        a.merge(&b);
        assert_eq!(a.count(), 305);
        assert_eq!(Histogram::decode(&a.encode()), a);
        assert_eq!(Histogram::decode(&[]), Histogram::default());
        // A truncated blob keeps the buckets that were whole.
        let enc = a.encode();
        let cut = Histogram::decode(&enc[..enc.len() - 1]);
        assert!(cut.count() < a.count());
    }
}
