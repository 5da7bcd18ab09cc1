//! What DynamoDB's answers mean to the service: a passing fault worth retrying, a refusal,
//! a conditional write whose condition did not hold, or a transaction cancelled, and why.

use std::fmt::Debug;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::CancellationReason;

use super::item::Item;
use crate::store::{StoreError, Transient};

/// The transient kind of a DynamoDB error code, if it is one.
fn transient_code(code: &str) -> Option<Transient> {
    Some(match code {
        "ThrottlingException"
        | "ProvisionedThroughputExceededException"
        | "RequestLimitExceeded"
        | "ThrottlingError"
        | "ProvisionedThroughputExceeded" => Transient::Throttled,
        "InternalServerError" | "ServiceUnavailable" => Transient::ServerError,
        "TransactionConflictException"
        | "TransactionInProgressException"
        | "TransactionConflict"
        | "TransactionCanceledException" => Transient::Conflict,
        _ => return None,
    })
}

pub(crate) fn store_error<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    let detail = DisplayErrorContext(&error).to_string();
    let kind = match &error {
        SdkError::TimeoutError(_) => Some(Transient::TimedOut),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => Some(Transient::TimedOut),
        SdkError::DispatchFailure(_) => Some(Transient::Unreachable),
        SdkError::ResponseError(_) => Some(Transient::ServerError),
        SdkError::ServiceError(service) => service.err().code().and_then(transient_code),
        _ => None,
    };
    match (kind, &error) {
        (Some(kind), _) => StoreError::Unavailable { kind, detail },
        (None, SdkError::ServiceError(service)) => StoreError::Refused {
            code: service
                .err()
                .code()
                .unwrap_or("an unnamed error")
                .to_owned(),
            detail,
        },
        (None, _) => StoreError::Refused {
            code: "a request that could not be built".to_owned(),
            detail,
        },
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
    StoreError::unavailable(
        Transient::Contention,
        "the item changed under every attempt to write it",
    )
}

/// Why a transaction was not applied, read from its cancellation reasons.
#[derive(Debug)]
pub(crate) enum Cancellation {
    /// The condition of the item at this place in the transaction did not hold; DynamoDB
    /// evaluated it, so this holds whatever else went wrong. The item as it was, when the
    /// request asked for it.
    ConditionFailed(usize, Option<Item>),
    /// Throttling, a conflicting transaction, another reason, or no answer: nothing is
    /// known about the conditions.
    Failed(StoreError),
}

/// What became of a transaction: applied, or why not.
pub(crate) fn transaction<T, R>(
    result: Result<T, SdkError<TransactWriteItemsError, R>>,
) -> Result<(), Cancellation>
where
    R: Debug + Send + Sync + 'static,
{
    let error = match result {
        Ok(_) => return Ok(()),
        Err(error) => error,
    };
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            let detail = DisplayErrorContext(&error).to_string();
            Err(cancellation(cancelled.cancellation_reasons(), detail))
        }
        _ => Err(Cancellation::Failed(store_error(error))),
    }
}

/// Reads `reasons`, one per item of the transaction, as DynamoDB gives them.
fn cancellation(reasons: &[CancellationReason], detail: String) -> Cancellation {
    let code = |reason: &CancellationReason| reason.code().unwrap_or("None").to_owned();
    if let Some((index, reason)) = reasons
        .iter()
        .enumerate()
        .find(|(_, reason)| code(reason) == "ConditionalCheckFailed")
    {
        return Cancellation::ConditionFailed(index, reason.item().cloned());
    }
    let codes: Vec<String> = reasons.iter().map(code).filter(|c| c != "None").collect();
    let transient = codes.iter().find_map(|code| transient_code(code));
    Cancellation::Failed(match transient {
        Some(kind) => StoreError::Unavailable { kind, detail },
        None => StoreError::Refused {
            code: codes
                .first()
                .cloned()
                .unwrap_or_else(|| "TransactionCanceled".into()),
            detail,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(codes: &[&str]) -> Vec<CancellationReason> {
        codes
            .iter()
            .map(|code| CancellationReason::builder().code(*code).build())
            .collect()
    }

    #[test]
    fn only_a_failed_condition_says_something_about_the_items() {
        let read = |codes: &[&str]| cancellation(&reasons(codes), "detail".into());
        assert!(matches!(
            read(&["None", "ConditionalCheckFailed"]),
            Cancellation::ConditionFailed(1, None)
        ));
        assert!(matches!(
            read(&["ThrottlingError", "ConditionalCheckFailed"]),
            Cancellation::ConditionFailed(1, None)
        ));
        for (codes, kind) in [
            (&["None", "ThrottlingError"][..], Transient::Throttled),
            (&["TransactionConflict", "None"][..], Transient::Conflict),
            (
                &["ProvisionedThroughputExceeded", "None"][..],
                Transient::Throttled,
            ),
        ] {
            match read(codes) {
                Cancellation::Failed(StoreError::Unavailable { kind: found, .. }) => {
                    assert_eq!(found, kind, "{codes:?}");
                }
                other => panic!("{codes:?}: {other:?}"),
            }
        }
        assert!(matches!(
            read(&["ValidationError", "None"]),
            Cancellation::Failed(StoreError::Refused { .. })
        ));
    }
}
