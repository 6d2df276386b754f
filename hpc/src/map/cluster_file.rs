//! The suite's cluster file (TOML): the nodes, and how to reach each one.
//!
//! ```toml
//! # optional: an ssh_config(5) file passed to ssh with -F, relative to this file
//! ssh_config = "ssh_config"
//! # optional: the agent command run on each node (default "openmosix-agent")
//! agent = "openmosix-agent"
//!
//! [[node]]
//! id = 1
//! dest = "root@10.77.1.11"   # [user@]host, or a Host of the ssh config
//! [[node]]
//! id = 2
//! dest = "local"             # spawn the agent on this machine, no SSH
//! addresses = ["10.0.0.2"]   # optional; default: the host part of dest
//!
//! # optional: take (more) nodes from auto-discovery (docs/discovery.md)
//! [discovery]
//! interface = "eth0"         # where to listen; default: the default route's interface
//! user = "root"              # optional: ssh as user@ADDRESS
//! group = "239.255.77.1"     # optional
//! port = 7770                # optional
//! listen = 2.5               # optional: seconds a one-shot command listens first
//! ```
//!
//! With a `[discovery]` section the `[[node]]` list may be empty: the nodes are the ones
//! heard, each reached over SSH at the address it announces from (host keys checked as
//! always). A listed node keeps its entry when a discovered one claims its id.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::discovery_source::{DiscoverySource, RawDiscovery, discovery_section};
use super::openmosix_map::{classify_address, read_map_file};
use super::{MapError, read_file};
use crate::discovery::DiscoveredNode;
use crate::model::{MapNode, NodeId};

/// The agent command run on each node when the cluster file does not name one.
pub const DEFAULT_AGENT: &str = "openmosix-agent";

/// The largest node id, as in openmosix.map.
const MAX_ID: i64 = 65535;

/// How to reach a node's agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dest {
    /// Spawn the agent on this machine, without SSH (written `local`).
    Local,
    /// Run the agent over SSH at this destination: `[user@]host`, `ssh://[user@]host[:port]`
    /// or a `Host` of the ssh config. Never empty and never starting with `-`.
    Ssh(String),
}

impl Dest {
    /// Reads a `dest` value: `local`, or an SSH destination. Refuses an empty destination,
    /// one starting with `-` (ssh would read it as an option) and one with white space or
    /// control characters.
    pub fn parse(dest: &str) -> Result<Dest, String> {
        if dest == "local" {
            return Ok(Dest::Local);
        }
        if dest.trim().is_empty() {
            return Err("dest is empty".to_string());
        }
        if dest.starts_with('-') {
            return Err(format!(
                "dest '{dest}' starts with '-' and would be read by ssh as an option"
            ));
        }
        if dest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "dest {dest:?} contains white space or control characters"
            ));
        }
        Ok(Dest::Ssh(dest.to_string()))
    }

    /// The value as a cluster file writes it (`local` or the SSH destination).
    pub fn as_str(&self) -> &str {
        match self {
            Dest::Local => "local",
            Dest::Ssh(dest) => dest,
        }
    }

    /// The host part: `localhost` for [`Dest::Local`]; for SSH the destination without
    /// `ssh://`, `user@` and (in the `ssh://` form) `:port`.
    pub fn host(&self) -> &str {
        let Dest::Ssh(dest) = self else {
            return "localhost";
        };
        let (uri, rest) = match dest.strip_prefix("ssh://") {
            Some(rest) => (true, rest),
            None => (false, dest.as_str()),
        };
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        if !uri {
            return host;
        }
        if let Some(bracketed) = host.strip_prefix('[') {
            return bracketed.split_once(']').map_or(bracketed, |(h, _)| h);
        }
        host.split_once(':').map_or(host, |(h, _)| h)
    }
}

impl fmt::Display for Dest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node of a cluster file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// openMosix id (1..=65535).
    pub id: NodeId,
    /// How to reach the node's agent.
    pub dest: Dest,
    /// The node's addresses, main one first (the cluster file's `addresses`, by default
    /// the host part of `dest`).
    pub addresses: Vec<String>,
    /// The gateway the node is reached through (the cluster file's `via`), with `dest`
    /// then an ssh destination as the gateway reaches it: docs/fan-out.md.
    pub via: Option<Via>,
}

/// A gateway node whose relay carries a group of nodes (`via = ID` in the cluster file).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Via {
    /// The gateway's node id.
    pub id: NodeId,
    /// How the workstation reaches the gateway (its own `dest`, always SSH).
    pub dest: String,
    /// The ssh config the relay on the gateway uses for its group (the cluster file's
    /// `gateway_ssh_config`, a path on the gateway); `None`: the gateway user's own.
    pub ssh_config: Option<String>,
}

/// The nodes of the cluster and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The nodes, sorted by id.
    pub nodes: Vec<ClusterNode>,
    /// An ssh_config(5) file to pass to ssh with `-F`.
    pub ssh_config: Option<PathBuf>,
    /// The agent command run on each node.
    pub agent: String,
    /// Nodes also come from auto-discovery (the cluster file's `[discovery]`).
    pub discovery: Option<DiscoverySource>,
    /// The ssh config the gateways' relays use for their groups (`gateway_ssh_config`,
    /// a path on the gateways): what [`Via::ssh_config`] of a group node says.
    pub gateway_ssh_config: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    ssh_config: Option<Spanned<String>>,
    gateway_ssh_config: Option<Spanned<String>>,
    agent: Option<Spanned<String>>,
    #[serde(default)]
    node: Vec<RawNode>,
    discovery: Option<Spanned<RawDiscovery>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    id: Spanned<i64>,
    dest: Spanned<String>,
    addresses: Option<Spanned<Vec<String>>>,
    via: Option<Spanned<i64>>,
}

/// The text of a cluster file being read, for errors that name its file and line.
struct FileText<'a> {
    path: &'a Path,
    text: &'a str,
}

impl FileText<'_> {
    /// The 1-based line of a byte offset.
    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    fn fail(&self, line: Option<usize>, message: String) -> MapError {
        MapError::File {
            path: self.path.to_path_buf(),
            line,
            message,
        }
    }

    /// An error on the line of byte `offset`.
    fn fail_at(&self, offset: usize, message: String) -> MapError {
        self.fail(Some(self.line_of(offset)), message)
    }

    /// The value of text key `key`, which may be left out but not blank.
    fn not_blank(
        &self,
        value: Option<Spanned<String>>,
        key: &str,
    ) -> Result<Option<String>, MapError> {
        match value {
            Some(v) if v.get_ref().trim().is_empty() => {
                Err(self.fail_at(v.span().start, format!("{key} is empty")))
            }
            v => Ok(v.map(Spanned::into_inner)),
        }
    }

    /// One `[[node]]`; `first_line` has the line of each id read so far.
    fn node(
        &self,
        raw: RawNode,
        first_line: &mut HashMap<NodeId, usize>,
    ) -> Result<ClusterNode, MapError> {
        let id_line = self.line_of(raw.id.span().start);
        let id = *raw.id.get_ref();
        if !(1..=MAX_ID).contains(&id) {
            return Err(self.fail(
                Some(id_line),
                format!("node id {id} is out of range: node ids are 1 to {MAX_ID}"),
            ));
        }
        let id = id as NodeId;
        if let Some(first) = first_line.insert(id, id_line) {
            return Err(self.fail(
                Some(id_line),
                format!("node {id} is defined twice (first on line {first})"),
            ));
        }
        let dest = Dest::parse(raw.dest.get_ref()).map_err(|message| {
            self.fail_at(raw.dest.span().start, format!("node {id}: {message}"))
        })?;
        let addresses = match raw.addresses {
            None => vec![dest.host().to_string()],
            Some(list) => self.addresses(id, list)?,
        };
        Ok(ClusterNode {
            id,
            dest,
            addresses,
            via: None,
        })
    }

    /// The `addresses` of node `id`: not empty, each an address or a host name.
    fn addresses(&self, id: NodeId, list: Spanned<Vec<String>>) -> Result<Vec<String>, MapError> {
        let line = Some(self.line_of(list.span().start));
        let list = list.into_inner();
        if list.is_empty() {
            return Err(self.fail(
                line,
                format!("node {id}: addresses is empty (leave it out to use the host of dest)"),
            ));
        }
        for address in &list {
            classify_address(address)
                .map_err(|message| self.fail(line, format!("node {id}: {message}")))?;
        }
        Ok(list)
    }
}

impl Cluster {
    /// Reads a cluster file. Errors name the file and, where there is one, the line and
    /// the node: TOML errors, unknown keys, an id outside 1..=65535 or given twice, an
    /// empty dest or one starting with `-`, a bad address, an empty node list.
    ///
    /// A relative `ssh_config` is taken relative to the file's directory; `~/` at its
    /// start means $HOME.
    pub fn from_file(path: &Path) -> Result<Cluster, MapError> {
        Cluster::from_text(path, &read_file(path)?)
    }

    /// Reads the text of the cluster file `path` as [`Cluster::from_file`] does (the path
    /// names the file in errors and is what a relative `ssh_config` is relative to).
    pub fn from_text(path: &Path, text: &str) -> Result<Cluster, MapError> {
        let file = FileText { path, text };
        let raw: RawCluster = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().replace('\n', " ");
            file.fail(e.span().map(|s| file.line_of(s.start)), message)
        })?;

        let ssh_config = file
            .not_blank(raw.ssh_config, "ssh_config")?
            .map(|value| resolve(path, &value));
        let agent = file
            .not_blank(raw.agent, "agent")?
            .unwrap_or_else(|| DEFAULT_AGENT.to_string());
        let discovery = match raw.discovery {
            None => None,
            Some(section) => Some(
                discovery_section(section.into_inner())
                    .map_err(|(offset, message)| file.fail_at(offset, message))?,
            ),
        };
        if raw.node.is_empty() && discovery.is_none() {
            return Err(file.fail(
                None,
                "no nodes: a cluster file needs at least one [[node]] with an id and a dest \
                 (or a [discovery] section)"
                    .to_string(),
            ));
        }

        let gateway_ssh_config = file.not_blank(raw.gateway_ssh_config, "gateway_ssh_config")?;
        let mut first_line: HashMap<NodeId, usize> = HashMap::new();
        let mut vias = Vec::new();
        let mut nodes = raw
            .node
            .into_iter()
            .map(|mut raw_node| {
                if let Some(v) = raw_node.via.take() {
                    vias.push((*raw_node.id.get_ref(), v));
                }
                file.node(raw_node, &mut first_line)
            })
            .collect::<Result<Vec<_>, _>>()?;
        super::via::resolve(
            |o, m| file.fail_at(o, m),
            &mut nodes,
            vias,
            gateway_ssh_config.as_deref(),
        )?;
        nodes.sort_by_key(|n| n.id);
        Ok(Cluster {
            nodes,
            ssh_config,
            agent,
            discovery,
            gateway_ssh_config: gateway_ssh_config.map(|c| c.as_str().to_owned()),
        })
    }

    /// A cluster of the nodes of an openmosix.map: each node is reached over SSH at its
    /// main address. Nodes without an address, or whose main address [`Dest::parse`]
    /// refuses (empty, starting with `-`, white space), are left out; [`parse_map`]
    /// never yields such nodes.
    ///
    /// [`parse_map`]: super::parse_map
    pub fn from_map(nodes: &[MapNode]) -> Cluster {
        let mut nodes: Vec<ClusterNode> = nodes
            .iter()
            .filter_map(|n| {
                let main = n.addresses.first()?;
                // Refuses what could pass as an ssh option; a host named "local" stays SSH.
                Dest::parse(main).ok()?;
                Some(ClusterNode {
                    id: n.id,
                    dest: Dest::Ssh(main.clone()),
                    addresses: n.addresses.clone(),
                    via: None,
                })
            })
            .collect();
        nodes.sort_by_key(|n| n.id);
        Cluster {
            nodes,
            ssh_config: None,
            agent: DEFAULT_AGENT.to_string(),
            discovery: None,
            gateway_ssh_config: None,
        }
    }

    /// A cluster whose nodes all come from discovery on `interface` (or the default
    /// route's), reached over SSH with the user's own ssh config.
    pub fn discovered(interface: Option<&str>) -> Cluster {
        Cluster {
            nodes: Vec::new(),
            ssh_config: None,
            agent: DEFAULT_AGENT.to_string(),
            discovery: Some(DiscoverySource::on(interface)),
            gateway_ssh_config: None,
        }
    }

    /// The one-node cluster of this machine: node 1, [`Dest::Local`], at `localhost`.
    pub fn local() -> Cluster {
        Cluster {
            nodes: vec![ClusterNode {
                id: 1,
                dest: Dest::Local,
                addresses: vec!["localhost".to_string()],
                via: None,
            }],
            ssh_config: None,
            agent: DEFAULT_AGENT.to_string(),
            discovery: None,
            gateway_ssh_config: None,
        }
    }

    /// The cluster file if one is given, else the map file (see [`Cluster::from_map`];
    /// a map without nodes is an error), else [`Cluster::local`]. Searching
    /// [`MAP_PATHS`](super::MAP_PATHS) is left to the caller.
    pub fn load(cluster: Option<&Path>, map: Option<&Path>) -> Result<Cluster, MapError> {
        if let Some(path) = cluster {
            return Cluster::from_file(path);
        }
        let Some(path) = map else {
            return Ok(Cluster::local());
        };
        let nodes = read_map_file(path)?;
        if nodes.is_empty() {
            return Err(MapError::File {
                path: path.to_path_buf(),
                line: None,
                message: "the map defines no nodes".to_string(),
            });
        }
        Ok(Cluster::from_map(&nodes))
    }

    /// The cluster with the nodes heard added: a discovered node whose id a listed node
    /// has is left out.
    pub fn with_discovered(&self, found: &[DiscoveredNode]) -> Cluster {
        let mut cluster = self.clone();
        if let Some(source) = &self.discovery {
            for n in found {
                if cluster.node(n.id).is_none() {
                    cluster.nodes.push(source.node(n));
                }
            }
        }
        cluster.nodes.sort_by_key(|n| n.id);
        cluster
    }

    /// The node with this id.
    pub fn node(&self, id: NodeId) -> Option<&ClusterNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The cluster as an openMosix map (nodes sorted by id).
    pub fn to_map(&self) -> Vec<MapNode> {
        let mut map: Vec<MapNode> = self
            .nodes
            .iter()
            .map(|n| MapNode {
                id: n.id,
                addresses: n.addresses.clone(),
            })
            .collect();
        map.sort_by_key(|n| n.id);
        map
    }

    /// Writes the cluster as a cluster file that [`Cluster::from_file`] reads back to the
    /// same cluster (given an absolute `ssh_config`: a relative one is read relative to
    /// the file). `addresses` is written only when it is not the default.
    pub fn to_toml(&self) -> String {
        let mut out = String::from("# openMosix cluster file\n");
        if let Some(config) = &self.ssh_config {
            let _ = writeln!(out, "ssh_config = {}", quote(&config.to_string_lossy()));
        }
        let _ = writeln!(out, "agent = {}", quote(&self.agent));
        if let Some(d) = &self.discovery {
            out.push_str("\n[discovery]\n");
            if let Some(interface) = &d.config.interface {
                let _ = writeln!(out, "interface = {}", quote(interface));
            }
            if let Some(user) = &d.user {
                let _ = writeln!(out, "user = {}", quote(user));
            }
            let _ = writeln!(out, "group = {}", quote(&d.config.group.to_string()));
            let _ = writeln!(out, "port = {}", d.config.port);
            let _ = writeln!(out, "listen = {:?}", d.listen.as_secs_f64());
        }
        for node in &self.nodes {
            let _ = write!(
                out,
                "\n[[node]]\nid = {}\ndest = {}\n",
                node.id,
                quote(node.dest.as_str())
            );
            if node.addresses.len() != 1 || node.addresses[0] != node.dest.host() {
                let list: Vec<String> = node.addresses.iter().map(|a| quote(a)).collect();
                let _ = writeln!(out, "addresses = [{}]", list.join(", "));
            }
        }
        out
    }
}

/// `value` taken relative to the directory of the cluster file `file`.
fn resolve(file: &Path, value: &str) -> PathBuf {
    if let Some(rest) = value.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    let value = Path::new(value);
    match file.parent() {
        Some(dir) if value.is_relative() => dir.join(value),
        _ => value.to_path_buf(),
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dest_host() {
        let host = |d: &str| Dest::parse(d).expect("valid").host().to_string();
        assert_eq!(host("root@10.0.0.1"), "10.0.0.1");
        assert_eq!(host("node3"), "node3");
        assert_eq!(host("ssh://me@node3:2222"), "node3");
        assert_eq!(host("ssh://[::1]:22"), "::1");
        assert_eq!(host("local"), "localhost");
        assert!(Dest::parse("-oProxyCommand=x").is_err());
        assert!(Dest::parse("").is_err());
        assert!(Dest::parse("a b").is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\u0001\"");
    }

    #[test]
    fn local_and_map() {
        let local = Cluster::local();
        assert_eq!(local.node(1).map(|n| &n.dest), Some(&Dest::Local));
        let map = vec![MapNode {
            id: 2,
            addresses: vec!["10.0.0.2".into(), "10.1.0.2".into()],
        }];
        let cluster = Cluster::from_map(&map);
        assert_eq!(cluster.nodes[0].dest, Dest::Ssh("10.0.0.2".into()));
        assert_eq!(cluster.to_map(), map);
        let odd = [
            MapNode {
                id: 1,
                addresses: vec!["-oProxyCommand=x".into()],
            },
            MapNode {
                id: 3,
                addresses: vec!["local".into()],
            },
        ];
        let cluster = Cluster::from_map(&odd);
        assert_eq!(cluster.nodes.len(), 1);
        assert_eq!(cluster.nodes[0].dest, Dest::Ssh("local".into()));
    }
}
