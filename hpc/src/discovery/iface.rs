//! Which interface discovery runs on: the one given (`-i IFACE`), else the interface of
//! the default route, as omdiscd chose it.

use std::net::Ipv4Addr;
use std::path::Path;

use super::DiscoveryError;

/// An interface with its IPv4 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Its name (`eth0`).
    pub name: String,
    /// Its first IPv4 address: the source of announcements.
    pub address: Ipv4Addr,
    /// Its netmask there: announcements are taken only from sources on this subnet.
    pub netmask: Ipv4Addr,
    /// Its index, where the system tells it (multicast joins by index, else by address).
    pub index: Option<u32>,
}

impl Interface {
    /// Whether `source` is on this interface's own subnet (its address under its
    /// netmask): the only senders whose announcements are taken.
    pub fn on_subnet(&self, source: Ipv4Addr) -> bool {
        let mask = u32::from(self.netmask);
        u32::from(source) & mask == u32::from(self.address) & mask
    }

    /// The subnet as `ADDRESS/PREFIX` (for sentences).
    pub fn subnet(&self) -> String {
        let mask = u32::from(self.netmask);
        format!(
            "{}/{}",
            Ipv4Addr::from(u32::from(self.address) & mask),
            mask.leading_ones()
        )
    }
}

/// The interface named `name`, or the default route's when `name` is `None`.
pub fn resolve(name: Option<&str>) -> Result<Interface, DiscoveryError> {
    let name = match name {
        Some(name) => name.to_owned(),
        None => default_route_interface(Path::new("/proc/net/route"))
            .ok_or(DiscoveryError::NoDefaultRoute)?,
    };
    let all = if_addrs::get_if_addrs().map_err(|e| DiscoveryError::Io {
        what: "listing the network interfaces".to_owned(),
        source: e,
    })?;
    let mine: Vec<&if_addrs::Interface> = all.iter().filter(|i| i.name == name).collect();
    if mine.is_empty() && !interface_exists(&name) {
        let mut names: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        return Err(DiscoveryError::NoSuchInterface {
            name,
            known: names.join(", "),
        });
    }
    mine.iter()
        .find_map(|i| match &i.addr {
            if_addrs::IfAddr::V4(v4) => Some(Interface {
                name: name.clone(),
                address: v4.ip,
                netmask: v4.netmask,
                index: i.index,
            }),
            if_addrs::IfAddr::V6(_) => None,
        })
        .ok_or(DiscoveryError::NoAddress { name })
}

/// Whether an interface of this name exists in this network namespace (it may have no
/// address): /proc/net/dev lists them all (/sys may show another namespace's).
fn interface_exists(name: &str) -> bool {
    std::fs::read_to_string("/proc/net/dev").is_ok_and(|text| {
        text.lines()
            .filter_map(|line| line.split_once(':'))
            .any(|(iface, _)| iface.trim() == name)
    })
}

/// The interface of the IPv4 default route in a `/proc/net/route` table, if there is one
/// (the first one with destination and mask 0 that is up).
pub fn default_route_interface(table: &Path) -> Option<String> {
    let text = std::fs::read_to_string(table).ok()?;
    parse_default_route(&text)
}

fn parse_default_route(text: &str) -> Option<String> {
    const RTF_UP: u32 = 0x1;
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Iface Destination Gateway Flags RefCnt Use Metric Mask …
        if f.len() < 8 {
            return None;
        }
        let flags = u32::from_str_radix(f[3], 16).ok()?;
        (f[1] == "00000000" && f[7] == "00000000" && flags & RTF_UP != 0).then(|| f[0].to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";

    #[test]
    fn default_route() {
        let table = format!(
            "{HEADER}eth0\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n\
             eth1\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        );
        assert_eq!(parse_default_route(&table).as_deref(), Some("eth1"));
        let none = format!("{HEADER}eth0\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n");
        assert_eq!(parse_default_route(&none), None);
        assert_eq!(parse_default_route(""), None);
    }

    #[test]
    fn missing_interface_is_named() {
        let err = resolve(Some("omx-no-such0")).unwrap_err().to_string();
        assert!(err.contains("omx-no-such0"), "{err}");
        assert!(err.contains("lo"), "lists the interfaces there are: {err}");
    }

    #[test]
    fn loopback_has_an_address() {
        let lo = resolve(Some("lo")).unwrap();
        assert_eq!(lo.address, Ipv4Addr::LOCALHOST);
        assert_eq!(lo.subnet(), "127.0.0.0/8");
    }

    #[test]
    fn only_the_own_subnet() {
        let eth = Interface {
            name: "eth0".into(),
            address: Ipv4Addr::new(10, 77, 234, 11),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            index: None,
        };
        assert!(eth.on_subnet(Ipv4Addr::new(10, 77, 234, 200)));
        assert!(!eth.on_subnet(Ipv4Addr::new(10, 77, 235, 12)));
        assert!(!eth.on_subnet(Ipv4Addr::new(192, 168, 1, 1)));
        assert_eq!(eth.subnet(), "10.77.234.0/24");
    }
}
