//! Reading never allocates more than a small multiple of the input, whatever the header claims,
//! even with every limit switched off. Measured with a global allocator that records the largest
//! single request and the total requested on the current thread. The one exception is a valid
//! run of a version-6 chained archive, whose entries take no bytes (bounded by `--max-entries`,
//! FORMAT.md "Limits"); a run longer than the entries claimed is refused before it is expanded.

use idfcodec_codec::format::{self, Limits};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

fn record(size: usize) {
    // `try_with`: the thread-locals may be gone while a thread shuts down
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
    let _ = TOTAL.try_with(|t| t.set(t.get().saturating_add(size)));
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// Largest single allocation and total allocated while reading `bytes` with no limits.
fn allocations_reading(bytes: &[u8]) -> (usize, usize) {
    LARGEST.with(|m| m.set(0));
    TOTAL.with(|t| t.set(0));
    let result = format::read(bytes, &Limits::UNLIMITED).map(|_| ());
    drop(result);
    (LARGEST.with(Cell::get), TOTAL.with(Cell::get))
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A single-image file claiming `width × height` in 16-pixel tiles, then `tail`.
fn tiled_image(width: u64, height: u64, tail: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x69, 0xd1];
    varint(width, &mut bytes);
    varint(height, &mut bytes);
    bytes.extend_from_slice(&[0x40, 4]); // gray8, tiled, 16-pixel tiles
    bytes.extend_from_slice(&[0; 8]); // model id, checksum
    bytes.extend_from_slice(tail);
    bytes
}

/// An archive claiming `count` entries, then `tail`.
fn archive(count: u64, tail: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x69, 0xa1, 0, 0, 0, 0, 0];
    varint(count, &mut bytes);
    bytes.extend_from_slice(tail);
    bytes
}

/// A version-6 chained archive claiming `count` entries: a first entry named "n1" (1×1), then
/// `tail`.
fn chained_v6(count: u64, tail: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x69, 0xa6, 0x02, 0, 0, 0, 0];
    varint(count, &mut bytes);
    bytes.extend_from_slice(&[0, 0, 0, 2, b'n', b'1', 1, 1, 0]);
    bytes.extend_from_slice(tail);
    bytes
}

#[test]
fn hostile_headers_allocate_in_proportion_to_the_input() {
    let max = u64::from(u32::MAX);
    let cases = [
        (
            "2^56 tiles, 3 index bytes",
            tiled_image(max, max, &[1, 2, 3]),
        ),
        (
            "2^56 tiles, 4 KiB of index",
            tiled_image(max, max, &[1; 4096]),
        ),
        (
            "4096 tiles, 4096 one-byte lengths",
            tiled_image(1024, 1024, &[0; 4096]),
        ),
        ("2^63 entries", archive(1 << 63, &[0; 64])),
        ("2^20 entries in 4 KiB", archive(1 << 20, &[0; 4096])),
        // runs take no bytes, but one is checked against the entries left before it is made
        (
            "chained v6, 2^62 entries, a run of 2^62",
            chained_v6(1 << 62, &{
                let mut run = vec![0x07];
                varint(1 << 62, &mut run);
                run.push(1);
                run
            }),
        ),
        (
            "chained v6, 2^62 entries in 4 KiB",
            chained_v6(1 << 62, &[0x03; 4096]),
        ),
        (
            "huge entry name",
            archive(1, &[0xff, 0xff, 0xff, 0xff, 0x0f, b'a']),
        ),
        (
            "huge entry section",
            archive(
                1,
                &[1, b'a', 28, 28, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f],
            ),
        ),
    ];
    for (what, bytes) in cases {
        let (largest, total) = allocations_reading(&bytes);
        let bound = 64 * bytes.len() + 4096;
        assert!(
            largest <= bound && total <= 2 * bound,
            "{what}: largest {largest}, total {total}, bound {bound}"
        );
    }
}

#[test]
fn the_tracker_sees_allocations() {
    // the measurement itself must be able to fail
    LARGEST.with(|m| m.set(0));
    let v = vec![0u8; 1 << 20];
    assert!(LARGEST.with(Cell::get) >= 1 << 20);
    drop(v);
}
