//! The attestation token loop against a scripted RMM: tokens longer than
//! a granule, chunks of any size, early `RSI_INCOMPLETE` with nothing
//! written (the RMM taking an interrupt), a caller buffer too small, and
//! an RMM that breaks the contract.

use atoll_rsi_client::{RsiBackend, RsiClient, RsiError};
use ipc_schema::rsi::{fid, status};
use ipc_schema::smccc::SmcRegs;
use proptest::prelude::*;

const BUF_IPA: u64 = 0x4000_0000;

struct TokenRmm {
    token: Vec<u8>,
    sent: usize,
    granule: Vec<u8>,
    /// Bytes written per CONTINUE, cycled; 0 = an interrupted call.
    chunks: Vec<usize>,
    calls: usize,
    /// Report this many more bytes than asked for on the first call.
    overrun: bool,
    bound: u64,
    initialised: bool,
}

impl TokenRmm {
    fn new(token: Vec<u8>, chunks: Vec<usize>) -> Self {
        let bound = token.len() as u64 + 100;
        Self {
            token,
            sent: 0,
            granule: vec![0; 4096],
            chunks,
            calls: 0,
            overrun: false,
            bound,
            initialised: false,
        }
    }
}

impl RsiBackend for TokenRmm {
    type Error = String;

    fn smc(&mut self, regs: SmcRegs) -> Result<SmcRegs, String> {
        let mut out = [0u64; 18];
        match regs[0] {
            fid::ATTEST_TOKEN_INIT => {
                self.initialised = true;
                self.sent = 0;
                out[1] = self.bound;
            }
            fid::ATTEST_TOKEN_CONTINUE => {
                if !self.initialised {
                    out[0] = status::ERROR_STATE;
                    return Ok(out);
                }
                assert_eq!(regs[1], BUF_IPA);
                let (offset, size) = (regs[2] as usize, regs[3] as usize);
                assert!(offset + size <= 4096, "asked beyond the granule");
                let want = self.chunks[self.calls % self.chunks.len()];
                self.calls += 1;
                let n = want.min(size).min(self.token.len() - self.sent);
                self.granule[offset..offset + n]
                    .copy_from_slice(&self.token[self.sent..self.sent + n]);
                self.sent += n;
                out[1] = if self.overrun {
                    size as u64 + 1
                } else {
                    n as u64
                };
                out[0] = if self.sent == self.token.len() && want > 0 {
                    self.initialised = false;
                    status::SUCCESS
                } else {
                    status::INCOMPLETE
                };
            }
            _ => out[0] = u64::MAX,
        }
        Ok(out)
    }

    fn buffer_ipa(&self) -> u64 {
        BUF_IPA
    }

    fn read_buffer(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), String> {
        buf.copy_from_slice(&self.granule[offset..offset + buf.len()]);
        Ok(())
    }

    fn write_buffer(&mut self, offset: usize, data: &[u8]) -> Result<(), String> {
        self.granule[offset..offset + data.len()].copy_from_slice(data);
        Ok(())
    }
}

proptest! {
    #[test]
    fn any_token_any_chunking(
        token in proptest::collection::vec(any::<u8>(), 1..12_000),
        chunks in proptest::collection::vec(prop_oneof![Just(0usize), 1usize..5000], 1..6)
            .prop_filter("some progress", |c| c.iter().any(|&n| n > 0)),
    ) {
        let mut c = RsiClient::new(TokenRmm::new(token.clone(), chunks));
        prop_assert_eq!(c.attestation_token_vec(&[7; 64]).unwrap(), token.clone());
        // Into a caller buffer of exactly the token's size, too.
        let mut out = vec![0u8; token.len()];
        let n = c.attestation_token(&[7; 64], &mut out).unwrap();
        prop_assert_eq!(&out[..n], &token[..]);
    }
}

#[test]
fn multi_granule_token_with_interrupted_calls() {
    let token: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let mut c = RsiClient::new(TokenRmm::new(token.clone(), vec![0, 3000, 0, 700]));
    assert_eq!(c.attestation_token_vec(&[1; 64]).unwrap(), token);
    assert!(c.backend().calls > 10_000 / 3700);
}

#[test]
fn caller_buffer_too_small() {
    let mut c = RsiClient::new(TokenRmm::new(vec![9; 5000], vec![4096]));
    let mut out = vec![0u8; 4096];
    assert_eq!(
        c.attestation_token(&[1; 64], &mut out),
        Err(RsiError::BufferTooSmall { needed: 5100 })
    );
}

#[test]
fn rmm_writing_more_than_asked_is_refused() {
    let mut rmm = TokenRmm::new(vec![1; 100], vec![100]);
    rmm.overrun = true;
    let mut c = RsiClient::new(rmm);
    assert!(matches!(
        c.attestation_token_vec(&[0; 64]),
        Err(RsiError::Protocol(_))
    ));
}

#[test]
fn unbelievable_bound_is_refused() {
    let mut rmm = TokenRmm::new(vec![1; 100], vec![100]);
    rmm.bound = 1 << 40;
    let mut c = RsiClient::new(rmm);
    assert!(matches!(
        c.attestation_token_vec(&[0; 64]),
        Err(RsiError::Protocol(_))
    ));
}
