//! The cluster file side of `node add`: which id a new node gets, and appending its
//! `[[node]]` while keeping everything else in the file.

use std::path::Path;

use openmosix_hpc::map::{Cluster, ClusterNode, Dest};
use openmosix_hpc::model::NodeId;

/// Reads the cluster file for `node add`: `None` when it does not exist yet.
pub fn load_cluster(path: &Path) -> Result<Option<Cluster>, String> {
    if !path.exists() {
        return Ok(None);
    }
    Cluster::from_file(path)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Where the node will go in the cluster file: its id, and whether it is there already.
pub fn plan_entry(
    cluster: Option<&Cluster>,
    dest: &Dest,
    id: Option<NodeId>,
) -> Result<(NodeId, bool), String> {
    let nodes: &[ClusterNode] = cluster.map_or(&[], |c| &c.nodes);
    if let Some(n) = nodes.iter().find(|n| n.dest == *dest) {
        if id.is_some_and(|id| id != n.id) {
            return Err(format!(
                "{dest} is already node {} of the cluster file, not {}",
                n.id,
                id.unwrap_or_default()
            ));
        }
        return Ok((n.id, true));
    }
    match id {
        Some(0) => Err("node ids are 1 to 65535".into()),
        Some(id) => match nodes.iter().find(|n| n.id == id) {
            Some(other) => Err(format!(
                "node {id} is already {} in the cluster file; pick another --id",
                other.dest
            )),
            None => Ok((id, false)),
        },
        None => {
            let next = nodes.iter().map(|n| n.id).max().unwrap_or(0) + 1;
            if next > 65535 {
                return Err("the cluster file has no free node id above its last".into());
            }
            Ok((next, false))
        }
    }
}

/// Appends `[[node]] id dest` (and `via`, the gateway it is reached through) to the
/// cluster file, keeping everything else in it; the file is written to a temporary name
/// beside it, read back, and renamed over it.
pub fn append_node(
    path: &Path,
    id: NodeId,
    dest: &Dest,
    via: Option<NodeId>,
) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let (mut text, mode) = match std::fs::read_to_string(path) {
        Ok(text) => {
            let mode = std::fs::metadata(path)
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0o644);
            (text, mode)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            ("# openMosix cluster file\n".to_owned(), 0o644)
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "\n[[node]]\nid = {id}\ndest = {}\n",
        toml_string(dest.as_str())
    ));
    if let Some(gw) = via {
        text.push_str(&format!("via = {gw}\n"));
    }
    // A fresh temporary name, created O_EXCL|O_NOFOLLOW: never written through a link.
    let tmp = openmosix_hpc::files::temp_name(path);
    let written = openmosix_hpc::files::create_new(&tmp, mode)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()));
    let checked = written.and_then(|()| match Cluster::from_file(&tmp) {
        Ok(c) if c.node(id).is_some_and(|n| n.dest == *dest) => Ok(()),
        Ok(_) => Err("the node is missing when the file is read back".into()),
        Err(e) => Err(e.to_string()),
    });
    if let Err(e) = checked.and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))
    }) {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{} is unchanged: {e}", path.display()));
    }
    Ok(())
}

fn toml_string(s: &str) -> String {
    // serde's TOML writer quotes a bare string value correctly.
    toml::Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_append() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        let d3 = Dest::parse("root@10.0.0.3").expect("dest");
        assert_eq!(plan_entry(None, &d3, None), Ok((1, false)));
        append_node(&path, 1, &d3, None).expect("created");
        std::fs::write(
            &path,
            format!(
                "# mine\n{}[[node]]\nid = 7\ndest = \"n7\" # keep\n",
                std::fs::read_to_string(&path).expect("read")
            ),
        )
        .expect("write");
        let cluster = load_cluster(&path).expect("loads").expect("exists");
        assert_eq!(plan_entry(Some(&cluster), &d3, None), Ok((1, true)));
        let d9 = Dest::parse("n9").expect("dest");
        assert_eq!(plan_entry(Some(&cluster), &d9, None), Ok((8, false)));
        assert!(plan_entry(Some(&cluster), &d9, Some(7)).is_err());
        append_node(&path, 8, &d9, None).expect("appended");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            text.starts_with("# mine\n") && text.contains("\"n7\" # keep"),
            "{text}"
        );
        let cluster = load_cluster(&path).expect("loads").expect("exists");
        assert_eq!(cluster.nodes.len(), 3);
        assert_eq!(cluster.node(8).map(|n| n.dest.as_str()), Some("n9"));
    }

    #[test]
    fn a_broken_file_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[[node]]\nid = 1\n").expect("write");
        let d = Dest::parse("n2").expect("dest");
        assert!(append_node(&path, 2, &d, None).is_err());
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "[[node]]\nid = 1\n"
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
    }
}
