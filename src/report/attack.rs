//! MITRE ATT&CK as detections name it (`@mitre("T1552.005")`): the tactics, and the techniques
//! AWS detections use, each under the one tactic a CloudTrail detection of it serves. `list`
//! shows them; OCSF findings carry a technique with its tactic.

/// The ATT&CK tactics, in the order of the enterprise matrix.
pub const TACTICS: &[(&str, &str)] = &[
    ("initial-access", "Initial Access"),
    ("execution", "Execution"),
    ("persistence", "Persistence"),
    ("privilege-escalation", "Privilege Escalation"),
    ("defense-evasion", "Defense Evasion"),
    ("credential-access", "Credential Access"),
    ("discovery", "Discovery"),
    ("lateral-movement", "Lateral Movement"),
    ("collection", "Collection"),
    ("exfiltration", "Exfiltration"),
    ("impact", "Impact"),
];

/// The ATT&CK techniques AWS detections use (ATT&CK v16): id, name, and the tactic a
/// CloudTrail detection of it serves.
pub const TECHNIQUES: &[(&str, &str, &str)] = &[
    (
        "T1021.008",
        "Remote Services: Direct Cloud VM Connections",
        "lateral-movement",
    ),
    (
        "T1059.009",
        "Command and Scripting Interpreter: Cloud API",
        "execution",
    ),
    ("T1078", "Valid Accounts", "initial-access"),
    (
        "T1078.004",
        "Valid Accounts: Cloud Accounts",
        "initial-access",
    ),
    ("T1087.004", "Account Discovery: Cloud Account", "discovery"),
    ("T1098", "Account Manipulation", "persistence"),
    (
        "T1098.001",
        "Account Manipulation: Additional Cloud Credentials",
        "persistence",
    ),
    (
        "T1098.003",
        "Account Manipulation: Additional Cloud Roles",
        "persistence",
    ),
    ("T1110", "Brute Force", "credential-access"),
    (
        "T1110.003",
        "Brute Force: Password Spraying",
        "credential-access",
    ),
    ("T1136.003", "Create Account: Cloud Account", "persistence"),
    ("T1485", "Data Destruction", "impact"),
    ("T1486", "Data Encrypted for Impact", "impact"),
    (
        "T1496.001",
        "Resource Hijacking: Compute Hijacking",
        "impact",
    ),
    (
        "T1496.004",
        "Resource Hijacking: Cloud Service Hijacking",
        "impact",
    ),
    ("T1530", "Data from Cloud Storage", "collection"),
    ("T1537", "Transfer Data to Cloud Account", "exfiltration"),
    ("T1546", "Event Triggered Execution", "persistence"),
    ("T1552", "Unsecured Credentials", "credential-access"),
    (
        "T1552.001",
        "Unsecured Credentials: Credentials In Files",
        "credential-access",
    ),
    (
        "T1552.005",
        "Unsecured Credentials: Cloud Instance Metadata API",
        "credential-access",
    ),
    (
        "T1555.006",
        "Credentials from Password Stores: Cloud Secrets Management Stores",
        "credential-access",
    ),
    (
        "T1562.001",
        "Impair Defenses: Disable or Modify Tools",
        "defense-evasion",
    ),
    (
        "T1562.007",
        "Impair Defenses: Disable or Modify Cloud Firewall",
        "defense-evasion",
    ),
    (
        "T1562.008",
        "Impair Defenses: Disable or Modify Cloud Logs",
        "defense-evasion",
    ),
    (
        "T1578.002",
        "Modify Cloud Compute Infrastructure: Create Cloud Instance",
        "defense-evasion",
    ),
    ("T1526", "Cloud Service Discovery", "discovery"),
    ("T1580", "Cloud Infrastructure Discovery", "discovery"),
    ("T1619", "Cloud Storage Object Discovery", "discovery"),
    ("T1651", "Cloud Administration Command", "execution"),
    (
        "T1666",
        "Modify Cloud Resource Hierarchy",
        "defense-evasion",
    ),
];

/// The ATT&CK id of a tactic: `credential-access` is `TA0006`.
pub fn tactic_id(tactic: &str) -> Option<&'static str> {
    Some(match tactic {
        "initial-access" => "TA0001",
        "execution" => "TA0002",
        "persistence" => "TA0003",
        "privilege-escalation" => "TA0004",
        "defense-evasion" => "TA0005",
        "credential-access" => "TA0006",
        "discovery" => "TA0007",
        "lateral-movement" => "TA0008",
        "collection" => "TA0009",
        "exfiltration" => "TA0010",
        "impact" => "TA0040",
        _ => return None,
    })
}

/// A technique's name and the tactic (id as in [`TACTICS`], and name) it is listed under.
pub fn technique(id: &str) -> Option<(&'static str, &'static str, &'static str)> {
    let (_, name, tactic) = TECHNIQUES.iter().find(|(t, _, _)| *t == id)?;
    let (_, tactic_name) = TACTICS.iter().find(|(t, _)| t == tactic)?;
    Some((name, tactic, tactic_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tactic_has_its_attack_id() {
        for (tactic, _) in TACTICS {
            assert!(
                tactic_id(tactic).is_some_and(|id| id.starts_with("TA")),
                "{tactic}"
            );
        }
        assert_eq!(
            technique("T1552.001"),
            Some((
                "Unsecured Credentials: Credentials In Files",
                "credential-access",
                "Credential Access"
            ))
        );
    }
}
