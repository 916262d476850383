//! The floor for the dynamodb-stream function: a `lambda_runtime` function that merely parses
//! the batch into `aws_lambda_events`'s DynamoDB event (as intake's function does, through the
//! same runtime) and reports no failures, doing nothing else.

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Event>| async move {
        std::hint::black_box(&event.payload);
        Ok::<_, Error>(DynamoDbEventResponse::default())
    }))
    .await
}
