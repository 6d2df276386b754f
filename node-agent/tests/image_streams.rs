//! Image streams are untrusted input: crafted streams fed to a real node's
//! `openmosix-agent images receive` over the testbed's ssh are refused with a sentence,
//! write nothing outside the image folder, and leave no image folder.

use std::io::Write as _;
use std::path::PathBuf;

use openmosix_testbed::{Testbed, serial};
use tar::EntryType as T;

fn bed() -> &'static Testbed {
    Testbed::shared("tstrm", 221, 3)
}

/// One tar entry: path (written raw, so `..` and absolute paths go out as they are),
/// type, link target, contents.
type Entry<'a> = (&'a str, T, Option<&'a str>, Vec<u8>);

/// A stream announcing `announce` bytes with `entries` between a well-formed start and
/// the end mark.
fn stream(announce: u64, entries: &[Entry<'_>]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    append(&mut tar, announce, entries, true);
    tar.into_inner().expect("tar")
}

/// The well-formed start of a stream announcing `announce` bytes, without an end.
fn start_of_stream(announce: u64) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    append(&mut tar, announce, &[], false);
    // The builder ends the archive when it is finished; what it wrote so far has no end.
    tar.get_ref().clone()
}

/// Appends the start, `entries` and (with `end`) the end mark.
fn append(tar: &mut tar::Builder<Vec<u8>>, announce: u64, entries: &[Entry<'_>], end: bool) {
    let size = announce.to_string().into_bytes();
    let start: Vec<Entry<'_>> = vec![
        (".size", T::Regular, None, size),
        (".", T::Directory, None, vec![]),
        ("dump", T::Directory, None, vec![]),
        ("dump/core-1.img", T::Regular, None, b"core".to_vec()),
    ];
    let end: Vec<Entry<'_>> = if end {
        vec![(".complete", T::Regular, None, b"ok".to_vec())]
    } else {
        Vec::new()
    };
    for (path, kind, link, data) in start.iter().chain(entries).chain(&end) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(l) = link {
            h.set_link_name(l).expect("link name");
        }
        h.set_cksum();
        tar.append(&h, &data[..]).expect("append");
    }
}

/// Feeds `bytes` to node 3's `images receive ID`: (success, stderr).
fn receive(id: &str, bytes: &[u8]) -> (bool, String) {
    let mut child = bed()
        .ssh_command(3, &["openmosix-agent", "images", "receive", id])
        .spawn()
        .expect("ssh");
    let mut stdin = child.stdin.take().expect("stdin");
    // The agent may refuse (and stop reading) early: a broken pipe is expected then.
    let _ = stdin.write_all(bytes);
    drop(stdin);
    let out = child.wait_with_output().expect("ssh ends");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn image_dir(id: &str) -> PathBuf {
    bed().node_state(3).join("images").join(id)
}

#[test]
fn a_well_formed_stream_is_taken() {
    let _g = serial();
    let id = "1-good";
    let (ok, err) = receive(
        id,
        &stream(100, &[("tree.json", T::Regular, None, b"[1]".to_vec())]),
    );
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read(image_dir(id).join("dump/core-1.img")).unwrap(),
        b"core"
    );
    std::fs::remove_dir_all(image_dir(id)).unwrap();
}

#[test]
fn hostile_streams_are_refused_and_leave_nothing() {
    let _g = serial();
    let tag = std::process::id();
    let victim = format!("/tmp/om-victim-{tag}");
    let absolute = format!("/tmp/om-escaped-{tag}");
    let state = bed().node_state(3);
    let big = vec![0u8; 70 << 20];
    let cases: Vec<(&str, Vec<Entry<'_>>)> = vec![
        (
            "link",
            vec![("dump/restore.log", T::Symlink, Some(&victim), vec![])],
        ),
        (
            "link",
            vec![("dump/parent", T::Symlink, Some("/etc"), vec![])],
        ),
        (
            "link",
            vec![("dump/pages-1.img", T::Link, Some("/etc/passwd"), vec![])],
        ),
        (
            "`..`",
            vec![("dump/../../../escaped", T::Regular, None, b"x".to_vec())],
        ),
        (
            "absolute",
            vec![(&absolute, T::Regular, None, b"x".to_vec())],
        ),
        ("type", vec![("dump/tty.img", T::Char, None, vec![])]),
        ("type", vec![("dump/pipe.img", T::Fifo, None, vec![])]),
        (
            "not part",
            vec![("dump/restore.log", T::Regular, None, b"x".to_vec())],
        ),
        (
            "not part",
            vec![("dump/run.sh", T::Regular, None, b"x".to_vec())],
        ),
        (
            "not part",
            vec![("dump/x/pages-1.img", T::Regular, None, b"x".to_vec())],
        ),
        ("cap", vec![("dump/pages-1.img", T::Regular, None, big)]),
    ];
    for (i, (why, entries)) in cases.into_iter().enumerate() {
        let id = format!("{i}-bad");
        let (ok, err) = receive(&id, &stream(1000, &entries));
        assert!(!ok, "case {i} ({why}) was taken");
        assert!(
            err.contains("the image stream was refused") && err.contains(why),
            "case {i}: {err}"
        );
        assert!(!image_dir(&id).exists(), "case {i} left its image folder");
    }
    for left in [
        PathBuf::from(&victim),
        PathBuf::from(&absolute),
        state.join("escaped"),
    ] {
        assert!(!left.exists(), "{} was written", left.display());
    }
}

/// Feeds node 3's `images receive ID` a stream of `head` and then up to 4 GiB of zeros:
/// (success, stderr, bytes it took before it stopped reading).
fn receive_zeros(id: &str, head: &[u8]) -> (bool, String, u64) {
    let mut child = bed()
        .ssh_command(3, &["openmosix-agent", "images", "receive", id])
        .spawn()
        .expect("ssh");
    let mut stdin = child.stdin.take().expect("stdin");
    let zeros = vec![0u8; 1 << 20];
    let mut sent = 0u64;
    if stdin.write_all(head).is_ok() {
        sent += head.len() as u64;
        while sent < 4 << 30 && stdin.write_all(&zeros).is_ok() {
            sent += zeros.len() as u64;
        }
    }
    drop(stdin);
    let out = child.wait_with_output().expect("ssh ends");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        sent,
    )
}

#[test]
fn four_gib_of_zeros_are_refused_early() {
    let _g = serial();
    // Raw zeros: no announcement, no image.
    let (ok, err, sent) = receive_zeros("1-zeros", &[]);
    assert!(!ok, "4 GiB of zeros were taken");
    assert!(err.contains("the image stream"), "{err}");
    assert!(!image_dir("1-zeros").exists());
    eprintln!("raw zeros: stopped reading after {} MiB", sent >> 20);
    // A well-formed start announcing 1000 bytes, then the header of one 4 GiB file of
    // zeros: refused at the cap (the announcement plus 64 MiB), long before 4 GiB.
    let mut crafted = start_of_stream(1000);
    let mut h = tar::Header::new_gnu();
    h.set_size(4 << 30);
    h.set_mode(0o600);
    h.set_path("dump/pages-1.img").expect("path");
    h.set_cksum();
    crafted.extend_from_slice(h.as_bytes());
    let (ok, err, sent) = receive_zeros("2-zeros", &crafted);
    assert!(!ok, "a 4 GiB file was taken");
    assert!(err.contains("cap"), "{err}");
    assert!(
        sent < 1 << 30,
        "the agent read {} MiB before refusing",
        sent >> 20
    );
    assert!(!image_dir("2-zeros").exists());
}
