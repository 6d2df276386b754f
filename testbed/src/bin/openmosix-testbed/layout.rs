//! Names, addresses, paths and the text of the files of one testbed.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use openmosix_testbed::addr;
use serde::{Deserialize, Serialize};

/// Where every testbed keeps its state folder.
pub const STATE_ROOT: &str = "/run/openmosix-testbed";
/// The most nodes one testbed may have: what was measured on a small machine
/// (docs/testbed.md, "At scale"); the addressing would hold more.
pub const MAX_NODES: u32 = 250;

/// Checks a testbed name: short `[a-z0-9]{1,6}`, so that interface names stay under 16 bytes.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 6
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        bail!("bad testbed name {name:?}: use 1 to 6 characters among a-z and 0-9");
    }
    Ok(())
}

/// clap value parser for `--name`.
pub fn parse_name(name: &str) -> Result<String, String> {
    check_name(name).map_err(|e| e.to_string())?;
    Ok(name.to_owned())
}

/// What `up` records beside cluster.toml so that the other commands know the testbed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Meta {
    pub net: u8,
    pub nodes: u32,
    /// `up --isolated`: the bridge does not forward between nodes (older files lack it).
    #[serde(default)]
    pub isolated: bool,
}

/// One testbed's names and paths. `net` is K of its subnets 10.77.K.0/24, 10.78.K.0/24, …
/// (`openmosix_testbed::addr`).
#[derive(Debug, Clone)]
pub struct Layout {
    pub name: String,
    pub net: u8,
}

#[derive(Serialize)]
struct ClusterFile<'a> {
    ssh_config: String,
    node: Vec<ClusterNode<'a>>,
}

#[derive(Serialize)]
struct ClusterNode<'a> {
    id: u32,
    dest: &'a str,
}

impl Layout {
    pub fn bridge(&self) -> String {
        format!("{}-br", self.name)
    }
    pub fn netns(&self, i: u32) -> String {
        format!("{}-n{i}", self.name)
    }
    pub fn veth(&self, i: u32) -> String {
        format!("{}-v{i}", self.name)
    }
    /// "10.S.K." of subnet `subnet` (0-based).
    pub fn subnet_prefix(&self, subnet: u32) -> String {
        addr::subnet_prefix(self.net, subnet)
    }
    /// The bridge's address on subnet `subnet` (0-based).
    pub fn bridge_addr(&self, subnet: u32) -> String {
        addr::bridge_addr(self.net, subnet)
    }
    pub fn addr(&self, i: u32) -> String {
        addr::node_addr(self.net, i)
    }

    pub fn state_dir(&self) -> PathBuf {
        state_dir(&self.name)
    }
    pub fn meta_file(&self) -> PathBuf {
        self.state_dir().join("testbed.toml")
    }
    pub fn host_key(&self) -> PathBuf {
        self.state_dir().join("host_key")
    }
    pub fn client_key(&self) -> PathBuf {
        self.state_dir().join("client_key")
    }
    pub fn authorized_keys(&self) -> PathBuf {
        self.state_dir().join("authorized_keys")
    }
    pub fn known_hosts(&self) -> PathBuf {
        self.state_dir().join("known_hosts")
    }
    pub fn ssh_config(&self) -> PathBuf {
        self.state_dir().join("ssh_config")
    }
    pub fn cluster_file(&self) -> PathBuf {
        self.state_dir().join("cluster.toml")
    }
    /// The cluster file that takes its nodes from discovery on the bridge (`up --discovery`).
    pub fn discovery_cluster_file(&self) -> PathBuf {
        self.state_dir().join("cluster-discovery.toml")
    }
    pub fn bin_dir(&self) -> PathBuf {
        self.state_dir().join("bin")
    }
    pub fn agent(&self) -> PathBuf {
        self.bin_dir().join("openmosix-agent")
    }
    pub fn node_dir(&self, i: u32) -> PathBuf {
        self.state_dir().join(format!("node{i}"))
    }
    pub fn node_state(&self, i: u32) -> PathBuf {
        self.node_dir(i).join("state")
    }
    /// The node's own home folder: a login reads this node's dot files, not the
    /// machine's (whose .bashrc may put other tools first on PATH).
    pub fn node_home(&self, i: u32) -> PathBuf {
        self.node_dir(i).join("home")
    }
    pub fn sshd_config(&self, i: u32) -> PathBuf {
        self.node_dir(i).join("sshd_config")
    }
    pub fn sshd_pid(&self, i: u32) -> PathBuf {
        self.node_dir(i).join("sshd.pid")
    }
    pub fn node_pid(&self, i: u32) -> PathBuf {
        self.node_dir(i).join("node.pid")
    }
    pub fn log(&self, i: u32) -> PathBuf {
        self.node_dir(i).join("log")
    }

    /// The PATH of a session on a bare node (`up --bare I`): no agent folder.
    pub const BARE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// The PATH of a session on a node: the agent's folder first.
    pub fn session_path(&self) -> String {
        format!(
            "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            self.bin_dir().display()
        )
    }

    pub fn sshd_config_text(&self, i: u32) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# sshd of testbed {} node {i} (written by openmosix-testbed)",
            self.name
        );
        let _ = writeln!(s, "ListenAddress {}", self.addr(i));
        let _ = writeln!(s, "Port 22");
        let _ = writeln!(s, "HostKey {}", self.host_key().display());
        let _ = writeln!(s, "AuthorizedKeysFile {}", self.authorized_keys().display());
        let _ = writeln!(s, "PidFile {}", self.sshd_pid(i).display());
        for line in [
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "MaxSessions 50",
            "MaxStartups 100",
            "LogLevel ERROR",
        ] {
            let _ = writeln!(s, "{line}");
        }
        let _ = writeln!(
            s,
            "SetEnv HOME={} OPENMOSIX_NODE_ID={i} OPENMOSIX_STATE_DIR={} PATH={}",
            self.node_home(i).display(),
            self.node_state(i).display(),
            self.session_path()
        );
        s
    }

    pub fn ssh_config_text(&self, nodes: u32) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# ssh client config of testbed {} (written by openmosix-testbed)",
            self.name
        );
        for i in 1..=nodes {
            let _ = writeln!(s, "Host n{i}\n    HostName {}\n", self.addr(i));
        }
        let _ = writeln!(s, "Host *");
        let _ = writeln!(s, "    User root");
        let _ = writeln!(s, "    IdentityFile {}", self.client_key().display());
        let _ = writeln!(s, "    IdentitiesOnly yes");
        let _ = writeln!(s, "    UserKnownHostsFile {}", self.known_hosts().display());
        for line in [
            "GlobalKnownHostsFile /dev/null",
            "StrictHostKeyChecking yes",
            "BatchMode yes",
            "ConnectTimeout 3",
            "ServerAliveInterval 1",
            "ServerAliveCountMax 2",
            "LogLevel ERROR",
        ] {
            let _ = writeln!(s, "    {line}");
        }
        s
    }

    pub fn known_hosts_text(&self, nodes: u32, host_pub: &str) -> String {
        (1..=nodes)
            .map(|i| format!("{} {}\n", self.addr(i), host_pub.trim()))
            .collect()
    }

    pub fn cluster_toml(&self, nodes: u32) -> Result<String> {
        let addrs: Vec<String> = (1..=nodes).map(|i| self.addr(i)).collect();
        let file = ClusterFile {
            ssh_config: self.ssh_config().display().to_string(),
            node: addrs
                .iter()
                .zip(1..)
                .map(|(dest, id)| ClusterNode { id, dest })
                .collect(),
        };
        toml::to_string(&file).context("writing cluster.toml")
    }

    pub fn discovery_cluster_toml(&self) -> String {
        format!(
            "# testbed {}: the nodes its discovery daemons announce (written by openmosix-testbed)\n\
             ssh_config = {:?}\n\n[discovery]\ninterface = {:?}\n",
            self.name,
            self.ssh_config().display().to_string(),
            self.bridge()
        )
    }

    /// Reads what `up` recorded about this testbed.
    pub fn load(name: &str) -> Result<(Self, Meta)> {
        check_name(name)?;
        let path = state_dir(name).join("testbed.toml");
        let text = fs::read_to_string(&path).with_context(|| {
            format!(
                "no testbed {name:?} ({} is missing; run `openmosix-testbed up`)",
                path.display()
            )
        })?;
        let meta: Meta =
            toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        Ok((
            Self {
                name: name.to_owned(),
                net: meta.net,
            },
            meta,
        ))
    }
}

pub fn state_dir(name: &str) -> PathBuf {
    Path::new(STATE_ROOT).join(name)
}
