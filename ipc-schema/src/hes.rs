//! The HES link protocol: framed, versioned, bounded messages between the
//! root monitor / RMM side and the HES, with request ids.
