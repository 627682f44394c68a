//! The few statements pg_dump writes that a restore by a non-superuser, or into a
//! server without production's roles, fails harmlessly. They are run on their own
//! (autocommit, so a failure aborts nothing), and a failure with one of the listed
//! SQLSTATEs is reported instead of failing the load.
//!
//! | statement | SQLSTATE | why harmless |
//! | --- | --- | --- |
//! | `COMMENT ON EXTENSION …` | 42501 | the extension belongs to the superuser who installed it; only its comment is lost |
//! | `CREATE EXTENSION … plpgsql` | 42501, 42710 | old pg_dump versions write it; PL/pgSQL is in every database |
//! | `ALTER … OWNER TO role` | 42501, 42704 | production's role is missing or not ours: the object stays the restoring user's |
//! | `GRANT`, `REVOKE`, `ALTER DEFAULT PRIVILEGES` | 42501, 42704 | privileges of production's roles, missing here |
//! | `SET name = …` | 42704 | a setting of a newer pg_dump (e.g. `transaction_timeout`) this server does not know |

use pg_query::protobuf::{AlterTableType, ObjectType};
use pg_query::NodeEnum;

/// Why a failure of a statement may be tolerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tolerance {
    /// `COMMENT ON EXTENSION`.
    ExtensionComment,
    /// `CREATE EXTENSION plpgsql`.
    Plpgsql,
    /// `ALTER … OWNER TO`.
    Owner,
    /// `GRANT`, `REVOKE`, `ALTER DEFAULT PRIVILEGES`.
    Privileges,
    /// `SET` of a parameter the server does not know.
    UnknownSetting,
}

impl Tolerance {
    /// The tolerance of a parsed statement, if it is one of the list.
    pub(crate) fn of(node: &NodeEnum) -> Option<Tolerance> {
        match node {
            NodeEnum::CommentStmt(c) if c.objtype() == ObjectType::ObjectExtension => Some(Self::ExtensionComment),
            NodeEnum::CreateExtensionStmt(c) if c.extname == "plpgsql" => Some(Self::Plpgsql),
            NodeEnum::AlterOwnerStmt(_) => Some(Self::Owner),
            NodeEnum::AlterTableStmt(a)
                if !a.cmds.is_empty()
                    && a.cmds
                        .iter()
                        .all(|c| matches!(&c.node, Some(NodeEnum::AlterTableCmd(c)) if c.subtype() == AlterTableType::AtChangeOwner)) =>
            {
                Some(Self::Owner)
            }
            NodeEnum::GrantStmt(_) | NodeEnum::GrantRoleStmt(_) | NodeEnum::AlterDefaultPrivilegesStmt(_) => Some(Self::Privileges),
            NodeEnum::VariableSetStmt(_) => Some(Self::UnknownSetting),
            _ => None,
        }
    }

    /// Whether a failure with SQLSTATE `code` is the harmless one.
    pub(crate) fn accepts(self, code: &str) -> bool {
        match self {
            Self::ExtensionComment => code == "42501",
            Self::Plpgsql => matches!(code, "42501" | "42710"),
            Self::Owner | Self::Privileges => matches!(code, "42501" | "42704"),
            Self::UnknownSetting => code == "42704",
        }
    }
}
