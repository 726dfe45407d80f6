//! STS: the role a call assumes, by `roleArn`.

use super::{Namer, Naming, Params, Push, Strings};

pub(super) const NAMING: Naming = Naming {
    service: "sts",
    keys: &["roleArn"],
    nested: false,
    name,
};

fn name<'a>(strings: Strings<'a>, _: &Params<'a>, _: &Namer<'a>, push: Push<'_, 'a>) {
    let [role_arn, ..] = strings;
    if let Some(arn) = role_arn {
        push("AWS::IAM::Role", arn, None);
    }
}
