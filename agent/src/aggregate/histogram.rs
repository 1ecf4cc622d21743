//! Classic explicit-bucket histograms with float weights.
//!
//! A sample sent with `@rate` weighs `1 / rate`; counts are `f64` so that the weight is neither
//! truncated nor emulated by cloning the sample. The text format carries integer counts, so the
//! exposition rounds the accumulated counts once, at render time: the error stays under 0.5 in
//! total instead of growing with every sample.

use std::sync::Arc;

/// Bucket upper bounds shared by every series of a family (`+Inf` implied).
pub type Bounds = Arc<[f64]>;

/// One histogram series in one allocation: per-bucket (not cumulative) weights with the
/// overflow bucket last, then the sum, then the count. Two words inline, so that a series slot
/// stays small whatever its kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    cells: Box<[f64]>,
}

/// The cells after the buckets: the sum, then the count.
const TOTALS: usize = 2;

impl Histogram {
    /// An empty histogram for `bounds`.
    pub fn new(bounds: &Bounds) -> Histogram {
        Histogram {
            cells: vec![0.0; bounds.len() + 1 + TOTALS].into_boxed_slice(),
        }
    }

    /// Adds `value` with `weight`. Returns false, and changes nothing, when the sum would stop
    /// being a finite number.
    pub fn observe(&mut self, bounds: &Bounds, value: f64, weight: f64) -> bool {
        let (counts, totals) = self.split_mut();
        let sum = totals[0] + value * weight;
        let count = totals[1] + weight;
        if !sum.is_finite() || !count.is_finite() {
            return false;
        }
        // `le` semantics: a value equal to a bound falls in that bound's bucket.
        let bucket = bounds.partition_point(|&bound| bound < value);
        if let Some(slot) = counts.get_mut(bucket) {
            *slot += weight;
        }
        totals[0] = sum;
        totals[1] = count;
        true
    }

    /// The total weight observed.
    pub fn count(&self) -> f64 {
        self.totals()[1]
    }

    /// A copy for a snapshot.
    pub fn snapshot(&self, bounds: &Bounds) -> HistogramSnapshot {
        let buckets = self.cells.len() - TOTALS;
        let totals = self.totals();
        HistogramSnapshot {
            bounds: bounds.clone(),
            counts: self.cells[..buckets].into(),
            sum: totals[0],
            count: totals[1],
        }
    }

    fn totals(&self) -> &[f64] {
        &self.cells[self.cells.len() - TOTALS..]
    }

    fn split_mut(&mut self) -> (&mut [f64], &mut [f64]) {
        let buckets = self.cells.len() - TOTALS;
        self.cells.split_at_mut(buckets)
    }
}

/// A histogram as a snapshot holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Upper bounds, without `+Inf`.
    pub bounds: Bounds,
    /// Weight per bucket (not cumulative); one more entry than `bounds`, the last for `+Inf`.
    pub counts: Box<[f64]>,
    /// Sum of value × weight.
    pub sum: f64,
    /// Total weight.
    pub count: f64,
}

impl HistogramSnapshot {
    /// Cumulative weights per bound, as the text format writes them (`+Inf` excluded).
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.bounds
            .iter()
            .zip(self.counts.iter())
            .scan(0.0, |running, (&bound, &count)| {
                *running += count;
                Some((bound, *running))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> Bounds {
        Arc::from(vec![0.1, 1.0, 10.0])
    }

    #[test]
    fn a_value_on_a_bound_falls_in_that_bucket() {
        let bounds = bounds();
        let mut histogram = Histogram::new(&bounds);
        for value in [0.1, 0.5, 1.0, 50.0] {
            assert!(histogram.observe(&bounds, value, 1.0));
        }
        let snapshot = histogram.snapshot(&bounds);
        assert_eq!(
            snapshot.cumulative().collect::<Vec<_>>(),
            vec![(0.1, 1.0), (1.0, 3.0), (10.0, 3.0)]
        );
        assert_eq!(snapshot.count, 4.0);
        assert_eq!(snapshot.sum, 51.6);
    }

    #[test]
    fn weights_add_to_count_and_sum_without_truncation() {
        let bounds = bounds();
        let mut histogram = Histogram::new(&bounds);
        histogram.observe(&bounds, 2.0, 1.0 / 0.3);
        histogram.observe(&bounds, 2.0, 1.0 / 0.3);
        let snapshot = histogram.snapshot(&bounds);
        assert!((snapshot.count - 6.666_666_666_666_667).abs() < 1e-9);
        assert!((snapshot.sum - 13.333_333_333_333_334).abs() < 1e-9);
    }

    #[test]
    fn refuses_a_sample_that_would_make_the_sum_infinite() {
        let bounds = bounds();
        let mut histogram = Histogram::new(&bounds);
        assert!(histogram.observe(&bounds, f64::MAX, 1.0));
        assert!(!histogram.observe(&bounds, f64::MAX, 1.0));
        assert_eq!(histogram.count(), 1.0);
        assert_eq!(histogram.snapshot(&bounds).sum, f64::MAX);
    }

    #[test]
    fn a_snapshot_has_one_count_per_bucket_and_the_overflow() {
        let bounds = bounds();
        let mut histogram = Histogram::new(&bounds);
        histogram.observe(&bounds, 100.0, 2.0);
        let snapshot = histogram.snapshot(&bounds);
        assert_eq!(&*snapshot.counts, &[0.0, 0.0, 0.0, 2.0]);
        assert_eq!((snapshot.sum, snapshot.count), (200.0, 2.0));
    }

    #[test]
    fn a_histogram_without_bounds_has_only_the_overflow_bucket() {
        let bounds: Bounds = Arc::from(Vec::new());
        let mut histogram = Histogram::new(&bounds);
        assert!(histogram.observe(&bounds, 3.0, 1.0));
        let snapshot = histogram.snapshot(&bounds);
        assert_eq!(&*snapshot.counts, &[1.0]);
        assert_eq!((snapshot.sum, snapshot.count), (3.0, 1.0));
    }
}
