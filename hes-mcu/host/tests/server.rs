//! The `atoll-hes` binary as a separate process: provisioning file rules,
//! malformed frames over a raw socket, several clients, TCP.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use atoll_hes_link::HesLink;
use coset::TaggedCborSerializable;
use ipc_schema::hes::{
    check_frame, encode_frame, encode_message, BoundedStr, FrameError, FrameKind, HesError,
    HesHashAlgo, HesRequest, HesResponse, MeasurementRecord, VhukId, HEADER_LEN, MAX_FRAME,
    MAX_PAYLOAD,
};
use ipc_schema::wire::BoundedBytes;
use p384::ecdsa::signature::Verifier;
use p384::ecdsa::{Signature, VerifyingKey};

const BIN: &str = env!("CARGO_BIN_EXE_atoll-hes");

struct Running {
    child: Child,
    socket: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, extra: &[&str]) -> Running {
    let socket = dir.join("hes.sock");
    let child = Command::new(BIN)
        .arg("--provision")
        .arg(dir.join("provision.bin"))
        .arg("--socket")
        .arg(&socket)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut running = Running { child, socket };
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(&running.socket).is_err() {
        if let Some(status) = running.child.try_wait().unwrap() {
            panic!("atoll-hes exited early: {status}");
        }
        assert!(Instant::now() < deadline, "atoll-hes did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    running
}

/// Runs the binary expecting it to refuse to start.
fn refuses(dir: &Path) -> Output {
    let mut child = Command::new(BIN)
        .arg("--provision")
        .arg(dir.join("provision.bin"))
        .arg("--socket")
        .arg(dir.join("hes.sock"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("atoll-hes started although it should have refused");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    out
}

fn record(kind: &str, m: u8, signer: u8) -> MeasurementRecord {
    MeasurementRecord {
        algo: HesHashAlgo::Sha256,
        measurement: BoundedBytes::new(&[m; 32]).unwrap(),
        signer_id: BoundedBytes::new(&[signer; 32]).unwrap(),
        version: BoundedStr::new("1.0.0").unwrap(),
        component_type: BoundedStr::new(kind).unwrap(),
    }
}

fn boot(link: &mut HesLink<impl atoll_hes_link::Transport>, bl2: u8) {
    link.extend(0, record("BL2", bl2, 0x51), false).unwrap();
    link.extend(1, record("RMM", 2, 0x52), false).unwrap();
}

#[test]
fn provisions_once_then_reuses_the_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("provision.bin");
    let first_vhuk = {
        let hes = start(dir.path(), &[]);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), atoll_hes_mcu::secrets::BLOB_LEN as u64);
        let socket_mode = std::fs::metadata(&hes.socket).unwrap().permissions().mode();
        assert_eq!(socket_mode & 0o777, 0o600, "socket is owner-only");
        let mut link = HesLink::connect_unix(&hes.socket).unwrap();
        boot(&mut link, 1);
        *link.vhuk(VhukId::A).unwrap()
    };
    let blob = std::fs::read(&path).unwrap();
    // No temporary file is left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);

    let hes = start(dir.path(), &[]);
    assert_eq!(std::fs::read(&path).unwrap(), blob, "not rewritten");
    let mut link = HesLink::connect_unix(&hes.socket).unwrap();
    boot(&mut link, 1);
    assert_eq!(*link.vhuk(VhukId::A).unwrap(), first_vhuk);
    drop(hes);

    // A different device (fresh secrets) derives different keys.
    let other = tempfile::tempdir().unwrap();
    let hes = start(other.path(), &[]);
    let mut link = HesLink::connect_unix(&hes.socket).unwrap();
    boot(&mut link, 1);
    assert_ne!(*link.vhuk(VhukId::A).unwrap(), first_vhuk);
}

#[test]
fn refuses_an_unsafe_or_damaged_provisioning_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("provision.bin");
    drop(start(dir.path(), &[]));

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = refuses(dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("group/other"), "{err}");
    assert!(err.contains("0640"), "{err}");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut blob = std::fs::read(&path).unwrap();
    blob.push(0);
    std::fs::write(&path, &blob).unwrap();
    let err = String::from_utf8_lossy(&refuses(dir.path()).stderr).into_owned();
    assert!(err.contains("77 bytes"), "{err}");

    blob.pop();
    blob[20] ^= 1;
    std::fs::write(&path, &blob).unwrap();
    let err = String::from_utf8_lossy(&refuses(dir.path()).stderr).into_owned();
    assert!(err.contains("checksum"), "{err}");
}

fn raw_request(stream: &mut UnixStream, frame: &[u8]) -> (u32, HesResponse) {
    stream.write_all(frame).unwrap();
    let mut buf = [0u8; MAX_FRAME];
    stream.read_exact(&mut buf[..HEADER_LEN]).unwrap();
    let len = u32::from_le_bytes(buf[12..16].try_into().unwrap()) as usize;
    stream
        .read_exact(&mut buf[HEADER_LEN..HEADER_LEN + len])
        .unwrap();
    let (h, p) = check_frame(&buf[..HEADER_LEN + len], FrameKind::Response).unwrap();
    (h.request_id(), postcard::from_bytes(p).unwrap())
}

fn frame(id: u32, req: &HesRequest) -> Vec<u8> {
    let mut out = [0u8; MAX_FRAME];
    let n = encode_message(FrameKind::Request, id, req, &mut out).unwrap();
    out[..n].to_vec()
}

fn is_closed(stream: &mut UnixStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut b = [0u8; 1];
    // Closing with our unread bytes still queued may reset the stream
    // instead of ending it; either way nothing more comes.
    match stream.read(&mut b) {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

#[test]
fn malformed_frames_get_error_frames_and_the_server_survives() {
    let dir = tempfile::tempdir().unwrap();
    let hes = start(dir.path(), &[]);

    // Bad CRC: answered, and the same connection carries on.
    let mut s = UnixStream::connect(&hes.socket).unwrap();
    let mut bad = frame(3, &HesRequest::ReadSlot { slot: 0 });
    *bad.last_mut().unwrap() ^= 0xFF;
    assert_eq!(
        raw_request(&mut s, &bad),
        (
            3,
            HesResponse::Error(HesError::Frame(FrameError::BadChecksum))
        )
    );
    // Garbage payload in a good frame: answered, connection carries on.
    let mut out = [0u8; MAX_FRAME];
    let n = encode_frame(FrameKind::Request, 4, &[0xEE; 9], &mut out).unwrap();
    assert_eq!(
        raw_request(&mut s, &out[..n]),
        (4, HesResponse::Error(HesError::Malformed))
    );
    assert_eq!(
        raw_request(&mut s, &frame(5, &HesRequest::ReadSlot { slot: 0 })),
        (5, HesResponse::Error(HesError::SlotEmpty))
    );

    // Bad magic: answered, then the connection is closed cleanly.
    let mut s = UnixStream::connect(&hes.socket).unwrap();
    assert_eq!(
        raw_request(&mut s, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        (0, HesResponse::Error(HesError::Frame(FrameError::BadMagic)))
    );
    assert!(is_closed(&mut s));

    // Oversized length: refused without reading the payload, then closed.
    let mut s = UnixStream::connect(&hes.socket).unwrap();
    let mut big = frame(6, &HesRequest::BootComplete);
    big[12..16].copy_from_slice(&(MAX_PAYLOAD as u32 * 4).to_le_bytes());
    assert_eq!(
        raw_request(&mut s, &big),
        (6, HesResponse::Error(HesError::Frame(FrameError::TooLarge)))
    );
    assert!(is_closed(&mut s));

    // Truncated frame, then the peer stops sending: answered as truncated.
    let mut s = UnixStream::connect(&hes.socket).unwrap();
    let good = frame(7, &HesRequest::ReadSlot { slot: 1 });
    s.write_all(&good[..good.len() - 1]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    let (h, p) = check_frame(&answer, FrameKind::Response).unwrap();
    assert_eq!(h.request_id(), 7);
    assert_eq!(
        postcard::from_bytes::<HesResponse>(p).unwrap(),
        HesResponse::Error(HesError::Frame(FrameError::Truncated))
    );

    // After all that the HES still serves.
    let mut link = HesLink::connect_unix(&hes.socket).unwrap();
    boot(&mut link, 1);
    assert!(link.read_slot(1).is_ok());
}

#[test]
fn serves_several_clients_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let hes = start(dir.path(), &[]);
    let mut setup = HesLink::connect_unix(&hes.socket).unwrap();
    boot(&mut setup, 1);
    let expected = *setup.vhuk(VhukId::M).unwrap();
    let token_len = setup.platform_token(&[1; 32]).unwrap().len();

    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let socket = hes.socket.clone();
            std::thread::spawn(move || {
                let mut link = HesLink::connect_unix(&socket).unwrap();
                for _ in 0..10 {
                    assert_eq!(*link.vhuk(VhukId::M).unwrap(), expected);
                    // Interleaved transfers for different challenges.
                    let token = link.platform_token(&[t; 32]).unwrap();
                    assert_eq!(token.len(), token_len);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // The setup connection stayed open and usable throughout.
    assert_eq!(*setup.vhuk(VhukId::M).unwrap(), expected);
}

#[test]
fn token_from_the_process_verifies_with_its_cpak() {
    let dir = tempfile::tempdir().unwrap();
    let hes = start(dir.path(), &[]);
    let mut link = HesLink::connect_unix(&hes.socket).unwrap();
    boot(&mut link, 1);
    link.boot_complete().unwrap();
    let vk = VerifyingKey::from_sec1_bytes(&link.cpak_public_key().unwrap()).unwrap();
    let token = link.platform_token(&[0x42; 64]).unwrap();
    let sign1 = coset::CoseSign1::from_tagged_slice(&token).unwrap();
    sign1
        .verify_signature(b"", |sig, tbs| {
            vk.verify(tbs, &Signature::from_slice(sig).map_err(|_| ())?)
                .map_err(|_| ())
        })
        .unwrap();
}

#[test]
fn serves_tcp_on_localhost() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let hes = start(dir.path(), &["--tcp", &port.to_string()]);
    let mut unix = HesLink::connect_unix(&hes.socket).unwrap();
    boot(&mut unix, 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut tcp = loop {
        match HesLink::connect_tcp(("127.0.0.1", port)) {
            Ok(l) => break l,
            Err(e) => {
                assert!(Instant::now() < deadline, "{e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    // One HES behind both listeners.
    assert_eq!(
        tcp.cpak_public_key().unwrap(),
        unix.cpak_public_key().unwrap()
    );
}

#[test]
fn a_second_instance_does_not_steal_a_live_socket() {
    let dir = tempfile::tempdir().unwrap();
    let hes = start(dir.path(), &[]);
    let err = String::from_utf8_lossy(&refuses(dir.path()).stderr).into_owned();
    assert!(err.contains("already serving"), "{err}");
    assert!(HesLink::connect_unix(&hes.socket).is_ok());
}
