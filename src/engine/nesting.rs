//! How deep a policy may nest, checked before Cedar parses it.
//!
//! Cedar's parser, its validator and our analysis recurse once per level of an expression:
//! per bracket (through every level of the grammar, so a bracket costs about ten), and per
//! operator of a chain (`a && b && c` is a chain of nested `&&`). Past some depth the stack
//! overflows, which aborts the process (exit 134) without a word. So a policy is checked first,
//! and one past these limits is a diagnostic that points at it; a pack is loaded on a thread
//! whose stack holds a policy at the limits, in a debug build too.

use crate::engine::diagnostic::InFile;
use miette::{NamedSource, Report};
use std::sync::Arc;

/// Most brackets (`(`, `[`, `{`) open at once in a policy file.
pub const MAX_DEPTH: usize = 64;

/// Most operators in one policy (`&&`, `||`, comparisons, `+`, `-`, `*`, `!`, `.`, `in`,
/// `has`, `like`, `is`, `if`/`then`/`else`).
pub const MAX_OPERATORS: usize = 1_000;

/// The stack a pack is loaded with: room for a policy at both limits in a debug build (a
/// bracket takes about 70 KiB of it there, an operator about 26 KiB), and only reserved.
pub const LOAD_STACK: usize = 256 << 20;

/// A policy past a limit: where, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooDeep {
    pub offset: usize,
    pub len: usize,
    pub message: String,
    pub help: String,
}

impl TooDeep {
    /// The diagnostic, pointing into the policy file.
    pub fn report(self, file: NamedSource<Arc<str>>) -> Report {
        let span = (self.offset, self.len).into();
        Report::new(InFile::new(
            self.message,
            span,
            "here",
            Some(self.help),
            file,
        ))
    }
}

/// Checks the nesting of every policy in `text` (strings and comments are skipped).
pub fn check(text: &str) -> Result<(), TooDeep> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut operators = 0usize;
    let mut policy_start: Option<usize> = None;
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        if policy_start.is_none() && !b.is_ascii_whitespace() {
            policy_start = Some(i);
        }
        let mut len = 1;
        match b {
            b'"' => {
                // A string, with its escapes.
                let mut j = i + 1;
                while let Some(&c) = bytes.get(j) {
                    j += match c {
                        b'\\' => 2,
                        b'"' => break,
                        _ => 1,
                    };
                }
                len = j + 1 - i;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                len = bytes
                    .get(i..)
                    .and_then(|rest| memchr::memchr(b'\n', rest))
                    .unwrap_or(bytes.len() - i);
                if policy_start == Some(i) {
                    policy_start = None;
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(TooDeep {
                        offset: i,
                        len: 1,
                        message: format!(
                            "brackets nested more than {MAX_DEPTH} deep: past this limit Cedar's parser could overflow its stack"
                        ),
                        help: "split the condition into several policies, or flatten it"
                            .to_string(),
                    });
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b';' if depth == 0 => {
                operators = 0;
                policy_start = None;
            }
            b'&' | b'|' | b'=' if bytes.get(i + 1) == Some(&b) => {
                operators += 1;
                len = 2;
            }
            b'!' | b'<' | b'>' => {
                operators += 1;
                if bytes.get(i + 1) == Some(&b'=') {
                    len = 2;
                }
            }
            b'+' | b'-' | b'*' | b'.' => operators += 1,
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let word_end = bytes
                    .get(i..)
                    .and_then(|rest| {
                        rest.iter()
                            .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                    })
                    .map_or(bytes.len(), |n| i + n);
                len = word_end - i;
                let word = text.get(i..word_end).unwrap_or_default();
                if matches!(word, "in" | "has" | "like" | "is" | "if" | "then" | "else") {
                    operators += 1;
                }
            }
            _ => {}
        }
        if operators > MAX_OPERATORS {
            let start = policy_start.unwrap_or(i);
            return Err(TooDeep {
                offset: start,
                len: i + 1 - start,
                message: format!(
                    "more than {MAX_OPERATORS} operators in one policy: past this limit Cedar's parser could overflow its stack"
                ),
                help: "a long chain of `||` over equalities reads better as a set: `[\"a\", \"b\"].contains(context.eventName)`; or split the policy".to_string(),
            });
        }
        i += len.max(1);
    }
    Ok(())
}

/// Runs `f` on a thread with a [`LOAD_STACK`] stack, or here when no such thread can be made.
pub fn on_deep_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let mut f = Some(f);
    let outcome = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("trailcedar-load".to_string())
            .stack_size(LOAD_STACK)
            .spawn_scoped(scope, || f.take().map(|f| f()))
            .ok()
            .map(|handle| handle.join())
    });
    match (outcome, f) {
        (Some(Ok(Some(out))), _) => out,
        (Some(Err(panic)), _) => std::panic::resume_unwind(panic),
        (_, Some(f)) => f(),
        (_, None) => std::panic::resume_unwind(Box::new("a pack could not be loaded")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_brackets_and_operators_but_not_strings_or_comments() {
        let ok = r#"@id("a") forbid (principal, action, resource) when { context.eventName == "((((" && !(1 < 2) }; // ((((("#;
        assert_eq!(check(ok), Ok(()));
        let deep = format!(
            "{}1{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        let err = check(&deep).unwrap_err();
        assert_eq!(err.offset, MAX_DEPTH);
        assert!(err.message.contains("nested more than 64 deep"), "{err:?}");
        assert_eq!(
            check(&format!(
                "{}1{}",
                "(".repeat(MAX_DEPTH),
                ")".repeat(MAX_DEPTH)
            )),
            Ok(())
        );
    }

    #[test]
    fn operators_are_counted_per_policy() {
        let chain = |n: usize| vec!["context.x"; n].join(" && ");
        // `context.x` is one operator, `&&` another: n terms make 2n - 1.
        let at_limit = format!(
            "forbid (principal, action, resource) when {{ {} }};",
            chain(500)
        );
        assert_eq!(check(&at_limit), Ok(()));
        let two = format!("{at_limit}\n{at_limit}");
        assert_eq!(check(&two), Ok(()), "each policy has its own count");
        let over = format!(
            "permit (principal, action, resource);\nforbid (principal, action, resource) when {{ {} }};",
            chain(501)
        );
        let err = check(&over).unwrap_err();
        assert!(err.message.contains("more than 1000 operators"), "{err:?}");
        assert_eq!(
            &over[err.offset..err.offset + 6],
            "forbid",
            "points at the policy"
        );
        assert_eq!(
            check("\"unterminated ((((("),
            Ok(()),
            "Cedar reports that itself"
        );
    }

    #[test]
    fn a_deep_stack_runs_the_closure_and_returns_its_value() {
        assert_eq!(on_deep_stack(|| 6 * 7), 42);
    }
}
