//! The flow on the engine: exact invertibility, and the NLL against an independent reference.

mod common;

use common::{grouped_config, metadata, safetensors_file, set, small_config, zero_tensors, Rng};
use idfcodec_codec::engine::{IntTensor, Shape};
use idfcodec_codec::model::idf::flow::{self, Latents};
use idfcodec_codec::{CodecError, Idf, IdfConfig};

fn random_image(rng: &mut Rng, shape: Shape, lo: i64, hi: i64) -> IntTensor {
    IntTensor::from_vec(
        shape,
        (0..shape.len()).map(|_| rng.range(lo, hi) as i32).collect(),
    )
    .unwrap()
}

fn sorted_values(latents: &Latents) -> Vec<i32> {
    let mut v: Vec<i32> = latents
        .groups
        .iter()
        .flat_map(|g| g.values.data().to_vec())
        .collect();
    v.sort_unstable();
    v
}

/// Runs the flow forward on `image`, checks the latents' shapes against `latent_shapes` and
/// their count against the image, and that the inverse gives `image` back.
fn forward_inverse(model: &Idf, image: IntTensor) -> (Vec<Shape>, Latents) {
    let shapes = flow::latent_shapes(model.config(), image.shape()).unwrap();
    let latents = flow::forward(model, &image).unwrap();
    let got: Vec<Shape> = latents.groups.iter().map(|g| g.values.shape()).collect();
    assert_eq!(got, shapes);
    assert_eq!(
        shapes.iter().map(|s| s.len()).sum::<usize>(),
        image.shape().len()
    );
    assert_eq!(flow::inverse(model, &latents).unwrap(), image);
    (shapes, latents)
}

#[test]
fn phased_factor_outs_invert_exactly() {
    // (channels, levels, top groups, prior groups, phase levels, height, width)
    let cases = [
        (1, 2, 4, 2, 1, 28, 28),
        (1, 2, 1, 1, 2, 8, 8),
        (1, 1, 1, 1, 1, 4, 8),
        (3, 1, 1, 3, 1, 4, 4),
        (3, 2, 2, 1, 1, 8, 12),
    ];
    let mut rng = Rng::new(12);
    for (i, &(channels, levels, top_groups, prior_groups, phase_levels, height, width)) in
        cases.iter().enumerate()
    {
        let config = IdfConfig {
            phase_levels,
            ..grouped_config(channels, levels, top_groups, prior_groups)
        };
        config.validate().unwrap();
        let model = Idf::new_random(config.clone(), 40 + i as u64).unwrap();
        let shape = Shape::new(channels, height, width);
        let (shapes, _) = forward_inverse(&model, random_image(&mut rng, shape, 0, 255));
        // a phased level: 4·P groups at a quarter of the level's plane
        assert_eq!(config.level_groups(0), 4 * prior_groups);
        assert_eq!(shapes[0].height, height / 4, "{shapes:?}");
        assert_eq!(
            shapes.len(),
            (0..levels).map(|l| config.level_groups(l)).sum::<usize>() + top_groups
        );
    }
    // a phased level halves once more: the image must be divisible by 2^(phase_levels + 1)
    let config = IdfConfig {
        phase_levels: 2,
        ..grouped_config(1, 2, 1, 1)
    };
    assert_eq!(config.size_multiple(), 8);
    let model = Idf::new_random(config, 1).unwrap();
    assert!(flow::forward(&model, &IntTensor::zeros(Shape::new(1, 4, 4))).is_err());
}

#[test]
fn top_phases_invert_exactly_at_odd_and_tiny_sizes() {
    // (channels, levels, top groups, prior groups, phase levels, height, width): tops of 7×7,
    // 1×1 (three empty phases), 3×5 and 2×3
    let cases = [
        (1, 2, 4, 2, 1, 28, 28),
        (1, 2, 1, 1, 0, 4, 4),
        (1, 2, 2, 1, 0, 12, 20),
        (3, 1, 3, 1, 0, 4, 6),
    ];
    let mut rng = Rng::new(13);
    for (i, &(channels, levels, top_groups, prior_groups, phase_levels, height, width)) in
        cases.iter().enumerate()
    {
        let config = IdfConfig {
            phase_levels,
            top_phases: true,
            ..grouped_config(channels, levels, top_groups, prior_groups)
        };
        config.validate().unwrap();
        let model = Idf::new_random(config.clone(), 60 + i as u64).unwrap();
        let shape = Shape::new(channels, height, width);
        let (_, latents) = forward_inverse(&model, random_image(&mut rng, shape, 0, 255));
        // the later phases are conditioned on the earlier ones: changing a phase-0 latent of
        // the first top group changes the prior of its phase 3 (when phase 3 is not empty)
        let (top_h, top_w) = (height >> levels, width >> levels);
        if top_h >= 2 && top_w >= 2 {
            let n = latents.groups.len();
            // emission order: ..., group 0's phases 3, 2, 1, 0
            let phase3 = &latents.groups[n - 4];
            let mut changed = latents.clone();
            let first = changed.groups[n - 1].values.data()[0];
            let mut data = changed.groups[n - 1].values.data().to_vec();
            data[0] = first + 37;
            changed.groups[n - 1].values =
                IntTensor::from_vec(changed.groups[n - 1].values.shape(), data).unwrap();
            let image2 = flow::inverse(&model, &changed).unwrap();
            let again = flow::forward(&model, &image2).unwrap();
            assert_ne!(again.groups[n - 4].params, phase3.params, "case {i}");
        }
    }
}

#[test]
fn forward_then_inverse_is_exact() {
    // (channels, levels, top groups, prior groups, height, width)
    let cases = [
        (1, 1, 1, 1, 4, 4),
        (1, 2, 1, 1, 28, 28),
        (1, 2, 4, 1, 28, 28),
        (3, 1, 1, 1, 4, 4),
        (3, 1, 3, 1, 4, 4),
        (3, 2, 1, 1, 8, 12),
        (3, 2, 6, 1, 8, 12),
        (3, 3, 1, 1, 32, 48),
        (1, 3, 2, 1, 16, 8),
        (1, 2, 4, 2, 28, 28),
        (3, 2, 2, 3, 8, 12),
        (3, 3, 1, 6, 32, 16),
    ];
    let mut rng = Rng::new(11);
    for (i, &(channels, levels, top_groups, prior_groups, height, width)) in
        cases.iter().enumerate()
    {
        let config = grouped_config(channels, levels, top_groups, prior_groups);
        let model = Idf::new_random(config, i as u64).unwrap();
        let shape = Shape::new(channels, height, width);
        for (lo, hi) in [(0, 255), (-100_000, 100_000)] {
            let image = random_image(&mut rng, shape, lo, hi);
            let latents = flow::forward(&model, &image).unwrap();
            let shapes = flow::latent_shapes(model.config(), shape).unwrap();
            let got: Vec<Shape> = latents.groups.iter().map(|g| g.values.shape()).collect();
            assert_eq!(got, shapes);
            let total: usize = shapes.iter().map(|s| s.len()).sum();
            assert_eq!(
                total,
                shape.len(),
                "latents hold as many values as the image"
            );
            let mut pixels: Vec<i32> = image.data().to_vec();
            pixels.sort_unstable();
            assert_ne!(
                sorted_values(&latents),
                pixels,
                "the flow translates: {channels}ch {levels}L"
            );
            assert_eq!(
                flow::inverse(&model, &latents).unwrap(),
                image,
                "{channels}ch {levels}L {height}×{width}"
            );
        }
    }
}

#[test]
fn translations_are_a_few_units() {
    let model = Idf::new_random(small_config(1, 2), 5).unwrap();
    let shape = Shape::new(1, 28, 28);
    let image = random_image(&mut Rng::new(2), shape, 0, 255);
    let latents = flow::forward(&model, &image).unwrap();
    // Against the same image through a flow whose translations are zero (a permutation only).
    let mut identity_config = small_config(1, 2);
    identity_config.translation_scale = 1e-9;
    let identity = Idf::new_random(identity_config, 5).unwrap();
    let plain = flow::forward(&identity, &image).unwrap();
    let diffs: Vec<i64> = latents
        .groups
        .iter()
        .zip(&plain.groups)
        .flat_map(|(a, b)| {
            a.values
                .data()
                .iter()
                .zip(b.values.data())
                .map(|(&x, &y)| i64::from(x - y).abs())
        })
        .collect();
    let mean = diffs.iter().sum::<i64>() as f64 / diffs.len() as f64;
    assert!(
        (0.5..=30.0).contains(&mean),
        "mean |translation| effect {mean}"
    );
}

#[test]
fn dimensions_must_fit_the_model() {
    let model = Idf::new_random(small_config(1, 2), 0).unwrap();
    for shape in [
        Shape::new(1, 6, 8),
        Shape::new(1, 8, 2),
        Shape::new(3, 8, 8),
        Shape::new(1, 0, 4),
    ] {
        let image = IntTensor::zeros(shape);
        assert!(
            matches!(
                flow::forward(&model, &image),
                Err(CodecError::InvalidImage(_))
            ),
            "{shape:?}"
        );
    }
}

// ---- NLL against a hand-set model and an independent, straightforward computation ----

/// The hand-set model: 1 level, 1 coupling, hidden 1, no blocks, 2 mixture components. Only centre
/// taps are nonzero, so every network acts per pixel:
/// - coupling: `t_o = rhe(128·(w_o·relu(norm(a0)) + b_o))`
/// - prior: `h = relu(0.5·norm(rest0) + 0.25·norm(rest1))`, `raw_r = B[r] + W[r]·h`
const COUPLING_W: [f32; 2] = [0.5, -0.75];
const COUPLING_B: [f32; 2] = [0.0, 3.0 / 128.0];
/// Per latent channel, six raw channels: logits 0..2, means 2..4, log-scales 4..6.
const PRIOR_W: [[f32; 6]; 2] = [
    [0.0, 1.0, 0.25, -0.1, 0.0, 0.5],
    [0.5, 0.0, 0.1, 0.3, 0.2, 0.0],
];
const PRIOR_B: [[f32; 6]; 2] = [
    [0.3, -0.2, 0.01, 0.05, -1.0, 0.5],
    [0.0, 0.1, -0.02, 0.0, 0.0, -0.5],
];
const TOP: [[f32; 6]; 2] = [
    [0.1, -0.1, 0.05, -0.1, 0.5, 1.0],
    [0.0, 0.0, 0.0, 0.2, -0.5, 0.3],
];

fn hand_config() -> IdfConfig {
    IdfConfig {
        in_channels: 1,
        levels: 1,
        couplings: 1,
        hidden: 1,
        blocks: 0,
        mixtures: 2,
        translation_scale: 128.0,
        top_groups: 1,
        prior_groups: 1,
        phase_levels: 0,
        top_phases: false,
        phase_squeeze: false,
        prior_skip: false,
    }
}

fn hand_model() -> Idf {
    let config = hand_config();
    let mut t = zero_tensors(&config);
    set(&mut t, "level0.coupling0.conv_in.weight", 4, 1.0); // [0][0][1][1]
    for o in 0..2 {
        set(
            &mut t,
            "level0.coupling0.conv_out.weight",
            o * 9 + 4,
            COUPLING_W[o],
        );
        set(&mut t, "level0.coupling0.conv_out.bias", o, COUPLING_B[o]);
    }
    set(&mut t, "level0.prior.conv_in.weight", 4, 0.5); // [0][0][1][1]
    set(&mut t, "level0.prior.conv_in.weight", 13, 0.25); // [0][1][1][1]
    for c in 0..2 {
        for r in 0..6 {
            set(
                &mut t,
                "level0.prior.conv_out.weight",
                (c * 6 + r) * 9 + 4,
                PRIOR_W[c][r],
            );
            set(
                &mut t,
                "level0.prior.conv_out.bias",
                c * 6 + r,
                PRIOR_B[c][r],
            );
            set(&mut t, "top.params", c * 6 + r, TOP[c][r]);
        }
    }
    Idf::from_safetensors(&safetensors_file(&metadata(&config), &t)).unwrap()
}

/// `−log2 P(z)` of a discretized logistic mixture, straight from the formula in `arch.rs`.
fn reference_nll(z: i64, raw: &[f64; 6]) -> f64 {
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    let (l0, l1) = (raw[0], raw[1]);
    let weights = [
        l0.exp() / (l0.exp() + l1.exp()),
        l1.exp() / (l0.exp() + l1.exp()),
    ];
    let mut p = 0.0;
    for j in 0..2 {
        let mean = 128.0 + 128.0 * raw[2 + j];
        let s = (raw[4 + j] + 2.0).clamp(-4.0, 9.0).exp();
        let z = z as f64;
        p += weights[j] * (sigmoid((z + 0.5 - mean) / s) - sigmoid((z - 0.5 - mean) / s));
    }
    -p.log2()
}

fn round_half_even(v: f64) -> i64 {
    let f = v.floor();
    let d = v - f;
    if d > 0.5 || (d == 0.5 && f % 2.0 != 0.0) {
        f as i64 + 1
    } else {
        f as i64
    }
}

/// The NLL of a 1×H×W image under [`hand_model`], computed without the engine.
fn reference_image_nll(img: &[i64], height: usize, width: usize) -> f64 {
    let norm = |v: i64| (v - 128) as f64 / 128.0;
    let mut bits = 0.0;
    for y in 0..height / 2 {
        for x in 0..width / 2 {
            // squeeze: z[dy*2+dx] = img[2y+dy][2x+dx]
            let z: Vec<i64> = (0..4)
                .map(|k| img[(2 * y + k / 2) * width + 2 * x + k % 2])
                .collect();
            let h = norm(z[0]).max(0.0);
            let t: Vec<i64> = (0..2)
                .map(|o| {
                    round_half_even(
                        128.0 * (f64::from(COUPLING_W[o]) * h + f64::from(COUPLING_B[o])),
                    )
                })
                .collect();
            // concat(a, b + t) reversed, then split in half.
            let coupled = [z[0], z[1], z[2] + t[0], z[3] + t[1]];
            let out = [coupled[3], coupled[2]];
            let rest = [coupled[1], coupled[0]];
            let hp = (0.5 * norm(rest[0]) + 0.25 * norm(rest[1])).max(0.0);
            for c in 0..2 {
                let raw: [f64; 6] = std::array::from_fn(|r| {
                    f64::from(PRIOR_B[c][r]) + f64::from(PRIOR_W[c][r]) * hp
                });
                bits += reference_nll(out[c], &raw);
                let top: [f64; 6] = std::array::from_fn(|r| f64::from(TOP[c][r]));
                bits += reference_nll(rest[c], &top);
            }
        }
    }
    bits
}

#[test]
fn nll_matches_an_independent_computation() {
    let model = hand_model();
    let mut rng = Rng::new(99);
    for (height, width) in [(2, 2), (4, 4), (6, 10)] {
        for _ in 0..5 {
            let img: Vec<i64> = (0..height * width).map(|_| rng.range(0, 255)).collect();
            let tensor = IntTensor::from_vec(
                Shape::new(1, height, width),
                img.iter().map(|&v| v as i32).collect(),
            )
            .unwrap();
            let got = flow::nll_bits(&model, &tensor).unwrap();
            let want = reference_image_nll(&img, height, width);
            assert!(
                (got - want).abs() < 1e-6 * want.abs() + 1e-3,
                "{height}×{width}: engine {got} vs reference {want}"
            );
            let latents = flow::forward(&model, &tensor).unwrap();
            assert_eq!(flow::inverse(&model, &latents).unwrap(), tensor);
        }
    }
}
