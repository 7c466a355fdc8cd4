//! Fixed- and bounded-size byte strings for service messages.
//!
//! serde only derives arrays up to 32 elements and would encode a page as
//! 4096 separate elements; these wrappers travel as one length-prefixed byte
//! string (a single copy when decoded) and refuse any other length, so a
//! message's size bound holds on the receiving side too.

use core::fmt;

use postcard::experimental::max_size::MaxSize;
use serde::de::{Error as _, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Exactly `N` bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Bytes<const N: usize>(pub [u8; N]);

impl<const N: usize> Bytes<N> {
    /// All zero.
    pub const fn zeroed() -> Self {
        Self([0; N])
    }
}

impl<const N: usize> fmt::Debug for Bytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes<{N}>(")?;
        for b in self.0.iter().take(16) {
            write!(f, "{b:02x}")?;
        }
        if N > 16 {
            f.write_str("..")?;
        }
        f.write_str(")")
    }
}

impl<const N: usize> Serialize for Bytes<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de, const N: usize> Deserialize<'de> for Bytes<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Exact<const N: usize>;
        impl<const N: usize> Visitor<'_> for Exact<N> {
            type Value = Bytes<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "exactly {N} bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                let arr: [u8; N] = v
                    .try_into()
                    .map_err(|_| E::invalid_length(v.len(), &self))?;
                Ok(Bytes(arr))
            }
        }
        d.deserialize_bytes(Exact::<N>)
    }
}

impl<const N: usize> MaxSize for Bytes<N> {
    const POSTCARD_MAX_SIZE: usize = N + varint_len(N);
}

/// At most `N` bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BoundedBytes<const N: usize> {
    len: usize,
    buf: [u8; N],
}

/// A byte string longer than a [`BoundedBytes`] bound.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TooLong;

impl<const N: usize> BoundedBytes<N> {
    /// Copies `data`, refusing more than `N` bytes.
    pub fn new(data: &[u8]) -> Result<Self, TooLong> {
        if data.len() > N {
            return Err(TooLong);
        }
        let mut buf = [0; N];
        buf[..data.len()].copy_from_slice(data);
        Ok(Self {
            len: data.len(),
            buf,
        })
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> fmt::Debug for BoundedBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BoundedBytes<{N}>(")?;
        for b in self.as_slice() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

impl<const N: usize> Serialize for BoundedBytes<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.as_slice())
    }
}

impl<'de, const N: usize> Deserialize<'de> for BoundedBytes<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bounded<const N: usize>;
        impl<const N: usize> Visitor<'_> for Bounded<N> {
            type Value = BoundedBytes<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "at most {N} bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                BoundedBytes::new(v).map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(Bounded::<N>).map_err(D::Error::custom)
    }
}

impl<const N: usize> MaxSize for BoundedBytes<N> {
    const POSTCARD_MAX_SIZE: usize = N + varint_len(N);
}

/// Bytes postcard needs for the varint encoding of `n`.
pub const fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}
