//! The parser path: SQL that `sqlparser` reads is rewritten as an AST and printed again.

use std::borrow::Cow;
use std::ops::ControlFlow;
use std::sync::LazyLock;

use regex::{NoExpand, Regex};
use sqlparser::ast::{
    AccessExpr, AssignmentTarget, CaseWhen, CloseCursor, Expr, Ident, InTarget, ObjectName,
    ObjectNamePart, Query, Select, SelectItem, SetExpr, Statement, TableAlias, TableFactor,
    UnaryOperator, Value, ValueWithSpan, VisitMut, VisitorMut,
};
use sqlparser::dialect::Dialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

use super::fallback::{is_plain_name, scrub_sql_regex};
use super::{dialects_for, tidy_comment, MAX_KEPT_COMMENTS, PLACEHOLDER};
use crate::perf::normalize::ID_IN_NAME;

/// Deepest expression nesting the AST rewrite accepts (Relay's limit). Visiting, printing and dropping an
/// AST all recurse, so a hostile `1+1+1+…` must not reach them: deeper trees go to the regex fallback.
const MAX_EXPRESSION_DEPTH: usize = 64;

/// Recursion limit handed to `sqlparser` (its default is 50): deeper than real queries go, and it bounds
/// how much stack the `recursive-protection` feature has to grow for a hostile one.
const PARSER_RECURSION_LIMIT: usize = 32;

/// The placeholder for a list of scrubbed items (columns, assignments, CASE branches).
const ELLIPSIS: &str = "..";

/// Marks a multi-assignment `UPDATE … SET` that is printed as `SET ..`; the AST cannot express `..` there.
const UPDATE_MARKER: &str = "__splat_update_lhs__ = NULL";

/// `%s` and `%(name)s` (Python DB-API) are not SQL; the parser reads `?` (`$1` for PostgreSQL, where `?`
/// is an operator) as the same kind of placeholder.
static PYFORMAT_PARAM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"%(?:\(\w+\))?s").expect("static regex"));

/// Stands for `{%s}` (a scrubbed id inside a name) while the parser reads the text: `t_{%s}` is then the
/// one name `t___splat_id__`, not `t_` followed by a brace, and the name is printed back as it was.
const ID_MARK: &str = "__splat_id__";

/// Stands for `..` (a collapsed list) where it is a token of its own (`SELECT .. FROM`, `(..)`), so that
/// normalized output parses again as what it was instead of going to the fallback; `...` and
/// `db..table` are left alone.
const LIST_MARK: &str = "__splat_list__";

static LIST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?P<a>^|[\s(,])\.\.(?P<b>[\s),]|$)").expect("static regex"));

/// Parses `sql` with each candidate dialect and rewrites the first AST that parses.
pub(super) fn normalize_parsed(sql: &str, db_system: Option<&str>) -> Option<String> {
    let mut sql = Cow::Borrowed(sql);
    if sql.contains("{%s}") {
        sql = Cow::Owned(sql.replace("{%s}", ID_MARK));
    }
    if sql.contains("..") {
        if let Cow::Owned(marked) = LIST.replace_all(&sql, format!("${{a}}{LIST_MARK}${{b}}")) {
            sql = Cow::Owned(marked);
        }
    }
    let postgres = db_system.is_some_and(|s| {
        matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "postgresql" | "postgres" | "cockroachdb"
        )
    });
    let sql = PYFORMAT_PARAM.replace_all(&sql, NoExpand(if postgres { "$1" } else { "?" }));
    let mut normalized = dialects_for(db_system, &sql)
        .iter()
        .find_map(|dialect| normalize_with(dialect.as_ref(), &sql))?;
    for (mark, text) in [(ID_MARK, "{%s}"), (LIST_MARK, ELLIPSIS)] {
        if normalized.contains(mark) {
            normalized = normalized.replace(mark, text);
        }
    }
    Some(normalized)
}

/// `/* */` comments found around a statement, kept verbatim (see the `sql` module docs).
#[derive(Debug, Default)]
struct Comments {
    leading: Vec<String>,
    trailing: Vec<String>,
}

fn normalize_with(dialect: &dyn Dialect, sql: &str) -> Option<String> {
    let tokens = Tokenizer::new(dialect, sql).tokenize().ok()?;
    let comments = outer_comments(&tokens)?;
    let mut statements = Parser::new(dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .with_tokens(tokens)
        .parse_statements()
        .ok()?;
    if statements.is_empty() {
        return None;
    }
    // Rewriting first, as Relay does: it folds repeated conditions, which makes many ORM queries shallow
    // enough to print. Visiting is safe at any depth (sqlparser grows the stack); printing is not.
    let _ = statements.visit(&mut NormalizeVisitor::default());
    if statements.visit(&mut DepthGuard::default()).is_break() {
        return None;
    }
    let body = statements
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let body = body.replace(UPDATE_MARKER, ELLIPSIS);
    // A quote left in the printed text is a string literal in a corner of the grammar the visitor does
    // not reach (`COMMENT ON … IS '…'`); the regex pass catches it.
    let body = if body.contains('\'') {
        scrub_sql_regex(&body, None)
    } else {
        body
    };
    Some(with_comments(&comments, &body))
}

/// Splits the block comments before the first and after the last real token. A comment in the middle
/// has no place in a re-printed AST, so such text returns `None` and goes to the regex path, which keeps
/// comments where they were. Line comments are dropped.
fn outer_comments(tokens: &[Token]) -> Option<Comments> {
    let is_code = |t: &Token| !matches!(t, Token::Whitespace(_) | Token::SemiColon | Token::EOF);
    let first = tokens.iter().position(is_code)?;
    let last = tokens.iter().rposition(is_code)?;
    let mut comments = Comments::default();
    for (i, token) in tokens.iter().enumerate() {
        let Token::Whitespace(Whitespace::MultiLineComment(text)) = token else {
            continue;
        };
        match i {
            _ if i < first => comments.leading.push(tidy_comment(&format!("/*{text}*/"))),
            _ if i > last => comments.trailing.push(tidy_comment(&format!("/*{text}*/"))),
            _ => return None,
        }
    }
    Some(comments)
}

fn with_comments(comments: &Comments, body: &str) -> String {
    let keep = |list: &[String]| {
        list.iter()
            .take(MAX_KEPT_COMMENTS)
            .cloned()
            .collect::<Vec<_>>()
    };
    let mut parts = keep(&comments.leading);
    parts.push(body.to_owned());
    parts.extend(keep(&comments.trailing));
    parts.join(" ")
}

/// Refuses ASTs whose expressions nest deeper than [`MAX_EXPRESSION_DEPTH`]: printing an AST recurses
/// without stack protection. It breaks off as soon as the limit is passed.
#[derive(Debug, Default)]
struct DepthGuard {
    depth: usize,
}

impl VisitorMut for DepthGuard {
    type Break = ();

    fn pre_visit_expr(&mut self, _expr: &mut Expr) -> ControlFlow<()> {
        self.depth += 1;
        if self.depth > MAX_EXPRESSION_DEPTH {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _expr: &mut Expr) -> ControlFlow<()> {
        self.depth = self.depth.saturating_sub(1);
        ControlFlow::Continue(())
    }
}

/// A whole token the regex rules replace by `%s` (parameters, numbers, booleans).
static VALUE_TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:\?+|\$\d+|%(?:\(\w+\))?s|:[A-Za-z_]\w*|0[xX][0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|(?i-u:true|false))$")
        .expect("static regex")
});

/// Rewrites a parsed AST in place, following Relay's rules.
#[derive(Debug, Default)]
struct NormalizeVisitor {
    /// Inside a DDL statement every identifier is a name worth scrubbing (`ALTER TABLE t_2024 …`).
    in_ddl: bool,
}

fn placeholder() -> Expr {
    Expr::Value(Value::Placeholder(PLACEHOLDER.to_owned()).with_empty_span())
}

fn ellipsis() -> Expr {
    Expr::Identifier(Ident::new(ELLIPSIS))
}

/// Replaces id-like parts of a name with `{%s}` and unquotes it if it is plain.
fn scrub_name(ident: &mut Ident) {
    if let Cow::Owned(scrubbed) = ID_IN_NAME.replace_all(&ident.value, "{%s}") {
        ident.value = scrubbed;
    }
    unquote(ident);
}

/// Drops a name's quotes (`"users"`, `` `users` ``, `[users]`) where the regex fallback drops them too
/// ([`is_plain_name`]): `"order"` or `"a b"` bare would read as something else the next time.
fn unquote(ident: &mut Ident) {
    if ident.quote_style.is_some() && is_plain_name(&ident.value) {
        ident.quote_style = None;
    }
}

/// Replaces a name that is an id by nature (savepoints, cursors) with `%s`.
fn erase_name(ident: &mut Ident) {
    ident.quote_style = None;
    PLACEHOLDER.clone_into(&mut ident.value);
}

/// `"schema"."table"."col"` → `col`: qualifiers only fragment groups.
/// Unless the last part cannot stand alone as written (`t.select`, `t."a b"`, `t.?`): then every part
/// stays, as the regex fallback keeps them.
fn keep_last(parts: &mut Vec<Ident>) {
    parts.iter_mut().for_each(scrub_name);
    if parts
        .last()
        .is_some_and(|last| last.quote_style.is_none() && is_plain_name(&last.value))
    {
        parts.drain(..parts.len() - 1);
    }
}

fn keep_last_of_object(name: &mut ObjectName) {
    for part in &mut name.0 {
        if let ObjectNamePart::Identifier(ident) = part {
            scrub_name(ident);
        }
    }
    let plain_last = match name.0.last() {
        Some(ObjectNamePart::Identifier(ident)) => {
            ident.quote_style.is_none() && is_plain_name(&ident.value)
        }
        _ => true,
    };
    if plain_last {
        name.0.drain(..name.0.len().saturating_sub(1));
    }
}

fn scrub_alias(alias: &mut Option<TableAlias>) {
    if let Some(alias) = alias {
        // `FROM t x` and `FROM t AS x` are one query.
        alias.explicit = true;
        scrub_name(&mut alias.name);
        for column in &mut alias.columns {
            scrub_name(&mut column.name);
        }
    }
}

/// A select item that `..` may stand for: a plain column or a value, possibly aliased.
fn is_collapsible(item: &SelectItem) -> bool {
    match item {
        SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => {
            matches!(
                expr,
                Expr::Value(_) | Expr::Identifier(_) | Expr::CompoundIdentifier(_)
            )
        }
        SelectItem::ExprWithAliases { .. }
        | SelectItem::QualifiedWildcard(..)
        | SelectItem::Wildcard(_) => false,
    }
}

/// `SELECT a, b AS x, "t"."c", count(*)` → `SELECT .., count(*)`: runs of two or more plain columns
/// become `..`, aliases go, `t.*` becomes `*`.
fn collapse_projection(select: &mut Select) {
    let mut run: Vec<SelectItem> = Vec::new();
    let mut out = Vec::with_capacity(select.projection.len());
    for item in std::mem::take(&mut select.projection) {
        let item = match item {
            SelectItem::ExprWithAlias { expr, .. } => SelectItem::UnnamedExpr(expr),
            SelectItem::QualifiedWildcard(_, options) => SelectItem::Wildcard(options),
            other => other,
        };
        if is_collapsible(&item) {
            run.push(item);
        } else {
            flush_run(&mut run, &mut out);
            out.push(item);
        }
    }
    flush_run(&mut run, &mut out);
    select.projection = out;
}

fn flush_run(run: &mut Vec<SelectItem>, out: &mut Vec<SelectItem>) {
    if run.len() > 1 {
        run.clear();
        out.push(SelectItem::UnnamedExpr(ellipsis()));
    } else {
        out.append(run);
    }
}

impl NormalizeVisitor {
    fn normalize_statement(statement: &mut Statement) {
        match statement {
            Statement::Insert(insert) => {
                insert.columns = vec![ObjectName::from(vec![Ident::new(ELLIPSIS)])];
                if let Some(source) = &mut insert.source {
                    collapse_values(source);
                }
            }
            Statement::Update(update) => {
                let all_values = update
                    .assignments
                    .iter()
                    .all(|a| matches!(a.value, Expr::Value(_)));
                if update.assignments.len() > 1 && all_values {
                    update.assignments.truncate(1);
                    for assignment in &mut update.assignments {
                        assignment.target =
                            AssignmentTarget::ColumnName(ObjectName::from(vec![Ident::new(
                                "__splat_update_lhs__",
                            )]));
                        assignment.value = Expr::Value(Value::Null.with_empty_span());
                    }
                } else {
                    for assignment in &mut update.assignments {
                        match &mut assignment.target {
                            AssignmentTarget::ColumnName(name) => keep_last_of_object(name),
                            AssignmentTarget::Tuple(names) => {
                                names.iter_mut().for_each(keep_last_of_object)
                            }
                        }
                    }
                }
            }
            Statement::Savepoint { name } | Statement::ReleaseSavepoint { name } => {
                erase_name(name)
            }
            Statement::Rollback {
                savepoint: Some(name),
                ..
            } => erase_name(name),
            Statement::Declare { stmts, .. } => {
                for declare in stmts {
                    declare.names.iter_mut().for_each(erase_name);
                }
            }
            Statement::Fetch { name, into, .. } => {
                erase_name(name);
                if let Some(into) = into {
                    *into = ObjectName::from(vec![Ident::new(PLACEHOLDER)]);
                }
            }
            Statement::Close {
                cursor: CloseCursor::Specific { name },
            } => erase_name(name),
            _ => {}
        }
    }
}

/// `VALUES (…), (…), (…)` → `VALUES (%s)`: the row count and width only fragment groups.
fn collapse_values(query: &mut Query) {
    if let SetExpr::Values(values) = query.body.as_mut() {
        values.rows.truncate(1);
        for row in &mut values.rows {
            row.content = vec![placeholder()];
        }
    }
}

fn is_ddl(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::AlterTable(_)
            | Statement::CreateTable(_)
            | Statement::CreateIndex(_)
            | Statement::CreateView(_)
            | Statement::Drop { .. }
            | Statement::Truncate(_)
    )
}

impl VisitorMut for NormalizeVisitor {
    type Break = ();

    fn pre_visit_statement(&mut self, statement: &mut Statement) -> ControlFlow<()> {
        self.in_ddl = is_ddl(statement);
        ControlFlow::Continue(())
    }

    fn post_visit_statement(&mut self, statement: &mut Statement) -> ControlFlow<()> {
        Self::normalize_statement(statement);
        self.in_ddl = false;
        ControlFlow::Continue(())
    }

    // After the children: casts are gone by then, so `"t"."arr"::bytea` counts as a plain column.
    fn post_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        collapse_projection(select);
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<()> {
        keep_last_of_object(relation);
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        match factor {
            TableFactor::Table { alias, .. }
            | TableFactor::Derived { alias, .. }
            | TableFactor::TableFunction { alias, .. }
            | TableFactor::Function { alias, .. }
            | TableFactor::NestedJoin { alias, .. } => scrub_alias(alias),
            TableFactor::UNNEST {
                alias,
                with_offset_alias,
                ..
            } => {
                scrub_alias(alias);
                if let Some(ident) = with_offset_alias {
                    scrub_name(ident);
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_ident(&mut self, ident: &mut Ident) -> ControlFlow<()> {
        if self.in_ddl {
            scrub_name(ident);
        } else {
            unquote(ident);
        }
        ControlFlow::Continue(())
    }

    /// Every literal, wherever the grammar puts it (`LIMIT`, `INTERVAL`, `DEFAULT`, …).
    fn pre_visit_value(&mut self, value: &mut ValueWithSpan) -> ControlFlow<()> {
        value.value = Value::Placeholder(PLACEHOLDER.to_owned());
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::Value(_) | Expr::TypedString(_) => *expr = placeholder(),
            Expr::In {
                target: InTarget::List(list),
                ..
            } => *list = vec![placeholder()],
            Expr::CompoundIdentifier(parts) => keep_last(parts),
            // A name the regex rules read as a value (MySQL takes `$1` for a name): a value here too, so
            // that the structure around it (`SET a = $1, b = 2` → `SET ..`) is decided the same way.
            Expr::Identifier(ident)
                if ident.quote_style.is_none() && VALUE_TOKEN.is_match(&ident.value) =>
            {
                *expr = placeholder()
            }
            Expr::Identifier(ident) => scrub_name(ident),
            // `-1`, and `- - 1` in one go: peeling one sign per normalization would not be idempotent.
            Expr::UnaryOp { .. } if is_signed_value(expr) => *expr = placeholder(),
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                *operand = None;
                *conditions = vec![CaseWhen {
                    condition: ellipsis(),
                    result: ellipsis(),
                }];
                *else_result = None;
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            // `-'x'::int`, `-DATE '…'`: a literal once its cast or type is gone.
            Expr::UnaryOp { .. } if is_signed_value(expr) => *expr = placeholder(),
            // Casts go; replacing the node must wait until its children are normalized.
            Expr::Cast { expr: inner, .. } => *expr = take_expr(inner),
            Expr::BinaryOp { left, op, right } if is_and_or(op) => {
                unnest_same_op(op, left);
                unnest_same_op(op, right);
                if left == right {
                    // `A OR A` → `A`: ORM-generated repeated conditions collapse.
                    *expr = take_expr(left);
                } else if let Expr::BinaryOp {
                    left: ll,
                    op: lop,
                    right: lr,
                } = left.as_mut()
                {
                    // `(A OR B) OR B` → `A OR B`.
                    if lop == op && lr == right {
                        let kept = take_expr(ll);
                        **left = kept;
                    }
                }
            }
            // `t."".c` (BigQuery reads `""` as a string) is printed `t.%s.c`, which parses as the name
            // `t.?.c` the next time: reduced to `c` now, as that name would be.
            Expr::CompoundFieldAccess { access_chain, .. }
                if access_chain.iter().all(|a| matches!(a, AccessExpr::Dot(_))) =>
            {
                if let Some(AccessExpr::Dot(Expr::Identifier(last))) = access_chain.last() {
                    if last.quote_style.is_none() && is_plain_name(&last.value) {
                        *expr = Expr::Identifier(last.clone());
                    }
                }
            }
            // `((x))` → `(x)`; the reductions above can leave double parentheses.
            Expr::Nested(inner) if matches!(inner.as_ref(), Expr::Nested(_)) => {
                *expr = take_expr(inner)
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// A literal under any number of unary `-`/`+`.
fn is_signed_value(mut expr: &Expr) -> bool {
    while let Expr::UnaryOp {
        op: UnaryOperator::Minus | UnaryOperator::Plus,
        expr: inner,
    } = expr
    {
        expr = inner;
    }
    matches!(expr, Expr::Value(_))
}

fn is_and_or(op: &sqlparser::ast::BinaryOperator) -> bool {
    use sqlparser::ast::BinaryOperator::{And, Or};
    matches!(op, And | Or)
}

/// `(a AND b) AND c` → `a AND b AND c`: AND and OR are associative, so those parentheses say nothing.
fn unnest_same_op(outer: &sqlparser::ast::BinaryOperator, expr: &mut Expr) {
    if let Expr::Nested(inner) = expr {
        if matches!(inner.as_ref(), Expr::BinaryOp { op, .. } if op == outer) {
            *expr = take_expr(inner);
        }
    }
}

/// Moves an expression out, leaving `NULL` behind (`Expr` has no `Default`).
fn take_expr(expr: &mut Expr) -> Expr {
    std::mem::replace(expr, Expr::Value(Value::Null.with_empty_span()))
}
