//! The AWS CLI's profiles, for reading S3: `~/.aws/credentials` and `~/.aws/config` (or the files
//! `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE` name), which `object_store`'s credential
//! chain does not read.
//!
//! A profile is chosen by `--s3-profile`, else `AWS_PROFILE`, else `default` when the files have
//! one; access keys in the environment (`AWS_ACCESS_KEY_ID`) come before any profile, as in the
//! AWS SDKs. What a profile gives:
//! - **access keys** (`aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`): used as
//!   they are;
//! - **`credential_process`**: the command is run (by the shell) and its JSON output
//!   (`Version` 1, `AccessKeyId`, `SecretAccessKey`, `SessionToken`, `Expiration`) used until
//!   five minutes before it expires, then run again;
//! - **IAM Identity Center (SSO), an assumed role, web identity**, which need AWS's own token
//!   exchanges: the AWS CLI is asked (`aws configure export-credentials --profile NAME --format
//!   process`, the CLI's own credential process), so whatever the CLI resolves and refreshes
//!   (`aws sso login` once) is what a scan uses.
//!
//! The profile's `region` is the buckets' region when neither `--s3-region` nor `AWS_REGION`
//! says one.

use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// What a profile gives to sign requests with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Keys {
        key_id: String,
        secret: String,
        token: Option<String>,
    },
    /// A command whose output is the credentials (`credential_process`, or the AWS CLI's).
    Process(String),
}

/// A profile as the shared files define it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub credentials: Credentials,
    pub region: Option<String>,
}

/// The sections of an INI file of the AWS CLI: name, then its `key = value` settings (nested
/// settings, indented under a key, are skipped).
fn sections(text: &str, config: bool) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(header) = trimmed.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            let header = header.trim();
            // In the config file a profile is `[profile NAME]`, except `[default]`; other
            // sections (`[sso-session x]`, `[services x]`) are not profiles.
            current = if !config {
                Some(header.to_string())
            } else if header == "default" {
                Some("default".to_string())
            } else {
                header
                    .strip_prefix("profile ")
                    .map(|n| n.trim().to_string())
            };
            if let Some(name) = &current {
                out.entry(name.clone()).or_default();
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let (Some(name), Some((key, value))) = (&current, trimmed.split_once('=')) else {
            continue;
        };
        if let Some(section) = out.get_mut(name) {
            section.insert(key.trim().to_lowercase(), value.trim().to_string());
        }
    }
    out
}

/// The profile `name` of the shared files' texts; `None` when neither file has it.
pub fn resolve(
    name: &str,
    credentials_file: Option<&str>,
    config_file: Option<&str>,
) -> Result<Option<Profile>, String> {
    let creds = credentials_file
        .map(|t| sections(t, false))
        .unwrap_or_default();
    let config = config_file.map(|t| sections(t, true)).unwrap_or_default();
    if !creds.contains_key(name) && !config.contains_key(name) {
        return Ok(None);
    }
    // The credentials file's settings come before the config file's.
    let mut settings = config.get(name).cloned().unwrap_or_default();
    settings.extend(creds.get(name).cloned().unwrap_or_default());
    let get = |k: &str| settings.get(k).filter(|v| !v.is_empty()).cloned();
    let credentials = match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(key_id), Some(secret)) => Credentials::Keys {
            key_id,
            secret,
            token: get("aws_session_token"),
        },
        _ => match get("credential_process") {
            Some(command) => Credentials::Process(command),
            None if [
                "sso_session",
                "sso_start_url",
                "role_arn",
                "web_identity_token_file",
                "source_profile",
            ]
            .iter()
            .any(|k| get(k).is_some()) =>
            {
                Credentials::Process(format!(
                    "aws configure export-credentials --profile {} --format process",
                    shell_quote(name)
                ))
            }
            None => {
                return Err(format!(
                    "AWS profile {name:?} has no credentials (access keys, credential_process, \
                     SSO or a role to assume)"
                ));
            }
        },
    };
    Ok(Some(Profile {
        name: name.to_string(),
        credentials,
        region: get("region"),
    }))
}

/// A word for `sh -c`, quoted.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The shared files' paths: the environment's, else `~/.aws/`.
fn files() -> (Option<PathBuf>, Option<PathBuf>) {
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from);
    let path = |var: &str, file: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(file)))
    };
    (
        path("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        path("AWS_CONFIG_FILE", "config"),
    )
}

/// The profile a scan signs S3 requests with: `named` (`--s3-profile`), else `AWS_PROFILE`,
/// else `default` if the files have it; none when the environment holds access keys (they come
/// first) or no profile applies (`object_store`'s chain then: web identity, container and
/// instance roles). A named profile the files do not have is an error.
pub fn chosen(named: Option<&str>) -> Result<Option<Profile>, String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if named.is_none() && env("AWS_ACCESS_KEY_ID").is_some() {
        return Ok(None);
    }
    let explicit = named.map(str::to_string).or_else(|| env("AWS_PROFILE"));
    let name = explicit.clone().unwrap_or_else(|| "default".to_string());
    let (creds, config) = files();
    let read = |p: &Option<PathBuf>| p.as_ref().and_then(|p| std::fs::read_to_string(p).ok());
    match resolve(&name, read(&creds).as_deref(), read(&config).as_deref())? {
        Some(p) => Ok(Some(p)),
        None if explicit.is_some() => Err(format!(
            "AWS profile {name:?} is in neither {} nor {}",
            creds.map_or_else(|| "~/.aws/credentials".into(), |p| p.display().to_string()),
            config.map_or_else(|| "~/.aws/config".into(), |p| p.display().to_string())
        )),
        None => Ok(None),
    }
}

/// Credentials a command prints, run again five minutes before they expire.
#[derive(Debug)]
pub struct ProcessProvider {
    command: String,
    cached: Mutex<Option<(Arc<object_store::aws::AwsCredential>, Option<Timestamp>)>>,
}

impl ProcessProvider {
    pub fn new(command: String) -> ProcessProvider {
        ProcessProvider {
            command,
            cached: Mutex::new(None),
        }
    }

    /// Runs the command and reads its output (the `credential_process` format).
    pub fn run(
        &self,
    ) -> Result<(Arc<object_store::aws::AwsCredential>, Option<Timestamp>), String> {
        #[cfg(windows)]
        let output = std::process::Command::new("cmd")
            .args(["/C", &self.command])
            .output();
        #[cfg(not(windows))]
        let output = std::process::Command::new("sh")
            .args(["-c", &self.command])
            .output();
        let output = output.map_err(|e| format!("credential process `{}`: {e}", self.command))?;
        if !output.status.success() {
            let err = String::from_utf8_lossy(&output.stderr);
            return Err(format!(
                "credential process `{}` failed ({}): {}",
                self.command,
                output.status,
                crate::text::truncate(err.trim(), 400)
            ));
        }
        parse_process_output(&output.stdout)
            .map_err(|e| format!("credential process `{}`: {e}", self.command))
    }
}

/// The JSON a credential process prints.
pub fn parse_process_output(
    out: &[u8],
) -> Result<(Arc<object_store::aws::AwsCredential>, Option<Timestamp>), String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Output {
        version: u32,
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
        expiration: Option<String>,
    }
    let o: Output =
        serde_json::from_slice(out).map_err(|e| format!("its output is not credentials: {e}"))?;
    if o.version != 1 {
        return Err(format!("its output is version {}, not 1", o.version));
    }
    let expires = match &o.expiration {
        Some(t) => Some(Timestamp::parse(t).map_err(|e| format!("Expiration {t:?}: {e}"))?),
        None => None,
    };
    Ok((
        Arc::new(object_store::aws::AwsCredential {
            key_id: o.access_key_id,
            secret_key: o.secret_access_key,
            token: o.session_token.filter(|t| !t.is_empty()),
        }),
        expires,
    ))
}

#[async_trait::async_trait]
impl object_store::CredentialProvider for ProcessProvider {
    type Credential = object_store::aws::AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<Self::Credential>> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((credential, expires)) = cached.as_ref()
            && expires.is_none_or(|t| t.0 - 5 * 60_000 > now)
        {
            return Ok(credential.clone());
        }
        let (credential, expires) = self.run().map_err(|e| object_store::Error::Generic {
            store: "S3",
            source: e.into(),
        })?;
        *cached = Some((credential.clone(), expires));
        Ok(credential)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDENTIALS: &str = "
# keys
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = s3cr3t

[ci]
aws_access_key_id=AKIACI
aws_secret_access_key=ci-secret
aws_session_token = tok
";

    const CONFIG: &str = "
[default]
region = ap-northeast-1

[profile ci]
region = us-west-2
s3 =
  max_concurrent_requests = 20

[profile vault]
credential_process = /usr/local/bin/vault-aws --role audit

[profile sso-audit]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = SecurityAudit
region = eu-west-1

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start

[profile empty]
region = us-east-1
";

    #[test]
    fn a_profile_is_read_from_both_files() {
        let p = |n| resolve(n, Some(CREDENTIALS), Some(CONFIG));
        assert_eq!(
            p("default").unwrap(),
            Some(Profile {
                name: "default".into(),
                credentials: Credentials::Keys {
                    key_id: "AKIADEFAULT".into(),
                    secret: "s3cr3t".into(),
                    token: None
                },
                region: Some("ap-northeast-1".into()),
            })
        );
        let ci = p("ci").unwrap().unwrap();
        assert_eq!(
            ci.region.as_deref(),
            Some("us-west-2"),
            "nested settings skipped"
        );
        assert!(
            matches!(ci.credentials, Credentials::Keys { token: Some(ref t), .. } if t == "tok")
        );
        assert_eq!(
            p("vault").unwrap().unwrap().credentials,
            Credentials::Process("/usr/local/bin/vault-aws --role audit".into())
        );
        let sso = p("sso-audit").unwrap().unwrap();
        assert_eq!(
            sso.credentials,
            Credentials::Process(
                "aws configure export-credentials --profile 'sso-audit' --format process".into()
            )
        );
        assert_eq!(p("corp").unwrap(), None, "an sso-session is no profile");
        assert_eq!(p("nowhere").unwrap(), None);
        assert!(p("empty").unwrap_err().contains("no credentials"));
    }

    #[test]
    fn a_process_output_is_read_or_refused() {
        let (c, exp) = parse_process_output(
            br#"{"Version":1,"AccessKeyId":"ASIAX","SecretAccessKey":"s","SessionToken":"t","Expiration":"2026-12-05T10:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(
            (c.key_id.as_str(), c.token.as_deref()),
            ("ASIAX", Some("t"))
        );
        assert_eq!(
            exp.map(|t| t.to_string()).as_deref(),
            Some("2026-12-05T10:00:00Z")
        );
        assert!(
            parse_process_output(br#"{"Version":2,"AccessKeyId":"a","SecretAccessKey":"s"}"#)
                .is_err()
        );
        assert!(parse_process_output(b"Error: not logged in").is_err());
    }

    #[test]
    fn a_profile_name_is_quoted_for_the_shell() {
        assert_eq!(shell_quote("a'b; rm"), r"'a'\''b; rm'");
    }
}
