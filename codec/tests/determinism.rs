//! Bit-exactness across machines and builds: a fixed model and image must always give the same
//! payload. The expected values were recorded once; every platform, thread count, CPU feature
//! set and debug/release build must reproduce them. If they change, the bitstream changed: that
//! breaks every file written before (check `libm`/`constriction` upgrades first), so update them
//! only together with a format version bump.

mod common;

use common::{fingerprints, FROZEN_FINGERPRINTS};

#[test]
fn payloads_are_reproducible_everywhere() {
    let got = fingerprints();
    println!("{got:#x?}");
    assert_eq!(got, FROZEN_FINGERPRINTS);
}
