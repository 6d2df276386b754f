//! The openMosix-kernel backend against a fixture proc root written from the HOWTO's
//! tables (tests/fixtures/hpc/node2: node 2 of a three-node cluster).

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use openmosix_agent::backend::{Backend, kernel::KernelBackend};
use openmosix_hpc::model::{
    AdminChange, MapNode, MigMask, NodeInfo, NodeStatus, RunOptions, Switch,
};
use openmosix_hpc::protocol::ErrorKind;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hpc/node2")
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// A writable copy of the fixture.
fn copy() -> (tempfile::TempDir, KernelBackend) {
    let dir = tempfile::TempDir::new().unwrap();
    copy_tree(&fixture(), dir.path());
    let backend = KernelBackend::open(dir.path()).unwrap();
    (dir, backend)
}

fn read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel)).unwrap()
}

#[test]
fn detects_and_opens() {
    assert!(KernelBackend::detect(fixture()));
    let empty = tempfile::TempDir::new().unwrap();
    assert!(!KernelBackend::detect(empty.path()));
    let err = KernelBackend::open(empty.path()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported);
    assert!(
        err.message.contains("no /proc/hpc under"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("not an openMosix kernel"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains(&empty.path().display().to_string()),
        "{}",
        err.message
    );

    let b = KernelBackend::open(fixture()).unwrap();
    assert_eq!(b.kind(), "kernel");
    assert_eq!(b.node_id(), 2);
}

#[test]
fn node_figures_are_node_twos() {
    let mut b = KernelBackend::open(fixture()).unwrap();
    assert_eq!(
        b.node().unwrap(),
        NodeInfo {
            id: 2,
            cpus: 2,
            speed: 1500,
            load: 187.0,
            util: 93.0,
            mem: 402_653_184,
            rmem: 335_544_320,
            tmem: 536_870_912,
            status: NodeStatus::Up,
        }
    );
    // The other nodes' figures, and a down node.
    let n1 = b.node_info(1).unwrap();
    assert_eq!((n1.cpus, n1.speed, n1.load), (1, 1000, 35.0));
    assert_eq!(n1.status, NodeStatus::Up);
    let n3 = b.node_info(3).unwrap();
    assert_eq!((n3.cpus, n3.tmem), (4, 1_073_741_824));
    assert_eq!(n3.status, NodeStatus::Off);
    assert_eq!(b.remote_from().unwrap(), Some(1));
}

#[test]
fn admin_reads_switches_and_tune() {
    let mut b = KernelBackend::open(fixture()).unwrap();
    let a = b.admin().unwrap();
    assert!(a.stay);
    assert!(!a.lstay);
    assert!(!a.block);
    assert!(!a.quiet);
    assert!(a.nomfs);
    assert_eq!(a.speed, 1500);
    assert_eq!(
        (a.decay_interval, a.slow_decay, a.fast_decay),
        (2, 975, 926)
    );
    assert!(!a.off);

    let t = b.tune().unwrap();
    assert!(t.tune.starts_with("PAGE 80\nSYSCALL 10"), "{}", t.tune);
    assert!(t.tune.ends_with("DMA 1"), "{}", t.tune);
    assert_eq!(t.yard, "speed 1500 (PIII/1GHz = 1000)");
    assert_eq!(t.decay, "interval 2, slow 975, fast 926");
}

#[test]
fn procs_show_the_openmosix_files() {
    let mut b = KernelBackend::open(fixture()).unwrap();
    let procs = b.procs().unwrap();
    // 4242 has no stat file: not a process.
    assert_eq!(
        procs.iter().map(|p| p.pid).collect::<Vec<_>>(),
        [1234, 2345]
    );

    let job = &procs[0];
    assert_eq!(job.cmdline.lossy(), "povray +Iscene.pov +W1024");
    assert_eq!(job.comm.lossy(), "povray");
    assert_eq!(
        (job.ppid, job.uid, job.state, job.nice),
        (1200, 500, 'R', 5)
    );
    assert_eq!((job.utime, job.cutime), (8812, 3));
    assert_eq!((job.vsize, job.rss), (26_214_400, 1500 * 4096));
    assert_eq!((job.nswap, job.cnswap), (12, 3));
    assert_eq!((job.where_, job.home, job.nmigs), (3, 2, 2));
    assert!(!job.lock);
    assert_eq!(job.cantmove, "");
    assert_eq!(
        job.mask,
        MigMask {
            migfilter: true,
            mignodes: 5,
            migpolicy: 1,
        }
    );
    assert!(job.mask.allows(3) && !job.mask.allows(2));
    assert_eq!(job.run, None);

    let make = &procs[1];
    assert_eq!(make.cmdline.lossy(), "make -j4");
    assert_eq!((make.where_, make.home, make.nmigs), (2, 2, 0));
    assert!(make.lock);
    assert_eq!(make.cantmove, "locked to its home node");
    // No mask files: the defaults.
    assert_eq!(make.mask, MigMask::default());

    assert_eq!(b.proc(1234).unwrap(), procs[0]);
    assert_eq!(b.proc(999_999).unwrap_err().kind, ErrorKind::NoSuchProcess);
    assert_eq!(b.proc(4242).unwrap_err().kind, ErrorKind::NoSuchProcess);
    assert_eq!(b.proc(0).unwrap_err().kind, ErrorKind::InvalidArgument);
}

#[test]
fn set_admin_writes_the_files() {
    let (dir, mut b) = copy();
    let root = dir.path();
    let a = b
        .set_admin(&AdminChange::Switch {
            switch: Switch::Block,
            on: true,
        })
        .unwrap();
    assert!(a.block);
    assert_eq!(read(root, "hpc/admin/block"), "1");
    // A blocked node that is up shows as Blocked.
    assert_eq!(b.node().unwrap().status, NodeStatus::Blocked);

    let a = b
        .set_admin(&AdminChange::Switch {
            switch: Switch::Stay,
            on: false,
        })
        .unwrap();
    assert!(!a.stay);
    assert_eq!(read(root, "hpc/admin/stay"), "0");

    let a = b.set_admin(&AdminChange::Speed { speed: 2222 }).unwrap();
    assert_eq!(a.speed, 2222);
    assert_eq!(read(root, "hpc/admin/speed"), "2222");

    let a = b
        .set_admin(&AdminChange::Decay {
            interval: 7,
            slow: Some(900),
            fast: None,
        })
        .unwrap();
    assert_eq!(
        (a.decay_interval, a.slow_decay, a.fast_decay),
        (7, 900, 926)
    );
    assert_eq!(read(root, "hpc/admin/decay-interval"), "7");
    assert_eq!(read(root, "hpc/admin/slow-decay"), "900");

    // A fresh backend reads the same back.
    let again = KernelBackend::open(root).unwrap().admin().unwrap();
    assert_eq!(again, a);
    // The binary config was never touched.
    assert_eq!(
        fs::read(root.join("hpc/admin/config")).unwrap(),
        fs::read(fixture().join("hpc/admin/config")).unwrap()
    );
}

#[test]
fn set_admin_validates_and_refuses_off() {
    let (dir, mut b) = copy();
    for bad in [
        AdminChange::Speed { speed: 0 },
        AdminChange::Speed { speed: 1_000_001 },
        AdminChange::Decay {
            interval: 0,
            slow: None,
            fast: None,
        },
        AdminChange::Decay {
            interval: 5,
            slow: None,
            fast: Some(1000),
        },
    ] {
        let err = b.set_admin(&bad).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArgument, "{bad:?}");
    }
    assert_eq!(read(dir.path(), "hpc/admin/speed"), "1500\n");
    assert_eq!(read(dir.path(), "hpc/admin/decay-interval"), "2\n");

    let err = b.set_admin(&AdminChange::Off { off: true }).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported);
    assert!(err.message.contains("setpe -off"), "{}", err.message);
}

#[test]
fn garbage_in_a_number_file_names_it() {
    let (dir, mut b) = copy();
    fs::write(dir.path().join("hpc/admin/speed"), "fast\n").unwrap();
    let err = b.admin().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Io);
    assert!(err.message.contains("hpc/admin/speed"), "{}", err.message);
    assert!(err.message.contains("fast"), "{}", err.message);

    fs::write(dir.path().join("hpc/nodes/2/load"), "1.2.3").unwrap();
    let err = b.node().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Io);
    assert!(err.message.contains("hpc/nodes/2/load"), "{}", err.message);
    assert!(err.message.contains("1.2.3"), "{}", err.message);

    fs::write(dir.path().join("1234/nmigs"), "two").unwrap();
    let err = b.proc(1234).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Io);
    assert!(err.message.contains("1234/nmigs"), "{}", err.message);
}

#[test]
fn missing_files_give_defaults_or_name_the_file() {
    let (dir, mut b) = copy();
    let root = dir.path();
    for f in ["stay", "slow-decay", "fast-decay", "overheads"] {
        fs::remove_file(root.join("hpc/admin").join(f)).unwrap();
    }
    let a = b.admin().unwrap();
    assert!(!a.stay);
    assert_eq!((a.slow_decay, a.fast_decay), (975, 926));
    assert_eq!(b.tune().unwrap().tune, "");

    fs::remove_file(root.join("1234/where")).unwrap();
    assert_eq!(b.proc(1234).unwrap().where_, 2);

    fs::remove_file(root.join("hpc/nodes/2/status")).unwrap();
    assert!(!b.admin().unwrap().off);
    let err = b.node().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Io);
    assert!(
        err.message.contains("hpc/nodes/2/status"),
        "{}",
        err.message
    );
}

#[test]
fn down_node_is_off() {
    let (dir, mut b) = copy();
    fs::write(dir.path().join("hpc/nodes/2/status"), "0\n").unwrap();
    assert!(b.admin().unwrap().off);
    assert_eq!(b.node().unwrap().status, NodeStatus::Off);
}

#[test]
fn expel_bring_and_map() {
    let (dir, mut b) = copy();
    assert_eq!(b.expel().unwrap(), 0);
    assert_eq!(read(dir.path(), "hpc/admin/expel"), "1");
    assert_eq!(b.bring().unwrap(), 0);
    assert_eq!(read(dir.path(), "hpc/admin/bring"), "1");

    let map = b.map().unwrap();
    assert_eq!(
        map,
        (1..=3)
            .map(|id| MapNode {
                id,
                addresses: vec![]
            })
            .collect::<Vec<_>>()
    );
    let err = b.set_map(&map).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported);
    assert!(err.message.contains("setpe -w"), "{}", err.message);
}

#[test]
fn run_starts_and_marks_decay() {
    let (dir, mut b) = copy();
    let options = RunOptions {
        nomig: true,
        cpujob: true,
        fastdecay: true,
        ..RunOptions::default()
    };
    let started = b.run(&[b"true".to_vec()], &options).unwrap();
    assert!(started.pid > 0);
    assert_eq!(started.node, 2);
    assert_eq!(read(dir.path(), "hpc/decay/cpujob"), "1");
    assert_eq!(read(dir.path(), "hpc/decay/fast"), "1");
    assert_eq!(read(dir.path(), "hpc/decay/iojob"), "0\n");

    // runon a node outside the map is refused before anything starts.
    let err = b
        .run(
            &[b"true".to_vec()],
            &RunOptions {
                runon: Some(9),
                ..RunOptions::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArgument);
    assert_eq!(
        b.run(&[], &RunOptions::default()).unwrap_err().kind,
        ErrorKind::InvalidArgument
    );
}

#[test]
fn lock_and_mask_write_the_process_files() {
    let (dir, mut b) = copy();
    let root = dir.path();
    let p = b.set_lock(1234, true).unwrap();
    assert!(p.lock);
    assert_eq!(read(root, "1234/lock"), "1");
    let p = b.set_lock(1234, false).unwrap();
    assert!(!p.lock);
    assert_eq!(read(root, "1234/lock"), "0");

    let deny = MigMask {
        migfilter: true,
        mignodes: 0b101,
        migpolicy: 0,
    };
    let p = b.set_mask(1234, &deny).unwrap();
    assert_eq!(p.mask, deny);
    assert_eq!(
        (
            read(root, "1234/migfilter"),
            read(root, "1234/mignodes"),
            read(root, "1234/migpolicy")
        ),
        ("1".into(), "5".into(), "0".into())
    );
    let wide = MigMask {
        migfilter: true,
        mignodes: 1 << 40 | 1,
        migpolicy: 1,
    };
    assert_eq!(b.set_mask(1234, &wide).unwrap().mask, wide);
    assert_eq!(read(root, "1234/mignodes"), (1u64 << 40 | 1).to_string());
    let p = b.set_mask(1234, &MigMask::default()).unwrap();
    assert_eq!(p.mask, MigMask::default());
    assert_eq!(read(root, "1234/migfilter"), "0");

    let bad = MigMask {
        migpolicy: 2,
        ..deny
    };
    assert_eq!(
        b.set_mask(1234, &bad).unwrap_err().kind,
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        b.set_lock(999_999, true).unwrap_err().kind,
        ErrorKind::NoSuchProcess
    );
    assert_eq!(
        b.set_mask(999_999, &deny).unwrap_err().kind,
        ErrorKind::NoSuchProcess
    );
    // 2345 has no mask files: the error names the file.
    let err = b.set_mask(2345, &deny).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Io);
    assert!(err.message.contains("2345/mig"), "{}", err.message);
}

#[test]
fn migrate_writes_goto_after_the_checks() {
    let (dir, mut b) = copy();
    let root = dir.path();
    // 1234 runs on node 3; its mask allows nodes 1 and 3.
    b.migrate(1234, 1).unwrap();
    assert_eq!(read(root, "1234/goto"), "1");
    // Home is always allowed, and goto is the Backend method too.
    b.goto(1234, 2).unwrap();
    assert_eq!(read(root, "1234/goto"), "2");

    let err = b.migrate(1234, 3).unwrap_err();
    assert_eq!(err.kind, ErrorKind::CannotMigrate);
    assert!(
        err.message.contains("already runs on node 3"),
        "{}",
        err.message
    );

    b.set_mask(
        1234,
        &MigMask {
            migfilter: true,
            mignodes: 1,
            migpolicy: 0,
        },
    )
    .unwrap();
    let err = b.migrate(1234, 1).unwrap_err();
    assert_eq!(err.kind, ErrorKind::CannotMigrate);
    assert!(
        err.message.contains("cluster mask does not allow node 1"),
        "{}",
        err.message
    );
    b.set_lock(1234, true).unwrap();
    let err = b.migrate(1234, 1).unwrap_err();
    assert!(err.message.contains("locked"), "{}", err.message);
    assert_eq!(read(root, "1234/goto"), "2");

    // A node outside the map, and node 0.
    b.set_lock(1234, false).unwrap();
    b.set_mask(1234, &MigMask::default()).unwrap();
    let err = b.migrate(1234, 9).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArgument);
    assert!(err.message.contains("not in this node's cluster map"));
    assert_eq!(
        b.migrate(1234, 0).unwrap_err().kind,
        ErrorKind::InvalidArgument
    );

    // 2345: the kernel's cantmove says why, then a down target.
    let err = b.migrate(2345, 1).unwrap_err();
    assert_eq!(err.kind, ErrorKind::CannotMigrate);
    assert!(
        err.message
            .ends_with("cannot move: locked to its home node"),
        "{}",
        err.message
    );
    fs::write(root.join("2345/cantmove"), "").unwrap();
    b.set_lock(2345, false).unwrap();
    let err = b.migrate(2345, 3).unwrap_err();
    assert_eq!(err.kind, ErrorKind::CannotMigrate);
    assert!(err.message.contains("node 3 is down"), "{}", err.message);
    // lstay keeps local processes here.
    fs::write(root.join("hpc/admin/lstay"), "1").unwrap();
    let err = b.migrate(2345, 1).unwrap_err();
    assert!(err.message.contains("lstay"), "{}", err.message);
    fs::write(root.join("hpc/admin/lstay"), "0").unwrap();
    b.migrate(2345, 1).unwrap();
    assert_eq!(read(root, "2345/goto"), "1");
    assert_eq!(
        b.migrate(999_999, 1).unwrap_err().kind,
        ErrorKind::NoSuchProcess
    );
}
