//! The agent's request parser (framing and JSON) and the client's reply and event parser.

use std::future::Future as _;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use openmosix_agent::server::frame::{Frame, read_bounded_line};
use openmosix_client::conn::parse_reply;
use openmosix_hpc::protocol::{Event, Hello, MAX_LINE, OPS, ResponseLine, Update, parse_request};

/// Reads one frame of `reader` (a slice never waits, so one poll finishes it).
fn next_frame(reader: &mut tokio::io::BufReader<&[u8]>, buf: &mut Vec<u8>, max: usize) -> Frame {
    let mut fut = pin!(read_bounded_line(reader, buf, max));
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(frame)) => frame,
        Poll::Ready(Err(e)) => panic!("reading a byte slice failed: {e}"),
        Poll::Pending => panic!("reading a byte slice did not finish at once"),
    }
}

/// The frames `read_bounded_line` must give for `data`: each newline-ended piece (and a
/// last piece without newline, unless empty) is a line, or too long above `max`.
fn expected_frames(data: &[u8], max: usize) -> Vec<(Frame, &[u8])> {
    let mut pieces: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if pieces.last().is_some_and(|p| p.is_empty()) {
        pieces.pop();
    }
    pieces
        .into_iter()
        .map(|p| {
            if p.len() > max {
                (Frame::TooLong, &[][..])
            } else {
                (Frame::Line, p)
            }
        })
        .collect()
}

/// Frames `data` as the agent does, with a buffer of `capacity` bytes.
fn frames(data: &[u8], capacity: usize, max: usize) -> Vec<(Frame, Vec<u8>)> {
    let mut reader = tokio::io::BufReader::with_capacity(capacity, data);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    loop {
        match next_frame(&mut reader, &mut buf, max) {
            Frame::Eof => return out,
            Frame::TooLong => out.push((Frame::TooLong, Vec::new())),
            Frame::Line => out.push((Frame::Line, buf.clone())),
        }
        assert!(out.len() <= data.len() + 1, "more frames than bytes");
    }
}

fn check_frames(data: &[u8], capacity: usize, max: usize) -> Vec<(Frame, Vec<u8>)> {
    let got = frames(data, capacity, max);
    let want = expected_frames(data, max);
    assert_eq!(
        got.len(),
        want.len(),
        "frame count (capacity {capacity}, max {max})"
    );
    for ((gf, gl), (wf, wl)) in got.iter().zip(&want) {
        assert_eq!(
            (gf, gl.as_slice()),
            (wf, *wl),
            "frame (capacity {capacity}, max {max})"
        );
    }
    got
}

/// The agent's input: framed into lines (checked against a plain split, with a tiny
/// buffer and a small bound, and as the agent frames: the real bound), each line parsed;
/// a parsed request re-encodes to a line that parses to the same request, and a refused
/// one says why.
pub fn agent_request(data: &[u8]) {
    check_frames(data, 3, 40);
    for (frame, line) in check_frames(data, 8 * 1024, MAX_LINE) {
        if frame != Frame::Line {
            continue;
        }
        match parse_request(&line) {
            Ok(request) => {
                assert!(
                    OPS.contains(&request.request.op()),
                    "op {}",
                    request.request.op()
                );
                let text = serde_json::to_vec(&request).expect("a request encodes");
                let back = parse_request(&text).unwrap_or_else(|(_, e)| {
                    panic!("{request:?} re-encoded as {text:?} does not parse: {e}")
                });
                assert_eq!(
                    back,
                    request,
                    "round trip through {:?}",
                    String::from_utf8_lossy(&text)
                );
            }
            Err((_, e)) => assert!(!e.message.trim().is_empty(), "an error without words"),
        }
    }
}

/// `value` re-encoded and parsed again as `T` is `value`.
fn round_trip<T>(value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let text = serde_json::to_string(value).expect("a parsed value encodes");
    let back: T = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{value:?} re-encoded as {text:?} does not parse: {e}"));
    assert_eq!(&back, value, "round trip through {text:?}");
}

/// What the client reads from an agent, a line at a time: replies, errors and pushes;
/// the answers of `hello` and `events` and a push's figures as the client takes them.
/// Everything parsed re-encodes to what parses to the same.
pub fn client_reply(data: &[u8]) {
    for line in data.split_inclusive(|&b| b == b'\n') {
        let Ok(reply) = parse_reply(line) else {
            continue;
        };
        round_trip(&reply);
        match &reply {
            ResponseLine::Ok { ok, .. } => {
                if let Ok(events) = serde_json::from_value::<Vec<Event>>(ok.clone()) {
                    round_trip(&events);
                }
                if let Ok(hello) = serde_json::from_value::<Hello>(ok.clone()) {
                    round_trip(&hello);
                }
            }
            ResponseLine::Err { err, .. } => round_trip(err),
            ResponseLine::Push { data, .. } => round_trip::<Update>(data),
        }
    }
}
