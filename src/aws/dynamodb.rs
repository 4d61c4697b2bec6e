//! The state table: [`StateStore`] on DynamoDB. Each item is `pk` (the key), `v` (its
//! version), `data` (JSON) and `expires_at` (the table's TTL attribute). Reads are
//! strongly consistent; writes and deletes are conditional on the version read
//! (`attribute_not_exists(pk)` for a new item), so concurrent Lambda instances never
//! overwrite each other's decisions: the loser sees `ConditionalCheckFailed` and
//! decides again. Any other error means the table cannot be trusted right now, and the
//! invocation fails so Lambda retries it.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use crate::state::{MemoryStore, StateError, StateStore, Stored, Written};

/// The state table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// A store on `table` with a client built from the shared SDK configuration.
    pub fn from_conf(sdk_config: &aws_types::SdkConfig, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client: Client::new(sdk_config),
            table: table.into(),
        }
    }
}

fn unavailable<E, R>(operation: &'static str, key: &str, err: &SdkError<E, R>) -> StateError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StateError::Unavailable {
        operation,
        key: key.to_owned(),
        reason: DisplayErrorContext(err).to_string(),
    }
}

/// A conditional write's answer: done, lost the race (the condition failed), or an error.
fn written<T>(result: Result<T, (bool, StateError)>) -> Result<Written, StateError> {
    match result {
        Ok(_) => Ok(Written::Yes),
        Err((true, _)) => Ok(Written::Conflict),
        Err((false, err)) => Err(err),
    }
}

impl StateStore for DynamoStore {
    async fn get(&self, key: &str) -> Result<Option<Stored>, StateError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| unavailable("get", key, &err))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let corrupt = |reason: &str| StateError::Corrupt {
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        let version = item
            .get("v")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| corrupt("no numeric `v`"))?;
        let data = item
            .get("data")
            .and_then(|d| d.as_s().ok())
            .ok_or_else(|| corrupt("no string `data`"))?
            .clone();
        Ok(Some(Stored { version, data }))
    }

    async fn put(
        &self,
        key: &str,
        data: &str,
        expires_at: i64,
        expected: Option<u64>,
    ) -> Result<Written, StateError> {
        let version = expected.map_or(1, |v| v + 1);
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_owned()))
            .item("v", AttributeValue::N(version.to_string()))
            .item("data", AttributeValue::S(data.to_owned()))
            .item("expires_at", AttributeValue::N(expires_at.to_string()));
        request = match expected {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(expected) => request
                .condition_expression("v = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(expected.to_string())),
        };
        let result = request.send().await;
        written(result.map_err(|err| {
            let conflict = err
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception());
            (conflict, unavailable("put", key, &err))
        }))
    }

    async fn delete(&self, key: &str, expected: u64) -> Result<Written, StateError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .condition_expression("v = :expected")
            .expression_attribute_values(":expected", AttributeValue::N(expected.to_string()))
            .send()
            .await;
        written(result.map_err(|err| {
            let conflict = err
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception());
            (conflict, unavailable("delete", key, &err))
        }))
    }
}

/// The function's state: the table, or memory when `STATE_TABLE` is unset (local runs:
/// state then lasts as long as the warm container).
#[derive(Debug)]
pub enum StateBackend {
    /// The DynamoDB table.
    Table(DynamoStore),
    /// Process memory.
    Memory(MemoryStore),
}

impl StateStore for StateBackend {
    async fn get(&self, key: &str) -> Result<Option<Stored>, StateError> {
        match self {
            StateBackend::Table(store) => store.get(key).await,
            StateBackend::Memory(store) => store.get(key).await,
        }
    }

    async fn put(
        &self,
        key: &str,
        data: &str,
        expires_at: i64,
        expected: Option<u64>,
    ) -> Result<Written, StateError> {
        match self {
            StateBackend::Table(store) => store.put(key, data, expires_at, expected).await,
            StateBackend::Memory(store) => store.put(key, data, expires_at, expected).await,
        }
    }

    async fn delete(&self, key: &str, expected: u64) -> Result<Written, StateError> {
        match self {
            StateBackend::Table(store) => store.delete(key, expected).await,
            StateBackend::Memory(store) => store.delete(key, expected).await,
        }
    }
}
