//! The dynamodb-stream function: announces catalog changes on SNS, keeps statistics, and
//! starts each document's retention.

// The announcing future nests the SDK's deeply; its layout needs more than the default depth.
#![recursion_limit = "256"]

use aws_lambda_events::event::dynamodb::Event;
use intake_core::announce::Announcer;
use intake_lambda::{deadline, telemetry};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let setup = intake_lambda::setup().await?;
    let announcer = Announcer {
        stats: setup.catalog(),
        publisher: setup.clients.publisher(setup.topic_arn()?),
    };
    let retention = intake_dynamodb_stream::Retention {
        catalog: setup.catalog(),
        queue: setup.work_queue()?,
        defaults: setup.policy()?.quotas,
    };
    let (announcer, retention) = (&announcer, &retention);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let until = deadline::instant(event.context.deadline());
        let work = async {
            Ok::<_, deadline::OutOfTime>(intake_dynamodb_stream::handle(announcer, retention, event.payload).await)
        };
        deadline::bounded(until, work)
            .instrument(telemetry::invocation_span(Some(&event.context)))
            .await
    }))
    .await
}
