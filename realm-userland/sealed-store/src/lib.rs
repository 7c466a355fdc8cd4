//! Application key layering and AES-256-GCM sealed partitions with atomic writes.
#![forbid(unsafe_code)]
