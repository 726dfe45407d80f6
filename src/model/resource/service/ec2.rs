//! EC2: instances (`instanceId`, a request object's `InstanceId`, `instancesSet.items`) and a
//! security group (`groupId`), in the caller's account and region.

use super::{Namer, Naming, Params, Push, Strings};

pub(super) const NAMING: Naming = Naming {
    service: "ec2",
    keys: &["instanceId", "groupId"],
    // Newer EC2 calls record their request object: {"AssociateIamInstanceProfileRequest": {"InstanceId": ...}}.
    nested: true,
    name,
};

fn name<'a>(strings: Strings<'a>, params: &Params<'a>, n: &Namer<'a>, push: Push<'_, 'a>) {
    let [instance_id, group_id, ..] = strings;
    let ids = instance_id
        .into_iter()
        .chain(params.nested_instance_ids.iter().cloned())
        .chain(params.items_instance_ids.iter().cloned());
    for id in ids {
        push(
            "AWS::EC2::Instance",
            n.regional("ec2:", ":instance/", &id),
            Some(n.account),
        );
    }
    if let Some(id) = group_id {
        push(
            "AWS::EC2::SecurityGroup",
            n.regional("ec2:", ":security-group/", &id),
            Some(n.account),
        );
    }
}
