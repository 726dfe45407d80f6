//! A large pack for the benchmark: the embedded pack and generated detections, a third or more
//! of them without an action scope, written the way rules translated from Panther's Python or
//! Sigma's YAML are (`context.eventName`, `context.eventSource`, error presence, principal type
//! in the conditions instead of the scope), the rest scoped.

use std::io;
use std::path::Path;

/// Event names of the corpus's services and others, as the generated rules name them.
const EVENTS: &[(&str, &str)] = &[
    ("s3", "DeleteBucket"),
    ("s3", "PutBucketAcl"),
    ("s3", "PutBucketVersioning"),
    ("s3", "DeleteBucketPolicy"),
    ("s3", "PutBucketLogging"),
    ("iam", "CreateUser"),
    ("iam", "DeleteUser"),
    ("iam", "AttachUserPolicy"),
    ("iam", "DetachRolePolicy"),
    ("iam", "CreateLoginProfile"),
    ("iam", "DeactivateMFADevice"),
    ("iam", "UpdateAccessKey"),
    ("ec2", "CreateKeyPair"),
    ("ec2", "DeleteFlowLogs"),
    ("ec2", "ModifyInstanceAttribute"),
    ("ec2", "DisableEbsEncryptionByDefault"),
    ("ec2", "CreateSnapshot"),
    ("kms", "ScheduleKeyDeletion"),
    ("kms", "DisableKey"),
    ("cloudtrail", "StopLogging"),
    ("cloudtrail", "DeleteTrail"),
    ("guardduty", "DeleteDetector"),
    ("config", "StopConfigurationRecorder"),
    ("lambda", "DeleteFunction20150331"),
    ("lambda", "CreateFunction20150331"),
    ("secretsmanager", "DeleteSecret"),
    ("ssm", "DeleteParameter"),
    ("sts", "GetFederationToken"),
    ("organizations", "LeaveOrganization"),
    ("rds", "DeleteDBInstance"),
    ("logs", "DeleteLogGroup"),
    ("ecr", "DeleteRepository"),
];

fn rule(id: &str, scope: &str, condition: &str) -> String {
    format!(
        "// Generated for the benchmark.\n@id(\"{id}\")\n@title(\"{id}\")\n@severity(\"low\")\n@mitre(\"T1078\")\n@runbook(\"none\")\nforbid ({scope})\n{condition};\n"
    )
}

/// Writes the pack to `dir`: the embedded pack's files and `generated` detections (about half
/// unscoped); returns how many detections it holds.
pub fn write_large_pack(dir: &Path, generated: usize) -> io::Result<usize> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let mut count = 0;
    for (name, text) in trailcedar::embedded::POLICIES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
        count += usize::from(name.ends_with(".cedar"));
    }
    let mut text = String::new();
    for i in 0..generated {
        let (service, name) = EVENTS[i % EVENTS.len()];
        let source = format!("{service}.amazonaws.com");
        let id = format!("large-{i:03}");
        let any = "principal, action, resource";
        let scoped = format!("principal, action == Action::\"{service}:{name}\", resource");
        text.push_str(&match i % 6 {
            // Panther's shape: the event name and source in the condition.
            0 => rule(
                &id,
                any,
                &format!(
                    "when {{ context.eventName == \"{name}\" && context.eventSource == \"{source}\" }}\nunless {{ context has errorCode }}"
                ),
            ),
            // A list of names, failed calls included.
            1 => rule(
                &id,
                any,
                &format!(
                    "when {{ [\"{name}\", \"{}\"].contains(context.eventName) }}",
                    EVENTS[(i + 7) % EVENTS.len()].1
                ),
            ),
            // A denied call of a kind, by any principal.
            2 => rule(
                &id,
                any,
                &format!(
                    "when {{ context has errorCode && [\"AccessDenied\", \"UnauthorizedOperation\"].contains(context.errorCode) && context.eventSource == \"{source}\" && context.eventName == \"{name}\" }}"
                ),
            ),
            // The root user's calls of a kind, or a tool's user agent: read on every event.
            3 if i % 12 == 3 => rule(
                &id,
                any,
                &format!("when {{ principal is Root && context.eventName like \"{}*\" }}", &name[..3]),
            ),
            3 => rule(
                &id,
                any,
                "when { context has userAgent && (context.userAgent like \"*sqlmap*\" || context.userAgent like \"*kali*\") }",
            ),
            // Scoped rules with conditions on the principal and the call.
            4 => rule(
                &id,
                &scoped,
                "when { principal.longTermKey || (principal has userName && principal.userName like \"*admin*\") }\nunless { context has errorCode }",
            ),
            _ => rule(
                &id,
                &scoped,
                "when { !context.sourceInAws && context has userAgent && !(context.userAgent like \"*terraform*\") }",
            ),
        });
        count += 1;
    }
    std::fs::write(dir.join("generated.cedar"), text)?;
    Ok(count)
}
