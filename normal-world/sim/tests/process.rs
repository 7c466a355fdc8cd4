//! The `atoll-sim` binary: prints the RIM and its root of trust, serves
//! the socket, ends after the first realm process with `--once`, shuts down
//! cleanly (socket removed) on SIGTERM, and with `--hes` boots against a
//! running `atoll-hes` so that realms get attestation tokens.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ipc_schema::simvcpu::{
    decode_response, encode_message, FrameHeader, FrameKind, VcpuRequest, VcpuResponse, HEADER_LEN,
    MAX_FRAME,
};
use ipc_schema::smccc::smc_regs;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/examples/hello-realm.toml")
}

fn start(socket: &Path, once: bool) -> (Child, Vec<String>) {
    let once_arg: &[&std::ffi::OsStr] = &["--once".as_ref()];
    start_with(socket, if once { once_arg } else { &[] })
}

/// Starts `atoll-sim` with `extra` arguments and returns it with what it
/// printed up to and including "serving REC 0 on ...".
fn start_with(socket: &Path, extra: &[&std::ffi::OsStr]) -> (Child, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_atoll-sim"))
        .arg("--realm")
        .arg(example())
        .arg("--socket")
        .arg(socket)
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut l = String::new();
        assert!(out.read_line(&mut l).unwrap() > 0, "ended early: {lines:?}");
        lines.push(l.trim().to_string());
        if l.starts_with("serving REC 0 on ") {
            break;
        }
    }
    std::thread::spawn(move || for _ in out.lines() {});
    (child, lines)
}

fn smc(stream: &mut UnixStream, seq: u32, regs: ipc_schema::smccc::SmcRegs) -> [u64; 18] {
    match request(stream, seq, &VcpuRequest::Smc { regs }) {
        VcpuResponse::Smc { regs } => regs,
        other => panic!("{other:?}"),
    }
}

fn request(stream: &mut UnixStream, seq: u32, req: &VcpuRequest) -> VcpuResponse {
    let mut frame = [0u8; MAX_FRAME];
    let n = encode_message(FrameKind::Request, seq, req, &mut frame).unwrap();
    stream.write_all(&frame[..n]).unwrap();
    stream.read_exact(&mut frame[..HEADER_LEN]).unwrap();
    let h = FrameHeader::parse(&frame[..HEADER_LEN], FrameKind::Response).unwrap();
    let end = HEADER_LEN + h.payload_len();
    stream.read_exact(&mut frame[HEADER_LEN..end]).unwrap();
    let (got, resp) = decode_response(&frame[..end]).unwrap();
    assert_eq!(got, seq);
    resp
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(Instant::now() < deadline, "atoll-sim did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn once_serves_one_process_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("realm.sock");
    let (mut child, lines) = start(&socket, true);
    assert!(lines[0].starts_with("RIM (sha-256): "), "{lines:?}");
    assert_eq!(lines[0].len(), "RIM (sha-256): ".len() + 64);
    assert_eq!(
        lines[1],
        "root of trust: none (no --hes); attestation and sealing unavailable (RSI_ERROR_UNKNOWN)"
    );
    assert_eq!(lines.len(), 3, "{lines:?}");
    // A connection that sends nothing (a probe) is not the one process.
    drop(UnixStream::connect(&socket).unwrap());
    std::thread::sleep(Duration::from_millis(200));
    assert!(child.try_wait().unwrap().is_none(), "a probe ended --once");
    let mut s = UnixStream::connect(&socket).unwrap();
    assert!(matches!(
        request(&mut s, 1, &VcpuRequest::Hello),
        VcpuResponse::Hello(_)
    ));
    let r = request(
        &mut s,
        2,
        &VcpuRequest::Smc {
            regs: smc_regs(
                ipc_schema::rsi::fid::VERSION,
                &[ipc_schema::rsi::VERSION_1_0],
            ),
        },
    );
    assert!(matches!(r, VcpuResponse::Smc { regs } if regs[0] == 0 && regs[1] == 0x1_0000));
    drop(s);
    assert!(wait_exit(&mut child).success());
    assert!(!socket.exists(), "socket removed on exit");
}

#[test]
fn sigterm_stops_cleanly_and_garbage_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("realm.sock");
    let (mut child, _) = start(&socket, false);
    // A second simulator on the same socket is refused.
    let second = Command::new(env!("CARGO_BIN_EXE_atoll-sim"))
        .arg("--realm")
        .arg(example())
        .arg("--socket")
        .arg(&socket)
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("in use"));
    // Garbage instead of a frame: answered with an error frame, then the
    // connection is closed; the simulator keeps serving.
    let mut s = UnixStream::connect(&socket).unwrap();
    s.write_all(b"GARBAGE GARBAGE!").unwrap();
    let mut frame = [0u8; MAX_FRAME];
    s.read_exact(&mut frame[..HEADER_LEN]).unwrap();
    let h = FrameHeader::parse(&frame[..HEADER_LEN], FrameKind::Response).unwrap();
    let end = HEADER_LEN + h.payload_len();
    s.read_exact(&mut frame[HEADER_LEN..end]).unwrap();
    assert!(matches!(
        decode_response(&frame[..end]).unwrap().1,
        VcpuResponse::Error(_)
    ));
    assert_eq!(s.read(&mut frame).unwrap(), 0, "closed after a bad header");
    let mut s = UnixStream::connect(&socket).unwrap();
    assert!(matches!(
        request(&mut s, 1, &VcpuRequest::Hello),
        VcpuResponse::Hello(_)
    ));
    drop(s);
    let st = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
    assert!(wait_exit(&mut child).success());
    assert!(!socket.exists());
}

#[test]
fn hes_roots_attestation_and_sealing() {
    use atoll_sim::hes::HesRoot;
    use atoll_sim::procs::HesProcess;
    use ipc_schema::islet::{fid as islet_fid, sealing_flags};
    use ipc_schema::rsi::{fid, status};

    let dir = tempfile::tempdir().unwrap();
    let hes = HesProcess::start(dir.path());
    let socket = dir.path().join("realm.sock");
    let jwk = dir.path().join("cpak.jwk");
    let (mut child, lines) = start_with(
        &socket,
        &[
            "--hes".as_ref(),
            hes.socket.as_os_str(),
            "--cpak-jwk".as_ref(),
            jwk.as_os_str(),
        ],
    );
    assert!(lines[0].starts_with("RIM (sha-256): "), "{lines:?}");
    assert_eq!(
        lines[1],
        format!(
            "root of trust: atoll-hes at {}; attestation and sealing available",
            hes.socket.display()
        )
    );
    // The CPAK printed is the one the HES reports (after the boot the
    // simulator measured, since the CPAK derives from BL2's measurement).
    let cpak = HesRoot::connect(&hes.socket)
        .unwrap()
        .cpak_public_key()
        .unwrap();
    assert_eq!(
        lines[2],
        format!("CPAK (P-384, SEC1): {}", hex::encode(cpak))
    );
    let jwk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&jwk).unwrap()).unwrap();
    assert_eq!(jwk["crv"], "P-384");
    assert_eq!(
        jwk,
        serde_json::from_str::<serde_json::Value>(&atoll_sim::hes::cpak_jwk(&cpak).unwrap())
            .unwrap()
    );

    // A realm process gets a token and a sealing key.
    let mut s = UnixStream::connect(&socket).unwrap();
    assert!(matches!(
        request(&mut s, 1, &VcpuRequest::Hello),
        VcpuResponse::Hello(_)
    ));
    let init = smc(&mut s, 2, smc_regs(fid::ATTEST_TOKEN_INIT, &[0x11; 8]));
    assert_eq!(init[0], status::SUCCESS);
    assert!(init[1] > 0, "token size announced");
    let key = smc(
        &mut s,
        3,
        smc_regs(islet_fid::RSI_REALM_SEALING_KEY, &[sealing_flags::RIM, 0]),
    );
    assert_eq!(key[0], status::SUCCESS);
    assert_ne!(key[1..5], [0; 4]);
    drop(s);

    // The HES has completed a boot: another platform cannot boot on it.
    let second = Command::new(env!("CARGO_BIN_EXE_atoll-sim"))
        .arg("--realm")
        .arg(example())
        .arg("--socket")
        .arg(dir.path().join("other.sock"))
        .arg("--hes")
        .arg(&hes.socket)
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("slot locked") && err.contains("restart atoll-hes"),
        "{err}"
    );

    // No HES at the socket: refused, with the reason.
    let missing = Command::new(env!("CARGO_BIN_EXE_atoll-sim"))
        .arg("--realm")
        .arg(example())
        .arg("--socket")
        .arg(dir.path().join("other.sock"))
        .arg("--hes")
        .arg(dir.path().join("nobody.sock"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("connecting to"));

    let st = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
    assert!(wait_exit(&mut child).success());
}
