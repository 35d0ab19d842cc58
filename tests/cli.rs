//! The codec subcommands, run as a user would: `compress`, `decompress`, `info`, `verify`,
//! `models` on temporary files, with small random models given as `--model PATH`.

mod cli_common;

use std::ffi::OsStr;
use std::fs;
use std::path::Path;

use cli_common::{
    assert_clean_failure, fails, files_under, ok, pattern, random_model, read_gray_png,
    read_gray_png_bytes, run, run_with_stdin, write_gray_png,
};

/// Compresses `w×h` pattern pixels with `model` (effort 4) and decompresses them; returns the
/// `.idf` bytes.
fn round_trip(dir: &Path, model: &Path, w: u32, h: u32, extra: &[&str]) -> Vec<u8> {
    let png = dir.join(format!("{w}x{h}.png"));
    let idf = dir.join(format!("{w}x{h}.idf"));
    let back = dir.join(format!("{w}x{h}.back.png"));
    let pixels = pattern(w, h, u64::from(w * 1000 + h));
    write_gray_png(&png, w, h, &pixels);
    let mut args = vec![
        "compress".as_ref(),
        png.as_os_str(),
        "-o".as_ref(),
        idf.as_os_str(),
    ];
    // effort 4: the model codes the image (from 5 the context coder's file may be kept)
    args.extend(["--model".as_ref(), model.as_os_str(), "--force".as_ref()]);
    args.extend(["--effort", "4"].map(OsStr::new));
    args.extend(extra.iter().map(OsStr::new));
    ok(&args);
    ok(&[
        "decompress".as_ref(),
        idf.as_os_str(),
        "-o".as_ref(),
        back.as_os_str(),
        "--model".as_ref(),
        model.as_os_str(),
    ]);
    assert_eq!(read_gray_png(&back), (w, h, pixels), "{w}×{h} {extra:?}");
    fs::remove_file(&back).unwrap();
    fs::read(&idf).unwrap()
}

#[test]
fn images_of_many_sizes_round_trip_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_model(dir.path(), 1);
    for (w, h) in [(1, 1), (1, 7), (7, 1), (13, 17), (28, 28), (100, 61)] {
        round_trip(dir.path(), &model, w, h, &[]);
    }
    let tiled = round_trip(dir.path(), &model, 300, 200, &["--tile", "64"]);
    let info = ok(&["info".as_ref(), dir.path().join("300x200.idf").as_os_str()]);
    assert!(
        info.contains("tiles:    20 of 64×64 (5 columns × 4 rows)"),
        "{info}"
    );
    assert!(tiled.len() > 100);
}

#[test]
fn threads_do_not_change_the_bytes_and_any_tiling_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_model(dir.path(), 2);
    let one = round_trip(dir.path(), &model, 100, 61, &["--threads", "1"]);
    let two = round_trip(dir.path(), &model, 100, 61, &["--threads", "2"]);
    let three = round_trip(dir.path(), &model, 100, 61, &["--threads", "3"]);
    assert_eq!(one, two);
    assert_eq!(one, three);
    let small_tiles = round_trip(
        dir.path(),
        &model,
        100,
        61,
        &["--tile", "16", "--threads", "2"],
    );
    let small_again = round_trip(
        dir.path(),
        &model,
        100,
        61,
        &["--tile", "16", "--threads", "1"],
    );
    assert_eq!(small_tiles, small_again);
    assert_ne!(
        small_tiles, one,
        "a different tile split gives another (valid) file"
    );
}

#[test]
fn default_names_and_overwrite_protection() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_model(dir.path(), 3);
    let png = dir.path().join("img.png");
    let pixels = pattern(9, 5, 1);
    write_gray_png(&png, 9, 5, &pixels);
    let m = model.to_str().unwrap();
    let p = png.to_str().unwrap();
    let stdout = ok(&["compress", p, "--model", m]);
    assert!(stdout.contains("bpd"), "{stdout}");
    let idf = dir.path().join("img.png.idf");
    let first = fs::read(&idf).unwrap();
    // a second run must not overwrite, and must leave the file as it was
    let err = fails(&["compress", p, "--model", m, "--tile", "16"]);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(fs::read(&idf).unwrap(), first);
    ok(&["compress", p, "--model", m, "--force"]);
    // img.png.idf → img.png, which exists: refused, then allowed with --force
    let i = idf.to_str().unwrap();
    let err = fails(&["decompress", i, "--model", m]);
    assert!(err.contains("already exists"), "{err}");
    fs::remove_file(&png).unwrap();
    ok(&["decompress", i, "--model", m]);
    assert_eq!(read_gray_png(&png).2, pixels);
    ok(&["decompress", i, "--model", m, "--force"]);
    // no .idf suffix: .png is appended
    let other = dir.path().join("data.bin");
    fs::copy(&idf, &other).unwrap();
    ok(&["decompress", other.to_str().unwrap(), "--model", m]);
    assert_eq!(read_gray_png(&dir.path().join("data.bin.png")).2, pixels);
    let leftovers: Vec<_> = files_under(dir.path())
        .into_iter()
        .filter(|f| f.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn stdin_and_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_model(dir.path(), 4);
    let m = model.to_str().unwrap();
    let png = dir.path().join("in.png");
    let pixels = pattern(12, 8, 2);
    write_gray_png(&png, 12, 8, &pixels);
    let compressed = run_with_stdin(
        &["compress", "-", "--model", m],
        Some(&fs::read(&png).unwrap()),
    );
    assert!(compressed.status.success(), "{compressed:?}");
    assert_eq!(&compressed.stdout[..2], b"\x69\xd6");
    assert!(String::from_utf8_lossy(&compressed.stderr).contains("bpd"));
    let decompressed = run_with_stdin(&["decompress", "-", "--model", m], Some(&compressed.stdout));
    assert!(decompressed.status.success(), "{decompressed:?}");
    assert_eq!(read_gray_png_bytes(&decompressed.stdout), (12, 8, pixels));
    // a full disk on stdout is an error, not a silent success
    #[cfg(target_os = "linux")]
    {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_idfcodec"))
            .args(["compress", png.to_str().unwrap(), "-o", "-", "--model", m])
            .stdout(fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let err = assert_clean_failure(&["compress"], &out);
        assert!(err.contains("stdout"), "{err}");
    }
}

/// A small file, decompressed through the binary after damaging it with `damage` for every
/// `case`: each run must fail cleanly without leaving a file, or give exactly the original
/// pixels. Every truncation is also tried.
fn check_damaged_files(cases: impl Iterator<Item = usize>, damage: fn(&mut [u8], usize)) {
    let dir = tempfile::tempdir().unwrap();
    let model = random_model(dir.path(), 5);
    let m = model.to_str().unwrap();
    let bytes = round_trip(dir.path(), &model, 5, 3, &[]);
    let original = read_gray_png(&dir.path().join("5x3.png"));
    let (damaged, out) = (dir.path().join("damaged.idf"), dir.path().join("out.png"));
    let args = [
        "decompress",
        damaged.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--model",
        m,
    ];
    let before = files_under(dir.path());
    for len in [0, 1, 2, 5, bytes.len() / 2, bytes.len() - 1] {
        fs::write(&damaged, &bytes[..len]).unwrap();
        let err = assert_clean_failure(&args, &run(&args));
        assert!(err.contains("damaged.idf"), "{err}");
        assert!(!out.exists(), "no output after a failure");
    }
    for case in cases.take_while(|&c| c < bytes.len() * 8) {
        let mut changed = bytes.clone();
        damage(&mut changed, case);
        fs::write(&damaged, &changed).unwrap();
        let result = run(&args);
        if result.status.success() {
            assert_eq!(read_gray_png(&out), original, "case {case}");
            fs::remove_file(&out).unwrap();
        } else {
            assert_clean_failure(&args, &result);
            assert!(!out.exists(), "case {case}: no output after a failure");
        }
    }
    fs::remove_file(&damaged).unwrap();
    assert_eq!(files_under(dir.path()), before, "no temporary files left");
}

fn flip_bit(bytes: &mut [u8], bit: usize) {
    bytes[bit / 8] ^= 1 << (bit % 8);
}

/// One flipped bit in every byte (a different bit position each time). Each run of the binary
/// costs about half a second (it links libtorch), so every bit is left to the test below and
/// to `codec/tests/pipeline.rs`, which flips every bit through the library in a second.
#[test]
fn damaged_files_fail_cleanly_and_leave_nothing_behind() {
    check_damaged_files((0..).map(|byte| byte * 8 + byte % 8), flip_bit);
}

/// Every single-bit flip through the binary (about two minutes in a debug build).
#[test]
#[ignore = "slow: run with --ignored"]
fn every_single_bit_flip_through_the_binary() {
    check_damaged_files(0.., flip_bit);
}

#[test]
fn wrong_input_and_wrong_model_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (random_model(dir.path(), 6), random_model(dir.path(), 7));
    round_trip(dir.path(), &a, 4, 4, &[]);
    let idf = dir.path().join("4x4.idf");
    let png = dir.path().join("4x4.png");
    let out = dir.path().join("never.png");
    let (i, o) = (idf.to_str().unwrap(), out.to_str().unwrap());
    let err = fails(&["decompress", i, "-o", o, "--model", b.to_str().unwrap()]);
    assert!(
        err.contains("this file was coded with the external model"),
        "{err}"
    );
    let err = fails(&["decompress", i, "-o", o]);
    assert!(err.contains("--model PATH"), "{err}");
    let err = fails(&["decompress", png.to_str().unwrap(), "-o", o]);
    assert!(err.contains("not an idfcodec file"), "{err}");
    let err = fails(&["decompress", i, "-o", o, "--model", "no-such-model"]);
    assert!(err.contains("no-such-model"), "{err}");
    let err = fails(&["decompress", i, "-o", o, "--model", png.to_str().unwrap()]);
    assert!(err.contains("not a usable idfcodec model"), "{err}");
    assert!(!out.exists());
    // an RGB image is context-coded when --model is a gray model: the report says so, and a
    // note on stderr says why, once for all the images it concerns
    let rgb = dir.path().join("rgb.png");
    let rgb2 = dir.path().join("rgb2.png");
    for path in [&rgb, &rgb2] {
        image::RgbImage::from_pixel(3, 3, image::Rgb([1, 2, 3]))
            .save(path)
            .unwrap();
    }
    let args = [
        "compress",
        rgb.to_str().unwrap(),
        rgb2.to_str().unwrap(),
        "--model",
        a.to_str().unwrap(),
    ];
    let done = cli_common::run(&args);
    assert!(done.status.success());
    let out = String::from_utf8_lossy(&done.stdout);
    assert!(out.contains("model none (context coding)"), "{out}");
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(
        err.contains("is not used for") && err.contains("1-channel"),
        "{err}"
    );
    assert_eq!(err.matches("is not used for").count(), 1, "{err}");
    fs::remove_file(dir.path().join("rgb.png.idf")).unwrap();
    // a damaged PNG is refused with a clear message and leaves nothing behind
    let bytes = fs::read(&rgb).unwrap();
    fs::write(&rgb, &bytes[..bytes.len() - 20]).unwrap();
    let err = fails(&["compress", rgb.to_str().unwrap()]);
    assert!(err.contains("rgb.png") && err.contains("PNG"), "{err}");
    assert!(!dir.path().join("rgb.png.idf").exists());
    let err = fails(&[
        "compress",
        png.to_str().unwrap(),
        "--model",
        a.to_str().unwrap(),
        "--tile",
        "100",
        "--force",
    ]);
    assert!(err.contains("tile side 100"), "{err}");
}

#[test]
fn limits_are_enforced_with_their_flags() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_model(dir.path(), 8);
    round_trip(dir.path(), &model, 40, 20, &[]);
    let idf = dir.path().join("40x20.idf");
    let args = |flag: &str, value: &str| {
        let out = dir.path().join("limited.png");
        let out = out.to_str().unwrap().to_string();
        vec![
            "decompress".to_string(),
            idf.to_str().unwrap().into(),
            "-o".into(),
            out,
            "--model".into(),
            model.to_str().unwrap().into(),
            flag.into(),
            value.into(),
        ]
    };
    for (flag, value) in [
        ("--max-pixels", "799"),
        ("--max-width", "39"),
        ("--max-tile-pixels", "100"),
    ] {
        let err = fails(&args(flag, value));
        assert!(err.contains(flag), "{flag}: {err}");
    }
    ok(&args("--max-pixels", "800"));
}

#[test]
fn archives_restore_nested_names() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_model(dir.path(), 9);
    let m = model.to_str().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("sub/deeper")).unwrap();
    let images = [
        ("a.png", 28, 28),
        ("sub/b.png", 5, 9),
        ("sub/deeper/c.png", 40, 33),
    ];
    for (i, (name, w, h)) in images.iter().enumerate() {
        write_gray_png(&src.join(name), *w, *h, &pattern(*w, *h, i as u64));
    }
    fs::write(src.join("sub/notes.txt"), "not an image").unwrap();
    let archive = dir.path().join("set.idfa");
    let (s, a) = (src.to_str().unwrap(), archive.to_str().unwrap());
    let stdout = ok(&["compress", "--archive", a, s, "--model", m, "--tile", "16"]);
    assert!(stdout.contains("3 images"), "{stdout}");
    let info = ok(&["info", a]);
    assert!(
        info.contains("sub/deeper/c.png") && info.contains("3 entries"),
        "{info}"
    );
    // default folder: the archive's name without .idfa
    ok(&["decompress", a, "--model", m]);
    let restored = dir.path().join("set");
    assert_eq!(
        files_under(&restored),
        ["a.png", "sub/b.png", "sub/deeper/c.png"]
    );
    for (name, _, _) in images {
        assert_eq!(
            read_gray_png(&restored.join(name)),
            read_gray_png(&src.join(name)),
            "{name}"
        );
    }
    // nothing is overwritten without --force, and nothing is written then
    fs::remove_file(restored.join("sub/b.png")).unwrap();
    let err = fails(&["decompress", a, "--model", m]);
    assert!(err.contains("already exists"), "{err}");
    assert!(!restored.join("sub/b.png").exists(), "all-or-nothing");
    ok(&["decompress", a, "--model", m, "--force"]);
    assert!(restored.join("sub/b.png").exists());
    // a symbolic link inside the output folder is not followed
    #[cfg(unix)]
    {
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let target = dir.path().join("linked");
        fs::create_dir(&target).unwrap();
        std::os::unix::fs::symlink(&outside, target.join("sub")).unwrap();
        let t = target.to_str().unwrap();
        let err = fails(&["decompress", a, "-o", t, "--model", m]);
        assert!(err.contains("symbolic link"), "{err}");
        assert!(files_under(&outside).is_empty(), "nothing written outside");
        assert!(
            !target.join("a.png").exists(),
            "written files are removed on failure"
        );
    }
    // files given directly are named by their file names; duplicates are refused
    let flat = dir.path().join("flat.idfa");
    let b = src.join("sub/b.png");
    ok(&[
        "compress",
        "--archive",
        flat.to_str().unwrap(),
        b.to_str().unwrap(),
        src.join("a.png").to_str().unwrap(),
        "--model",
        m,
    ]);
    let err = fails(&[
        "compress",
        "--archive",
        dir.path().join("dup.idfa").to_str().unwrap(),
        b.to_str().unwrap(),
        b.to_str().unwrap(),
        "--model",
        m,
    ]);
    assert!(err.contains("would both be stored as 'b.png'"), "{err}");
}

#[test]
fn verify_reports_and_fails_on_bad_images() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_model(dir.path(), 10);
    let m = model.to_str().unwrap();
    let imgs = dir.path().join("imgs");
    fs::create_dir(&imgs).unwrap();
    write_gray_png(&imgs.join("x.png"), 28, 28, &pattern(28, 28, 3));
    write_gray_png(&imgs.join("y.png"), 70, 19, &pattern(70, 19, 4));
    let out = ok(&[
        "verify",
        imgs.to_str().unwrap(),
        "--model",
        m,
        "--tile",
        "32",
    ]);
    assert!(out.contains("x.png") && out.contains("y.png"), "{out}");
    assert!(out.contains("total: 2 images round-tripped"), "{out}");
    // a truncated PNG fails; the others are still reported
    let z = imgs.join("z.png");
    write_gray_png(&z, 5, 5, &pattern(5, 5, 1));
    let bytes = fs::read(&z).unwrap();
    fs::write(&z, &bytes[..bytes.len() - 16]).unwrap();
    let result = run(&["verify", imgs.to_str().unwrap(), "--model", m]);
    let err = assert_clean_failure(&["verify"], &result);
    assert!(err.contains("1 of 3 images failed"), "{err}");
    assert!(String::from_utf8_lossy(&result.stdout).contains("z.png"));
}

#[test]
fn models_lists_or_explains() {
    let out = ok(&["models"]);
    assert!(!out.trim().is_empty());
    let help = ok(&["compress", "--help"]);
    assert!(
        help.contains("Examples:") && help.contains("--archive"),
        "{help}"
    );
    let help = ok(&["decompress", "--help"]);
    assert!(
        help.contains("--max-pixels") && help.contains("--max-tile-pixels"),
        "{help}"
    );
}

/// Every PngSuite image (every PNG colour type and bit depth, palettes, transparency, colour
/// chunks) through `compress` and `decompress` with the default models: the PNG that comes back
/// has the same pixels, palette, tRNS and colour chunks.
#[test]
fn every_pngsuite_image_round_trips_through_the_binary() {
    use idfcodec_codec::png;
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pngsuite");
    let dir = tempfile::tempdir().unwrap();
    let mut names: Vec<_> = fs::read_dir(&suite)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    names.sort();
    assert!(names.len() >= 40);
    for original in names {
        let name = original.file_name().unwrap();
        let input = dir.path().join(name);
        fs::copy(&original, &input).unwrap();
        let idf = dir.path().join("coded.idf");
        let back = dir.path().join("back.png");
        ok(&[
            "compress".as_ref(),
            input.as_os_str(),
            "-o".as_ref(),
            idf.as_os_str(),
            "--force".as_ref(),
        ]);
        ok(&[
            "decompress".as_ref(),
            idf.as_os_str(),
            "-o".as_ref(),
            back.as_os_str(),
            "--force".as_ref(),
        ]);
        let a = png::read(&fs::read(&input).unwrap()).unwrap();
        let b = png::read(&fs::read(&back).unwrap()).unwrap();
        assert_eq!(a.pixels(), b.pixels(), "{name:?}");
        let sorted = |img: &png::SourceImage| {
            let mut c = img.colour_chunks().to_vec();
            c.sort_by_key(|c| c.chunk_type);
            c
        };
        assert_eq!(sorted(&a), sorted(&b), "{name:?}");
    }
}

/// `--effort`: 1 context-codes gray images, 4 uses the model, 5 and 9 keep the smaller of the
/// model's and the context coder's file; every effort decodes the same way.
#[test]
fn effort_levels_choose_the_coding_and_decode_alike() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_model(dir.path(), 3);
    let png = dir.path().join("g.png");
    let (w, h) = (40, 24);
    let pixels = pattern(w, h, 9);
    write_gray_png(&png, w, h, &pixels);
    let mut sizes = Vec::new();
    for effort in ["1", "4", "5", "9"] {
        let idf = dir.path().join(format!("g{effort}.idf"));
        let back = dir.path().join(format!("g{effort}.png"));
        let m = model.to_str().unwrap();
        let p = png.to_str().unwrap();
        let i = idf.to_str().unwrap();
        let out = ok(&["compress", p, "-o", i, "--model", m, "--effort", effort]);
        match effort {
            "1" => assert!(out.contains("model none"), "{out}"),
            "4" => assert!(!out.contains("model none"), "{out}"),
            _ => {}
        }
        ok(&["decompress", i, "-o", back.to_str().unwrap(), "--model", m]);
        assert_eq!(
            read_gray_png(&back),
            (w, h, pixels.clone()),
            "effort {effort}"
        );
        sizes.push(fs::metadata(&idf).unwrap().len());
    }
    let smaller = sizes[0].min(sizes[1]);
    assert_eq!(sizes[2..], [smaller, smaller], "{sizes:?}");
    let out = run(&["compress", png.to_str().unwrap(), "--effort", "10"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("1..=9"));
}

/// `compress --verbose` names what of a PNG is not kept.
#[test]
fn verbose_names_the_dropped_chunks() {
    let png = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pngsuite/ct1n0g04.png");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.idf");
    let run = run(&[
        "compress".as_ref(),
        png.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--verbose".as_ref(),
    ]);
    assert!(run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("dropped the tEXt chunk"), "{err}");
}

/// The embedded RGB model codes an 8-bit RGB image (PngSuite's 32×32 `basn2c08`) at effort 4 and
/// decodes it exactly; effort 9 tries it and the context coder and keeps the smaller file.
#[test]
fn the_embedded_rgb_model_codes_rgb_images() {
    use idfcodec_codec::png;
    let dir = tempfile::tempdir().unwrap();
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pngsuite/basn2c08.png");
    let input = input.to_str().unwrap();
    let mut sizes = Vec::new();
    // (effort, the model the report must name; effort 9 may keep either)
    for (effort, model) in [("4", Some("photos")), ("1", Some("none")), ("9", None)] {
        let idf = dir.path().join(format!("e{effort}.idf"));
        let back = dir.path().join(format!("e{effort}.png"));
        let (i, b) = (idf.to_str().unwrap(), back.to_str().unwrap());
        let mut args = vec!["compress", input, "-o", i, "--effort", effort];
        if effort == "4" {
            args.extend(["--model", "photos"]);
        }
        let out = ok(&args);
        if let Some(model) = model {
            assert!(out.contains(&format!("model {model}")), "{out}");
        }
        ok(&["decompress", i, "-o", b]);
        let (a, b) = (
            png::read(&fs::read(input).unwrap()).unwrap(),
            png::read(&fs::read(&back).unwrap()).unwrap(),
        );
        assert_eq!(a.pixels(), b.pixels(), "effort {effort}");
        sizes.push(fs::metadata(&idf).unwrap().len());
    }
    assert_eq!(sizes[2], sizes[0].min(sizes[1]), "{sizes:?}");
}
