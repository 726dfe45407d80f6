//! Writes inputs in which every event is flagged, to measure what a scan holds in memory when
//! findings are many (README, Limits):
//!
//! ```sh
//! cargo run --example flagged_inputs -- target/flagged 8 400000
//! cargo build --release
//! /usr/bin/time -v target/release/trailcedar scan --threads 2 -q -f jsonl -o /dev/null target/flagged
//! ```
//!
//! Arguments: the directory, how many files (default 8), how many events in each (400000).
//! Each file is a CloudTrail delivery file (`{"Records": [...]}`, about 0.7 KB per event) of
//! GetCallerIdentity calls with an IAM user's long-term key, which the shipped detection
//! `sts-get-caller-identity-long-term-key` flags, each with its own event id and time.

use std::io::{BufWriter, Write};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::path::PathBuf::from(args.first().map_or("target/flagged", String::as_str));
    let number = |i: usize, default: u64| -> u64 {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
    };
    let (files, events) = (number(1, 8), number(2, 400_000));
    std::fs::create_dir_all(&dir)?;
    for f in 0..files {
        let path = dir.join(format!("flagged-{f:02}.json"));
        let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        out.write_all(b"{\"Records\":[")?;
        for e in 0..events {
            if e > 0 {
                out.write_all(b",")?;
            }
            let (minute, second) = ((e / 60) % 60, e % 60);
            write!(
                out,
                r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLE{f}","arn":"arn:aws:iam::123456789012:user/user-{f}","accountId":"123456789012","accessKeyId":"AKIAIOSFODNN7EXAMPL{f}","userName":"user-{f}"}},"eventTime":"2024-05-14T02:{minute:02}:{second:02}Z","eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity","awsRegion":"ap-northeast-1","sourceIPAddress":"198.51.100.23","userAgent":"aws-cli/2.15.30","requestParameters":null,"responseElements":null,"requestID":"{f:08}-{e:012}","eventID":"{f:08}-0000-4000-8000-{e:012}","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}}"#
            )?;
        }
        out.write_all(b"]}\n")?;
        out.flush()?;
        println!("{}", path.display());
    }
    Ok(())
}
