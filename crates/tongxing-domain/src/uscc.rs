//! Unified social credit codes (统一社会信用代码, GB 32100-2015): 18 characters from a 31-symbol
//! alphabet (digits and capitals without I, O, Z, S, V); characters 3-8 are a region code and the
//! last is a check character computed modulo 31.

use std::fmt;

use serde::Serialize;

const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsccError {
    #[error("a unified social credit code has 18 characters, got {0}")]
    Length(usize),
    #[error("character {position} ({found:?}) is not allowed: use digits and capital letters except I, O, Z, S and V")]
    Character { position: usize, found: char },
    #[error("characters 3 to 8 must be a 6-digit region code, got '{0}'")]
    Region(String),
    #[error(
        "the check character is {found}, but the first 17 characters give {expected}: the code was probably mistyped"
    )]
    CheckCharacter { expected: char, found: char },
}

/// A validated unified social credit code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Uscc(String);

/// The check character of the first 17 characters (each must be in the alphabet).
fn check_char(values: &[u32]) -> char {
    let sum: u32 = values.iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
    let c = (31 - sum % 31) % 31;
    ALPHABET[c as usize] as char
}

impl Uscc {
    pub fn parse(input: &str) -> Result<Self, UsccError> {
        let s = input.trim().to_ascii_uppercase();
        let n = s.chars().count();
        if n != 18 {
            return Err(UsccError::Length(n));
        }
        let mut values = Vec::with_capacity(18);
        for (i, c) in s.chars().enumerate() {
            match ALPHABET.iter().position(|&a| a as char == c) {
                Some(v) => values.push(v as u32),
                None => {
                    return Err(UsccError::Character { position: i + 1, found: c });
                }
            }
        }
        if !s.as_bytes()[2..8].iter().all(u8::is_ascii_digit) {
            return Err(UsccError::Region(s[2..8].into()));
        }
        let expected = check_char(&values[..17]);
        let found = s.as_bytes()[17] as char;
        if expected != found {
            return Err(UsccError::CheckCharacter { expected, found });
        }
        Ok(Uscc(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Completes 17 valid characters with their check character (for generated data and tests).
pub fn complete(first17: &str) -> Option<String> {
    let values: Option<Vec<u32>> =
        first17.chars().map(|c| ALPHABET.iter().position(|&a| a as char == c).map(|v| v as u32)).collect();
    let values = values?;
    (values.len() == 17).then(|| format!("{first17}{}", check_char(&values)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_example_is_valid() {
        // An example code printed in GB 32100-2015 explanations.
        assert!(Uscc::parse("91350100M000100Y43").is_ok());
    }

    #[test]
    fn mistyped_check_character() {
        assert_eq!(Uscc::parse("91350100M000100Y44"), Err(UsccError::CheckCharacter { expected: '3', found: '4' }));
    }

    #[test]
    fn bad_characters_and_lengths() {
        assert_eq!(Uscc::parse("91350100M000100Y4"), Err(UsccError::Length(17)));
        assert_eq!(Uscc::parse("91350100I000100Y43"), Err(UsccError::Character { position: 9, found: 'I' }));
        assert!(matches!(Uscc::parse("91AB0100M000100Y43"), Err(UsccError::Region(_))));
    }

    #[test]
    fn complete_produces_valid_codes() {
        let code = complete("91110105MA01ABCD1").unwrap();
        assert!(Uscc::parse(&code).is_ok());
    }
}
