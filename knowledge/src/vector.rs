//! Vector indexes behind one trait: the embedded default ([`EmbeddedVectors`]: sled on disk,
//! a scan over one contiguous matrix in memory, exact in `f32` for small indexes and, from 4,096
//! vectors, an int8 first pass whose best candidates are rescored in `f32`) and Qdrant
//! ([`crate::qdrant::QdrantVectors`]).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, RwLock};

use crate::{Error, Filter, Result};

/// One vector to store, with the metadata filters need.
#[derive(Debug, Clone, Copy)]
pub struct VectorEntry<'a> {
    pub chunk_id: &'a str,
    pub doc_type: &'a str,
    pub document: &'a str,
    pub vector: &'a [f32],
}

/// Storage and nearest-neighbour search of chunk vectors (cosine similarity of L2-normalised
/// vectors, i.e. dot products).
pub trait VectorIndex: Send + Sync {
    /// Inserts or replaces vectors.
    fn upsert(&self, entries: &[VectorEntry<'_>]) -> Result<()>;
    /// Removes vectors; unknown ids are ignored.
    fn delete(&self, chunk_ids: &[String]) -> Result<()>;
    /// Returns the `n` most similar chunks with their similarity, best first.
    fn search(&self, query: &[f32], n: usize, filter: Option<&Filter>) -> Result<Vec<(String, f32)>>;
    /// Returns the number of stored vectors.
    fn len(&self) -> Result<usize>;
    /// Returns whether no vector is stored.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Returns every stored chunk id, or `None` when listing is too costly for this backend.
    fn chunk_ids(&self) -> Result<Option<Vec<String>>>;
    /// Removes everything.
    fn clear(&self) -> Result<()>;
    /// Makes writes durable.
    fn flush(&self) -> Result<()>;
}

/// A shared index (the Qdrant backend is also used directly for what only it does).
impl<T: VectorIndex + ?Sized> VectorIndex for Arc<T> {
    fn upsert(&self, entries: &[VectorEntry<'_>]) -> Result<()> {
        (**self).upsert(entries)
    }
    fn delete(&self, chunk_ids: &[String]) -> Result<()> {
        (**self).delete(chunk_ids)
    }
    fn search(&self, query: &[f32], n: usize, filter: Option<&Filter>) -> Result<Vec<(String, f32)>> {
        (**self).search(query, n, filter)
    }
    fn len(&self) -> Result<usize> {
        (**self).len()
    }
    fn chunk_ids(&self) -> Result<Option<Vec<String>>> {
        (**self).chunk_ids()
    }
    fn clear(&self) -> Result<()> {
        (**self).clear()
    }
    fn flush(&self) -> Result<()> {
        (**self).flush()
    }
}

/// Dot product written so that the compiler vectorises it (16 independent accumulators), run
/// with AVX2 and FMA when the CPU has them.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for.
        #[allow(unsafe_code)]
        return unsafe { dot_avx2(a, b) };
    }
    dot_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_portable(a, b)
}

#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0f32; LANES];
    let a_chunks = a.chunks_exact(LANES);
    let b_chunks = b.chunks_exact(LANES);
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            acc[lane] += x[lane] * y[lane];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Integer dot product of two int8 vectors (exact: 384 products of at most 127² fit an `i32`).
#[inline(always)]
fn dot_i8_portable(a: &[i8], b: &[i8]) -> i32 {
    const LANES: usize = 32;
    let mut acc = [0i32; LANES];
    let a_chunks = a.chunks_exact(LANES);
    let b_chunks = b.chunks_exact(LANES);
    let tail: i32 =
        a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            acc[lane] += i32::from(i16::from(x[lane]) * i16::from(y[lane]));
        }
    }
    acc.iter().sum::<i32>() + tail
}

/// Int8 scores of every row of `codes` against `query`, written into `out` (one per row).
fn scan_i8(codes: &[i8], dim: usize, query: &[i8], out: &mut Vec<i32>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports the features the function is compiled for.
        #[allow(unsafe_code)]
        return unsafe { scan_i8_avx2(codes, dim, query, out) };
    }
    scan_i8_portable(codes, dim, query, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_i8_avx2(codes: &[i8], dim: usize, query: &[i8], out: &mut Vec<i32>) {
    scan_i8_portable(codes, dim, query, out);
}

#[inline(always)]
fn scan_i8_portable(codes: &[i8], dim: usize, query: &[i8], out: &mut Vec<i32>) {
    out.clear();
    out.extend(codes.chunks_exact(dim).map(|row| dot_i8_portable(row, query)));
}

/// Symmetric int8 quantization of a vector: codes and the scale that maps them back.
fn quantize(vector: &[f32], codes: &mut Vec<i8>) -> f32 {
    let max = vector.iter().fold(0f32, |max, x| max.max(x.abs()));
    let scale = if max > 0.0 && max.is_finite() { max / 127.0 } else { 1.0 };
    codes.extend(vector.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8));
    scale
}

/// Below this many rows the scan is exact in `f32`; above it, a first pass over int8 codes (a
/// quarter of the memory traffic) picks candidates that are then rescored in `f32`.
const INT8_SCAN_MIN_ROWS: usize = 4096;
/// Candidates the int8 pass keeps per result wanted (and at least [`MIN_CANDIDATES`]).
const CANDIDATES_PER_RESULT: usize = 4;
const MIN_CANDIDATES: usize = 64;

/// Scales a vector to unit length (leaves zero vectors alone).
pub(crate) fn normalize(vector: &mut [f32]) {
    let norm = dot(vector, vector).sqrt();
    if norm > 0.0 && norm.is_finite() {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
}

/// A similarity with a total order, for the top-n heap.
#[derive(Clone, Copy, PartialEq)]
struct Scored(f32, usize);

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    // Reversed so that `BinaryHeap` is a min-heap on similarity (ties: lower row wins).
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then_with(|| self.1.cmp(&other.1))
    }
}

/// Interned metadata strings, so that each row carries two small integers.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.ids.len() as u32;
        self.ids.insert(name.to_string(), id);
        id
    }

    fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }
}

/// All vectors in one contiguous row-major matrix.
#[derive(Default)]
struct Matrix {
    dim: usize,
    data: Vec<f32>,
    /// The rows of `data` quantized to int8, and each row's scale.
    codes: Vec<i8>,
    scales: Vec<f32>,
    ids: Vec<Arc<str>>,
    doc_types: Vec<u32>,
    documents: Vec<u32>,
    row_of: HashMap<Arc<str>, usize>,
    names: Interner,
}

impl Matrix {
    fn upsert(&mut self, chunk_id: &str, doc_type: &str, document: &str, vector: &[f32]) {
        let doc_type = self.names.intern(doc_type);
        let document = self.names.intern(document);
        let mut codes = Vec::with_capacity(self.dim);
        let scale = quantize(vector, &mut codes);
        if let Some(&row) = self.row_of.get(chunk_id) {
            self.data[row * self.dim..(row + 1) * self.dim].copy_from_slice(vector);
            self.codes[row * self.dim..(row + 1) * self.dim].copy_from_slice(&codes);
            self.scales[row] = scale;
            self.doc_types[row] = doc_type;
            self.documents[row] = document;
            return;
        }
        self.codes.extend_from_slice(&codes);
        self.scales.push(scale);
        let id: Arc<str> = Arc::from(chunk_id);
        self.row_of.insert(id.clone(), self.ids.len());
        self.ids.push(id);
        self.doc_types.push(doc_type);
        self.documents.push(document);
        self.data.extend_from_slice(vector);
    }

    fn delete(&mut self, chunk_id: &str) {
        let Some(row) = self.row_of.remove(chunk_id) else { return };
        let last = self.ids.len() - 1;
        if row != last {
            let (head, tail) = self.data.split_at_mut(last * self.dim);
            head[row * self.dim..(row + 1) * self.dim].copy_from_slice(&tail[..self.dim]);
            let (head, tail) = self.codes.split_at_mut(last * self.dim);
            head[row * self.dim..(row + 1) * self.dim].copy_from_slice(&tail[..self.dim]);
            self.scales.swap(row, last);
            self.ids.swap(row, last);
            self.doc_types.swap(row, last);
            self.documents.swap(row, last);
            self.row_of.insert(self.ids[row].clone(), row);
        }
        self.ids.pop();
        self.doc_types.pop();
        self.documents.pop();
        self.data.truncate(last * self.dim);
        self.codes.truncate(last * self.dim);
        self.scales.pop();
    }

    fn row(&self, row: usize) -> &[f32] {
        &self.data[row * self.dim..(row + 1) * self.dim]
    }

    fn search(&self, query: &[f32], n: usize, filter: Option<&Filter>) -> Vec<(String, f32)> {
        if n == 0 || self.ids.is_empty() {
            return Vec::new();
        }
        // Resolve the filter to interned ids; a value never seen matches nothing.
        let allowed = |names: &[String]| -> Option<Vec<u32>> {
            (!names.is_empty()).then(|| names.iter().filter_map(|name| self.names.get(name)).collect())
        };
        let allowed_types = filter.and_then(|f| allowed(&f.doc_types));
        let allowed_documents = filter.and_then(|f| allowed(&f.documents));
        let admits = |row: usize| {
            allowed_types.as_ref().is_none_or(|types| types.contains(&self.doc_types[row]))
                && allowed_documents.as_ref().is_none_or(|documents| documents.contains(&self.documents[row]))
        };
        let heap = if self.ids.len() < INT8_SCAN_MIN_ROWS {
            top_n(n, (0..self.ids.len()).filter(|&row| admits(row)).map(|row| Scored(dot(self.row(row), query), row)))
        } else {
            let mut query_codes = Vec::with_capacity(self.dim);
            let query_scale = quantize(query, &mut query_codes);
            let mut scores = Vec::with_capacity(self.ids.len());
            scan_i8(&self.codes, self.dim, &query_codes, &mut scores);
            let n_candidates = (n * CANDIDATES_PER_RESULT).max(MIN_CANDIDATES);
            let candidates = top_n(
                n_candidates,
                scores
                    .iter()
                    .enumerate()
                    .filter(|&(row, _)| admits(row))
                    .map(|(row, &score)| Scored(score as f32 * query_scale * self.scales[row], row)),
            );
            // Rescored exactly: the int8 pass only chose which rows to look at.
            top_n(n, candidates.into_iter().map(|Scored(_, row)| Scored(dot(self.row(row), query), row)))
        };
        let mut results: Vec<Scored> = heap.into_vec();
        results.sort();
        results.into_iter().map(|Scored(similarity, row)| (self.ids[row].to_string(), similarity)).collect()
    }
}

/// The `n` best of `scored` (a min-heap on similarity).
fn top_n(n: usize, scored: impl Iterator<Item = Scored>) -> BinaryHeap<Scored> {
    let mut heap: BinaryHeap<Scored> = BinaryHeap::with_capacity(n + 1);
    let mut threshold = f32::NEG_INFINITY;
    for item in scored {
        if heap.len() < n {
            heap.push(item);
            if heap.len() == n {
                threshold = heap.peek().map_or(f32::NEG_INFINITY, |s| s.0);
            }
        } else if item.0 > threshold {
            heap.pop();
            heap.push(item);
            threshold = heap.peek().map_or(f32::NEG_INFINITY, |s| s.0);
        }
    }
    heap
}

/// The embedded vector index: vectors persisted in a sled tree, searched by an exact scan.
///
/// Value layout in sled: `u16` length + doc type, `u16` length + document name, then the
/// vector as little-endian `f32`s.
pub struct EmbeddedVectors {
    tree: sled::Tree,
    matrix: RwLock<Matrix>,
}

impl EmbeddedVectors {
    /// Loads every vector of `tree` into memory.
    pub fn open(tree: sled::Tree, dim: usize) -> Result<Self> {
        let mut matrix = Matrix { dim, ..Matrix::default() };
        let mut stale = Vec::new();
        for entry in tree.iter() {
            let (key, value) = entry?;
            let chunk_id = String::from_utf8_lossy(&key).into_owned();
            match decode(&value, dim) {
                Some((doc_type, document, vector)) => matrix.upsert(&chunk_id, &doc_type, &document, &vector),
                None => stale.push(key),
            }
        }
        for key in stale {
            tree.remove(key)?;
        }
        Ok(EmbeddedVectors { tree, matrix: RwLock::new(matrix) })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Matrix> {
        self.matrix.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Matrix> {
        self.matrix.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn encode(entry: &VectorEntry<'_>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(4 + entry.doc_type.len() + entry.document.len() + entry.vector.len() * 4);
    for text in [entry.doc_type, entry.document] {
        let text = &text.as_bytes()[..text.len().min(u16::MAX as usize)];
        bytes.extend_from_slice(&(text.len() as u16).to_le_bytes());
        bytes.extend_from_slice(text);
    }
    for x in entry.vector {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes
}

fn decode(bytes: &[u8], dim: usize) -> Option<(String, String, Vec<f32>)> {
    let mut rest = bytes;
    let mut texts = Vec::with_capacity(2);
    for _ in 0..2 {
        let len = u16::from_le_bytes(rest.get(..2)?.try_into().ok()?) as usize;
        texts.push(String::from_utf8_lossy(rest.get(2..2 + len)?).into_owned());
        rest = &rest[2 + len..];
    }
    if rest.len() != dim * 4 {
        return None;
    }
    let vector = rest.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let document = texts.pop()?;
    let doc_type = texts.pop()?;
    Some((doc_type, document, vector))
}

impl VectorIndex for EmbeddedVectors {
    fn upsert(&self, entries: &[VectorEntry<'_>]) -> Result<()> {
        let dim = self.read().dim;
        let mut batch = sled::Batch::default();
        for entry in entries {
            if entry.vector.len() != dim {
                return Err(Error::EmbedderContract {
                    expected: format!("vectors of dimension {dim}"),
                    got: format!("a vector of dimension {}", entry.vector.len()),
                });
            }
            batch.insert(entry.chunk_id.as_bytes(), encode(entry));
        }
        self.tree.apply_batch(batch)?;
        let mut matrix = self.write();
        for entry in entries {
            matrix.upsert(entry.chunk_id, entry.doc_type, entry.document, entry.vector);
        }
        Ok(())
    }

    fn delete(&self, chunk_ids: &[String]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for chunk_id in chunk_ids {
            batch.remove(chunk_id.as_bytes());
        }
        self.tree.apply_batch(batch)?;
        let mut matrix = self.write();
        for chunk_id in chunk_ids {
            matrix.delete(chunk_id);
        }
        Ok(())
    }

    fn search(&self, query: &[f32], n: usize, filter: Option<&Filter>) -> Result<Vec<(String, f32)>> {
        let matrix = self.read();
        if query.len() != matrix.dim {
            return Err(Error::QueryDimension { expected: matrix.dim, got: query.len() });
        }
        Ok(matrix.search(query, n, filter))
    }

    fn len(&self) -> Result<usize> {
        Ok(self.read().ids.len())
    }

    fn chunk_ids(&self) -> Result<Option<Vec<String>>> {
        Ok(Some(self.read().ids.iter().map(|id| id.to_string()).collect()))
    }

    fn clear(&self) -> Result<()> {
        self.tree.clear()?;
        let mut matrix = self.write();
        let dim = matrix.dim;
        *matrix = Matrix { dim, ..Matrix::default() };
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.tree.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(values: &[f32]) -> Vec<f32> {
        let mut v = values.to_vec();
        normalize(&mut v);
        v
    }

    fn store() -> (sled::Db, EmbeddedVectors) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let vectors = EmbeddedVectors::open(db.open_tree("v").unwrap(), 3).unwrap();
        (db, vectors)
    }

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..389).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..389).map(|i| (i as f32 * 0.11).cos()).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-3);
    }

    #[test]
    fn int8_dot_matches_naive() {
        let a: Vec<i8> = (0..389).map(|i| ((i * 37) % 255 - 127) as i8).collect();
        let b: Vec<i8> = (0..389).map(|i| ((i * 91) % 255 - 127) as i8).collect();
        let naive: i32 = a.iter().zip(&b).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum();
        let mut out = Vec::new();
        scan_i8(&a, a.len(), &b, &mut out);
        assert_eq!(out, [naive]);
    }

    /// Past [`INT8_SCAN_MIN_ROWS`] the int8 first pass with `f32` rescoring finds exactly the
    /// rows and similarities an exhaustive `f32` scan finds, with filters, after deletes.
    #[test]
    fn the_int8_pass_returns_the_exact_top_n() {
        let dim = 384;
        let mut matrix = Matrix { dim, ..Matrix::default() };
        let mut seed = 7u64;
        let mut random = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let n_rows = INT8_SCAN_MIN_ROWS + 1500;
        let mut rows = Vec::new();
        for row in 0..n_rows {
            let vector = unit(&(0..dim).map(|_| random()).collect::<Vec<_>>());
            let doc_type = if row % 3 == 0 { "plans" } else { "billing" };
            matrix.upsert(&format!("c{row}"), doc_type, "d.md", &vector);
            rows.push((format!("c{row}"), doc_type, vector));
        }
        for row in (0..n_rows).step_by(7) {
            matrix.delete(&format!("c{row}"));
        }
        rows.retain(|(id, _, _)| id[1..].parse::<usize>().unwrap() % 7 != 0);
        for query_idx in 0..20 {
            // Queries near a stored row, as real queries are near their answers.
            let base = &rows[query_idx * 97].2;
            let query = unit(&base.iter().map(|x| x + 0.05 * random()).collect::<Vec<_>>());
            for filter in [None, Some(Filter::doc_type("plans"))] {
                let mut exact: Vec<(String, f32)> = rows
                    .iter()
                    .filter(|(_, doc_type, _)| filter.is_none() || *doc_type == "plans")
                    .map(|(id, _, vector)| (id.clone(), dot(vector, &query)))
                    .collect();
                exact.sort_by(|a, b| b.1.total_cmp(&a.1));
                exact.truncate(10);
                let found = matrix.search(&query, 10, filter.as_ref());
                assert_eq!(found, exact, "query {query_idx}, filter {filter:?}");
            }
        }
    }

    #[test]
    fn exact_top_n_with_filters_and_deletes() {
        let (_db, vectors) = store();
        let rows = [
            ("a", "plans", unit(&[1.0, 0.0, 0.0])),
            ("b", "billing", unit(&[0.9, 0.1, 0.0])),
            ("c", "plans", unit(&[0.0, 1.0, 0.0])),
        ];
        let entries: Vec<VectorEntry<'_>> = rows
            .iter()
            .map(|(id, doc_type, v)| VectorEntry { chunk_id: id, doc_type, document: "d.md", vector: v })
            .collect();
        vectors.upsert(&entries).unwrap();
        let query = unit(&[1.0, 0.05, 0.0]);
        let ids = |hits: Vec<(String, f32)>| hits.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
        assert_eq!(ids(vectors.search(&query, 2, None).unwrap()), ["a", "b"]);
        assert_eq!(ids(vectors.search(&query, 5, Some(&Filter::doc_type("plans"))).unwrap()), ["a", "c"]);
        assert!(vectors.search(&query, 5, Some(&Filter::doc_type("nope"))).unwrap().is_empty());
        vectors.delete(&["a".to_string(), "zzz".to_string()]).unwrap();
        assert_eq!(ids(vectors.search(&query, 5, None).unwrap()), ["b", "c"]);
        assert_eq!(vectors.len().unwrap(), 2);
        assert!(matches!(vectors.search(&[1.0], 1, None), Err(Error::QueryDimension { .. })));
    }

    #[test]
    fn persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let vectors = EmbeddedVectors::open(db.open_tree("v").unwrap(), 3).unwrap();
            let v = unit(&[0.0, 0.0, 1.0]);
            vectors.upsert(&[VectorEntry { chunk_id: "x", doc_type: "t", document: "d", vector: &v }]).unwrap();
            vectors.flush().unwrap();
        }
        // sled's flusher thread can hold the file lock a moment after the handle is dropped.
        let db = (0..100)
            .find_map(|_| {
                sled::open(dir.path()).ok().or_else(|| {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    None
                })
            })
            .expect("the database stayed locked after its handle was dropped");
        let vectors = EmbeddedVectors::open(db.open_tree("v").unwrap(), 3).unwrap();
        let hits = vectors.search(&unit(&[0.0, 0.0, 1.0]), 1, Some(&Filter::doc_type("t"))).unwrap();
        assert_eq!(hits[0].0, "x");
        assert!((hits[0].1 - 1.0).abs() < 1e-6);
    }
}
