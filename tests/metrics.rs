#![cfg(feature = "train")]
//! FID, KID and the inception score: the formulas against closed forms and direct computations,
//! their behaviour on known cases, and `idfcodec metrics` as a user runs it.
#![cfg(feature = "train")]

mod cli_common;
mod common;

use idfcodec::data::{self, Dataset, ImageSet, Split};
use idfcodec::metrics::features::{self, classifier, torchscript, FeatureChoice, FeatureNet};
use idfcodec::metrics::fid::{self, GaussianStats};
use idfcodec::metrics::inception_score::inception_score;
use idfcodec::metrics::kid::{self, KidOptions};
use nalgebra::{DMatrix, DVector};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `n × d` standard normal draws (Box–Muller), seeded.
fn normal(rng: &mut ChaCha8Rng, n: usize, d: usize) -> DMatrix<f64> {
    DMatrix::from_fn(n, d, |_, _| {
        let (u, v): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.gen());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    })
}

/// `n` draws of `N(mean, cov)`: `z Lᵀ + μ` with `L` the Cholesky factor of `cov`.
fn gaussian(
    rng: &mut ChaCha8Rng,
    n: usize,
    mean: &DVector<f64>,
    cov: &DMatrix<f64>,
) -> DMatrix<f64> {
    let l = cov.clone().cholesky().expect("positive definite").l();
    let mut x = normal(rng, n, mean.len()) * l.transpose();
    for mut row in x.row_iter_mut() {
        row += mean.transpose();
    }
    x
}

/// A random rotation (the Q of a QR decomposition of a normal matrix).
fn rotation(rng: &mut ChaCha8Rng, d: usize) -> DMatrix<f64> {
    normal(rng, d, d).qr().q()
}

/// A random symmetric positive definite matrix.
fn spd(rng: &mut ChaCha8Rng, d: usize) -> DMatrix<f64> {
    let a = normal(rng, d, d);
    &a * a.transpose() + DMatrix::identity(d, d) * 0.1
}

// ---------------------------------------------------------------- FID

#[test]
fn fid_of_a_set_with_itself_is_zero() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let x = normal(&mut rng, 400, 16) * 3.0;
    let d = fid::fid(&x, &x).unwrap();
    assert!(d.abs() < 1e-9, "FID(x, x) = {d}");
}

#[test]
fn fid_grows_monotonically_with_feature_noise() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let x = normal(&mut rng, 500, 12);
    let noise = normal(&mut rng, 500, 12);
    let scores: Vec<f64> = [0.0, 0.1, 0.2, 0.4, 0.8, 1.6]
        .iter()
        .map(|s| fid::fid(&x, &(&x + &noise * *s)).unwrap())
        .collect();
    assert!(scores[0].abs() < 1e-9, "{scores:?}");
    assert!(scores.windows(2).all(|w| w[1] > w[0]), "{scores:?}");
}

#[test]
fn frechet_distance_matches_the_closed_form_for_commuting_covariances() {
    // Σ₁ = Q D₁ Qᵀ, Σ₂ = Q D₂ Qᵀ commute, and FID = ‖Δμ‖² + Σᵢ (√d₁ᵢ − √d₂ᵢ)²
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let d = 6;
    let q = rotation(&mut rng, d);
    let d1 = DVector::from_fn(d, |i, _| 0.5 + i as f64);
    let d2 = DVector::from_fn(d, |i, _| 4.0 / (1.0 + i as f64));
    let a = GaussianStats {
        mean: DVector::from_fn(d, |i, _| i as f64 * 0.3),
        cov: &q * DMatrix::from_diagonal(&d1) * q.transpose(),
        count: 0,
    };
    let b = GaussianStats {
        mean: DVector::from_fn(d, |i, _| 1.0 - i as f64 * 0.1),
        cov: &q * DMatrix::from_diagonal(&d2) * q.transpose(),
        count: 0,
    };
    let expected = (&a.mean - &b.mean).norm_squared()
        + d1.iter()
            .zip(d2.iter())
            .map(|(x, y)| (x.sqrt() - y.sqrt()).powi(2))
            .sum::<f64>();
    let got = fid::frechet_distance(&a, &b);
    assert!(
        (got - expected).abs() < 1e-9 * expected,
        "{got} vs {expected}"
    );
}

/// `Tr (Σ₁Σ₂)^{1/2}` by another route: the (real, non-negative) eigenvalues of the
/// non-symmetric product itself.
fn trace_sqrt_by_product_eigenvalues(s1: &DMatrix<f64>, s2: &DMatrix<f64>) -> f64 {
    (s1 * s2)
        .complex_eigenvalues()
        .iter()
        .map(|l| {
            assert!(
                l.im.abs() < 1e-8 * l.norm().max(1.0),
                "complex eigenvalue {l}"
            );
            l.re.max(0.0).sqrt()
        })
        .sum()
}

#[test]
fn frechet_distance_matches_direct_computations_for_general_covariances() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    // 2×2: Tr √M = √(Tr M + 2 √det M) for any M with non-negative eigenvalues
    for _ in 0..20 {
        let (s1, s2) = (spd(&mut rng, 2), spd(&mut rng, 2));
        let m = &s1 * &s2;
        let closed = (m.trace() + 2.0 * m.determinant().sqrt()).sqrt();
        let got = fid::trace_sqrt_product(&s1, &s2);
        assert!((got - closed).abs() < 1e-9 * closed, "{got} vs {closed}");
    }
    // larger: against the eigenvalues of the product, from sample statistics
    let d = 8;
    let (c1, c2) = (spd(&mut rng, d), spd(&mut rng, d));
    let a = GaussianStats::of(&gaussian(&mut rng, 300, &DVector::zeros(d), &c1)).unwrap();
    let b = GaussianStats::of(&gaussian(
        &mut rng,
        300,
        &DVector::from_element(d, 0.5),
        &c2,
    ))
    .unwrap();
    let expected = (&a.mean - &b.mean).norm_squared() + a.cov.trace() + b.cov.trace()
        - 2.0 * trace_sqrt_by_product_eigenvalues(&a.cov, &b.cov);
    let got = fid::frechet_distance(&a, &b);
    assert!(
        (got - expected).abs() < 1e-8 * expected,
        "{got} vs {expected}"
    );
}

#[test]
fn fid_from_samples_approaches_the_population_value() {
    // 20,000 draws of each of two 3-D Gaussians with commuting covariances: the sample FID is
    // within 2 % of the closed form (its bias is O(d/n))
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let q = rotation(&mut rng, 3);
    let (d1, d2) = (
        DVector::from_vec(vec![1.0, 2.0, 0.5]),
        DVector::from_vec(vec![3.0, 0.5, 0.5]),
    );
    let (m1, m2) = (
        DVector::from_vec(vec![0.0, 1.0, 0.0]),
        DVector::from_vec(vec![1.0, 0.0, 0.5]),
    );
    let c1 = &q * DMatrix::from_diagonal(&d1) * q.transpose();
    let c2 = &q * DMatrix::from_diagonal(&d2) * q.transpose();
    let expected = (&m1 - &m2).norm_squared()
        + d1.iter()
            .zip(d2.iter())
            .map(|(x, y)| (x.sqrt() - y.sqrt()).powi(2))
            .sum::<f64>();
    let x = gaussian(&mut rng, 20_000, &m1, &c1);
    let y = gaussian(&mut rng, 20_000, &m2, &c2);
    let got = fid::fid(&x, &y).unwrap();
    assert!(
        (got - expected).abs() < 0.02 * expected,
        "{got} vs {expected}"
    );
}

// ---------------------------------------------------------------- KID

/// The unbiased MMD² with k(x, y) = (x·y/d + 1)³ written out with loops.
fn mmd2_by_loops(x: &DMatrix<f64>, y: &DMatrix<f64>) -> f64 {
    let d = x.ncols() as f64;
    let k = |a: &DMatrix<f64>, i: usize, b: &DMatrix<f64>, j: usize| {
        ((0..a.ncols()).map(|c| a[(i, c)] * b[(j, c)]).sum::<f64>() / d + 1.0).powi(3)
    };
    let (m, n) = (x.nrows(), y.nrows());
    let mut total = 0.0;
    for i in 0..m {
        for j in 0..m {
            if i != j {
                total += k(x, i, x, j) / (m * (m - 1)) as f64;
            }
        }
    }
    for i in 0..n {
        for j in 0..n {
            if i != j {
                total += k(y, i, y, j) / (n * (n - 1)) as f64;
            }
        }
    }
    for i in 0..m {
        for j in 0..n {
            total -= 2.0 * k(x, i, y, j) / (m * n) as f64;
        }
    }
    total
}

#[test]
fn kid_with_whole_sets_equals_the_direct_computation() {
    // a subset of the whole set is a permutation of it: the estimate is the sets' MMD², computed
    // once
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let x = normal(&mut rng, 30, 5);
    let y = normal(&mut rng, 30, 5) * 1.3 + DMatrix::from_element(30, 5, 0.2);
    let options = KidOptions {
        subsets: 3,
        subset_size: 30,
        seed: 9,
    };
    let r = kid::kid(&x, &y, options).unwrap();
    let direct = mmd2_by_loops(&x, &y);
    assert!(
        (r.mean - direct).abs() < 1e-10 * direct.abs().max(1.0),
        "{} vs {direct}",
        r.mean
    );
    assert!(r.std < 1e-10, "{}", r.std);
    assert_eq!((r.subsets, r.subset_size), (1, 30));
    // one set larger than the subsets: three subset pairs, with a spread
    let bigger = x.clone().insert_rows(0, 1, 0.5);
    let r = kid::kid(&bigger, &y, options).unwrap();
    assert_eq!((r.subsets, r.subset_size), (3, 30));
    assert!(r.std > 0.0);
}

#[test]
fn kid_matches_the_closed_form_for_one_dimensional_gaussians() {
    // d = 1: k(x, y) = (xy + 1)³ = 1 + 3xy + 3x²y² + x³y³, so
    // MMD² = 3 (Δ E x)² + 3 (Δ E x²)² + (Δ E x³)², with the moments of N(μ, σ²):
    // E x = μ, E x² = μ² + σ², E x³ = μ³ + 3μσ²
    let moments = |mu: f64, s: f64| [mu, mu * mu + s * s, mu.powi(3) + 3.0 * mu * s * s];
    let (p, q) = (moments(0.0, 1.0), moments(0.3, 1.1));
    let expected =
        3.0 * (p[0] - q[0]).powi(2) + 3.0 * (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let x = normal(&mut rng, 20_000, 1);
    let y = normal(&mut rng, 20_000, 1) * 1.1 + DMatrix::from_element(20_000, 1, 0.3);
    let r = kid::kid(
        &x,
        &y,
        KidOptions {
            subsets: 1000,
            subset_size: 100,
            seed: 1,
        },
    )
    .unwrap();
    // tolerance: 4 standard errors of the mean over the subsets (many small subsets: the same
    // precision as fewer large ones for less work)
    let se = r.std / (r.subsets as f64).sqrt();
    assert!(
        (r.mean - expected).abs() < 4.0 * se && se < 0.1 * expected,
        "KID {} ± {} (se {se}) vs closed form {expected}",
        r.mean,
        r.std
    );
}

#[test]
fn kid_is_unbiased_for_sets_of_one_distribution() {
    // 400 independent pairs of sets of 40 from N(0, I₄): the unbiased estimates average to 0
    // within 3 standard errors, and many are negative; the biased (V-statistic) estimate of
    // the same pairs does not pass the same check, so the check can fail
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let (draws, m, d) = (400, 40, 4);
    let mut unbiased = Vec::new();
    let mut biased = Vec::new();
    for _ in 0..draws {
        let x = normal(&mut rng, m, d);
        let y = normal(&mut rng, m, d);
        unbiased.push(kid::mmd2_unbiased(&x, &y));
        let mean_k = |a: &DMatrix<f64>, b: &DMatrix<f64>| kid::polynomial_kernel(a, b).mean();
        biased.push(mean_k(&x, &x) + mean_k(&y, &y) - 2.0 * mean_k(&x, &y));
    }
    let stats = |v: &[f64]| {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        (mean, sd / n.sqrt())
    };
    let (mean, se) = stats(&unbiased);
    assert!(mean.abs() < 3.0 * se, "unbiased mean {mean}, se {se}");
    let negative = unbiased.iter().filter(|v| **v < 0.0).count();
    assert!(negative > draws / 4, "{negative} of {draws} negative");
    let (bmean, bse) = stats(&biased);
    assert!(bmean > 3.0 * bse, "biased mean {bmean}, se {bse}");
    assert!(biased.iter().all(|v| *v >= 0.0));
}

// ---------------------------------------------------------------- IS

#[test]
fn inception_score_of_uniform_predictions_is_one() {
    let logits = DMatrix::from_element(100, 10, 0.7);
    let s = inception_score(&logits, 10).unwrap();
    assert!((s.mean - 1.0).abs() < 1e-12 && s.std < 1e-12, "{s:?}");
    // confident but always the same class: also 1
    let same = DMatrix::from_fn(100, 10, |_, j| if j == 3 { 50.0 } else { 0.0 });
    assert!((inception_score(&same, 5).unwrap().mean - 1.0).abs() < 1e-9);
}

#[test]
fn inception_score_of_confident_balanced_predictions_is_the_class_count() {
    for k in [2, 10, 17] {
        let logits = DMatrix::from_fn(k * 20, k, |i, j| if i % k == j { 60.0 } else { 0.0 });
        for splits in [1, 4] {
            let s = inception_score(&logits, splits).unwrap();
            assert!(
                (s.mean - k as f64).abs() < 1e-6 * k as f64,
                "{k} classes: {s:?}"
            );
        }
    }
}

// ---------------------------------------------------------------- feature nets and the CLI

/// The first `n` MNIST test images.
fn mnist_test(n: usize) -> ImageSet {
    let dir = common::fetched("mnist");
    data::load(&dir, Dataset::Mnist, Split::Test)
        .unwrap()
        .range(0..n)
}

fn shipped_mnist() -> Box<dyn FeatureNet> {
    features::open(
        &FeatureChoice::Shipped(Dataset::Mnist),
        &torchscript::TorchScriptOptions::default(),
        tch::Device::Cpu,
    )
    .unwrap()
}

#[test]
fn fid_grows_monotonically_with_image_noise() {
    // 500 MNIST test images against themselves with Gaussian pixel noise of growing size (one
    // noise pattern, scaled; clamped to 0..=255), through the shipped MNIST classifier
    let net = shipped_mnist();
    let set = mnist_test(500);
    let clean = net.extract(&set, 500).unwrap().features;
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let noise = normal(&mut rng, 1, set.pixels.len());
    let scores: Vec<f64> = [0.0, 8.0, 16.0, 32.0, 64.0, 128.0]
        .iter()
        .map(|sigma| {
            let pixels = set
                .pixels
                .iter()
                .zip(noise.iter())
                .map(|(p, z)| (*p as f64 + sigma * z).round().clamp(0.0, 255.0) as u8)
                .collect();
            let noisy = ImageSet {
                pixels,
                ..set.clone()
            };
            fid::fid(&clean, &net.extract(&noisy, 500).unwrap().features).unwrap()
        })
        .collect();
    assert!(scores[0].abs() < 1e-6, "{scores:?}");
    assert!(scores.windows(2).all(|w| w[1] > w[0]), "{scores:?}");
}

#[test]
fn shipped_classifiers_load_and_describe_themselves() {
    for ds in Dataset::ALL {
        let c = classifier::load(features::shipped(ds), "shipped", tch::Device::Cpu).unwrap();
        assert_eq!(c.card.dataset, ds.to_string());
        assert_eq!(c.card.name, format!("{ds}-classifier-v1"));
        assert!(c.card.test_accuracy > 0.85, "{:?}", c.card);
        assert!(c.fit(1, 28, 28).is_ok());
        let why = c.fit(3, 28, 28).unwrap_err();
        assert!(why.contains("1-channel 28×28"), "{why}");
        assert!(c.fit(1, 32, 32).is_err());
    }
    assert!(classifier::load(b"not a file", "junk", tch::Device::Cpu).is_err());
}

fn stdout_of(args: &[&str]) -> String {
    let out = cli_common::run(args);
    assert!(
        out.status.success(),
        "idfcodec {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn stderr_of_failure(args: &[&str]) -> String {
    let out = cli_common::run(args);
    assert!(!out.status.success(), "idfcodec {args:?} should fail");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn cli_scores_name_their_features_and_counts() {
    common::fetched("mnist");
    let out = stdout_of(&["metrics", "fid", "mnist:test[0..300]", "mnist:test[0..300]"]);
    assert!(out.starts_with("FID 0.0000 "), "{out}");
    assert!(
        out.contains("features: mnist-classifier-v1, 300 vs 300 images: mnist:test[0..300] vs mnist:test[0..300]"),
        "{out}"
    );
    let out = stdout_of(&[
        "metrics",
        "kid",
        "mnist:test[0..200]",
        "mnist:test[200..]",
        "--n",
        "150",
        "--subsets",
        "10",
        "--subset-size",
        "100",
    ]);
    assert!(out.starts_with("KID "), "{out}");
    assert!(
        out.contains("150 vs 150 images") && out.contains("10 subsets of 100"),
        "{out}"
    );
    // sets no larger than the subsets: computed once on the whole sets, and said so
    let out = stdout_of(&[
        "metrics",
        "kid",
        "mnist:test[0..150]",
        "mnist:test[150..300]",
    ]);
    assert!(
        out.contains("± 0.000000") && out.contains("the whole sets, no spread"),
        "{out}"
    );
    let out = stdout_of(&["metrics", "is", "mnist:test[0..1000]"]);
    let score: f64 = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(score > 7.0 && score <= 10.0, "{out}");
    assert!(
        out.contains("1000 images of mnist:test[0..1000], 10 splits"),
        "{out}"
    );
}

#[test]
fn cli_reads_folders_like_the_dataset() {
    let dir = common::fetched("mnist");
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("pngs");
    let data_dir = dir.to_str().unwrap();
    stdout_of(&[
        "dataset-png",
        "--dataset",
        "mnist",
        "--split",
        "test",
        "--limit",
        "60",
        "--out",
        folder.to_str().unwrap(),
        "--data-dir",
        data_dir,
    ]);
    // the same images from the folder and from the split: FID 0
    let out = stdout_of(&[
        "metrics",
        "fid",
        folder.to_str().unwrap(),
        "mnist:test[..60]",
    ]);
    assert!(out.starts_with("FID 0.0000 "), "{out}");
    // two folders name no dataset
    let err = stderr_of_failure(&[
        "metrics",
        "fid",
        folder.to_str().unwrap(),
        folder.to_str().unwrap(),
    ]);
    assert!(err.contains("--features"), "{err}");
    let out = stdout_of(&[
        "metrics",
        "fid",
        folder.to_str().unwrap(),
        folder.to_str().unwrap(),
        "--features",
        "mnist",
    ]);
    assert!(out.contains("60 vs 60 images"), "{out}");
}

#[test]
fn cli_refuses_bad_input_clearly() {
    common::fetched("mnist");
    common::fetched("fashion-mnist");
    let tmp = tempfile::tempdir().unwrap();
    // colour images for a 1-channel classifier, refused before decoding
    let rgb = tmp.path().join("rgb");
    std::fs::create_dir(&rgb).unwrap();
    for i in 0..3 {
        image::RgbImage::from_pixel(28, 28, image::Rgb([i * 50, 0, 0]))
            .save(rgb.join(format!("{i}.png")))
            .unwrap();
    }
    let err = stderr_of_failure(&["metrics", "fid", rgb.to_str().unwrap(), "mnist:test[..10]"]);
    assert!(
        err.contains("takes 1-channel 28×28 images, not 3-channel 28×28"),
        "{err}"
    );
    // images of two sizes in one folder
    let mixed = tmp.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    image::GrayImage::new(28, 28)
        .save(mixed.join("a.png"))
        .unwrap();
    image::GrayImage::new(32, 28)
        .save(mixed.join("b.png"))
        .unwrap();
    let err = stderr_of_failure(&["metrics", "fid", mixed.to_str().unwrap(), "mnist:test"]);
    assert!(err.contains("must share one size"), "{err}");
    for (args, expected) in [
        (
            vec!["mnist:test[9990..10010]", "mnist:test"],
            "the split has 10000",
        ),
        (vec!["mnist:test[5..2]", "mnist:test"], "is empty"),
        (vec!["mnist:valid", "mnist:test"], "unknown split"),
        (
            vec!["mnist:test", "fashion-mnist:test"],
            "--features mnist or --features fashion-mnist",
        ),
        (vec!["run:runs/none", "mnist:test"], "runs/none"),
        (vec!["no/such/folder", "mnist:test"], "no/such/folder"),
        (
            vec!["mnist:test", "mnist:test", "--features", "x.onnx"],
            "TorchScript",
        ),
        (
            vec!["mnist:test", "mnist:test", "--features", "missing.pt"],
            "no such file",
        ),
        (vec!["mnist:test", "mnist:test", "--n", "1"], "at least 2"),
    ] {
        let mut all = vec!["metrics", "fid"];
        all.extend(args.iter().copied());
        let err = stderr_of_failure(&all);
        assert!(err.contains(expected), "{all:?}: {err}");
    }
}

#[test]
fn cli_takes_a_torchscript_feature_net() {
    common::fetched("mnist");
    // a traced module: 4×4 average pooling of each channel, flattened (48 features for RGB)
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("pool.pt");
    let input = tch::Tensor::zeros([2, 3, 28, 28], (tch::Kind::Float, tch::Device::Cpu));
    let module = tch::CModule::create_by_tracing("Pool", "forward", &[input], &mut |x| {
        vec![x[0].adaptive_avg_pool2d([4, 4]).flatten(1, -1)]
    })
    .unwrap();
    module.save(&path).unwrap();
    let p = path.to_str().unwrap();
    let name = format!("features: torchscript:{p}, 200 vs 200 images");
    let out = stdout_of(&[
        "metrics",
        "fid",
        "mnist:test[..200]",
        "mnist:test[..200]",
        "--features",
        p,
    ]);
    assert!(
        out.starts_with("FID 0.0000 ") && out.contains(&name),
        "{out}"
    );
    let out = stdout_of(&[
        "metrics",
        "fid",
        "mnist:test[..200]",
        "mnist:test[200..400]",
        "--features",
        p,
        "--ts-size",
        "32",
        "--ts-range",
        "signed",
    ]);
    let score: f64 = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(score > 0.0 && out.contains(&name), "{out}");
}
