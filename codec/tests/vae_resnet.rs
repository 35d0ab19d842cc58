//! The residual (`resnet`) VAE on the coding path: random-weight models' tiles round trip, a
//! chained archive round trips and a truncated one is an error, the model file round trips with
//! its id, and the network outputs and payloads are frozen (FNV-1a) and identical across threads.

mod common;

use common::{smooth_pixels, Rng};
use idfcodec_codec::engine::Shape;
use idfcodec_codec::entropy::{
    close_stream, finish_stream, open_stream, start_stream, BinnedStart, StreamStart,
};
use idfcodec_codec::format::EntryName;
use idfcodec_codec::model::vae::arch::VaeArch;
use idfcodec_codec::model::vae::{pop_image, push_image};
use idfcodec_codec::{
    compress_archive, decompress_archive, ArchiveLayout, DecodeOptions, EncodeOptions, Model,
    ModelStorage, NamedImage, NamedModel, Vae, VaeConfig,
};

fn config(blocks: usize, hidden: usize, latent: usize) -> VaeConfig {
    VaeConfig {
        arch: VaeArch::Resnet { blocks },
        in_channels: 1,
        image_size: 28,
        latent,
        hidden,
        mixtures: 1,
        bucket_bits: 10,
        upper_latents: vec![],
        latent_grids: idfcodec_codec::model::vae::LatentGrids::Standard,
    }
}

fn pixels(seed: u64, h: usize, w: usize) -> Vec<u8> {
    smooth_pixels(&mut Rng::new(seed), Shape::new(1, h, w))
}

fn round_trip(vae: &Vae, planes: &[u8], h: usize, w: usize) -> Vec<u8> {
    let start = StreamStart::Checksum(0x5eed);
    let mut coder = start_stream(start);
    push_image(&mut coder, vae, planes, (h, w), BinnedStart::Exact).unwrap();
    let payload = finish_stream(coder).unwrap();
    let mut coder = open_stream(&payload).unwrap();
    assert_eq!(
        pop_image(&mut coder, vae, (h, w), BinnedStart::Exact).unwrap(),
        planes
    );
    close_stream(coder, start).unwrap();
    payload
}

#[test]
fn tiles_and_files_round_trip() {
    for (seed, blocks) in [(0u64, 0usize), (1, 1), (2, 2)] {
        let vae = Vae::new_random(config(blocks, 8, 16), seed).unwrap();
        round_trip(&vae, &pixels(seed, 28, 56), 28, 56);
        let file = vae.to_safetensors(vae.card()).unwrap();
        let back = Vae::from_safetensors(&file).unwrap();
        assert_eq!(back.id(), vae.id());
        assert_eq!(back, vae);
    }
    // the architecture record: old one-layer MLP files keep their JSON; resnet carries blocks
    let json = serde_json::to_string(&config(2, 8, 16)).unwrap();
    assert!(json.contains(r#""arch":{"resnet":{"blocks":2}}"#), "{json}");
    for bad in [
        VaeConfig {
            hidden: 513,
            ..config(1, 8, 16)
        },
        config(17, 8, 16),
        VaeConfig {
            image_size: 30,
            ..config(1, 8, 16)
        },
    ] {
        assert!(bad.validate().is_err());
    }
}

fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Frozen: the engine's encoder and decoder outputs of a random-weight resnet VAE and the
/// payloads of two tiles. A change breaks every resnet VAE file written before. Regenerate only
/// with a format change: `cargo test -p idfcodec-codec --test vae_resnet -- --nocapture`.
const FROZEN_RESNET_FINGERPRINTS: [u64; 3] = [
    0x3668_6ed1_e9c1_0747,
    0x1ae5_c023_5631_a967,
    0xc179_f872_aa93_253c,
];

fn fingerprints() -> [u64; 3] {
    let vae = Vae::new_random(config(1, 8, 12), 42).unwrap();
    let x = pixels(7, 28, 28);
    let (mu, logvar) = vae.encode(&x).unwrap();
    let raw = vae.decode_raw(&mu).unwrap();
    let floats = |v: &[f32]| v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<_>>();
    let mut payloads = round_trip(&vae, &x, 28, 28);
    payloads.extend(round_trip(&vae, &pixels(8, 56, 28), 56, 28));
    [
        fnv1a([floats(&mu), floats(&logvar)].concat()),
        fnv1a(floats(&raw)),
        fnv1a(payloads),
    ]
}

#[test]
fn fingerprints_are_frozen_across_threads() {
    let got = fingerprints();
    println!("{got:#x?}");
    let other = std::thread::spawn(fingerprints).join().unwrap();
    assert_eq!(other, got);
    assert_eq!(got, FROZEN_RESNET_FINGERPRINTS);
}

#[test]
fn chained_archives_round_trip_and_truncation_is_an_error() {
    let model = Model::from(Vae::new_random(config(1, 8, 32), 4).unwrap());
    let entries: Vec<NamedImage> = (0..6)
        .map(|i| NamedImage {
            name: EntryName::new(format!("{i}.png")).unwrap(),
            image: idfcodec_codec::Image::gray8(28, 28, pixels(300 + i, 28, 28)).unwrap(),
        })
        .collect();
    let options = |threads| EncodeOptions {
        threads,
        tile_side: 64,
        model_storage: ModelStorage::External,
        archive_layout: ArchiveLayout::Chained,
    };
    let chained = compress_archive(&entries, &model, &options(1)).unwrap();
    assert_eq!(
        compress_archive(&entries, &model, &options(2)).unwrap(),
        chained
    );
    let named = NamedModel {
        name: "vae-resnet-test",
        model: &model,
    };
    let decode = |b: &[u8]| decompress_archive(b, &named, &DecodeOptions::default());
    assert_eq!(decode(&chained).unwrap(), entries);
    for cut in [1, 5, chained.len() / 2] {
        assert!(
            decode(&chained[..chained.len() - cut]).is_err(),
            "cut {cut}"
        );
    }
}
