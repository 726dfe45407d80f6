//! What an evaluator keeps from event to event, and the bounds that keep it small on hostile
//! input.

use super::decide::Decided;
use super::index::CandidateSet;
use crate::model::PrincipalModel;
use crate::model::facts::FactCache;
use crate::model::resource::ResourceKey;
use cedar_policy::{Context, Entities, EntityUid};
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// Cache sizes past which an evaluator's caches start over: bounded memory on hostile input.
pub(super) const CACHE_LIMIT: usize = 4096;

/// Longest key a principal, action, context, entity store or decision is cached under: a key
/// holds values of the event (an identity, a request parameter, a tag), which an attacker can
/// make as long as a record, and the caches outlive the file. An event with a longer key is
/// decided without the caches.
pub(super) const MAX_KEY_BYTES: usize = 4096;

/// Engines whose caches a thread keeps (the most recently used): a program that alternates
/// between two engines (a scan with and without an inventory, side by side) keeps both warm.
pub(super) const KEPT_ENGINES: usize = 2;

thread_local! {
    /// The caches of the last evaluators this thread dropped, with their engine's id, oldest
    /// first: the next evaluator of the same engine on this thread starts with them.
    pub(super) static KEPT: RefCell<Vec<(u64, Caches)>> = const { RefCell::new(Vec::new()) };
}

/// What an evaluator builds once and reuses for the events that repeat it.
pub(super) struct Caches {
    /// Keyed by the raw `userIdentity` JSON (up to [`MAX_KEY_BYTES`]): each with its serial.
    pub(super) principals: FxHashMap<Box<str>, (Rc<PrincipalModel>, usize)>,
    /// The serial of the next principal modelled. The other caches key a principal by its
    /// serial, never reused (not even past a clear), so that a principal too long to cache
    /// cannot share their entries with another.
    pub(super) next_principal: usize,
    pub(super) contexts: FxHashMap<String, Context>,
    pub(super) entities: FxHashMap<String, Arc<Entities>>,
    pub(super) actions: FxHashMap<String, EntityUid>,
    /// Decisions of requests that are equal by construction (same principal, context, action).
    pub(super) decisions: FxHashMap<String, Decided>,
    /// Per principal (by serial): the detections whose principal guard is false for it.
    pub(super) guards: FxHashMap<usize, Rc<Vec<usize>>>,
    pub(super) facts: FactCache,
    /// Candidate sets without the members a prefilter dropped, per (set, dropped members).
    pub(super) prefiltered: FxHashMap<(usize, u128), Arc<CandidateSet>>,
    /// Candidate sets without those detections, per (set, principal).
    pub(super) narrowed: FxHashMap<(usize, usize), Arc<CandidateSet>>,
    /// The id of the next narrowed set (ids above the index's own).
    pub(super) next_set: usize,
}

impl Caches {
    pub(super) fn new(next_set: usize) -> Caches {
        Caches {
            principals: FxHashMap::default(),
            next_principal: 0,
            contexts: FxHashMap::default(),
            entities: FxHashMap::default(),
            actions: FxHashMap::default(),
            decisions: FxHashMap::default(),
            guards: FxHashMap::default(),
            facts: FactCache::default(),
            prefiltered: FxHashMap::default(),
            narrowed: FxHashMap::default(),
            next_set,
        }
    }
}

/// The allocation of a vector of keys, emptied, for keys that borrow from another event; not
/// when a hostile event's thousands of resources made it large.
pub(super) fn recycle<'b>(mut keys: Vec<ResourceKey<'_>>) -> Vec<ResourceKey<'b>> {
    if keys.capacity() > 64 {
        return Vec::new();
    }
    keys.clear();
    // Collected in place: the same allocation, since the item type only changes lifetime.
    #[allow(clippy::unnecessary_filter_map)] // no item: what changes is the type
    keys.into_iter().filter_map(|_| None).collect()
}

/// Keeps `value` in a cache under `key`, unless the key is longer than [`MAX_KEY_BYTES`]; a
/// cache of [`CACHE_LIMIT`] entries starts over.
pub(super) fn keep<V>(cache: &mut FxHashMap<String, V>, key: &str, value: V) {
    if key.len() > MAX_KEY_BYTES {
        return;
    }
    if cache.len() >= CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(key.to_string(), value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;
    use crate::engine::testing::embedded_engine;
    use crate::model::EventView;

    #[test]
    fn a_vector_of_keys_is_recycled_empty_with_its_allocation_unless_large() {
        let text = String::from("arn:aws:s3:::b");
        let keys = vec![
            ResourceKey::Arn(std::borrow::Cow::Borrowed(text.as_str())),
            ResourceKey::Account("123456789012"),
        ];
        let at = keys.as_ptr() as usize;
        let recycled: Vec<ResourceKey<'static>> = recycle(keys);
        drop(text);
        assert!(recycled.is_empty());
        assert_eq!(recycled.as_ptr() as usize, at, "the same allocation");
        let large: Vec<ResourceKey> = (0..100).map(|_| ResourceKey::Account("1")).collect();
        assert_eq!(recycle(large).capacity(), 0, "a hostile event's is let go");
    }

    #[test]
    fn a_thread_keeps_the_caches_of_its_two_last_engines() {
        let (a, b, c) = (embedded_engine(), embedded_engine(), embedded_engine());
        let json = r#"{"eventVersion":"1.08","eventTime":"2024-05-01T00:00:00Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333","accessKeyId":"AKIAEXAMPLE","userName":"alice"},"requestParameters":{"userName":"backup"},"recipientAccountId":"111122223333"}"#;
        // A thread of its own: its caches start empty whatever else ran on the test's thread.
        std::thread::scope(|s| {
            s.spawn(|| {
                let view = EventView::parse(json).expect("event");
                // How many principals an evaluator of `engine` starts with, then one evaluated.
                let warm = |engine: &Engine| {
                    let mut e = engine.evaluator();
                    let cached = e.caches.principals.len();
                    e.evaluate(&view).expect("evaluated");
                    cached
                };
                assert_eq!(warm(&a), 0);
                assert_eq!(warm(&b), 0);
                assert_eq!(warm(&a), 1, "a's caches were kept beside b's");
                assert_eq!(warm(&b), 1, "b's caches were kept beside a's");
                assert_eq!(warm(&c), 0);
                assert_eq!(warm(&b), 1, "b was used after a");
                assert_eq!(warm(&a), 0, "a's caches went for c's");
            });
        });
    }
}
