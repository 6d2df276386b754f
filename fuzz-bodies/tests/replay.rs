//! Replays the fuzz corpora and the inputs of every finding (fuzz/corpus/TARGET/ and
//! fuzz/regressions/TARGET/) through the bodies the fuzz targets run, on stable Rust:
//! what a fuzzer once found stays fixed, and the corpus keeps passing (docs/fuzzing.md).

use std::path::{Path, PathBuf};

use openmosix_fuzz_bodies::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Runs `body` on every file, naming the first that fails.
fn replay(name: &str, body: fn(&[u8]), inputs: &[PathBuf]) {
    for path in inputs {
        let data = std::fs::read(path).expect("a corpus file reads");
        if std::panic::catch_unwind(|| body(&data)).is_err() {
            panic!("fuzz target {name} fails on {}", path.display());
        }
    }
}

#[test]
fn every_target_has_a_fuzz_target_and_a_corpus() {
    let fuzz = fuzz_dir();
    for (name, _) in TARGETS {
        let target = fuzz.join("fuzz_targets").join(format!("{name}.rs"));
        assert!(target.is_file(), "{} is missing", target.display());
        let corpus = fuzz.join("corpus").join(name);
        assert!(
            !files(&corpus).is_empty(),
            "the corpus {} is missing or empty",
            corpus.display()
        );
    }
    for folder in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(folder)) else {
            assert_eq!(folder, "regressions", "fuzz/{folder} is missing");
            continue;
        };
        for entry in entries {
            let name = entry.expect("an entry").file_name();
            let name = name.to_str().expect("a UTF-8 name");
            assert!(
                TARGETS.iter().any(|(t, _)| *t == name),
                "fuzz/{folder}/{name} belongs to no target"
            );
        }
    }
}

#[test]
fn corpora_replay() {
    let fuzz = fuzz_dir();
    for (name, body) in TARGETS {
        replay(name, *body, &files(&fuzz.join("corpus").join(name)));
    }
}

#[test]
fn regressions_replay() {
    let fuzz = fuzz_dir();
    for (name, body) in TARGETS {
        replay(name, *body, &files(&fuzz.join("regressions").join(name)));
    }
}
