//! The `atoll-sim` binary: prints the RIM, serves the socket, ends after
//! the first realm process with `--once`, and shuts down cleanly (socket
//! removed) on SIGTERM.

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
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_atoll-sim"));
    cmd.arg("--realm")
        .arg(example())
        .arg("--socket")
        .arg(socket);
    if once {
        cmd.arg("--once");
    }
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..2 {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        lines.push(l.trim().to_string());
    }
    std::thread::spawn(move || for _ in out.lines() {});
    (child, lines)
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
