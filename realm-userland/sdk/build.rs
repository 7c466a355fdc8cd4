//! Generates `include/atoll_sdk.h` from the C API (`src/ffi.rs`) with
//! cbindgen, so the header can never drift from the functions. The header
//! is committed too, for C users who do not build the crate; it is only
//! rewritten when its contents change.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi.rs");
    println!("cargo:rerun-if-changed=build.rs");
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let config = cbindgen::Config {
        language: cbindgen::Language::C,
        include_guard: Some("ATOLL_SDK_H".into()),
        header: Some(
            "/* The Atoll realm SDK C API. Generated from src/ffi.rs by cbindgen; do not edit. */"
                .into(),
        ),
        cpp_compat: true,
        usize_is_size_t: true,
        documentation: true,
        enumeration: cbindgen::EnumConfig {
            prefix_with_name: true,
            rename_variants: cbindgen::RenameRule::ScreamingSnakeCase,
            ..Default::default()
        },
        ..Default::default()
    };
    let bindings = match cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/ffi.rs"))
        .generate()
    {
        Ok(b) => b,
        Err(e) => {
            println!("cargo:warning=cbindgen could not generate atoll_sdk.h: {e}");
            return;
        }
    };
    let path = dir.join("include/atoll_sdk.h");
    bindings.write_to_file(path);
}
