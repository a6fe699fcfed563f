//! Grouping (`splat::grouping::group`) over an event parsed from an arbitrary payload.
//!
//! Invariants, beyond not panicking:
//! - one or two hashes (`app` first when it differs, then `system`), each 32 lowercase hex digits, and
//!   never the same hash twice;
//! - the config is the current one;
//! - grouping is deterministic: the same event, parsed again, gets the same hashes and culprit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use splat::grouping::{group, CONFIG};
use splat::model::Event;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = Event::from_payload(data) else {
        return;
    };
    let grouping = group(&event);
    assert_eq!(grouping.config, CONFIG);
    assert!((1..=2).contains(&grouping.hashes.len()), "{} hashes", grouping.hashes.len());
    for hash in &grouping.hashes {
        assert_eq!(hash.len(), 32, "{hash}");
        assert!(hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{hash}");
    }
    if let [a, b] = grouping.hashes.as_slice() {
        assert_ne!(a, b);
    }
    let again = group(&Event::from_payload(data).unwrap());
    assert_eq!(again, grouping);
});
