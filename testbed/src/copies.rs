//! A job that proves how many copies of it run: it appends its counter to a log on the
//! testbed's shared scratch folder, one number a line, 20 times a second. One copy
//! writes 1, 2, 3 … with no number twice; two copies (a migrated process whose original
//! also ran on) both go on from the same number, so a number repeats or goes back. A
//! stopped copy just pauses the log.

use std::path::PathBuf;
use std::time::Duration;

use crate::testbed::Testbed;
use crate::wait;

/// A counting job started on a node.
#[derive(Debug)]
pub struct Counter {
    /// Its pid (criu keeps it across a move).
    pub pid: i64,
    /// Its log.
    pub log: PathBuf,
    /// A word of its command line, to find it in `ps`.
    pub name: String,
}

impl Counter {
    /// Starts a counter named `name` on node `node` (a shell loop) and waits until it
    /// counts.
    pub fn start(bed: &Testbed, node: u32, name: &str) -> Counter {
        let log = Self::fresh_log(bed, name);
        let path = log.to_string_lossy().into_owned();
        let script =
            format!("i=0; while :; do i=$((i+1)); echo $i >> {path}; sleep 0.05; done # {name}");
        Self::run(bed, node, name, log, &["sh", "-c", &script])
    }

    /// Starts a counter named `name` on node `node` that burns a CPU between numbers, as
    /// a balancer candidate (`--cpujob`), and waits until it counts.
    pub fn start_busy(bed: &Testbed, node: u32, name: &str) -> Counter {
        let log = Self::fresh_log(bed, name);
        let path = log.to_string_lossy().into_owned();
        let script = format!(
            "i=0; while :; do i=$((i+1)); echo $i >> {path}; j=0; while [ $j -lt 2000 ]; do j=$((j+1)); done; done # {name}"
        );
        let pid = bed.run_job(node, &["--cpujob"], &["sh", "-c", &script]);
        let c = Counter {
            pid,
            log,
            name: name.to_owned(),
        };
        c.grows();
        c
    }

    /// Starts a counter named `name` on node `node` that holds `mib` MiB of non-zero
    /// memory (python), and waits until it counts.
    pub fn start_big(bed: &Testbed, node: u32, name: &str, mib: u64) -> Counter {
        let log = Self::fresh_log(bed, name);
        let path = log.to_string_lossy().into_owned();
        let script = format!(
            "import time\nbuf = bytearray(b'\\x5a') * ({mib} << 20)\ni = 0\nwhile True:\n    i += 1\n    with open('{path}', 'a') as f:\n        f.write(f'{{i}}\\n')\n    time.sleep(0.05)\n# {name}"
        );
        Self::run(bed, node, name, log, &["python3", "-c", &script])
    }

    fn fresh_log(bed: &Testbed, name: &str) -> PathBuf {
        let dir = bed.state_dir.join("scratch");
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let log = dir.join(name);
        let _ = std::fs::remove_file(&log);
        log
    }

    fn run(bed: &Testbed, node: u32, name: &str, log: PathBuf, argv: &[&str]) -> Counter {
        let pid = bed.run_job(node, &[], argv);
        let c = Counter {
            pid,
            log,
            name: name.to_owned(),
        };
        c.grows();
        c
    }

    /// The numbers written so far.
    fn numbers(&self) -> Vec<u64> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// The last number, after checking that no number was written twice or out of
    /// order (`Err`: where two copies showed).
    pub fn one_copy(&self) -> Result<u64, String> {
        let n = self.numbers();
        for w in n.windows(2) {
            if w[1] != w[0] + 1 {
                return Err(format!(
                    "{} wrote {} after {}: two copies ran (or one was lost and restarted)",
                    self.name, w[1], w[0]
                ));
            }
        }
        Ok(n.last().copied().unwrap_or(0))
    }

    /// Waits until the counter moves on (a copy runs), checking it is one copy.
    pub fn grows(&self) {
        let from = self.one_copy().unwrap_or_else(|e| panic!("{e}"));
        wait::until_ok(
            Duration::from_secs(10),
            &format!("{} to count", self.name),
            || match self.one_copy() {
                Ok(now) if now > from + 2 => Ok(()),
                Ok(now) => Err(format!("stuck at {now}")),
                Err(e) => panic!("{e}"),
            },
        );
    }

    /// Whether a command line is this job's (its script ends with its name).
    pub fn is_mine(&self, cmdline: &str) -> bool {
        cmdline.trim_end().ends_with(&format!("# {}", self.name))
    }

    /// The processes of node `node` that are copies of this job (by its name), with
    /// their states (`R`, `S`, `T` …).
    pub fn copies_on(&self, bed: &Testbed, node: u32) -> Vec<(i64, String)> {
        bed.ps(node)
            .into_iter()
            .filter(|p| p["cmdline"].as_str().is_some_and(|c| self.is_mine(c)))
            .map(|p| {
                (
                    p["pid"].as_i64().unwrap_or_default(),
                    p["state"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Kills every copy of this job on every node of `bed` (cleaning up after a test).
    pub fn kill_everywhere(&self, bed: &Testbed) {
        for node in 1..=bed.nodes {
            for (pid, _) in self.copies_on(bed, node) {
                bed.kill(node, pid);
            }
        }
    }
}

/// Process `pid` runs on node `node` (is there and neither stopped nor a zombie).
pub fn runs_on(bed: &Testbed, node: u32, pid: i64) -> bool {
    bed.find(node, pid)
        .is_some_and(|p| !matches!(p["state"].as_str(), Some("T" | "Z" | "t")))
}
