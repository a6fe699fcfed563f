//! A mergeable latency histogram with 1% relative accuracy (DDSketch, Masson et al., VLDB 2019).
//!
//! Rollups keep one sketch per (project, endpoint, environment, hour); a page merges the hours it shows
//! and reads p50/p95/p99 from the result. Keeping every duration would grow with traffic; a sketch stays
//! a few hundred bytes and still answers any quantile within 1% of the true value.
//!
//! A value `v` lands in bucket `ceil(log_γ v)` with `γ = (1+α)/(1−α)`, α = 0.01. Every value in a
//! bucket is within α of the bucket's representative value `2γ^i/(γ+1)`, whatever the distribution.
//! Durations at or below [`MIN_INDEXABLE_MS`] (a microsecond) go to a zero bucket: they are "instant"
//! and would otherwise spend hundreds of buckets on noise.
//!
//! # Stored form ([`LatencySketch::to_bytes`])
//! ```text
//! u8       version (1: α = 0.01, min indexable 0.001 ms)
//! varint   count            varint  zero_count
//! f64 LE   sum              f64 LE  min          f64 LE  max
//! varint   bucket count (≤ MAX_STORED_BUCKETS)
//! per bucket, by increasing index:
//!   varint   first: zigzag(index); later: index − previous index (≥ 1)
//!   varint   bucket count (≥ 1)
//! ```
//! The mapping constants are implied by the version byte, so a future change of α bumps the version.

/// Relative accuracy: every quantile is within 1% of the value at the same rank.
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// Durations at or below this many milliseconds count as zero (see the module doc).
pub const MIN_INDEXABLE_MS: f64 = 0.001;

/// Durations above this (about 31 years) are clock bugs, not latencies; ignoring them keeps `sum` finite.
pub const MAX_VALUE_MS: f64 = 1e12;

/// The most buckets `from_bytes` accepts, so hostile bytes cannot make it allocate without bound.
pub const MAX_STORED_BUCKETS: u64 = 4096;

const FORMAT_VERSION: u8 = 1;

/// Why stored sketch bytes could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SketchError {
    #[error("empty sketch bytes")]
    Empty,
    #[error("unsupported sketch version {0}")]
    UnsupportedVersion(u8),
    #[error("truncated sketch bytes")]
    Truncated,
    #[error("varint longer than 64 bits")]
    VarintOverflow,
    #[error("too many sketch buckets ({0})")]
    TooManyBuckets(u64),
    #[error("invalid sketch: {0}")]
    Invalid(&'static str),
}

/// A DDSketch over durations in milliseconds; see the module doc.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencySketch {
    /// Bucket index → number of values in it.
    buckets: Buckets,
    zero_count: u64,
    count: u64,
    sum: f64,
    /// `+∞` / `−∞` while empty, so that `min`/`max` folding needs no special case.
    min: f64,
    max: f64,
}

impl Default for LatencySketch {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencySketch {
    pub fn new() -> Self {
        LatencySketch {
            buckets: Buckets::default(),
            zero_count: 0,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// Records one duration. Negative, NaN, infinite and absurd (> [`MAX_VALUE_MS`]) values are
    /// ignored: they are SDK clock bugs, and one of them would poison `sum` and the quantiles for the
    /// whole hour.
    pub fn add(&mut self, value_ms: f64) {
        self.add_n(value_ms, 1);
    }

    /// Records `count` copies of one duration (same rules as [`add`](Self::add)).
    pub fn add_n(&mut self, value_ms: f64, count: u64) {
        if count == 0 || !(0.0..=MAX_VALUE_MS).contains(&value_ms) {
            return;
        }
        match bucket_index(value_ms) {
            Some(index) => self.buckets.add(index, count),
            None => self.zero_count = self.zero_count.saturating_add(count),
        }
        self.count = self.count.saturating_add(count);
        self.sum += value_ms * count as f64;
        self.min = self.min.min(value_ms);
        self.max = self.max.max(value_ms);
    }

    /// Folds `other` into `self`; the result answers quantiles as if it had seen both streams.
    pub fn merge(&mut self, other: &LatencySketch) {
        self.buckets.merge(&other.buckets);
        self.zero_count = self.zero_count.saturating_add(other.zero_count);
        self.count = self.count.saturating_add(other.count);
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The smallest recorded duration, exact.
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// The largest recorded duration, exact.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// The sum of recorded durations, exact up to float rounding (for averages).
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// The number of non-empty buckets (a measure of memory and stored size).
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// The `q`-quantile (`q` in [0, 1], clamped), using the nearest rank `ceil(q·n)`: the answer is
    /// within 1% of the value of that rank. `None` when empty or `q` is NaN.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let [value] = self.quantiles([q]);
        value
    }

    /// Several quantiles, as [`quantile`](Self::quantile) answers each, in one walk of the buckets
    /// (pages read three from every endpoint-hour they chart).
    pub fn quantiles<const N: usize>(&self, qs: [f64; N]) -> [Option<f64>; N] {
        let mut out = [None; N];
        if self.count == 0 {
            return out;
        }
        // Visit the ranks in increasing order, whatever order they were asked in (NaN has none).
        let mut order: [usize; N] = std::array::from_fn(|i| i);
        order.sort_by(|&a, &b| qs[a].total_cmp(&qs[b]));
        let mut wanted = order
            .into_iter()
            .filter(|&i| !qs[i].is_nan())
            .map(|i| (i, nearest_rank(qs[i], self.count)))
            .peekable();
        let mut seen = self.zero_count;
        let mut answer = |slot: usize, rank: u64, estimate: f64| {
            // The exact extremes are known: they answer the first and last ranks, and bound the rest.
            // (`max`/`min` rather than `clamp`, which panics on a NaN bound.)
            out[slot] = Some(match rank {
                1 => self.min,
                r if r == self.count => self.max,
                _ => estimate.max(self.min).min(self.max),
            });
        };
        while let Some((slot, rank)) = wanted.next_if(|&(_, rank)| rank <= seen) {
            answer(slot, rank, 0.0);
        }
        for (i, &n) in self.buckets.counts.iter().enumerate() {
            if n == 0 {
                continue;
            }
            seen = seen.saturating_add(n);
            while let Some((slot, rank)) = wanted.next_if(|&(_, rank)| rank <= seen) {
                answer(slot, rank, bucket_value(self.buckets.offset + i as i32));
            }
        }
        for (slot, rank) in wanted {
            answer(slot, rank, self.max);
        }
        out
    }

    /// The compact stored form described in the module doc.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + 3 * self.buckets.len());
        out.push(FORMAT_VERSION);
        write_varint(&mut out, self.count);
        write_varint(&mut out, self.zero_count);
        let (min, max) = if self.count > 0 {
            (self.min, self.max)
        } else {
            (0.0, 0.0)
        };
        for float in [self.sum, min, max] {
            out.extend_from_slice(&float.to_le_bytes());
        }
        write_varint(&mut out, self.buckets.len() as u64);
        let mut previous: Option<i32> = None;
        for (index, n) in self.buckets.iter() {
            let key = match previous {
                None => zigzag(index),
                Some(p) => (i64::from(index) - i64::from(p)) as u64,
            };
            write_varint(&mut out, key);
            write_varint(&mut out, n);
            previous = Some(index);
        }
        out
    }

    /// Reads [`to_bytes`](Self::to_bytes) back. Never panics: corrupt, truncated or hostile bytes are
    /// an error, and the bucket count is bounded before anything is allocated.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SketchError> {
        let mut sketch = LatencySketch::new();
        sketch.merge_bytes(bytes)?;
        Ok(sketch)
    }

    /// Folds stored bytes into `self`: what `merge(&from_bytes(bytes)?)` does, without building the
    /// sketch in between (pages fold tens of thousands of stored cells). The bytes are read once, their
    /// buckets into a buffer on the stack, and checked whole before anything is added: bytes that do
    /// not decode are an error and leave `self` as it was.
    pub fn merge_bytes(&mut self, bytes: &[u8]) -> Result<(), SketchError> {
        let mut reader = Reader { bytes, pos: 0 };
        let header = Header::read(&mut reader)?;
        let len = reader.varint()?;
        if len > MAX_STORED_BUCKETS {
            return Err(SketchError::TooManyBuckets(len));
        }
        let mut on_stack = [(0, 0); STACK_BUCKETS];
        let mut on_heap = Vec::new();
        let pairs = if len as usize <= STACK_BUCKETS {
            &mut on_stack[..len as usize]
        } else {
            on_heap.resize(len as usize, (0, 0));
            &mut on_heap[..]
        };
        read_pairs(&mut reader, pairs)?;
        if reader.pos != bytes.len() {
            return Err(SketchError::Invalid("trailing bytes"));
        }
        header.check(pairs)?;
        if let (Some(&(first, _)), Some(&(last, _))) = (pairs.first(), pairs.last()) {
            self.buckets.cover(first, last);
            let counts = &mut self.buckets.counts[(first - self.buckets.offset) as usize..];
            for &(index, n) in pairs.iter() {
                let slot = &mut counts[(index - first) as usize];
                *slot = slot.saturating_add(n);
            }
        }
        self.zero_count = self.zero_count.saturating_add(header.zero_count);
        self.count = self.count.saturating_add(header.count);
        self.sum += header.sum;
        if header.count > 0 {
            self.min = self.min.min(header.min);
            self.max = self.max.max(header.max);
        }
        Ok(())
    }
}

/// Every bucket index an accepted value can land in: (1 µs, [`MAX_VALUE_MS`]] maps to [-345, 1382].
const INDEX_RANGE: std::ops::RangeInclusive<i32> = -346..=1383;

/// Bucket counts as one dense run of indexes starting at `offset`: merging is adding two arrays, which
/// is what pages do per rollup cell, thousands of times. The run spans at most [`INDEX_RANGE`] (about
/// 14 KB), because only indexes of accepted values ever get in.
#[derive(Debug, Clone, Default)]
struct Buckets {
    offset: i32,
    counts: Vec<u64>,
}

impl Buckets {
    /// Makes room for `lo..=hi` (both within [`INDEX_RANGE`]).
    fn cover(&mut self, lo: i32, hi: i32) {
        if self.counts.is_empty() {
            self.offset = lo;
        }
        if lo < self.offset {
            let grow = (self.offset - lo) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = lo;
        }
        let len = (hi - self.offset + 1) as usize;
        if len > self.counts.len() {
            self.counts.resize(len, 0);
        }
    }

    fn add(&mut self, index: i32, n: u64) {
        self.cover(index, index);
        let slot = &mut self.counts[(index - self.offset) as usize];
        *slot = slot.saturating_add(n);
    }

    fn merge(&mut self, other: &Buckets) {
        let Some(last) = other.counts.len().checked_sub(1) else {
            return;
        };
        self.cover(other.offset, other.offset + last as i32);
        let start = (other.offset - self.offset) as usize;
        for (slot, n) in self.counts[start..].iter_mut().zip(&other.counts) {
            *slot = slot.saturating_add(*n);
        }
    }

    /// The non-empty buckets by increasing index.
    fn iter(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        let offset = self.offset;
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(move |(i, n)| (offset + i as i32, *n))
    }

    fn len(&self) -> usize {
        self.counts.iter().filter(|n| **n > 0).count()
    }
}

/// Equal when the same buckets hold the same counts, however much empty room either has.
impl PartialEq for Buckets {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

/// The bucket of a positive finite value, or `None` for the zero bucket.
fn bucket_index(value_ms: f64) -> Option<i32> {
    if value_ms <= MIN_INDEXABLE_MS {
        return None;
    }
    // Values in (1e-3, MAX_VALUE_MS] map to about [-341, 1382], far inside i32.
    Some((value_ms.ln() / ln_gamma()).ceil() as i32)
}

/// The value reported for bucket `index`: equidistant (relatively) from both bucket bounds.
fn bucket_value(index: i32) -> f64 {
    2.0 * (f64::from(index) * ln_gamma()).exp() / (gamma() + 1.0)
}

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

fn ln_gamma() -> f64 {
    gamma().ln()
}

/// The 1-based nearest rank `ceil(q·n)`, clamped to `[1, n]`.
fn nearest_rank(q: f64, count: u64) -> u64 {
    let q = q.clamp(0.0, 1.0);
    let rank = (q * count as f64).ceil();
    // `as u64` saturates; the clamp keeps the rank inside the sketch.
    (rank as u64).clamp(1, count)
}

/// Stored sketches of up to this many buckets are read through a buffer on the stack (a sketch of
/// durations between 1 ms and 10 s at 1% has about 460).
const STACK_BUCKETS: usize = 512;

/// The figures stored before the buckets.
struct Header {
    count: u64,
    zero_count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Header {
    fn read(reader: &mut Reader<'_>) -> Result<Self, SketchError> {
        let version = reader.byte().map_err(|_| SketchError::Empty)?;
        if version != FORMAT_VERSION {
            return Err(SketchError::UnsupportedVersion(version));
        }
        let count = reader.varint()?;
        let zero_count = reader.varint()?;
        let (sum, min, max) = (reader.f64()?, reader.f64()?, reader.f64()?);
        Ok(Header {
            count,
            zero_count,
            sum,
            min,
            max,
        })
    }

    /// Checks the invariants `add` maintains, so the sketch these figures and buckets fold into
    /// answers like a built one.
    fn check(&self, pairs: &[(i32, u64)]) -> Result<(), SketchError> {
        let bucketed = pairs
            .iter()
            .try_fold(self.zero_count, |acc, (_, n)| acc.checked_add(*n))
            .ok_or(SketchError::Invalid("count overflow"))?;
        if bucketed != self.count {
            return Err(SketchError::Invalid("bucket counts do not add up"));
        }
        if !self.sum.is_finite() || self.sum < 0.0 {
            return Err(SketchError::Invalid("bad sum"));
        }
        let bounds_ok = self.min.is_finite() && self.max.is_finite() && 0.0 <= self.min;
        if self.count > 0 && !(bounds_ok && self.min <= self.max) {
            return Err(SketchError::Invalid("bad min/max"));
        }
        Ok(())
    }
}

/// Reads `pairs.len()` stored `(index, count)` pairs: indexes increasing and within [`INDEX_RANGE`]
/// (the dense store allocates the range between them), counts not zero.
fn read_pairs(reader: &mut Reader<'_>, pairs: &mut [(i32, u64)]) -> Result<(), SketchError> {
    let mut previous: Option<i32> = None;
    for pair in pairs.iter_mut() {
        let key = reader.varint()?;
        let index = match previous {
            None => unzigzag(key),
            Some(_) if key == 0 => {
                return Err(SketchError::Invalid("bucket indexes not increasing"))
            }
            Some(p) => i64::try_from(key)
                .ok()
                .and_then(|delta| i64::from(p).checked_add(delta))
                .ok_or(SketchError::Invalid("bucket index out of range"))?,
        };
        let index = i32::try_from(index)
            .ok()
            .filter(|i| INDEX_RANGE.contains(i))
            .ok_or(SketchError::Invalid("bucket index out of range"))?;
        let n = reader.varint()?;
        if n == 0 {
            return Err(SketchError::Invalid("empty bucket"));
        }
        *pair = (index, n);
        previous = Some(index);
    }
    Ok(())
}

fn zigzag(value: i32) -> u64 {
    let v = i64::from(value);
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// LEB128: seven bits a byte, low bits first, high bit set on every byte but the last.
fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A cursor over untrusted bytes; every read checks the length first.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, SketchError> {
        let b = *self.bytes.get(self.pos).ok_or(SketchError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, SketchError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(SketchError::VarintOverflow);
            }
            value |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(SketchError::VarintOverflow)
    }

    fn f64(&mut self) -> Result<f64, SketchError> {
        let end = self.pos.checked_add(8).ok_or(SketchError::Truncated)?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(SketchError::Truncated)?;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(slice);
        self.pos = end;
        Ok(f64::from_le_bytes(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64: a tiny deterministic generator, so the tests need no seeded-RNG API.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in (0, 1].
        fn unit(&mut self) -> f64 {
            ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
        }

        /// Standard normal (Box–Muller).
        fn normal(&mut self) -> f64 {
            let (u, v) = (self.unit(), self.unit());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }

        fn lognormal(&mut self, mu: f64, sigma: f64) -> f64 {
            (mu + sigma * self.normal()).exp()
        }
    }

    /// Lognormal around 40 ms, with a long tail (typical web endpoint).
    fn lognormal_sample(seed: u64, n: usize) -> Vec<f64> {
        let mut rng = Rng(seed);
        (0..n).map(|_| rng.lognormal(40f64.ln(), 0.8)).collect()
    }

    /// Cache hits around 3 ms and misses around 250 ms (a bimodal endpoint).
    fn bimodal_sample(seed: u64, n: usize) -> Vec<f64> {
        let mut rng = Rng(seed);
        (0..n)
            .map(|_| {
                if rng.unit() < 0.8 {
                    rng.lognormal(3f64.ln(), 0.3)
                } else {
                    rng.lognormal(250f64.ln(), 0.4)
                }
            })
            .collect()
    }

    fn sketch_of(values: &[f64]) -> LatencySketch {
        let mut sketch = LatencySketch::new();
        values.iter().for_each(|&v| sketch.add(v));
        sketch
    }

    /// The exact nearest-rank quantile of sorted values: the `ceil(q·n)`-th smallest.
    fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    /// The worst relative error over the quantiles pages show (and a few more).
    fn worst_relative_error(values: &[f64]) -> f64 {
        let sketch = sketch_of(values);
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0]
            .iter()
            .map(|&q| {
                let exact = exact_quantile(&sorted, q);
                let estimate = sketch.quantile(q).unwrap();
                (estimate - exact).abs() / exact
            })
            .fold(0.0, f64::max)
    }

    const TOLERANCE: f64 = RELATIVE_ACCURACY + 1e-9;

    #[test]
    fn lognormal_quantiles_are_within_one_percent() {
        for seed in 1..=5 {
            let values = lognormal_sample(seed, 20_000);
            let err = worst_relative_error(&values);
            assert!(err <= TOLERANCE, "seed {seed}: relative error {err}");
        }
    }

    #[test]
    fn bimodal_quantiles_are_within_one_percent() {
        for seed in 10..=14 {
            let values = bimodal_sample(seed, 20_000);
            let err = worst_relative_error(&values);
            assert!(err <= TOLERANCE, "seed {seed}: relative error {err}");
        }
    }

    #[test]
    fn small_samples_are_within_one_percent() {
        for n in [1, 2, 3, 7, 20, 99] {
            let values = lognormal_sample(n as u64, n);
            let err = worst_relative_error(&values);
            assert!(err <= TOLERANCE, "n {n}: relative error {err}");
        }
    }

    #[test]
    fn p50_p95_p99_match_nearest_rank_on_a_known_sequence() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let sketch = sketch_of(&values);
        for (q, exact) in [(0.5, 50.0), (0.95, 95.0), (0.99, 99.0)] {
            let estimate = sketch.quantile(q).unwrap();
            assert!(
                (estimate - exact).abs() / exact <= TOLERANCE,
                "q {q}: {estimate}"
            );
        }
    }

    #[test]
    fn empty_sketch_has_no_quantiles() {
        let sketch = LatencySketch::new();
        assert_eq!(sketch.quantile(0.5), None);
        assert_eq!(
            (sketch.count(), sketch.min(), sketch.max(), sketch.sum()),
            (0, None, None, 0.0)
        );
    }

    #[test]
    fn bad_values_are_ignored_and_tiny_ones_count_as_zero() {
        let mut sketch = LatencySketch::new();
        for bad in [-1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300] {
            sketch.add(bad);
        }
        assert!(sketch.is_empty());
        sketch.add_n(0.0005, 3);
        sketch.add(0.0);
        sketch.add(10.0);
        assert_eq!(sketch.count(), 5);
        assert_eq!(sketch.bucket_count(), 1);
        assert_eq!(sketch.quantile(0.5), Some(0.0));
        assert_eq!(sketch.min(), Some(0.0));
        assert_eq!(sketch.quantile(1.0), Some(10.0));
        assert_eq!(sketch.quantile(f64::NAN), None);
    }

    /// Asked together, in any order and with NaN or out-of-range ones among them, quantiles answer as
    /// each does alone, including those in the zero bucket and at the extremes.
    #[test]
    fn quantiles_together_answer_as_each_alone() {
        let mut sketch = sketch_of(&lognormal_sample(23, 2_000));
        sketch.add_n(0.0, 300);
        let asked = [0.99, f64::NAN, 0.0, 0.5, 1.5, 0.05, 0.95, -1.0, 0.5, 1.0];
        let together = sketch.quantiles(asked);
        for (q, answer) in asked.into_iter().zip(together) {
            assert_eq!(answer, sketch.quantiles([q])[0], "q = {q}");
        }
        assert_eq!(together[1], None);
        assert_eq!(together[2], Some(0.0));
        assert_eq!(together[4], sketch.max());
        assert_eq!(together[9], sketch.max());
        assert!(together[3] < together[6] && together[6] <= together[0]);
    }

    #[test]
    fn add_n_equals_repeated_add() {
        let mut once = LatencySketch::new();
        once.add_n(12.5, 4);
        let repeated = sketch_of(&[12.5; 4]);
        assert_eq!(once, repeated);
    }

    #[test]
    fn merge_equals_sketch_of_concatenation() {
        let a = lognormal_sample(21, 5_000);
        let b = bimodal_sample(22, 7_000);
        let mut merged = sketch_of(&a);
        merged.merge(&sketch_of(&b));
        merged.merge(&LatencySketch::new());
        let concat = sketch_of(&[a, b].concat());
        assert_eq!(merged.buckets, concat.buckets);
        assert_eq!(
            (
                merged.count(),
                merged.zero_count,
                merged.min(),
                merged.max()
            ),
            (
                concat.count(),
                concat.zero_count,
                concat.min(),
                concat.max()
            )
        );
        assert!((merged.sum() - concat.sum()).abs() <= 1e-9 * concat.sum());
        for q in [0.5, 0.95, 0.99] {
            assert_eq!(merged.quantile(q), concat.quantile(q));
        }
    }

    /// Folding stored bytes gives what merging the decoded sketch gives, whichever side is wider or
    /// empty; bytes that do not decode leave the sketch as it was.
    #[test]
    fn merging_stored_bytes_equals_merging_the_decoded_sketch() {
        let sketch = |values: Vec<f64>| {
            let mut s = LatencySketch::new();
            values.into_iter().for_each(|v| s.add(v));
            s
        };
        let narrow = sketch(lognormal_sample(3, 300));
        let wide = sketch(
            bimodal_sample(4, 300)
                .into_iter()
                .chain([0.0, 9e5])
                .collect(),
        );
        let empty = LatencySketch::new();
        // More buckets than the stack buffer holds: one for every 2% from 2 µs up.
        let every = sketch(
            (0..1800)
                .map(|i| 0.002 * 1.02f64.powi(i))
                .take_while(|v| *v <= MAX_VALUE_MS)
                .collect(),
        );
        assert!(every.bucket_count() > STACK_BUCKETS);
        for (a, b) in [
            (&narrow, &wide),
            (&wide, &narrow),
            (&empty, &wide),
            (&narrow, &empty),
            (&narrow, &every),
            (&empty, &every),
        ] {
            let mut via_sketch = a.clone();
            via_sketch.merge(b);
            let mut via_bytes = a.clone();
            via_bytes.merge_bytes(&b.to_bytes()).unwrap();
            assert_eq!(via_bytes, via_sketch);
        }
        let bytes = wide.to_bytes();
        let mut kept = narrow.clone();
        for len in 0..bytes.len() {
            assert!(kept.merge_bytes(&bytes[..len]).is_err(), "{len}");
            assert_eq!(kept, narrow);
        }
    }

    #[test]
    fn merge_into_empty_copies() {
        let full = sketch_of(&lognormal_sample(3, 100));
        let mut empty = LatencySketch::new();
        empty.merge(&full);
        assert_eq!(empty, full);
    }

    #[test]
    fn every_accepted_value_has_a_bucket_in_range_and_others_are_refused() {
        let mut sketch = LatencySketch::new();
        let mut v = MIN_INDEXABLE_MS * 1.000_001;
        while v <= MAX_VALUE_MS {
            let index = bucket_index(v).unwrap();
            assert!(INDEX_RANGE.contains(&index), "{v} → {index}");
            sketch.add(v);
            v *= gamma();
        }
        sketch.add(MAX_VALUE_MS);
        assert!(sketch.bucket_count() <= INDEX_RANGE.count());
        assert_eq!(
            LatencySketch::from_bytes(&sketch.to_bytes()).unwrap(),
            sketch
        );
        // A stored bucket no value could reach would make the dense store allocate without need.
        let mut bytes = vec![FORMAT_VERSION, 1, 0];
        for f in [5.0f64, 5.0, 5.0] {
            bytes.extend_from_slice(&f.to_le_bytes());
        }
        bytes.push(1);
        write_varint(&mut bytes, zigzag(100_000));
        bytes.push(1);
        assert_eq!(
            LatencySketch::from_bytes(&bytes),
            Err(SketchError::Invalid("bucket index out of range"))
        );
    }

    #[test]
    fn serialization_round_trips() {
        let mut sketch = sketch_of(&bimodal_sample(5, 3_000));
        sketch.add_n(0.0, 7);
        let bytes = sketch.to_bytes();
        assert_eq!(LatencySketch::from_bytes(&bytes), Ok(sketch.clone()));
        let empty = LatencySketch::new();
        assert_eq!(LatencySketch::from_bytes(&empty.to_bytes()), Ok(empty));
    }

    #[test]
    fn an_hour_of_one_endpoint_is_a_few_hundred_bytes() {
        // 1,000 requests of a typical endpoint.
        let bytes = sketch_of(&lognormal_sample(8, 1_000)).to_bytes();
        assert!(bytes.len() < 700, "{} bytes", bytes.len());
        let bytes = sketch_of(&bimodal_sample(8, 1_000)).to_bytes();
        assert!(bytes.len() < 700, "{} bytes", bytes.len());
    }

    #[test]
    fn truncated_bytes_are_an_error() {
        let bytes = sketch_of(&lognormal_sample(9, 500)).to_bytes();
        for len in 0..bytes.len() {
            assert!(
                LatencySketch::from_bytes(&bytes[..len]).is_err(),
                "len {len}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(LatencySketch::from_bytes(&longer).is_err());
    }

    #[test]
    fn corrupt_bytes_never_panic() {
        let mut rng = Rng(77);
        let good = sketch_of(&bimodal_sample(9, 500)).to_bytes();
        for round in 0..20_000 {
            let bytes: Vec<u8> = if round % 2 == 0 {
                // Random bytes behind a valid version byte, to get past the first check.
                let len = (rng.next_u64() % 64) as usize;
                std::iter::once(FORMAT_VERSION)
                    .chain((0..len).map(|_| rng.next_u64() as u8))
                    .collect()
            } else {
                // A valid sketch with a few bytes flipped.
                let mut bytes = good.clone();
                for _ in 0..1 + rng.next_u64() % 4 {
                    let at = (rng.next_u64() as usize) % bytes.len();
                    bytes[at] = rng.next_u64() as u8;
                }
                bytes
            };
            if let Ok(sketch) = LatencySketch::from_bytes(&bytes) {
                // Whatever decodes must answer without panicking.
                let _ = sketch.quantile(0.99);
                let mut merged = sketch.clone();
                merged.merge(&sketch);
            }
        }
    }

    #[test]
    fn hostile_headers_are_rejected() {
        let mut huge = vec![FORMAT_VERSION, 1, 0];
        huge.extend_from_slice(&[0; 24]);
        write_varint(&mut huge, u64::MAX);
        assert_eq!(
            LatencySketch::from_bytes(&huge),
            Err(SketchError::TooManyBuckets(u64::MAX))
        );
        assert_eq!(
            LatencySketch::from_bytes(&[9]),
            Err(SketchError::UnsupportedVersion(9))
        );
        assert_eq!(LatencySketch::from_bytes(&[]), Err(SketchError::Empty));
        let overlong = [
            FORMAT_VERSION,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0x7f,
        ];
        assert_eq!(
            LatencySketch::from_bytes(&overlong),
            Err(SketchError::VarintOverflow)
        );
    }

    #[test]
    fn varints_round_trip() {
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            write_varint(&mut out, value);
            let mut reader = Reader {
                bytes: &out,
                pos: 0,
            };
            assert_eq!(reader.varint(), Ok(value));
            assert_eq!(reader.pos, out.len());
        }
        for index in [0, 1, -1, -341, 1382, i32::MIN, i32::MAX] {
            assert_eq!(unzigzag(zigzag(index)), i64::from(index));
        }
    }
}
