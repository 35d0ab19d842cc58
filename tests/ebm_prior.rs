//! The energy-based prior (`family = "ebm-prior"`): its numerics against closed forms — the
//! log Z estimator recovers a Gaussian integral and its spread shrinks as 1/√samples, MALA
//! keeps a 2-D Gaussian invariant, the KL from the tilted prior is the Gaussian KL for a
//! quadratic energy —, the tilted prior with λ = 0 is the plain VAE's NLL and KL, a
//! critic trained a few steps gives data lower energy than noise, configs are checked, resume
//! is bit-identical, and `sample --sampler mala`, `metrics nll` and `metrics logz` run through
//! the binary.
#![cfg(feature = "train")]

mod common;
mod generative_common;

use generative_common::{assert_resume_is_bit_identical, config, job, lock, small_data};
use idfcodec::nn::dist::kl_standard_normal;
use idfcodec::nn::ebm_prior::math::{
    log_partition, mala, tilted_kl, LogMeanExp, LogZOptions, MalaOptions,
};
use idfcodec::nn::ebm_prior::{self, EbmPrior};
use idfcodec::nn::vae::Vae;
use idfcodec::train::{self, checkpoint, config::TrainConfig};
use tch::{nn, Device, Kind, Tensor};

/// A tiny ebm-prior model's `[model]` lines (Gaussian VAE, fixed log_std) with `extra` added
/// before the sub-tables.
fn tiny(extra: &str) -> String {
    format!(
        "family = \"ebm-prior\"\npull_back_energy_weight = 1.0\n{extra}\n\
         [model.vae]\narch = \"mlp\"\nlatent = 4\nhidden = 16\nlikelihood = \"gaussian\"\n\
         log_std = -1.0\n[model.critic]\ncritic_width = 16\nn_critic = 2\n"
    )
}

/// `log N`-quadratic weights: `log w(z) = offset − a‖z‖²/2`, whose mean under `N(0, I_d)` is
/// `exp(offset) (1 + a)^{−d/2}`.
fn quadratic(a: f64, offset: f64) -> impl Fn(&Tensor) -> Tensor {
    move |z: &Tensor| z.square().sum_dim_intlist(-1, false, Kind::Float) * (-a / 2.0) + offset
}

#[test]
fn log_mean_exp_is_stable_and_batch_independent() {
    let _rng = lock();
    tch::manual_seed(1);
    let v = Tensor::randn([1000], (Kind::Double, Device::Cpu)) * 30.0 + 5000.0;
    let direct = v.logsumexp([0], false).double_value(&[]) - 1000f64.ln();
    let mut acc = LogMeanExp::new();
    for chunk in v.split(137, 0) {
        acc.push(&chunk);
    }
    assert_eq!(acc.count(), 1000);
    assert!(
        (acc.value() - direct).abs() < 1e-9,
        "{} {direct}",
        acc.value()
    );
    // −∞ weights count as samples of weight 0; all −∞ gives −∞; nothing pushed is NaN
    let mut acc = LogMeanExp::new();
    acc.push(&Tensor::from_slice(&[f64::NEG_INFINITY, 0.0]));
    assert!((acc.value() - 0.5f64.ln()).abs() < 1e-12);
    let mut acc = LogMeanExp::new();
    acc.push(&Tensor::from_slice(&[f64::NEG_INFINITY]));
    assert_eq!(acc.value(), f64::NEG_INFINITY);
    assert!(LogMeanExp::new().value().is_nan());
}

#[test]
fn log_z_of_a_quadratic_energy_matches_its_closed_form() {
    let _rng = lock();
    let (a, d) = (0.5f64, 3);
    // a large offset: the estimator must not overflow (exp(800) does in f64)
    for offset in [0.0, 800.0] {
        let exact = offset - d as f64 / 2.0 * (1.0 + a).ln();
        tch::manual_seed(2);
        let options = LogZOptions {
            latent: d,
            samples: 20_000,
            repeats: 10,
            batch: 3_000,
        };
        let mut calls = 0;
        let est = log_partition(&quadratic(a, offset), options, Device::Cpu, &mut |done| {
            calls += 1;
            assert!(done <= 200_000);
        });
        assert_eq!(calls, 10 * 7, "7 batches (6 × 3000 + 2000) per repeat");
        assert_eq!(est.repeats.len(), 10);
        // the error of the mean of 10 repeats is std/√10; allow 4 of those (and f32 rounding)
        let tolerance = 4.0 * est.std() / 10f64.sqrt() + 1e-4 * offset.abs().max(1.0);
        assert!(
            (est.mean() - exact).abs() < tolerance,
            "offset {offset}: {} vs exact {exact} (std {})",
            est.mean(),
            est.std()
        );
        assert!(est.min() <= est.mean() && est.mean() <= est.max());
    }
}

#[test]
fn log_z_spread_shrinks_as_one_over_root_samples() {
    let _rng = lock();
    let (a, d) = (0.5f64, 3);
    // delta method: std(log Ẑ) ≈ √((E[w²]/E[w]² − 1) / S), with E[w²] = (1 + 2a)^{−d/2}
    let relative_variance =
        (1.0 + 2.0 * a).powf(-(d as f64) / 2.0) / (1.0 + a).powf(-(d as f64)) - 1.0;
    let spread = |samples: u64| {
        tch::manual_seed(3);
        let options = LogZOptions {
            latent: d,
            samples,
            repeats: 40,
            batch: 4_000,
        };
        log_partition(&quadratic(a, 0.0), options, Device::Cpu, &mut |_| {}).std()
    };
    let (small, large) = (spread(500), spread(8_000));
    for (s, std) in [(500f64, small), (8_000f64, large)] {
        let predicted = (relative_variance / s).sqrt();
        assert!(
            (std / predicted - 1.0).abs() < 0.35,
            "{s} samples: std {std}, predicted {predicted}"
        );
    }
    // 16 × the samples: a quarter of the spread
    let ratio = small / large;
    assert!((2.8..5.6).contains(&ratio), "ratio {ratio}");
}

/// The 2-D Gaussian target of the MALA tests: mean, covariance, its Cholesky factor.
const MEAN: [f64; 2] = [1.0, -1.0];
const COV: [[f64; 2]; 2] = [[1.0, 0.6], [0.6, 2.0]];

fn gaussian_log_density(z: &Tensor) -> Tensor {
    let det = COV[0][0] * COV[1][1] - COV[0][1] * COV[1][0];
    let inv = Tensor::from_slice(&[
        (COV[1][1] / det) as f32,
        (-COV[0][1] / det) as f32,
        (-COV[1][0] / det) as f32,
        (COV[0][0] / det) as f32,
    ])
    .reshape([2, 2]);
    let d = z - Tensor::from_slice(&MEAN.map(|m| m as f32));
    (d.matmul(&inv) * &d).sum_dim_intlist(-1, false, Kind::Float) * -0.5
}

fn exact_samples(n: i64) -> Tensor {
    let l10 = COV[1][0] / COV[0][0].sqrt();
    let l = Tensor::from_slice(&[
        COV[0][0].sqrt() as f32,
        0.0,
        l10 as f32,
        (COV[1][1] - l10 * l10).sqrt() as f32,
    ])
    .reshape([2, 2]);
    Tensor::randn([n, 2], (Kind::Float, Device::Cpu)).matmul(&l.tr())
        + Tensor::from_slice(&MEAN.map(|m| m as f32))
}

/// Mean and covariance (`[c00, c01, c11]`) of chains `z` (`N×2`).
fn moments(z: &Tensor) -> ([f64; 2], [f64; 3]) {
    let z = z.to_kind(Kind::Double);
    let m = z.mean_dim(0, false, Kind::Double);
    let c = (&z - &m).tr().matmul(&(&z - &m)) / (z.size()[0] - 1) as f64;
    (
        [m.double_value(&[0]), m.double_value(&[1])],
        [
            c.double_value(&[0, 0]),
            c.double_value(&[0, 1]),
            c.double_value(&[1, 1]),
        ],
    )
}

fn assert_target_moments(z: &Tensor, what: &str) {
    let (m, c) = moments(z);
    for (got, want) in m.iter().zip(MEAN) {
        assert!((got - want).abs() < 0.1, "{what}: mean {m:?}");
    }
    for (got, want) in c.iter().zip([COV[0][0], COV[0][1], COV[1][1]]) {
        assert!(
            (got - want).abs() < 0.15 * want.abs().max(1.0),
            "{what}: cov {c:?}"
        );
    }
}

#[test]
fn mala_keeps_a_2d_gaussian_invariant_and_reaches_it() {
    let _rng = lock();
    tch::manual_seed(4);
    let chains = 4000;
    // started at exact samples, the chains stay distributed as the target
    let start = exact_samples(chains);
    assert_target_moments(&start, "start");
    let mut last = 0;
    let r = mala(
        &start,
        &gaussian_log_density,
        MalaOptions {
            step_size: 0.3,
            steps: 40,
        },
        &mut |s| last = s,
    );
    assert_eq!(last, 40);
    assert_eq!(r.z.size(), [chains, 2]);
    assert_target_moments(&r.z, "after 40 steps from the target");
    assert!(
        (0.5..0.99).contains(&r.acceptance),
        "acceptance {}",
        r.acceptance
    );
    // started at one point far away, they reach it
    let far = Tensor::full([chains, 2], 4.0, (Kind::Float, Device::Cpu));
    let r = mala(
        &far,
        &gaussian_log_density,
        MalaOptions {
            step_size: 0.3,
            steps: 300,
        },
        &mut |_| {},
    );
    assert_target_moments(&r.z, "after 300 steps from (4, 4)");
    // smaller steps are accepted more often; a huge step is mostly rejected
    let rate = |step_size: f64| {
        mala(
            &exact_samples(500),
            &gaussian_log_density,
            MalaOptions {
                step_size,
                steps: 10,
            },
            &mut |_| {},
        )
        .acceptance
    };
    let (small, large) = (rate(0.01), rate(20.0));
    assert!(small > 0.95 && large < 0.2, "{small} {large}");
}

#[test]
fn kl_from_a_quadratically_tilted_prior_matches_the_gaussian_kl() {
    let _rng = lock();
    // t(z) = offset − a‖z‖²/2: p(z) ∝ N(z; 0, I)·exp(t) is N(0, s² I), s² = 1/(1 + a),
    // log Z = offset − (d/2) log(1 + a)
    let (a, d) = (0.5f64, 3);
    let s2 = 1.0 / (1.0 + a);
    let mu = Tensor::from_slice(&[0.3f32, -1.0, 2.0, 0.0, 0.5, -0.2]).reshape([2, 3]);
    let logvar = Tensor::from_slice(&[0.0f32, -1.0, 0.5, -3.0, 1.0, 0.2]).reshape([2, 3]);
    // KL(N(μ, σ²) ‖ N(0, s²)) = Σ ½ (log(s²/σ²) + (σ² + μ²)/s² − 1)
    let exact: Vec<f64> = (0..2)
        .map(|row| {
            (0..d)
                .map(|i| {
                    let m = mu.double_value(&[row, i]);
                    let lv = logvar.double_value(&[row, i]);
                    0.5 * (s2.ln() - lv + (lv.exp() + m * m) / s2 - 1.0)
                })
                .sum()
        })
        .collect();
    for offset in [0.0, 50.0] {
        let log_z = offset - d as f64 / 2.0 * (1.0 + a).ln();
        tch::manual_seed(4);
        let kl = tilted_kl(&mu, &logvar, &quadratic(a, offset), 20_000, log_z);
        let closed = kl_standard_normal(&mu, &logvar);
        assert!((&kl.standard - &closed).abs().max().double_value(&[]) < 1e-6);
        for (row, want) in exact.iter().enumerate() {
            let got = kl.kl.double_value(&[row as i64]);
            // E_q[t] from 20 000 draws: its error is about 0.01 nats here
            assert!(
                (got - want).abs() < 0.05,
                "offset {offset}, row {row}: {got} vs {want}"
            );
            let parts = kl.standard.double_value(&[row as i64])
                - kl.mean_tilt.double_value(&[row as i64])
                + log_z;
            assert!((got - parts).abs() < 1e-3 * (1.0 + offset));
        }
    }
    // no tilt: the KL from N(0, I), exactly
    let kl = tilted_kl(&mu, &logvar, &quadratic(0.0, 0.0), 3, 0.0);
    assert_eq!(
        kl.kl.to_kind(Kind::Double).double_value(&[0]),
        kl_standard_normal(&mu, &logvar).double_value(&[0])
    );
}

/// Trains `c` on `train` fixed MNIST images; returns the run folder.
fn trained(c: &TrainConfig, images: i64) -> tempfile::TempDir {
    let data = small_data(c, images, 16);
    let dir = tempfile::tempdir().unwrap();
    train::run(&job(c, dir.path(), false), &data).unwrap();
    dir
}

#[test]
fn with_lambda_zero_the_nll_is_the_plain_vaes() {
    let _rng = lock();
    let c = config(&tiny(""), 4);
    let run = trained(&c, 32);
    let x = small_data(&c, 32, 8).test.to_kind(Kind::Float);
    let (ebm, _) = ebm_prior::load_run(run.path(), Some(0.0), Device::Cpu).unwrap();
    let logz = |model: &EbmPrior| {
        let options = LogZOptions {
            latent: 4,
            samples: 2_000,
            repeats: 2,
            batch: 500,
        };
        log_partition(&|z| model.log_tilt(z), options, Device::Cpu, &mut |_| {})
    };
    let est = logz(&ebm);
    assert_eq!(est.repeats, vec![0.0, 0.0], "λ = 0: every weight is 1");
    tch::manual_seed(9);
    let tilted = tch::no_grad(|| ebm.log_likelihood(&x, 16, est.mean()));
    // the same encoder and decoder as a plain VAE (the checkpoint's critic left out)
    let ec = c.model.of::<EbmPrior>().unwrap();
    let mut vs = nn::VarStore::new(Device::Cpu);
    let vae = Vae::new(&vs.root(), &ec.vae);
    checkpoint::load(run.path(), &mut vs, None).unwrap();
    assert!(vae.critic().is_none());
    tch::manual_seed(9);
    let plain = tch::no_grad(|| vae.iwae(&x, 16));
    let diff = (&tilted - &plain).abs().max().double_value(&[]);
    assert!(diff < 1e-4, "λ = 0 differs from the VAE by {diff} nats");
    // and its KL from the tilted prior is the VAE's KL from N(0, I)
    let kl = tch::no_grad(|| ebm.tilted_kl(&x, 4, est.mean()));
    let (mu, logvar) = tch::no_grad(|| vae.encode(&x));
    let plain_kl = kl_standard_normal(&mu, &logvar);
    assert!((&kl.kl - &plain_kl).abs().max().double_value(&[]) < 1e-5);
    assert_eq!(kl.mean_tilt.abs().max().double_value(&[]), 0.0);
    // with λ ≠ 0 the tilt and log Z move it
    let (ebm, _) = ebm_prior::load_run(run.path(), Some(3.0), Device::Cpu).unwrap();
    let est = logz(&ebm);
    assert!(est.mean().is_finite() && est.mean() != 0.0);
    tch::manual_seed(9);
    let moved = tch::no_grad(|| ebm.log_likelihood(&x, 16, est.mean()));
    assert!((&moved - &plain).abs().max().double_value(&[]) > 1e-3);
}

#[test]
fn a_trained_critic_gives_data_lower_energy_than_noise() {
    let _rng = lock();
    let c = config(&tiny(""), 80);
    let run = trained(&c, 256);
    let (ebm, _) = ebm_prior::load_run(run.path(), None, Device::Cpu).unwrap();
    let data = small_data(&c, 32, 200).test.to_kind(Kind::Float);
    tch::manual_seed(10);
    let noise = Tensor::rand([200, 1, 28, 28], (Kind::Float, Device::Cpu)) * 255.0;
    let (e_data, e_noise) = tch::no_grad(|| (ebm.energy(&data), ebm.energy(&noise)));
    // every data image below the median noise energy, most below the lowest
    let median_noise = e_noise.median().double_value(&[]);
    let below = e_data
        .lt(median_noise)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[]);
    assert!(
        below > 0.95,
        "{below} of the data below the noise's median energy"
    );
    let min_noise = e_noise.min().double_value(&[]);
    let below_all = e_data
        .lt(min_noise)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[]);
    assert!(
        below_all > 0.8,
        "{below_all} of the data below every noise energy"
    );
}

#[test]
fn configs_are_checked_and_resume_is_bit_identical() {
    let _rng = lock();
    for (bad, says) in [
        (
            "[model.vae.adversarial]\nweight = 0.1\n".to_string(),
            "model.critic",
        ),
        // TOML's nan reaches serde as null: refused, if not by name
        ("pull_back_energy_weight = nan\n".to_string(), "f64"),
        (
            "[model.critic]\nn_critic = 0\n".to_string(),
            "model.critic.critic_width and n_critic",
        ),
        ("unknown_field = 1\n".to_string(), "unknown"),
    ] {
        let text = format!(
            "version = 2\n[model]\nfamily = \"ebm-prior\"\n{bad}[data]\ndataset = \"mnist\"\n"
        );
        let err = TrainConfig::from_toml(&text)
            .and_then(|c| c.validate().map(|_| c))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{bad}: {err}");
    }
    let c = config(&tiny(""), 6);
    // the critic is the model's own parameter group, trained with the VAE
    let (vs, _) = train::build_model::<EbmPrior>(&c, Device::Cpu).unwrap();
    assert!(vs.variables().keys().any(|k| k.starts_with("critic.")));
    let data = small_data(&c, 32, 16);
    assert_resume_is_bit_identical(&c, &data);
    // and with the energy in the VAE's objective
    let c = config(
        &tiny("").replace("n_critic = 2", "n_critic = 2\nweight = 0.5"),
        6,
    );
    assert_resume_is_bit_identical(&c, &data);
}

#[path = "cli_common/mod.rs"]
mod cli;

#[test]
fn the_cli_samples_with_mala_and_reports_nll_and_log_z() {
    let run = {
        let _rng = lock();
        let c = config(&tiny(""), 3);
        trained(&c, 32)
    };
    let r = run.path().to_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let path = |name: &str| out.path().join(name).to_str().unwrap().to_string();
    let said = cli::ok(&[
        "sample",
        r,
        "--sampler",
        "mala",
        "--steps",
        "5",
        "--step-size",
        "0.05",
        "--n",
        "6",
        "--out",
        &path("m.png"),
        "--images",
        &path("m"),
    ]);
    assert!(said.contains("acceptance rate"), "{said}");
    assert_eq!(std::fs::read_dir(path("m")).unwrap().count(), 6);
    let said = cli::ok(&["sample", r, "--n", "4", "--out", &path("o.png")]);
    assert!(said.contains("origin"), "{said}");

    let said = cli::ok(&[
        "metrics",
        "logz",
        r,
        "--samples",
        "3000",
        "--repeats",
        "3",
        "--batch",
        "1000",
        "--threads",
        "1",
    ]);
    assert!(
        said.contains("log Z") && said.contains("3 repeats of 3000"),
        "{said}"
    );
    let said = cli::ok(&["metrics", "logz", r, "--samples", "100", "--lambda", "0"]);
    assert!(said.contains("log Z 0.000000 ± 0.000000"), "{said}");
    let said = cli::ok(&[
        "metrics",
        "nll",
        r,
        "--n",
        "8",
        "--k",
        "4",
        "--logz-samples",
        "1000",
    ]);
    assert!(
        said.contains("nats/image") && said.contains("bits/dim"),
        "{said}"
    );
    assert!(said.contains("KL(q ‖ p_λ)"), "{said}");

    // a run of another family is refused with a reason
    let vae = {
        let _rng = lock();
        let c = config("family = \"vae\"\nlatent = 4\nhidden = 8", 1);
        trained(&c, 32)
    };
    let err = cli::fails(&["metrics", "logz", vae.path().to_str().unwrap()]);
    assert!(err.contains("ebm-prior"), "{err}");
}
