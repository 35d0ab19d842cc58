//! Measures a VAE model file's bits-back coding on a folder of gray PNGs (e.g. the MNIST test
//! set written by `idfcodec dataset-png`): the first N images as one archive and each alone,
//! encode and decode on one thread, bit-exact check, rates in bits per dimension (everything in
//! the files counted: container, names, checksums); then the images as one chain in one stream,
//! and the mean initial bits a block needs in Bit-Swap's order and in the naive one (a
//! hierarchical model: `upper_latents`).
//!
//! `cargo run --release -p idfcodec-codec --example vae_rate -- MODEL.safetensors DIR [N]`

use std::path::PathBuf;
use std::time::Instant;

use idfcodec_codec::entropy::{
    close_stream, finish_stream, open_stream, start_stream, StreamStart,
};
use idfcodec_codec::format::EntryName;
use idfcodec_codec::model::vae::{initial_bits, pop_image, push_image, Order};
use idfcodec_codec::{
    compress, compress_archive, decompress_archive, png, DecodeOptions, EncodeOptions, Model,
    ModelStorage, NamedImage, NamedModel,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (model_path, dir) = (PathBuf::from(&args[0]), PathBuf::from(&args[1]));
    let n: usize = args.get(2).map_or(1000, |v| v.parse().expect("N"));
    let model = Model::from_safetensors(&std::fs::read(&model_path).unwrap()).unwrap();
    println!("model: {} ({})", model_path.display(), model.summary());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    files.truncate(n);
    let entries: Vec<NamedImage> = files
        .iter()
        .map(|p| NamedImage {
            name: EntryName::new(p.file_name().unwrap().to_string_lossy().to_string()).unwrap(),
            image: png::read(&std::fs::read(p).unwrap())
                .unwrap()
                .to_image()
                .unwrap(),
        })
        .collect();
    let n = entries.len();
    let dims: u64 = entries
        .iter()
        .map(|e| u64::from(e.image.width()) * u64::from(e.image.height()))
        .sum();
    let options = EncodeOptions {
        threads: 1,
        tile_side: 128,
        model_storage: ModelStorage::External,
    };
    let named = NamedModel {
        name: "vae",
        model: &model,
    };
    let t = Instant::now();
    let archive = compress_archive(&entries, &model, &options).unwrap();
    let encode_s = t.elapsed().as_secs_f64();
    let decode_options = DecodeOptions {
        threads: 1,
        ..DecodeOptions::default()
    };
    let t = Instant::now();
    let back = decompress_archive(&archive, &named, &decode_options).unwrap();
    let decode_s = t.elapsed().as_secs_f64();
    assert!(back == entries, "the archive did not decode bit-exactly");
    let lone: usize = entries
        .iter()
        .map(|e| compress(&e.image, &model, &options).unwrap().len())
        .sum();
    println!(
        "{n} images, {dims} dims: archive {} bytes = {:.4} bpd (bit-exact); each alone: {lone} bytes = {:.4} bpd",
        archive.len(),
        archive.len() as f64 * 8.0 / dims as f64,
        lone as f64 * 8.0 / dims as f64
    );
    println!(
        "one thread: encode {:.1} images/s, decode {:.1} images/s",
        n as f64 / encode_s,
        n as f64 / decode_s
    );
    chain(&model, &entries, dims);
}

/// What the archive would cost if its entries shared one stream (the chain BB-ANS assumes; not
/// in format version 3): the images side by side as one `28 × 28·N` strip, pushed as blocks in
/// one ANS stream that starts at `2^32` (no checksum) — payload bytes only, the first image's
/// initial bits and the final flush included.
fn chain(model: &Model, entries: &[NamedImage], dims: u64) {
    let Some(vae) = model.vae() else { return };
    let s = vae.config().image_size;
    if entries
        .iter()
        .any(|e| e.image.width() as usize != s || e.image.height() as usize != s)
    {
        return;
    }
    let n = entries.len();
    let mut strip = vec![0u8; s * s * n];
    for (k, e) in entries.iter().enumerate() {
        for y in 0..s {
            strip[y * s * n + k * s..][..s].copy_from_slice(&e.image.samples()[y * s..][..s]);
        }
    }
    let start = StreamStart::Checksum(0);
    let t = Instant::now();
    let mut coder = start_stream(start);
    push_image(&mut coder, vae, &strip, s, s * n).unwrap();
    let payload = finish_stream(coder).unwrap();
    let encode_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut coder = open_stream(&payload).unwrap();
    let back = pop_image(&mut coder, vae, s, s * n).unwrap();
    close_stream(coder, start).unwrap();
    let decode_s = t.elapsed().as_secs_f64();
    assert!(back == strip, "the chain did not decode bit-exactly");
    println!(
        "one chain of {n} images: {} bytes = {:.4} bpd (bit-exact); encode {:.1} images/s, decode {:.1} images/s",
        payload.len(),
        payload.len() as f64 * 8.0 / dims as f64,
        n as f64 / encode_s,
        n as f64 / decode_s
    );
    let mean_bits = |order| {
        let total: usize = (entries.iter())
            .map(|e| initial_bits(vae, e.image.samples(), order).unwrap())
            .sum();
        total as f64 / n as f64
    };
    println!(
        "initial bits per block ({} stochastic layers), mean over the {n} images: Bit-Swap {:.1}, naive order {:.1}",
        vae.config().layers(),
        mean_bits(Order::BitSwap),
        mean_bits(Order::Naive)
    );
}
