//! The coding policy through the library: [`compress_with_effort`] keeps the smallest of the
//! files its candidates make (exactly the bytes [`compress`] makes with that candidate), and
//! what it keeps decodes to the image, for single images and archives.

use std::path::Path;

use idfcodec_codec::format::{EntryName, PixelFormat};
use idfcodec_codec::{
    compress, compress_archive, compress_archive_with_effort, compress_with_effort, decompress,
    decompress_archive, png, Candidate, DecodeOptions, Effort, EffortError, EffortOptions, Image,
    LearnedModel, Model, ModelStorage, NamedImage, Registry,
};

fn fixture_image(name: &str) -> Image {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name);
    png::read(&std::fs::read(path).unwrap())
        .unwrap()
        .to_image()
        .unwrap()
}

/// Pixels no model has seen: xorshift noise, which the context coder codes better than a model
/// trained on digits.
fn noise(width: u32, height: u32) -> Image {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let samples = (0..width * height)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect();
    Image::gray8(width, height, samples).unwrap()
}

fn at(level: u8) -> EffortOptions<'static> {
    EffortOptions {
        effort: Effort::new(level).unwrap(),
        threads: 1,
        ..EffortOptions::default()
    }
}

/// Every candidate's file, by [`compress`] directly.
fn every_file(image: &Image, options: &EffortOptions<'_>) -> Vec<(String, Vec<u8>)> {
    let plan = options.plan(image.pixel_format()).unwrap();
    plan.candidates
        .iter()
        .map(|c| {
            let bytes = compress(image, c.model(), &options.encode_options(c)).unwrap();
            (c.name().to_string(), bytes)
        })
        .collect()
}

#[test]
fn the_smallest_candidate_is_kept_and_decodes() {
    let digit = fixture_image("mnist-test-0.png");
    let mosaic = fixture_image("mnist-mosaic-83x53.png");
    let mut winners = Vec::new();
    for image in [&digit, &mosaic, &noise(24, 20)] {
        for level in [5, 9] {
            let options = at(level);
            let files = every_file(image, &options);
            assert!(files.len() >= 2, "{files:?}");
            let smallest = files.iter().map(|(_, b)| b.len()).min().unwrap();
            let first_smallest = files.iter().find(|(_, b)| b.len() == smallest).unwrap();
            let compressed = compress_with_effort(image, &options).unwrap();
            assert_eq!(compressed.candidate.name(), first_smallest.0);
            assert_eq!(compressed.bytes, first_smallest.1, "effort {level}");
            assert_eq!(compressed.unused_model, None);
            let back = decompress(
                &compressed.bytes,
                &compressed.candidate,
                &DecodeOptions::default(),
            )
            .unwrap();
            assert_eq!(back, *image);
            // the candidate is only needed for a model file: embedded models are found built in
            let back = decompress(
                &compressed.bytes,
                Registry::embedded(),
                &DecodeOptions::default(),
            );
            assert_eq!(back.unwrap(), *image);
            winners.push(compressed.candidate.name().to_string());
        }
    }
    // both kinds of candidate win somewhere: at effort 9 the digit goes to the mnist model
    // (effort 5 tries the default gray model, fashion-mnist's), noise to the context coder
    assert_eq!(winners[1], "mnist", "{winners:?}");
    assert_eq!(winners[4..], ["none (context coding)"; 2], "{winners:?}");
}

#[test]
fn low_efforts_context_code_and_effort_4_uses_the_default_model() {
    let digit = fixture_image("mnist-test-0.png");
    let one = compress_with_effort(&digit, &at(1)).unwrap();
    assert!(matches!(one.candidate, Candidate::ContextCoding));
    let four = compress_with_effort(&digit, &at(4)).unwrap();
    let default = Registry::embedded()
        .default_for(PixelFormat::Gray8)
        .unwrap();
    assert_eq!(four.candidate.name(), default.name());
    let model = default.model().unwrap();
    let options = at(4).encode_options(&four.candidate);
    assert_eq!(options.model_storage, ModelStorage::Embedded);
    assert_eq!(four.bytes, compress(&digit, model, &options).unwrap());
    // effort 5 keeps the smaller of the two
    let five = compress_with_effort(&digit, &at(5)).unwrap();
    assert_eq!(five.bytes.len(), one.bytes.len().min(four.bytes.len()));
}

#[test]
fn a_given_model_file_is_tried_and_decodes_only_with_itself() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/test-model.safetensors");
    let model = Model::from_safetensors(&std::fs::read(path).unwrap()).unwrap();
    let options = EffortOptions {
        model: Some(LearnedModel {
            name: "test-model",
            model: &model,
            storage: ModelStorage::External,
        }),
        ..at(4)
    };
    let digit = fixture_image("mnist-test-0.png");
    let compressed = compress_with_effort(&digit, &options).unwrap();
    assert_eq!(compressed.candidate.name(), "test-model");
    let decode = DecodeOptions::default();
    assert_eq!(
        decompress(&compressed.bytes, &compressed.candidate, &decode).unwrap(),
        digit
    );
    assert!(decompress(&compressed.bytes, Registry::embedded(), &decode).is_err());
}

#[test]
fn archives_keep_the_smallest_and_refuse_mixed_formats() {
    let name = |n: &str| EntryName::new(n).unwrap();
    let images = vec![
        NamedImage {
            name: name("a.png"),
            image: fixture_image("mnist-test-0.png"),
        },
        NamedImage {
            name: name("b.png"),
            image: fixture_image("fashion-mnist-test-0.png"),
        },
    ];
    let options = at(5);
    let plan = options.plan(PixelFormat::Gray8).unwrap();
    let sizes: Vec<usize> = plan
        .candidates
        .iter()
        .map(|c| {
            compress_archive(&images, c.model(), &options.encode_options(c))
                .unwrap()
                .len()
        })
        .collect();
    let compressed = compress_archive_with_effort(&images, &options).unwrap();
    assert_eq!(compressed.bytes.len(), *sizes.iter().min().unwrap());
    let back = decompress_archive(
        &compressed.bytes,
        &compressed.candidate,
        &DecodeOptions::default(),
    )
    .unwrap();
    assert_eq!(back, images);

    let mut mixed = images.clone();
    mixed[1].image = Image::new(1, 1, PixelFormat::Rgb8, vec![1, 2, 3]).unwrap();
    let err = compress_archive_with_effort(&mixed, &options).unwrap_err();
    assert!(matches!(err, EffortError::MixedFormats { .. }), "{err}");
    assert!(err.to_string().contains("a.png and b.png"), "{err}");
    assert!(matches!(
        compress_archive_with_effort(&[], &options),
        Err(EffortError::NoImages)
    ));
}
