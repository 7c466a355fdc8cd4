//! Registry pull throughput: a 256 MiB blob downloaded over loopback from
//! atoll-registry and from Debian's `docker-registry` (the CNCF
//! distribution registry 2.8) in the same run, alternating.
//!
//! ```text
//! cargo bench -p atoll-registry --bench pull
//! ```
//!
//! Both servers run as their own processes with filesystem storage in a
//! temporary directory and plain HTTP on a free loopback port; the same
//! random blob is pushed to both (POST a session, PUT the whole body with
//! `?digest=`); each server's copy is downloaded once and its digest checked
//! outside the timed loop; then full streamed GETs (bytes counted, not
//! kept) alternate between the two. Prints MiB/s for each and the ratio.
//! Environment: `PULL_MIB` (blob size, default 256), `PULL_ITERS`
//! (downloads per server, default 6).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

const DOCKER_REGISTRY: &str = "/usr/bin/docker-registry";

/// Kills the server process when the bench ends, however it ends.
struct Server {
    name: &'static str,
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Makes sure `docker-registry` is installed; `false` (with the reason
/// printed) when it is not and cannot be.
fn ensure_docker_registry() -> bool {
    if Path::new(DOCKER_REGISTRY).exists() {
        return true;
    }
    if !is_root() {
        println!(
            "pull bench SKIPPED: {DOCKER_REGISTRY} (the baseline) is missing; install it with\n  \
             sudo apt-get update && sudo apt-get install -y docker-registry"
        );
        return false;
    }
    println!("installing docker-registry with apt-get ...");
    let ok = Command::new("apt-get")
        .args(["install", "-y", "docker-registry"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success())
        || (Command::new("apt-get")
            .arg("update")
            .status()
            .is_ok_and(|s| s.success())
            && Command::new("apt-get")
                .args(["install", "-y", "docker-registry"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success()));
    if !ok || !Path::new(DOCKER_REGISTRY).exists() {
        println!("pull bench SKIPPED: `apt-get install -y docker-registry` failed");
        return false;
    }
    true
}

async fn wait_ready(client: &reqwest::Client, server: &mut Server) {
    for _ in 0..200 {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("{} exited at startup: {status}", server.name);
        }
        if let Ok(r) = client.get(format!("{}/v2/", server.base)).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} did not come up at {}", server.name, server.base);
}

fn start_docker_registry(dir: &Path) -> Server {
    let port = free_port();
    let storage = dir.join("distribution");
    std::fs::create_dir_all(&storage).expect("storage dir");
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        ),
    )
    .expect("config.yml");
    let child = Command::new(DOCKER_REGISTRY)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting docker-registry");
    Server {
        name: "docker-registry",
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

fn start_atoll_registry(dir: &Path) -> Server {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_atoll-registry"))
        .arg("--root")
        .arg(dir.join("atoll"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--insecure-http")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting atoll-registry");
    Server {
        name: "atoll-registry",
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// Deterministic pseudo-random bytes (xorshift64*): incompressible, and no
/// dependency for it.
fn random_blob(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Monolithic push: POST a session, PUT the whole blob with `?digest=`.
async fn push(client: &reqwest::Client, s: &Server, repo: &str, blob: &[u8], digest: &str) {
    let r = client
        .post(format!("{}/v2/{repo}/blobs/uploads/", s.base))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 202, "{}: POST upload", s.name);
    let loc = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let url = if loc.starts_with("http") {
        loc
    } else {
        format!("{}{loc}", s.base)
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let r = client
        .put(format!("{url}{sep}digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(blob.to_vec())
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 201, "{}: PUT upload", s.name);
}

/// One full GET, streamed; returns (bytes, seconds) and feeds `hasher`.
async fn download(
    url: &str,
    client: &reqwest::Client,
    mut hasher: Option<&mut Sha256>,
) -> (u64, f64) {
    let t = Instant::now();
    let mut r = client.get(url).send().await.expect("GET");
    assert_eq!(r.status(), 200, "GET {url}");
    let mut n = 0u64;
    while let Some(chunk) = r.chunk().await.expect("body") {
        n += chunk.len() as u64;
        if let Some(h) = hasher.as_deref_mut() {
            h.update(&chunk);
        }
    }
    (n, t.elapsed().as_secs_f64())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // `cargo test --benches` runs this with `--bench` absent: do nothing
    // heavy there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("pull bench: run with `cargo bench -p atoll-registry --bench pull`");
        return;
    }
    if !ensure_docker_registry() {
        return;
    }
    let _ = atoll_ra_tls::rustls::crypto::ring::default_provider().install_default();
    let mib = env_num("PULL_MIB", 256);
    let iters = env_num("PULL_ITERS", 6).max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let mut servers = [
        start_atoll_registry(dir.path()),
        start_docker_registry(dir.path()),
    ];
    for s in servers.iter_mut() {
        wait_ready(&client, s).await;
    }

    let blob = random_blob(mib * 1024 * 1024);
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&blob)));
    for s in &servers {
        push(&client, s, "bench/blob", &blob, &digest).await;
    }
    drop(blob);
    let urls: Vec<String> = servers
        .iter()
        .map(|s| format!("{}/v2/bench/blob/blobs/{digest}", s.base))
        .collect();
    // Check each server's copy once, outside the timed loop.
    for (s, url) in servers.iter().zip(&urls) {
        let mut h = Sha256::new();
        let (n, _) = download(url, &client, Some(&mut h)).await;
        let got = format!("sha256:{}", hex::encode(h.finalize()));
        assert_eq!(n as usize, mib * 1024 * 1024, "{}: size", s.name);
        assert_eq!(got, digest, "{}: digest", s.name);
    }

    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for i in 0..iters {
        // Alternate which server goes first.
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let (n, secs) = download(&urls[k], &client, None).await;
            assert_eq!(n as usize, mib * 1024 * 1024);
            rates[k].push(n as f64 / (1024.0 * 1024.0) / secs);
        }
    }
    let version = Command::new(DOCKER_REGISTRY)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("registry pull, {mib} MiB blob, {iters} downloads each, loopback, plain HTTP");
    println!("baseline: {version}");
    let mut medians = [0.0; 2];
    for (k, s) in servers.iter().enumerate() {
        let all: Vec<String> = rates[k].iter().map(|r| format!("{r:.0}")).collect();
        medians[k] = median(&mut rates[k].clone());
        println!(
            "{:<16} median {:>7.0} MiB/s  (runs: {})",
            s.name,
            medians[k],
            all.join(", ")
        );
    }
    let ratio = medians[0] / medians[1];
    println!(
        "ratio atoll-registry / docker-registry: {ratio:.2}x (target >= 1.0x): {}",
        if ratio >= 1.0 { "met" } else { "MISSED" }
    );
}
