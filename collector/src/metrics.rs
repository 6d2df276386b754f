//! `--metrics ADDR`: the current figures in the Prometheus text exposition format
//! (version 0.0.4) at `http://ADDR/metrics`, from a tiny HTTP/1.1 responder, so the
//! cluster shows up where Prometheus and Grafana already run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use openmosix_hpc::model::{NodeId, NodeInfo};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use openmosix_store::store::{TickReport, status_name};

#[derive(Debug, Clone, Default)]
struct NodeMetric {
    address: String,
    up: bool,
    info: Option<NodeInfo>,
}

#[derive(Debug, Default)]
struct State {
    nodes: BTreeMap<NodeId, NodeMetric>,
    ticks: u64,
    samples: u64,
    snapshots: u64,
    events: u64,
    errors: u64,
    commit_seconds_sum: f64,
    last_commit_seconds: f64,
    last_tick: i64,
    rotations: u64,
    /// Per node and kind: events written, and the time of the newest (s).
    node_events: BTreeMap<(NodeId, String), (u64, f64)>,
    checkpoints: u64,
    /// The newest checkpoint of the history: time (s) and note.
    last_checkpoint: Option<(f64, String)>,
}

/// The figures served; updated by the collecting loop and its writer.
#[derive(Debug, Default)]
pub struct Metrics {
    state: Mutex<State>,
}

fn esc(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets a node's link state and latest figures (`None` when it has none now).
    pub fn set_node(&self, id: NodeId, address: &str, up: bool, info: Option<NodeInfo>) {
        let mut s = self.lock();
        let n = s.nodes.entry(id).or_default();
        n.address = address.to_owned();
        n.up = up;
        n.info = info;
    }

    /// Forgets the nodes not in `ids` (nodes that left a discovered cluster).
    pub fn keep_nodes(&self, ids: &[NodeId]) {
        self.lock().nodes.retain(|id, _| ids.contains(id));
    }

    /// Counts a written tick.
    pub fn tick_written(&self, time: i64, r: &TickReport) {
        let mut s = self.lock();
        s.ticks += 1;
        s.samples += r.samples as u64;
        s.snapshots += r.snapshots as u64;
        s.events += r.events as u64;
        let secs = r.duration.as_secs_f64();
        s.commit_seconds_sum += secs;
        s.last_commit_seconds = secs;
        s.last_tick = time;
    }

    /// Counts the events of a written tick: node, kind and time (ms) of each.
    pub fn events<'a>(&self, events: impl IntoIterator<Item = (NodeId, &'a str, i64)>) {
        let mut s = self.lock();
        for (node, kind, time_ms) in events {
            let e = s.node_events.entry((node, kind.to_owned())).or_default();
            e.0 += 1;
            e.1 = e.1.max(time_ms as f64 / 1000.0);
        }
    }

    /// Counts a checkpoint found in the history: its time (ms) and note.
    pub fn checkpoint(&self, time_ms: i64, note: &str) {
        let mut s = self.lock();
        s.checkpoints += 1;
        s.last_checkpoint = Some((time_ms as f64 / 1000.0, note.to_owned()));
    }

    /// Counts a failed write.
    pub fn error(&self) {
        self.lock().errors += 1;
    }

    /// Counts a rotation.
    pub fn rotated(&self) {
        self.lock().rotations += 1;
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let s = self.lock();
        let mut o = String::new();
        s.node_families(&mut o);
        s.mark_families(&mut o);
        s.collector_families(&mut o);
        o
    }
}

/// A figure of a node.
type Field = fn(&NodeInfo) -> f64;

/// The node gauges drawn from a node's figures: name, help, value.
const NODE_GAUGES: [(&str, &str, Field); 7] = [
    (
        "openmosix_node_load",
        "openMosix load of the node (100 = one process that always wants a CPU).",
        |i| i.load,
    ),
    (
        "openmosix_node_cpu_utilization_ratio",
        "CPU utilisation of the node, 0 to 1.",
        |i| i.util / 100.0,
    ),
    (
        "openmosix_node_memory_available_bytes",
        "Free memory as openMosix sees it (MemAvailable).",
        |i| i.mem as f64,
    ),
    (
        "openmosix_node_memory_free_bytes",
        "Free memory as Linux sees it (MemFree).",
        |i| i.rmem as f64,
    ),
    (
        "openmosix_node_memory_total_bytes",
        "Total memory of the node (MemTotal).",
        |i| i.tmem as f64,
    ),
    (
        "openmosix_node_speed",
        "Speed of the node relative to a Pentium III at 1 GHz (= 1000).",
        |i| f64::from(i.speed),
    ),
    ("openmosix_node_cpus", "Number of CPUs of the node.", |i| {
        f64::from(i.cpus)
    }),
];

impl State {
    /// The nodes that are up, with their figures.
    fn up_nodes(&self) -> impl Iterator<Item = (&NodeId, &NodeInfo)> {
        self.nodes
            .iter()
            .filter_map(|(id, n)| n.info.as_ref().filter(|_| n.up).map(|i| (id, i)))
    }

    /// Per node: whether it is reached, its figures, its status.
    fn node_families(&self, o: &mut String) {
        head(
            o,
            "openmosix_node_up",
            "gauge",
            "Whether the collector reaches the node's agent (1) or not (0).",
        );
        for (id, n) in &self.nodes {
            let _ = writeln!(
                o,
                "openmosix_node_up{{node=\"{id}\",address=\"{}\"}} {}",
                esc(&n.address),
                u8::from(n.up)
            );
        }
        for (name, help, f) in NODE_GAUGES {
            head(o, name, "gauge", help);
            for (id, info) in self.up_nodes() {
                let _ = writeln!(o, "{name}{{node=\"{id}\"}} {}", f(info));
            }
        }
        head(
            o,
            "openmosix_node_status",
            "gauge",
            "The node's participation: 1 for its current status (up, blocked, off).",
        );
        for (id, info) in self.up_nodes() {
            for st in ["up", "blocked", "off"] {
                let v = u8::from(status_name(info.status) == st);
                let _ = writeln!(
                    o,
                    "openmosix_node_status{{node=\"{id}\",status=\"{st}\"}} {v}"
                );
            }
        }
    }

    /// Events per node and kind, and the newest checkpoint: what the analyzer marks on
    /// the time line when it reads Prometheus. The timestamps are the marks' own times, so
    /// that a mark seen one scrape late still lands where it happened.
    fn mark_families(&self, o: &mut String) {
        head(
            o,
            "openmosix_node_events_total",
            "counter",
            "Events written for the node (migrations, signals, down, up …), by kind.",
        );
        for ((id, kind), (n, _)) in &self.node_events {
            let _ = writeln!(
                o,
                "openmosix_node_events_total{{node=\"{id}\",kind=\"{}\"}} {n}",
                esc(kind)
            );
        }
        head(
            o,
            "openmosix_node_last_event_timestamp_seconds",
            "gauge",
            "Time of the node's newest event of this kind (Unix seconds).",
        );
        for ((id, kind), (_, t)) in &self.node_events {
            let _ = writeln!(
                o,
                "openmosix_node_last_event_timestamp_seconds{{node=\"{id}\",kind=\"{}\"}} {t}",
                esc(kind)
            );
        }
        head(
            o,
            "openmosix_collector_checkpoints_total",
            "counter",
            "Checkpoints seen in the history (openmosixcollector -n, SIGUSR1).",
        );
        let _ = writeln!(
            o,
            "openmosix_collector_checkpoints_total {}",
            self.checkpoints
        );
        head(
            o,
            "openmosix_collector_last_checkpoint_timestamp_seconds",
            "gauge",
            "Time of the newest checkpoint (Unix seconds), with its note.",
        );
        if let Some((t, note)) = &self.last_checkpoint {
            let _ = writeln!(
                o,
                "openmosix_collector_last_checkpoint_timestamp_seconds{{note=\"{}\"}} {t}",
                esc(note)
            );
        }
    }

    /// The collector's own counters and gauges: name, kind, help, value.
    fn collector_families(&self, o: &mut String) {
        let families: [(&str, &str, &str, &dyn std::fmt::Display); 9] = [
            (
                "openmosix_collector_ticks_total",
                "counter",
                "Ticks written to the history.",
                &(self.ticks as f64),
            ),
            (
                "openmosix_collector_samples_total",
                "counter",
                "Node samples written.",
                &(self.samples as f64),
            ),
            (
                "openmosix_collector_snapshots_total",
                "counter",
                "Process lists written.",
                &(self.snapshots as f64),
            ),
            (
                "openmosix_collector_events_total",
                "counter",
                "Events written.",
                &(self.events as f64),
            ),
            (
                "openmosix_collector_errors_total",
                "counter",
                "Ticks that could not be written.",
                &(self.errors as f64),
            ),
            (
                "openmosix_collector_rotations_total",
                "counter",
                "Histories saved and started anew.",
                &(self.rotations as f64),
            ),
            (
                "openmosix_collector_commit_seconds_total",
                "counter",
                "Time spent writing ticks (one transaction each).",
                &self.commit_seconds_sum,
            ),
            (
                "openmosix_collector_last_commit_seconds",
                "gauge",
                "Time the last tick's transaction took.",
                &self.last_commit_seconds,
            ),
            (
                "openmosix_collector_last_tick_timestamp_seconds",
                "gauge",
                "Time of the last tick written (Unix seconds).",
                &self.last_tick,
            ),
        ];
        for (name, kind, help, v) in families {
            head(o, name, kind, help);
            // Before the first tick there is no time to tell (0 would read as 1970).
            if name.ends_with("last_tick_timestamp_seconds") && self.ticks == 0 {
                continue;
            }
            let _ = writeln!(o, "{name} {v}");
        }
    }
}

/// Serves `metrics` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), answer(stream, &metrics)).await;
        });
    }
}

/// Reads one request head (at most 8 KiB) and answers it; the connection then closes.
async fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 8192 {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "",
                false,
            )
            .await;
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let mut words = text.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let body = metrics.render();
            respond(&mut stream, "200 OK", &body, method == "HEAD").await
        }
        ("GET" | "HEAD", "/") => {
            let body = "openmosixcollector: the figures are at /metrics\n";
            respond(&mut stream, "200 OK", body, method == "HEAD").await
        }
        ("GET" | "HEAD", _) => respond(&mut stream, "404 Not Found", "not found\n", false).await,
        _ => respond(&mut stream, "405 Method Not Allowed", "", false).await,
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        out.push_str(body);
    }
    stream.write_all(out.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmosix_hpc::model::NodeStatus;

    #[test]
    fn renders_help_type_and_values() {
        let m = Metrics::default();
        let info = NodeInfo {
            id: 1,
            cpus: 4,
            speed: 1500,
            load: 125.0,
            util: 50.0,
            mem: 1 << 30,
            rmem: 1 << 29,
            tmem: 2 << 30,
            status: NodeStatus::Blocked,
        };
        m.set_node(1, "10.0.0.1", true, Some(info));
        m.set_node(2, "a\"b", false, None);
        let text = m.render();
        assert!(text.contains("openmosix_node_up{node=\"1\",address=\"10.0.0.1\"} 1\n"));
        assert!(text.contains("openmosix_node_up{node=\"2\",address=\"a\\\"b\"} 0\n"));
        assert!(text.contains("openmosix_node_load{node=\"1\"} 125\n"));
        assert!(text.contains("openmosix_node_cpu_utilization_ratio{node=\"1\"} 0.5\n"));
        assert!(text.contains("openmosix_node_status{node=\"1\",status=\"blocked\"} 1\n"));
        assert!(!text.contains("openmosix_node_load{node=\"2\"}"));
        assert!(text.contains("# TYPE openmosix_collector_ticks_total counter\n"));
        assert!(!text.contains("\nopenmosix_collector_last_tick_timestamp_seconds "));
        assert!(!text.contains("openmosix_collector_last_checkpoint_timestamp_seconds{"));
        m.events([
            (1, "migrate_out", 1_700_000_000_250),
            (1, "migrate_out", 1_700_000_001_500),
        ]);
        m.events([(2, "down", 1_700_000_002_000)]);
        m.checkpoint(1_700_000_003_000, "before \"the\" run");
        m.tick_written(1_700_000_004, &TickReport::default());
        let text = m.render();
        assert!(text.contains("openmosix_node_events_total{node=\"1\",kind=\"migrate_out\"} 2\n"));
        assert!(text.contains(
            "openmosix_node_last_event_timestamp_seconds{node=\"1\",kind=\"migrate_out\"} 1700000001.5\n"
        ));
        assert!(text.contains(
            "openmosix_node_last_event_timestamp_seconds{node=\"2\",kind=\"down\"} 1700000002\n"
        ));
        assert!(text.contains("openmosix_collector_checkpoints_total 1\n"));
        assert!(text.contains(
            "openmosix_collector_last_checkpoint_timestamp_seconds{note=\"before \\\"the\\\" run\"} 1700000003\n"
        ));
        assert!(text.contains("openmosix_collector_last_tick_timestamp_seconds 1700000004\n"));
    }

    #[tokio::test]
    async fn answers_http() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let m = Arc::new(Metrics::default());
        let server = tokio::spawn(serve(listener, Arc::clone(&m)));
        let get = |path: &'static str| async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let r = get("/metrics").await;
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("openmosix_collector_ticks_total 0"), "{r}");
        assert!(get("/nope").await.starts_with("HTTP/1.1 404"));
        server.abort();
    }
}
