//! Criterion benchmarks of the coding path, small enough for a few minutes on two cores:
//! `cargo bench --no-default-features --bench codec` (no libtorch needed; `-- engine`,
//! `-- entropy` or `-- image` runs one group).
//!
//! - `engine/*`: the engine's public layers at the shapes the embedded models run (28×28
//!   images squeezed to 14×14 and 7×7, and the 32×32 of a squeezed 64×64 tile); convolutions
//!   report multiply-adds per second as "elements".
//! - `entropy/*`: one 28×28 tile with the default embedded model: the flow alone, the flow
//!   plus ANS coding (`encode_image`), decoding (`decode_image`), and building one latent's
//!   probability table; symbols (latents) per second.
//! - `image/*`: whole-image compress and decompress of `fixtures/*.png` with the default
//!   embedded model on one thread, in bytes of raw pixels per second.

use std::path::Path;
use std::time::Duration;

use criterion::{
    black_box, criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use idfcodec_codec::engine::{Conv3x3, FloatTensor, IntTensor, Shape, Tensor};
use idfcodec_codec::entropy::{LatentModel, LogisticMixture, StreamStart};
use idfcodec_codec::format::{crc32, Limits, PixelFormat};
use idfcodec_codec::model::idf::{decode_image, encode_image, flow};
use idfcodec_codec::{
    compress, decompress, DecodeOptions, EncodeOptions, Idf, Image, Model, ModelStorage, Registry,
};

/// The default embedded model for 8-bit grayscale.
fn model() -> &'static Model {
    Registry::embedded()
        .default_for(PixelFormat::Gray8)
        .expect("an embedded grayscale model")
        .model()
        .expect("the embedded model loads")
}

/// The default grayscale model as the IDF it is, for the flow's own benchmarks.
fn idf() -> &'static Idf {
    model()
        .idf()
        .expect("the default grayscale model is an IDF")
}

/// A deterministic tensor with values in [-1, 1).
fn tensor(shape: Shape, seed: u32) -> FloatTensor {
    let data = (0..shape.len() as u32)
        .map(|i| {
            let x = i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8;
            x as f32 / (1 << 23) as f32 - 1.0
        })
        .collect();
    Tensor::from_vec(shape, data).unwrap()
}

fn conv(inputs: usize, outputs: usize) -> Conv3x3 {
    let weight = tensor(Shape::new(outputs * inputs, 3, 3), 1).into_data();
    let weight = weight.into_iter().map(|w| w * 0.05).collect();
    Conv3x3::new(inputs, outputs, weight, vec![0.01; outputs]).unwrap()
}

fn engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    for (inputs, outputs, side) in [
        (2, 64, 14),
        (64, 64, 7),
        (64, 64, 14),
        (64, 64, 32),
        (64, 4, 14),
    ] {
        let layer = conv(inputs, outputs);
        let input = tensor(Shape::new(inputs, side, side), 2);
        group.throughput(Throughput::Elements(
            (inputs * outputs * 9 * side * side) as u64,
        ));
        group.bench_function(
            BenchmarkId::new("conv3x3", format!("{inputs}to{outputs}@{side}x{side}")),
            |b| b.iter(|| layer.apply(&input)),
        );
    }
    let hidden = tensor(Shape::new(64, 14, 14), 3);
    group.throughput(Throughput::Elements(hidden.shape().len() as u64));
    group.bench_function("relu/64@14x14", |b| b.iter(|| hidden.relu()));
    group.bench_function("add/64@14x14", |b| b.iter(|| hidden.add(&hidden)));
    let image = tensor(Shape::new(1, 28, 28), 4);
    let squeezed = image.squeeze();
    group.throughput(Throughput::Elements(image.shape().len() as u64));
    group.bench_function("squeeze/1@28x28", |b| b.iter(|| image.squeeze()));
    group.bench_function("unsqueeze/4@14x14", |b| b.iter(|| squeezed.unsqueeze()));
    group.bench_function("split_concat/4@14x14", |b| {
        b.iter(|| {
            let (a, z) = squeezed.split_channels(2);
            Tensor::concat_channels(&z, &a)
        })
    });
    group.bench_function("reverse_channels/4@14x14", |b| {
        b.iter(|| squeezed.reverse_channels())
    });
    // one coupling network of the embedded model, as the flow runs it on a 28×28 image
    let net = idf().coupling(0, 0);
    let half = tensor(Shape::new(net.in_channels(), 14, 14), 5);
    group.throughput(Throughput::Elements(half.shape().len() as u64));
    group.bench_function("network/coupling-0-0@14x14", |b| {
        b.iter(|| net.forward(&half))
    });
    group.finish();
}

/// The pixels of a fixture PNG.
fn fixture(name: &str) -> Image {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    let bytes = std::fs::read(&path).unwrap();
    idfcodec::picture::decode_picture(&bytes, name).unwrap()
}

fn entropy(c: &mut Criterion) {
    let model = idf();
    let image = fixture("fashion-mnist-test-0.png");
    let (h, w) = (image.height() as usize, image.width() as usize);
    let pixels = image.samples();
    let symbols = (h * w) as u64;
    let as_tensor = || {
        let data = pixels.iter().map(|&p| i32::from(p)).collect();
        IntTensor::from_vec(Shape::new(1, h, w), data).unwrap()
    };
    // version 2 streams: each starts from its pixels' checksum
    let start = |p: &[u8]| StreamStart::Checksum(crc32(p));
    let payload = encode_image(model, pixels, 1, h, w, start(pixels)).unwrap();
    let mut group = c.benchmark_group("entropy");
    group.throughput(Throughput::Elements(symbols));
    group.bench_function("flow_forward/28x28", |b| {
        b.iter(|| flow::forward(model, &as_tensor()).unwrap())
    });
    group.bench_function("encode_image/28x28", |b| {
        b.iter(|| encode_image(model, pixels, 1, h, w, start(pixels)).unwrap())
    });
    group.bench_function("decode_image/28x28", |b| {
        b.iter(|| decode_image(model, &payload, 1, h, w, start).unwrap())
    });
    let latents = flow::forward(model, &as_tensor()).unwrap();
    let params = &latents.groups[0].params;
    group.throughput(Throughput::Elements(params.len() as u64));
    group.bench_function("latent_tables/level-0", |b| {
        b.iter(|| {
            for i in 0..params.len() {
                let mixture = LogisticMixture::new(&params.get(i)).unwrap();
                black_box(LatentModel::new(&mixture).unwrap());
            }
        })
    });
    group.finish();
}

fn whole_images(c: &mut Criterion) {
    let model = model();
    let encode = EncodeOptions {
        threads: 1,
        model_storage: ModelStorage::Embedded,
        ..EncodeOptions::default()
    };
    let decode = DecodeOptions {
        threads: 1,
        limits: Limits::UNLIMITED,
        ..DecodeOptions::default()
    };
    let mut group = c.benchmark_group("image");
    // one iteration of the 83×53 mosaic takes ~70 ms: flat sampling fits 10 samples in the time
    group.sampling_mode(SamplingMode::Flat);
    for name in [
        "mnist-test-0.png",
        "fashion-mnist-test-0.png",
        "mnist-mosaic-83x53.png",
    ] {
        let image = fixture(name);
        let coded = compress(&image, model, &encode).unwrap();
        group.throughput(Throughput::Bytes(image.samples().len() as u64));
        group.bench_function(BenchmarkId::new("compress", name), |b| {
            b.iter(|| compress(&image, model, &encode).unwrap())
        });
        group.bench_function(BenchmarkId::new("decompress", name), |b| {
            b.iter(|| decompress(&coded, Registry::embedded(), &decode).unwrap())
        });
    }
    // the context coder (no model): a smooth synthetic 256×256 RGB image with some texture
    let (w, h) = (256u32, 256u32);
    let samples: Vec<u8> = (0..w * h * 3)
        .map(|i| {
            let (p, c) = (i / 3, i % 3);
            let (x, y) = (p % w, p / w);
            ((x * (c + 1) + y * 2 + (x * y / 7) % 5) % 256) as u8
        })
        .collect();
    let rgb = Image::new(w, h, PixelFormat::Rgb8, samples).unwrap();
    let context = EncodeOptions {
        tile_side: 512,
        ..encode
    };
    let none: Option<&Model> = None;
    let coded = compress(&rgb, none, &context).unwrap();
    group.throughput(Throughput::Bytes(rgb.samples().len() as u64));
    group.bench_function(BenchmarkId::new("compress-context", "rgb-256x256"), |b| {
        b.iter(|| compress(&rgb, none, &context).unwrap())
    });
    group.bench_function(BenchmarkId::new("decompress-context", "rgb-256x256"), |b| {
        b.iter(|| decompress(&coded, &Registry::new([]), &decode).unwrap())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    targets = engine, entropy, whole_images
}
criterion_main!(benches);
