//! The keys service: realm metadata and sealing keys.
