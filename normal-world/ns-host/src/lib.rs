//! ns-host's decisions, independent of the machine: how REC exits are
//! served, how the realm's console, RIM and token host calls are collected,
//! and how results are printed. `main.rs` wires them to `smc #0`, the
//! PL011 and physical memory; the unit tests run them on the build machine.
//!
//! Host calls the realm payload makes (docs/qemu-boot.md):
//!
//! * 0x0C01 console: x0 = length (<= 240), x1.. bytes; printed per line
//!   with the prefix `realm: `.
//! * 0x0C02 token piece: x0 = length, x1.. bytes, appended; x0 = 0 ends the
//!   token.
//! * 0x0C03 RIM: x0 = digest length (<= 64), x1.. bytes.
//!
//! Each is answered with x0 = bytes taken; other immediates with -1.
//!
//! A console line `ATOLL-METADATA <realm id>` (the realm id the payload read
//! with `RSI_ISLET_REALM_METADATA`) is printed like any other and also kept
//! ([`ExitHandler::realm_id`]); [`metadata_line`] reports it unprefixed.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use ipc_schema::rmi::{exit_reason, rec_enter_flags, RmiRecExit};
use ipc_schema::smccc::psci;

/// Console host call.
pub const HOST_CALL_CONSOLE: u16 = ipc_schema::simvcpu::host_call::CONSOLE_WRITE;
/// Token piece host call.
pub const HOST_CALL_TOKEN: u16 = 0x0C02;
/// RIM host call.
pub const HOST_CALL_RIM: u16 = 0x0C03;
/// Bytes one host call carries (x1..x30).
pub const HOST_CALL_MAX: usize = 30 * 8;
/// Answer for an unknown immediate.
pub const HOST_CALL_UNKNOWN: u64 = u64::MAX;
/// Largest token ns-host collects.
pub const MAX_TOKEN: usize = 64 * 1024;
/// Console line (and report line) prefix carrying the realm's metadata id.
pub const METADATA_LINE: &str = "ATOLL-METADATA";
/// Longest console line kept before it is flushed anyway.
pub const MAX_LINE: usize = 512;

const ESR_EC_SHIFT: u32 = 26;
const ESR_EC_MASK: u64 = 0x3F;
const EC_WFX: u64 = 0x01;
const EC_DABT_LOW: u64 = 0x24;
const ESR_ISV: u64 = 1 << 24;
const ESR_WNR: u64 = 1 << 6;

/// PSCI function IDs compare with the SMC32/SMC64 bit folded away.
fn psci_fn(fid: u64) -> u64 {
    fid & !0x4000_0000
}

/// What to do after a REC exit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Enter the REC again with these `RmiRecEnter` flags and registers.
    Enter {
        /// `rec_enter_flags`.
        flags: u64,
        /// `RmiRecEnter::gprs`.
        gprs: [u64; 31],
    },
    /// Apply the requested RIPAS change with `RMI_RTT_SET_RIPAS` over
    /// `[base, top)` (accepting it), then enter again.
    SetRipas {
        /// First IPA.
        base: u64,
        /// End.
        top: u64,
    },
    /// Complete the PSCI request naming `target_mpidr` with
    /// `RMI_PSCI_COMPLETE`, then enter again.
    PsciComplete {
        /// The MPIDR in x1 of the request.
        target_mpidr: u64,
    },
    /// The realm is done.
    Stop(Stop),
}

/// Why the run loop ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// PSCI SYSTEM_OFF.
    SystemOff,
    /// PSCI SYSTEM_RESET (not supported: ends the run).
    SystemReset,
    /// PSCI CPU_OFF of the only REC.
    CpuOff,
    /// An exit the host cannot serve.
    Unexpected(String),
}

impl Action {
    fn plain() -> Self {
        Action::Enter {
            flags: 0,
            gprs: [0; 31],
        }
    }
}

/// Collects what the realm hands over and decides how to serve each exit.
#[derive(Default)]
pub struct ExitHandler {
    line: Vec<u8>,
    /// Token bytes received so far.
    pub token: Vec<u8>,
    /// Whether the realm sent the token's end marker.
    pub token_done: bool,
    /// The RIM the realm sent.
    pub rim: Option<Vec<u8>>,
    /// The realm id from the realm's `ATOLL-METADATA` console line (the
    /// last one, printable ASCII only).
    pub realm_id: Option<String>,
    /// Exits served.
    pub exits: u64,
}

impl ExitHandler {
    /// An empty handler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides how to serve `exit`; complete console lines go to `out`
    /// prefixed `realm: `.
    pub fn handle(&mut self, exit: &RmiRecExit, out: &mut dyn Write) -> Action {
        self.exits += 1;
        match exit.exit_reason {
            exit_reason::IRQ | exit_reason::FIQ => Action::plain(),
            exit_reason::HOST_CALL => self.host_call(exit, out),
            exit_reason::RIPAS_CHANGE => Action::SetRipas {
                base: exit.ripas_base,
                top: exit.ripas_top,
            },
            exit_reason::PSCI => psci_action(exit),
            exit_reason::SYNC => sync_action(exit),
            other => Action::Stop(Stop::Unexpected(alloc::format!(
                "exit reason {other} (esr {:#x})",
                exit.esr
            ))),
        }
    }

    fn host_call(&mut self, exit: &RmiRecExit, out: &mut dyn Write) -> Action {
        let mut gprs = exit.gprs;
        let len = usize::try_from(gprs[0]).unwrap_or(usize::MAX);
        let bytes = unpack(&exit.gprs);
        gprs[0] = match exit.imm {
            HOST_CALL_CONSOLE if len <= HOST_CALL_MAX => {
                self.console(&bytes[..len], out);
                len as u64
            }
            HOST_CALL_TOKEN if len == 0 => {
                self.token_done = true;
                0
            }
            HOST_CALL_TOKEN if len <= HOST_CALL_MAX && self.token.len() + len <= MAX_TOKEN => {
                self.token.extend_from_slice(&bytes[..len]);
                len as u64
            }
            HOST_CALL_RIM if (1..=64).contains(&len) => {
                self.rim = Some(bytes[..len].to_vec());
                len as u64
            }
            // Known immediates with bad lengths and unknown ones.
            _ => HOST_CALL_UNKNOWN,
        };
        Action::Enter { flags: 0, gprs }
    }

    fn console(&mut self, bytes: &[u8], out: &mut dyn Write) {
        for &b in bytes {
            if b == b'\n' {
                self.flush_line(out);
            } else if b != b'\r' {
                self.line.push(b);
                if self.line.len() >= MAX_LINE {
                    self.flush_line(out);
                }
            }
        }
    }

    /// Prints a pending partial console line, if any.
    pub fn flush_line(&mut self, out: &mut dyn Write) {
        if let Some(id) = self
            .line
            .strip_prefix(METADATA_LINE.as_bytes())
            .and_then(|r| r.strip_prefix(b" "))
        {
            if !id.is_empty() && id.iter().all(|b| (0x20..0x7F).contains(b)) {
                self.realm_id = Some(id.iter().map(|&b| b as char).collect());
            }
        }
        let _ = out.write_str("realm: ");
        for &b in &self.line {
            // Only printable ASCII reaches the console.
            let c = if (0x20..0x7F).contains(&b) {
                b as char
            } else {
                '.'
            };
            let _ = out.write_char(c);
        }
        let _ = out.write_str("\n");
        self.line.clear();
    }

    /// Whether a partial line is pending.
    pub fn line_pending(&self) -> bool {
        !self.line.is_empty()
    }
}

fn sync_action(exit: &RmiRecExit) -> Action {
    let ec = (exit.esr >> ESR_EC_SHIFT) & ESR_EC_MASK;
    match ec {
        EC_WFX => Action::plain(),
        EC_DABT_LOW if exit.esr & ESR_ISV != 0 => {
            // Emulated MMIO: no devices; reads return 0, writes are
            // dropped. Either way the RMM needs EMUL_MMIO to step over the
            // access (for a read it writes gprs[0] to the target register).
            let _write = exit.esr & ESR_WNR != 0;
            Action::Enter {
                flags: rec_enter_flags::EMUL_MMIO,
                gprs: [0; 31],
            }
        }
        _ => Action::Stop(Stop::Unexpected(alloc::format!(
            "synchronous exception: ESR {:#x}, FAR {:#x}, HPFAR {:#x}",
            exit.esr,
            exit.far,
            exit.hpfar
        ))),
    }
}

fn psci_action(exit: &RmiRecExit) -> Action {
    let f = psci_fn(exit.gprs[0]);
    if f == psci_fn(psci::SYSTEM_OFF) {
        Action::Stop(Stop::SystemOff)
    } else if f == psci_fn(psci::SYSTEM_RESET) {
        Action::Stop(Stop::SystemReset)
    } else if f == psci_fn(psci::CPU_OFF) {
        Action::Stop(Stop::CpuOff)
    } else if f == psci_fn(psci::CPU_ON) || f == psci_fn(psci::AFFINITY_INFO) {
        Action::PsciComplete {
            target_mpidr: exit.gprs[1],
        }
    } else {
        // The RMM answers everything else itself; the exit is a notice.
        Action::plain()
    }
}

/// x1..x30 as bytes, little-endian.
pub fn unpack(gprs: &[u64; 31]) -> [u8; HOST_CALL_MAX] {
    let mut b = [0u8; HOST_CALL_MAX];
    for (chunk, r) in b.chunks_exact_mut(8).zip(&gprs[1..]) {
        chunk.copy_from_slice(&r.to_le_bytes());
    }
    b
}

/// Writes `bytes` as lower-case hex.
pub fn write_hex(out: &mut dyn Write, bytes: &[u8]) -> core::fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.write_char(DIGITS[usize::from(b >> 4)] as char)?;
        out.write_char(DIGITS[usize::from(b & 0xF)] as char)?;
    }
    Ok(())
}

/// The report lines the host-side check reads, in order:
/// `ATOLL-RIM <hex>`, `ATOLL-TOKEN <hex>`, `ATOLL-DONE`. A missing RIM or
/// token is reported as `ATOLL-ERROR <what>` instead of its line.
pub fn report(out: &mut dyn Write, rim: Option<&[u8]>, token: Option<&[u8]>) -> core::fmt::Result {
    match rim {
        Some(rim) => {
            out.write_str("ATOLL-RIM ")?;
            write_hex(out, rim)?;
            out.write_str("\n")?;
        }
        None => out.write_str("ATOLL-ERROR the realm sent no RIM\n")?,
    }
    match token {
        Some(token) if !token.is_empty() => {
            out.write_str("ATOLL-TOKEN ")?;
            write_hex(out, token)?;
            out.write_str("\n")?;
        }
        _ => out.write_str("ATOLL-ERROR the realm sent no token\n")?,
    }
    out.write_str("ATOLL-DONE\n")
}

/// The line `ATOLL-METADATA <realm id>` for the realm id the realm
/// reported, or `ATOLL-ERROR` saying it reported none.
pub fn metadata_line(out: &mut dyn Write, realm_id: Option<&str>) -> core::fmt::Result {
    match realm_id {
        Some(id) => writeln!(out, "{METADATA_LINE} {id}"),
        None => out.write_str("ATOLL-ERROR the realm reported no metadata realm id\n"),
    }
}

/// Name of the `ATOLL-PERF` figure for the delegate/undelegate loop.
pub const PERF_DELEGATE_PAIRS: &str = "rmi_delegate_undelegate_pairs_per_s";

/// A rate measured with the generic timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Operations per second, rounded down.
    pub per_s: u64,
    /// Elapsed time in microseconds, rounded down.
    pub elapsed_us: u64,
}

/// The rate of `ops` operations that took `ticks` counter ticks
/// (CNTPCT_EL0 difference) at `freq` Hz (CNTFRQ_EL0). `None` if the
/// frequency or the elapsed ticks are zero (nothing to divide by). Exact in
/// 128-bit arithmetic; a rate beyond `u64` saturates.
pub fn rate(ops: u64, ticks: u64, freq: u64) -> Option<Rate> {
    if freq == 0 || ticks == 0 {
        return None;
    }
    let per_s = u128::from(ops) * u128::from(freq) / u128::from(ticks);
    let elapsed_us = u128::from(ticks) * 1_000_000 / u128::from(freq);
    Some(Rate {
        per_s: u64::try_from(per_s).unwrap_or(u64::MAX),
        elapsed_us: u64::try_from(elapsed_us).unwrap_or(u64::MAX),
    })
}

/// The line `ATOLL-PERF <name> <per_s> ops <ops> elapsed_us <us>`.
pub fn perf_line(out: &mut dyn Write, name: &str, ops: u64, r: Rate) -> core::fmt::Result {
    writeln!(
        out,
        "ATOLL-PERF {name} {} ops {ops} elapsed_us {}",
        r.per_s, r.elapsed_us
    )
}

#[cfg(test)]
mod tests;
