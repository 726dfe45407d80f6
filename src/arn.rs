//! Amazon Resource Names, split into their parts: shared by the model (naming what an event
//! acted on) and the inventory (looking facts up by ARN), below both.

use crate::text::split_byte;

/// The parts of an ARN: `arn:partition:service:region:account:resource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// Splits an ARN; `None` if it is not one.
    pub fn parse(s: &'a str) -> Option<Self> {
        let rest = s.strip_prefix("arn:")?;
        let (partition, rest) = split_byte(rest, b':')?;
        let (service, rest) = split_byte(rest, b':')?;
        let (region, rest) = split_byte(rest, b':')?;
        let (account, resource) = split_byte(rest, b':')?;
        Some(Arn {
            partition,
            service,
            region,
            account,
            resource,
        })
    }
}

/// The third `:`-separated part of an ARN, its service: `arn:aws:s3:::bucket` → `s3`.
pub fn arn_service(arn: &str) -> Option<&str> {
    let (_, rest) = split_byte(arn, b':')?;
    let (_, rest) = split_byte(rest, b':')?;
    Some(split_byte(rest, b':').map_or(rest, |(service, _)| service))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_split_into_their_five_parts() {
        let a = Arn::parse("arn:aws:lambda:ap-northeast-1:123456789012:function:fn:alias").unwrap();
        assert_eq!(
            (a.partition, a.service, a.region, a.account, a.resource),
            (
                "aws",
                "lambda",
                "ap-northeast-1",
                "123456789012",
                "function:fn:alias"
            )
        );
        let a = Arn::parse("arn:aws:s3:::bucket").unwrap();
        assert_eq!((a.service, a.account, a.resource), ("s3", "", "bucket"));
        for bad in [
            "",
            "arn",
            "arn:aws:s3::",
            "urn:aws:s3:::bucket",
            "arnx:aws:s3:::b",
        ] {
            assert!(Arn::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_service_of_an_arn_for_lookups() {
        assert_eq!(arn_service("arn:aws:s3:::bucket/key"), Some("s3"));
        assert_eq!(arn_service("arn:aws:iam"), Some("iam"));
        assert_eq!(arn_service("arn:aws"), None);
    }
}
