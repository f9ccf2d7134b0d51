//! Request identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::time::Timestamp;

/// A request's id: a UUID version 7, so ids sort by creation time and index well in a database.
///
/// ```
/// use atmo_core::{RequestId, Timestamp};
/// let id = RequestId::from_parts(Timestamp::from_millis(1_700_000_000_000), [7; 10]);
/// let text = id.to_string();
/// assert_eq!(text.parse::<RequestId>().ok(), Some(id));
/// assert_eq!(&text[14..15], "7"); // the version nibble
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(Uuid);

impl RequestId {
    /// A version 7 id from the creation time and 10 random bytes (the caller supplies
    /// randomness, so the core needs no random source of its own).
    pub fn from_parts(created: Timestamp, random: [u8; 10]) -> Self {
        let millis = u64::try_from(created.as_millis()).unwrap_or(0);
        RequestId(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
    }

    /// Wraps a UUID.
    pub const fn from_uuid(u: Uuid) -> Self {
        RequestId(u)
    }

    /// The UUID.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The id as a 128-bit integer (for compact keys).
    pub const fn as_u128(&self) -> u128 {
        self.0.as_u128()
    }

    /// The id from a 128-bit integer.
    pub const fn from_u128(v: u128) -> Self {
        RequestId(Uuid::from_u128(v))
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The error for a string that is not a request id.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{}` is not a request id (expected a UUID such as 0190a6f2-1b2c-7d3e-8f40-5a6b7c8d9e0f)", crate::manifest::Echo(.0))]
pub struct InvalidRequestId(pub String);

impl FromStr for RequestId {
    type Err = InvalidRequestId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(RequestId).map_err(|_| InvalidRequestId(s.to_owned()))
    }
}
