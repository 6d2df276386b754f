//! Process lists as deltas (protocol 2, docs/protocol.md): what a client of protocol 2
//! applies is the agent's list, a client of protocol 1 still gets whole lists, and a node
//! where nothing changes sends little. The agent serves a fixture /proc tree in this
//! process (so the lists are known exactly); the last test runs the real agent binary on
//! a real /proc, in a PID namespace of its own (root).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use openmosix_agent::backend::Backend as _;
use openmosix_agent::backend::linux::{LinuxBackend, LinuxConfig};
use openmosix_agent::server::Server;
use openmosix_client::AgentConn;
use openmosix_hpc::model::ProcInfo;
use openmosix_hpc::protocol::{PROTOCOL_VERSION, Request};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

/// A fixture /proc: the node files and one folder per process.
struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Tree {
    fn new(pids: impl IntoIterator<Item = i32>) -> Tree {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("proc");
        fs::create_dir_all(&root).expect("proc");
        fs::write(
            root.join("stat"),
            "cpu  100 0 100 1000 0 0 0 0 0 0\ncpu0 100 0 100 1000 0 0 0 0 0 0\nprocs_running 1\n",
        )
        .expect("stat");
        fs::write(
            root.join("meminfo"),
            "MemTotal: 1000 kB\nMemFree: 500 kB\nMemAvailable: 700 kB\n",
        )
        .expect("meminfo");
        fs::write(root.join("loadavg"), "0.00 0.00 0.00 1/100 1\n").expect("loadavg");
        let tree = Tree { _dir: dir, root };
        for pid in pids {
            tree.process(pid, 0, &format!("worker {pid}"));
        }
        tree
    }

    /// Writes process `pid` with `utime` ticks and command line `cmd`.
    fn process(&self, pid: i32, utime: u64, cmd: &str) {
        let dir = self.root.join(pid.to_string());
        fs::create_dir_all(dir.join("fd")).expect("fd");
        // pid comm state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime cutime cstime priority nice threads itreal starttime vsize rss …
        let stat = format!(
            "{pid} (worker) S 1 {pid} {pid} 0 -1 4194560 {utime} 0 0 0 {utime} 0 0 0 20 0 1 0 \
             {} 1000000 100 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
            1000 + pid
        );
        fs::write(dir.join("stat"), stat).expect("stat");
        fs::write(
            dir.join("status"),
            format!("Name:\tworker\nPid:\t{pid}\nTracerPid:\t0\nUid:\t1000\t1000\t1000\t1000\n"),
        )
        .expect("status");
        fs::write(dir.join("cmdline"), cmd.replace(' ', "\0")).expect("cmdline");
    }

    fn remove(&self, pid: i32) {
        fs::remove_dir_all(self.root.join(pid.to_string())).expect("remove");
    }

    fn backend(&self, state: &Path) -> LinuxBackend {
        LinuxBackend::open(&LinuxConfig {
            proc_root: self.root.clone(),
            state_dir: state.to_path_buf(),
            node_id: Some(3),
        })
        .expect("backend")
    }

    /// The list a fresh agent reads from the tree now (nothing kept).
    fn list(&self) -> Vec<ProcInfo> {
        let state = tempfile::tempdir().expect("tempdir");
        self.backend(state.path()).procs().expect("procs")
    }
}

/// An agent serving `tree` in this process; the client's ends of its channel.
fn serve(
    tree: &Tree,
    state: &Path,
) -> (
    tokio::io::ReadHalf<tokio::io::DuplexStream>,
    tokio::io::WriteHalf<tokio::io::DuplexStream>,
) {
    let (agent_end, client_end) = tokio::io::duplex(4 << 20);
    let (r, w) = tokio::io::split(agent_end);
    let server = Server::new(tree.backend(state));
    tokio::spawn(server.serve(BufReader::new(r), w));
    tokio::io::split(client_end)
}

/// Waits until `rx` has changed `n` more times.
async fn pushes(rx: &mut tokio::sync::watch::Receiver<u64>, n: usize) {
    for _ in 0..n {
        tokio::time::timeout(Duration::from_secs(10), rx.changed())
            .await
            .expect("a push within 10 s")
            .expect("the channel is open");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deltas_applied_by_the_client_give_the_agents_list() {
    let tree = Tree::new((100..400).step_by(3));
    let state = tempfile::tempdir().expect("tempdir");
    let (r, w) = serve(&tree, state.path());
    let conn = AgentConn::start(r, w, Box::new(()), Duration::from_secs(10))
        .await
        .expect("hello");
    assert_eq!(
        conn.hello().protocol,
        PROTOCOL_VERSION,
        "client and agent agree on the newest protocol (deltas came with 2)"
    );
    let watch = conn
        .watch_procs(Duration::from_millis(100))
        .await
        .expect("watch");
    assert!(watch.delta, "an agent of protocol 2 is asked for deltas");
    let mut rx = watch.changes();
    watch.loaded(Duration::from_secs(10)).await.expect("list");
    // The first list is seen: each wait below is for pushes after it.
    rx.borrow_and_update();
    assert_eq!(watch.procs().expect("list"), tree.list());

    // New, gone and changed processes (each change is one the process makes running).
    let steps: [&dyn Fn(&Tree); 4] = [
        &|t| t.process(5000, 0, "new one"),
        &|t| t.remove(103),
        &|t| t.process(106, 7, "exec'd into something else"),
        &|t| {
            t.process(4, 0, "early pid");
            t.remove(5000);
            t.process(109, 9, "busy");
        },
    ];
    for (n, step) in steps.iter().enumerate() {
        step(&tree);
        // The second push after the change began after it.
        pushes(&mut rx, 2).await;
        assert_eq!(watch.procs().expect("list"), tree.list(), "step {n}");
    }
    let model = watch.model();
    assert_eq!(model.resyncs, 0, "no push was lost");
    assert!(model.pushes >= 9, "{} pushes", model.pushes);

    // A resync asked for by hand: the whole list comes again, and deltas go on from it.
    conn.request::<serde_json::Value>(Request::Resync { sub: watch.sub() })
        .await
        .expect("resync");
    tree.process(112, 3, "after the resync");
    pushes(&mut rx, 3).await;
    assert_eq!(watch.procs().expect("list"), tree.list());
    assert_eq!(watch.model().resyncs, 0);
    conn.unsubscribe(watch.sub()).await.expect("unsubscribe");
}

/// Reads lines until one that starts with `prefix`.
async fn line_starting<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut R, prefix: &str) -> String {
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(10), lines.read_line(&mut line))
            .await
            .expect("a line within 10 s")
            .expect("read");
        assert!(n > 0, "the agent ended");
        if line.starts_with(prefix) {
            return line;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_protocol_1_gets_whole_lists() {
    let tree = Tree::new((100..160).step_by(2));
    let state = tempfile::tempdir().expect("tempdir");
    let (r, mut w) = serve(&tree, state.path());
    let mut lines = BufReader::new(r);
    // Exactly what a client of protocol 1 sends.
    w.write_all(
        b"{\"id\":1,\"op\":\"hello\"}\n{\"id\":2,\"op\":\"subscribe\",\"interval_ms\":100,\"procs\":true}\n",
    )
    .await
    .expect("write");
    let hello: serde_json::Value =
        serde_json::from_str(&line_starting(&mut lines, r#"{"id":1,"#).await).expect("json");
    assert_eq!(hello["ok"]["protocol"], 1, "{hello}");
    for n in 0..4 {
        let push: serde_json::Value =
            serde_json::from_str(&line_starting(&mut lines, r#"{"sub":2,"#).await).expect("json");
        let data = push["data"].as_object().expect("data");
        assert_eq!(
            data["procs"].as_array().map(Vec::len),
            Some(30),
            "push {n} carries the whole list"
        );
        assert!(
            !data.contains_key("delta") && !data.contains_key("seq"),
            "{push}"
        );
        if n == 1 {
            tree.process(120, 5, "changed");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_node_sends_little() {
    let tree = Tree::new(2..602);
    let state = tempfile::tempdir().expect("tempdir");
    let (r, mut w) = serve(&tree, state.path());
    let mut lines = BufReader::new(r);
    w.write_all(
        b"{\"id\":1,\"op\":\"hello\",\"protocol\":2}\n\
          {\"id\":2,\"op\":\"subscribe\",\"interval_ms\":100,\"procs\":true,\"delta\":true}\n",
    )
    .await
    .expect("write");
    let first = line_starting(&mut lines, r#"{"sub":2,"#).await;
    assert!(first.len() > 100_000, "the first push is the whole list");
    for n in 0..10 {
        let push = line_starting(&mut lines, r#"{"sub":2,"#).await;
        // At one push a second, 2 KB a push is 2 KB a second.
        assert!(push.len() <= 2048, "push {n}: {} bytes: {push}", push.len());
        let v: serde_json::Value = serde_json::from_str(&push).expect("json");
        assert_eq!(v["data"]["seq"], n + 2, "{push}");
        assert!(v["data"].get("procs").is_none(), "{push}");
    }
}

/// The real agent on a real /proc: 600 sleeping processes in a PID namespace of their own
/// (root: `unshare`), the list subscribed at 1 Hz with deltas; over 5 s after the whole
/// list, the agent sends at most 2 KB a second.
#[test]
fn an_idle_node_sends_at_most_2_kb_a_second() {
    use std::io::{BufRead as _, Write as _};
    use std::process::{Command, Stdio};
    let state = tempfile::tempdir().expect("tempdir");
    let script = "i=0; while [ $i -lt 600 ]; do sleep 100000 & i=$((i+1)); done; \
                  \"$0\" serve --backend linux --state-dir \"$1\" --node-id 1";
    let mut child = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--", "sh", "-c", script])
        .arg(env!("CARGO_BIN_EXE_openmosix-agent"))
        .arg(state.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("unshare (this test needs root: a PID namespace of its own)");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(
        stdin,
        "{{\"id\":1,\"op\":\"hello\",\"protocol\":2}}\n\
         {{\"id\":2,\"op\":\"subscribe\",\"interval_ms\":1000,\"procs\":true,\"delta\":true}}"
    )
    .expect("requests");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut read_push = || loop {
        let mut line = String::new();
        let n = lines.read_line(&mut line).expect("read");
        assert!(
            n > 0,
            "the agent ended (does unshare work here? it needs root)"
        );
        if line.starts_with(r#"{"sub":2,"#) {
            return line;
        }
    };
    let first = read_push();
    let v: serde_json::Value = serde_json::from_str(&first).expect("json");
    let listed = v["data"]["procs"].as_array().map_or(0, Vec::len);
    assert!(listed >= 600, "{listed} processes listed");
    let start = std::time::Instant::now();
    let mut bytes = 0;
    let mut biggest = String::new();
    for _ in 0..5 {
        let push = read_push();
        bytes += push.len();
        if push.len() > biggest.len() {
            biggest = push;
        }
    }
    let per_s = bytes as f64 / start.elapsed().as_secs_f64();
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        per_s <= 2048.0,
        "{per_s:.0} bytes a second; the biggest push: {biggest}"
    );
}

/// What `cantmove` needs of a process's open files is read again when they may have
/// changed — the process ran, or the node's tables show a connection no process
/// explains — or when the process is asked for alone; not at every listing.
#[test]
fn open_files_are_looked_at_again_when_they_may_have_changed() {
    use std::os::unix::fs::symlink;
    let tree = Tree::new([200, 201]);
    let state = tempfile::tempdir().expect("tempdir");
    let mut b = tree.backend(state.path());
    let reason = |b: &mut LinuxBackend| {
        let list = b.procs().expect("procs");
        list.into_iter()
            .find(|p| p.pid == 200)
            .expect("listed")
            .cantmove
    };
    assert_eq!(reason(&mut b), "");
    // A device opened in a run too short to count: the kept look stands...
    let fd = tree.root.join("200/fd");
    symlink("/dev/sda", fd.join("3")).expect("fd");
    assert_eq!(reason(&mut b), "");
    // ...until the process is asked for alone (a window, a migration), which is kept.
    let alone = b.proc(200).expect("proc");
    assert_eq!(alone.cantmove, "it has the device /dev/sda open");
    assert_eq!(reason(&mut b), "it has the device /dev/sda open");
    // It ran (its CPU time moved) and closed the device.
    fs::remove_file(fd.join("3")).expect("close");
    tree.process(200, 4, "worker 200");
    assert_eq!(reason(&mut b), "");
    // A connection in the node's table that no kept process holds: every process's
    // files are looked at again.
    symlink("socket:[777]", fd.join("4")).expect("fd");
    fs::create_dir_all(tree.root.join("net")).expect("net");
    fs::write(
        tree.root.join("net/tcp"),
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
         0: 0100007F:1F90 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0 20 4 30 10 -1\n",
    )
    .expect("tcp");
    assert_eq!(reason(&mut b), "it has a TCP connection to 127.0.0.1:40960");
    // The connection ends: its socket stays open, the reason goes with the table.
    fs::write(tree.root.join("net/tcp"), "  sl  local_address\n").expect("tcp");
    assert_eq!(reason(&mut b), "");
    assert_eq!(b.procs().expect("procs"), tree.list());
}
