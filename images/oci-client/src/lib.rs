//! OCI distribution client: pull and push over plain TCP, TLS or RA-TLS with every digest checked.
#![forbid(unsafe_code)]
