//! Writes every fuzz target's seed corpus: `gen-corpus [DIR]` fills
//! `DIR/<target>/seed-NNN` (default `corpus/` beside this crate's
//! manifest) with the inputs of `atoll_fuzz::seeds::all`. Existing files
//! are left alone, so the fuzzer's own corpus entries survive.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let mut total = 0;
    for (target, seeds) in atoll_fuzz::seeds::all() {
        let target_dir = dir.join(target);
        if let Err(e) = std::fs::create_dir_all(&target_dir) {
            eprintln!("gen-corpus: creating {}: {e}", target_dir.display());
            return ExitCode::FAILURE;
        }
        for (i, seed) in seeds.iter().enumerate() {
            let path = target_dir.join(format!("seed-{i:03}"));
            if let Err(e) = std::fs::write(&path, seed) {
                eprintln!("gen-corpus: writing {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
        total += seeds.len();
    }
    println!(
        "gen-corpus: {total} seeds for {} targets in {}",
        atoll_fuzz::TARGETS.len(),
        dir.display()
    );
    ExitCode::SUCCESS
}
