//! Host key judgements, with known_hosts text read by the real `ssh-keygen -F`.

use super::*;

fn key(kind: &str, blob: &str) -> HostKey {
    HostKey {
        kind: kind.into(),
        blob: blob.into(),
    }
}

fn rec(k: HostKey) -> RecordedKey {
    RecordedKey {
        key: k,
        file: PathBuf::from("kh"),
        marker: KeyMarker::Plain,
    }
}

#[test]
fn fingerprint_matches_ssh_keygen() {
    // `ssh-keygen -lf` on this key printed SHA256:35BF2hcVRICgJevQddjRsDWLq6jVsX3IcE5miGxrK0U.
    let k = key(
        "ssh-ed25519",
        "AAAAC3NzaC1lZDI1NTE5AAAAIDd1w0+JYsTmtBY7Yyg2C0W54eq90Ii0esrLjueJmUSi",
    );
    assert_eq!(
        k.fingerprint(),
        "SHA256:35BF2hcVRICgJevQddjRsDWLq6jVsX3IcE5miGxrK0U"
    );
    assert_eq!(k.short_kind(), "ED25519");
}

#[test]
fn ssh_g_lookup_names() {
    let t = parse_ssh_g(
        "n3",
        "hostname 10.0.0.3\nport 2222\nuserknownhostsfile /k/a /k/b\nglobalknownhostsfile /dev/null\nproxycommand none\n",
    );
    assert_eq!(t.lookup, "[10.0.0.3]:2222");
    assert_eq!(
        t.user_files,
        vec![PathBuf::from("/k/a"), PathBuf::from("/k/b")]
    );
    assert!(!t.proxied);
    let t = parse_ssh_g("n3", "hostname h\nport 22\nhostkeyalias al\nproxyjump j\n");
    assert_eq!(t.lookup, "al");
    assert!(t.proxied);
}

#[test]
fn judging() {
    let a = key("ssh-ed25519", "AAAA1");
    let b = key("ssh-ed25519", "AAAA2");
    let r = key("ssh-rsa", "AAAA3");
    assert_eq!(
        judge(&[], std::slice::from_ref(&a)),
        Some(HostKeyStatus::Unknown { offered: a.clone() })
    );
    assert_eq!(
        judge(&[rec(a.clone())], &[a.clone(), r.clone()]),
        Some(HostKeyStatus::Known { key: a.clone() })
    );
    assert!(matches!(
        judge(&[rec(a.clone())], &[b]),
        Some(HostKeyStatus::Changed { .. })
    ));
    // Only an RSA key recorded, the node shows only ed25519: changed, not unknown.
    assert!(matches!(
        judge(&[rec(r)], &[a]),
        Some(HostKeyStatus::Changed { .. })
    ));
    assert_eq!(judge(&[], &[]), None);
}

#[test]
fn key_lines() {
    let keys = parse_key_lines(
        "# Host x found: line 1\nx ssh-ed25519 AAAA1\n@revoked x ssh-rsa AAAA9\n|1|s|h ssh-rsa AAAA2 c\n",
    );
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1].blob, "AAAA2");
}

const CA: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIO2qLTAUGbh6edlLSEWtSzVQg8b5wzpWMje00zgfn85K";
const NODE1: &str = "AAAAC3NzaC1lZDI1NTE5AAAAICTSrwTjxs4SFRUOwGCSXuuzp6PNpBftAtc4B9Jg6qub";
const OTHER: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIDd1w0+JYsTmtBY7Yyg2C0W54eq90Ii0esrLjueJmUSi";

/// A target looked up as `host` in one known_hosts file holding `text`.
fn target(dir: &tempfile::TempDir, host: &str, text: &str) -> SshTarget {
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, text).unwrap();
    parse_ssh_g(
        host,
        &format!(
            "hostname {host}\nport 22\nuserknownhostsfile {}\nglobalknownhostsfile /dev/null\n",
            kh.display()
        ),
    )
}

fn known_hosts() -> String {
    format!(
        "@cert-authority *.example.org ssh-ed25519 {CA} site CA\n\
         @revoked node1.example.org ssh-ed25519 {NODE1}\n\
         node1.example.org ssh-ed25519 {NODE1}\n\
         node3.example.org ssh-ed25519 {OTHER}\n"
    )
}

#[tokio::test]
async fn a_revoked_key_is_refused_even_when_also_listed_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(&dir, "node1.example.org", &known_hosts());
    let recorded = recorded_keys(&t).await.unwrap();
    let markers: Vec<KeyMarker> = recorded.iter().map(|r| r.marker).collect();
    assert_eq!(
        markers,
        [
            KeyMarker::CertAuthority,
            KeyMarker::Revoked,
            KeyMarker::Plain
        ]
    );
    let offered = [key("ssh-ed25519", NODE1)];
    let warning = revoked_warning(&t, &recorded, &offered).expect("refused");
    assert!(warning.contains("REVOKED"), "{warning}");
    assert!(warning.contains(&offered[0].fingerprint()), "{warning}");
    // Another key of that host is not revoked.
    assert_eq!(
        revoked_warning(&t, &recorded, &[key("ssh-ed25519", OTHER)]),
        None
    );
}

#[tokio::test]
async fn a_host_under_a_listed_ca_is_vouched_for_not_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(&dir, "node2.example.org", &known_hosts());
    let recorded = recorded_keys(&t).await.unwrap();
    let offered = [key("ssh-ed25519", OTHER)];
    assert_eq!(revoked_warning(&t, &recorded, &offered), None);
    match judge(&recorded, &offered) {
        Some(HostKeyStatus::Vouched { ca }) => assert_eq!(ca.key.blob, CA),
        other => panic!("not vouched: {other:?}"),
    }
    // A plainly listed host of the CA's domain is judged on its own key.
    let t = target(&dir, "node3.example.org", &known_hosts());
    let recorded = recorded_keys(&t).await.unwrap();
    assert!(matches!(
        judge(&recorded, &[key("ssh-ed25519", NODE1)]),
        Some(HostKeyStatus::Changed { .. })
    ));
    // A host the CA line does not cover is still unknown.
    let t = target(&dir, "elsewhere.example.com", &known_hosts());
    let recorded = recorded_keys(&t).await.unwrap();
    assert!(matches!(
        judge(&recorded, &offered),
        Some(HostKeyStatus::Unknown { .. })
    ));
}
