//! The soak's faults, the balancer and the collector.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openmosix_testbed::Testbed;
use openmosix_testbed::testbed::bin;

use crate::jobs::Jobs;

/// One kind of fault (a manual migration counts as one: it races the balancer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Migrate,
    ClientKill,
    AgentKill,
    SshdStop,
    CollectorKill,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::Migrate => "manual migration",
            Fault::ClientKill => "client killed mid-migration",
            Fault::AgentKill => "agents of a node killed (-9)",
            Fault::SshdStop => "sshd of a node stopped 3 s",
            Fault::CollectorKill => "collector killed (-9) and restarted",
        }
    }
}

const KINDS: [Fault; 5] = [
    Fault::Migrate,
    Fault::ClientKill,
    Fault::AgentKill,
    Fault::SshdStop,
    Fault::CollectorKill,
];

pub struct Faults {
    bed: &'static Testbed,
    balancer: Child,
    collector: Child,
    db: PathBuf,
    /// Migrations under way, and when to kill their client.
    pending: Vec<(Child, Option<Instant>)>,
    sshd_down: Option<(u32, Instant)>,
    done: Vec<Fault>,
    rng: u64,
    last_integrity: Instant,
}

fn spawn_collector(bed: &Testbed, db: &PathBuf) -> Child {
    Command::new(bin("openmosixcollector"))
        .arg("--foreground")
        .arg("--cluster")
        .arg(&bed.cluster_file)
        .arg("--db")
        .arg(db)
        .arg("--pid-file")
        .arg(bed.state_dir.join("soak-collector.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openmosixcollector")
}

impl Faults {
    /// Starts the balancer and the collector.
    pub fn start(bed: &'static Testbed) -> Faults {
        let balancer = bed
            .cli_command(&["balance", "--holdoff", "10"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openmosix balance");
        let db = bed.state_dir.join("soak-history/history.db");
        let collector = spawn_collector(bed, &db);
        Faults {
            bed,
            balancer,
            collector,
            db,
            pending: Vec::new(),
            sshd_down: None,
            done: Vec::new(),
            rng: openmosix_hpc::clock::unix_nanos() as u64 | 1,
            last_integrity: Instant::now(),
        }
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    pub fn done(&self) -> &[Fault] {
        &self.done
    }

    /// One fault, of a random kind.
    pub fn inject(&mut self, jobs: &Jobs) {
        let kind = KINDS[usize::try_from(self.random() % 5).unwrap_or(0)];
        let nodes = u64::from(self.bed.nodes);
        let node = u32::try_from(self.random() % nodes).unwrap_or(0) + 1;
        match kind {
            Fault::Migrate | Fault::ClientKill => {
                let (pid, from) = jobs.pick(self.random());
                let to = (from + u32::try_from(self.random() % (nodes - 1)).unwrap_or(0))
                    % self.bed.nodes
                    + 1;
                let child = self
                    .bed
                    .cli_command(&[
                        "migrate",
                        &from.to_string(),
                        &pid.to_string(),
                        &to.to_string(),
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("openmosix migrate");
                let kill_at = (kind == Fault::ClientKill)
                    .then(|| Instant::now() + Duration::from_millis(self.random() % 3000));
                self.pending.push((child, kill_at));
            }
            Fault::AgentKill => {
                let _ = self
                    .bed
                    .exec(node, &["pkill", "-9", "-f", "openmosix-agent serve"]);
            }
            Fault::SshdStop => {
                if self.sshd_down.is_some() {
                    return;
                }
                self.bed.sshd_stop(node);
                self.sshd_down = Some((node, Instant::now() + Duration::from_secs(3)));
            }
            Fault::CollectorKill => {
                let _ = self.collector.kill();
                let _ = self.collector.wait();
                self.collector = spawn_collector(self.bed, &self.db);
            }
        }
        self.done.push(kind);
    }

    /// Kills the clients whose time has come, forgets the migrations that ended, starts
    /// a stopped sshd again.
    pub fn reap(&mut self) {
        let now = Instant::now();
        self.pending.retain_mut(|(child, kill_at)| {
            if kill_at.is_some_and(|t| now >= t) {
                let _ = child.kill();
                *kill_at = None;
            }
            !matches!(child.try_wait(), Ok(Some(_)))
        });
        if let Some((node, up_at)) = self.sshd_down
            && now >= up_at
        {
            self.bed.sshd_start(node);
            self.sshd_down = None;
        }
    }

    /// Every 10 s: the history database passes SQLite's integrity check.
    pub fn check_history(&mut self) -> Vec<String> {
        if self.last_integrity.elapsed() < Duration::from_secs(10) || !self.db.exists() {
            return Vec::new();
        }
        self.last_integrity = Instant::now();
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        let verdict = rusqlite::Connection::open_with_flags(&self.db, flags).and_then(|c| {
            c.busy_timeout(Duration::from_secs(5))?;
            c.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0))
        });
        match verdict {
            Ok(v) if v == "ok" => Vec::new(),
            Ok(v) => vec![format!("history integrity: {v}")],
            Err(e) => vec![format!("history integrity: cannot check: {e}")],
        }
    }

    /// Ends the balancer, the collector and what is under way.
    pub fn stop(&mut self) {
        for (child, _) in &mut self.pending {
            let _ = child.wait();
        }
        self.pending.clear();
        if let Some((node, _)) = self.sshd_down.take() {
            self.bed.sshd_start(node);
        }
        for child in [&mut self.balancer, &mut self.collector] {
            openmosix_testbed::process::terminate(child, Duration::from_secs(10), "soak child");
        }
    }
}
