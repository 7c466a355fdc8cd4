//! Writes the build plan of a realm description as a plan blob
//! (`atoll_realm_description::blob`), for hosts that embed it:
//!
//! ```text
//! cargo run -p atoll-realm-description --example plan-blob -- \
//!     images/examples/qemu-realm.toml target/qemu/realm.plan
//! ```

use std::path::Path;
use std::process::ExitCode;

use atoll_realm_description::{blob, toml, BuildPlan};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: plan-blob <description.toml> <out.plan>");
        return ExitCode::from(2);
    };
    let result = toml::load(Path::new(input))
        .map_err(|e| e.to_string())
        .and_then(|desc| BuildPlan::new(&desc).map_err(|e| e.to_string()))
        .and_then(|plan| blob::encode(&plan).map_err(|e| e.to_string()))
        .and_then(|bytes| {
            if let Some(dir) = Path::new(output).parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::write(output, &bytes).map_err(|e| format!("{output}: {e}"))?;
            Ok(bytes.len())
        });
    match result {
        Ok(n) => {
            println!("{output}: {n} bytes");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("plan-blob: {e}");
            ExitCode::FAILURE
        }
    }
}
