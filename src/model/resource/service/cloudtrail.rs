//! CloudTrail: a trail by `name` or `trailName` (a name or an ARN).

use super::{Namer, Naming, Params, Push, Strings};

pub(super) const NAMING: Naming = Naming {
    service: "cloudtrail",
    keys: &["name", "trailName"],
    nested: false,
    name,
};

fn name<'a>(strings: Strings<'a>, _: &Params<'a>, n: &Namer<'a>, push: Push<'_, 'a>) {
    let [name, trail_name, ..] = strings;
    if let Some(name) = name.or(trail_name) {
        push(
            "AWS::CloudTrail::Trail",
            n.arn_or(name, "cloudtrail:", ":trail/"),
            None,
        );
    }
}
