extern crate std;

use alloc::vec;
use alloc::vec::Vec;

use atoll_rsi_client::{RsiBackend, RsiClient, SmcRegs, GRANULE_SIZE};
use ipc_schema::islet::fid::{RSI_REALM_METADATA, RSI_REALM_SEALING_KEY};
use ipc_schema::rsi::{fid, status};

use super::*;

/// A scripted RMM + host: answers the RSI calls the payload makes the way
/// the specification says, and records host calls.
struct Fake {
    buf: Vec<u8>,
    token: Vec<u8>,
    /// Bytes a TOKEN_CONTINUE writes at most (to exercise INCOMPLETE).
    step: usize,
    token_at: usize,
    host_calls: Vec<(u16, Vec<u8>)>,
    sealing_ok: bool,
    /// Realm id the metadata block carries (None: no metadata).
    realm_id: Option<&'static [u8]>,
    challenge: Option<[u64; 8]>,
}

impl Fake {
    fn new(token_len: usize) -> Self {
        Self {
            buf: vec![0; GRANULE_SIZE],
            token: (0..token_len).map(|i| (i * 7) as u8).collect(),
            step: 1000,
            token_at: 0,
            host_calls: Vec::new(),
            sealing_ok: true,
            realm_id: Some(b"com.atoll.test"),
            challenge: None,
        }
    }

    fn calls(&self, imm: u16) -> Vec<&Vec<u8>> {
        self.host_calls
            .iter()
            .filter(|(i, _)| *i == imm)
            .map(|(_, d)| d)
            .collect()
    }
}

const IPA: u64 = 0x8_1000;

impl RsiBackend for Fake {
    type Error = &'static str;

    fn smc(&mut self, regs: SmcRegs) -> Result<SmcRegs, &'static str> {
        let mut out = [0u64; 18];
        match regs[0] {
            fid::VERSION => {
                out[1] = 0x1_0000;
                out[2] = 0x1_0000;
            }
            fid::REALM_CONFIG => {
                assert_eq!(regs[1], IPA);
                self.buf[..8].copy_from_slice(&33u64.to_le_bytes());
                self.buf[8] = 0;
            }
            fid::MEASUREMENT_READ => {
                for (i, r) in out[1..9].iter_mut().enumerate() {
                    *r = 0x0101_0101_0101_0101 * (regs[1] * 16 + i as u64 + 1);
                }
            }
            fid::MEASUREMENT_EXTEND => {
                assert_eq!(regs[1], REM_INDEX);
                assert_eq!(regs[2], REM_DATA.len() as u64);
            }
            fid::ATTEST_TOKEN_INIT => {
                let mut c = [0u64; 8];
                c.copy_from_slice(&regs[1..9]);
                self.challenge = Some(c);
                self.token_at = 0;
                out[1] = self.token.len() as u64;
            }
            fid::ATTEST_TOKEN_CONTINUE => {
                assert_eq!(regs[1], IPA);
                let (offset, size) = (regs[2] as usize, regs[3] as usize);
                let left = self.token.len() - self.token_at;
                let n = left.min(size).min(self.step);
                self.buf[offset..offset + n]
                    .copy_from_slice(&self.token[self.token_at..self.token_at + n]);
                self.token_at += n;
                out[0] = if self.token_at == self.token.len() {
                    status::SUCCESS
                } else {
                    status::INCOMPLETE
                };
                out[1] = n as u64;
            }
            fid::HOST_CALL => {
                assert_eq!(regs[1], IPA);
                let imm = u16::from_le_bytes([self.buf[0], self.buf[1]]);
                let mut gprs = [0u64; 31];
                for (i, g) in gprs.iter_mut().enumerate() {
                    let at = 8 + 8 * i;
                    *g = u64::from_le_bytes(self.buf[at..at + 8].try_into().unwrap());
                }
                let len = gprs[0] as usize;
                let mut bytes = Vec::new();
                for g in &gprs[1..] {
                    bytes.extend_from_slice(&g.to_le_bytes());
                }
                bytes.truncate(len);
                self.host_calls.push((imm, bytes));
                self.buf[8..16].copy_from_slice(&(len as u64).to_le_bytes());
            }
            RSI_REALM_METADATA => {
                assert_eq!(regs[1], IPA);
                match self.realm_id {
                    Some(id) => {
                        self.buf[..432].fill(0);
                        self.buf[0] = 1;
                        self.buf[8..8 + id.len()].copy_from_slice(id);
                        self.buf[0xD0] = 1;
                    }
                    None => out[0] = status::ERROR_STATE,
                }
            }
            RSI_REALM_SEALING_KEY => {
                assert_eq!(regs[1], SEALING_FLAGS);
                if self.sealing_ok {
                    out[1..5].copy_from_slice(&[1, 2, 3, 4]);
                } else {
                    out[0] = status::ERROR_STATE;
                }
            }
            _ => out[0] = u64::MAX,
        }
        Ok(out)
    }

    fn buffer_ipa(&self) -> u64 {
        IPA
    }

    fn read_buffer(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), &'static str> {
        buf.copy_from_slice(&self.buf[offset..offset + buf.len()]);
        Ok(())
    }

    fn write_buffer(&mut self, offset: usize, data: &[u8]) -> Result<(), &'static str> {
        self.buf[offset..offset + data.len()].copy_from_slice(data);
        Ok(())
    }
}

fn regs() -> [u64; 8] {
    [0xA5A5_A5A5_A5A5_A5A5; 8]
}

#[test]
fn challenge_bytes() {
    let mut r = [0u64; 8];
    r[0] = 0x0807_0605_0403_0201;
    r[7] = 0xFF00_0000_0000_0000;
    let c = challenge_from_regs(&r);
    assert_eq!(&c[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(c[63], 0xFF);
    assert_eq!(challenge_from_regs(&regs()), [0xA5; 64]);
}

#[test]
fn pack_registers() {
    let g = pack(b"abcdefghij");
    assert_eq!(g[0], 10);
    assert_eq!(g[1], u64::from_le_bytes(*b"abcdefgh"));
    assert_eq!(g[2], u64::from_le_bytes(*b"ij\0\0\0\0\0\0"));
    assert!(g[3..].iter().all(|&r| r == 0));
    let big = [0x11u8; 300];
    let g = pack(&big);
    assert_eq!(g[0], HOST_CALL_MAX as u64);
    assert!(g[1..].iter().all(|&r| r == 0x1111_1111_1111_1111));
    assert_eq!(pack(&[]), [0; 31]);
}

#[test]
fn hex_digits() {
    assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    assert_eq!(hex(&[]), "");
}

#[test]
fn whole_flow() {
    let mut rsi = RsiClient::new(Fake::new(5000));
    let mut buf = vec![0u8; 8192];
    let challenge = challenge_from_regs(&regs());
    let out = run(&mut rsi, &challenge, &mut buf).unwrap();
    assert_eq!(
        out,
        Outcome {
            rim_len: 32,
            token_len: 5000,
            sealing_key: true,
            realm_id: "com.atoll.test".into(),
        }
    );
    let fake = rsi.into_inner();
    assert_eq!(fake.challenge, Some(regs()));
    // The RIM: 32 bytes of slot 0.
    let rim = fake.calls(HOST_CALL_RIM);
    assert_eq!(rim.len(), 1);
    assert_eq!(rim[0].len(), 32);
    assert_eq!(rim[0][0], 1);
    // The token: pieces, then the end marker.
    let pieces = fake.calls(HOST_CALL_TOKEN);
    assert_eq!(pieces.last().unwrap().len(), 0);
    let token: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
    assert_eq!(token, fake.token);
    assert!(pieces.iter().all(|p| p.len() <= HOST_CALL_MAX));
    // Console lines mention every step.
    let console: Vec<u8> = fake
        .calls(HOST_CALL_CONSOLE)
        .iter()
        .flat_map(|p| p.iter().copied())
        .collect();
    let console = std::string::String::from_utf8(console).unwrap();
    for needle in [
        "RSI version: lower 1.0",
        "ipa_width 33",
        "RIM 01010101",
        "REM1 extended",
        "attestation token: 5000 bytes",
        "realm metadata: realm id \"com.atoll.test\" svn 1 version 0.0.0",
        "\nATOLL-METADATA com.atoll.test\n",
        "sealing key: derived",
        "done",
    ] {
        assert!(console.contains(needle), "{needle:?} missing in {console}");
    }
}

#[test]
fn sealing_failure_is_reported_not_fatal() {
    let mut fake = Fake::new(100);
    fake.sealing_ok = false;
    let mut rsi = RsiClient::new(fake);
    let mut buf = vec![0u8; 4096];
    let out = run(&mut rsi, &[0xA5; 64], &mut buf).unwrap();
    assert!(!out.sealing_key);
    let console: Vec<u8> = rsi
        .backend()
        .calls(HOST_CALL_CONSOLE)
        .iter()
        .flat_map(|p| p.iter().copied())
        .collect();
    assert!(std::string::String::from_utf8(console)
        .unwrap()
        .contains("sealing key: failed"));
}

#[test]
fn token_too_big_for_buffer_fails() {
    let mut rsi = RsiClient::new(Fake::new(5000));
    let mut buf = vec![0u8; 4096];
    let err = run(&mut rsi, &[0xA5; 64], &mut buf).unwrap_err();
    assert!(err.0.contains("RSI_ATTESTATION_TOKEN"), "{}", err.0);
}

#[test]
fn no_metadata_is_fatal() {
    let mut fake = Fake::new(100);
    fake.realm_id = None;
    let mut rsi = RsiClient::new(fake);
    let mut buf = vec![0u8; 4096];
    let err = run(&mut rsi, &[0xA5; 64], &mut buf).unwrap_err();
    assert!(err.0.contains("RSI_ISLET_REALM_METADATA"), "{}", err.0);
}

#[test]
fn a_bad_realm_id_is_refused() {
    let mut fake = Fake::new(100);
    fake.realm_id = Some(b"bad\x01id");
    let mut rsi = RsiClient::new(fake);
    let mut buf = vec![0u8; 4096];
    let err = run(&mut rsi, &[0xA5; 64], &mut buf).unwrap_err();
    assert!(err.0.contains("bad realm id"), "{}", err.0);
}
