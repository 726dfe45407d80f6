//! Neutralising attacker-controlled text before it reaches a terminal, a JSON reader or a
//! spreadsheet. Every string that came from a log or a file name goes through here.

use std::borrow::Cow;
use std::io;

/// Characters that can move the cursor, change colours, hide or reorder text.
fn dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}' | '\u{2029}'
            | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}')
}

/// `s` with every dangerous character written as `\u{..}` (and `\` doubled when escaping
/// happens, so the output cannot be confused with an escape that was in the input).
pub fn terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(dangerous) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if dangerous(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A CSV cell: terminal-safe, and never read as a formula by a spreadsheet.
pub fn csv_cell(s: &str) -> Cow<'_, str> {
    let safe = terminal(s);
    match safe.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '|' | '%') => Cow::Owned(format!("'{safe}")),
        _ => safe,
    }
}

/// A serde_json formatter that also escapes DEL, C1 controls and bidirectional overrides
/// (serde_json escapes only C0 controls), so JSON output is safe to `cat` to a terminal.
pub struct SafeJson;

impl serde_json::ser::Formatter for SafeJson {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if !fragment.chars().any(dangerous) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut buf = [0u16; 2];
        for c in fragment.chars() {
            if dangerous(c) {
                for unit in c.encode_utf16(&mut buf) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            } else {
                let mut b = [0u8; 4];
                writer.write_all(c.encode_utf8(&mut b).as_bytes())?;
            }
        }
        Ok(())
    }
}

/// Serialises `value` as one line of JSON with [`SafeJson`].
pub fn json_line<T: serde::Serialize>(value: &T) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(512);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, SafeJson);
    value.serialize(&mut ser).map_err(io::Error::other)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_controls() {
        assert_eq!(terminal("aws-cli/2.0"), "aws-cli/2.0");
        assert_eq!(terminal("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(terminal("evil\u{9b}2J"), "evil\\u{9b}2J");
        assert_eq!(terminal("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(terminal("line\nbreak\\u{1b}"), "line\\nbreak\\\\u{1b}");
        assert_eq!(
            terminal("C:\\path"),
            "C:\\path",
            "backslashes alone stay as they are"
        );
        assert_eq!(terminal("日本語"), "日本語");
    }

    #[test]
    fn neutralises_formulas() {
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\")"),
            "'=HYPERLINK(\"http://x\")"
        );
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("-2+3"), "'-2+3");
        assert_eq!(csv_cell("s3:PutObject"), "s3:PutObject");
    }

    #[test]
    fn json_escapes_what_serde_does_not() {
        let line =
            String::from_utf8(json_line(&"a\u{1b}b\u{9b}c\u{202e}d\u{7f}").unwrap()).unwrap();
        assert_eq!(line, r#""a\u001bb\u009bc\u202ed\u007f""#);
        let back: String = serde_json::from_str(&line).unwrap();
        assert_eq!(
            back, "a\u{1b}b\u{9b}c\u{202e}d\u{7f}",
            "still valid JSON of the same string"
        );
    }
}
