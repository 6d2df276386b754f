//! Asking for a testbed: [`Options`] (name, net, size, `--isolated`, more `up` options),
//! brought up as the shared testbed of the test process ([`Options::shared`]) or as one
//! of the test's own that is taken down when dropped ([`Options::own`], [`OwnTestbed`]).

use std::ops::Deref;

use crate::testbed::Testbed;

/// What `openmosix-testbed up` is asked for.
///
/// ```no_run
/// use openmosix_testbed::Options;
/// let tb = Options::new("b16iso", 161, 2).isolated().own().unwrap_or_else(|e| panic!("{e}"));
/// assert!(!tb.node_reaches(1, 2, 22));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Testbed name, `[a-z0-9]{1,6}`.
    pub name: String,
    /// K of its subnet 10.77.K.0/24.
    pub net: u8,
    /// Number of nodes (1..=250).
    pub nodes: u32,
    /// `up --isolated`: the nodes cannot reach each other; the machine reaches every node.
    pub isolated: bool,
    /// More `up` options, as on its command line (e.g. `["--discovery"]`).
    pub extra: Vec<String>,
}

impl Options {
    /// A testbed of `nodes` nodes named `name` on net `net`, no further options.
    ///
    /// `OPENMOSIX_TESTBED_NAME` and `OPENMOSIX_TESTBED_NET`, when set, stand for the name
    /// and the net the test asks for: several people running tests on one machine each
    /// keep to names and nets of their own (one testbed at a time per test binary then).
    pub fn new(name: &str, net: u8, nodes: u32) -> Options {
        let name = std::env::var("OPENMOSIX_TESTBED_NAME").unwrap_or_else(|_| name.to_owned());
        let net = std::env::var("OPENMOSIX_TESTBED_NET")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(net);
        Options {
            name,
            net,
            nodes,
            isolated: false,
            extra: Vec::new(),
        }
    }

    /// With `--isolated`: the bridge does not forward between the nodes' ports.
    #[must_use]
    pub fn isolated(mut self) -> Options {
        self.isolated = true;
        self
    }

    /// With more `up` options (e.g. `&["--bare", "3"]`); `--isolated` among them is
    /// [`Options::isolated`].
    #[must_use]
    pub fn args(mut self, extra: &[&str]) -> Options {
        for &a in extra {
            if a == "--isolated" {
                self.isolated = true;
            } else {
                self.extra.push(a.to_owned());
            }
        }
        self
    }

    /// The `up` arguments after the node count.
    pub(crate) fn up_args(&self) -> Vec<String> {
        let mut args = vec![
            "--name".to_owned(),
            self.name.clone(),
            "--net".to_owned(),
            self.net.to_string(),
        ];
        if self.isolated {
            args.push("--isolated".to_owned());
        }
        args.extend(self.extra.iter().cloned());
        args
    }

    /// The testbed of this test process, brought up once (see [`Testbed::shared`]).
    pub fn shared(&self) -> &'static Testbed {
        Testbed::shared_options(self)
    }

    /// A testbed of the caller's own (removing an earlier one of the same name), taken
    /// down when the returned handle is dropped; why it could not be built otherwise.
    pub fn own(&self) -> Result<OwnTestbed, String> {
        Testbed::up(self).map(OwnTestbed)
    }
}

/// A testbed brought up by [`Options::own`]: a [`Testbed`] that `openmosix-testbed down`
/// removes when this is dropped (also when the test panics).
#[derive(Debug)]
pub struct OwnTestbed(Testbed);

impl Deref for OwnTestbed {
    type Target = Testbed;
    fn deref(&self) -> &Testbed {
        &self.0
    }
}

impl Drop for OwnTestbed {
    fn drop(&mut self) {
        if let Err(e) = self.0.down() {
            eprintln!("{e}");
        }
    }
}
