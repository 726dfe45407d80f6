//! Secrets Manager: a secret by `secretId` (a name or an ARN).

use super::{Namer, Naming, Params, Push, Strings};

pub(super) const NAMING: Naming = Naming {
    service: "secretsmanager",
    keys: &["secretId"],
    nested: false,
    name,
};

fn name<'a>(strings: Strings<'a>, _: &Params<'a>, n: &Namer<'a>, push: Push<'_, 'a>) {
    let [secret_id, ..] = strings;
    if let Some(id) = secret_id {
        push(
            "AWS::SecretsManager::Secret",
            n.arn_or(id, "secretsmanager:", ":secret:"),
            None,
        );
    }
}
