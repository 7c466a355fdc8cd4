//! The C API. `include/atoll_sdk.h` is generated from this file by
//! cbindgen at build time.
//!
//! Conventions, the same for every function:
//!
//! * The return value is an [`AtollStatus`]; `ATOLL_STATUS_OK` (0) is
//!   success, everything else is negative.
//! * Output buffers are caller-provided: `out` and `out_len`, where
//!   `*out_len` is the buffer's size on entry and the bytes written on
//!   return. If the buffer is too small, nothing is written,
//!   `ATOLL_STATUS_BUFFER_TOO_SMALL` is returned and `*out_len` holds the
//!   size needed.
//! * Every pointer is checked for NULL (`ATOLL_STATUS_NULL_POINTER`); a
//!   length of zero allows a NULL data pointer.
//! * A Rust panic never crosses into C: it becomes
//!   `ATOLL_STATUS_INTERNAL`.

use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use atoll_rsi_client::sim::{SimBackend, SimError};
use atoll_rsi_client::RsiError;

use crate::{EnvelopeError, Sdk, SdkError, VerifyError};

/// Status of a C API call.
#[repr(i32)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AtollStatus {
    /// Success.
    Ok = 0,
    /// A required pointer was NULL.
    NullPointer = -1,
    /// The output buffer is too small; `*out_len` holds the size needed.
    BufferTooSmall = -2,
    /// An argument is invalid (challenge length, index, UTF-8 path).
    InvalidArgument = -3,
    /// The connection to the platform failed (simulator socket).
    Backend = -4,
    /// The RMM refused an argument (`RSI_ERROR_INPUT`).
    RsiInput = -5,
    /// The call is not valid in the realm's current state
    /// (`RSI_ERROR_STATE`).
    RsiState = -6,
    /// The RMM could not complete the call (`RSI_ERROR_UNKNOWN`), e.g. no
    /// attestation key or sealing key is available on this platform.
    RsiUnknown = -7,
    /// The RMM does not implement the call (`SMC_UNKNOWN`).
    NotSupported = -8,
    /// Sealed data failed authentication: wrong realm or key, or modified.
    Authentication = -9,
    /// Not a sealed envelope this SDK reads.
    BadEnvelope = -10,
    /// The token did not decode or verify.
    VerifyFailed = -11,
    /// The CPAK JWK could not be read.
    BadKey = -12,
    /// An internal error (a bug): reported rather than crashing the caller.
    Internal = -13,
}

/// An SDK handle: opaque to C.
pub struct AtollSdk {
    sdk: Sdk<SimBackend>,
}

fn rsi_status(e: &RsiError<SimError>) -> AtollStatus {
    match e {
        RsiError::Backend(_) => AtollStatus::Backend,
        RsiError::Input { .. } => AtollStatus::RsiInput,
        RsiError::State { .. } => AtollStatus::RsiState,
        RsiError::Unknown { .. } => AtollStatus::RsiUnknown,
        RsiError::NotSupported { .. } => AtollStatus::NotSupported,
        RsiError::InvalidArgument(_) => AtollStatus::InvalidArgument,
        RsiError::BufferTooSmall { .. } => AtollStatus::BufferTooSmall,
        RsiError::UnexpectedStatus { .. }
        | RsiError::VersionMismatch { .. }
        | RsiError::Protocol(_) => AtollStatus::Internal,
    }
}

fn sdk_status(e: &SdkError<SimError>) -> AtollStatus {
    match e {
        SdkError::Rsi(e) => rsi_status(e),
        SdkError::ChallengeLength(_) => AtollStatus::InvalidArgument,
        SdkError::Envelope(EnvelopeError::Authentication) => AtollStatus::Authentication,
        SdkError::Envelope(EnvelopeError::Random) => AtollStatus::Internal,
        SdkError::Envelope(_) => AtollStatus::BadEnvelope,
    }
}

/// Runs `f`, turning a panic into [`AtollStatus::Internal`].
fn guarded(f: impl FnOnce() -> AtollStatus) -> AtollStatus {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(AtollStatus::Internal)
}

/// Borrows `len` bytes at `ptr`; `None` for a NULL pointer with a non-zero
/// length.
///
/// # Safety
/// A non-NULL `ptr` must point to `len` readable bytes that stay valid and
/// unmodified for `'a`.
unsafe fn input<'a>(ptr: *const u8, len: usize) -> Option<&'a [u8]> {
    if len == 0 {
        return Some(&[]);
    }
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-NULL, and the caller guarantees `len` readable bytes
    // valid for 'a (the C API's documented contract).
    Some(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Copies `data` into the caller's `out`/`out_len` buffer, or reports the
/// size needed.
///
/// # Safety
/// `out_len` must be non-NULL and valid for reads and writes; a non-NULL
/// `out` must point to `*out_len` writable bytes.
unsafe fn output(data: &[u8], out: *mut u8, out_len: *mut usize) -> AtollStatus {
    // SAFETY: checked non-NULL by every caller; valid per the contract.
    let cap = unsafe { *out_len };
    // SAFETY: as above.
    unsafe { *out_len = data.len() };
    if data.len() > cap {
        return AtollStatus::BufferTooSmall;
    }
    if data.is_empty() {
        return AtollStatus::Ok;
    }
    if out.is_null() {
        return AtollStatus::NullPointer;
    }
    // SAFETY: `out` is non-NULL and holds `cap >= data.len()` writable
    // bytes; `data` is Rust-owned memory, so the ranges cannot overlap.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), out, data.len()) };
    AtollStatus::Ok
}

/// Borrows the SDK behind a handle.
///
/// # Safety
/// A non-NULL `sdk` must come from [`atoll_sdk_connect_sim`] and not have
/// been freed, and no other call may use it concurrently.
unsafe fn handle<'a>(sdk: *mut AtollSdk) -> Option<&'a mut AtollSdk> {
    // SAFETY: per the contract, a non-NULL handle is a live, exclusively
    // used `Box<AtollSdk>` allocation.
    unsafe { sdk.as_mut() }
}

/// Connects to the simulator's vCPU socket at `socket_path` (NUL-terminated
/// UTF-8) and stores a new handle in `*out`. Free it with
/// [`atoll_sdk_free`].
///
/// # Safety
/// `socket_path` must be a valid NUL-terminated string and `out` valid for
/// a pointer-sized write.
#[no_mangle]
pub unsafe extern "C" fn atoll_sdk_connect_sim(
    socket_path: *const c_char,
    out: *mut *mut AtollSdk,
) -> AtollStatus {
    guarded(|| {
        if socket_path.is_null() || out.is_null() {
            return AtollStatus::NullPointer;
        }
        // SAFETY: non-NULL and NUL-terminated per the contract.
        let path = unsafe { CStr::from_ptr(socket_path) };
        let Ok(path) = path.to_str() else {
            return AtollStatus::InvalidArgument;
        };
        match Sdk::connect_sim(path) {
            Ok(sdk) => {
                let h = Box::into_raw(Box::new(AtollSdk { sdk }));
                // SAFETY: `out` is non-NULL and writable per the contract.
                unsafe { *out = h };
                AtollStatus::Ok
            }
            Err(e) => sdk_status(&e),
        }
    })
}

/// Closes the connection and frees the handle. NULL is ignored.
///
/// # Safety
/// `sdk` must be NULL or a handle from [`atoll_sdk_connect_sim`] not yet
/// freed; it must not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn atoll_sdk_free(sdk: *mut AtollSdk) {
    if sdk.is_null() {
        return;
    }
    // SAFETY: a live handle made by `Box::into_raw` in
    // `atoll_sdk_connect_sim`, freed exactly once per the contract.
    drop(unsafe { Box::from_raw(sdk) });
}

/// Writes an attestation token for `challenge` (32 to 64 bytes) into
/// `token`/`token_len`. A too-small buffer reports the token's size; the
/// next call fetches a new token.
///
/// # Safety
/// `sdk` a live handle; `challenge` `challenge_len` readable bytes;
/// `token_len` valid for read and write; `token` `*token_len` writable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn atoll_attest(
    sdk: *mut AtollSdk,
    challenge: *const u8,
    challenge_len: usize,
    token: *mut u8,
    token_len: *mut usize,
) -> AtollStatus {
    guarded(|| {
        // SAFETY: the handle contract of this function.
        let Some(h) = (unsafe { handle(sdk) }) else {
            return AtollStatus::NullPointer;
        };
        // SAFETY: `challenge_len` readable bytes per the contract.
        let Some(challenge) = (unsafe { input(challenge, challenge_len) }) else {
            return AtollStatus::NullPointer;
        };
        if token_len.is_null() {
            return AtollStatus::NullPointer;
        }
        match h.sdk.attest(challenge) {
            // SAFETY: `token_len` non-NULL; `token` sized per the contract.
            Ok(t) => unsafe { output(&t, token, token_len) },
            Err(e) => sdk_status(&e),
        }
    })
}

/// Reads measurement slot `index` (0 = RIM, 1..=4 = REMs): 64 bytes,
/// zero-padded beyond the digest, into `out`/`out_len`.
///
/// # Safety
/// As for [`atoll_attest`].
#[no_mangle]
pub unsafe extern "C" fn atoll_measurement_read(
    sdk: *mut AtollSdk,
    index: u32,
    out: *mut u8,
    out_len: *mut usize,
) -> AtollStatus {
    guarded(|| {
        // SAFETY: the handle contract of this function.
        let Some(h) = (unsafe { handle(sdk) }) else {
            return AtollStatus::NullPointer;
        };
        if out_len.is_null() {
            return AtollStatus::NullPointer;
        }
        match h.sdk.rsi().measurement_read(u64::from(index)) {
            // SAFETY: `out_len` non-NULL; `out` sized per the contract.
            Ok(v) => unsafe { output(&v, out, out_len) },
            Err(e) => rsi_status(&e),
        }
    })
}

/// Extends REM `index` (1..=4) with `data` (at most 64 bytes).
///
/// # Safety
/// `sdk` a live handle; `data` `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn atoll_measurement_extend(
    sdk: *mut AtollSdk,
    index: u32,
    data: *const u8,
    len: usize,
) -> AtollStatus {
    guarded(|| {
        // SAFETY: the handle contract of this function.
        let Some(h) = (unsafe { handle(sdk) }) else {
            return AtollStatus::NullPointer;
        };
        // SAFETY: `len` readable bytes per the contract.
        let Some(data) = (unsafe { input(data, len) }) else {
            return AtollStatus::NullPointer;
        };
        match h.sdk.rsi().measurement_extend(u64::from(index), data) {
            Ok(()) => AtollStatus::Ok,
            Err(e) => rsi_status(&e),
        }
    })
}

/// Seals `data` under the realm sealing key for `key_flags` and `svn`
/// into `out`/`out_len` (the envelope is `len + 52` bytes).
///
/// # Safety
/// `sdk` a live handle; `data` `len` readable bytes; `out_len` valid for
/// read and write; `out` `*out_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn atoll_seal(
    sdk: *mut AtollSdk,
    data: *const u8,
    len: usize,
    key_flags: u64,
    svn: u64,
    out: *mut u8,
    out_len: *mut usize,
) -> AtollStatus {
    guarded(|| {
        // SAFETY: the handle contract of this function.
        let Some(h) = (unsafe { handle(sdk) }) else {
            return AtollStatus::NullPointer;
        };
        // SAFETY: `len` readable bytes per the contract.
        let Some(data) = (unsafe { input(data, len) }) else {
            return AtollStatus::NullPointer;
        };
        if out_len.is_null() {
            return AtollStatus::NullPointer;
        }
        // SAFETY: `out_len` is non-NULL and readable per the contract.
        let cap = unsafe { *out_len };
        let needed = len.saturating_add(crate::envelope::OVERHEAD);
        if cap < needed {
            // SAFETY: as above, writable.
            unsafe { *out_len = needed };
            return AtollStatus::BufferTooSmall;
        }
        match h.sdk.seal_with_svn(data, key_flags, svn) {
            // SAFETY: `out_len` non-NULL; `out` sized per the contract.
            Ok(sealed) => unsafe { output(&sealed, out, out_len) },
            Err(e) => sdk_status(&e),
        }
    })
}

/// Opens an envelope made by [`atoll_seal`] into `out`/`out_len`.
///
/// # Safety
/// As for [`atoll_seal`].
#[no_mangle]
pub unsafe extern "C" fn atoll_unseal(
    sdk: *mut AtollSdk,
    sealed: *const u8,
    len: usize,
    out: *mut u8,
    out_len: *mut usize,
) -> AtollStatus {
    guarded(|| {
        // SAFETY: the handle contract of this function.
        let Some(h) = (unsafe { handle(sdk) }) else {
            return AtollStatus::NullPointer;
        };
        // SAFETY: `len` readable bytes per the contract.
        let Some(sealed) = (unsafe { input(sealed, len) }) else {
            return AtollStatus::NullPointer;
        };
        if out_len.is_null() {
            return AtollStatus::NullPointer;
        }
        match h.sdk.unseal(sealed) {
            // SAFETY: `out_len` non-NULL; `out` sized per the contract.
            Ok(data) => unsafe { output(&data, out, out_len) },
            Err(e) => sdk_status(&e),
        }
    })
}

/// Verifies `token` against the CPAK given as a JWK (NUL-terminated JSON):
/// both signatures and the RAK binding.
///
/// # Safety
/// `token` `len` readable bytes; `cpak_jwk` a valid NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn atoll_verify(
    token: *const u8,
    len: usize,
    cpak_jwk: *const c_char,
) -> AtollStatus {
    guarded(|| {
        // SAFETY: `len` readable bytes per the contract.
        let Some(token) = (unsafe { input(token, len) }) else {
            return AtollStatus::NullPointer;
        };
        if cpak_jwk.is_null() {
            return AtollStatus::NullPointer;
        }
        // SAFETY: non-NULL and NUL-terminated per the contract.
        let Ok(jwk) = (unsafe { CStr::from_ptr(cpak_jwk) }).to_str() else {
            return AtollStatus::InvalidArgument;
        };
        let cpak = match crate::cpak_from_jwk(jwk) {
            Ok(k) => k,
            Err(_) => return AtollStatus::BadKey,
        };
        match crate::verify(token, &cpak) {
            Ok(_) => AtollStatus::Ok,
            Err(VerifyError::Key(_)) => AtollStatus::BadKey,
            Err(_) => AtollStatus::VerifyFailed,
        }
    })
}

/// A static, NUL-terminated description of a status value.
#[no_mangle]
pub extern "C" fn atoll_status_message(status: i32) -> *const c_char {
    let msg: &'static CStr = match status {
        0 => c"success",
        -1 => c"a required pointer was NULL",
        -2 => c"output buffer too small",
        -3 => c"invalid argument",
        -4 => c"platform connection failed",
        -5 => c"RSI_ERROR_INPUT: the RMM refused an argument",
        -6 => c"RSI_ERROR_STATE: not valid in the current state",
        -7 => c"RSI_ERROR_UNKNOWN: the RMM could not complete the call",
        -8 => c"not implemented by the RMM (SMC_UNKNOWN)",
        -9 => c"sealed data failed authentication",
        -10 => c"not a sealed envelope",
        -11 => c"token verification failed",
        -12 => c"invalid CPAK key",
        -13 => c"internal error",
        _ => c"unknown status",
    };
    msg.as_ptr()
}
