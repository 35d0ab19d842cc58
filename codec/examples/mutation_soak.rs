//! A longer soak of the mutation corpus of `tests/mutation.rs` (same originals plus larger
//! ones, same mutations, same verdict; the code is `tests/common/mutation.rs`): N seeded random
//! cases, each decoded once. Case `i` uses seed `S + i` alone, so any case can be rerun by itself
//! with `--seed S+i --cases 1`.
//!
//! ```text
//! cargo run --release -p idfcodec-codec --example mutation_soak -- --cases 10000 --seed 1
//! ```
//!
//! Prints the counts by class, the first offenders, the slowest case and the largest
//! allocation (both only reported), and a last `SUMMARY` line that `scripts/mutation-soak` adds
//! up over chunks. Exits 1 if any case decoded with exit 0 to something other than the original,
//! panicked, or allocated more than the cap. `--progress` writes `case SEED` to stderr before
//! each case, so that a hang or a crash (a signal) can be pinned to its case.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/mutation.rs"]
mod mutation;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::Rng;
use mutation::{random_case, Corpus, Group, Tally, LARGEST, MAX_ALLOCATION};

#[global_allocator]
static ALLOCATOR: mutation::Tracking = mutation::Tracking;

fn usage() -> ! {
    eprintln!("usage: mutation_soak [--cases N] [--seed S] [--progress]");
    std::process::exit(2)
}

fn main() {
    let (mut cases, mut seed, mut progress) = (1000u64, 1u64, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| usage())
        };
        match arg.as_str() {
            "--cases" => cases = value(),
            "--seed" => seed = value(),
            "--progress" => progress = true,
            _ => usage(),
        }
    }
    let corpus = Corpus::build(&Group::ALL);
    let originals = &corpus.originals;
    let mut tally = Tally::default();
    let mut slowest = (Duration::ZERO, String::new());
    let mut largest = (0usize, String::new());
    let stderr = std::io::stderr();
    for i in 0..cases {
        let case_seed = seed.wrapping_add(i);
        if progress {
            let _ = writeln!(stderr.lock(), "case {case_seed}");
        }
        let mut rng = Rng::new(case_seed);
        let index = rng.range(0, originals.len() as i64 - 1) as usize;
        let original = &originals[index];
        let case = random_case(originals, index, &mut rng);
        let describe = || {
            format!(
                "seed {case_seed} ({:?}, {}): {}",
                case.class, original.name, case.what
            )
        };
        LARGEST.store(0, Ordering::Relaxed);
        let started = Instant::now();
        let verdict = corpus.judge(original, &case.bytes);
        let elapsed = started.elapsed();
        let allocated = LARGEST.load(Ordering::Relaxed);
        if elapsed > slowest.0 {
            slowest = (elapsed, describe());
        }
        if allocated > largest.0 {
            largest = (allocated, describe());
        }
        tally.record(case.class, &verdict, describe);
    }
    let t = &tally.total;
    println!(
        "{} originals ({} bytes at most), seeds {seed}..{}:\n{}",
        originals.len(),
        originals.iter().map(|o| o.bytes.len()).max().unwrap_or(0),
        seed.wrapping_add(cases),
        tally.table()
    );
    for (class, shown) in &tally.offenders {
        for o in shown {
            println!("OFFENDER [{class:?}] {o}");
        }
    }
    println!("slowest case: {:.1} ms, {}", ms(slowest.0), slowest.1);
    println!("largest allocation: {} bytes, {}", largest.0, largest.1);
    for (class, c) in &tally.by_class {
        println!(
            "CLASS {class:?} cases={} errors={} exact={} different={} panics={}",
            c.cases, c.errors, c.exact, c.different, c.panics
        );
    }
    println!(
        "SUMMARY cases={} errors={} exact={} different={} panics={} slowest_ms={:.1} \
         largest_alloc={}",
        t.cases,
        t.errors,
        t.exact,
        t.different,
        t.panics,
        ms(slowest.0),
        largest.0
    );
    if !tally.ok() || largest.0 > MAX_ALLOCATION {
        std::process::exit(1);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
