//! `s3://` inputs, against a real S3 implementation (s3s with its file-system backend) that each
//! test serves itself on the loopback, over a temporary directory: a bucket is a folder, an
//! object a file. Requests are signed and checked (SigV4) like AWS's.

use crate::cli::trailcedar;
use crate::support::{self, shipped};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use trailcedar::scan::{self, ScanOptions};
use trailcedar::source::s3::S3Options;
use trailcedar::source::{self, Input, TimeRange};

const KEY_ID: &str = "AKIATRAILCEDARTEST01";
const SECRET: &str = "trailcedar-test-secret";

/// What the server saw and does.
#[derive(Default)]
struct Log {
    /// Request targets, in order (`GET /bucket?list-type=2&prefix=...`).
    requests: Mutex<Vec<String>>,
    /// How many more object reads to answer with 503 SlowDown.
    throttle: AtomicUsize,
    throttled: AtomicUsize,
}

/// An S3 server on 127.0.0.1, serving the folder `root` (its folders are buckets) until dropped.
struct Server {
    endpoint: String,
    log: Arc<Log>,
    runtime: Option<tokio::runtime::Runtime>,
    root: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[derive(Clone)]
struct Service {
    inner: s3s::service::S3Service,
    log: Arc<Log>,
}

const SLOW_DOWN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>1</RequestId></Error>";

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for Service {
    type Response = s3s::HttpResponse;
    type Error = s3s::HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, req: http::Request<hyper::body::Incoming>) -> Self::Future {
        let target = format!("{} {}", req.method(), req.uri());
        self.log.requests.lock().unwrap().push(target);
        let object_read = req.method() == http::Method::GET && req.uri().query().is_none();
        if object_read
            && self
                .log
                .throttle
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            self.log.throttled.fetch_add(1, Ordering::SeqCst);
            let response = http::Response::builder()
                .status(503)
                .header("content-type", "application/xml")
                .body(s3s::Body::from(SLOW_DOWN.to_string()))
                .unwrap();
            return Box::pin(async move { Ok(response) });
        }
        hyper::service::Service::call(&self.inner, req)
    }
}

impl Server {
    fn start() -> Server {
        let root = tempfile::tempdir().unwrap();
        let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(KEY_ID, SECRET));
        let log = Arc::new(Log::default());
        let service = Service {
            inner: builder.build(),
            log: log.clone(),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Server {
            endpoint,
            log,
            runtime: Some(runtime),
            root,
        }
    }

    /// The folder of `bucket`, created.
    fn bucket(&self, bucket: &str) -> PathBuf {
        let dir = self.root.path().join(bucket);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn options(&self) -> S3Options {
        S3Options {
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".to_string()),
            credentials: Some((KEY_ID.to_string(), SECRET.to_string())),
            profile: None,
        }
    }

    /// The command line, with the server's endpoint and the given secret in its environment
    /// (and nothing of the machine's AWS settings).
    fn command(&self, secret: &str, args: &[&str]) -> (i32, String, String) {
        let env = [
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_REGION", "us-east-1"),
        ];
        self.command_with(&env, args)
    }

    /// The command line with the server's endpoint and, of the AWS settings, only `env` (a
    /// profile's files instead of keys, say, through `HOME`).
    fn command_with(&self, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_trailcedar"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(name);
            }
        }
        let out = cmd
            .args(args)
            .args(["--s3-endpoint", &self.endpoint, "--no-progress"])
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn requests(&self) -> Vec<String> {
        self.log.requests.lock().unwrap().clone()
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// JSON lines of findings with the inputs' names (of the finding, and of the events a finding
/// over many events shows) made relative to `prefix`.
fn relative(jsonl: &str, prefix: &str) -> Vec<String> {
    jsonl
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let file = v["location"]["file"].as_str().unwrap();
            assert!(file.starts_with(prefix), "{file} is not under {prefix}");
            line.replace(&format!("\"{prefix}"), "\"")
        })
        .collect()
}

#[test]
fn a_bucket_gives_the_findings_of_its_local_copy_in_the_same_order() {
    let server = Server::start();
    copy_tree(Path::new("fixtures/archive"), &server.bucket("trails"));
    let (code, local, local_err) = crate::cli::archive_jsonl();
    assert_eq!(*code, 1);
    let inputs = |err: &str| {
        err.lines()
            .find_map(|l| {
                l.split(", ")
                    .nth(1)?
                    .strip_suffix(" input(s)")
                    .map(str::to_string)
            })
            .expect("the count of inputs")
    };
    for window in [
        &[][..],
        &["--since", "2024-05-14", "--until", "2024-05-14"][..],
    ] {
        let mut args = vec!["scan", "s3://trails/", "-f", "jsonl"];
        args.extend(window);
        let (code, remote, err) = server.command(SECRET, &args);
        assert_eq!(code, 1, "{err}");
        assert_eq!(
            relative(&remote, "s3://trails/"),
            relative(local, "fixtures/archive/"),
            "{window:?}"
        );
        assert_eq!(inputs(&err), inputs(local_err), "{err}");
        assert!(!err.contains("unreadable"), "{err}");
    }
}

#[test]
fn only_the_days_of_the_window_are_listed_across_accounts_regions_and_organizations() {
    let server = Server::start();
    let bucket = server.bucket("org-trail");
    let event = std::fs::read_to_string("fixtures/events/s3/public_canned_acl.flag.json").unwrap();
    let prefixes = [
        "AWSLogs/111111111111/CloudTrail",
        "AWSLogs/o-abc123def4/222222222222/CloudTrail",
        "AWSLogs/o-abc123def4/333333333333/CloudTrail",
    ];
    let mut written = 0;
    for prefix in prefixes {
        for region in ["us-east-1", "eu-west-1", "ap-northeast-1"] {
            for day in 1..=31 {
                for hour in [3, 9, 15, 21] {
                    let dir = bucket.join(format!("{prefix}/{region}/2024/05/{day:02}"));
                    let name = format!("x_CloudTrail_{region}_202405{day:02}T{hour:02}05Z_A.json");
                    support::write(&dir, &name, event.as_bytes());
                    written += 1;
                }
            }
        }
    }
    // Digests beside them are never listed.
    support::write(
        &bucket.join("AWSLogs/111111111111/CloudTrail-Digest/us-east-1/2024/05/14"),
        "d.json.gz",
        b"{}",
    );
    assert!(written > 1000, "more than one page of a listing");

    let all = source::resolve_with(
        &[PathBuf::from("s3://org-trail/AWSLogs/")],
        &TimeRange::default(),
        &server.options(),
    );
    assert!(all.errors.is_empty(), "{:?}", all.errors);
    assert_eq!(all.inputs.len(), written);

    let before = server.requests().len();
    let day = TimeRange {
        since: trailcedar::time::Timestamp::from_date(2024, 5, 14),
        until: trailcedar::time::Timestamp::from_date(2024, 5, 15),
    };
    let one_day =
        source::resolve_with(&[PathBuf::from("s3://org-trail/")], &day, &server.options());
    assert!(one_day.errors.is_empty(), "{:?}", one_day.errors);
    // The day, and the day after it (events of the 14th delivered after midnight): 4 files a
    // day, 9 account-regions.
    assert_eq!(one_day.inputs.len(), 2 * 4 * 9);
    let names: Vec<String> = one_day.inputs.iter().map(Input::display_name).collect();
    assert!(
        names
            .iter()
            .all(|n| n.contains("/2024/05/14/") || n.contains("/2024/05/15/")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.contains("/o-abc123def4/333333333333/CloudTrail/ap-northeast-1/"))
    );
    let listed: Vec<String> = server.requests()[before..].to_vec();
    assert!(
        listed
            .iter()
            .all(|r| !r.contains("2024%2F05%2F20") && !r.contains("2024/05/20")),
        "a day outside the window was listed: {listed:#?}"
    );
    assert!(listed.iter().all(|r| !r.contains("Digest")), "{listed:#?}");
    assert!(
        listed.len() < 60,
        "{} requests to list one day",
        listed.len()
    );

    // The findings of the day are those of the local copy of the same objects.
    let engine = shipped();
    let opts = ScanOptions {
        range: day,
        ..ScanOptions::default()
    };
    let mut remote = Vec::new();
    let summary = scan::run(engine, &one_day, &opts, &(), &mut |f| {
        remote.push(f);
        Ok(())
    })
    .unwrap();
    assert!(!summary.has_errors(), "{}", summary.render());
    let (local, _) = support::scan_paths(engine, std::slice::from_ref(&bucket), &opts);
    assert!(!local.is_empty());
    assert_eq!(support::render(&remote), support::render(&local));
}

#[test]
fn a_large_object_streams_through() {
    use std::io::Write;
    let server = Server::start();
    let dir = server
        .bucket("big")
        .join("AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/14");
    std::fs::create_dir_all(&dir).unwrap();
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("fixtures/events/s3/public_canned_acl.flag.json").unwrap(),
    )
    .unwrap();
    let event = fixture["Records"][0].to_string();
    let records: u64 = 40_000;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"{\"Records\": [").unwrap();
    for i in 0..records {
        if i > 0 {
            gz.write_all(b",").unwrap();
        }
        gz.write_all(event.as_bytes()).unwrap();
    }
    gz.write_all(b"]}").unwrap();
    let bytes = gz.finish().unwrap();
    let path = support::write(&dir, "big.json.gz", &bytes);
    let inputs = source::resolve_with(
        &[PathBuf::from("s3://big/")],
        &TimeRange::default(),
        &server.options(),
    );
    assert_eq!(inputs.inputs.len(), 1);
    // Decoded and counted (evaluating 40,000 events takes a debug build minutes; the findings
    // of objects are compared with files' in the tests above).
    let opts = ScanOptions {
        evaluate: false,
        ..ScanOptions::default()
    };
    let engine = shipped();
    let remote = scan::scan_file(engine, &inputs.inputs[0], &opts);
    let local = scan::scan_file(engine, &Input::File(path), &opts);
    assert!(
        remote.summary.unreadable.is_empty(),
        "{:?}",
        remote.summary.unreadable
    );
    assert_eq!(remote.summary.events_read, records);
    assert_eq!(remote.summary.events_evaluated, records);
    assert_eq!(remote.summary.bytes_read, local.summary.bytes_read);
    assert!(
        remote.summary.bytes_read > 48 << 20,
        "{}",
        remote.summary.bytes_read
    );
    assert!(bytes.len() > 1 << 20, "{} bytes of gzip", bytes.len());
}

#[test]
fn an_object_deleted_between_list_and_get_is_reported_by_name() {
    let server = Server::start();
    copy_tree(Path::new("fixtures/archive"), &server.bucket("trails"));
    let inputs = source::resolve_with(
        &[PathBuf::from("s3://trails/AWSLogs/")],
        &TimeRange::default(),
        &server.options(),
    );
    let gone = inputs.inputs[3].display_name();
    let key = gone.strip_prefix("s3://trails/").unwrap();
    std::fs::remove_file(server.root.path().join("trails").join(key)).unwrap();
    let mut findings = 0;
    let summary = scan::run(
        shipped(),
        &inputs,
        &ScanOptions::default(),
        &(),
        &mut |_| {
            findings += 1;
            Ok(())
        },
    )
    .unwrap();
    assert!(summary.has_errors());
    assert_eq!(summary.unreadable.len(), 1, "{:?}", summary.unreadable);
    let problem = &summary.unreadable[0];
    let text = format!("{problem:?}");
    assert!(text.contains(&gone) && text.contains("not found"), "{text}");
    assert!(findings > 0, "the other objects were read");
    assert!(summary.render().contains(&gone), "{}", summary.render());
}

#[test]
fn wrong_credentials_are_a_clear_error_and_exit_2() {
    let server = Server::start();
    copy_tree(Path::new("fixtures/archive"), &server.bucket("trails"));
    let (code, out, err) = server.command("not-the-secret", &["scan", "s3://trails/AWSLogs/"]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("s3://trails/AWSLogs"), "{err}");
    assert!(err.contains("access denied"), "{err}");
    let (code, _, err) = server.command(
        "not-the-secret",
        &[
            "scan",
            "fixtures/archive",
            "--inventory",
            "s3://trails/inventory/",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("s3://trails/inventory"), "{err}");
}

#[test]
fn throttling_is_retried_to_success() {
    let server = Server::start();
    copy_tree(Path::new("fixtures/archive"), &server.bucket("trails"));
    copy_tree(Path::new("fixtures/inventory"), &server.bucket("facts"));
    // Inventory reads and object reads alike are throttled, then retried.
    server.log.throttle.store(4, Ordering::SeqCst);
    let region = "AWSLogs/123456789012/CloudTrail/us-east-1/";
    let (code, remote, err) = server.command(
        SECRET,
        &[
            "scan",
            &format!("s3://trails/{region}"),
            "--inventory",
            "s3://facts/",
            "-f",
            "jsonl",
            "--threads",
            "1",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(server.log.throttled.load(Ordering::SeqCst), 4);
    let (_, local, _) = trailcedar(
        &[
            "scan",
            &format!("fixtures/archive/{region}"),
            "--inventory",
            "fixtures/inventory",
            "-f",
            "jsonl",
        ],
        None,
    );
    assert!(!local.is_empty());
    assert_eq!(
        relative(&remote, "s3://trails/"),
        relative(&local, "fixtures/archive/")
    );
}

#[test]
fn aws_cli_profiles_sign_requests_with_keys_or_a_credential_process() {
    let server = Server::start();
    copy_tree(Path::new("fixtures/archive"), &server.bucket("trails"));
    let home = tempfile::tempdir().unwrap();
    let home_dir = home.path().to_str().unwrap();
    let aws = home.path().join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    // The process prints the server's keys as the AWS CLI's `credential_process` format.
    let process = home.path().join("creds.sh");
    std::fs::write(
        &process,
        format!(
            "#!/bin/sh\nprintf '{{\"Version\":1,\"AccessKeyId\":\"{KEY_ID}\",\"SecretAccessKey\":\"{SECRET}\",\"Expiration\":\"2999-01-01T00:00:00Z\"}}'\n"
        ),
    )
    .unwrap();
    std::fs::write(
        aws.join("credentials"),
        format!("[audit]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n\n[stale]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = wrong\n"),
    )
    .unwrap();
    std::fs::write(
        aws.join("config"),
        format!(
            "[profile audit]\nregion = us-east-1\n\n[profile vault]\nregion = us-east-1\ncredential_process = sh {}\n\n[profile broken]\nregion = us-east-1\ncredential_process = sh -c 'echo not logged in >&2; exit 3'\n",
            process.display()
        ),
    )
    .unwrap();
    let (_, local, _) = crate::cli::archive_jsonl();
    let scan = ["scan", "s3://trails/", "-f", "jsonl"];
    // AWS_PROFILE, then --s3-profile: the same findings as the local copy.
    let (code, out, err) =
        server.command_with(&[("HOME", home_dir), ("AWS_PROFILE", "audit")], &scan);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        relative(&out, "s3://trails/"),
        relative(local, "fixtures/archive/")
    );
    let mut args = scan.to_vec();
    args.extend(["--s3-profile", "vault"]);
    let (code, out, err) = server.command_with(&[("HOME", home_dir)], &args);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        relative(&out, "s3://trails/"),
        relative(local, "fixtures/archive/")
    );
    // Wrong keys, a failing process, a profile no file has: errors that say which, exit 2.
    for (profile, says) in [
        ("stale", "access denied"),
        ("broken", "not logged in"),
        ("nowhere", "\"nowhere\" is in neither"),
    ] {
        let (code, out, err) =
            server.command_with(&[("HOME", home_dir), ("AWS_PROFILE", profile)], &scan);
        assert_eq!(code, 2, "{profile}: {err}");
        assert!(out.is_empty(), "{out}");
        assert!(err.contains(says), "{profile}: {err}");
    }
}
