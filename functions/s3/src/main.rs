//! The s3 function: catalogues what arrives under `incoming/` in the intake bucket.

// The cataloguing future nests the SDK's deeply; its layout needs more than the default depth.
#![recursion_limit = "256"]

use aws_lambda_events::event::s3::S3Event;
use intake_lambda::{deadline, telemetry};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let setup = intake_lambda::setup().await?;
    let cataloguer = &setup.cataloguer()?;
    // Objects too large for this function's share of a CPU go to the large-object function.
    let large = &setup.large_objects();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| async move {
        let until = deadline::instant(event.context.deadline());
        deadline::bounded(until, intake_s3::handle(cataloguer, large.as_ref(), event.payload))
            .instrument(telemetry::invocation_span(Some(&event.context)))
            .await
    }))
    .await
}
