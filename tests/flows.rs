//! The continuous flows (NICE, RealNVP, Glow): every layer and whole model inverts; each
//! layer's log-determinant equals a brute-force `log|det J|` (the Jacobian by autograd, row by
//! row) on a tiny input; the 1×1 convolution's LU log-determinant equals `slogdet(W)` and it
//! starts as a rotation; ActNorm's start standardises its first batch; a flow's bpd equals its
//! parts (prior + log-det + dequantization) and the brute-force density; tiny flows train
//! through the generic loop, resume bit-identically, sample (with a temperature), interpolate
//! and walk the latent.
#![cfg(feature = "train")]

mod common;
mod generative_common;

use generative_common::{assert_resume_is_bit_identical, config, job, lock, small_data};
use idfcodec::metrics::bpd::Likelihood;
use idfcodec::nn::flows::dequant::Dequantization;
use idfcodec::nn::flows::flow::{Flow, FlowSpec, LayerSpec, LevelSpec, PriorKind};
use idfcodec::nn::flows::layers::{
    ActNorm, Conditioner, Conv1x1, Coupling, CouplingKind, FlowLayer, MaskKind, Parity, Permute,
    Scaling,
};
use idfcodec::nn::flows::{Glow, Nice, RealNvp};
use idfcodec::nn::generative::{self, Ends};
use idfcodec::nn::layers::{squeeze, unsqueeze};
use idfcodec::train::{self, checkpoint, Trainable};
use tch::{nn, Device, Kind, Tensor};

/// Every variable of `vs` set to random values (the couplings' last layers start at zero,
/// which would make them identities).
fn perturb(vs: &nn::VarStore, scale: f64) {
    tch::no_grad(|| {
        for (_, v) in vs.variables() {
            let r = v.randn_like() * scale;
            v.shallow_clone().copy_(&r);
        }
    });
}

/// `log|det ∂f/∂x|` of one image `x` (`1×…`) by autograd, one Jacobian row at a time, in
/// double precision.
fn brute_force_logdet(f: &dyn Fn(&Tensor) -> Tensor, x: &Tensor) -> f64 {
    let x = x.detach().set_requires_grad(true);
    let y = f(&x).flatten(0, -1);
    let d = y.size()[0];
    assert_eq!(d, x.numel() as i64, "the map must keep the dimension");
    let rows: Vec<Tensor> = (0..d)
        .map(|i| {
            let g = Tensor::run_backward(&[y.get(i)], &[&x], true, false);
            g[0].flatten(0, -1).to_kind(Kind::Double)
        })
        .collect();
    let (_, logabs) = Tensor::linalg_slogdet(&Tensor::stack(&rows, 0));
    logabs.double_value(&[])
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// Checks `layer` on `x`: inverse ∘ forward = id, forward ∘ inverse = id, and each image's
/// log-determinant equals the brute-force one.
fn check_layer(name: &str, layer: &dyn FlowLayer, x: &Tensor) {
    let (y, logdet) = layer.forward(x);
    assert_eq!(y.size(), x.size(), "{name}: shape");
    let back = layer.inverse(&y);
    assert!(
        max_abs_diff(&back, x) < 1e-4,
        "{name}: inverse(forward(x)) != x"
    );
    assert!(
        max_abs_diff(&layer.forward(&layer.inverse(x)).0, x) < 1e-4,
        "{name}: forward(inverse(y)) != y"
    );
    for i in 0..x.size()[0] {
        let xi = x.narrow(0, i, 1);
        let brute = brute_force_logdet(&|t| layer.forward(t).0, &xi);
        let got = logdet.double_value(&[i]);
        assert!(
            (got - brute).abs() < 1e-3 * (1.0 + brute.abs()),
            "{name}: image {i}: log-det {got} vs brute force {brute}"
        );
    }
}

#[test]
fn every_layer_inverts_and_its_log_det_is_the_jacobians() {
    let _rng = lock();
    tch::manual_seed(3);
    let shape = [4i64, 4, 4];
    let x = Tensor::randn([2, 4, 4, 4], (Kind::Float, Device::Cpu));
    let vs = nn::VarStore::new(Device::Cpu);
    let p = vs.root();
    let mut layers: Vec<(String, Box<dyn FlowLayer>)> = Vec::new();
    for kind in [CouplingKind::Additive, CouplingKind::Affine] {
        for mask in [MaskKind::Checkerboard, MaskKind::Channel] {
            for parity in [Parity::Even, Parity::Odd] {
                for conditioner in [
                    Conditioner::Conv { hidden: 8 },
                    Conditioner::Mlp {
                        hidden: 8,
                        layers: 2,
                    },
                ] {
                    let name = format!("{kind:?} {mask:?} {parity:?} {conditioner:?}");
                    let l = Coupling::new(
                        &(&p / format!("c{}", layers.len())),
                        kind,
                        mask,
                        parity,
                        conditioner,
                        shape,
                    );
                    layers.push((name, Box::new(l)));
                }
            }
        }
    }
    layers.push(("actnorm".into(), Box::new(ActNorm::new(&(&p / "an"), 4))));
    layers.push(("conv1x1".into(), Box::new(Conv1x1::new(&(&p / "w"), 4, 7))));
    layers.push(("scaling".into(), Box::new(Scaling::new(&(&p / "s"), shape))));
    layers.push(("reverse".into(), Box::new(Permute::reverse(4, Device::Cpu))));
    layers.push((
        "shuffle".into(),
        Box::new(Permute::shuffle(4, 9, Device::Cpu)),
    ));
    perturb(&vs, 0.3);
    for (name, layer) in &layers {
        check_layer(name, layer.as_ref(), &x);
    }
    // the couplings really change their free half (a zero network would pass every check)
    let (y, _) = layers[0].1.forward(&x);
    assert!(max_abs_diff(&y, &x) > 1e-2);
    // squeeze is a permutation of sub-pixels with an exact inverse
    assert!(unsqueeze(&squeeze(&x)).equal(&x));
    assert_eq!(squeeze(&x).size(), [2, 16, 2, 2]);
}

#[test]
fn the_1x1_convolutions_lu_log_det_is_slogdet_of_w_and_it_starts_as_a_rotation() {
    let _rng = lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let conv = Conv1x1::new(&vs.root(), 6, 11);
    let w = conv.weight().to_kind(Kind::Double);
    let eye = Tensor::eye(6, (Kind::Double, Device::Cpu));
    assert!(max_abs_diff(&w.matmul(&w.transpose(0, 1)), &eye) < 1e-5);
    for seed in 0..3 {
        tch::manual_seed(seed);
        perturb(&vs, 0.5);
        let w = conv.weight().to_kind(Kind::Double);
        let (_, logabs) = Tensor::linalg_slogdet(&w);
        let lu = conv.log_abs_det().double_value(&[]);
        assert!(
            (lu - logabs.double_value(&[])).abs() < 1e-4,
            "LU {lu} vs slogdet {}",
            logabs.double_value(&[])
        );
    }
    // P and the signs come from the seed: a rebuilt layer has the same W
    let again = nn::VarStore::new(Device::Cpu);
    let conv2 = Conv1x1::new(&again.root(), 6, 11);
    let fresh = nn::VarStore::new(Device::Cpu);
    let conv3 = Conv1x1::new(&fresh.root(), 6, 11);
    assert!(conv2.weight().equal(&conv3.weight()));
}

#[test]
fn actnorms_data_dependent_start_standardises_its_first_batch() {
    let _rng = lock();
    tch::manual_seed(5);
    let scale = Tensor::from_slice(&[0.1f32, 2.0, 7.0]).reshape([1, 3, 1, 1]);
    let shift = Tensor::from_slice(&[-3f32, 0.5, 40.0]).reshape([1, 3, 1, 1]);
    let x = Tensor::randn([16, 3, 5, 5], (Kind::Float, Device::Cpu)) * scale + shift;
    let vs = nn::VarStore::new(Device::Cpu);
    let an = ActNorm::new(&vs.root(), 3);
    an.data_init(&x);
    let (y, _) = an.forward(&x);
    let dims: &[i64] = &[0, 2, 3];
    let mean = y.mean_dim(dims, false, Kind::Float);
    let var = (&y - y.mean_dim(dims, true, Kind::Float))
        .square()
        .mean_dim(dims, false, Kind::Float);
    for c in 0..3 {
        assert!(mean.double_value(&[c]).abs() < 1e-4, "channel {c} mean");
        assert!(
            (var.double_value(&[c]) - 1.0).abs() < 1e-3,
            "channel {c} var"
        );
    }
}

/// Tiny flows of each family on `channels×8×8` images, as `[model]` TOML lines.
fn tiny_models(channels: usize) -> Vec<String> {
    let base = format!("in_channels = {channels}\nimage_size = 8\n");
    vec![
        format!("family = \"nice\"\n{base}couplings = 4\nhidden = 16\nhidden_layers = 2"),
        format!("family = \"realnvp\"\n{base}levels = 2\ncouplings = 2\nhidden = 8"),
        format!("family = \"realnvp\"\n{base}levels = 2\ncouplings = 1\nhidden = 8\nnorm = \"none\""),
        format!("family = \"glow\"\n{base}levels = 2\nsteps = 2\nhidden = 8"),
        format!("family = \"glow\"\n{base}levels = 2\nsteps = 2\nhidden = 8\npermutation = \"shuffle\"\ncoupling = \"additive\"\nprior = \"standard\""),
        format!("family = \"glow\"\n{base}levels = 3\nsteps = 1\nhidden = 8\npermutation = \"reverse\"\ndequantization = {{ kind = \"variational\", hidden = 4 }}"),
    ]
}

/// The flow of a `[model]` section, its variables perturbed (and their store).
fn built(model: &str, seed: i64) -> (nn::VarStore, Flow) {
    let c = config(model, 1);
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let flow = Flow::new(&vs.root(), &spec_of(&c));
    perturb(&vs, 0.1);
    (vs, flow)
}

fn spec_of(c: &train::config::TrainConfig) -> FlowSpec {
    use idfcodec::nn::flows::FlowFamily;
    let m = &c.model;
    if let Some(c) = m.of::<Nice>() {
        return idfcodec::nn::flows::nice::NiceFamily::spec(c).unwrap();
    }
    if let Some(c) = m.of::<RealNvp>() {
        return idfcodec::nn::flows::realnvp::RealNvpFamily::spec(c).unwrap();
    }
    idfcodec::nn::flows::glow::GlowFamily::spec(m.of::<Glow>().unwrap()).unwrap()
}

#[test]
fn whole_flows_invert_and_their_bpd_is_the_sum_of_prior_log_det_and_dequantization() {
    let _rng = lock();
    for channels in [1, 3] {
        for model in tiny_models(channels) {
            let (_vs, flow) = built(&model, 2);
            let x = (Tensor::rand([2, channels as i64, 8, 8], (Kind::Float, Device::Cpu)) * 255.0)
                .floor();
            // exact inversion, through the standardised latents
            let (v, _) = flow.dequantize(&x);
            let e = flow.encode(&v);
            assert_eq!(e.eps.len(), flow.latent_shapes().len());
            let back = flow.decode(&e.eps);
            assert!(
                max_abs_diff(&back, &v) < 1e-4,
                "{model}: decode(encode(v)) != v"
            );
            let z = Flow::flatten(&e.eps);
            assert_eq!(z.size(), [2, flow.dims()]);
            assert!(max_abs_diff(&flow.decode(&flow.unflatten(&z)), &v) < 1e-4);
            // the pixels come back from their latents
            let pixels = generative::to_u8(&flow.decode_pixels(&flow.encode_pixels(&x)));
            assert!(pixels.to_kind(Kind::Float).equal(&x), "{model}: pixels");

            // prior + log-det = −log N(ε) − log|det ∂ε/∂v|, brute force per image
            tch::manual_seed(17);
            let parts = flow.nll_parts(&x);
            tch::manual_seed(17);
            let (v2, deq) = flow.dequantize(&x);
            for i in 0..2 {
                let vi = v2.narrow(0, i, 1);
                let eps = Flow::flatten(&flow.encode(&vi).eps);
                let log_n = (eps.square().sum(Kind::Double) * -0.5).double_value(&[])
                    - 0.5 * flow.dims() as f64 * (2.0 * std::f64::consts::PI).ln();
                let logdet = brute_force_logdet(&|t| Flow::flatten(&flow.encode(t).eps), &vi);
                let brute = -log_n - logdet;
                let got = parts.prior.double_value(&[i]) + parts.log_det.double_value(&[i]);
                assert!(
                    (got - brute).abs() < 1e-3 * (1.0 + brute.abs()),
                    "{model}: image {i}: prior + log-det {got} vs brute force {brute}"
                );
                assert!(
                    (parts.dequantization.double_value(&[i]) - deq.double_value(&[i])).abs() < 1e-6
                );
            }
            // uniform dequantization's term is exactly D·log 256: 8 bits per dimension
            if !model.contains("variational") {
                let per_dim = deq / (flow.dims() as f64 * std::f64::consts::LN_2);
                assert!(max_abs_diff(&per_dim, &Tensor::from(8f32)) < 1e-5);
            }
            // the terms the bpd is computed from are these parts, in order
            tch::manual_seed(17);
            let terms = flow.nll_terms(&x);
            assert!(terms[0].allclose(&parts.prior, 1e-6, 1e-5, false));
            assert!(terms[1].allclose(&parts.log_det, 1e-6, 1e-5, false));
            assert!(terms[2].allclose(&parts.dequantization, 1e-6, 1e-5, false));
        }
    }
}

/// Tiny flows of each family on 28×28 MNIST (the size of the data they train on).
fn mnist_models() -> Vec<String> {
    vec![
        "family = \"nice\"\ncouplings = 2\nhidden = 16\nhidden_layers = 1".into(),
        "family = \"realnvp\"\nlevels = 2\ncouplings = 1\nhidden = 8".into(),
        "family = \"glow\"\nlevels = 2\nsteps = 1\nhidden = 8".into(),
    ]
}

#[test]
fn tiny_flows_train_through_the_generic_loop_and_their_evaluation_adds_up() {
    let _rng = lock();
    for model in mnist_models() {
        let c = config(&model, 30);
        let data = small_data(&c, 32, 64);
        let dir = tempfile::tempdir().unwrap();
        let report = train::run(&job(&c, dir.path(), false), &data).unwrap();
        assert!(report.finished);
        let csv = std::fs::read_to_string(dir.path().join("log.csv")).unwrap();
        let losses: Vec<f64> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(3).unwrap().parse().unwrap())
            .collect();
        let (first, last) = (losses[0], *losses.last().unwrap());
        eprintln!("{model}: train bpd {first:.3} -> {last:.3}");
        assert!(last < first - 0.1, "{model}: {first} -> {last}");
        // evaluation: total = prior + log-det + dequantization, each in bits/dim
        let state = checkpoint::read_state(dir.path()).unwrap();
        let ev = match state.config.model.family() {
            "nice" => evaluate::<Nice>(&c, dir.path(), &data.test),
            "realnvp" => evaluate::<RealNvp>(&c, dir.path(), &data.test),
            _ => evaluate::<Glow>(&c, dir.path(), &data.test),
        };
        let names: Vec<&str> = ev.parts.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(names, ["prior", "log_det", "dequantization"]);
        let sum: f64 = ev.parts.iter().map(|p| p.1).sum();
        assert!((sum - ev.total).abs() < 1e-9);
        assert!((ev.parts[2].1 - 8.0).abs() < 1e-6, "uniform: 8 bits/dim");
        assert!(ev.total.is_finite() && ev.total > 0.0 && ev.total < 8.0 + 10.0);
    }
}

fn evaluate<M: Trainable>(
    c: &train::config::TrainConfig,
    dir: &std::path::Path,
    test: &Tensor,
) -> idfcodec::train::Evaluation {
    let (mut vs, model) = train::build_model::<M>(c, Device::Cpu).unwrap();
    checkpoint::load(dir, &mut vs, None).unwrap();
    tch::manual_seed(1);
    model.evaluate(test, 64, Device::Cpu)
}

#[test]
fn glow_resumes_bit_identically_and_samples_interpolates_and_walks() {
    let _rng = lock();
    let c = config(&mnist_models()[2], 6);
    let data = small_data(&c, 32, 32);
    assert_resume_is_bit_identical(&c, &data);

    let dir = tempfile::tempdir().unwrap();
    train::run(&job(&c, dir.path(), false), &data).unwrap();
    let (model, state) = generative::load_run(dir.path(), Device::Cpu).unwrap();
    assert_eq!(model.latent_size(), 784);
    assert!(model.has_encoder());
    // T = 1 is exactly `sample`; lower temperatures are other images
    let s = generative::sample(model.as_ref(), 4, 3);
    assert_eq!(s.size(), [4, 1, 28, 28]);
    assert!(generative::sample_at_temperature(model.as_ref(), 4, 3, 1.0).equal(&s));
    assert!(!generative::sample_at_temperature(model.as_ref(), 4, 3, 0.5).equal(&s));
    // interpolation between two real images starts and ends at them
    let images = generative::images_for(&state, "test", 2, 0).unwrap();
    let grid = generative::interpolate(model.as_ref(), Ends::Images(&images), 5).unwrap();
    assert_eq!(grid.size(), [5, 1, 28, 28]);
    assert!(grid.get(0).equal(&images.get(0)));
    assert!(grid.get(4).equal(&images.get(1)));
    // the walk: one row per dimension; the value the image has leaves it unchanged
    let x = images.narrow(0, 0, 1).to_kind(Kind::Float);
    let z = model.encode(&x).unwrap();
    let d = 783;
    let at = z.double_value(&[0, d]);
    let walk = generative::latent_walk(model.as_ref(), &z, &[0, d], &[-2.0, at, 2.0]).unwrap();
    assert_eq!(walk.size(), [6, 1, 28, 28]);
    assert!(walk.get(4).equal(&images.get(0)));
    assert!(!walk.get(3).equal(&walk.get(5)));
    assert!(generative::latent_walk(model.as_ref(), &z, &[784], &[0.0]).is_err());
}

#[test]
fn flow_configs_round_trip_and_bad_ones_are_errors() {
    let _rng = lock();
    for model in tiny_models(3) {
        let c = config(&model, 1);
        let json = serde_json::to_string(&c).unwrap();
        let back: train::config::TrainConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        assert!(c.model.parameter_count() > 0);
    }
    for (model, want) in [
        (
            "family = \"glow\"\nimage_size = 28\nlevels = 3",
            "multiple of 8",
        ),
        ("family = \"glow\"\npermutation = \"lu\"", "unknown variant"),
        ("family = \"realnvp\"\nnorm = \"batch\"", "unknown variant"),
        ("family = \"nice\"\ncouplings = 0", "at least 1"),
        ("family = \"nice\"\nwidth = 3", "unknown field"),
    ] {
        let text = format!("version = 2\n[model]\n{model}\n[data]\ndataset = \"mnist\"\n");
        let err = match train::config::TrainConfig::from_toml(&text) {
            Err(e) => e.to_string(),
            Ok(c) => c.validate().unwrap_err().to_string(),
        };
        assert!(err.contains(want), "{model}: {err}");
    }
    // one flow layer of each kind exists in the Glow a config describes
    let c = config(&tiny_models(1)[3], 1);
    let spec = spec_of(&c);
    let layers: Vec<&LayerSpec> = spec
        .levels
        .iter()
        .flat_map(|l: &LevelSpec| l.after_squeeze.iter())
        .collect();
    assert!(layers.contains(&&LayerSpec::ActNorm));
    assert!(layers.contains(&&LayerSpec::Conv1x1));
    assert_eq!(spec.prior, PriorKind::Learned);
    assert_eq!(spec.dequantization, Dequantization::Uniform);
}

#[path = "cli_common/mod.rs"]
mod cli;

#[test]
fn the_three_flows_train_from_the_cli_and_draw_temperature_samples_and_latent_walks() {
    let data_dir = common::fetched("mnist");
    let data_dir = data_dir.to_str().unwrap();
    let work = tempfile::tempdir().unwrap();
    let path = |name: &str| work.path().join(name).to_str().unwrap().to_string();
    for model in mnist_models() {
        let family = model.split('"').nth(1).unwrap().to_string();
        let text = format!(
            "version = 2\n[model]\n{model}\n[data]\ndataset = \"mnist\"\n\
             [train]\nbatch_size = 16\nsteps = 3\neval_every = 0\neval_images = 32\n"
        );
        std::fs::write(path(&format!("{family}.toml")), text).unwrap();
        let run = path(&family);
        let out = cli::ok(&[
            "train",
            "--config",
            &path(&format!("{family}.toml")),
            "--out",
            &run,
            "--data-dir",
            data_dir,
            "--threads",
            "1",
            "--quiet",
        ]);
        assert!(out.contains("finished"), "{family}: {out}");
        let t = path(&format!("{family}-t.png"));
        let said = cli::ok(&[
            "sample",
            &run,
            "--n",
            "4",
            "--temperature",
            "0.5",
            "--out",
            &t,
        ]);
        assert!(said.contains("N(0, 0.5²I)"), "{said}");
        assert_eq!(
            image::open(&t).unwrap().width() as usize,
            idfcodec::picture::grid_size(4, 28, 28, 2).0
        );
        let w = path(&format!("{family}-walk.png"));
        cli::ok(&[
            "interpolate",
            &run,
            "--walk",
            "0,783",
            "--steps",
            "5",
            "--out",
            &w,
        ]);
        assert_eq!(
            image::open(&w).unwrap().height() as usize,
            idfcodec::picture::grid_size(10, 28, 28, 5).1
        );
    }
    let run = path("glow");
    let err = cli::fails(&[
        "sample",
        &run,
        "--sampler",
        "mala",
        "--temperature",
        "0.5",
        "--out",
        &path("x.png"),
    ]);
    assert!(err.contains("origin only"), "{err}");
    let err = cli::fails(&[
        "interpolate",
        &run,
        "--walk",
        "784",
        "--out",
        &path("y.png"),
    ]);
    assert!(err.contains("outside 0..784"), "{err}");
}
