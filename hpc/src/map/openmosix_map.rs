//! The openMosix map format (HOWTO 4.4.2): `NODE_ID ADDRESS [RANGE|ALIAS]` lines.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use super::{MapError, read_file};
use crate::model::{MapNode, NodeId};

/// Where openMosix looks for the map, in the HOWTO's search order.
pub const MAP_PATHS: [&str; 3] = ["/etc/openmosix.map", "/etc/mosix.map", "/etc/hpc.map"];

/// The largest node id a map may use.
const MAX_ID: u64 = 65535;

/// What kind of address a map field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddrKind {
    /// An IPv4 address in dotted-quad form.
    V4(Ipv4Addr),
    /// An IPv6 address.
    V6(Ipv6Addr),
    /// A host name.
    Host,
}

/// Checks that `addr` is an IPv4 address, an IPv6 address or a host name, and says which.
pub(crate) fn classify_address(addr: &str) -> Result<AddrKind, String> {
    if addr.contains(':') {
        return addr
            .parse()
            .map(AddrKind::V6)
            .map_err(|_| format!("'{addr}' is not a valid IPv6 address"));
    }
    if !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return addr
            .parse()
            .map(AddrKind::V4)
            .map_err(|_| format!("'{addr}' is not a valid IPv4 address"));
    }
    let bad = || {
        format!(
            "'{addr}' is not an IP address or a host name (a host name is made of letters, \
             digits, '-' and '_', in labels separated by dots)"
        )
    };
    if addr.len() > 253 {
        return Err(format!("host name '{addr}' is longer than 253 characters"));
    }
    for label in addr.split('.') {
        let ok_chars = label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if label.is_empty() || label.len() > 63 || !ok_chars || label.starts_with('-') {
            return Err(bad());
        }
    }
    Ok(AddrKind::Host)
}

/// The key under which an address is checked for duplicates.
fn address_key(addr: &str, kind: AddrKind) -> String {
    match kind {
        AddrKind::V4(ip) => ip.to_string(),
        AddrKind::V6(ip) => ip.to_string(),
        AddrKind::Host => addr.to_ascii_lowercase(),
    }
}

/// Reads a decimal number made only of digits; `None` if it is not one. Saturates.
fn decimal(word: &str) -> Option<u64> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(word.parse().unwrap_or(u64::MAX))
}

fn parse_id(word: &str) -> Result<NodeId, String> {
    match decimal(word) {
        None if word.starts_with('-') => Err(format!(
            "node id '{word}' is not a positive number (node ids are 1 to {MAX_ID})"
        )),
        None => Err(format!(
            "node id '{word}' is not a number (node ids are 1 to {MAX_ID})"
        )),
        Some(0) => Err("node id 0 is not allowed: node ids start at 1".to_string()),
        Some(n) if n > MAX_ID => Err(format!(
            "node id {word} is too large: the largest is {MAX_ID}"
        )),
        Some(n) => Ok(n as NodeId),
    }
}

/// The third field: `Some(count)` for a range, `None` for ALIAS.
fn parse_range(word: &str) -> Result<Option<u64>, String> {
    if word.eq_ignore_ascii_case("alias") {
        return Ok(None);
    }
    match decimal(word) {
        Some(0) => Err(
            "range 0 is not allowed: the range counts nodes and must be at least 1 \
             (write ALIAS for an extra address of a node)"
                .to_string(),
        ),
        Some(n) => Ok(Some(n)),
        None => Err(format!(
            "range '{word}' is not a positive number or the word ALIAS"
        )),
    }
}

/// Parses the text of an openmosix.map file (HOWTO 4.4.2).
///
/// Each line is `NODE_ID ADDRESS [RANGE]`: RANGE (default 1) defines the nodes NODE_ID
/// to NODE_ID+RANGE-1 at consecutive IPv4 addresses (counting up the last byte), and the
/// word `ALIAS` instead of a range adds ADDRESS as an extra interface of node NODE_ID,
/// which some line of the file must define. `#` starts a comment.
///
/// Returns the nodes sorted by id; `addresses[0]` is each node's main address and its
/// aliases follow in file order. The first error found is returned, naming its line.
pub fn parse_map(text: &str) -> Result<Vec<MapNode>, MapError> {
    let mut map = MapReader::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        map.line(line, raw)
            .map_err(|message| MapError::Line { line, message })?;
    }
    map.finish()
}

/// A map being read, line by line.
#[derive(Default)]
struct MapReader {
    /// id -> (line that defined it, addresses)
    nodes: BTreeMap<NodeId, (usize, Vec<String>)>,
    /// ALIAS lines, added once every node is defined: (line, node id, address).
    aliases: Vec<(usize, NodeId, String)>,
    /// Addresses used so far (as [`address_key`] writes them) -> the line of first use.
    seen: HashMap<String, usize>,
}

impl MapReader {
    /// Reads line number `line`, `raw`: a comment or blank line, a node (or range of
    /// nodes), or an alias.
    fn line(&mut self, line: usize, raw: &str) -> Result<(), String> {
        let content = raw.split_once('#').map_or(raw, |(before, _)| before);
        let fields: Vec<&str> = content.split_whitespace().collect();
        match fields.len() {
            0 => return Ok(()),
            1 => {
                return Err(format!(
                    "node {} has no address (expected NODE_ID ADDRESS [RANGE])",
                    fields[0]
                ));
            }
            2 | 3 => {}
            n => {
                return Err(format!(
                    "too many fields: found {n}, expected NODE_ID ADDRESS [RANGE]"
                ));
            }
        }
        let id = parse_id(fields[0])?;
        let address = fields[1];
        let kind = classify_address(address)?;
        let range = match fields.get(2) {
            None => Some(1),
            Some(word) => parse_range(word)?,
        };
        let Some(count) = range else {
            self.note(line, address, kind)?;
            self.aliases.push((line, id, address.to_string()));
            return Ok(());
        };
        self.define(line, id, address, kind, count)
    }

    /// Defines the `count` nodes from `id` on, at consecutive addresses from `address`.
    fn define(
        &mut self,
        line: usize,
        id: NodeId,
        address: &str,
        kind: AddrKind,
        count: u64,
    ) -> Result<(), String> {
        let last_id = u64::from(id).saturating_add(count - 1);
        if last_id > MAX_ID {
            return Err(format!(
                "range {count} from node {id} goes past the largest node id {MAX_ID}"
            ));
        }
        let base = range_base(address, kind, count)?;
        for k in 0..count {
            let node = id + k as NodeId;
            if let Some((first, _)) = self.nodes.get(&node) {
                let what = if count > 1 {
                    format!("node {node} (in the range {id}-{last_id})")
                } else {
                    format!("node {node}")
                };
                return Err(format!("{what} is defined twice (first on line {first})"));
            }
            let (addr, kind) = match base {
                Some(ip) if count > 1 => {
                    let [a, b, c, d] = ip.octets();
                    let ip = Ipv4Addr::new(a, b, c, d + k as u8);
                    (ip.to_string(), AddrKind::V4(ip))
                }
                _ => (address.to_string(), kind),
            };
            self.note(line, &addr, kind)?;
            self.nodes.insert(node, (line, vec![addr]));
        }
        Ok(())
    }

    /// Records that line `line` uses `addr`; an address may be used once in a map.
    fn note(&mut self, line: usize, addr: &str, kind: AddrKind) -> Result<(), String> {
        match self.seen.entry(address_key(addr, kind)) {
            Entry::Occupied(first) => Err(format!(
                "address {addr} is used twice (first on line {})",
                first.get()
            )),
            Entry::Vacant(slot) => {
                slot.insert(line);
                Ok(())
            }
        }
    }

    /// Adds the aliases to their nodes: the nodes sorted by id.
    fn finish(mut self) -> Result<Vec<MapNode>, MapError> {
        for (line, id, address) in self.aliases {
            match self.nodes.get_mut(&id) {
                Some((_, addresses)) => addresses.push(address),
                None => {
                    return Err(MapError::Line {
                        line,
                        message: format!(
                            "ALIAS {address} is for node {id}, which no line of the map defines"
                        ),
                    });
                }
            }
        }
        Ok(self
            .nodes
            .into_iter()
            .map(|(id, (_, addresses))| MapNode { id, addresses })
            .collect())
    }
}

/// The IPv4 address a range of `count` nodes at `address` counts up from: `None` for a
/// single node at another kind of address. A larger range needs one, and must not go
/// past the last byte's 255.
fn range_base(address: &str, kind: AddrKind, count: u64) -> Result<Option<Ipv4Addr>, String> {
    let ip = match kind {
        AddrKind::V4(ip) => ip,
        _ if count > 1 => {
            return Err(format!(
                "a range greater than 1 needs an IP address to count up from, \
                 but '{address}' is not an IPv4 address"
            ));
        }
        _ => return Ok(None),
    };
    let [a, b, c, d] = ip.octets();
    if u64::from(d) + count - 1 > 255 {
        return Err(format!(
            "range {count} from {ip} goes past {a}.{b}.{c}.255 \
             (a range only counts up the last byte)"
        ));
    }
    Ok(Some(ip))
}

/// Reads and parses an openmosix.map file; errors name the file.
pub fn read_map_file(path: &Path) -> Result<Vec<MapNode>, MapError> {
    parse_map(&read_file(path)?).map_err(|e| e.in_file(path))
}

/// One line of a map as [`render_map`] and [`render_showmap`] write it.
struct Row<'a> {
    id: NodeId,
    address: &'a str,
    /// Number of nodes; 0 for an ALIAS line.
    count: u32,
}

/// Groups nodes into range lines (consecutive ids at consecutive IPv4 addresses), then
/// one ALIAS line per extra address. Nodes without an address are skipped.
fn rows(nodes: &[MapNode]) -> Vec<Row<'_>> {
    let mut sorted: Vec<&MapNode> = nodes.iter().filter(|n| !n.addresses.is_empty()).collect();
    sorted.sort_by_key(|n| n.id);
    let canonical_v4 = |addr: &str| {
        addr.parse::<Ipv4Addr>()
            .ok()
            .filter(|ip| ip.to_string() == addr)
    };
    let mut out: Vec<Row<'_>> = Vec::new();
    for node in &sorted {
        let address = node.addresses[0].as_str();
        if let Some(row) = out.last_mut() {
            let follows = match (canonical_v4(row.address), canonical_v4(address)) {
                (Some(start), Some(ip)) => {
                    let (s, i) = (start.octets(), ip.octets());
                    s[..3] == i[..3] && u32::from(s[3]) + row.count == u32::from(i[3])
                }
                _ => false,
            };
            if follows && u64::from(row.id) + u64::from(row.count) == u64::from(node.id) {
                row.count += 1;
                continue;
            }
        }
        out.push(Row {
            id: node.id,
            address,
            count: 1,
        });
    }
    for node in &sorted {
        for alias in &node.addresses[1..] {
            out.push(Row {
                id: node.id,
                address: alias,
                count: 0,
            });
        }
    }
    out
}

/// Writes nodes as an openmosix.map file: consecutive ids at consecutive IPv4 addresses
/// become one range line, extra addresses become `ID ADDRESS ALIAS` lines.
///
/// `parse_map(&render_map(nodes))` gives back `nodes` (sorted by id) when they are a
/// valid map.
pub fn render_map(nodes: &[MapNode]) -> String {
    let mut out = String::from(
        "# openMosix map (HOWTO 4.4.2): NODE_ID ADDRESS [RANGE], or NODE_ID ADDRESS ALIAS\n",
    );
    for node in nodes.iter().filter(|n| n.addresses.is_empty()) {
        let _ = writeln!(out, "# node {} has no address", node.id);
    }
    for row in rows(nodes) {
        let _ = match row.count {
            0 => writeln!(out, "{} {} ALIAS", row.id, row.address),
            1 => writeln!(out, "{} {}", row.id, row.address),
            n => writeln!(out, "{} {} {n}", row.id, row.address),
        };
    }
    out
}

/// The output of openMosix's `showmap`: this node's id, then one line per range (as
/// [`render_map`] groups them) with the base id in hex, the address and the count
/// (`ALIAS` for an extra address).
pub fn render_showmap(my_id: Option<NodeId>, nodes: &[MapNode]) -> String {
    let mut out = match my_id {
        Some(id) => format!("My Node-Id: 0x{id:04x}\n\n"),
        None => "My Node-Id: unknown\n\n".to_string(),
    };
    out.push_str("Base Node-Id Address          Count\n");
    out.push_str("------------ ---------------- -----\n");
    for row in rows(nodes) {
        let base = format!("0x{:04x}", row.id);
        let _ = match row.count {
            0 => writeln!(out, "{base:<12} {:<16} ALIAS", row.address),
            n => writeln!(out, "{base:<12} {:<16} {n}", row.address),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: NodeId, addresses: &[&str]) -> MapNode {
        MapNode {
            id,
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn line_error(text: &str) -> (usize, String) {
        match parse_map(text) {
            Err(MapError::Line { line, message }) => (line, message),
            other => panic!("expected a line error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn range_and_alias() {
        let nodes = parse_map("4 10.0.0.9 alias\n1 10.0.0.1 4 # four\n").expect("valid");
        assert_eq!(
            nodes,
            vec![
                node(1, &["10.0.0.1"]),
                node(2, &["10.0.0.2"]),
                node(3, &["10.0.0.3"]),
                node(4, &["10.0.0.4", "10.0.0.9"]),
            ]
        );
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            line_error("1 a\n\n2 b\n2 c\n"),
            (4, "node 2 is defined twice (first on line 3)".to_string())
        );
        assert_eq!(line_error("1 10.0.0.1 2\n2 10.0.0.7\n").0, 2);
        assert!(
            line_error("1 a\n2 A\n")
                .1
                .contains("address A is used twice")
        );
        assert!(line_error("1 10.0.0.254 3\n").1.contains("past 10.0.0.255"));
        assert!(line_error("0 a\n").1.contains("node id 0"));
        assert!(line_error("70000 a\n").1.contains("too large"));
        assert!(line_error("65535 10.0.0.1 2\n").1.contains("65535"));
        assert!(line_error("1 a -1\n").1.contains("'-1'"));
        assert!(line_error("1\n").1.contains("no address"));
        assert!(line_error("1 a 1 x\n").1.contains("too many fields"));
        assert!(line_error("1 a!b\n").1.contains("host name"));
        assert!(line_error("1 -oProxyCommand=x\n").1.contains("host name"));
        assert!(line_error("1 10.0.0.300\n").1.contains("IPv4"));
    }

    #[test]
    fn render_groups_ranges() {
        let nodes = vec![
            node(3, &["10.0.0.3"]),
            node(1, &["10.0.0.1", "eth1.example"]),
            node(2, &["10.0.0.2"]),
            node(4, &["10.0.0.5"]),
            node(5, &["host5"]),
            node(6, &["::1"]),
        ];
        let text = render_map(&nodes);
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            body,
            [
                "1 10.0.0.1 3",
                "4 10.0.0.5",
                "5 host5",
                "6 ::1",
                "1 eth1.example ALIAS"
            ]
        );
        let mut sorted = nodes;
        sorted.sort_by_key(|n| n.id);
        assert_eq!(parse_map(&text).expect("round trip"), sorted);
    }

    #[test]
    fn showmap_unknown_id() {
        let text = render_showmap(None, &[node(1, &["10.0.0.1"]), node(2, &["10.0.0.2"])]);
        assert!(text.starts_with("My Node-Id: unknown\n"));
        assert!(text.contains("0x0001       10.0.0.1         2\n"));
    }
}
