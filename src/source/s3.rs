//! S3: `s3://bucket/prefix/` becomes the objects under it, listed only as far as the time window
//! needs, and each object is read as a stream.
//!
//! Requests go through `object_store`, which signs them with the standard credential chain as
//! far as it goes (environment, web identity, container and instance roles; the AWS CLI's
//! profiles come from [`super::profile`]), finds the region, takes a custom endpoint for S3-compatible stores, and retries
//! throttling and server errors with exponential backoff. A small tokio runtime of its own runs
//! the requests; the scan's worker threads block on it, each for the object it reads, so an
//! object is read as a file is, through the same decoder, a block at a time.
//!
//! Listing follows the CloudTrail layout `AWSLogs/[o-org/]<account>/CloudTrail/<region>/Y/M/D/`:
//! with `--since` (and `--until`), the folders above a region are listed one level at a time,
//! and under each region only the day folders that may hold the window are listed, so a
//! year-long archive is not listed to read one day.

use super::{Input, InputError, Inputs, Skip, TimeRange};
use crate::time::Timestamp;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, RetryConfig};
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How to reach S3 when the environment does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// `--s3-endpoint`: an S3-compatible store's URL (else `AWS_ENDPOINT_URL_S3`,
    /// `AWS_ENDPOINT_URL`, else AWS).
    pub endpoint: Option<String>,
    /// `--s3-region` (else `AWS_REGION`, `AWS_DEFAULT_REGION`, else the bucket's own, asked of
    /// S3).
    pub region: Option<String>,
    /// An access key id and its secret, in place of the credential chain (for tests and
    /// programs that embed the library; the command line takes the environment's).
    pub credentials: Option<(String, String)>,
    /// `--s3-profile`: a profile of the AWS CLI's shared files (else `AWS_PROFILE`, else
    /// `default`; see [`super::profile`]).
    pub profile: Option<String>,
}

/// A bucket and the client that reads it.
#[derive(Debug)]
pub struct Bucket {
    pub name: String,
    store: AmazonS3,
}

/// An object to read.
#[derive(Debug, Clone)]
pub struct S3Object {
    pub bucket: Arc<Bucket>,
    pub key: String,
    /// Its size when listed.
    pub size: u64,
    /// When it was last written, as listed.
    pub modified: Timestamp,
}

impl S3Object {
    /// `s3://bucket/key`, the name shown in findings and errors.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket.name, self.key)
    }
}

impl PartialEq for S3Object {
    fn eq(&self, other: &Self) -> bool {
        self.bucket.name == other.bucket.name && self.key == other.key
    }
}

impl Eq for S3Object {}

/// `s3://bucket/prefix` split: the bucket and the prefix as a folder (`""` for the whole bucket).
pub fn parse_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then_some((bucket, prefix.trim_matches('/')))
}

/// The runtime behind every request: two threads for the connections' I/O; the futures
/// themselves are driven by the scan's worker threads that wait on them.
fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("trailcedar-s3")
                .enable_all()
                .build()
                .map_err(|e| format!("starting the S3 client: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Retries: throttling (503 SlowDown), server errors and broken connections, ten times with
/// exponential backoff from 100 ms, within three minutes; then the request fails.
fn retry() -> RetryConfig {
    RetryConfig {
        max_retries: 10,
        retry_timeout: Duration::from_secs(180),
        ..RetryConfig::default()
    }
}

fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

/// The client of one bucket.
fn connect(bucket: &str, options: &S3Options) -> Result<Arc<Bucket>, String> {
    let endpoint = options
        .endpoint
        .clone()
        .or_else(|| env(&["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]));
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry());
    let profile = match &options.credentials {
        Some(_) => None,
        None => super::profile::chosen(options.profile.as_deref())
            .map_err(|e| format!("s3://{bucket}: {e}"))?,
    };
    if let Some((id, secret)) = &options.credentials {
        builder = builder
            .with_access_key_id(id)
            .with_secret_access_key(secret);
    }
    // A profile's credentials in place of the environment's chain (whose keys would have come
    // first: `chosen` picks no profile then, unless one is named).
    match profile.as_ref().map(|p| &p.credentials) {
        Some(super::profile::Credentials::Keys {
            key_id,
            secret,
            token,
        }) => {
            builder = builder.with_credentials(Arc::new(
                object_store::StaticCredentialProvider::new(object_store::aws::AwsCredential {
                    key_id: key_id.clone(),
                    secret_key: secret.clone(),
                    token: token.clone(),
                }),
            ));
        }
        Some(super::profile::Credentials::Process(command)) => {
            builder = builder.with_credentials(Arc::new(super::profile::ProcessProvider::new(
                command.clone(),
            )));
        }
        None => {}
    }
    if let Some(endpoint) = &endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    let region = options
        .region
        .clone()
        .or_else(|| env(&["AWS_REGION", "AWS_DEFAULT_REGION"]))
        .or_else(|| profile.as_ref().and_then(|p| p.region.clone()));
    let region = match (region, &endpoint) {
        (Some(r), _) => r,
        // An S3-compatible store rarely cares; AWS's default region.
        (None, Some(_)) => "us-east-1".to_string(),
        (None, None) => runtime()?
            .block_on(object_store::aws::resolve_bucket_region(
                bucket,
                &object_store::ClientOptions::default(),
            ))
            .map_err(|e| {
                format!("s3://{bucket}: the bucket's region: {}; give it with --s3-region or AWS_REGION", reason(&e))
            })?,
    };
    let store = builder
        .with_region(region)
        .build()
        .map_err(|e| format!("s3://{bucket}: {e}"))?;
    Ok(Arc::new(Bucket {
        name: bucket.to_string(),
        store,
    }))
}

/// What went wrong with a request, in a line: the store's own words, with what a refusal means.
fn reason(e: &object_store::Error) -> String {
    let text = e.to_string().replace('\n', " ");
    match e {
        object_store::Error::NotFound { .. } => {
            "not found (deleted or moved after it was listed?)".to_string()
        }
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            format!(
                "access denied: the credentials were refused or lack s3:ListBucket/s3:GetObject ({text})"
            )
        }
        _ if text.contains("403 Forbidden")
            || text.contains("SignatureDoesNotMatch")
            || text.contains("InvalidAccessKeyId") =>
        {
            format!(
                "access denied: the credentials were refused or lack s3:ListBucket/s3:GetObject ({text})"
            )
        }
        _ => text,
    }
}

/// The buckets' clients of one resolution, one per bucket.
#[derive(Default)]
pub(crate) struct Clients {
    buckets: HashMap<String, Arc<Bucket>>,
}

impl Clients {
    fn get(&mut self, bucket: &str, options: &S3Options) -> Result<Arc<Bucket>, String> {
        if let Some(b) = self.buckets.get(bucket) {
            return Ok(b.clone());
        }
        let b = connect(bucket, options)?;
        self.buckets.insert(bucket.to_string(), b.clone());
        Ok(b)
    }
}

/// Lists the objects of `url` that `accept` takes (by key), with what the time window allows.
/// A folder that cannot be listed is an error that names it: never a silently missing day.
pub fn list(url: &str, range: &TimeRange, options: &S3Options) -> Listing {
    list_with(url, range, options, &mut Clients::default())
}

pub(crate) fn list_with(
    url: &str,
    range: &TimeRange,
    options: &S3Options,
    clients: &mut Clients,
) -> Listing {
    let mut out = Listing::default();
    let connected = parse_url(url)
        .ok_or_else(|| "not an S3 URL: expected s3://bucket/prefix/".to_string())
        .and_then(|(bucket, prefix)| Ok((clients.get(bucket, options)?, prefix, runtime()?)));
    let (bucket, prefix, rt) = match connected {
        Ok(c) => c,
        Err(reason) => {
            out.errors.push(InputError {
                path: url.to_string(),
                reason,
            });
            return out;
        }
    };
    let lister = Lister {
        bucket: &bucket,
        rt,
        range,
    };
    if range.is_bounded() {
        lister.descend(prefix, &mut out);
    } else {
        lister.all(prefix, &mut out);
    }
    // The order of a local walk of the same tree: folder by folder, names in order.
    out.objects
        .sort_by(|a, b| a.key.split('/').cmp(b.key.split('/')));
    out
}

/// What a listing found.
#[derive(Debug, Default)]
pub struct Listing {
    pub objects: Vec<S3Object>,
    pub errors: Vec<InputError>,
}

/// Windows longer than this are listed whole under each region and filtered by the day in the
/// key, rather than a request per day.
const MOST_DAYS_LISTED: i64 = 1000;

struct Lister<'a> {
    bucket: &'a Arc<Bucket>,
    rt: &'static tokio::runtime::Runtime,
    range: &'a TimeRange,
}

impl Lister<'_> {
    fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket.name)
    }

    /// Every object under `prefix`, in one paginated listing.
    fn all(&self, prefix: &str, out: &mut Listing) {
        let path = ObjectPath::from(prefix);
        let store = &self.bucket.store;
        let listed: Result<Vec<_>, _> = self.rt.block_on(async {
            let mut stream = store.list(Some(&path));
            let mut found = Vec::new();
            while let Some(meta) = stream.next().await {
                found.push(meta?);
            }
            Ok::<_, object_store::Error>(found)
        });
        match listed {
            Ok(found) => out.objects.extend(found.into_iter().map(|meta| S3Object {
                bucket: self.bucket.clone(),
                key: meta.location.to_string(),
                size: meta.size,
                modified: Timestamp(meta.last_modified.timestamp_millis()),
            })),
            Err(e) => out.errors.push(InputError {
                path: self.url(prefix),
                reason: reason(&e),
            }),
        }
    }

    /// Lists `prefix` one level at a time down to the regions of the CloudTrail layout, then
    /// only the days of the window under each.
    fn descend(&self, prefix: &str, out: &mut Listing) {
        if let Some(region_root) = region_root(prefix) {
            return self.days(region_root, prefix, out);
        }
        let path = ObjectPath::from(prefix);
        match self
            .rt
            .block_on(self.bucket.store.list_with_delimiter(Some(&path)))
        {
            Ok(level) => {
                out.objects
                    .extend(level.objects.into_iter().map(|meta| S3Object {
                        bucket: self.bucket.clone(),
                        key: meta.location.to_string(),
                        size: meta.size,
                        modified: Timestamp(meta.last_modified.timestamp_millis()),
                    }));
                for folder in level.common_prefixes {
                    let folder = folder.to_string();
                    let name = folder.rsplit('/').next().unwrap_or_default();
                    // Digests and Insights are never read: not listed either.
                    if name != "CloudTrail-Digest" && name != "CloudTrail-Insight" {
                        self.descend(&folder, out);
                    }
                }
            }
            Err(e) => out.errors.push(InputError {
                path: self.url(prefix),
                reason: reason(&e),
            }),
        }
    }

    /// Under a region's folder, the day folders the window may need (see
    /// [`TimeRange::may_hold`]), each listed whole; `prefix` may name a folder below the region.
    fn days(&self, region_root: &str, prefix: &str, out: &mut Listing) {
        let Some(since) = self.range.since else {
            return self.all(prefix, out);
        };
        let until = self
            .range
            .until
            .unwrap_or_else(|| Timestamp::now().plus_days(1));
        let first = since.start_of_day().plus_days(-1);
        let last = until.plus_days(1);
        if (last.0 - first.0) / 86_400_000 > MOST_DAYS_LISTED {
            return self.all(prefix, out);
        }
        let mut day = first;
        while day <= last {
            if self.range.may_hold(day) {
                let (y, m, d) = day.date();
                let folder = format!("{region_root}/{y:04}/{m:02}/{d:02}");
                if folder.starts_with(prefix) {
                    self.all(&folder, out);
                } else if prefix.starts_with(&folder) {
                    // The prefix names a folder inside this day.
                    self.all(prefix, out);
                }
            }
            day = day.plus_days(1);
        }
    }
}

/// `.../CloudTrail/<region>` when `prefix` is that folder or inside it.
fn region_root(prefix: &str) -> Option<&str> {
    let parts: Vec<&str> = prefix.split('/').collect();
    let at = parts.iter().position(|p| *p == "CloudTrail")?;
    parts.get(at + 1)?;
    let len: usize = parts
        .iter()
        .take(at + 2)
        .map(|p| p.len() + 1)
        .sum::<usize>()
        - 1;
    prefix.get(..len)
}

/// Resolves an `s3://` path into inputs, as [`super::resolve`] does a directory.
pub(crate) fn resolve(
    url: &str,
    range: &TimeRange,
    options: &S3Options,
    clients: &mut Clients,
    out: &mut Inputs,
) {
    let listing = list_with(url, range, options, clients);
    for object in listing.objects {
        let key = std::path::PathBuf::from(&object.key);
        if !super::is_log_name(&key) {
            out.skipped.push((object.url().into(), Skip::NotLog));
        } else {
            super::classify_input(&key, Input::Object(object), range, out);
        }
    }
    out.errors.extend(listing.errors);
}

/// Opens an object as a stream of its bytes. A failure to start (the object is gone, access is
/// denied, retries ran out) is the reason, in a line.
pub fn open(object: &S3Object) -> Result<Box<dyn io::Read + Send>, String> {
    let rt = runtime()?;
    let path = ObjectPath::from(object.key.as_str());
    let got = rt
        .block_on(object.bucket.store.get(&path))
        .map_err(|e| reason(&e))?;
    Ok(Box::new(ObjectReader {
        stream: got.into_stream(),
        chunk: Default::default(),
        rt,
    }))
}

/// An object's body as `io::Read`: one chunk of it in memory at a time.
struct ObjectReader {
    stream: futures_util::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
    rt: &'static tokio::runtime::Runtime,
}

impl io::Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rt.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(io::Error::other(reason(&e))),
            }
        }
        let n = buf.len().min(self.chunk.len());
        let head = self.chunk.split_to(n);
        buf.get_mut(..n)
            .ok_or_else(|| io::Error::other("read buffer"))?
            .copy_from_slice(&head);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(parse_url("s3://b/AWSLogs/"), Some(("b", "AWSLogs")));
        assert_eq!(parse_url("s3://b"), Some(("b", "")));
        assert_eq!(parse_url("s3:///x"), None);
        assert_eq!(parse_url("/tmp/x"), None);
    }

    #[test]
    fn region_roots() {
        assert_eq!(
            region_root("AWSLogs/o-abc/123/CloudTrail/us-east-1/2024/05"),
            Some("AWSLogs/o-abc/123/CloudTrail/us-east-1")
        );
        assert_eq!(
            region_root("x/AWSLogs/123/CloudTrail/eu-west-1"),
            Some("x/AWSLogs/123/CloudTrail/eu-west-1")
        );
        assert_eq!(region_root("AWSLogs/123/CloudTrail"), None);
        assert_eq!(region_root("AWSLogs/123"), None);
    }
}
