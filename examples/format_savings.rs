//! What format version 2 saves over version 1 on real images, with the embedded models: single
//! files and archives of the first `N` MNIST and Fashion-MNIST test images. Version-1 files are
//! built from version-1 streams (start state 1, checksum in the header) with the container
//! writer, which still writes both versions. A measurement (needs the datasets):
//! `cargo run --release --no-default-features --example format_savings`.
//! Results (also in FORMAT.md, "Header size"), 200 images each: MNIST single files 34 777 →
//! 34 335 bytes (−17.7 bits per image), archive 38 155 → 33 956; Fashion-MNIST single files
//! 75 074 → 74 777 (−11.9 bits per image), archive 80 083 → 74 436.

use std::path::Path;

use idfcodec::data::{data_dir, load, Dataset, Split};
use idfcodec_codec::entropy::StreamStart;
use idfcodec_codec::format::{crc32, Archive, ArchiveEntry, EntryName, ImageFile, Limits, Version};
use idfcodec_codec::model::idf::encode_image;
use idfcodec_codec::{
    bits_per_dimension, compress, compress_archive, EncodeOptions, Image, ModelStorage, NamedImage,
    Registry,
};

const N: usize = 200;

fn main() {
    let data = data_dir();
    let data = if data.is_absolute() {
        data
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(data)
    };
    let options = EncodeOptions {
        threads: 1,
        model_storage: ModelStorage::Embedded,
        ..EncodeOptions::default()
    };
    for (dataset, model_name, prefix) in [
        (Dataset::Mnist, "mnist", "mnist-test"),
        (Dataset::FashionMnist, "fashion-mnist", "fashion-mnist-test"),
    ] {
        let set = load(&data, dataset, Split::Test).unwrap();
        let model = Registry::embedded()
            .by_name(model_name)
            .unwrap()
            .model()
            .unwrap();
        let (mut v1_total, mut v2_total) = (0usize, 0usize);
        let (mut v1_entries, mut named) = (Vec::new(), Vec::new());
        for i in 0..N {
            let pixels = set.image(i).to_vec();
            let image = Image::gray8(28, 28, pixels.clone()).unwrap();
            let v2 = compress(&image, model, &options).unwrap();
            let mut v1 = ImageFile::read(&v2, &Limits::default())
                .unwrap()
                .to_owned_file();
            v1.version = Version::V1;
            v1.image.header.pixel_crc = Some(crc32(&pixels));
            v1.image.tiles =
                vec![
                    encode_image(model.idf().unwrap(), &pixels, 1, 28, 28, StreamStart::One)
                        .unwrap(),
                ];
            let v1_bytes = v1.to_bytes().unwrap();
            v1_total += v1_bytes.len();
            v2_total += v2.len();
            let name = EntryName::new(format!("{prefix}-{i:05}.png")).unwrap();
            v1_entries.push(ArchiveEntry {
                name: name.clone(),
                image: v1.image,
            });
            named.push(NamedImage { name, image });
        }
        let v1_archive = Archive {
            version: Version::V1,
            model: ModelStorage::Embedded.reference(model),
            entries: v1_entries,
            chain: None,
        }
        .to_bytes()
        .unwrap()
        .len();
        let v2_archive = compress_archive(&named, model, &options).unwrap().len();
        let bpd = |bytes: usize| bits_per_dimension(bytes as u64, (N * 784) as u64);
        println!(
            "{model_name}, first {N} test images, embedded model, 28×28 each:\n  \
             single files: v1 {v1_total} bytes ({:.4} bpd), v2 {v2_total} bytes ({:.4} bpd): \
             {:+.2} bits per image\n  \
             archive:      v1 {v1_archive} bytes ({:.4} bpd), v2 {v2_archive} bytes ({:.4} bpd): \
             {:+.2} bits per image",
            bpd(v1_total),
            bpd(v2_total),
            8.0 * (v2_total as f64 - v1_total as f64) / N as f64,
            bpd(v1_archive),
            bpd(v2_archive),
            8.0 * (v2_archive as f64 - v1_archive as f64) / N as f64,
        );
    }
}
