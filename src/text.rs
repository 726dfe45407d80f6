//! Small string helpers shared by every layer: joining, splitting on a byte, and writing the
//! length-prefixed values that cache keys are made of. Below the model and the inventory, which
//! both use them.

/// The parts joined, in one allocation: what `format!` does for names built on every event,
/// without its formatting machinery.
pub fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.push_str(p);
    }
    out
}

/// Appends a number in hexadecimal, without the formatting machinery or a division (it is on
/// every event's path, in keys): a character per digit, from the most significant.
pub fn push_number(out: &mut String, n: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digits = (usize::BITS - (n | 1).leading_zeros()).div_ceil(4);
    for i in (0..digits).rev() {
        let v = (n >> (i * 4)) & 15;
        out.push(char::from(DIGITS.get(v).copied().unwrap_or(b'0')));
    }
}

/// Appends `:<kind><len>=<value>`: a value in a key, unambiguous whatever it holds.
pub fn push_value(out: &mut String, kind: char, value: &str) {
    out.push(':');
    out.push(kind);
    push_number(out, value.len());
    out.push('=');
    out.push_str(value);
}

/// `s` split at the first `byte` (an ASCII delimiter such as `:`), without it: `split_once`
/// for the short parts of ARNs, split on every event, without the pattern machinery.
pub fn split_byte(s: &str, byte: u8) -> Option<(&str, &str)> {
    let at = s.bytes().position(|b| b == byte)?;
    Some((s.get(..at)?, s.get(at + 1..)?))
}

/// At most `max` characters of `s`, for messages that quote input.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", s.get(..i).unwrap_or(s)),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_keys_are_hexadecimal_and_values_length_prefixed() {
        let mut out = String::new();
        for n in [0, 9, 10, 15, 16, 255, 4096, usize::MAX] {
            push_number(&mut out, n);
            out.push(' ');
        }
        assert_eq!(out, "0 9 a f 10 ff 1000 ffffffffffffffff ");
        out.clear();
        push_value(&mut out, 's', "a:b=c");
        push_value(&mut out, 's', "");
        assert_eq!(out, ":s5=a:b=c:s0=");
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("日本語テキスト", 3), "日本語…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
