//! A history that heals, on the local machine (no testbed; the collector's one node is
//! this machine, served by the `openmosix-agent` built beside it): a damaged history is
//! moved aside and a new one collected; a rotation that cannot create its file keeps
//! collecting into the current one; `--keep` removes older rotated files; a pid file that
//! is a link is refused; `-k` does not stop a process that is not a collector; the
//! history's folder is 0700 after a start.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use openmosix_store::store::link_target;
use openmosix_testbed::process::KillOnDrop;
use openmosix_testbed::wait::until_some;
use openmosix_testbed::{describe, wait};

const BIN: &str = env!("CARGO_BIN_EXE_openmosixcollector");

/// A collector in the foreground on `dir/history.db`, its log in `dir/../log`.
struct Collector {
    child: KillOnDrop,
    db: PathBuf,
    log: PathBuf,
}

impl Collector {
    fn start(dir: &Path, extra: &[&str]) -> Collector {
        let db = dir.join("history.db");
        let log = dir.with_extension("log");
        let out = std::fs::File::create(&log).expect("log");
        let child = Command::new(BIN)
            .arg("--foreground")
            .arg("--db")
            .arg(&db)
            .arg("--pid-file")
            .arg(dir.with_extension("pid"))
            .args(extra)
            .env("OPENMOSIX_STATE_DIR", dir.with_extension("agent"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("start the collector");
        Collector {
            child: KillOnDrop(child),
            db,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Samples in the file the link leads to now.
    fn samples(&self) -> i64 {
        let Some(file) = link_target(&self.db) else {
            return 0;
        };
        rusqlite::Connection::open(file)
            .and_then(|c| c.query_row("SELECT count(*) FROM samples_all", [], |r| r.get(0)))
            .unwrap_or(0)
    }

    /// Waits until the current file holds more than `n` samples.
    fn wait_samples_beyond(&self, n: i64) -> i64 {
        until_some(Duration::from_secs(20), "samples", || {
            let now = self.samples();
            (now > n).then_some(now)
        })
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([sig, &self.child.0.id().to_string()])
            .status()
            .expect("kill");
        assert!(st.success());
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .expect("stat")
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn a_damaged_history_is_moved_aside_and_a_new_one_collected() {
    let top = tempfile::tempdir().expect("tempdir");
    let dir = top.path().join("c");
    std::fs::create_dir(&dir).expect("mkdir");
    // An opened-up folder is 0700 again after a start.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let garbage: Vec<u8> = (0..16384u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(dir.join("history.db"), &garbage).expect("garbage");

    let c = Collector::start(&dir, &[]);
    c.wait_samples_beyond(0);
    let aside: Vec<String> = names(&dir)
        .into_iter()
        .filter(|n| n.starts_with("history.db.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{:?}\n{}", names(&dir), c.log());
    assert_eq!(std::fs::read(dir.join(&aside[0])).expect("read"), garbage);
    let log = c.log();
    assert!(
        log.contains("is damaged") && log.contains("moved aside as"),
        "the log says so: {log}"
    );
    let h = openmosix_store::History::open(&c.db).expect("the new history reads");
    let note = h.meta("set_aside").expect("meta").expect("a note");
    assert!(note.starts_with(&aside[0]), "{note}");
    assert_eq!(mode(&dir), 0o700);
}

/// `chattr -i` on the folder when the test ends, however it ends.
struct Immutable(PathBuf);

impl Immutable {
    fn set(dir: &Path) -> Immutable {
        let out = Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .output()
            .expect("chattr");
        assert!(out.status.success(), "{}", describe("chattr +i", &out));
        Immutable(dir.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[test]
fn a_rotation_that_cannot_create_its_file_keeps_collecting() {
    let top = tempfile::tempdir().expect("tempdir");
    let dir = top.path().join("c");
    let c = Collector::start(&dir, &[]);
    c.wait_samples_beyond(1);
    let file = link_target(&c.db).expect("a link");

    // No new file can be made in the folder (not even by root): the rotation fails.
    let frozen = Immutable::set(&dir);
    c.signal("-USR2");
    until_some(
        Duration::from_secs(10),
        "the failed rotation in the log",
        || c.log().contains("cannot start a new history").then_some(()),
    );
    let before = c.samples();
    let after = c.wait_samples_beyond(before + 2);
    assert!(after > before, "collection goes on");
    assert_eq!(link_target(&c.db), Some(file.clone()), "in the same file");
    assert!(
        c.log()
            .contains(&format!("collecting on into {}", file.display())),
        "{}",
        c.log()
    );

    // Once the folder can be written again, a rotation works.
    drop(frozen);
    c.signal("-USR2");
    let new = until_some(Duration::from_secs(10), "the link to move", || {
        link_target(&c.db).filter(|t| *t != file)
    });
    assert!(new.is_file());
}

#[test]
fn keep_removes_the_oldest_rotated_histories() {
    let top = tempfile::tempdir().expect("tempdir");
    let dir = top.path().join("c");
    std::fs::create_dir(&dir).expect("mkdir");
    for day in 1..=5 {
        std::fs::write(dir.join(format!("history-2026010{day}-000000.db")), b"old").expect("w");
    }
    let c = Collector::start(&dir, &["--keep", "2"]);
    c.wait_samples_beyond(0);
    let first = link_target(&c.db).expect("link");
    // At start: of the five old files the two newest are left.
    let rotated = |dir: &Path| -> Vec<String> {
        names(dir)
            .into_iter()
            .filter(|n| n.starts_with("history-") && n.ends_with(".db"))
            .collect()
    };
    let current = first.file_name().unwrap().to_string_lossy().into_owned();
    let mut want = vec![
        "history-20260104-000000.db".to_owned(),
        "history-20260105-000000.db".to_owned(),
        current.clone(),
    ];
    want.sort();
    assert_eq!(rotated(&dir), want, "{}", c.log());

    // A rotation saves the current file, and the oldest goes.
    c.signal("-USR2");
    let second = until_some(Duration::from_secs(10), "the link to move", || {
        link_target(&c.db).filter(|t| *t != first)
    });
    let second = second.file_name().unwrap().to_string_lossy().into_owned();
    wait::until(Duration::from_secs(5), "the oldest removed", || {
        !dir.join("history-20260104-000000.db").exists()
    });
    let mut want = vec!["history-20260105-000000.db".to_owned(), current, second];
    want.sort();
    assert_eq!(rotated(&dir), want, "{}", c.log());
    assert!(c.log().contains("removed the old history"), "{}", c.log());
}

fn collector(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run the collector")
}

#[test]
fn a_pid_file_that_is_a_link_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").expect("victim");
    let pid = dir.path().join("c.pid");
    std::os::unix::fs::symlink(&victim, &pid).expect("link");
    let db = dir.path().join("h/history.db");
    let out = collector(&[
        "--foreground",
        "--db",
        db.to_str().unwrap(),
        "--pid-file",
        pid.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "{}", describe("collector", &out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    // -k, -r and -d read it the same way.
    let out = collector(&["-k", "--pid-file", pid.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
}

#[test]
fn k_does_not_stop_a_process_that_is_not_a_collector() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sleeper = Command::new("sleep").arg("300").spawn().expect("sleep");
    let mut sleeper = KillOnDrop(sleeper);
    let pid = sleeper.0.id();
    // A pid file naming it, locked as a running collector's would be.
    let path = dir.path().join("c.pid");
    std::fs::write(&path, format!("{pid}\n")).expect("pid file");
    let held = std::fs::File::open(&path).expect("open");
    held.lock().expect("lock");

    let out = collector(&["-k", "--pid-file", path.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", describe("-k", &out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("names pid {pid}, which is not openmosixcollector")),
        "{err}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        sleeper.0.try_wait().expect("wait").is_none(),
        "the process lives"
    );
}
