//! Neutralising attacker-controlled text before it reaches a terminal, a JSON reader or a
//! spreadsheet. Every string that came from a log or a file name goes through here.

use std::borrow::Cow;
use std::io;

/// Characters that can move the cursor, change colours, hide or reorder text, or stand for
/// nothing visible: controls, every Unicode format character (category Cf: bidirectional
/// overrides, zero-width characters, the TAG block of "ASCII smuggling"), and the characters
/// that render as blank without being spaces (Hangul fillers, variation selectors, the
/// combining grapheme joiner, the Braille blank).
fn dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c,
            // Format characters (Cf), Unicode 14.
            '\u{00AD}' | '\u{0600}'..='\u{0605}' | '\u{061C}' | '\u{06DD}' | '\u{070F}'
            | '\u{0890}'..='\u{0891}' | '\u{08E2}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}' | '\u{110BD}' | '\u{110CD}' | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
            // Line and paragraph separators.
            | '\u{2028}' | '\u{2029}'
            // Invisible fillers and selectors.
            | '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
            | '\u{180B}'..='\u{180D}' | '\u{180F}' | '\u{2800}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}'
            | '\u{FFA0}'
            // Plane 14: tags (U+E0000-E007F) and variation selectors (U+E0100-E01EF).
            | '\u{E0000}'..='\u{E0FFF}')
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

/// A CSV cell: terminal-safe, and never read as a formula by a spreadsheet. A cell whose first
/// character other than white space is a formula character (`=`, `+`, `-`, `@`, or their
/// full-width and small forms, which some spreadsheets fold to ASCII) is prefixed with `'`.
pub fn csv_cell(s: &str) -> Cow<'_, str> {
    let safe = terminal(s);
    let formula = |c: char| {
        matches!(
            c,
            '=' | '+'
                | '-'
                | '@'
                | '|'
                | '%'
                | '\u{FF1D}' // full-width = + - @
                | '\u{FF0B}'
                | '\u{FF0D}'
                | '\u{FF20}'
                | '\u{FE66}' // small = + - @
                | '\u{FE62}'
                | '\u{FE63}'
                | '\u{FE6B}'
                | '\u{2212}' // minus sign
        )
    };
    // Tabs and carriage returns are escaped by `terminal` already.
    if safe.trim_start().chars().next().is_some_and(formula) {
        Cow::Owned(format!("'{safe}"))
    } else {
        safe
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

    /// JSON text kept as read (`--raw`): on one line, with the same escapes. A line break, tab
    /// or other control character can stand in valid JSON only between tokens, where a blank
    /// means the same; every other character [`dangerous`] stands in a string, where its
    /// `\u` escape means the same.
    fn write_raw_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut buf = [0u16; 2];
        let mut b = [0u8; 4];
        for c in fragment.chars() {
            if c.is_ascii_control() {
                writer.write_all(b" ")?;
            } else if dangerous(c) {
                for unit in c.encode_utf16(&mut buf) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            } else {
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
    fn invisible_characters_are_escaped() {
        // ASCII smuggling: "ignore" written in Unicode TAG characters.
        let smuggled: String = "ignore"
            .chars()
            .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
            .collect();
        let text = format!("ok{smuggled}");
        let out = terminal(&text);
        assert!(out.is_ascii(), "{out}");
        assert!(out.starts_with("ok\\u{e0069}"), "{out}");
        for c in [
            '\u{3164}',
            '\u{115F}',
            '\u{1160}',
            '\u{FFA0}',
            '\u{180E}',
            '\u{00AD}',
            '\u{FE0F}',
            '\u{E0100}',
            '\u{2800}',
            '\u{2066}',
        ] {
            let s = format!("a{c}b");
            assert_eq!(
                terminal(&s),
                format!("a\\u{{{:x}}}b", c as u32),
                "U+{:04X}",
                c as u32
            );
        }
        assert_eq!(
            terminal("한국어 日本語 ü"),
            "한국어 日本語 ü",
            "visible text stays"
        );
    }

    #[test]
    fn formulas_behind_blanks_or_full_width_signs_are_neutralised() {
        for cell in [
            " =1+1",
            "\u{3000}=cmd",
            "\u{a0}@SUM(A1)",
            "\u{FF1D}HYPERLINK(\"x\")",
            "\u{FF0B}1",
            "\u{FE66}1",
            "\u{2212}1",
            "  -2",
        ] {
            assert!(
                csv_cell(cell).starts_with('\''),
                "{cell:?} -> {:?}",
                csv_cell(cell)
            );
        }
        assert_eq!(csv_cell(" plain"), " plain");
        assert_eq!(csv_cell("\t=1"), "\\t=1", "a tab is escaped as text");
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
