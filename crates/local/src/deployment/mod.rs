//! template.yaml, deployed on the local AWS: the resources it declares, created with the names
//! a stack would give them (for a chosen stack name, account and region), each function with
//! exactly the environment and role the template resolves for it, and the event wiring read
//! from what the SAM transform generates (bucket notifications, event source mappings, SNS
//! subscriptions, invoke configs, the SES receipt rule, the load balancer's target). What the
//! local run does not emulate is listed, with why, in [`Deployment::notes`].

//!
//! Each CloudFormation resource type the local run knows has its own provisioner (a file of
//! this folder): how it is named, and what creating it means locally. [`STEPS`] is the order
//! they run in; a type none of them knows is listed in the notes as not emulated.

mod bucket;
mod events_rule;
mod function;
mod guardduty_plan;
mod invoke_config;
mod kms_key;
mod layer;
mod log_group;
mod mapping;
mod model;
mod permission;
mod queue;
mod receipt_rule;
mod role;
mod subscription;
mod table;
mod target_group;
mod topic;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use self::model::*;
use crate::iam::Statement;
use crate::local_aws::LocalApi;
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
                region: crate::local_aws::REGION.into(),
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
    pub malware_plans: Vec<MalwarePlan>,
    pub event_rules: Vec<EventRule>,
    /// The function behind the load balancer's target group.
    pub front_door: Option<String>,
    /// What is not emulated, and why.
    pub notes: Vec<String>,
}

/// The provisioning steps, in the order a deployment runs them: a step may use what an earlier
/// one made (a function's role and layers; a mapping's queue and function).
const STEPS: [(&str, Step); 17] = [
    ("AWS::KMS::Key", Step::KmsKey),
    ("AWS::DynamoDB::Table", Step::Table),
    ("AWS::SQS::Queue", Step::Queue),
    ("AWS::SQS::Queue", Step::QueueRedrive),
    ("AWS::SNS::Topic", Step::Topic),
    ("AWS::IAM::Role", Step::Role),
    ("AWS::Lambda::LayerVersion", Step::Layer),
    ("AWS::Lambda::Function", Step::Function),
    ("AWS::S3::Bucket", Step::Bucket),
    ("AWS::Lambda::Permission", Step::Permission),
    ("AWS::Lambda::EventInvokeConfig", Step::InvokeConfig),
    ("AWS::Lambda::EventSourceMapping", Step::Mapping),
    ("AWS::SNS::Subscription", Step::Subscription),
    ("AWS::SES::ReceiptRule", Step::ReceiptRule),
    ("AWS::ElasticLoadBalancingV2::TargetGroup", Step::TargetGroup),
    ("AWS::GuardDuty::MalwareProtectionPlan", Step::MalwarePlan),
    ("AWS::Events::Rule", Step::EventRule),
];

/// Types that are only named: what they do is part of another type's step (an alias runs its
/// function's code; a receipt rule set holds the rules). Log groups are named but not emulated
/// (a local function's log goes to the terminal).
const NAMED_ONLY: [&str; 3] = ["AWS::Lambda::Alias", "AWS::Lambda::Version", "AWS::SES::ReceiptRuleSet"];

#[derive(Debug, Clone, Copy)]
enum Step {
    KmsKey,
    Table,
    Queue,
    QueueRedrive,
    Topic,
    Role,
    Layer,
    Function,
    Bucket,
    Permission,
    InvokeConfig,
    Mapping,
    Subscription,
    ReceiptRule,
    TargetGroup,
    MalwarePlan,
    EventRule,
}

impl Step {
    /// Provisions the resource `id` (`res`: its template entry, unresolved).
    async fn run(self, cx: &mut Context<'_>, id: &str, res: &Value) -> Result<(), String> {
        match self {
            Step::KmsKey => kms_key::create(cx, id).await,
            Step::Table => table::create(cx, id, res).await,
            Step::Queue => queue::create(cx, id).await,
            Step::QueueRedrive => queue::redrive(cx, id, res).await,
            Step::Topic => topic::create(cx, id).await,
            Step::Role => role::read(cx, id, res),
            Step::Layer => layer::read(cx, id, res),
            Step::Function => function::read(cx, id, res),
            Step::Bucket => bucket::create(cx, id, res).await,
            Step::Permission => permission::read(cx, res),
            Step::InvokeConfig => invoke_config::read(cx, id, res),
            Step::Mapping => mapping::read(cx, id, res),
            Step::Subscription => subscription::read(cx, id, res),
            Step::ReceiptRule => receipt_rule::read(cx, id, res),
            Step::TargetGroup => target_group::read(cx, res),
            Step::MalwarePlan => guardduty_plan::read(cx, id, res),
            Step::EventRule => events_rule::read(cx, id, res),
        }
    }

    /// Whether the step reads resources the stack's conditions leave out: the load balancer's
    /// target group, which the local front door plays even when the stack has no load balancer
    /// (no VPC).
    fn even_if_absent(self) -> bool {
        matches!(self, Step::TargetGroup)
    }

    /// Once every resource of the step's type is provisioned: the notes that hold for the type.
    fn finish(self, cx: &mut Context<'_>) {
        match self {
            Step::Queue => queue::note(cx),
            Step::TargetGroup => target_group::note(cx),
            _ => {}
        }
    }
}

/// What `Ref` and `Fn::GetAtt` give for resource `id`, known before anything is created.
fn name(r: &Resolver<'_>, id: &str, res: &Value) -> Result<Physical, String> {
    let n = Naming {
        r,
        props: &res["Properties"],
        generated: format!("{}-{id}-{}", r.stack.name, suffix()),
    };
    match res["Type"].as_str().unwrap_or_default() {
        "AWS::Lambda::Function" => function::name(&n),
        "AWS::IAM::Role" => Ok(role::name(&n)),
        "AWS::Lambda::LayerVersion" => Ok(layer::name(&n, id)),
        "AWS::Logs::LogGroup" => log_group::name(&n),
        "AWS::S3::Bucket" => bucket::name(&n),
        "AWS::SNS::Topic" => topic::name(&n),
        "AWS::DynamoDB::Table" => table::name(&n),
        "AWS::SQS::Queue" => queue::name(&n),
        "AWS::GuardDuty::MalwareProtectionPlan" => Ok(guardduty_plan::name(&n, id)),
        "AWS::Events::Rule" => Ok(events_rule::name(&n)),
        // A key's id is made by KMS: its step creates it first and names it then.
        _ => Ok(Physical {
            reference: format!("{id}-local"),
            attributes: HashMap::new(),
        }),
    }
}

/// A resource being named: its properties and the name CloudFormation would generate for it.
struct Naming<'a> {
    r: &'a Resolver<'a>,
    props: &'a Value,
    generated: String,
}

impl Naming<'_> {
    /// The name the template gives in `property`, or the generated one.
    fn declared_or_generated(&self, property: &str) -> Result<String, String> {
        Ok(self
            .props
            .get(property)
            .map(|n| self.r.string(n))
            .transpose()?
            .unwrap_or_else(|| self.generated.clone()))
    }

    fn arn(&self, service: &str, rest: &str) -> String {
        arn(self.r.stack, service, rest)
    }
}

fn arn(stack: &StackIdentity, service: &str, rest: &str) -> String {
    format!("arn:aws:{service}:{}:{}:{rest}", stack.region, stack.account)
}

/// What the provisioners work with: the template's resolver, clients of the local AWS, and the
/// deployment as far as it is made.
struct Context<'a> {
    plan: &'a Plan,
    r: Resolver<'a>,
    api: LocalApi,
    s3: intake_aws::aws_sdk_s3::Client,
    sqs: intake_aws::aws_sdk_sqs::Client,
    sns: intake_aws::aws_sdk_sns::Client,
    /// A role's ARN -> its statements.
    roles: HashMap<String, Vec<Statement>>,
    /// A layer version's ARN -> where its content is on disk.
    layers: HashMap<String, PathBuf>,
    d: Deployment,
}

impl Context<'_> {
    fn arn(&self, service: &str, rest: &str) -> String {
        arn(&self.d.stack, service, rest)
    }

    fn note(&mut self, note: impl Into<String>) {
        self.d.notes.push(note.into());
    }

    /// The logical id of the function an ARN (of the function, an alias or a version) or a
    /// function name names, if the local run runs it.
    fn function_of(&self, target: &str) -> Option<String> {
        let base = target.splitn(8, ':').take(7).collect::<Vec<_>>().join(":");
        self.d
            .functions
            .values()
            .find(|f| self.arn("lambda", &format!("function:{}", f.name)) == base || f.name == target)
            .map(|f| f.logical_id.clone())
    }

    /// `function_of`, or an error saying the resource's function is not run locally.
    fn function_or_refuse(&self, id: &str, target: Option<&str>) -> Result<String, String> {
        target
            .and_then(|t| self.function_of(t))
            .ok_or_else(|| format!("{id}: its function is not one the local run runs"))
    }

    fn queue_by_arn(&self, arn: &str) -> Option<Queue> {
        self.d.queues.values().find(|q| q.arn == arn).cloned()
    }
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
    /// the functions and the wiring: every resource is named first (what `Ref` and `Fn::GetAtt`
    /// give needs no AWS call), then each type's provisioner runs in [`STEPS`]' order.
    pub async fn create(plan: &Plan, endpoint: &str) -> Result<Self, String> {
        let template = Template::transform(&plan.python, &plan.repo, &plan.template, &plan.stack, &plan.parameters)?;
        let stack = &plan.stack;
        let mut r = Resolver::new(&template, stack, &plan.parameters);
        let mut existing = BTreeSet::new();
        for (id, res) in template.resources() {
            if r.exists(res)? {
                existing.insert(id.to_owned());
                let physical = name(&r, id, res)?;
                r.physical.insert(id.to_owned(), physical);
            }
        }
        // Aliases and versions name their function.
        for (id, res) in template.resources() {
            if let Some(physical) = function::alias_or_version(&r, res)? {
                r.physical.insert(id.to_owned(), physical);
            }
        }

        let sdk = crate::local_aws::sdk_config(endpoint, &stack.account).await;
        let mut cx = Context {
            plan,
            r,
            api: LocalApi::new(endpoint).with_account(&stack.account),
            s3: intake_aws::s3_client(&sdk, true),
            sqs: intake_aws::sqs_client(&sdk),
            sns: intake_aws::sns_client(&sdk),
            roles: HashMap::new(),
            layers: HashMap::new(),
            d: Deployment {
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
                malware_plans: Vec::new(),
                event_rules: Vec::new(),
                front_door: None,
                notes: Vec::new(),
            },
        };
        for (kind, step) in STEPS {
            let mut any = false;
            for (id, res) in template.of_type(kind) {
                if existing.contains(id) || step.even_if_absent() {
                    step.run(&mut cx, id, res).await?;
                    any = true;
                }
            }
            if any {
                step.finish(&mut cx);
            }
        }

        let mut others: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (id, res) in template.resources() {
            let kind = res["Type"].as_str().unwrap_or_default();
            let known = STEPS.iter().any(|(k, _)| *k == kind) || NAMED_ONLY.contains(&kind);
            if existing.contains(id) && !known {
                others.entry(kind).or_default().push(id);
            }
        }
        for (kind, ids) in others {
            cx.note(format!("{kind} ({}): not emulated", ids.join(", ")));
        }
        cx.note(
            "function aliases run the code that is built; reserved concurrency: at most 4 environments per function; SQS mappings poll with 5 pollers (Lambda starts with 5 and scales up)",
        );
        Ok(cx.d)
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
