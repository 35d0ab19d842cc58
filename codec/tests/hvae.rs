//! The hierarchical VAE (the `vae` family with `upper_latents`) coded in Bit-Swap's order:
//! round trips with 1, 2 and 4 stochastic layers over random-weight models, damaged and cut
//! payloads, the initial bits Bit-Swap needs against the naive order (counted on the coder),
//! frozen fingerprints, the model file and the image pipeline.

mod common;

use common::{smooth_pixels, Rng};
use idfcodec_codec::engine::Shape;
use idfcodec_codec::entropy::{
    close_stream, finish_stream, open_stream, start_stream, BinnedStart, StreamStart,
};
use idfcodec_codec::format::{Archive, EntryName, Limits};
use idfcodec_codec::model::vae::arch::VaeArch;
use idfcodec_codec::model::vae::LatentGrids;
use idfcodec_codec::model::vae::{initial_bits, pop_image, push_image, BucketGaussian, Order};
use idfcodec_codec::{
    compress, compress_archive, decompress, decompress_archive, ArchiveLayout, DecodeOptions,
    EncodeOptions, Family, Image, Model, ModelStorage, NamedImage, NamedModel, Vae, VaeConfig,
};

fn config(latents: &[usize], hidden: usize, mixtures: usize, bucket_bits: u32) -> VaeConfig {
    VaeConfig {
        arch: VaeArch::Mlp,
        in_channels: 1,
        image_size: 28,
        latent: latents[0],
        hidden,
        mixtures,
        bucket_bits,
        upper_latents: latents[1..].to_vec(),
        latent_grids: idfcodec_codec::model::vae::LatentGrids::Standard,
    }
}

/// `c` with fitted grids below the top (random grids in [`Vae::new_random`]: means ±0.1, scales
/// ½ to 2).
fn fitted(c: VaeConfig) -> VaeConfig {
    VaeConfig {
        latent_grids: LatentGrids::Fitted,
        ..c
    }
}

fn pixels(seed: u64, h: usize, w: usize) -> Vec<u8> {
    smooth_pixels(&mut Rng::new(seed), Shape::new(1, h, w))
}

/// Encodes a tile as its own stream (start `start`), decodes it back and checks the pixels and
/// the end state.
fn round_trip(vae: &Vae, planes: &[u8], h: usize, w: usize, start: StreamStart) -> Vec<u8> {
    let mut coder = start_stream(start);
    push_image(&mut coder, vae, planes, (h, w), BinnedStart::Exact).unwrap();
    let payload = finish_stream(coder).unwrap();
    let mut coder = open_stream(&payload).unwrap();
    let back = pop_image(&mut coder, vae, (h, w), BinnedStart::Exact).unwrap();
    close_stream(coder, start).unwrap();
    assert_eq!(back, planes);
    payload
}

#[test]
fn one_two_and_four_layers_round_trip() {
    let mut rng = Rng::new(17);
    for (seed, latents) in [
        vec![6],
        vec![8, 4],
        vec![3, 9],
        vec![8, 6, 4, 2],
        vec![2, 2, 2, 2],
    ]
    .into_iter()
    .enumerate()
    {
        let seed = seed as u64;
        let model = Vae::new_random(
            config(
                &latents,
                rng.range(4, 40) as usize,
                rng.range(1, 3) as usize,
                rng.range(4, 12) as u32,
            ),
            seed,
        )
        .unwrap();
        assert_eq!(model.config().layers(), latents.len());
        let (h, w) = (28, 28 * rng.range(1, 3) as usize);
        let x = pixels(seed + 40, h, w);
        round_trip(
            &model,
            &x,
            h,
            w,
            StreamStart::Checksum(rng.next_u64() as u32),
        );
        // the version-1 start (state 1): the first pops run dry, still exact
        round_trip(&model, &x, h, w, StreamStart::One);
        for fill in [0u8, 255] {
            round_trip(&model, &vec![fill; 784], 28, 28, StreamStart::Checksum(7));
        }
        if latents.len() > 1 {
            // the same networks on fitted grids: other buckets, the same pixels back
            let grids = Vae::new_random(fitted(model.config().clone()), seed).unwrap();
            assert!(grids.grid(1).is_some() && grids.grid(latents.len()).is_none());
            let a = round_trip(&grids, &x, h, w, StreamStart::Checksum(9));
            assert_ne!(a, round_trip(&model, &x, h, w, StreamStart::Checksum(9)));
            round_trip(&grids, &x, h, w, StreamStart::One);
        }
    }
}

/// Fitted grids: a Gaussian on a layer's grid moved to `m` and scaled by `s` is the standardised
/// Gaussian on the standard grid (the same tables), and bad grid values are refused on loading.
#[test]
fn fitted_grids_standardise_and_refuse_bad_values() {
    let buckets = idfcodec_codec::model::vae::Buckets::new(8);
    let (m, s) = (0.75f32, 0.125f32); // exact in binary: the standardised values are exact
    for (mu, logvar) in [(0.8f32, -5.0f32), (0.2, -3.0), (3.0, 1.0)] {
        let on_grid = BucketGaussian::on_grid(&buckets, mu, logvar, Some((m, s))).unwrap();
        let standard = BucketGaussian::new(&buckets, (mu - m) / s, logvar - 2.0 * s.ln()).unwrap();
        let a: Vec<u32> = (0..256).map(|k| on_grid.probability(k)).collect();
        let b: Vec<u32> = (0..256).map(|k| standard.probability(k)).collect();
        let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        // exp(logvar/2)/s against exp(logvar/2 − ln s): equal up to the last bits of σ
        assert!(
            differ <= 2,
            "{differ} buckets differ for N({mu}, e^{logvar})"
        );
    }
    let c = fitted(config(&[6, 4], 16, 1, 8));
    let good = Vae::new_random(c.clone(), 3).unwrap();
    let specs = c.tensor_specs();
    let values = |edit: &dyn Fn(&str, &mut Vec<f32>)| -> Vec<Vec<f32>> {
        let bytes = good.to_safetensors(&serde_json::json!({})).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        (specs.iter())
            .map(|spec| {
                let t = st.tensor(&spec.name).unwrap();
                let mut v: Vec<f32> = (t.data().chunks_exact(4))
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                    .collect();
                edit(&spec.name, &mut v);
                v
            })
            .collect()
    };
    let unchanged = Vae::from_tensors(c.clone(), serde_json::json!({}), values(&|_, _| {}));
    assert_eq!(unchanged.unwrap().id(), good.id());
    for (name, bad) in [
        ("grid1.scale", 0.0f32),
        ("grid1.scale", -1.0),
        ("grid1.scale", f32::INFINITY),
        ("grid1.scale", 2e4),
        ("grid1.mean", f32::NAN),
        ("grid1.mean", -2e4),
    ] {
        let v = values(&|n, v| {
            if n == name {
                v[2] = bad;
            }
        });
        assert!(
            Vae::from_tensors(c.clone(), serde_json::json!({}), v).is_err(),
            "{name} = {bad} was accepted"
        );
    }
    // a one-layer model has no layer below its top to fit
    assert!(Vae::new_random(fitted(config(&[6], 16, 1, 8)), 1).is_err());
}

#[test]
fn damaged_and_cut_payloads_give_errors_never_wrong_pixels() {
    let model = Vae::new_random(config(&[8, 6, 4], 24, 1, 10), 5).unwrap();
    let x = pixels(3, 28, 56);
    let start = StreamStart::Checksum(0x0bad_cafe);
    let payload = round_trip(&model, &x, 28, 56, start);
    let decode = |p: &[u8]| -> Option<Vec<u8>> {
        let mut coder = open_stream(p).ok()?;
        let back = pop_image(&mut coder, &model, (28, 56), BinnedStart::Exact).ok()?;
        close_stream(coder, start).ok()?;
        Some(back)
    };
    let mut rng = Rng::new(23);
    let mut damaged = 0;
    for _ in 0..60 {
        let mut p = payload.clone();
        let i = rng.range(0, p.len() as i64 - 1) as usize;
        p[i] ^= 1 << rng.range(0, 7);
        match decode(&p) {
            Some(back) => assert_eq!(back, x, "a damaged payload decoded to other pixels"),
            None => damaged += 1,
        }
    }
    assert!(damaged > 50, "{damaged}");
    for cut in [1, 2, 5, payload.len() / 2] {
        assert!(decode(&payload[..payload.len() - cut]).is_none());
    }
    assert!(decode(&[]).is_none());
}

/// Bit-Swap's point: the bits a block's encoder takes off the stack before it has pushed
/// enough of its own do not grow with the depth; popping every posterior first (plain BB-ANS on
/// the hierarchy) needs more with each layer. The models share their first layer (same seed,
/// the first tensors drawn first), so Bit-Swap's count is the same for every depth. Counted on
/// the coder (bits), not timed.
#[test]
fn initial_bits_do_not_grow_with_depth() {
    let x = pixels(8, 28, 28);
    let counts: Vec<(usize, usize)> = (1..=4)
        .map(|layers| {
            let model = Vae::new_random(config(&vec![12; layers], 32, 1, 10), 3).unwrap();
            (
                initial_bits(&model, &x, Order::BitSwap).unwrap(),
                initial_bits(&model, &x, Order::Naive).unwrap(),
            )
        })
        .collect();
    println!("(Bit-Swap, naive) initial bits for 1 to 4 layers: {counts:?}");
    let (one, _) = counts[0];
    assert!(one > 12, "the first posterior takes bits: {one}");
    for (l, &(bitswap, naive)) in counts.iter().enumerate() {
        assert_eq!(bitswap, one, "Bit-Swap with {} layers", l + 1);
        if l > 0 {
            assert!(naive > counts[l - 1].1 + 12, "naive with {} layers", l + 1);
        }
    }
    assert_eq!(
        counts[0].0, counts[0].1,
        "one layer: both orders are BB-ANS"
    );
    assert!(counts[3].1 > 3 * one, "{counts:?}");
}

fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Frozen fingerprints (FNV-1a) of the hierarchical coding: conditional-prior tables (the
/// Gaussian bucket tables of `decoder2`'s outputs for fixed inputs), a model's id and the
/// payloads of random-weight 2- and 3-layer models. They must never change: a change breaks
/// every hierarchical VAE file written before. To regenerate after a deliberate format change
/// (with a version bump), run `cargo test -p idfcodec-codec --test hvae fingerprints --
/// --nocapture` and copy the printed values.
const FROZEN_HVAE_FINGERPRINTS: [u64; 3] = [
    0x8ff2_cdeb_8940_1520,
    0x539c_c568_3c35_1a0c,
    0x6548_60cf_85ad_978e,
];

fn hvae_fingerprints() -> [u64; 3] {
    let model = Vae::new_random(config(&[6, 4], 16, 1, 8), 9).unwrap();
    let buckets = idfcodec_codec::model::vae::Buckets::new(8);
    let above: Vec<f32> = (0..4).map(|k| buckets.centre(40 + 50 * k)).collect();
    let (mu, logvar) = model.prior_below(2, &above).unwrap();
    let tables = fnv1a(mu.iter().zip(&logvar).flat_map(|(&m, &lv)| {
        let g = BucketGaussian::new(&buckets, m, lv).unwrap();
        (0..buckets.len())
            .flat_map(|k| g.probability(k).to_le_bytes())
            .collect::<Vec<_>>()
    }));
    let mut payloads = Vec::new();
    for (seed, latents) in [(0u64, vec![12, 6]), (1, vec![10, 8, 4])] {
        let model = Vae::new_random(config(&latents, 24, 2, 10), seed).unwrap();
        let x = pixels(seed + 200, 28, 56);
        payloads.extend(round_trip(
            &model,
            &x,
            28,
            56,
            StreamStart::Checksum(seed as u32 + 1),
        ));
    }
    [tables, model.id(), fnv1a(payloads)]
}

#[test]
fn fingerprints_are_frozen() {
    let got = hvae_fingerprints();
    println!("{got:#x?}");
    assert_eq!(got, FROZEN_HVAE_FINGERPRINTS);
}

/// Frozen fingerprints of fitted grids (as [`FROZEN_HVAE_FINGERPRINTS`], regenerated the same
/// way with `fitted_fingerprints`): the tables of a Gaussian on a moved and scaled grid, the
/// centres fed to the networks, a model's id and the payloads of 2- and 3-layer models.
const FROZEN_FITTED_FINGERPRINTS: [u64; 3] = [
    0x5974_915c_681f_ad0b,
    0xc2a0_82c2_b9ff_9b0f,
    0xc576_6462_09c6_53f8,
];

fn fitted_fingerprints() -> [u64; 3] {
    let buckets = idfcodec_codec::model::vae::Buckets::new(10);
    let tables = fnv1a(
        [(0.3f32, -6.0f32, 0.02f32, 0.03f32), (-1.0, -1.0, 0.5, 1.7)]
            .iter()
            .flat_map(|&(mu, logvar, m, s)| {
                let g = BucketGaussian::on_grid(&buckets, mu, logvar, Some((m, s))).unwrap();
                (0..buckets.len())
                    .flat_map(|k| g.probability(k).to_le_bytes())
                    .collect::<Vec<_>>()
            }),
    );
    let mut payloads = Vec::new();
    let mut ids = Vec::new();
    for (seed, latents) in [(0u64, vec![12, 6]), (1, vec![10, 8, 4])] {
        let model = Vae::new_random(fitted(config(&latents, 24, 2, 10)), seed).unwrap();
        ids.extend(model.id().to_le_bytes());
        let x = pixels(seed + 300, 28, 56);
        payloads.extend(round_trip(
            &model,
            &x,
            28,
            56,
            StreamStart::Checksum(seed as u32 + 5),
        ));
    }
    [tables, fnv1a(ids), fnv1a(payloads)]
}

#[test]
fn fitted_grid_fingerprints_are_frozen() {
    let got = fitted_fingerprints();
    println!("{got:#x?}");
    assert_eq!(got, FROZEN_FITTED_FINGERPRINTS);
}

#[test]
fn model_files_and_the_pipeline() {
    let vae = Vae::new_random(config(&[8, 4], 24, 1, 10), 11).unwrap();
    let model = Model::from(vae.clone());
    assert_eq!(model.family(), Family::Vae);
    assert!(
        model.summary().contains("2 latent layers 8/4"),
        "{}",
        model.summary()
    );
    let bytes = model.to_safetensors(model.card()).unwrap();
    let loaded = Model::from_safetensors(&bytes).unwrap();
    assert_eq!(loaded.id(), model.id());
    assert_eq!(loaded.vae().unwrap(), &vae);
    // with fitted grids: another model, its grids kept by the file
    let grids = Vae::new_random(fitted(config(&[8, 4], 24, 1, 10)), 11).unwrap();
    assert_ne!(grids.id(), vae.id());
    let summary = Model::from(grids.clone()).summary();
    assert!(
        summary.contains("2 latent layers 8/4 (fitted grids below the top)"),
        "{summary}"
    );
    let reloaded = Model::from_safetensors(
        &Model::from(grids.clone())
            .to_safetensors(&serde_json::json!({}))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(reloaded.id(), grids.id());
    assert_eq!(reloaded.vae().unwrap().grid(1), grids.grid(1));
    // a one-layer model of the same first layer is another model
    let one = Vae::new_random(config(&[8], 24, 1, 10), 11).unwrap();
    assert_ne!(one.id(), vae.id());
    let options = EncodeOptions {
        threads: 2,
        tile_side: 64,
        model_storage: ModelStorage::External,
        archive_layout: ArchiveLayout::Auto,
    };
    let named = NamedModel {
        name: "hvae-test",
        model: &model,
    };
    for (w, h) in [(28u32, 28u32), (5, 3), (60, 45)] {
        let image = Image::gray8(w, h, pixels(u64::from(w), h as usize, w as usize)).unwrap();
        let file = compress(&image, &model, &options).unwrap();
        assert_eq!(
            decompress(&file, &named, &DecodeOptions::default()).unwrap(),
            image
        );
        assert!(decompress(&file[..file.len() - 1], &named, &DecodeOptions::default()).is_err());
    }
    // an archive of a bits-back model chains its entries (Auto), and decodes bit-exactly
    let entries: Vec<NamedImage> = (0..4u32)
        .map(|k| NamedImage {
            name: EntryName::new(format!("{k}.png")).unwrap(),
            image: Image::gray8(28, 28, pixels(u64::from(k), 28, 28)).unwrap(),
        })
        .collect();
    let archive = compress_archive(&entries, &model, &options).unwrap();
    let read = Archive::read(&archive, &Limits::default()).unwrap();
    assert!(
        read.chain.is_some(),
        "a hierarchical VAE's archive is chained"
    );
    assert_eq!(
        decompress_archive(&archive, &named, &DecodeOptions::default()).unwrap(),
        entries
    );
    assert!(decompress_archive(
        &archive[..archive.len() - 3],
        &named,
        &DecodeOptions::default()
    )
    .is_err());
}

#[test]
fn hostile_configs_are_refused_before_allocation() {
    let mut c = config(&[8, 4], 24, 1, 10);
    c.upper_latents = vec![1_000_000];
    assert!(Vae::new_random(c.clone(), 1).is_err());
    c.upper_latents = vec![4; 20];
    assert!(Vae::new_random(c, 1).is_err());
}
