//! The Qdrant vector backend, for knowledge that outgrows one machine and is shared by several
//! instances.
//!
//! Points carry the chunk id as a UUID (chunk ids are 128-bit hex), the vector, and the payload
//! `chunk_id`, `doc_type` and `document` (keyword indexes on the last two serve filters) and
//! [`RECORD_FIELD`]: the whole chunk as JSON ([`SharedChunk`]: its text, headings, file and
//! sentence vectors), so that every instance rebuilds its lexical index and answers from the
//! same chunks. The collection's metadata records the settings the index was built with
//! ([`SETTINGS_KEY`]) and a revision changed by every ingestion ([`REVISION_KEY`]).
//!
//! Requests are built by pure functions (unit-tested without a server) and run on a small
//! private tokio runtime, so the synchronous API can be called from any thread, async or not.

use std::future::Future;
use std::time::Duration;

use std::collections::HashMap;

use qdrant_client::qdrant::{
    self, Condition, CountPointsBuilder, CreateCollection, CreateCollectionBuilder, CreateFieldIndexCollection,
    CreateFieldIndexCollectionBuilder, DeletePoints, DeletePointsBuilder, Distance, FieldType, PointId, PointStruct,
    PointsIdsList, Query, QueryPoints, QueryPointsBuilder, ScrollPoints, ScrollPointsBuilder, UpdateCollection,
    UpsertPoints, UpsertPointsBuilder, VectorParamsBuilder,
};
use qdrant_client::{Payload, Qdrant};
use serde::{Deserialize, Serialize};

use crate::store::ChunkRecord;
use crate::vector::{VectorEntry, VectorIndex};
use crate::{Error, Filter, Result};

/// The payload field holding a point's whole chunk ([`SharedChunk`] as JSON).
pub const RECORD_FIELD: &str = "switchboard_chunk";
/// The collection metadata key holding the settings the index was built with (JSON).
pub const SETTINGS_KEY: &str = "switchboard_settings";
/// The collection metadata key holding the revision, changed by every ingestion that changed
/// something; instances compare it to know when to reload.
pub const REVISION_KEY: &str = "switchboard_revision";
/// Points read per page when an instance loads the collection.
const SCROLL_PAGE: u32 = 256;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const UPSERT_BATCH: usize = 256;

/// A chunk as stored in a point's payload: the chunk, and what an instance needs to rebuild
/// the record of the file it came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct SharedChunk {
    #[serde(flatten)]
    pub chunk: ChunkRecord,
    /// The file's content hash, title, and this chunk's place among the file's chunks: an
    /// instance takes a file only when all its chunks of one hash are there.
    pub file_hash: String,
    pub file_title: String,
    pub index: u32,
    pub count: u32,
    /// The sentence vectors ([`crate::store::UnitVectors`] bytes, hex).
    pub units: String,
    /// When it was written (milliseconds since the epoch): of two complete versions of a file,
    /// the newer wins.
    pub written_ms: u64,
}

/// A vector to store with its whole chunk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SharedEntry<'a> {
    pub vector: VectorEntry<'a>,
    pub chunk: &'a SharedChunk,
}

/// Vectors stored in a Qdrant collection.
pub struct QdrantVectors {
    client: Qdrant,
    collection: String,
    dim: usize,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for QdrantVectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantVectors").field("collection", &self.collection).field("dim", &self.dim).finish()
    }
}

/// Converts a chunk id (32 hex digits) to a Qdrant point id (a UUID).
pub fn point_id(chunk_id: &str) -> Result<PointId> {
    let hex = chunk_id.as_bytes();
    if hex.len() != 32 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return Err(Error::Qdrant(format!("chunk id {chunk_id} is not 32 hex digits")));
    }
    let c = chunk_id.to_ascii_lowercase();
    Ok(PointId::from(format!("{}-{}-{}-{}-{}", &c[..8], &c[8..12], &c[12..16], &c[16..20], &c[20..])))
}

/// Converts a point id back to the chunk id.
pub fn chunk_id_of(point: &PointId) -> Option<String> {
    match point.point_id_options.as_ref()? {
        qdrant::point_id::PointIdOptions::Uuid(uuid) => Some(uuid.replace('-', "").to_ascii_lowercase()),
        qdrant::point_id::PointIdOptions::Num(_) => None,
    }
}

/// The request creating the collection (cosine distance).
pub fn create_collection_request(collection: &str, dim: usize) -> CreateCollection {
    CreateCollectionBuilder::new(collection)
        .vectors_config(VectorParamsBuilder::new(dim as u64, Distance::Cosine))
        .build()
}

/// The requests creating the keyword payload indexes used by filters.
pub fn field_index_requests(collection: &str) -> Vec<CreateFieldIndexCollection> {
    ["doc_type", "document"]
        .into_iter()
        .map(|field| CreateFieldIndexCollectionBuilder::new(collection, field, FieldType::Keyword).wait(true).build())
        .collect()
}

/// The payload every point has: its chunk id and the fields filters match.
fn filter_payload(entry: &VectorEntry<'_>) -> Payload {
    let mut payload = Payload::new();
    payload.insert("chunk_id", entry.chunk_id);
    payload.insert("doc_type", entry.doc_type);
    payload.insert("document", entry.document);
    payload
}

/// The request upserting a batch of vectors.
pub fn upsert_request(collection: &str, entries: &[VectorEntry<'_>]) -> Result<UpsertPoints> {
    let mut points = Vec::with_capacity(entries.len());
    for entry in entries {
        points.push(PointStruct::new(point_id(entry.chunk_id)?, entry.vector.to_vec(), filter_payload(entry)));
    }
    Ok(UpsertPointsBuilder::new(collection, points).wait(true).build())
}

/// The request upserting vectors with their whole chunks.
pub(crate) fn upsert_shared_request(collection: &str, entries: &[SharedEntry<'_>]) -> Result<UpsertPoints> {
    let mut points = Vec::with_capacity(entries.len());
    for entry in entries {
        let vector = entry.vector;
        let mut payload = filter_payload(&vector);
        let record = serde_json::to_string(entry.chunk).map_err(|e| Error::Corrupt(e.to_string()))?;
        payload.insert(RECORD_FIELD, record);
        points.push(PointStruct::new(point_id(vector.chunk_id)?, vector.vector.to_vec(), payload));
    }
    Ok(UpsertPointsBuilder::new(collection, points).wait(true).build())
}

/// The request reading one page of points with their chunks (no vectors).
pub fn scroll_request(collection: &str, offset: Option<PointId>) -> ScrollPoints {
    let mut builder = ScrollPointsBuilder::new(collection).limit(SCROLL_PAGE).with_payload(true).with_vectors(false);
    if let Some(offset) = offset {
        builder = builder.offset(offset);
    }
    builder.build()
}

/// The request merging `entries` into the collection's metadata.
pub fn metadata_request(collection: &str, entries: &[(&str, &str)]) -> UpdateCollection {
    UpdateCollection {
        collection_name: collection.to_string(),
        metadata: entries.iter().map(|(key, value)| (key.to_string(), qdrant::Value::from(*value))).collect(),
        ..UpdateCollection::default()
    }
}

/// The request deleting points by chunk id.
pub fn delete_request(collection: &str, chunk_ids: &[String]) -> Result<DeletePoints> {
    let ids = chunk_ids.iter().map(|id| point_id(id)).collect::<Result<Vec<_>>>()?;
    Ok(DeletePointsBuilder::new(collection).points(PointsIdsList { ids }).wait(true).build())
}

/// The payload filter for a [`Filter`] (`None` when it filters nothing).
pub fn qdrant_filter(filter: &Filter) -> Option<qdrant::Filter> {
    let mut conditions = Vec::new();
    if !filter.doc_types.is_empty() {
        conditions.push(Condition::matches("doc_type", filter.doc_types.clone()));
    }
    if !filter.documents.is_empty() {
        conditions.push(Condition::matches("document", filter.documents.clone()));
    }
    (!conditions.is_empty()).then(|| qdrant::Filter::must(conditions))
}

/// The nearest-neighbour query.
pub fn query_request(collection: &str, vector: &[f32], n: usize, filter: Option<&Filter>) -> QueryPoints {
    let mut builder = QueryPointsBuilder::new(collection)
        .query(Query::new_nearest(vector.to_vec()))
        .limit(n as u64)
        .with_payload(false);
    if let Some(filter) = filter.and_then(qdrant_filter) {
        builder = builder.filter(filter);
    }
    builder.build()
}

impl QdrantVectors {
    /// Connects to `url` and creates `collection` (with payload indexes) if it does not exist.
    pub fn open(url: &str, api_key: Option<&str>, collection: &str, dim: usize) -> Result<Self> {
        if collection.trim().is_empty() {
            return Err(Error::Config("knowledge.qdrant.collection is empty".to_string()));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("knowledge-qdrant")
            .enable_all()
            .build()
            .map_err(|e| Error::Qdrant(format!("cannot start a runtime: {e}")))?;
        let client = {
            // The client spawns its connection pool on the current runtime.
            let _guard = runtime.enter();
            // The client's version check (a request of its own, and a warning for any server two
            // minor versions apart) is off: what Switchboard uses (points, scroll, collection
            // metadata) was tested against server 1.18.3 with this 1.20 client, and the
            // collection's own settings are checked below.
            Qdrant::from_url(url)
                .skip_compatibility_check()
                .api_key(api_key.map(str::to_string))
                .timeout(REQUEST_TIMEOUT)
                .connect_timeout(CONNECT_TIMEOUT)
                .build()
                .map_err(|e| Error::Qdrant(format!("cannot create a client for {url}: {e}")))?
        };
        let store = QdrantVectors { client, collection: collection.to_string(), dim, runtime: Some(runtime) };
        store.ensure_collection()?;
        Ok(store)
    }

    /// The collection's metadata entries whose values are strings.
    pub fn metadata(&self) -> Result<HashMap<String, String>> {
        let name = self.collection.clone();
        let info = self.run(move |client| async move { client.collection_info(name).await })?;
        let metadata = info.result.and_then(|info| info.config).map(|config| config.metadata).unwrap_or_default();
        Ok(metadata.into_iter().filter_map(|(key, value)| value.as_str().map(|v| (key, v.to_string()))).collect())
    }

    /// Merges `entries` into the collection's metadata.
    pub fn set_metadata(&self, entries: &[(&str, &str)]) -> Result<()> {
        let request = metadata_request(&self.collection, entries);
        self.run(move |client| async move { client.update_collection(request).await })?;
        Ok(())
    }

    /// The collection's name.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// Stores vectors with their whole chunks.
    pub(crate) fn upsert_shared(&self, entries: &[SharedEntry<'_>]) -> Result<()> {
        for batch in entries.chunks(UPSERT_BATCH) {
            if let Some(bad) = batch.iter().find(|e| e.vector.vector.len() != self.dim) {
                return Err(Error::EmbedderContract {
                    expected: format!("vectors of dimension {}", self.dim),
                    got: format!("a vector of dimension {}", bad.vector.vector.len()),
                });
            }
            let request = upsert_shared_request(&self.collection, batch)?;
            self.run(move |client| async move { client.upsert_points(request).await })?;
        }
        Ok(())
    }

    /// Every point's chunk id and chunk; points without a readable chunk (written by an older
    /// version, or by something else) are listed with `None`.
    pub(crate) fn scroll_chunks(&self) -> Result<Vec<(String, Option<SharedChunk>)>> {
        let mut chunks = Vec::new();
        let mut offset = None;
        loop {
            let request = scroll_request(&self.collection, offset.take());
            let page = self.run(move |client| async move { client.scroll(request).await })?;
            for point in page.result {
                let Some(chunk_id) = point.id.as_ref().and_then(chunk_id_of) else { continue };
                let chunk = point
                    .payload
                    .get(RECORD_FIELD)
                    .and_then(|value| value.as_str())
                    .and_then(|json| serde_json::from_str::<SharedChunk>(json).ok());
                chunks.push((chunk_id, chunk));
            }
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => return Ok(chunks),
            }
        }
    }

    /// Deletes the collection and everything in it.
    pub fn drop_collection(self) -> Result<()> {
        let name = self.collection.clone();
        self.run(move |client| async move { client.delete_collection(name).await })?;
        Ok(())
    }

    /// Runs a request on the private runtime and waits for it, from any thread.
    fn run<T, F>(&self, make: impl FnOnce(Qdrant) -> F) -> Result<T>
    where
        F: Future<Output = Result<T, qdrant_client::QdrantError>> + Send + 'static,
        T: Send + 'static,
    {
        let Some(runtime) = &self.runtime else {
            return Err(Error::Qdrant("client is shut down".to_string()));
        };
        let future = make(self.client.clone());
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = sender.send(future.await);
        });
        receiver
            .recv()
            .map_err(|_| Error::Qdrant("request was cancelled".to_string()))?
            .map_err(|e| Error::Qdrant(e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")))
    }

    fn ensure_collection(&self) -> Result<()> {
        let name = self.collection.clone();
        let exists = self.run(move |client| async move { client.collection_exists(name).await })?;
        if exists {
            let name = self.collection.clone();
            let info = self.run(move |client| async move { client.collection_info(name).await })?;
            let size = info
                .result
                .and_then(|info| info.config)
                .and_then(|config| config.params)
                .and_then(|params| params.vectors_config)
                .and_then(|vectors| vectors.config)
                .and_then(|config| match config {
                    qdrant::vectors_config::Config::Params(params) => Some(params.size),
                    qdrant::vectors_config::Config::ParamsMap(_) => None,
                });
            return match size {
                Some(size) if size == self.dim as u64 => Ok(()),
                other => Err(Error::Config(format!(
                    "qdrant collection {} holds vectors of size {}, the embedder produces {}",
                    self.collection,
                    other.map_or_else(|| "(named vectors)".to_string(), |s| s.to_string()),
                    self.dim
                ))),
            };
        }
        let request = create_collection_request(&self.collection, self.dim);
        self.run(move |client| async move { client.create_collection(request).await })?;
        for request in field_index_requests(&self.collection) {
            self.run(move |client| async move { client.create_field_index(request).await })?;
        }
        Ok(())
    }
}

impl Drop for QdrantVectors {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside an async context; this does not.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl VectorIndex for QdrantVectors {
    fn upsert(&self, entries: &[VectorEntry<'_>]) -> Result<()> {
        for batch in entries.chunks(UPSERT_BATCH) {
            if let Some(bad) = batch.iter().find(|e| e.vector.len() != self.dim) {
                return Err(Error::EmbedderContract {
                    expected: format!("vectors of dimension {}", self.dim),
                    got: format!("a vector of dimension {}", bad.vector.len()),
                });
            }
            let request = upsert_request(&self.collection, batch)?;
            self.run(move |client| async move { client.upsert_points(request).await })?;
        }
        Ok(())
    }

    fn delete(&self, chunk_ids: &[String]) -> Result<()> {
        for batch in chunk_ids.chunks(UPSERT_BATCH * 4) {
            let request = delete_request(&self.collection, batch)?;
            self.run(move |client| async move { client.delete_points(request).await })?;
        }
        Ok(())
    }

    fn search(&self, query: &[f32], n: usize, filter: Option<&Filter>) -> Result<Vec<(String, f32)>> {
        if query.len() != self.dim {
            return Err(Error::QueryDimension { expected: self.dim, got: query.len() });
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let request = query_request(&self.collection, query, n, filter);
        let response = self.run(move |client| async move { client.query(request).await })?;
        Ok(response
            .result
            .into_iter()
            .filter_map(|point| point.id.as_ref().and_then(chunk_id_of).map(|id| (id, point.score)))
            .collect())
    }

    fn len(&self) -> Result<usize> {
        let request = CountPointsBuilder::new(&self.collection).exact(true).build();
        let response = self.run(move |client| async move { client.count(request).await })?;
        Ok(response.result.map_or(0, |r| r.count as usize))
    }

    fn chunk_ids(&self) -> Result<Option<Vec<String>>> {
        Ok(None)
    }

    fn clear(&self) -> Result<()> {
        // Other instances answer from this collection: emptying it is an operator's decision
        // ([`QdrantVectors::drop_collection`]), never a side effect.
        Err(Error::Config(format!(
            "refusing to empty the shared qdrant collection {}; nothing was deleted",
            self.collection
        )))
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use qdrant::condition::ConditionOneOf;
    use qdrant::r#match::MatchValue;

    use super::*;

    const CHUNK: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn point_ids_round_trip() {
        let id = point_id(CHUNK).unwrap();
        assert_eq!(
            id.point_id_options,
            Some(qdrant::point_id::PointIdOptions::Uuid("01234567-89ab-cdef-0123-456789abcdef".to_string()))
        );
        assert_eq!(chunk_id_of(&id).as_deref(), Some(CHUNK));
        assert!(point_id("not-hex").is_err());
        assert!(point_id("").is_err());
        assert_eq!(chunk_id_of(&PointId::from(7u64)), None);
    }

    #[test]
    fn collection_uses_cosine_and_the_embedder_dimension() {
        let request = create_collection_request("kb", 384);
        assert_eq!(request.collection_name, "kb");
        match request.vectors_config.and_then(|c| c.config) {
            Some(qdrant::vectors_config::Config::Params(params)) => {
                assert_eq!(params.size, 384);
                assert_eq!(params.distance, Distance::Cosine as i32);
            }
            other => panic!("unexpected vectors config {other:?}"),
        }
        let indexes = field_index_requests("kb");
        assert_eq!(indexes.iter().map(|r| r.field_name.as_str()).collect::<Vec<_>>(), ["doc_type", "document"]);
        assert!(indexes.iter().all(|r| r.field_type == Some(FieldType::Keyword as i32)));
    }

    #[test]
    fn upsert_carries_ids_vectors_and_payload() {
        let vector = [0.6f32, 0.8];
        let entries = [VectorEntry { chunk_id: CHUNK, doc_type: "plans", document: "basic.md", vector: &vector }];
        let request = upsert_request("kb", &entries).unwrap();
        assert_eq!(request.collection_name, "kb");
        assert_eq!(request.wait, Some(true));
        let point = &request.points[0];
        assert_eq!(chunk_id_of(point.id.as_ref().unwrap()).as_deref(), Some(CHUNK));
        let payload = |key: &str| point.payload.get(key).and_then(|v| v.as_str().map(|s| s.to_string()));
        assert_eq!(payload("doc_type").as_deref(), Some("plans"));
        assert_eq!(payload("document").as_deref(), Some("basic.md"));
        assert_eq!(payload("chunk_id").as_deref(), Some(CHUNK));
        assert!(format!("{:?}", point.vectors).contains("0.6"));
        let bad = [VectorEntry { chunk_id: "bad", doc_type: "", document: "", vector: &vector }];
        assert!(upsert_request("kb", &bad).is_err());
    }

    #[test]
    fn shared_upsert_carries_the_whole_chunk() {
        let vector = [0.6f32, 0.8];
        let chunk = SharedChunk {
            chunk: ChunkRecord {
                file_key: "telco/plans/basic.md".to_string(),
                document: "basic.md".to_string(),
                doc_type: "plans".to_string(),
                title: "Basic".to_string(),
                section: "Price".to_string(),
                context: "Basic > Price".to_string(),
                headings: vec!["Price".to_string()],
                text: "The Basic Plan costs $10 a month.".to_string(),
            },
            file_hash: "abc".to_string(),
            file_title: "Basic".to_string(),
            index: 0,
            count: 1,
            units: "00ff".to_string(),
            written_ms: 42,
        };
        let entry = SharedEntry {
            vector: VectorEntry { chunk_id: CHUNK, doc_type: "plans", document: "basic.md", vector: &vector },
            chunk: &chunk,
        };
        let request = upsert_shared_request("kb", &[entry]).unwrap();
        let point = &request.points[0];
        let field = |key: &str| point.payload.get(key).and_then(|v| v.as_str().map(|s| s.to_string()));
        assert_eq!(field("doc_type").as_deref(), Some("plans"));
        assert_eq!(field("chunk_id").as_deref(), Some(CHUNK));
        let back: SharedChunk = serde_json::from_str(&field(RECORD_FIELD).unwrap()).unwrap();
        assert_eq!(back, chunk);
    }

    #[test]
    fn scroll_pages_and_metadata_updates() {
        let first = scroll_request("kb", None);
        assert_eq!((first.limit, first.offset.is_none()), (Some(SCROLL_PAGE), true));
        assert!(format!("{:?}", first.with_payload).contains("Enable(true)"));
        let next = scroll_request("kb", Some(point_id(CHUNK).unwrap()));
        assert_eq!(next.offset.as_ref().and_then(chunk_id_of).as_deref(), Some(CHUNK));
        let update = metadata_request("kb", &[(REVISION_KEY, "r1")]);
        assert_eq!(update.collection_name, "kb");
        assert_eq!(update.metadata.get(REVISION_KEY).and_then(|v| v.as_str()).map(String::as_str), Some("r1"));
        assert!(update.params.is_none() && update.vectors_config.is_none(), "only the metadata changes");
    }

    #[test]
    fn delete_lists_point_ids() {
        let request = delete_request("kb", &[CHUNK.to_string()]).unwrap();
        let debug = format!("{:?}", request.points);
        assert!(debug.contains("01234567-89ab-cdef-0123-456789abcdef"), "{debug}");
    }

    #[test]
    fn query_with_and_without_filter() {
        let request = query_request("kb", &[1.0, 0.0], 7, None);
        assert_eq!(request.limit, Some(7));
        assert!(request.filter.is_none());
        assert!(request.query.is_some());

        let filter = Filter::doc_type("plans").with_doc_type("billing").with_document("late-fees.md");
        let request = query_request("kb", &[1.0, 0.0], 3, Some(&filter));
        let must = request.filter.unwrap().must;
        assert_eq!(must.len(), 2);
        let matched: Vec<(String, Vec<String>)> = must
            .into_iter()
            .map(|condition| match condition.condition_one_of {
                Some(ConditionOneOf::Field(field)) => match field.r#match.and_then(|m| m.match_value) {
                    Some(MatchValue::Keywords(keywords)) => (field.key, keywords.strings),
                    Some(MatchValue::Keyword(keyword)) => (field.key, vec![keyword]),
                    other => panic!("unexpected match {other:?}"),
                },
                other => panic!("unexpected condition {other:?}"),
            })
            .collect();
        assert_eq!(
            matched,
            vec![
                ("doc_type".to_string(), vec!["plans".to_string(), "billing".to_string()]),
                ("document".to_string(), vec!["late-fees.md".to_string()]),
            ]
        );
        assert!(qdrant_filter(&Filter::default()).is_none());
    }
}
