//! Rows to typed columns, and the per-column statistics DuckLake needs for every file it lists. DuckDB's
//! optimizer trusts these (it prunes files and folds `min`/`max` with them), so they are computed exactly
//! from the values written, never estimated.

use super::tables::{ColumnType, TableDef};

/// One value of a row, in table order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    I32(Option<i32>),
    I64(Option<i64>),
    F64(Option<f64>),
    Bool(Option<bool>),
    Str(Option<&'a str>),
    /// Microseconds since the epoch, UTC.
    Ts(Option<i64>),
    Uuid(Option<[u8; 16]>),
    SpanId(Option<u64>),
}

impl Cell<'_> {
    /// A 16-byte id from its hex text (NULL when it is not one).
    pub fn uuid(hex: Option<&str>) -> Self {
        Self::Uuid(hex.and_then(super::ids::uuid))
    }

    /// A span id from its hex text (NULL when it is not one).
    pub fn span_id(hex: Option<&str>) -> Self {
        Self::SpanId(hex.and_then(super::ids::span_id))
    }
}

/// A row of a lake table.
pub trait LakeRow {
    fn table() -> &'static TableDef;
    fn project_id(&self) -> i64;
    fn timestamp_us(&self) -> i64;
    /// The row's values in the table's column order.
    fn cells(&self) -> Vec<Cell<'_>>;
}

/// A column's values, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Column<'a> {
    I32(Vec<Option<i32>>),
    I64(Vec<Option<i64>>),
    F64(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Str(Vec<Option<&'a str>>),
    Ts(Vec<Option<i64>>),
    Uuid(Vec<Option<[u8; 16]>>),
    U64(Vec<Option<u64>>),
}

#[derive(Debug, thiserror::Error)]
#[error("lake table {table}: row value {index} does not fit column {column:?}")]
pub struct ShapeError {
    table: &'static str,
    index: usize,
    column: &'static str,
}

impl<'a> Column<'a> {
    fn new(ty: ColumnType, capacity: usize) -> Self {
        match ty {
            ColumnType::Int32 => Self::I32(Vec::with_capacity(capacity)),
            ColumnType::Int64 => Self::I64(Vec::with_capacity(capacity)),
            ColumnType::Float64 => Self::F64(Vec::with_capacity(capacity)),
            ColumnType::Boolean => Self::Bool(Vec::with_capacity(capacity)),
            ColumnType::Varchar | ColumnType::Json => Self::Str(Vec::with_capacity(capacity)),
            ColumnType::Timestamp => Self::Ts(Vec::with_capacity(capacity)),
            ColumnType::Uuid => Self::Uuid(Vec::with_capacity(capacity)),
            ColumnType::SpanId => Self::U64(Vec::with_capacity(capacity)),
        }
    }

    /// Appends a value; false when its type is not this column's.
    fn push(&mut self, cell: Cell<'a>) -> bool {
        match (self, cell) {
            (Self::I32(v), Cell::I32(x)) => v.push(x),
            (Self::I64(v), Cell::I64(x)) => v.push(x),
            (Self::F64(v), Cell::F64(x)) => v.push(x.filter(|x| x.is_finite())),
            (Self::Bool(v), Cell::Bool(x)) => v.push(x),
            (Self::Str(v), Cell::Str(x)) => v.push(x),
            (Self::Ts(v), Cell::Ts(x)) => v.push(x),
            (Self::Uuid(v), Cell::Uuid(x)) => v.push(x),
            (Self::U64(v), Cell::SpanId(x)) => v.push(x),
            _ => return false,
        }
        true
    }
}

/// The rows' values column by column, checked against the table's shape.
pub fn columns<'a, R: LakeRow>(rows: &[&'a R]) -> Result<Vec<Column<'a>>, ShapeError> {
    let table = R::table();
    let mut columns: Vec<Column<'a>> = table
        .columns
        .iter()
        .map(|c| Column::new(c.ty, rows.len()))
        .collect();
    for row in rows {
        let cells = row.cells();
        if cells.len() != columns.len() {
            return Err(ShapeError {
                table: table.name,
                index: cells.len(),
                column: "(count)",
            });
        }
        for (index, (column, cell)) in columns.iter_mut().zip(cells).enumerate() {
            if !column.push(cell) {
                return Err(ShapeError {
                    table: table.name,
                    index,
                    column: table.columns[index].name,
                });
            }
        }
    }
    Ok(columns)
}

/// What `ducklake_file_column_stats` and `ducklake_table_column_stats` hold for one column of one file.
/// Min and max are strings DuckDB casts back to the column type.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnStats {
    pub value_count: i64,
    pub null_count: i64,
    pub min: Option<String>,
    pub max: Option<String>,
    /// Only for floating-point columns (NULL otherwise, as DuckDB writes it). Splat never writes NaN.
    pub contains_nan: Option<bool>,
}

impl Column<'_> {
    pub fn stats(&self) -> ColumnStats {
        match self {
            Self::I32(v) => stats_of(v, |a, b| a.cmp(b), |x| x.to_string(), None),
            Self::I64(v) => stats_of(v, |a, b| a.cmp(b), |x| x.to_string(), None),
            Self::F64(v) => stats_of(v, |a, b| a.total_cmp(b), |x| format!("{x:?}"), Some(false)),
            Self::Bool(v) => stats_of(v, |a, b| a.cmp(b), |x| x.to_string(), None),
            Self::Str(v) => stats_of(v, |a, b| a.cmp(b), |x| x.to_string(), None),
            Self::Ts(v) => stats_of(v, |a, b| a.cmp(b), |x| format_timestamp(*x), None),
            // Ids keep no bounds (see `has_bounds`): only their counts.
            Self::Uuid(v) => counts(v),
            Self::U64(v) => counts(v),
        }
    }
}

impl ColumnStats {
    /// These stats widened by another batch's of the same column (of type `ty`): counts add up, bounds
    /// widen, `contains_nan` turns on if either has it. A file written batch by batch gets the stats its
    /// rows would have had all at once.
    pub fn widen(&mut self, other: ColumnStats, ty: ColumnType) {
        let pick = |a: Option<String>, b: Option<String>, keep_b: std::cmp::Ordering| match (a, b) {
            (Some(a), Some(b)) => Some(if compare_stat(ty, &b, &a) == keep_b {
                b
            } else {
                a
            }),
            (a, b) => a.or(b),
        };
        self.value_count += other.value_count;
        self.null_count += other.null_count;
        self.min = pick(self.min.take(), other.min, std::cmp::Ordering::Less);
        self.max = pick(self.max.take(), other.max, std::cmp::Ordering::Greater);
        self.contains_nan = match (self.contains_nan, other.contains_nan) {
            (Some(a), Some(b)) => Some(a | b),
            (a, b) => a.or(b),
        };
    }
}

/// Whether the catalog keeps a column's min and max: not for JSON (a document's bounds prune nothing and
/// can be large) nor ids (random bits); DuckDB then reads such a column without bounds.
pub fn has_bounds(ty: ColumnType) -> bool {
    !(ty == ColumnType::Json || ty.is_id())
}

/// Each column's stats for a file of `table`, bounds only where [`has_bounds`].
pub fn file_stats(table: &TableDef, columns: &[Column]) -> Vec<ColumnStats> {
    let kept = |(def, column): (&super::tables::ColumnDef, &Column)| match has_bounds(def.ty) {
        true => column.stats(),
        false => ColumnStats {
            min: None,
            max: None,
            ..column.stats()
        },
    };
    table.columns.iter().zip(columns).map(kept).collect()
}

fn stats_of<T>(
    values: &[Option<T>],
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
    show: impl Fn(&T) -> String,
    contains_nan: Option<bool>,
) -> ColumnStats {
    let present = values.iter().flatten();
    ColumnStats {
        min: present.clone().min_by(|a, b| cmp(a, b)).map(&show),
        max: present.max_by(|a, b| cmp(a, b)).map(&show),
        contains_nan,
        ..counts(values)
    }
}

/// Values and NULLs, without bounds.
fn counts<T>(values: &[Option<T>]) -> ColumnStats {
    let value_count = values.iter().flatten().count() as i64;
    ColumnStats {
        value_count,
        null_count: values.len() as i64 - value_count,
        min: None,
        max: None,
        contains_nan: None,
    }
}

/// `2026-11-25 10:29:48.831323`: the form DuckDB writes into the catalog and casts back to `TIMESTAMP`.
pub fn format_timestamp(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        .unwrap_or_else(|| "1970-01-01 00:00:00.000000".to_owned())
}

/// Compares two catalog min/max strings of a column type by value (so `"9" < "10"` for integers).
pub fn compare_stat(ty: ColumnType, a: &str, b: &str) -> std::cmp::Ordering {
    match ty {
        ColumnType::Int32 | ColumnType::Int64 | ColumnType::SpanId => {
            match (a.parse::<i128>(), b.parse::<i128>()) {
                (Ok(a), Ok(b)) => a.cmp(&b),
                _ => a.cmp(b),
            }
        }
        ColumnType::Float64 => match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(a), Ok(b)) => a.total_cmp(&b),
            _ => a.cmp(b),
        },
        // Fixed-width timestamps, booleans (`false` < `true`) and strings order as their bytes do; a
        // timestamp without a fraction sorts before the same second with one, as it should.
        ColumnType::Boolean
        | ColumnType::Varchar
        | ColumnType::Timestamp
        | ColumnType::Json
        | ColumnType::Uuid => a.as_bytes().cmp(b.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_exact_and_typed() {
        let c = Column::I32(vec![Some(9), None, Some(10), Some(-3)]);
        let s = c.stats();
        assert_eq!((s.value_count, s.null_count), (3, 1));
        assert_eq!(
            (s.min.as_deref(), s.max.as_deref()),
            (Some("-3"), Some("10"))
        );
        let f = Column::F64(vec![Some(1000.0), Some(0.5)]).stats();
        assert_eq!(
            (f.min.as_deref(), f.max.as_deref()),
            (Some("0.5"), Some("1000.0"))
        );
        assert_eq!(f.contains_nan, Some(false));
        let t = Column::Ts(vec![Some(1_767_323_045_123_456)]).stats();
        assert_eq!(t.min.as_deref(), Some("2026-01-02 03:04:05.123456"));
        let empty = Column::Str(vec![None, None]).stats();
        assert_eq!((empty.min, empty.null_count), (None, 2));
    }

    #[test]
    fn catalog_strings_compare_by_value() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_stat(ColumnType::Int64, "9", "10"), Less);
        assert_eq!(compare_stat(ColumnType::Float64, "1e3", "999.5"), Greater);
        assert_eq!(
            compare_stat(
                ColumnType::Timestamp,
                "2026-01-02 03:04:05",
                "2026-01-02 03:04:05.000001"
            ),
            Less
        );
    }

    #[test]
    fn stats_widened_batch_by_batch_equal_the_whole_columns() {
        let (a, b) = (vec![Some(9), None], vec![Some(10), Some(-3), None]);
        let mut widened = Column::I64(a.clone()).stats();
        widened.widen(Column::I64(b.clone()).stats(), ColumnType::Int64);
        let whole: Vec<_> = a.into_iter().chain(b).collect();
        assert_eq!(widened, Column::I64(whole).stats());
        let mut f = Column::F64(vec![None]).stats();
        f.widen(Column::F64(vec![Some(2.5)]).stats(), ColumnType::Float64);
        assert_eq!(
            (f.min.as_deref(), f.contains_nan),
            (Some("2.5"), Some(false))
        );
    }

    #[test]
    fn non_finite_floats_become_null() {
        let mut c = Column::new(ColumnType::Float64, 2);
        assert!(c.push(Cell::F64(Some(f64::NAN))));
        assert!(!c.push(Cell::I32(Some(1))));
        assert_eq!(c, Column::F64(vec![None]));
    }
}
