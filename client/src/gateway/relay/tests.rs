//! The relay's checks, without ssh: what it refuses and how it says so.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use super::{ClientOptions, MAX_LINE, serve};

async fn next(r: &mut (impl tokio::io::AsyncBufRead + Unpin)) -> Value {
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), r.read_line(&mut line))
        .await
        .expect("an answer in time")
        .expect("read");
    serde_json::from_str(&line).expect("JSON")
}

#[tokio::test]
async fn bad_lines_are_answered_and_the_relay_goes_on() {
    let (mut ws, relay_io) = tokio::io::duplex(4 * 1024 * 1024);
    let (relay_in, relay_out) = tokio::io::split(relay_io);
    let server = tokio::spawn(serve(relay_in, relay_out, ClientOptions::default()));
    let (ws_in, mut ws_out) = tokio::io::split(&mut ws);
    let mut ws_in = BufReader::new(ws_in);
    assert_eq!(next(&mut ws_in).await["ready"], "gateway");

    let cases: Vec<(String, &str)> = vec![
        ("not json\n".into(), "not JSON"),
        ("[1,2]\n".into(), "not an object"),
        ("{\"open\":0,\"dest\":\"n1\"}\n".into(), "no gateway frame"),
        (
            "{\"open\":1,\"dest\":\"-oProxyCommand=sh\"}\n".into(),
            "starts with '-'",
        ),
        ("{\"open\":1,\"dest\":\"local\"}\n".into(), "ssh dest"),
        (
            "{\"to\":1,\"msg\":{\"op\":\"node\"}}\n".into(),
            "numeric id",
        ),
        (
            format!("{{\"to\":1,\"msg\":\"{}\"}}\n", "x".repeat(MAX_LINE)),
            "longer than 1 MiB",
        ),
    ];
    for (line, want) in cases {
        ws_out.write_all(line.as_bytes()).await.expect("write");
        let v = next(&mut ws_in).await;
        let msg = v.get("msg").or_else(|| v.get("refused")).expect("an error");
        let text = msg["err"]["message"].as_str().unwrap_or_default();
        assert!(text.contains(want), "{want}: {v}");
        assert_eq!(msg["err"]["kind"], "bad_request", "{v}");
    }
    // A request for a channel never opened: closed, with a sentence.
    ws_out
        .write_all(b"{\"to\":7,\"msg\":{\"id\":1,\"op\":\"node\"}}\n")
        .await
        .expect("write");
    let v = next(&mut ws_in).await;
    assert_eq!(v["closed"], 7, "{v}");
    assert!(
        v["reason"].as_str().is_some_and(|r| r.contains("not open")),
        "{v}"
    );
    drop(ws_out);
    drop(ws_in);
    drop(ws);
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the relay ends with its input")
        .expect("no panic");
}
