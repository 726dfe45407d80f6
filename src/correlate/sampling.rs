//! Which matches a scan can explain. A correlation finding shows its first events with the
//! values their conditions read; explaining every match (a request built, each part of the
//! condition evaluated again) would cost a bulk-read detection more than deciding its events
//! did, and most groups never fire. So the scan samples the first [`SAMPLE`] matches of each
//! group in each input and window: a sampled match keeps its record's text, which is explained
//! only if its group's window fires (`scan::Explainer`); the others carry only their id, time,
//! action and location: they are counted, not shown. Test cases explain every match at once
//! ([`Sampler::everything`]). It is a function of the input alone, so a scan's output does not
//! depend on its threads.

use crate::engine::MatchKey;
use crate::report::SAMPLE;
use rustc_hash::{FxHashMap, FxHasher};
use std::hash::{Hash, Hasher};

/// Groups remembered per input; past it they are forgotten, and explained again.
const REMEMBERED: usize = 4096;

/// The matches explained in one input.
#[derive(Debug, Default)]
pub struct Sampler {
    /// Sample and explain every match at once (test cases).
    all: bool,
    /// Per detection and group: when its window started in this input, and how many matches
    /// were explained since.
    explained: FxHashMap<(usize, u64), (i64, usize)>,
}

impl Sampler {
    /// A sampler for one input of a scan.
    pub fn new() -> Sampler {
        Sampler::default()
    }

    /// Whether sampled matches are explained at once, rather than when their group fires.
    pub fn eager(&self) -> bool {
        self.all
    }

    /// A sampler that samples every match and explains it at once.
    pub fn everything() -> Sampler {
        Sampler {
            all: true,
            ..Sampler::default()
        }
    }

    /// Whether a match of `detection` at `time` with these keys is sampled; `window` is the
    /// window (in milliseconds) of the correlation its first key is for.
    pub fn wants(&mut self, detection: usize, keys: &[MatchKey], time: i64, window: i64) -> bool {
        if self.all {
            return true;
        }
        let mut h = FxHasher::default();
        if let Some(k) = keys.first() {
            k.correlation.hash(&mut h);
            k.group.hash(&mut h);
        }
        if self.explained.len() >= REMEMBERED {
            self.explained.clear();
        }
        let entry = self
            .explained
            .entry((detection, h.finish()))
            .or_insert((time, 0));
        if time < entry.0 || time >= entry.0.saturating_add(window) {
            *entry = (time, 0);
        }
        entry.1 += 1;
        entry.1 <= SAMPLE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::MatchValue;

    fn key(v: &str) -> Vec<MatchKey> {
        vec![MatchKey {
            correlation: 0,
            step: 0,
            group: vec![MatchValue::text(v)],
            distinct: Vec::new(),
            weight: 1,
        }]
    }

    #[test]
    fn the_first_matches_of_each_group_and_window_are_explained() {
        let mut s = Sampler::new();
        let explained = (0..25).filter(|i| s.wants(0, &key("a"), *i, 1000)).count();
        assert_eq!(explained, SAMPLE);
        assert!(s.wants(0, &key("b"), 10, 1000), "another group");
        assert!(s.wants(0, &key("a"), 1000, 1000), "the next window");
        assert!(Sampler::everything().wants(0, &key("a"), 0, 1));
    }
}
