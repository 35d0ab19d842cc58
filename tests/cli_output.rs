//! How the codec subcommands write their outputs, run as a user would: devices, FIFOs and
//! symbolic links given with `--force`, a closed stdout, failed archive extractions, temporary
//! files left by killed runs, entry names too long for the file system, and what `info` says
//! about models and integrity checks.

mod cli_common;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use cli_common::{fails, files_under, ok, pattern, read_gray_png, run, write_gray_png};
use idfcodec_codec::format::{EntryName, PixelFormat};
use idfcodec_codec::{compress_archive, EncodeOptions, Image, NamedImage};

/// The pixels of the test image.
const W: u32 = 12;
const H: u32 = 9;

/// Writes `dir/img.png` and its context-coded `dir/img.idf`; returns both paths and the pixels.
fn image_and_idf(dir: &Path) -> (PathBuf, PathBuf, Vec<u8>) {
    let png = dir.join("img.png");
    let idf = dir.join("img.idf");
    let pixels = pattern(W, H, 7);
    write_gray_png(&png, W, H, &pixels);
    ok(&[
        "compress".as_ref(),
        png.as_os_str(),
        "-o".as_ref(),
        idf.as_os_str(),
        "--effort".as_ref(),
        "1".as_ref(),
    ]);
    (png, idf, pixels)
}

/// `compress PNG -o OUT --effort 1` plus `extra`.
fn compress_args<'a>(png: &'a Path, out: &'a Path, extra: &'a [&'a str]) -> Vec<&'a OsStr> {
    let mut args: Vec<&OsStr> = vec![
        "compress".as_ref(),
        png.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--effort".as_ref(),
        "1".as_ref(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    args
}

/// `decompress IDF -o OUT` plus `extra`.
fn decompress_args<'a>(idf: &'a Path, out: &'a Path, extra: &'a [&'a str]) -> Vec<&'a OsStr> {
    let mut args: Vec<&OsStr> = vec![
        "decompress".as_ref(),
        idf.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    args
}

/// The `.tmp` files under `dir`.
fn temp_files(dir: &Path) -> Vec<String> {
    files_under(dir)
        .into_iter()
        .filter(|f| f.ends_with(".tmp"))
        .collect()
}

/// Writes an archive of `names` (small gray images) built through the library: names the file
/// system cannot hold, or that clash on it, cannot come from `compress --archive`.
fn library_archive(path: &Path, names: &[&str]) {
    let images: Vec<NamedImage> = names
        .iter()
        .enumerate()
        .map(|(i, name)| NamedImage {
            name: EntryName::new(*name).unwrap(),
            image: Image::new(W, H, PixelFormat::Gray8, pattern(W, H, i as u64)).unwrap(),
        })
        .collect();
    fs::write(
        path,
        compress_archive(&images, None, &EncodeOptions::default()).unwrap(),
    )
    .unwrap();
}

#[cfg(target_os = "linux")]
mod devices {
    use super::*;
    use std::ffi::CString;
    use std::io::Read;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};

    /// A character device to write to that a failing test cannot break for anyone else: a
    /// private copy of /dev/null (device 1:3) in `dir` where this process may make device nodes
    /// (root), else /dev/null itself when its folder is not writable (no one can replace it
    /// then), else none.
    fn null_device(dir: &Path) -> Option<PathBuf> {
        let private = dir.join("null");
        let c = CString::new(private.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid C string; mknod only creates the node (1:3 is /dev/null on Linux)
        if unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) } == 0 {
            return Some(private);
        }
        // SAFETY: a valid C string; access only checks permissions
        let dev_writable = unsafe { libc::access(c"/dev".as_ptr(), libc::W_OK) } == 0;
        (!dev_writable).then(|| PathBuf::from("/dev/null"))
    }

    fn mkfifo(path: &Path) {
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid C string
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    }

    /// Asserts that `path` is still the character device `rdev`.
    fn assert_char_device(path: &Path, rdev: u64) {
        let meta = fs::symlink_metadata(path).unwrap();
        assert!(
            meta.file_type().is_char_device() && meta.rdev() == rdev,
            "{} was replaced: {meta:?}",
            path.display()
        );
    }

    #[test]
    fn force_writes_through_a_character_device_instead_of_replacing_it() {
        let dir = tempfile::tempdir().unwrap();
        let (png, idf, _) = image_and_idf(dir.path());
        let Some(null) = null_device(dir.path()) else {
            eprintln!("skipped: no device node can be made here, and /dev is writable");
            return;
        };
        let rdev = fs::metadata(&null).unwrap().rdev();
        assert_char_device(&null, rdev);
        let err = fails(&decompress_args(&idf, &null, &[]));
        assert!(
            err.contains("is a character device") && err.contains("--force"),
            "{err}"
        );
        ok(&decompress_args(&idf, &null, &["--force"]));
        assert_char_device(&null, rdev);
        ok(&compress_args(&png, &null, &["--force"]));
        assert_char_device(&null, rdev);
        assert!(temp_files(dir.path()).is_empty());
    }

    /// Opens the FIFO's read end without waiting for a writer, so that the writer's open does
    /// not wait either; what is written (less than a pipe holds) stays there until read.
    fn open_fifo_reader(fifo: &Path) -> fs::File {
        fs::File::options()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
            .unwrap()
    }

    /// Reads what the writer, which has exited, left in the FIFO.
    fn read_all(mut reader: fs::File) -> Vec<u8> {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn force_writes_through_a_fifo_and_a_link_to_one() {
        let dir = tempfile::tempdir().unwrap();
        let (png, idf, pixels) = image_and_idf(dir.path());
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let err = fails(&decompress_args(&idf, &fifo, &[]));
        assert!(err.contains("FIFO") && err.contains("--force"), "{err}");

        let reader = open_fifo_reader(&fifo);
        ok(&decompress_args(&idf, &fifo, &["--force"]));
        let png_bytes = read_all(reader);
        let decoded = image::load_from_memory(&png_bytes).unwrap().into_luma8();
        assert_eq!(decoded.into_raw(), pixels);

        let reader = open_fifo_reader(&fifo);
        ok(&compress_args(&png, &fifo, &["--force"]));
        assert_eq!(read_all(reader), fs::read(&idf).unwrap());

        // a symbolic link to the FIFO: written through, the link kept
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("fifo", &link).unwrap();
        let reader = open_fifo_reader(&fifo);
        ok(&compress_args(&png, &link, &["--force"]));
        assert_eq!(read_all(reader), fs::read(&idf).unwrap());
        assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        assert!(temp_files(dir.path()).is_empty());
    }

    #[test]
    fn force_keeps_a_symbolic_link_and_replaces_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let (png, idf, pixels) = image_and_idf(dir.path());
        fs::create_dir(dir.path().join("real")).unwrap();
        let target = dir.path().join("real/target.png");
        fs::write(&target, b"old").unwrap();
        let link = dir.path().join("out.png");
        std::os::unix::fs::symlink("real/target.png", &link).unwrap();

        let err = fails(&decompress_args(&idf, &link, &[]));
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(fs::read(&target).unwrap(), b"old");
        ok(&decompress_args(&idf, &link, &["--force"]));
        assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("real/target.png"));
        assert_eq!(read_gray_png(&target), (W, H, pixels));

        // compress, through a link whose target does not exist yet
        let coded = dir.path().join("coded.idf");
        std::os::unix::fs::symlink("real/new.idf", &coded).unwrap();
        ok(&compress_args(&png, &coded, &["--force"]));
        assert!(fs::symlink_metadata(&coded).unwrap().is_symlink());
        assert_eq!(
            fs::read(dir.path().join("real/new.idf")).unwrap(),
            fs::read(&idf).unwrap()
        );
        assert!(temp_files(dir.path()).is_empty());
    }

    #[test]
    fn a_closed_stdout_is_an_error_not_a_silent_success() {
        let dir = tempfile::tempdir().unwrap();
        let (png, idf, _) = image_and_idf(dir.path());
        let run_sh = |redirect: &str, args: &[&OsStr]| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("exec \"$@\" {redirect}"))
                .arg("sh")
                .arg(env!("CARGO_BIN_EXE_idfcodec"))
                .args(args)
                .output()
                .unwrap()
        };
        let dash = Path::new("-");
        let decompress = decompress_args(&idf, dash, &[]);
        let compress = compress_args(&png, dash, &[]);
        for args in [&decompress, &compress] {
            let closed = run_sh(">&-", args);
            let stderr = String::from_utf8_lossy(&closed.stderr);
            assert_eq!(closed.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(stderr.contains("stdout is closed"), "{stderr}");
            // stdout on /dev/null (timing a decoder) is fine
            let null = run_sh(">/dev/null", args);
            assert!(null.status.success(), "{args:?}: {null:?}");
        }
    }

    #[test]
    fn stale_temporary_files_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (png, _, _) = image_and_idf(dir.path());
        let pid_max: u64 = fs::read_to_string("/proc/sys/kernel/pid_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let dead = pid_max + 1;
        let alive = std::process::id();
        let stale = dir.path().join(format!(".img.png.idf.{dead}-0.tmp"));
        let live = dir.path().join(format!(".img.png.idf.{alive}-0.tmp"));
        let other_output = dir.path().join(format!(".other.idf.{dead}-0.tmp"));
        for temp in [&stale, &live, &other_output] {
            fs::write(temp, b"partial").unwrap();
        }
        let out = run(&[
            "compress".as_ref(),
            png.as_os_str(),
            "--effort".as_ref(),
            "1".as_ref(),
        ]);
        assert!(out.status.success(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(".img.png.idf.{dead}-0.tmp"))
                && stderr.contains("interrupted"),
            "{stderr}"
        );
        assert!(!stale.exists(), "the dead process's file is removed");
        assert!(live.exists(), "a live process's file is left alone");
        assert!(other_output.exists(), "another output's file is left alone");

        // archive entries too
        let archive = dir.path().join("set.idfa");
        library_archive(&archive, &["a.png"]);
        let folder = dir.path().join("set");
        fs::create_dir(&folder).unwrap();
        let entry_stale = folder.join(format!(".a.png.{dead}-3.tmp"));
        fs::write(&entry_stale, b"partial").unwrap();
        ok(&["decompress".as_ref(), archive.as_os_str()]);
        assert_eq!(files_under(&folder), ["a.png"]);
    }
}

#[test]
fn a_failed_extraction_removes_the_folders_it_created() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("set.idfa");
    // the last entry needs a folder where the second one is a file: it fails after the others
    // were written and their folders created
    library_archive(&archive, &["m/n/b.png", "a.png", "a.png/x.png"]);
    let out = dir.path().join("new/out");
    let decompress = |out: &Path| fails(&decompress_args(&archive, out, &[]));
    let err = decompress(&out);
    assert!(
        err.contains("'a.png/x.png'") && err.contains("not a folder"),
        "{err}"
    );
    assert!(
        !dir.path().join("new").exists(),
        "the folders created are gone"
    );
    // folders that existed before stay, even empty
    let existing = dir.path().join("existing");
    fs::create_dir_all(existing.join("m")).unwrap();
    decompress(&existing);
    assert!(existing.join("m").is_dir());
    assert!(!existing.join("m/n").exists());
    assert_eq!(fs::read_dir(&existing).unwrap().count(), 1);
}

#[test]
fn entry_names_too_long_for_the_file_system_are_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let long = "n".repeat(300);
    for name in [format!("{long}.png"), format!("sub/{long}/x.png")] {
        let archive = dir.path().join("long.idfa");
        library_archive(&archive, &["first.png", &name]);
        let out = dir.path().join("out");
        let err = fails(&decompress_args(&archive, &out, &["--force"]));
        let target = out.join(&name);
        assert!(
            err.contains(&target.display().to_string()) && err.contains("too long"),
            "{err}"
        );
        assert!(!out.exists(), "nothing is written");
    }
}

#[test]
fn info_says_no_model_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let (_, idf, _) = image_and_idf(dir.path());
    let info = ok(&["info".as_ref(), idf.as_os_str()]);
    assert!(
        info.contains("model:    no model (context coding only)\n"),
        "{info}"
    );
    assert!(!info.contains("not in this build"), "{info}");
}

#[test]
fn info_states_what_the_integrity_check_covers() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let v1 = fixtures.join("mnist-test-0.png.idf");
    let info = ok(&["info".as_ref(), v1.as_os_str()]);
    assert!(info.contains("format version 1"), "{info}");
    assert!(
        info.contains("check:    CRC-32 of the whole image's pixels\n"),
        "{info}"
    );
    for v2 in ["mnist-test-0.png.idf", "goldens.idfa"] {
        let info = ok(&["info".as_ref(), fixtures.join("v2").join(v2).as_os_str()]);
        assert!(info.contains("format version 2"), "{info}");
        assert!(
            info.contains(
                "check:    CRC-32 of each tile's pixel samples only (not colour records, pixel \
                 format, tile placement or names; re-compress to get the newest version's check)\n"
            ),
            "{info}"
        );
    }
    for (version, file) in [
        ("3", "v3/mnist-test-0.png.idf"),
        ("3", "v3/goldens.idfa"),
        ("3", "v3/basn3p08-trns.png.idf"),
        ("4", "v4/mnist-test-0.png.idf"),
        ("4", "v4/goldens.idfa"),
        ("5", "v5/mnist-test-0.png.idf"),
        ("5", "v5/goldens.idfa"),
        ("6", "v6/mnist-test-0.png.idf"),
        ("6", "v6/goldens.idfa"),
    ] {
        let info = ok(&["info".as_ref(), fixtures.join(file).as_os_str()]);
        assert!(
            info.contains(&format!("format version {version}")),
            "{info}"
        );
        assert!(
            info.contains(
                "check:    CRC-32 of each tile's samples together with everything decoded beside \
                 them: pixel format, size, colour records, tile position, and in archives the \
                 entry's name and position\n"
            ),
            "{info}"
        );
    }
    let chained = fixtures.join("v6/goldens-chained.idfa");
    let info = ok(&["info".as_ref(), chained.as_os_str()]);
    assert!(
        info.contains("check:    CRC-32 of every entry's samples together with everything")
            && info.contains("the entries' names, order and count")
            && info.contains("layout:   chained"),
        "{info}"
    );
}
