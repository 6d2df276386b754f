//! Process lists sent as what changed (protocol 2, docs/protocol.md): the agent compares
//! each list with the one it sent last ([`diff`]) and pushes the processes that are new,
//! the pids that are gone and, for the others, only the fields that changed; the client
//! applies that to the list it holds ([`apply`]) and gets the agent's list.
//!
//! Both lists are ordered by pid (the agent's `procs` are), and so is every list
//! [`apply`] leaves.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::ProcInfo;

/// What changed in a node's process list since the push before.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcsDelta {
    /// Processes that were not in the list, whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new: Vec<ProcInfo>,
    /// Pids of processes that left the list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gone: Vec<i32>,
    /// Processes still there whose fields changed: `pid` and each changed field, named
    /// and shaped as in a whole PROC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<Map<String, Value>>,
}

impl ProcsDelta {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.new.is_empty() && self.gone.is_empty() && self.changed.is_empty()
    }
}

/// The longest list [`apply`] builds: Linux's highest possible pid (`PID_MAX_LIMIT`), so
/// more than any node has; a peer that sends more is refused, not believed.
pub const MAX_PROCS: usize = 4 * 1024 * 1024;

/// Why a delta does not fit the list it was applied to (the client then asks for the
/// whole list again).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DeltaError(String);

/// The fields of `p` as a PROC object.
fn fields(p: &ProcInfo) -> Map<String, Value> {
    match serde_json::to_value(p) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// What turns `prev` into `next` (both ordered by pid, as the agent lists them).
pub fn diff(prev: &[ProcInfo], next: &[ProcInfo]) -> ProcsDelta {
    let mut d = ProcsDelta::default();
    let (mut i, mut j) = (0, 0);
    while i < prev.len() || j < next.len() {
        match (prev.get(i), next.get(j)) {
            (Some(a), Some(b)) if a.pid == b.pid => {
                if a != b {
                    let (old, new) = (fields(a), fields(b));
                    let mut c: Map<String, Value> = new
                        .into_iter()
                        .filter(|(k, v)| old.get(k) != Some(v))
                        .collect();
                    c.insert("pid".into(), Value::from(b.pid));
                    d.changed.push(c);
                }
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.pid < b.pid => {
                d.gone.push(a.pid);
                i += 1;
            }
            (Some(a), None) => {
                d.gone.push(a.pid);
                i += 1;
            }
            (_, Some(b)) => {
                d.new.push(b.clone());
                j += 1;
            }
            (None, None) => break,
        }
    }
    d
}

/// Applies `delta` to `list` (ordered by pid): removes the gone, changes the changed,
/// inserts the new. A delta that names a pid the list lacks (or, for a new one, holds),
/// a field that does not fit, or more than [`MAX_PROCS`] processes in all, is refused and
/// leaves `list` as it was.
pub fn apply(list: &mut Vec<ProcInfo>, delta: &ProcsDelta) -> Result<(), DeltaError> {
    let find = |list: &[ProcInfo], pid: i32| list.binary_search_by_key(&pid, |p| p.pid);
    // Check and build every change before touching the list.
    let mut changed = Vec::with_capacity(delta.changed.len());
    for c in &delta.changed {
        let pid = c
            .get("pid")
            .and_then(Value::as_i64)
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| DeltaError("a changed process has no pid".into()))?;
        let at = find(list, pid)
            .map_err(|_| DeltaError(format!("changed process {pid} is not in the list")))?;
        let mut merged = fields(&list[at]);
        for (k, v) in c {
            merged.insert(k.clone(), v.clone());
        }
        let p: ProcInfo = serde_json::from_value(Value::Object(merged))
            .map_err(|e| DeltaError(format!("changed process {pid} does not fit: {e}")))?;
        if p.pid != pid {
            return Err(DeltaError(format!("changed process {pid} changed its pid")));
        }
        changed.push((at, p));
    }
    for &pid in &delta.gone {
        if find(list, pid).is_err() {
            return Err(DeltaError(format!("gone process {pid} is not in the list")));
        }
    }
    let mut new_pids = std::collections::HashSet::with_capacity(delta.new.len());
    for p in &delta.new {
        if !new_pids.insert(p.pid) {
            return Err(DeltaError(format!("new process {} twice", p.pid)));
        }
        if find(list, p.pid).is_ok() && !delta.gone.contains(&p.pid) {
            return Err(DeltaError(format!("new process {} is in the list", p.pid)));
        }
    }
    if (list.len() + delta.new.len()).saturating_sub(delta.gone.len()) > MAX_PROCS {
        return Err(DeltaError(format!(
            "the list would hold more than {MAX_PROCS} processes"
        )));
    }
    for (at, p) in changed {
        list[at] = p;
    }
    if !delta.gone.is_empty() {
        let gone: std::collections::HashSet<i32> = delta.gone.iter().copied().collect();
        list.retain(|p| !gone.contains(&p.pid));
    }
    if !delta.new.is_empty() {
        // Two ordered runs: the sort merges them in one pass.
        let mut new = delta.new.clone();
        new.sort_by_key(|p| p.pid);
        list.extend(new);
        list.sort_by_key(|p| p.pid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::BytesOrText;

    fn proc(pid: i32, utime: u64, cmd: &str) -> ProcInfo {
        ProcInfo {
            pid,
            ppid: 1,
            state: 'S',
            utime,
            cmdline: BytesOrText::from(cmd),
            comm: BytesOrText::from(cmd),
            where_: 1,
            home: 1,
            home_pid: pid,
            ..ProcInfo::default()
        }
    }

    /// A small deterministic generator (no dependency): xorshift.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn only_changed_fields_travel() {
        let a = vec![proc(1, 0, "init"), proc(5, 3, "sleep"), proc(9, 0, "x")];
        let mut b = a.clone();
        b[1].utime = 4;
        b[1].mask.mignodes = 6;
        b.remove(2);
        b.push(proc(12, 0, "new"));
        let d = diff(&a, &b);
        assert_eq!(d.gone, [9]);
        assert_eq!(d.new, [proc(12, 0, "new")]);
        let text = serde_json::to_string(&d.changed).unwrap();
        assert_eq!(text, r#"[{"mignodes":6,"pid":5,"utime":4}]"#);
        let mut list = a;
        apply(&mut list, &d).unwrap();
        assert_eq!(list, b);
        assert!(diff(&b, &b).is_empty());
        assert_eq!(serde_json::to_string(&diff(&b, &b)).unwrap(), "{}");
    }

    #[test]
    fn applied_deltas_give_the_full_list() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut agent: Vec<ProcInfo> = (1..200).map(|p| proc(p * 3, 0, "p")).collect();
        let mut client = agent.clone();
        for round in 0..300 {
            let mut next = agent.clone();
            for p in &mut next {
                match rng.below(20) {
                    0 => p.utime += rng.below(50),
                    1 => p.state = if p.state == 'S' { 'R' } else { 'S' },
                    2 => p.cmdline = BytesOrText(vec![0xff, b'a', round as u8]),
                    3 => p.cantmove = format!("reason {round}"),
                    4 => p.run = None,
                    _ => {}
                }
            }
            next.retain(|_| rng.below(30) != 0);
            for _ in 0..rng.below(8) {
                let pid = i32::try_from(rng.below(2000)).unwrap() + 1;
                if next.iter().all(|p| p.pid != pid) {
                    next.push(proc(pid, round, "fresh"));
                }
            }
            next.sort_by_key(|p| p.pid);
            let d = diff(&agent, &next);
            // What the client gets is the JSON of the delta.
            let d: ProcsDelta = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
            apply(&mut client, &d).unwrap();
            assert_eq!(client, next, "round {round}");
            agent = next;
        }
    }

    #[test]
    fn deltas_that_do_not_fit_are_refused_whole() {
        let list = vec![proc(1, 0, "a"), proc(2, 0, "b")];
        let twice = format!(
            r#"{{"new":[{}]}}"#,
            serde_json::to_string(&proc(2, 0, "b")).unwrap()
        );
        let bad = [
            twice.as_str(),
            r#"{"gone":[3]}"#,
            r#"{"changed":[{"pid":7,"utime":1}]}"#,
            r#"{"changed":[{"utime":1}]}"#,
            r#"{"changed":[{"pid":1,"utime":"many"}]}"#,
            r#"{"changed":[{"pid":2,"utime":5}],"gone":[9]}"#,
        ];
        for text in bad {
            let d: ProcsDelta = serde_json::from_str(text).unwrap();
            let mut l = list.clone();
            assert!(apply(&mut l, &d).is_err(), "{text}");
            assert_eq!(l, list, "{text}");
        }
    }
}
