//! A client of protocol 2 with an agent of protocol 1 (docs/protocol.md#versioning): the
//! agent ignores the version in `hello` and answers 1, the client then asks for whole
//! lists (no `delta`, no `resync`) and keeps the list from them. The agent here is a
//! script that answers as the agents of protocol 1 did, line for line.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use openmosix_client::AgentConn;
use openmosix_hpc::bytes::BytesOrText;
use openmosix_hpc::model::{NodeInfo, NodeStatus, ProcInfo};
use openmosix_hpc::protocol::{Request, RequestLine, ResponseLine, Update};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

fn node() -> NodeInfo {
    NodeInfo {
        id: 1,
        cpus: 1,
        speed: 1000,
        load: 0.0,
        util: 0.0,
        mem: 1,
        rmem: 1,
        tmem: 2,
        status: NodeStatus::Up,
    }
}

fn proc(pid: i32, utime: u64) -> ProcInfo {
    ProcInfo {
        pid,
        utime,
        state: 'S',
        comm: BytesOrText::from("p"),
        cmdline: BytesOrText::from("p"),
        ..ProcInfo::default()
    }
}

/// The lists the old agent pushes, one a push.
fn lists() -> Vec<Vec<ProcInfo>> {
    vec![
        vec![proc(1, 0), proc(5, 0)],
        vec![proc(1, 1), proc(6, 0)],
        vec![proc(1, 2), proc(6, 3), proc(9, 0)],
    ]
}

/// Answers like an agent of protocol 1: `hello` with protocol 1 whatever was asked, a
/// subscription with whole lists (a `delta` field is not read), and `unknown_op` for
/// what it does not know. Keeps the request lines it read in `seen`.
async fn old_agent(stream: tokio::io::DuplexStream, seen: Arc<Mutex<Vec<String>>>) {
    let (r, mut w) = tokio::io::split(stream);
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(text)) = lines.next_line().await {
        seen.lock().expect("seen").push(text.clone());
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        let id = value["id"].as_u64().expect("id");
        let answer = match value["op"].as_str() {
            Some("hello") => serde_json::json!({"id": id, "ok": {
                "protocol": 1, "agent_version": "0.0.9", "node_id": 1, "backend": "linux",
                "ops": ["hello", "subscribe", "unsubscribe", "procs"],
                "migration": {"available": false, "detail": "old"}}}),
            Some("subscribe") => {
                let ok = serde_json::json!({"id": id, "ok": {"sub": id}});
                w.write_all(format!("{ok}\n").as_bytes())
                    .await
                    .expect("write");
                for list in lists() {
                    let push = ResponseLine::Push {
                        sub: id,
                        data: Update::new(node(), Some(list)),
                    };
                    let text = serde_json::to_string(&push).expect("push");
                    w.write_all(format!("{text}\n").as_bytes())
                        .await
                        .expect("write");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
            Some("unsubscribe") => serde_json::json!({"id": id, "ok": null}),
            Some(op) => serde_json::json!({"id": id, "err": {"kind": "unknown_op",
                "message": format!("unknown op {op:?}")}}),
            None => continue,
        };
        w.write_all(format!("{answer}\n").as_bytes())
            .await
            .expect("write");
    }
}

#[tokio::test]
async fn an_agent_of_protocol_1_gets_asked_for_whole_lists() {
    let (client_end, agent_end) = tokio::io::duplex(1 << 20);
    let seen = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(old_agent(agent_end, Arc::clone(&seen)));
    let (r, w) = tokio::io::split(client_end);
    let conn = AgentConn::start(r, w, Box::new(()), Duration::from_secs(5))
        .await
        .expect("an agent of protocol 1 is taken");
    assert_eq!(conn.hello().protocol, 1);
    let watch = conn
        .watch_procs(Duration::from_secs(1))
        .await
        .expect("watch");
    assert!(!watch.delta, "no deltas asked of an agent of protocol 1");
    let mut rx = watch.changes();
    while watch.model().pushes < 3 {
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .expect("a push")
            .expect("open");
    }
    assert_eq!(watch.procs(), lists().pop());
    assert_eq!(watch.model().resyncs, 0);
    conn.unsubscribe(watch.sub()).await.expect("unsubscribe");
    let seen = seen.lock().expect("seen").clone();
    let subscribe: RequestLine = serde_json::from_str(&seen[1]).expect("request");
    assert_eq!(
        subscribe.request,
        Request::Subscribe {
            interval_ms: 1000,
            procs: true,
            delta: false
        }
    );
    assert!(
        !seen[1].contains("delta") && seen.iter().all(|l| !l.contains("resync")),
        "{seen:?}"
    );
}
