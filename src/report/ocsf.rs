//! `--format ocsf`: one OCSF Detection Finding (class 2004, schema 1.1.0, the cloud profile) per
//! finding, as JSON lines: what Amazon Security Lake custom sources (after conversion to
//! Parquet) and SIEMs that speak OCSF take.
//!
//! The event's actor (principal, key, session), API (service and operation), source endpoint,
//! cloud account and region go where OCSF puts them (`evidences`, `api`, `cloud`); the
//! detection's id, title, description, ATT&CK techniques and runbook go in `finding_info` and
//! `remediation`; what the detection read, and where the event was, in `unmapped`. With
//! `--raw`, the event itself is `raw_data` (OCSF makes it a string).

use super::sanitize::json_line;
use super::{Finding, FindingWriter, finding_text};
use crate::engine::Severity;
use serde::Serialize;
use std::io::{self, Write};

/// The OCSF version the records follow (Amazon Security Lake's).
pub const OCSF_VERSION: &str = "1.1.0";

/// A Detection Finding record.
#[derive(Debug, Serialize)]
pub struct DetectionFinding<'a> {
    pub activity_id: u8,
    pub activity_name: &'static str,
    pub category_uid: u8,
    pub category_name: &'static str,
    pub class_uid: u16,
    pub class_name: &'static str,
    pub type_uid: u32,
    pub type_name: &'static str,
    pub severity_id: u8,
    pub severity: &'static str,
    pub status_id: u8,
    pub status: &'static str,
    /// The event's time, in milliseconds since the epoch (a finding over many events: its first).
    pub time: i64,
    /// A finding over many events: how many, and the times of the first and last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    pub message: String,
    pub metadata: Metadata,
    pub finding_info: FindingInfo<'a>,
    pub cloud: Cloud<'a>,
    pub api: Api<'a>,
    pub evidences: Vec<Evidence<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<Remediation<'a>>,
    pub unmapped: Unmapped<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_data: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct Metadata {
    pub version: &'static str,
    pub product: Product,
    pub profiles: [&'static str; 1],
}

#[derive(Debug, Serialize)]
pub struct Product {
    pub name: &'static str,
    pub vendor_name: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Serialize)]
pub struct FindingInfo<'a> {
    /// The detection and the event: the same finding has the same uid in every run.
    pub uid: String,
    pub title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desc: Option<&'a str>,
    pub types: [&'a str; 1],
    pub analytic: Analytic<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attacks: Vec<Attack<'a>>,
    pub data_sources: [&'static str; 1],
}

#[derive(Debug, Serialize)]
pub struct Analytic<'a> {
    pub uid: &'a str,
    pub name: &'a str,
    /// 1: a rule.
    pub type_id: u8,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Attack<'a> {
    pub technique: Technique<'a>,
    /// The tactic the technique serves in a CloudTrail detection ([`super::attack`]), when the
    /// table knows the technique.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tactic: Option<Tactic>,
    pub version: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Technique<'a> {
    pub uid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'static str>,
    pub src_url: String,
}

#[derive(Debug, Serialize)]
pub struct Tactic {
    pub uid: &'static str,
    pub name: &'static str,
    pub src_url: String,
}

#[derive(Debug, Serialize)]
pub struct Cloud<'a> {
    pub provider: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<Account<'a>>,
}

#[derive(Debug, Serialize)]
pub struct Account<'a> {
    pub uid: &'a str,
    /// 10: an AWS account.
    pub type_id: u8,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Api<'a> {
    pub operation: &'a str,
    pub service: Service<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<ApiResponse<'a>>,
}

#[derive(Debug, Serialize)]
pub struct Service<'a> {
    pub name: &'a str,
}

#[derive(Debug, Serialize)]
pub struct ApiResponse<'a> {
    pub error: &'a str,
}

#[derive(Debug, Serialize)]
pub struct Evidence<'a> {
    pub actor: Actor<'a>,
    pub api: Api<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_endpoint: Option<Endpoint<'a>>,
}

#[derive(Debug, Serialize)]
pub struct Actor<'a> {
    pub user: User<'a>,
}

#[derive(Debug, Serialize)]
pub struct User<'a> {
    pub uid: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_uid: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct Endpoint<'a> {
    /// An address: CloudTrail's `sourceIPAddress` when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<&'a str>,
    /// A service's name (`s3.amazonaws.com`, `AWS Internal`) where CloudTrail records one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svc_name: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct Resource<'a> {
    pub uid: &'a str,
}

#[derive(Debug, Serialize)]
pub struct Remediation<'a> {
    pub desc: &'a str,
}

#[derive(Debug, Serialize)]
pub struct Unmapped<'a> {
    pub event_uid: &'a str,
    pub policy: &'a str,
    pub file: &'a str,
    pub record: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
    pub values: &'a [super::ReadValue],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub notes: &'a [String],
    /// A finding over many events: its group, window, counts and sample of events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation: Option<&'a super::Correlated>,
}

/// OCSF's severity: id and name.
fn severity(s: Severity) -> (u8, &'static str) {
    match s {
        Severity::Info => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

/// The record of one finding.
pub fn record(f: &Finding) -> DetectionFinding<'_> {
    let d = &f.detection;
    let e = &f.event;
    let (service, operation) = e.action.split_once(':').unwrap_or(("", &e.action));
    let api = || Api {
        operation,
        service: Service { name: service },
        response: e.error_code.as_deref().map(|error| ApiResponse { error }),
    };
    let src_endpoint = e.source_ip_address.as_deref().map(|s| {
        if s.parse::<std::net::IpAddr>().is_ok() {
            Endpoint {
                ip: Some(s),
                svc_name: None,
            }
        } else {
            Endpoint {
                ip: None,
                svc_name: Some(s),
            }
        }
    });
    let attacks = d
        .mitre
        .iter()
        .flat_map(|m| m.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|uid| {
            let known = super::attack::technique(uid);
            Attack {
                technique: Technique {
                    uid,
                    name: known.map(|(name, _, _)| name),
                    src_url: format!(
                        "https://attack.mitre.org/techniques/{}/",
                        uid.replace('.', "/")
                    ),
                },
                tactic: known.and_then(|(_, tactic, name)| {
                    let uid = super::attack::tactic_id(tactic)?;
                    Some(Tactic {
                        uid,
                        name,
                        src_url: format!("https://attack.mitre.org/tactics/{uid}/"),
                    })
                }),
                version: "v16",
            }
        })
        .collect();
    let (severity_id, severity_name) = severity(d.severity);
    let millis = |t: &str| crate::time::Timestamp::parse(t).ok().map(|t| t.0);
    let correlation = f.correlation.as_deref();
    DetectionFinding {
        activity_id: 1,
        activity_name: "Create",
        category_uid: 2,
        category_name: "Findings",
        class_uid: 2004,
        class_name: "Detection Finding",
        type_uid: 200_401,
        type_name: "Detection Finding: Create",
        severity_id,
        severity: severity_name,
        status_id: 1,
        status: "New",
        time: millis(&e.event_time).unwrap_or(0),
        count: correlation.map(|c| c.events),
        start_time: correlation.and_then(|c| millis(&c.first)),
        end_time: correlation.and_then(|c| millis(&c.last)),
        message: finding_text(f),
        metadata: Metadata {
            version: OCSF_VERSION,
            product: Product {
                name: "trailcedar",
                vendor_name: "trailcedar",
                version: env!("CARGO_PKG_VERSION"),
            },
            profiles: ["cloud"],
        },
        finding_info: FindingInfo {
            uid: match correlation {
                // One finding per group and window.
                Some(c) => format!("{}:{}:{}", d.id, e.event_id, c.start),
                None => format!("{}:{}", d.id, e.event_id),
            },
            title: &d.title,
            desc: d.description.as_deref(),
            types: [&d.id],
            analytic: Analytic {
                uid: &d.id,
                name: &d.id,
                type_id: 1,
                kind: "Rule",
            },
            attacks,
            data_sources: ["AWS CloudTrail"],
        },
        cloud: Cloud {
            provider: "AWS",
            region: e.aws_region.as_deref(),
            account: e.recipient_account_id.as_deref().map(|uid| Account {
                uid,
                type_id: 10,
                kind: "AWS Account",
            }),
        },
        api: api(),
        evidences: vec![Evidence {
            actor: Actor {
                user: User {
                    uid: &e.principal,
                    kind: &e.principal_type,
                    credential_uid: e.access_key_id.as_deref(),
                },
            },
            api: api(),
            src_endpoint,
        }],
        resources: if e.resource.is_empty() {
            Vec::new()
        } else {
            vec![Resource { uid: &e.resource }]
        },
        remediation: d.runbook.as_deref().map(|desc| Remediation { desc }),
        unmapped: Unmapped {
            event_uid: &e.event_id,
            policy: &d.policy,
            file: &f.location.file,
            record: f.location.record,
            user_agent: e.user_agent.as_deref(),
            values: &f.values,
            notes: &f.notes,
            correlation,
        },
        raw_data: f.raw.as_ref().map(|r| r.0.as_str()),
    }
}

pub(crate) struct OcsfWriter<'w> {
    pub(crate) out: Box<dyn Write + 'w>,
}

impl FindingWriter for OcsfWriter<'_> {
    fn write(&mut self, f: &Finding) -> io::Result<()> {
        self.out.write_all(&json_line(&record(f))?)?;
        self.out.write_all(b"\n")
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
