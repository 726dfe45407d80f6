//! Inventory facts as Cedar entities: accounts in their organization, IAM groups, EC2
//! instances, NAT gateways, addresses and the networks that hold them, VPC endpoints.
//!
//! Every entity built from inventory carries `inventoryTakenAt`, the snapshot time of the facts,
//! so that a policy (and a finding's explanation) can tell a fact taken after the event.

use super::context::cedar_ip;
use super::{EventView, types, uid};
use crate::inventory::{InstanceFacts, Inventory, NatFacts, Tags};
use crate::time::Timestamp;
use cedar_policy::{Entity, EntityUid, RestrictedExpression};
use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::rc::Rc;

/// Entities that repeat across events, built once (per thread, see `Engine::evaluator`):
/// accounts, containers (buckets), addresses and VPC endpoints with their inventory facts.
/// Building one evaluates its attributes (a `datetime` is parsed each time), so a clone is much
/// cheaper.
#[derive(Default)]
pub struct FactCache {
    map: FxHashMap<String, Rc<Vec<Entity>>>,
}

impl FactCache {
    /// Entries past which the cache starts over: bounded memory on hostile input.
    const LIMIT: usize = 4096;

    /// Appends the entities under `key`, built by `build` the first time.
    pub fn extend_with(
        &mut self,
        out: &mut Vec<Entity>,
        key: String,
        build: impl FnOnce() -> Vec<Entity>,
    ) {
        if let Some(found) = self.map.get(&key) {
            out.extend(found.iter().cloned());
            return;
        }
        let built = build();
        out.extend(built.iter().cloned());
        if self.map.len() >= Self::LIMIT {
            self.map.clear();
        }
        self.map.insert(key, Rc::new(built));
    }
}

/// Attributes under construction.
#[derive(Default)]
pub struct Attrs(pub Vec<(String, RestrictedExpression)>);

impl Attrs {
    pub fn string(&mut self, name: &str, v: Option<&str>) {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            self.0.push((
                name.to_string(),
                RestrictedExpression::new_string(v.to_string()),
            ));
        }
    }

    pub fn bool(&mut self, name: &str, v: Option<bool>) {
        if let Some(v) = v {
            self.0
                .push((name.to_string(), RestrictedExpression::new_bool(v)));
        }
    }

    pub fn long(&mut self, name: &str, v: Option<i64>) {
        if let Some(v) = v {
            self.0
                .push((name.to_string(), RestrictedExpression::new_long(v)));
        }
    }

    pub fn datetime(&mut self, name: &str, v: Option<Timestamp>) {
        if let Some(t) = v {
            self.0.push((
                name.to_string(),
                super::datetime_value(&t.to_cedar_string()),
            ));
        }
    }

    pub fn strings<'a>(&mut self, name: &str, v: impl IntoIterator<Item = &'a String>) {
        let set = v
            .into_iter()
            .map(|s| RestrictedExpression::new_string(s.clone()));
        self.0
            .push((name.to_string(), RestrictedExpression::new_set(set)));
    }

    pub fn ips<'a>(&mut self, name: &str, v: impl IntoIterator<Item = &'a IpAddr>) {
        let set = v.into_iter().map(|ip| super::ip_value(&cedar_ip(*ip)));
        self.0
            .push((name.to_string(), RestrictedExpression::new_set(set)));
    }

    pub fn entity(&mut self, name: &str, v: Option<EntityUid>) {
        if let Some(v) = v {
            self.0
                .push((name.to_string(), RestrictedExpression::new_entity_uid(v)));
        }
    }

    pub fn entities(&mut self, name: &str, v: impl IntoIterator<Item = EntityUid>) {
        let set = v.into_iter().map(RestrictedExpression::new_entity_uid);
        self.0
            .push((name.to_string(), RestrictedExpression::new_set(set)));
    }
}

/// Tags as Cedar entity tags.
pub fn tag_values(tags: &Tags) -> Vec<(String, RestrictedExpression)> {
    tags.iter()
        .map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone())))
        .collect()
}

/// An entity of the model; its construction cannot fail for the values built here, but if it
/// did the entity keeps its uid and loses its attributes rather than failing the event.
pub fn entity(
    uid: EntityUid,
    attrs: Attrs,
    parents: impl IntoIterator<Item = EntityUid>,
    tags: &Tags,
) -> Entity {
    let parents: Vec<EntityUid> = parents.into_iter().collect();
    Entity::new_with_tags(
        uid.clone(),
        attrs.0,
        parents.iter().cloned(),
        tag_values(tags),
    )
    .unwrap_or_else(|_| Entity::with_uid(uid))
}

/// Tags with those Cedar entities JSON adds for `Type::"id"`.
pub fn with_extra_tags(mut tags: Tags, inv: &Inventory, entity_type: &str, id: &str) -> Tags {
    if let Some(extra) = inv.extra_tags(entity_type, id) {
        tags.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    tags
}

/// `Account::"<id>"` in its `Organization`, with the organization's facts about it.
pub fn account_entities(account: &str, inv: &Inventory) -> Vec<Entity> {
    let t = types();
    let mut attrs = Attrs::default();
    attrs.string("accountId", Some(account));
    let facts = inv.accounts.get(account);
    let mut parents = Vec::new();
    let mut out = Vec::with_capacity(2);
    if let Some(a) = facts {
        attrs.string("name", a.name.as_deref());
        attrs.string("email", a.email.as_deref());
        attrs.string("status", a.status.as_deref());
        attrs.datetime("inventoryTakenAt", a.taken_at);
        if let Some(org) = &a.organization {
            let org_uid = uid(&t.organization, org);
            let mut org_attrs = Attrs::default();
            org_attrs.string("organizationId", Some(org));
            out.push(entity(org_uid.clone(), org_attrs, [], &Tags::new()));
            parents.push(org_uid);
        }
    }
    let tags = with_extra_tags(Tags::new(), inv, "Account", account);
    out.insert(0, entity(uid(&t.account, account), attrs, parents, &tags));
    out
}

/// `Group::"<arn>"` of an IAM group, in its account.
pub fn group_entities(arn: &str, inv: &Inventory) -> Vec<Entity> {
    let t = types();
    let mut attrs = Attrs::default();
    attrs.string("arn", Some(arn));
    let name = arn.rsplit('/').next().unwrap_or(arn);
    attrs.string("groupName", Some(name));
    let facts = inv.groups.get(arn);
    attrs.strings(
        "attachedPolicies",
        facts.map(|g| &g.policies).into_iter().flatten(),
    );
    attrs.datetime("inventoryTakenAt", facts.and_then(|g| g.taken_at));
    let account = crate::arn::Arn::parse(arn)
        .map(|a| a.account)
        .filter(|a| !a.is_empty());
    let mut out = vec![entity(
        uid(&t.group, arn),
        attrs,
        account.map(|a| uid(&t.account, a)),
        &with_extra_tags(Tags::new(), inv, "Group", arn),
    )];
    if let Some(a) = account {
        out.extend(account_entities(a, inv));
    }
    out
}

/// `Instance::"i-..."` with its addresses, network and profile, in its account.
pub fn instance_entities(i: &InstanceFacts, inv: &Inventory) -> Vec<Entity> {
    let t = types();
    let mut attrs = Attrs::default();
    attrs.string("instanceId", Some(&i.id));
    attrs.string("accountId", i.account.as_deref());
    attrs.string("vpcId", i.vpc.as_deref());
    attrs.string("subnetId", i.subnet.as_deref());
    attrs.string("instanceProfileArn", i.profile_arn.as_deref());
    attrs.string("state", i.state.as_deref());
    attrs.ips("privateIps", &i.private_ips);
    attrs.ips("publicIps", &i.public_ips);
    attrs.datetime("inventoryTakenAt", i.taken_at);
    let tags = with_extra_tags(i.tags.clone(), inv, "Instance", &i.id);
    let mut out = vec![entity(
        uid(&t.instance, &i.id),
        attrs,
        i.account.as_deref().map(|a| uid(&t.account, a)),
        &tags,
    )];
    if let Some(a) = &i.account {
        out.extend(account_entities(a, inv));
    }
    out
}

fn nat_entity(n: &NatFacts, inv: &Inventory) -> Entity {
    let mut attrs = Attrs::default();
    attrs.string("natGatewayId", Some(&n.id));
    attrs.string("vpcId", n.vpc.as_deref());
    attrs.string("subnetId", n.subnet.as_deref());
    attrs.ips("publicIps", &n.public_ips);
    attrs.ips("privateIps", &n.private_ips);
    attrs.datetime("inventoryTakenAt", n.taken_at);
    let tags = with_extra_tags(n.tags.clone(), inv, "NatGateway", &n.id);
    entity(uid(&types().nat_gateway, &n.id), attrs, [], &tags)
}

/// The id of an address's entity: the address as Cedar's `ip()` reads it.
pub fn address_id(ip: IpAddr) -> String {
    cedar_ip(ip)
}

/// `Address::"<ip>"`: what the inventory says the address is (the instances with it or behind
/// it, its NAT gateway, whether it is an Elastic IP), in the `Network`s that hold it; with the
/// instance, NAT gateway and network entities it refers to.
pub fn address_entities(ip: IpAddr, inv: &Inventory) -> Vec<Entity> {
    let t = types();
    let facts = inv.address(ip);
    let mut attrs = Attrs::default();
    attrs
        .0
        .push(("ip".to_string(), super::ip_value(&cedar_ip(ip))));
    attrs.bool("inInventory", Some(facts.is_some()));
    let facts = facts.unwrap_or_default();
    attrs.entities(
        "instances",
        facts.instances.iter().map(|i| uid(&t.instance, i)),
    );
    attrs.entity(
        "natGateway",
        facts.nat_gateway.as_deref().map(|n| uid(&t.nat_gateway, n)),
    );
    attrs.bool("elasticIp", Some(facts.elastic_ip));
    attrs.datetime(
        "inventoryTakenAt",
        facts
            .taken_at
            .or(inv.taken_at_of(crate::inventory::NETWORK_KINDS)),
    );
    let id = address_id(ip);
    let tags = with_extra_tags(Tags::new(), inv, "Address", &id);
    let mut out = vec![entity(
        uid(&t.address, &id),
        attrs,
        facts.networks.iter().map(|n| uid(&t.network, n)),
        &tags,
    )];
    for i in facts.instances.iter().filter_map(|i| inv.instances.get(i)) {
        out.extend(instance_entities(i, inv));
    }
    if let Some(n) = facts
        .nat_gateway
        .as_deref()
        .and_then(|n| inv.nat_gateways.get(n))
    {
        out.push(nat_entity(n, inv));
    }
    for n in facts.networks.iter().filter_map(|n| inv.network(n)) {
        let mut attrs = Attrs::default();
        let ranges: Vec<RestrictedExpression> = n
            .ranges
            .iter()
            .map(|r| super::ip_value(&r.to_string()))
            .collect();
        attrs
            .0
            .push(("ranges".to_string(), RestrictedExpression::new_set(ranges)));
        out.push(entity(uid(&t.network, &n.id), attrs, [], &n.tags));
    }
    out
}

/// `VpcEndpoint::"vpce-..."` of an event that came through one: its account (from the event's
/// `vpcEndpointAccountId`, else the inventory), whether that account is in the organization,
/// and what the inventory says of the endpoint.
pub fn vpc_endpoint_entity(view: &EventView, inv: &Inventory) -> Option<Entity> {
    let id = view
        .event
        .vpc_endpoint_id
        .as_deref()
        .filter(|v| !v.is_empty())?;
    let facts = inv.endpoints.get(id);
    let account = view
        .event
        .vpc_endpoint_account_id
        .as_deref()
        .filter(|a| !a.is_empty())
        .or(facts.and_then(|f| f.owner.as_deref()));
    let mut attrs = Attrs::default();
    attrs.string("vpcEndpointId", Some(id));
    attrs.string("accountId", account);
    attrs.bool(
        "accountInOrganization",
        account.and_then(|a| inv.in_organization(a)),
    );
    if !inv.endpoints.is_empty() {
        attrs.bool("inInventory", Some(facts.is_some()));
    }
    if let Some(f) = facts {
        attrs.string("vpcId", f.vpc.as_deref());
        attrs.string("serviceName", f.service.as_deref());
        attrs.string("endpointType", f.kind.as_deref());
    }
    attrs.datetime(
        "inventoryTakenAt",
        facts
            .and_then(|f| f.taken_at)
            .or(inv.taken_at_of(&["ec2 describe-vpc-endpoints"])),
    );
    let tags = with_extra_tags(
        facts.map(|f| f.tags.clone()).unwrap_or_default(),
        inv,
        "VpcEndpoint",
        id,
    );
    Some(entity(uid(&types().vpc_endpoint, id), attrs, [], &tags))
}

/// An entity type of the inventory, as the schema declares it.
pub struct EntityDecl {
    pub name: &'static str,
    /// Parent types, for `in [...]`.
    pub parents: &'static [&'static str],
    /// Attributes with their Cedar schema types (`?`: optional).
    pub attrs: &'static [(&'static str, &'static str)],
}

/// The entity types the inventory brings, besides the principal types, `Role` and `Resource`.
pub const ENTITY_DECLS: &[EntityDecl] = &[
    EntityDecl {
        name: "Organization",
        parents: &[],
        attrs: &[("organizationId", "String")],
    },
    EntityDecl {
        name: "Account",
        parents: &["Organization"],
        attrs: &[
            ("accountId", "String"),
            ("name?", "String"),
            ("email?", "String"),
            ("status?", "String"),
            ("inventoryTakenAt?", "datetime"),
        ],
    },
    EntityDecl {
        name: "Group",
        parents: &["Account"],
        attrs: &[
            ("arn", "String"),
            ("groupName", "String"),
            ("attachedPolicies", "Set<String>"),
            ("inventoryTakenAt?", "datetime"),
        ],
    },
    EntityDecl {
        name: "Network",
        parents: &[],
        attrs: &[("ranges", "Set<ipaddr>")],
    },
    EntityDecl {
        name: "Instance",
        parents: &["Account"],
        attrs: &[
            ("instanceId", "String"),
            ("accountId?", "String"),
            ("vpcId?", "String"),
            ("subnetId?", "String"),
            ("instanceProfileArn?", "String"),
            ("state?", "String"),
            ("privateIps", "Set<ipaddr>"),
            ("publicIps", "Set<ipaddr>"),
            ("inventoryTakenAt?", "datetime"),
        ],
    },
    EntityDecl {
        name: "NatGateway",
        parents: &[],
        attrs: &[
            ("natGatewayId", "String"),
            ("vpcId?", "String"),
            ("subnetId?", "String"),
            ("publicIps", "Set<ipaddr>"),
            ("privateIps", "Set<ipaddr>"),
            ("inventoryTakenAt?", "datetime"),
        ],
    },
    EntityDecl {
        name: "Address",
        parents: &["Network"],
        attrs: &[
            ("ip", "ipaddr"),
            ("inInventory", "Bool"),
            ("instances", "Set<Instance>"),
            ("natGateway?", "NatGateway"),
            ("elasticIp", "Bool"),
            ("inventoryTakenAt?", "datetime"),
        ],
    },
    EntityDecl {
        name: "VpcEndpoint",
        parents: &[],
        attrs: &[
            ("vpcEndpointId", "String"),
            ("accountId?", "String"),
            ("accountInOrganization?", "Bool"),
            ("inInventory?", "Bool"),
            ("vpcId?", "String"),
            ("serviceName?", "String"),
            ("endpointType?", "String"),
            ("inventoryTakenAt?", "datetime"),
        ],
    },
];
