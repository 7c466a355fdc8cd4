//! Measured-boot slots: what each boot stage reported about the component
//! it loaded, in a fixed number of slots that lock once boot is complete.
//!
//! A slot's value is its first measurement as given (so a component
//! measured once reports its image digest, comparable with a reference
//! value), then `H(value || measurement)` for each later extend, with the
//! slot's algorithm. Signer id, version and component type are those of the
//! latest extend.

use ipc_schema::hes::{
    HesError, HesHashAlgo, MeasurementRecord, SlotState, MEASUREMENT_MAX, MEASUREMENT_SLOTS,
};
use ipc_schema::wire::BoundedBytes;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// The slots, plus a generation counter that changes with every extend so
/// anything derived from the slots (a cached token) knows it is stale.
#[derive(Clone, Debug, Default)]
pub struct Slots {
    slots: [Option<SlotState>; MEASUREMENT_SLOTS],
    all_locked: bool,
    generation: u64,
}

/// `H(a || b)` with `algo`.
fn chain(algo: HesHashAlgo, a: &[u8], b: &[u8]) -> Result<BoundedBytes<MEASUREMENT_MAX>, HesError> {
    fn run<D: Digest>(a: &[u8], b: &[u8]) -> Result<BoundedBytes<MEASUREMENT_MAX>, HesError> {
        let digest = D::new().chain_update(a).chain_update(b).finalize();
        // Every supported digest is at most 64 bytes, so this never fails.
        BoundedBytes::new(&digest).map_err(|_| HesError::Crypto)
    }
    match algo {
        HesHashAlgo::Sha256 => run::<Sha256>(a, b),
        HesHashAlgo::Sha384 => run::<Sha384>(a, b),
        HesHashAlgo::Sha512 => run::<Sha512>(a, b),
    }
}

impl Slots {
    /// Extends slot `index` with `record`, then locks it if `lock`.
    /// Checks, in order: index, lock state, measurement length, algorithm.
    pub fn extend(
        &mut self,
        index: u8,
        record: &MeasurementRecord,
        lock: bool,
    ) -> Result<(), HesError> {
        let all_locked = self.all_locked;
        let slot = self
            .slots
            .get_mut(usize::from(index))
            .ok_or(HesError::BadSlot)?;
        if all_locked || slot.as_ref().is_some_and(|s| s.locked) {
            return Err(HesError::SlotLocked);
        }
        if record.measurement.as_slice().len() != record.algo.digest_len() {
            return Err(HesError::BadMeasurementLength);
        }
        let new = match slot {
            None => SlotState {
                record: record.clone(),
                extend_count: 1,
                locked: lock,
            },
            Some(old) => {
                if old.record.algo != record.algo {
                    return Err(HesError::AlgoMismatch);
                }
                let value = chain(
                    record.algo,
                    old.record.measurement.as_slice(),
                    record.measurement.as_slice(),
                )?;
                SlotState {
                    record: MeasurementRecord {
                        measurement: value,
                        ..record.clone()
                    },
                    extend_count: old.extend_count.saturating_add(1),
                    locked: lock,
                }
            }
        };
        *slot = Some(new);
        self.generation = self.generation.wrapping_add(1);
        Ok(())
    }

    /// Slot `index` as it stands (locked also when boot is complete).
    pub fn read(&self, index: u8) -> Result<SlotState, HesError> {
        let slot = self
            .slots
            .get(usize::from(index))
            .ok_or(HesError::BadSlot)?
            .as_ref()
            .ok_or(HesError::SlotEmpty)?;
        let mut state = slot.clone();
        state.locked |= self.all_locked;
        Ok(state)
    }

    /// Locks every slot for good: after boot, nothing may change what the
    /// keys and the token are bound to.
    pub fn lock_all(&mut self) {
        self.all_locked = true;
    }

    /// The populated slots with their indices, in slot order.
    pub fn populated(&self) -> impl Iterator<Item = (u8, &SlotState)> {
        self.slots
            .iter()
            .zip(0u8..)
            .filter_map(|(s, i)| s.as_ref().map(|s| (i, s)))
    }

    /// Changes with every successful extend.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// SHA-256 over what VHUK_A binds to: for each populated slot, its index
    /// and its signer id (length-prefixed). Measurements, versions and types
    /// stay out, so a new image from the same signer keeps the key.
    pub fn signer_digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for (i, s) in self.populated() {
            let signer = s.record.signer_id.as_slice();
            h.update([i, signer.len() as u8]);
            h.update(signer);
        }
        h.finalize().into()
    }

    /// SHA-256 over what VHUK_M and the RAK bind to: for each populated slot,
    /// its index, algorithm, value (length-prefixed) and signer id, so any
    /// changed image changes the keys.
    pub fn measurement_digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for (i, s) in self.populated() {
            let value = s.record.measurement.as_slice();
            let signer = s.record.signer_id.as_slice();
            h.update([i, algo_code(s.record.algo), value.len() as u8]);
            h.update(value);
            h.update([signer.len() as u8]);
            h.update(signer);
        }
        h.finalize().into()
    }
}

/// A stable byte for each algorithm, for derivation contexts.
pub(crate) fn algo_code(algo: HesHashAlgo) -> u8 {
    match algo {
        HesHashAlgo::Sha256 => 1,
        HesHashAlgo::Sha384 => 2,
        HesHashAlgo::Sha512 => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc_schema::hes::BoundedStr;

    fn record(algo: HesHashAlgo, m: u8, signer: u8) -> MeasurementRecord {
        MeasurementRecord {
            algo,
            measurement: BoundedBytes::new(&[m; 64][..algo.digest_len()]).unwrap(),
            signer_id: BoundedBytes::new(&[signer; 32]).unwrap(),
            version: BoundedStr::new("1.0").unwrap(),
            component_type: BoundedStr::new("BL2").unwrap(),
        }
    }

    #[test]
    fn first_extend_stores_then_chains() {
        let mut s = Slots::default();
        let r1 = record(HesHashAlgo::Sha256, 1, 9);
        s.extend(3, &r1, false).unwrap();
        assert_eq!(s.read(3).unwrap().record, r1);
        assert_eq!(s.read(3).unwrap().extend_count, 1);

        let r2 = record(HesHashAlgo::Sha256, 2, 8);
        s.extend(3, &r2, false).unwrap();
        let got = s.read(3).unwrap();
        let expected: [u8; 32] = Sha256::new()
            .chain_update([1u8; 32])
            .chain_update([2u8; 32])
            .finalize()
            .into();
        assert_eq!(got.record.measurement.as_slice(), &expected);
        assert_eq!(got.record.signer_id, r2.signer_id);
        assert_eq!(got.extend_count, 2);
    }

    #[test]
    fn sha384_chains_with_sha384() {
        let mut s = Slots::default();
        s.extend(0, &record(HesHashAlgo::Sha384, 1, 1), false)
            .unwrap();
        s.extend(0, &record(HesHashAlgo::Sha384, 2, 1), false)
            .unwrap();
        let expected = Sha384::new()
            .chain_update([1u8; 48])
            .chain_update([2u8; 48])
            .finalize();
        assert_eq!(
            s.read(0).unwrap().record.measurement.as_slice(),
            &expected[..]
        );
    }

    #[test]
    fn refusals_in_order() {
        let mut s = Slots::default();
        let r = record(HesHashAlgo::Sha256, 1, 1);
        assert_eq!(s.extend(16, &r, false), Err(HesError::BadSlot));
        assert_eq!(s.read(16), Err(HesError::BadSlot));
        assert_eq!(s.read(0), Err(HesError::SlotEmpty));

        let mut short = r.clone();
        short.measurement = BoundedBytes::new(&[1; 31]).unwrap();
        assert_eq!(
            s.extend(0, &short, false),
            Err(HesError::BadMeasurementLength)
        );

        s.extend(0, &r, false).unwrap();
        assert_eq!(
            s.extend(0, &record(HesHashAlgo::Sha384, 1, 1), false),
            Err(HesError::AlgoMismatch)
        );

        s.extend(1, &r, true).unwrap();
        assert!(s.read(1).unwrap().locked);
        assert_eq!(s.extend(1, &r, false), Err(HesError::SlotLocked));
        // A locked slot refuses before the length is even looked at.
        assert_eq!(s.extend(1, &short, false), Err(HesError::SlotLocked));

        let before = s.generation();
        s.lock_all();
        assert_eq!(s.extend(2, &r, false), Err(HesError::SlotLocked));
        assert!(s.read(0).unwrap().locked);
        assert_eq!(s.generation(), before);
    }

    #[test]
    fn digests_separate_signers_from_measurements() {
        let mut a = Slots::default();
        a.extend(0, &record(HesHashAlgo::Sha256, 1, 7), false)
            .unwrap();
        let mut b = Slots::default();
        b.extend(0, &record(HesHashAlgo::Sha256, 2, 7), false)
            .unwrap();
        let mut c = Slots::default();
        c.extend(0, &record(HesHashAlgo::Sha256, 1, 6), false)
            .unwrap();
        let mut d = Slots::default();
        d.extend(1, &record(HesHashAlgo::Sha256, 1, 7), false)
            .unwrap();

        assert_eq!(a.signer_digest(), b.signer_digest());
        assert_ne!(a.measurement_digest(), b.measurement_digest());
        assert_ne!(a.signer_digest(), c.signer_digest());
        assert_ne!(a.signer_digest(), d.signer_digest());
        assert_ne!(a.measurement_digest(), d.measurement_digest());
    }
}
