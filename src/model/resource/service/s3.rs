//! S3: a bucket, or an object in it, from `bucketName` and `key`.

use super::{Namer, Naming, Params, Push, Strings};

pub(super) const NAMING: Naming = Naming {
    service: "s3",
    keys: &["bucketName", "key"],
    nested: false,
    name,
};

fn name<'a>(strings: Strings<'a>, _: &Params<'a>, n: &Namer<'a>, push: Push<'_, 'a>) {
    let [bucket_name, key, ..] = strings;
    let Some(bucket) = bucket_name else {
        return;
    };
    match key {
        Some(key) => push(
            "AWS::S3::Object",
            n.arn(&["s3:::", &bucket, "/", &key]),
            None,
        ),
        None => push("AWS::S3::Bucket", n.arn(&["s3:::", &bucket]), None),
    }
}
