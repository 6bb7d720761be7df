//! The entry commitment letter (《进（返）京人员承诺书》): its texts, versioned, in Chinese and
//! English. A signature records the version and the SHA-256 of the text signed (computed by the
//! application, over [`Letter::signed_text`]), so that what was shown is what was agreed to.

use serde::{Deserialize, Serialize};

/// One version of the letter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Letter {
    pub version: String,
    pub title_zh: String,
    pub title_en: String,
    pub text_zh: String,
    pub text_en: String,
}

static BUILTIN: &[&str] = &[include_str!("../letters/commitment-2021-11-17.json")];

impl Letter {
    /// Every version shipped, oldest first.
    pub fn all() -> Vec<Letter> {
        BUILTIN.iter().map(|t| serde_json::from_str(t).expect("a shipped letter is valid JSON")).collect()
    }

    /// The version in use: the newest.
    pub fn current() -> Letter {
        Letter::all().pop().expect("a letter ships with the project")
    }

    /// The version named, if it exists.
    pub fn version(v: &str) -> Option<Letter> {
        Letter::all().into_iter().find(|l| l.version == v)
    }

    /// The exact text a signature covers: both titles and texts, each on its own line.
    pub fn signed_text(&self) -> String {
        format!("{}\n{}\n{}\n{}", self.title_zh, self.text_zh, self.title_en, self.text_en)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shipped_letter_loads() {
        let l = super::Letter::current();
        assert_eq!(l.version, "2021-11-17");
        assert!(l.text_zh.contains("承诺") && l.text_en.contains("undertake"));
        assert_eq!(super::Letter::version("2021-11-17"), Some(l));
        assert_eq!(super::Letter::version("nope"), None);
    }
}
