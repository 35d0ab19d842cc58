//! Entropy coding of whole images: bit-exact round trips, cost against the NLL, and robustness
//! against damaged payloads.

mod common;

use common::{grouped_config, noise_pixels, small_config, smooth_pixels, to_tensor, Rng};
use idfcodec_codec::engine::Shape;
use idfcodec_codec::entropy::{LatentModel, LogisticMixture, StreamStart};
use idfcodec_codec::format::crc32;
use idfcodec_codec::model::idf::flow;
use idfcodec_codec::model::idf::{decode_image, encode_image};
use idfcodec_codec::{CodecError, Idf, IdfConfig};

/// Version 2: the stream starts from the pixels' checksum.
fn v2(pixels: &[u8]) -> StreamStart {
    StreamStart::Checksum(crc32(pixels))
}

/// Codes and decodes `pixels` with the stream starting at `start(pixels)`.
fn round_trip_from(
    model: &Idf,
    pixels: &[u8],
    shape: Shape,
    start: fn(&[u8]) -> StreamStart,
) -> Vec<u8> {
    let (c, h, w) = (shape.channels, shape.height, shape.width);
    let payload = encode_image(model, pixels, c, h, w, start(pixels)).unwrap();
    let back = decode_image(model, &payload, c, h, w, start).unwrap();
    assert_eq!(back, pixels, "round trip of {shape:?}");
    payload
}

/// Round trips with both start states; returns the version-2 payload.
fn round_trip(model: &Idf, pixels: &[u8], shape: Shape) -> Vec<u8> {
    round_trip_from(model, pixels, shape, |_| StreamStart::One);
    round_trip_from(model, pixels, shape, v2)
}

#[test]
fn round_trips_are_bit_exact() {
    let mut rng = Rng::new(5);
    // (channels, levels, top groups, prior groups, height, width)
    let cases = [
        (1, 1, 1, 1, 4, 4),
        (1, 2, 1, 1, 28, 28),
        (1, 2, 4, 1, 28, 28),
        (3, 1, 1, 1, 8, 8),
        (3, 2, 1, 1, 16, 12),
        (3, 2, 3, 1, 16, 12),
        (1, 2, 4, 2, 28, 28),
        (3, 2, 2, 3, 16, 12),
        (3, 3, 1, 1, 32, 48),
    ];
    for (i, &(channels, levels, top_groups, prior_groups, height, width)) in
        cases.iter().enumerate()
    {
        let config = grouped_config(channels, levels, top_groups, prior_groups);
        let model = Idf::new_random(config, 100 + i as u64).unwrap();
        let shape = Shape::new(channels, height, width);
        for pixels in [
            noise_pixels(&mut rng, shape),
            smooth_pixels(&mut rng, shape),
        ] {
            let payload = round_trip(&model, &pixels, shape);
            let again =
                encode_image(&model, &pixels, channels, height, width, v2(&pixels)).unwrap();
            assert_eq!(payload, again, "encoding is deterministic");
        }
    }
}

#[test]
fn phased_models_round_trip() {
    let mut rng = Rng::new(6);
    // (channels, prior groups, phase levels, top phases, phase-major squeeze, height, width)
    let cases = [
        (1, 2, 1, false, false, 16, 24),
        (1, 1, 2, false, false, 16, 24),
        (3, 3, 1, false, false, 16, 24),
        (1, 2, 1, true, false, 28, 28),
        (1, 1, 0, true, false, 12, 20),
        (3, 1, 0, true, false, 4, 4),
        (3, 6, 0, true, true, 16, 24),
        (1, 2, 1, false, true, 8, 8),
    ];
    for (i, (channels, prior_groups, phase_levels, top_phases, phase_squeeze, height, width)) in
        cases.into_iter().enumerate()
    {
        let config = IdfConfig {
            phase_levels,
            top_phases,
            phase_squeeze,
            ..grouped_config(channels, 2, 2, prior_groups)
        };
        let model = Idf::new_random(config, 200 + i as u64).unwrap();
        let shape = Shape::new(channels, height, width);
        for pixels in [
            noise_pixels(&mut rng, shape),
            smooth_pixels(&mut rng, shape),
        ] {
            round_trip(&model, &pixels, shape);
        }
    }
}

#[test]
fn extreme_images_round_trip_through_escapes() {
    let model = Idf::new_random(small_config(1, 2), 3).unwrap();
    let shape = Shape::new(1, 8, 8);
    let checker: Vec<u8> = (0..64)
        .map(|i| if (i + i / 8) % 2 == 0 { 0 } else { 255 })
        .collect();
    for pixels in [vec![0u8; 64], vec![255u8; 64], checker] {
        let payload = round_trip(&model, &pixels, shape);
        // 64 pixels, many of them escaped (32 raw bits each): still far from tiny.
        assert!(payload.len() > 64, "{} bytes", payload.len());
    }
}

#[test]
fn a_reloaded_model_codes_identically() {
    let model = Idf::new_random(small_config(3, 2), 8).unwrap();
    let reloaded =
        Idf::from_safetensors(&model.to_safetensors(&serde_json::json!({})).unwrap()).unwrap();
    let shape = Shape::new(3, 8, 8);
    let pixels = smooth_pixels(&mut Rng::new(1), shape);
    let a = encode_image(&model, &pixels, 3, 8, 8, v2(&pixels)).unwrap();
    let b = encode_image(&reloaded, &pixels, 3, 8, 8, v2(&pixels)).unwrap();
    assert_eq!(a, b);
}

/// Σ ideal code lengths under the quantised tables (what the ANS coder should approach).
fn ideal_bits(model: &Idf, pixels: &[u8], shape: Shape) -> f64 {
    let latents = flow::forward(model, &to_tensor(pixels, shape)).unwrap();
    let mut bits = 0.0;
    for group in &latents.groups {
        for (i, &z) in group.values.data().iter().enumerate() {
            let mixture = LogisticMixture::new(&group.params.get(i)).unwrap();
            bits += LatentModel::new(&mixture).unwrap().cost_bits(z);
        }
    }
    bits
}

/// Coded size against the model's NLL: the quantised tables cost within 0.1% of the NLL, the
/// coder adds a constant of a few bytes, and all of it stays within 1% plus a few bytes of the
/// NLL (measured and printed). Starting from state 1 (version 1) the constant is the ANS
/// start-up (about 22.6 bits) plus byte rounding; starting from `2^32 + checksum` (version 2)
/// every push scales the state exactly, so the constant is the checksum's 32 bits plus byte
/// rounding (under 8 bits) and nothing else.
#[test]
fn coded_size_is_close_to_the_nll() {
    let cases = [
        (small_config(1, 2), Shape::new(1, 28, 28)),
        (small_config(3, 2), Shape::new(3, 16, 16)),
        (small_config(1, 1), Shape::new(1, 4, 4)),
    ];
    for (i, (config, shape)) in cases.into_iter().enumerate() {
        let model = Idf::new_random(config, 40 + i as u64).unwrap();
        for seed in 0..3 {
            let pixels = smooth_pixels(&mut Rng::new(seed), shape);
            let nll = flow::nll_bits(&model, &to_tensor(&pixels, shape)).unwrap();
            let ideal = ideal_bits(&model, &pixels, shape);
            let bits = |start| 8.0 * round_trip_from(&model, &pixels, shape, start).len() as f64;
            let (v1, v2) = (bits(|_| StreamStart::One), bits(v2));
            println!(
                "{shape:?}: nll {nll:.1} bits ({:.3} bpd), tables {ideal:.1}, coded v1 {v1} \
                 ({:+.1} bits), v2 {v2} ({:+.1} bits = 32 {:+.1})",
                nll / shape.len() as f64,
                v1 - ideal,
                v2 - ideal,
                v2 - ideal - 32.0
            );
            assert!(
                (ideal - nll).abs() <= 1e-3 * nll + 1.0,
                "tables {ideal} vs nll {nll}"
            );
            assert!(
                (-16.0..=48.0).contains(&(v1 - ideal)),
                "coded {v1} vs tables {ideal}"
            );
            assert!(
                (-1.0..=9.0).contains(&(v2 - ideal - 32.0)),
                "coded {v2} vs tables {ideal} + 32 bits of checksum"
            );
            assert!(v2 <= 1.01 * nll + 48.0, "coded {v2} vs nll {nll}");
        }
    }
}

#[test]
fn wrong_sizes_are_rejected() {
    let model = Idf::new_random(small_config(1, 2), 0).unwrap();
    assert!(matches!(
        encode_image(&model, &[0; 15], 1, 4, 4, StreamStart::One),
        Err(CodecError::InvalidImage(_))
    ));
    assert!(matches!(
        encode_image(&model, &[0; 12], 1, 2, 6, StreamStart::One),
        Err(CodecError::InvalidImage(_))
    ));
    assert!(matches!(
        encode_image(&model, &[0; 48], 3, 4, 4, StreamStart::One),
        Err(CodecError::InvalidImage(_))
    ));
    assert!(matches!(
        decode_image(&model, &[1, 0, 0, 0], 1, 6, 4, |_| StreamStart::One),
        Err(CodecError::InvalidImage(_))
    ));
}

#[test]
fn damaged_payloads_give_errors_not_panics() {
    let model = Idf::new_random(small_config(1, 2), 21).unwrap();
    let shape = Shape::new(1, 8, 8);
    let mut rng = Rng::new(77);
    let pixels = smooth_pixels(&mut rng, shape);
    for start in [
        (|_: &[u8]| StreamStart::One) as fn(&[u8]) -> StreamStart,
        v2,
    ] {
        let payload = round_trip_from(&model, &pixels, shape, start);
        let decode = |p: &[u8]| decode_image(&model, p, 1, 8, 8, start);

        let mut damaged: Vec<Vec<u8>> = vec![
            Vec::new(),
            payload[..payload.len() - 1].to_vec(),
            payload[..payload.len() - 4].to_vec(),
            payload[4..].to_vec(),
            [payload.as_slice(), &[1, 0, 0, 0]].concat(),
            [payload.as_slice(), &[0, 0, 0, 0]].concat(),
        ];
        for _ in 0..40 {
            let mut p = payload.clone();
            let bit = rng.range(0, 8 * p.len() as i64 - 1) as usize;
            p[bit / 8] ^= 1 << (bit % 8);
            damaged.push(p);
        }
        for _ in 0..100 {
            let n = 4 * rng.range(0, 40) as usize;
            damaged.push(rng.bytes(n));
        }
        let (mut errors, mut checksum_errors) = (0, 0);
        for p in &damaged {
            match decode(p) {
                Err(CodecError::CorruptPayload(_) | CodecError::NonFiniteParameters) => errors += 1,
                Err(CodecError::PixelChecksum { .. }) => checksum_errors += 1,
                Err(e) => panic!("unexpected error kind: {e}"),
                Ok(img) => assert_ne!(img, pixels, "a damaged payload decoded to the original"),
            }
        }
        println!(
            "{:?}: {errors} + {checksum_errors} (checksum) of {} damaged payloads rejected",
            start(&pixels),
            damaged.len()
        );
        assert_eq!(errors + checksum_errors, damaged.len());
        if start(&pixels) == StreamStart::One {
            assert_eq!(checksum_errors, 0);
        }
    }
}

/// A version-2 stream decoded with another checksum than it was coded with ends at the wrong
/// state, and says so.
#[test]
fn a_wrong_checksum_is_named() {
    let model = Idf::new_random(small_config(1, 2), 22).unwrap();
    let shape = Shape::new(1, 8, 8);
    let pixels = smooth_pixels(&mut Rng::new(5), shape);
    let crc = crc32(&pixels);
    let payload = encode_image(&model, &pixels, 1, 8, 8, StreamStart::Checksum(crc)).unwrap();
    let err = decode_image(&model, &payload, 1, 8, 8, |_| {
        StreamStart::Checksum(crc ^ 1)
    })
    .unwrap_err();
    assert!(
        matches!(err, CodecError::PixelChecksum { stored, computed } if stored == crc && computed == crc ^ 1),
        "{err}"
    );
    // a version-2 stream read as version 1 (and the reverse) does not end where expected
    assert!(decode_image(&model, &payload, 1, 8, 8, |_| StreamStart::One).is_err());
    let v1 = encode_image(&model, &pixels, 1, 8, 8, StreamStart::One).unwrap();
    assert!(decode_image(&model, &v1, 1, 8, 8, v2).is_err());
}

#[test]
fn garbage_on_a_hostile_model_does_not_panic() {
    // Huge weights drive garbage latents to infinities inside the networks.
    let mut config = small_config(1, 2);
    config.translation_scale = 1e30;
    let model = Idf::new_random(config, 4).unwrap();
    let mut rng = Rng::new(3);
    for _ in 0..20 {
        let n = 4 * rng.range(1, 30) as usize;
        assert!(decode_image(&model, &rng.bytes(n), 1, 8, 8, v2).is_err());
    }
    // Coding real pixels either is refused as unrepresentable or round-trips exactly.
    let pixels = noise_pixels(&mut rng, Shape::new(1, 8, 8));
    match encode_image(&model, &pixels, 1, 8, 8, v2(&pixels)) {
        Ok(payload) => assert_eq!(decode_image(&model, &payload, 1, 8, 8, v2).unwrap(), pixels),
        Err(e) => assert!(
            matches!(
                e,
                CodecError::NonFiniteParameters | CodecError::CorruptPayload(_)
            ),
            "{e}"
        ),
    }
}
