//! The realm payload's logic, independent of how it runs: what it asks the
//! RMM (through any [`RsiBackend`]) and how it packs what it hands to the
//! host into host calls. `main.rs` runs [`run`] over the SMC backend at
//! R-EL1; the unit tests here run it over a scripted backend on the build
//! machine.
//!
//! Host-call protocol (docs/qemu-boot.md):
//!
//! * [`HOST_CALL_CONSOLE`] (0x0C01): console text, x0 = length, x1.. bytes.
//! * [`HOST_CALL_TOKEN`] (0x0C02): a piece of the attestation token,
//!   x0 = length (1..=240), x1.. = bytes; the pieces in order are the
//!   token; a call with x0 = 0 ends it.
//! * [`HOST_CALL_RIM`] (0x0C03): the RIM the realm read with
//!   `RSI_MEASUREMENT_READ(0)`, x0 = digest length (32 or 64), x1.. bytes.
//!
//! * The realm id from the vendor-signed metadata block
//!   (`RSI_ISLET_REALM_METADATA`) goes out as the console line
//!   `ATOLL-METADATA <realm id>`, which ns-host reports unprefixed.
//!
//! The host answers x0 = bytes taken (or -1 for an immediate it does not
//! know).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;

use atoll_rsi_client::{sealing_flags, RealmMetadata, RsiBackend, RsiClient, RsiError};

/// Console output (`ipc_schema::simvcpu::host_call::CONSOLE_WRITE`).
pub const HOST_CALL_CONSOLE: u16 = ipc_schema::simvcpu::host_call::CONSOLE_WRITE;
/// A piece of the attestation token.
pub const HOST_CALL_TOKEN: u16 = 0x0C02;
/// The realm's RIM.
pub const HOST_CALL_RIM: u16 = 0x0C03;
/// Bytes one host call carries: x1..x30.
pub const HOST_CALL_MAX: usize = 30 * 8;
/// What a host answers for an immediate it does not implement.
pub const HOST_CALL_UNKNOWN: u64 = u64::MAX;
/// PSCI SYSTEM_OFF.
pub const PSCI_SYSTEM_OFF: u64 = ipc_schema::smccc::psci::SYSTEM_OFF;
/// The REM the payload extends.
pub const REM_INDEX: u64 = 1;
/// What it extends it with.
pub const REM_DATA: &[u8] = b"atoll-realm-payload";

/// Console line prefix that carries the realm id read from the metadata.
pub const METADATA_LINE: &str = "ATOLL-METADATA";
/// Sealing-key flags: bound to the vendor's realm id (not the RIM, so an
/// update signed by the same vendor keeps its sealed data).
pub const SEALING_FLAGS: u64 = sealing_flags::REALM_ID;

/// The realm id of a metadata block: the bytes before the first NUL, which
/// must be 1..=127 bytes of printable ASCII.
pub fn realm_id(md: &RealmMetadata) -> Result<&str, Failure> {
    let end = md
        .realm_id
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(md.realm_id.len());
    let id = &md.realm_id[..end];
    if id.is_empty() || end == md.realm_id.len() || !id.iter().all(|b| (0x20..=0x7E).contains(b)) {
        return Err(Failure("realm metadata: bad realm id".into()));
    }
    core::str::from_utf8(id).map_err(|_| Failure("realm metadata: bad realm id".into()))
}

/// The 64-byte challenge from x0..x7 at entry, little-endian per register
/// (the byte order `RSI_ATTESTATION_TOKEN_INIT` takes it in).
pub fn challenge_from_regs(regs: &[u64; 8]) -> [u8; 64] {
    let mut c = [0u8; 64];
    for (chunk, r) in c.chunks_exact_mut(8).zip(regs) {
        chunk.copy_from_slice(&r.to_le_bytes());
    }
    c
}

/// Host-call registers x0..x30 carrying `data` (at most
/// [`HOST_CALL_MAX`] bytes, more are cut off): x0 = length, x1.. the bytes
/// little-endian, eight per register, the last one zero-padded.
pub fn pack(data: &[u8]) -> [u64; 31] {
    let data = &data[..data.len().min(HOST_CALL_MAX)];
    let mut gprs = [0u64; 31];
    gprs[0] = data.len() as u64;
    for (r, chunk) in gprs[1..].iter_mut().zip(data.chunks(8)) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        *r = u64::from_le_bytes(b);
    }
    gprs
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xF)] as char);
    }
    s
}

/// What the payload found; everything also went to the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The RIM (digest length bytes).
    pub rim_len: usize,
    /// Token bytes handed to the host.
    pub token_len: usize,
    /// Whether a sealing key could be derived.
    pub sealing_key: bool,
    /// The realm id from the metadata block.
    pub realm_id: String,
}

/// Why the payload stopped early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure(pub String);

fn fail<E: core::fmt::Display>(what: &str) -> impl Fn(RsiError<E>) -> Failure + '_ {
    move |e| Failure(format!("{what}: {e}"))
}

/// Sends `line` (plus a newline) to the host console. Console failures
/// are not fatal: there is nothing better to report them on.
pub fn say<B: RsiBackend>(rsi: &mut RsiClient<B>, line: &str) {
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    let _ = rsi.console_write(text.as_bytes());
}

/// One host call with immediate `imm` carrying `data`; the host must take
/// all of it.
pub fn send<B: RsiBackend>(rsi: &mut RsiClient<B>, imm: u16, data: &[u8]) -> Result<(), Failure> {
    let out = rsi
        .host_call(imm, &pack(data))
        .map_err(fail("RSI_HOST_CALL"))?;
    if out[0] == HOST_CALL_UNKNOWN {
        return Err(Failure(format!(
            "the host does not know host call {imm:#x}"
        )));
    }
    if out[0] != data.len() as u64 {
        return Err(Failure(format!(
            "host call {imm:#x}: the host took {} of {} bytes",
            out[0],
            data.len()
        )));
    }
    Ok(())
}

/// Hands `token` to the host: pieces of [`HOST_CALL_MAX`] bytes with
/// [`HOST_CALL_TOKEN`], then the zero-length end marker.
pub fn send_token<B: RsiBackend>(rsi: &mut RsiClient<B>, token: &[u8]) -> Result<(), Failure> {
    for piece in token.chunks(HOST_CALL_MAX) {
        send(rsi, HOST_CALL_TOKEN, piece)?;
    }
    send(rsi, HOST_CALL_TOKEN, &[])
}

/// The payload: RSI version, realm config, RIM (printed and sent with
/// [`HOST_CALL_RIM`]), REM extension, an attestation token for `challenge`
/// into `token_buf` (sent with [`HOST_CALL_TOKEN`]), the vendor metadata
/// (its realm id printed as `ATOLL-METADATA <id>`), a sealing key (flags
/// [`SEALING_FLAGS`], SVN 0). Progress goes to the console.
/// The caller powers off afterwards, whatever the result.
pub fn run<B: RsiBackend>(
    rsi: &mut RsiClient<B>,
    challenge: &[u8; 64],
    token_buf: &mut [u8],
) -> Result<Outcome, Failure> {
    say(rsi, "atoll realm payload: started at R-EL1");

    let v = rsi.version().map_err(fail("RSI_VERSION"))?;
    say(
        rsi,
        &format!(
            "RSI version: lower {}.{} higher {}.{}",
            v.lower >> 16,
            v.lower & 0xFFFF,
            v.higher >> 16,
            v.higher & 0xFFFF
        ),
    );

    let cfg = rsi.realm_config().map_err(fail("RSI_REALM_CONFIG"))?;
    say(
        rsi,
        &format!(
            "realm config: ipa_width {} hash {:?}",
            cfg.ipa_width, cfg.hash_algo
        ),
    );

    let md = rsi
        .realm_metadata()
        .map_err(fail("RSI_ISLET_REALM_METADATA"))?;
    let id = String::from(realm_id(&md)?);
    say(
        rsi,
        &format!(
            "realm metadata: realm id {id:?} svn {} version {}.{}.{}",
            md.svn, md.version_major, md.version_minor, md.version_patch
        ),
    );
    say(rsi, &format!("{METADATA_LINE} {id}"));

    let rim = rsi
        .measurement_read(0)
        .map_err(fail("RSI_MEASUREMENT_READ"))?;
    let rim = &rim[..cfg.hash_algo.digest_len()];
    say(rsi, &format!("RIM {}", hex(rim)));
    send(rsi, HOST_CALL_RIM, rim)?;

    rsi.measurement_extend(REM_INDEX, REM_DATA)
        .map_err(fail("RSI_MEASUREMENT_EXTEND"))?;
    let rem = rsi
        .measurement_read(REM_INDEX)
        .map_err(fail("RSI_MEASUREMENT_READ"))?;
    say(
        rsi,
        &format!(
            "REM{REM_INDEX} extended: {}",
            hex(&rem[..cfg.hash_algo.digest_len()])
        ),
    );

    say(rsi, &format!("challenge {}", hex(&challenge[..8])));
    let n = rsi
        .attestation_token(challenge, token_buf)
        .map_err(fail("RSI_ATTESTATION_TOKEN"))?;
    say(rsi, &format!("attestation token: {n} bytes"));
    send_token(rsi, &token_buf[..n])?;

    let sealing_key = match rsi.sealing_key(SEALING_FLAGS, 0) {
        Ok(_key) => {
            // The key is zeroized when dropped; it is never printed.
            say(rsi, "sealing key: derived (realm-id bound)");
            true
        }
        Err(e) => {
            say(rsi, &format!("sealing key: failed: {e}"));
            false
        }
    };
    say(rsi, "atoll realm payload: done");
    Ok(Outcome {
        rim_len: rim.len(),
        token_len: n,
        sealing_key,
        realm_id: id,
    })
}

#[cfg(test)]
mod tests;
