//! The workstation holds one process per node however many channels are open: the ssh
//! master. Channels (the agent's, image and page streams) are opened by speaking ssh's
//! multiplexing protocol to it from this process. A real testbed (as root).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openmosix_hpc::map::Cluster;
use openmosix_hpc::model::NodeInfo;
use openmosix_hpc::protocol::Request;
use openmosix_testbed::Testbed;
use tokio::io::AsyncWriteExt as _;

use super::{Aux, ClientOptions, connect_node};

/// Command lines of the processes of this machine that name `needle` (an ssh control
/// socket: its master, and with process multiplexing one `ssh` per channel).
fn processes_naming(needle: &Path) -> Vec<String> {
    let needle = needle.to_string_lossy();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        e.file_name().to_str()?.parse::<u32>().ok()?;
        let raw = std::fs::read(e.path().join("cmdline")).ok()?;
        let line = String::from_utf8_lossy(&raw).replace('\0', " ");
        line.contains(needle.as_ref()).then_some(line)
    })
    .collect()
}

/// The `ssh` processes among this process's children.
fn ssh_children() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "ssh")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_per_node_with_several_channels_open() {
    let bed = Testbed::shared("mxone", 158, 3);
    let cluster = Cluster::from_file(&bed.cluster_file).expect("cluster file");
    let options = ClientOptions::for_cluster(&cluster);

    // Per node: the agent's channel and three streams beside it, all open at once.
    let mut conns = Vec::new();
    let mut streams = Vec::new();
    let mut sockets = Vec::new();
    for node in &cluster.nodes {
        let conn = connect_node(node, &options).await.expect("agent channel");
        let Some(Aux::Ssh { session, .. }) = conn.aux().cloned() else {
            panic!("node {} is not reached over ssh", node.id);
        };
        for i in 0..3 {
            let image = format!("mxone-{}-{i}", node.id);
            let aux = Aux::Ssh {
                session: Arc::clone(&session),
                agent: options.remote_agent.clone(),
            };
            streams.push(
                aux.images(false, &image, false, None)
                    .await
                    .expect("stream"),
            );
        }
        sockets.push(session.control_socket().to_path_buf());
        conns.push(conn);
    }
    // Every agent channel still answers with the streams open beside it.
    for conn in &conns {
        let _: NodeInfo = conn.request(Request::Node).await.expect("node answers");
    }

    for (node, socket) in cluster.nodes.iter().zip(&sockets) {
        let procs = processes_naming(socket);
        assert_eq!(
            procs.len(),
            1,
            "node {}: one process (its ssh master) with 4 channels open, found {procs:#?}",
            node.id
        );
    }
    assert_eq!(ssh_children(), 0, "no ssh process per channel");

    // The streams behave as before: stdin's end reaches the agent, and what it wrote on
    // stderr explains its failure (an image that is no tar).
    for mut s in streams {
        let mut w = s.writer.take().expect("stdin piped");
        w.write_all(b"not a tar").await.expect("write");
        w.shutdown().await.expect("shutdown");
        drop(w);
        let err = s.finish().await.expect_err("no image in that");
        assert_ne!(
            err, "the image stream ended with an error",
            "stderr was lost"
        );
    }
    // The agent channels outlived the streams.
    for conn in &conns {
        let _: NodeInfo = conn.request(Request::Node).await.expect("node answers");
    }

    // Dropping the channel closes the master with it (soon: it waits for sshd's goodbye).
    drop(conns);
    let deadline = Instant::now() + Duration::from_secs(10);
    for socket in &sockets {
        while !processes_naming(socket).is_empty() {
            assert!(
                Instant::now() < deadline,
                "the master of {} outlived its session",
                socket.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
