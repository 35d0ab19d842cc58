//! The VAE family's bits-back coding: round trips over many random-weight models and sizes,
//! the dry-stack start of a lone tile, damaged payloads, frozen fingerprints of the bucket
//! tables and payloads, the image pipeline and archives, and the measured overhead.

mod common;

use common::{smooth_pixels, Rng};
use constriction::stream::stack::DefaultAnsCoder;
use idfcodec_codec::engine::Shape;
use idfcodec_codec::entropy::{
    close_stream, finish_stream, open_stream, start_stream, BinnedStart, StreamStart,
};
use idfcodec_codec::format::{Archive, EntryName, Limits};
use idfcodec_codec::model::vae::arch::VaeArch;
use idfcodec_codec::model::vae::{pop_image, push_image, Buckets, Posterior};
use idfcodec_codec::{
    compress, compress_archive, decode_memory, decompress, decompress_archive, ArchiveDecoder,
    ArchiveLayout, DecodeOptions, EncodeOptions, Family, Image, ImageCodecError, Model,
    ModelStorage, NamedImage, NamedModel, Vae, VaeConfig,
};

fn config(
    in_channels: usize,
    latent: usize,
    hidden: usize,
    mixtures: usize,
    bucket_bits: u32,
) -> VaeConfig {
    VaeConfig {
        arch: VaeArch::Mlp,
        in_channels,
        image_size: 28,
        latent,
        hidden,
        mixtures,
        bucket_bits,
        upper_latents: vec![],
        latent_grids: idfcodec_codec::model::vae::LatentGrids::Standard,
    }
}

fn vae(seed: u64) -> Vae {
    Vae::new_random(config(1, 8, 32, 1, 10), seed).unwrap()
}

fn pixels(seed: u64, c: usize, h: usize, w: usize) -> Vec<u8> {
    smooth_pixels(&mut Rng::new(seed), Shape::new(c, h, w))
}

/// Encodes a tile as its own stream (start `start`) and decodes it back.
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
fn tiles_round_trip_over_many_models_and_sizes() {
    let mut rng = Rng::new(7);
    for seed in 0..12u64 {
        let c = if seed % 4 == 3 { 3 } else { 1 };
        let cfg = config(
            c,
            rng.range(1, 24) as usize,
            rng.range(4, 48) as usize,
            rng.range(1, 3) as usize,
            rng.range(4, 12) as u32,
        );
        let model = Vae::new_random(cfg, seed).unwrap();
        let (bh, bw) = (rng.range(1, 2) as usize, rng.range(1, 3) as usize);
        let (h, w) = (28 * bh, 28 * bw);
        let x = pixels(seed, c, h, w);
        round_trip(
            &model,
            &x,
            h,
            w,
            StreamStart::Checksum(rng.next_u64() as u32),
        );
        // The version-1 start (state 1): the first pops run dry at once, still exact.
        round_trip(&model, &x, h, w, StreamStart::One);
    }
}

#[test]
fn extreme_images_round_trip() {
    let model = vae(3);
    for fill in [0u8, 255, 128] {
        round_trip(
            &model,
            &vec![fill; 784],
            28,
            28,
            StreamStart::Checksum(0xffff_ffff),
        );
    }
    let noise = Rng::new(5).bytes(784);
    round_trip(&model, &noise, 28, 28, StreamStart::Checksum(0));
}

#[test]
fn wrong_shapes_are_errors() {
    let model = vae(1);
    let mut coder = DefaultAnsCoder::new();
    assert!(push_image(
        &mut coder,
        &model,
        &[0; 27 * 28],
        (27, 28),
        BinnedStart::Exact
    )
    .is_err());
    assert!(push_image(&mut coder, &model, &[0; 10], (28, 28), BinnedStart::Exact).is_err());
    assert!(pop_image(&mut coder, &model, (0, 28), BinnedStart::Exact).is_err());
}

#[test]
fn damaged_payloads_give_errors_never_wrong_pixels() {
    let model = vae(2);
    let x = pixels(9, 1, 28, 56);
    let start = StreamStart::Checksum(0x1234_5678);
    let payload = round_trip(&model, &x, 28, 56, start);
    let decode = |p: &[u8]| -> Option<Vec<u8>> {
        let mut coder = open_stream(p).ok()?;
        let back = pop_image(&mut coder, &model, (28, 56), BinnedStart::Exact).ok()?;
        close_stream(coder, start).ok()?;
        Some(back)
    };
    let mut rng = Rng::new(11);
    let mut damaged = 0;
    for _ in 0..60 {
        let mut p = payload.clone();
        let i = rng.range(0, p.len() as i64 - 1) as usize;
        p[i] ^= 1 << rng.range(0, 7);
        if let Some(back) = decode(&p) {
            assert_eq!(back, x, "a damaged payload decoded to other pixels");
        } else {
            damaged += 1;
        }
    }
    assert!(damaged > 50);
    for cut in [1, 2, 5, payload.len() / 2] {
        assert!(decode(&payload[..payload.len() - cut]).is_none());
    }
}

fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Frozen fingerprints (FNV-1a) of the bucket edges and centres, of posterior tables, and of
/// payloads of random-weight models. They must never change: a change breaks every VAE file
/// written before. To regenerate after a deliberate format change (with a version bump), run
/// `cargo test -p idfcodec-codec --test vae fingerprints -- --nocapture` and copy the printed
/// values.
const FROZEN_VAE_FINGERPRINTS: [u64; 4] = [
    0x7831_b6e6_7f30_2719,
    0x2fa0_fcc6_5edf_6409,
    0x8aec_d745_dbf6_2b2c,
    0x3bd0_cdd6_2e1a_9bc4,
];

fn vae_fingerprints() -> [u64; 4] {
    let buckets = Buckets::new(12);
    let edges = fnv1a((0..=buckets.len()).flat_map(|k| buckets.edge(k).to_le_bytes()));
    let centres = fnv1a((0..buckets.len()).flat_map(|k| buckets.centre(k).to_le_bytes()));
    let b10 = Buckets::new(10);
    let tables = fnv1a(
        [(0.0f32, 0.0f32), (0.37, -3.1), (-2.5, -9.0), (4.0, 1.5)]
            .iter()
            .flat_map(|&(mu, lv)| {
                let p = Posterior::new(&b10, mu, lv).unwrap();
                (0..b10.len())
                    .flat_map(|k| p.probability(k).to_le_bytes())
                    .collect::<Vec<_>>()
            }),
    );
    let mut payloads = Vec::new();
    for seed in 0..3u64 {
        let model = Vae::new_random(config(1, 12, 24, 2, 10), seed).unwrap();
        let x = pixels(seed + 100, 1, 28, 56);
        payloads.extend(round_trip(
            &model,
            &x,
            28,
            56,
            StreamStart::Checksum(seed as u32),
        ));
    }
    [edges, centres, tables, fnv1a(payloads)]
}

#[test]
fn fingerprints_are_frozen() {
    let got = vae_fingerprints();
    println!("{got:#x?}");
    assert_eq!(got, FROZEN_VAE_FINGERPRINTS);
}

fn named(model: &Model) -> NamedModel<'_> {
    NamedModel {
        name: "vae-test",
        model,
    }
}

fn options(threads: usize) -> EncodeOptions {
    EncodeOptions {
        threads,
        tile_side: 64,
        model_storage: ModelStorage::External,
        archive_layout: ArchiveLayout::Auto,
    }
}

#[test]
fn images_and_archives_through_the_pipeline() {
    let model = Model::from(vae(4));
    assert_eq!(model.family(), Family::Vae);
    assert_eq!(
        Model::from_safetensors(&model.to_safetensors(model.card()).unwrap())
            .unwrap()
            .id(),
        model.id()
    );
    for (i, (w, h)) in [(28u32, 28u32), (1, 1), (30, 17), (100, 70)]
        .into_iter()
        .enumerate()
    {
        let image = Image::gray8(w, h, pixels(i as u64, 1, h as usize, w as usize)).unwrap();
        let one = compress(&image, &model, &options(1)).unwrap();
        assert_eq!(compress(&image, &model, &options(2)).unwrap(), one);
        let back = decompress(&one, &named(&model), &DecodeOptions::default()).unwrap();
        assert_eq!(back, image);
        // damage inside the file: an error or the very same image
        for k in [one.len() / 2, one.len() - 2] {
            let mut bad = one.clone();
            bad[k] ^= 0x10;
            if let Ok(img) = decompress(&bad, &named(&model), &DecodeOptions::default()) {
                assert_eq!(img, image);
            }
        }
        assert!(decompress(
            &one[..one.len() - 1],
            &named(&model),
            &DecodeOptions::default()
        )
        .is_err());
    }
    let entries: Vec<NamedImage> = (0..5)
        .map(|i| NamedImage {
            name: EntryName::new(format!("{i}.png")).unwrap(),
            image: Image::gray8(28, 28, pixels(50 + i, 1, 28, 28)).unwrap(),
        })
        .collect();
    let archive = compress_archive(&entries, &model, &options(1)).unwrap();
    let back = decompress_archive(&archive, &named(&model), &DecodeOptions::default()).unwrap();
    assert_eq!(back, entries);
}

/// A VAE's archives are chained by default (format versions 4 to 6): the entries share one stream, so
/// every entry after the first draws its latents from the bits the entries before it pushed,
/// and the archive is smaller than one of independent entries. Both decode exactly; damage and
/// truncation of the chain give an error or the very same images, never other pixels.
#[test]
fn chained_archives_carry_the_bits_from_entry_to_entry() {
    // 32 latent dimensions: a lone entry's draws take more than its start state's 32 bits
    let model = Model::from(Vae::new_random(config(1, 32, 32, 1, 10), 4).unwrap());
    let entries: Vec<NamedImage> = (0..12)
        .map(|i| NamedImage {
            name: EntryName::new(format!("digit-{i:02}.png")).unwrap(),
            image: Image::gray8(28, 28, pixels(300 + i, 1, 28, 28)).unwrap(),
        })
        .collect();
    let with = |layout| EncodeOptions {
        archive_layout: layout,
        ..options(1)
    };
    let chained = compress_archive(&entries, &model, &with(ArchiveLayout::Chained)).unwrap();
    assert_eq!(
        compress_archive(&entries, &model, &with(ArchiveLayout::Auto)).unwrap(),
        chained,
        "Auto chains a bits-back model's archive"
    );
    assert_eq!(
        compress_archive(
            &entries,
            &model,
            &EncodeOptions {
                threads: 2,
                ..with(ArchiveLayout::Chained)
            }
        )
        .unwrap(),
        chained,
        "threads do not change the chain"
    );
    let independent =
        compress_archive(&entries, &model, &with(ArchiveLayout::Independent)).unwrap();
    assert_eq!(&chained[..2], &[0x69, 0xa6]);
    let lookup = named(&model);
    let decoder = ArchiveDecoder::new(&chained, &lookup, &DecodeOptions::default()).unwrap();
    assert!(decoder.is_chained());
    for bytes in [&chained, &independent] {
        let back = decompress_archive(bytes, &named(&model), &DecodeOptions::default()).unwrap();
        assert_eq!(back, entries);
    }
    println!(
        "12 entries: chained {} bytes, independent {} bytes",
        chained.len(),
        independent.len()
    );
    assert!(
        chained.len() + 12 * 4 < independent.len(),
        "the chain saves at least each entry's start state"
    );
    let decode =
        |bytes: &[u8]| decompress_archive(bytes, &named(&model), &DecodeOptions::default());
    for k in (0..chained.len()).step_by(chained.len() / 40) {
        let mut bad = chained.clone();
        bad[k] ^= 0x04;
        if let Ok(back) = decode(&bad) {
            assert_eq!(back, entries, "byte {k} flipped gave other images");
        }
    }
    for cut in [1, 5, chained.len() / 2] {
        assert!(
            decode(&chained[..chained.len() - cut]).is_err(),
            "cut {cut}"
        );
    }
    // the whole archive must fit the memory budget: it is decoded before any entry is given
    let read = Archive::read(&chained, &Limits::default()).unwrap();
    let one_entry = decode_memory(&read.entries[0].image.header, Some(&model), 0);
    let tight = DecodeOptions {
        max_memory: one_entry + 10 * 28 * 28,
        ..DecodeOptions::default()
    };
    let independent_fits = ArchiveDecoder::new(&independent, &lookup, &tight);
    assert!(
        independent_fits.is_ok(),
        "independent entries decode one batch at a time"
    );
    assert!(matches!(
        ArchiveDecoder::new(&chained, &named(&model), &tight),
        Err(ImageCodecError::MemoryBudget { .. })
    ));
}

/// What the bits-back chain saves: one 28×28 block alone against 16 blocks in one tile (each
/// block after the first pops its posterior from the bits the earlier ones pushed), beside the
/// cost without any bits back. Printed, and bounded loosely.
#[test]
fn overhead_of_a_lone_block() {
    let model = Vae::new_random(config(1, 16, 32, 1, 10), 21).unwrap();
    let x = pixels(77, 1, 112, 112);
    let start = StreamStart::Checksum(0xdead_beef);
    let tile = round_trip(&model, &x, 112, 112, start).len() as f64 * 8.0;
    let blocks: f64 = (0..16)
        .map(|b| {
            let (by, bx) = (b / 4, b % 4);
            let block: Vec<u8> = (0..28)
                .flat_map(|y| x[(by * 28 + y) * 112 + bx * 28..][..28].to_vec())
                .collect();
            round_trip(&model, &block, 28, 28, start).len() as f64 * 8.0
        })
        .sum();
    println!(
        "16 blocks in one tile: {tile} bits ({:.4} bpd); 16 lone blocks: {blocks} bits ({:.4} bpd)",
        tile / (112.0 * 112.0),
        blocks / (112.0 * 112.0)
    );
    assert!(tile < blocks);
}

/// A lone tile whose posterior draw takes more bits than the stream holds: a one-dimensional
/// latent with a very narrow posterior, a start state whose quantile falls in the posterior's
/// far tail (24 bits taken), and a near-certain decoder. The honest stream then ends below
/// `2^32` with no words left (a payload of at most 4 bytes), yet decodes exactly: the pipeline
/// must not stop it early (`PlaneModel::bits_back`).
#[test]
fn a_stream_taken_dry_by_the_posterior_still_decodes() {
    let cfg = config(1, 1, 1, 1, 4);
    let mut values: Vec<Vec<f32>> = cfg
        .tensor_specs()
        .iter()
        .map(|s| vec![0.0; s.shape.iter().product()])
        .collect();
    values[5] = vec![0.3, -12.0]; // encoder.fc2.bias: μ = 0.3, log σ² = −12
    values[11] = [vec![0.0; 784], vec![-1.0; 784], vec![-7.0; 784]].concat(); // pixels ≈ 0
    let model = Vae::from_tensors(cfg, serde_json::json!({}), values).unwrap();
    let x = vec![0u8; 784];
    let start = StreamStart::Checksum(0x00ff_ffff);
    let payload = round_trip(&model, &x, 28, 28, start);
    assert!(payload.len() <= 4, "{} bytes", payload.len());
    // and through the pipeline, whatever the checksum
    let model = Model::from(model);
    let image = Image::gray8(28, 28, x).unwrap();
    let bytes = compress(&image, &model, &options(1)).unwrap();
    let named = NamedModel {
        name: "dry",
        model: &model,
    };
    assert_eq!(
        decompress(&bytes, &named, &DecodeOptions::default()).unwrap(),
        image
    );
}
