//! The sqs function: deferred work (blob sweeps), documents whose processing failed, and
//! events the sns function could not fan out. The same binary runs as the large-object
//! function, on the large-object queue (template.yaml, `LargeObjectFunction`).

// The work futures nest the SDK's deeply; their layout needs more than the default depth.
#![recursion_limit = "256"]

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use intake_core::ports::{OsRandom, SystemClock};
use intake_core::sweep::Sweeper;
use intake_core::webhooks::Fanout;
use intake_lambda::{deadline, telemetry};
use intake_sqs::Worker;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let setup = intake_lambda::setup().await?;
    // Each client is built once; the use cases share them.
    let cataloguer = setup.cataloguer()?;
    let worker = Worker {
        sweeper: Sweeper {
            ledger: cataloguer.catalog.clone(),
            blobs: cataloguer.blobs.clone(),
            clock: Arc::new(SystemClock),
            ids: Arc::new(OsRandom),
            grace: setup.config.sweep_grace,
        },
        fanout: Fanout {
            catalog: cataloguer.catalog.clone(),
            deliveries: setup.webhook_queue()?,
            work: cataloguer.queue.clone(),
            clock: Arc::new(SystemClock),
            grace: setup.config.sweep_grace,
        },
        queue: cataloguer.queue.clone(),
        // Large objects of records the s3 function gave up on go where it would send them.
        large: setup.large_objects(),
        cataloguer,
    };
    let worker = &worker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let until = deadline::instant(event.context.deadline());
        let work = async { Ok::<_, deadline::OutOfTime>(intake_sqs::handle(worker, event.payload, until).await) };
        deadline::bounded(until, work)
            .instrument(telemetry::invocation_span(Some(&event.context)))
            .await
    }))
    .await
}
