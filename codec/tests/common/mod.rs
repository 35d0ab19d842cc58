//! Helpers shared by the codec's integration tests.
#![allow(dead_code)]

use idfcodec_codec::engine::{IntTensor, Shape};
use idfcodec_codec::entropy::StreamStart;
use idfcodec_codec::model::idf::flow;
use idfcodec_codec::model::idf::{decode_image, encode_image};
use idfcodec_codec::{Idf, IdfConfig};

/// A tiny deterministic generator (xorshift64*), so tests need no extra crates.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// A small config for fast debug-mode tests.
pub fn small_config(in_channels: usize, levels: usize) -> IdfConfig {
    IdfConfig {
        in_channels,
        levels,
        couplings: 2,
        hidden: 8,
        blocks: 1,
        mixtures: 3,
        ..IdfConfig::default()
    }
}

/// Uniformly random pixels `0..=255`.
/// [`small_config`] with the top latent and every factor-out in conditional groups.
pub fn grouped_config(
    in_channels: usize,
    levels: usize,
    top_groups: usize,
    prior_groups: usize,
) -> IdfConfig {
    IdfConfig {
        top_groups,
        prior_groups,
        ..small_config(in_channels, levels)
    }
}

pub fn noise_pixels(rng: &mut Rng, shape: Shape) -> Vec<u8> {
    (0..shape.len()).map(|_| rng.range(0, 255) as u8).collect()
}

/// A smooth pattern around mid-grey with a little noise: typical of what a (random) prior that
/// centres on 128 with scale ≈ 7 expects, so few latents escape.
pub fn smooth_pixels(rng: &mut Rng, shape: Shape) -> Vec<u8> {
    let mut v = Vec::with_capacity(shape.len());
    for c in 0..shape.channels {
        for y in 0..shape.height {
            for x in 0..shape.width {
                let wave =
                    25.0 * ((x as f64 + 3.0 * c as f64) / 5.0).sin() * (y as f64 / 7.0).cos();
                v.push((128.0 + wave).round() as i64 + rng.range(-3, 3));
            }
        }
    }
    v.into_iter().map(|p| p.clamp(0, 255) as u8).collect()
}

pub fn to_tensor(pixels: &[u8], shape: Shape) -> IntTensor {
    IntTensor::from_vec(shape, pixels.iter().map(|&p| i32::from(p)).collect()).unwrap()
}

/// One tensor of a hand-built safetensors file.
#[derive(Clone, Debug)]
pub struct RawTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: safetensors::Dtype,
    pub bytes: Vec<u8>,
}

impl RawTensor {
    pub fn f32(name: &str, shape: Vec<usize>, values: &[f32]) -> Self {
        RawTensor {
            name: name.to_string(),
            shape,
            dtype: safetensors::Dtype::F32,
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

/// Zero tensors for every spec of `config`, in spec order.
pub fn zero_tensors(config: &IdfConfig) -> Vec<RawTensor> {
    config
        .tensor_specs()
        .into_iter()
        .map(|s| {
            let n: usize = s.shape.iter().product();
            RawTensor::f32(&s.name, s.shape, &vec![0.0; n])
        })
        .collect()
}

/// Sets `tensors[name][index] = value` (an `F32` tensor).
pub fn set(tensors: &mut [RawTensor], name: &str, index: usize, value: f32) {
    let t = tensors
        .iter_mut()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tensor {name}"));
    t.bytes[4 * index..4 * index + 4].copy_from_slice(&value.to_le_bytes());
}

/// A safetensors file with the given metadata entries and tensors.
pub fn safetensors_file(metadata: &[(&str, String)], tensors: &[RawTensor]) -> Vec<u8> {
    let views: Vec<_> = tensors
        .iter()
        .map(|t| {
            let v =
                safetensors::tensor::TensorView::new(t.dtype, t.shape.clone(), &t.bytes).unwrap();
            (t.name.clone(), v)
        })
        .collect();
    let meta = metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    safetensors::serialize(views, &Some(meta)).unwrap()
}

/// The usual metadata for `config` with a small card.
pub fn metadata(config: &IdfConfig) -> Vec<(&'static str, String)> {
    vec![
        ("idfcodec.arch", serde_json::to_string(config).unwrap()),
        ("idfcodec.card", r#"{"note":"test"}"#.to_string()),
    ]
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The fixed cases of [`fingerprint`]: (model config, height, width).
pub fn fingerprint_cases() -> [(IdfConfig, usize, usize); 4] {
    [
        (small_config(1, 2), 16, 16),
        (small_config(3, 3), 16, 24),
        // conditional groups, level 0 coded by pixel phase
        (
            IdfConfig {
                phase_levels: 1,
                ..grouped_config(1, 2, 4, 2)
            },
            16,
            24,
        ),
        // the photo model's architecture: RGB, phase-major squeezes, prior skips, top phases
        (
            IdfConfig {
                phase_squeeze: true,
                prior_skip: true,
                top_phases: true,
                ..grouped_config(3, 2, 2, 6)
            },
            16,
            24,
        ),
    ]
}

/// What [`fingerprint`] gave for [`fingerprint_cases`] when it was recorded: every platform,
/// thread count, CPU feature set and build must reproduce it (`determinism.rs`,
/// `portable_kernels.rs`).
pub const FROZEN_FINGERPRINTS: [(u64, usize, u64, i64); 4] = [
    (0x8809_cd9e_459a_b65f, 183, 0x2a55_91f8_5c6a_9da6, 1_439_488),
    (0x2b01_22d7_396a_e800, 827, 0xeba7_b739_7fe9_f174, 6_594_838),
    (0x7276_2b45_f588_fe2d, 272, 0x9e1f_9b4d_f45b_f60e, 2_150_692),
    (0x71c1_bb7a_b7d3_c315, 828, 0x0a02_16bf_810e_f81b, 6_603_484),
];

/// Every case of [`fingerprint_cases`] fingerprinted.
pub fn fingerprints() -> Vec<(u64, usize, u64, i64)> {
    fingerprint_cases()
        .into_iter()
        .map(|(config, height, width)| fingerprint(config, height, width))
        .collect()
}

/// (model id, payload length, payload hash, NLL in millibits) for a fixed case.
pub fn fingerprint(config: IdfConfig, height: usize, width: usize) -> (u64, usize, u64, i64) {
    let channels = config.in_channels;
    let model = Idf::new_random(config, 12_345).unwrap();
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
    let image = to_tensor(&pixels, shape);
    let nll = flow::nll_bits(&model, &image).unwrap();
    (
        model.id(),
        payload.len(),
        fnv1a(&payload),
        (nll * 1e3).round() as i64,
    )
}
