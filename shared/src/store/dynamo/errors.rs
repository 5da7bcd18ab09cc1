//! What DynamoDB's answers mean to the service: a passing fault worth retrying, a failure,
//! or a conditional write whose condition did not hold.

use std::fmt::Debug;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::store::StoreError;

pub(crate) fn store_error<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    let passing = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some(
                "ThrottlingException"
                    | "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
            )
        ),
        _ => false,
    };
    let detail = DisplayErrorContext(&error).to_string();
    if passing {
        StoreError::Unavailable(detail)
    } else {
        StoreError::Internal(detail)
    }
}

/// Whether a conditional write was applied: `Ok(false)` when `condition_failed` says its
/// condition did not hold because someone wrote first; nothing was written then.
pub(crate) fn applied<T, E, R>(
    result: Result<T, SdkError<E, R>>,
    condition_failed: impl Fn(&E) -> bool,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(error) if error.as_service_error().is_some_and(&condition_failed) => Ok(false),
        Err(error) => Err(store_error(error)),
    }
}

/// Every attempt at a read-then-write lost its race: worth trying again later.
pub(crate) fn contention() -> StoreError {
    StoreError::Unavailable("the job changed under every attempt to write it".into())
}
