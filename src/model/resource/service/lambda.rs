//! Lambda: a function by `functionName` (a name or an ARN).

use super::{Namer, Naming, Params, Push, Strings};

pub(super) const NAMING: Naming = Naming {
    service: "lambda",
    keys: &["functionName"],
    nested: false,
    name,
};

fn name<'a>(strings: Strings<'a>, _: &Params<'a>, n: &Namer<'a>, push: Push<'_, 'a>) {
    let [function_name, ..] = strings;
    if let Some(name) = function_name {
        push(
            "AWS::Lambda::Function",
            n.arn_or(name, "lambda:", ":function:"),
            None,
        );
    }
}
