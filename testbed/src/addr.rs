//! The testbed's addresses, shared by the `openmosix-testbed` binary and the tests.
//!
//! A testbed with net K puts its nodes on 10.77.K.0/24, 244 of them (node I at
//! 10.77.K.(10+I)); a larger testbed spills onto 10.78.K.0/24, then 10.79.K.0/24, the
//! same 244 host numbers 11..=254 each time, all on the testbed's one bridge. The bridge
//! has the address .1 of each subnet it uses.

/// Nodes per /24: host numbers 11..=254.
pub const NODES_PER_SUBNET: u32 = 244;

/// The second byte of the first subnet: 10.77.K.0/24.
const FIRST_SUBNET: u32 = 77;

/// The subnet (0, 1, …) node `node` lives on.
pub fn subnet_of(node: u32) -> u32 {
    node.saturating_sub(1) / NODES_PER_SUBNET
}

/// How many subnets a testbed of `nodes` nodes uses (at least one).
pub fn subnet_count(nodes: u32) -> u32 {
    subnet_of(nodes.max(1)) + 1
}

/// "10.S.K." of subnet `subnet` (0-based) of net `net`.
pub fn subnet_prefix(net: u8, subnet: u32) -> String {
    format!("10.{}.{net}.", FIRST_SUBNET + subnet)
}

/// The bridge's address on subnet `subnet` of net `net`: 10.S.K.1.
pub fn bridge_addr(net: u8, subnet: u32) -> String {
    format!("{}1", subnet_prefix(net, subnet))
}

/// The address of node `node` (1-based) of net `net`.
pub fn node_addr(net: u8, node: u32) -> String {
    let subnet = subnet_of(node);
    let host = 10 + node - subnet * NODES_PER_SUBNET;
    format!("{}{host}", subnet_prefix(net, subnet))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_244_nodes_keep_their_addresses_then_the_next_subnet_starts() {
        assert_eq!(node_addr(150, 1), "10.77.150.11");
        assert_eq!(node_addr(150, 244), "10.77.150.254");
        assert_eq!(node_addr(150, 245), "10.78.150.11");
        assert_eq!(node_addr(150, 250), "10.78.150.16");
        assert_eq!(subnet_count(1), 1);
        assert_eq!(subnet_count(244), 1);
        assert_eq!(subnet_count(245), 2);
        assert_eq!(bridge_addr(150, 1), "10.78.150.1");
    }
}
