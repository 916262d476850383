//! Configuration from environment variables, read once at start-up into typed values. A
//! missing or malformed variable stops the function with a message that names it.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use intake_core::Policy;
use intake_core::policy::PolicyError;
use intake_core::service::Settings;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} is malformed ({value:?}): {problem}")]
    Malformed {
        name: &'static str,
        value: String,
        problem: String,
    },
    #[error("policy file {path}: {source}")]
    Policy { path: PathBuf, source: PolicyError },
}

/// Reads variables from a lookup function (the process environment, or a map in tests).
pub struct Env<F>(F);

impl Env<fn(&str) -> Option<String>> {
    pub fn process() -> Self {
        Env(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn from_fn(f: F) -> Self {
        Env(f)
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        (self.0)(name).ok_or(ConfigError::Missing(name))
    }

    pub fn optional(&self, name: &'static str) -> Option<String> {
        (self.0)(name)
    }

    pub fn parse_or<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match (self.0)(name) {
            None => Ok(default),
            Some(value) => value.parse().map_err(|e: T::Err| ConfigError::Malformed {
                name,
                problem: e.to_string(),
                value,
            }),
        }
    }

    pub fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match (self.0)(name).as_deref() {
            None | Some("0" | "false" | "no") => Ok(false),
            Some("1" | "true" | "yes") => Ok(true),
            Some(other) => Err(ConfigError::Malformed {
                name,
                value: other.to_owned(),
                problem: "expected true or false".into(),
            }),
        }
    }
}

/// The root certificates intake's AWS clients trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustStore {
    /// `amazon` (the default): the roots of Amazon Trust Services, which issues the certificates
    /// of AWS service endpoints, built into the binary. Loading the platform's store instead
    /// (some 140 certificates on Lambda) was 85% of a function's init.
    AmazonTrustServices,
    /// `native`: the platform's store, for endpoints whose certificates chain elsewhere (a
    /// TLS-inspecting proxy, an S3-compatible service, a partition with other issuers).
    Native,
}

impl FromStr for TrustStore {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "amazon" => Ok(Self::AmazonTrustServices),
            "native" => Ok(Self::Native),
            _ => Err("expected amazon or native".into()),
        }
    }
}

/// What every intake function needs to know about its deployment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `TABLE_NAME`: the catalog table.
    pub table_name: String,
    /// `BUCKET_NAME`: the intake bucket.
    pub bucket_name: String,
    /// `TOPIC_ARN`: the events topic, for the functions that publish.
    pub topic_arn: Option<String>,
    /// `INTAKE_POLICY_PATH`, default `/opt/policy.toml` (the shared layer).
    pub policy_path: PathBuf,
    /// `AWS_ENDPOINT_URL`: a local AWS API server (S3 then needs path-style requests).
    pub endpoint_url: Option<String>,
    /// `WORK_QUEUE_URL`: the deferred-work queue, for the functions that schedule work.
    pub work_queue_url: Option<String>,
    /// `WEBHOOK_QUEUE_URL`: the webhook delivery queue, for the functions that queue deliveries.
    pub webhook_queue_url: Option<String>,
    /// `WEBHOOK_KEY_ID`: the KMS key that seals webhook signing secrets.
    pub webhook_key_id: Option<String>,
    /// `LARGE_OBJECT_QUEUE_URL`: where the s3 function hands objects over
    /// [`Config::large_object_bytes`] (`intake_core::ingest::large`). Unset: every object is
    /// catalogued where it arrives.
    pub large_object_queue_url: Option<String>,
    /// `LARGE_OBJECT_BYTES` (default 2 GiB): the size above which an object is handed off.
    pub large_object_bytes: u64,
    /// `BLOB_SWEEP_GRACE_SECONDS`: how long an unreferenced blob is kept before its sweep
    /// (default 1800). Keep it above the longest cataloguing function's timeout (900 s; see
    /// `intake_core::sweep`);
    /// local runs shorten it to see sweeps happen.
    pub sweep_grace: Duration,
    /// `SCAN_DEADLINE_SECONDS`: replaces the policy's `[scan] deadline_minutes` (how long a
    /// document waits for its malware verdict). Local runs shorten it, so that the deadline
    /// checks of decided documents drain from the work queue while you watch.
    pub scan_deadline: Option<Duration>,
    /// `INTAKE_AWS_TRUST_STORE`: which root certificates the AWS clients trust.
    pub trust_store: TrustStore,
    /// `READ_AHEAD_CHUNK_MIB` and `READ_AHEAD_PARALLEL` (default 4): cataloguing reads of
    /// objects larger than two chunks read ahead by ranged GETs, that many chunks at once
    /// (memory: chunk × parallel). Unset: one stream (the 128 MB s3 function).
    pub read_ahead: Option<intake_aws::ReadAhead>,
    /// The HTTP door's settings (`INLINE_UPLOAD_LIMIT_BYTES`, `UPLOAD_URL_TTL_SECONDS`,
    /// `DOWNLOAD_URL_TTL_SECONDS`, `ALLOW_PRIVATE_WEBHOOKS`, `MAX_WEBHOOKS_PER_OWNER`,
    /// `RECEIVED_GRACE_SECONDS`).
    pub settings: Settings,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::process())
    }

    pub fn from<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let defaults = Settings::default();
        let secs = |name, default: Duration| -> Result<Duration, ConfigError> {
            let n: u64 = env.parse_or(name, default.as_secs())?;
            if n == 0 || n > 7 * 24 * 3600 {
                return Err(ConfigError::Malformed {
                    name,
                    value: n.to_string(),
                    problem: "must be between 1 second and 7 days".into(),
                });
            }
            Ok(Duration::from_secs(n))
        };
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            bucket_name: env.required("BUCKET_NAME")?,
            topic_arn: env.optional("TOPIC_ARN"),
            policy_path: env
                .optional("INTAKE_POLICY_PATH")
                .unwrap_or_else(|| "/opt/policy.toml".into())
                .into(),
            endpoint_url: env.optional("AWS_ENDPOINT_URL"),
            work_queue_url: env.optional("WORK_QUEUE_URL"),
            webhook_queue_url: env.optional("WEBHOOK_QUEUE_URL"),
            webhook_key_id: env.optional("WEBHOOK_KEY_ID"),
            large_object_queue_url: env.optional("LARGE_OBJECT_QUEUE_URL"),
            large_object_bytes: match env.parse_or(
                "LARGE_OBJECT_BYTES",
                intake_core::ingest::large::LARGE_OBJECT_BYTES_DEFAULT,
            )? {
                0 => {
                    return Err(ConfigError::Malformed {
                        name: "LARGE_OBJECT_BYTES",
                        value: "0".into(),
                        problem: "must be at least 1 byte".into(),
                    });
                }
                n => n,
            },
            sweep_grace: secs("BLOB_SWEEP_GRACE_SECONDS", intake_core::sweep::GRACE)?,
            scan_deadline: match env.optional("SCAN_DEADLINE_SECONDS") {
                Some(_) => Some(secs("SCAN_DEADLINE_SECONDS", Duration::ZERO)?),
                None => None,
            },
            trust_store: env.parse_or("INTAKE_AWS_TRUST_STORE", TrustStore::AmazonTrustServices)?,
            read_ahead: match env.optional("READ_AHEAD_CHUNK_MIB") {
                None => None,
                Some(_) => {
                    let mib: u64 = env.parse_or("READ_AHEAD_CHUNK_MIB", 0)?;
                    let parallel: usize = env.parse_or("READ_AHEAD_PARALLEL", 4)?;
                    if !(1..=512).contains(&mib) || !(2..=64).contains(&parallel) {
                        return Err(ConfigError::Malformed {
                            name: "READ_AHEAD_CHUNK_MIB",
                            value: format!("{mib} (READ_AHEAD_PARALLEL {parallel})"),
                            problem: "chunks of 1 to 512 MiB, 2 to 64 at once".into(),
                        });
                    }
                    Some(intake_aws::ReadAhead {
                        chunk: mib << 20,
                        parallel,
                    })
                }
            },
            settings: Settings {
                inline_upload_limit: env.parse_or("INLINE_UPLOAD_LIMIT_BYTES", defaults.inline_upload_limit)?,
                upload_url_ttl: secs("UPLOAD_URL_TTL_SECONDS", defaults.upload_url_ttl)?,
                download_url_ttl: secs("DOWNLOAD_URL_TTL_SECONDS", defaults.download_url_ttl)?,
                allow_private_webhooks: env.flag("ALLOW_PRIVATE_WEBHOOKS")?,
                max_webhooks_per_owner: env.parse_or("MAX_WEBHOOKS_PER_OWNER", defaults.max_webhooks_per_owner)?,
                received_grace: secs("RECEIVED_GRACE_SECONDS", defaults.received_grace)?,
                multipart_ttl: secs("MULTIPART_UPLOAD_TTL_SECONDS", defaults.multipart_ttl)?,
            },
        })
    }

    /// Reads and validates the intake policy (a local file read, no network).
    pub fn load_policy(&self) -> Result<Arc<Policy>, ConfigError> {
        let mut policy = Policy::load(&self.policy_path).map_err(|source| ConfigError::Policy {
            path: self.policy_path.clone(),
            source,
        })?;
        if let Some(deadline) = self.scan_deadline {
            policy.scan.deadline = deadline;
        }
        Ok(Arc::new(policy))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Env::from_fn(move |k| map.get(k).cloned())
    }

    #[test]
    fn the_trust_store_defaults_to_amazon_and_is_checked() {
        let base = [("TABLE_NAME", "t"), ("BUCKET_NAME", "b")];
        assert_eq!(
            Config::from(&env(&base)).unwrap().trust_store,
            TrustStore::AmazonTrustServices
        );
        let native = [base[0], base[1], ("INTAKE_AWS_TRUST_STORE", "native")];
        assert_eq!(Config::from(&env(&native)).unwrap().trust_store, TrustStore::Native);
        let bad = [base[0], base[1], ("INTAKE_AWS_TRUST_STORE", "all")];
        let e = Config::from(&env(&bad)).unwrap_err().to_string();
        assert!(
            e.contains("INTAKE_AWS_TRUST_STORE") && e.contains("amazon or native"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_variable_is_named() {
        let e = Config::from(&env(&[("BUCKET_NAME", "b")])).unwrap_err();
        assert_eq!(e.to_string(), "environment variable TABLE_NAME is required but not set");
    }

    #[test]
    fn a_malformed_variable_is_named_with_its_value() {
        let e = Config::from(&env(&[
            ("TABLE_NAME", "t"),
            ("BUCKET_NAME", "b"),
            ("UPLOAD_URL_TTL_SECONDS", "soon"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("UPLOAD_URL_TTL_SECONDS"), "{e}");
        assert!(e.to_string().contains("\"soon\""), "{e}");
        let e = Config::from(&env(&[
            ("TABLE_NAME", "t"),
            ("BUCKET_NAME", "b"),
            ("ALLOW_PRIVATE_WEBHOOKS", "maybe"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("ALLOW_PRIVATE_WEBHOOKS"), "{e}");
    }

    #[test]
    fn defaults_apply() {
        let c = Config::from(&env(&[("TABLE_NAME", "t"), ("BUCKET_NAME", "b")])).unwrap();
        assert_eq!(c.policy_path, PathBuf::from("/opt/policy.toml"));
        assert!(c.endpoint_url.is_none());
        assert!(!c.settings.allow_private_webhooks);
    }

    #[test]
    fn read_ahead_is_off_unless_a_chunk_size_is_set_and_then_bounded() {
        let base = [("TABLE_NAME", "t"), ("BUCKET_NAME", "b")];
        assert_eq!(Config::from(&env(&base)).unwrap().read_ahead, None);
        let on = [base[0], base[1], ("READ_AHEAD_CHUNK_MIB", "16")];
        assert_eq!(
            Config::from(&env(&on)).unwrap().read_ahead,
            Some(intake_aws::ReadAhead {
                chunk: 16 << 20,
                parallel: 4
            })
        );
        let huge = [
            base[0],
            base[1],
            ("READ_AHEAD_CHUNK_MIB", "16"),
            ("READ_AHEAD_PARALLEL", "1000"),
        ];
        let e = Config::from(&env(&huge)).unwrap_err().to_string();
        assert!(e.contains("READ_AHEAD_CHUNK_MIB") && e.contains("2 to 64"), "{e}");
    }

    #[test]
    fn large_objects_go_over_two_gib_unless_set_and_a_zero_threshold_is_refused() {
        let base = [("TABLE_NAME", "t"), ("BUCKET_NAME", "b")];
        let c = Config::from(&env(&base)).unwrap();
        assert_eq!((c.large_object_queue_url, c.large_object_bytes), (None, 2 << 30));
        let set = [
            base[0],
            base[1],
            ("LARGE_OBJECT_QUEUE_URL", "q"),
            ("LARGE_OBJECT_BYTES", "1048576"),
        ];
        let c = Config::from(&env(&set)).unwrap();
        assert_eq!(
            (c.large_object_queue_url.as_deref(), c.large_object_bytes),
            (Some("q"), 1 << 20)
        );
        for bad in ["0", "-1", "2GiB"] {
            let e = Config::from(&env(&[base[0], base[1], ("LARGE_OBJECT_BYTES", bad)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains("LARGE_OBJECT_BYTES"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_bad_policy_file_is_reported_with_its_path() {
        let c = Config::from(&env(&[
            ("TABLE_NAME", "t"),
            ("BUCKET_NAME", "b"),
            ("INTAKE_POLICY_PATH", "/nonexistent/p.toml"),
        ]))
        .unwrap();
        let e = c.load_policy().unwrap_err();
        assert!(e.to_string().contains("/nonexistent/p.toml"), "{e}");
    }
}
