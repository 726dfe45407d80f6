//! The event's `resources` list, read three ways: CloudTrail's own shape in a straight line,
//! the quick reader for other unescaped lists, and serde_json for the rest. Each reader gives
//! up on what it does not expect, and the next one reads it again.

use super::Named;
use std::borrow::Cow;

#[derive(serde::Deserialize)]
struct ResourceEntry<'a> {
    /// Panther's tests and several exporters write `arn`.
    #[serde(rename = "ARN", alias = "arn", default, borrow)]
    arn: Option<Cow<'a, str>>,
    #[serde(rename = "ARNPrefix", default, borrow)]
    arn_prefix: Option<Cow<'a, str>>,
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "accountId", default, borrow)]
    account_id: Option<Cow<'a, str>>,
}

#[cold]
#[inline(never)]
pub(super) fn resources_by_serde(raw: &str) -> Result<Vec<Named<'_>>, String> {
    let entries: Vec<ResourceEntry> =
        serde_json::from_str(raw).map_err(|e| format!("resources: {e}"))?;
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            let arn = e.arn.or(e.arn_prefix).filter(|a| !a.is_empty())?;
            Some(Named {
                kind: e.kind.unwrap_or(Cow::Borrowed("Unknown")),
                arn,
                account_id: e.account_id,
            })
        })
        .collect())
}

/// The `resources` list as CloudTrail writes it, read in a straight line: entries
/// `{"accountId":"…","type":"…","ARN":"…"}` (`accountId` optional), members in that order, with
/// no whitespace and no escapes. `None` on anything else, and the quick reader reads it. (An S3
/// data event lists its object and its bucket: this is the list read most often.)
pub(super) fn canonical_resources<'a>(
    raw: &'a str,
    push: &mut impl FnMut(Named<'a>),
) -> Option<()> {
    /// The string after `prefix` (which opens it) up to its unescaped closing quote, consumed.
    fn string<'a>(rest: &mut &'a str, prefix: &str) -> Option<&'a str> {
        let body = rest.strip_prefix(prefix)?;
        let end = memchr::memchr2(b'"', b'\\', body.as_bytes())?;
        if body.as_bytes().get(end) != Some(&b'"') {
            return None;
        }
        let value = body.get(..end)?;
        *rest = body.get(end + 1..)?;
        Some(value)
    }
    let mut rest = raw.strip_prefix('[')?;
    if rest == "]" {
        return Some(());
    }
    loop {
        let account = if rest.starts_with(r#"{"accountId":""#) {
            let account = string(&mut rest, r#"{"accountId":""#)?;
            rest = rest.strip_prefix(',')?;
            Some(account)
        } else {
            rest = rest.strip_prefix('{')?;
            None
        };
        let kind = string(&mut rest, r#""type":""#)?;
        let arn = string(&mut rest, r#","ARN":""#)?;
        if !arn.is_empty() {
            push(Named {
                kind: Cow::Borrowed(kind),
                arn: Cow::Borrowed(arn),
                account_id: account.map(Cow::Borrowed),
            });
        }
        rest = rest.strip_prefix('}')?;
        match rest {
            "]" => return Some(()),
            _ => rest = rest.strip_prefix(',')?,
        }
    }
}

/// The `resources` list as [`resources_by_serde`] reads it, by the quick reader
/// ([`crate::model::quick`]), each resource given to `push` as it is read: `None` when it gives up, on
/// anything but a list of objects whose `ARN`, `ARNPrefix`, `type` and `accountId` members are
/// unescaped strings, once each.
pub(super) fn quick_resources<'a>(raw: &'a str, push: &mut impl FnMut(Named<'a>)) -> Option<()> {
    let mut c = crate::model::quick::Cursor::new(raw);
    let mut more = c.begin(b'[', b']')?;
    while more {
        let (mut arn, mut prefix, mut kind, mut account) = (None, None, None, None);
        let mut members = c.begin(b'{', b'}')?;
        while members {
            let key = c.key()?;
            let slot = match key {
                "ARN" | "arn" => &mut arn,
                "ARNPrefix" => &mut prefix,
                "type" => &mut kind,
                "accountId" => &mut account,
                _ => {
                    c.skip_value()?;
                    members = c.more(b'}')?;
                    continue;
                }
            };
            // A duplicate is an error to serde_json: left to it.
            if slot.is_some() {
                return None;
            }
            *slot = Some(c.plain_string()?);
            members = c.more(b'}')?;
        }
        if let Some(arn) = arn.or(prefix).filter(|a| !a.is_empty()) {
            push(Named {
                kind: Cow::Borrowed(kind.unwrap_or("Unknown")),
                arn: Cow::Borrowed(arn),
                account_id: account.map(Cow::Borrowed),
            });
        }
        more = c.more(b']')?;
    }
    c.at_end().then_some(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::xorshift;
    use super::*;

    /// Named resources as text, to compare two readers' lists.
    fn render(named: &[Named]) -> Vec<String> {
        named
            .iter()
            .map(|n| format!("{}|{}|{:?}", n.kind, n.arn, n.account_id))
            .collect()
    }

    #[test]
    fn the_quick_reader_of_resources_agrees_with_serde_json() {
        let keys = [
            r#""ARN""#,
            r#""arn""#,
            r#""ARNPrefix""#,
            r#""type""#,
            r#""accountId""#,
            r#""other""#,
            r#""AR\u004e""#,
            r#""""#,
        ];
        let values = [
            r#""arn:aws:s3:::b/k""#,
            r#""AWS::S3::Bucket""#,
            r#""""#,
            r#""x\"y""#,
            r#""\u0041""#,
            "null",
            "-7.5e2",
            r#"[1,{"a":[]},"]"]"#,
            r#"{"ARN":"z","n":{}}"#,
            "true",
        ];
        let spaces = ["", " ", "\n\t"];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut pick = |n: usize| xorshift(&mut state, n);
        let mut quick = 0;
        for _ in 0..5000 {
            let mut text = format!("{}[", spaces[pick(3)]);
            for e in 0..pick(4) {
                if e > 0 {
                    text.push(',');
                }
                text.push_str(spaces[pick(3)]);
                if pick(8) == 0 {
                    text.push_str(values[pick(values.len())]);
                    continue;
                }
                text.push('{');
                for m in 0..pick(5) {
                    if m > 0 {
                        text.push(',');
                    }
                    let (k, v) = (keys[pick(keys.len())], values[pick(values.len())]);
                    text.push_str(&format!("{}{k}{}:{v}", spaces[pick(3)], spaces[pick(3)]));
                }
                text.push('}');
            }
            text.push_str(&format!("]{}", spaces[pick(3)]));
            let by_serde = resources_by_serde(&text);
            let mut q = Vec::new();
            if quick_resources(&text, &mut |n| q.push(n)).is_some() {
                quick += 1;
                assert_eq!(render(&q), render(by_serde.as_ref().unwrap()), "{text}");
            }
            let mut c = Vec::new();
            if canonical_resources(&text, &mut |n| c.push(n)).is_some() {
                assert_eq!(render(&c), render(&by_serde.unwrap()), "{text}");
            }
        }
        assert!(quick > 500, "the quick reader read {quick} lists");
    }

    #[test]
    fn the_reader_of_cloudtrails_own_resources_lists_agrees_with_serde_json() {
        // Lists in CloudTrail's shape and near it: members in its order or not, with spaces,
        // escapes, empty strings, values of other kinds, a truncated or trailing text.
        let strings = [
            r#""arn:aws:s3:::b/k""#,
            r#""AWS::S3::Bucket""#,
            r#""123456789012""#,
            r#""""#,
            r#""x\"y""#,
            r#""\u0041""#,
            "null",
            "7",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut pick = |n: usize| xorshift(&mut state, n);
        let mut canonical = 0;
        for _ in 0..5000 {
            let mut text = String::from("[");
            for e in 0..pick(4) {
                if e > 0 {
                    text.push_str([",", ", "][usize::from(pick(20) == 0)]);
                }
                let mut members = vec![
                    format!(r#""type":{}"#, strings[pick(strings.len())]),
                    format!(r#""ARN":{}"#, strings[pick(strings.len())]),
                ];
                if pick(2) == 0 {
                    members.insert(
                        0,
                        format!(r#""accountId":{}"#, strings[pick(strings.len())]),
                    );
                }
                if pick(10) == 0 {
                    members.swap(0, 1);
                }
                if pick(20) == 0 {
                    members.pop();
                }
                text.push_str(&format!("{{{}}}", members.join(",")));
            }
            text.push_str(["]", "] ", "", "]]"][if pick(20) == 0 { pick(4) } else { 0 }]);
            let mut c = Vec::new();
            if canonical_resources(&text, &mut |n| c.push(n)).is_some() {
                canonical += 1;
                let by_serde = resources_by_serde(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
                assert_eq!(render(&c), render(&by_serde), "{text}");
            }
        }
        assert!(
            canonical > 300,
            "{canonical} lists were read in a straight line"
        );
    }
}
