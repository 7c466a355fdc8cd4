//! `cargo xtask demo`: an application vendor's and a platform operator's
//! whole journey, on loopback, in a temporary directory.
//!
//! 1. Build the tools; make the vendor's CA and vendor certificate, the
//!    registry's TLS CA and certificate, and the realm's trust bundle.
//! 2. Describe the realm (trust bundle as its measured image), measure it,
//!    sign its metadata.
//! 3. Package the example application (`images/examples/counter-app`) as
//!    an OCI image and sign it.
//! 4. Start the warden; create and start the realm (the HES, the simulated
//!    RMM and the realm's app-manager come up under it).
//! 5. Start the registry: TLS for the vendor's pushes, RA-TLS for realms,
//!    with the platform's CPAK as trust anchor and the realm's reference
//!    values as policy; push the image and its signature.
//! 6. Deploy the application into the realm and show its output and an
//!    attestation summary.
//! 7. Stop the realm, take the registry down, start the realm again: the
//!    installed copy runs from sealed storage and its data persisted.
//!
//! Everything is stopped and the directory removed at the end, also on
//! failure (`--keep` keeps the directory for a look).

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cargo;

/// Steps the demo announces.
const STEPS: usize = 10;
/// Binaries the demo runs, with their packages.
const BINARIES: &[(&str, &str)] = &[
    ("atoll-cli", "atoll"),
    ("atoll-hes", "atoll-hes"),
    ("atoll-sim", "atoll-sim"),
    ("atoll-registry", "atoll-registry"),
    ("atoll-warden", "atoll-warden"),
    ("atoll-app-manager", "atoll-app-manager"),
];
/// The application's repository in the registry.
const REPOSITORY: &str = "acme/counter";

/// A background process, stopped (SIGTERM, then SIGKILL) when dropped.
struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(name: &'static str, cmd: &mut Command, log: PathBuf) -> Result<Self> {
        let out = std::fs::File::create(&log).with_context(|| format!("{}", log.display()))?;
        let err = out.try_clone()?;
        let child = cmd
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self { name, child, log })
    }

    fn stop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on our own child's pid; no memory is touched.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    fn tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "{} ({}):\n{}",
            self.name,
            self.log.display(),
            lines[lines.len().saturating_sub(n)..].join("\n")
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs one announced step with a spinner.
fn step<T>(n: usize, what: &str, f: impl FnOnce(&ProgressBar) -> Result<T>) -> Result<T> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{prefix}] {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(format!("{n}/{STEPS}"));
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    let start = Instant::now();
    let result = f(&bar);
    bar.finish_and_clear();
    match &result {
        Ok(_) => println!(
            "[{n}/{STEPS}] {what}: done ({:.1} s)",
            start.elapsed().as_secs_f64()
        ),
        Err(_) => println!("[{n}/{STEPS}] {what}: FAILED"),
    }
    result
}

/// Runs a command, failing with its output when it fails.
fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}):\n{}{}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready()? {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The paths and processes of one demo run.
struct Demo {
    dir: PathBuf,
    bin: PathBuf,
    warden_socket: PathBuf,
}

impl Demo {
    fn tool(&self, name: &str) -> Command {
        Command::new(self.bin.join(name))
    }

    fn atoll(&self) -> Command {
        self.tool("atoll")
    }

    fn warden(&self, args: &[&str]) -> Result<String> {
        let mut cmd = self.tool("atoll-warden");
        cmd.arg("--socket").arg(&self.warden_socket).args(args);
        Ok(stdout(&run(&mut cmd)?))
    }

    fn warden_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut all = args.to_vec();
        all.push("--json");
        let text = self.warden(&all)?;
        serde_json::from_str(&text).with_context(|| format!("warden output: {text}"))
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

/// Generates the registry's TLS CA and a server certificate for 127.0.0.1.
fn registry_tls(dir: &Path) -> Result<()> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    std::fs::create_dir_all(dir)?;
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "Atoll demo registry CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key)?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
    params
        .distinguished_name
        .push(DnType::CommonName, "atoll-registry");
    let cert = params.signed_by(&key, &ca_cert, &ca_key)?;
    std::fs::write(dir.join("ca.pem"), ca_cert.pem())?;
    std::fs::write(dir.join("registry.pem"), cert.pem() + &ca_cert.pem())?;
    std::fs::write(dir.join("registry-key.pem"), key.serialize_pem())?;
    Ok(())
}

pub(crate) fn run_demo(root: &Path, keep: bool) -> Result<()> {
    let tmp = tempfile::Builder::new().prefix("atoll-demo-").tempdir()?;
    let dir = tmp.path().to_path_buf();
    println!("Atoll demo in {}", dir.display());
    let result = demo(root, &dir);
    if keep {
        let kept = tmp.keep();
        println!("kept {}", kept.display());
    }
    result
}

fn demo(root: &Path, dir: &Path) -> Result<()> {
    let bin = step(1, "building the tools (cargo build)", |_| {
        let mut args = vec!["build", "--quiet"];
        for (package, _) in BINARIES {
            args.extend(["-p", package]);
        }
        cargo(root, &args)?;
        Ok(crate::qemu::host_target_dir(root).join("debug"))
    })?;
    let d = Demo {
        dir: dir.to_owned(),
        bin,
        warden_socket: dir.join("warden.sock"),
    };

    // Keys and certificates.
    step(
        2,
        "vendor CA, vendor certificate, registry TLS, realm trust bundle",
        |_| {
            run(d
                .atoll()
                .args([
                    "sign",
                    "keygen",
                    "--name",
                    "Atoll demo vendor CA",
                    "--ca-root",
                ])
                .arg(d.p("ca")))?;
            run(d
                .atoll()
                .args(["sign", "vendor", "--name", "Acme Apps", "--ca"])
                .arg(d.p("ca"))
                .arg("-o")
                .arg(d.p("acme")))?;
            registry_tls(&d.p("tls"))?;
            std::fs::create_dir_all(d.p("realm"))?;
            run(d
                .tool("atoll-app-manager")
                .args(["trust-bundle", "--vendor-ca"])
                .arg(d.p("ca/root.pem"))
                .arg("--registry-ca")
                .arg(d.p("tls/ca.pem"))
                .arg("-o")
                .arg(d.p("realm/trust-bundle.bin")))?;
            Ok(())
        },
    )?;

    // The realm: description, reference values, metadata.
    let rim = step(3, "measuring the realm and signing its metadata", |_| {
        std::fs::copy(
            root.join("images/examples/app-realm.toml"),
            d.p("realm/app-realm.toml"),
        )?;
        let refs = run(d
            .atoll()
            .args(["measure", "--json"])
            .arg(d.p("realm/app-realm.toml")))?;
        std::fs::write(d.p("realm/reference-values.json"), &refs.stdout)?;
        let refs_json: serde_json::Value = serde_json::from_slice(&refs.stdout)?;
        let rim = refs_json["realm"][0]["initial-measurement"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        run(d
            .atoll()
            .args(["metadata", "keygen", "-o"])
            .arg(d.p("realm/realm-vendor.pem")))?;
        std::fs::write(
            d.p("realm/metadata.yaml"),
            "realm_id: \"com.example.demo-realm\"\nversion: \"1.0.0\"\nsvn: 1\nhash_algo: sha-256\n",
        )?;
        run(d
            .atoll()
            .args(["metadata", "create", "--config"])
            .arg(d.p("realm/metadata.yaml"))
            .arg("--key")
            .arg(d.p("realm/realm-vendor.pem"))
            .arg("--rim-from")
            .arg(d.p("realm/app-realm.toml"))
            .arg("-o")
            .arg(d.p("realm/app-realm.meta")))?;
        Ok(rim)
    })?;
    println!("      RIM {rim}");

    // The application.
    let app_manifest = step(4, "packaging and signing the example application", |_| {
        let built = run(d
            .atoll()
            .args(["image", "build", "--layer"])
            .arg(root.join("images/examples/counter-app"))
            .args([
                "--entrypoint",
                "/app/counter.sh",
                "--volume",
                "/data",
                "--env",
                "COUNTER_VERSION=1.0",
                "--version",
                "1.0",
                "--json",
                "-o",
            ])
            .arg(d.p("app/layout")))?;
        let built: serde_json::Value = serde_json::from_slice(&built.stdout)?;
        let manifest_path = built["manifest_path"]
            .as_str()
            .ok_or_else(|| anyhow!("atoll image build printed no manifest_path"))?
            .to_string();
        run(d
            .atoll()
            .args(["sign", "image", "--key"])
            .arg(d.p("acme/vendor.pem"))
            .arg("--chain")
            .arg(d.p("acme/vendor-chain.pem"))
            .arg("--manifest")
            .arg(&manifest_path)
            .arg("-o")
            .arg(d.p("app/signature")))?;
        Ok(built["manifest"].as_str().unwrap_or_default().to_string())
    })?;
    println!("      image {REPOSITORY}:1.0 = {app_manifest}, signed by CN=Acme Apps");

    // The warden and the realm.
    let mut warden = Daemon::start(
        "atoll-warden",
        d.tool("atoll-warden")
            .args(["daemon", "--state"])
            .arg(d.p("warden"))
            .arg("--socket")
            .arg(&d.warden_socket)
            .arg("--bin-dir")
            .arg(&d.bin),
        d.p("warden.log"),
    )?;
    let cpak_jwk = step(
        5,
        "starting the warden, creating and starting the realm",
        |_| {
            wait_for("the warden's socket", Duration::from_secs(30), || {
                Ok(d.warden_socket.exists())
            })?;
            d.warden(&[
                "create-realm",
                "--name",
                "demo",
                "--description",
                &d.p("realm/app-realm.toml").display().to_string(),
                "--metadata",
                &d.p("realm/app-realm.meta").display().to_string(),
            ])?;
            d.warden(&["start-realm", "demo"])?;
            let info = d.warden_json(&["inspect-realm", "demo"])?;
            let jwk = info["cpak_jwk"].clone();
            ensure!(
                jwk.is_object(),
                "the warden reports no CPAK for the running realm: {info}"
            );
            Ok(jwk)
        },
    )
    .map_err(|e| anyhow!("{e:#}\n{}", warden.tail(20)))?;
    std::fs::write(d.p("cpak.jwk"), serde_json::to_vec_pretty(&cpak_jwk)?)?;

    // The registry.
    let push_port = free_port()?;
    let realm_port = free_port()?;
    std::fs::write(
        d.p("registry.toml"),
        format!(
            r#"# Written by `cargo xtask demo`.
storage = "{storage}"
trust_anchors = "{anchors}"

[[listener]]
address = "127.0.0.1:{push_port}"
mode = "tls"
access = "read-write"
cert = "{tls}/registry.pem"
key = "{tls}/registry-key.pem"

[[listener]]
address = "127.0.0.1:{realm_port}"
mode = "ra-tls"
cert = "{tls}/registry.pem"
key = "{tls}/registry-key.pem"

[[realm]]
name = "demo"
reference_values = "{refs}"
repositories = ["acme/*"]
"#,
            storage = d.p("registry").display(),
            anchors = d.p("cpak.jwk").display(),
            tls = d.p("tls").display(),
            refs = d.p("realm/reference-values.json").display(),
        ),
    )?;
    let mut registry = step(
        6,
        "starting the registry (TLS for pushes, RA-TLS for realms)",
        |_| {
            let registry = Daemon::start(
                "atoll-registry",
                d.tool("atoll-registry")
                    .arg("--config")
                    .arg(d.p("registry.toml")),
                d.p("registry.log"),
            )?;
            wait_for("the registry", Duration::from_secs(30), || {
                Ok(std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, realm_port)).is_ok())
            })
            .map_err(|e| anyhow!("{e}\n{}", registry.tail(20)))?;
            Ok(registry)
        },
    )?;
    let push_registry = format!("127.0.0.1:{push_port}");
    let realm_registry = format!("127.0.0.1:{realm_port}");
    step(7, "pushing the image and its signature", |_| {
        for layout in ["app/layout", "app/signature"] {
            run(d
                .atoll()
                .args([
                    "push",
                    "--registry",
                    &push_registry,
                    "--repository",
                    REPOSITORY,
                    "--ca",
                ])
                .arg(d.p("tls/ca.pem"))
                .arg(d.p(layout)))?;
        }
        Ok(())
    })
    .map_err(|e| anyhow!("{e:#}\n{}", registry.tail(20)))?;

    // Deploy.
    step(
        8,
        "deploying the application into the realm (RA-TLS fetch, verify, install, run)",
        |_| {
            d.warden(&[
                "create-application",
                "--realm",
                "demo",
                "--name",
                "counter",
                "--version",
                "1.0",
                "--registry",
                &realm_registry,
                "--repository",
                REPOSITORY,
            ])?;
            d.warden(&["start-application", "--realm", "demo", "--name", "counter"])?;
            wait_app_exit(&d)
        },
    )
    .map_err(|e| anyhow!("{e:#}\nrealm console:\n{}", console_tail(&d)))?;
    show_app_output(&d, 1)?;
    attestation_summary(&d)?;

    // Restart without the registry.
    step(
        9,
        "stopping the realm, taking the registry down, starting the realm again",
        |_| {
            d.warden(&["stop-realm", "demo"])?;
            registry.stop();
            // The application is marked to run: the realm's agent starts
            // the installed copy from its sealed disk.
            d.warden(&["start-realm", "demo"])?;
            wait_app_exit(&d)
        },
    )
    .map_err(|e| anyhow!("{e:#}\nrealm console:\n{}", console_tail(&d)))?;
    show_app_output(&d, 2)?;

    step(10, "stopping the realm and the warden", |_| {
        d.warden(&["stop-realm", "demo"])?;
        warden.stop();
        Ok(())
    })?;
    println!("the application's data survived the restart, sealed to the realm and its vendor.");
    Ok(())
}

fn console(d: &Demo) -> Result<String> {
    d.warden(&["console", "--realm", "demo"])
}

fn console_tail(d: &Demo) -> String {
    let text = console(d).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}

/// Waits until the counter application has run to completion.
fn wait_app_exit(d: &Demo) -> Result<()> {
    let mut last = serde_json::Value::Null;
    let r = wait_for(
        "the application to finish",
        Duration::from_secs(120),
        || {
            let info = d.warden_json(&["inspect-realm", "demo"])?;
            last = info.clone();
            let apps = info["apps"].as_array().cloned().unwrap_or_default();
            let app = apps.iter().find(|a| a["name"] == "counter");
            match app.map(|a| &a["state"]) {
                Some(s) if s.get("Exited").is_some() || s == "Exited" => Ok(true),
                Some(s) if s.get("Failed").is_some() => bail!("the application failed: {s}"),
                _ => Ok(false),
            }
        },
    );
    r.map_err(|e| anyhow!("{e:#}; last status: {last}"))
}

/// Prints the application's lines of the console and checks the run count.
fn show_app_output(d: &Demo, run_number: u32) -> Result<()> {
    let text = console(d)?;
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("counter|")).collect();
    let last = lines
        .last()
        .ok_or_else(|| anyhow!("the application printed nothing"))?;
    println!("      realm console: {last}");
    ensure!(
        last.ends_with(&format!("run number {run_number}")),
        "expected run number {run_number}"
    );
    Ok(())
}

/// Fetches a token for a fresh challenge through the warden and appraises
/// it against the CPAK and the realm's reference values.
fn attestation_summary(d: &Demo) -> Result<()> {
    let challenge: [u8; 64] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0x5a);
    let challenge = hex::encode(challenge);
    d.warden(&[
        "fetch-attestation-token",
        "--realm",
        "demo",
        "--challenge",
        &challenge,
        "--output",
        &d.p("token.cbor").display().to_string(),
    ])?;
    let out = run(d
        .atoll()
        .args(["token", "appraise", "--json", "--trust-anchors"])
        .arg(d.p("cpak.jwk"))
        .arg("--reference-values")
        .arg(d.p("realm/reference-values.json"))
        .arg(d.p("token.cbor")))?;
    let j: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    println!(
        "      attestation: verdict {} (signatures, binding and RIM checked; \
         no platform reference values given, hence not affirming)",
        j["verdict"]
    );
    let show = run(d
        .atoll()
        .args(["token", "show", "--json"])
        .arg(d.p("token.cbor")))?;
    let t: serde_json::Value = serde_json::from_slice(&show.stdout)?;
    let realm = &t["realm"];
    println!(
        "      realm challenge matches: {}",
        realm["challenge"].as_str() == Some(&challenge)
    );
    println!(
        "      RIM  {}",
        realm["initial-measurement"].as_str().unwrap_or("?")
    );
    if let Some(rems) = realm["extensible-measurements"].as_array() {
        if let Some(rem1) = rems.first() {
            println!(
                "      REM1 {} (the applications started)",
                rem1.as_str().unwrap_or("?")
            );
        }
    }
    let _ = std::io::stdout().flush();
    Ok(())
}
