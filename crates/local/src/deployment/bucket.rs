//! `AWS::S3::Bucket`: created on the local AWS (with versioning and Object Lock as declared); its Lambda
//! notifications become the deployment's [`Notification`]s, which the bucket watcher plays.

use std::collections::HashMap;

use aws_sdk_s3::types::{
    BucketVersioningStatus, CorsConfiguration, CorsRule, ObjectLockConfiguration, ObjectLockEnabled,
    VersioningConfiguration,
};
use serde_json::Value;

use super::{Context, Naming, Notification};
use crate::template::Physical;

pub(super) fn name(n: &Naming<'_>) -> Result<Physical, String> {
    let name = match n.props.get("BucketName") {
        Some(declared) => n.r.string(declared)?,
        None => n.generated.to_lowercase(),
    };
    Ok(Physical {
        attributes: HashMap::from([("Arn".into(), format!("arn:aws:s3:::{name}"))]),
        reference: name,
    })
}

pub(super) async fn create(cx: &mut Context<'_>, id: &str, res: &Value) -> Result<(), String> {
    let name = cx.r.physical[id].reference.clone();
    cx.s3
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .map_err(|e| format!("creating bucket {name}: {e:?}"))?;
    let props = &res["Properties"];
    if props["VersioningConfiguration"]["Status"] == "Enabled" {
        cx.s3
            .put_bucket_versioning()
            .bucket(&name)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| format!("versioning {name}: {e:?}"))?;
    }
    // After versioning, as on an existing bucket (what an update of the stack does).
    if props["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled" {
        if props["ObjectLockConfiguration"].get("Rule").is_some() {
            return Err(format!("{id}: a default Object Lock retention rule is not emulated"));
        }
        cx.s3
            .put_object_lock_configuration()
            .bucket(&name)
            .object_lock_configuration(
                ObjectLockConfiguration::builder()
                    .object_lock_enabled(ObjectLockEnabled::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| format!("object lock {name}: {e:?}"))?;
    }
    // The CORS rules, as declared (the console's browser uploads): moto answers preflights and
    // adds the headers from them, as S3 does (its global allow-all CORS is off: intake_moto.py).
    let cors = cx.r.resolve(&props["CorsConfiguration"])?;
    if let Some(rules) = cors["CorsRules"].as_array() {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        };
        let mut config = CorsConfiguration::builder();
        for r in rules {
            let mut rule = CorsRule::builder()
                .set_id(r["Id"].as_str().map(str::to_owned))
                .set_allowed_methods(Some(strings(&r["AllowedMethods"])))
                .set_allowed_origins(Some(strings(&r["AllowedOrigins"])))
                .set_allowed_headers(Some(strings(&r["AllowedHeaders"])))
                .set_expose_headers(Some(strings(&r["ExposedHeaders"])));
            if let Some(age) = r["MaxAge"]
                .as_i64()
                .or_else(|| r["MaxAge"].as_str().and_then(|s| s.parse().ok()))
            {
                rule = rule.max_age_seconds(i32::try_from(age).map_err(|_| format!("{id}: MaxAge {age}"))?);
            }
            config = config.cors_rules(rule.build().map_err(|e| format!("{id}: a CORS rule: {e}"))?);
        }
        cx.s3
            .put_bucket_cors()
            .bucket(&name)
            .cors_configuration(config.build().map_err(|e| format!("{id}: CORS: {e}"))?)
            .send()
            .await
            .map_err(|e| format!("CORS of {name}: {e:?}"))?;
    }
    if props.get("LifecycleConfiguration").is_some() {
        cx.note(format!(
            "{id}: lifecycle rules are not emulated (nothing expires locally)"
        ));
    }
    for n in props["NotificationConfiguration"]["LambdaConfigurations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let notification = notification(cx, id, &name, n)?;
        cx.d.notifications.push(notification);
    }
    cx.d.buckets.insert(id.to_owned(), name);
    Ok(())
}

/// One of the bucket's `LambdaConfigurations`, as the local run plays it.
fn notification(cx: &mut Context<'_>, id: &str, bucket: &str, n: &Value) -> Result<Notification, String> {
    let target = cx.r.string(&n["Function"])?;
    let function = cx
        .function_of(&target)
        .ok_or_else(|| format!("the notification of {bucket} targets {target}, which the local run does not run"))?;
    let rules = n["Filter"]["S3Key"]["Rules"].as_array().cloned().unwrap_or_default();
    let rule = |name: &str| {
        rules
            .iter()
            .find(|x| x["Name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .and_then(|x| x["Value"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let events = n["Event"].as_str().unwrap_or_default().to_owned();
    // The bucket watcher sees that a version was created, not how (PUT, POST, copy,
    // multipart): it emulates `s3:ObjectCreated:*` (and `s3:*`'s creations), knows that other
    // families (removals, restores, ...) never fire for a creation, and refuses what it cannot
    // tell apart rather than announce what AWS would not.
    match events.as_str() {
        "s3:ObjectCreated:*" | "s3:*" => {}
        e if e.starts_with("s3:ObjectCreated:") => {
            return Err(format!(
                "{id}: the notification's event {e} cannot be emulated locally: the local run sees \
                 that an object was created, not how (PUT, POST, copy or multipart); listen to \
                 s3:ObjectCreated:* or run against AWS"
            ));
        }
        e => cx.note(format!(
            "{id}: a notification for {e} never fires for a new object locally"
        )),
    }
    Ok(Notification {
        bucket: bucket.to_owned(),
        function,
        events,
        prefix: rule("prefix"),
        suffix: rule("suffix"),
    })
}
