//! Typed columns to a parquet file in memory: zstd, one row group, each column's DuckLake column id as its
//! parquet field id (without field ids DuckLake maps columns by position, which silently mixes up columns
//! of the same type if the order ever differs).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::{ArrowWriter, PARQUET_FIELD_ID_META_KEY};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::columns::Column;
use super::tables::{ColumnType, TableDef};

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
        ColumnType::Varchar => DataType::Utf8,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
    }
}

/// The arrow schema of a table, with field ids.
pub fn schema(table: &TableDef) -> Schema {
    let fields: Vec<Field> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Field::new(c.name, arrow_type(c.ty), true).with_metadata(HashMap::from([(
                PARQUET_FIELD_ID_META_KEY.to_owned(),
                TableDef::column_id(i).to_string(),
            )]))
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
    }
}

/// The parquet bytes of one file.
pub fn write(table: &TableDef, columns: &[Column]) -> Result<Vec<u8>, ParquetError> {
    let schema = Arc::new(schema(table));
    let arrays: Vec<ArrayRef> = columns.iter().map(array).collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, Some(props))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(out)
}
