//! The realm agent: fetches signed applications over RA-TLS, installs them into sealed storage and runs them.
#![forbid(unsafe_code)]
