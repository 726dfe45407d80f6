//! IAM: users, roles, groups and instance profiles by name, in the caller's account, and a
//! managed policy by ARN.

use super::{Namer, Naming, Params, Push, Strings};

pub(super) const NAMING: Naming = Naming {
    service: "iam",
    keys: &[
        "userName",
        "roleName",
        "groupName",
        "instanceProfileName",
        "policyArn",
    ],
    nested: false,
    name,
};

fn name<'a>(strings: Strings<'a>, _: &Params<'a>, n: &Namer<'a>, push: Push<'_, 'a>) {
    let [user, role, group, profile, policy_arn] = strings;
    for (name, kind, path) in [
        (user, "AWS::IAM::User", ":user/"),
        (role, "AWS::IAM::Role", ":role/"),
        (group, "AWS::IAM::Group", ":group/"),
        (profile, "AWS::IAM::InstanceProfile", ":instance-profile/"),
    ] {
        if let Some(name) = name {
            push(
                kind,
                n.arn(&["iam::", n.account, path, &name]),
                Some(n.account),
            );
        }
    }
    if let Some(arn) = policy_arn {
        push("AWS::IAM::ManagedPolicy", arn, None);
    }
}
