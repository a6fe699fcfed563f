//! The latency sketch's stored form (`LatencySketch::from_bytes`), read back from the lake and rollups.
//!
//! Two modes, picked by the first input byte:
//! - decode (even): the rest is stored bytes. A sketch that decodes re-encodes to bytes that decode to
//!   the same sketch, and those bytes are a fixed point; its quantiles lie within [min, max] and grow
//!   with q; its count is at least its bucket count.
//! - build (odd): the rest is a list of f64 durations; the sketch that records them round-trips through
//!   `to_bytes`/`from_bytes` exactly, and merging it into an empty sketch changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use splat::perf::sketch::LatencySketch;

const QS: &[f64] = &[0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0];

fn check(sketch: &LatencySketch) {
    let bytes = sketch.to_bytes();
    let decoded = LatencySketch::from_bytes(&bytes).expect("to_bytes output must decode");
    assert_eq!(&decoded, sketch, "round trip");
    assert_eq!(decoded.to_bytes(), bytes, "to_bytes is a fixed point");
    assert!(sketch.count() >= sketch.bucket_count() as u64);
    if sketch.is_empty() {
        assert!(sketch.quantile(0.5).is_none());
        return;
    }
    let (min, max) = (sketch.min().unwrap(), sketch.max().unwrap());
    assert!(min <= max);
    let mut previous = f64::NEG_INFINITY;
    for &q in QS {
        let v = sketch.quantile(q).expect("a non-empty sketch has quantiles");
        assert!(v >= min && v <= max, "q{q} = {v} outside [{min}, {max}]");
        assert!(v >= previous, "quantiles must not decrease with q");
        previous = v;
    }
    assert!(sketch.quantile(f64::NAN).is_none());
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    if mode & 1 == 0 {
        if let Ok(sketch) = LatencySketch::from_bytes(rest) {
            check(&sketch);
        }
    } else {
        let mut sketch = LatencySketch::new();
        for chunk in rest.chunks_exact(8) {
            sketch.add(f64::from_le_bytes(chunk.try_into().unwrap()));
        }
        check(&sketch);
        let mut merged = LatencySketch::new();
        merged.merge(&sketch);
        assert_eq!(merged, sketch, "merge into empty");
    }
});
