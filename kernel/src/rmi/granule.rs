//! `RMI_GRANULE_DELEGATE` and `RMI_GRANULE_UNDELEGATE`.

use ipc_schema::rmi::RmiReturn;

use crate::arch::{Pas, Platform};
use crate::granule::GranuleState;
use crate::services::ServiceTransport;
use crate::{is_granule_aligned, Rmm};

impl<P: Platform, T: ServiceTransport> Rmm<P, T> {
    /// `RMI_GRANULE_DELEGATE`: hands a granule to the realm world.
    pub fn granule_delegate(&mut self, addr: u64) -> Result<(), RmiReturn> {
        if !is_granule_aligned(addr)
            || !self.granules.is_delegable(addr)
            || !self.granule_is(addr, GranuleState::Undelegated)
            || self.platform.pas(addr) != Some(Pas::NonSecure)
        {
            return Err(RmiReturn::INPUT);
        }
        // No scrub here: the host wrote whatever the granule holds, so it
        // hides nothing from the host, and every use that exposes a
        // granule's old contents (RTTs, DATA_CREATE_UNKNOWN) initialises it
        // itself. Realm data is scrubbed when it leaves a realm and again
        // at UNDELEGATE.
        self.platform
            .gtsi_delegate(addr)
            .map_err(|_| RmiReturn::INPUT)?;
        self.granules.set(addr, GranuleState::Delegated);
        Ok(())
    }

    /// `RMI_GRANULE_UNDELEGATE`: gives a granule back, scrubbed first so no
    /// realm data reaches the normal world.
    pub fn granule_undelegate(&mut self, addr: u64) -> Result<(), RmiReturn> {
        self.check_granule(addr, GranuleState::Delegated)?;
        self.scrub(addr);
        self.platform
            .gtsi_undelegate(addr)
            .map_err(|_| RmiReturn::INPUT)?;
        self.granules.set(addr, GranuleState::Undelegated);
        Ok(())
    }
}
