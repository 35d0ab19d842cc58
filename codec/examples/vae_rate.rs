//! Measures a model file's archives on a folder of gray PNGs (e.g. the MNIST test set written
//! by `idfcodec dataset-png`): the first N images as a chained archive (one stream, the
//! bits-back chain), as an archive of independent entries, and each alone; encode and decode on
//! one thread, bit-exact checks, rates in bits per dimension (everything in the files counted:
//! container, names, checksums, the chain's initial bits and final flush), with the share of
//! the coded streams alone (what the model's likelihood is compared with) and of the entries
//! (flags, names, geometry, runs, section lengths: what the archive pays per image besides its
//! streams, the magic, model id and entry count); for a VAE, the mean
//! initial bits a block needs in Bit-Swap's order and in the naive one (a hierarchical model:
//! `upper_latents`).
//!
//! `cargo run --release -p idfcodec-codec --example vae_rate -- MODEL.safetensors DIR [N]
//! [chained]` (`chained`: the chained archive only)

use std::path::PathBuf;
use std::time::Instant;

use idfcodec_codec::format::{Archive, EntryName, Limits};
use idfcodec_codec::model::vae::{initial_bits, Order};
use idfcodec_codec::{
    compress, compress_archive, decompress_archive, png, ArchiveLayout, DecodeOptions,
    EncodeOptions, Model, ModelStorage, NamedImage, NamedModel,
};

/// Bytes of `value` as a varint (LEB128).
fn varint_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (model_path, dir) = (PathBuf::from(&args[0]), PathBuf::from(&args[1]));
    let n: usize = args.get(2).map_or(1000, |v| v.parse().expect("N"));
    let chained_only = args.get(3).is_some_and(|a| a == "chained");
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
    let dims: u64 = entries.iter().map(|e| e.image.dimensions()).sum();
    let bpd = |bytes: usize| bytes as f64 * 8.0 / dims as f64;
    let named = NamedModel {
        name: "model",
        model: &model,
    };
    let decode_options = DecodeOptions {
        threads: 1,
        ..DecodeOptions::default()
    };
    let layouts = match chained_only {
        true => &[ArchiveLayout::Chained][..],
        false => &[ArchiveLayout::Chained, ArchiveLayout::Independent],
    };
    for &layout in layouts {
        let options = EncodeOptions {
            threads: 1,
            tile_side: 128,
            model_storage: ModelStorage::External,
            archive_layout: layout,
        };
        let t = Instant::now();
        let archive = compress_archive(&entries, &model, &options).unwrap();
        let encode_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let back = decompress_archive(&archive, &named, &decode_options).unwrap();
        let decode_s = t.elapsed().as_secs_f64();
        assert!(back == entries, "the archive did not decode bit-exactly");
        let read = Archive::read(&archive, &Limits::default()).unwrap();
        let streams: usize = match read.chain {
            Some(chain) => chain.len(),
            None => read
                .entries
                .iter()
                .flat_map(|e| e.image.tiles.iter().map(|t| t.len()))
                .sum(),
        };
        // magic, model flags, model id, entry count
        let head = 2 + 1 + if read.model.is_external() { 8 } else { 4 } + varint_len(n as u64);
        let entry_bytes = archive.len() - streams - head;
        println!(
            "{layout:?} archive of {n} images ({dims} dims), format version {}: {} bytes = \
             {:.4} bpd (bit-exact), of which coded streams {streams} bytes = {:.4} bpd, \
             container and names {} bytes (entries {entry_bytes} bytes = {:.4} bpd, {:.3} per \
             image); one thread: encode {:.1} images/s, decode {:.1} images/s",
            read.version,
            archive.len(),
            bpd(archive.len()),
            bpd(streams),
            archive.len() - streams,
            bpd(entry_bytes),
            entry_bytes as f64 / n as f64,
            n as f64 / encode_s,
            n as f64 / decode_s
        );
    }
    if chained_only {
        return;
    }
    let options = EncodeOptions {
        threads: 1,
        model_storage: ModelStorage::External,
        ..EncodeOptions::default()
    };
    let lone: usize = entries
        .iter()
        .map(|e| compress(&e.image, &model, &options).unwrap().len())
        .sum();
    println!(
        "each alone: {lone} bytes = {:.4} bpd ({:.1} bytes per image)",
        bpd(lone),
        lone as f64 / n as f64
    );
    let Some(vae) = model.vae() else { return };
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
