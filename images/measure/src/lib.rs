//! Reference values for realms: the RIM a realm will have, computed before
//! it exists.
//!
//! [`measure`] replays a [`BuildPlan`] through
//! [`atoll_measurement::MeasurementService`], the same code the RMM runs
//! when the realm is really built, so the prediction and the attested value
//! can only differ if the builder or the RMM did not follow the plan.
//! [`reference_values`] renders the result in the Veraison reference-value
//! JSON form that relying parties load.

use atoll_measurement::MeasurementService;
use atoll_realm_description::{ripas_entries, BuildPlan, Step};
use ipc_schema::service::measurement::{MeasurementError, MeasurementRequest, MeasurementResponse};
use ipc_schema::service::{HashAlgo, Lease, LeaseMem, RealmHandle};
use serde_json::{json, Value};

/// The measurements of a realm right after `REALM_ACTIVATE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealmMeasurement {
    /// The realm's measurement hash algorithm.
    pub algo: HashAlgo,
    /// The RIM slot, zero-padded to 64 bytes.
    pub rim: [u8; 64],
}

impl RealmMeasurement {
    /// The RIM as it appears in a token: the digest without padding.
    pub fn rim(&self) -> &[u8] {
        &self.rim[..self.algo.digest_len()]
    }

    /// The RIM in lowercase hex.
    pub fn rim_hex(&self) -> String {
        hex::encode(self.rim())
    }
}

/// Why a plan could not be measured. The plan comes from a validated
/// description, so this means the plan and the service disagree about what
/// is valid: a bug, reported rather than hidden.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MeasureError {
    /// The measurement service refused a step.
    #[error("step {step} ({what}): measurement service refused it: {error:?}")]
    Refused {
        /// Index of the plan step.
        step: usize,
        /// What the step was.
        what: &'static str,
        /// The service's answer.
        error: MeasurementError,
    },
    /// The service answered something other than what the request calls for.
    #[error("step {step} ({what}): unexpected answer {answer}")]
    Unexpected {
        /// Index of the plan step.
        step: usize,
        /// What the step was.
        what: &'static str,
        /// The answer.
        answer: String,
    },
    /// A data step whose content is not exactly one page.
    #[error("step {step}: data page of {len} bytes")]
    PageSize {
        /// Index of the plan step.
        step: usize,
        /// Its length.
        len: usize,
    },
}

const REALM: RealmHandle = RealmHandle(0);

fn expect_ok(
    svc: &mut MeasurementService,
    step: usize,
    what: &'static str,
    req: &MeasurementRequest,
    leases: &mut [LeaseMem<'_>],
) -> Result<(), MeasureError> {
    match svc.handle_ref(req, leases) {
        MeasurementResponse::Ok => Ok(()),
        MeasurementResponse::Error(error) => Err(MeasureError::Refused { step, what, error }),
        other => Err(MeasureError::Unexpected {
            step,
            what,
            answer: format!("{other:?}"),
        }),
    }
}

/// Computes the RIM a realm built by `plan` will have.
pub fn measure(plan: &BuildPlan) -> Result<RealmMeasurement, MeasureError> {
    let mut svc = MeasurementService::new(1);
    for (i, step) in plan.steps().enumerate() {
        match step {
            Step::RealmCreate(rc) => {
                let req = MeasurementRequest::RealmCreate {
                    realm: REALM,
                    algo: rc.algo,
                    params: rc.params,
                };
                expect_ok(&mut svc, i, "REALM_CREATE", &req, &mut [])?;
            }
            Step::RttCreate { .. } | Step::Activate => {}
            Step::InitRipas { base, top, level } => {
                for (base, top) in ripas_entries(base, top, level) {
                    let req = MeasurementRequest::Ripas {
                        realm: REALM,
                        base,
                        top,
                    };
                    expect_ok(&mut svc, i, "RTT_INIT_RIPAS", &req, &mut [])?;
                }
            }
            Step::Data {
                ipa,
                measured,
                content,
            } => {
                if content.len() != ipc_schema::GRANULE_SIZE {
                    return Err(MeasureError::PageSize {
                        step: i,
                        len: content.len(),
                    });
                }
                // The page travels as lease 0, as the RMM lends it.
                let req = MeasurementRequest::Data {
                    realm: REALM,
                    ipa,
                    flags: Step::data_flags(measured),
                    content: measured.then_some(Lease(0)),
                    copy_to: None,
                };
                expect_ok(
                    &mut svc,
                    i,
                    "DATA_CREATE",
                    &req,
                    &mut [LeaseMem::Read(content)],
                )?;
            }
            Step::RecCreate(rec) => {
                if rec.runnable() {
                    let req = MeasurementRequest::Rec {
                        realm: REALM,
                        params: rec.params,
                    };
                    expect_ok(&mut svc, i, "REC_CREATE", &req, &mut [])?;
                }
            }
        }
    }
    let last = plan.len();
    match svc.handle(MeasurementRequest::Read {
        realm: REALM,
        index: 0,
    }) {
        MeasurementResponse::Value(v) => Ok(RealmMeasurement {
            algo: plan.algo(),
            rim: v.0,
        }),
        MeasurementResponse::Error(error) => Err(MeasureError::Refused {
            step: last,
            what: "MEASUREMENT_READ",
            error,
        }),
        other => Err(MeasureError::Unexpected {
            step: last,
            what: "MEASUREMENT_READ",
            answer: format!("{other:?}"),
        }),
    }
}

/// The hash algorithm that binds the RAK to the platform token (claim
/// 44240); Atoll's RMM always uses SHA-256 for it.
pub const RAK_HASH_ALGORITHM: &str = "sha-256";

/// Veraison reference values for the realm:
/// `{"realm": [{"initial-measurement", "personalization-value",
/// "rak-hash-algorithm", "hash-algorithm"}]}` with hex strings. REMs are
/// omitted: they are extended at run time, so a build cannot predict them.
/// `hash-algorithm` names the measurement algorithm (claim 44236) so a
/// verifier can tell a SHA-256 RIM from a truncated SHA-512 one.
pub fn reference_values(plan: &BuildPlan, m: &RealmMeasurement) -> Value {
    json!({
        "realm": [{
            "initial-measurement": m.rim_hex(),
            "personalization-value": hex::encode(plan.realm().rpv),
            "rak-hash-algorithm": RAK_HASH_ALGORITHM,
            "hash-algorithm": m.algo.name(),
        }]
    })
}

#[cfg(test)]
mod tests;
