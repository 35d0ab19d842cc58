//! Bit-exactness across machines and builds: a fixed model and image must always give the same
//! payload. The expected values were recorded once; every platform, thread count, CPU feature
//! set and debug/release build must reproduce them. If they change, the bitstream changed: that
//! breaks every file written before (check `libm`/`constriction` upgrades first), so update them
//! only together with a format version bump.

mod common;

use common::{small_config, smooth_pixels, Rng};
use idfcodec_codec::engine::Shape;
use idfcodec_codec::entropy::{decode_image, encode_image, StreamStart};
use idfcodec_codec::{flow, Model};

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// (model id, payload length, payload hash, NLL in millibits) for a fixed case.
fn fingerprint(
    channels: usize,
    levels: usize,
    height: usize,
    width: usize,
) -> (u64, usize, u64, i64) {
    let model = Model::new_random(small_config(channels, levels), 12_345).unwrap();
    let shape = Shape::new(channels, height, width);
    let pixels = smooth_pixels(&mut Rng::new(7), shape);
    // version-1 streams (start state 1): the frozen fingerprints below predate version 2; the
    // version-2 goldens in fixtures/v2 freeze those streams
    let start = StreamStart::One;
    let payload = encode_image(&model, &pixels, channels, height, width, start).unwrap();
    assert_eq!(
        decode_image(&model, &payload, channels, height, width, |_| start).unwrap(),
        pixels
    );
    let image = common::to_tensor(&pixels, shape);
    let nll = flow::nll_bits(&model, &image).unwrap();
    (
        model.id(),
        payload.len(),
        fnv1a(&payload),
        (nll * 1e3).round() as i64,
    )
}

#[test]
fn payloads_are_reproducible_everywhere() {
    let got = [fingerprint(1, 2, 16, 16), fingerprint(3, 3, 16, 24)];
    println!("{got:#x?}");
    let want: [(u64, usize, u64, i64); 2] = [
        (0x8809_cd9e_459a_b65f, 183, 0x2a55_91f8_5c6a_9da6, 1_439_488),
        (0x2b01_22d7_396a_e800, 827, 0xeba7_b739_7fe9_f174, 6_594_838),
    ];
    assert_eq!(got, want);
}
