//! [`RsiClient`]: one method per RSI command.

use alloc::vec;
use alloc::vec::Vec;

use ipc_schema::islet::{self, RealmMetadata};
use ipc_schema::rmi::Ripas;
use ipc_schema::rsi::{self, fid, status, RsiRealmConfig, CHALLENGE_BYTES, MEASUREMENT_BYTES};
use ipc_schema::simvcpu::host_call;
use ipc_schema::smccc::{smc_regs, SmcRegs, SMC_UNKNOWN};
use zerocopy::{FromZeros, IntoBytes};
use zeroize::Zeroize;

use crate::{RsiBackend, RsiError, GRANULE_SIZE};

/// Largest token [`RsiClient::attestation_token_vec`] accepts: an RMM
/// announcing more is not believed (CCA tokens are a few KiB).
pub const MAX_TOKEN_LEN: usize = 1 << 20;

/// Most `RSI_ATTESTATION_TOKEN_CONTINUE` calls one token may take. The RMM
/// may answer `RSI_INCOMPLETE` with nothing written (to take an interrupt),
/// so progress is not guaranteed per call; this bound keeps a broken RMM
/// from looping the realm forever.
const MAX_CONTINUE_CALLS: usize = 1 << 20;

/// `RSI_VERSION` outputs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RsiVersion {
    /// Lowest revision implemented (`major << 16 | minor`).
    pub lower: u64,
    /// Highest revision implemented.
    pub higher: u64,
}

impl RsiVersion {
    /// `(major, minor)` of a revision.
    pub const fn split(v: u64) -> (u64, u64) {
        (v >> 16, v & 0xFFFF)
    }
}

/// The realm's measurement hash algorithm.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-256: 32-byte measurements, zero-padded to 64 in registers.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// Bytes of a digest.
    pub const fn digest_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// The name used in tokens and reference values ("sha-256", ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha-256",
            Self::Sha512 => "sha-512",
        }
    }
}

/// `RsiRealmConfig`, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealmConfig {
    /// IPA width in bits.
    pub ipa_width: u64,
    /// Measurement hash algorithm.
    pub hash_algo: HashAlgorithm,
    /// Realm personalization value.
    pub rpv: [u8; 64],
}

/// `RSI_IPA_STATE_GET` outputs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct IpaState {
    /// End of the range (from `base`) that has `ripas`.
    pub top: u64,
    /// The RIPAS of `base..top`.
    pub ripas: Ripas,
}

/// `RSI_IPA_STATE_SET` outputs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct IpaStateChange {
    /// End of the range whose RIPAS changed.
    pub top: u64,
    /// Whether the host accepted the change (`RSI_ACCEPT`).
    pub accepted: bool,
}

/// A 256-bit realm sealing key; zeroed when dropped so it does not linger
/// in freed memory.
#[derive(Clone, PartialEq, Eq)]
pub struct SealingKey(pub [u8; 32]);

impl Drop for SealingKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl core::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

/// A typed RSI client over a backend. Every method issues the command's
/// SMCs and maps its status: see [`RsiError`].
pub struct RsiClient<B> {
    backend: B,
}

type Result<T, B> = core::result::Result<T, RsiError<<B as RsiBackend>::Error>>;

fn le_words_to_bytes(words: &[u64], out: &mut [u8]) {
    for (chunk, w) in out.chunks_mut(8).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes()[..chunk.len()]);
    }
}

fn bytes_to_le_words(bytes: &[u8], out: &mut [u64]) {
    for (w, chunk) in out.iter_mut().zip(bytes.chunks(8)) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        *w = u64::from_le_bytes(b);
    }
}

impl<B: RsiBackend> RsiClient<B> {
    /// A client issuing SMCs through `backend`.
    pub fn new(backend: B) -> Self {
        Self { backend }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, mutably (e.g. for memory access beyond RSI buffers).
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Gives the backend back.
    pub fn into_inner(self) -> B {
        self.backend
    }

    /// Issues `fid` with `args` in x1.. and returns x0..x17 unchanged:
    /// for calls this client has no method for. Only backend failures are
    /// errors here.
    pub fn raw_call(&mut self, fid: u64, args: &[u64]) -> Result<SmcRegs, B> {
        if args.len() > 17 {
            return Err(RsiError::InvalidArgument("at most 17 argument registers"));
        }
        self.backend
            .smc(smc_regs(fid, args))
            .map_err(RsiError::Backend)
    }

    /// Issues a call and maps x0: `Ok(regs)` on `RSI_SUCCESS`.
    fn call(&mut self, command: &'static str, fid: u64, args: &[u64]) -> Result<SmcRegs, B> {
        let out = self.raw_call(fid, args)?;
        check(command, out[0])?;
        Ok(out)
    }

    /// `RSI_VERSION`: asks for v1.0, the revision this client speaks.
    pub fn version(&mut self) -> Result<RsiVersion, B> {
        let out = self.raw_call(fid::VERSION, &[rsi::VERSION_1_0])?;
        let v = RsiVersion {
            lower: out[1],
            higher: out[2],
        };
        match out[0] {
            status::SUCCESS => Ok(v),
            status::ERROR_INPUT => Err(RsiError::VersionMismatch {
                requested: rsi::VERSION_1_0,
                lower: v.lower,
                higher: v.higher,
            }),
            other => Err(status_error("RSI_VERSION", other)),
        }
    }

    /// `RSI_FEATURES`: feature register `index`.
    pub fn features(&mut self, index: u64) -> Result<u64, B> {
        Ok(self.call("RSI_FEATURES", fid::FEATURES, &[index])?[1])
    }

    /// `RSI_MEASUREMENT_READ`: slot `index` (0 = RIM, 1..=4 = REMs), 64
    /// bytes, zero-padded beyond the digest.
    pub fn measurement_read(&mut self, index: u64) -> Result<[u8; MEASUREMENT_BYTES], B> {
        let out = self.call("RSI_MEASUREMENT_READ", fid::MEASUREMENT_READ, &[index])?;
        let mut value = [0u8; MEASUREMENT_BYTES];
        le_words_to_bytes(&out[1..9], &mut value);
        Ok(value)
    }

    /// `RSI_MEASUREMENT_EXTEND`: extends REM `index` (1..=4) with `data`
    /// (at most 64 bytes, which travel in registers).
    pub fn measurement_extend(&mut self, index: u64, data: &[u8]) -> Result<(), B> {
        if data.len() > MEASUREMENT_BYTES {
            return Err(RsiError::InvalidArgument(
                "measurement data is at most 64 bytes",
            ));
        }
        let mut args = [0u64; 10];
        args[0] = index;
        args[1] = data.len() as u64;
        bytes_to_le_words(data, &mut args[2..]);
        self.call("RSI_MEASUREMENT_EXTEND", fid::MEASUREMENT_EXTEND, &args)?;
        Ok(())
    }

    /// `RSI_ATTESTATION_TOKEN_INIT`: starts a token for `challenge`;
    /// returns the RMM's upper bound of the token's size.
    pub fn attestation_token_init(
        &mut self,
        challenge: &[u8; CHALLENGE_BYTES],
    ) -> Result<usize, B> {
        let mut args = [0u64; 8];
        bytes_to_le_words(challenge, &mut args);
        let out = self.call("RSI_ATTESTATION_TOKEN_INIT", fid::ATTEST_TOKEN_INIT, &args)?;
        usize::try_from(out[1]).map_err(|_| RsiError::Protocol("token size bound overflows"))
    }

    /// Runs `RSI_ATTESTATION_TOKEN_CONTINUE` until the token is complete,
    /// into `out`; returns its length.
    ///
    /// The token is written one granule at a time into the backend's
    /// buffer granule, then copied out: `RSI_INCOMPLETE` with a granule
    /// not yet full (the RMM took an interrupt, or more is coming) is
    /// continued at the offset reached; a full granule is copied out and
    /// the buffer reused from offset 0, so tokens of any size need one
    /// granule of realm memory.
    pub fn attestation_token(
        &mut self,
        challenge: &[u8; CHALLENGE_BYTES],
        out: &mut [u8],
    ) -> Result<usize, B> {
        let bound = self.attestation_token_init(challenge)?;
        self.attestation_token_continue(bound, out)
    }

    fn attestation_token_continue(&mut self, bound: usize, out: &mut [u8]) -> Result<usize, B> {
        const COMMAND: &str = "RSI_ATTESTATION_TOKEN_CONTINUE";
        let ipa = self.backend.buffer_ipa();
        let mut total = 0usize;
        let mut calls = 0usize;
        loop {
            let mut offset = 0usize;
            let finished = loop {
                calls += 1;
                if calls > MAX_CONTINUE_CALLS {
                    return Err(RsiError::Protocol("token never completed"));
                }
                let size = GRANULE_SIZE - offset;
                let r = self.raw_call(
                    fid::ATTEST_TOKEN_CONTINUE,
                    &[ipa, offset as u64, size as u64],
                )?;
                let written = usize::try_from(r[1]).unwrap_or(usize::MAX);
                match r[0] {
                    status::SUCCESS | status::INCOMPLETE if written > size => {
                        return Err(RsiError::Protocol("more token bytes than the buffer held"));
                    }
                    status::SUCCESS => {
                        offset += written;
                        break true;
                    }
                    status::INCOMPLETE => {
                        offset += written;
                        if offset == GRANULE_SIZE {
                            break false;
                        }
                    }
                    other => return Err(status_error(COMMAND, other)),
                }
            };
            let end = total + offset;
            if end > out.len() {
                return Err(RsiError::BufferTooSmall {
                    needed: bound.max(end),
                });
            }
            self.backend
                .read_buffer(0, &mut out[total..end])
                .map_err(RsiError::Backend)?;
            total = end;
            if finished {
                return Ok(total);
            }
        }
    }

    /// [`RsiClient::attestation_token`] into a vector sized by the RMM's
    /// bound (refused above [`MAX_TOKEN_LEN`]).
    pub fn attestation_token_vec(
        &mut self,
        challenge: &[u8; CHALLENGE_BYTES],
    ) -> Result<Vec<u8>, B> {
        let bound = self.attestation_token_init(challenge)?;
        if bound > MAX_TOKEN_LEN {
            return Err(RsiError::Protocol("token size bound above MAX_TOKEN_LEN"));
        }
        let mut token = vec![0u8; bound];
        let n = self.attestation_token_continue(bound, &mut token)?;
        token.truncate(n);
        Ok(token)
    }

    /// `RSI_REALM_CONFIG`, through the buffer granule (zeroed first, as
    /// the RMM writes only the fields it defines).
    pub fn realm_config(&mut self) -> Result<RealmConfig, B> {
        let zero = RsiRealmConfig::new_zeroed();
        self.backend
            .write_buffer(0, zero.as_bytes())
            .map_err(RsiError::Backend)?;
        let ipa = self.backend.buffer_ipa();
        self.call("RSI_REALM_CONFIG", fid::REALM_CONFIG, &[ipa])?;
        let mut cfg = RsiRealmConfig::new_zeroed();
        self.backend
            .read_buffer(0, cfg.as_mut_bytes())
            .map_err(RsiError::Backend)?;
        let hash_algo = match cfg.hash_algo {
            rsi::hash_algo::SHA_256 => HashAlgorithm::Sha256,
            rsi::hash_algo::SHA_512 => HashAlgorithm::Sha512,
            _ => {
                return Err(RsiError::Protocol(
                    "undefined hash algorithm in realm config",
                ))
            }
        };
        Ok(RealmConfig {
            ipa_width: cfg.ipa_width,
            hash_algo,
            rpv: cfg.rpv,
        })
    }

    /// `RSI_IPA_STATE_GET` for `base..top`.
    pub fn ipa_state_get(&mut self, base: u64, top: u64) -> Result<IpaState, B> {
        let out = self.call("RSI_IPA_STATE_GET", fid::IPA_STATE_GET, &[base, top])?;
        let ripas = u8::try_from(out[2])
            .ok()
            .and_then(Ripas::from_u8)
            .ok_or(RsiError::Protocol("undefined RIPAS value"))?;
        Ok(IpaState { top: out[1], ripas })
    }

    /// `RSI_IPA_STATE_SET`: asks for `base..top` to become `ripas` (EMPTY
    /// or RAM); `change_destroyed` allows DESTROYED pages to change. The
    /// host may apply only part of the range, or reject it.
    pub fn ipa_state_set(
        &mut self,
        base: u64,
        top: u64,
        ripas: Ripas,
        change_destroyed: bool,
    ) -> Result<IpaStateChange, B> {
        let flags = if change_destroyed {
            rsi::ipa_state_flags::CHANGE_DESTROYED
        } else {
            0
        };
        let out = self.call(
            "RSI_IPA_STATE_SET",
            fid::IPA_STATE_SET,
            &[base, top, ripas as u64, flags],
        )?;
        Ok(IpaStateChange {
            top: out[1],
            accepted: out[2] == rsi::ripas_response::ACCEPT,
        })
    }

    /// `RSI_HOST_CALL` with immediate `imm` and x0..x30 = `gprs`; returns
    /// the registers as the host left them. The structure lives at the
    /// start of the buffer granule.
    pub fn host_call(&mut self, imm: u16, gprs: &[u64; 31]) -> Result<[u64; 31], B> {
        let mut call = [0u8; 256];
        call[..2].copy_from_slice(&imm.to_le_bytes());
        le_words_to_bytes(gprs, &mut call[8..]);
        self.backend
            .write_buffer(0, &call)
            .map_err(RsiError::Backend)?;
        let ipa = self.backend.buffer_ipa();
        self.call("RSI_HOST_CALL", fid::HOST_CALL, &[ipa])?;
        self.backend
            .read_buffer(0, &mut call)
            .map_err(RsiError::Backend)?;
        let mut out = [0u64; 31];
        bytes_to_le_words(&call[8..], &mut out);
        Ok(out)
    }

    /// Writes `text` to the host's console through the Atoll host's
    /// console host call ([`host_call::CONSOLE_WRITE`]), in pieces of at
    /// most [`host_call::CONSOLE_MAX`] bytes; returns the bytes the host
    /// took. A host without the call answers [`RsiError::NotSupported`].
    pub fn console_write(&mut self, text: &[u8]) -> Result<usize, B> {
        let mut written = 0;
        for piece in text.chunks(host_call::CONSOLE_MAX) {
            let mut gprs = [0u64; 31];
            gprs[0] = piece.len() as u64;
            bytes_to_le_words(piece, &mut gprs[1..]);
            let out = self.host_call(host_call::CONSOLE_WRITE, &gprs)?;
            if out[0] == host_call::UNKNOWN {
                return Err(RsiError::NotSupported {
                    command: "console host call",
                });
            }
            let took = usize::try_from(out[0]).unwrap_or(usize::MAX);
            if took > piece.len() {
                return Err(RsiError::Protocol("host took more console bytes than sent"));
            }
            written += took;
            if took < piece.len() {
                break;
            }
        }
        Ok(written)
    }

    /// `RSI_ISLET_REALM_METADATA`: the signed metadata block the host
    /// attached to this realm (x1 = IPA of a granule the RMM copies the
    /// 432-byte block into).
    pub fn realm_metadata(&mut self) -> Result<RealmMetadata, B> {
        let ipa = self.backend.buffer_ipa();
        self.call(
            "RSI_ISLET_REALM_METADATA",
            islet::fid::RSI_REALM_METADATA,
            &[ipa],
        )?;
        let mut md = RealmMetadata::new_zeroed();
        self.backend
            .read_buffer(0, md.as_mut_bytes())
            .map_err(RsiError::Backend)?;
        Ok(md)
    }

    /// `RSI_ISLET_REALM_SEALING_KEY`: the realm sealing key for `flags`
    /// ([`crate::sealing_flags`]) and `svn`. Undefined flag bits are
    /// refused here rather than sent.
    pub fn sealing_key(&mut self, flags: u64, svn: u64) -> Result<SealingKey, B> {
        if flags & !islet::sealing_flags::MASK != 0 {
            return Err(RsiError::InvalidArgument("undefined sealing-key flag bits"));
        }
        let mut out = self.call(
            "RSI_ISLET_REALM_SEALING_KEY",
            islet::fid::RSI_REALM_SEALING_KEY,
            &[flags, svn],
        )?;
        let mut key = SealingKey([0; 32]);
        le_words_to_bytes(&out[1..5], &mut key.0);
        out.zeroize();
        Ok(key)
    }
}

/// Maps a non-success RSI status.
fn status_error<E>(command: &'static str, x0: u64) -> RsiError<E> {
    match x0 {
        status::ERROR_INPUT => RsiError::Input { command },
        status::ERROR_STATE => RsiError::State { command },
        status::ERROR_UNKNOWN => RsiError::Unknown { command },
        SMC_UNKNOWN => RsiError::NotSupported { command },
        status => RsiError::UnexpectedStatus { command, status },
    }
}

fn check<E>(command: &'static str, x0: u64) -> core::result::Result<(), RsiError<E>> {
    if x0 == status::SUCCESS {
        Ok(())
    } else {
        Err(status_error(command, x0))
    }
}
