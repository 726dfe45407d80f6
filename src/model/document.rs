//! Policy documents in a request, analysed into facts: `context.policyDocument`.
//!
//! Bucket, key, role-trust, queue, topic, repository, secret, file-system and domain policies
//! arrive as JSON objects or as JSON strings inside request parameters, under names that differ
//! by service (`bucketPolicy`, `policy`, `policyDocument`, `assumeRolePolicyDocument`,
//! `attributes.Policy`, `attributeValue`, `policyText`, `resourcePolicy`, `accessPolicies`...).
//! Every value of the request parameters that is a policy document (an object with a
//! `Statement`, or a string holding one, URL-encoded or not) is read, and a Lambda permission
//! (`AddPermission`, `AddLayerVersionPermission`) is read as the statement it adds.
//!
//! What is granted, and to whom, follows the semantics of Netflix's policyuniverse, which
//! Panther's rules use:
//! - only `Allow` statements grant; `Deny` never does;
//! - a statement is **public** when its principal is anyone (`"*"`, `{"AWS": "*"}`, an ARN with
//!   `*` for its account, or any `NotPrincipal`) and no condition restricts it. A condition
//!   restricts when it tests one of the keys that name who or where (`aws:SourceArn`,
//!   `aws:SourceAccount`, `aws:SourceOwner`, `aws:PrincipalAccount`, `kms:CallerAccount`,
//!   `aws:userid`, `aws:username`, `aws:SourceIp`, `aws:SourceVpc`, `aws:SourceVpce`,
//!   `aws:PrincipalOrgID`, `aws:PrincipalOrgPaths`, `aws:PrincipalArn`, `aws:SourceOrgID`,
//!   `aws:SourceOrgPaths`, `aws:ResourceAccount`, `aws:ResourceOrgID`, `aws:ResourceOrgPaths`)
//!   with a positive operator (`StringEquals`, `StringLike`, `ArnEquals`, `ArnLike`,
//!   `IpAddress`, with `IfExists` and `ForAnyValue:`/`ForAllValues:`) and a value that is not a
//!   wildcard (`*`, `0.0.0.0/0`, `::/0`). Negated operators (`StringNotEquals`, `NotIpAddress`...)
//!   and other keys (`aws:SecureTransport`) restrict nothing;
//! - the **accounts** granted are those of the principals (an account id or an ARN's account)
//!   and those an account condition names; **external** ones are outside the organization when
//!   the inventory lists it, else other than the event's own account.

use super::{EventView, types, uid};
use crate::inventory::Inventory;
use cedar_policy::{Entity, EntityUid, RestrictedExpression};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashSet};

/// Most documents read from one request, and most statements analysed: a hostile request costs
/// a bounded amount, and past the bounds the document is `malformed`.
const MAX_DOCUMENTS: usize = 16;
const MAX_STATEMENTS: usize = 1000;

/// Deepest member of the request parameters searched for documents.
const MAX_DEPTH: usize = 8;

/// The attributes of `PolicyDocument`, with their schema types.
pub const ATTRIBUTES: &[(&str, &str)] = &[
    ("public", "Bool"),
    ("publicStatements", "Set<String>"),
    ("accounts", "Set<String>"),
    ("externalAccounts", "Set<String>"),
    ("services", "Set<String>"),
    ("federated", "Set<String>"),
    ("organizations", "Set<String>"),
    ("allowsAllActions", "Bool"),
    ("malformed", "Bool"),
    ("parameters", "Set<String>"),
    ("documents", "Long"),
];

/// What the documents of a request grant, merged.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Grants {
    pub public: bool,
    /// The `Sid` (else `#<index>`) of each public statement.
    pub public_statements: BTreeSet<String>,
    pub accounts: BTreeSet<String>,
    pub services: BTreeSet<String>,
    pub federated: BTreeSet<String>,
    /// `aws:PrincipalOrgID` values that restrict a grant.
    pub organizations: BTreeSet<String>,
    /// An `Allow` of every action (`*`) on every resource.
    pub allows_all_actions: bool,
    /// A document that could not be read as one.
    pub malformed: bool,
    /// Where each document was found: `bucketPolicy`, `attributes.Policy`, `principal`...
    pub parameters: BTreeSet<String>,
    pub documents: usize,
}

/// What the values of a restricting condition key are.
#[derive(Clone, Copy, PartialEq)]
enum Category {
    Account,
    Arn,
    Cidr,
    /// Organization ids and paths, VPCs, endpoints, user ids, names.
    Other,
}

/// The condition keys that restrict who may use a grant, lower-cased, with what their values are.
const RESTRICTING_KEYS: &[(&str, Category)] = &[
    ("aws:sourcearn", Category::Arn),
    ("aws:sourceaccount", Category::Account),
    ("aws:sourceowner", Category::Account),
    ("aws:principalaccount", Category::Account),
    ("kms:calleraccount", Category::Account),
    ("aws:userid", Category::Other),
    ("aws:username", Category::Other),
    ("aws:sourceip", Category::Cidr),
    ("aws:sourcevpc", Category::Other),
    ("aws:sourcevpce", Category::Other),
    ("aws:principalorgid", Category::Other),
    ("aws:principalorgpaths", Category::Other),
    ("aws:principalarn", Category::Arn),
    ("aws:sourceorgid", Category::Other),
    ("aws:sourceorgpaths", Category::Other),
    ("aws:resourceaccount", Category::Account),
    ("aws:resourceorgid", Category::Other),
    ("aws:resourceorgpaths", Category::Other),
];

/// Whether a condition value lets anyone through: `*`, a value that starts with a wildcard, an
/// account or an ARN's account that is one, a range of every address.
fn is_wildcard(category: Category, value: &str) -> bool {
    if value.starts_with('*') || value.starts_with('?') {
        return true;
    }
    match category {
        Category::Account => value.contains(['*', '?']),
        Category::Arn => crate::arn::Arn::parse(value).is_none_or(|a| {
            a.account.contains(['*', '?']) || a.account.is_empty() && a.service.contains('*')
        }),
        Category::Cidr => value == "0.0.0.0/0" || value == "::/0",
        Category::Other => false,
    }
}

/// Whether a condition operator is a positive test (policyuniverse's relevant operators).
fn positive_operator(op: &str) -> bool {
    let op = op.to_ascii_lowercase();
    let op = op
        .strip_prefix("forallvalues:")
        .or_else(|| op.strip_prefix("foranyvalue:"))
        .unwrap_or(&op);
    let op = op.strip_suffix("ifexists").unwrap_or(op);
    matches!(
        op,
        "stringequals"
            | "stringlike"
            | "stringequalsignorecase"
            | "arnequals"
            | "arnlike"
            | "ipaddress"
    )
}

/// A value or list of values, as strings (non-strings are skipped).
fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The account of a principal: a 12-digit id, or an ARN's account part.
fn account_of(principal: &str) -> Option<&str> {
    let account = match crate::arn::Arn::parse(principal) {
        Some(arn) => arn.account,
        None => principal,
    };
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

/// Whether a principal string grants anyone: `*`, or an ARN whose account is a wildcard.
fn anyone(principal: &str) -> bool {
    principal == "*" || crate::arn::Arn::parse(principal).is_some_and(|a| a.account.contains('*'))
}

impl Grants {
    /// Analyses one statement (`index` in its document) into these grants.
    fn statement(&mut self, statement: &Map<String, Value>, index: usize) {
        let allow = statement
            .get("Effect")
            .and_then(Value::as_str)
            .is_some_and(|e| e.eq_ignore_ascii_case("Allow"));
        if !allow {
            return;
        }
        let name = statement
            .get("Sid")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map_or_else(|| format!("#{index}"), str::to_string);

        // Conditions: whether one restricts the grant, and the accounts and organizations they
        // name.
        let mut restricted = false;
        if let Some(Value::Object(ops)) = statement.get("Condition") {
            for (op, tests) in ops {
                let Value::Object(tests) = tests else {
                    continue;
                };
                if !positive_operator(op) {
                    continue;
                }
                for (key, values) in tests {
                    let key = key.to_ascii_lowercase();
                    let Some(&(_, category)) = RESTRICTING_KEYS.iter().find(|(k, _)| *k == key)
                    else {
                        continue;
                    };
                    let values = strings(values);
                    if values.iter().any(|v| !is_wildcard(category, v)) {
                        restricted = true;
                    }
                    for v in values.iter().filter(|v| !is_wildcard(category, v)) {
                        if category == Category::Account
                            && let Some(a) = account_of(v)
                        {
                            self.accounts.insert(a.to_string());
                        }
                        if key == "aws:principalorgid" {
                            self.organizations.insert((*v).to_string());
                        }
                    }
                }
            }
        }

        // Principals.
        let mut to_anyone = statement.contains_key("NotPrincipal");
        match statement.get("Principal") {
            Some(Value::String(p)) => to_anyone |= anyone(p),
            Some(Value::Object(kinds)) => {
                for (kind, values) in kinds {
                    for p in strings(values) {
                        match kind.as_str() {
                            "AWS" if anyone(p) => to_anyone = true,
                            "AWS" => {
                                if let Some(a) = account_of(p) {
                                    self.accounts.insert(a.to_string());
                                }
                            }
                            "Service" => {
                                self.services.insert(p.to_string());
                            }
                            "Federated" => {
                                self.federated.insert(p.to_string());
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
        if to_anyone && !restricted {
            self.public = true;
            self.public_statements.insert(name);
        }

        // Every action on every resource.
        let all = |key: &str| {
            statement
                .get(key)
                .map(|v| strings(v).iter().any(|a| *a == "*" || *a == "*:*"))
        };
        if all("Action") == Some(true) && all("Resource") != Some(false) {
            self.allows_all_actions = true;
        }
    }

    /// Analyses a document found at `parameter`.
    fn document(&mut self, document: &Value, parameter: &str, statements: &mut usize) {
        self.documents += 1;
        self.parameters.insert(parameter.to_string());
        let list: Vec<&Value> = match document.get("Statement") {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => {
                self.malformed = true;
                return;
            }
        };
        for (i, s) in list.into_iter().enumerate() {
            *statements += 1;
            match s {
                _ if *statements > MAX_STATEMENTS => {
                    self.malformed = true;
                    return;
                }
                Value::Object(s) => self.statement(s, i),
                _ => self.malformed = true,
            }
        }
    }
}

/// A document held in a string: JSON text, or JSON text URL-encoded (as some older records
/// write IAM policies). `None` when the string is not meant as one.
fn document_in_string(text: &str) -> Option<Result<Value, ()>> {
    let trimmed = text.trim_start();
    let decoded;
    let json = if trimmed.starts_with('{') {
        trimmed
    } else if trimmed.starts_with("%7B") || trimmed.starts_with("%7b") {
        decoded = percent_decode(trimmed)?;
        &decoded
    } else {
        return None;
    };
    if !json.contains("Statement") {
        return None;
    }
    Some(match serde_json::from_str::<Value>(json) {
        Ok(v) if v.get("Statement").is_some() => Ok(v),
        _ => Err(()),
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Searches a request's parameters for documents, depth first.
fn search(value: &Value, path: &mut String, depth: usize, found: &mut Vec<(String, Value)>) {
    if found.len() >= MAX_DOCUMENTS || depth > MAX_DEPTH {
        return;
    }
    let visit = |key: &str, v: &Value, path: &mut String, found: &mut Vec<(String, Value)>| {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        match v {
            Value::Object(map) if map.contains_key("Statement") => {
                found.push((path.clone(), v.clone()))
            }
            Value::String(text) => match document_in_string(text) {
                Some(Ok(doc)) => found.push((path.clone(), doc)),
                Some(Err(())) => found.push((path.clone(), Value::Null)),
                None => {}
            },
            Value::Object(_) | Value::Array(_) => search(v, path, depth + 1, found),
            _ => {}
        }
        path.truncate(len);
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                visit(k, v, path, found);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                visit(&i.to_string(), v, path, found);
            }
        }
        _ => {}
    }
}

/// A Lambda permission (`AddPermission`, `AddLayerVersionPermission`) as the statement it adds.
fn lambda_permission(params: &Map<String, Value>) -> Option<Value> {
    let principal = params.get("principal")?.as_str()?;
    let principal = if principal.ends_with(".amazonaws.com") || principal.ends_with(".amazon.com") {
        serde_json::json!({ "Service": principal })
    } else {
        serde_json::json!({ "AWS": principal })
    };
    let mut condition = Map::new();
    let mut test = |op: &str, key: &str, param: &str| {
        if let Some(v) = params.get(param).and_then(Value::as_str) {
            let entry = condition
                .entry(op.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(tests) = entry {
                tests.insert(key.to_string(), Value::String(v.to_string()));
            }
        }
    };
    test("ArnLike", "AWS:SourceArn", "sourceArn");
    test("StringEquals", "AWS:SourceAccount", "sourceAccount");
    test("StringEquals", "aws:PrincipalOrgID", "principalOrgID");
    test("StringEquals", "aws:PrincipalOrgID", "organizationId");
    let mut statement = serde_json::json!({
        "Sid": params.get("statementId").and_then(Value::as_str).unwrap_or("#0"),
        "Effect": "Allow",
        "Principal": principal,
        "Action": params.get("action").cloned().unwrap_or(Value::Null),
    });
    if !condition.is_empty()
        && let Value::Object(s) = &mut statement
    {
        s.insert("Condition".to_string(), Value::Object(condition));
    }
    Some(serde_json::json!({ "Statement": [statement] }))
}

/// The grants of the documents in an event's request; `None` when it holds none. Without
/// external accounts, which [`entity`] works out with the inventory.
pub fn grants(view: &EventView) -> Result<Option<Grants>, String> {
    let Some(params) = view.field(super::Field::RequestParameters)? else {
        return Ok(None);
    };
    let mut found = Vec::new();
    let lambda = view.event.service() == "lambda"
        && (view.event.event_name.starts_with("AddPermission")
            || view
                .event
                .event_name
                .starts_with("AddLayerVersionPermission"));
    if lambda && let Some(doc) = params.as_object().and_then(lambda_permission) {
        found.push(("principal".to_string(), doc));
    }
    search(params, &mut String::new(), 0, &mut found);
    if found.is_empty() {
        return Ok(None);
    }
    let mut g = Grants::default();
    let mut statements = 0;
    for (parameter, doc) in &found {
        g.document(doc, parameter, &mut statements);
    }
    Ok(Some(g))
}

/// The accounts of `accounts` that are outside the organization when the inventory lists it,
/// else other than `own`.
pub fn external(
    accounts: &BTreeSet<String>,
    own: Option<&str>,
    inv: &Inventory,
) -> BTreeSet<String> {
    accounts
        .iter()
        .filter(|a| match inv.in_organization(a) {
            Some(in_org) => !in_org,
            None => own != Some(a.as_str()),
        })
        .cloned()
        .collect()
}

/// `PolicyDocument::"event"`: the same id for every event (each request has its own store).
pub fn document_uid() -> EntityUid {
    uid(&types().policy_document, "event")
}

/// The entity of the grants, with their external accounts: those outside the organization when
/// the inventory lists it, else other than `own` (the event's `recipientAccountId`).
pub fn entity(g: &Grants, own: Option<&str>, inv: &Inventory) -> Result<Entity, String> {
    let external_accounts = external(&g.accounts, own, inv);
    let set = |items: &BTreeSet<String>| {
        RestrictedExpression::new_set(
            items
                .iter()
                .map(|s| RestrictedExpression::new_string(s.clone())),
        )
    };
    let attrs = [
        ("public", RestrictedExpression::new_bool(g.public)),
        ("publicStatements", set(&g.public_statements)),
        ("accounts", set(&g.accounts)),
        ("externalAccounts", set(&external_accounts)),
        ("services", set(&g.services)),
        ("federated", set(&g.federated)),
        ("organizations", set(&g.organizations)),
        (
            "allowsAllActions",
            RestrictedExpression::new_bool(g.allows_all_actions),
        ),
        ("malformed", RestrictedExpression::new_bool(g.malformed)),
        ("parameters", set(&g.parameters)),
        (
            "documents",
            RestrictedExpression::new_long(i64::try_from(g.documents).unwrap_or(i64::MAX)),
        ),
    ]
    .map(|(k, v)| (k.to_string(), v));
    Entity::new(document_uid(), attrs.into_iter().collect(), HashSet::new())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants_of(params: &str) -> Option<Grants> {
        grants_in("s3.amazonaws.com", "PutBucketPolicy", params)
    }

    fn grants_in(source: &str, name: &str, params: &str) -> Option<Grants> {
        let json = format!(
            r#"{{"eventTime":"2024-05-14T00:00:00Z","eventSource":"{source}","eventName":"{name}","recipientAccountId":"111122223333","requestParameters":{params}}}"#
        );
        let view = EventView::parse(&json).unwrap();
        grants(&view).unwrap()
    }

    /// The external accounts of the grants, for the event's account `111122223333`.
    fn external_of(g: &Grants) -> BTreeSet<String> {
        external(&g.accounts, Some("111122223333"), &Inventory::default())
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_wildcard_principal_without_condition_is_public() {
        for principal in [
            r#""*""#,
            r#"{"AWS":"*"}"#,
            r#"{"AWS":["arn:aws:iam::111122223333:root","*"]}"#,
            r#"{"AWS":"arn:aws:iam::*:root"}"#,
        ] {
            let g = grants_of(&format!(
                r#"{{"bucketName":"b","bucketPolicy":{{"Version":"2012-10-17","Statement":[{{"Sid":"Public","Effect":"Allow","Principal":{principal},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}]}}}}"#
            ))
            .unwrap();
            assert!(g.public, "{principal}");
            assert_eq!(g.public_statements, set(&["Public"]));
            assert_eq!(g.parameters, set(&["bucketPolicy"]));
        }
    }

    #[test]
    fn restricting_conditions_and_denies_are_not_public() {
        for condition in [
            r#"{"StringEquals":{"aws:SourceVpce":"vpce-1a2b3c4d"}}"#,
            r#"{"StringEquals":{"aws:PrincipalOrgID":["o-a1b2c3d4e5"]}}"#,
            r#"{"ArnLike":{"AWS:SourceArn":"arn:aws:sns:us-east-1:111122223333:t"}}"#,
            r#"{"IpAddressIfExists":{"aws:SourceIp":"203.0.113.0/24"}}"#,
            r#"{"ForAnyValue:StringLike":{"aws:PrincipalOrgPaths":"o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/*"}}"#,
        ] {
            let g = grants_of(&format!(
                r#"{{"bucketPolicy":{{"Statement":{{"Effect":"Allow","Principal":"*","Action":"s3:*","Condition":{condition}}}}}}}"#
            ))
            .unwrap();
            assert!(!g.public, "{condition}");
        }
        for condition in [
            r#"{"StringNotEquals":{"aws:SourceVpce":"vpce-1a2b3c4d"}}"#,
            r#"{"Bool":{"aws:SecureTransport":"true"}}"#,
            r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#,
            r#"{"StringLike":{"aws:PrincipalOrgID":"*"}}"#,
        ] {
            let g = grants_of(&format!(
                r#"{{"bucketPolicy":{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:*","Condition":{condition}}}]}}}}"#
            ))
            .unwrap();
            assert!(g.public, "{condition} restricts nothing");
        }
        let deny = grants_of(
            r#"{"bucketPolicy":{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}}"#,
        )
        .unwrap();
        assert!(!deny.public && deny.accounts.is_empty());
    }

    #[test]
    fn accounts_services_and_external_accounts() {
        let g = grants_in(
            "iam.amazonaws.com",
            "UpdateAssumeRolePolicy",
            r#"{"roleName":"ops","policyDocument":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":[\"arn:aws:iam::111122223333:root\",\"arn:aws:iam::444455556666:role/x\",\"777788889999\"],\"Service\":\"ec2.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}"}"#,
        )
        .unwrap();
        assert_eq!(
            g.accounts,
            set(&["111122223333", "444455556666", "777788889999"])
        );
        assert_eq!(
            external_of(&g),
            set(&["444455556666", "777788889999"]),
            "other than the event's own account without organization inventory"
        );
        assert_eq!(g.services, set(&["ec2.amazonaws.com"]));
        assert!(!g.public);
        assert_eq!(g.parameters, set(&["policyDocument"]));
    }

    #[test]
    fn documents_in_strings_anywhere_and_malformed_ones() {
        let sqs = grants_in(
            "sqs.amazonaws.com",
            "SetQueueAttributes",
            r#"{"queueUrl":"https://sqs.us-east-1.amazonaws.com/111122223333/q","attributes":{"Policy":"{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"*\"},\"Action\":\"sqs:SendMessage\"}]}"}}"#,
        )
        .unwrap();
        assert!(sqs.public);
        assert_eq!(sqs.parameters, set(&["attributes.Policy"]));
        let encoded = grants_in(
            "iam.amazonaws.com",
            "PutUserPolicy",
            r#"{"policyDocument":"%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22*%22%2C%22Resource%22%3A%22*%22%7D%5D%7D"}"#,
        )
        .unwrap();
        assert!(encoded.allows_all_actions);
        let broken = grants_in(
            "kms.amazonaws.com",
            "PutKeyPolicy",
            r#"{"keyId":"k","policy":"{\"Statement\": [ {\"Effect\": "}"#,
        )
        .unwrap();
        assert!(broken.malformed);
        assert!(grants_of(r#"{"bucketName":"b","acl":"private"}"#).is_none());
        assert!(grants_of("null").is_none());
    }

    #[test]
    fn a_lambda_permission_is_the_statement_it_adds() {
        let public = grants_in(
            "lambda.amazonaws.com",
            "AddPermission20150331v2",
            r#"{"functionName":"f","statementId":"open","action":"lambda:InvokeFunction","principal":"*"}"#,
        )
        .unwrap();
        assert!(public.public);
        assert_eq!(public.public_statements, set(&["open"]));
        let from_s3 = grants_in(
            "lambda.amazonaws.com",
            "AddPermission20150331v2",
            r#"{"functionName":"f","statementId":"s3","action":"lambda:InvokeFunction","principal":"s3.amazonaws.com","sourceAccount":"111122223333","sourceArn":"arn:aws:s3:::b"}"#,
        )
        .unwrap();
        assert!(!from_s3.public);
        assert_eq!(from_s3.services, set(&["s3.amazonaws.com"]));
        let account = grants_in(
            "lambda.amazonaws.com",
            "AddLayerVersionPermission20181031",
            r#"{"layerName":"l","versionNumber":1,"statementId":"x","action":"lambda:GetLayerVersion","principal":"444455556666"}"#,
        )
        .unwrap();
        assert_eq!(external_of(&account), set(&["444455556666"]));
    }
}
