//! Links the payload with its own script (flat image at IPA 0x8_0000).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    // Only the bare-metal build uses the script; host unit tests link
    // normally.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{dir}/link.ld");
    }
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=build.rs");
}
