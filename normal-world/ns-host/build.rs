//! Links ns-host with its own script (entry at 0x6000_0000) and rebuilds
//! when the embedded realm plan or metadata block changes.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{dir}/link.ld");
    }
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../../target/qemu/realm.plan");
    println!("cargo:rerun-if-changed=../../target/qemu/realm.metadata");
}
