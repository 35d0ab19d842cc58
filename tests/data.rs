//! Tests of the `data` module: the real MNIST / Fashion-MNIST / photo files (fetched through
//! `scripts/fetch-data` when the machine lacks them), synthetic IDX files for every error path,
//! and the patch sampler on small PNGs made here.

use std::fs;
use std::io::Write;

mod common;

use flate2::write::GzEncoder;
use flate2::Compression;
use idfcodec::data::{
    self, idx, list_images, DataError, Dataset, ImageSet, PatchConfig, PatchSampler, Split,
};
use image::{GrayImage, Rgb, RgbImage};

// ---------------------------------------------------------------- real files

use common::fetched;

/// Known facts of one split, computed with python3 from the raw IDX bytes.
struct Facts {
    ds: Dataset,
    split: Split,
    count: usize,
    first_label: u8,
    first_sum: u64,
    last_label: u8,
    last_sum: u64,
}

fn pixel_sum(pixels: &[u8]) -> u64 {
    pixels.iter().map(|&p| u64::from(p)).sum()
}

fn check_facts(f: &Facts) {
    let set = data::load(&fetched(f.ds.dir_name()), f.ds, f.split).unwrap();
    assert_eq!(
        (set.count, set.channels, set.height, set.width),
        (f.count, 1, 28, 28)
    );
    assert_eq!(set.pixels.len(), f.count * 28 * 28);
    assert_eq!(set.labels.as_ref().map(Vec::len), Some(f.count));
    assert_eq!(set.label(0), Some(f.first_label));
    assert_eq!(pixel_sum(set.image(0)), f.first_sum);
    assert_eq!(set.label(f.count - 1), Some(f.last_label));
    assert_eq!(pixel_sum(set.image(f.count - 1)), f.last_sum);
    assert!(set.labels.unwrap().iter().all(|&l| l < 10));
}

#[test]
fn mnist_train_matches_known_facts() {
    check_facts(&Facts {
        ds: Dataset::Mnist,
        split: Split::Train,
        count: 60000,
        first_label: 5,
        first_sum: 27525,
        last_label: 8,
        last_sum: 20920,
    });
}

#[test]
fn mnist_test_matches_known_facts() {
    check_facts(&Facts {
        ds: Dataset::Mnist,
        split: Split::Test,
        count: 10000,
        first_label: 7,
        first_sum: 18454,
        last_label: 6,
        last_sum: 41833,
    });
}

#[test]
fn fashion_mnist_train_matches_known_facts() {
    check_facts(&Facts {
        ds: Dataset::FashionMnist,
        split: Split::Train,
        count: 60000,
        first_label: 9,
        first_sum: 76247,
        last_label: 5,
        last_sum: 16684,
    });
}

#[test]
fn fashion_mnist_test_matches_known_facts() {
    check_facts(&Facts {
        ds: Dataset::FashionMnist,
        split: Split::Test,
        count: 10000,
        first_label: 9,
        first_sum: 33456,
        last_label: 5,
        last_sum: 24390,
    });
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn gzip_and_plain_give_identical_sets() {
    let src = fetched("mnist").join("mnist");
    let plain = data::load(src.parent().unwrap(), Dataset::Mnist, Split::Test).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("mnist");
    fs::create_dir(&dst).unwrap();
    // images gzipped under the plain name (detected by content), labels as `NAME.gz`
    let images = fs::read(src.join("t10k-images-idx3-ubyte")).unwrap();
    fs::write(dst.join("t10k-images-idx3-ubyte"), gzip(&images)).unwrap();
    let labels = fs::read(src.join("t10k-labels-idx1-ubyte")).unwrap();
    fs::write(dst.join("t10k-labels-idx1-ubyte.gz"), gzip(&labels)).unwrap();
    let zipped = data::load(tmp.path(), Dataset::Mnist, Split::Test).unwrap();
    assert_eq!(zipped, plain);
}

#[test]
fn real_photos_folder_opens() {
    let dir = fetched("photos").join("photos/train");
    let names: Vec<String> = list_images(&dir)
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 24);
    assert_eq!(names[0], "jxl-cvo9xd_keong_macan.png");
    assert!(names.windows(2).all(|w| w[0] < w[1]));
    let mut sampler = PatchSampler::open(
        &dir,
        PatchConfig {
            size: 64,
            channels: 3,
            seed: 1,
            flips: true,
        },
    )
    .unwrap();
    assert_eq!(sampler.image_count(), 24);
    assert_eq!(sampler.total_pixels(), 8_560_300);
    assert_eq!(sampler.sample_batch(4).len(), 4 * 3 * 64 * 64);
}

// ---------------------------------------------------------------- synthetic IDX files

/// An unsigned-byte IDX file: magic `00 00 08 ndim`, big-endian sizes, data.
fn idx_file(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = idx::magic(dims.len() as u8).to_be_bytes().to_vec();
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// A temp data dir holding `fashion-mnist/t10k-*` made from the given bytes.
fn synthetic(images: &[u8], labels: &[u8]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fashion-mnist");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("t10k-images-idx3-ubyte"), images).unwrap();
    fs::write(dir.join("t10k-labels-idx1-ubyte"), labels).unwrap();
    tmp
}

/// Three 2×4 images with pixel values 0..24, labels 3, 1, 4.
fn small_idx() -> (Vec<u8>, Vec<u8>) {
    let pixels: Vec<u8> = (0..24).collect();
    (idx_file(&[3, 2, 4], &pixels), idx_file(&[3], &[3, 1, 4]))
}

fn load_synthetic(images: &[u8], labels: &[u8]) -> Result<ImageSet, DataError> {
    let tmp = synthetic(images, labels);
    data::load(tmp.path(), Dataset::FashionMnist, Split::Test)
}

/// The error of loading, as its message, for files that must be rejected.
fn rejection(images: &[u8], labels: &[u8]) -> String {
    match load_synthetic(images, labels) {
        Ok(set) => panic!("accepted a bad file: {} images", set.count),
        Err(e) => e.to_string(),
    }
}

#[test]
fn synthetic_idx_loads_in_order() {
    let (images, labels) = small_idx();
    let set = load_synthetic(&images, &labels).unwrap();
    assert_eq!(
        (set.count, set.channels, set.height, set.width),
        (3, 1, 2, 4)
    );
    assert_eq!(set.image(1), &[8, 9, 10, 11, 12, 13, 14, 15]);
    assert_eq!(set.labels, Some(vec![3, 1, 4]));
}

#[test]
fn truncated_and_oversized_files_are_rejected() {
    let (images, labels) = small_idx();
    let msg = rejection(&images[..images.len() - 1], &labels);
    assert!(
        msg.contains("truncated") && msg.contains("t10k-images-idx3-ubyte"),
        "{msg}"
    );
    let msg = rejection(&[&images[..], &[0]].concat(), &labels);
    assert!(msg.contains("trailing"), "{msg}");
    let msg = rejection(&images[..10], &labels);
    assert!(msg.contains("truncated header"), "{msg}");
    // sizes whose product overflows or exceeds the file: refused before allocating
    let msg = rejection(&idx_file(&[u32::MAX, u32::MAX, u32::MAX], &[]), &labels);
    assert!(msg.contains("overflow"), "{msg}");
    let msg = rejection(&idx_file(&[60000, 28, 28], &[1, 2, 3]), &labels);
    assert!(
        msg.contains("truncated") && msg.contains("47040000"),
        "{msg}"
    );
}

#[test]
fn wrong_magic_is_rejected() {
    let (images, labels) = small_idx();
    // a label file where the images belong, and the reverse
    let msg = rejection(&labels, &labels);
    assert!(
        msg.contains("magic 0x00000801, expected 0x00000803"),
        "{msg}"
    );
    let msg = rejection(&images, &images);
    assert!(
        msg.contains("magic 0x00000803, expected 0x00000801"),
        "{msg}"
    );
    // other element types and non-IDX content
    let mut floats = images.clone();
    floats[2] = 0x0d;
    let msg = rejection(&floats, &labels);
    assert!(msg.contains("element type 0x0d"), "{msg}");
    let msg = rejection(b"\x89PNG\r\n\x1a\n0000000000000000", &labels);
    assert!(msg.contains("not an IDX header"), "{msg}");
}

#[test]
fn label_count_must_match_images() {
    let (images, _) = small_idx();
    let msg = rejection(&images, &idx_file(&[2], &[0, 1]));
    assert!(msg.contains("2 labels for 3 images"), "{msg}");
}

#[test]
fn broken_gzip_is_rejected() {
    let (images, labels) = small_idx();
    let zipped = gzip(&images);
    let msg = rejection(&zipped[..zipped.len() / 2], &labels);
    assert!(msg.contains("not a valid IDX file"), "{msg}");
    let mut bad_crc = zipped.clone();
    let n = bad_crc.len();
    bad_crc[n - 6] ^= 0xff; // inside the CRC32 trailer
    let msg = rejection(&bad_crc, &labels);
    assert!(msg.contains("gzip"), "{msg}");
    // a tiny gzip file announcing far more data than deflate can expand to
    let bomb = gzip(&idx_file(&[1000, 1000, 1000], &[]));
    let msg = rejection(&bomb, &labels);
    assert!(msg.contains("cannot hold"), "{msg}");
    // and more than any IDX file may hold
    let msg = rejection(&gzip(&idx_file(&[60000, 1000, 1000], &[])), &labels);
    assert!(msg.contains("above the 4294967296 limit"), "{msg}");
}

#[test]
fn gzip_under_plain_name_is_detected() {
    let (images, labels) = small_idx();
    let plain = load_synthetic(&images, &labels).unwrap();
    assert_eq!(
        load_synthetic(&gzip(&images), &gzip(&labels)).unwrap(),
        plain
    );
}

#[test]
fn missing_files_name_the_fetch_script() {
    let tmp = tempfile::tempdir().unwrap();
    let err = data::load(tmp.path(), Dataset::FashionMnist, Split::Train).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("fashion-mnist/train-images-idx3-ubyte"),
        "{msg}"
    );
    assert!(msg.contains("scripts/fetch-data fashion-mnist"), "{msg}");
}

#[test]
fn dataset_names_round_trip() {
    for ds in Dataset::ALL {
        assert_eq!(ds.dir_name().parse::<Dataset>().unwrap(), ds);
    }
    assert_eq!(
        "fashion-mnist".parse::<Dataset>().unwrap(),
        Dataset::FashionMnist
    );
    let err = "cifar10".parse::<Dataset>().unwrap_err().to_string();
    assert!(
        err.contains("cifar10") && err.contains("fashion-mnist"),
        "{err}"
    );
}

// ---------------------------------------------------------------- patch sampler

/// A deterministic pseudo-random byte for pixel (x, y, c) of image `k`.
fn noise(k: u32, x: u32, y: u32, c: u32) -> u8 {
    let mut h =
        k.wrapping_mul(0x9e37_79b9) ^ x.wrapping_mul(0x85eb_ca6b) ^ y.wrapping_mul(0xc2b2_ae35) ^ c;
    h ^= h >> 15;
    h = h.wrapping_mul(0x2c1b_3c6d);
    (h ^ (h >> 13)) as u8
}

fn noise_image(k: u32, w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([noise(k, x, y, 0), noise(k, x, y, 1), noise(k, x, y, 2)])
    })
}

/// A folder of three noise PNGs (20×15, 17×17, 9×30) plus a file that is not an image.
fn patch_folder() -> (tempfile::TempDir, Vec<RgbImage>) {
    let tmp = tempfile::tempdir().unwrap();
    let images = vec![
        noise_image(0, 20, 15),
        noise_image(1, 17, 17),
        noise_image(2, 9, 30),
    ];
    for (i, img) in images.iter().enumerate() {
        img.save(tmp.path().join(format!("img{i}.png"))).unwrap();
    }
    fs::write(tmp.path().join("SHA256SUMS"), "not an image\n").unwrap();
    (tmp, images)
}

fn config(seed: u64) -> PatchConfig {
    PatchConfig {
        size: 8,
        channels: 3,
        seed,
        flips: true,
    }
}

/// The CHW patch at (x0, y0) of `img`, mirrored if `flip`.
fn crop(img: &RgbImage, x0: u32, y0: u32, size: u32, flip: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for c in 0..3 {
        for y in 0..size {
            for x in 0..size {
                let sx = if flip { size - 1 - x } else { x };
                out.push(img.get_pixel(x0 + sx, y0 + y).0[c]);
            }
        }
    }
    out
}

/// Where a patch comes from: (image, x0, y0, flipped), found by searching every position.
fn locate(patch: &[u8], images: &[RgbImage], size: u32) -> Option<(usize, u32, u32, bool)> {
    for (k, img) in images.iter().enumerate() {
        for y0 in 0..=img.height() - size {
            for x0 in 0..=img.width() - size {
                for flip in [false, true] {
                    if crop(img, x0, y0, size, flip) == patch {
                        return Some((k, x0, y0, flip));
                    }
                }
            }
        }
    }
    None
}

#[test]
fn same_seed_same_patches_other_seed_other_patches() {
    let (tmp, _) = patch_folder();
    let a = PatchSampler::open(tmp.path(), config(7))
        .unwrap()
        .sample_batch(16);
    let b = PatchSampler::open(tmp.path(), config(7))
        .unwrap()
        .sample_batch(16);
    let c = PatchSampler::open(tmp.path(), config(8))
        .unwrap()
        .sample_batch(16);
    assert_eq!(a.len(), 16 * 3 * 8 * 8);
    assert_eq!(a, b);
    assert_ne!(a, c);
    // successive batches continue the stream
    let mut s = PatchSampler::open(tmp.path(), config(7)).unwrap();
    let (first, second) = (s.sample_batch(8), s.sample_batch(8));
    assert_eq!([first, second].concat(), a);
}

#[test]
fn patches_are_chw_crops_of_the_images() {
    let (tmp, images) = patch_folder();
    let mut sampler = PatchSampler::open(tmp.path(), config(3)).unwrap();
    assert_eq!(
        (sampler.image_count(), sampler.total_pixels()),
        (3, 20 * 15 + 17 * 17 + 9 * 30)
    );
    let batch = sampler.sample_batch(60);
    let found: Vec<_> = batch
        .chunks_exact(sampler.patch_len())
        .map(|p| locate(p, &images, 8).expect("patch is no crop of any image"))
        .collect();
    assert!(
        found.iter().any(|f| f.3) && found.iter().any(|f| !f.3),
        "flips on: both orientations occur"
    );
    for k in 0..3 {
        assert!(found.iter().any(|f| f.0 == k), "image {k} never sampled");
    }
    let mut unflipped = PatchSampler::open(
        tmp.path(),
        PatchConfig {
            flips: false,
            ..config(3)
        },
    )
    .unwrap();
    for p in unflipped.sample_batch(30).chunks_exact(3 * 64) {
        assert!(
            !locate(p, &images, 8).unwrap().3,
            "flips off: no mirrored patch"
        );
    }
}

#[test]
fn grayscale_patches_come_from_gray_images() {
    let tmp = tempfile::tempdir().unwrap();
    let gray = GrayImage::from_fn(12, 10, |x, y| image::Luma([noise(5, x, y, 0)]));
    gray.save(tmp.path().join("g.png")).unwrap();
    let cfg = PatchConfig {
        size: 10,
        channels: 1,
        seed: 0,
        flips: false,
    };
    let batch = PatchSampler::open(tmp.path(), cfg).unwrap().sample_batch(5);
    for p in batch.chunks_exact(100) {
        let x0 = (0..=2).find(|&x0| {
            (0..100).all(|i| p[i] == gray.get_pixel(x0 + i as u32 % 10, i as u32 / 10).0[0])
        });
        assert!(x0.is_some(), "gray patch is no crop of the image");
    }
}

#[test]
fn list_images_sorts_and_filters() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["b.png", "a.JPG", "c.jpeg", "notes.txt", "SHA256SUMS"] {
        fs::write(tmp.path().join(name), b"x").unwrap();
    }
    fs::create_dir(tmp.path().join("sub.png")).unwrap();
    let names: Vec<_> = list_images(tmp.path())
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["a.JPG", "b.png", "c.jpeg"]);
}

#[test]
fn bad_folders_give_clear_errors() {
    let (tmp, _) = patch_folder();
    // an image smaller than the patch
    let err = PatchSampler::open(
        tmp.path(),
        PatchConfig {
            size: 10,
            ..config(0)
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("img2.png") && err.contains("9x30") && err.contains("10x10"),
        "{err}"
    );
    // the pixel limit, checked from the headers
    let err = PatchSampler::open_limited(tmp.path(), config(0), 500).unwrap_err();
    assert!(matches!(err, DataError::TooManyPixels { .. }), "{err:?}");
    assert!(err.to_string().contains("img1.png"), "{err}");
    // a configuration that cannot work
    let err = PatchSampler::open(
        tmp.path(),
        PatchConfig {
            channels: 2,
            ..config(0)
        },
    )
    .unwrap_err();
    assert!(matches!(err, DataError::Config(_)), "{err:?}");
    // a file named as an image that does not decode
    fs::write(tmp.path().join("broken.png"), b"\x89PNG\r\n\x1a\nrubbish").unwrap();
    let err = PatchSampler::open(tmp.path(), config(0))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("broken.png") && err.contains("decode"),
        "{err}"
    );
    // no images at all
    let empty = tempfile::tempdir().unwrap();
    let err = PatchSampler::open(empty.path(), config(0)).unwrap_err();
    assert!(matches!(err, DataError::NoImages { .. }), "{err:?}");
}

#[test]
fn folder_images_are_scanned_then_loaded_as_chw() {
    let tmp = tempfile::tempdir().unwrap();
    let a = RgbImage::from_fn(3, 2, |x, y| Rgb([x as u8, y as u8, 7]));
    a.save(tmp.path().join("a.png")).unwrap();
    GrayImage::from_pixel(3, 2, image::Luma([9]))
        .save(tmp.path().join("b.png"))
        .unwrap();
    let scan = data::FolderImages::scan(tmp.path(), None).unwrap();
    assert_eq!(
        (scan.count(), scan.width, scan.height, scan.colour),
        (2, 3, 2, true)
    );
    let rgb = scan.load(3).unwrap();
    assert_eq!(
        (rgb.count, rgb.channels, rgb.height, rgb.width),
        (2, 3, 2, 3)
    );
    // CHW: the red plane (x), the green plane (y), the blue plane (7); gray replicated
    assert_eq!(
        rgb.image(0),
        &[0, 1, 2, 0, 1, 2, 0, 0, 0, 1, 1, 1, 7, 7, 7, 7, 7, 7]
    );
    assert_eq!(rgb.image(1), &[9; 18]);
    assert_eq!(scan.load(1).unwrap().image(1), &[9; 6]);
    // a limit keeps the first images by name; sizes must agree
    assert_eq!(
        data::FolderImages::scan(tmp.path(), Some(1))
            .unwrap()
            .count(),
        1
    );
    GrayImage::new(4, 2).save(tmp.path().join("c.png")).unwrap();
    let err = data::FolderImages::scan(tmp.path(), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("c.png: 4x2") && err.contains("must share one size"),
        "{err}"
    );
}

#[test]
fn splits_parse_and_ranges_narrow_sets() {
    assert_eq!("test".parse::<Split>().unwrap(), Split::Test);
    assert_eq!(Split::Train.to_string(), "train");
    assert!("valid".parse::<Split>().is_err());
    let set = ImageSet {
        count: 3,
        channels: 1,
        height: 1,
        width: 2,
        pixels: vec![1, 2, 3, 4, 5, 6],
        labels: Some(vec![7, 8, 9]),
    };
    let mid = set.range(1..3);
    assert_eq!(
        (mid.count, mid.pixels, mid.labels),
        (2, vec![3, 4, 5, 6], Some(vec![8, 9]))
    );
}
