//! Unpacks OCI image layers safely: paths confined to the root, whiteouts, size caps, diff_id checks.
#![forbid(unsafe_code)]
