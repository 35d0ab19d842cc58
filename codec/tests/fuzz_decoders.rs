//! Fuzz-style decoder test: random bytes and seeded random mutations (bit flips, byte inserts,
//! deletes and overwrites, truncations, splices) of the version-1 and version-2 goldens and of
//! the version-2 golden archive, and of the bits-back goldens (`fixtures/v6/vae/`, a chained archive
//! among them), fed to the image and archive decoders. Whatever comes in, the
//! decoder returns an error or exactly the original pixels; it never panics and never makes a huge
//! allocation (a global allocator records the largest request). Bounded by a case count, not by
//! time (no verdict here depends on the machine's speed): a few seconds in a debug build.
//! `mutation.rs` does the same, more thoroughly, for files the current writer makes.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::Rng;
use idfcodec_codec::{decompress, decompress_archive, DecodeOptions, Image, Model, NamedModel};

struct Tracking;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// Largest single allocation a decode may make: the default limits allow tiles of 512×512
/// pixels, whose tensors (8 hidden channels of `f32` for the test model) take 8 MiB each.
const MAX_ALLOCATION: usize = 64 << 20;
/// Inputs decoded after the originals (random bytes and mutations): about 4 ms each in a debug
/// build, most of it in the test model's flow.
const CASES: usize = 800;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// A file to mutate, and the images it decodes to.
struct Source {
    name: String,
    bytes: Vec<u8>,
    images: Vec<Image>,
}

enum Decoded {
    Refused,
    Images(Vec<Image>),
}

fn decode(bytes: &[u8], named: &NamedModel<'_>) -> Decoded {
    let options = DecodeOptions {
        threads: 1,
        ..DecodeOptions::default()
    };
    let result = match idfcodec_codec::format::detect(bytes) {
        Ok(idfcodec_codec::format::FileKind::Archive) => decompress_archive(bytes, named, &options)
            .map(|entries| entries.into_iter().map(|e| e.image).collect()),
        _ => decompress(bytes, named, &options).map(|image| vec![image]),
    };
    match result {
        Ok(images) => Decoded::Images(images),
        Err(_) => Decoded::Refused,
    }
}

fn sources(named: &NamedModel<'_>, dirs: &[PathBuf]) -> Vec<Source> {
    let mut paths = Vec::new();
    for dir in dirs {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "idf" || e == "idfa") {
                paths.push(path);
            }
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            let Decoded::Images(images) = decode(&bytes, named) else {
                panic!("{} does not decode", path.display());
            };
            Source {
                name: path.display().to_string(),
                bytes,
                images,
            }
        })
        .collect()
}

/// One random change of `bytes`; `other` is spliced from.
fn mutate(rng: &mut Rng, bytes: &[u8], other: &[u8]) -> (Vec<u8>, &'static str) {
    let mut out = bytes.to_vec();
    let at = |rng: &mut Rng, len: usize| rng.range(0, len as i64) as usize;
    // most changes near the start, where the headers are
    let near_start = |rng: &mut Rng, len: usize| at(rng, len.clamp(1, 48)).min(len);
    let what = match rng.range(0, 7) {
        0 => {
            for _ in 0..rng.range(1, 3) {
                let i = if rng.range(0, 1) == 0 {
                    near_start(rng, out.len())
                } else {
                    at(rng, out.len())
                };
                if i < out.len() {
                    out[i] ^= 1 << rng.range(0, 7);
                }
            }
            "bit flips"
        }
        1 => {
            let i = at(rng, out.len());
            out.insert(i, rng.range(0, 255) as u8);
            "byte insert"
        }
        2 => {
            if !out.is_empty() {
                let i = near_start(rng, out.len() - 1);
                out.remove(i);
            }
            "byte delete"
        }
        3 => {
            let i = at(rng, out.len());
            out.truncate(i);
            "truncation"
        }
        4 => {
            let i = near_start(rng, out.len());
            if i < out.len() {
                out[i] = rng.range(0, 255) as u8;
            }
            "byte overwrite"
        }
        5 => {
            // a piece of another file in place of a piece of this one
            let from = at(rng, other.len());
            let len = rng.range(1, 64) as usize;
            let piece = &other[from..(from + len).min(other.len())];
            let i = at(rng, out.len());
            let end = (i + rng.range(0, 64) as usize).min(out.len());
            out.splice(i..end, piece.iter().copied());
            "splice"
        }
        _ => {
            // a piece of this file repeated
            let from = at(rng, out.len());
            let piece: Vec<u8> =
                out[from..(from + rng.range(1, 32) as usize).min(out.len())].to_vec();
            let i = at(rng, out.len());
            out.splice(i..i, piece);
            "duplication"
        }
    };
    (out, what)
}

#[test]
fn mutated_and_random_inputs_never_give_wrong_pixels() {
    let bytes = std::fs::read(fixtures().join("test-model.safetensors")).unwrap();
    let model = Model::from_safetensors(&bytes).unwrap();
    let named = NamedModel {
        name: "test-model",
        model: &model,
    };
    let sources = sources(&named, &[fixtures(), fixtures().join("v2")]);
    assert!(sources.len() >= 7, "{} sources", sources.len());
    mutate_and_decode(&named, &sources, 0x1df_2024);
}

/// The same for the bits-back goldens (`fixtures/v6/vae/`: lone files, a chained archive, one
/// with counted-on names and one with a run) with their random hierarchical VAE: a damaged chain or block never gives other pixels.
#[test]
fn mutated_vae_files_never_give_wrong_pixels() {
    let bytes = std::fs::read(fixtures().join("test-vae.safetensors")).unwrap();
    let model = Model::from_safetensors(&bytes).unwrap();
    let named = NamedModel {
        name: "test-vae",
        model: &model,
    };
    let sources = sources(&named, &[fixtures().join("v6/vae")]);
    assert_eq!(sources.len(), 6);
    mutate_and_decode(&named, &sources, 0xbb_a25);
}

/// `CASES` inputs: random bytes, and seeded mutations of `sources` (spliced with each other).
fn mutate_and_decode(named: &NamedModel<'_>, sources: &[Source], seed: u64) {
    let mut rng = Rng::new(seed);
    let (mut runs, mut refused, mut identical) = (0usize, 0usize, 0usize);
    LARGEST.store(0, Ordering::Relaxed);
    while runs < CASES {
        runs += 1;
        // every eighth input is random bytes, behind a valid magic half of the time
        if runs % 8 == 0 {
            let len = rng.range(0, 96) as usize;
            let mut random = rng.bytes(len);
            if rng.range(0, 1) == 0 && random.len() >= 2 {
                let magics = [
                    [0x69, 0xd1],
                    [0x69, 0xd2],
                    [0x69, 0xa1],
                    [0x69, 0xa2],
                    [0x69, 0xd5],
                    [0x69, 0xa5],
                    [0x69, 0xd6],
                    [0x69, 0xa6],
                ];
                random[..2].copy_from_slice(&magics[rng.range(0, 7) as usize]);
            }
            match decode(&random, named) {
                Decoded::Refused => refused += 1,
                Decoded::Images(images) => panic!("random bytes decoded: {images:?}"),
            }
            continue;
        }
        let source = &sources[rng.range(0, sources.len() as i64 - 1) as usize];
        let other = &sources[rng.range(0, sources.len() as i64 - 1) as usize];
        let (mutated, what) = mutate(&mut rng, &source.bytes, &other.bytes);
        match decode(&mutated, named) {
            Decoded::Refused => refused += 1,
            Decoded::Images(images) => {
                // e.g. a renamed archive entry: the pixels must still be the originals
                assert!(
                    images.iter().all(|i| source.images.contains(i)),
                    "{what} of {} decoded to other pixels",
                    source.name
                );
                identical += 1;
            }
        }
    }
    let largest = LARGEST.load(Ordering::Relaxed);
    println!(
        "{runs} inputs: {refused} refused, {identical} decoded to the original pixels; largest \
         allocation {largest} bytes"
    );
    assert!(refused > runs / 2, "{refused} of {runs} refused");
    assert!(
        largest <= MAX_ALLOCATION,
        "largest allocation {largest} bytes"
    );
}
