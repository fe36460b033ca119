//! Domain rule for free text (comments, reasons, names): what counts as blank. Pure, used by the
//! value constructors and the template and directory checks.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// True when `text` shows nothing to a reader: it is empty, or made only of white space and
/// Unicode format characters (category Cf: zero-width spaces and joiners, the word joiner, the
/// byte-order mark, bidirectional marks, ...). Such text would pass a plain `trim()` check
/// while carrying no words, so a "comment" of zero-width spaces is refused like an empty one.
pub fn is_blank(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_whitespace() || c.general_category() == GeneralCategory::Format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_space_and_format_characters_are_blank() {
        for blank in [
            "",
            " \t\r\n",
            "\u{00A0}\u{3000}",
            "\u{200B}",
            "\u{200C}\u{200D}",
            "\u{2060}",
            "\u{FEFF}",
            " \u{200B} \u{FEFF}\u{200E}\u{00AD} ",
        ] {
            assert!(is_blank(blank), "{blank:?} should be blank");
        }
    }

    #[test]
    fn any_visible_character_is_not_blank() {
        for text in ["x", "\u{200B}x\u{200B}", " . ", "\u{1F44D}", "\u{0301}"] {
            assert!(!is_blank(text), "{text:?} should not be blank");
        }
    }
}
