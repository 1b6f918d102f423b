//! Roles and grants, as a server's config file states them, and what they allow one principal.
//!
//! A grant names tables (by name or `*`/`?` pattern) or locations (path prefixes, or stream
//! location prefixes such as `iggy://host:port/stream`) and the privileges it gives on them:
//! `select` (read), `insert` (write: `INSERT INTO`, `COPY … TO`), `create` (`CREATE [EXTERNAL]
//! TABLE`, `CREATE VIEW`, `CREATE INDEX`, and dropping them). A table grant may narrow what is
//! read: a column allow-list, masks (a SQL expression in place of a column's value) and a row
//! filter (a SQL predicate). A principal has the union of its roles' grants; a table is read
//! through the least restricted grant that gives `select` on it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What a grant allows on its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Privilege {
    /// Read a table or the files at a location.
    Select,
    /// Write into a table (`INSERT`), or files at a location (`COPY … TO`).
    Insert,
    /// Create (and drop) tables, views and indexes, or tables over a location.
    Create,
}

impl std::fmt::Display for Privilege {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Privilege::Select => "select",
            Privilege::Insert => "insert",
            Privilege::Create => "create",
        })
    }
}

/// `[[roles]]` of the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// The role's name, as users' `roles` list it.
    pub name: String,
    /// Administrators see every session's queries and sessions, read `system.audit`, and may
    /// cancel any query.
    #[serde(default)]
    pub admin: bool,
    /// What the role may do.
    #[serde(default)]
    pub grants: Vec<GrantConfig>,
}

/// `[[roles.grants]]`: privileges on tables or on locations.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantConfig {
    /// Table names or patterns (`*` any run of characters, `?` one character).
    #[serde(default)]
    pub tables: Vec<String>,
    /// Path prefixes (relative to the config file) or stream location prefixes.
    #[serde(default)]
    pub locations: Vec<String>,
    /// What the grant allows.
    pub privileges: Vec<Privilege>,
    /// Only these columns are visible (all when omitted).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Columns read as a SQL expression instead of their value (`NULL`, `'hidden'`, …).
    #[serde(default)]
    pub masks: BTreeMap<String, String>,
    /// Only rows for which this SQL predicate is true are visible.
    #[serde(default)]
    pub row_filter: Option<String>,
}

/// What a table grant narrows when the table is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restriction {
    /// Visible columns (all when `None`).
    pub columns: Option<Vec<String>>,
    /// Column → SQL expression read in its place.
    pub masks: BTreeMap<String, String>,
    /// SQL predicate the visible rows satisfy.
    pub row_filter: Option<String>,
}

impl Restriction {
    /// Whether it narrows nothing.
    pub fn is_none(&self) -> bool {
        self.columns.is_none() && self.masks.is_empty() && self.row_filter.is_none()
    }
}

/// How a principal sees a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableView {
    /// Not at all: the table is not in the principal's sessions.
    Hidden,
    /// Visible; `select` may still be missing (an insert-only grant).
    Visible {
        /// Whether the principal may read it.
        select: bool,
        /// What reading it narrows.
        restriction: Restriction,
    },
}

#[derive(Debug, Clone)]
enum Location {
    /// A canonical directory or file prefix.
    Path(PathBuf),
    /// A stream location prefix (credentials removed).
    Stream(String),
}

#[derive(Debug, Clone)]
struct Grant {
    tables: Vec<String>,
    locations: Vec<Location>,
    privileges: Vec<Privilege>,
    restriction: Restriction,
}

/// The grants one principal holds.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    grants: Vec<Grant>,
    roles: Vec<String>,
    admin: bool,
}

impl Rules {
    /// Every privilege on every table and location (a server with no `[[roles]]`: what clients
    /// reach is then limited by the file roots alone).
    pub fn unrestricted() -> Self {
        Rules {
            grants: vec![Grant {
                tables: vec!["*".to_string()],
                locations: vec![
                    Location::Path(PathBuf::from("/")),
                    Location::Stream(String::new()),
                ],
                privileges: vec![Privilege::Select, Privilege::Insert, Privilege::Create],
                restriction: Restriction::default(),
            }],
            roles: Vec::new(),
            admin: true,
        }
    }

    /// The grants of `roles` (names not in `defined` are a configuration error); path
    /// locations are resolved against `base`.
    pub fn of_roles(roles: &[String], defined: &[RoleConfig], base: &Path) -> Result<Self, String> {
        let mut grants = Vec::new();
        let mut admin = false;
        for name in roles {
            let Some(role) = defined.iter().find(|r| &r.name == name) else {
                return Err(format!("role {name:?} is not defined in [[roles]]"));
            };
            admin |= role.admin;
            for g in &role.grants {
                if g.tables.is_empty() == g.locations.is_empty() {
                    return Err(format!(
                        "role {name:?}: a grant names either tables or locations"
                    ));
                }
                if g.privileges.is_empty() {
                    return Err(format!("role {name:?}: a grant without privileges"));
                }
                let restricts =
                    g.columns.is_some() || !g.masks.is_empty() || g.row_filter.is_some();
                if restricts && g.tables.is_empty() {
                    return Err(format!(
                        "role {name:?}: columns, masks and row_filter narrow tables, not locations"
                    ));
                }
                grants.push(Grant {
                    tables: g.tables.clone(),
                    locations: g.locations.iter().map(|l| location(l, base)).collect(),
                    privileges: g.privileges.clone(),
                    restriction: Restriction {
                        columns: g.columns.clone(),
                        masks: g.masks.clone(),
                        row_filter: g.row_filter.clone(),
                    },
                });
            }
        }
        Ok(Rules {
            grants,
            roles: roles.to_vec(),
            admin,
        })
    }

    /// Whether these rules make an administrator (see [`RoleConfig::admin`]).
    pub fn is_admin(&self) -> bool {
        self.admin
    }

    /// The roles these rules come from (empty for [`Rules::unrestricted`]).
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// Whether `privilege` is granted on the table `name`.
    pub fn table_allows(&self, name: &str, privilege: Privilege) -> bool {
        self.grants.iter().any(|g| {
            g.privileges.contains(&privilege) && g.tables.iter().any(|p| matches_pattern(p, name))
        })
    }

    /// How the table `name` is seen.
    pub fn table_view(&self, name: &str) -> TableView {
        let matching: Vec<&Grant> = self
            .grants
            .iter()
            .filter(|g| g.tables.iter().any(|p| matches_pattern(p, name)))
            .collect();
        if matching.is_empty() {
            return TableView::Hidden;
        }
        let selecting: Vec<&&Grant> = matching
            .iter()
            .filter(|g| g.privileges.contains(&Privilege::Select))
            .collect();
        let restriction = selecting
            .iter()
            .find(|g| g.restriction.is_none())
            .or_else(|| selecting.first())
            .map(|g| g.restriction.clone())
            .unwrap_or_default();
        TableView::Visible {
            select: !selecting.is_empty(),
            restriction,
        }
    }

    /// Whether `privilege` is granted on the file at `resolved` (canonical, see
    /// [`super::paths::resolve`]).
    pub fn path_allows(&self, resolved: &Path, privilege: Privilege) -> bool {
        self.grants.iter().any(|g| {
            g.privileges.contains(&privilege)
                && g.locations
                    .iter()
                    .any(|l| matches!(l, Location::Path(p) if resolved.starts_with(p)))
        })
    }

    /// Whether `privilege` is granted on the stream location `location`.
    pub fn stream_allows(&self, location: &str, privilege: Privilege) -> bool {
        let location = without_credentials(location);
        self.grants.iter().any(|g| {
            g.privileges.contains(&privilege)
                && g.locations
                    .iter()
                    .any(|l| matches!(l, Location::Stream(p) if location.starts_with(p.as_str())))
        })
    }
}

/// Whether a location names a stream (`iggy://…`, `host:port/topic`) rather than a file.
pub fn is_stream_location(location: &str) -> bool {
    if location.starts_with("file://") {
        return false;
    }
    if location.contains("://") {
        return true;
    }
    // `host:port[,host:port]/topic`: a colon before the first slash, followed by a port
    let head = location.split('/').next().unwrap_or("");
    head.split(',').all(|hp| {
        hp.rsplit_once(':').is_some_and(|(h, p)| {
            !h.is_empty() && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
        })
    })
}

/// A stream location with `user:password@` removed, so that grants and audit records never
/// hold a password and grants match whatever credentials are used.
pub fn without_credentials(location: &str) -> String {
    match location.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => location.to_string(),
    }
}

fn location(text: &str, base: &Path) -> Location {
    if is_stream_location(text) {
        return Location::Stream(without_credentials(text));
    }
    let path = Path::new(text.strip_prefix("file://").unwrap_or(text));
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    Location::Path(super::paths::resolve(&absolute.display().to_string()))
}

/// Whether `name` matches `pattern` (`*`: any run of characters, `?`: one character; the rest
/// compared exactly, case included, as table names are).
pub fn matches_pattern(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // iterative wildcard matching with one backtrack point (the last `*`)
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, grants: Vec<GrantConfig>) -> RoleConfig {
        RoleConfig {
            name: name.to_string(),
            admin: false,
            grants,
        }
    }

    fn tables(names: &[&str], privileges: &[Privilege]) -> GrantConfig {
        GrantConfig {
            tables: names.iter().map(|s| s.to_string()).collect(),
            privileges: privileges.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn patterns() {
        assert!(matches_pattern("*", "calls"));
        assert!(matches_pattern("cohort_*", "cohort_2024"));
        assert!(matches_pattern("c?lls", "calls"));
        assert!(matches_pattern("*_chr*", "x_chr22"));
        assert!(!matches_pattern("cohort_*", "Cohort_1"));
        assert!(!matches_pattern("calls", "calls2"));
        assert!(!matches_pattern("a*b", "acbd"));
        assert!(matches_pattern("a*b*", "acbd"));
    }

    #[test]
    fn the_least_restricted_selecting_grant_wins() {
        let restricted = GrantConfig {
            row_filter: Some("chrom = 'chr22'".into()),
            ..tables(&["calls"], &[Privilege::Select])
        };
        let roles = vec![
            role("r", vec![restricted.clone()]),
            role("full", vec![tables(&["*"], &[Privilege::Select])]),
            role("writer", vec![tables(&["topic_*"], &[Privilege::Insert])]),
        ];
        let base = Path::new("/");
        let r = Rules::of_roles(&["r".into()], &roles, base).unwrap();
        let TableView::Visible {
            select,
            restriction,
        } = r.table_view("calls")
        else {
            panic!("hidden")
        };
        assert!(select);
        assert_eq!(restriction.row_filter.as_deref(), Some("chrom = 'chr22'"));
        assert_eq!(r.table_view("other"), TableView::Hidden);

        let both = Rules::of_roles(&["r".into(), "full".into()], &roles, base).unwrap();
        assert_eq!(
            both.table_view("calls"),
            TableView::Visible {
                select: true,
                restriction: Restriction::default()
            }
        );
        let w = Rules::of_roles(&["writer".into()], &roles, base).unwrap();
        assert!(matches!(
            w.table_view("topic_a"),
            TableView::Visible { select: false, .. }
        ));
        assert!(w.table_allows("topic_a", Privilege::Insert));
        assert!(!w.table_allows("topic_a", Privilege::Select));
    }

    #[test]
    fn locations_are_prefixes_and_streams_ignore_credentials() {
        let roles = vec![role(
            "r",
            vec![GrantConfig {
                locations: vec!["/data/public".into(), "iggy://127.0.0.1:8090/lab".into()],
                privileges: vec![Privilege::Select, Privilege::Create],
                ..Default::default()
            }],
        )];
        let r = Rules::of_roles(&["r".into()], &roles, Path::new("/")).unwrap();
        assert!(r.path_allows(Path::new("/data/public/a.vcf"), Privilege::Select));
        assert!(!r.path_allows(Path::new("/data/public2/a.vcf"), Privilege::Select));
        assert!(!r.path_allows(Path::new("/data/public/a.vcf"), Privilege::Insert));
        assert!(r.stream_allows(
            "iggy://u:secret@127.0.0.1:8090/lab/calls",
            Privilege::Create
        ));
        assert!(!r.stream_allows("iggy://127.0.0.1:8090/other/calls", Privilege::Create));
        assert!(!r.table_allows("anything", Privilege::Select));
    }

    #[test]
    fn bad_grants_are_configuration_errors() {
        let both = GrantConfig {
            locations: vec!["/x".into()],
            ..tables(&["t"], &[Privilege::Select])
        };
        for (grant, says) in [
            (both, "either tables or locations"),
            (tables(&["t"], &[]), "without privileges"),
            (
                GrantConfig {
                    locations: vec!["/x".into()],
                    row_filter: Some("true".into()),
                    privileges: vec![Privilege::Select],
                    ..Default::default()
                },
                "narrow tables",
            ),
        ] {
            let e = Rules::of_roles(&["r".into()], &[role("r", vec![grant])], Path::new("/"))
                .unwrap_err();
            assert!(e.contains(says), "{e}");
        }
        let e = Rules::of_roles(&["nope".into()], &[], Path::new("/")).unwrap_err();
        assert!(e.contains("not defined"), "{e}");
    }

    #[test]
    fn stream_locations() {
        assert!(is_stream_location("iggy://u:p@h:1/s/t"));
        assert!(is_stream_location("localhost:9092/topic"));
        assert!(is_stream_location("a:9092,b:9093/topic"));
        assert!(!is_stream_location("/data/x.vcf"));
        assert!(!is_stream_location("file:///data/x.vcf"));
        assert!(!is_stream_location("data/x.vcf"));
        assert_eq!(without_credentials("iggy://u:p@h:1/s/t"), "iggy://h:1/s/t");
        assert_eq!(without_credentials("h:1/t"), "h:1/t");
    }
}
