//! What the server says about itself: `GetSqlInfo` entries (server name and version, SQL
//! grammar and capabilities that JDBC's `DatabaseMetaData` and ADBC's `GetInfo` ask for) and
//! `GetXdbcTypeInfo` (the SQL types, as JDBC's `getTypeInfo`).

use std::sync::LazyLock;

use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    Nullable, Searchable, SqlInfo, SqlNullOrdering, SqlOuterJoinsSupportLevel,
    SqlSupportedCaseSensitivity, XdbcDataType, XdbcDatetimeSubcode,
};

/// The server name reported to clients.
pub const SERVER_NAME: &str = "vcfq";

/// `GetSqlInfo` answers, built once.
pub static SQL_INFO: LazyLock<Result<SqlInfoData, String>> = LazyLock::new(|| {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, SERVER_NAME);
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "58.4.1");
    b.append(SqlInfo::FlightSqlServerReadOnly, false);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    // SqlSupportedTransaction: none
    b.append(SqlInfo::FlightSqlServerTransaction, 0i32);
    b.append(SqlInfo::FlightSqlServerCancel, true);
    b.append(SqlInfo::FlightSqlServerBulkIngestion, false);
    b.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
    b.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    b.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
    b.append(SqlInfo::SqlDdlCatalog, true);
    b.append(SqlInfo::SqlDdlSchema, true);
    b.append(SqlInfo::SqlDdlTable, true);
    // identifiers keep their case (`info.AF`, `GT`): neither folded up nor down
    b.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityUnknown as i32,
    );
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityUnknown as i32,
    );
    b.append(SqlInfo::SqlAllTablesAreSelectable, true);
    b.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    let keywords: Vec<String> = datafusion::sql::sqlparser::keywords::ALL_KEYWORDS
        .iter()
        .map(|k| k.to_string())
        .collect();
    b.append(SqlInfo::SqlKeywords, keywords);
    b.append(SqlInfo::SqlNumericFunctions, NUMERIC_FUNCTIONS);
    b.append(SqlInfo::SqlStringFunctions, STRING_FUNCTIONS);
    b.append(SqlInfo::SqlSystemFunctions, SYSTEM_FUNCTIONS);
    b.append(SqlInfo::SqlDatetimeFunctions, DATETIME_FUNCTIONS);
    b.append(SqlInfo::SqlSearchStringEscape, "\\");
    b.append(SqlInfo::SqlExtraNameCharacters, "");
    b.append(SqlInfo::SqlSupportsColumnAliasing, true);
    b.append(SqlInfo::SqlNullPlusNullIsNull, true);
    b.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    b.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    b.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    b.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    // bit mask of SqlSupportedGroupBy: UNRELATED | BEYOND_SELECT
    b.append(SqlInfo::SqlSupportedGroupBy, 0b11i32);
    b.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    b.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    // bit mask of SupportedSqlGrammar: MINIMUM | CORE
    b.append(SqlInfo::SqlSupportedGrammar, 0b11i32);
    // bit mask of SupportedAnsi92SqlGrammarLevel: ENTRY | INTERMEDIATE
    b.append(SqlInfo::SqlAnsi92SupportedLevel, 0b11i32);
    b.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
    b.append(
        SqlInfo::SqlOuterJoinsSupportLevel,
        SqlOuterJoinsSupportLevel::SqlFullOuterJoins as i32,
    );
    b.append(SqlInfo::SqlSchemaTerm, "schema");
    b.append(SqlInfo::SqlProcedureTerm, "procedure");
    b.append(SqlInfo::SqlCatalogTerm, "catalog");
    b.append(SqlInfo::SqlCatalogAtStart, true);
    b.append(SqlInfo::SqlSchemasSupportedActions, 0i32);
    b.append(SqlInfo::SqlCatalogsSupportedActions, 0i32);
    b.append(SqlInfo::SqlSupportedPositionedCommands, 0i32);
    b.append(SqlInfo::SqlSelectForUpdateSupported, false);
    b.append(SqlInfo::SqlStoredProceduresSupported, false);
    // bit mask of SqlSupportedSubqueries: COMPARISONS | EXISTS | INS | QUANTIFIEDS
    b.append(SqlInfo::SqlSupportedSubqueries, 0b1111i32);
    b.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    // bit mask of SqlSupportedUnions: UNION | UNION_ALL
    b.append(SqlInfo::SqlSupportedUnions, 0b11i32);
    for limit in [
        SqlInfo::SqlMaxBinaryLiteralLength,
        SqlInfo::SqlMaxCharLiteralLength,
        SqlInfo::SqlMaxColumnNameLength,
        SqlInfo::SqlMaxColumnsInGroupBy,
        SqlInfo::SqlMaxColumnsInIndex,
        SqlInfo::SqlMaxColumnsInOrderBy,
        SqlInfo::SqlMaxColumnsInSelect,
        SqlInfo::SqlMaxColumnsInTable,
        SqlInfo::SqlMaxConnections,
        SqlInfo::SqlMaxCursorNameLength,
        SqlInfo::SqlMaxIndexLength,
        SqlInfo::SqlDbSchemaNameLength,
        SqlInfo::SqlMaxProcedureNameLength,
        SqlInfo::SqlMaxCatalogNameLength,
        SqlInfo::SqlMaxRowSize,
        SqlInfo::SqlMaxStatementLength,
        SqlInfo::SqlMaxStatements,
        SqlInfo::SqlMaxTableNameLength,
        SqlInfo::SqlMaxTablesInSelect,
        SqlInfo::SqlMaxUsernameLength,
    ] {
        // 0: no limit known
        b.append(limit, 0i64);
    }
    b.append(SqlInfo::SqlMaxRowSizeIncludesBlobs, true);
    b.append(SqlInfo::SqlDefaultTransactionIsolation, 0i64);
    b.append(SqlInfo::SqlTransactionsSupported, false);
    b.append(SqlInfo::SqlSupportedTransactionsIsolationLevels, 0i32);
    b.append(SqlInfo::SqlDataDefinitionCausesTransactionCommit, false);
    b.append(SqlInfo::SqlDataDefinitionsInTransactionsIgnored, true);
    b.append(SqlInfo::SqlSupportedResultSetTypes, 0i32);
    b.append(SqlInfo::SqlBatchUpdatesSupported, false);
    b.append(SqlInfo::SqlSavepointsSupported, false);
    b.append(SqlInfo::SqlNamedParametersSupported, false);
    b.append(SqlInfo::SqlLocatorsUpdateCopy, false);
    b.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    b.build().map_err(|e| e.to_string())
});

const NUMERIC_FUNCTIONS: &[&str] = &[
    "abs", "acos", "asin", "atan", "atan2", "cbrt", "ceil", "cos", "degrees", "exp", "floor", "ln",
    "log", "log10", "log2", "pi", "power", "radians", "random", "round", "signum", "sin", "sqrt",
    "tan", "trunc",
];
const STRING_FUNCTIONS: &[&str] = &[
    "ascii",
    "btrim",
    "char_length",
    "chr",
    "concat",
    "concat_ws",
    "initcap",
    "left",
    "length",
    "lower",
    "lpad",
    "ltrim",
    "regexp_like",
    "regexp_match",
    "regexp_replace",
    "repeat",
    "replace",
    "reverse",
    "right",
    "rpad",
    "rtrim",
    "split_part",
    "starts_with",
    "strpos",
    "substr",
    "translate",
    "trim",
    "upper",
];
const SYSTEM_FUNCTIONS: &[&str] = &[
    "arrow_typeof",
    "coalesce",
    "nullif",
    "nvl",
    "read_vcf",
    "vcf_genotypes",
    "vcf_header",
    "gt_alleles",
    "gt_dosage",
    "gt_is_het",
    "gt_phased",
];
const DATETIME_FUNCTIONS: &[&str] = &[
    "current_date",
    "current_time",
    "date_bin",
    "date_part",
    "date_trunc",
    "from_unixtime",
    "now",
    "to_timestamp",
    "to_unixtime",
];

/// `GetXdbcTypeInfo` answers: the SQL types vcfq tables use.
pub static XDBC_TYPE_INFO: LazyLock<Result<XdbcTypeInfoData, String>> = LazyLock::new(|| {
    let mut b = XdbcTypeInfoDataBuilder::new();
    // name, type, column size, literal quote, case sensitive, radix
    type Row = (
        &'static str,
        XdbcDataType,
        Option<i32>,
        Option<&'static str>,
        bool,
        Option<i32>,
    );
    let types: &[Row] = &[
        ("BOOLEAN", XdbcDataType::XdbcBit, Some(1), None, false, None),
        (
            "TINYINT",
            XdbcDataType::XdbcTinyint,
            Some(3),
            None,
            false,
            Some(10),
        ),
        (
            "SMALLINT",
            XdbcDataType::XdbcSmallint,
            Some(5),
            None,
            false,
            Some(10),
        ),
        (
            "INTEGER",
            XdbcDataType::XdbcInteger,
            Some(10),
            None,
            false,
            Some(10),
        ),
        (
            "BIGINT",
            XdbcDataType::XdbcBigint,
            Some(19),
            None,
            false,
            Some(10),
        ),
        (
            "REAL",
            XdbcDataType::XdbcReal,
            Some(7),
            None,
            false,
            Some(2),
        ),
        (
            "DOUBLE",
            XdbcDataType::XdbcDouble,
            Some(15),
            None,
            false,
            Some(2),
        ),
        (
            "DECIMAL",
            XdbcDataType::XdbcDecimal,
            Some(38),
            None,
            false,
            Some(10),
        ),
        (
            "VARCHAR",
            XdbcDataType::XdbcVarchar,
            None,
            Some("'"),
            true,
            None,
        ),
        (
            "BINARY",
            XdbcDataType::XdbcBinary,
            None,
            Some("X'"),
            false,
            None,
        ),
        (
            "DATE",
            XdbcDataType::XdbcDate,
            Some(10),
            Some("DATE '"),
            false,
            None,
        ),
        (
            "TIMESTAMP",
            XdbcDataType::XdbcTimestamp,
            Some(29),
            Some("TIMESTAMP '"),
            false,
            None,
        ),
    ];
    for (name, data_type, size, prefix, case_sensitive, radix) in types {
        let is_datetime = matches!(
            data_type,
            XdbcDataType::XdbcDate | XdbcDataType::XdbcTimestamp
        );
        b.append(XdbcTypeInfo {
            type_name: (*name).to_string(),
            data_type: *data_type,
            column_size: *size,
            literal_prefix: prefix.map(str::to_string),
            literal_suffix: prefix.map(|_| "'".to_string()),
            create_params: (*name == "DECIMAL")
                .then(|| vec!["precision".to_string(), "scale".to_string()]),
            nullable: Nullable::NullabilityNullable,
            case_sensitive: *case_sensitive,
            searchable: Searchable::Full,
            unsigned_attribute: radix.map(|_| false),
            fixed_prec_scale: false,
            auto_increment: radix.map(|_| false),
            local_type_name: Some((*name).to_string()),
            minimum_scale: None,
            maximum_scale: None,
            sql_data_type: if is_datetime {
                XdbcDataType::XdbcDatetime
            } else {
                *data_type
            },
            datetime_subcode: match data_type {
                // SQL_CODE_DATE is 1, which the enum names YEAR
                XdbcDataType::XdbcDate => Some(XdbcDatetimeSubcode::XdbcSubcodeYear),
                XdbcDataType::XdbcTimestamp => Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp),
                _ => None,
            },
            num_prec_radix: *radix,
            interval_precision: None,
        });
    }
    b.build().map_err(|e| e.to_string())
});

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_flight::sql::CommandGetSqlInfo;

    #[test]
    fn server_name_version_and_type_info_are_answered() {
        let info = SQL_INFO.as_ref().unwrap();
        let batch = CommandGetSqlInfo {
            info: vec![
                SqlInfo::FlightSqlServerName as u32,
                SqlInfo::SqlIdentifierQuoteChar as u32,
            ],
        }
        .into_builder(info)
        .build()
        .unwrap();
        assert_eq!(batch.num_rows(), 2);
        let all = CommandGetSqlInfo { info: vec![] }
            .into_builder(info)
            .build()
            .unwrap();
        assert!(all.num_rows() > 80, "{}", all.num_rows());
        let types = XDBC_TYPE_INFO.as_ref().unwrap();
        assert_eq!(types.record_batch(None).unwrap().num_rows(), 12);
        assert_eq!(
            types
                .record_batch(Some(XdbcDataType::XdbcVarchar as i32))
                .unwrap()
                .num_rows(),
            1
        );
    }
}
