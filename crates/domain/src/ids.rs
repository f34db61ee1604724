//! Typed ids. Each kind of object has its own type, so a channel id can never
//! be passed where a user id is expected.
//!
//! New ids are a short prefix naming the kind and a time-ordered UUIDv7 in hex
//! (`ch_0192…`): they leak nothing and sort by creation. Ids received from
//! clients are opaque strings; only their length and characters are checked.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest id accepted from a client.
pub const MAX_ID_LENGTH: usize = 128;

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new, unique id.
            pub fn generate() -> Self {
                $name(format!(concat!($prefix, "_{}"), uuid::Uuid::now_v7().simple()))
            }

            /// An id as received; `None` when it cannot be an id of ours or
            /// a client's (empty, too long, or with characters outside
            /// `A-Z a-z 0-9 _ - . : @`).
            pub fn parse(text: &str) -> Option<Self> {
                is_plausible_id(text).then(|| $name(text.to_owned()))
            }

            /// An id read back from storage, trusted as written.
            pub fn from_stored(text: String) -> Self {
                $name(text)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }
    };
}

typed_id!(
    /// A company: the tenant every other object belongs to.
    CompanyId, "co"
);
typed_id!(
    /// A person or a bot.
    UserId, "usr"
);
typed_id!(
    /// A channel (conversation).
    ChannelId, "ch"
);
typed_id!(
    /// A message.
    MessageId, "msg"
);
typed_id!(
    /// A company key, bot key or user token (not its secret).
    CredentialId, "key"
);
typed_id!(
    /// A file uploaded to a channel (the wire's `fileId`, an attachment's `id`).
    FileId, "file"
);
typed_id!(
    /// An event: the same id in every delivery, retry and replay of it.
    EventId, "evt"
);
typed_id!(
    /// A bot's integration: where its events are delivered.
    IntegrationId, "int"
);

fn is_plausible_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_ID_LENGTH
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_carry_their_kind_and_sort_by_creation() {
        let first = ChannelId::generate();
        let second = ChannelId::generate();
        assert!(first.as_str().starts_with("ch_"));
        assert!(first < second);
        assert!(UserId::generate().as_str().starts_with("usr_"));
    }

    #[test]
    fn parse_refuses_what_cannot_be_an_id() {
        assert!(UserId::parse("demo_user_01").is_some());
        assert!(UserId::parse("").is_none());
        assert!(UserId::parse("a/b").is_none());
        assert!(UserId::parse("a b").is_none());
        assert!(UserId::parse(&"x".repeat(129)).is_none());
    }
}
