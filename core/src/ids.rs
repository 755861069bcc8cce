//! Identifier newtypes.
//!
//! Ids arrive from browsers and shop back ends, so they are parsed once at the edge and trusted inside.
//! Every id ends up inside a Redis key; the rules below keep keys unambiguous and Redis Cluster hash
//! tags intact (a `{` or `}` inside an id would move the hash tag), so they are enforced here, not in
//! the store.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest accepted id, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_ID_LEN} bytes, got {0}")]
    TooLong(usize),
    #[error("must not contain whitespace, control or invisible (bidi, zero-width) characters, '{{' or '}}'")]
    BadChar,
}

pub(crate) fn check_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong(s.len()));
    }
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '{' || c == '}' || invisible(c))
    {
        return Err(IdError::BadChar);
    }
    Ok(())
}

/// Characters that change how text around them is shown without being seen themselves: the bidi
/// controls (an id with U+202E reads backwards in a dashboard), zero-width characters and the byte
/// order mark (two ids that look the same and differ), and the other format characters of note.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}')
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses and validates an id.
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check_id(&s)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A shop (tenant). Every event, profile and model belongs to exactly one site.
    SiteId
);
string_id!(
    /// A logged-in customer, as the shop knows them.
    MemberId
);
string_id!(
    /// A first-party browser/device id set by the tag before the visitor logs in.
    AnonymousId
);
string_id!(
    /// A visit; events of one session feed co-visitation.
    SessionId
);
string_id!(
    /// A product (SKU or product id).
    ItemId
);
string_id!(
    /// A product category.
    Category
);
string_id!(
    /// An event's identity, used to drop duplicates (tracker retries, replays). Clients should send a
    /// UUID; any valid id is accepted so that imported history keeps its own ids.
    EventId
);

impl EventId {
    /// A fresh, time-ordered id (UUIDv7) for events that arrive without one.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
}

/// Whose profile an event updates: the member when known, else the anonymous visitor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    Member(MemberId),
    Anonymous(AnonymousId),
}

impl fmt::Display for Subject {
    /// The form used inside keys: `m:<member>` or `a:<anonymous>`; the prefixes keep the two id spaces
    /// apart even if a member id equals some anonymous id.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Member(m) => write!(f, "m:{m}"),
            Subject::Anonymous(a) => write!(f, "a:{a}"),
        }
    }
}

impl Subject {
    /// Parses the key form written by `Display` (`m:<member>` or `a:<anonymous>`).
    pub fn parse(s: &str) -> Result<Subject, IdError> {
        match s.split_once(':') {
            Some(("m", m)) => Ok(Subject::Member(MemberId::parse(m)?)),
            Some(("a", a)) => Ok(Subject::Anonymous(AnonymousId::parse(a)?)),
            _ => AnonymousId::parse("").map(Subject::Anonymous),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip_through_their_key_form() {
        for s in [
            Subject::Member(MemberId::parse("m:1").unwrap()),
            Subject::Anonymous(AnonymousId::parse("x").unwrap()),
        ] {
            assert_eq!(Subject::parse(&s.to_string()).unwrap(), s);
        }
        assert!(Subject::parse("nope").is_err());
    }

    #[test]
    fn accepts_ordinary_ids() {
        assert!(MemberId::parse("alice@example.com").is_ok());
        assert!(ItemId::parse("sku:123-ab").is_ok());
    }

    #[test]
    fn rejects_ids_that_would_break_keys() {
        assert_eq!(SiteId::parse(""), Err(IdError::Empty));
        assert_eq!(ItemId::parse("a b"), Err(IdError::BadChar));
        assert_eq!(ItemId::parse("a{b}"), Err(IdError::BadChar));
        for sneaky in [
            "abc\u{202e}gnp.exe",
            "a\u{200b}b",
            "\u{feff}a",
            "a\u{2066}b",
            "a\u{00ad}b",
        ] {
            assert_eq!(ItemId::parse(sneaky), Err(IdError::BadChar), "{sneaky:?}");
        }
        assert!(
            ItemId::parse("Zelt-2P_ä").is_ok(),
            "letters of any script are fine"
        );
        assert_eq!(ItemId::parse("x".repeat(129)), Err(IdError::TooLong(129)));
    }

    #[test]
    fn deserialization_validates() {
        let r: Result<MemberId, _> = serde_json::from_str("\"\"");
        assert!(r.is_err());
        let ok: MemberId = serde_json::from_str("\"bob\"").unwrap();
        assert_eq!(ok.as_str(), "bob");
    }

    #[test]
    fn generated_event_ids_are_unique() {
        assert_ne!(EventId::generate(), EventId::generate());
    }
}
