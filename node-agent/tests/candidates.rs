//! Which processes the linux backend offers to the load balancer, what a process carries
//! along when it migrates, and the opt-in default of `stay` (docs/balancing.md). Real
//! processes of this machine, a real state file; no testbed needed.

use std::process::{Child, Command};
use std::time::Duration;

use openmosix_agent::backend::Backend as _;
use openmosix_agent::backend::linux::{LinuxBackend, LinuxConfig};
use openmosix_agent::backend::state::{AgentState, StateFile};
use openmosix_hpc::model::{MigMask, ProcInfo, RunOptions, Signal};
use openmosix_hpc::protocol::Carried;
use openmosix_testbed::wait;

fn open(dir: &std::path::Path) -> LinuxBackend {
    LinuxBackend::open(&LinuxConfig {
        proc_root: "/proc".into(),
        state_dir: dir.to_path_buf(),
        node_id: Some(4),
    })
    .expect("backend")
}

/// A `sleep` this test started itself (not through the agent): a "system" process.
struct Sleeper(Child);

impl Sleeper {
    fn start() -> Sleeper {
        Sleeper(Command::new("sleep").arg("60").spawn().expect("sleep"))
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.0.id()).expect("pid")
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sleep_argv() -> Vec<Vec<u8>> {
    vec![b"sleep".to_vec(), b"60".to_vec()]
}

fn kill_job(b: &mut LinuxBackend, pid: i32) {
    let _ = b.signal(pid, Signal::Kill);
    // Gone or a zombie; a test that needs it gone checks for itself.
    let _ = wait::within(Duration::from_secs(5), || {
        !b.proc(pid).is_ok_and(|p| p.state != 'Z')
    });
}

fn proc_(b: &mut LinuxBackend, pid: i32) -> ProcInfo {
    b.proc(pid).expect("the process")
}

#[test]
fn only_mosrun_jobs_and_unlocked_processes_are_candidates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut b = open(dir.path());
    let job = b
        .run(&sleep_argv(), &RunOptions::default())
        .expect("run")
        .pid;
    let nomig = RunOptions {
        nomig: true,
        ..RunOptions::default()
    };
    let locked = b.run(&sleep_argv(), &nomig).expect("run").pid;
    let sys = Sleeper::start();

    assert!(proc_(&mut b, job).candidate, "a mosrun job");
    assert!(!proc_(&mut b, locked).candidate, "a nomig job");
    assert!(
        !proc_(&mut b, sys.pid()).candidate,
        "a process the agent did not start"
    );
    assert!(
        b.procs()
            .expect("procs")
            .iter()
            .filter(|p| p.candidate)
            .all(|p| p.pid == job),
        "nothing else of this machine is a candidate"
    );

    // Unlocking on purpose makes a candidate, of a nomig job or of any process…
    assert!(b.set_lock(locked, false).expect("unlock").candidate);
    assert!(b.set_lock(sys.pid(), false).expect("unlock").candidate);
    // …kept across agent restarts, and locking takes it back.
    let mut again = open(dir.path());
    assert!(proc_(&mut again, sys.pid()).candidate);
    assert!(!again.set_lock(sys.pid(), true).expect("lock").candidate);
    assert!(!again.set_lock(job, true).expect("lock").candidate);
    assert!(!proc_(&mut open(dir.path()), job).candidate);

    kill_job(&mut b, job);
    kill_job(&mut b, locked);
}

#[test]
fn migrated_processes_keep_their_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut b = open(dir.path());
    let mask = MigMask {
        migfilter: true,
        mignodes: 0b101,
        migpolicy: 1,
    };
    let cpujob = RunOptions {
        cpujob: true,
        ..RunOptions::default()
    };
    // A guest from node 2, home node 9, moved by the balancer.
    let guest = Sleeper::start();
    let carried = Carried {
        run: Some(cpujob.clone()),
        mask,
        candidate: true,
        auto: true,
    };
    b.arrived(guest.pid(), 2, 9, 77, 1, &carried)
        .expect("arrived");
    let p = proc_(&mut b, guest.pid());
    assert_eq!((p.home, p.home_pid, p.nmigs), (9, 77, 1));
    assert!(p.candidate && p.auto_moved && !p.lock);
    assert_eq!((p.mask, p.run), (mask, Some(cpujob)));

    // A guest moved by hand, that was no candidate where it came from.
    let plain = Sleeper::start();
    b.arrived(plain.pid(), 2, 9, 78, 1, &Carried::default())
        .expect("arrived");
    let p = proc_(&mut b, plain.pid());
    assert!(!p.candidate && !p.auto_moved);
    assert_eq!(p.mask, MigMask::default());

    // Back home (node 4): a job with its options again, and still unlocked although
    // nomig would lock it (it could only have left unlocked).
    let home = Sleeper::start();
    let nomig = RunOptions {
        nomig: true,
        ..RunOptions::default()
    };
    let back = Carried {
        run: Some(nomig.clone()),
        candidate: true,
        ..Carried::default()
    };
    b.arrived(home.pid(), 3, 4, home.pid(), 2, &back)
        .expect("arrived");
    let p = proc_(&mut open(dir.path()), home.pid());
    assert_eq!((p.home, p.run.clone()), (4, Some(nomig)));
    assert!(p.candidate && !p.lock, "{p:?}");
}

#[test]
fn stay_starts_on_and_an_old_state_file_opts_in_too() {
    let fresh = tempfile::tempdir().expect("tempdir");
    assert!(open(fresh.path()).admin().expect("admin").stay);

    // A state file from before the balancer (stay off was only the default then).
    let old = tempfile::tempdir().expect("tempdir");
    let file = StateFile::in_dir(old.path()).expect("state file");
    let mut st = AgentState::default();
    st.admin.stay = false;
    st.speed_known = true;
    file.save(&st).expect("save");
    let mut b = open(old.path());
    assert!(b.admin().expect("admin").stay);

    // `mosctl nostay` is kept from then on.
    b.set_admin(&openmosix_hpc::model::AdminChange::Switch {
        switch: openmosix_hpc::model::Switch::Stay,
        on: false,
    })
    .expect("nostay");
    assert!(!open(old.path()).admin().expect("admin").stay);
}
