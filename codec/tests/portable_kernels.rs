//! The engine's portable kernels reproduce the frozen payloads too. On a CPU with AVX2 every other
//! test runs the AVX2 variant; this test binary (its own process) sets `IDFCODEC_CPU=portable`
//! before the engine first runs, so here the variant for any CPU does the work. Its one test
//! checks that the switch took effect, so it cannot pass by running AVX2 again.

mod common;

use common::{fingerprints, FROZEN_FINGERPRINTS};
use idfcodec_codec::engine::{kernel_variant, CPU_VARIANT_VAR};

#[test]
fn portable_kernels_reproduce_the_frozen_payloads() {
    std::env::set_var(CPU_VARIANT_VAR, "portable");
    assert_eq!(kernel_variant(), "portable");
    let got = fingerprints();
    assert_eq!(got, FROZEN_FINGERPRINTS);
}
