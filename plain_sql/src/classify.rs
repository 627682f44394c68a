//! Sorts statements with PostgreSQL's parser (libpg_query) into what may run side by
//! side and what must run in order, and refuses the ones that reach outside the
//! database (`COPY … PROGRAM`, `COPY` to or from a server file).

use pg_query::protobuf::{a_const, AlterTableType, ConstrType, RangeVar, VariableSetKind};
use pg_query::NodeEnum;

use crate::error::{head, LoadError};
use crate::tolerate::Tolerance;

/// Where a statement belongs in a load.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// `SET`, `RESET`, `set_config(…, false)`: replayed on every connection.
    Session,
    /// `COPY … FROM stdin`; `lines` when each row is one line (text format), so that
    /// its data may be cut between lines.
    Copy { lines: bool },
    /// `CREATE INDEX` (`exclusive` false) or `ADD PRIMARY KEY/UNIQUE/EXCLUDE` (true).
    Index { table: String, exclusive: bool },
    /// `ALTER INDEX … ATTACH PARTITION`, `ADD CONSTRAINT … USING INDEX`: in order,
    /// after the indexes.
    AfterIndex,
    /// `ADD FOREIGN KEY`; `validate` is the `VALIDATE CONSTRAINT` statement and the two
    /// tables as SQL names, when it may be added `NOT VALID` first and validated side
    /// by side with others.
    ForeignKey { table: String, validate: Option<(String, [String; 2])> },
    /// `CREATE TRIGGER`, `CREATE RULE`: post-data, in order.
    PostData,
    /// Anything else: in order.
    Plain,
}

/// What a load needs to know of one statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Class {
    /// Where it belongs.
    pub kind: Kind,
    /// Whether and how its failure may be tolerated.
    pub tolerance: Option<Tolerance>,
}

/// Classifies one statement (without its `;`) that starts at line `line`. A statement
/// the parser does not know is `Plain`: the server will judge it.
pub(crate) fn classify(text: &str, line: u64) -> Result<Class, LoadError> {
    let plain = Class { kind: Kind::Plain, tolerance: None };
    let Ok(parsed) = pg_query::parse(text, 0) else {
        return Ok(plain);
    };
    let [raw] = parsed.protobuf.stmts.as_slice() else {
        return Ok(plain);
    };
    let Some(node) = raw.stmt.as_ref().and_then(|s| s.node.as_ref()) else {
        return Ok(plain);
    };
    let tolerance = Tolerance::of(node);
    let kind = match node {
        NodeEnum::CopyStmt(c) => {
            if c.is_program || !c.filename.is_empty() {
                return Err(LoadError::ServerSide { line, head: head(text) });
            }
            if !c.is_from {
                return Err(LoadError::Format { line, why: format!("`{}` sends data out, not in", head(text)) });
            }
            Kind::Copy { lines: c.options.is_empty() }
        }
        NodeEnum::VariableSetStmt(v) if !v.is_local => {
            if v.name == "standard_conforming_strings" && v.kind() == VariableSetKind::VarSetValue && !first_is_on(&v.args) {
                return Err(LoadError::NonStandardStrings { line });
            }
            Kind::Session
        }
        NodeEnum::SelectStmt(_) if is_set_config(node) => Kind::Session,
        NodeEnum::IndexStmt(i) => Kind::Index { table: name(i.relation.as_ref()), exclusive: false },
        NodeEnum::AlterTableStmt(a) => alter_table(a),
        NodeEnum::CreateTrigStmt(_) | NodeEnum::RuleStmt(_) => Kind::PostData,
        _ => Kind::Plain,
    };
    Ok(Class { kind, tolerance })
}

/// The kind of an `ALTER TABLE`.
fn alter_table(a: &pg_query::protobuf::AlterTableStmt) -> Kind {
    let table = name(a.relation.as_ref());
    let constraints: Vec<_> = a
        .cmds
        .iter()
        .map(|c| match &c.node {
            Some(NodeEnum::AlterTableCmd(c)) if c.subtype() == AlterTableType::AtAddConstraint => match c.def.as_deref() {
                Some(pg_query::Node { node: Some(NodeEnum::Constraint(k)) }) => Some(k.as_ref()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    if a.cmds.len() == 1 && matches!(&a.cmds[0].node, Some(NodeEnum::AlterTableCmd(c)) if c.subtype() == AlterTableType::AtAttachPartition)
    {
        // ALTER INDEX … ATTACH PARTITION is an AlterTableStmt of an index.
        return if a.objtype() == pg_query::protobuf::ObjectType::ObjectIndex { Kind::AfterIndex } else { Kind::Plain };
    }
    let Some(constraints) = constraints.into_iter().collect::<Option<Vec<_>>>() else {
        return Kind::Plain;
    };
    if constraints.is_empty() {
        return Kind::Plain;
    }
    if constraints.iter().any(|k| !k.indexname.is_empty()) {
        return Kind::AfterIndex;
    }
    let index_like = |k: &&pg_query::protobuf::Constraint| {
        matches!(k.contype(), ConstrType::ConstrPrimary | ConstrType::ConstrUnique | ConstrType::ConstrExclusion)
    };
    if constraints.iter().all(index_like) {
        return Kind::Index { table, exclusive: true };
    }
    match constraints.as_slice() {
        [k] if k.contype() == ConstrType::ConstrForeign => {
            let validate = (!k.skip_validation && !k.conname.is_empty()).then(|| {
                let only = a.relation.as_ref().is_some_and(|r| !r.inh);
                let sql = format!(
                    "ALTER TABLE {}{} VALIDATE CONSTRAINT {}",
                    if only { "ONLY " } else { "" },
                    quoted(a.relation.as_ref()),
                    ident(&k.conname)
                );
                (sql, [quoted(a.relation.as_ref()), quoted(k.pktable.as_ref())])
            });
            Kind::ForeignKey { table, validate }
        }
        _ => Kind::Plain,
    }
}

/// `schema.name` of a relation, for telling tables apart.
fn name(r: Option<&RangeVar>) -> String {
    r.map(|r| format!("{}.{}", r.schemaname, r.relname)).unwrap_or_default()
}

/// The relation as a quoted SQL name.
fn quoted(r: Option<&RangeVar>) -> String {
    match r {
        Some(r) if !r.schemaname.is_empty() => {
            format!("{}.{}", ident(&r.schemaname), ident(&r.relname))
        }
        Some(r) => ident(&r.relname),
        None => String::new(),
    }
}

/// Quotes an SQL identifier.
fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Whether the first argument of a `SET` is `on`/`true`.
fn first_is_on(args: &[pg_query::Node]) -> bool {
    match args.first().and_then(|a| a.node.as_ref()) {
        Some(NodeEnum::AConst(c)) => match &c.val {
            Some(a_const::Val::Sval(s)) => matches!(s.sval.to_ascii_lowercase().as_str(), "on" | "true" | "yes" | "1"),
            Some(a_const::Val::Boolval(b)) => b.boolval,
            Some(a_const::Val::Ival(i)) => i.ival != 0,
            _ => false,
        },
        _ => false,
    }
}

/// Whether a `SELECT` is pg_dump's `SELECT pg_catalog.set_config(name, value, false)`.
fn is_set_config(node: &NodeEnum) -> bool {
    let NodeEnum::SelectStmt(s) = node else {
        return false;
    };
    let [target] = s.target_list.as_slice() else {
        return false;
    };
    let Some(NodeEnum::ResTarget(t)) = &target.node else {
        return false;
    };
    let Some(NodeEnum::FuncCall(f)) = t.val.as_ref().and_then(|v| v.node.as_ref()) else {
        return false;
    };
    let last = f.funcname.last().and_then(|n| match &n.node {
        Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
        _ => None,
    });
    let is_local = match f.args.get(2).and_then(|a| a.node.as_ref()) {
        Some(NodeEnum::AConst(c)) => !matches!(&c.val, Some(a_const::Val::Boolval(b)) if !b.boolval),
        _ => true,
    };
    last == Some("set_config") && f.args.len() == 3 && !is_local && s.from_clause.is_empty()
}

#[cfg(test)]
mod tests;
