//! The webhook function: delivers intake's events to webhooks, retrying for about three days.

// The delivery future nests the SDK's deeply; its layout needs more than the default depth.
#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use intake_core::ports::{OsRandom, SystemClock};
use intake_core::webhooks::{Deliverer, Schedule};
use intake_lambda::{deadline, telemetry};
use intake_webhooks::SqsRetryQueue;
use intake_webhooks::http::HyperWebhookClient;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let setup = intake_lambda::setup().await?;
    let deliverer = Deliverer {
        catalog: setup.catalog(),
        client: HyperWebhookClient::new(setup.config.settings.allow_private_webhooks),
        sealer: setup.sealer()?,
        clock: Arc::new(SystemClock),
        ids: Arc::new(OsRandom),
        schedule: Schedule::default(),
        timeout: Duration::from_secs(10),
        // Longer than the function's timeout (60 s): a claim outlives its holder.
        lease: Duration::from_secs(90),
        breakers: Default::default(),
    };
    let queue = SqsRetryQueue {
        client: setup.clients.sqs(),
        queue_url: setup
            .config
            .webhook_queue_url
            .clone()
            .ok_or(intake_lambda::ConfigError::Missing("WEBHOOK_QUEUE_URL"))?,
    };
    let (deliverer, queue) = (&deliverer, &queue);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let until = deadline::instant(event.context.deadline());
        let work = async {
            Ok::<_, deadline::OutOfTime>(intake_webhooks::handle(deliverer, queue, event.payload, until).await)
        };
        deadline::bounded(until, work)
            .instrument(telemetry::invocation_span(Some(&event.context)))
            .await
    }))
    .await
}
