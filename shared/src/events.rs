//! The errors of the entrypoints that are not HTTP: the table's stream, SQS and EventBridge.
//! Lambda sees them; no client does.

use crate::parse::Invalid;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The event or message is not something the function can act on; delivering it again
    /// will not help.
    #[error("{0}")]
    Invalid(String),
    /// It may work later: another data migration is running.
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Invalid> for EventError {
    fn from(Invalid(message): Invalid) -> Self {
        Self::Invalid(message)
    }
}
