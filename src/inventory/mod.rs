//! Inventory: facts CloudTrail does not carry, read from the AWS CLI's own output.
//!
//! Each file's kind is recognised from its content (see [`kinds`]): tags of resources, IAM
//! users, roles and groups, the credential report, access keys, EC2 instances, NAT gateways,
//! VPC endpoints, Elastic IPs, the organization's accounts, and Cedar entities JSON for
//! anything else. Every fact keeps the snapshot time of its file, since an inventory is taken at
//! one moment while logs span months.

pub mod kinds;

use crate::arn::{Arn, arn_service};
use crate::source::s3::S3Options;
use crate::text::{concat, split_byte};
use crate::time::Timestamp;
// Fx hashing: the keys are ARNs and ids from the inventory and the logs, looked up per event;
// a flooding attacker gains nothing as every table is built once, before the logs are read.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The kinds of file that say which addresses are ours.
pub const NETWORK_KINDS: &[&str] = &[
    "ec2 describe-instances",
    "ec2 describe-nat-gateways",
    "ec2 describe-addresses",
];

/// Tags, by key.
pub type Tags = BTreeMap<String, String>;

/// Where a file's snapshot time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// Recorded in the file (the credential report's `GeneratedTime`).
    Content,
    /// A date in the file's path: `inventory/2024-05-13/instances.json`.
    Path,
    /// `--inventory-time`.
    Flag,
    /// The file's modification time.
    Modified,
}

impl fmt::Display for TimeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeSource::Content => "recorded in the file",
            TimeSource::Path => "the date in its path",
            TimeSource::Flag => "--inventory-time",
            TimeSource::Modified => "the file's modification time",
        })
    }
}

/// A resource's tags as the inventory holds them: from AWS (`base`, with when they were taken)
/// and from Cedar entities JSON (`extra`, which wins where both give a key).
#[derive(Clone, Copy, Default)]
pub struct ResourceTags<'a> {
    pub base: Option<(&'a Tags, Option<Timestamp>)>,
    pub extra: Option<&'a Tags>,
}

impl<'a> ResourceTags<'a> {
    /// The value of one tag.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.extra
            .and_then(|t| t.get(key))
            .or_else(|| self.base.and_then(|(t, _)| t.get(key)))
            .map(String::as_str)
    }

    /// The tags merged, and when the inventory took them; `None` when it has none.
    pub fn owned(self) -> Option<(Tags, Option<Timestamp>)> {
        let mut found = self.base.map(|(t, at)| (t.clone(), at));
        if let Some(extra) = self.extra {
            let (tags, _) = found.get_or_insert((Tags::new(), None));
            tags.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        found
    }
}

/// One inventory file as loaded.
#[derive(Debug, Clone)]
pub struct InventoryFile {
    pub path: String,
    /// What it was recognised as, e.g. `ec2 describe-instances`.
    pub kinds: BTreeSet<&'static str>,
    /// How many facts it gave.
    pub facts: usize,
    pub taken_at: Timestamp,
    pub time_source: TimeSource,
}

/// An IAM user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserFacts {
    pub arn: String,
    pub name: String,
    pub created: Option<Timestamp>,
    /// Group ARNs.
    pub groups: BTreeSet<String>,
    /// Managed policy ARNs attached to the user.
    pub policies: BTreeSet<String>,
    pub tags: Tags,
    pub password_enabled: Option<bool>,
    pub mfa_active: Option<bool>,
    /// Access keys the credential report says are active.
    pub active_keys: Option<i64>,
    /// Whether groups and attached policies are known (from the authorization details).
    pub detailed: bool,
    pub taken_at: Option<Timestamp>,
}

/// An IAM role.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoleFacts {
    pub arn: String,
    pub name: String,
    pub created: Option<Timestamp>,
    pub policies: BTreeSet<String>,
    pub tags: Tags,
    /// Whether attached policies are known (from the authorization details).
    pub detailed: bool,
    pub taken_at: Option<Timestamp>,
}

/// An IAM group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupFacts {
    pub arn: String,
    pub name: String,
    pub policies: BTreeSet<String>,
    pub taken_at: Option<Timestamp>,
}

/// An access key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyFacts {
    pub id: String,
    pub user: String,
    /// `Active` or `Inactive`.
    pub status: String,
    pub created: Option<Timestamp>,
    pub taken_at: Timestamp,
}

/// An EC2 instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceFacts {
    pub id: String,
    pub account: Option<String>,
    pub private_ips: BTreeSet<IpAddr>,
    pub public_ips: BTreeSet<IpAddr>,
    pub vpc: Option<String>,
    pub subnet: Option<String>,
    pub profile_arn: Option<String>,
    pub state: Option<String>,
    pub tags: Tags,
    pub taken_at: Option<Timestamp>,
}

/// A NAT gateway.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NatFacts {
    pub id: String,
    pub public_ips: BTreeSet<IpAddr>,
    pub private_ips: BTreeSet<IpAddr>,
    pub network_interfaces: BTreeSet<String>,
    pub vpc: Option<String>,
    pub subnet: Option<String>,
    pub tags: Tags,
    pub taken_at: Option<Timestamp>,
}

/// A VPC endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointFacts {
    pub id: String,
    pub vpc: Option<String>,
    pub service: Option<String>,
    pub owner: Option<String>,
    pub kind: Option<String>,
    pub tags: Tags,
    pub taken_at: Option<Timestamp>,
}

/// An Elastic IP.
#[derive(Debug, Clone, Default)]
pub struct ElasticIpFacts {
    pub ip: Option<IpAddr>,
    pub instance: Option<String>,
    pub network_interface: Option<String>,
    pub tags: Tags,
    pub taken_at: Option<Timestamp>,
}

/// An account of the organization.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountFacts {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub status: Option<String>,
    pub organization: Option<String>,
    pub taken_at: Option<Timestamp>,
}

/// An address range: `198.51.100.0/24`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(pub ipnet::IpNet);

impl Cidr {
    /// `a.b.c.d/n`, `x::y/n` or a single address; `None` when it is none of these.
    pub fn parse(text: &str) -> Option<Cidr> {
        text.parse::<ipnet::IpNet>()
            .ok()
            .or_else(|| text.parse::<IpAddr>().ok().map(ipnet::IpNet::from))
            .map(Cidr)
    }

    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A named address range from Cedar entities JSON: an office, a VPN, a partner.
#[derive(Debug, Clone)]
pub struct NetworkFacts {
    pub id: String,
    pub ranges: Vec<Cidr>,
    pub tags: Tags,
}

/// What an address is, from the network inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressFacts {
    /// Instances with this address, or behind it (a NAT gateway's EIP fronts every instance of
    /// its VPC without a public address).
    pub instances: BTreeSet<String>,
    pub nat_gateway: Option<String>,
    pub elastic_ip: bool,
    /// Ids of the `Network`s whose ranges hold it.
    pub networks: BTreeSet<String>,
    pub taken_at: Option<Timestamp>,
}

/// Every fact, indexed for the model.
#[derive(Debug, Default)]
pub struct Inventory {
    pub files: Vec<InventoryFile>,
    /// Tags by resource ARN, and when they were taken.
    pub resource_tags: HashMap<String, (Tags, Timestamp)>,
    pub users: HashMap<String, UserFacts>,
    pub roles: HashMap<String, RoleFacts>,
    pub groups: HashMap<String, GroupFacts>,
    pub keys: HashMap<String, KeyFacts>,
    /// Users whose access keys were listed: a key of theirs not in `keys` is unknown.
    pub key_users: HashSet<String>,
    /// Accounts whose IAM users were listed: a user of theirs not in `users` did not exist.
    pub iam_accounts: HashMap<String, Timestamp>,
    /// Accounts whose IAM roles were listed.
    pub role_accounts: HashMap<String, Timestamp>,
    pub instances: HashMap<String, InstanceFacts>,
    pub nat_gateways: HashMap<String, NatFacts>,
    pub endpoints: HashMap<String, EndpointFacts>,
    pub elastic_ips: Vec<ElasticIpFacts>,
    pub accounts: HashMap<String, AccountFacts>,
    /// When the organization's accounts were listed: from then on, an account not in
    /// `accounts` is outside the organization.
    pub organization: Option<Timestamp>,
    /// Tags from Cedar entities JSON, by entity type, then id.
    pub entity_tags: HashMap<String, HashMap<String, Tags>>,
    pub networks: Vec<NetworkFacts>,
    addresses: HashMap<IpAddr, AddressFacts>,
    /// Secrets Manager ARNs by the ARN without the random suffix AWS appends (`-AbCdEf`):
    /// CloudTrail names a secret as it was asked for, often by name.
    secrets: HashMap<String, String>,
    /// IAM user and role ARNs by `user:<account>:<name>` / `role:<account>:<name>`: an ARN with
    /// a path (`role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_...`) is found from one
    /// without, and the other way round.
    iam_names: HashMap<String, String>,
    /// Facts two files disagree on: reported, the later snapshot kept.
    pub conflicts: Vec<String>,
}

/// The largest inventory file read (after decompression): an inventory is read whole, and this
/// bounds what one file may cost. An organization's largest, `get-account-authorization-details`,
/// is tens of megabytes.
pub const MAX_FILE: u64 = 1 << 30;

/// Names read in an inventory directory: `.json`, `.csv` and `.gz` files.
fn is_inventory_name(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".json") || name.ends_with(".csv") || name.ends_with(".gz")
}

/// Why inventory files could not be loaded; each names its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryError(pub Vec<String>);

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

impl Inventory {
    /// Whether no facts were loaded.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Loads inventory files and directories (every `.json`, `.csv` and `.gz` file in them).
    /// `taken_at` is the snapshot time of files that do not record one.
    pub fn load(
        paths: &[PathBuf],
        taken_at: Option<Timestamp>,
    ) -> Result<Inventory, InventoryError> {
        Inventory::load_with(paths, taken_at, &S3Options::default())
    }

    /// Loads inventory as [`Inventory::load`] does, and the inventory files (`.json`, `.csv`,
    /// `.gz`) under `s3://bucket/prefix/` paths, whose snapshot time is otherwise the object's
    /// last write.
    pub fn load_with(
        paths: &[PathBuf],
        taken_at: Option<Timestamp>,
        s3: &S3Options,
    ) -> Result<Inventory, InventoryError> {
        let mut inventory = Inventory::default();
        let mut errors = Vec::new();
        let mut files = Vec::new();
        for path in paths {
            if let Some(url) = path.to_str().filter(|p| p.starts_with("s3://")) {
                let listing = crate::source::s3::list(url, &Default::default(), s3);
                for e in listing.errors {
                    errors.push(format!("{}: {}", e.path, e.reason));
                }
                let objects: Vec<_> = listing
                    .objects
                    .into_iter()
                    .filter(|o| is_inventory_name(Path::new(&o.key)))
                    .collect();
                if objects.is_empty() {
                    errors.push(format!("{url}: no inventory files (.json, .csv) under it"));
                }
                for object in objects {
                    let loaded = crate::source::s3::open(&object).and_then(|reader| {
                        let name = object.url();
                        inventory.load_reader(
                            Path::new(&name),
                            reader,
                            object.size,
                            Some(object.modified),
                            taken_at,
                            MAX_FILE,
                        )
                    });
                    if let Err(e) = loaded {
                        errors.push(format!("{}: {e}", object.url()));
                    }
                }
                continue;
            }
            if path.is_dir() {
                let found = crate::source::walk(path, is_inventory_name);
                for e in found.errors {
                    errors.push(format!("{}: {}", e.path, e.reason));
                }
                if found.files.is_empty() {
                    errors.push(format!(
                        "{}: no inventory files (.json, .csv) in the directory",
                        path.display()
                    ));
                }
                files.extend(found.files);
            } else {
                files.push(path.clone());
            }
        }
        for file in files {
            if let Err(e) = inventory.load_file(&file, taken_at) {
                errors.push(format!("{}: {e}", file.display()));
            }
        }
        if !errors.is_empty() {
            return Err(InventoryError(errors));
        }
        inventory.index_addresses();
        inventory.index_secrets();
        inventory.index_iam_names();
        Ok(inventory)
    }

    fn load_file(&mut self, path: &Path, flag_time: Option<Timestamp>) -> Result<(), String> {
        self.load_file_within(path, flag_time, MAX_FILE)
    }

    fn load_file_within(
        &mut self,
        path: &Path,
        flag_time: Option<Timestamp>,
        limit: u64,
    ) -> Result<(), String> {
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let modified = file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| Timestamp(d.as_millis() as i64));
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        self.load_reader(path, Box::new(file), size, modified, flag_time, limit)
    }

    /// Loads one inventory file read from `reader` (`size` bytes as stored, named `path`,
    /// last written at `modified`).
    fn load_reader(
        &mut self,
        path: &Path,
        reader: Box<dyn std::io::Read + Send>,
        size: u64,
        modified: Option<Timestamp>,
        flag_time: Option<Timestamp>,
        limit: u64,
    ) -> Result<(), String> {
        let bytes = crate::decode::read_all(std::io::BufReader::new(reader), limit, size)
            .map_err(|e| match e.0.strip_prefix("larger than the limit") {
                Some(_) => format!(
                    "larger than the limit of {limit} bytes for one inventory file (after decompression)"
                ),
                None => e.0,
            })?;
        let text = crate::decode::as_text(&bytes).map_err(|e| e.0)?;
        let parsed = kinds::parse(text)?;
        let recorded = kinds::recorded_time(&parsed)
            .map(|t| (t, TimeSource::Content))
            .or_else(|| date_in_path(path).map(|t| (t, TimeSource::Path)));
        let (time, source) = match (recorded, flag_time, modified) {
            (Some(r), _, _) => r,
            (None, Some(t), _) => (t, TimeSource::Flag),
            (None, None, Some(t)) => (t, TimeSource::Modified),
            (None, None, None) => {
                return Err("no snapshot time: pass --inventory-time".to_string());
            }
        };
        let mut loaded = kinds::Loaded::default();
        kinds::read_parsed(&parsed, time, &mut loaded)?;
        if loaded.facts == 0 && loaded.kinds.is_empty() {
            return Err("no facts in the file".to_string());
        }
        self.files.push(InventoryFile {
            path: path.display().to_string(),
            kinds: loaded.kinds.clone(),
            facts: loaded.facts,
            taken_at: time,
            time_source: source,
        });
        self.absorb(loaded, &path.display().to_string());
        Ok(())
    }

    /// Merges one file's facts, reporting disagreements (the later snapshot wins).
    fn absorb(&mut self, loaded: kinds::Loaded, file: &str) {
        let conflicts = &mut self.conflicts;
        for (arn, (tags, at)) in loaded.resource_tags {
            match self.resource_tags.get(&arn) {
                Some((old, old_at)) if *old != tags => {
                    conflicts.push(format!("{file}: tags of {arn} differ from an earlier file's; keeping the later snapshot"));
                    if at >= *old_at {
                        self.resource_tags.insert(arn, (tags, at));
                    }
                }
                Some(_) => {}
                None => {
                    self.resource_tags.insert(arn, (tags, at));
                }
            }
        }
        for (arn, u) in loaded.users {
            let merged = self.users.entry(arn.clone()).or_default();
            merge_user(merged, u, file, conflicts);
        }
        for (arn, r) in loaded.roles {
            let entry = self.roles.entry(arn).or_default();
            if !entry.tags.is_empty() && !r.tags.is_empty() && entry.tags != r.tags {
                conflicts.push(format!(
                    "{file}: tags of role {} differ from an earlier file's",
                    r.arn
                ));
            }
            merge_role(entry, r);
        }
        self.groups.extend(loaded.groups);
        for (id, k) in loaded.keys {
            if let Some(old) = self.keys.get(&id)
                && old.status != k.status
            {
                conflicts.push(format!(
                    "{file}: access key {id} is {} here and {} in an earlier file; keeping the later snapshot",
                    k.status, old.status
                ));
                if old.taken_at > k.taken_at {
                    continue;
                }
            }
            self.keys.insert(id, k);
        }
        self.key_users.extend(loaded.key_users);
        for (account, at) in loaded.iam_accounts {
            let e = self.iam_accounts.entry(account).or_insert(at);
            *e = (*e).max(at);
        }
        for (account, at) in loaded.role_accounts {
            let e = self.role_accounts.entry(account).or_insert(at);
            *e = (*e).max(at);
        }
        for n in loaded.networks {
            if self.networks.iter().any(|m| m.id == n.id) {
                conflicts.push(format!(
                    "{file}: Network {:?} is defined again; keeping both definitions' ranges",
                    n.id
                ));
            }
            self.networks.push(n);
        }
        for (id, i) in loaded.instances {
            if let Some(old) = self.instances.get(&id)
                && (old.private_ips != i.private_ips || old.public_ips != i.public_ips)
            {
                conflicts.push(format!("{file}: instance {id} has other addresses than in an earlier file; keeping the later snapshot"));
                if old.taken_at > i.taken_at {
                    continue;
                }
            }
            self.instances.insert(id, i);
        }
        self.nat_gateways.extend(loaded.nat_gateways);
        self.endpoints.extend(loaded.endpoints);
        self.elastic_ips.extend(loaded.elastic_ips);
        for (id, a) in loaded.accounts {
            self.accounts.insert(id, a);
        }
        if let Some(at) = loaded.organization {
            self.organization = Some(self.organization.map_or(at, |o| o.max(at)));
        }
        for (ty, entities) in loaded.entity_tags {
            let known = self.entity_tags.entry(ty).or_default();
            for (id, tags) in entities {
                let entry = known.entry(id).or_default();
                for (k, v) in tags {
                    if let Some(old) = entry.get(&k)
                        && *old != v
                    {
                        conflicts.push(format!(
                            "{file}: tag {k} of an entity is {v:?} here and {old:?} in an earlier file"
                        ));
                    }
                    entry.insert(k, v);
                }
            }
        }
    }

    /// Builds the address index: which instances, NAT gateway or Elastic IP an address is.
    fn index_addresses(&mut self) {
        let mut index: HashMap<IpAddr, AddressFacts> = HashMap::default();
        for i in self.instances.values() {
            for ip in i.public_ips.iter().chain(&i.private_ips) {
                let a = index.entry(*ip).or_default();
                a.instances.insert(i.id.clone());
                a.taken_at = later(a.taken_at, i.taken_at);
            }
        }
        for n in self.nat_gateways.values() {
            // Without route tables, every instance of the NAT gateway's VPC that has no public
            // address may be behind it: the ambiguity of seed 000, made visible.
            let behind: Vec<String> = self
                .instances
                .values()
                .filter(|i| i.public_ips.is_empty() && i.vpc.is_some() && i.vpc == n.vpc)
                .map(|i| i.id.clone())
                .collect();
            for ip in &n.public_ips {
                let a = index.entry(*ip).or_default();
                a.nat_gateway = Some(n.id.clone());
                a.instances.extend(behind.iter().cloned());
                a.taken_at = later(a.taken_at, n.taken_at);
            }
            for ip in &n.private_ips {
                let a = index.entry(*ip).or_default();
                a.nat_gateway = Some(n.id.clone());
                a.taken_at = later(a.taken_at, n.taken_at);
            }
        }
        for e in &self.elastic_ips {
            let Some(ip) = e.ip else { continue };
            let a = index.entry(ip).or_default();
            a.elastic_ip = true;
            if let Some(i) = &e.instance {
                a.instances.insert(i.clone());
            }
            if let Some(eni) = &e.network_interface
                && let Some(n) = self
                    .nat_gateways
                    .values()
                    .find(|n| n.network_interfaces.contains(eni))
            {
                a.nat_gateway = Some(n.id.clone());
            }
            a.taken_at = later(a.taken_at, e.taken_at);
        }
        self.addresses = index;
    }

    fn index_iam_names(&mut self) {
        let users = self.users.keys().map(|a| ("user", a));
        let roles = self.roles.keys().map(|a| ("role", a));
        self.iam_names = users
            .chain(roles)
            .filter_map(|(kind, arn)| Some((iam_name_key(kind, arn)?, arn.clone())))
            .collect();
    }

    fn index_secrets(&mut self) {
        self.secrets = self
            .resource_tags
            .keys()
            .filter(|arn| arn.contains(":secretsmanager:") && arn.contains(":secret:"))
            .filter_map(|arn| {
                let (name, suffix) = arn.rsplit_once('-')?;
                (suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric()))
                    .then(|| (name.to_string(), arn.clone()))
            })
            .collect();
    }

    /// What the inventory says an address is; `None` when it names no such address.
    pub fn address(&self, ip: IpAddr) -> Option<AddressFacts> {
        let mut found = self.addresses.get(&ip).cloned();
        for n in &self.networks {
            if n.ranges.iter().any(|r| r.contains(ip)) {
                found
                    .get_or_insert_with(AddressFacts::default)
                    .networks
                    .insert(n.id.clone());
            }
        }
        found
    }

    /// Whether addresses can be looked up: instances, NAT gateways, Elastic IPs or networks
    /// were loaded.
    pub fn knows_addresses(&self) -> bool {
        !(self.instances.is_empty()
            && self.nat_gateways.is_empty()
            && self.elastic_ips.is_empty()
            && self.networks.is_empty())
    }

    /// When the latest file of one of these kinds was taken.
    pub fn taken_at_of(&self, kinds: &[&str]) -> Option<Timestamp> {
        self.files
            .iter()
            .filter(|f| f.kinds.iter().any(|k| kinds.contains(k)))
            .map(|f| f.taken_at)
            .max()
    }

    /// A network by id.
    pub fn network(&self, id: &str) -> Option<&NetworkFacts> {
        self.networks.iter().find(|n| n.id == id)
    }

    /// An IAM user by ARN, else by name (from `list-user-tags`, which gives no ARN).
    /// The ARN may carry the user's path or not.
    pub fn user(&self, arn: Option<&str>, name: Option<&str>) -> Option<&UserFacts> {
        arn.and_then(|a| {
            self.users.get(a).or_else(|| {
                let full = self.iam_names.get(&iam_name_key("user", a)?)?;
                self.users.get(full)
            })
        })
        .or_else(|| name.and_then(|n| self.users.get(&format!("name:{n}"))))
    }

    /// An IAM role by ARN, with or without its path.
    pub fn role(&self, arn: &str) -> Option<&RoleFacts> {
        self.roles.get(arn).or_else(|| self.role_by_name(arn))
    }

    /// An IAM role by ARN with the other path (with it when `arn` has none, and the other way
    /// round): its account and name.
    fn role_by_name(&self, arn: &str) -> Option<&RoleFacts> {
        let full = self.iam_names.get(&iam_name_key("role", arn)?)?;
        self.roles.get(full)
    }

    /// When the IAM users of an account were listed; then a user not in the inventory did not
    /// exist.
    pub fn users_listed(&self, account: &str) -> Option<Timestamp> {
        self.iam_accounts.get(account).copied()
    }

    /// When the IAM roles of an account were listed.
    pub fn roles_listed(&self, account: &str) -> Option<Timestamp> {
        self.role_accounts.get(account).copied()
    }

    /// The status of a long-term access key of `user`: `Active` or `Inactive` as listed;
    /// `Unknown` when the user's keys were listed without it; from the credential report,
    /// `Inactive` when the user had no active key at all. `None` when the inventory cannot tell.
    pub fn key_status(
        &self,
        key: &str,
        user_name: Option<&str>,
        user: Option<&UserFacts>,
    ) -> Option<(&str, Timestamp)> {
        if let Some(k) = self.keys.get(key) {
            if user_name.is_none_or(|u| u == k.user) {
                return Some((k.status.as_str(), k.taken_at));
            }
            return Some(("Unknown", k.taken_at));
        }
        if let Some(name) = user_name
            && self.key_users.contains(name)
        {
            let at = self
                .keys
                .values()
                .filter(|k| k.user == name)
                .map(|k| k.taken_at)
                .max();
            if let Some(at) = at {
                return Some(("Unknown", at));
            }
        }
        match user {
            Some(u) if u.active_keys == Some(0) => u.taken_at.map(|at| ("Inactive", at)),
            _ => None,
        }
    }

    /// The tags of a resource: its own, or for an S3 object those of its bucket (the tagging API
    /// has no objects), or for an IAM user or role those from IAM; with Cedar entities JSON tags.
    pub fn tags_of_resource(&self, arn: &str) -> Option<(Tags, Option<Timestamp>)> {
        self.resource_tags_ref(arn).owned()
    }

    /// [`Inventory::tags_of_resource`] without copying them: what the engine reads per event.
    pub fn resource_tags_ref(&self, arn: &str) -> ResourceTags<'_> {
        let tagged = |key: &str| self.resource_tags.get(key).map(|(t, at)| (t, Some(*at)));
        // The ARN's service says which other table can know the resource.
        let base = tagged(arn).or_else(|| match arn_service(arn) {
            Some("secretsmanager") => self.secrets.get(arn).and_then(|a| tagged(a)),
            Some("s3") => s3_bucket_of_object(arn).and_then(tagged),
            Some("ec2") => instance_id_of_arn(arn)
                .and_then(|id| self.instances.get(id))
                .map(|i| (&i.tags, i.taken_at)),
            // A role as listed first: found without parsing its ARN for a user's name.
            Some("iam") => match self.roles.get(arn) {
                Some(r) => Some((&r.tags, r.taken_at)),
                None => match self.user(Some(arn), None) {
                    Some(u) => Some((&u.tags, u.taken_at)),
                    None => self.role_by_name(arn).map(|r| (&r.tags, r.taken_at)),
                },
            },
            _ => None,
        });
        ResourceTags {
            base,
            extra: self.extra_tags("Resource", arn),
        }
    }

    /// Whether an account is in the organization; `None` when no organization was listed.
    pub fn in_organization(&self, account: &str) -> Option<bool> {
        self.organization
            .map(|_| self.accounts.contains_key(account))
    }

    /// Tags given in Cedar entities JSON for an entity of the model (looked up per resource and
    /// event: by type, then id, without building a key).
    #[inline(always)]
    pub fn extra_tags(&self, entity_type: &str, id: &str) -> Option<&Tags> {
        if self.entity_tags.is_empty() {
            return None;
        }
        self.entity_tags.get(entity_type)?.get(id)
    }

    /// The managed policies that apply to a user: its own and its groups'.
    pub fn user_policies(&self, user: &UserFacts) -> BTreeSet<String> {
        let mut out = user.policies.clone();
        for g in &user.groups {
            if let Some(group) = self.groups.get(g) {
                out.extend(group.policies.iter().cloned());
            }
        }
        out
    }

    /// One line per file, for the start of a scan.
    pub fn describe(&self) -> Vec<String> {
        self.files
            .iter()
            .map(|f| {
                let kinds: Vec<&str> = f.kinds.iter().copied().collect();
                format!(
                    "{}: {}, {} fact(s), taken {} ({})",
                    f.path,
                    kinds.join(" + "),
                    f.facts,
                    f.taken_at,
                    f.time_source
                )
            })
            .collect()
    }
}

/// `user:<account>:<name>` for `arn:aws:iam::<account>:user/<path/><name>`.
fn iam_name_key(kind: &str, arn: &str) -> Option<String> {
    let Arn {
        service,
        account,
        resource,
        ..
    } = Arn::parse(arn)?;
    let rest = resource.strip_prefix(kind)?.strip_prefix('/')?;
    let name = rest.rsplit('/').next()?;
    if service != "iam" || name.is_empty() {
        return None;
    }
    // Built on every lookup of an IAM resource: without the formatting machinery.
    Some(concat(&[kind, ":", account, ":", name]))
}

/// The snapshot time a path records: the nearest file or directory name holding a date,
/// `YYYY-MM-DD`, optionally followed by a time `THH:MM:SS` (or `THH-MM-SS`, `THHMMSS`) in UTC:
/// `inventory/2024-05-13/instances.json`, `instances-2024-05-13T0900Z.json` does not count
/// (hours and minutes alone), `instances-2024-05-13T090000Z.json` does.
pub fn date_in_path(path: &Path) -> Option<Timestamp> {
    path.components()
        .rev()
        .filter_map(|c| c.as_os_str().to_str())
        .find_map(date_in_name)
}

fn date_in_name(name: &str) -> Option<Timestamp> {
    let b = name.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let digits = |from: usize, n: usize| (from..from + n).all(digit);
    for i in 0..b.len() {
        let date = digits(i, 4)
            && b.get(i + 4) == Some(&b'-')
            && digits(i + 5, 2)
            && b.get(i + 7) == Some(&b'-')
            && digits(i + 8, 2);
        if !date || (i > 0 && digit(i - 1)) || digit(i + 10) {
            continue;
        }
        let day = &name[i..i + 10];
        // An optional time: `T` and six digits, separated by `:`, `-` or nothing.
        let mut time = None;
        if matches!(b.get(i + 10), Some(b'T' | b't')) {
            let mut j = i + 11;
            let mut parts = Vec::with_capacity(3);
            for k in 0..3 {
                if k > 0 && matches!(b.get(j), Some(b':' | b'-')) {
                    j += 1;
                }
                if !digits(j, 2) {
                    break;
                }
                parts.push(&name[j..j + 2]);
                j += 2;
            }
            if let [h, m, sec] = parts.as_slice()
                && !digit(j)
            {
                time = Some(format!("{h}:{m}:{sec}"));
            }
        }
        let text = match time {
            Some(t) => format!("{day}T{t}Z"),
            None => day.to_string(),
        };
        if let Ok(t) = Timestamp::parse(&text) {
            return Some(t);
        }
    }
    None
}

/// The later of two snapshot times, either of which may be unknown.
pub(crate) fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    a.max(b)
}

fn merge_user(into: &mut UserFacts, u: UserFacts, file: &str, conflicts: &mut Vec<String>) {
    if into.arn.is_empty() {
        *into = u;
        return;
    }
    if !into.tags.is_empty() && !u.tags.is_empty() && into.tags != u.tags {
        conflicts.push(format!(
            "{file}: tags of user {} differ from an earlier file's",
            u.arn
        ));
    }
    if let (Some(a), Some(b)) = (into.created, u.created)
        && a != b
    {
        conflicts.push(format!(
            "{file}: user {} was created at {b} here and at {a} in an earlier file: recreated?",
            u.arn
        ));
    }
    into.created = into.created.or(u.created);
    into.groups.extend(u.groups);
    into.policies.extend(u.policies);
    into.tags.extend(u.tags);
    into.password_enabled = u.password_enabled.or(into.password_enabled);
    into.mfa_active = u.mfa_active.or(into.mfa_active);
    into.active_keys = u.active_keys.or(into.active_keys);
    into.detailed |= u.detailed;
    into.taken_at = later(into.taken_at, u.taken_at);
}

fn merge_role(into: &mut RoleFacts, r: RoleFacts) {
    if into.arn.is_empty() {
        *into = r;
        return;
    }
    into.created = into.created.or(r.created);
    into.policies.extend(r.policies);
    into.tags.extend(r.tags);
    into.detailed |= r.detailed;
    into.taken_at = later(into.taken_at, r.taken_at);
}

/// `arn:aws:s3:::bucket/key` → `arn:aws:s3:::bucket`.
fn s3_bucket_of_object(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let (_partition, rest) = split_byte(rest, b':')?;
    let path = rest.strip_prefix("s3:::")?;
    let (bucket, _) = split_byte(path, b'/')?;
    // `arn:<partition>:s3:::<bucket>` is the object's ARN up to the key.
    arn.get(..arn.len() - path.len() + bucket.len())
}

/// `arn:aws:ec2:region:account:instance/i-...` → `i-...` (after the last `:instance/`).
fn instance_id_of_arn(arn: &str) -> Option<&str> {
    memchr::memrchr_iter(b':', arn.as_bytes())
        .find_map(|at| arn.get(at + 1..)?.strip_prefix("instance/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_past_the_inventory_limit_says_which_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tags.json");
        std::fs::write(
            &path,
            format!("{{\"ResourceTagMappingList\":[]{}}}", " ".repeat(5000)),
        )
        .unwrap();
        let mut inventory = Inventory::default();
        let err = inventory
            .load_file_within(&path, Some(Timestamp(0)), 4096)
            .unwrap_err();
        assert_eq!(
            err,
            "larger than the limit of 4096 bytes for one inventory file (after decompression)"
        );
        assert!(
            inventory
                .load_file_within(&path, Some(Timestamp(0)), 8192)
                .is_ok()
        );
    }

    #[test]
    fn an_object_with_tags_of_its_own_has_them_and_the_others_their_buckets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tags.json");
        std::fs::write(
            &path,
            r#"{"ResourceTagMappingList":[
            {"ResourceARN":"arn:aws:s3:::b","Tags":[{"Key":"service","Value":"billing"}]},
            {"ResourceARN":"arn:aws:s3:::b/tagged.csv","Tags":[{"Key":"service","Value":"web"}]}]}"#,
        )
        .unwrap();
        let inv = Inventory::load(&[path], Some(Timestamp(0))).unwrap();
        let service = |arn: &str| {
            inv.tags_of_resource(arn)
                .and_then(|(t, _)| t.get("service").cloned())
        };
        assert_eq!(service("arn:aws:s3:::b/tagged.csv").as_deref(), Some("web"));
        assert_eq!(
            service("arn:aws:s3:::b/other.csv").as_deref(),
            Some("billing")
        );
        assert_eq!(service("arn:aws:s3:::b").as_deref(), Some("billing"));
        assert_eq!(service("arn:aws:s3:::c/other.csv"), None);
    }

    #[test]
    fn arn_parts_for_lookups() {
        for (arn, id) in [
            (
                "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0abc",
                Some("i-0abc"),
            ),
            ("arn:aws:ec2:r:a:instance/i-1:instance/i-2", Some("i-2")),
            ("arn:aws:ec2:r:a:instance/i-1:x", Some("i-1:x")),
            ("arn:aws:ec2:r:a:volume/vol-1", None),
            ("instance/i-1", None),
        ] {
            assert_eq!(instance_id_of_arn(arn), id, "{arn}");
        }
        assert_eq!(
            s3_bucket_of_object("arn:aws:s3:::bucket/a/b"),
            Some("arn:aws:s3:::bucket")
        );
        assert_eq!(s3_bucket_of_object("arn:aws:s3:::bucket"), None);
        assert_eq!(
            iam_name_key("user", "arn:aws:iam::123456789012:user/ops/alice").as_deref(),
            Some("user:123456789012:alice")
        );
        assert_eq!(
            iam_name_key("role", "arn:aws:iam::123456789012:role/admin").as_deref(),
            Some("role:123456789012:admin")
        );
        for (kind, arn) in [
            ("role", "arn:aws:iam::123456789012:user/alice"),
            ("user", "arn:aws:sts::123456789012:user/alice"),
            ("user", "arn:aws:iam::123456789012:user/"),
            ("user", "arn:aws:iam::123456789012"),
        ] {
            assert_eq!(iam_name_key(kind, arn), None, "{arn}");
        }
    }

    fn fixtures() -> Inventory {
        Inventory::load(&[PathBuf::from("fixtures/inventory")], None).unwrap()
    }

    #[test]
    fn loads_every_fixture_kind() {
        let inv = fixtures();
        let kinds: BTreeSet<&str> = inv
            .files
            .iter()
            .flat_map(|f| f.kinds.iter().copied())
            .collect();
        for k in [
            "resourcegroupstaggingapi get-resources",
            "iam get-account-authorization-details",
            "iam get-credential-report",
            "iam list-access-keys",
            "ec2 describe-instances",
            "ec2 describe-nat-gateways",
            "ec2 describe-vpc-endpoints",
            "ec2 describe-addresses",
            "organizations list-accounts",
            "Cedar entities",
        ] {
            assert!(kinds.contains(k), "{k} in {kinds:?}");
        }
        let report = inv
            .files
            .iter()
            .find(|f| f.kinds.contains("iam get-credential-report"))
            .unwrap();
        assert_eq!(report.time_source, TimeSource::Content);
        assert_eq!(report.taken_at.to_string(), "2024-05-13T00:00:00Z");
        assert!(inv.conflicts.is_empty(), "{:?}", inv.conflicts);
    }

    #[test]
    fn joins_the_facts() {
        let inv = fixtures();
        let alice = &inv.users["arn:aws:iam::123456789012:user/alice"];
        assert_eq!(alice.tags.get("service").map(String::as_str), Some("web"));
        assert_eq!(alice.mfa_active, Some(true));
        assert_eq!(alice.active_keys, Some(1));
        assert!(
            inv.user_policies(alice)
                .contains("arn:aws:iam::aws:policy/ReadOnlyAccess"),
            "from the group"
        );
        assert_eq!(inv.keys["AKIAQ4BT4DHFOLDBATCH"].status, "Inactive");
        assert!(inv.iam_accounts.contains_key("123456789012"));
        assert_eq!(inv.in_organization("210987654321"), Some(true));
        assert_eq!(inv.in_organization("444455556666"), Some(false));
        // Seed 000: the instance's public IP, the NAT gateway's EIP in front of two instances.
        let public = inv.address("52.197.156.173".parse().unwrap()).unwrap();
        assert_eq!(
            public.instances,
            BTreeSet::from(["i-0f48040475b4f3464".to_string()])
        );
        let nat = inv.address("54.150.188.89".parse().unwrap()).unwrap();
        assert_eq!(nat.nat_gateway.as_deref(), Some("nat-0a1b2c3d4e5f60718"));
        assert_eq!(nat.instances.len(), 2, "{:?}", nat.instances);
        assert!(nat.elastic_ip);
        assert!(inv.address("203.0.113.9".parse().unwrap()).is_none());
        // Seed 003: an object has its bucket's tags.
        let (tags, _) = inv
            .tags_of_resource("arn:aws:s3:::cm-private-data/exports/2024.csv")
            .unwrap();
        assert_eq!(tags.get("service").map(String::as_str), Some("billing"));
        let (role_tags, _) = inv
            .tags_of_resource("arn:aws:iam::123456789012:role/log-uploader")
            .unwrap();
        assert_eq!(
            role_tags.get("service").map(String::as_str),
            Some("logging")
        );
        // A role named with or without its path.
        let sso =
            "arn:aws:iam::123456789012:role/AWSReservedSSO_AdministratorAccess_0123456789abcdef";
        assert!(inv.role(sso).is_some());
        assert!(
            !inv.roles.contains_key(sso),
            "the inventory has it with its path"
        );
        assert!(
            inv.role("arn:aws:iam::123456789012:role/other/path/log-uploader")
                .is_some()
        );
        assert!(
            inv.role("arn:aws:iam::210987654321:role/log-uploader")
                .is_none()
        );
        // A secret named without the suffix AWS appends to its ARN.
        let (tags, _) = inv
            .tags_of_resource(
                "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:prod/db/password",
            )
            .unwrap();
        assert_eq!(tags.get("service").map(String::as_str), Some("billing"));
        assert_eq!(
            inv.extra_tags("Role", "arn:aws:iam::123456789012:role/log-uploader")
                .and_then(|t| t.get("owner"))
                .map(String::as_str),
            Some("platform")
        );
    }

    #[test]
    fn every_file_takes_the_date_of_its_directory() {
        let inv = fixtures();
        for f in &inv.files {
            assert_eq!(f.taken_at.to_string(), "2024-05-13T00:00:00Z", "{}", f.path);
            if !f.kinds.contains("iam get-credential-report") {
                assert_eq!(f.time_source, TimeSource::Path, "{}", f.path);
            }
        }
    }

    #[test]
    fn dates_in_paths() {
        let at = |p: &str| date_in_path(Path::new(p)).map(|t| t.to_string());
        assert_eq!(
            at("inv/2024-05-13/instances.json").as_deref(),
            Some("2024-05-13T00:00:00Z")
        );
        assert_eq!(
            at("2024-01-01/instances-2024-05-13T09:30:15.json").as_deref(),
            Some("2024-05-13T09:30:15Z"),
            "the nearest name wins"
        );
        assert_eq!(
            at("instances-2024-05-13T093015Z.json").as_deref(),
            Some("2024-05-13T09:30:15Z")
        );
        assert_eq!(
            at("instances-2024-05-13T0930Z.json").as_deref(),
            Some("2024-05-13T00:00:00Z"),
            "an incomplete time is ignored, the date kept"
        );
        assert_eq!(at("12024-05-13/instances.json"), None, "no digits around");
        assert_eq!(at("2024-13-01/instances.json"), None, "no such month");
        assert_eq!(at("inventory/instances.json"), None);
    }

    #[test]
    fn ranges() {
        let office = Cidr::parse("198.51.100.0/26").unwrap();
        assert!(office.contains("198.51.100.63".parse().unwrap()));
        assert!(!office.contains("198.51.100.64".parse().unwrap()));
        assert!(!office.contains("2001:db8::1".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8:1200::/48").unwrap();
        assert!(v6.contains("2001:db8:1200:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8:1201::1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert_eq!(Cidr::parse("10.0.0.1").unwrap().to_string(), "10.0.0.1/32");
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("10.0.0.0/x").is_none());
        assert!(Cidr::parse("office").is_none());
        let inv = fixtures();
        let a = inv.address("198.51.100.7".parse().unwrap()).unwrap();
        assert_eq!(a.networks, BTreeSet::from(["tokyo-office".to_string()]));
        assert!(a.instances.is_empty());
    }

    #[test]
    fn access_key_status() {
        let inv = fixtures();
        let status = |key: &str, user: &str| {
            let u = inv.user(
                Some(&format!("arn:aws:iam::123456789012:user/{user}")),
                Some(user),
            );
            inv.key_status(key, Some(user), u)
                .map(|(s, _)| s.to_string())
        };
        assert_eq!(
            status("AKIAQ4BT4DHFLEAKED01", "deploy-bot").as_deref(),
            Some("Active")
        );
        assert_eq!(
            status("AKIAQ4BT4DHFOLDBATCH", "old-batch").as_deref(),
            Some("Inactive")
        );
        assert_eq!(
            status("AKIAQ4BT4DHFLEAKED01", "alice").as_deref(),
            Some("Unknown"),
            "another user's key"
        );
        assert_eq!(
            status("AKIAQ4BT4DHFNOTLISTED", "deploy-bot").as_deref(),
            Some("Unknown"),
            "the user's keys were listed without it"
        );
        assert_eq!(
            status("AKIAQ4BT4DHFNOTLISTED", "nobody"),
            None,
            "cannot tell"
        );
    }
}
