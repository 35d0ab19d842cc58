//! The mutation corpus (see `common/mutation.rs`): files made through the library (every pixel
//! format, untiled and tiled, with and without the test model; every extension record type,
//! synthetic and PngSuite; archives with front-coded names), damaged in every way of a fixed,
//! seeded plan: every bit of the small files' structure bytes (magic, headers, tile indexes,
//! records, names), samples of payload bits, byte overwrites, inserts and deletes, every
//! truncation, splices of two files, and targeted damage: equal-size tile payloads swapped, the
//! pixel format changed, record bits flipped and records dropped, added or retyped, entry names
//! changed, entries reordered, dropped or repeated, archive entries written as image files.
//!
//! Every case must decode to an error or to exactly the original (size, pixel format, samples,
//! every record; for archives the entry count, order and names), never panic and never allocate
//! hugely. Bounded by case counts, not time. `examples/mutation_soak.rs` (`scripts/mutation-soak`)
//! runs the same mutations at random, for as many cases as asked.

mod common;
#[path = "common/mutation.rs"]
mod mutation;

use std::sync::atomic::Ordering;

use common::Rng;
use mutation::{planned_cases, Class, Corpus, Group, Plan, Tally, LARGEST, MAX_ALLOCATION};

#[global_allocator]
static ALLOCATOR: mutation::Tracking = mutation::Tracking;

const PLAN: Plan = Plan {
    header_bits: 1024,
    payload_bits: 48,
    overwrites: 24,
    inserts: 16,
    deletes: 16,
    truncations: 400,
    splices: 16,
    tile_swaps: 8,
    record_bytes_whole: 32,
    record_bits_sampled: 48,
};

/// Every planned case of the originals of `group`; fails listing the first offenders. Each
/// class of `targeted` must have had cases (the corpus has what they target).
fn run(group: Group, seed: u64, targeted: &[Class]) {
    let corpus = Corpus::build(&[group]);
    let mut rng = Rng::new(seed);
    let mut tally = Tally::default();
    for (i, original) in corpus.originals.iter().enumerate() {
        for case in planned_cases(&corpus.originals, i, &PLAN, &mut rng) {
            let verdict = corpus.judge(original, &case.bytes);
            tally.record(case.class, &verdict, || {
                format!("{}: {}", original.name, case.what)
            });
        }
    }
    let largest = LARGEST.load(Ordering::Relaxed);
    println!(
        "{group:?}: {} originals, {} cases: {} errors, {} exact decodes, {} differing exit-0 \
         decodes, {} panics; largest allocation {largest} bytes\n{}",
        corpus.originals.len(),
        tally.total.cases,
        tally.total.errors,
        tally.total.exact,
        tally.total.different,
        tally.total.panics,
        tally.table()
    );
    assert!(tally.ok(), "{group:?}: {}", tally.failure());
    assert!(
        largest <= MAX_ALLOCATION,
        "largest allocation {largest} bytes"
    );
    for class in targeted {
        assert!(
            tally.by_class.contains_key(class),
            "{group:?}: no {class:?} cases"
        );
    }
}

#[test]
fn every_pixel_format_decodes_exactly_or_not_at_all() {
    use Class::*;
    run(
        Group::PixelFormats,
        0x6d75_7401,
        &[TileSwap, PixelFormat, RecordBit, RecordEdit, Container],
    );
}

#[test]
fn model_coded_files_decode_exactly_or_not_at_all() {
    use Class::*;
    run(
        Group::Model,
        0x6d75_7402,
        &[TileSwap, PixelFormat, Container],
    );
}

#[test]
fn colour_records_decode_exactly_or_not_at_all() {
    use Class::*;
    run(
        Group::ColourRecords,
        0x6d75_7403,
        &[TileSwap, PixelFormat, RecordBit, RecordEdit, Container],
    );
}

#[test]
fn archives_decode_exactly_or_not_at_all() {
    use Class::*;
    let all = [
        TileSwap,
        PixelFormat,
        RecordBit,
        RecordEdit,
        EntryName,
        EntryOrder,
        Container,
    ];
    run(Group::Archives, 0x6d75_7404, &all);
}
