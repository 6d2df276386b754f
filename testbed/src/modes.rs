//! The ways `openmosix migrate` moves a process (docs/migration.md): every migration
//! test runs in each of them.

/// One way of moving a process: the CLI's flags and what its `--json` result says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Flags for `openmosix migrate`.
    pub args: &'static [&'static str],
    /// The result's `mode`.
    pub mode: &'static str,
    /// The result's `route` between two testbed nodes (they reach each other).
    pub route: &'static str,
}

/// The default (disk-less, node to node), disk-less relayed through the client, the
/// whole image through the source's disk, and post-copy.
pub const MODES: &[Mode] = &[
    Mode {
        args: &[],
        mode: "disk-less",
        route: "direct",
    },
    Mode {
        args: &["--relay"],
        mode: "disk-less",
        route: "relayed",
    },
    Mode {
        args: &["--disk"],
        mode: "disk",
        route: "relayed",
    },
    Mode {
        args: &["--postcopy"],
        mode: "postcopy",
        route: "direct",
    },
];

impl Mode {
    /// `migrate [FLAGS] NODE PID TO`, as arguments for the CLI.
    pub fn migrate_args(&self, node: u32, pid: i64, to: &str) -> Vec<String> {
        let mut args = vec!["migrate".to_owned()];
        args.extend(self.args.iter().map(|a| (*a).to_owned()));
        args.extend([node.to_string(), pid.to_string(), to.to_owned()]);
        args
    }
}

/// Borrows owned arguments as the `&[&str]` the testbed's CLI helpers take.
pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
