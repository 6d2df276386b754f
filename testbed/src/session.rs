//! An agent session to speak the protocol with by hand: `openmosix-agent serve` on a
//! node over the testbed's ssh, one JSON request a line, answers matched by id. Tests use
//! it to send what no client would send (a `dump` of a locked process, a `signal` to
//! init) and to hold a migration step open while another client tries.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout};

use openmosix_hpc::model::ProcInfo;
use serde_json::{Value, json};

use crate::Testbed;

/// A running `openmosix-agent serve` on one node; ended (stdin closed, waited for) on drop.
#[derive(Debug)]
pub struct AgentSession {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    /// Answers read while waiting for another one.
    early: std::collections::HashMap<u64, Value>,
}

impl AgentSession {
    /// Opens a session with node `node`'s agent.
    pub fn open(bed: &Testbed, node: u32) -> AgentSession {
        let mut child = bed.agent_session(node).spawn().expect("ssh agent session");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        AgentSession {
            child,
            stdin,
            stdout,
            next_id: 1,
            early: std::collections::HashMap::new(),
        }
    }

    /// Sends `request` (an object with `op`, without `id`) and returns the whole answer
    /// line (`{"id","ok"}` or `{"id","err":{"kind","message"}}`).
    pub fn request(&mut self, request: Value) -> Value {
        let id = self.send(request);
        self.answer(id)
    }

    /// Sends `request` without waiting for its answer; its id (for [`Self::answer`]).
    pub fn send(&mut self, mut request: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        request["id"] = json!(id);
        let stdin = self.stdin.as_mut().expect("session open");
        writeln!(stdin, "{request}").expect("write request");
        stdin.flush().expect("flush request");
        id
    }

    /// Reads answers until the one to request `id`.
    pub fn answer(&mut self, id: u64) -> Value {
        if let Some(a) = self.early.remove(&id) {
            return a;
        }
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).expect("read answer");
            assert!(n > 0, "the agent ended the session before answering {id}");
            let answer: Value = serde_json::from_str(&line).expect("a JSON answer");
            match answer["id"].as_u64() {
                Some(i) if i == id => return answer,
                Some(i) => {
                    self.early.insert(i, answer);
                }
                None => {}
            }
        }
    }

    /// The node's processes as a window gets them (the `procs` op).
    pub fn procs(&mut self) -> Vec<ProcInfo> {
        let answer = self.request(json!({"op": "procs"}));
        serde_json::from_value(answer["ok"].clone())
            .unwrap_or_else(|e| panic!("a process list, not {answer}: {e}"))
    }

    /// The error of `request`'s answer as `(kind, message)`; panics if it succeeded.
    pub fn refused(&mut self, request: Value) -> (String, String) {
        let answer = self.request(request);
        let err = &answer["err"];
        assert!(err.is_object(), "expected a refusal, got {answer}");
        (
            err["kind"].as_str().unwrap_or_default().to_owned(),
            err["message"].as_str().unwrap_or_default().to_owned(),
        )
    }

    /// Closes stdin (the client goes away) and waits for the agent to end.
    pub fn close(mut self) {
        self.end();
    }

    fn end(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for AgentSession {
    fn drop(&mut self) {
        self.end();
    }
}
