//! Copy with attemptUnpackDockerCompatibility (ADD of a local archive).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;

use std::io::Write;
use std::os::unix::fs::MetadataExt;

use common::*;
use nodekit_fileop::{copy, copy_limited, FileOpError, Limits, NumericIdsOnly};

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_234_567_890);
    h.set_uid(1200);
    h.set_gid(1300);
    h
}

/// A tar with a dir, a file, an absolute symlink, a file written through that symlink, and a
/// hard link.
fn tarball() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Directory, 0o750, 0);
    b.append_data(&mut h, "d/", std::io::empty()).unwrap();
    let mut h = header(tar::EntryType::Regular, 0o640, 5);
    b.append_data(&mut h, "d/f", &b"hello"[..]).unwrap();
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    b.append_link(&mut h, "l", "/etc").unwrap();
    let mut h = header(tar::EntryType::Regular, 0o600, 3);
    b.append_data(&mut h, "l/passwd", &b"pwn"[..]).unwrap();
    let mut h = header(tar::EntryType::Link, 0o640, 0);
    b.append_link(&mut h, "hard", "d/f").unwrap();
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn add(src: &Sandbox, dst: &Sandbox, name: &str, dest: &str) -> Result<(), FileOpError> {
    let mut op = cp(name, dest);
    op.attempt_unpack_docker_compatibility = true;
    op.allow_wildcard = true;
    copy(&src.root, &dst.root, &op, &NumericIdsOnly)
}

fn check_extracted(dst: &Sandbox, at: &str) {
    let p = |s: &str| format!("{at}/{s}");
    assert_eq!(dst.read(&p("d/f")), "hello");
    assert_eq!(dst.mode(&p("d/f")), 0o640);
    assert_eq!(dst.mode(&p("d")), 0o750);
    assert_eq!(dst.mtime(&p("d/f")), (1_234_567_890, 0));
    assert_eq!(dst.mtime(&p("d")), (1_234_567_890, 0));
    // The absolute link resolves inside the extraction directory.
    assert_eq!(dst.read(&p("etc/passwd")), "pwn");
    assert_eq!(dst.meta(&p("hard")).ino(), dst.meta(&p("d/f")).ino());
    if is_root() {
        assert_eq!(dst.ids(&p("d/f")), (1200, 1300));
    }
}

#[test]
fn plain_gzip_and_zstd_archives_are_extracted() {
    let (src, dst) = (Sandbox::new(), Sandbox::new());
    let tar = tarball();
    std::fs::write(src.p("a.tar"), &tar).unwrap();
    std::fs::write(src.p("a.tar.gz"), gzip(&tar)).unwrap();
    std::fs::write(src.p("a.tzst"), zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
    add(&src, &dst, "/a.tar", "/plain").unwrap();
    add(&src, &dst, "/a.tar.gz", "/gz/").unwrap();
    add(&src, &dst, "/a.tzst", "/zst").unwrap();
    for at in ["plain", "gz", "zst"] {
        check_extracted(&dst, at);
    }
}

#[test]
fn non_archives_are_copied() {
    let (src, dst) = (Sandbox::new(), Sandbox::new());
    src.write("notes.txt", "just text");
    std::fs::write(src.p("fake.gz"), gzip(b"not a tar")).unwrap();
    add(&src, &dst, "/notes.txt", "/n").unwrap();
    add(&src, &dst, "/fake.gz", "/f.gz").unwrap();
    assert_eq!(dst.read("n"), "just text");
    assert!(dst.meta("f.gz").is_file());
}

#[test]
fn owner_overrides_archive_ids() {
    if !is_root() {
        return;
    }
    let (src, dst) = (Sandbox::new(), Sandbox::new());
    std::fs::write(src.p("a.tar"), tarball()).unwrap();
    let mut op = cp("/a.tar", "/x");
    op.attempt_unpack_docker_compatibility = true;
    op.owner = chown(by_id(42), None);
    copy(&src.root, &dst.root, &op, &NumericIdsOnly).unwrap();
    assert_eq!(dst.ids("x/d/f"), (42, 42));
    assert_eq!(dst.ids("x"), (42, 42));
}

#[test]
fn breakout_rejected() {
    let (src, dst) = (Sandbox::new(), Sandbox::new());
    let mut h = header(tar::EntryType::Regular, 0o644, 1);
    // Write a raw name with "..", which the builder's path setters refuse.
    let name = b"../escape";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b"x"[..]).unwrap();
    std::fs::write(src.p("bad.tar"), b.into_inner().unwrap()).unwrap();
    let e = add(&src, &dst, "/bad.tar", "/out").unwrap_err();
    assert!(
        e.to_string()
            .contains("outside of the extraction directory"),
        "{e}"
    );
    assert!(!dst.outside("escape").exists());
}

fn add_limited(src: &Sandbox, dst: &Sandbox, name: &str, limit: u64) -> Result<(), FileOpError> {
    let mut op = cp(name, "/out/");
    op.attempt_unpack_docker_compatibility = true;
    let limits = Limits {
        unpack_bytes: Some(limit),
        cancelled: None,
    };
    copy_limited(&src.root, &dst.root, &op, &NumericIdsOnly, &limits)
}

/// A gzip tar of one file of `size` zeros: a few kB inflating to `size`.
fn zeros_bomb(size: u64) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Regular, 0o644, size);
    let zeros = std::io::Read::take(std::io::repeat(0), size);
    b.append_data(&mut h, "zeros", zeros).unwrap();
    gzip(&b.into_inner().unwrap())
}

#[test]
fn an_extraction_stops_at_its_limit() {
    let (src, dst) = (Sandbox::new(), Sandbox::new());
    std::fs::write(src.root.join("bomb.tgz"), zeros_bomb(4 << 20)).unwrap();
    let error = add_limited(&src, &dst, "/bomb.tgz", 1 << 20).unwrap_err();
    assert_eq!(
        error.to_string(),
        "failed to extract /bomb.tgz: the extraction would write more than the limit of 1048576 bytes"
    );
    // What is written stops at the limit: the rest is never read.
    let written = std::fs::metadata(dst.root.join("out/zeros")).unwrap().len();
    assert!(written <= 1 << 20, "{written}");
    // Within the limit (the file and a tar block for its entry) it extracts.
    let dst = Sandbox::new();
    add_limited(&src, &dst, "/bomb.tgz", (4 << 20) + 512).unwrap();
    assert_eq!(dst.tree(), ["out/", "out/zeros"]);
}

#[test]
fn many_empty_entries_count_against_the_limit() {
    let (src, dst) = (Sandbox::new(), Sandbox::new());
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..100 {
        let mut h = header(tar::EntryType::Regular, 0o644, 0);
        b.append_data(&mut h, format!("empty-{i}"), std::io::empty())
            .unwrap();
    }
    std::fs::write(src.root.join("many.tar"), b.into_inner().unwrap()).unwrap();
    let error = add_limited(&src, &dst, "/many.tar", 50 * 512).unwrap_err();
    assert!(error.is_extract_limit(), "{error}");
}

/// A GNU sparse entry of `real` bytes whose only data is its last 512-byte block.
fn sparse_bomb(real: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_mode(0o644);
    h.set_size(512);
    let gnu = h.as_gnu_mut().unwrap();
    gnu.sparse[0].offset = octal(real - 512);
    gnu.sparse[0].numbytes = octal(512);
    gnu.realsize = octal(real);
    h.set_path("sparse").unwrap();
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(&[b'x'; 512]);
    out.extend_from_slice(&[0; 1024]);
    out
}

/// A 12-byte octal field of a GNU header.
fn octal(n: u64) -> [u8; 12] {
    let text = format!("{n:011o}\0");
    text.as_bytes().try_into().unwrap()
}

/// A GNU sparse entry (a 1 GiB file of a few bytes) is refused, as upstream's go-archive
/// refuses type 'S': its holes are never written.
#[test]
fn a_gnu_sparse_entry_is_refused() {
    let (src, dst) = (Sandbox::new(), Sandbox::new());
    std::fs::write(src.root.join("sparse.tar"), sparse_bomb(1 << 30)).unwrap();
    let error = add_limited(&src, &dst, "/sparse.tar", 1 << 40).unwrap_err();
    assert_eq!(
        error.to_string(),
        "failed to extract /sparse.tar: unhandled tar header type GNUSparse for /out/sparse"
    );
    assert_eq!(dst.tree(), ["out/"]);
}

#[test]
fn a_cancelled_extraction_stops() {
    let (src, dst) = (Sandbox::new(), Sandbox::new());
    std::fs::write(src.root.join("bomb.tgz"), zeros_bomb(4 << 20)).unwrap();
    let mut op = cp("/bomb.tgz", "/out/");
    op.attempt_unpack_docker_compatibility = true;
    let limits = Limits {
        unpack_bytes: None,
        cancelled: Some(std::sync::Arc::new(true.into())),
    };
    let error = copy_limited(&src.root, &dst.root, &op, &NumericIdsOnly, &limits).unwrap_err();
    assert_eq!(error.to_string(), "failed to extract /bomb.tgz: cancelled");
    assert_eq!(dst.tree(), ["out/"], "nothing extracted");
}
