//! The policy index: for an event's action and principal type, the policies that can apply.
//!
//! Cedar evaluates every policy of the set it is given (about a microsecond each, even when the
//! scope rules it out), so each event is evaluated against a pre-built set of just its
//! candidates, and an event with no candidate costs no Cedar call at all.

use super::analysis::{ActionKey, Needs};
use super::pack::Pack;
use crate::model::PrincipalKind;
use cedar_policy::Effect;
use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The policies that can apply to a kind of event, ready to evaluate.
#[derive(Debug)]
pub struct CandidateSet {
    /// Distinguishes sets in caches.
    pub id: usize,
    /// Detection indices in the pack.
    pub members: Vec<usize>,
    /// What the members read, merged.
    pub needs: Needs,
    pub has_permit: bool,
    /// Whether some member's condition depends on the action (its scope names actions, or its
    /// clauses read `action`).
    pub reads_action: bool,
    /// The members whose decision is a function of values that repeat from event to event
    /// ([`Needs::memoizable`]): decided once per distinct request, the others on every event.
    pub memoized: Group,
    /// The positions (in `members`, below 128) of the members with a prefilter that can drop
    /// them ([`super::prefilter`]).
    pub prefiltered: Vec<usize>,
    /// Every member is decided by its prefilter's tests alone where they have a value
    /// ([`crate::engine::Detection::decided_by_tests`]), in a pack of detections (no permits).
    pub decided_by_tests: bool,
    /// Some member has a principal guard ([`crate::engine::Detection::guard`]).
    pub guarded: bool,
}

/// Some members of a [`CandidateSet`], with what they read merged.
#[derive(Debug, Default)]
pub struct Group {
    pub members: Vec<usize>,
    pub needs: Needs,
    pub reads_action: bool,
}

impl Group {
    fn of(members: Vec<usize>, pack: &Pack) -> Group {
        let mut group = Group {
            members,
            ..Group::default()
        };
        for d in group.members.iter().filter_map(|i| pack.detections.get(*i)) {
            group.needs.merge(&d.analysis.needs);
            group.reads_action |= d.analysis.actions.is_some() || d.analysis.needs.action_entity;
        }
        group
    }
}

impl CandidateSet {
    /// The set of these members of `pack`, with what they read merged.
    pub fn new(id: usize, members: Vec<usize>, pack: &Pack) -> CandidateSet {
        let memoized = members
            .iter()
            .copied()
            .filter(|i| {
                pack.detections
                    .get(*i)
                    .is_some_and(|d| d.analysis.needs.memoizable())
            })
            .collect();
        let prefiltered = members
            .iter()
            .enumerate()
            .take(128)
            .filter(|(_, m)| {
                pack.detections
                    .get(**m)
                    .is_some_and(|d| !d.analysis.prefilter.is_always())
            })
            .map(|(pos, _)| pos)
            .collect();
        let decided_by_tests = pack.mode == super::pack::Mode::Detection
            && !members.is_empty()
            && members.len() <= 128
            && members.iter().all(|m| {
                pack.detections
                    .get(*m)
                    .is_some_and(super::pack::Detection::decided_by_tests)
            });
        let guarded = members
            .iter()
            .any(|m| pack.detections.get(*m).is_some_and(|d| d.guard.is_some()));
        let all = Group::of(members, pack);
        CandidateSet {
            decided_by_tests,
            guarded,
            prefiltered,
            id,
            has_permit: all.members.iter().any(|i| {
                pack.detections
                    .get(*i)
                    .is_some_and(|d| d.effect == Effect::Permit)
            }),
            reads_action: all.reads_action,
            members: all.members,
            needs: all.needs,
            memoized: Group::of(memoized, pack),
        }
    }

    /// Whether every member is memoized.
    pub fn all_memoized(&self) -> bool {
        self.memoized.members.len() == self.members.len()
    }
}

/// Per principal kind, the sets of an event that succeeded and of one that failed (it has an
/// `errorCode`): a rule whose prefilter requires one or the other is left out of the other's.
type PerKind = [[Arc<CandidateSet>; 2]; PrincipalKind::ALL.len()];

#[derive(Clone)]
struct ServiceIndex {
    names: HashMap<String, usize>,
    /// For actions of the service that no policy names exactly.
    group: usize,
}

/// Lookup from (service, eventName, principal kind) to a [`CandidateSet`].
#[derive(Clone)]
pub struct Index {
    services: HashMap<String, ServiceIndex>,
    /// For services no policy names.
    default: usize,
    /// For services no policy names, by event name: the policies whose condition requires it.
    default_names: HashMap<String, usize>,
    lists: Vec<PerKind>,
    sets: usize,
}

impl Index {
    /// Indexes a pack by its policies' scopes.
    pub fn build(pack: &Pack) -> Result<Index, String> {
        let mut unscoped: Vec<usize> = Vec::new();
        let mut exact: HashMap<&str, HashMap<&str, Vec<usize>>> = HashMap::default();
        let mut group: HashMap<&str, Vec<usize>> = HashMap::default();
        // Policies for an event name in any service (their condition requires the name).
        let mut any_service: HashMap<&str, Vec<usize>> = HashMap::default();
        for (i, d) in pack.detections.iter().enumerate() {
            // The scope's actions, else what the condition requires of the event.
            match d.analysis.actions.as_ref().or(d.analysis.index.as_ref()) {
                None => unscoped.push(i),
                Some(keys) => {
                    for key in keys {
                        match key {
                            ActionKey::Exact { service, name } => exact
                                .entry(service)
                                .or_default()
                                .entry(name)
                                .or_default()
                                .push(i),
                            ActionKey::Service(service) => {
                                group.entry(service).or_default().push(i)
                            }
                            ActionKey::Name(name) => any_service.entry(name).or_default().push(i),
                        }
                    }
                }
            }
        }

        let mut builder = Builder {
            pack,
            list_ids: HashMap::default(),
            lists: Vec::new(),
            sets: HashMap::default(),
        };
        let default = builder.list(unscoped.clone())?;
        let mut default_names = HashMap::default();
        for (name, members) in &any_service {
            let all = unscoped.iter().chain(members).copied().collect();
            default_names.insert(name.to_string(), builder.list(all)?);
        }
        let names: BTreeSet<&str> = exact.keys().chain(group.keys()).copied().collect();
        let mut services = HashMap::default();
        for service in names {
            let in_group: Vec<usize> = group.get(service).cloned().unwrap_or_default();
            let base: Vec<usize> = unscoped.iter().chain(&in_group).copied().collect();
            let group_list = builder.list(base.clone())?;
            let mut by_name = HashMap::default();
            let exact_names = exact.get(service);
            let event_names: BTreeSet<&str> = exact_names
                .into_iter()
                .flat_map(|m| m.keys().copied())
                .chain(any_service.keys().copied())
                .collect();
            for name in event_names {
                let all = base
                    .iter()
                    .chain(exact_names.and_then(|m| m.get(name)).into_iter().flatten())
                    .chain(any_service.get(name).into_iter().flatten())
                    .copied()
                    .collect();
                by_name.insert(name.to_string(), builder.list(all)?);
            }
            services.insert(
                service.to_string(),
                ServiceIndex {
                    names: by_name,
                    group: group_list,
                },
            );
        }
        let sets = builder.sets.len();
        Ok(Index {
            services,
            default,
            default_names,
            lists: builder.lists,
            sets,
        })
    }

    /// The candidates for an event.
    #[allow(clippy::indexing_slicing)] // list ids come from this index; kinds are in range
    pub fn candidates(
        &self,
        service: &str,
        name: &str,
        kind: PrincipalKind,
        failed: bool,
    ) -> &Arc<CandidateSet> {
        let list = match self.services.get(service) {
            Some(s) => s.names.get(name).copied().unwrap_or(s.group),
            None => self
                .default_names
                .get(name)
                .copied()
                .unwrap_or(self.default),
        };
        &self.lists[list][kind as usize][usize::from(failed)]
    }

    /// How many distinct candidate sets were built.
    pub fn set_count(&self) -> usize {
        self.sets
    }
}

struct Builder<'p> {
    pack: &'p Pack,
    list_ids: HashMap<Vec<usize>, usize>,
    lists: Vec<PerKind>,
    sets: HashMap<Vec<usize>, Arc<CandidateSet>>,
}

impl Builder<'_> {
    fn list(&mut self, mut members: Vec<usize>) -> Result<usize, String> {
        members.sort_unstable();
        members.dedup();
        if let Some(id) = self.list_ids.get(&members) {
            return Ok(*id);
        }
        let mut per_kind = Vec::with_capacity(PrincipalKind::ALL.len());
        for kind in PrincipalKind::ALL {
            let mut by_outcome = Vec::with_capacity(2);
            for failed in [false, true] {
                let filtered: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|i| {
                        self.pack.detections.get(*i).is_some_and(|d| {
                            d.analysis
                                .principal_kinds
                                .as_ref()
                                .is_none_or(|kinds| kinds.contains(&kind))
                                && d.analysis
                                    .prefilter
                                    .error_code()
                                    .is_none_or(|required| required == failed)
                        })
                    })
                    .collect();
                by_outcome.push(self.set(filtered)?);
            }
            let pair: [Arc<CandidateSet>; 2] = by_outcome
                .try_into()
                .map_err(|_| "internal error: two candidate sets per kind".to_string())?;
            per_kind.push(pair);
        }
        let per_kind: PerKind = per_kind
            .try_into()
            .map_err(|_| "internal error: one candidate set per principal kind".to_string())?;
        let id = self.lists.len();
        self.lists.push(per_kind);
        self.list_ids.insert(members, id);
        Ok(id)
    }

    fn set(&mut self, members: Vec<usize>) -> Result<Arc<CandidateSet>, String> {
        if let Some(s) = self.sets.get(&members) {
            return Ok(s.clone());
        }
        let set = Arc::new(CandidateSet::new(
            self.sets.len(),
            members.clone(),
            self.pack,
        ));
        self.sets.insert(members, set.clone());
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::pack::{PolicySource, load};

    #[test]
    fn candidates_follow_scopes() {
        let text = r#"
@id("put") @title("t") @severity("low") forbid (principal, action == Action::"s3:PutObject", resource);
@id("s3") @title("t") @severity("low") forbid (principal, action in Action::"s3", resource);
@id("root") @title("t") @severity("high") forbid (principal is Root, action, resource);
"#;
        let pack = load(
            vec![PolicySource {
                name: "t".into(),
                text: text.into(),
            }],
            "t",
        )
        .unwrap();
        let index = Index::build(&pack).unwrap();
        let ids = |s: &str, n: &str, k| -> Vec<&str> {
            index
                .candidates(s, n, k, false)
                .members
                .iter()
                .map(|i| pack.detections[*i].id.as_str())
                .collect()
        };
        assert_eq!(
            ids("s3", "PutObject", PrincipalKind::IamUser),
            vec!["put", "s3"]
        );
        assert_eq!(
            ids("s3", "PutObject", PrincipalKind::Root),
            vec!["put", "s3", "root"]
        );
        assert_eq!(
            ids("s3", "GetObject", PrincipalKind::AssumedRole),
            vec!["s3"]
        );
        assert_eq!(
            ids("ec2", "DescribeInstances", PrincipalKind::AssumedRole),
            Vec::<&str>::new()
        );
        assert_eq!(
            ids("ec2", "DescribeInstances", PrincipalKind::Root),
            vec!["root"]
        );
        assert!(
            index
                .candidates("ec2", "X", PrincipalKind::IamUser, false)
                .members
                .is_empty()
        );
    }
}
