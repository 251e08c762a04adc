//! Text taken from events and answers, made fit to show a person: control characters and
//! characters that reorder or break lines turned into spaces, and long values shortened.

/// `text` with every control character (CR, LF, tab, ...) and every character that could make
/// it display other than it reads (bidirectional overrides, line and paragraph separators)
/// turned into a space, trimmed.
pub fn clean(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if misleads(c) { ' ' } else { c })
        .collect();
    cleaned.trim().to_owned()
}

/// Control characters, and the invisible characters that change how the text around them
/// shows: an RTL override (U+202E) can make `exe.pdf` read as `fdp.exe`, and U+2028/U+2029
/// break a line where a mail client or a log viewer would not expect one.
fn misleads(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' // Arabic letter mark
                | '\u{200E}' | '\u{200F}' // left-to-right and right-to-left marks
                | '\u{2028}' | '\u{2029}' // line and paragraph separators
                | '\u{202A}'..='\u{202E}' // embeddings and overrides
                | '\u{2066}'..='\u{2069}' // isolates
        )
}

/// `text` cut to at most `limit` characters, with `…` where it was cut.
pub fn truncate(text: &str, limit: usize) -> String {
    bounded(text.to_owned(), limit)
}

/// `text`, cut to at most `limit` characters with `…` where it was cut; not copied when it
/// is short enough.
pub fn bounded(mut text: String, limit: usize) -> String {
    // No more bytes than the limit means no more characters: nothing to count.
    if text.len() <= limit {
        return text;
    }
    if let Some((cut, _)) = text.char_indices().nth(limit) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// An error and its causes, one after another: a client's own words alone ("error sending
/// request") say nothing of why (a refused connection, a certificate not trusted).
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_shows_with_every_cause() {
        let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = std::io::Error::other(ErrorWith("error sending request", cause));
        assert_eq!(with_causes(&error), "error sending request: refused");
    }

    #[derive(Debug)]
    struct ErrorWith(&'static str, std::io::Error);

    impl std::fmt::Display for ErrorWith {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for ErrorWith {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.1)
        }
    }

    #[test]
    fn control_characters_become_spaces_and_the_ends_are_trimmed() {
        assert_eq!(clean(" a\r\nBcc: x\tb "), "a  Bcc: x b");
    }

    #[test]
    fn bidirectional_overrides_and_line_separators_become_spaces() {
        assert_eq!(
            clean("invoice\u{202E}fdp.exe\u{2028}x\u{2029}y\u{2066}z"),
            "invoice fdp.exe x y z"
        );
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        assert_eq!(truncate("ééééé", 3), "ééé…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(bounded("abcd".to_owned(), 4), "abcd");
        // Longer in bytes than the limit, not in characters.
        assert_eq!(bounded("éé".to_owned(), 2), "éé");
        assert_eq!(bounded("ééé".to_owned(), 2), "éé…");
    }
}
