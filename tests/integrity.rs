//! Regression tests of the integrity issue, through the binary: each reproducer of the issue
//! ("exit 0 does not always mean the original image"; hostile files that take unbounded memory
//! or time) now gives a clean error. Byte offsets are those of the issue, for the fixtures named
//! (versions 2 and 3 have the same layout). The seeded mutation corpus
//! (`codec/tests/mutation.rs`) covers the same ground over every pixel format and record.

mod cli_common;

use std::fs;
use std::path::{Path, PathBuf};

use cli_common::{fails, ok, pattern, write_gray_png};
use idfcodec_codec::format::{ImageFile, Limits};

fn pngsuite(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/pngsuite")
        .join(name)
}

/// Compresses `png` (no model: `--effort 1`) into `dir/NAME.idf`, overwrites `bytes` at
/// `offset` and returns the error of decompressing it, after checking nothing was written.
fn damaged_decode_error(dir: &Path, png: &Path, offset: usize, bytes: &[u8]) -> String {
    let idf = dir.join("damaged.idf");
    ok(&[
        "compress".as_ref(),
        png.as_os_str(),
        "-o".as_ref(),
        idf.as_os_str(),
        "--effort".as_ref(),
        "1".as_ref(),
        "--force".as_ref(),
    ]);
    let mut file = fs::read(&idf).unwrap();
    assert_ne!(&file[offset..offset + bytes.len()], bytes, "not a change");
    file[offset..offset + bytes.len()].copy_from_slice(bytes);
    fs::write(&idf, &file).unwrap();
    let out = dir.join("out.png");
    let err = fails(&[
        "decompress".as_ref(),
        idf.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(!out.exists(), "{err}");
    err
}

#[test]
fn a_changed_palette_entry_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let png = pngsuite("basn3p08-trns.png");
    let err = damaged_decode_error(dir.path(), &png, 14, &[0x00]);
    assert!(err.contains("checksum"), "{err}");
}

#[test]
fn a_changed_transparency_entry_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let png = pngsuite("basn3p08-trns.png");
    let err = damaged_decode_error(dir.path(), &png, 785, &[0x00]);
    assert!(err.contains("checksum"), "{err}");
}

#[test]
fn a_changed_gamma_record_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let png = pngsuite("basn6a08.png");
    let err = damaged_decode_error(dir.path(), &png, 12, &[0, 0, 0, 1]);
    assert!(err.contains("checksum"), "{err}");
}

#[test]
fn a_palette_image_read_as_gray_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let png = pngsuite("basn3p04.png");
    // descriptor byte: palette-4 (12) with its extension bit, changed to gray4 (3)
    let err = damaged_decode_error(dir.path(), &png, 4, &[0x83]);
    assert!(err.contains("palette"), "{err}");
}

#[test]
fn swapped_tiles_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("crop.png");
    // two 64×64 tiles of the same smooth pattern: equal statistics, different pixels
    write_gray_png(&png, 128, 64, &pattern(128, 64, 5));
    let idf = dir.path().join("crop.idf");
    ok(&[
        "compress".as_ref(),
        png.as_os_str(),
        "-o".as_ref(),
        idf.as_os_str(),
        "--tile".as_ref(),
        "64".as_ref(),
        "--effort".as_ref(),
        "1".as_ref(),
    ]);
    let bytes = fs::read(&idf).unwrap();
    let mut file = ImageFile::read(&bytes, &Limits::default())
        .unwrap()
        .to_owned_file();
    assert_eq!(file.image.tiles.len(), 2);
    file.image.tiles.swap(0, 1);
    fs::write(&idf, file.to_bytes().unwrap()).unwrap();
    let out = dir.path().join("out.png");
    let err = fails(&[
        "decompress".as_ref(),
        idf.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(
        err.contains("tile 1 of 2") || err.contains("tile 2 of 2"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn a_changed_archive_entry_name_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("src");
    fs::create_dir_all(images.join("d")).unwrap();
    for i in 0..18 {
        let png = images.join(format!("d/img-{i:02}.png"));
        write_gray_png(&png, 8, 8, &pattern(8, 8, i));
    }
    let archive = dir.path().join("a.idfa");
    ok(&[
        "compress".as_ref(),
        "--archive".as_ref(),
        archive.as_os_str(),
        images.as_os_str(),
        "--effort".as_ref(),
        "1".as_ref(),
    ]);
    let mut bytes = fs::read(&archive).unwrap();
    // magic 2, model flags 1, model id 4, entry count 1, entry flags 1, prefix, suffix and
    // middle lengths 3: the first name "d/img-00.png" starts at 12, its '/' is at 13
    assert_eq!(bytes[13], b'/');
    bytes[13] = b'?';
    fs::write(&archive, &bytes).unwrap();
    let out = dir.path().join("out");
    let err = fails(&[
        "decompress".as_ref(),
        archive.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(err.contains("checksum"), "{err}");
    assert!(!out.exists(), "a failed extraction leaves nothing behind");
}

#[test]
fn garbage_payloads_are_refused_as_soon_as_the_data_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    // the 12 bytes (a 512×512 gray8 image for an embedded model, one payload byte), in
    // versions 2 and 3
    for version in [0xd2, 0xd3] {
        let idf = dir.path().join("garbage.idf");
        let mut bytes = vec![0x69, version, 0x80, 0x04, 0x80, 0x04, 0x00];
        bytes.extend_from_slice(&[0xa6, 0x87, 0x9c, 0x1a, 0x01]);
        fs::write(&idf, &bytes).unwrap();
        let err = fails(&[
            "decompress".as_ref(),
            idf.as_os_str(),
            "-o".as_ref(),
            dir.path().join("g.png").as_os_str(),
            "--threads".as_ref(),
            "1".as_ref(),
        ]);
        assert!(err.contains("data exhausted"), "{err}");
    }
}

/// A 16384×16384 16-bit RGBA image (2 GiB of samples, within the pixel limit) in a file of a
/// few bytes per tile.
fn huge_rgba16_file() -> Vec<u8> {
    let mut bytes = vec![0x69, 0xd3, 0x80, 0x80, 0x01, 0x80, 0x80, 0x01];
    bytes.extend_from_slice(&[10 | 0x40, 9]); // rgba16, tiled; 512-pixel tiles
    bytes.extend_from_slice(&[0, 0, 0, 0]); // no model
    let tiles = 32 * 32;
    bytes.extend(std::iter::repeat(3u8).take(tiles - 1)); // tile index
    bytes.extend(std::iter::repeat(0x17u8).take(3 * tiles)); // payloads
    bytes
}

#[test]
fn an_image_beyond_the_memory_budget_is_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let idf = dir.path().join("huge.idf");
    fs::write(&idf, huge_rgba16_file()).unwrap();
    let out = dir.path().join("out.png");
    let err = fails(&[
        "decompress".as_ref(),
        idf.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(err.contains("--max-memory"), "{err}");
    // within a raised budget the garbage is refused at its first tile
    let err = fails(&[
        "decompress".as_ref(),
        idf.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--max-memory".as_ref(),
        "8G".as_ref(),
    ]);
    assert!(err.contains("data exhausted"), "{err}");
    assert!(!out.exists());
}

#[test]
fn an_empty_archive_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("empty.idfa");
    fs::write(&archive, [0x69, 0xa3, 0x00, 0, 0, 0, 0, 0x00]).unwrap();
    let err = fails(&[
        "decompress".as_ref(),
        archive.as_os_str(),
        "-o".as_ref(),
        dir.path().join("out").as_os_str(),
    ]);
    assert!(err.contains("at least one image"), "{err}");
}

/// A tile too large for the machine's memory (limits raised by hand) is an error naming the
/// memory, not an allocation abort (SIGABRT): run under an address-space limit of 3 GB.
#[cfg(target_os = "linux")]
#[test]
fn a_tile_beyond_the_available_memory_is_an_error_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let idf = dir.path().join("bigtile.idf");
    // one untiled 40000×40000 gray8 image, no model, garbage payload
    let mut bytes = vec![
        0x69, 0xd3, 0xc0, 0xb8, 0x02, 0xc0, 0xb8, 0x02, 0x00, 0, 0, 0, 0,
    ];
    bytes.extend(std::iter::repeat(0x55u8).take(40));
    fs::write(&idf, &bytes).unwrap();
    let script = format!(
        "ulimit -v 3000000; exec '{}' decompress '{}' -o '{}' --max-pixels 10000000000 \
         --max-tile-pixels 10000000000 --max-memory 1000T",
        env!("CARGO_BIN_EXE_idfcodec"),
        idf.display(),
        dir.path().join("out.png").display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not enough memory"), "{stderr}");
}

#[test]
fn unknown_codes_are_named_with_the_ranges_this_version_defines() {
    use idfcodec_codec::format::FormatError;
    let format = FormatError::UnknownPixelFormat { code: 15 }.to_string();
    assert!(format.contains("0..=14"), "{format}");
    let record = FormatError::UnknownExtension { code: 8 }.to_string();
    assert!(record.contains("1..=7"), "{record}");
}
