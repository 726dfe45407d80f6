//! KMS: a key by `keyId` (an id or an ARN).

use super::{Namer, Naming, Params, Push, Strings};

pub(super) const NAMING: Naming = Naming {
    service: "kms",
    keys: &["keyId"],
    nested: false,
    name,
};

fn name<'a>(strings: Strings<'a>, _: &Params<'a>, n: &Namer<'a>, push: Push<'_, 'a>) {
    let [key_id, ..] = strings;
    if let Some(key) = key_id {
        push("AWS::KMS::Key", n.arn_or(key, "kms:", ":key/"), None);
    }
}
