//! `cargo xtask qemu`: builds the bare-metal images, packs `atoll-fw.bin`
//! as `docs/qemu-boot.md` lays it out, boots it on QEMU with RME next to an
//! `atoll-hes` process and, with `--check`, verifies what the realm reported.
//!
//! The pieces, in the order they run:
//!
//! 1. [`ensure_prerequisites`]: QEMU with `x-rme`, a cross toolchain for
//!    `aarch64-unknown-none-softfloat` and `aarch64-linux-gnu-objcopy`,
//!    installed from Debian when we are root on bookworm.
//! 2. [`build_images`]: payload, realm build plan and its vendor-signed
//!    metadata block ([`write_realm_metadata`]), ns-host, RMM, monitor
//!    (each its own one-package workspace), ELF -> flat binary.
//! 3. [`pack_firmware`]: the flash image (monitor, image table, images).
//! 4. [`run_machine`]: HES + QEMU, console streamed or captured, stopped on
//!    `ATOLL-DONE`, QEMU exit, timeout or a signal; both always killed.
//! 5. [`parse_console`] and [`rim_matches`]: the `--check` verdict.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};

use crate::cargo;

// ---------------------------------------------------------------------------
// The flash image (docs/qemu-boot.md, "atoll-fw.bin").

/// Size of secure flash0, which `-bios` fills: the image is padded to it.
pub const FLASH_SIZE: usize = 64 << 20;
/// Where the image table starts; the monitor must fit below it.
pub const TABLE_OFFSET: usize = 0x10_0000;
/// Magic at the start of the image table.
pub const TABLE_MAGIC: [u8; 8] = *b"ATOLLFW1";
/// Bytes of the table header: magic, count, pad.
pub const TABLE_HEADER_LEN: usize = 16;
/// Bytes of one table entry.
pub const TABLE_ENTRY_LEN: usize = 64;
/// Alignment of every image after the table.
pub const IMAGE_ALIGN: usize = 0x1000;

/// RMM load address (its entry point) and the most it may occupy: the Realm
/// range up to the EL3-RMM shared page.
pub const RMM_LOAD: u64 = 0x4010_0000;
/// Largest RMM image.
pub const RMM_MAX: usize = 0x418F_F000 - 0x4010_0000;
/// NS host load address (its entry point).
pub const NS_HOST_LOAD: u64 = 0x6000_0000;
/// Largest NS host image (its 16 MiB region, stack and heap included).
pub const NS_HOST_MAX: usize = 0x0100_0000;
/// Signer id the monitor records for the RMM (the simulation uses the same).
pub const RMM_SIGNER_ID: [u8; 32] = [0x52; 32];
/// Signer id the monitor records for the NS host.
pub const NS_HOST_SIGNER_ID: [u8; 32] = [0x53; 32];

/// What a table entry holds (`kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ImageKind {
    /// The RMM, copied to Realm PAS memory.
    Rmm = 1,
    /// The normal-world host, copied to NS DRAM.
    NsHost = 2,
}

/// One image for the table.
#[derive(Clone, Copy, Debug)]
pub struct FwImage<'a> {
    /// Which image this is.
    pub kind: ImageKind,
    /// Physical address the monitor copies it to.
    pub load: u64,
    /// Signer id the monitor measures it with.
    pub signer_id: [u8; 32],
    /// The flat binary.
    pub bytes: &'a [u8],
}

fn align_up(x: usize, a: usize) -> usize {
    x.div_ceil(a) * a
}

/// Packs the monitor and `images` into the 64 MiB flash image: monitor at 0,
/// the table at [`TABLE_OFFSET`], each image 4 KiB aligned after the table,
/// in the order given, zero padding everywhere else.
pub fn pack_firmware(monitor: &[u8], images: &[FwImage<'_>]) -> Result<Vec<u8>> {
    ensure!(!monitor.is_empty(), "the monitor image is empty");
    ensure!(
        monitor.len() <= TABLE_OFFSET,
        "the monitor image is {} bytes; at most {TABLE_OFFSET:#x} fit below the image table",
        monitor.len()
    );
    let mut flash = vec![0u8; FLASH_SIZE];
    flash[..monitor.len()].copy_from_slice(monitor);

    let count = u32::try_from(images.len()).context("too many images")?;
    let mut table = Vec::with_capacity(TABLE_HEADER_LEN + images.len() * TABLE_ENTRY_LEN);
    table.extend_from_slice(&TABLE_MAGIC);
    table.extend_from_slice(&count.to_le_bytes());
    table.extend_from_slice(&0u32.to_le_bytes());
    let mut offset = align_up(
        TABLE_OFFSET + TABLE_HEADER_LEN + images.len() * TABLE_ENTRY_LEN,
        IMAGE_ALIGN,
    );
    for img in images {
        ensure!(!img.bytes.is_empty(), "the {:?} image is empty", img.kind);
        let max = match img.kind {
            ImageKind::Rmm => RMM_MAX,
            ImageKind::NsHost => NS_HOST_MAX,
        };
        ensure!(
            img.bytes.len() <= max,
            "the {:?} image is {} bytes, more than its {max:#x}-byte region",
            img.kind,
            img.bytes.len()
        );
        let end = offset + img.bytes.len();
        ensure!(
            end <= FLASH_SIZE,
            "the images do not fit in {FLASH_SIZE:#x} bytes of flash"
        );
        flash[offset..end].copy_from_slice(img.bytes);
        table.extend_from_slice(&(img.kind as u32).to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
        table.extend_from_slice(&(offset as u64).to_le_bytes());
        table.extend_from_slice(&(img.bytes.len() as u64).to_le_bytes());
        table.extend_from_slice(&img.load.to_le_bytes());
        table.extend_from_slice(&img.signer_id);
        offset = align_up(end, IMAGE_ALIGN);
    }
    flash[TABLE_OFFSET..TABLE_OFFSET + table.len()].copy_from_slice(&table);
    Ok(flash)
}

// ---------------------------------------------------------------------------
// Prerequisites.

/// The rustup target the contract builds for.
pub const TARGET: &str = "aarch64-unknown-none-softfloat";
/// Where Debian's rust-web-src puts the library sources `-Zbuild-std` needs.
const DEBIAN_RUST_SRC: &str = "/usr/lib/rustlib/src/rust/library";
const QEMU: &str = "qemu-system-aarch64";
const OBJCOPY: &str = "aarch64-linux-gnu-objcopy";

/// How the bare-metal crates are compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toolchain {
    /// rustup's prebuilt `aarch64-unknown-none-softfloat` target.
    Rustup,
    /// Debian's rustc-web/cargo-web with `-Zbuild-std` over rust-web-src.
    Debian,
}

impl Toolchain {
    /// `cargo build` for one firmware crate, run in its directory (so its
    /// own `.cargo/config.toml`, if any, applies), output in `target_dir`.
    fn build_command(self, crate_dir: &Path, target_dir: &Path) -> Command {
        let mut cmd = match self {
            Toolchain::Rustup => Command::new("cargo"),
            Toolchain::Debian => {
                let mut c = Command::new("/usr/bin/cargo");
                c.env("RUSTC", "/usr/bin/rustc")
                    .env("RUSTC_BOOTSTRAP", "1")
                    .env_remove("RUSTUP_TOOLCHAIN");
                c
            }
        };
        // Whatever the outer `cargo xtask` set up is for the host build.
        for v in [
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
        ] {
            cmd.env_remove(v);
        }
        if self == Toolchain::Rustup {
            cmd.env_remove("RUSTC");
        }
        cmd.current_dir(crate_dir)
            .args(["build", "--release", "--target", TARGET, "--target-dir"])
            .arg(target_dir);
        if self == Toolchain::Debian {
            cmd.args([
                "-Zbuild-std=core,alloc,compiler_builtins",
                "-Zbuild-std-features=compiler-builtins-mem",
            ]);
        }
        cmd
    }
}

fn on_path(prog: &str) -> Option<PathBuf> {
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(prog))
            .find(|p| p.is_file())
    })
}

fn output_of(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn rustup_has_target() -> bool {
    output_of(Command::new("rustup").args(["target", "list", "--installed"]))
        .is_some_and(|s| s.lines().any(|l| l.trim() == TARGET))
}

fn debian_toolchain_present() -> bool {
    Path::new("/usr/bin/rustc").is_file()
        && Path::new("/usr/bin/cargo").is_file()
        && Path::new(DEBIAN_RUST_SRC).join("core").is_dir()
}

/// Which toolchain builds the images, if any is installed: rustup's target
/// first, else Debian's.
pub fn detect_toolchain() -> Option<Toolchain> {
    if rustup_has_target() {
        Some(Toolchain::Rustup)
    } else if debian_toolchain_present() {
        Some(Toolchain::Debian)
    } else {
        None
    }
}

/// `(major, minor)` from `qemu-system-aarch64 --version`.
pub fn parse_qemu_version(s: &str) -> Option<(u32, u32)> {
    let rest = s.split("version ").nth(1)?;
    let mut it = rest.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Whether this QEMU accepts `-cpu max,x-rme=on` on the secure `virt`
/// machine: starts it paused and quits through the monitor.
fn qemu_has_rme(qemu: &Path) -> Result<bool> {
    let mut child = Command::new(qemu)
        .args([
            "-M",
            "virt,secure=on,virtualization=on,gic-version=3",
            "-cpu",
            "max,x-rme=on",
            "-display",
            "none",
            "-S",
            "-monitor",
            "stdio",
            "-serial",
            "none",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("running {}", qemu.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // QEMU may already have exited on a bad property: ignore EPIPE.
        let _ = stdin.write_all(b"quit\n");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(st.success());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{} did not answer the RME probe in 20 s", qemu.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_root() -> bool {
    output_of(Command::new("id").arg("-u")).is_some_and(|s| s.trim() == "0")
}

fn debian_codename() -> Option<String> {
    let s = std::fs::read_to_string("/etc/os-release").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_owned())
}

const BACKPORTS_LIST: &str = "/etc/apt/sources.list.d/backports.list";
const BACKPORTS_LINE: &str = "deb http://deb.debian.org/debian bookworm-backports main";
const TOOLCHAIN_PACKAGES: [&str; 5] = [
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "rust-web-llvm",
    "gcc-aarch64-linux-gnu",
];

fn qemu_install_commands() -> String {
    format!(
        "    echo '{BACKPORTS_LINE}' > {BACKPORTS_LIST}\n    apt-get update\n    \
         apt-get install -y -t bookworm-backports qemu-system-arm"
    )
}

fn toolchain_install_commands() -> String {
    format!(
        "    apt-get install -y {}\n  (or: rustup target add {TARGET})",
        TOOLCHAIN_PACKAGES.join(" ")
    )
}

fn run_checked(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {cmd:?}");
    let st = cmd
        .status()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    ensure!(st.success(), "{:?} failed ({st})", cmd.get_program());
    Ok(())
}

fn apt_install(packages: &[&str], backports: bool) -> Result<()> {
    if backports {
        let have = std::fs::read_to_string(BACKPORTS_LIST)
            .is_ok_and(|s| s.lines().any(|l| l.trim() == BACKPORTS_LINE));
        if !have {
            let mut s = std::fs::read_to_string(BACKPORTS_LIST).unwrap_or_default();
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
            s.push_str(BACKPORTS_LINE);
            s.push('\n');
            std::fs::write(BACKPORTS_LIST, s)
                .with_context(|| format!("writing {BACKPORTS_LIST}"))?;
        }
    }
    run_checked(Command::new("apt-get").arg("update"))?;
    let mut cmd = Command::new("apt-get");
    cmd.env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y"]);
    if backports {
        cmd.args(["-t", "bookworm-backports"]);
    }
    run_checked(cmd.args(packages))
}

/// Debian's `/usr/bin/rust-lld` (from rust-web-llvm) is a symlink to a
/// versioned `lld-NN` that no package pulls in; the images cannot link
/// without it. Returns the package that provides the link's target when
/// the link dangles.
fn missing_lld_package(link: &Path) -> Option<String> {
    let target = std::fs::read_link(link).ok()?;
    let resolved = if target.is_absolute() {
        target.clone()
    } else {
        link.parent()?.join(&target)
    };
    if resolved.exists() {
        return None;
    }
    let name = target.file_name()?.to_str()?.to_owned();
    let version = name.strip_prefix("lld-")?;
    (!version.is_empty() && version.chars().all(|c| c.is_ascii_digit())).then_some(name)
}

fn ensure_debian_linker(can_install: bool) -> Result<()> {
    let link = Path::new("/usr/bin/rust-lld");
    let Some(package) = missing_lld_package(link) else {
        return Ok(());
    };
    if can_install {
        eprintln!(
            "xtask: installing {package} (the linker {} points to)",
            link.display()
        );
        apt_install(&[&package], false)?;
        ensure!(
            missing_lld_package(link).is_none(),
            "{} still dangles after installing {package}",
            link.display()
        );
        Ok(())
    } else {
        bail!(
            "{} points to a missing linker; as root run:\n    apt-get install -y {package}",
            link.display()
        )
    }
}

/// What the run needs from the host.
#[derive(Debug)]
pub struct Prerequisites {
    /// The QEMU binary (only when asked for).
    pub qemu: Option<PathBuf>,
    /// The cross toolchain.
    pub toolchain: Toolchain,
}

/// Finds (installing when root on Debian bookworm) the cross toolchain,
/// objcopy and, if `need_qemu`, a QEMU with RME; fails with the exact
/// commands to run otherwise.
pub fn ensure_prerequisites(need_qemu: bool) -> Result<Prerequisites> {
    let can_install = is_root() && debian_codename().as_deref() == Some("bookworm");

    let mut toolchain = detect_toolchain();
    if toolchain.is_none() || on_path(OBJCOPY).is_none() {
        if can_install {
            eprintln!("xtask: installing the cross toolchain from Debian");
            apt_install(&TOOLCHAIN_PACKAGES, false)?;
            toolchain = detect_toolchain();
        } else {
            bail!(
                "no cross toolchain for {TARGET} (or no {OBJCOPY}); as root on Debian bookworm run:\n{}",
                toolchain_install_commands()
            );
        }
    }
    let toolchain = toolchain.ok_or_else(|| {
        anyhow!(
            "the cross toolchain is still missing after installing it: need rustup's {TARGET} \
             target, or /usr/bin/rustc, /usr/bin/cargo and {DEBIAN_RUST_SRC}"
        )
    })?;
    ensure!(
        on_path(OBJCOPY).is_some(),
        "{OBJCOPY} is still missing (package binutils-aarch64-linux-gnu)"
    );
    if matches!(toolchain, Toolchain::Debian) {
        ensure_debian_linker(can_install)?;
    }

    let qemu = if need_qemu {
        let mut qemu = on_path(QEMU);
        let old = match &qemu {
            Some(q) => !qemu_has_rme(q)?,
            None => false,
        };
        if qemu.is_none() || old {
            if can_install {
                eprintln!("xtask: installing qemu-system-arm from bookworm-backports");
                apt_install(&["qemu-system-arm"], true)?;
                qemu = on_path(QEMU);
            } else {
                bail!(
                    "{}; as root on Debian bookworm run:\n{}",
                    if old {
                        format!("{QEMU} has no RME (`-cpu max,x-rme=on`; needs QEMU >= 8.2)")
                    } else {
                        format!("{QEMU} is not installed")
                    },
                    qemu_install_commands()
                );
            }
        }
        let qemu = qemu.ok_or_else(|| anyhow!("{QEMU} is still missing after installing it"))?;
        if !qemu_has_rme(&qemu)? {
            let version = output_of(Command::new(&qemu).arg("--version")).unwrap_or_default();
            let why = match parse_qemu_version(&version) {
                Some((major, minor)) if (major, minor) < (8, 2) => {
                    format!("QEMU {major}.{minor} is too old for RME")
                }
                Some((major, minor)) => format!("this QEMU {major}.{minor} build lacks RME"),
                None => "unknown QEMU version".to_owned(),
            };
            bail!(
                "{} rejects `-cpu max,x-rme=on`: {why} (needs >= 8.2; bookworm-backports has \
                 10.0)",
                qemu.display(),
            );
        }
        Some(qemu)
    } else {
        None
    };
    Ok(Prerequisites { qemu, toolchain })
}

// ---------------------------------------------------------------------------
// Building the images.

/// The firmware crates, in build order.
pub const PAYLOAD_DIR: &str = "realm-userland/payload";
/// The normal-world host.
pub const NS_HOST_DIR: &str = "normal-world/ns-host";
/// The RMM.
pub const RMM_DIR: &str = "kernel/rmm";
/// The EL3 monitor.
pub const MONITOR_DIR: &str = "kernel/monitor";
/// The realm description ns-host builds.
pub const REALM_TOML: &str = "images/examples/qemu-realm.toml";

/// The realm id the vendor signs into the QEMU realm's metadata block.
pub const REALM_ID: &str = "com.atoll.qemu-realm";
/// Its security version number.
pub const REALM_SVN: u64 = 1;
/// Its release version.
pub const REALM_VERSION: &str = "0.1.0";

/// Paths of the flat binaries, all under `target/qemu`.
#[derive(Debug)]
pub struct Images {
    /// The EL3 monitor.
    pub monitor: PathBuf,
    /// The RMM.
    pub rmm: PathBuf,
    /// The NS host (realm plan and payload embedded).
    pub ns_host: PathBuf,
    /// The realm payload.
    pub payload: PathBuf,
    /// The packed flash image.
    pub firmware: PathBuf,
    /// The RIM `atoll measure` predicts for the realm, hex.
    pub expected_rim: String,
    /// The realm id signed into `target/qemu/realm.metadata`.
    pub realm_id: String,
}

/// `target/qemu` in the workspace, whatever `CARGO_TARGET_DIR` says: the
/// firmware crates find the realm plan there by a relative path.
pub fn out_dir(root: &Path) -> PathBuf {
    root.join("target/qemu")
}

pub(crate) fn host_target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"))
}

/// The one binary target of a firmware crate.
fn bin_name(crate_dir: &Path) -> Result<String> {
    let out = Command::new("cargo")
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(crate_dir)
        .output()
        .context("running cargo metadata")?;
    ensure!(
        out.status.success(),
        "cargo metadata in {}: {}",
        crate_dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let bins: Vec<String> = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
        })
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    match bins.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("{} has no binary target", crate_dir.display()),
        more => bail!(
            "{} has several binary targets ({}); expected one",
            crate_dir.display(),
            more.join(", ")
        ),
    }
}

/// Builds one firmware crate and converts its ELF to `out/<name>.bin`.
fn build_flat(root: &Path, tc: Toolchain, dir: &str, name: &str) -> Result<PathBuf> {
    let crate_dir = root.join(dir);
    let out = out_dir(root);
    let target_dir = out.join("cargo");
    let bin = bin_name(&crate_dir)?;
    let mut cmd = tc.build_command(&crate_dir, &target_dir);
    eprintln!("xtask: building {dir} ({tc:?} toolchain)");
    let st = cmd.status().context("running cargo")?;
    ensure!(st.success(), "building {dir} failed ({st})");
    let elf = target_dir.join(TARGET).join("release").join(&bin);
    let flat = out.join(format!("{name}.bin"));
    run_checked(
        Command::new(OBJCOPY)
            .args(["-O", "binary"])
            .arg(&elf)
            .arg(&flat),
    )?;
    let len = std::fs::metadata(&flat)?.len();
    ensure!(len > 0, "{} is empty after objcopy", flat.display());
    eprintln!("xtask: {} ({len} bytes)", flat.display());
    Ok(flat)
}

/// Measures the realm description as `atoll measure` does and writes its
/// build plan, serialised by `atoll_realm_description::blob`, to
/// `target/qemu/realm.plan`, which ns-host embeds (`include_bytes!` in
/// normal-world/ns-host/src/main.rs). The file is only rewritten when its
/// bytes change, so ns-host is not rebuilt for nothing. Returns the RIM in
/// hex.
pub fn write_realm_plan(root: &Path) -> Result<String> {
    let path = root.join(REALM_TOML);
    let desc = atoll_realm_description::RealmDescription::load(&path)
        .with_context(|| format!("loading {}", path.display()))?;
    let plan = atoll_realm_description::BuildPlan::new(&desc)
        .with_context(|| format!("{}: invalid build plan", path.display()))?;
    let m = atoll_measure::measure(&plan).context("measuring the realm's build plan")?;
    let blob = atoll_realm_description::blob::encode(&plan)
        .map_err(|e| anyhow!("serialising the realm's build plan: {e}"))?;
    let out = out_dir(root).join("realm.plan");
    if std::fs::read(&out).ok().as_deref() != Some(blob.as_slice()) {
        std::fs::write(&out, &blob).with_context(|| format!("writing {}", out.display()))?;
    }
    eprintln!(
        "xtask: {} ({} bytes), RIM {}",
        out.display(),
        blob.len(),
        m.rim_hex()
    );
    Ok(m.rim_hex())
}

/// The `atoll` command of this workspace, built.
fn atoll_cli(root: &Path) -> Result<PathBuf> {
    cargo(root, &["build", "-p", "atoll-cli", "--bin", "atoll"])?;
    Ok(host_target_dir(root).join("debug").join("atoll"))
}

/// Signs the realm's metadata as its vendor would: creates the P-384
/// vendor key `target/qemu/vendor.pem` (mode 0600) once with `atoll
/// metadata keygen`, then `atoll metadata create` for [`REALM_ID`],
/// [`REALM_SVN`], [`REALM_VERSION`] and the RIM and hash algorithm measured
/// from [`REALM_TOML`], into `target/qemu/realm.metadata` (432 bytes, next
/// to `realm.plan`; ns-host embeds it). Checks that the block names
/// `expected_rim`. The file is only rewritten when its bytes change
/// (signatures are deterministic, RFC 6979). Returns the realm id.
pub fn write_realm_metadata(root: &Path, expected_rim: &str) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;

    let out = out_dir(root);
    let atoll = atoll_cli(root)?;
    let key = out.join("vendor.pem");
    if !key.is_file() {
        run_checked(
            Command::new(&atoll)
                .args(["metadata", "keygen", "--force", "--output"])
                .arg(&key),
        )?;
    }
    let mode = std::fs::metadata(&key)?.permissions().mode() & 0o777;
    if mode != 0o600 {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("chmod 0600 {}", key.display()))?;
    }
    let config = out.join("realm-metadata.yaml");
    std::fs::write(
        &config,
        format!("realm_id: \"{REALM_ID}\"\nversion: \"{REALM_VERSION}\"\nsvn: {REALM_SVN}\n"),
    )
    .with_context(|| format!("writing {}", config.display()))?;
    let fresh = out.join("realm.metadata.new");
    let _ = std::fs::remove_file(&fresh);
    let o = Command::new(&atoll)
        .args(["metadata", "create", "--config"])
        .arg(&config)
        .arg("--key")
        .arg(&key)
        .arg("--rim-from")
        .arg(root.join(REALM_TOML))
        .arg("--output")
        .arg(&fresh)
        .output()
        .context("running atoll metadata create")?;
    ensure!(
        o.status.success(),
        "atoll metadata create failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let block = std::fs::read(&fresh).with_context(|| format!("reading {}", fresh.display()))?;
    let _ = std::fs::remove_file(&fresh);
    ensure!(
        block.len() == 432,
        "the metadata block is {} bytes, not 432",
        block.len()
    );
    // Offsets of ipc_schema::islet::RealmMetadata: realm_id @ 0x08 (128
    // bytes, NUL-padded), rim @ 0x88 (64 bytes, zero-padded).
    let id_field = &block[0x08..0x88];
    let id_len = id_field.iter().position(|&b| b == 0).unwrap_or(128);
    ensure!(
        &id_field[..id_len] == REALM_ID.as_bytes(),
        "the metadata block names realm {:?}, not {REALM_ID:?}",
        String::from_utf8_lossy(&id_field[..id_len])
    );
    let rim = hex::decode(expected_rim)?;
    ensure!(
        rim_matches(&rim, &block[0x88..0xC8]),
        "the metadata block's RIM {} is not the measured {expected_rim}",
        hex::encode(&block[0x88..0xC8])
    );
    let path = out.join("realm.metadata");
    if std::fs::read(&path).ok().as_deref() != Some(block.as_slice()) {
        std::fs::write(&path, &block).with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!(
        "xtask: {} (realm id {REALM_ID}, svn {REALM_SVN}, version {REALM_VERSION}, signed with {})",
        path.display(),
        key.display()
    );
    Ok(REALM_ID.to_owned())
}

/// Builds whatever firmware crates exist (payload, realm plan, ns-host,
/// RMM, monitor) and packs `target/qemu/atoll-fw.bin`; fails naming every
/// piece that is missing.
pub fn build_images(root: &Path, tc: Toolchain) -> Result<Images> {
    let out = out_dir(root);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut missing: Vec<String> = Vec::new();
    let exists = |dir: &str| root.join(dir).join("Cargo.toml").is_file();
    let build = |dir: &str, name: &str, missing: &mut Vec<String>| -> Result<Option<PathBuf>> {
        if exists(dir) {
            build_flat(root, tc, dir, name).map(Some)
        } else {
            missing.push(format!("{dir} (no Cargo.toml yet)"));
            Ok(None)
        }
    };

    let payload = build(PAYLOAD_DIR, "payload", &mut missing)?;
    let mut rim = None;
    let mut realm_id = None;
    if payload.is_some() {
        if root.join(REALM_TOML).is_file() {
            let r = write_realm_plan(root)?;
            realm_id = Some(write_realm_metadata(root, &r)?);
            rim = Some(r);
        } else {
            missing.push(format!("{REALM_TOML} (does not exist yet)"));
        }
    } else {
        missing.push(format!(
            "the realm build plan for {REALM_TOML} (needs the payload first)"
        ));
    }
    let ns_host = if missing.is_empty() {
        build(NS_HOST_DIR, "ns-host", &mut missing)?
    } else {
        if exists(NS_HOST_DIR) {
            missing.push(format!(
                "{NS_HOST_DIR}: not built, it embeds the payload and plan above"
            ));
        } else {
            missing.push(format!("{NS_HOST_DIR} (no Cargo.toml yet)"));
        }
        None
    };
    let rmm = build(RMM_DIR, "rmm", &mut missing)?;
    let monitor = build(MONITOR_DIR, "monitor", &mut missing)?;

    match (monitor, rmm, ns_host, payload, rim.zip(realm_id)) {
        (
            Some(monitor),
            Some(rmm),
            Some(ns_host),
            Some(payload),
            Some((expected_rim, realm_id)),
        ) if missing.is_empty() => {
            let firmware = out.join("atoll-fw.bin");
            let mon = std::fs::read(&monitor)?;
            let rmm_bytes = std::fs::read(&rmm)?;
            let ns_bytes = std::fs::read(&ns_host)?;
            let flash = pack_firmware(
                &mon,
                &[
                    FwImage {
                        kind: ImageKind::Rmm,
                        load: RMM_LOAD,
                        signer_id: RMM_SIGNER_ID,
                        bytes: &rmm_bytes,
                    },
                    FwImage {
                        kind: ImageKind::NsHost,
                        load: NS_HOST_LOAD,
                        signer_id: NS_HOST_SIGNER_ID,
                        bytes: &ns_bytes,
                    },
                ],
            )?;
            std::fs::write(&firmware, flash)
                .with_context(|| format!("writing {}", firmware.display()))?;
            eprintln!("xtask: packed {}", firmware.display());
            Ok(Images {
                monitor,
                rmm,
                ns_host,
                payload,
                firmware,
                expected_rim,
                realm_id,
            })
        }
        _ => bail!(
            "cannot build atoll-fw.bin yet; missing:\n  - {}",
            missing.join("\n  - ")
        ),
    }
}

// ---------------------------------------------------------------------------
// Running the machine.

/// The contract's QEMU arguments for `firmware` with the HES on `port`.
pub fn qemu_args(firmware: &Path, port: u16) -> Vec<String> {
    [
        "-M",
        "virt,secure=on,virtualization=on,gic-version=3,acpi=off",
        "-cpu",
        "max,x-rme=on,sme=off,sve=off,pauth-impdef=on",
        "-smp",
        "1",
        "-m",
        "2G",
        "-nographic",
        "-bios",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        firmware.display().to_string(),
        "-serial".into(),
        "mon:stdio".into(),
        "-chardev".into(),
        format!("socket,id=hes,host=127.0.0.1,port={port}"),
        "-serial".into(),
        "chardev:hes".into(),
    ])
    .collect()
}

/// A command line as one shell line (arguments with odd characters quoted).
pub fn shell_line(prog: &str, args: &[String]) -> String {
    std::iter::once(prog.to_owned())
        .chain(args.iter().map(|a| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_=.,/:@+".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        }))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Makes a child get SIGKILL when xtask dies, whatever kills it.
fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: the closure runs in the forked child before exec and only
    // calls prctl, which is async-signal-safe and touches no parent state.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// A child process killed (and reaped) when dropped.
struct Guard {
    what: &'static str,
    child: Option<Child>,
}

impl Guard {
    fn new(what: &'static str, child: Child) -> Self {
        Self {
            what,
            child: Some(child),
        }
    }

    fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        match &mut self.child {
            Some(c) => Ok(c.try_wait()?),
            None => Ok(None),
        }
    }

    /// SIGTERM first (QEMU restores the terminal on it), SIGKILL after 2 s.
    fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        if let Ok(pid) = i32::try_from(c.id()) {
            // SAFETY: kill(2) on our own unreaped child's pid: it cannot
            // have been recycled for another process.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("xtask: {} did not stop on SIGTERM; killing it", self.what);
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running `atoll-hes` serving TCP on `port`.
pub struct Hes {
    guard: Guard,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
}

impl Hes {
    /// Starts `hes_bin` on a free port with `provision` as its device secrets
    /// and its log in `log`, and waits until it accepts connections.
    pub fn start(hes_bin: &Path, provision: &Path, socket: &Path, log: &Path) -> Result<Self> {
        let mut last_err = None;
        for _ in 0..3 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
                .local_addr()?
                .port();
            let log_file = std::fs::File::create(log)
                .with_context(|| format!("creating {}", log.display()))?;
            let child = die_with_parent(
                Command::new(hes_bin)
                    .arg("--tcp")
                    .arg(port.to_string())
                    .arg("--provision")
                    .arg(provision)
                    .arg("--socket")
                    .arg(socket)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(log_file),
            )
            .spawn()
            .with_context(|| format!("starting {}", hes_bin.display()))?;
            let mut hes = Hes {
                guard: Guard::new("atoll-hes", child),
                port,
            };
            match hes.wait_listening(Duration::from_secs(10)) {
                Ok(()) => return Ok(hes),
                Err(e) => last_err = Some(e),
            }
        }
        let log_text = std::fs::read_to_string(log).unwrap_or_default();
        Err(last_err
            .unwrap_or_else(|| anyhow!("atoll-hes did not start"))
            .context(format!("atoll-hes log ({}):\n{log_text}", log.display())))
    }

    fn wait_listening(&mut self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.guard.try_wait()? {
                bail!("atoll-hes exited ({st}) before listening");
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "atoll-hes is not listening on port {} after {within:?}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The CPAK public key (SEC1 uncompressed) over the TCP link.
    pub fn cpak(&self) -> Result<[u8; 97]> {
        let mut link = atoll_hes_link::HesLink::connect_tcp((Ipv4Addr::LOCALHOST, self.port))
            .with_context(|| format!("connecting to the HES on port {}", self.port))?;
        link.cpak_public_key()
            .map_err(|e| anyhow!("GetCpakPublicKey from the HES: {e}"))
    }

    /// Stops it (also done when dropped).
    pub fn stop(&mut self) {
        self.guard.stop();
    }
}

/// Why the console loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// `ATOLL-DONE` was printed (QEMU then stopped or was stopped).
    Done,
    /// QEMU exited by itself before `ATOLL-DONE`.
    Exited(String),
    /// Nothing finished within the timeout.
    Timeout,
    /// SIGINT or SIGTERM.
    Interrupted,
}

/// What a run produced.
#[derive(Debug)]
pub struct RunResult {
    /// Why it stopped.
    pub stop: Stop,
    /// Every console line (UART0 and QEMU's own messages).
    pub lines: Vec<String>,
    /// From QEMU start to the `ATOLL-TOKEN` line.
    pub to_first_token: Option<Duration>,
    /// From QEMU start to the end of the run.
    pub elapsed: Duration,
}

/// How to run QEMU.
pub struct RunOptions<'a> {
    /// The QEMU binary.
    pub qemu: &'a Path,
    /// Its arguments.
    pub args: Vec<String>,
    /// Give up after this long.
    pub timeout: Duration,
    /// Copy the console to our stdout as it arrives (and give QEMU our
    /// stdin), or only capture it.
    pub interactive: bool,
    /// Set by a signal handler: stop now.
    pub interrupted: Arc<AtomicBool>,
}

/// After `ATOLL-DONE` the host powers off; QEMU gets this long to exit.
const POWER_OFF_GRACE: Duration = Duration::from_secs(5);

/// Runs QEMU until `ATOLL-DONE`, its exit, the timeout or a signal, and
/// always stops it before returning.
pub fn run_machine(opts: &RunOptions<'_>) -> Result<RunResult> {
    let mut cmd = Command::new(opts.qemu);
    cmd.args(&opts.args)
        .stdin(if opts.interactive {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = die_with_parent(&mut cmd)
        .spawn()
        .with_context(|| format!("starting {}", opts.qemu.display()))?;
    let stdout = child.stdout.take().context("QEMU stdout")?;
    let stderr = child.stderr.take().context("QEMU stderr")?;
    let mut qemu = Guard::new("QEMU", child);

    let (tx, rx) = mpsc::channel::<String>();
    let echo = opts.interactive;
    let tx2 = tx.clone();
    std::thread::spawn(move || pump(stdout, echo, &tx));
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if echo {
                eprintln!("{line}");
            }
            if tx2.send(format!("qemu: {line}")).is_err() {
                break;
            }
        }
    });

    let mut lines = Vec::new();
    let mut to_first_token = None;
    let mut done_at: Option<Instant> = None;
    let stop = loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                if to_first_token.is_none() && line.starts_with("ATOLL-TOKEN ") {
                    to_first_token = Some(start.elapsed());
                }
                if line.trim_end() == "ATOLL-DONE" && done_at.is_none() {
                    done_at = Some(Instant::now());
                }
                lines.push(line);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Both pipes closed: QEMU is gone or going.
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if let Some(st) = qemu.try_wait()? {
            // Drain what is still in flight.
            while let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
                if to_first_token.is_none() && line.starts_with("ATOLL-TOKEN ") {
                    to_first_token = Some(start.elapsed());
                }
                if line.trim_end() == "ATOLL-DONE" {
                    done_at.get_or_insert_with(Instant::now);
                }
                lines.push(line);
            }
            break if done_at.is_some() {
                Stop::Done
            } else {
                Stop::Exited(st.to_string())
            };
        }
        if opts.interrupted.load(Ordering::Relaxed) {
            break Stop::Interrupted;
        }
        if let Some(t) = done_at {
            if t.elapsed() > POWER_OFF_GRACE {
                break Stop::Done;
            }
        } else if start.elapsed() > opts.timeout {
            break Stop::Timeout;
        }
    };
    qemu.stop();
    Ok(RunResult {
        stop,
        lines,
        to_first_token,
        elapsed: start.elapsed(),
    })
}

/// Reads the console byte by byte (a prompt without a newline still shows),
/// echoing it if asked, and sends complete lines.
fn pump(mut r: impl Read, echo: bool, tx: &mpsc::Sender<String>) {
    let mut buf = [0u8; 4096];
    let mut line = Vec::new();
    let mut out = std::io::stdout();
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if echo {
            let _ = out.write_all(&buf[..n]);
            let _ = out.flush();
        }
        for &b in &buf[..n] {
            match b {
                b'\n' => {
                    let s = String::from_utf8_lossy(&line)
                        .trim_end_matches('\r')
                        .to_owned();
                    line.clear();
                    if tx.send(s).is_err() {
                        return;
                    }
                }
                _ => line.push(b),
            }
        }
    }
    if !line.is_empty() {
        let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
    }
}

/// The last `n` lines, for an error message.
pub fn tail(lines: &[String], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------
// The check.

/// What ns-host reported on the console.
#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    /// The RIM the realm read.
    pub rim: Vec<u8>,
    /// The whole attestation token.
    pub token: Vec<u8>,
    /// The realm id the realm read from its metadata (`ATOLL-METADATA`).
    pub realm_id: Option<String>,
}

/// Finds exactly one `ATOLL-RIM` and one `ATOLL-TOKEN` line (before
/// `ATOLL-DONE`, which must be there too) and decodes their hex, and at
/// most one `ATOLL-METADATA <realm id>` line; an
/// `ATOLL-ERROR` line fails with what it says.
pub fn parse_console(lines: &[String]) -> Result<Report> {
    let mut rim = None;
    let mut token = None;
    let mut realm_id = None;
    let mut done = false;
    for line in lines {
        let line = line.trim_end();
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        let field = |k: &str| (key == k).then(|| value.trim());
        if let Some(h) = field("ATOLL-RIM") {
            ensure!(
                rim.is_none(),
                "the console has more than one ATOLL-RIM line"
            );
            ensure!(!done, "ATOLL-RIM after ATOLL-DONE");
            rim = Some(hex::decode(h).context("ATOLL-RIM is not hex")?);
        } else if let Some(h) = field("ATOLL-TOKEN") {
            ensure!(
                token.is_none(),
                "the console has more than one ATOLL-TOKEN line"
            );
            ensure!(!done, "ATOLL-TOKEN after ATOLL-DONE");
            token = Some(hex::decode(h).context("ATOLL-TOKEN is not hex")?);
        } else if let Some(id) = field("ATOLL-METADATA") {
            ensure!(
                realm_id.is_none(),
                "the console has more than one ATOLL-METADATA line"
            );
            ensure!(!done, "ATOLL-METADATA after ATOLL-DONE");
            realm_id = Some(id.to_owned());
        } else if let Some(what) = field("ATOLL-ERROR") {
            bail!("ns-host reported ATOLL-ERROR {what}");
        } else if line == "ATOLL-DONE" {
            done = true;
        }
    }
    let rim = rim.context("no ATOLL-RIM line on the console")?;
    let token = token.context("no ATOLL-TOKEN line on the console")?;
    ensure!(done, "no ATOLL-DONE line on the console");
    ensure!(!rim.is_empty(), "ATOLL-RIM is empty");
    ensure!(!token.is_empty(), "ATOLL-TOKEN is empty");
    Ok(Report {
        rim,
        token,
        realm_id,
    })
}

/// Whether the RIM the realm read is `expected` (RSI_MEASUREMENT_READ
/// returns the 64-byte slot: the digest then zeros).
pub fn rim_matches(expected: &[u8], got: &[u8]) -> bool {
    got.len() >= expected.len()
        && got[..expected.len()] == *expected
        && got[expected.len()..].iter().all(|&b| b == 0)
}

/// A P-384 SEC1 uncompressed point as a JWK.
pub fn cpak_jwk(point: &[u8; 97]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        r#"{{"kty":"EC","crv":"P-384","x":"{}","y":"{}"}}"#,
        b64.encode(&point[1..49]),
        b64.encode(&point[49..97])
    )
}

/// Builds the host tools (`atoll-hes`, `atoll`) and returns their paths.
fn host_tools(root: &Path) -> Result<(PathBuf, PathBuf)> {
    cargo(
        root,
        &[
            "build",
            "-p",
            "atoll-hes",
            "--bin",
            "atoll-hes",
            "-p",
            "atoll-cli",
            "--bin",
            "atoll",
        ],
    )?;
    let dir = host_target_dir(root).join("debug");
    Ok((dir.join("atoll-hes"), dir.join("atoll")))
}

/// Installs SIGINT/SIGTERM handlers that set the returned flag.
fn signal_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&flag))
            .context("installing a signal handler")?;
    }
    Ok(flag)
}

/// The `--check` verdict on a finished run; prints each finding.
fn check(root: &Path, images: &Images, hes: &Hes, atoll: &Path, run: &RunResult) -> Result<()> {
    let out = out_dir(root);
    let report = parse_console(&run.lines)
        .with_context(|| format!("last console lines:\n{}", tail(&run.lines, 30)))?;
    let mut failures = Vec::new();

    let expected = hex::decode(&images.expected_rim)?;
    if rim_matches(&expected, &report.rim) {
        println!("RIM match ({})", images.expected_rim);
    } else {
        println!(
            "RIM MISMATCH (expected {}, got {})",
            images.expected_rim,
            hex::encode(&report.rim)
        );
        failures.push("RIM mismatch");
    }

    match report.realm_id.as_deref() {
        Some(id) if id == images.realm_id => {
            println!("realm id match ({id}, from the signed metadata)");
        }
        Some(id) => {
            println!(
                "REALM ID MISMATCH (signed {}, the realm read {id})",
                images.realm_id
            );
            failures.push("realm id mismatch");
        }
        None => {
            println!(
                "NO ATOLL-METADATA line (signed realm id {})",
                images.realm_id
            );
            failures.push("no realm id reported");
        }
    }

    let cpak = hes.cpak()?;
    let jwk = out.join("cpak.jwk");
    let token = out.join("token.cbor");
    std::fs::write(&jwk, cpak_jwk(&cpak))?;
    std::fs::write(&token, &report.token)?;
    let v = Command::new(atoll)
        .args(["token", "verify"])
        .arg(&token)
        .arg("--cpak")
        .arg(&jwk)
        .output()
        .context("running atoll token verify")?;
    print!("{}", String::from_utf8_lossy(&v.stdout));
    eprint!("{}", String::from_utf8_lossy(&v.stderr));
    if v.status.success() {
        println!("token verification: OK (against the HES's CPAK)");
    } else {
        println!("token verification: FAILED ({})", v.status);
        failures.push("token verification failed");
    }
    ensure!(failures.is_empty(), "check failed: {}", failures.join(", "));
    Ok(())
}

/// `cargo xtask qemu [--check] [--timeout SECS]`.
pub fn run(root: &Path, check_mode: bool, timeout: u64) -> Result<()> {
    let pre = ensure_prerequisites(true)?;
    let qemu_bin = pre.qemu.clone().context("QEMU")?;
    let images = build_images(root, pre.toolchain)?;
    let (hes_bin, atoll) = host_tools(root)?;
    let out = out_dir(root);

    let interrupted = signal_flag()?;
    let mut hes = Hes::start(
        &hes_bin,
        &out.join("hes-provision.bin"),
        &out.join("hes.sock"),
        &out.join("hes.log"),
    )?;
    let args = qemu_args(&images.firmware, hes.port);
    std::fs::write(
        out.join("qemu-cmdline.txt"),
        shell_line(&qemu_bin.display().to_string(), &args) + "\n",
    )?;
    eprintln!(
        "xtask: HES on 127.0.0.1:{} (log {}); QEMU: {}",
        hes.port,
        out.join("hes.log").display(),
        out.join("qemu-cmdline.txt").display()
    );
    if !check_mode {
        eprintln!("xtask: console follows; Ctrl-A x quits QEMU");
    }
    let result = run_machine(&RunOptions {
        qemu: &qemu_bin,
        args,
        timeout: Duration::from_secs(timeout),
        interactive: !check_mode,
        interrupted,
    })?;
    let outcome = match &result.stop {
        Stop::Done => Ok(()),
        Stop::Exited(st) => Err(anyhow!(
            "QEMU exited ({st}) before ATOLL-DONE; last console lines:\n{}",
            tail(&result.lines, 30)
        )),
        Stop::Timeout => Err(anyhow!(
            "timeout: no ATOLL-DONE after {timeout} s; last console lines:\n{}",
            tail(&result.lines, 30)
        )),
        Stop::Interrupted => Err(anyhow!("interrupted; QEMU and atoll-hes stopped")),
    };
    let console = out.join("console.log");
    std::fs::write(&console, result.lines.join("\n") + "\n")
        .with_context(|| format!("writing {}", console.display()))?;
    if let Some(t) = result.to_first_token {
        eprintln!("xtask: boot to ATOLL-TOKEN: {:.2} s", t.as_secs_f64());
    }
    eprintln!(
        "xtask: QEMU ran {:.2} s, {} console lines in {}",
        result.elapsed.as_secs_f64(),
        result.lines.len(),
        console.display()
    );
    let verdict = outcome.and_then(|()| {
        if check_mode {
            check(root, &images, &hes, &atoll, &result)
        } else {
            Ok(())
        }
    });
    hes.stop();
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], o: usize) -> u32 {
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], o: usize) -> u64 {
        u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
    }

    #[test]
    fn the_table_follows_the_contract() {
        let monitor = vec![0xAA; 0x1234];
        let rmm = vec![0xBB; 0x2001];
        let ns = vec![0xCC; 10];
        let flash = pack_firmware(
            &monitor,
            &[
                FwImage {
                    kind: ImageKind::Rmm,
                    load: RMM_LOAD,
                    signer_id: RMM_SIGNER_ID,
                    bytes: &rmm,
                },
                FwImage {
                    kind: ImageKind::NsHost,
                    load: NS_HOST_LOAD,
                    signer_id: NS_HOST_SIGNER_ID,
                    bytes: &ns,
                },
            ],
        )
        .unwrap();
        assert_eq!(flash.len(), 64 << 20);
        assert_eq!(&flash[..0x1234], &monitor[..]);
        assert!(flash[0x1234..0x10_0000].iter().all(|&b| b == 0));

        let t = 0x10_0000;
        assert_eq!(&flash[t..t + 8], b"ATOLLFW1");
        assert_eq!(u32_at(&flash, t + 8), 2);
        assert_eq!(u32_at(&flash, t + 12), 0);
        // Header 16 + 2 * 64 = 144 bytes, so images start at the next 4 KiB.
        let e0 = t + 16;
        assert_eq!(u32_at(&flash, e0), 1);
        assert_eq!(u32_at(&flash, e0 + 4), 0);
        assert_eq!(u64_at(&flash, e0 + 8), 0x10_1000);
        assert_eq!(u64_at(&flash, e0 + 16), 0x2001);
        assert_eq!(u64_at(&flash, e0 + 24), 0x4010_0000);
        assert_eq!(&flash[e0 + 32..e0 + 64], &[0x52; 32]);
        let e1 = e0 + 64;
        assert_eq!(u32_at(&flash, e1), 2);
        assert_eq!(u64_at(&flash, e1 + 8), 0x10_4000, "4 KiB after the RMM");
        assert_eq!(u64_at(&flash, e1 + 16), 10);
        assert_eq!(u64_at(&flash, e1 + 24), 0x6000_0000);
        assert_eq!(&flash[e1 + 32..e1 + 64], &[0x53; 32]);
        // "followed by nothing else"
        assert!(flash[e1 + 64..0x10_1000].iter().all(|&b| b == 0));
        assert_eq!(&flash[0x10_1000..0x10_3001], &rmm[..]);
        assert!(flash[0x10_3001..0x10_4000].iter().all(|&b| b == 0));
        assert_eq!(&flash[0x10_4000..0x10_400A], &ns[..]);
        assert!(flash[0x10_400A..].iter().all(|&b| b == 0));
    }

    #[test]
    fn an_empty_table_is_just_the_header() {
        let flash = pack_firmware(&[1, 2, 3, 4], &[]).unwrap();
        assert_eq!(&flash[0x10_0000..0x10_0008], b"ATOLLFW1");
        assert_eq!(u32_at(&flash, 0x10_0008), 0);
        assert!(flash[0x10_0010..].iter().all(|&b| b == 0));
    }

    #[test]
    fn oversized_or_empty_images_are_refused() {
        assert!(pack_firmware(&vec![0; TABLE_OFFSET], &[]).is_ok());
        let e = pack_firmware(&vec![0; TABLE_OFFSET + 1], &[]).unwrap_err();
        assert!(e.to_string().contains("below the image table"), "{e}");
        assert!(pack_firmware(&[], &[]).is_err());
        let big = vec![0; RMM_MAX + 1];
        let img = FwImage {
            kind: ImageKind::Rmm,
            load: RMM_LOAD,
            signer_id: [0; 32],
            bytes: &big,
        };
        assert!(pack_firmware(&[0], &[img]).is_err());
        let empty = FwImage { bytes: &[], ..img };
        assert!(pack_firmware(&[0], &[empty]).is_err());
        let big = vec![0; NS_HOST_MAX + 1];
        let ns = FwImage {
            kind: ImageKind::NsHost,
            load: NS_HOST_LOAD,
            signer_id: [0; 32],
            bytes: &big,
        };
        assert!(pack_firmware(&[0], &[ns]).is_err());
    }

    #[test]
    fn qemu_command_line_is_the_contracts() {
        let args = qemu_args(Path::new("target/qemu/atoll-fw.bin"), 4242);
        assert_eq!(
            shell_line("qemu-system-aarch64", &args),
            "qemu-system-aarch64 -M virt,secure=on,virtualization=on,gic-version=3,acpi=off \
             -cpu max,x-rme=on,sme=off,sve=off,pauth-impdef=on -smp 1 -m 2G -nographic \
             -bios target/qemu/atoll-fw.bin -serial mon:stdio \
             -chardev socket,id=hes,host=127.0.0.1,port=4242 -serial chardev:hes"
        );
        assert_eq!(
            shell_line("x", &["a b".into(), "it's".into()]),
            r"x 'a b' 'it'\''s'"
        );
    }

    #[test]
    fn qemu_versions_parse() {
        assert_eq!(
            parse_qemu_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)"),
            Some((10, 0))
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 7.2.15"),
            Some((7, 2))
        );
        assert_eq!(parse_qemu_version("nonsense"), None);
    }

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_owned).collect()
    }

    #[test]
    fn the_console_report_is_parsed() {
        let out = lines(
            "el3: hello\nrmm: booted\nrealm: hi\nATOLL-RIM 00ff\r\nATOLL-TOKEN d28443\nATOLL-DONE\natoll: system off",
        );
        assert_eq!(
            parse_console(&out).unwrap(),
            Report {
                rim: vec![0, 0xff],
                token: vec![0xd2, 0x84, 0x43],
                realm_id: None,
            }
        );
        let out = lines(
            "realm: ATOLL-METADATA x\nATOLL-METADATA com.atoll.qemu-realm\nATOLL-RIM 00\nATOLL-TOKEN 01\nATOLL-DONE",
        );
        assert_eq!(
            parse_console(&out).unwrap().realm_id.as_deref(),
            Some("com.atoll.qemu-realm")
        );
    }

    #[test]
    fn a_broken_console_report_says_what_is_wrong() {
        let err = |s: &str| parse_console(&lines(s)).unwrap_err().to_string();
        assert!(err("ATOLL-TOKEN 00\nATOLL-DONE").contains("no ATOLL-RIM"));
        assert!(err("ATOLL-RIM 00\nATOLL-DONE").contains("no ATOLL-TOKEN"));
        assert!(err("ATOLL-RIM 00\nATOLL-TOKEN 00").contains("no ATOLL-DONE"));
        assert!(err("ATOLL-RIM 0g\nATOLL-TOKEN 00\nATOLL-DONE").contains("not hex"));
        assert!(
            err("ATOLL-RIM 00\nATOLL-RIM 00\nATOLL-TOKEN 00\nATOLL-DONE").contains("more than one")
        );
        assert!(err("ATOLL-RIM 00\nATOLL-DONE\nATOLL-TOKEN 00").contains("after ATOLL-DONE"));
        assert!(err("ATOLL-RIM \nATOLL-TOKEN 00\nATOLL-DONE").contains("empty"));
        assert!(err(
            "ATOLL-METADATA a\nATOLL-METADATA a\nATOLL-RIM 00\nATOLL-TOKEN 00\nATOLL-DONE"
        )
        .contains("more than one ATOLL-METADATA"));
        assert!(err("ATOLL-ERROR rmi: realm create failed\nATOLL-DONE")
            .contains("ATOLL-ERROR rmi: realm create failed"));
    }

    #[test]
    fn the_rim_comparison_allows_only_zero_padding() {
        let exp = [7u8; 32];
        let mut slot = [0u8; 64];
        slot[..32].copy_from_slice(&exp);
        assert!(rim_matches(&exp, &exp));
        assert!(rim_matches(&exp, &slot));
        slot[40] = 1;
        assert!(!rim_matches(&exp, &slot));
        assert!(!rim_matches(&exp, &exp[..31]));
        let mut other = exp;
        other[0] = 8;
        assert!(!rim_matches(&exp, &other));
    }

    #[test]
    fn the_jwk_is_the_points_coordinates() {
        let mut p = [0u8; 97];
        p[0] = 4;
        p[1] = 0xfb;
        p[96] = 0xff;
        let j: serde_json::Value = serde_json::from_str(&cpak_jwk(&p)).unwrap();
        assert_eq!(j["kty"], "EC");
        assert_eq!(j["crv"], "P-384");
        assert_eq!(j["x"].as_str().unwrap().len(), 64);
        assert!(j["x"].as_str().unwrap().starts_with("-w"));
        assert!(j["y"].as_str().unwrap().ends_with("AAD_"));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let l = lines("a\nb\nc");
        assert_eq!(tail(&l, 2), "b\nc");
        assert_eq!(tail(&l, 30), "a\nb\nc");
    }
}

/// The runner against a real QEMU, with tiny hand-assembled firmware; each
/// test says so and passes without doing anything when QEMU is missing.
#[cfg(test)]
mod machine_tests {
    use super::*;

    /// `x0 = 0x0900_0000 (UART0); adr x1, msg; 1: ldrb w2, [x1], #1;
    /// cbz w2, 2f; strb w2, [x0]; b 1b; 2: b 2b`, then the NUL-terminated
    /// message right after it.
    const PRINTER: [u32; 7] = [
        0xd2a1_2000,
        0x1000_00c1,
        0x3840_1422,
        0x3400_0062,
        0x3900_0002,
        0x17ff_fffd,
        0x1400_0000,
    ];
    /// `b .`
    const SPIN: u32 = 0x1400_0000;

    fn printer(msg: &str) -> Vec<u8> {
        let mut v: Vec<u8> = PRINTER.iter().flat_map(|w| w.to_le_bytes()).collect();
        v.extend_from_slice(msg.as_bytes());
        v.push(0);
        v
    }

    fn qemu() -> Option<PathBuf> {
        let q = on_path(QEMU);
        if q.is_none() {
            eprintln!("{QEMU} not installed: skipping");
        }
        q
    }

    fn flash(dir: &Path, monitor: &[u8]) -> PathBuf {
        let p = dir.join("atoll-fw.bin");
        std::fs::write(&p, pack_firmware(monitor, &[]).unwrap()).unwrap();
        p
    }

    /// The contract's machine without the HES serial port.
    fn args_without_hes(fw: &Path) -> Vec<String> {
        let mut a = qemu_args(fw, 1);
        a.truncate(a.len() - 4);
        a
    }

    fn opts(qemu: &Path, args: Vec<String>, timeout: Duration) -> RunOptions<'_> {
        RunOptions {
            qemu,
            args,
            timeout,
            interactive: false,
            interrupted: Arc::new(AtomicBool::new(false)),
        }
    }

    #[test]
    fn qemu_here_has_rme() {
        let Some(q) = qemu() else { return };
        assert!(qemu_has_rme(&q).unwrap());
    }

    #[test]
    fn a_spinning_image_times_out_and_qemu_is_stopped() {
        let Some(q) = qemu() else { return };
        let dir = tempfile::tempdir().unwrap();
        let fw = flash(dir.path(), &SPIN.to_le_bytes());
        let t = Instant::now();
        let r = run_machine(&opts(&q, args_without_hes(&fw), Duration::from_secs(2))).unwrap();
        assert_eq!(r.stop, Stop::Timeout, "{:?}", r.lines);
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn an_interrupt_stops_the_run() {
        let Some(q) = qemu() else { return };
        let dir = tempfile::tempdir().unwrap();
        let fw = flash(dir.path(), &SPIN.to_le_bytes());
        let o = opts(&q, args_without_hes(&fw), Duration::from_secs(60));
        o.interrupted.store(true, Ordering::Relaxed);
        assert_eq!(run_machine(&o).unwrap().stop, Stop::Interrupted);
    }

    #[test]
    fn bad_arguments_are_an_early_exit_with_qemus_message() {
        let Some(q) = qemu() else { return };
        let r = run_machine(&opts(
            &q,
            vec!["-M".into(), "no-such-machine".into()],
            Duration::from_secs(30),
        ))
        .unwrap();
        assert!(matches!(r.stop, Stop::Exited(_)), "{:?}", r.stop);
        assert!(
            r.lines.iter().any(|l| l.starts_with("qemu: ")),
            "{:?}",
            r.lines
        );
    }

    /// The whole runner on the contract's command line: the HES listens,
    /// QEMU connects UART1 to it, the "monitor" prints a report on UART0,
    /// the run stops on ATOLL-DONE, the CPAK comes over TCP afterwards.
    #[test]
    fn the_contract_machine_with_the_hes_reports_and_stops() {
        let Some(q) = qemu() else { return };
        let dir = tempfile::tempdir().unwrap();
        let root = crate::workspace_root().unwrap();
        let (hes_bin, _) = host_tools(&root).unwrap();
        let mut hes = Hes::start(
            &hes_bin,
            &dir.path().join("provision.bin"),
            &dir.path().join("hes.sock"),
            &dir.path().join("hes.log"),
        )
        .unwrap();
        let fw = flash(
            dir.path(),
            &printer("el3: test\nATOLL-RIM 00ff\nATOLL-TOKEN d28443\nATOLL-DONE\n"),
        );
        let r = run_machine(&opts(&q, qemu_args(&fw, hes.port), Duration::from_secs(60))).unwrap();
        assert_eq!(r.stop, Stop::Done, "{:?}", r.lines);
        assert!(r.to_first_token.is_some());
        assert_eq!(
            parse_console(&r.lines).unwrap(),
            Report {
                rim: vec![0, 0xff],
                token: vec![0xd2, 0x84, 0x43],
                realm_id: None,
            }
        );
        // The link works after QEMU let go of UART1; the HES refuses the
        // CPAK because this "monitor" never measured itself into slot 0.
        let e = hes.cpak().unwrap_err().to_string();
        assert!(e.contains("BL2"), "{e}");
        let port = hes.port;
        hes.stop();
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
    }
}

#[cfg(test)]
mod linker_tests {
    use super::missing_lld_package;

    #[test]
    fn a_dangling_rust_lld_names_its_package() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("rust-lld");
        std::os::unix::fs::symlink("lld-22", &link).unwrap();
        assert_eq!(missing_lld_package(&link).as_deref(), Some("lld-22"));
        std::fs::write(dir.path().join("lld-22"), b"").unwrap();
        assert_eq!(missing_lld_package(&link), None);
        let odd = dir.path().join("other");
        std::os::unix::fs::symlink("ld.lld", &odd).unwrap();
        assert_eq!(missing_lld_package(&odd), None);
    }
}
