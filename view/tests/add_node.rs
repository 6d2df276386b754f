//! File → add node… in the real main window (egui_kittest) against a 3-node testbed whose
//! node 3 has no agent and whose host key the window's known_hosts does not hold: the
//! fingerprint is shown, nothing is recorded before Accept, then the agent is installed
//! and node 3 appears in the window. A changed key shows the warning and no Accept.

use std::path::{Path, PathBuf};

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use openmosix_client::LinkState;
use openmosix_hpc::map::Cluster;
use openmosix_testbed::gui::{menu_item, type_into, wait};
use openmosix_testbed::{Testbed, serial};
use openmosixview::App;

fn bed() -> &'static Testbed {
    Testbed::shared_with("tprovg", 252, 3, &["--bare", "3"])
}

/// A known_hosts with the testbed's lines but `drop_addr`'s (if any); an ssh config that
/// uses it; a cluster file with nodes 1 and 2 through that config.
fn setup(dir: &Path, drop_addr: Option<&str>) -> (PathBuf, PathBuf) {
    let tb = bed();
    let theirs = tb.state_dir.join("known_hosts");
    let lines: String = std::fs::read_to_string(&theirs)
        .expect("known_hosts")
        .lines()
        .filter(|l| drop_addr.is_none_or(|a| !l.starts_with(&format!("{a} "))))
        .map(|l| format!("{l}\n"))
        .collect();
    let known = dir.join("known_hosts");
    std::fs::write(&known, lines).expect("write");
    tb.ssh_config_with_known_hosts(dir, &known);
    let cluster = dir.join("cluster.toml");
    std::fs::write(
        &cluster,
        format!(
            "ssh_config = \"ssh_config\"\n\n[[node]]\nid = 1\ndest = \"{}\"\n\n[[node]]\nid = 2\ndest = \"{}\"\n",
            tb.addr(1),
            tb.addr(2)
        ),
    )
    .expect("write");
    (cluster, known)
}

fn harness(cluster: &Path) -> Harness<'static, App> {
    let c = Cluster::from_file(cluster).expect("cluster file");
    let mut app = App::live(c, "testbed").expect("app");
    app.set_cluster_args(vec!["--cluster".into(), cluster.as_os_str().to_owned()]);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1100.0, 760.0))
        .build_ui_state(|ui, app: &mut App| app.ui(ui), app);
    wait(&mut h, 10, "nodes 1 and 2 up", |h| {
        let nodes = h.state().snapshot();
        nodes.len() == 2 && nodes.iter().all(|n| n.state == LinkState::Up)
    });
    h
}

fn open_dialog_and_add(h: &mut Harness<'static, App>, dest: &str) {
    menu_item(h, "File", "add node…");
    h.run_steps(3);
    type_into(h, "ssh destination", dest);
    h.get_by_label("add").click();
    h.run_steps(2);
}

/// Every label on screen (for failure messages).
fn labels(h: &Harness<'static, App>) -> Vec<String> {
    h.query_all_by_role(Role::Label)
        .filter_map(|n| n.accesskit_node().label())
        .collect()
}

#[test]
fn an_unknown_key_is_accepted_and_the_bare_node_joins() {
    let _g = serial();
    let tb = bed();
    let dir = tempfile::tempdir().expect("tempdir");
    let (cluster, known) = setup(dir.path(), Some(&tb.addr(3)));
    let before = std::fs::read_to_string(&known).expect("read");
    let mut h = harness(&cluster);
    open_dialog_and_add(&mut h, &tb.addr(3));

    let accept = format!("Accept ED25519 {}", bed().host_key_fingerprint());
    wait(&mut h, 15, "the fingerprint and Accept", |h| {
        h.query_by_label(&accept).is_some()
    });
    // Nothing recorded while the question is open.
    assert_eq!(std::fs::read_to_string(&known).expect("read"), before);
    assert!(h.query_by_label("Reject").is_some());
    h.get_by_label(&accept).click();

    wait(&mut h, 60, "node 3 added", |h| {
        h.query_by_label_contains("added, agent installed: agent 0.1.0 answers")
            .is_some()
            || h.query_by_label_contains("FAILED").is_some()
    });
    assert!(
        h.query_by_label_contains("node 3 (10.77.252.13) added")
            .is_some(),
        "the dialog says: {:?}",
        labels(&h)
    );
    // The steps are on screen.
    for step in ["5. copy agent", "6. run agent", "9. answers"] {
        assert!(h.query_by_label(step).is_some(), "{step}");
    }
    assert!(h.query_by_label_contains("on the node, sha256").is_some());
    let recorded = std::fs::read_to_string(&known).expect("read");
    assert!(
        recorded.starts_with(&before)
            && recorded[before.len()..].starts_with(&format!("{} ssh-ed25519 ", tb.addr(3))),
        "{recorded}"
    );
    // The main window now shows node 3, up.
    wait(&mut h, 15, "node 3 up in the main window", |h| {
        h.state()
            .snapshot()
            .iter()
            .any(|n| n.id == 3 && n.state == LinkState::Up && n.info.is_some())
    });
    let text = std::fs::read_to_string(&cluster).expect("read");
    assert!(
        text.contains(&format!("id = 3\ndest = \"{}\"", tb.addr(3))),
        "{text}"
    );
}

#[test]
fn a_changed_key_shows_the_warning_and_no_accept() {
    let _g = serial();
    let tb = bed();
    let dir = tempfile::tempdir().expect("tempdir");
    let line = tb.changed_key_line(2, dir.path());
    // Node 2 is in the cluster file with its right key; add it again under a changed key
    // to see the refusal: the window's known_hosts gets the wrong key for node 2 only
    // after the main window connected.
    let (cluster, known) = setup(dir.path(), None);
    let mut h = harness(&cluster);
    let right = std::fs::read_to_string(&known).expect("read");
    let changed: String = right
        .lines()
        .filter(|l| !l.starts_with(&format!("{} ", tb.addr(2))))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + &line;
    std::fs::write(&known, &changed).expect("write");
    open_dialog_and_add(&mut h, &tb.addr(2));
    wait(&mut h, 15, "the warning", |h| {
        h.query_by_label_contains("has CHANGED").is_some()
    });
    assert!(h.query_by_label_contains("WARNING").is_some());
    assert!(h.query_by_label_contains("Accept").is_none());
    assert_eq!(std::fs::read_to_string(&known).expect("read"), changed);
}
