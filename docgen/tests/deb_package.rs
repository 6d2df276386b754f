//! The suite's Debian package (`scripts/build-deb.sh`, docs/install.md), installed with
//! the real dpkg into a scratch root (its own admin folder, seeded with this machine's
//! package list so that the package's Depends are checked against a real Debian 12):
//! every program answers `--help`, `man openmosixcollector` shows the generated page, the
//! systemd units verify, the bash/zsh/fish completions load and complete, the launchers,
//! icon and AppStream entry are where the desktop looks and pass their validators, and
//! openmosixview with no configuration opens its window under Xvfb, served by the
//! installed agent, with its app id and icon. Purging removes it again.
//!
//! Needs root (dpkg installs root-owned files) and the workspace's debug binaries
//! (`cargo build --workspace --bins`, which scripts/test.sh runs first). Everything it
//! writes stays under target/tmp/deb-package (the screenshot too), replaced by the next run.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use openmosix_docgen::PROGRAMS;
use openmosix_testbed::process::{KillOnDrop, Xvfb};
use openmosix_testbed::wait::until;
use support::{
    Package, children_running, describe, dpkg, package, repo, run, scratch_root, try_run,
};

#[test]
fn the_package_says_what_it_is_and_what_it_needs() {
    let p = package();
    let field = |f: &str| {
        run(
            "dpkg-deb -f",
            Command::new("dpkg-deb").arg("-f").arg(&p.deb).arg(f),
        )
    };
    assert_eq!(field("Package").trim(), "openmosixview");
    assert_eq!(
        field("Version").trim(),
        env!("CARGO_PKG_VERSION"),
        "the workspace version"
    );
    let arch = run(
        "dpkg --print-architecture",
        Command::new("dpkg").arg("--print-architecture"),
    );
    assert_eq!(field("Architecture").trim(), arch.trim());
    let depends = field("Depends");
    for need in [
        "libc6 (>=",
        "libgcc-s1",
        "libxkbcommon-x11-0",
        "libgl1",
        "libegl1",
        "openssh-client",
    ] {
        assert!(depends.contains(need), "Depends lacks {need}: {depends}");
    }
    assert!(field("Recommends").contains("criu (>= 4.1)"));
    let conffiles = run(
        "dpkg-deb -I conffiles",
        Command::new("dpkg-deb")
            .arg("-I")
            .arg(&p.deb)
            .arg("conffiles"),
    );
    assert_eq!(conffiles.trim(), "/etc/default/openmosix");
    let status = run("dpkg -s", dpkg(&p.root).args(["-s", "openmosixview"]));
    assert!(status.contains("Status: install ok installed"), "{status}");
}

#[test]
fn every_installed_program_answers_help() {
    let p = package();
    for prog in PROGRAMS {
        let bin = p.root.join("usr/bin").join(prog);
        let out = run(&format!("{prog} --help"), Command::new(&bin).arg("--help"));
        assert!(out.contains("Usage:"), "{prog} --help: {out}");
        let version = run(
            &format!("{prog} --version"),
            Command::new(&bin).arg("--version"),
        );
        assert!(
            version.contains(env!("CARGO_PKG_VERSION")),
            "{prog}: {version}"
        );
    }
}

fn man(p: &Package, page: &str) -> String {
    run(
        &format!("man {page}"),
        Command::new("man")
            .arg(page)
            .env("MANPATH", p.root.join("usr/share/man"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .env("LC_ALL", "C"),
    )
}

#[test]
fn man_shows_the_installed_pages() {
    let p = package();
    let where_ = run(
        "man -w",
        Command::new("man")
            .args(["-w", "openmosixcollector"])
            .env("MANPATH", p.root.join("usr/share/man")),
    );
    assert_eq!(
        Path::new(where_.trim()),
        p.root.join("usr/share/man/man1/openmosixcollector.1.gz")
    );
    let page = man(p, "openmosixcollector");
    assert!(
        page.contains("openmosixcollector - "),
        "NAME section: {page}"
    );
    for opt in [
        "--foreground",
        "--interval",
        "--cluster",
        "OPENMOSIX_CLUSTER",
        "SEE ALSO",
    ] {
        assert!(page.contains(opt), "{opt} missing from the page:\n{page}");
    }
    let sub = man(p, "openmosix-migrate");
    assert!(
        sub.contains("openmosix migrate") && sub.contains("--no-predump"),
        "{sub}"
    );
    for prog in PROGRAMS {
        assert!(man(p, prog).contains("SYNOPSIS"), "man {prog}");
    }
}

#[test]
fn the_systemd_units_verify() {
    let p = package();
    let units = p.root.join("lib/systemd/system");
    // systemd-analyze checks the programs and the settings file the units name; point
    // those at the scratch root (the unit text is otherwise the installed one).
    let copy = p.base.join("units-verify");
    std::fs::create_dir_all(&copy).unwrap();
    let mut names = Vec::new();
    for unit in [
        "openmosixcollector.service",
        "openmosix-discover.service",
        "openmosix-balance.service",
    ] {
        let text =
            std::fs::read_to_string(units.join(unit)).unwrap_or_else(|e| panic!("{unit}: {e}"));
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap_or_else(|| panic!("{unit} has no ExecStart"));
        let program = exec.split_whitespace().next().unwrap_or_default();
        assert!(program.starts_with("/usr/bin/"), "{unit}: {exec}");
        assert!(
            p.root.join(&program[1..]).is_file(),
            "{unit} runs {program}, not in the package"
        );
        assert!(
            text.contains("EnvironmentFile=-/etc/default/openmosix"),
            "{unit}"
        );
        let rooted = text
            .replace("=/usr/bin/", &format!("={}/usr/bin/", p.root.display()))
            .replace("=-/etc/", &format!("=-{}/etc/", p.root.display()));
        std::fs::write(copy.join(unit), rooted).unwrap();
        names.push(copy.join(unit));
    }
    run(
        "systemd-analyze verify",
        Command::new("systemd-analyze")
            .arg("verify")
            .args(&names)
            .env("MANPATH", p.root.join("usr/share/man")),
    );
    assert!(p.root.join("etc/default/openmosix").is_file());
    // The collector unit runs the collector's real foreground mode.
    let collector = std::fs::read_to_string(units.join("openmosixcollector.service")).unwrap();
    assert!(collector.contains("ExecStart=/usr/bin/openmosixcollector --foreground"));
}

#[test]
fn the_completions_load_and_complete() {
    let p = package();
    let share = p.root.join("usr/share");
    // The shells keep their own files (fish's history, zsh's dump) in a home of the test's.
    let home = p.base.join("shell-home");
    std::fs::create_dir_all(&home).unwrap();
    let shell = |name: &str| {
        let mut c = Command::new(name);
        c.env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME");
        c
    };
    for prog in PROGRAMS {
        let bash = share.join("bash-completion/completions").join(prog);
        run(
            &format!("bash -n {prog}"),
            shell("bash").arg("-n").arg(&bash),
        );
        let zsh = share
            .join("zsh/vendor-completions")
            .join(format!("_{prog}"));
        run(&format!("zsh -n _{prog}"), shell("zsh").arg("-n").arg(&zsh));
        let fish = share
            .join("fish/vendor_completions.d")
            .join(format!("{prog}.fish"));
        run(
            &format!("fish -n {prog}.fish"),
            shell("fish").arg("-n").arg(&fish),
        );
    }
    // bash: the completion function offers `migrate` for `openmosix mig`.
    let bash = run(
        "bash completion",
        shell("bash").arg("-c").arg(
            r#"source "$1"; COMP_WORDS=(openmosix mig); COMP_CWORD=1; COMP_LINE="openmosix mig";
               COMP_POINT=${#COMP_LINE}; _openmosix openmosix mig openmosix; printf '%s\n' "${COMPREPLY[@]}""#,
        ).arg("bash").arg(share.join("bash-completion/completions/openmosix")),
    );
    assert_eq!(bash.trim(), "migrate");
    // fish: the same through fish's own completion engine.
    let fish = run(
        "fish completion",
        shell("fish").arg("-c").arg(format!(
            "source {}; complete -C'openmosix mig'",
            share
                .join("fish/vendor_completions.d/openmosix.fish")
                .display()
        )),
    );
    assert!(fish.starts_with("migrate\t"), "{fish}");
    // zsh: compinit finds every function in the vendor folder and binds it to its program.
    let zsh = run(
        "zsh compinit",
        shell("zsh").arg("-c").arg(format!(
            "fpath=({} $fpath); autoload -Uz compinit; compinit -u -d {}; for p in {}; do print -r -- $p=${{_comps[$p]}}; done",
            share.join("zsh/vendor-completions").display(),
            p.base.join("zcompdump").display(),
            PROGRAMS.join(" ")
        )),
    );
    for prog in PROGRAMS {
        assert!(
            zsh.lines().any(|l| l == format!("{prog}=_{prog}")),
            "zsh: {prog}: {zsh}"
        );
    }
}

#[test]
fn openmosixview_with_no_configuration_opens_from_the_package() {
    let p = package();
    let xvfb = Xvfb::start("1100x600x24");
    let display = xvfb.display.clone();

    let home = p.base.join("home");
    let state = p.base.join("agent-state");
    std::fs::create_dir_all(&home).unwrap();
    let view_bin = p.root.join("usr/bin/openmosixview");
    let view = Command::new(&view_bin)
        .env("DISPLAY", &display)
        .env("HOME", &home)
        .env("OPENMOSIX_STATE_DIR", &state)
        .env_remove("OPENMOSIX_CLUSTER")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(p.base.join("openmosixview.log")).unwrap())
        .spawn()
        .expect("start the installed openmosixview");
    let mut view = KillOnDrop(view);
    let view_pid = view.0.id();

    // With no configuration it serves this machine with the agent installed beside it.
    let agent_bin = p.root.join("usr/bin/openmosix-agent");
    until(
        Duration::from_secs(30),
        "the installed agent started by openmosixview",
        || !children_running(&agent_bin, view_pid).is_empty(),
    );
    until(Duration::from_secs(30), "the openMosixview window", || {
        try_run(
            "xwininfo",
            Command::new("xwininfo").args(["-root", "-tree", "-display", &display]),
        )
        .is_ok_and(|tree| tree.contains("openMosixview"))
    });
    // The desktop knows it by its app id (X11: WM_CLASS, the entry's StartupWMClass) and
    // shows its icon.
    let tree = run(
        "xwininfo",
        Command::new("xwininfo").args(["-root", "-tree", "-display", &display]),
    );
    let window = tree
        .lines()
        .find(|l| l.contains("\"openMosixview"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no openMosixview window in {tree}"))
        .to_owned();
    let props = run(
        "xprop",
        Command::new("xprop")
            .args(["-display", &display, "-id", &window, "-notype"])
            .args(["-f", "_NET_WM_ICON", "32c", "=$0x$1\n"])
            .args(["WM_CLASS", "_NET_WM_ICON"]),
    );
    assert!(
        props.contains("WM_CLASS = \"\", \"openmosixview\""),
        "{props}"
    );
    assert!(props.contains("_NET_WM_ICON=256x256"), "{props}");
    // Let it draw a few frames with the node's figures, then look at it.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        view.0.try_wait().unwrap().is_none(),
        "openmosixview ended early"
    );
    let shot = p.base.join("openmosixview.png");
    run(
        "import (screenshot)",
        Command::new("import")
            .args(["-display", &display, "-window", "root"])
            .arg(&shot),
    );
    let colours = run(
        "identify",
        Command::new("identify").args(["-format", "%k"]).arg(&shot),
    );
    let colours: u32 = colours.trim().parse().unwrap_or(0);
    assert!(
        colours > 16,
        "the screenshot has {colours} colours: nothing drawn? {}",
        shot.display()
    );

    // Closing it leaves no agent behind (the agent ends when its channel closes).
    let agents = children_running(&agent_bin, view_pid);
    let _ = view.0.kill();
    let _ = view.0.wait();
    until(
        Duration::from_secs(10),
        "the agent leaving with its window",
        || {
            agents.iter().all(|pid| {
                std::fs::read_link(format!("/proc/{pid}/exe")).map_or(true, |e| e != agent_bin)
            })
        },
    );
    drop(xvfb);
}

/// The window programs: those with a launcher in `assets/applications` (gui's
/// tests/desktop_entries.rs checks that these are the app ids of the windows).
#[allow(clippy::unwrap_used)]
fn launchers() -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(repo().join("assets/applications"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            Some(name.strip_suffix(".desktop")?.to_owned())
        })
        .collect();
    ids.sort();
    assert_eq!(ids.len(), 5, "{ids:?}");
    ids
}

/// What the desktop needs, as the package's paths: a launcher per window program, the icon
/// in every size of `assets/`, the AppStream entry.
#[allow(clippy::unwrap_used)]
fn desktop_files() -> Vec<String> {
    let mut files: Vec<String> = launchers()
        .iter()
        .map(|id| format!("usr/share/applications/{id}.desktop"))
        .collect();
    let hicolor = repo().join("assets/icons/hicolor");
    for size in std::fs::read_dir(&hicolor).unwrap() {
        let size = size.unwrap().file_name().into_string().unwrap();
        for icon in std::fs::read_dir(hicolor.join(&size).join("apps")).unwrap() {
            let icon = icon.unwrap().file_name().into_string().unwrap();
            files.push(format!("usr/share/icons/hicolor/{size}/apps/{icon}"));
        }
    }
    files.push("usr/share/metainfo/io.github.openmosixview.metainfo.xml".into());
    files
}

#[test]
fn the_desktop_finds_launchers_icon_and_metainfo() {
    let p = package();
    let listing = run(
        "dpkg-deb -c",
        Command::new("dpkg-deb").arg("-c").arg(&p.deb),
    );
    let paths: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    for file in desktop_files() {
        assert!(
            paths.contains(&format!("./{file}").as_str()),
            "the package lacks /{file}"
        );
        assert!(p.root.join(&file).is_file(), "/{file} is not installed");
    }
    for id in launchers() {
        assert!(PROGRAMS.contains(&id.as_str()), "{id} is not a program");
        let entry = p.root.join(format!("usr/share/applications/{id}.desktop"));
        run(
            "desktop-file-validate",
            Command::new("desktop-file-validate").arg(&entry),
        );
        // Exec names the program on PATH, which the package put in /usr/bin.
        let text = std::fs::read_to_string(&entry).unwrap();
        assert!(text.contains(&format!("\nExec={id}")), "{text}");
        assert!(p.root.join("usr/bin").join(&id).is_file());
    }
    let tree = run(
        "appstreamcli validate-tree",
        Command::new("appstreamcli")
            .args(["validate-tree", "--no-net"])
            .arg(&p.root),
    );
    assert!(tree.contains("Validation was successful"), "{tree}");
}

#[test]
fn purge_removes_the_suite() {
    let p = package();
    let root = p.base.join("root-purge");
    scratch_root(&root).unwrap();
    run("dpkg -i", dpkg(&root).arg("-i").arg(&p.deb));
    assert!(root.join("usr/bin/openmosixview").is_file());
    run(
        "dpkg --purge",
        dpkg(&root).args(["--purge", "openmosixview"]),
    );
    for gone in [
        "usr/bin/openmosixview",
        "usr/bin/openmosix-agent",
        "usr/share/man/man1/openmosixcollector.1.gz",
        "lib/systemd/system/openmosixcollector.service",
        "etc/default/openmosix",
        "usr/share/applications/openmosixview.desktop",
        "usr/share/icons/hicolor/48x48/apps/openmosixview.png",
        "usr/share/metainfo/io.github.openmosixview.metainfo.xml",
    ] {
        assert!(
            !root.join(gone).exists(),
            "{gone} is still there after purge"
        );
    }
    let out = dpkg(&root).args(["-s", "openmosixview"]).output().unwrap();
    assert!(
        !out.status.success(),
        "{}",
        describe("dpkg -s after purge", &out)
    );
}

#[test]
fn install_sh_installs_under_a_prefix_and_uninstalls() {
    let p = package();
    let prefix = p.base.join("prefix");
    let args = |extra: &[&str]| {
        let mut c = Command::new(repo().join("scripts/install.sh"));
        c.arg("--prefix")
            .arg(&prefix)
            .arg("--sysconfdir")
            .arg(prefix.join("etc"))
            .arg("--unitdir")
            .arg(prefix.join("units"))
            .args(extra);
        c
    };
    run(
        "install.sh",
        &mut args(&["--profile", "debug", "--no-build", "--strip"]),
    );
    for prog in PROGRAMS {
        assert!(prefix.join("bin").join(prog).is_file(), "{prog}");
        assert!(
            prefix.join(format!("share/man/man1/{prog}.1.gz")).is_file(),
            "{prog}.1"
        );
        assert!(
            prefix
                .join(format!("share/bash-completion/completions/{prog}"))
                .is_file()
        );
        assert!(
            prefix
                .join(format!("share/zsh/site-functions/_{prog}"))
                .is_file()
        );
        assert!(
            prefix
                .join(format!("share/fish/vendor_completions.d/{prog}.fish"))
                .is_file()
        );
    }
    // The units run the programs of this prefix and read the settings of this sysconfdir.
    let unit = std::fs::read_to_string(prefix.join("units/openmosixcollector.service")).unwrap();
    assert!(
        unit.contains(&format!(
            "ExecStart={}/bin/openmosixcollector --foreground",
            prefix.display()
        )),
        "{unit}"
    );
    assert!(unit.contains(&format!(
        "EnvironmentFile=-{}/etc/default/openmosix",
        prefix.display()
    )));
    assert!(prefix.join("share/openmosixview/install-criu.sh").is_file());
    for file in desktop_files() {
        let file = file.trim_start_matches("usr/");
        assert!(prefix.join(file).is_file(), "{file} is not installed");
    }
    // An edited settings file survives uninstalling; everything else goes.
    let defaults = prefix.join("etc/default/openmosix");
    let mut text = std::fs::read_to_string(&defaults).unwrap();
    text.push_str("OPENMOSIX_CLUSTER=/etc/openmosix/cluster.toml\n");
    std::fs::write(&defaults, text).unwrap();
    let out = run("install.sh --uninstall", &mut args(&["--uninstall"]));
    assert!(out.contains("kept"), "{out}");
    let mut left = Vec::new();
    let mut stack = vec![prefix.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                left.push(path);
            }
        }
    }
    assert_eq!(left, vec![defaults]);
}
