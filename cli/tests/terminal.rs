//! `openmosix mon` in a real terminal: tmux runs it against a 3-node testbed, keys are
//! typed with send-keys and the screen read with capture-pane; `--once` without a
//! terminal.

use std::time::Duration;

use openmosix_testbed::testbed::bin;
use openmosix_testbed::tmux::Tmux;
use openmosix_testbed::{Testbed, serial, shell_quote, wait};

fn bed() -> &'static Testbed {
    Testbed::shared("tmon", 225, 3)
}

/// The screen row of node `id`'s bar, if shown.
fn row(screen: &str, id: u32) -> Option<&str> {
    let head = format!("{id:>4} [");
    screen.lines().find(|l| l.starts_with(&head))
}

fn up(screen: &str, id: u32) -> bool {
    row(screen, id).is_some_and(|r| !r.contains("DOWN") && !r.contains("connecting"))
}

fn mon_command() -> String {
    format!(
        "{} --cluster {} mon",
        shell_quote(&bin("openmosix")),
        shell_quote(&bed().cluster_file.display().to_string())
    )
}

#[test]
fn once_prints_one_frame_with_every_node() {
    let _g = serial();
    let out = bed().cli_ok(&["mon", "--once"]);
    assert!(out.starts_with("openmosix mon · load"), "{out}");
    assert!(out.contains("3 of 3 nodes up · efficiency"), "{out}");
    for id in 1..=3 {
        assert!(up(&out, id), "no bar for node {id}:\n{out}");
    }
    assert!(
        out.lines().all(|l| l.chars().count() <= 80),
        "wider than 80:\n{out}"
    );
}

#[test]
fn mon_shows_bars_the_total_a_down_node_and_gives_the_screen_back() {
    let _g = serial();
    let bed = bed();
    let t = Tmux::start("openmosix-test-mon", 80, 24, "xterm-256color");
    t.type_line("echo before-the-monitor");
    let before = t.wait_for(Duration::from_secs(5), "the echo", |s| {
        s.lines().any(|l| l == "before-the-monitor")
            && s.lines().rev().find(|l| !l.trim().is_empty()) == Some("$")
    });
    t.type_line(&mon_command());
    let secs = Duration::from_secs;
    t.wait_for(secs(15), "three node bars", |s| {
        (1..=3).all(|i| up(s, i)) && s.contains("3 of 3 nodes up")
    });
    t.keys(&["m"]);
    t.wait_for(secs(3), "the memory bars", |s| {
        s.contains("memory (used/total)") && row(s, 1).is_some_and(|r| r.contains(" / "))
    });
    t.keys(&["t"]);
    t.wait_for(secs(3), "the total of nodes up", |s| {
        s.contains("total of nodes up") && s.contains("] 3 of 3 nodes up")
    });
    t.keys(&["l"]);

    bed.sshd_stop(2);
    let down = wait::within(secs(3), || {
        row(&t.screen(), 2).is_some_and(|r| r.contains("DOWN"))
    });
    let stopped = t.screen();
    bed.sshd_start(2);
    assert!(
        down.is_some(),
        "node 2 not shown down within 3 s:\n{stopped}"
    );
    assert!(stopped.contains("2 of 3 nodes up"), "{stopped}");
    let back = wait::within(secs(5), || up(&t.screen(), 2));
    assert!(
        back.is_some(),
        "node 2 not back within 5 s:\n{}",
        t.screen()
    );

    t.keys(&["q"]);
    let after = t.wait_for_prompt(secs(5));
    assert!(!after.contains("openmosix mon ·"), "{after}");
    let kept: Vec<&str> = before.lines().filter(|l| !l.trim().is_empty()).collect();
    let (shell, last) = kept.split_at(kept.len() - 1);
    assert_eq!(last, ["$"], "{before}");
    assert!(
        after.lines().take(shell.len()).eq(shell.iter().copied()),
        "q did not give the shell's screen back:\nbefore:\n{before}\nafter:\n{after}"
    );
}

#[test]
fn ctrl_c_and_sigterm_restore_the_terminal() {
    let _g = serial();
    let t = Tmux::start("openmosix-test-mon-exit", 80, 24, "linux");
    let secs = Duration::from_secs;
    t.type_line(&mon_command());
    t.wait_for(secs(15), "the bars", |s| s.contains("nodes up"));
    t.keys(&["C-c"]);
    let after = t.wait_for_prompt(secs(5));
    assert!(!after.contains("nodes up"), "{after}");
    // SIGTERM: the monitor runs in the foreground under a shell that wrote its pid.
    let dir = tempfile::tempdir().expect("a scratch folder");
    let pid_file = dir.path().join("mon.pid");
    let inner = format!(
        "echo $$ > {}; exec {}",
        shell_quote(&pid_file.display().to_string()),
        mon_command()
    );
    t.type_line(&format!("sh -c {}; echo ended", shell_quote(&inner)));
    t.wait_for(secs(15), "the bars", |s| s.contains("nodes up"));
    let pid = std::fs::read_to_string(&pid_file).expect("the monitor's pid");
    let kill = std::process::Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .expect("cannot run kill");
    assert!(kill.success());
    t.wait_for(secs(5), "the shell after SIGTERM", |s| {
        s.lines().any(|l| l == "ended") && !s.contains("nodes up")
    });
    t.wait_for_prompt(secs(5));
    t.type_line("stty -a | grep -o -- '-icanon' || echo cooked");
    t.wait_for(secs(5), "a terminal in cooked mode", |s| {
        s.lines().any(|l| l == "cooked")
    });
}
