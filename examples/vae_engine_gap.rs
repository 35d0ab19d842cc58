//! Where the engine's negative ELBO at the posterior mean parts from the float model's, for a
//! shipped single-layer VAE whose training config is at hand (a measurement, not on the coding
//! path): the float model is rebuilt from the config and loaded with the model file's weights,
//! then per image the reconstruction at `z = μ(x)` is taken four ways —
//! A: the training loss (f32, libtorch; its tail fallback below a mass of 1e-5);
//! D: exact f64 masses ([`LogisticMixture::binned_masses`]) of libtorch's decoder outputs;
//! C: the same exact masses of the engine's decoder outputs;
//! B: the engine's quantised tables (what the coder pays).
//! A − D is the training formula, D − C the networks, C − B the quantisation.
//!
//! `cargo run --release --example vae_engine_gap -- configs/vae-bbans-mnist-mix3.toml models/vae-mnist.safetensors 200`

use std::path::Path;

use idfcodec::data::Split;
use idfcodec::nn::dist::{LikelihoodKind, PixelLikelihood};
use idfcodec::nn::vae::Vae;
use idfcodec::train::config::TrainConfig;
use idfcodec::train::{build_model, load_split};
use idfcodec_codec::entropy::{finish_stream, start_stream, StreamStart};
use idfcodec_codec::entropy::{BinnedStart, LogisticMixture, MixtureParams};
use idfcodec_codec::model::vae::arch::LOG_SCALE_MIN;
use idfcodec_codec::model::vae::{push_block, terms_at_mean};
use idfcodec_codec::Vae as EngineVae;
use tch::{Device, Kind};

/// `−log2` of pixel `x`'s exact mass under the mixture of raw outputs `raw` (`[3][M][dims]`).
fn exact_bits(raw: &[f32], mixtures: usize, dims: usize, i: usize, x: u8) -> f64 {
    let at = |p: usize| -> Vec<f32> {
        (0..mixtures)
            .map(|m| raw[(p * mixtures + m) * dims + i])
            .collect()
    };
    let (logits, means) = (at(0), at(1));
    let log_scales: Vec<f32> = at(2).into_iter().map(|v| v.max(LOG_SCALE_MIN)).collect();
    let mixture = LogisticMixture::new(&MixtureParams {
        logits: &logits,
        means: &means,
        log_scales: &log_scales,
    })
    .expect("finite");
    let p = mixture.binned_masses(-1.0 + 1.0 / 255.0, 2.0 / 255.0, 256, BinnedStart::Exact);
    let total: f64 = p.iter().sum();
    -(p[usize::from(x)] / total).log2()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (config, model, n) = (
        Path::new(&args[1]),
        Path::new(&args[2]),
        args.get(3).map_or(200, |v| v.parse().expect("a count")),
    );
    let cfg = TrainConfig::from_toml_file(config).expect("config");
    let (mut vs, vae) = build_model::<Vae>(&cfg, Device::Cpu).expect("a vae config");
    vs.load(model)
        .expect("the model file's weights fit the config");
    let engine = EngineVae::from_safetensors(&std::fs::read(model).expect("model file"))
        .expect("engine model");
    let mixtures = engine.config().mixtures;
    let dims = engine.config().dims();
    let images = load_split(&cfg, Split::Test).expect("test split");
    let (mut a, mut b, mut c, mut d, mut kl_f, mut kl_e) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let mut worst = (0.0f64, 0);
    let per_pixel = PixelLikelihood {
        kind: LikelihoodKind::Logistic,
        mixtures,
        log_std: tch::Tensor::from(0.0f32),
    };
    // (D − A in bits, image, pixel, value, params)
    let mut gaps: Vec<(f64, usize, usize, u8, Vec<f32>)> = Vec::new();
    let mut by_value = vec![(0.0f64, 0usize); 256];
    for i in 0..n {
        let x = images.narrow(0, i as i64, 1);
        let px: Vec<u8> = Vec::try_from(&x.flatten(0, -1)).expect("u8");
        let (rec, kl) = tch::no_grad(|| vae.terms_at_mean(&x.to_kind(Kind::Float)));
        let (ai, kli) = (
            rec.double_value(&[0]) / std::f64::consts::LN_2,
            kl.double_value(&[0]) / std::f64::consts::LN_2,
        );
        let raw_f: Vec<f32> = tch::no_grad(|| {
            let (mu, _) = vae.encode(&x.to_kind(Kind::Float));
            Vec::try_from(&vae.decode_raw(&mu).flatten(0, -1)).expect("f32")
        });
        let (mu_e, _) = engine.encode(&px).expect("encode");
        let raw_e = engine.decode_raw(&mu_e).expect("decode");
        let (bi, kle) = terms_at_mean(&engine, &px).expect("engine terms");
        let a_pixels: Vec<f64> = tch::no_grad(|| {
            let raw = tch::Tensor::from_slice(&raw_f)
                .reshape([3 * mixtures as i64, dims as i64])
                .transpose(0, 1)
                .reshape([dims as i64, 3 * mixtures as i64, 1, 1]);
            let xs = x.to_kind(Kind::Float).reshape([dims as i64, 1, 1, 1]);
            Vec::try_from(&per_pixel.nll(&xs, &raw).to_kind(Kind::Double)).expect("f64")
        });
        let d_pixels: Vec<f64> = (0..dims)
            .map(|j| exact_bits(&raw_f, mixtures, dims, j, px[j]))
            .collect();
        for j in 0..dims {
            let gap = d_pixels[j] - a_pixels[j] / std::f64::consts::LN_2;
            by_value[usize::from(px[j])].0 += gap;
            by_value[usize::from(px[j])].1 += 1;
            if gap.abs() > 0.05 {
                let params = (0..3 * mixtures).map(|p| raw_f[p * dims + j]).collect();
                gaps.push((gap, i, j, px[j], params));
            }
        }
        let di: f64 = d_pixels.iter().sum();
        let ci: f64 = (0..dims)
            .map(|j| exact_bits(&raw_e, mixtures, dims, j, px[j]))
            .sum();
        if (bi - ai) / ai > worst.0 {
            worst = ((bi - ai) / ai, i);
        }
        a += ai;
        b += bi;
        c += ci;
        d += di;
        kl_f += kli;
        kl_e += kle;
    }
    let per = |v: f64| v / (n * dims) as f64;
    println!("{n} images, bits per sub-pixel:");
    println!("A training loss (f32)      {:.5}", per(a));
    println!("D exact, float outputs     {:.5}", per(d));
    println!("C exact, engine outputs    {:.5}", per(c));
    println!("B engine quantised tables  {:.5}", per(b));
    println!("KL float {:.5}  engine {:.5}", per(kl_f), per(kl_e));
    println!(
        "worst image {} (+{:.2} % B over A)",
        worst.1,
        100.0 * worst.0
    );
    gaps.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
    let total_gap: f64 = gaps.iter().map(|g| g.0).sum();
    println!(
        "{} pixels differ by more than 0.05 bits, summing to {:.1} bits of D − A ({:.5} bpd)",
        gaps.len(),
        total_gap,
        per(total_gap)
    );
    for (gap, i, j, v, params) in gaps.iter().take(12) {
        println!("  image {i} pixel {j} value {v}: D − A = {gap:+.3} bits, raw [logits|means|log scales] {params:?}");
    }
    for tables in [BinnedStart::Clamped, BinnedStart::Exact] {
        let mut coder = start_stream(StreamStart::Checksum(0));
        for i in 0..n {
            let x = images.narrow(0, i as i64, 1);
            let px: Vec<u8> = Vec::try_from(&x.flatten(0, -1)).expect("u8");
            push_block(&mut coder, &engine, &px, tables).expect("push");
        }
        let bytes = finish_stream(coder).expect("flush").len();
        println!(
            "coded as one chain with {tables:?} tables: {bytes} bytes, {:.5} bpd",
            per(8.0 * bytes as f64)
        );
    }
    println!("D − A by pixel value (bits in all, pixels):");
    for (v, (g, n)) in by_value.iter().enumerate() {
        if g.abs() > 1.0 {
            println!("  {v:3}: {g:+9.1} over {n}");
        }
    }
}
