//! The attestation service: realm tokens.
