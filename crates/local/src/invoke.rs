//! Asynchronous invocation, as Lambda does it for S3 notifications, SNS and SES: the event is
//! queued, tried, retried twice after a failure, and then, if it never succeeded, sent to the
//! function's on-failure destination as Lambda's invocation record. Locally the retries come
//! after seconds instead of Lambda's one and two minutes; everything else is as deployed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::gate::Ledger;
use crate::iam;
use crate::runtime::{FunctionHost, Outcome};

/// An asynchronous event source's settings (the template's `EventInvokeConfig`).
#[derive(Clone)]
pub struct AsyncInvoke {
    pub function: Arc<FunctionHost>,
    /// The function's ARN, as invocation records name it.
    pub function_arn: String,
    /// Retries after the first attempt (Lambda: 0 to 2, default 2).
    pub retries: u32,
    /// Waits before each retry (Lambda: about 1 and 2 minutes).
    pub backoff: Vec<Duration>,
    /// Where the invocation record goes when every attempt failed.
    pub on_failure: Option<Destination>,
}

/// An SQS queue, as a destination. Lambda sends to it with the function's role, so the send
/// is authorized against that role ([`Ledger::authorize`]) when a ledger is given.
#[derive(Clone)]
pub struct Destination {
    pub client: intake_aws::aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub ledger: Option<Arc<Ledger>>,
}

impl Destination {
    /// Sends `body` as `function` (its logical id), if its role allows it.
    pub async fn send(&self, function: &str, body: String) -> Result<(), String> {
        if let Some(ledger) = &self.ledger {
            let request = iam::Request::new("sqs:SendMessage", &self.queue_arn);
            if !ledger.authorize(function, "SendMessage (destination)", &request) {
                return Err(format!(
                    "AccessDenied: the role of {function} may not sqs:SendMessage to {}",
                    self.queue_arn
                ));
            }
        }
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
    }
}

impl AsyncInvoke {
    pub fn new(function: Arc<FunctionHost>, on_failure: Option<Destination>) -> Self {
        Self {
            function_arn: format!(
                "arn:aws:lambda:{}:{}:function:{}",
                crate::local_aws::REGION,
                crate::local_aws::DEFAULT_ACCOUNT,
                function.name()
            ),
            function,
            retries: 2,
            backoff: vec![Duration::from_secs(1), Duration::from_secs(2)],
            on_failure,
        }
    }

    /// Queues `event` and returns at once, as Lambda answers an `Event` invocation with 202.
    pub fn send(&self, event: Bytes) {
        let this = self.clone();
        tokio::spawn(async move { this.run(event).await });
    }

    /// Tries `event` until it succeeds or the retries are used up; the answer of the attempt
    /// that succeeded, `None` if none did.
    pub async fn run(&self, event: Bytes) -> Option<Bytes> {
        let name = self.function.name().to_owned();
        let mut last = None;
        for attempt in 0..=self.retries {
            if attempt > 0 {
                let wait = self
                    .backoff
                    .get(attempt as usize - 1)
                    .copied()
                    .unwrap_or(Duration::from_secs(2));
                tokio::time::sleep(wait).await;
            }
            let invocation = self.function.invoke(event.clone()).await;
            match &*invocation.outcome {
                Outcome::Response(answer) => return Some(answer.clone()),
                failed => {
                    eprintln!(
                        "[async] {name} attempt {} of {} failed: {}",
                        attempt + 1,
                        self.retries + 1,
                        invocation.payload().err().unwrap_or_default()
                    );
                    last = Some((invocation.request_id.clone(), error_payload(failed)));
                }
            }
        }
        let (request_id, error) = last?;
        match &self.on_failure {
            Some(destination) => {
                let record = failure_record(&self.function_arn, &request_id, self.retries + 1, &event, error);
                match destination.send(&name, record.to_string()).await {
                    Ok(()) => eprintln!("[async] {name} gave up; the event went to its on-failure destination"),
                    Err(e) => eprintln!("[async] {name} gave up and its on-failure destination failed: {e}"),
                }
            }
            None => eprintln!("[async] {name} gave up; it has no on-failure destination: the event is lost"),
        }
        None
    }
}

/// What the function said when it failed, as Lambda puts it in `responsePayload`.
fn error_payload(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Error(body) => {
            serde_json::from_slice(body).unwrap_or_else(|_| json!({ "errorMessage": String::from_utf8_lossy(body) }))
        }
        Outcome::Failed(why) => json!({ "errorType": "Runtime.ExitError", "errorMessage": why }),
        Outcome::Response(_) => Value::Null,
    }
}

/// Lambda's record of an asynchronous invocation that failed every attempt.
pub fn failure_record(function_arn: &str, request_id: &str, attempts: u32, event: &[u8], error: Value) -> Value {
    json!({
        "version": "1.0",
        "timestamp": OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default(),
        "requestContext": {
            "requestId": request_id,
            "functionArn": format!("{function_arn}:$LATEST"),
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts
        },
        "requestPayload": serde_json::from_slice::<Value>(event).unwrap_or(Value::Null),
        "responseContext": { "statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled" },
        "responsePayload": error
    })
}
