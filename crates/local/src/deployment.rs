//! template.yaml, deployed on the local AWS: the resources it declares, created with the names
//! a stack would give them (for a chosen stack name, account and region), each function with
//! exactly the environment and role the template resolves for it, and the event wiring read
//! from what the SAM transform generates (bucket notifications, event source mappings, SNS
//! subscriptions, invoke configs, the SES receipt rule, the load balancer's target). What the
//! local run does not emulate is listed, with why, in [`Deployment::notes`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::iam::{self, Statement};
use crate::stream::LocalApi;
use crate::template::{Physical, Resolver, StackIdentity, Template};

/// What to deploy, and where.
#[derive(Debug, Clone)]
pub struct Plan {
    pub repo: PathBuf,
    /// The template (normally `<repo>/template.yaml`).
    pub template: PathBuf,
    /// The Python that runs the SAM transform (the project's `.venv`).
    pub python: PathBuf,
    pub stack: StackIdentity,
    /// Parameter values (the rest take the template's defaults).
    pub parameters: BTreeMap<String, String>,
}

impl Plan {
    /// The stack `samconfig.toml`'s default environment describes (its stack name, and the
    /// parameter overrides `sam local invoke` uses), in `account` (moto keeps accounts apart
    /// by access key, so runs sharing one local AWS do not see each other's resources).
    pub fn from_samconfig(repo: &Path, python: &Path, account: &str) -> Result<Self, String> {
        let path = repo.join("samconfig.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let config: toml::Table = text.parse().map_err(|e| format!("{}: {e}", path.display()))?;
        let default = |command: &str, key: &str| -> Option<String> {
            config
                .get("default")?
                .get(command)?
                .get("parameters")?
                .get(key)?
                .as_str()
                .map(str::to_owned)
        };
        let name = default("global", "stack_name").unwrap_or_else(|| "intake-dev".into());
        let overrides = default("local_invoke", "parameter_overrides")
            .or_else(|| default("deploy", "parameter_overrides"))
            .unwrap_or_default();
        Ok(Self {
            repo: repo.to_owned(),
            template: repo.join("template.yaml"),
            python: python.to_owned(),
            stack: StackIdentity {
                name,
                account: account.into(),
                region: crate::stack::REGION.into(),
            },
            parameters: parameter_overrides(&overrides),
        })
    }
}

/// `Key=Value Key2="a value"` (samconfig's `parameter_overrides`) as a map.
pub fn parameter_overrides(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
            None => after.split_once(char::is_whitespace).unwrap_or((after, "")),
        };
        out.insert(key.trim().to_owned(), value.to_owned());
        rest = next.trim_start();
    }
    out
}

/// A function of the stack, as the template declares it.
#[derive(Debug, Clone)]
pub struct Function {
    pub logical_id: String,
    pub name: String,
    /// The binary (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    pub timeout: Duration,
    pub memory_mb: u32,
    /// Exactly what the template's `Environment.Variables` resolve to.
    pub environment: BTreeMap<String, String>,
    /// `LoggingConfig`, as Lambda hands it to the runtime (`AWS_LAMBDA_LOG_FORMAT`/`_LEVEL`).
    pub log_format: Option<String>,
    pub log_level: Option<String>,
    /// `LoggingConfig.SystemLogLevel`: which of Lambda's own lines (START, REPORT, …: INFO)
    /// reach CloudWatch Logs. Lambda's default is INFO.
    pub system_log_level: Option<String>,
    /// Where the template's layers are (mounted at `/opt` in Lambda).
    pub layers: Vec<PathBuf>,
    /// The execution role's statements (inline policies and the managed policies SAM adds).
    pub role: Vec<Statement>,
    /// Asynchronous invocation: retries after the first try, and the on-failure queue's URL.
    pub retries: u32,
    pub on_failure: Option<String>,
    /// Who may invoke it (its resource policy's principals).
    pub invokers: Vec<String>,
}

impl Function {
    /// The environment its process gets: the template's, with `/opt/…` pointing at the layer
    /// on disk and the logging config; local endpoint and credentials come on top.
    pub fn process_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .environment
            .iter()
            .map(|(k, v)| {
                let v = match v.strip_prefix("/opt/") {
                    Some(rest) => self
                        .layers
                        .iter()
                        .map(|l| l.join(rest))
                        .find(|p| p.exists())
                        .map_or_else(|| v.clone(), |p| p.display().to_string()),
                    None => v.clone(),
                };
                (k.clone(), v)
            })
            .collect();
        if let Some(f) = &self.log_format {
            env.push(("AWS_LAMBDA_LOG_FORMAT".into(), f.clone()));
        }
        if let Some(l) = &self.log_level {
            env.push(("AWS_LAMBDA_LOG_LEVEL".into(), l.clone()));
        }
        env
    }
}

#[derive(Debug, Clone)]
pub struct Queue {
    pub logical_id: String,
    pub url: String,
    pub arn: String,
}

/// An S3 notification to a function.
#[derive(Debug, Clone)]
pub struct Notification {
    pub bucket: String,
    pub function: String,
    pub events: String,
    pub prefix: String,
    pub suffix: String,
}

/// An event source mapping (a stream or a queue feeding a function).
#[derive(Debug, Clone)]
pub struct Mapping {
    pub logical_id: String,
    pub function: String,
    pub source: Source,
    pub batch_size: usize,
    pub filters: Vec<Value>,
    pub report_item_failures: bool,
    pub bisect: bool,
    pub max_retries: Option<u32>,
    pub on_failure: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Source {
    Stream { table: String, arn: String },
    Queue(Queue),
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub topic_arn: String,
    pub function: String,
    pub filter_policy: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct ReceiptRule {
    pub bucket: String,
    pub prefix: String,
    pub function: String,
    pub invocation_type: String,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub stream_arn: String,
    /// "" (the table) or an index name -> its partition key attribute.
    pub partition_keys: HashMap<String, String>,
    /// The table's key attributes and each index's (what the meter needs).
    pub keys: crate::meter::TableKeys,
}

/// The stack, created on the local AWS.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub stack: StackIdentity,
    pub endpoint: String,
    pub functions: BTreeMap<String, Function>,
    pub tables: BTreeMap<String, Table>,
    pub buckets: BTreeMap<String, String>,
    pub topics: BTreeMap<String, String>,
    pub queues: BTreeMap<String, Queue>,
    pub notifications: Vec<Notification>,
    pub mappings: Vec<Mapping>,
    pub subscriptions: Vec<Subscription>,
    pub receipt_rules: Vec<ReceiptRule>,
    /// The function behind the load balancer's target group.
    pub front_door: Option<String>,
    /// What is not emulated, and why.
    pub notes: Vec<String>,
}

/// A physical id's random part, as CloudFormation appends it to generated names.
fn suffix() -> String {
    crate::request_id().replace('-', "")[..12].to_uppercase()
}

fn number(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

impl Deployment {
    /// Transforms the template, creates its resources on the local AWS at `endpoint`, and reads
    /// the functions and the wiring.
    pub async fn create(plan: &Plan, endpoint: &str) -> Result<Self, String> {
        let template = Template::transform(&plan.python, &plan.repo, &plan.template, &plan.stack, &plan.parameters)?;
        let stack = &plan.stack;
        let mut r = Resolver::new(&template, stack, &plan.parameters);
        let api = LocalApi::new(endpoint).with_account(&stack.account);
        let arn = |service: &str, rest: &str| format!("arn:aws:{service}:{}:{}:{rest}", stack.region, stack.account);
        let mut notes = Vec::new();
        let mut d = Deployment {
            stack: stack.clone(),
            endpoint: endpoint.to_owned(),
            functions: BTreeMap::new(),
            tables: BTreeMap::new(),
            buckets: BTreeMap::new(),
            topics: BTreeMap::new(),
            queues: BTreeMap::new(),
            notifications: Vec::new(),
            mappings: Vec::new(),
            subscriptions: Vec::new(),
            receipt_rules: Vec::new(),
            front_door: None,
            notes: Vec::new(),
        };

        // Names first: what needs no AWS call to know.
        let mut existing = Vec::new();
        for (id, res) in template.resources() {
            if !r.exists(res)? {
                continue;
            }
            existing.push(id.to_owned());
            let props = &res["Properties"];
            let generated = format!("{}-{id}-{}", stack.name, suffix());
            let physical = match res["Type"].as_str().unwrap_or_default() {
                "AWS::Lambda::Function" => {
                    let name = props
                        .get("FunctionName")
                        .map(|n| r.string(n))
                        .transpose()?
                        .unwrap_or(generated);
                    let a = arn("lambda", &format!("function:{name}"));
                    Physical {
                        reference: name,
                        attributes: HashMap::from([("Arn".into(), a)]),
                    }
                }
                "AWS::IAM::Role" => Physical {
                    attributes: HashMap::from([(
                        "Arn".into(),
                        format!("arn:aws:iam::{}:role/{generated}", stack.account),
                    )]),
                    reference: generated,
                },
                "AWS::Lambda::LayerVersion" => Physical {
                    reference: arn("lambda", &format!("layer:{id}:1")),
                    attributes: HashMap::new(),
                },
                "AWS::Logs::LogGroup" => {
                    let name = props
                        .get("LogGroupName")
                        .map(|n| r.string(n))
                        .transpose()?
                        .unwrap_or(generated);
                    Physical {
                        attributes: HashMap::from([("Arn".into(), arn("logs", &format!("log-group:{name}:*")))]),
                        reference: name,
                    }
                }
                "AWS::S3::Bucket" => {
                    let name = props
                        .get("BucketName")
                        .map(|n| r.string(n))
                        .transpose()?
                        .unwrap_or_else(|| generated.to_lowercase());
                    Physical {
                        attributes: HashMap::from([("Arn".into(), format!("arn:aws:s3:::{name}"))]),
                        reference: name,
                    }
                }
                "AWS::SNS::Topic" => {
                    let name = props
                        .get("TopicName")
                        .map(|n| r.string(n))
                        .transpose()?
                        .unwrap_or(generated);
                    let a = arn("sns", &name);
                    Physical {
                        attributes: HashMap::from([("TopicArn".into(), a.clone()), ("TopicName".into(), name)]),
                        reference: a,
                    }
                }
                "AWS::DynamoDB::Table" => {
                    let name = props
                        .get("TableName")
                        .map(|n| r.string(n))
                        .transpose()?
                        .unwrap_or(generated);
                    Physical {
                        attributes: HashMap::from([("Arn".into(), arn("dynamodb", &format!("table/{name}")))]),
                        reference: name,
                    }
                }
                "AWS::KMS::Key" => {
                    // Created now: its id is the key's name, and the functions' environment
                    // names the key by its ARN.
                    let created = api
                        .call(
                            "TrentService.CreateKey",
                            json!({"Description": format!("{id} of stack {}", stack.name)}),
                        )
                        .await?;
                    let meta = &created["KeyMetadata"];
                    Physical {
                        reference: meta["KeyId"].as_str().unwrap_or_default().to_owned(),
                        attributes: HashMap::from([
                            ("Arn".into(), meta["Arn"].as_str().unwrap_or_default().to_owned()),
                            ("KeyId".into(), meta["KeyId"].as_str().unwrap_or_default().to_owned()),
                        ]),
                    }
                }
                "AWS::SQS::Queue" => {
                    let name = props
                        .get("QueueName")
                        .map(|n| r.string(n))
                        .transpose()?
                        .unwrap_or(generated);
                    Physical {
                        attributes: HashMap::from([
                            ("Arn".into(), arn("sqs", &name)),
                            ("QueueName".into(), name.clone()),
                        ]),
                        reference: name,
                    }
                }
                _ => Physical {
                    reference: format!("{id}-local"),
                    attributes: HashMap::new(),
                },
            };
            r.physical.insert(id.to_owned(), physical);
        }
        // Aliases and versions name their function.
        for (id, res) in template.resources() {
            let kind = res["Type"].as_str().unwrap_or_default();
            if kind == "AWS::Lambda::Alias" || kind == "AWS::Lambda::Version" {
                let function = r.string(&res["Properties"]["FunctionName"])?;
                let function_arn = arn("lambda", &format!("function:{function}"));
                let physical = if kind == "AWS::Lambda::Alias" {
                    let name = r.string(&res["Properties"]["Name"])?;
                    Physical {
                        reference: format!("{function_arn}:{name}"),
                        attributes: HashMap::new(),
                    }
                } else {
                    Physical {
                        reference: format!("{function_arn}:1"),
                        attributes: HashMap::from([("Version".into(), "1".into())]),
                    }
                };
                r.physical.insert(id.to_owned(), physical);
            }
        }

        // The resources the local AWS holds.
        for (id, res) in template.of_type("AWS::DynamoDB::Table") {
            if !existing.iter().any(|e| e == id) {
                continue;
            }
            let props = r.resolve(&res["Properties"])?;
            let name = r.physical[id].reference.clone();
            let stream = &props["StreamSpecification"];
            let mut create = json!({
                "TableName": name,
                "AttributeDefinitions": props["AttributeDefinitions"],
                "KeySchema": props["KeySchema"],
                "BillingMode": props.get("BillingMode").cloned().unwrap_or(json!("PAY_PER_REQUEST")),
            });
            if let Some(gsis) = props.get("GlobalSecondaryIndexes") {
                create["GlobalSecondaryIndexes"] = gsis.clone();
            }
            if let Some(view) = stream.get("StreamViewType") {
                create["StreamSpecification"] = json!({"StreamEnabled": true, "StreamViewType": view});
            }
            let created = api.call("DynamoDB_20120810.CreateTable", create).await?;
            let stream_arn = created["TableDescription"]["LatestStreamArn"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if let Some(ttl) = props["TimeToLiveSpecification"].as_object() {
                api.call(
                    "DynamoDB_20120810.UpdateTimeToLive",
                    json!({"TableName": name, "TimeToLiveSpecification": {"Enabled": ttl.get("Enabled").cloned().unwrap_or(json!(true)), "AttributeName": ttl.get("AttributeName")}}),
                )
                .await?;
            }
            let hash = |schema: &Value| {
                schema
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|k| k["KeyType"] == "HASH")
                    .and_then(|k| k["AttributeName"].as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let attributes = |schema: &Value| -> Vec<String> {
                schema
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|k| k["AttributeName"].as_str().map(str::to_owned))
                    .collect()
            };
            let keys = crate::meter::TableKeys {
                key: attributes(&props["KeySchema"]),
                indexes: props["GlobalSecondaryIndexes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(crate::meter::IndexKeys::from_template)
                    .collect(),
            };
            let mut partition_keys = HashMap::from([(String::new(), hash(&props["KeySchema"]))]);
            for gsi in props["GlobalSecondaryIndexes"].as_array().into_iter().flatten() {
                partition_keys.insert(
                    gsi["IndexName"].as_str().unwrap_or_default().to_owned(),
                    hash(&gsi["KeySchema"]),
                );
            }
            r.physical
                .get_mut(id)
                .map(|p| p.attributes.insert("StreamArn".into(), stream_arn.clone()));
            d.tables.insert(
                id.to_owned(),
                Table {
                    name,
                    stream_arn,
                    partition_keys,
                    keys,
                },
            );
            notes.push(format!(
                "{id}: point-in-time recovery, encryption and deletion protection are not emulated"
            ));
        }

        let sdk = crate::stack::sdk_config(endpoint, &stack.account).await;
        let sqs = intake_aws::sqs_client(&sdk);
        let sns = intake_aws::sns_client(&sdk);
        let s3 = intake_aws::s3_client(&sdk, true);
        let queues: Vec<(String, Value)> = template
            .of_type("AWS::SQS::Queue")
            .filter(|(id, _)| existing.iter().any(|e| e == id))
            .map(|(id, res)| (id.to_owned(), res["Properties"].clone()))
            .collect();
        for (id, _) in &queues {
            let name = r.physical[id].reference.clone();
            let url = sqs
                .create_queue()
                .queue_name(&name)
                // Lambda's retries of a failed message come back after the visibility timeout;
                // locally after seconds (timings are compressed, the semantics kept).
                .attributes(
                    intake_aws::aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                    "5",
                )
                .send()
                .await
                .map_err(|e| format!("creating queue {id}: {e:?}"))?
                .queue_url
                .unwrap_or_default();
            let physical = r.physical.get_mut(id).expect("named above");
            physical.attributes.insert("QueueUrl".into(), url.clone());
            physical.reference = url.clone();
            d.queues.insert(
                id.clone(),
                Queue {
                    logical_id: id.clone(),
                    arn: physical.attributes["Arn"].clone(),
                    url,
                },
            );
        }
        for (id, props) in &queues {
            let props = r.resolve(props)?;
            if let Some(redrive) = props.get("RedrivePolicy") {
                sqs.set_queue_attributes()
                    .queue_url(&d.queues[id].url)
                    .attributes(
                        intake_aws::aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
                        redrive.to_string(),
                    )
                    .send()
                    .await
                    .map_err(|e| format!("redrive of {id}: {e:?}"))?;
            }
        }
        if !queues.is_empty() {
            notes.push(
                "queues: visibility timeouts are 5 s (timings compressed); retention and encryption are not emulated"
                    .into(),
            );
        }
        for (id, _) in template.of_type("AWS::SNS::Topic") {
            if !existing.iter().any(|e| e == id) {
                continue;
            }
            let name = r.physical[id].attributes["TopicName"].clone();
            let created = sns
                .create_topic()
                .name(&name)
                .send()
                .await
                .map_err(|e| format!("creating topic {id}: {e:?}"))?
                .topic_arn
                .unwrap_or_default();
            d.topics.insert(id.to_owned(), created);
        }
        for (id, res) in template.of_type("AWS::S3::Bucket") {
            if !existing.iter().any(|e| e == id) {
                continue;
            }
            let name = r.physical[id].reference.clone();
            s3.create_bucket()
                .bucket(&name)
                .send()
                .await
                .map_err(|e| format!("creating bucket {name}: {e:?}"))?;
            let props = &res["Properties"];
            if props["VersioningConfiguration"]["Status"] == "Enabled" {
                s3.put_bucket_versioning()
                    .bucket(&name)
                    .versioning_configuration(
                        aws_sdk_s3::types::VersioningConfiguration::builder()
                            .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| format!("versioning {name}: {e:?}"))?;
            }
            if props.get("LifecycleConfiguration").is_some() {
                notes.push(format!(
                    "{id}: lifecycle rules are not emulated (nothing expires locally)"
                ));
            }
            for n in props["NotificationConfiguration"]["LambdaConfigurations"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let target = r.string(&n["Function"])?;
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
                // multipart): it emulates `s3:ObjectCreated:*` (and `s3:*`'s creations), knows
                // that other families (removals, restores, ...) never fire for a creation, and
                // refuses what it cannot tell apart rather than announce what AWS would not.
                match events.as_str() {
                    "s3:ObjectCreated:*" | "s3:*" => {}
                    e if e.starts_with("s3:ObjectCreated:") => {
                        return Err(format!(
                            "{id}: the notification's event {e} cannot be emulated locally: the local run sees \
                             that an object was created, not how (PUT, POST, copy or multipart); listen to \
                             s3:ObjectCreated:* or run against AWS"
                        ));
                    }
                    e => notes.push(format!(
                        "{id}: a notification for {e} never fires for a new object locally"
                    )),
                }
                d.notifications.push(Notification {
                    bucket: name.clone(),
                    function: target,
                    events,
                    prefix: rule("prefix"),
                    suffix: rule("suffix"),
                });
            }
            d.buckets.insert(id.to_owned(), name);
        }

        // Functions, their roles, who may invoke them, and how.
        let roles: HashMap<String, Vec<Statement>> = template
            .of_type("AWS::IAM::Role")
            .filter(|(id, _)| existing.iter().any(|e| e == id))
            .map(|(id, res)| -> Result<(String, Vec<Statement>), String> {
                let props = r.resolve(&res["Properties"])?;
                let mut statements = Vec::new();
                for policy in props["Policies"].as_array().into_iter().flatten() {
                    let name = format!("{id}/{}", policy["PolicyName"].as_str().unwrap_or_default());
                    statements.extend(iam::statements(&name, &policy["PolicyDocument"]));
                }
                for managed in props["ManagedPolicyArns"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    statements.extend(iam::managed_policy(managed));
                }
                Ok((r.physical[id].attributes["Arn"].clone(), statements))
            })
            .collect::<Result<_, _>>()?;
        let layers: HashMap<String, PathBuf> = template
            .of_type("AWS::Lambda::LayerVersion")
            .map(|(id, res)| {
                let path = res["Properties"]["Content"]["S3Key"].as_str().unwrap_or_default();
                (
                    r.physical.get(id).map(|p| p.reference.clone()).unwrap_or_default(),
                    plan.repo.join(path),
                )
            })
            .collect();
        for (id, res) in template.of_type("AWS::Lambda::Function") {
            if !existing.iter().any(|e| e == id) {
                continue;
            }
            let Some(binary) = res["Metadata"]["BuildProperties"]["Binary"].as_str() else {
                notes.push(format!(
                    "{id}: not run ({} code; the local run runs the project's binaries)",
                    res["Properties"]["Runtime"].as_str().unwrap_or("inline")
                ));
                continue;
            };
            let props = r.resolve(&res["Properties"])?;
            let environment = props["Environment"]["Variables"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), crate::template::scalar(v).unwrap_or_default()))
                .collect();
            let role = props["Role"].as_str().unwrap_or_default();
            d.functions.insert(
                id.to_owned(),
                Function {
                    logical_id: id.to_owned(),
                    name: r.physical[id].reference.clone(),
                    binary: binary.to_owned(),
                    timeout: Duration::from_secs(number(&props["Timeout"]).unwrap_or(3)),
                    memory_mb: number(&props["MemorySize"]).unwrap_or(128) as u32,
                    environment,
                    log_format: props["LoggingConfig"]["LogFormat"].as_str().map(str::to_owned),
                    log_level: props["LoggingConfig"]["ApplicationLogLevel"]
                        .as_str()
                        .map(str::to_owned),
                    system_log_level: props["LoggingConfig"]["SystemLogLevel"].as_str().map(str::to_owned),
                    layers: props["Layers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .filter_map(|l| layers.get(l).cloned())
                        .collect(),
                    role: roles.get(role).cloned().unwrap_or_default(),
                    retries: 2,
                    on_failure: None,
                    invokers: Vec::new(),
                },
            );
        }
        // An alias or version ARN (or a plain function name) -> the function's logical id.
        let by_arn: HashMap<String, String> = d
            .functions
            .values()
            .map(|f| (arn("lambda", &format!("function:{}", f.name)), f.logical_id.clone()))
            .collect();
        let by_name: HashMap<String, String> = d
            .functions
            .values()
            .map(|f| (f.name.clone(), f.logical_id.clone()))
            .collect();
        let function_of = |target: &str| -> Option<String> {
            let base = target.splitn(8, ':').take(7).collect::<Vec<_>>().join(":");
            by_arn.get(&base).or_else(|| by_name.get(target)).cloned()
        };
        let queue_by_arn = |a: &str| d.queues.values().find(|q| q.arn == a).cloned();
        for n in &mut d.notifications {
            n.function = function_of(&n.function).ok_or_else(|| {
                format!(
                    "the notification of {} targets {}, which the local run does not run",
                    n.bucket, n.function
                )
            })?;
        }

        for (id, res) in template.of_type("AWS::Lambda::Permission") {
            if !existing.iter().any(|e| e == id) {
                continue;
            }
            let props = r.resolve(&res["Properties"])?;
            if let Some(f) = props["FunctionName"].as_str().and_then(function_of)
                && let Some(function) = d.functions.get_mut(&f)
            {
                function
                    .invokers
                    .push(props["Principal"].as_str().unwrap_or_default().to_owned());
            }
        }
        for (id, res) in template.of_type("AWS::Lambda::EventInvokeConfig") {
            if !existing.iter().any(|e| e == id) {
                continue;
            }
            let props = r.resolve(&res["Properties"])?;
            let Some(f) = props["FunctionName"].as_str().and_then(function_of) else {
                continue;
            };
            let destination = props["DestinationConfig"]["OnFailure"]["Destination"]
                .as_str()
                .unwrap_or_default();
            let on_failure = queue_by_arn(destination).map(|q| q.url);
            if !destination.is_empty() && on_failure.is_none() {
                notes.push(format!(
                    "{id}: on-failure destination {destination} is not a queue of the stack: not emulated"
                ));
            }
            if let Some(function) = d.functions.get_mut(&f) {
                function.retries = number(&props["MaximumRetryAttempts"]).unwrap_or(2) as u32;
                function.on_failure = on_failure;
            }
            notes.push(format!("{id}: MaximumEventAgeInSeconds is not emulated; retries come after 1 and 2 s (Lambda: about 1 and 2 min)"));
        }
        for (id, res) in template.of_type("AWS::Lambda::EventSourceMapping") {
            if !existing.iter().any(|e| e == id) {
                continue;
            }
            let props = r.resolve(&res["Properties"])?;
            let f = props["FunctionName"]
                .as_str()
                .and_then(function_of)
                .ok_or_else(|| format!("{id}: its function is not one the local run runs"))?;
            let source_arn = props["EventSourceArn"].as_str().unwrap_or_default();
            let source = match d.tables.values().find(|t| t.stream_arn == source_arn) {
                Some(t) => Source::Stream {
                    table: t.name.clone(),
                    arn: t.stream_arn.clone(),
                },
                None => Source::Queue(
                    queue_by_arn(source_arn).ok_or_else(|| format!("{id}: source {source_arn} is not emulated"))?,
                ),
            };
            // Locally the queue's visibility is compressed, but the mapping is refused as Lambda
            // refuses it: a message must stay hidden while the function can still be running.
            if let Source::Queue(q) = &source {
                let declared = template
                    .resource(&q.logical_id)
                    .map(|res| r.resolve(&res["Properties"]["VisibilityTimeout"]))
                    .transpose()?;
                let visibility = declared.as_ref().and_then(number).unwrap_or(30);
                let timeout = d.functions.get(&f).map_or(3, |function| function.timeout.as_secs());
                if visibility < timeout {
                    return Err(format!(
                        "{id}: InvalidParameterValueException: Queue visibility timeout: {visibility} seconds is \
                         less than Function timeout: {timeout} seconds"
                    ));
                }
            }
            let filters: Vec<Value> = props["FilterCriteria"]["Filters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["Pattern"].as_str())
                .map(|p| serde_json::from_str(p).map_err(|e| format!("{id}: filter pattern {p}: {e}")))
                .collect::<Result<_, _>>()?;
            if let Some(unknown) = filters.iter().flat_map(crate::filter::unknown_operators).next() {
                return Err(format!("{id}: the filter operator {unknown} is not emulated"));
            }
            let destination = props["DestinationConfig"]["OnFailure"]["Destination"]
                .as_str()
                .unwrap_or_default();
            for ignored in [
                "ParallelizationFactor",
                "MaximumBatchingWindowInSeconds",
                "MaximumRecordAgeInSeconds",
            ] {
                if props.get(ignored).is_some() {
                    notes.push(format!("{id}: {ignored} is not emulated"));
                }
            }
            d.mappings.push(Mapping {
                logical_id: id.to_owned(),
                function: f,
                source,
                batch_size: number(&props["BatchSize"]).unwrap_or(10) as usize,
                filters,
                report_item_failures: props["FunctionResponseTypes"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|x| x == "ReportBatchItemFailures")),
                bisect: props["BisectBatchOnFunctionError"].as_bool().unwrap_or(false),
                max_retries: number(&props["MaximumRetryAttempts"]).map(|n| n as u32),
                on_failure: queue_by_arn(destination).map(|q| q.url),
            });
        }
        for (id, res) in template.of_type("AWS::SNS::Subscription") {
            if !existing.iter().any(|e| e == id) {
                continue;
            }
            let props = r.resolve(&res["Properties"])?;
            match props["Protocol"].as_str() {
                Some("lambda") => {
                    let f = props["Endpoint"]
                        .as_str()
                        .and_then(function_of)
                        .ok_or_else(|| format!("{id}: its function is not one the local run runs"))?;
                    d.subscriptions.push(Subscription {
                        topic_arn: props["TopicArn"].as_str().unwrap_or_default().to_owned(),
                        function: f,
                        filter_policy: props.get("FilterPolicy").cloned(),
                    });
                    if props.get("RedrivePolicy").is_some() {
                        notes.push(format!("{id}: the subscription's redrive policy is not emulated (deliveries to a local function do not fail)"));
                    }
                }
                other => notes.push(format!("{id}: {} subscriptions are not emulated", other.unwrap_or("?"))),
            }
        }
        for (id, res) in template.of_type("AWS::SES::ReceiptRule") {
            if !existing.iter().any(|e| e == id) {
                continue;
            }
            let rule = r.resolve(&res["Properties"]["Rule"])?;
            let actions = rule["Actions"].as_array().cloned().unwrap_or_default();
            let s3 = actions.iter().find_map(|a| a.get("S3Action"));
            let lambda = actions.iter().find_map(|a| a.get("LambdaAction"));
            if let (Some(s3), Some(lambda)) = (s3, lambda) {
                d.receipt_rules.push(ReceiptRule {
                    bucket: s3["BucketName"].as_str().unwrap_or_default().to_owned(),
                    prefix: s3["ObjectKeyPrefix"].as_str().unwrap_or_default().to_owned(),
                    function: lambda["FunctionArn"]
                        .as_str()
                        .and_then(function_of)
                        .ok_or_else(|| format!("{id}: its function is not one the local run runs"))?,
                    invocation_type: lambda["InvocationType"].as_str().unwrap_or("Event").to_owned(),
                });
            }
            notes.push(format!("{id}: verdicts and recipients come from `intake-local mail`; the rule set's activation and TLS policy are not emulated"));
        }
        // The load balancer's target: read even when the stack has no load balancer (no VPC),
        // since the local front door plays it.
        for (_, res) in template.of_type("AWS::ElasticLoadBalancingV2::TargetGroup") {
            if res["Properties"]["TargetType"] == "lambda" {
                for target in res["Properties"]["Targets"].as_array().into_iter().flatten() {
                    if let Ok(t) = r.string(&target["Id"]) {
                        d.front_door = function_of(&t);
                    }
                }
            }
        }
        if d.front_door.is_some() {
            notes.push("the load balancer (listeners, TLS, WAF, access logs): a local front door on plain HTTP forwards to its target".into());
        }

        let emulated = [
            "AWS::Lambda::Function",
            "AWS::Lambda::Alias",
            "AWS::Lambda::Version",
            "AWS::Lambda::LayerVersion",
            "AWS::Lambda::Permission",
            "AWS::Lambda::EventInvokeConfig",
            "AWS::Lambda::EventSourceMapping",
            "AWS::IAM::Role",
            "AWS::DynamoDB::Table",
            "AWS::SQS::Queue",
            "AWS::SNS::Topic",
            "AWS::SNS::Subscription",
            "AWS::S3::Bucket",
            "AWS::SES::ReceiptRule",
            "AWS::SES::ReceiptRuleSet",
            "AWS::KMS::Key",
        ];
        let mut others: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (id, res) in template.resources() {
            let kind = res["Type"].as_str().unwrap_or_default();
            if existing.iter().any(|e| e == id) && !emulated.contains(&kind) {
                others.entry(kind.to_owned()).or_default().push(id.to_owned());
            }
        }
        for (kind, ids) in others {
            notes.push(format!("{kind} ({}): not emulated", ids.join(", ")));
        }
        notes.push(
            "function aliases run the code that is built; reserved concurrency: at most 4 environments per function; SQS mappings poll with 5 pollers (Lambda starts with 5 and scales up)"
                .into(),
        );
        d.notes = notes;
        Ok(d)
    }

    /// A function by its logical id, or an error naming the ones there are.
    pub fn function(&self, logical_id: &str) -> Result<&Function, String> {
        self.functions.get(logical_id).ok_or_else(|| {
            format!(
                "the template runs no function {logical_id}; it has {}",
                self.functions.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// The one table, bucket and events topic of intake's template (for the harness and the
    /// settings other shells read).
    pub fn table(&self) -> Option<&Table> {
        self.tables.values().next()
    }

    pub fn bucket(&self) -> Option<&String> {
        self.buckets.values().next()
    }

    /// What the start-up report says about the stack.
    pub fn report(&self) -> String {
        let mut out = format!(
            "template.yaml as stack {} (account {}, region {}):\n",
            self.stack.name, self.stack.account, self.stack.region
        );
        for f in self.functions.values() {
            out.push_str(&format!(
                "  {:24} {} ({} s, {} MB, {} variables, {} statements)\n",
                f.logical_id,
                f.name,
                f.timeout.as_secs(),
                f.memory_mb,
                f.environment.len(),
                f.role.len()
            ));
        }
        out.push_str("not emulated:\n");
        for note in &self.notes {
            out.push_str(&format!("  - {note}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samconfig_parameter_overrides_are_read_as_sam_reads_them() {
        let p = parameter_overrides(r#"Environment=prod LogLevel=INFO MailDomain="mail.example.com" Empty="" Last=1"#);
        assert_eq!(p["Environment"], "prod");
        assert_eq!(p["LogLevel"], "INFO");
        assert_eq!(p["MailDomain"], "mail.example.com");
        assert_eq!(p["Empty"], "");
        assert_eq!(p["Last"], "1");
        assert!(parameter_overrides("").is_empty());
    }
}
