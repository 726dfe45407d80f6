//! A quick reader for JSON text that serde_json has already read once and found valid (a
//! captured `RawValue`): just enough to pick a few string members out of it without building
//! values, on every event's path. It gives up (`None`) on anything it does not expect, an
//! escape in a string it reads for one, and the caller then reads the text with serde_json: it is
//! a shortcut to the same answer, never a second opinion.

/// A position in JSON text.
pub struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(text: &'a str) -> Cursor<'a> {
        Cursor { text, at: 0 }
    }

    fn byte(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.byte(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    /// Consumes `c`, after whitespace, if it is next.
    pub fn eat(&mut self, c: u8) -> bool {
        self.skip_whitespace();
        if self.byte() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// The next byte after whitespace, not consumed.
    pub fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.byte()
    }

    /// Past the `open` of an object or list: `Some(false)` when it closes at once (past its
    /// `close`), `Some(true)` when members follow; `None` when it is not one.
    pub fn begin(&mut self, open: u8, close: u8) -> Option<bool> {
        if !self.eat(open) {
            return None;
        }
        Some(!self.eat(close))
    }

    /// After a member or an element: `Some(true)` past a `,`, `Some(false)` past `close`.
    pub fn more(&mut self, close: u8) -> Option<bool> {
        if self.eat(b',') {
            Some(true)
        } else if self.eat(close) {
            Some(false)
        } else {
            None
        }
    }

    /// Whether only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.skip_whitespace();
        self.at >= self.text.len()
    }

    /// A string without escapes, borrowed; `None` for anything else (another value, or a
    /// string with an escape, whose text differs from its value).
    pub fn plain_string(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        let end = start + find_quote_or_escape(self.text.as_bytes().get(start..)?)?;
        if self.text.as_bytes().get(end) != Some(&b'"') {
            return None;
        }
        self.at = end + 1;
        self.text.get(start..end)
    }

    /// The key of an object's member, past its `:`.
    pub fn key(&mut self) -> Option<&'a str> {
        let key = self.plain_string()?;
        self.eat(b':').then_some(key)
    }

    /// Skips the rest of a string whose opening quote was consumed.
    fn skip_string_body(&mut self) -> Option<()> {
        loop {
            let rest = self.text.as_bytes().get(self.at..)?;
            let found = find_quote_or_escape(rest)?;
            self.at += found;
            if self.byte()? == b'"' {
                self.at += 1;
                return Some(());
            }
            // An escape: the backslash and the character it escapes.
            self.at += 2;
        }
    }

    /// Skips one value of any kind.
    pub fn skip_value(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            self.skip_whitespace();
            match self.byte()? {
                b'"' => {
                    self.at += 1;
                    self.skip_string_body()?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.at += 1;
                    continue;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    self.at += 1;
                }
                b',' | b':' => {
                    if depth == 0 {
                        return None;
                    }
                    self.at += 1;
                    continue;
                }
                _ => {
                    // A number, `true`, `false` or `null`: up to the next delimiter.
                    while !matches!(
                        self.byte(),
                        None | Some(b',' | b':' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
                    ) {
                        self.at += 1;
                    }
                }
            }
            if depth == 0 {
                return Some(());
            }
        }
    }
}

/// The first `"` or `\` in `bytes`. (`memchr2` beats a plain loop even on the short strings
/// of ARNs and keys: measured.)
fn find_quote_or_escape(bytes: &[u8]) -> Option<usize> {
    memchr::memchr2(b'"', b'\\', bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_quote_or_escape_before_and_past_the_short_loop() {
        for len in [0, 1, 47, 48, 49, 100, 1000] {
            let mut text = vec![b'a'; len];
            assert_eq!(find_quote_or_escape(&text), None, "{len}");
            for (at, c) in [(len, b'"'), (len / 2, b'\\')] {
                text.truncate(len);
                text.push(b'z');
                if let Some(b) = text.get_mut(at) {
                    *b = c;
                }
                text.push(b'"');
                assert_eq!(find_quote_or_escape(&text), Some(at), "{len} {at}");
            }
        }
    }

    #[test]
    fn skips_values_of_every_kind_and_reads_plain_strings() {
        let text = r#" {"a": [1, -2.5e3, true, null, {"b": "x\"}]"}], "c" : "plain", "d":"es\u0063aped"} "#;
        let mut c = Cursor::new(text);
        assert!(c.eat(b'{'));
        assert_eq!(c.plain_string(), Some("a"));
        assert!(c.eat(b':'));
        c.skip_value().unwrap();
        assert!(c.eat(b','));
        assert_eq!(c.plain_string(), Some("c"));
        assert!(c.eat(b':'));
        assert_eq!(c.plain_string(), Some("plain"));
        assert!(c.eat(b','));
        assert_eq!(c.plain_string(), Some("d"));
        assert!(c.eat(b':'));
        assert_eq!(
            c.plain_string(),
            None,
            "an escaped string is left to serde_json"
        );
    }

    #[test]
    fn gives_up_on_text_it_does_not_expect() {
        for text in ["", "}", "]", ",", "[1,", r#""open"#, r#"{"a":"b"#] {
            let mut c = Cursor::new(text);
            assert_eq!(c.skip_value(), None, "{text:?}");
        }
    }
}
