//! The hierarchical VAE (the `vae` family with `upper_latents`) coded in Bit-Swap's order:
//! round trips with 1, 2 and 4 stochastic layers over random-weight models, damaged and cut
//! payloads, the initial bits Bit-Swap needs against the naive order (counted on the coder),
//! frozen fingerprints, the model file and the image pipeline.

mod common;

use common::{smooth_pixels, Rng};
use idfcodec_codec::engine::Shape;
use idfcodec_codec::entropy::{
    close_stream, finish_stream, open_stream, start_stream, StreamStart,
};
use idfcodec_codec::format::{Archive, EntryName, Limits};
use idfcodec_codec::model::vae::arch::VaeArch;
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
    }
}

fn pixels(seed: u64, h: usize, w: usize) -> Vec<u8> {
    smooth_pixels(&mut Rng::new(seed), Shape::new(1, h, w))
}

/// Encodes a tile as its own stream (start `start`), decodes it back and checks the pixels and
/// the end state.
fn round_trip(vae: &Vae, planes: &[u8], h: usize, w: usize, start: StreamStart) -> Vec<u8> {
    let mut coder = start_stream(start);
    push_image(&mut coder, vae, planes, h, w).unwrap();
    let payload = finish_stream(coder).unwrap();
    let mut coder = open_stream(&payload).unwrap();
    let back = pop_image(&mut coder, vae, h, w).unwrap();
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
    }
}

#[test]
fn damaged_and_cut_payloads_give_errors_never_wrong_pixels() {
    let model = Vae::new_random(config(&[8, 6, 4], 24, 1, 10), 5).unwrap();
    let x = pixels(3, 28, 56);
    let start = StreamStart::Checksum(0x0bad_cafe);
    let payload = round_trip(&model, &x, 28, 56, start);
    let decode = |p: &[u8]| -> Option<Vec<u8>> {
        let mut coder = open_stream(p).ok()?;
        let back = pop_image(&mut coder, &model, 28, 56).ok()?;
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
