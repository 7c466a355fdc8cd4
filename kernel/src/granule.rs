//! The granule state table: one entry per granule of delegable memory.
//!
//! The table is the core's answer to "what is this page?": every RMI command
//! that takes a physical address checks it here first, and every state change
//! of a granule happens here and nowhere else.

use alloc::vec;
use alloc::vec::Vec;

use ipc_schema::el3::DramBank;

use crate::GRANULE_U64;

/// What a granule is used for (RMM spec A2.2).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum GranuleState {
    /// Owned by the normal world (GPT: Non-secure).
    Undelegated,
    /// Given to the realm world, not yet used (GPT: Realm, contents zero).
    Delegated,
    /// A realm descriptor.
    Rd,
    /// A realm execution context.
    Rec,
    /// An auxiliary granule of a REC.
    RecAux,
    /// Realm memory.
    Data,
    /// A realm translation table.
    Rtt,
    /// An Islet realm metadata block.
    Metadata,
}

struct Bank {
    base: u64,
    states: Vec<GranuleState>,
}

/// The state of every delegable granule.
pub struct GranuleTable {
    banks: Vec<Bank>,
}

impl GranuleTable {
    /// One entry per granule of each bank, all undelegated.
    pub fn new(dram: &[DramBank]) -> Self {
        let banks = dram
            .iter()
            .map(|b| Bank {
                base: b.base,
                states: vec![GranuleState::Undelegated; (b.size / GRANULE_U64) as usize],
            })
            .collect();
        Self { banks }
    }

    fn slot(&self, pa: u64) -> Option<(usize, usize)> {
        self.banks.iter().enumerate().find_map(|(bi, b)| {
            let off = pa.checked_sub(b.base)? / GRANULE_U64;
            ((off as usize) < b.states.len()).then_some((bi, off as usize))
        })
    }

    /// `PaIsDelegable`: inside memory the platform lets the host delegate.
    pub fn is_delegable(&self, pa: u64) -> bool {
        self.slot(pa).is_some()
    }

    /// The state of the granule at `pa`, or `None` outside delegable memory.
    pub fn state(&self, pa: u64) -> Option<GranuleState> {
        self.slot(pa).map(|(b, i)| self.banks[b].states[i])
    }

    /// Whether the granule at `pa` is delegable and in `state`.
    pub fn is(&self, pa: u64, state: GranuleState) -> bool {
        self.state(pa) == Some(state)
    }

    /// Moves a granule to `state`. Callers have checked it is delegable.
    pub fn set(&mut self, pa: u64, state: GranuleState) {
        if let Some((b, i)) = self.slot(pa) {
            self.banks[b].states[i] = state;
        }
    }

    /// How many granules are in `state` (for invariant checks).
    pub fn count(&self, state: GranuleState) -> usize {
        self.banks
            .iter()
            .map(|b| b.states.iter().filter(|s| **s == state).count())
            .sum()
    }

    /// Every granule and its state.
    pub fn iter(&self) -> impl Iterator<Item = (u64, GranuleState)> + '_ {
        self.banks.iter().flat_map(|b| {
            b.states
                .iter()
                .enumerate()
                .map(move |(i, s)| (b.base + i as u64 * GRANULE_U64, *s))
        })
    }
}
