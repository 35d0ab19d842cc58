//! Every pixel format a PNG can hold: PngSuite and synthetic images through `png` (read → write →
//! read) and `context` (encode_planes → decode_planes), and broken files refused without panics.

use std::path::{Path, PathBuf};

use idfcodec_codec::context::{decode_planes, encode_planes, source_samples, PlaneLayout};
use idfcodec_codec::format::PixelFormat;
use idfcodec_codec::png::{
    self, ColourChunk, PaletteImage, Pixels, PngError, SourceImage, Transparent,
};

fn fixtures(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(dir)
}

fn pngs(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures(dir))
        .unwrap_or_else(|e| panic!("fixtures/{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    files
}

fn is_broken(path: &Path) -> bool {
    path.file_name().unwrap().to_str().unwrap().starts_with('x')
}

/// read → write → read keeps everything, and the planes round-trip.
fn check_round_trips(name: &str, image: &SourceImage) {
    let written = png::write(image).unwrap_or_else(|e| panic!("{name}: write: {e}"));
    let again = png::read(&written).unwrap_or_else(|e| panic!("{name}: re-read: {e}"));
    assert_eq!(again.width(), image.width(), "{name}");
    assert_eq!(again.height(), image.height(), "{name}");
    assert_eq!(
        again.pixels(),
        image.pixels(),
        "{name}: pixels, palette or tRNS"
    );
    assert_eq!(
        again.colour_chunks(),
        image.colour_chunks(),
        "{name}: colour chunks"
    );
    assert!(again.dropped().is_empty(), "{name}: writing adds no chunks");
    // Writing is deterministic.
    assert_eq!(png::write(&again).unwrap(), written, "{name}");

    let coded = encode_planes(image).unwrap_or_else(|e| panic!("{name}: encode: {e}"));
    let layout = PlaneLayout::of(image);
    let decoded = decode_planes(&coded, &layout).unwrap_or_else(|e| panic!("{name}: decode: {e}"));
    assert_eq!(decoded, source_samples(image), "{name}: planes round trip");
}

#[test]
fn pngsuite_valid_images_round_trip() {
    let files = pngs("pngsuite");
    assert!(files.len() >= 40, "PngSuite fixtures missing");
    let mut formats = std::collections::BTreeSet::new();
    let mut colour_chunks = 0;
    for path in files.iter().filter(|p| !is_broken(p)) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(path).unwrap();
        let image = png::read(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        formats.insert(format!("{:?}", image.pixel_format()));
        colour_chunks += image.colour_chunks().len();
        check_round_trips(&name, &image);
    }
    // Every PNG colour type and bit depth is among the fixtures.
    assert_eq!(formats.len(), 12, "{formats:?}");
    assert!(
        colour_chunks > 0,
        "the fixtures include gAMA/cHRM/sRGB/iCCP chunks"
    );
}

#[test]
fn pngsuite_details() {
    let read = |n: &str| png::read(&std::fs::read(fixtures("pngsuite").join(n)).unwrap()).unwrap();
    // Interlaced palette image: same pixels as the non-interlaced one would have.
    let i = read("basn3p04-31i.png");
    assert_eq!((i.width(), i.height()), (31, 31));
    assert!(matches!(i.pixels(), Pixels::Palette(p) if p.bit_depth == 4));
    // tRNS of a palette image.
    let t = read("basn3p08-trns.png");
    assert!(matches!(t.pixels(), Pixels::Palette(p) if !p.alpha.is_empty()));
    // gAMA kept raw.
    let g = read("g04n2c08.png");
    let gama = g
        .colour_chunks()
        .iter()
        .find(|c| &c.chunk_type == b"gAMA")
        .unwrap();
    assert_eq!(
        u32::from_be_bytes(gama.data[..].try_into().unwrap()),
        45_000,
        "g04: file gamma 0.45"
    );
    // 16-bit samples are little-endian in the canonical layout.
    let s = read("basn0g16.png");
    assert_eq!(s.pixel_format(), Some(PixelFormat::Gray16));
    // Text chunks are dropped and listed.
    let c = read("ct1n0g04.png");
    assert!(c.dropped().iter().any(|d| d.name() == "tEXt"));
}

#[test]
fn broken_pngs_are_refused() {
    let mut files: Vec<PathBuf> = pngs("pngsuite")
        .into_iter()
        .filter(|p| is_broken(p))
        .collect();
    files.extend(pngs("badpng"));
    assert!(files.len() >= 12, "broken fixtures missing");
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        match png::read(&bytes) {
            // The decompression bomb is a valid 1×1 image whose zTXt chunks inflate to gigabytes:
            // bounded memory is the point, and text is never inflated, only dropped.
            Ok(image) if name.contains("decompression_dos") => {
                assert_eq!((image.width(), image.height()), (1, 1));
                assert!(image.dropped().iter().any(|d| d.name() == "zTXt"));
            }
            Ok(_) => panic!("{name} was accepted"),
            Err(e) => {
                eprintln!("{name}: {e}");
                assert!(!e.to_string().is_empty());
            }
        }
    }
}

/// A small deterministic generator (xorshift64*), so the tests need no rand crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Synthetic samples: smooth ramps, noise and flat runs mixed, so every coding path is used.
fn synthetic_value(rng: &mut Rng, x: u32, y: u32, max: u64, style: u64) -> u64 {
    match style {
        0 => (u64::from(x) * 7 + u64::from(y) * 3) % (max + 1),
        1 => rng.below(max + 1),
        2 => max,
        _ => ((u64::from(x) * u64::from(y)) / 3 + rng.below(3)).min(max),
    }
}

fn synthetic_direct(format: PixelFormat, w: u32, h: u32, seed: u64) -> SourceImage {
    let mut rng = Rng(seed | 1);
    let bits = format.bits_per_sample();
    let max = (1u64 << bits) - 1;
    let channels = u32::from(format.channels());
    let mut samples = Vec::new();
    for y in 0..h {
        for x in 0..w {
            for c in 0..channels {
                let v = synthetic_value(&mut rng, x, y, max, (seed + u64::from(c)) % 4);
                if bits == 16 {
                    samples.extend_from_slice(&(v as u16).to_le_bytes());
                } else {
                    samples.push(v as u8);
                }
            }
        }
    }
    let transparent = match format.channels() {
        1 if seed % 2 == 0 => Some(Transparent::Gray(max as u16 / 2)),
        3 if seed % 2 == 0 => Some(Transparent::Rgb([1, 2, 3])),
        _ => None,
    };
    SourceImage::new(
        w,
        h,
        Pixels::Direct {
            format,
            samples,
            transparent,
        },
        vec![],
    )
    .unwrap()
}

fn synthetic_palette(bit_depth: u8, w: u32, h: u32, seed: u64) -> SourceImage {
    let mut rng = Rng(seed | 1);
    let entries = 1 + rng.below(1 << bit_depth) as usize;
    let palette = (0..entries).map(|i| [i as u8, 255 - i as u8, 7]).collect();
    let alpha = (0..rng.below(entries as u64 + 1))
        .map(|i| i as u8)
        .collect();
    let indices = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .map(|(x, y)| synthetic_value(&mut rng, x, y, entries as u64 - 1, seed % 4) as u8)
        .collect();
    SourceImage::new(
        w,
        h,
        Pixels::Palette(PaletteImage {
            bit_depth,
            palette,
            alpha,
            indices,
        }),
        vec![],
    )
    .unwrap()
}

const ODD_SIZES: [(u32, u32); 7] = [
    (1, 1),
    (1, 13),
    (13, 1),
    (17, 31),
    (2, 2),
    (31, 17),
    (64, 3),
];

#[test]
fn odd_sizes_in_every_format() {
    let mut seed = 1;
    for (w, h) in ODD_SIZES {
        for format in PixelFormat::ALL.into_iter().filter(|f| !f.is_palette()) {
            for _ in 0..4 {
                seed += 1;
                let image = synthetic_direct(format, w, h, seed);
                check_round_trips(&format!("{format:?} {w}×{h} seed {seed}"), &image);
            }
        }
        for bit_depth in [1, 2, 4, 8] {
            for _ in 0..4 {
                seed += 1;
                let image = synthetic_palette(bit_depth, w, h, seed);
                check_round_trips(&format!("palette{bit_depth} {w}×{h} seed {seed}"), &image);
            }
        }
    }
}

/// The planes' bitstream is pinned: integer-only models give the same bytes on every machine,
/// and a change here is a format change (once the container stores these payloads).
#[test]
fn plane_payloads_are_pinned() {
    let expected: [(&str, usize, u32); 6] = [
        ("basn0g01.png", 38, 0x0019b6b3),
        ("basn0g16.png", 177, 0xbaacf94c),
        ("basn2c08.png", 269, 0x48bb3aae),
        ("basn3p08.png", 314, 0x7b64624f),
        ("basn4a08.png", 61, 0x1acb8443),
        ("basn6a16.png", 3693, 0x9498cd69),
    ];
    let mut got = Vec::new();
    for (name, _, _) in expected {
        let image = png::read(&std::fs::read(fixtures("pngsuite").join(name)).unwrap()).unwrap();
        let coded = encode_planes(&image).unwrap();
        got.push((name, coded.len(), crc32fast::hash(&coded)));
    }
    assert_eq!(got, expected);
}

fn chunk(chunk_type: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(chunk_type);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(chunk_type);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
    out
}

#[test]
fn huge_headers_fail_before_allocating() {
    for (w, h) in [
        (100_000u32, 1u32),
        (1, 100_000),
        (40_000, 40_000),
        (0x7fff_ffff, 0x7fff_ffff),
    ] {
        let mut ihdr = w.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[16, 6, 0, 0, 0]);
        let mut file = png::SIGNATURE.to_vec();
        file.extend(chunk(b"IHDR", &ihdr));
        file.extend(chunk(
            b"IDAT",
            &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        ));
        file.extend(chunk(b"IEND", &[]));
        assert!(
            matches!(png::read(&file), Err(PngError::LimitExceeded { .. })),
            "{w}×{h}"
        );
    }
}

#[test]
fn colour_chunks_round_trip_raw() {
    let mut iccp = b"my profile\0\0".to_vec();
    iccp.extend_from_slice(&[0x78, 0x9c, 1, 2, 3]); // kept as is, never inflated
    let chunks = vec![
        ColourChunk {
            chunk_type: *b"iCCP",
            data: iccp,
        },
        ColourChunk {
            chunk_type: *b"sRGB",
            data: vec![1],
        },
        ColourChunk {
            chunk_type: *b"gAMA",
            data: 45_455u32.to_be_bytes().to_vec(),
        },
        ColourChunk {
            chunk_type: *b"cHRM",
            data: (0..32).collect(),
        },
    ];
    let image = synthetic_direct(PixelFormat::Rgba16, 5, 3, 7);
    let image = SourceImage::new(5, 3, image.pixels().clone(), chunks.clone()).unwrap();
    let again = png::read(&png::write(&image).unwrap()).unwrap();
    assert_eq!(again.colour_chunks(), &chunks[..]);
    assert_eq!(again, image);
    // Not a colour chunk, or twice the same: refused.
    let text = vec![ColourChunk {
        chunk_type: *b"tEXt",
        data: vec![],
    }];
    assert!(SourceImage::new(5, 3, image.pixels().clone(), text).is_err());
    let twice = vec![chunks[1].clone(), chunks[1].clone()];
    assert!(SourceImage::new(5, 3, image.pixels().clone(), twice).is_err());
    // An ICC profile with an unknown compression method, in a file: refused when read.
    let written = png::write(&image).unwrap();
    let iccp_at = written.windows(4).position(|w| w == b"iCCP").unwrap() - 4;
    let len = u32::from_be_bytes(written[iccp_at..iccp_at + 4].try_into().unwrap()) as usize;
    let mut data = written[iccp_at + 8..iccp_at + 8 + len].to_vec();
    data[b"my profile".len() + 1] = 1;
    let mut bad = written[..iccp_at].to_vec();
    bad.extend(chunk(b"iCCP", &data));
    bad.extend_from_slice(&written[iccp_at + 12 + len..]);
    let err = png::read(&bad).unwrap_err();
    assert!(err.to_string().contains("compression method"), "{err}");
}

#[test]
fn mutated_pngs_never_panic() {
    let mut rng = Rng(0x1234_5678);
    for name in [
        "basn2c08.png",
        "basn3p04-31i.png",
        "basn6a16.png",
        "ccwn2c08.png",
    ] {
        let bytes = std::fs::read(fixtures("pngsuite").join(name)).unwrap();
        for _ in 0..300 {
            let mut bad = bytes.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(bad.len() as u64) as usize;
                bad[i] = rng.next() as u8;
            }
            if rng.below(4) == 0 {
                bad.truncate(rng.below(bad.len() as u64) as usize);
            }
            // Either an error or a readable image (a mutation may hit a CRC-free spot);
            // whatever is read must survive the whole pipeline.
            if let Ok(image) = png::read(&bad) {
                check_round_trips(name, &image);
            }
        }
    }
}

/// Samples agree with an independent decoder: CRC-32 of the canonical samples (indices for
/// palette images) as computed from Pillow 13's decoding of the same files.
#[test]
fn samples_match_an_independent_decoder() {
    let expected = [
        ("basn0g01.png", 0x260dd161u32),
        ("basn0g02.png", 0x27316528),
        ("basn0g16.png", 0x2ab15133),
        ("basn2c08.png", 0x7855b9bf),
        ("basn3p04.png", 0x280e99f1),
        ("basn3p04-31i.png", 0x7eba8ec4),
        ("basn6a08.png", 0xa74df32c),
    ];
    for (name, crc) in expected {
        let image = png::read(&std::fs::read(fixtures("pngsuite").join(name)).unwrap()).unwrap();
        assert_eq!(crc32fast::hash(source_samples(&image)), crc, "{name}");
    }
}

/// Every valid PngSuite image through the whole codec (as `idfcodec compress` / `decompress` do):
/// PNG → image → container file → image → PNG gives the same pixels, palette, tRNS and colour
/// chunks, without a model and, for the gray formats it codes, with a learned model.
#[test]
fn pngsuite_images_round_trip_through_the_container() {
    use idfcodec_codec::{compress, decompress, DecodeOptions, EncodeOptions, Model, NamedModel};
    let model_bytes = std::fs::read(fixtures("test-model.safetensors")).unwrap();
    let model = Model::from_safetensors(&model_bytes).unwrap();
    let named = NamedModel {
        name: "test-model",
        model: &model,
    };
    let options = EncodeOptions {
        tile_side: 16,
        ..EncodeOptions::default()
    };
    let mut checked = 0;
    for path in pngs("pngsuite").into_iter().filter(|p| !is_broken(p)) {
        let name = path.display().to_string();
        let source = png::read(&std::fs::read(&path).unwrap()).unwrap();
        let image = source.to_image().unwrap_or_else(|e| panic!("{name}: {e}"));
        let none: Option<&Model> = None;
        let mut files = vec![compress(&image, none, &options).unwrap()];
        if idfcodec_codec::learned_channels(image.pixel_format()) == Some(1) {
            files.push(compress(&image, &model, &options).unwrap());
        }
        for file in files {
            let back = decompress(&file, &named, &DecodeOptions::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(back, image, "{name}");
            let png_back = SourceImage::from_image(&back).unwrap();
            assert_eq!(png_back.pixels(), source.pixels(), "{name}");
            let mut chunks = source.colour_chunks().to_vec();
            let mut chunks_back = png_back.colour_chunks().to_vec();
            chunks.sort_by_key(|c| c.chunk_type);
            chunks_back.sort_by_key(|c| c.chunk_type);
            assert_eq!(chunks_back, chunks, "{name}: colour chunks");
            let written = png::write(&png_back).unwrap();
            assert_eq!(png::read(&written).unwrap().pixels(), source.pixels());
        }
        checked += 1;
    }
    assert!(checked >= 40, "{checked} images");
}
