//! The reply to one PostgreSQL request as the protocol assembles it
//! (`PgResult`), and the failures the client finds itself (`ClientError`).

use std::any::Any;
use std::sync::Arc;

use crate::codec::pg::{Column, DataRow, ErrorFields};

/// The reply to one request.
#[derive(Default)]
pub struct PgResult {
    /// What the request was given to carry back (`Pending::with_ctx`).
    pub ctx: Option<Arc<dyn Any + Send + Sync>>,
    pub columns: Option<Arc<[Column]>>,
    pub rows: Vec<DataRow>,
    /// The last CommandComplete tag ("SELECT 1", "INSERT 0 5").
    pub status: Option<String>,
    /// The first error (the server skips the rest of the request after it).
    pub error: Option<ErrorFields>,
    /// Parameter types, if the request described a statement.
    pub param_types: Option<Vec<u32>>,
    /// A failure found by the client, not the server (wins over `error`).
    pub client_error: Option<ClientError>,
}

/// A request that failed on the client's side while the connection stayed
/// in step with the server.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientError {
    /// A message of the reply was over `max_message_size` (discarded).
    TooLarge(String),
    /// The server answered in a way this call cannot take (COPY data to a
    /// plain query).
    Interface(String),
}
