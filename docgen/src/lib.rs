//! The manual pages and shell completions of every program of the suite, generated from
//! the program's own clap definitions (docs/install.md).
//!
//! Each program's `main()` starts with one call:
//!
//! ```ignore
//! openmosix_docgen::generate_if_asked::<Cli>("openmosix");
//! ```
//!
//! Run normally, the call does nothing. Run as `PROGRAM --generate-docs DIR`, it writes
//! the program's pages and completions into DIR and exits; `scripts/install.sh` does this
//! for every program it installs. So the pages can never describe options a program does
//! not have: they are rendered from the very `clap::Command` that parses its arguments.
//!
//! Layout written under DIR:
//!
//! | file | what |
//! | --- | --- |
//! | `man1/NAME.1`, `man1/NAME-SUB.1` … | the page of the program and of each subcommand |
//! | `bash/NAME` | bash-completion (the file name bash-completion loads on demand) |
//! | `zsh/_NAME` | zsh completion function |
//! | `fish/NAME.fish` | fish completions |

use std::ffi::OsString;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use clap::{Command, CommandFactory};
use clap_complete::aot::Shell;
use clap_mangen::Man;

/// The hidden first argument that asks a program for its manual and completions.
pub const FLAG: &str = "--generate-docs";

/// The programs of the suite, named in every page's SEE ALSO.
pub const PROGRAMS: [&str; 9] = [
    "openmosixview",
    "openmosixprocs",
    "openmosixmigmon",
    "openmosixanalyzer",
    "openmosixhistory",
    "openmosixcollector",
    "openmosix",
    "openmosix-agent",
    "openmosix-testbed",
];

/// The manual the pages belong to (the centre of the page footer/header).
const MANUAL: &str = "openMosixview suite";

/// The shells completions are written for, with the folder and file name each uses.
const SHELLS: [(Shell, &str); 3] = [
    (Shell::Bash, "bash"),
    (Shell::Zsh, "zsh"),
    (Shell::Fish, "fish"),
];

/// If this program was started as `PROGRAM --generate-docs DIR`, writes the manual pages
/// and shell completions of `C` (named `name`) into DIR and exits: 0 when written, 1 with
/// a sentence on stderr when not. Otherwise returns at once.
///
/// Call it first thing in `main()`, before the arguments are parsed.
pub fn generate_if_asked<C: CommandFactory>(name: &'static str) {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if !asked(&args) {
        return;
    }
    let mut args = args.into_iter().skip(1);
    let code = match (args.next(), args.next()) {
        (Some(dir), None) => match generate(C::command(), name, Path::new(&dir)) {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
                0
            }
            Err(e) => {
                eprintln!(
                    "{name}: cannot write the manual and completions into {}: {e}",
                    Path::new(&dir).display()
                );
                1
            }
        },
        _ => {
            eprintln!("{name}: usage: {name} {FLAG} DIR");
            2
        }
    };
    std::process::exit(code);
}

/// Writes the manual pages and completions of `cmd`, the program `name`, under `dir`
/// (layout in the crate docs); returns the files written.
///
/// # Errors
/// When a folder or file cannot be written.
pub fn generate(cmd: Command, name: &'static str, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut cmd = cmd.name(name).bin_name(name);
    let mut files = Vec::new();
    let man_dir = dir.join("man1");
    std::fs::create_dir_all(&man_dir)?;
    // As clap_mangen::generate_to does: no `help` subcommand pages, and display names
    // (`openmosix-nodes`) set on the subcommands by build().
    let mut built = cmd.clone().disable_help_subcommand(true);
    built.build();
    write_pages(&built, None, &man_dir, &mut files)?;
    for (shell, folder) in SHELLS {
        let shell_dir = dir.join(folder);
        std::fs::create_dir_all(&shell_dir)?;
        let file = shell_dir.join(completion_file(shell, name));
        let mut buf = Vec::new();
        clap_complete::aot::generate(shell, &mut cmd, name, &mut buf);
        std::fs::write(&file, &buf)?;
        files.push(file);
    }
    Ok(files)
}

/// The file name a shell's completion loader looks for.
fn completion_file(shell: Shell, name: &str) -> String {
    match shell {
        Shell::Zsh => format!("_{name}"),
        Shell::Fish => format!("{name}.fish"),
        _ => name.to_owned(),
    }
}

/// The page of `cmd` and, first, of each of its visible subcommands (recursively).
fn write_pages(
    cmd: &Command,
    parent: Option<&str>,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> io::Result<()> {
    let page = cmd.get_display_name().unwrap_or(cmd.get_name()).to_owned();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, Some(&page), dir, files)?;
    }
    let man = Man::new(cmd.clone()).manual(MANUAL);
    let mut buf = Vec::new();
    man.render(&mut buf)?;
    buf.write_all(see_also(&page, parent).as_bytes())?;
    let file = dir.join(man.get_filename());
    std::fs::write(&file, &buf)?;
    files.push(file);
    Ok(())
}

/// A SEE ALSO section: the parent command's page for a subcommand, the suite's other
/// programs for a program.
fn see_also(page: &str, parent: Option<&str>) -> String {
    let refs: Vec<String> = match parent {
        Some(p) => vec![man_ref(p)],
        None => PROGRAMS
            .iter()
            .filter(|p| **p != page)
            .map(|p| man_ref(p))
            .collect(),
    };
    format!(".SH \"SEE ALSO\"\n{}\n", refs.join(",\n"))
}

/// `\fBname\fR(1)`, with the hyphens roff wants escaped.
fn man_ref(name: &str) -> String {
    format!("\\fB{}\\fR(1)", name.replace('-', "\\-"))
}

/// Whether `args` (without the program name) ask for the generator: only as the first
/// argument, so it never shadows a value a user passes to a real option.
pub fn asked(args: &[OsString]) -> bool {
    args.first().is_some_and(|a| a == FLAG)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small program with a subcommand, a hidden one and flattened options.
    fn sample() -> Command {
        Command::new("sample-crate")
            .version("1.2.3")
            .about("A sample program.")
            .arg(
                clap::Arg::new("cluster")
                    .long("cluster")
                    .help("A cluster file."),
            )
            .subcommand(
                Command::new("nodes").about("Every node.").arg(
                    clap::Arg::new("json")
                        .long("json")
                        .action(clap::ArgAction::SetTrue),
                ),
            )
            .subcommand(Command::new("secret").hide(true))
    }

    #[test]
    fn writes_pages_for_the_program_and_its_visible_subcommands() {
        let dir = tempfile::tempdir().unwrap();
        let files = generate(sample(), "sample", dir.path()).unwrap();
        let main = std::fs::read_to_string(dir.path().join("man1/sample.1")).unwrap();
        assert!(main.starts_with(".ie"), "roff preamble: {main:.80}");
        assert!(main.contains(".TH sample 1"), "{main}");
        assert!(main.contains("cluster"), "the option is on the page");
        assert!(main.contains("A sample program."));
        assert!(main.contains("SEE ALSO") && main.contains("\\fBopenmosixview\\fR(1)"));
        let sub = std::fs::read_to_string(dir.path().join("man1/sample-nodes.1")).unwrap();
        assert!(
            sub.contains("json") && sub.contains("\\fBsample\\fR(1)"),
            "{sub}"
        );
        assert!(!dir.path().join("man1/sample-secret.1").exists());
        assert!(!dir.path().join("man1/sample-help.1").exists());
        assert_eq!(files.len(), 2 + 3, "{files:?}");
    }

    #[test]
    fn writes_completions_under_the_names_the_shells_load() {
        let dir = tempfile::tempdir().unwrap();
        generate(sample(), "sample", dir.path()).unwrap();
        let bash = std::fs::read_to_string(dir.path().join("bash/sample")).unwrap();
        assert!(
            bash.contains("complete -F _sample") && bash.contains("--cluster"),
            "{bash}"
        );
        let zsh = std::fs::read_to_string(dir.path().join("zsh/_sample")).unwrap();
        assert!(zsh.starts_with("#compdef sample"), "{zsh:.60}");
        let fish = std::fs::read_to_string(dir.path().join("fish/sample.fish")).unwrap();
        assert!(
            fish.contains("complete -c sample") && fish.contains("nodes"),
            "{fish}"
        );
    }

    #[test]
    fn only_the_first_argument_asks() {
        assert!(asked(&[FLAG.into(), "x".into()]));
        assert!(!asked(&["nodes".into(), FLAG.into()]));
        assert!(!asked(&[]));
    }

    #[test]
    fn an_unwritable_folder_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "x").unwrap();
        assert!(generate(sample(), "sample", &file).is_err());
    }
}
