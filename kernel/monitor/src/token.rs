//! `RMM_ATTEST_GET_PLAT_TOKEN` chunking: the monitor fetches the whole
//! platform token from the HES when the RMM passes a challenge (x3 != 0),
//! then hands it out in chunks of at most the RMM's buffer size; follow-up
//! calls (x3 = 0) continue where the last one stopped. Also the shared-page
//! bounds checks of the attestation calls.

use crate::layout::{GRANULE, SHARED_PAGE};
use ipc_schema::hes::TOKEN_MAX;

/// Checks that `[pa, pa + size)` lies in the shared page; returns the offset.
pub fn shared_buffer(pa: u64, size: u64) -> Option<usize> {
    let end = pa.checked_add(size)?;
    if pa >= SHARED_PAGE && end <= SHARED_PAGE + GRANULE {
        Some((pa - SHARED_PAGE) as usize)
    } else {
        None
    }
}

/// A token above [`TOKEN_MAX`] bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TokenTooLarge;

/// The token being handed out.
pub struct TokenBuffer {
    bytes: [u8; TOKEN_MAX],
    len: usize,
    sent: usize,
    active: bool,
}

impl Default for TokenBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenBuffer {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            bytes: [0; TOKEN_MAX],
            len: 0,
            sent: 0,
            active: false,
        }
    }

    /// Stores a fresh token (at most [`TOKEN_MAX`] bytes) and rewinds.
    pub fn load(&mut self, token: &[u8]) -> Result<(), TokenTooLarge> {
        if token.len() > TOKEN_MAX {
            return Err(TokenTooLarge);
        }
        self.bytes[..token.len()].copy_from_slice(token);
        self.len = token.len();
        self.sent = 0;
        self.active = true;
        Ok(())
    }

    /// Whether a transfer is in progress (a follow-up call is valid).
    pub fn active(&self) -> bool {
        self.active
    }

    /// Copies the next chunk into `out`; returns (chunk length, remaining).
    /// The transfer ends (and the buffer is wiped) when nothing remains.
    pub fn next_chunk(&mut self, out: &mut [u8]) -> (usize, usize) {
        let n = out.len().min(self.len - self.sent);
        out[..n].copy_from_slice(&self.bytes[self.sent..self.sent + n]);
        self.sent += n;
        let remaining = self.len - self.sent;
        if remaining == 0 {
            self.bytes[..self.len].fill(0);
            self.active = false;
        }
        (n, remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_bounds() {
        assert_eq!(shared_buffer(SHARED_PAGE, 4096), Some(0));
        assert_eq!(shared_buffer(SHARED_PAGE + 0x100, 0x100), Some(0x100));
        assert_eq!(shared_buffer(SHARED_PAGE + 1, 4096), None);
        assert_eq!(shared_buffer(SHARED_PAGE - 1, 2), None);
        assert_eq!(shared_buffer(u64::MAX, 2), None);
    }

    #[test]
    fn chunks() {
        let token: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
        let mut t = TokenBuffer::new();
        assert!(!t.active());
        t.load(&token).unwrap();
        let mut out = vec![0u8; 1024];
        let mut got = Vec::new();
        let mut rems = Vec::new();
        loop {
            let (n, rem) = t.next_chunk(&mut out);
            got.extend_from_slice(&out[..n]);
            rems.push(rem);
            if rem == 0 {
                break;
            }
        }
        assert_eq!(got, token);
        assert_eq!(rems, vec![1476, 452, 0]);
        assert!(!t.active());
        assert!(t.load(&vec![0; TOKEN_MAX + 1]).is_err());
    }
}
