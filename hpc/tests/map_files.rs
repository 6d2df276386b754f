//! openmosix.map files (HOWTO 4.4.2) and cluster files, read from the fixtures in
//! tests/fixtures/maps.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use openmosix_hpc::map::{
    Cluster, ClusterNode, DEFAULT_AGENT, Dest, MAP_PATHS, MapError, parse_map, read_map_file,
    render_map, render_showmap,
};
use openmosix_hpc::model::{MapNode, NodeId};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/maps")
        .join(rel)
}

fn node(id: NodeId, addresses: &[&str]) -> MapNode {
    MapNode {
        id,
        addresses: addresses.iter().map(|a| a.to_string()).collect(),
    }
}

fn read_valid(name: &str) -> Vec<MapNode> {
    read_map_file(&fixture(&format!("valid/{name}")))
        .unwrap_or_else(|e| panic!("{name} should parse: {e}"))
}

#[test]
fn map_paths_follow_the_howto() {
    assert_eq!(
        MAP_PATHS,
        ["/etc/openmosix.map", "/etc/mosix.map", "/etc/hpc.map"]
    );
}

#[test]
fn howto_host_names() {
    assert_eq!(
        read_valid("howto_hostnames.map"),
        vec![
            node(1, &["node1"]),
            node(2, &["node2"]),
            node(3, &["node3"]),
            node(4, &["node4"]),
        ]
    );
}

#[test]
fn howto_ips_one_per_line_and_range_are_the_same() {
    let expected = vec![
        node(1, &["192.168.1.1"]),
        node(2, &["192.168.1.2"]),
        node(3, &["192.168.1.3"]),
        node(4, &["192.168.1.4"]),
    ];
    assert_eq!(read_valid("howto_ips.map"), expected);
    assert_eq!(read_valid("howto_range.map"), expected);
}

#[test]
fn howto_alias() {
    assert_eq!(
        read_valid("howto_alias.map"),
        vec![
            node(1, &["192.168.1.1"]),
            node(2, &["192.168.1.2"]),
            node(3, &["192.168.1.3"]),
            node(4, &["192.168.1.4", "192.168.10.10"]),
        ]
    );
}

#[test]
fn howto_red_hat() {
    assert_eq!(
        read_valid("howto_redhat.map"),
        vec![
            node(1, &["192.168.10.220"]),
            node(2, &["192.168.10.78"]),
            node(3, &["192.168.10.84"]),
        ]
    );
}

#[test]
fn comments_blank_lines_and_alias_first() {
    assert_eq!(
        read_valid("comments.map"),
        vec![
            node(1, &["10.77.1.11"]),
            node(2, &["10.77.1.12"]),
            node(3, &["10.77.1.13"]),
            node(4, &["10.77.1.20"]),
            node(5, &["frontend.example.org", "10.78.1.15"]),
        ]
    );
}

#[test]
fn empty_map_is_no_nodes() {
    assert_eq!(parse_map("").unwrap(), vec![]);
    assert_eq!(parse_map("# nothing\n\n").unwrap(), vec![]);
}

/// (fixture, line, words the message must contain)
const INVALID: &[(&str, usize, &[&str])] = &[
    ("duplicate_id.map", 3, &["node 2", "twice", "line 2"]),
    ("overlapping_ranges.map", 5, &["node 3", "twice", "line 2"]),
    (
        "range_hostname.map",
        2,
        &["range greater than 1", "IP address"],
    ),
    ("range_past_255.map", 1, &["past", "192.168.1.255"]),
    ("bad_id.map", 4, &["node id", "'node2'", "not a number"]),
    ("zero_id.map", 1, &["node id 0"]),
    ("bad_range.map", 2, &["range", "'ALIASES'"]),
    ("zero_range.map", 1, &["range 0"]),
    ("negative_range.map", 1, &["range", "'-2'"]),
    ("alias_unknown_node.map", 2, &["ALIAS", "node 7"]),
    ("too_many_fields.map", 2, &["too many fields"]),
    ("missing_address.map", 2, &["no address"]),
    (
        "duplicate_address.map",
        2,
        &["192.168.1.3", "twice", "line 1"],
    ),
];

#[test]
fn invalid_maps_name_the_line() {
    for &(name, line, words) in INVALID {
        let path = fixture(&format!("invalid/{name}"));
        let err = match read_map_file(&path) {
            Ok(nodes) => panic!("{name} should fail, got {nodes:?}"),
            Err(e) => e,
        };
        let text = err.to_string();
        assert_eq!(err.line(), Some(line), "{name}: {text}");
        assert!(text.contains(&format!("line {line}: ")), "{name}: {text}");
        assert!(text.contains(name), "{name}: the path is missing in {text}");
        assert!(!text.contains('\n'), "{name}: not one line: {text}");
        for word in words {
            assert!(text.contains(word), "{name}: {word:?} missing in {text}");
        }
        // The same text without a file name gives the bare line error.
        let bare = parse_map(&std::fs::read_to_string(&path).unwrap()).unwrap_err();
        assert!(
            matches!(bare, MapError::Line { line: l, .. } if l == line),
            "{name}: {bare:?}"
        );
        assert!(bare.to_string().starts_with(&format!("line {line}: ")));
    }
}

#[test]
fn duplicate_id_message_reads_well() {
    let err = parse_map("1 node1\n2 node2\n2 node3\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 3: node 2 is defined twice (first on line 2)"
    );
}

#[test]
fn missing_map_file_names_the_path() {
    let path = fixture("valid/no_such.map");
    let err = read_map_file(&path).unwrap_err();
    assert!(matches!(err, MapError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("no_such.map"), "{err}");
}

#[test]
fn render_map_compresses_ranges_and_round_trips() {
    let alias = read_valid("howto_alias.map");
    let text = render_map(&alias);
    let body: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    assert_eq!(body, ["1 192.168.1.1 4", "4 192.168.10.10 ALIAS"]);
    assert_eq!(parse_map(&text).unwrap(), alias);

    for name in [
        "howto_hostnames.map",
        "howto_ips.map",
        "howto_range.map",
        "howto_redhat.map",
        "comments.map",
    ] {
        let nodes = read_valid(name);
        assert_eq!(parse_map(&render_map(&nodes)).unwrap(), nodes, "{name}");
    }

    let comments = render_map(&read_valid("comments.map"));
    let body: Vec<&str> = comments.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        body,
        [
            "1 10.77.1.11 3",
            "4 10.77.1.20",
            "5 frontend.example.org",
            "5 10.78.1.15 ALIAS"
        ]
    );
}

#[test]
fn showmap_lists_ranges_in_hex() {
    let nodes = read_valid("comments.map");
    let text = render_showmap(Some(2), &nodes);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "My Node-Id: 0x0002");
    assert_eq!(lines[1], "");
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["Base", "Node-Id", "Address", "Count"]
    );
    let rows: Vec<Vec<&str>> = lines[3..]
        .iter()
        .filter(|l| !l.starts_with('-'))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["0x0001", "10.77.1.11", "3"],
            vec!["0x0004", "10.77.1.20", "1"],
            vec!["0x0005", "frontend.example.org", "1"],
            vec!["0x0005", "10.78.1.15", "ALIAS"],
        ]
    );
    assert!(text.contains("0x0001       10.77.1.11       3\n"), "{text}");

    let unknown = render_showmap(None, &[node(18, &["10.0.0.1"])]);
    assert!(unknown.starts_with("My Node-Id: unknown\n"), "{unknown}");
    assert!(unknown.contains("0x0012"), "{unknown}");
}

#[test]
fn valid_cluster_file() {
    let path = fixture("clusters/valid.toml");
    let cluster = Cluster::from_file(&path).unwrap();
    assert_eq!(
        cluster,
        Cluster {
            nodes: vec![
                ClusterNode {
                    id: 1,
                    dest: Dest::Ssh("root@10.77.1.11".into()),
                    addresses: vec!["10.77.1.11".into()],
                    via: None,
                },
                ClusterNode {
                    id: 2,
                    dest: Dest::Local,
                    addresses: vec!["localhost".into()],
                    via: None,
                },
                ClusterNode {
                    id: 3,
                    dest: Dest::Ssh("node3".into()),
                    addresses: vec!["10.77.1.13".into(), "10.78.1.13".into()],
                    via: None,
                },
            ],
            ssh_config: Some(fixture("clusters/ssh_config")),
            agent: "/usr/local/bin/openmosix-agent".into(),
            discovery: None,
            gateway_ssh_config: None,
        }
    );
    assert_eq!(cluster.node(3).map(|n| n.dest.as_str()), Some("node3"));
    assert!(cluster.node(4).is_none());
    assert_eq!(
        cluster.to_map(),
        vec![
            node(1, &["10.77.1.11"]),
            node(2, &["localhost"]),
            node(3, &["10.77.1.13", "10.78.1.13"]),
        ]
    );
}

#[test]
fn cluster_round_trips_through_toml() {
    let dir = tempfile::tempdir().unwrap();
    let clusters = [
        Cluster::from_file(&fixture("clusters/valid.toml")).unwrap(),
        Cluster::from_file(&fixture("clusters/minimal.toml")).unwrap(),
        Cluster::from_map(&read_valid("howto_alias.map")),
        Cluster::local(),
    ];
    for (i, cluster) in clusters.iter().enumerate() {
        let path = dir.path().join(format!("cluster{i}.toml"));
        std::fs::write(&path, cluster.to_toml()).unwrap();
        let back =
            Cluster::from_file(&path).unwrap_or_else(|e| panic!("{e}\n{}", cluster.to_toml()));
        assert_eq!(&back, cluster, "{}", cluster.to_toml());
    }
}

#[test]
fn minimal_cluster_file_uses_defaults() {
    let cluster = Cluster::from_file(&fixture("clusters/minimal.toml")).unwrap();
    assert_eq!(cluster.agent, DEFAULT_AGENT);
    assert_eq!(cluster.ssh_config, None);
    assert_eq!(cluster.nodes[0].id, 7);
    assert_eq!(cluster.nodes[0].addresses, ["node7.example.org"]);
}

/// (fixture, line if any, words the message must contain)
const INVALID_CLUSTERS: &[(&str, Option<usize>, &[&str])] = &[
    (
        "duplicate_id.toml",
        Some(10),
        &["node 1", "twice", "line 2"],
    ),
    ("dash_dest.toml", Some(7), &["node 2", "'-'", "option"]),
    ("empty_dest.toml", Some(3), &["node 4", "empty"]),
    ("no_nodes.toml", None, &["no nodes"]),
    ("bad_toml.toml", Some(5), &[]),
    ("zero_id.toml", Some(2), &["node id 0"]),
    ("unknown_key.toml", Some(4), &["adresses"]),
    (
        "discovery_bad_group.toml",
        Some(3),
        &["10.0.0.1", "multicast"],
    ),
    (
        "discovery_bad_interface.toml",
        Some(3),
        &["../eth0", "interface name"],
    ),
    ("discovery_bad_port.toml", Some(2), &["70000"]),
    ("discovery_unknown_key.toml", Some(2), &["intreface"]),
    (
        "discovery_bad_user.toml",
        Some(4),
        &["-oProxyCommand=x", "user name"],
    ),
];

#[test]
fn discovery_section() {
    use openmosix_hpc::discovery::{DEFAULT_GROUP, DEFAULT_PORT, DiscoveredNode};
    let cluster = Cluster::from_file(&fixture("clusters/discovery.toml")).unwrap();
    let source = cluster.discovery.clone().expect("a [discovery] section");
    assert_eq!(source.config.interface.as_deref(), Some("eth1"));
    assert_eq!(source.config.group, DEFAULT_GROUP);
    assert_eq!(source.config.port, 7771);
    assert_eq!(source.user.as_deref(), Some("root"));
    assert_eq!(source.listen, std::time::Duration::from_millis(1500));

    // Nodes heard join the listed ones; a listed node keeps its id.
    let heard = [
        DiscoveredNode {
            id: 2,
            address: "10.77.1.99".parse().unwrap(),
        },
        DiscoveredNode {
            id: 5,
            address: "10.77.1.15".parse().unwrap(),
        },
    ];
    let both = cluster.with_discovered(&heard);
    assert_eq!(both.nodes.len(), 2);
    assert_eq!(
        both.node(2).unwrap().dest,
        Dest::Ssh("root@10.77.1.12".into())
    );
    let found = both.node(5).unwrap();
    assert_eq!(found.dest, Dest::Ssh("root@10.77.1.15".into()));
    assert_eq!(found.addresses, ["10.77.1.15"]);

    // Written back, it reads the same.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, cluster.to_toml()).unwrap();
    assert_eq!(Cluster::from_file(&path).unwrap(), cluster);

    // A section alone is a cluster (its nodes all come from discovery), with defaults.
    let only = Cluster::from_file(&fixture("clusters/discovery_only.toml")).unwrap();
    assert!(only.nodes.is_empty());
    let source = only.discovery.expect("a [discovery] section");
    assert_eq!(source.config.interface, None);
    assert_eq!(source.config.port, DEFAULT_PORT);
    assert_eq!(source.user, None);
}

#[test]
fn invalid_cluster_files_name_the_node_and_line() {
    for &(name, line, words) in INVALID_CLUSTERS {
        let path = fixture(&format!("clusters/{name}"));
        let err = match Cluster::from_file(&path) {
            Ok(c) => panic!("{name} should fail, got {c:?}"),
            Err(e) => e,
        };
        let text = err.to_string();
        assert!(text.contains(name), "{name}: the path is missing in {text}");
        assert!(!text.contains('\n'), "{name}: not one line: {text}");
        assert_eq!(err.line(), line, "{name}: {text}");
        if let Some(line) = line {
            assert!(text.contains(&format!("line {line}: ")), "{name}: {text}");
        }
        for word in words {
            assert!(text.contains(word), "{name}: {word:?} missing in {text}");
        }
    }
}

#[test]
fn load_picks_cluster_then_map_then_local() {
    let cluster_file = fixture("clusters/minimal.toml");
    let map_file = fixture("valid/howto_redhat.map");
    let from_cluster = Cluster::load(Some(&cluster_file), Some(&map_file)).unwrap();
    assert_eq!(from_cluster.nodes[0].id, 7);

    let from_map = Cluster::load(None, Some(&map_file)).unwrap();
    assert_eq!(
        from_map
            .nodes
            .iter()
            .map(|n| n.dest.clone())
            .collect::<Vec<_>>(),
        [
            Dest::Ssh("192.168.10.220".into()),
            Dest::Ssh("192.168.10.78".into()),
            Dest::Ssh("192.168.10.84".into()),
        ]
    );
    assert_eq!(from_map.to_map(), read_valid("howto_redhat.map"));

    let local = Cluster::load(None, None).unwrap();
    assert_eq!(local, Cluster::local());
    assert_eq!(
        local.nodes,
        [ClusterNode {
            id: 1,
            dest: Dest::Local,
            addresses: vec!["localhost".into()],
            via: None,
        }]
    );

    let bad_map = fixture("invalid/duplicate_id.map");
    let err = Cluster::load(None, Some(&bad_map)).unwrap_err();
    assert!(err.to_string().contains("duplicate_id.map"), "{err}");
}
