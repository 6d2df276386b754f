use super::*;

#[test]
fn request_shapes() {
    let r = parse_request(br#"{"id":3,"op":"signal","pid":12,"signal":"STOP"}"#).unwrap();
    assert_eq!(
        r,
        RequestLine {
            id: 3,
            request: Request::Signal {
                pid: 12,
                signal: Signal::Stop
            }
        }
    );
    let r = parse_request(br#"{"id":4,"op":"hello"}"#).unwrap();
    assert_eq!(r.request, Request::Hello { protocol: None });
    let set = RequestLine {
        id: 5,
        request: Request::AdminSet {
            change: AdminChange::Speed { speed: 5000 },
        },
    };
    let text = serde_json::to_string(&set).unwrap();
    assert_eq!(
        text,
        r#"{"id":5,"op":"admin_set","change":{"what":"speed","speed":5000}}"#
    );
    assert_eq!(parse_request(text.as_bytes()).unwrap(), set);
}

#[test]
fn lock_mask_and_goto_shapes() {
    let r = parse_request(
        br#"{"id":9,"op":"set_mask","pid":12,"mask":{"migfilter":true,"mignodes":5,"migpolicy":1}}"#,
    )
    .unwrap();
    assert_eq!(
        r.request,
        Request::SetMask {
            pid: 12,
            mask: MigMask {
                migfilter: true,
                mignodes: 5,
                migpolicy: 1
            }
        }
    );
    assert_eq!(r.request.op(), "set_mask");
    let r = parse_request(br#"{"id":10,"op":"set_lock","pid":12,"lock":false}"#).unwrap();
    assert_eq!(
        r.request,
        Request::SetLock {
            pid: 12,
            lock: false
        }
    );
    let r = parse_request(br#"{"id":11,"op":"goto","pid":12,"to":3}"#).unwrap();
    assert_eq!(r.request, Request::Goto { pid: 12, to: 3 });
    for op in ["set_lock", "set_mask", "goto"] {
        assert!(OPS.contains(&op), "{op}");
    }
}

#[test]
fn events_shapes() {
    let r = parse_request(br#"{"id":12,"op":"events","after":41}"#).unwrap();
    assert_eq!(r.request, Request::Events { after: 41 });
    assert_eq!(r.request.op(), "events");
    let r = parse_request(br#"{"id":13,"op":"events"}"#).unwrap();
    assert_eq!(r.request, Request::Events { after: 0 });
    let line = r#"{"seq":7,"time":1700000000123,"kind":"migrate_out","text":"x","pid":12}"#;
    let e: Event = serde_json::from_str(line).unwrap();
    assert_eq!((e.seq, e.kind, e.pid), (7, EventKind::MigrateOut, Some(12)));
    assert_eq!(serde_json::to_string(&e).unwrap(), line);
    let e: Event =
        serde_json::from_str(r#"{"seq":8,"time":1,"kind":"teleport","text":"y"}"#).unwrap();
    assert_eq!((e.kind, e.pid), (EventKind::Other, None));
}

#[test]
fn bad_requests_keep_their_id() {
    let (id, e) = parse_request(br#"{"id":7,"op":"frobnicate"}"#).unwrap_err();
    assert_eq!((id, e.kind), (Some(7), ErrorKind::UnknownOp));
    let (id, e) = parse_request(br#"{"id":8,"op":"proc","pid":"x"}"#).unwrap_err();
    assert_eq!((id, e.kind), (Some(8), ErrorKind::BadRequest));
    let (id, e) = parse_request(b"\xff\xfe").unwrap_err();
    assert_eq!((id, e.kind), (None, ErrorKind::BadRequest));
    let (_, e) = parse_request(b"garbage").unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequest);
}

#[test]
fn versions_are_negotiated() {
    // A client of protocol 1 names no version and must get 1 (it takes nothing else).
    let r = parse_request(br#"{"id":1,"op":"hello"}"#).unwrap();
    let Request::Hello { protocol } = r.request else {
        panic!("not hello: {r:?}")
    };
    assert_eq!(negotiate(protocol), 1);
    let r = parse_request(br#"{"id":1,"op":"hello","protocol":2}"#).unwrap();
    assert_eq!(r.request, Request::Hello { protocol: Some(2) });
    assert_eq!(negotiate(Some(2)), 2);
    // A newer client gets the newest this program speaks; it decides if that will do.
    assert_eq!(negotiate(Some(9)), PROTOCOL_VERSION);
    assert_eq!(negotiate(Some(0)), MIN_PROTOCOL_VERSION);
    // What a client of protocol 1 sends is what it sent before.
    let hello = RequestLine {
        id: 1,
        request: Request::Hello { protocol: None },
    };
    assert_eq!(
        serde_json::to_string(&hello).unwrap(),
        r#"{"id":1,"op":"hello"}"#
    );
    let sub = Request::Subscribe {
        interval_ms: 1000,
        procs: true,
        delta: false,
    };
    assert_eq!(
        serde_json::to_string(&sub).unwrap(),
        r#"{"op":"subscribe","interval_ms":1000,"procs":true}"#
    );
    let r = parse_request(br#"{"id":3,"op":"resync","sub":2}"#).unwrap();
    assert_eq!(r.request, Request::Resync { sub: 2 });
}

#[test]
fn full_and_delta_pushes() {
    let node = r#""node":{"id":1,"cpus":2,"speed":1000,"load":0.0,"util":0.0,"mem":1,"rmem":1,"tmem":2,"status":"up"}"#;
    // Protocol 1's push has neither seq nor delta.
    let line = format!(r#"{{"sub":2,"data":{{{node},"procs":[]}}}}"#);
    let r: ResponseLine = serde_json::from_str(&line).unwrap();
    let ResponseLine::Push { data, .. } = &r else {
        panic!("not a push: {r:?}")
    };
    assert_eq!((data.seq, data.delta.is_none()), (None, true));
    assert_eq!(serde_json::to_string(&r).unwrap(), line);
    let line = format!(r#"{{"sub":2,"data":{{{node},"delta":{{"gone":[7]}},"seq":4}}}}"#);
    let r: ResponseLine = serde_json::from_str(&line).unwrap();
    let ResponseLine::Push { data, .. } = &r else {
        panic!("not a push: {r:?}")
    };
    assert_eq!(data.seq, Some(4));
    assert_eq!(data.delta.as_ref().map(|d| d.gone.clone()), Some(vec![7]));
    assert_eq!(serde_json::to_string(&r).unwrap(), line);
}

#[test]
fn responses_round_trip() {
    for line in [
        r#"{"id":1,"ok":null}"#,
        r#"{"id":null,"err":{"kind":"too_large","message":"x"}}"#,
    ] {
        let r: ResponseLine = serde_json::from_str(line).unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), line);
    }
}
