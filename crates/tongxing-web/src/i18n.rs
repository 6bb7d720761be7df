//! The languages of the pages and their message catalogues. Text lives in
//! `i18n/<lang>/<page>.toml`, one file per page and language; `build.rs` turns each into a
//! struct with a field per key (`msg::citizen(lang).title`), so that a template naming a key
//! that does not exist fails to compile, and a key missing from one language fails the build.
//! Decision reasons are not here: they come with the decision, in both languages, from the
//! domain's reason codes.

use tongxing_domain::decision::Lang as DomainLang;

/// A language of the pages. zh-CN is the default; English is one tap away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    ZhCn = 0,
    En = 1,
}

impl Lang {
    /// Every language, in catalogue order.
    pub const ALL: [Lang; 2] = [Lang::ZhCn, Lang::En];

    /// The BCP 47 tag: `lang` of the page, the `?lang=` value and the cookie's.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }

    /// Reads a tag (`zh-CN`, `zh`, `en`; case-insensitive).
    pub fn parse(tag: &str) -> Option<Lang> {
        match tag.trim().to_ascii_lowercase().as_str() {
            "zh-cn" | "zh" | "zh-hans" => Some(Lang::ZhCn),
            "en" | "en-gb" | "en-us" => Some(Lang::En),
            _ => None,
        }
    }

    /// The other language: the switch offers it.
    pub fn other(self) -> Lang {
        match self {
            Lang::ZhCn => Lang::En,
            Lang::En => Lang::ZhCn,
        }
    }

    /// The domain's language of reason texts and advice.
    pub fn domain(self) -> DomainLang {
        match self {
            Lang::ZhCn => DomainLang::Zh,
            Lang::En => DomainLang::En,
        }
    }

    /// Picks the text in this language of a (Chinese, English) pair.
    pub fn pick<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::ZhCn => zh,
            Lang::En => en,
        }
    }
}

/// The catalogues, one struct per page (generated).
pub mod msg {
    include!(concat!(env!("OUT_DIR"), "/messages.rs"));
}

/// Replaces each `{name}` in a catalogue text with its value.
pub fn fill(text: &str, values: &[(&str, &dyn std::fmt::Display)]) -> String {
    let mut out = text.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), &value.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_switch() {
        for l in Lang::ALL {
            assert_eq!(Lang::parse(l.tag()), Some(l));
            assert_ne!(l.other(), l);
        }
        assert_eq!(Lang::parse("EN"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(Lang::default(), Lang::ZhCn);
    }

    #[test]
    fn placeholders_are_filled() {
        assert_eq!(fill("{n} h ago, by {who}", &[("n", &5), ("who", &"LAB")]), "5 h ago, by LAB");
    }

    #[test]
    fn catalogues_differ_by_language() {
        // The same key in both languages, and not left untranslated.
        assert_ne!(msg::layout(Lang::ZhCn).app_name, msg::layout(Lang::En).app_name);
        assert_eq!(msg::layout(Lang::ZhCn).lang_name, "中文");
        assert_eq!(msg::layout(Lang::En).lang_name, "English");
    }
}
