//! The normal-world daemon and CLI that creates realms and deploys applications into them.
#![forbid(unsafe_code)]
