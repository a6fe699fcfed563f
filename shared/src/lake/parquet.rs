//! Typed columns to a parquet file, in memory or on disk: zstd, row groups of `ROW_GROUP_ROWS`, each column's DuckLake column id as its
//! parquet field id (without field ids DuckLake maps columns by position, which silently mixes up columns
//! of the same type if the order ever differs).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, FixedSizeBinaryArray, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::{ArrowWriter, PARQUET_FIELD_ID_META_KEY};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;

use super::columns::Column;
use super::tables::{ColumnDef, ColumnType, TableDef};

#[derive(Debug, thiserror::Error)]
pub enum ParquetError {
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Int32 => DataType::Int32,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Varchar | ColumnType::Json => DataType::Utf8,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        ColumnType::Uuid => DataType::FixedSizeBinary(16),
        ColumnType::SpanId => DataType::UInt64,
    }
}

/// The arrow schema of a table, with field ids.
pub fn schema(table: &TableDef) -> Schema {
    let fields: Vec<Field> =
        table
            .columns
            .iter()
            .map(|c| {
                let field = Field::new(c.name, arrow_type(c.ty), true).with_metadata(
                    HashMap::from([(PARQUET_FIELD_ID_META_KEY.to_owned(), c.id.to_string())]),
                );
                // The UUID logical type, which DuckDB reads as `UUID`.
                match c.ty {
                    ColumnType::Uuid => field.with_extension_type(arrow_schema::extension::Uuid),
                    _ => field,
                }
            })
            .collect();
    Schema::new(fields)
}

fn array(column: &Column) -> ArrayRef {
    match column {
        Column::I32(v) => Arc::new(Int32Array::from(v.clone())),
        Column::I64(v) => Arc::new(Int64Array::from(v.clone())),
        Column::F64(v) => Arc::new(Float64Array::from(v.clone())),
        Column::Bool(v) => Arc::new(BooleanArray::from(v.clone())),
        Column::Str(v) => Arc::new(StringArray::from(v.clone())),
        Column::Ts(v) => Arc::new(TimestampMicrosecondArray::from(v.clone())),
        Column::Uuid(v) => Arc::new(
            FixedSizeBinaryArray::try_from_sparse_iter_with_size(v.iter().copied(), 16)
                .expect("16-byte values"),
        ),
        Column::U64(v) => Arc::new(UInt64Array::from(v.clone())),
    }
}

/// How each column is laid out, chosen for size (lake bytes are what users pay for, per row, forever):
/// - random ids: plain (binary ids have a fixed width; text ones get their lengths delta-encoded), no
///   dictionary (every value is new: a dictionary only adds an index);
/// - no min/max for ids, random or repeated (trace ids on spans), nor JSON: they never prune;
/// - timestamps and 64-bit integers: deltas between neighbouring rows, small when rows are in time order;
/// - everything else: a dictionary, which repeated names, ops and statuses compress to a few bits.
fn column_layout(
    props: WriterPropertiesBuilder,
    name: &str,
    column: &ColumnDef,
) -> WriterPropertiesBuilder {
    let path = ColumnPath::from(name);
    let (dictionary, encoding) = match (column.random_id, column.ty) {
        (true, ColumnType::Uuid | ColumnType::SpanId) => (false, None),
        (true, _) | (false, ColumnType::Json) => (false, Some(Encoding::DELTA_LENGTH_BYTE_ARRAY)),
        (false, ColumnType::Timestamp | ColumnType::Int64) => {
            (false, Some(Encoding::DELTA_BINARY_PACKED))
        }
        (false, _) => (true, None),
    };
    let mut props = props.set_column_dictionary_enabled(path.clone(), dictionary);
    if let Some(encoding) = encoding {
        props = props.set_column_encoding(path.clone(), encoding);
    }
    if column.random_id || !super::columns::has_bounds(column.ty) {
        props = props.set_column_statistics_enabled(path, EnabledStatistics::None);
    }
    props
}

/// Rows per row group, and encoded bytes: the writer holds a row group's encoded pages in memory until the
/// group is complete, so these bound the memory of writing a compacted file (up to a million rows) to a
/// group's instead of the whole file's, whatever a row's width; a processor's batch stays one group.
const ROW_GROUP_ROWS: usize = 128 * 1024;
const ROW_GROUP_BYTES: usize = 16 << 20;

/// The parquet bytes of one file.
pub fn write(table: &TableDef, columns: &[Column]) -> Result<Vec<u8>, ParquetError> {
    let mut file = FileWriter::new(table, Vec::new())?;
    file.write(columns)?;
    file.finish()
}

/// A file written a batch of rows at a time into `W` (compaction streams rows from many files into a file
/// on disk): memory holds the row group being encoded and the batch, not every row's values.
pub struct FileWriter<W: std::io::Write + Send> {
    writer: ArrowWriter<W>,
    schema: Arc<Schema>,
}

impl<W: std::io::Write + Send> FileWriter<W> {
    pub fn new(table: &TableDef, sink: W) -> Result<Self, ParquetError> {
        let schema = Arc::new(schema(table));
        let props = table.columns.iter().fold(
            WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
                .set_statistics_enabled(EnabledStatistics::Chunk)
                .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
                // One page per column chunk: an index of page locations would locate that one page.
                .set_offset_index_disabled(true),
            |props, column| column_layout(props, column.name, column),
        );
        // Readers map columns by field id (DuckLake) or name; the embedded arrow schema would only repeat
        // the parquet schema in every file's footer (about 3 KB).
        let options = ArrowWriterOptions::new()
            .with_properties(props.build())
            .with_skip_arrow_metadata(true);
        let writer = ArrowWriter::try_new_with_options(sink, schema.clone(), options)?;
        Ok(Self { writer, schema })
    }

    /// Appends rows: one typed column per table column, in table order.
    pub fn write(&mut self, columns: &[Column]) -> Result<(), ParquetError> {
        let arrays: Vec<ArrayRef> = columns.iter().map(array).collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        Ok(self.writer.write(&batch)?)
    }

    /// Writes the last row group and the footer; returns the sink.
    pub fn finish(self) -> Result<W, ParquetError> {
        Ok(self.writer.into_inner()?)
    }
}

#[cfg(test)]
mod tests {
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;
    use crate::lake::columns::Column;
    use crate::lake::tables::SPANS;

    fn spans_file(rows: usize) -> Vec<u8> {
        write(&SPANS, &spans_columns(rows)).unwrap()
    }

    fn spans_columns(rows: usize) -> Vec<Column<'static>> {
        SPANS
            .columns
            .iter()
            .map(|c| match (c.name, c.ty) {
                ("span_id", _) => {
                    Column::U64((0..rows as u64).map(|i| Some(i * 7919 + 13)).collect())
                }
                (_, ColumnType::Uuid) => Column::Uuid(vec![Some([7; 16]); rows]),
                (_, ColumnType::SpanId) => Column::U64(vec![Some(42); rows]),
                (_, ColumnType::Int32) => Column::I32(vec![Some(1); rows]),
                (_, ColumnType::Timestamp) => Column::Ts(
                    (0..rows as i64)
                        .map(|i| Some(1_700_000_000_000_000 + i * 1_000))
                        .collect(),
                ),
                (_, ColumnType::Float64) => Column::F64(vec![Some(1.5); rows]),
                (_, ColumnType::Int64) => Column::I64(vec![Some(7); rows]),
                (_, ColumnType::Boolean) => Column::Bool(vec![Some(true); rows]),
                (_, ColumnType::Varchar | ColumnType::Json) => Column::Str(vec![Some("db"); rows]),
            })
            .collect()
    }

    #[test]
    fn each_column_gets_the_layout_that_keeps_it_small() {
        let bytes = spans_file(300);
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
        let meta = reader.metadata();
        let kv = meta.file_metadata().key_value_metadata();
        assert!(
            kv.is_none_or(|kv| kv.iter().all(|e| e.key != "ARROW:schema")),
            "no embedded arrow schema in the footer"
        );
        let chunk = |name: &str| {
            meta.row_group(0)
                .columns()
                .iter()
                .find(|c| c.column_descr().name() == name)
                .unwrap()
                .clone()
        };
        let span_id = chunk("span_id");
        let encodings: Vec<Encoding> = span_id.encodings().collect();
        assert!(encodings.contains(&Encoding::PLAIN), "{encodings:?}");
        assert!(
            !encodings.contains(&Encoding::RLE_DICTIONARY),
            "random ids get no dictionary"
        );
        assert!(span_id.statistics().is_none(), "nor a min/max");
        let trace_id = chunk("trace_id");
        assert_eq!(
            trace_id.column_descr().logical_type_ref(),
            Some(&parquet::basic::LogicalType::Uuid),
            "16-byte ids are UUIDs to DuckDB"
        );
        assert!(
            trace_id.statistics().is_none(),
            "a repeated id has no min/max either"
        );
        let timestamp: Vec<Encoding> = chunk("timestamp").encodings().collect();
        assert!(
            timestamp.contains(&Encoding::DELTA_BINARY_PACKED),
            "{timestamp:?}"
        );
        let op: Vec<Encoding> = chunk("op").encodings().collect();
        assert!(op.contains(&Encoding::RLE_DICTIONARY), "{op:?}");
        assert!(chunk("op").statistics().is_some());
    }

    #[test]
    fn a_large_file_is_written_a_row_group_at_a_time_onto_its_sink() {
        let mut file = tempfile::tempfile().unwrap();
        let mut writer = FileWriter::new(&SPANS, &file).unwrap();
        let columns = spans_columns(ROW_GROUP_ROWS / 2 + 1);
        for _ in 0..3 {
            writer.write(&columns).unwrap();
        }
        writer.finish().unwrap();
        std::io::Seek::rewind(&mut file).unwrap();
        let reader = SerializedFileReader::new(file).unwrap();
        let groups: Vec<i64> = (reader.metadata().row_groups().iter())
            .map(|g| g.num_rows())
            .collect();
        let rows = 3 * (ROW_GROUP_ROWS / 2 + 1) as i64;
        assert_eq!(
            groups,
            [ROW_GROUP_ROWS as i64, rows - ROW_GROUP_ROWS as i64]
        );
    }
}
