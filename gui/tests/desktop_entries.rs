//! The suite as the desktop sees it (`assets/`): the `.desktop` entries and the AppStream
//! metainfo pass their validators (`desktop-file-validate`, `appstreamcli validate`), each
//! entry starts a real binary of the workspace, names the icon that is in `assets/` and
//! the app id its program's window carries (`openmosix_gui::desktop`), and the committed
//! PNGs are the SVG's (`scripts/render-icons.sh`). scripts/install-test-deps.sh installs
//! the tools.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use openmosix_gui::desktop::{self, ICON_NAME};

/// The icon sizes of the hicolor theme that `assets/` holds.
const SIZES: [u32; 9] = [16, 22, 24, 32, 48, 64, 128, 256, 512];
const METAINFO: &str = "io.github.openmosixview.metainfo.xml";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn assets() -> PathBuf {
    repo().join("assets")
}

/// Runs a program and returns what it said on stdout and stderr; panics if it failed.
fn run(program: &str, args: &[&Path]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} did not start ({e}): run scripts/install-test-deps.sh")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    text
}

/// The `.desktop` files of `assets/applications`, by their basename.
fn desktop_files() -> BTreeMap<String, PathBuf> {
    std::fs::read_dir(assets().join("applications"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "desktop"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect()
}

/// The keys of a `.desktop` file's `[Desktop Entry]` group.
fn entry(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut in_entry = false;
    let mut keys = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('[') {
            in_entry = line == "[Desktop Entry]";
        } else if let Some((key, value)) = line.split_once('=')
            && in_entry
        {
            keys.insert(key.to_owned(), value.to_owned());
        }
    }
    keys
}

/// The names of the workspace's binary targets, from `cargo metadata`.
fn workspace_binaries() -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut bins = BTreeSet::new();
    for package in meta["packages"].as_array().unwrap() {
        for target in package["targets"].as_array().unwrap() {
            if target["kind"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k == "bin")
            {
                bins.insert(target["name"].as_str().unwrap().to_owned());
            }
        }
    }
    bins
}

/// The texts of every `<tag …>…</tag>` in `xml` (the metainfo is plain enough for this).
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(gt) = after.find('>') else { break };
        if !after.starts_with(['>', ' ']) || after[..gt].ends_with('/') {
            rest = after;
            continue;
        }
        let body = &after[gt + 1..];
        let end = body.find(&close).unwrap();
        found.push(body[..end].trim());
        rest = &body[end..];
    }
    found
}

/// A PNG's width and height, from its header.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

#[test]
fn every_desktop_entry_passes_desktop_file_validate() {
    let files = desktop_files();
    assert!(!files.is_empty());
    for path in files.values() {
        // It says nothing when all is well; hints and warnings count as failures too.
        let said = run("desktop-file-validate", &[path]);
        assert_eq!(said, "", "{}", path.display());
    }
}

#[test]
fn the_metainfo_passes_appstreamcli_validate() {
    let path = assets().join("metainfo").join(METAINFO);
    let args = [
        Path::new("validate"),
        Path::new("--no-net"),
        Path::new("--pedantic"),
        &path,
    ];
    let said = run("appstreamcli", &args);
    assert!(said.contains("Validation was successful"), "{said}");
}

#[test]
fn each_window_program_has_an_entry_named_by_its_app_id() {
    let files = desktop_files();
    let ids: BTreeSet<&str> = desktop::ALL.iter().map(|p| p.id).collect();
    let names: BTreeSet<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names, ids,
        "one .desktop per window program, named by its app id"
    );
    for program in desktop::ALL {
        let keys = entry(&files[program.id]);
        // X11 matches the window's WM_CLASS to it; Wayland the app id to the file name.
        assert_eq!(keys["StartupWMClass"], program.id);
        assert_eq!(keys["Name"], program.name);
        let exec = keys["Exec"].split_whitespace().next().unwrap();
        assert_eq!(
            exec, program.id,
            "{}.desktop starts its own program",
            program.id
        );
        assert_eq!(keys["Icon"], ICON_NAME);
        assert!(keys["Categories"].split(';').any(|c| c == "System"));
    }
}

#[test]
fn entries_and_metainfo_name_binaries_of_the_workspace() {
    let bins = workspace_binaries();
    for (name, path) in desktop_files() {
        let exec = entry(&path)["Exec"].clone();
        let program = exec.split_whitespace().next().unwrap();
        assert!(
            bins.contains(program),
            "{name}.desktop: Exec={exec} is not a binary of the workspace ({bins:?})"
        );
    }
    let xml = std::fs::read_to_string(assets().join("metainfo").join(METAINFO)).unwrap();
    let provided = elements(&xml, "binary");
    assert!(provided.len() >= desktop::ALL.len());
    for binary in provided {
        assert!(
            bins.contains(binary),
            "the metainfo provides {binary}, not a binary of the workspace"
        );
    }
}

#[test]
fn the_metainfo_launches_every_entry_and_names_the_icon_and_version() {
    let xml = std::fs::read_to_string(assets().join("metainfo").join(METAINFO)).unwrap();
    let launchables: BTreeSet<&str> = elements(&xml, "launchable").into_iter().collect();
    let entries: BTreeSet<String> = desktop_files()
        .keys()
        .map(|id| format!("{id}.desktop"))
        .collect();
    assert_eq!(launchables, entries.iter().map(String::as_str).collect());
    assert_eq!(elements(&xml, "icon"), [ICON_NAME]);
    assert_eq!(
        elements(&xml, "id"),
        [METAINFO.trim_end_matches(".metainfo.xml")],
        "the file is named by the component's id"
    );
    let newest = format!("<release version=\"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(
        xml.contains(&newest),
        "the newest release is the workspace's version"
    );
}

#[test]
fn the_icon_is_there_at_every_size() {
    let hicolor = assets().join("icons/hicolor");
    for size in SIZES {
        let png = hicolor.join(format!("{size}x{size}/apps/{ICON_NAME}.png"));
        assert_eq!(png_size(&png), (size, size), "{}", png.display());
    }
    let svg = hicolor.join(format!("scalable/apps/{ICON_NAME}.svg"));
    assert!(std::fs::read_to_string(svg).unwrap().contains("<svg"));
    // Nothing else lies in the theme's folder.
    let folders = std::fs::read_dir(&hicolor).unwrap().count();
    assert_eq!(folders, SIZES.len() + 1);
}

#[test]
fn the_committed_pngs_are_renders_of_the_svg() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("render-icons");
    let _ = std::fs::remove_dir_all(&out);
    let script = repo().join("scripts/render-icons.sh");
    run("bash", &[&script, Path::new("--out"), &out]);
    for size in SIZES {
        let name = format!("{size}x{size}/apps/{ICON_NAME}.png");
        let fresh = std::fs::read(out.join(&name)).unwrap();
        let committed = std::fs::read(assets().join("icons/hicolor").join(&name)).unwrap();
        assert!(
            fresh == committed,
            "{name} is not the SVG's render: run scripts/render-icons.sh"
        );
    }
}
