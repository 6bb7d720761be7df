//! Free text and codes from outside, parsed at the edge: every string a request or a file
//! carries has a maximum length and a character rule, both stated here once and shown in the
//! OpenAPI document (`maxLength`, `pattern`). A value of these types is always within them.
//!
//! Errors never echo a long input: [`quote`] shows at most the first 64 characters.

use std::fmt;

/// How many characters of a bad value an error message quotes.
pub const QUOTE_CHARS: usize = 64;

/// `'value'`, or `'first 64 characters…' (1048576 characters)` for a long one. Control
/// characters are shown escaped, so a message never carries a NUL or a line break.
pub fn quote(v: &str) -> String {
    let n = v.chars().count();
    let shown: String = v.chars().take(QUOTE_CHARS).flat_map(char::escape_debug).collect();
    if n > QUOTE_CHARS { format!("'{shown}…' ({n} characters)") } else { format!("'{shown}'") }
}

/// Like [`quote`] without the quotes, for a name inside a path (`rules[<identifier>]`).
pub fn shorten(v: &str) -> String {
    let n = v.chars().count();
    let shown: String = v.chars().take(QUOTE_CHARS).flat_map(char::escape_debug).collect();
    if n > QUOTE_CHARS { format!("{shown}…({n} characters)") } else { shown }
}

/// Cuts every quoted span ("…" or `…`) of a message to 64 characters, so that a parser's
/// "invalid type: string \"<a megabyte>\"" never echoes the input.
pub fn shorten_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(512));
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest.as_bytes()[open] as char;
        out.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        let end = after.find(quote).unwrap_or(after.len());
        let inner = &after[..end];
        let n = inner.chars().count();
        if n > QUOTE_CHARS {
            out.extend(inner.chars().take(QUOTE_CHARS));
            out.push_str(&format!("…({n} characters)"));
        } else {
            out.push_str(inner);
        }
        rest = &after[end..];
        if let Some(close) = rest.chars().next() {
            out.push(close);
            rest = &rest[close.len_utf8()..];
        }
    }
    out.push_str(rest);
    out
}

/// A serde data error (its path, as `serde_path_to_error` gives it, and its message) as the
/// field to name and the reason: a missing field is named itself (serde's path is its
/// parent's), an unknown one with the fields accepted, a wrong value by its path; quoted
/// values are cut ([`shorten_quoted`]) and the whole document is `body`.
pub fn serde_refusal(path: &str, message: &str) -> (String, String) {
    let parent = if path == "." || path.is_empty() {
        String::new()
    } else {
        path.split('.').map(shorten).collect::<Vec<_>>().join(".")
    };
    let join = |name: &str| {
        if parent.is_empty() {
            name.to_string()
        } else if parent == name || parent.ends_with(&format!(".{name}")) {
            parent.clone()
        } else {
            format!("{parent}.{name}")
        }
    };
    let message = shorten_quoted(message);
    // serde_json appends " at line L column C"; the field says where.
    let message = message.split(" at line ").next().unwrap_or(&message).to_string();
    let backquoted = |prefix: &str| message.strip_prefix(prefix).and_then(|rest| rest.split('`').next());
    if let Some(name) = backquoted("missing field `") {
        return (join(name), "is required".into());
    }
    if let Some(name) = backquoted("unknown field `") {
        let accepted = message.split_once(", expected ").map(|(_, rest)| rest.replace('`', "")).unwrap_or_default();
        let accepted = accepted.strip_prefix("one of ").unwrap_or(&accepted).to_string();
        let reason = if accepted.is_empty() {
            "is not a known field".to_string()
        } else {
            format!("is not a known field; accepted: {accepted}")
        };
        return (join(name), reason);
    }
    if let Some(name) = backquoted("duplicate field `") {
        return (join(name), "is given more than once".into());
    }
    (if parent.is_empty() { "body".to_string() } else { parent }, message)
}

/// The characters a kind of text may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// ASCII letters, digits, `-` and `_`: ids chosen by operators (checkpoints).
    Id,
    /// ASCII letters, digits, `-`, `_`, `.` and `/`: codes from other systems (labs, sample bar
    /// codes, sites, policy ids and versions).
    Code,
    /// Latin letters, digits, Chinese characters, `·` and `-`: vehicle plates (冀R12345,
    /// 京A·D1234, 粤Z1234港).
    Plate,
    /// Human text in any script, spaces included; no control characters, no bidirectional
    /// overrides (which could make a name display as something else).
    Text,
}

impl Charset {
    fn allows(self, c: char) -> bool {
        match self {
            Charset::Id => c.is_ascii_alphanumeric() || c == '-' || c == '_',
            Charset::Code => c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'),
            Charset::Plate => {
                c.is_ascii_alphanumeric() || ('\u{3400}'..='\u{9FFF}').contains(&c) || c == '·' || c == '-'
            }
            Charset::Text => !c.is_control() && !is_invisible_format(c),
        }
    }

    /// What is allowed, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Charset::Id => "letters, digits, '-' and '_'",
            Charset::Code => "letters, digits, '-', '_', '.' and '/'",
            Charset::Plate => "Latin letters, digits, Chinese characters, '·' and '-'",
            Charset::Text => "any text without control or bidirectional-override characters",
        }
    }

    /// The character class in ECMA-262 regular-expression syntax (as OpenAPI's `pattern`).
    fn class(self) -> &'static str {
        match self {
            Charset::Id => "[A-Za-z0-9_-]",
            Charset::Code => "[A-Za-z0-9_./-]",
            Charset::Plate => r"[0-9A-Za-z\u00B7\u3400-\u9FFF-]",
            Charset::Text => r"[^\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]",
        }
    }
}

/// Bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069).
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The rule for one kind of text: its characters and length in characters (not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub charset: Charset,
    pub min: usize,
    pub max: usize,
}

/// Why a text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("is required")]
    Empty,
    #[error("has {len} characters; at least {min} are required")]
    TooShort { min: usize, len: usize },
    #[error("has {len} characters; at most {max} are accepted")]
    TooLong { max: usize, len: usize },
    #[error("character {position} ({found:?}) is not allowed: {allowed}")]
    Character { position: usize, found: char, allowed: &'static str },
}

impl Spec {
    /// The same rule as an anchored regular expression, e.g. `^[A-Za-z0-9_-]{1,64}$`.
    pub fn pattern(&self) -> String {
        format!("^{}{{{},{}}}$", self.charset.class(), self.min, self.max)
    }

    /// Trims the value and checks it. Length is checked first, so a huge value costs nothing.
    pub fn check<'a>(&self, v: &'a str) -> Result<&'a str, TextError> {
        let v = v.trim();
        if v.is_empty() {
            return Err(TextError::Empty);
        }
        // A character has at most 4 bytes: only count when the byte length leaves it open.
        if v.len() > self.max * 4 || v.len() > self.max && v.chars().count() > self.max {
            return Err(TextError::TooLong { max: self.max, len: v.chars().count() });
        }
        if let Some((position, found)) = v.chars().enumerate().find(|&(_, c)| !self.charset.allows(c)) {
            return Err(TextError::Character { position: position + 1, found, allowed: self.charset.describe() });
        }
        let len = v.chars().count();
        if len < self.min {
            return Err(TextError::TooShort { min: self.min, len });
        }
        Ok(v)
    }
}

macro_rules! bounded_text {
    ($($(#[$m:meta])* $name:ident: $charset:ident, $min:literal..=$max:literal;)+) => {$(
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const SPEC: Spec = Spec { charset: Charset::$charset, min: $min, max: $max };
            /// Trims and checks the value against [`Self::SPEC`].
            pub fn parse(v: &str) -> Result<Self, TextError> {
                Self::SPEC.check(v).map(|v| $name(v.to_string()))
            }
            /// Like [`Self::parse`], but empty (or only spaces) is `None`.
            pub fn parse_opt(v: Option<&str>) -> Result<Option<Self>, TextError> {
                match v.map(str::trim) {
                    None | Some("") => Ok(None),
                    Some(v) => Self::parse(v).map(Some),
                }
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

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
    )+};
}

bounded_text! {
    /// A checkpoint's stable id, e.g. `CP-JINGHA`.
    CheckpointId: Id, 1..=64;
    /// A laboratory's or test point's code, e.g. `BJ-LAB-017`.
    LabCode: Code, 1..=32;
    /// A lab's own sample identifier (the tube's bar code).
    SampleId: Code, 1..=64;
    /// A sampling site's code; designated service-area test points use the policy's ids.
    SiteCode: Code, 1..=64;
    /// A rule set's id, e.g. `beijing-2021-11-17`.
    PolicyId: Code, 1..=64;
    /// A rule set's version, e.g. `2021-11-17`.
    PolicyVersion: Code, 1..=64;
    /// A vehicle plate, e.g. `冀R12345`.
    Plate: Plate, 5..=16;
    /// A person's name as on the document.
    PersonName: Text, 1..=64;
    /// A place's name (a checkpoint, a site).
    PlaceName: Text, 1..=100;
    /// A road, e.g. `京哈高速`.
    Road: Text, 1..=64;
    /// An employer's or school's name.
    EmployerName: Text, 1..=100;
    /// Why something was done or read (kept in the record), a reason for a decision.
    Reason: Text, 1..=200;
    /// A note on whom a token is for.
    Label: Text, 1..=100;
    /// A rule set's name, or a value set entry's.
    PolicyName: Text, 1..=200;
    /// A rule's description, shown to officers beside its verdict.
    RuleDescription: Text, 1..=1000;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_short_and_clean() {
        assert_eq!(quote("abc"), "'abc'");
        let long = "x".repeat(1_000_000);
        let q = quote(&long);
        assert!(q.starts_with(&format!("'{}…'", "x".repeat(64))), "{q}");
        assert!(q.ends_with("(1000000 characters)"));
        assert!(q.len() < 100);
        assert_eq!(quote("a\0b\nc"), r"'a\0b\nc'");
    }

    #[test]
    fn limits_and_characters() {
        assert_eq!(CheckpointId::parse("  CP-JINGHA ").unwrap().as_str(), "CP-JINGHA");
        assert_eq!(CheckpointId::parse(" "), Err(TextError::Empty));
        assert_eq!(CheckpointId::parse(&"a".repeat(65)), Err(TextError::TooLong { max: 64, len: 65 }));
        assert_eq!(
            CheckpointId::parse("CP 1"),
            Err(TextError::Character { position: 3, found: ' ', allowed: Charset::Id.describe() })
        );
        assert!(PolicyVersion::parse("v1\0").is_err());
        assert!(PolicyVersion::parse(&"1".repeat(1 << 20)).is_err());
        assert!(PersonName::parse("张三丰").is_ok());
        assert!(PersonName::parse("Zhang San").is_ok());
        assert!(PersonName::parse("张\u{202E}三").is_err());
        assert!(PersonName::parse("a\tb").is_err());
        assert!(Reason::parse(&"好".repeat(200)).is_ok());
        assert!(Reason::parse(&"好".repeat(201)).is_err());
        assert!(Plate::parse("冀R12345").is_ok());
        assert!(Plate::parse("京A·D1234").is_ok());
        assert_eq!(Plate::parse("冀R1"), Err(TextError::TooShort { min: 5, len: 3 }));
        assert_eq!(Plate::parse_opt(Some("  ")), Ok(None));
        assert_eq!(LabCode::parse("BJ-LAB/017.a").unwrap().as_str(), "BJ-LAB/017.a");
        let e = LabCode::parse("LAB😀").unwrap_err().to_string();
        assert_eq!(e, "character 4 ('😀') is not allowed: letters, digits, '-', '_', '.' and '/'");
    }

    #[test]
    fn patterns_say_the_same() {
        assert_eq!(CheckpointId::SPEC.pattern(), "^[A-Za-z0-9_-]{1,64}$");
        assert_eq!(LabCode::SPEC.pattern(), "^[A-Za-z0-9_./-]{1,32}$");
    }
}
