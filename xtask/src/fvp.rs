//! `cargo xtask fvp`: builds the same images as `cargo xtask qemu` and
//! prints the Arm FVP (Base RevC AEMvA) command line that would boot them
//! with RME; fails when the model is not installed.
//!
//! Arm's FVP is not obtainable on the project's machines, so this is only
//! ever checked for the arguments it produces. The images are linked for
//! QEMU's `virt` memory map (docs/qemu-boot.md); on the FVP Base platform
//! the UARTs (0x1C09_0000..), GIC (0x2F00_0000) and DRAM layout differ, so
//! the monitor and ns-host need an FVP platform port before this boots.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::qemu;

/// The model's executable name.
pub const FVP_MODEL: &str = "FVP_Base_RevC-2xAEMvA";

/// The model: `$FVP_BASE` (the executable, or the directory holding it),
/// else the executable on PATH.
pub fn find_model() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os("FVP_BASE") {
        let p = PathBuf::from(v);
        if p.is_file() {
            return Some(p);
        }
        let inside = p.join(FVP_MODEL);
        if inside.is_file() {
            return Some(inside);
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(FVP_MODEL))
            .find(|p| p.is_file())
    })
}

/// The model parameters: RME on both clusters and the platform, one core
/// (as on QEMU), the packed flash image in the trusted boot ROM at 0x0
/// (where the monitor expects its image table), the console on UART0 and
/// the HES link on UART1 through the model's telnet terminal `hes_port`.
pub fn fvp_args(firmware: &Path, hes_port: u16) -> Vec<String> {
    let c = |s: &str| ["-C".to_owned(), s.to_owned()];
    let mut v: Vec<String> = Vec::new();
    for p in [
        "bp.has_rme=1".to_owned(),
        "cluster0.has_rme=1".to_owned(),
        "cluster1.has_rme=1".to_owned(),
        "cluster0.rme_support_level=2".to_owned(),
        "cluster1.rme_support_level=2".to_owned(),
        "cluster0.NUM_CORES=1".to_owned(),
        "cluster1.NUM_CORES=1".to_owned(),
        "cluster0.has_arm_v8-6=1".to_owned(),
        "cluster1.has_arm_v8-6=1".to_owned(),
        "cluster0.PA_SIZE=48".to_owned(),
        "cluster1.PA_SIZE=48".to_owned(),
        "bp.refcounter.non_arch_start_at_default=1".to_owned(),
        "bp.refcounter.use_real_time=0".to_owned(),
        "bp.secure_memory=1".to_owned(),
        "bp.dram_size=4".to_owned(),
        format!("bp.secureflashloader.fname={}", firmware.display()),
        "bp.pl011_uart0.out_file=-".to_owned(),
        "bp.pl011_uart0.unbuffered_output=1".to_owned(),
        "bp.terminal_0.start_telnet=0".to_owned(),
        "bp.terminal_1.start_telnet=1".to_owned(),
        format!("bp.terminal_1.start_port={hes_port}"),
        "bp.terminal_2.start_telnet=0".to_owned(),
        "bp.terminal_3.start_telnet=0".to_owned(),
        "bp.vis.disable_visualisation=1".to_owned(),
    ] {
        v.extend(c(&p));
    }
    v
}

/// `cargo xtask fvp`.
pub fn run(root: &Path) -> Result<()> {
    let model = find_model();
    match &model {
        Some(m) => eprintln!("xtask: FVP model: {}", m.display()),
        None => eprintln!(
            "xtask: no FVP model found: set FVP_BASE to the {FVP_MODEL} executable (or its \
             directory), or put {FVP_MODEL} on PATH (Arm's Base RevC AEM FVP, from \
             developer.arm.com, Fixed Virtual Platforms)"
        ),
    }
    let pre = qemu::ensure_prerequisites(false)?;
    let images = qemu::build_images(root, pre.toolchain)?;
    let hes_port = 5002;
    let prog = model
        .as_ref()
        .map_or_else(|| FVP_MODEL.to_owned(), |m| m.display().to_string());
    let line = qemu::shell_line(&prog, &fvp_args(&images.firmware, hes_port));
    let out = qemu::out_dir(root).join("fvp-cmdline.txt");
    std::fs::write(&out, format!("{line}\n"))?;
    println!("{line}");
    println!(
        "# images: monitor {} (flash 0x0), RMM {} (load {:#x}), ns-host {} (load {:#x}), \
         payload {} (in ns-host)",
        images.monitor.display(),
        images.rmm.display(),
        qemu::RMM_LOAD,
        images.ns_host.display(),
        qemu::NS_HOST_LOAD,
        images.payload.display()
    );
    println!(
        "# the HES link is the model's UART1 telnet terminal on port {hes_port}; the images \
         are linked for QEMU virt's memory map, see docs/qemu.md"
    );
    if model.is_none() {
        bail!(
            "{FVP_MODEL} is not installed (command line written to {})",
            out.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rme_and_the_flash_image_are_in_the_arguments() {
        let args = fvp_args(Path::new("/x/atoll-fw.bin"), 5002);
        assert!(args.chunks(2).all(|p| p[0] == "-C"));
        let has = |s: &str| args.iter().any(|a| a == s);
        assert!(has("bp.has_rme=1"));
        assert!(has("cluster0.rme_support_level=2"));
        assert!(has("bp.secureflashloader.fname=/x/atoll-fw.bin"));
        assert!(has("bp.terminal_1.start_port=5002"));
    }
}
