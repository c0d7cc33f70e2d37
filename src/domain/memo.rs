//! What a caller may attach to a money movement: its own reference, a description and string metadata. Stored and
//! returned as given (metadata in a canonical form), never interpreted (docs/adr/0110-references-history-statements.md).
//! Lengths count characters (Unicode scalar values), not bytes.

use std::collections::BTreeMap;

use unicode_properties::general_category::{GeneralCategory, UnicodeGeneralCategory};

/// The caller's own id for an operation: 1–128 characters, no control or invisible formatting characters, no
/// leading or trailing whitespace (two references that look the same are the same reference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference(String);

/// Free text: up to 500 characters; line breaks and tabs are allowed, other control characters are not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

/// A JSON object of at most 32 string keys (1–64 characters, no control characters) to string values (up to 500
/// characters, like a description), at most 8 KiB as canonical JSON (keys sorted, no spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MemoError {
    #[error("reference must be 1 to {} characters", Reference::MAX_CHARS)]
    ReferenceLength,
    #[error("reference must not contain control or invisible formatting characters")]
    ReferenceCharacter,
    #[error("reference must not start or end with whitespace")]
    ReferenceWhitespace,
    #[error("description must be at most {} characters", Description::MAX_CHARS)]
    DescriptionLength,
    #[error("description must not contain control characters other than line breaks and tabs")]
    DescriptionCharacter,
    #[error("metadata must be a JSON object")]
    MetadataNotObject,
    #[error("metadata must have at most {} keys", Metadata::MAX_KEYS)]
    MetadataKeys,
    #[error("metadata keys must be 1 to {} characters", Metadata::MAX_KEY_CHARS)]
    MetadataKeyLength,
    #[error("metadata keys must not contain control characters")]
    MetadataKeyCharacter,
    #[error("metadata value of {0:?} must be a string")]
    MetadataValueNotString(String),
    #[error("metadata value of {0:?} must be at most {max} characters, without control characters other than line breaks and tabs", max = Description::MAX_CHARS)]
    MetadataValue(String),
    #[error("metadata must be at most {} bytes as JSON", Metadata::MAX_BYTES)]
    MetadataSize,
}

impl Reference {
    pub const MAX_CHARS: usize = 128;

    pub fn parse(text: &str) -> Result<Self, MemoError> {
        let chars = text.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS {
            Err(MemoError::ReferenceLength)
        } else if text.chars().any(|c| c.is_control() || is_invisible(c)) {
            Err(MemoError::ReferenceCharacter)
        } else if text.trim() != text {
            Err(MemoError::ReferenceWhitespace)
        } else {
            Ok(Self(text.to_owned()))
        }
    }
}

impl Description {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(text: &str) -> Result<Self, MemoError> {
        if text.chars().count() > Self::MAX_CHARS {
            Err(MemoError::DescriptionLength)
        } else if !free_text(text) {
            Err(MemoError::DescriptionCharacter)
        } else {
            Ok(Self(text.to_owned()))
        }
    }
}

impl Metadata {
    pub const MAX_KEYS: usize = 32;
    pub const MAX_KEY_CHARS: usize = 64;
    /// Bytes of the canonical JSON: 32 keys of 64 characters to values of 500 would pass every other rule and
    /// still be 18 KB, so the size is a rule of its own.
    pub const MAX_BYTES: usize = 8192;

    pub fn parse(value: &serde_json::Value) -> Result<Self, MemoError> {
        let object = value.as_object().ok_or(MemoError::MetadataNotObject)?;
        if object.len() > Self::MAX_KEYS {
            return Err(MemoError::MetadataKeys);
        }
        let mut canonical = BTreeMap::new();
        for (key, value) in object {
            let chars = key.chars().count();
            if chars == 0 || chars > Self::MAX_KEY_CHARS {
                return Err(MemoError::MetadataKeyLength);
            }
            if key.chars().any(char::is_control) {
                return Err(MemoError::MetadataKeyCharacter);
            }
            let text = value
                .as_str()
                .ok_or_else(|| MemoError::MetadataValueNotString(key.clone()))?;
            if text.chars().count() > Description::MAX_CHARS || !free_text(text) {
                return Err(MemoError::MetadataValue(key.clone()));
            }
            canonical.insert(key.as_str(), text);
        }
        let json = serde_json::to_string(&canonical).map_err(|_| MemoError::MetadataNotObject)?;
        if json.len() > Self::MAX_BYTES {
            return Err(MemoError::MetadataSize);
        }
        Ok(Self(json))
    }
}

/// Text that may hold line breaks and tabs but no other control character.
fn free_text(text: &str) -> bool {
    !text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// Cf (zero-width, bidi controls, U+FEFF), Zl and Zp: invisible in a reference that someone will search for.
fn is_invisible(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

macro_rules! text_type {
    ($($name:ident),*) => {$(
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    )*};
}
text_type!(Reference, Description, Metadata);

/// The three optional fields of one operation, each already valid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memo {
    pub reference: Option<Reference>,
    pub description: Option<Description>,
    pub metadata: Option<Metadata>,
}

impl Memo {
    /// Validates the fields as a request gives them (JSON `null` reads as absent).
    pub fn parse(
        reference: Option<&str>,
        description: Option<&str>,
        metadata: Option<&serde_json::Value>,
    ) -> Result<Self, MemoError> {
        Ok(Self {
            reference: reference.map(Reference::parse).transpose()?,
            description: description.map(Description::parse).transpose()?,
            metadata: metadata
                .filter(|m| !m.is_null())
                .map(Metadata::parse)
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_reference_counts_characters_and_refuses_control_and_edge_whitespace() {
        assert!(Reference::parse(&"é".repeat(128)).is_ok());
        assert_eq!(
            Reference::parse(&"a".repeat(129)),
            Err(MemoError::ReferenceLength)
        );
        assert_eq!(Reference::parse(""), Err(MemoError::ReferenceLength));
        assert_eq!(
            Reference::parse("a\u{7}b"),
            Err(MemoError::ReferenceCharacter)
        );
        assert_eq!(
            Reference::parse("a\u{200b}b"),
            Err(MemoError::ReferenceCharacter)
        );
        assert_eq!(
            Reference::parse(" inv-1"),
            Err(MemoError::ReferenceWhitespace)
        );
        assert!(Reference::parse("inv 1").is_ok());
    }

    #[test]
    fn a_description_keeps_line_breaks_and_tabs_but_no_other_control_character() {
        assert!(Description::parse("rent, \"May\"\r\nsecond line\tend").is_ok());
        assert!(Description::parse("").is_ok());
        assert_eq!(
            Description::parse("bell\u{7}"),
            Err(MemoError::DescriptionCharacter)
        );
        assert!(Description::parse(&"ß".repeat(500)).is_ok());
        assert_eq!(
            Description::parse(&"a".repeat(501)),
            Err(MemoError::DescriptionLength)
        );
    }

    #[test]
    fn metadata_is_stored_canonical_and_every_rule_is_checked() {
        let parsed = Metadata::parse(&json!({"b": "2", "a": "1"})).expect("valid");
        assert_eq!(parsed.as_ref(), r#"{"a":"1","b":"2"}"#);
        assert_eq!(
            Metadata::parse(&json!(["a"])),
            Err(MemoError::MetadataNotObject)
        );
        let many: serde_json::Map<_, _> = (0..33).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert_eq!(
            Metadata::parse(&serde_json::Value::Object(many)),
            Err(MemoError::MetadataKeys)
        );
        let long_key = json!({ "k".repeat(65): "v" });
        assert_eq!(
            Metadata::parse(&long_key),
            Err(MemoError::MetadataKeyLength)
        );
        assert_eq!(
            Metadata::parse(&json!({"n": 1})),
            Err(MemoError::MetadataValueNotString("n".into()))
        );
        let big: serde_json::Map<_, _> = (0..20)
            .map(|i| (format!("key{i}"), json!("v".repeat(450))))
            .collect();
        assert_eq!(
            Metadata::parse(&serde_json::Value::Object(big)),
            Err(MemoError::MetadataSize)
        );
    }
}
