//! `--shard K/N`: a deterministic part of the inputs, so that N workers of an array job
//! (AWS Batch, a Kubernetes Indexed Job, Slurm, `xargs -P`) share one archive without talking
//! to each other.
//!
//! Inputs are dealt out by account and region, read from the S3 layout of their path or key
//! (`AWSLogs/[o-org/]<account>/CloudTrail/<region>/`): every file of one account and region goes
//! to the same worker, whichever prefix or folder each worker was given, so what a detection or
//! a correlation sees within one account and region is the same as in one run. With
//! [`ShardBy::Account`], by account alone: a principal's activity across regions stays together,
//! for fewer, larger parts. An input outside the layout is dealt out by its whole name. Every
//! worker resolves the same paths and keeps its part: the parts are disjoint, and together they
//! are every input.

use super::{Input, Inputs};
use std::path::Path;

/// Part `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
    pub by: ShardBy,
}

/// What stays together in one part (`--shard-by`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ShardBy {
    /// An account's files in one region.
    #[default]
    Region,
    /// An account's files in every region.
    Account,
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `K/N`, 1-based: `1/4` to `4/4`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?}: expected K/N with 1 <= K <= N, such as 1/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: u32 = k.trim().parse().map_err(|_| bad())?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        if k == 0 || n == 0 || k > n {
            return Err(bad());
        }
        Ok(Shard {
            index: k - 1,
            count: n,
            by: ShardBy::default(),
        })
    }
}

impl Shard {
    /// Whether this part holds `input`.
    pub fn holds(&self, input: &Input) -> bool {
        stable_hash(&key(input, self.by)) % u64::from(self.count) == u64::from(self.index)
    }

    /// Keeps only this part's inputs. Skipped files and listing errors stay: each worker
    /// reports what it could not list.
    pub fn apply(&self, inputs: &mut Inputs) {
        inputs.inputs.retain(|i| self.holds(i));
    }
}

/// What an input is dealt out by: `account/region` (or `account`) in the S3 layout, else its
/// name.
pub fn key(input: &Input, by: ShardBy) -> String {
    let name = match input {
        Input::File(p) => p.to_string_lossy().into_owned(),
        Input::Object(o) => o.key.clone(),
        Input::Stdin => return "-".to_string(),
    };
    match super::s3_account_region(Path::new(&name)) {
        Some((account, region)) if by == ShardBy::Region => format!("{account}/{region}"),
        Some((account, _)) => account.to_string(),
        None => name,
    }
}

/// FNV-1a, 64 bits: the same on every machine and in every version, which a worker of another
/// build must agree on (std's hashers promise neither).
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn parses_k_of_n() {
        assert_eq!(
            "2/5".parse::<Shard>(),
            Ok(Shard {
                index: 1,
                count: 5,
                by: ShardBy::Region
            })
        );
        for bad in ["0/3", "4/3", "1", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_account_and_region_stay_together_and_every_input_has_one_part() {
        let file = |p: &str| Input::File(PathBuf::from(p));
        let a = file("x/AWSLogs/111111111111/CloudTrail/us-east-1/2024/05/14/a.json.gz");
        let b = file("y/AWSLogs/o-org/111111111111/CloudTrail/us-east-1/2024/05/15/b.json.gz");
        let c = file("AWSLogs/111111111111/CloudTrail/eu-west-1/2024/05/14/c.json.gz");
        assert_eq!(key(&a, ShardBy::Region), "111111111111/us-east-1");
        assert_eq!(key(&a, ShardBy::Region), key(&b, ShardBy::Region));
        assert_ne!(key(&a, ShardBy::Region), key(&c, ShardBy::Region));
        assert_eq!(key(&a, ShardBy::Account), key(&c, ShardBy::Account));
        assert_eq!(key(&file("logs/f.json"), ShardBy::Account), "logs/f.json");
        assert_eq!(stable_hash("111111111111/us-east-1"), 0x3391_8223_b535_4e86);
        for n in 1..6 {
            let holders = (0..n)
                .filter(|k| {
                    Shard {
                        index: *k,
                        count: n,
                        by: ShardBy::Region,
                    }
                    .holds(&a)
                })
                .count();
            assert_eq!(holders, 1);
        }
    }
}
